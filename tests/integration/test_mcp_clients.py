"""The official MCP Python client against `sessionbase mcp` (stdio, a real subprocess) and
against `/mcp` of a real `sessionbase serve` (Streamable HTTP): the tools are listed with
their schemas, each one answers, a long thread pages to its end, bad arguments come back as
errors the model can read, and no answer passes its size cap."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from tests.builders.codex import DEFAULT_START, Rollout
from tests.conftest import Cli
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration

TOOLS = {"search_sessions", "read_thread", "recent_threads", "similar_threads", "list_projects"}
SESSIONBASE = [sys.executable, "-c", "from sessionbase.cli import main; main()"]
Connect = Callable[[], AbstractAsyncContextManager[Client]]


@pytest.fixture
def threads(codex_home: Path, run_cli: Cli) -> dict[str, str]:
    """A long thread (120 items) and a short one, mirrored into the test's data dir."""
    long = Rollout(cwd="/work/sockets")
    long.rename("Flaky websocket test")
    for n in range(40):
        long.user(f"Why does test_reconnect_{n} flake?")
        long.shell(f"pytest -k reconnect_{n}", "." * 2000 + f"\nFAILED reconnect_{n}", 1)
        long.assistant(f"The reconnect timer races the close frame ({n}).")
    long.write(codex_home)
    short = Rollout(cwd="/work/billing", start=DEFAULT_START.replace(day=3))
    short.user("Add VAT to invoices")
    short.assistant("Invoices now carry VAT.")
    short.write(codex_home)
    run_cli("backfill", "--no-embed")
    return {"long": long.thread_id, "short": short.thread_id}


def stdio(data_dir: Path) -> Connect:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONBASE_")}
    params = StdioServerParameters(
        command=SESSIONBASE[0], args=[*SESSIONBASE[1:], "mcp", "--data-dir", str(data_dir)], env=env
    )
    return lambda: Client(params)


@pytest.fixture
def served(threads: dict[str, str], run_cli: Cli) -> Any:
    settings = run_cli.settings
    with ServerProcess(settings.data_dir, settings.codex_homes[0]) as server:
        yield server


def text_of(result: Any) -> str:
    assert len(result.content) == 1
    return str(result.content[0].text)


async def exercise(connect: Connect, threads: dict[str, str]) -> None:
    """Everything a client does with the tools, over whichever transport ``connect`` opens."""
    async with connect() as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(listed) == TOOLS
        search = listed["search_sessions"]
        assert search.input_schema["required"] == ["query"]
        assert search.annotations is not None
        assert search.annotations.read_only_hint is True
        assert "read_thread" in str(search.description)

        found = await client.call_tool("search_sessions", {"query": "close frame", "mode": "text"})
        assert not found.is_error
        assert f"thread {threads['long']} #" in text_of(found)
        assert f"codex resume {threads['long']}" in text_of(found)

        recent = text_of(await client.call_tool("recent_threads", {"limit": 5}))
        assert recent.index(threads["short"]) < recent.index(threads["long"])
        projects = text_of(await client.call_tool("list_projects", {}))
        assert "- sockets · /work/sockets · 1 thread" in projects
        similar = await client.call_tool("similar_threads", {"thread": threads["long"][:8]})
        assert not similar.is_error  # embedded (serve embeds meanwhile) or says what builds it
        assert threads["long"] in text_of(similar)

        seen: list[int] = []
        start = 0
        while True:
            page = await client.call_tool(
                "read_thread", {"thread": threads["long"], "from": start, "max_chars": 3000}
            )
            assert not page.is_error
            assert len(text_of(page)) <= 3000
            seen += [int(n) for n in re.findall(r"^#(\d+) ", text_of(page), re.MULTILINE)]
            following = re.findall(r"from=(\d+)\)", text_of(page))
            if not following:
                assert text_of(page).endswith("End of thread.")
                break
            start = int(following[-1])
        assert seen == list(range(120))

        for name, args, says in (
            ("read_thread", {"thread": "ab"}, "'ab' is too short"),
            ("read_thread", {"thread": threads["long"], "limit": 0}, "limit: Input should be"),
            ("search_sessions", {"query": "x", "max_chars": 10**9}, "max_chars: Input should"),
            ("search_sessions", {"mode": "text"}, "query: Field required"),
            ("recent_threads", {"project": "nowhere"}, "no project matches 'nowhere'"),
        ):
            refused = await client.call_tool(name, args)
            assert refused.is_error, (name, args)
            assert says in text_of(refused)

        with pytest.raises(MCPError, match="unknown tool 'drop_tables'"):
            await client.call_tool("drop_tables", {})
        # the session survives all of that
        assert not (await client.call_tool("list_projects", {})).is_error


def test_stdio(threads: dict[str, str], run_cli: Cli) -> None:
    anyio.run(exercise, stdio(run_cli.settings.data_dir), threads)


def test_stdio_while_serve_ingests_into_the_same_data_dir(
    served: ServerProcess, threads: dict[str, str], run_cli: Cli
) -> None:
    anyio.run(exercise, stdio(run_cli.settings.data_dir), threads)


def test_stdio_before_any_database_exists_answers_with_what_to_do(tmp_path: Path) -> None:
    async def body() -> None:
        async with stdio(tmp_path / "empty")() as client:
            assert len((await client.list_tools()).tools) == len(TOOLS)
            result = await client.call_tool("recent_threads", {})
            assert result.is_error
            assert "no database at" in text_of(result)
            assert "sessionbase backfill" in text_of(result)

    anyio.run(body)


def test_streamable_http_on_serve(served: ServerProcess, threads: dict[str, str]) -> None:
    @asynccontextmanager
    async def connect() -> AsyncIterator[Client]:
        async with Client(f"{served.url}/mcp") as client:
            yield client

    anyio.run(exercise, connect, threads)


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"},
    },
}
ACCEPT = "application/json, text/event-stream"


def test_http_mcp_passes_the_request_guard_like_every_route(served: ServerProcess) -> None:
    """A page from another origin (or a rebound DNS name) gets nothing; the server's own
    origin, and clients that send no Origin, get an MCP session and its event stream."""
    url = f"{served.url}/mcp"

    async def body() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            for headers, status in (
                ({"Origin": "http://evil.example"}, 403),
                ({"Origin": "null"}, 403),
                ({"Host": "evil.example"}, 400),
                ({"Content-Type": "text/plain"}, 415),
                ({"Authorization": "Basic dXNlcjpwdw=="}, 401),
            ):
                refused = await http.post(
                    url,
                    content=httpx.Request("POST", url, json=INITIALIZE).content,
                    headers={"Content-Type": "application/json", "Accept": ACCEPT, **headers},
                )
                assert refused.status_code == status, (headers, refused.text)
                assert "error" in refused.json()
            for origin in (None, served.url):
                headers = {"Accept": ACCEPT, **({"Origin": origin} if origin else {})}
                opened = await http.post(url, json=INITIALIZE, headers=headers)
                assert opened.status_code == 200, opened.text
                session = opened.headers["mcp-session-id"]
                assert '"serverInfo"' in opened.text
                async with http.stream(
                    "GET",
                    url,
                    headers={
                        **headers,
                        "mcp-session-id": session,
                        "mcp-protocol-version": "2025-06-18",
                        "Accept": "text/event-stream",
                    },  # fmt: skip
                ) as stream:
                    assert stream.status_code == 200
                    assert stream.headers["content-type"].startswith("text/event-stream")
                closed = await http.delete(url, headers={"mcp-session-id": session})
                assert closed.status_code == 200

    anyio.run(body)

"""The real Codex CLI as the MCP client: Codex starts `sessionbase mcp` as configured by
`sessionbase mcp --print-config codex`, the scripted model finds the tool through Codex's tool
search and calls it, and the answer Codex hands the model names the earlier thread. That
answer lands in the new rollout, which sessionbase then mirrors like any other.

How Codex 0.169.0 offers MCP tools (seen here, not assumed): they are deferred, so the model
first calls the client-side ``tool_search``; its ``tool_search_output`` lists a namespace
``mcp__sessionbase`` holding the tools, and the model then calls ``search_sessions`` with
``"namespace": "mcp__sessionbase"`` (the rollout keeps both; the mirror names the call
``mcp__sessionbase__search_sessions``). A deferred server is not waited for: tool search
finds nothing while it starts, so the test marks the server ``required``, which makes Codex
start it before the first turn (a model's first turn takes longer than the start itself).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CORPUS, Cli
from tests.support.codex_cli import CodexHome, make_codex_home, run_codex_exec
from tests.support.mock_responses import FunctionCall, Message, MockModelServer, ToolSearch
from tests.support.rollout_lines import response_items

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}"),
]

EARLIER = "019e1625-789d-76c0-80ab-3724b5ddb799"
"""The corpus thread where the user asked to "update the defailt context compart to 90"."""
PHRASE = "defailt context compart"


def printed_codex_config(data_dir: Path) -> str:
    """What `sessionbase mcp --print-config codex` prints, from the installed command."""
    command = Path(sys.executable).with_name("sessionbase")
    assert command.is_file(), f"{command} is not installed (uv sync installs it)"
    printed = subprocess.run(
        [str(command), "mcp", "--print-config", "codex", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return printed.stdout


def test_codex_calls_search_sessions_and_gets_the_earlier_thread(
    codex_binary: Path,
    codex_home: Path,
    run_cli: Cli,
    mock_model_server: Callable[..., MockModelServer],
    codex_home_parent: Path,
    codex_workdir: Path,
) -> None:
    for rollout in CORPUS.glob("*/rollout-*.jsonl"):
        shutil.copy(rollout, codex_home / "sessions" / rollout.name)
    run_cli("backfill", "--no-embed")
    assert EARLIER in {t["id"] for t in run_cli.json("threads")}

    server = mock_model_server(
        [
            [
                [ToolSearch("search past coding sessions", call_id="call_find")],
                [
                    FunctionCall(
                        "search_sessions",
                        {"query": PHRASE, "limit": 3},
                        call_id="call_recall",
                        namespace="mcp__sessionbase",
                    )
                ],
                [Message("We set it to 90 in an env var before.")],
            ]
        ]
    )
    config = printed_codex_config(run_cli.settings.data_dir) + "required = true\n"
    home: CodexHome = make_codex_home(
        server.base_url, parent=codex_home_parent, extra_config=config
    )
    run = run_codex_exec(
        home, "What did we decide about context compaction?", workdir=codex_workdir, timeout=180
    )
    assert run.ok, run.stderr[-3000:]
    server.assert_script_consumed()

    # Codex found the tool through its tool search, under the server's namespace
    found = [i for i in server.model_requests[1].input_items if i["type"] == "tool_search_output"]
    (namespace,) = [t for t in found[0]["tools"] if t.get("name") == "mcp__sessionbase"]
    assert {t["name"] for t in namespace["tools"]} >= {"search_sessions", "read_thread"}

    # what the model was handed
    answer = server.model_requests[2].tool_output("call_recall")
    handed = "\n".join(part["text"] for part in answer)
    assert handed.index(f"1. thread {EARLIER} #") < handed.index("resume:")
    assert f"codex resume {EARLIER}" in handed

    # the same answer in the new rollout, as the function call's output
    lines = run.rollout_lines()
    (call,) = [c for c in response_items(lines, "function_call") if c["call_id"] == "call_recall"]
    assert (call["namespace"], call["name"]) == ("mcp__sessionbase", "search_sessions")
    (output,) = [
        o for o in response_items(lines, "function_call_output") if o["call_id"] == "call_recall"
    ]
    assert f"1. thread {EARLIER} #" in str(output["output"])

    # and in sessionbase's mirror of that rollout
    assert run.thread_id is not None
    run_cli("backfill", "--no-embed", "--codex-home", str(home.path))
    shown = run_cli.json("show", run.thread_id, "--codex-home", str(home.path))
    tools = {m["data"]["tool"]: m for m in shown["messages"] if m["kind"] == "tool"}
    assert set(tools) == {"tool_search_call", "mcp__sessionbase__search_sessions"}
    recalled = tools["mcp__sessionbase__search_sessions"]
    assert recalled["text"].startswith('mcp__sessionbase__search_sessions {"query":"defailt')
    assert f"1. thread {EARLIER} #" in recalled["data"]["output"]

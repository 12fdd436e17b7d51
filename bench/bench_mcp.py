"""MCP tool call latency at 1M messages, beside the same work through the CLI and in the store.

    uv run python bench/bench_mcp.py            # 1M messages (the search bench's store)
    uv run python bench/bench_mcp.py --quick    # 100k messages, fewer calls

For ``search_sessions`` and ``read_thread``, p50 and p99 of:

- a tool call through the official MCP client to a real ``sessionbase mcp`` over stdio (the
  round trip a coding agent waits for), and to ``/mcp`` of a real ``sessionbase serve
  --no-ingest`` (Streamable HTTP);
- the tool's own function in this process (query plus rendering, no transport);
- the store query itself, the floor: ``hybrid.search`` for a search, ``messages_page`` for a
  page of a thread;
- the CLI with ``--json`` (``sessionbase search Q --json``; ``sessionbase show ID --json``,
  which prints the whole thread: the CLI has no pages), one process per call, start included.

The store is ``bench_search.py``'s (generated and mirrored once under ``--work``, then
reused); the queries are its sampled queries. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_search as bs
from _common import Results, child_env, git_version, log, machine_line, sessionbase_cmd

from sessionbase.mcp.tools import TOOLS
from sessionbase.search import hybrid
from sessionbase.store.base import SearchFilter

LIMIT = 10  # search_sessions' default
PAGE = 50  # read_thread's default


def _stats(values: list[float]) -> tuple[float, float]:
    return bs.p50(values), bs.p99(values)


def _row(res: Results, figure: str, ours: list[float], base_name: str, base: list[float]) -> None:
    for label, pick in (("p50", 0), ("p99", 1)):
        a, b = _stats(ours)[pick], _stats(base)[pick]
        res.add(f"{figure} {label}", bs.ms(a), base_name, bs.ms(b), bs.faster(a, b), "(info)", "")


async def _mcp_calls(
    connect: Callable[[], Any], calls: list[tuple[str, dict[str, Any]]], warm: int
) -> tuple[list[float], float]:
    """Round trips of each call through the official client; the first ``warm`` calls are
    not counted. Also returns how long connecting took."""
    began = time.perf_counter()
    async with connect() as client:
        opened = time.perf_counter() - began
        times = []
        for n, (name, args) in enumerate(calls):
            t = time.perf_counter()
            result = await client.call_tool(name, args)
            elapsed = time.perf_counter() - t
            assert not result.is_error, result.content[0].text
            if n >= warm:
                times.append(elapsed)
    return times, opened


def _stdio(ctx: bs.Ctx) -> Callable[[], Any]:
    from mcp import Client, StdioServerParameters

    cmd = sessionbase_cmd()
    params = StdioServerParameters(
        command=cmd[0],
        args=[*cmd[1:], "--data-dir", str(ctx.data), "mcp"],
        env=child_env(ctx.args.work),
    )
    return lambda: Client(params)


def _serve(ctx: bs.Ctx) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [*sessionbase_cmd(), "--data-dir", str(ctx.data), "serve", "--no-ingest",
         "--port", str(port)],
        env=child_env(ctx.args.work), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("serve did not get ready")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(args: list[str], ctx: bs.Ctx) -> float:
    began = time.perf_counter()
    subprocess.run(
        [*sessionbase_cmd(), "--data-dir", str(ctx.data), *args, "--json"],
        env=child_env(ctx.args.work), stdout=subprocess.DEVNULL, check=True,
    )  # fmt: skip
    return time.perf_counter() - began


def _in_process(fn: Callable[[], Any], times: list[float]) -> None:
    began = time.perf_counter()
    fn()
    times.append(time.perf_counter() - began)


def section(ctx: bs.Ctx, res: Results) -> None:
    args = ctx.args
    store = ctx.store
    queries = [q.text for q in ctx.queries[: args.searches]]
    rng = random.Random(f"mcp:{args.seed}")
    big = [
        (row[0], row[1])
        for row in store._db.execute(
            "SELECT thread_id, count(*) AS n FROM messages GROUP BY thread_id"
            " ORDER BY n DESC LIMIT 50"
        )
    ]
    pages = []
    for _ in range(args.pages):
        thread_id, items = rng.choice(big)
        pages.append((thread_id, rng.randrange(0, max(1, items - PAGE))))
    searches = [("search_sessions", {"query": q}) for q in queries]
    reads = [("read_thread", {"thread": t, "from": start}) for t, start in pages]
    warm = min(5, len(queries))
    res.notes.append(
        f"{len(queries)} searches (bench_search's sampled queries, hybrid, limit {LIMIT}),"
        f" {len(pages)} pages of {PAGE} items at random places in the {len(big)} largest"
        f" threads ({min(n for _, n in big):,}–{max(n for _, n in big):,} items);"
        f" the first {warm} of each kind warm up and are not counted"
    )

    log("in process: the store query (floor) and the tool function, interleaved")
    floor_s: list[float] = []
    tool_s: list[float] = []
    floor_r: list[float] = []
    tool_r: list[float] = []
    for q in queries[:warm]:
        hybrid.search(store, q, "hybrid", SearchFilter(), LIMIT)
    search_tool, read_tool = TOOLS["search_sessions"], TOOLS["read_thread"]
    for q in queries[warm:]:
        _in_process(lambda q=q: hybrid.search(store, q, "hybrid", SearchFilter(), LIMIT), floor_s)
        parsed = search_tool.parse({"query": q})
        _in_process(lambda parsed=parsed: search_tool.run(store, parsed), tool_s)
    for thread_id, start in pages[warm:]:
        _in_process(lambda t=thread_id, s=start: store.messages_page(t, s - 1, None, PAGE), floor_r)
        parsed = read_tool.parse({"thread": thread_id, "from": start})
        _in_process(lambda parsed=parsed: read_tool.run(store, parsed), tool_r)

    log("MCP over stdio: sessionbase mcp, official client")
    stdio_s, opened_stdio = anyio.run(_mcp_calls, _stdio(ctx), searches, warm)
    stdio_r, _ = anyio.run(_mcp_calls, _stdio(ctx), reads, warm)

    log("MCP over Streamable HTTP: serve --no-ingest, /mcp")
    from mcp import Client

    proc, url = _serve(ctx)
    try:
        http_s, opened_http = anyio.run(_mcp_calls, lambda: Client(f"{url}/mcp"), searches, warm)
        http_r, _ = anyio.run(_mcp_calls, lambda: Client(f"{url}/mcp"), reads, warm)
    finally:
        proc.terminate()
        proc.wait(timeout=60)

    log("CLI --json, one process per call")
    cli_s = [_cli(["search", q, "--limit", str(LIMIT)], ctx) for q in queries[warm:]]
    cli_r = [_cli(["show", t], ctx) for t, _ in pages[warm : warm + args.cli_pages]]

    _row(res, "search_sessions over MCP stdio", stdio_s, "the store query (hybrid.search)",
         floor_s)  # fmt: skip
    _row(res, "  the same, CLI search --json", cli_s, "the store query (hybrid.search)", floor_s)
    _row(res, "  the same over MCP HTTP (/mcp)", http_s, "the store query (hybrid.search)",
         floor_s)  # fmt: skip
    _row(res, "  the tool function in process", tool_s, "the store query (hybrid.search)",
         floor_s)  # fmt: skip
    _row(res, "read_thread over MCP stdio", stdio_r, "the store query (messages_page, 50)",
         floor_r)  # fmt: skip
    _row(res, "  the whole thread, CLI show --json", cli_r, "the store query (messages_page, 50)",
         floor_r)  # fmt: skip
    _row(res, "  the same over MCP HTTP (/mcp)", http_r, "the store query (messages_page, 50)",
         floor_r)  # fmt: skip
    _row(res, "  the tool function in process", tool_r, "the store query (messages_page, 50)",
         floor_r)  # fmt: skip
    res.notes.append(
        f"connecting (process start, SDK import, initialize): stdio {opened_stdio:.2f} s,"
        f" HTTP {opened_http:.2f} s (the first /mcp request imports the SDK in serve)"
    )
    res.notes.append(
        f"CLI show --json on {len(cli_r)} of the pages' threads: it prints the whole thread"
        " (the CLI has no pages), so its row is an upper bound on the same read"
    )
    res.raw.update(
        search={"stdio": stdio_s, "http": http_s, "cli": cli_s, "tool": tool_s, "floor": floor_s},
        read={"stdio": stdio_r, "http": http_r, "cli": cli_r, "tool": tool_r, "floor": floor_r},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/sessionbase-bench"))
    parser.add_argument("--quick", action="store_true", help="100k messages, fewer calls.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rows", type=int, help="Messages (default 1000000, quick 100000).")
    parser.add_argument("--searches", type=int, help="search_sessions calls (65; quick 25).")
    parser.add_argument("--pages", type=int, help="read_thread calls (205; quick 55).")
    parser.add_argument("--cli-pages", type=int, default=30, help="CLI show calls (30).")
    args = parser.parse_args()
    args.rows = args.rows or (100_000 if args.quick else 1_000_000)
    args.searches = args.searches or (25 if args.quick else 65)
    args.pages = args.pages or (55 if args.quick else 205)
    args.queries = args.searches  # what bench_search.prepare samples
    repo = Path(__file__).resolve().parent.parent
    if args.work.resolve().is_relative_to(repo):
        parser.error("--work must be outside the repository")
    args.work.mkdir(parents=True, exist_ok=True)

    res = Results()
    began = time.perf_counter()
    load_before = os.getloadavg()
    ctx = bs.prepare(args)
    section(ctx, res)
    ctx.store.close()
    print()
    kind = "quick" if args.quick else "full"
    print(f"sessionbase MCP benchmark ({kind}), {time.strftime('%Y-%m-%d')}")
    libraries = f"mcp {package_version('mcp')}, SQLite {sqlite3.sqlite_version}"
    print(machine_line(libraries, git_version()))
    print(
        f"store: {ctx.messages:,} messages, {ctx.threads:,} threads, {ctx.units:,} units; "
        f"load average (1 min) {load_before[0]:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end"
    )
    print()
    print(res.table())
    print()
    for note in [*args.prepare_notes, *res.notes]:
        print(f"- {note}")
    print(f"- total bench time {time.perf_counter() - began:.0f} s; data under {args.work}")


if __name__ == "__main__":
    main()

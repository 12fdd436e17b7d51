"""The CLI end to end on a small built rollout: backfill, threads, show."""

from __future__ import annotations

from pathlib import Path

from tests.builders.codex import Rollout
from tests.conftest import Cli


def test_backfill_then_show(codex_home: Path, run_cli: Cli) -> None:
    r = Rollout()
    turn = r.turn()
    r.context()
    r.user("Fix the flaky websocket test")
    r.reasoning("**Looking at the test**")
    r.shell("pytest -x tests/test_ws.py", "1 failed", exit_code=1)
    r.assistant("The test races the server start; fixed.")
    r.tokens(1200)
    r.end_turn(turn)
    r.write(codex_home)

    run_cli("backfill")
    threads = run_cli.json("threads")
    assert [t["id"] for t in threads] == [r.thread_id]
    assert threads[0]["title"] == "Fix the flaky websocket test"
    assert threads[0]["message_count"] == 2
    shown = run_cli.json("show", r.thread_id)
    kinds = [(m["role"], m["kind"]) for m in shown["messages"]]
    assert kinds == [
        ("user", "message"),
        ("assistant", "reason"),
        ("assistant", "cmd"),
        ("assistant", "message"),
    ]
    cmd = shown["messages"][2]
    assert cmd["text"] == "pytest -x tests/test_ws.py"
    assert cmd["data"]["exit_code"] == 1
    assert shown["thread"]["tokens"]["total"] == 1200

"""The real Codex CLI 0.169.0 writes sessions; sessionbase mirrors them, by backfill and live.

Each scenario (tests/support/codex_scenarios.py) carries the facts its session must contain:
prompts, assistant texts, reasoning, commands with exit codes, file changes and failed turns.
Here they are asserted on the mirror's rows, first after `sessionbase backfill`, then on a
`sessionbase serve` that was already watching the empty Codex home while Codex ran; the live
rows must equal the backfilled ones exactly. Every session is mirrored on SQLite and on
PostgreSQL (a backfill into each, and two servers watching while Codex runs, one on each): the
rows of both are the same, and Codex runs each scenario once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from sessionbase.cli import cli
from sessionbase.store import open_store
from tests.support.codex_cli import CodexHome
from tests.support.codex_scenarios import SCENARIOS, Scenario, ScenarioResult, run_scenario
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration

# How long a live mirror may take to show the session once Codex is done: generous for a
# loaded machine (a passing run does not wait for it), and far below the rescan interval, so
# only file events can bring the rows in time.
LIVE_PATIENCE = 60.0
LIVE_RESCAN_SECONDS = 600


def _cli(data_dir: Path, home: Path, *args: str, database: str = "") -> Any:
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(data_dir), "--codex-home", str(home),
         *(["--database", database] if database else []), *args, "--json"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return orjson.loads(result.output)


def _rows(database: Path | str, thread_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    store = open_store(database, readonly=True)
    try:
        thread = store.thread(thread_id)
        assert thread is not None, f"thread {thread_id} not mirrored"
        return thread, store.messages(thread_id)
    finally:
        store.close()


def assert_mirrors(scenario: Scenario, thread: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """The scenario's facts, as the mirror must show them."""
    assert thread["source"] == "exec"
    assert thread["cli_version"] == "0.169.0"
    assert thread["title"] == " ".join(scenario.prompts[0].split())[:200]
    users = [r["text"].strip() for r in rows if r["role"] == "user" and r["kind"] == "message"]
    assert users == [p.strip() for p in scenario.prompts]
    answers = [
        r["text"].strip() for r in rows if r["role"] == "assistant" and r["kind"] == "message"
    ]
    assert answers == [t.strip() for t in scenario.agent_messages]
    assert thread["message_count"] == len(users) + len(answers)
    reasons = {r["text"].strip() for r in rows if r["kind"] == "reason"}
    for turn in scenario.turns:
        for summary in turn.reasoning_summaries:
            assert summary.strip() in reasons
    by_call = {r["data"].get("call_id"): r for r in rows}
    for command in scenario.commands:
        row = by_call[command.call_id]
        assert row["kind"] == "cmd"
        assert command.cmd in row["text"]
        assert row["data"]["exit_code"] == command.exit_code
        assert command.output_contains in row["data"].get("output", "")
        assert row["data"].get("output_chars", 0) >= command.min_output_chars
    for change in scenario.file_changes:
        row = by_call[change.call_id]
        assert row["kind"] == "patch"
        assert any(f.endswith(change.path) for f in row["data"]["files"])
    errors = [r["text"] for r in rows if r["kind"] == "error"]
    expected_errors = [t.error_contains for t in scenario.turns if t.error_contains]
    assert len(errors) == len(expected_errors)
    for got, want in zip(errors, expected_errors, strict=True):
        assert want in got
    assert [r["idx"] for r in rows] == list(range(len(rows)))
    assert all(r["turn_id"] for r in rows)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_backfill_mirrors_real_codex_session(
    scenario: Scenario,
    scenario_runner: Callable[[Scenario], ScenarioResult],
    tmp_path: Path,
    pg_url: str,
) -> None:
    result = scenario_runner(scenario)
    data = tmp_path / "data"
    report = _cli(data, result.codex_home.path, "backfill")
    assert report["errors"] == []
    assert report["skipped_lines"] == {}
    thread, rows = _rows(data / "sessionbase.db", result.thread_id)
    assert_mirrors(scenario, thread, rows)
    again = _cli(data, result.codex_home.path, "backfill")
    assert again["rows_written"] == 0
    assert _rows(data / "sessionbase.db", result.thread_id) == (thread, rows)

    shared = _cli(tmp_path / "pg", result.codex_home.path, "backfill", database=pg_url)
    assert shared["errors"] == []
    assert _comparable(_rows(pg_url, result.thread_id)) == _comparable((thread, rows))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_live_watch_mirrors_real_codex_session(
    scenario: Scenario, codex_home_parent: Path, codex_workdir: Path, tmp_path: Path, pg_url: str
) -> None:
    live_data = tmp_path / "live"
    servers: list[ServerProcess] = []

    def watch(home: CodexHome) -> None:
        slow = {"SESSIONBASE_RESCAN_INTERVAL": str(LIVE_RESCAN_SECONDS)}
        servers.append(ServerProcess(live_data, home.path, env=slow).start())
        on_pg = ServerProcess(tmp_path / "live-pg", home.path, env=slow,
                              extra=("--database", pg_url))  # fmt: skip
        servers.append(on_pg.start())

    try:
        result = run_scenario(
            scenario, codex_workdir, codex_home_parent=codex_home_parent, before_first_turn=watch
        )
        clean = tmp_path / "clean"
        _cli(clean, result.codex_home.path, "backfill")
        expected = _rows(clean / "sessionbase.db", result.thread_id)
        for database, server in ((live_data / "sessionbase.db", servers[0]),
                                 (pg_url, servers[1])):  # fmt: skip
            deadline = time.monotonic() + LIVE_PATIENCE
            while True:
                try:
                    got = _rows(database, result.thread_id)
                except AssertionError:
                    got = None
                if got is not None and _comparable(got) == _comparable(expected):
                    break
                assert time.monotonic() < deadline, f"live mirror differs:\n{server.log()}"
                time.sleep(0.05)
            assert_mirrors(scenario, *got)
    finally:
        for server in servers:
            server.stop()


def _comparable(rows: tuple[dict[str, Any], list[dict[str, Any]]]) -> Any:
    thread, messages = rows
    return {k: v for k, v in thread.items() if k != "machine"}, messages

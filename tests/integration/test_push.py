"""A machine away from its shared database keeps working on the local SQLite mirror and says
so; ``sessionbase push`` brings the database up to date once it is back, without
duplicates, carrying the user decisions made meanwhile."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from sessionbase.cli import cli
from sessionbase.store import open_store
from sessionbase.store.base import UserChange
from tests.builders.codex import Rollout
from tests.support.server import free_port

pytestmark = pytest.mark.integration


def test_work_offline_then_push_without_duplicates(tmp_path: Path, pg_url: str) -> None:
    home = tmp_path / "codex-home"
    rollout = Rollout(cwd="/work/offline")
    rollout.user("written while the database was away").assistant("noted")
    rollout.write(home)
    data = tmp_path / "data"
    away = f"postgresql://postgres@127.0.0.1:{free_port()}/sessionbase"

    def run(database: str, *args: str) -> Result:
        result = CliRunner().invoke(
            cli, ["--database", database, "--data-dir", str(data), "--codex-home", str(home),
                  *args], env={"SESSIONBASE_MACHINE": "laptop"},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        return result

    offline = " ".join(run(away, "backfill", "--no-embed").output.split())
    assert "does not answer" in offline
    assert "working on the local mirror" in offline
    listed = run(away, "threads", "--json")
    assert rollout.thread_id in listed.output
    with open_store(data / "sessionbase.db") as local:  # a rename made while offline
        local.apply_user_changes(
            [UserChange("thread", rollout.thread_id, {"title": "Renamed offline"})], None, None
        )

    first = orjson.loads(run(pg_url, "push", "--json").stdout)
    assert first["decisions_pushed"] == 1
    again = orjson.loads(run(pg_url, "push", "--json").stdout)
    assert again["decisions_pushed"] == 0
    assert again["rows_written"] == 0
    with open_store(pg_url, readonly=True) as shared:
        thread = shared.thread(rollout.thread_id)
        assert thread is not None
        assert thread["title"] == "Renamed offline"
        assert thread["machine"] == "laptop"
        assert [m["text"] for m in shared.messages(rollout.thread_id)] == [
            "written while the database was away",
            "noted",
        ]


def test_a_decision_cleared_offline_is_cleared_by_push(tmp_path: Path, pg_url: str) -> None:
    """Pinned and renamed while offline, pushed; unpinned and the rename undone while offline
    again: the next push clears both in the shared database, and a later one carries nothing.
    A decision the shared database took after the local one was cleared stays."""
    home = tmp_path / "codex-home"
    rollout = Rollout(cwd="/work/offline")
    rollout.user("a question for later").assistant("an answer")
    rollout.write(home)
    other = Rollout(cwd="/work/offline")
    other.user("another question").assistant("another answer")
    other.write(home)
    data = tmp_path / "data"
    away = f"postgresql://postgres@127.0.0.1:{free_port()}/sessionbase"

    def run(*args: str, database: str = pg_url) -> Result:
        result = CliRunner().invoke(
            cli, ["--database", database, "--data-dir", str(data), "--codex-home", str(home),
                  *args], env={"SESSIONBASE_MACHINE": "laptop"},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return result

    def decide(*changes: UserChange) -> None:  # on the local mirror, as while offline
        with open_store(data / "sessionbase.db", machine="laptop") as local:
            local.apply_user_changes(list(changes), None, None)

    def shared_state(thread_id: str) -> tuple[str | None, bool]:
        with open_store(pg_url, readonly=True) as shared:
            thread = shared.thread(thread_id)
            assert thread is not None
            return thread["title"], bool(thread["pinned"])

    run("backfill", "--no-embed", database=away)  # the local mirror, made while offline
    decide(
        UserChange("thread", rollout.thread_id, {"title": "Mine", "pinned": True}),
        UserChange("thread", other.thread_id, {"pinned": True}),
    )
    assert orjson.loads(run("push", "--json").stdout)["decisions_pushed"] == 3
    assert shared_state(rollout.thread_id) == ("Mine", True)

    decide(
        UserChange("thread", rollout.thread_id, {"title": None, "pinned": None}),
        UserChange("thread", other.thread_id, {"pinned": None}),
    )
    with open_store(pg_url, machine="desktop") as shared:  # pinned there again, later
        shared.apply_user_changes(
            [UserChange("thread", other.thread_id, {"pinned": True})], None, None
        )
    assert orjson.loads(run("push", "--json").stdout)["decisions_pushed"] == 2
    assert shared_state(rollout.thread_id) == ("a question for later", False)
    assert shared_state(other.thread_id)[1] is True
    assert orjson.loads(run("push", "--json").stdout)["decisions_pushed"] == 0

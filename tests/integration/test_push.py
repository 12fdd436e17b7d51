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

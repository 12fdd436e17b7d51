"""Two machines, one PostgreSQL database: laptop and desktop each back up their own Codex home
under their own machine name. Threads carry their machine; a repository cloned on both is one
project with a working dir per machine; listings and search see both, or one machine when
asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from sessionbase.cli import cli
from tests.builders.codex import Rollout

pytestmark = pytest.mark.integration


def run(database: str, data: Path, home: Path, machine: str, *args: str) -> Any:
    result = CliRunner().invoke(
        cli,
        ["--database", database, "--data-dir", str(data), "--codex-home", str(home), *args],
        env={"SESSIONBASE_MACHINE": machine},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return orjson.loads(result.output) if "--json" in args else result.output


def test_two_machines_share_projects_threads_and_search(tmp_path: Path, pg_url: str) -> None:
    machines = {
        "laptop": [("/home/me/src/app", "git@github.com:Acme/app.git", "laptop wombat")],
        "desktop": [("/work/app", "https://github.com/acme/app", "desktop wombat"),
                    ("/tmp/scratch", None, "scratch wombat")],
    }  # fmt: skip
    ids: dict[str, list[str]] = {}
    for machine, threads in machines.items():
        home = tmp_path / f"{machine}-codex"
        for cwd, repo, text in threads:
            meta = {"git": {"repository_url": repo, "branch": "main"}} if repo else None
            rollout = Rollout(cwd=cwd, meta=meta)
            rollout.user(text).assistant("ok")
            rollout.write(home)
            ids.setdefault(machine, []).append(rollout.thread_id)
        run(pg_url, tmp_path / f"data-{machine}", home, machine, "backfill", "--no-embed")

    def cli_json(*args: str) -> Any:
        return run(pg_url, tmp_path / "data-laptop", tmp_path / "laptop-codex", "laptop", *args)

    projects = {p["name"]: p for p in cli_json("projects", "--json")}
    assert set(projects) == {"app", "scratch"}  # one project for the repository
    app = projects["app"]
    assert app["thread_count"] == 2
    assert app["working_dirs"] == {"laptop": "/home/me/src/app", "desktop": "/work/app"}
    threads = cli_json("threads", "--json")
    assert {t["machine"] for t in threads} == {"laptop", "desktop"}
    desktop = cli_json("threads", "--machine", "desktop", "--json")
    assert sorted(t["id"] for t in desktop) == sorted(ids["desktop"])
    hits = cli_json("search", "wombat", "--mode", "text", "--json")
    assert {h["thread_id"] for h in hits} == {*ids["laptop"], *ids["desktop"]}
    only = cli_json("search", "wombat", "--mode", "text", "--machine", "laptop", "--json")
    assert {h["thread_id"] for h in only} == set(ids["laptop"])

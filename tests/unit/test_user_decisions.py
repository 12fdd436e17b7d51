"""User decisions outlive the database: a copy beside it comes back when it is rebuilt.

Renames, pins, archive flags and projects are the one thing the rollouts cannot rebuild. The
database emptied (0 bytes) or deleted, `backfill` rebuilds it and they come back; a damaged
header is one line that says what to do, never a rebuild behind the user's back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from sessionbase.cli import cli
from sessionbase.config import Settings
from tests.conftest import Cli
from tests.unit.test_functions import Api, Corpus, build_corpus


@pytest.fixture
def corpus(codex_home: Path, tmp_path: Path, run_cli: Cli) -> Corpus:
    built = build_corpus(codex_home, tmp_path / "work")
    run_cli("backfill", "--no-embed")
    return built


def decide(settings: Settings, corpus: Corpus) -> dict[str, Any]:
    """Make one decision of every kind through the API; what the API shows afterwards."""
    a, f, v = corpus.a.thread_id, corpus.f.thread_id, corpus.v.thread_id
    api = Api(settings)
    try:
        api.mutation("threads:rename", id=a, title="Parser fix, mine")
        api.mutation("threads:setPinned", id=a, pinned=True)
        api.mutation("threads:setArchived", id=f, archived=True)
        made = api.mutation("projects:save", name="Side project", workingDir="/srv/side")
        derived = {p["workingDir"]: p["id"] for p in api.query("projects:list")}
        api.mutation("projects:save", id=derived[str(corpus.proj2)], name="Second")
        api.mutation("projects:remove", id=derived[str(corpus.proj1)])
        return seen(api, corpus) | {"made": made, "v": v}
    finally:
        api.close()


def seen(api: Api, corpus: Corpus) -> dict[str, Any]:
    a = api.query("threads:get", id=corpus.a.thread_id)
    f = api.query("threads:get", id=corpus.f.thread_id)
    return {
        "a": (a["title"], a["titleSource"], a["pinned"]),
        "f archived": f["archived"],
        "projects": sorted((p["name"], p["workingDir"]) for p in api.query("projects:list")),
    }


def shown(settings: Settings, corpus: Corpus) -> dict[str, Any]:
    api = Api(settings)
    try:
        return seen(api, corpus)
    finally:
        api.close()


@pytest.mark.parametrize("loss", ["emptied", "deleted"])
def test_a_lost_database_gets_the_users_decisions_back_when_rebuilt(
    settings: Settings, corpus: Corpus, run_cli: Cli, loss: str
) -> None:
    before = decide(settings, corpus)
    assert before["a"] == ("Parser fix, mine", "user", True)
    assert ("Second", str(corpus.proj2)) in before["projects"]
    assert ("Side project", "/srv/side") in before["projects"]
    assert all(wd != str(corpus.proj1) for _, wd in before["projects"])

    db = settings.database_path
    if loss == "emptied":
        db.write_bytes(b"")
        refused = CliRunner().invoke(
            cli, ["--data-dir", str(settings.data_dir), "threads"], catch_exceptions=False
        )
        assert refused.exit_code == 1
        assert refused.output.count("\n") == 1, refused.output
        assert "is empty: run `sessionbase backfill`" in refused.output
    else:
        db.unlink()

    run_cli("backfill", "--no-embed")
    after = shown(settings, corpus)
    before.pop("made"), before.pop("v")
    assert after == before


def test_the_decisions_file_follows_every_change(settings: Settings, corpus: Corpus) -> None:
    decide(settings, corpus)
    kept = settings.data_dir / "sessionbase-decisions.json"
    saved = orjson.loads(kept.read_bytes())
    a = next(d for d in saved["decisions"] if d["id"] == corpus.a.thread_id)
    assert a["values"] == {"title": "Parser fix, mine", "pinned": True}
    api = Api(settings)
    try:
        api.mutation("threads:rename", id=corpus.a.thread_id, title=None)
    finally:
        api.close()
    saved = orjson.loads(kept.read_bytes())
    a = next(d for d in saved["decisions"] if d["id"] == corpus.a.thread_id)
    assert a["values"] == {"pinned": True}


def test_a_damaged_header_is_one_line_that_says_what_to_do(
    settings: Settings, corpus: Corpus
) -> None:
    decide(settings, corpus)
    db = settings.database_path
    size = db.stat().st_size
    with open(db, "r+b") as fh:
        fh.write(b"\x00garbage" * 12)
    for command in (["threads"], ["show", corpus.a.thread_id], ["backfill", "--no-embed"]):
        result = CliRunner().invoke(
            cli,
            ["--data-dir", str(settings.data_dir), "--codex-home", str(corpus.codex_home),
             *command],
            catch_exceptions=False,
        )  # fmt: skip
        assert result.exit_code == 1, result.output
        assert result.output.count("\n") == 1, result.output
        assert "not an SQLite database, or its header is damaged" in result.output
        assert "sessionbase doctor --repair" in result.output
    assert db.stat().st_size == size  # left as it was, for the repair to set aside

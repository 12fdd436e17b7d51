"""`sessionbase doctor` on real damaged files: it says what is wrong and what to run, and
`--repair` rebuilds a working mirror with the user's decisions, setting the damage aside.

Damage is done to the real files: random bytes over a page SQLite says holds messages, in
the middle of the database; over the header; over the user-decisions file; over a page of
the vector store; over the saved ANN index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from sessionbase.cli import cli
from sessionbase.config import Settings
from sessionbase.search.embedder import LocalEmbedder
from sessionbase.search.transformer import TransformerEmbedder
from sessionbase.store import open_vectors
from tests.conftest import Cli
from tests.support.damage import middle_page_of, overwrite_pages, table_pages
from tests.unit.test_functions import Corpus, build_corpus
from tests.unit.test_user_decisions import decide, shown


@pytest.fixture
def corpus(codex_home: Path, tmp_path: Path, run_cli: Cli) -> Corpus:
    built = build_corpus(codex_home, tmp_path / "work")
    run_cli("backfill")
    return built


def sessionbase(settings: Settings, *args: str) -> Result:
    """The CLI in-process: a traceback would fail the test (exceptions are not caught)."""
    where = ["--data-dir", str(settings.data_dir)]
    for home in settings.codex_homes:
        where += ["--codex-home", str(home)]
    return CliRunner().invoke(cli, [*where, *args], catch_exceptions=False)


def findings(settings: Settings) -> dict[str, Any]:
    result = sessionbase(settings, "doctor", "--json")
    return {f["check"]: f for f in orjson.loads(result.stdout)["findings"]}


def test_a_sound_data_dir_is_all_ok(settings: Settings, corpus: Corpus) -> None:
    result = sessionbase(settings, "doctor")
    assert result.exit_code == 0, result.output
    assert "PROBLEM" not in result.output, result.output
    assert "WARNING" not in result.output, result.output
    assert "schema current, every page checked, 5 threads" in result.output
    assert {f["state"] for f in findings(settings).values()} == {"ok"}


@pytest.mark.parametrize("decisions_file", ["kept", "lost too"])
def test_a_page_damaged_mid_file_is_found_and_repair_rebuilds_with_the_decisions(
    settings: Settings, corpus: Corpus, decisions_file: str
) -> None:
    before = decide(settings, corpus)
    before.pop("made"), before.pop("v")
    db = settings.database_path
    kept = settings.data_dir / "sessionbase-decisions.json"
    if decisions_file == "lost too":
        kept.unlink()  # then the repair reads them from the damaged database
    overwrite_pages(db, [middle_page_of(db, "messages")])

    checked = sessionbase(settings, "doctor")
    assert checked.exit_code == 1, checked.output
    assert "database        PROBLEM" in checked.output
    assert "is damaged" in checked.output
    assert "run: sessionbase doctor --repair" in checked.output
    # a read that reaches the damaged page says so in one line, never a traceback
    reads = [sessionbase(settings, "show", t) for t in (corpus.a.thread_id, corpus.v.thread_id,
             corpus.f.thread_id, corpus.s.thread_id, corpus.x.thread_id)]  # fmt: skip
    failed = [r for r in reads if r.exit_code != 0]
    assert failed, "no read reached the damaged page"
    for r in failed:
        assert r.output.count("\n") == 1, r.output
        assert "is damaged" in r.output
        assert "sessionbase doctor --repair" in r.output

    repaired = sessionbase(settings, "doctor", "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "repaired: set the damaged database aside as" in repaired.output
    assert "repaired: rebuilt the mirror from the rollouts: 5 threads" in repaired.output
    aside = list(settings.data_dir.glob("sessionbase.db.damaged-*"))
    assert [p.name.endswith("-wal") or p.name.endswith("-shm") for p in aside].count(False) == 1
    assert shown(settings, corpus) == before
    assert {f["state"] for f in findings(settings).values()} == {"ok"}
    for thread in (corpus.a, corpus.v, corpus.f, corpus.s, corpus.x):
        assert sessionbase(settings, "show", thread.thread_id).exit_code == 0


def test_a_damaged_header_is_repaired_from_the_json_report(
    settings: Settings, corpus: Corpus
) -> None:
    before = decide(settings, corpus)
    before.pop("made"), before.pop("v")
    with open(settings.database_path, "r+b") as fh:
        fh.write(b"\xff" * 100)
    found = findings(settings)
    assert found["database"]["state"] == "problem"
    assert found["database"]["repair"] == "rebuild"
    assert "header is damaged" in found["database"]["detail"]
    assert found["user decisions"]["state"] == "ok"  # the copy a rebuild restores from
    result = sessionbase(settings, "doctor", "--repair", "--json")
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["ok"] is True
    assert any(f["check"] == "database" and f["state"] == "problem" for f in report["before"])
    assert any("set the damaged database aside" in line for line in report["repaired"])
    assert shown(settings, corpus) == before


def test_an_unreadable_decisions_file_is_kept_aside_and_written_again(
    settings: Settings, corpus: Corpus
) -> None:
    decide(settings, corpus)
    kept = settings.data_dir / "sessionbase-decisions.json"
    kept.write_bytes(b"{ half a file")
    found = findings(settings)["user decisions"]
    assert (found["state"], found["repair"]) == ("problem", "save decisions")
    assert "not a readable user-decisions file" in found["detail"]
    assert sessionbase(settings, "doctor", "--repair").exit_code == 0
    assert [p.read_bytes() for p in settings.data_dir.glob(f"{kept.name}.unreadable-*")] == [
        b"{ half a file"
    ]
    saved = orjson.loads(kept.read_bytes())
    assert {d["id"] for d in saved["decisions"]} >= {corpus.a.thread_id, corpus.f.thread_id}
    assert findings(settings)["user decisions"]["state"] == "ok"


def _vectors(settings: Settings, model: str) -> list[tuple[int, bytes]]:
    vectors = open_vectors(str(settings.data_dir), model)
    try:
        return [(n, m.tobytes()) for labels, m in vectors.batches() for n in labels]
    finally:
        vectors.close()


def test_damaged_refined_vectors_are_set_aside_and_refined_again(
    settings: Settings, corpus: Corpus
) -> None:
    """The transformer's vectors are checked too; only they are set aside (the static
    model's stay as they were) and every unit is refined again."""
    static = settings.data_dir / f"vectors-{LocalEmbedder().name}.db"
    refined = settings.data_dir / f"vectors-{TransformerEmbedder().name}.db"
    count = findings(settings)["refined vectors"]["detail"]
    kept = _vectors(settings, LocalEmbedder().name)
    overwrite_pages(refined, [2])
    found = findings(settings)["refined vectors"]
    assert (found["state"], found["repair"]) == ("problem", "set aside vectors")
    result = sessionbase(settings, "doctor", "--repair")
    assert result.exit_code == 0, result.output
    assert f"set the damaged vectors aside as {refined}.damaged-" in result.output
    assert static.exists()
    assert _vectors(settings, LocalEmbedder().name) == kept
    after = findings(settings)["refined vectors"]
    assert (after["state"], after["detail"]) == ("ok", count)


def test_damaged_vectors_and_index_are_rebuilt(settings: Settings, corpus: Corpus) -> None:
    model = LocalEmbedder().name  # the static model's: the one every unit has
    vectors = settings.data_dir / f"vectors-{model}.db"
    ann = settings.data_dir / f"ann-{model}.usearch"
    count = findings(settings)["vectors"]["detail"]
    overwrite_pages(vectors, [2])
    ann.write_bytes(b"not an index" * 100)
    found = findings(settings)
    assert (found["vectors"]["state"], found["vectors"]["repair"]) == (
        "problem",
        "set aside vectors",
    )
    result = sessionbase(settings, "doctor", "--repair")
    assert result.exit_code == 0, result.output
    assert "repaired: set the damaged vectors aside as" in result.output
    after = findings(settings)
    assert after["vectors"] == {**after["vectors"], "state": "ok", "detail": count}
    assert after["semantic index"]["state"] == "ok"
    assert list(settings.data_dir.glob("vectors-*.db.damaged-*"))


def test_a_search_that_meets_damaged_vectors_says_so_in_one_line(
    settings: Settings, corpus: Corpus
) -> None:
    vectors = next(settings.data_dir.glob("vectors-*.db"))
    overwrite_pages(vectors, table_pages(vectors, "vectors"))
    result = sessionbase(settings, "search", "the parser", "--mode", "semantic")
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    assert f"the database {vectors} is damaged" in result.output
    assert "sessionbase doctor --repair" in result.output

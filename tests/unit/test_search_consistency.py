"""The full-text indexes always match the rows they cover, whatever ingest went through.

After each scenario, for every probe word, the set of rows the FTS index returns must equal a
brute-force scan of the rows (a case- and accent-insensitive word match), for messages
(``message_search`` against ``messages.text``) and titles (``thread_search`` against
``threads.title``). The index must also agree with its rows: FTS5's own ``integrity-check``
(against the content views) on SQLite; on PostgreSQL, each row's stored ``tsvector`` must be the
one its text gives now. Every scenario runs on both backends.

Scenarios: a plain backfill; an ingest that dies mid-pass with small batches, then resumes after
more lines were appended; a thread rebuilt from a truncated file (removed messages must leave
no stale hits); a user rename through ``threads:rename`` (the new title is found, the old one
not, and a later re-ingest of the thread keeps it that way).
"""

from __future__ import annotations

import random
import re
import shutil
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sessionbase.config import Settings
from sessionbase.ingest.mirror import Mirror, SyncReport
from sessionbase.ingest.tailer import FileReport
from sessionbase.store import open_store, sqlite as sqlite_store
from sessionbase.store._pg_fts import tsquery as pg_tsquery, tsvector as pg_tsvector
from sessionbase.store._sqlite_fts import fts5_match
from sessionbase.store.base import IngestBatch, SearchFilter, SourceRow
from sessionbase.store.rows import MessageRow
from sessionbase.store.textquery import parse_query
from sessionbase.store.tokens import parts
from tests.builders.codex import Rollout
from tests.conftest import Cli
from tests.unit.test_functions import Api

VOCAB = [
    "quokka", "wombat", "numbat", "platypus", "echidna", "dingo", "kookaburra", "cassowary",
    "wallaby", "possum", "koala", "galah", "dugong", "bilby", "quoll", "parser", "socket",
    "retry", "timeout", "cache", "schema", "deploy", "rollback", "café", "naïve", "résumé",
    "Straße", "HTTP", "json",
]  # fmt: skip
ONLY_APPENDED = "thylacine"  # appears only in lines appended after a crash
ONLY_REMOVED = "bandicoot"  # appears only in messages a truncation removes
ONLY_REWRITTEN = "pademelon"  # appears only in the rewritten ending
ABSENT = ["kangaroo", "quokk", "okka", "bat"]  # none is a word of any row
SEPARATORS = [" ", " ", " ", " ", "_", "-", ".", "/", ", ", ". ", " --", "::", "(", ") ", "'"]


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def words_of(text: str) -> set[str]:
    """The words of a text for the brute-force side: letters and digits, split on the rest."""
    return set(re.findall(r"[^\W_]+", _fold(text)))


PROBES = sorted({_fold(w) for w in VOCAB} | {ONLY_APPENDED, ONLY_REMOVED, ONLY_REWRITTEN})


def sentence(rng: random.Random, extra: str | None = None) -> str:
    picked = [rng.choice(VOCAB) for _ in range(rng.randint(2, 10))]
    if extra:
        picked.insert(rng.randint(0, len(picked)), extra)
    styled = [w.upper() if rng.random() < 0.1 else w.capitalize() if rng.random() < 0.2 else w
              for w in picked]  # fmt: skip
    out = styled[0]
    for word in styled[1:]:
        out += rng.choice(SEPARATORS) + word
    return out + rng.choice(["", ".", "?", "!", "…"])


def add_turns(r: Rollout, rng: random.Random, n: int, extra: str | None = None) -> None:
    for _ in range(n):
        turn = r.turn()
        r.context(r.cwd)
        r.user(sentence(rng, extra))
        r.reasoning(sentence(rng, extra))
        a, b = rng.choice(VOCAB), rng.choice(VOCAB)
        r.shell(f"grep -rn {a} src/{b}.py", f"{sentence(rng)}\n", exit_code=rng.randint(0, 1))
        r.apply_patch(f"src/{_fold(a)}_{_fold(b)}.py", f"+{sentence(rng)}")
        r.assistant(sentence(rng, extra))
        r.end_turn(turn)


def conversations(rng: random.Random, count: int, turns: int) -> list[Rollout]:
    out = []
    for _ in range(count):
        r = Rollout(cwd=f"/w/{rng.choice(['alpha', 'beta'])}")
        add_turns(r, rng, turns)
        out.append(r)
    return out


def append_lines(path: Path, lines: list[bytes]) -> None:
    with path.open("ab") as fh:
        fh.write(b"".join(line + b"\n" for line in lines))


def sync(settings: Settings) -> SyncReport:
    with Mirror(settings) as mirror:
        return mirror.sync()


@pytest.fixture
def settings(backend_settings: Settings) -> Settings:
    """Every scenario of this module runs on SQLite and on PostgreSQL."""
    return backend_settings


# ------------------------------------------------------------------ the check


Database = Path | str  # a SQLite file, or a PostgreSQL URL


def _is_postgres(database: Database) -> bool:
    return str(database).startswith("postgresql://")


def _connect(database: Database) -> sqlite3.Connection:
    db = sqlite3.connect(database)
    db.create_function("sb_parts", 1, parts, deterministic=True)
    return db


def _select(database: Database, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of a plain SELECT (written in SQL both engines speak)."""
    if _is_postgres(database):
        with psycopg.connect(str(database)) as pg:
            return pg.execute(sql.replace("?", "%s"), args).fetchall()
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


@dataclass
class Mismatch:
    what: str
    probe: str
    index_only: set[object]
    rows_only: set[object]


def mismatches(database: Database, probes: list[str]) -> list[Mismatch]:
    """Every probe whose FTS hits differ from the brute-force scan (empty when consistent).
    Rows are named by rowid on SQLite, by (thread id, idx) and thread id on PostgreSQL."""
    if _is_postgres(database):
        return _pg_mismatches(str(database), probes)
    db = _connect(database)
    try:
        messages = db.execute("SELECT rowid, thread_id, idx, text FROM messages").fetchall()
        titles = db.execute("SELECT rowid, id, title FROM threads").fetchall()
        message_words = {rowid: words_of(text) for rowid, _, _, text in messages}
        title_words = {rowid: words_of(title or "") for rowid, _, title in titles}
        out = []
        for probe in probes:
            query = parse_query(probe, prefix_last=False)
            match = fts5_match(query) if query is not None else None
            assert match is not None, probe
            for what, table, words in (
                ("messages", "message_search", message_words),
                ("titles", "thread_search", title_words),
            ):
                indexed = {
                    r[0] for r in db.execute(f"SELECT rowid FROM {table} WHERE {table} MATCH ?",
                                             (match,))
                }  # fmt: skip
                expected = {rowid for rowid, ws in words.items() if probe in ws}
                if indexed != expected:
                    out.append(Mismatch(what, probe, indexed - expected, expected - indexed))
        return out
    finally:
        db.close()


def _pg_mismatches(url: str, probes: list[str]) -> list[Mismatch]:
    with psycopg.connect(url) as db:
        messages = db.execute("SELECT thread_id, idx, text FROM messages").fetchall()
        titles = db.execute("SELECT id, title FROM threads").fetchall()
        words: dict[str, dict[object, set[str]]] = {
            "messages": {(tid, idx): words_of(text) for tid, idx, text in messages},
            "titles": {tid: words_of(title or "") for tid, title in titles},
        }
        out = []
        for probe in probes:
            query = parse_query(probe, prefix_last=False)
            match = pg_tsquery(query) if query is not None else None
            assert match is not None, probe
            indexed: dict[str, set[object]] = {
                "messages": {
                    (r[0], r[1])
                    for r in db.execute(
                        "SELECT thread_id, idx FROM messages WHERE search @@ %s::tsquery",
                        (match,),
                    )
                },
                "titles": {
                    r[0]
                    for r in db.execute(
                        "SELECT id FROM threads WHERE title_search @@ %s::tsquery", (match,)
                    )
                },
            }
            for what in ("messages", "titles"):
                expected = {key for key, ws in words[what].items() if probe in ws}
                if indexed[what] != expected:
                    only = indexed[what] - expected, expected - indexed[what]
                    out.append(Mismatch(what, probe, *only))
        return out


def integrity_problems(database: Database) -> list[str]:
    """Where the index disagrees with its rows, per index; empty if sound."""
    if _is_postgres(database):
        return _pg_integrity_problems(str(database))
    db = _connect(database)
    problems = []
    try:
        for table in ("message_search", "thread_search"):
            try:
                db.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)")
            except sqlite3.DatabaseError as exc:
                problems.append(f"{table}: {exc}")
    finally:
        db.close()
    return problems


def _pg_integrity_problems(url: str) -> list[str]:
    """Rows whose stored ``tsvector`` is not the one their text gives now (PostgreSQL's own
    text form of both, so token order and duplicates do not count)."""
    problems = []
    with psycopg.connect(url) as db:
        for what, sql in (
            ("messages", "SELECT thread_id || '/' || idx, text, search::text FROM messages"),
            ("titles", "SELECT id, title, title_search::text FROM threads"),
        ):
            rows = db.execute(sql).fetchall()
            rebuilt = db.execute(
                "SELECT v::tsvector::text FROM unnest(%s::text[]) WITH ORDINALITY AS u(v, n)"
                " ORDER BY n",
                ([pg_tsvector(text or "") for _, text, _ in rows],),
            ).fetchall()
            problems += [
                f"{what} {key}: indexed as {stored!r}, its text gives {fresh!r}"
                for (key, _, stored), (fresh,) in zip(rows, rebuilt, strict=True)
                if stored != fresh
            ]
    return problems


def store_hits(database: Database, probe: str) -> set[tuple[str, int]]:
    """(thread id, idx) of the messages ``search_messages`` returns for a probe word."""
    store = open_store(database, readonly=True)
    try:
        query = parse_query(probe, prefix_last=False)
        assert query is not None
        rows = store.search_messages(query, SearchFilter(include_subagents=True), 100_000)
        return {(r["thread_id"], r["idx"]) for r in rows}
    finally:
        store.close()


def brute_hits(database: Database, probe: str) -> set[tuple[str, int]]:
    rows = _select(database, "SELECT thread_id, idx, text FROM messages")
    return {(t, i) for t, i, text in rows if probe in words_of(text)}


def assert_consistent(database: Database, probes: list[str] = PROBES) -> None:
    assert integrity_problems(database) == []
    found = mismatches(database, [*probes, *ABSENT])
    assert found == [], found[:3]
    for probe in probes[:5]:
        assert store_hits(database, probe) == brute_hits(database, probe), probe


def message_count(database: Database) -> int:
    return int(_select(database, "SELECT count(*) FROM messages")[0][0])


# ------------------------------------------------------------------ the check can fail


def test_the_checks_catch_a_stale_index(
    tmp_path: Path, codex_home: Path, settings: Settings, run_cli: Cli
) -> None:
    """Rows changed behind the index's back: both checks must notice."""
    for r in conversations(random.Random(7), 2, 2):
        r.write(codex_home)
    run_cli("backfill", "--no-embed")
    assert_consistent(settings.database_url)
    if _is_postgres(settings.database_url):
        _pg_stale_index_is_caught(settings.database_url)
        return

    deleted = tmp_path / "deleted.db"
    shutil.copyfile(settings.database_url, deleted)
    db = _connect(deleted)
    db.execute("DROP TRIGGER message_search_delete")
    (rowid, text) = db.execute("SELECT rowid, text FROM messages WHERE role = 'user'").fetchone()
    db.execute("DELETE FROM messages WHERE rowid = ?", (rowid,))
    db.commit()
    db.close()
    assert integrity_problems(deleted)
    stale = [m for m in mismatches(deleted, PROBES) if rowid in m.index_only]
    assert {m.probe for m in stale} == words_of(text) & set(PROBES)

    edited = tmp_path / "edited.db"
    shutil.copyfile(settings.database_url, edited)
    db = _connect(edited)
    db.execute("DROP TRIGGER message_search_update")
    db.execute("UPDATE messages SET text = 'kangaroo' WHERE rowid = ?", (rowid,))
    db.commit()
    db.close()
    assert integrity_problems(edited)
    assert any(m.probe == "kangaroo" and rowid in m.rows_only for m in mismatches(edited, ABSENT))


def _pg_stale_index_is_caught(url: str) -> None:
    """A message's text and a title changed without their ``tsvector``: the old words are
    still found there, the new one is not, and the rows no longer agree with the index."""
    with psycopg.connect(url) as db:
        tid, idx, text = db.execute(
            "SELECT thread_id, idx, text FROM messages WHERE role = 'user' LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        db.execute(
            "UPDATE messages SET text = 'kangaroo' WHERE thread_id = %s AND idx = %s", (tid, idx)
        )
        db.execute("UPDATE threads SET title = 'wombat kangaroo' WHERE id = %s", (tid,))
    problems = integrity_problems(url)
    assert any(p.startswith(f"messages {tid}/{idx}:") for p in problems), problems
    assert any(p.startswith(f"titles {tid}:") for p in problems), problems
    stale = [m for m in mismatches(url, PROBES) if (tid, idx) in m.index_only]
    assert {m.probe for m in stale} == words_of(text) & set(PROBES)
    missed = mismatches(url, ABSENT)
    assert any(m.probe == "kangaroo" and (tid, idx) in m.rows_only for m in missed)
    assert any(m.probe == "kangaroo" and m.what == "titles" and tid in m.rows_only
               for m in missed)  # fmt: skip


# ------------------------------------------------------------------ scenarios


def test_plain_backfill(codex_home: Path, settings: Settings, run_cli: Cli) -> None:
    rng = random.Random(1)
    for r in conversations(rng, 8, 4):
        r.write(codex_home)
    run_cli("backfill", "--no-embed")
    assert message_count(settings.database_url) > 100
    assert_consistent(settings.database_url)
    # every probe word of the vocabulary is somewhere, so the comparison is not vacuous
    for probe in PROBES:
        if probe not in (ONLY_APPENDED, ONLY_REMOVED, ONLY_REWRITTEN):
            assert brute_hits(settings.database_url, probe), probe


class _DieAfter:
    """Progress that kills the pass (raises) once ``nbytes`` have been read."""

    class Died(Exception):
        pass

    def __init__(self, nbytes: int) -> None:
        self.left = nbytes

    def start(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        self.left -= nbytes
        if self.left < 0:
            raise self.Died

    def file_done(self, report: FileReport) -> None:
        pass

    def finish(self) -> None:
        pass


@pytest.mark.parametrize("die_after", [1, 4_000, 15_000, 40_000])
def test_crash_mid_pass_then_append_and_resume(
    codex_home: Path, settings: Settings, die_after: int
) -> None:
    small = settings.with_overrides(batch_bytes=2048)
    rng = random.Random(die_after)
    rollouts = conversations(rng, 4, 4)
    paths = [r.write(codex_home) for r in rollouts]
    assert die_after < sum(p.stat().st_size for p in paths)

    with Mirror(small) as mirror, pytest.raises(_DieAfter.Died):
        mirror.sync(_DieAfter(die_after))
    assert_consistent(small.database_url)
    partial = message_count(small.database_url)

    # Codex keeps writing: more turns (with a new word) in two files, and a new file.
    for r, path in list(zip(rollouts, paths, strict=True))[::2]:
        before = len(r.lines)
        add_turns(r, rng, 2, extra=ONLY_APPENDED)
        append_lines(path, r.lines[before:])
    late = conversations(rng, 1, 2)[0]
    late.write(codex_home)

    report = sync(small)
    assert report.errors == []
    assert message_count(small.database_url) > partial
    assert_consistent(small.database_url)
    found_in = {t for t, _ in brute_hits(small.database_url, ONLY_APPENDED)}
    assert found_in == {rollouts[0].thread_id, rollouts[2].thread_id}
    assert {t for t, _ in store_hits(small.database_url, ONLY_APPENDED)} == found_in

    # and a further pass (nothing new) changes nothing
    assert sync(small).lines == 0
    assert_consistent(small.database_url)


def test_thread_rebuilt_from_a_truncated_file_leaves_no_stale_hits(
    codex_home: Path, settings: Settings
) -> None:
    rng = random.Random(3)
    r = Rollout(cwd="/w/alpha")
    add_turns(r, rng, 2)
    keep = len(r.lines)
    add_turns(r, rng, 3, extra=ONLY_REMOVED)
    other = conversations(rng, 2, 2)
    path = r.write(codex_home)
    for o in other:
        o.write(codex_home)
    sync(settings)
    assert_consistent(settings.database_url)
    removed_hits = store_hits(settings.database_url, ONLY_REMOVED)
    assert len(removed_hits) >= 9  # user, reasoning and answer of three turns
    assert {t for t, _ in removed_hits} == {r.thread_id}
    full = message_count(settings.database_url)

    # The file is rewritten shorter (the offset is past its new end), with a different ending.
    ending = Rollout(r.thread_id, cwd="/w/alpha")
    add_turns(ending, rng, 1, extra=ONLY_REWRITTEN)
    path.write_bytes(b"".join(line + b"\n" for line in [*r.lines[:keep], *ending.lines[1:]]))
    report = sync(settings)
    assert report.statuses == {"rebuilt": 1, "unchanged": 2}
    assert message_count(settings.database_url) < full

    assert store_hits(settings.database_url, ONLY_REMOVED) == set()
    assert brute_hits(settings.database_url, ONLY_REMOVED) == set()
    assert {t for t, _ in store_hits(settings.database_url, ONLY_REWRITTEN)} == {r.thread_id}
    assert_consistent(settings.database_url)

    # The first user message (the title) survived; a rewrite of the very first line changes it.
    first = Rollout(r.thread_id, cwd="/w/alpha")
    add_turns(first, rng, 1, extra=ONLY_REMOVED)
    path.write_bytes(b"".join(line + b"\n" for line in first.lines))
    assert sync(settings).statuses == {"rebuilt": 1, "unchanged": 2}
    assert_consistent(settings.database_url)
    assert {t for t, _ in store_hits(settings.database_url, ONLY_REWRITTEN)} == set()


def _title_hits(database: Database, word: str) -> set[str]:
    store = open_store(database, readonly=True)
    try:
        query = parse_query(word, prefix_last=False)
        assert query is not None
        return set(store.search_thread_titles(query, SearchFilter(include_subagents=True), 1000))
    finally:
        store.close()


def test_user_rename_moves_the_title_in_the_index(
    codex_home: Path, settings: Settings, run_cli: Cli
) -> None:
    rng = random.Random(5)
    r = Rollout(cwd="/w/alpha")
    turn = r.turn()
    r.user("Fix the quokka parser please")
    r.assistant("Fixed the quokka parser.")
    r.end_turn(turn)
    path = r.write(codex_home)
    others = conversations(rng, 3, 1)
    for o in others:
        o.write(codex_home)
    run_cli("backfill", "--no-embed")
    db = settings.database_url
    tid = r.thread_id
    assert tid in _title_hits(db, "quokka")
    assert _title_hits(db, "kangaroo") == set()

    api = Api(settings)
    try:
        api.mutation("threads:rename", id=tid, title="Kangaroo migration plan")
        assert api.query("threads:get", id=tid)["title"] == "Kangaroo migration plan"
        assert _title_hits(db, "kangaroo") == {tid}
        assert _title_hits(db, "migration") == {tid}
        assert tid not in _title_hits(db, "quokka")
        assert_consistent(db, [*PROBES, "kangaroo", "migration", "fix"])
        # search boosts by title: the thread's messages still match their own words
        hits = api.query("search:messages", q="quokka", mode="text")
        assert {h["threadId"] for h in hits} >= {tid}
        assert all(h["threadTitle"] == "Kangaroo migration plan" for h in hits
                   if h["threadId"] == tid)  # fmt: skip

        # Codex appends to the thread: the re-ingest keeps the user's title, and the index
        before = len(r.lines)
        turn = r.turn()
        r.user("One more quokka question")
        r.end_turn(turn)
        append_lines(path, r.lines[before:])
        assert sync(settings).errors == []
        assert _title_hits(db, "kangaroo") == {tid}
        assert tid not in _title_hits(db, "quokka")
        assert_consistent(db, [*PROBES, "kangaroo", "migration", "fix"])

        # A rename to a second title, then clearing it, restores Codex's title
        api.mutation("threads:rename", id=tid, title="Wombat cleanup")
        assert _title_hits(db, "kangaroo") == set()
        assert _title_hits(db, "wombat") >= {tid}
        api.mutation("threads:rename", id=tid, title=None)
        assert api.query("threads:get", id=tid)["title"] == "Fix the quokka parser please"
        assert tid in _title_hits(db, "quokka")
        assert _title_hits(db, "kangaroo") == set()
        assert tid not in _title_hits(db, "cleanup")
        assert_consistent(db, [*PROBES, "kangaroo", "migration", "cleanup", "fix"])
    finally:
        api.close()


# ------------------------------------------------------------------ the store's deferred indexing


def _batch(path: str, thread: str, texts: dict[int, str], reset: bool = False) -> IngestBatch:
    rows = [
        MessageRow(thread, idx, "user", "message", text).values() for idx, text in texts.items()
    ]
    return IngestBatch(
        SourceRow(path, "/home", thread_id=thread),
        thread={"id": thread, "message_count": len(rows), "archived": 0},
        messages=rows,
        reset_thread=thread if reset else None,
    )


@pytest.mark.parametrize("index_rows", [1, 3, 10_000])
def test_rows_changed_before_they_are_indexed_leave_a_sound_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index_rows: int
) -> None:
    """New messages enter the index a few thousand at a time, or when the transaction ends.
    Within one grouped transaction, a later batch may rewrite or delete rows an earlier one
    inserted (a second file of the same thread, a rebuilt file): the delete and update
    triggers must only ever see rows that are already in the index."""
    monkeypatch.setattr(sqlite_store, "INDEX_ROWS", index_rows)
    database = tmp_path / "store.db"
    store = open_store(database)
    try:
        with store.grouped_commits(seconds=3600):
            store.commit(_batch("/a", "t1", {0: "quokka wombat", 1: "numbat", 2: "dingo"}))
            store.commit(_batch("/b", "t2", {0: "koala"}))
            # the same thread again: rows 1 and 2 rewritten, row 3 new
            store.commit(_batch("/c", "t1", {1: "bandicoot", 2: "dingo", 3: "galah"}))
            # another thread's file rebuilt from scratch
            store.commit(_batch("/b", "t2", {0: "possum", 1: "bilby"}, reset=True))
            assert store._db.in_transaction  # all of it in one transaction
    finally:
        store.close()
    assert integrity_problems(database) == []
    probes = [
        "quokka",
        "wombat",
        "numbat",
        "dingo",
        "koala",
        "bandicoot",
        "galah",
        "possum",
        "bilby",
    ]
    assert mismatches(database, probes) == []
    assert store_hits(database, "numbat") == set()
    assert store_hits(database, "koala") == set()
    assert store_hits(database, "bandicoot") == {("t1", 1)}
    assert store_hits(database, "bilby") == {("t2", 1)}

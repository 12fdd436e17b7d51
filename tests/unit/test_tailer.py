"""The tailer on real files and a real database (SQLite and PostgreSQL): exactly-once,
resumable, move-aware.

Every "same rows" assertion compares whole-table snapshots against a clean ingest of the same
bytes into a fresh data dir, so a stale, missing or duplicated row anywhere fails the test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard

from sessionbase.config import Settings
from sessionbase.errors import StoreError
from sessionbase.ingest.mirror import Mirror
from sessionbase.ingest.tailer import FileReport
from sessionbase.store import open_store
from sessionbase.store.base import SourceRow, ThreadFilter
from tests.builders.codex import Rollout
from tests.conftest import CORPUS, Cli
from tests.support.db_snapshot import Snapshot, diff, snapshot, table_counts
from tests.support.mirror import settings_for, sync

CORPUS_FILE = (
    CORPUS
    / "jnarowski__agentcmd"
    / "rollout-2025-09-25T15-12-14-019982b8-3422-79e0-8b3b-05abaf4f3c3e.jsonl"
)


# ---------------------------------------------------------------- helpers

_FRESH: list[Callable[[], str]] = []  # makes an empty database of the backend under test


@pytest.fixture
def settings(backend_settings: Settings) -> Settings:
    """Every test of this module runs on SQLite and on PostgreSQL."""
    return backend_settings


@pytest.fixture(autouse=True)
def _fresh_databases(backend: str, request: pytest.FixtureRequest) -> Iterator[None]:
    """``fresh_database()`` for this test: "" (a new data dir's file) on SQLite, a new
    database on PostgreSQL (dropped afterwards)."""
    made: list[str] = []
    databases = request.getfixturevalue("pg_databases") if backend == "postgres" else None

    def make() -> str:
        if databases is None:
            return ""
        made.append(databases.create())
        return made[-1]

    _FRESH.append(make)
    yield
    _FRESH.pop()
    for url in made:
        databases.drop(url)  # type: ignore[union-attr]


def fresh_database() -> str:
    return _FRESH[-1]()


def ingest_paths(settings: Settings, *paths: Path) -> list[FileReport]:
    with Mirror(settings) as mirror:
        return mirror.ingest_paths(paths)


def clean_snapshot(tmp_path: Path, codex_home: Path, name: str = "clean") -> Snapshot:
    """What a first-ever sync of ``codex_home`` into a fresh data dir produces."""
    fresh = settings_for(tmp_path, name, codex_home, database=fresh_database())
    shutil.rmtree(fresh.data_dir, ignore_errors=True)
    sync(fresh)
    return snapshot(fresh.database_url)


def assert_same(actual: Snapshot, expected: Snapshot) -> None:
    assert actual == expected, diff(actual, expected)


def sources(settings: Settings) -> dict[str, tuple[str, int, str | None]]:
    store = open_store(settings.database_url, readonly=True, machine=settings.machine)
    try:
        return {s.path: (s.status, s.offset, s.thread_id) for s in store.sources()}
    finally:
        store.close()


def sources_row(settings: Settings, path: Path) -> SourceRow:
    store = open_store(settings.database_url, readonly=True, machine=settings.machine)
    try:
        row = store.source(str(path))
    finally:
        store.close()
    assert row is not None
    return row


def threads(settings: Settings) -> list[dict[str, object]]:
    store = open_store(settings.database_url, readonly=True, machine=settings.machine)
    try:
        return store.threads(ThreadFilter(limit=1000))
    finally:
        store.close()


def conversation(turns: int = 3, *, thread_id: str | None = None, cwd: str = "/w/p") -> Rollout:
    """A rollout with every kind of row: messages, reasoning, commands, patches, unknowns."""
    r = Rollout(thread_id, cwd=cwd)
    for n in range(turns):
        turn = r.turn()
        r.context(cwd)
        r.user(f"Question {n}: why does ünïcödé 🚀 and 中文 break? {'x' * (n * 37)}")
        r.reasoning(f"**Thinking about {n}** — ½ ∑ 😀")
        r.shell(f"grep -rn 'needle {n}' .", f"hit {n}\n" * (n + 1), exit_code=n % 2)
        r.apply_patch(f"src/file_{n}.py", f"+print('{n} ✓')")
        r.event({"type": "brand_new_event_kind", "n": n})
        r.assistant(f"Answer {n}: the encoding. 👍 {'y' * (n * 53)}")
        r.tokens(1000 * (n + 1))
        r.end_turn(turn)
    return r


def write_lines(path: Path, lines: list[bytes], tail: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines) + tail)


def user_texts(settings: Settings, thread_id: str) -> list[str]:
    store = open_store(settings.database_url, readonly=True, machine=settings.machine)
    try:
        return [
            m["text"]
            for m in store.messages(thread_id)
            if m["role"] == "user" and m["kind"] == "message"
        ]
    finally:
        store.close()


# ---------------------------------------------------------------- appends


def test_resume_reads_exactly_the_appended_bytes(
    tmp_path: Path, codex_home: Path, settings: Settings
) -> None:
    r = conversation(4)
    path = r.path_in(codex_home)
    lines = list(r.lines)
    cut = len(lines) // 3
    write_lines(path, lines[:cut])
    first = sync(settings)
    assert first.lines == cut
    assert sources(settings)[str(path)][1] == path.stat().st_size

    appended = lines[cut:]
    with path.open("ab") as fh:
        fh.write(b"".join(line + b"\n" for line in appended))
    second = sync(settings)
    assert second.statuses == {"ingested": 1}
    assert second.lines == len(appended)
    assert second.bytes == sum(len(line) + 1 for line in appended)
    assert sources(settings)[str(path)][1] == path.stat().st_size

    assert_same(snapshot(settings.database_url), clean_snapshot(tmp_path, codex_home))


def test_partial_last_line_waits_for_its_newline(
    tmp_path: Path, codex_home: Path, settings: Settings
) -> None:
    r = conversation(1)
    r.user("the last words — 最後の言葉 🎉", item=False)
    path = r.path_in(codex_home)
    *done, last = r.lines
    complete = b"".join(line + b"\n" for line in done)
    # Cut inside the multi-byte "最": the partial line is not even valid UTF-8 yet.
    cut = last.index("最".encode()) + 1
    write_lines(path, done, tail=last[:cut])

    report = sync(settings)
    assert report.skipped == {}
    assert sources(settings)[str(path)][1] == len(complete)
    assert "the last words — 最後の言葉 🎉" not in user_texts(settings, r.thread_id)
    # Nothing new: the file is not read again.
    assert sync(settings).statuses == {"unchanged": 1}

    with path.open("ab") as fh:
        fh.write(last[cut:] + b"\n")
    report = sync(settings)
    assert report.lines == 1
    assert report.skipped == {}
    assert user_texts(settings, r.thread_id).count("the last words — 最後の言葉 🎉") == 1
    assert_same(snapshot(settings.database_url), clean_snapshot(tmp_path, codex_home))


def test_second_sync_changes_nothing(codex_home: Path, settings: Settings) -> None:
    paths = [conversation(n + 1).write(codex_home) for n in range(3)]
    (codex_home / "session_index.jsonl").write_bytes(
        orjson.dumps({"id": Rollout().thread_id, "thread_name": "named", "updated_at": "x"}) + b"\n"
    )
    first = sync(settings)
    assert first.statuses == {"ingested": 3}
    before = snapshot(settings.database_url, (*_ALL_TABLES,))
    counts = table_counts(settings.database_url)
    assert counts["messages"] > 0
    assert counts["sources"] == len(paths)
    version = _last_version(settings)

    second = sync(settings)
    assert second.statuses == {"unchanged": 3}
    assert second.lines == second.bytes == second.rows == 0
    assert snapshot(settings.database_url, (*_ALL_TABLES,)) == before
    assert _last_version(settings) == version


_ALL_TABLES = (
    "threads",
    "messages",
    "projects",
    "extras",
    "sources",
    "quarantine",
    "session_index",
    "skills",
    "commit_log",
    "settings_kv",
)


def _last_version(settings: Settings) -> int:
    store = open_store(settings.database_url, readonly=True, machine=settings.machine)
    try:
        return store.last_version()
    finally:
        store.close()


# ---------------------------------------------------------------- rewrites


def test_truncated_file_is_rebuilt_from_zero(
    tmp_path: Path, codex_home: Path, settings: Settings
) -> None:
    r = conversation(4)
    path = r.write(codex_home)
    sync(settings)
    full_rows = table_counts(settings.database_url)["messages"]

    # Keep the first third of the lines and write a different ending: shorter than the offset.
    kept = r.lines[: len(r.lines) // 3]
    tail = Rollout(r.thread_id)
    tail.user("a different ending")
    write_lines(path, [*kept, *tail.lines[1:]])
    assert path.stat().st_size < sources(settings)[str(path)][1]

    report = sync(settings)
    assert report.statuses == {"rebuilt": 1}
    assert "a different ending" in user_texts(settings, r.thread_id)
    assert table_counts(settings.database_url)["messages"] < full_rows
    assert_same(snapshot(settings.database_url), clean_snapshot(tmp_path, codex_home))


def test_rebuild_resets_skip_counts(tmp_path: Path, codex_home: Path, settings: Settings) -> None:
    r = conversation(2)
    r.raw(b"this line is not json")
    path = r.write(codex_home)
    sync(settings)
    assert sources_row(settings, path).skipped == {"not_json": 1}

    write_lines(path, r.lines[:5])
    assert sync(settings).statuses == {"rebuilt": 1}
    row = sources_row(settings, path)
    assert row.skipped == {}
    assert row.lines == 5
    assert row.offset == path.stat().st_size


def test_rebuild_drops_quarantined_lines_past_the_new_end(
    tmp_path: Path, codex_home: Path, settings: Settings
) -> None:
    r = conversation(2)
    r.raw(b"this line is not json")
    path = r.write(codex_home)
    sync(settings)
    assert table_counts(settings.database_url)["quarantine"] == 1

    write_lines(path, r.lines[:5])
    assert sync(settings).statuses == {"rebuilt": 1}
    assert table_counts(settings.database_url)["quarantine"] == 0


def test_rebuild_to_a_shorter_history_recomputes_project_times(
    tmp_path: Path, codex_home: Path, settings: Settings
) -> None:
    r = conversation(4)
    path = r.write(codex_home)
    sync(settings)
    long_updated = _project(settings)["updated_at"]
    write_lines(path, r.lines[:5])
    assert sync(settings).statuses == {"rebuilt": 1}
    assert _project(settings)["updated_at"] < long_updated
    assert_same(snapshot(settings.database_url), clean_snapshot(tmp_path, codex_home))


def _project(settings: Settings) -> dict[str, Any]:
    store = open_store(settings.database_url, readonly=True, machine=settings.machine)
    try:
        (project,) = store.projects()
        return project
    finally:
        store.close()


def _pad_to(data: bytes, size: int) -> bytes:
    assert len(data) <= size
    return data + b"\n" * (size - len(data))


def _replace_keeping_size(path: Path, data: bytes) -> None:
    """Rewrite ``path`` in place (same inode) with ``data`` padded to the old size."""
    st = path.stat()
    padded = _pad_to(data, st.st_size)
    assert padded[:1024] != path.read_bytes()[:1024]
    path.write_bytes(padded)
    # A real rewrite gets a new mtime; do not depend on the clock's resolution for it.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert path.stat().st_size == st.st_size
    assert path.stat().st_ino == st.st_ino


def test_replaced_file_same_size_same_thread_is_rebuilt(
    tmp_path: Path, codex_home: Path, settings: Settings
) -> None:
    old = conversation(3)
    path = old.write(codex_home)
    sync(settings)

    new = Rollout(old.thread_id, cwd="/w/p")
    new.user("Replaced: only this question")
    new.assistant("and this answer")
    _replace_keeping_size(path, new.to_bytes())

    report = sync(settings)
    assert report.statuses == {"rebuilt": 1}
    assert user_texts(settings, old.thread_id) == ["Replaced: only this question"]
    assert table_counts(settings.database_url)["extras"] == 0
    assert_same(snapshot(settings.database_url), clean_snapshot(tmp_path, codex_home))


def test_replaced_by_rename_is_rebuilt(
    tmp_path: Path, codex_home: Path, settings: Settings
) -> None:
    old = conversation(3)
    path = old.write(codex_home)
    sync(settings)

    new = Rollout(old.thread_id, cwd="/w/p")
    new.user("Written elsewhere, then renamed over the old file")
    staged = path.with_name("staging.tmp")
    staged.write_bytes(new.to_bytes())
    os.replace(staged, path)

    assert sync(settings).statuses == {"rebuilt": 1}
    assert user_texts(settings, old.thread_id) == [
        "Written elsewhere, then renamed over the old file"
    ]
    assert_same(snapshot(settings.database_url), clean_snapshot(tmp_path, codex_home))


def test_replaced_file_with_another_thread_leaves_no_stale_rows(
    tmp_path: Path, codex_home: Path, settings: Settings
) -> None:
    old = conversation(3)
    path = old.write(codex_home)
    sync(settings)

    new = conversation(1, cwd="/w/p")  # a different session id, written to the same path
    _replace_keeping_size(path, new.to_bytes())

    assert sync(settings).statuses == {"rebuilt": 1}
    assert user_texts(settings, old.thread_id) == []
    assert [t["id"] for t in threads(settings)] == [new.thread_id]
    assert_same(snapshot(settings.database_url), clean_snapshot(tmp_path, codex_home))


# ---------------------------------------------------------------- moves


def test_archive_and_unarchive_keep_one_thread(
    tmp_path: Path, codex_home: Path, settings: Settings
) -> None:
    r = conversation(2)
    live = r.write(codex_home)
    sync(settings)
    rows_before = snapshot(settings.database_url, ("messages", "extras"))

    archived = r.path_in(codex_home, archived=True)
    archived.parent.mkdir(parents=True)
    os.rename(live, archived)
    report = sync(settings)
    assert report.statuses == {"moved": 1}
    (thread,) = threads(settings)
    assert thread["id"] == r.thread_id
    assert thread["archived"] is True
    assert thread["rollout_path"] == str(archived)
    assert sources(settings) == {str(archived): ("ok", archived.stat().st_size, r.thread_id)}
    assert snapshot(settings.database_url, ("messages", "extras")) == rows_before
    assert_same(snapshot(settings.database_url), clean_snapshot(tmp_path, codex_home, "c1"))

    os.rename(archived, live)
    assert sync(settings).statuses == {"moved": 1}
    (thread,) = threads(settings)
    assert thread["archived"] is False
    assert thread["rollout_path"] == str(live)
    assert sources(settings) == {str(live): ("ok", live.stat().st_size, r.thread_id)}
    assert_same(snapshot(settings.database_url), clean_snapshot(tmp_path, codex_home, "c2"))


@pytest.mark.parametrize("order", ["old-first", "new-first"])
def test_archive_seen_through_watch_events(
    tmp_path: Path, codex_home: Path, settings: Settings, order: str
) -> None:
    r = conversation(2)
    live = r.write(codex_home)
    ingest_paths(settings, live)
    archived = r.path_in(codex_home, archived=True)
    archived.parent.mkdir(parents=True)

    os.rename(live, archived)
    events = [live, archived] if order == "old-first" else [archived, live]
    ingest_paths(settings, *events)
    (thread,) = threads(settings)
    assert thread["archived"] is True
    assert sources(settings) == {str(archived): ("ok", archived.stat().st_size, r.thread_id)}

    os.rename(archived, live)
    ingest_paths(settings, *reversed(events))
    (thread,) = threads(settings)
    assert thread["archived"] is False
    assert thread["rollout_path"] == str(live)
    assert_same(snapshot(settings.database_url), clean_snapshot(tmp_path, codex_home))


def test_moved_file_that_grew_meanwhile(
    tmp_path: Path, codex_home: Path, settings: Settings
) -> None:
    r = conversation(3)
    live = r.path_in(codex_home)
    write_lines(live, r.lines[:10])
    sync(settings)
    archived = r.path_in(codex_home, archived=True)
    archived.parent.mkdir(parents=True)
    os.rename(live, archived)
    with archived.open("ab") as fh:
        fh.write(b"".join(line + b"\n" for line in r.lines[10:]))

    report = sync(settings)
    assert report.statuses == {"moved": 1}
    assert report.lines == len(r.lines) - 10
    assert_same(snapshot(settings.database_url), clean_snapshot(tmp_path, codex_home))


# ---------------------------------------------------------------- zstd


def _zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


# Paths differ between a .jsonl and its .jsonl.zst; everything else must match.
_PATHLESS = [("threads", "rollout_path"), ("sources", "path"), ("quarantine", "path")]
_PATHLESS += [("sources", c) for c in ("codex_home", "dev", "inode", "size", "mtime_ns")]


@pytest.mark.parametrize(
    "source",
    [
        "builder",
        pytest.param("corpus", marks=pytest.mark.skipif(not CORPUS.is_dir(), reason="no corpus")),
    ],
)
def test_zst_ingests_to_the_same_rows_as_plain(tmp_path: Path, source: str) -> None:
    if source == "builder":
        r = conversation(3)
        r.raw(b"not json in the middle")
        name, data = r.file_name(), r.to_bytes() + conversation(1).to_bytes()
    else:
        name, data = CORPUS_FILE.name, CORPUS_FILE.read_bytes()
    plain_home, zst_home = tmp_path / "plain", tmp_path / "zst"
    plain = plain_home / "sessions" / "2026" / "05" / "01" / name
    packed = zst_home / "sessions" / "2026" / "05" / "01" / (name + ".zst")
    plain.parent.mkdir(parents=True)
    packed.parent.mkdir(parents=True)
    plain.write_bytes(data)
    packed.write_bytes(_zst(data))

    a = settings_for(tmp_path, "a", plain_home, database=fresh_database())
    b = settings_for(tmp_path, "b", zst_home, database=fresh_database())
    assert sync(a).statuses == {"ingested": 1}
    assert sync(b).statuses == {"ingested": 1}
    assert sources(b)[str(packed)][1] == len(data)
    counts = table_counts(b.database_url)
    assert counts["messages"] > 0
    assert_same(
        snapshot(b.database_url, ignore=_PATHLESS), snapshot(a.database_url, ignore=_PATHLESS)
    )
    assert sync(b).statuses == {"unchanged": 1}


def test_plain_replaced_by_its_zst_sibling_keeps_thread_and_rows(
    tmp_path: Path, codex_home: Path, settings: Settings
) -> None:
    r = conversation(3)
    plain = r.path_in(codex_home)
    write_lines(plain, r.lines[:12])  # compressed later, after more lines were written
    sync(settings)
    rows_before = snapshot(settings.database_url, ("messages",))

    packed = plain.with_name(plain.name + ".zst")
    packed.write_bytes(_zst(r.to_bytes()))
    # While both exist the plain file shadows its sibling, as in Codex.
    assert sync(settings).statuses == {"unchanged": 1}
    plain.unlink()

    report = sync(settings)
    assert report.statuses == {"moved": 1}
    assert report.lines == len(r.lines) - 12
    (thread,) = threads(settings)
    assert thread["id"] == r.thread_id
    assert thread["rollout_path"] == str(packed)
    assert sources(settings) == {str(packed): ("ok", len(r.to_bytes()), r.thread_id)}
    after = snapshot(settings.database_url, ("messages",))
    assert set(rows_before["messages"]) <= set(after["messages"])
    assert_same(snapshot(settings.database_url), clean_snapshot(tmp_path, codex_home))


def test_zst_sibling_is_ignored_by_watch_events_while_plain_exists(
    codex_home: Path, settings: Settings
) -> None:
    r = conversation(1)
    plain = r.write(codex_home)
    packed = plain.with_name(plain.name + ".zst")
    packed.write_bytes(_zst(r.to_bytes()))
    reports = ingest_paths(settings, plain, packed)
    assert [rep.path for rep in reports] == [str(plain)]
    assert list(sources(settings)) == [str(plain)]


def test_watch_events_only_take_what_a_scan_would(codex_home: Path, settings: Settings) -> None:
    r = conversation(1)
    real = r.write(codex_home)
    temp = real.with_name(real.name + ".tmp")  # e.g. an editor's or a sync tool's temp copy
    shutil.copyfile(real, temp)
    stray = codex_home / real.name  # a copy outside sessions/ and archived_sessions/
    shutil.copyfile(real, stray)
    notes = codex_home / "sessions" / "rollout-notes.txt"
    notes.write_text("not a rollout\n")

    reports = ingest_paths(settings, temp, stray, notes, real)
    assert [(rep.path, rep.status) for rep in reports] == [(str(real), "ingested")]
    assert list(sources(settings)) == [str(real)]
    # The next scan agrees: the real file owns the thread, nothing is a duplicate.
    assert sync(settings).statuses == {"unchanged": 1}
    assert threads(settings)[0]["rollout_path"] == str(real)


# ---------------------------------------------------------------- copies


@pytest.mark.parametrize("copy_sorts", ["after", "before"])
def test_second_copy_is_a_duplicate_not_a_second_count(
    tmp_path: Path, codex_home: Path, settings: Settings, copy_sorts: str
) -> None:
    r = conversation(2)
    original = r.write(codex_home)
    stamp = "2099-01-01T00-00-00" if copy_sorts == "after" else "2000-01-01T00-00-00"
    copy = original.with_name(f"rollout-{stamp}-{r.thread_id}.jsonl")
    shutil.copyfile(original, copy)

    report = sync(settings)
    assert report.statuses == {"ingested": 1, "duplicate": 1}
    owner, dup = (original, copy) if copy_sorts == "after" else (copy, original)
    state = sources(settings)
    assert state[str(dup)][0] == "duplicate"
    assert state[str(owner)][0] == "ok"
    (thread,) = threads(settings)
    assert thread["rollout_path"] == str(owner)

    # Alone, the owner gives exactly these messages and thread: nothing was counted twice.
    solo = tmp_path / "solo-home"
    (solo / "sessions").mkdir(parents=True)
    shutil.copyfile(owner, solo / "sessions" / owner.name)
    solo_settings = settings_for(tmp_path, "solo", solo, database=fresh_database())
    sync(solo_settings)
    tables = ("messages", "extras")
    assert snapshot(settings.database_url, tables) == snapshot(solo_settings.database_url, tables)
    assert threads(settings)[0]["message_count"] == threads(solo_settings)[0]["message_count"]

    assert sync(settings).statuses == {"unchanged": 2}
    with owner.open("ab") as fh:
        fh.write(Rollout(r.thread_id).user("appended to the owner").lines[-1] + b"\n")
    assert sync(settings).statuses == {"ingested": 1, "unchanged": 1}
    assert user_texts(settings, r.thread_id).count("appended to the owner") == 1


def test_copy_seen_through_watch_events_is_a_duplicate(
    codex_home: Path, settings: Settings
) -> None:
    r = conversation(1)
    original = r.write(codex_home)
    ingest_paths(settings, original)
    copy = original.with_name(f"rollout-2099-01-01T00-00-00-{r.thread_id}.jsonl")
    shutil.copyfile(original, copy)
    (report,) = ingest_paths(settings, copy)
    assert report.status == "duplicate"
    assert table_counts(settings.database_url)["messages"] == len(
        [
            1
            for _ in open_store(
                settings.database_url, readonly=True, machine=settings.machine
            ).messages(r.thread_id)
        ]
    )
    assert len(threads(settings)) == 1


# ---------------------------------------------------------------- vanishing files


class _DeleteOnStart:
    """A progress receiver that deletes files after discovery, before any is read."""

    def __init__(self, victims: list[Path]) -> None:
        self.victims = victims
        self.reports: list[FileReport] = []

    def start(self, files: int, total_bytes: int) -> None:
        for victim in self.victims:
            victim.unlink()

    def advance(self, nbytes: int) -> None:
        pass

    def file_done(self, report: FileReport) -> None:
        self.reports.append(report)

    def finish(self) -> None:
        pass


def test_file_vanishing_between_discovery_and_reading(
    codex_home: Path, settings: Settings, run_cli: Cli
) -> None:
    known = conversation(1).write(codex_home)
    sync(settings)
    new = conversation(1).write(codex_home)
    keeper = conversation(2).write(codex_home)
    with known.open("ab") as fh:
        fh.write(b"\n")  # changed, so it will be read again

    progress = _DeleteOnStart([known, new])
    with Mirror(settings) as mirror:
        report = mirror.sync(progress)
    assert report.files_seen == 3
    assert report.statuses == {"gone": 2, "ingested": 1}
    assert report.errors == []
    by_path = {rep.path: rep.status for rep in progress.reports}
    assert by_path == {str(known): "gone", str(new): "gone", str(keeper): "ingested"}
    state = sources(settings)
    assert state[str(known)][0] == "gone"
    assert str(new) not in state
    assert state[str(keeper)][0] == "ok"
    status = run_cli.json("status")
    assert status["files_by_status"] == {"gone": 1, "ok": 1}
    assert status["errors"] == []


def test_vanished_file_in_watch_events(codex_home: Path, settings: Settings) -> None:
    r = conversation(1)
    path = r.write(codex_home)
    ingest_paths(settings, path)
    path.unlink()
    (report,) = ingest_paths(settings, path)
    assert report.status == "gone"
    assert sources(settings)[str(path)][0] == "gone"
    # The thread and its rows stay: the database mirrors what Codex wrote, not what is left.
    assert [t["id"] for t in threads(settings)] == [r.thread_id]


# ---------------------------------------------------------------- dying mid-pass


class _Died(Exception):
    """Stands for the process dying: raised from inside a pass, nothing after it runs."""


class _DieAfter(_DeleteOnStart):
    def __init__(self, nbytes: int) -> None:
        super().__init__([])
        self.left = nbytes

    def advance(self, nbytes: int) -> None:
        self.left -= nbytes
        if self.left < 0:
            raise _Died


@pytest.mark.parametrize("die_after", [1, 5_000, 20_000, 60_000])
def test_dying_mid_pass_resumes_where_the_last_batch_ended(
    tmp_path: Path, codex_home: Path, settings: Settings, die_after: int
) -> None:
    small_batches = settings.with_overrides(batch_bytes=2048)
    paths = [conversation(6).write(codex_home) for _ in range(3)]
    total = sum(p.stat().st_size for p in paths)
    assert die_after < total

    with Mirror(small_batches) as mirror, pytest.raises(_Died):
        mirror.sync(_DieAfter(die_after))
    # The rows of the batches committed before dying are there; the file is not done.
    report = sync(small_batches)
    assert report.errors == []
    assert report.lines > 0
    assert_same(snapshot(settings.database_url), clean_snapshot(tmp_path, codex_home))


# ---------------------------------------------------------------- the ingest lock


def test_second_mirror_on_the_same_data_dir_is_refused(
    settings: Settings, run_cli: Cli, backend: str
) -> None:
    if backend == "postgres":
        pytest.skip(
            "a data dir's lock: a shared database has per-home claims (test_ingest_takeover)"
        )
    with Mirror(settings):
        with pytest.raises(StoreError, match=r"already ingesting") as caught:
            Mirror(settings)
        message = str(caught.value)
        assert f"pid {os.getpid()}" in message
        assert str(settings.data_dir) in message
        assert "only one `sessionbase serve` or `backfill` per data dir" in message
        output = run_cli("backfill", ok=False)
        assert "already ingesting" in output
    # Released on close: the next one starts.
    with Mirror(settings) as mirror:
        assert mirror.sync().errors == []
    run_cli("backfill")


def test_lock_is_per_data_dir(
    tmp_path: Path, codex_home: Path, settings: Settings, backend: str
) -> None:
    if backend == "postgres":
        pytest.skip(
            "a data dir's lock: a shared database has per-home claims (test_ingest_takeover)"
        )
    other = settings_for(tmp_path, "other-data", codex_home)
    with Mirror(settings), Mirror(other) as second:
        assert second.sync().errors == []


def test_copy_takes_over_when_the_original_is_deleted(codex_home: Path, settings: Settings) -> None:
    r = conversation(2)
    original = r.write(codex_home)
    copy = original.with_name(f"rollout-2099-01-01T00-00-00-{r.thread_id}.jsonl")
    shutil.copyfile(original, copy)
    assert sync(settings).statuses == {"ingested": 1, "duplicate": 1}
    before = user_texts(settings, r.thread_id)

    original.unlink()
    report = sync(settings)
    assert report.statuses == {"ingested": 1}
    assert sources(settings)[str(copy)][0] == "ok"
    (thread,) = threads(settings)
    assert thread["rollout_path"] == str(copy)
    assert user_texts(settings, r.thread_id) == before


def test_empty_and_blank_files_make_no_thread(codex_home: Path, settings: Settings) -> None:
    day = codex_home / "sessions" / "2026" / "05" / "01"
    day.mkdir(parents=True)
    (day / "rollout-2026-05-01T10-00-00-0197a9f0-0000-7000-8000-000000000001.jsonl").write_bytes(
        b""
    )
    (day / "rollout-2026-05-01T10-00-01-0197a9f0-0000-7000-8000-000000000002.jsonl").write_bytes(
        b"\n  \n"
    )
    sync(settings)
    assert threads(settings) == []

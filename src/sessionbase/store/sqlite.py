"""SQLiteStore: the default backend, one file in the data dir, WAL mode.

One instance per thread (SQLite connections are not shared): ingest owns a writer instance,
readers open their own. Every write method is one transaction that ends with one commit-log
entry, so a crash at any point loses nothing and duplicates nothing.

This module holds the connection and every write; the class inherits its read queries from
``_sqlite_reads``, its search queries from ``_sqlite_search`` and its device tables from
``_sqlite_devices``.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from sessionbase.codex.skills import Skill, SkillProblem
from sessionbase.errors import DatabaseDamaged, StoreError
from sessionbase.store import _migrations, _sqlite_health, decisions
from sessionbase.store._errors import translate_errors
from sessionbase.store._sqlite_devices import SQLiteDevices
from sessionbase.store._sqlite_reads import SOURCE_COLUMNS, TOKEN_KEYS, SQLiteReads, sql_column
from sessionbase.store._sqlite_search import SQLiteSearch
from sessionbase.store.base import (
    AUTH_ENTITIES,
    THREAD_COLUMNS,
    Entity,
    IngestBatch,
    ReplicaBeat,
    SourceRow,
    SourceStatus,
    UserChange,
)
from sessionbase.store.checkpoints import BackgroundCheckpoints
from sessionbase.store.projects import project_id
from sessionbase.store.tokens import parts as search_parts

_UPSERT_THREAD = (
    f"INSERT INTO threads (id, {', '.join(THREAD_COLUMNS)}) "
    f"VALUES (:id, {', '.join(':' + c for c in THREAD_COLUMNS)}) "
    f"ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in THREAD_COLUMNS)}"
)

# User choices applied to a thread row. The effective title: a user rename, else Codex's own
# name (index, then rollout event), else the first real user message.
_APPLY_USER = """
UPDATE threads SET
  pinned = coalesce((SELECT json_extract(value, '$') FROM user_metadata
      WHERE entity = 'thread' AND id = threads.id AND key = 'pinned'), 0),
  archived_by_user = (SELECT json_extract(value, '$') FROM user_metadata
      WHERE entity = 'thread' AND id = threads.id AND key = 'archived'),
  title = COALESCE(
    (SELECT json_extract(value, '$') FROM user_metadata
      WHERE entity = 'thread' AND id = threads.id AND key = 'title'),
    (SELECT name FROM session_index WHERE thread_id = threads.id),
    name_event, title_auto),
  title_source = CASE
    WHEN EXISTS (SELECT 1 FROM user_metadata
                  WHERE entity = 'thread' AND id = threads.id AND key = 'title') THEN 'user'
    WHEN EXISTS (SELECT 1 FROM session_index WHERE thread_id = threads.id) THEN 'index'
    WHEN name_event IS NOT NULL THEN 'event'
    WHEN title_auto IS NOT NULL THEN 'message'
  END
WHERE id = ?
"""

# A derived project's new row takes what the user decided about it before it existed (kept
# in user_metadata when the database was rebuilt and its decisions restored).
_APPLY_USER_PROJECT = """
UPDATE projects SET
  name = coalesce((SELECT json_extract(value, '$') FROM user_metadata
      WHERE entity = 'project' AND id = :id AND key = 'name'), name),
  working_dir = coalesce((SELECT json_extract(value, '$') FROM user_metadata
      WHERE entity = 'project' AND id = :id AND key = 'working_dir'), working_dir),
  repo_url = coalesce((SELECT json_extract(value, '$') FROM user_metadata
      WHERE entity = 'project' AND id = :id AND key = 'repo_url'), repo_url),
  hidden = EXISTS (SELECT 1 FROM user_metadata
      WHERE entity = 'project' AND id = :id AND key = 'hidden' AND value = 'true')
WHERE id = :id
"""

# A derived project's times and repository facts follow its threads (the newest one wins), so
# the row is the same however the threads arrived.
_PROJECT_FROM_THREADS = """
UPDATE projects SET
  created_at = (SELECT min(created_at) FROM threads WHERE project_id = :id),
  updated_at = (SELECT max(updated_at) FROM threads WHERE project_id = :id),
  repo_url = (SELECT json_extract(git, '$.repository_url') FROM threads
    WHERE project_id = :id AND json_extract(git, '$.repository_url') IS NOT NULL
    ORDER BY updated_at DESC, id LIMIT 1),
  repo_branch = (SELECT json_extract(git, '$.branch') FROM threads
    WHERE project_id = :id AND git IS NOT NULL ORDER BY updated_at DESC, id LIMIT 1),
  repo_commit = (SELECT json_extract(git, '$.commit_hash') FROM threads
    WHERE project_id = :id AND git IS NOT NULL ORDER BY updated_at DESC, id LIMIT 1)
WHERE id = :id AND origin = 'derived'
"""

_UPSERT_MESSAGE = """
INSERT INTO messages (thread_id, idx, turn_id, ts, role, kind, text, data, item_id, source_offset)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (thread_id, idx) DO UPDATE SET
  turn_id = excluded.turn_id, ts = excluded.ts, role = excluded.role, kind = excluded.kind,
  text = excluded.text, data = excluded.data, item_id = excluded.item_id,
  source_offset = excluded.source_offset
"""

# Index new messages in one statement: FTS5 flushes its pending terms at every statement end,
# so a per-row trigger would write (and later merge) one segment per message.
_INDEX_NEW_MESSAGES = """
INSERT INTO message_search (rowid, text, parts)
SELECT rowid, text, sb_parts(text) FROM messages WHERE rowid > ?
"""


_UPSERT_SOURCE = (
    f"INSERT INTO sources ({', '.join(sql_column(c) for c in SOURCE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in SOURCE_COLUMNS)}) "
    f"ON CONFLICT (path) DO UPDATE SET "
    f"{', '.join(f'{sql_column(c)} = excluded.{sql_column(c)}' for c in SOURCE_COLUMNS[1:])}"
)

log = logging.getLogger("sessionbase.store")

COMMIT_LOG_RETENTION_NS = 24 * 3600 * 10**9
# SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, adding
# milliseconds (an fsync) between a commit's version and its readers being told. Writers here
# checkpoint after telling them instead, at most this often.
CHECKPOINT_SECONDS = 1.0
# New messages wait for the full-text index until this many have accumulated or the
# transaction ends. FTS5 writes a segment per statement that touches it, and merges those
# segments again later, so fewer, larger statements cost less; and indexing along the way,
# not all at a grouped transaction's end, keeps the end of a backfill from waiting on it.
INDEX_ROWS = 10_000


def _text(path: str) -> str:
    """A file name as storable text: undecodable bytes become U+FFFD instead of failing."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _store_error(store: SQLiteStore, exc: BaseException) -> StoreError:
    return _sqlite_health.store_error(exc, store.path)


@translate_errors(sqlite3.Error, _store_error)
class SQLiteStore(SQLiteReads, SQLiteSearch, SQLiteDevices):
    """A sessionbase database in one SQLite file. Not thread-safe: one instance per thread."""

    def __init__(self, path: Path, *, readonly: bool = False, cache_mb: int = 8) -> None:
        self.path = path
        self._db = self._connect(readonly)
        self._db.row_factory = sqlite3.Row
        self._db.create_function("sb_parts", 1, search_parts, deterministic=True)
        self._db.create_function("sb_project_id", 3, project_id)
        self._db.execute("PRAGMA busy_timeout = 30000")
        # Each connection has its own page cache: small ones for the many readers, a larger
        # one for the ingest writer (see Mirror).
        self._db.execute(f"PRAGMA cache_size = {-1024 * cache_mb}")
        self._db.execute("PRAGMA temp_store = MEMORY")
        if not readonly:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA wal_autocheckpoint = 0")  # see CHECKPOINT_SECONDS
        self._check_schema(readonly)
        self._commits = 0
        self._checkpointed = time.monotonic()
        self.on_commit: Callable[[int], None] | None = None
        """Called (on the writing thread) after each commit with its version."""
        self._group_seconds: float | None = None
        self._group_began = 0.0
        self._group_touched: list[str] = []
        # Messages past this rowid, of these threads, are not in the full-text index yet
        # (see INDEX_ROWS).
        self._unindexed_after: int | None = None
        self._unindexed_threads: set[str] = set()
        self._unindexed_rows = 0
        self._background: BackgroundCheckpoints | None = None

    in_process = True

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        """Open the file (SQLite checks its header): a read-only connection (that works in a
        read-only directory too), or a writing one that creates the file if need be."""
        size = _sqlite_health.database_size(self.path)
        if readonly:
            if size is None:
                raise StoreError(
                    f"no database at {self.path}: run `sessionbase backfill` or `sessionbase serve`"
                )
            if size == 0:
                raise _sqlite_health.empty_database(self.path)
            return _sqlite_health.connect_readonly(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the data dir {self.path.parent}: {exc.strerror}"
            ) from exc
        if size == 0:
            log.warning(
                "the database %s was empty (0 bytes): rebuilding it from the rollouts", self.path
            )
        return sqlite3.connect(self.path, isolation_level=None, timeout=30.0)

    def _check_schema(self, readonly: bool) -> None:
        """Bring the schema up to date (unless ``readonly``), then make sure it is whole."""
        current = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        tables = self._db.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        if current == 0 and tables:
            raise DatabaseDamaged(
                f"{self.path} holds tables but no sessionbase schema version: it is another"
                f" program's database, or its header is damaged: {_sqlite_health.REBUILD}"
            )
        if readonly and current == 0:
            raise _sqlite_health.empty_database(self.path)
        current = _migrations.migrate(self._db, readonly=readonly)
        if current < _migrations.latest_version():
            raise StoreError(
                f"the database {self.path} has schema version {current}, older than this"
                " sessionbase's: run `sessionbase backfill` once to upgrade it"
            )
        _sqlite_health.check_tables(self._db, self.path, _migrations.tables())

    @property
    def data_dir(self) -> Path:
        return self.path.parent

    @property
    def vector_location(self) -> str:
        return str(self.path.parent)

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._background is not None:
            self._background.close()
            self._background = None
        self._db.close()

    def checkpoint_in_background(self) -> None:
        """From now on, commits outside a grouped pass leave their checkpoints to a thread of
        their own (see ``store.checkpoints``), so this writer never waits on one. A grouped
        pass still checkpoints inline: it writes without pause, and only a checkpoint between
        its own transactions lets the WAL start over instead of growing for the whole pass."""
        if self._background is None:
            self._background = BackgroundCheckpoints(self.path)

    # ------------------------------------------------------------------ writes

    def _begin(self) -> None:
        if self._group_touched or self._db.in_transaction:
            self._end_group()
        self._db.execute("BEGIN IMMEDIATE")

    @contextmanager
    def grouped_commits(self, seconds: float = 0.25) -> Iterator[None]:
        """Let ingest commits share transactions of up to ``seconds`` while this is open.

        A full pass over thousands of small files would otherwise pay a commit (and its WAL
        work) per file. Each shared transaction still holds every file's rows together with
        its offset, so a crash loses or repeats nothing; readers see the files of one
        transaction appear together. Any other write ends the open transaction first.
        """
        self._group_seconds = seconds
        try:
            yield
        finally:
            self._group_seconds = None
            if self._db.in_transaction:
                self._end_group()

    def _end_group(self) -> int | None:
        touched, self._group_touched = self._group_touched, []
        if not self._db.in_transaction:
            return None
        try:
            return self._finish(touched)
        except BaseException:
            self._rollback()
            raise

    def _log_commit(self, touched: list[str]) -> int:
        """Append the commit-log entry; the version is monotonic nanoseconds since the epoch."""
        last = self._db.execute("SELECT max(version) FROM commit_log").fetchone()[0] or 0
        version = max(time.time_ns(), last + 1)
        self._db.execute(
            "INSERT INTO commit_log (version, touched) VALUES (?, ?)",
            (version, orjson.dumps(sorted(set(touched))).decode()),
        )
        self._commits += 1
        if self._commits % 500 == 0:
            self._db.execute(
                "DELETE FROM commit_log WHERE version < ?", (version - COMMIT_LOG_RETENTION_NS,)
            )
        return version

    def _index_pending(self) -> None:
        """Index the messages inserted since the last call, in one statement (see
        ``INDEX_ROWS``)."""
        if self._unindexed_after is not None:
            self._db.execute(_INDEX_NEW_MESSAGES, (self._unindexed_after,))
            self._nothing_unindexed()

    def _nothing_unindexed(self) -> None:
        self._unindexed_after = None
        self._unindexed_threads.clear()
        self._unindexed_rows = 0

    def _finish(self, touched: list[str]) -> int:
        self._index_pending()
        version = self._log_commit(touched)
        self._db.execute("COMMIT")
        self._published(version)
        return version

    def _published(self, version: int) -> None:
        """After a commit: tell the listener first, then fold the WAL back if it is time."""
        if self.on_commit is not None:
            self.on_commit(version)
        now = time.monotonic()
        if now - self._checkpointed >= CHECKPOINT_SECONDS:
            self._checkpointed = now
            if self._background is not None and self._group_seconds is None:
                self._background.request()
                return
            # PASSIVE never waits for readers or blocks writers; frames it cannot copy yet
            # stay for the next one.
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _rollback(self) -> None:
        self._nothing_unindexed()
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def commit(self, batch: IngestBatch) -> int | None:
        """Write one file's batch; its version, or None while it waits in a shared one."""
        try:
            if self._group_seconds is None:
                self._begin()
                return self._finish(self._write_batch(batch))
            if not self._db.in_transaction:
                self._begin()
                self._group_began = time.monotonic()
            self._group_touched += self._write_batch(batch)
            if time.monotonic() - self._group_began >= self._group_seconds:
                return self._end_group()
            return None
        except BaseException:
            self._group_touched = []
            self._rollback()
            raise

    def _write_batch(self, batch: IngestBatch) -> list[str]:
        db = self._db
        touched: list[str] = [f"sources:{batch.source.path}"]
        thread_id = batch.thread["id"] if batch.thread else batch.source.thread_id
        threads = {m[0] for m in batch.messages}
        if batch.reset_thread or not threads.isdisjoint(self._unindexed_threads):
            # The delete and update triggers take rows out of the index by their old text,
            # which is only right for rows already in it.
            self._index_pending()
        if batch.reset_thread is not None:
            db.execute("DELETE FROM quarantine WHERE path = ?", (batch.source.path,))
        if batch.reset_thread:
            db.execute("DELETE FROM messages WHERE thread_id = ?", (batch.reset_thread,))
            db.execute("DELETE FROM extras WHERE thread_id = ?", (batch.reset_thread,))
            db.execute("DELETE FROM threads WHERE id = ?", (batch.reset_thread,))
            db.execute("DELETE FROM units WHERE thread_id = ?", (batch.reset_thread,))
            touched += [f"messages:{batch.reset_thread}", f"threads:{batch.reset_thread}"]
        if batch.project is not None:
            p = batch.project
            inserted = db.execute(
                "INSERT INTO projects (id, name, working_dir, machine) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                (p.id, p.name, p.working_dir, p.machine),
            ).rowcount
            if inserted:  # decided on before it existed (restored after a rebuild)
                db.execute(_APPLY_USER_PROJECT, {"id": p.id})
            db.execute(
                "INSERT INTO project_dirs (project_id, machine, working_dir) VALUES (?, ?, ?)"
                " ON CONFLICT (project_id, machine)"
                " DO UPDATE SET working_dir = excluded.working_dir",
                (p.id, p.machine or "", p.working_dir),
            )
            touched.append(f"projects:{p.id}")
        if batch.thread is not None:
            row: dict[str, Any] = {**batch.thread}
            for key in ("source_detail", "git"):
                row[key] = _json(row.get(key))
            tokens = row.pop("tokens", None) or {}
            for key in TOKEN_KEYS:
                row[f"tokens_{key}"] = int(tokens.get(key, 0))
            db.execute(_UPSERT_THREAD, {c: row.get(c) for c in ("id", *THREAD_COLUMNS)})
            db.execute(_APPLY_USER, (row["id"],))
            touched.append(f"threads:{row['id']}")
            if row.get("project_id"):
                db.execute(_PROJECT_FROM_THREADS, {"id": row["project_id"]})
        if batch.messages:
            if self._unindexed_after is None:
                # Rows the upserts insert (not update) take rowids past the current maximum.
                newest = db.execute("SELECT max(rowid) FROM messages").fetchone()[0]
                self._unindexed_after = newest or 0
            db.executemany(_UPSERT_MESSAGE, batch.messages)
            self._unindexed_threads |= threads
            self._unindexed_rows += len(batch.messages)
            if self._unindexed_rows >= INDEX_ROWS:
                self._index_pending()
        if batch.patches and thread_id:
            db.executemany(
                "UPDATE messages SET data = json_patch(data, ?) WHERE thread_id = ? AND idx = ?",
                [(orjson.dumps(d).decode(), thread_id, idx) for idx, d in batch.patches],
            )
        if (batch.messages or batch.patches) and thread_id:
            touched.append(f"messages:{thread_id}")
        if batch.extras:
            db.executemany(
                "INSERT OR REPLACE INTO extras (thread_id, source_offset, type, raw)"
                " VALUES (?, ?, ?, ?)",
                [(e.thread_id, e.source_offset, e.type, e.raw) for e in batch.extras],
            )
        if batch.quarantine:
            db.executemany(
                'INSERT OR REPLACE INTO quarantine (path, "offset", lineno, reason, raw)'
                " VALUES (?, ?, ?, ?, ?)",
                [(q.path, q.offset, q.lineno, q.reason, q.raw) for q in batch.quarantine],
            )
        self._put_source(batch.source)
        return touched

    def _put_source(self, s: SourceRow) -> None:
        self._db.execute(
            _UPSERT_SOURCE,
            (s.path, s.codex_home, s.thread_id, s.generation, s.dev, s.inode, s.size,
             s.mtime_ns, s.offset, s.lines, s.fingerprint, s.fingerprint_len, s.status,
             s.error, orjson.dumps(s.skipped).decode(), _json(s.state),
             int(time.time() * 1000)),
        )  # fmt: skip

    def move_source(self, old_path: str, new: SourceRow, archived: bool) -> int:
        try:
            self._begin()
            self._db.execute("DELETE FROM sources WHERE path = ?", (old_path,))
            self._put_source(new)
            touched = [f"sources:{old_path}", f"sources:{new.path}"]
            if new.thread_id:
                self._db.execute(
                    "UPDATE threads SET rollout_path = ?, archived = ? WHERE id = ?",
                    (new.path, int(archived), new.thread_id),
                )
                self._db.execute("UPDATE quarantine SET path = ? WHERE path = ?",
                                 (new.path, old_path))  # fmt: skip
                touched.append(f"threads:{new.thread_id}")
            return self._finish(touched)
        except BaseException:
            self._rollback()
            raise

    def mark_source(self, path: str, status: SourceStatus, error: str | None = None) -> None:
        self._db.execute(
            "UPDATE sources SET status = ?, error = ?, updated_at = ? WHERE path = ?",
            (status, error, int(time.time() * 1000), path),
        )

    def insert_source(self, source: SourceRow) -> None:
        """Record a file that produced no rows (e.g. an unusable or duplicate file)."""
        self._put_source(source)

    def replace_skills(
        self, skills: list[Skill], problems: list[SkillProblem], project_ids: dict[str, str]
    ) -> int | None:
        rows = sorted(
            (s.id, s.scope, s.name, s.description, s.short_description, s.license,
             _json(s.allowed_tools), orjson.dumps(s.metadata).decode(), _text(s.path),
             project_ids.get(s.project_dir) if s.project_dir else None)
            for s in skills
        )  # fmt: skip
        problem_rows = sorted({(_text(p.path), p.scope, p.reason) for p in problems})
        try:
            current = sorted(tuple(r) for r in self._db.execute(
                "SELECT id, scope, name, description, short_description, license, allowed_tools,"
                " metadata, path, project_id FROM skills"))  # fmt: skip
            current_problems = sorted(
                tuple(r) for r in self._db.execute("SELECT path, scope, reason FROM skill_problems")
            )
            if current == rows and current_problems == problem_rows:
                return None
            self._begin()
            self._db.execute("DELETE FROM skills")
            self._db.execute("DELETE FROM skill_problems")
            self._db.executemany("INSERT INTO skills VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            self._db.executemany("INSERT INTO skill_problems VALUES (?,?,?)", problem_rows)
            return self._finish(["skills:*"])
        except BaseException:
            self._rollback()
            raise

    def set_session_names(self, names: dict[str, tuple[str, str | None]]) -> int | None:
        if not names:
            return None
        try:
            self._begin()
            self._db.executemany(
                "INSERT INTO session_index (thread_id, name, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (thread_id) DO UPDATE SET name = excluded.name,"
                " updated_at = excluded.updated_at",
                [(tid, name, at) for tid, (name, at) in names.items()],
            )
            self._db.executemany(_APPLY_USER, [(tid,) for tid in names])
            return self._finish([f"threads:{tid}" for tid in names])
        except BaseException:
            self._rollback()
            raise

    def apply_user_changes(
        self,
        changes: list[UserChange],
        result: Any,
        idempotency: tuple[str, int] | None,
        call: str | None = None,
    ) -> tuple[int, Any]:
        """Store user decisions atomically; return (commit version, result).

        With an idempotency key ``(session_id, request_id)`` seen before, nothing is written and
        the first application's version and result are returned.
        """
        try:
            self._begin()
            if idempotency is not None:
                row = self._db.execute(
                    "SELECT version, result FROM mutation_log"
                    " WHERE session_id = ? AND request_id = ?",
                    idempotency,
                ).fetchone()
                if row is not None:
                    self._db.execute("COMMIT")
                    return int(row[0]), orjson.loads(row[1])
            touched = [self._apply_change(c) for c in changes]
            now = int(time.time() * 1000)
            version = self._log_commit(touched or ["user_metadata:*"])
            if idempotency is not None:
                self._db.execute(
                    "INSERT INTO mutation_log (session_id, request_id, result, version, ts, call)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (*idempotency, orjson.dumps(result).decode(), version, now, call),
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self._published(version)
        if changes:
            decisions.after_change(self)
        return version, result

    def _apply_change(self, change: UserChange) -> str:
        if change.entity in AUTH_ENTITIES:
            return self._apply_auth_change(change)
        now = int(time.time() * 1000)
        for key, value in change.values.items():
            if value is None:
                self._db.execute(
                    "DELETE FROM user_metadata WHERE entity = ? AND id = ? AND key = ?",
                    (change.entity, change.id, key),
                )
                self._db.execute(
                    "INSERT INTO cleared_decisions (entity, id, key, cleared_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (entity, id, key) DO UPDATE SET"
                    " cleared_at = excluded.cleared_at",
                    (change.entity, change.id, key, now),
                )
            else:
                self._db.execute(
                    "INSERT INTO user_metadata (entity, id, key, value, updated_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (entity, id, key) DO UPDATE SET"
                    " value = excluded.value, updated_at = excluded.updated_at",
                    (change.entity, change.id, key, orjson.dumps(value).decode(), now),
                )
                self._db.execute(
                    "DELETE FROM cleared_decisions WHERE entity = ? AND id = ? AND key = ?",
                    (change.entity, change.id, key),
                )
        if change.entity == Entity.THREAD:
            self._db.execute(_APPLY_USER, (change.id,))
            return f"threads:{change.id}"
        record = change.values.get("record")
        if isinstance(record, dict):
            self._db.execute(
                "INSERT INTO projects (id, name, working_dir, repo_url, machine, created_at,"
                " updated_at, origin) VALUES (?, ?, ?, ?, ?, ?, ?, 'user')"
                " ON CONFLICT (id) DO NOTHING",
                (change.id, record.get("name") or change.id, record.get("working_dir") or "",
                 record.get("repo_url"), record.get("machine"), now, now),
            )  # fmt: skip
        for key in ("name", "working_dir", "repo_url"):
            if isinstance(change.values.get(key), str):
                self._db.execute(
                    f"UPDATE projects SET {key} = ?, updated_at = ? WHERE id = ?",
                    (change.values[key], now, change.id),
                )
        if "hidden" in change.values:
            self._db.execute(
                "UPDATE projects SET hidden = ? WHERE id = ?",
                (int(bool(change.values["hidden"])), change.id),
            )
        return f"projects:{change.id}"

    def user_changes(self) -> list[UserChange]:
        return decisions.grouped(
            self._db.execute(
                "SELECT entity, id, key, value FROM user_metadata ORDER BY entity, id, key"
            )
        )

    @property
    def user_decisions_file(self) -> Path:
        return _sqlite_health.decisions_file(self.path)

    def integrity_problems(self) -> list[str]:
        return _sqlite_health.integrity_check(self._db)

    def decisions(self) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT entity, id, key, value, updated_at FROM user_metadata ORDER BY entity, id, key"
        )
        return [dict(r) for r in rows]

    def cleared_decisions(self) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT entity, id, key, cleared_at FROM cleared_decisions ORDER BY entity, id, key"
        )
        return [dict(r) for r in rows]

    def recorded_mutation(
        self, session_id: str, request_id: int
    ) -> tuple[int, Any, str | None] | None:
        """(version, result, call) of a mutation already applied under this idempotency key."""
        row = self._db.execute(
            "SELECT version, result, call FROM mutation_log"
            " WHERE session_id = ? AND request_id = ?",
            (session_id, request_id),
        ).fetchone()
        return None if row is None else (int(row[0]), orjson.loads(row[1]), row[2])

    @contextmanager
    def snapshot(self) -> Iterator[int]:
        """A read transaction: every read inside sees one state; yields its commit version."""
        self._db.execute("BEGIN")
        try:
            yield self.last_version()
        finally:
            self._db.execute("COMMIT")

    def get_setting(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM settings_kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put_setting(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO settings_kv (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def replace_units(
        self, thread_id: str, units: list[tuple[int, int, str, str, str]], from_idx: int = 0
    ) -> None:
        """Replace a thread's units starting at ``from_idx`` with these
        ``(start_idx, end_idx, role, content_hash, text)``."""
        try:
            self._begin()
            self._db.execute(
                "DELETE FROM units WHERE thread_id = ? AND start_idx >= ?", (thread_id, from_idx)
            )
            self._db.executemany(
                "INSERT INTO units (thread_id, start_idx, end_idx, role, content_hash, text)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(thread_id, *u) for u in units],
            )
            self._finish([f"units:{thread_id}"])
        except BaseException:
            self._rollback()
            raise

    def claim_ingest(self, homes: list[str]) -> bool:
        return True

    def claim_held(self) -> bool:
        return True

    def heartbeat(self, beat: ReplicaBeat) -> None:
        """One process serves a SQLite file: there is nobody to tell."""

    def replicas(self) -> list[dict[str, Any]]:
        return []

    def ingesters(self) -> list[dict[str, Any]]:
        return []

    def announce(self, touched: list[str]) -> int:
        """A commit-log entry with no rows: tells live queries that derived state changed."""
        try:
            self._begin()
            return self._finish(touched)
        except BaseException:
            self._rollback()
            raise

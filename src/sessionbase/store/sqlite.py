"""SQLiteStore: the default backend, one file in the data dir, WAL mode.

One instance per thread (SQLite connections are not shared): ingest owns a writer instance,
readers open their own. Every write method is one transaction that ends with one commit-log
entry, so a crash at any point loses nothing and duplicates nothing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from sessionbase.codex.skills import Skill, SkillProblem
from sessionbase.errors import StoreError
from sessionbase.store import _migrations
from sessionbase.store.base import IngestBatch, SearchFilter, SourceRow, ThreadFilter
from sessionbase.store.checkpoints import BackgroundCheckpoints
from sessionbase.store.fts import parts as search_parts

_THREAD_COLUMNS = (
    "project_id", "machine", "source", "source_detail", "originator", "cli_version", "model",
    "model_provider", "cwd", "git", "title_auto", "name_event", "rollout_path",
    "forked_from_id", "parent_thread_id", "agent_role", "agent_nickname", "created_at",
    "updated_at", "message_count", "last_message_at", "snippet", "tokens_input",
    "tokens_cached", "tokens_output", "tokens_reasoning", "tokens_total", "archived",
)  # fmt: skip

_UPSERT_THREAD = (
    f"INSERT INTO threads (id, {', '.join(_THREAD_COLUMNS)}) "
    f"VALUES (:id, {', '.join(':' + c for c in _THREAD_COLUMNS)}) "
    f"ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _THREAD_COLUMNS)}"
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


def _search_where(
    flt: SearchFilter, *, thread_alias: str = "t", message_alias: str | None = "m"
) -> tuple[list[str], list[Any]]:
    t, m = thread_alias, message_alias
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("project_id", flt.project_id), ("source", flt.source)):
        if value is not None:
            where.append(f"{t}.{column} = ?")
            args.append(value)
    if flt.thread_id is not None:
        where.append(f"{t}.id = ?")
        args.append(flt.thread_id)
    if not flt.include_subagents:
        where.append(f"{t}.parent_thread_id IS NULL AND coalesce({t}.source, '') != 'subagent'")
    if m is not None:
        for column, value in (("role", flt.role), ("kind", flt.kind)):
            if value is not None:
                where.append(f"{m}.{column} = ?")
                args.append(value)
        if flt.since is not None:
            where.append(f"{m}.ts >= ?")
            args.append(flt.since)
        if flt.until is not None:
            where.append(f"{m}.ts < ?")
            args.append(flt.until)
    return where, args


@dataclass(frozen=True)
class UserChange:
    """User decisions about one thread or project: key → JSON value, or None to clear it."""

    entity: str  # "thread" | "project"
    id: str
    values: dict[str, Any]


def _q(column: str) -> str:
    return f'"{column}"' if column == "offset" else column


_SOURCE_COLUMNS = (
    "path", "codex_home", "thread_id", "generation", "dev", "inode", "size", "mtime_ns",
    "offset", "lines", "fingerprint", "fingerprint_len", "status", "error", "skipped", "state",
    "updated_at",
)  # fmt: skip
_UPSERT_SOURCE = (
    f"INSERT INTO sources ({', '.join(_q(c) for c in _SOURCE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _SOURCE_COLUMNS)}) "
    f"ON CONFLICT (path) DO UPDATE SET "
    f"{', '.join(f'{_q(c)} = excluded.{_q(c)}' for c in _SOURCE_COLUMNS[1:])}"
)

TOKEN_KEYS = ("input", "cached", "output", "reasoning", "total")
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
MIN_ID_PREFIX = 4  # a shorter start of a thread id names no thread: it would match too many


def _text(path: str) -> str:
    """A file name as storable text: undecodable bytes become U+FFFD instead of failing."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


class SQLiteStore:
    """A sessionbase database in one SQLite file. Not thread-safe: one instance per thread."""

    def __init__(self, path: Path, *, readonly: bool = False, cache_mb: int = 8) -> None:
        self.path = path
        try:
            if not readonly:
                path.parent.mkdir(parents=True, exist_ok=True)
            elif not path.exists():
                raise StoreError(
                    f"no database at {path}: run `sessionbase backfill` or `sessionbase serve`"
                )
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            self._db.row_factory = sqlite3.Row
            self._db.create_function("sb_parts", 1, search_parts, deterministic=True)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA busy_timeout = 30000")
            self._db.execute("PRAGMA wal_autocheckpoint = 0")  # see CHECKPOINT_SECONDS
            # Each connection has its own page cache: small ones for the many readers, a
            # larger one for the ingest writer (see Mirror).
            self._db.execute(f"PRAGMA cache_size = {-1024 * cache_mb}")
            self._db.execute("PRAGMA temp_store = MEMORY")
            _migrations.migrate(self._db, readonly=readonly)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
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
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"cannot commit ingested files: {exc}") from exc

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
        except sqlite3.Error as exc:
            self._group_touched = []
            self._rollback()
            raise StoreError(f"ingest commit for {batch.source.path} failed: {exc}") from exc
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
            db.execute(
                "INSERT INTO projects (id, name, working_dir, machine) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                (p.id, p.name, p.working_dir, p.machine),
            )
            touched.append(f"projects:{p.id}")
        if batch.thread is not None:
            row = dict(batch.thread)
            for key in ("source_detail", "git"):
                row[key] = _json(row.get(key))
            tokens = row.pop("tokens", None) or {}
            for key in TOKEN_KEYS:
                row[f"tokens_{key}"] = int(tokens.get(key, 0))
            db.execute(_UPSERT_THREAD, {c: row.get(c) for c in ("id", *_THREAD_COLUMNS)})
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
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"cannot record move of {old_path}: {exc}") from exc

    def mark_source(self, path: str, status: str, error: str | None = None) -> None:
        try:
            self._db.execute(
                "UPDATE sources SET status = ?, error = ?, updated_at = ? WHERE path = ?",
                (status, error, int(time.time() * 1000), path),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot update source {path}: {exc}") from exc

    def insert_source(self, source: SourceRow) -> None:
        """Record a file that produced no rows (e.g. an unusable or duplicate file)."""
        try:
            self._put_source(source)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record source {source.path}: {exc}") from exc

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
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"cannot store skills: {exc}") from exc

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
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"cannot store session names: {exc}") from exc

    def apply_user_changes(
        self, changes: list[UserChange], result: Any, idempotency: tuple[str, int] | None
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
                    "INSERT INTO mutation_log (session_id, request_id, result, version, ts)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (*idempotency, orjson.dumps(result).decode(), version, now),
                )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"cannot store the change: {exc}") from exc
        self._published(version)
        return version, result

    def _apply_change(self, change: UserChange) -> str:
        now = int(time.time() * 1000)
        for key, value in change.values.items():
            if value is None:
                self._db.execute(
                    "DELETE FROM user_metadata WHERE entity = ? AND id = ? AND key = ?",
                    (change.entity, change.id, key),
                )
            else:
                self._db.execute(
                    "INSERT INTO user_metadata (entity, id, key, value, updated_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (entity, id, key) DO UPDATE SET"
                    " value = excluded.value, updated_at = excluded.updated_at",
                    (change.entity, change.id, key, orjson.dumps(value).decode(), now),
                )
        if change.entity == "thread":
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

    def recorded_mutation(self, session_id: str, request_id: int) -> tuple[int, Any] | None:
        """(version, result) of a mutation already applied under this idempotency key."""
        row = self._db.execute(
            "SELECT version, result FROM mutation_log WHERE session_id = ? AND request_id = ?",
            (session_id, request_id),
        ).fetchone()
        return None if row is None else (int(row[0]), orjson.loads(row[1]))

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

    # ------------------------------------------------------------------- reads

    def source_head(self, path: str) -> SourceRow | None:
        """A source without its normalizer state (cheap: enough to see if a file changed)."""
        row = self._db.execute(
            f"SELECT {_HEAD_COLUMNS} FROM sources WHERE path = ?", (path,)
        ).fetchone()
        return None if row is None else _source(row)

    def settled_files(self) -> set[tuple[str, int, int, int]]:
        """(path, size, mtime_ns, inode) of every file read to its end and in good standing.

        A full pass skips a file whose fresh stat is in this set without building anything
        for it: that is what keeps a catch-up over thousands of unchanged files cheap.
        """
        rows = self._db.execute(
            "SELECT path, size, mtime_ns, inode FROM sources WHERE status = 'ok' AND mtime_ns > 0"
        )
        return {(r[0], r[1], r[2], r[3]) for r in rows}

    def tracked_paths(self) -> set[str]:
        """Paths of every source not yet known to be gone."""
        return {r[0] for r in self._db.execute("SELECT path FROM sources WHERE status != 'gone'")}

    def source(self, path: str) -> SourceRow | None:
        row = self._db.execute("SELECT * FROM sources WHERE path = ?", (path,)).fetchone()
        return None if row is None else _source(row)

    def sources(self) -> list[SourceRow]:
        return [_source(r) for r in self._db.execute("SELECT * FROM sources ORDER BY path")]

    def sources_by_inode(self, dev: int, inode: int) -> list[SourceRow]:
        rows = self._db.execute("SELECT * FROM sources WHERE dev = ? AND inode = ?", (dev, inode))
        return [_source(r) for r in rows]

    def sources_for_thread(self, thread_id: str) -> list[SourceRow]:
        rows = self._db.execute("SELECT * FROM sources WHERE thread_id = ?", (thread_id,))
        return [_source(r) for r in rows]

    def threads(self, flt: ThreadFilter) -> list[dict[str, Any]]:
        where: list[str] = []
        args: list[Any] = []
        if flt.project_id:
            where.append("project_id = ?")
            args.append(flt.project_id)
        if flt.source:
            where.append("source = ?")
            args.append(flt.source)
        if not flt.include_archived:
            where.append("coalesce(archived_by_user, archived) = 0")
        if not flt.include_subagents:
            where.append("parent_thread_id IS NULL AND coalesce(source, '') != 'subagent'")
        sql = "SELECT * FROM threads"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated_at DESC, id LIMIT ?"
        args.append(max(0, flt.limit))
        return [_thread(r) for r in self._db.execute(sql, args)]

    def thread(self, thread_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM threads WHERE id = ?", (thread_id,)).fetchone()
        if row is None and len(thread_id) >= MIN_ID_PREFIX:
            matches = self.thread_ids_starting(thread_id, 2)
            if len(matches) == 1:
                row = self._db.execute("SELECT * FROM threads WHERE id = ?", matches).fetchone()
        return None if row is None else _thread(row)

    def thread_ids_starting(self, prefix: str, limit: int = 5) -> list[str]:
        """Ids of the threads whose id starts with ``prefix``, at most ``limit``."""
        escaped = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._db.execute(
            "SELECT id FROM threads WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT ?",
            (escaped + "%", limit),
        )
        return [r[0] for r in rows]

    def messages_page(
        self, thread_id: str, after: int, until: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """Messages with ``after < idx <= until`` in order, at most ``limit``."""
        rows = self._db.execute(
            "SELECT idx, turn_id, ts, role, kind, text, data, item_id, source_offset FROM messages"
            " WHERE thread_id = ? AND idx > ? AND idx <= ? ORDER BY idx LIMIT ?",
            (thread_id, after, until if until is not None else 2**62, limit),
        )
        return [{**dict(r), "data": orjson.loads(r["data"])} for r in rows]

    def messages_tail(self, thread_id: str, n: int) -> list[dict[str, Any]]:
        """The newest ``n`` messages, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM (SELECT idx, turn_id, ts, role, kind, text, data, item_id,"
            " source_offset FROM messages WHERE thread_id = ? ORDER BY idx DESC LIMIT ?)"
            " ORDER BY idx",
            (thread_id, n),
        )
        return [{**dict(r), "data": orjson.loads(r["data"])} for r in rows]

    def search_messages(self, match: str, flt: SearchFilter, limit: int) -> list[dict[str, Any]]:
        """Full-text hits, best BM25 first: message fields, thread title and facts, rank
        (FTS5's bm25, lower is better). No snippet: the caller makes one for what it keeps.

        ``match`` is an FTS5 expression built by ``store.fts.fts_query``. Raises StoreError
        if the expression is refused.

        Ranking happens before any join: SQLite computes every result column of every row
        that enters the top-N sorter, so joining ``messages`` and ``threads`` (and making
        snippets) before ``ORDER BY … LIMIT`` did that work for every hit of a common word.
        Without a filter (subagents aside: few) the top rows come from FTS5 alone and are
        then checked; with one, the filter joins in but only rowid and rank are sorted.
        """
        where, args = _search_where(flt)
        try:
            ranked: list[tuple[int, float]] = []
            if flt == SearchFilter(include_subagents=flt.include_subagents):
                k = 2 * limit
                ranked = self._db.execute(
                    "SELECT rowid, bm25(message_search, 1.0, 0.6) AS score FROM message_search"
                    " WHERE message_search MATCH ? ORDER BY score LIMIT ?",
                    (match, k),
                ).fetchall()
                rows = self._search_rows(ranked, where, args)
                if len(rows) >= limit or len(ranked) < k:
                    return rows[:limit]
            ranked = self._db.execute(
                "SELECT m.rowid, bm25(message_search, 1.0, 0.6) AS score"
                " FROM message_search JOIN messages m ON m.rowid = message_search.rowid"
                " JOIN threads t ON t.id = m.thread_id"
                " WHERE message_search MATCH ?"
                + "".join(f" AND {w}" for w in where)
                + " ORDER BY score LIMIT ?",
                [match, *args, limit],
            ).fetchall()
            return self._search_rows(ranked, [], [])
        except sqlite3.OperationalError as exc:
            raise StoreError(f"search refused: {exc}") from exc

    def _search_rows(
        self, ranked: list[tuple[int, float]], where: list[str], args: list[Any]
    ) -> list[dict[str, Any]]:
        """The rows of ranked message rowids that pass ``where``, in the given order."""
        if not ranked:
            return []
        rank = {int(rowid): float(score) for rowid, score in ranked}
        rows = self._db.execute(
            "SELECT m.rowid AS message_rowid, m.thread_id, m.idx, m.role, m.kind, m.ts, m.text,"
            " t.title AS thread_title, t.project_id, t.source, t.updated_at AS thread_updated_at"
            " FROM messages m JOIN threads t ON t.id = m.thread_id"
            " WHERE m.rowid IN (SELECT value FROM json_each(?))"
            + "".join(f" AND {w}" for w in where),
            [orjson.dumps(list(rank)).decode(), *args],
        )
        found = [{**dict(r), "rank": rank[r["message_rowid"]]} for r in rows]
        found.sort(key=lambda r: (r["rank"], r["message_rowid"]))
        for row in found:
            del row["message_rowid"]
        return found

    def search_thread_titles(self, match: str, flt: SearchFilter, limit: int) -> dict[str, float]:
        """Threads whose title matches: id → BM25 rank (lower is better)."""
        where, args = _search_where(flt, thread_alias="t", message_alias=None)
        sql = (
            "SELECT t.id, bm25(thread_search, 1.0, 0.6) AS rank"
            " FROM thread_search JOIN threads t ON t.rowid = thread_search.rowid"
            " WHERE thread_search MATCH ?"
            + "".join(f" AND {w}" for w in where)
            + " ORDER BY rank LIMIT ?"
        )
        try:
            return {r[0]: float(r[1]) for r in self._db.execute(sql, [match, *args, limit])}
        except sqlite3.OperationalError as exc:
            raise StoreError(f"search refused: {exc}") from exc

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
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"cannot store units of {thread_id}: {exc}") from exc

    def units_for_hashes(self, hashes: list[str], flt: SearchFilter) -> list[dict[str, Any]]:
        """Units with these content hashes that pass the filter, with their thread's facts."""
        if not hashes:
            return []
        where, args = _search_where(flt, message_alias="m")
        marks = ",".join("?" * len(hashes))
        rows = self._db.execute(
            "SELECT u.thread_id, u.start_idx, u.end_idx, u.role, u.content_hash, u.text,"
            " m.ts, m.kind, t.title AS thread_title, t.project_id, t.source"
            " FROM units u JOIN threads t ON t.id = u.thread_id"
            " LEFT JOIN messages m ON m.thread_id = u.thread_id AND m.idx = u.start_idx"
            f" WHERE u.content_hash IN ({marks})" + "".join(f" AND {w}" for w in where),
            [*hashes, *args],
        )
        return [dict(r) for r in rows]

    def units_of(self, thread_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT * FROM units WHERE thread_id = ? ORDER BY start_idx", (thread_id,)
        )
        return [dict(r) for r in rows]

    def unit_starts(self, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """For (thread, idx) pairs, the start of the unit holding each message, where known."""
        out: dict[tuple[str, int], int] = {}
        for thread_id, idx in pairs:
            row = self._db.execute(
                "SELECT start_idx FROM units WHERE thread_id = ? AND start_idx <= ?"
                " AND end_idx >= ? ORDER BY start_idx DESC LIMIT 1",
                (thread_id, idx, idx),
            ).fetchone()
            if row is not None:
                out[(thread_id, idx)] = int(row[0])
        return out

    def announce(self, touched: list[str]) -> int:
        """A commit-log entry with no rows: tells live queries that derived state changed."""
        try:
            self._begin()
            return self._finish(touched)
        except sqlite3.Error as exc:
            self._rollback()
            raise StoreError(f"cannot write the commit log: {exc}") from exc

    def unit_at(self, thread_id: str, idx: int) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT * FROM units WHERE thread_id = ? AND start_idx <= ? AND end_idx >= ?"
            " ORDER BY start_idx DESC LIMIT 1",
            (thread_id, idx, idx),
        ).fetchone()
        return None if row is None else dict(row)

    def unit_hashes(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT content_hash FROM units")]

    def thread_ids(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT id FROM threads ORDER BY id")]

    def like_scan(self, needle: str, limit: int) -> list[tuple[str, int]]:
        """The naive baseline: a LIKE scan over all message text (benchmarks only)."""
        rows = self._db.execute(
            "SELECT thread_id, idx FROM messages WHERE text LIKE ? LIMIT ?", (f"%{needle}%", limit)
        )
        return [(r[0], r[1]) for r in rows]

    def project(self, project_id: str) -> dict[str, Any] | None:
        rows = [p for p in self.projects(include_hidden=True) if p["id"] == project_id]
        return rows[0] if rows else None

    def messages(self, thread_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT idx, turn_id, ts, role, kind, text, data, item_id, source_offset"
            " FROM messages WHERE thread_id = ? ORDER BY idx",
            (thread_id,),
        )
        return [{**dict(r), "data": orjson.loads(r["data"])} for r in rows]

    def projects(self, include_hidden: bool = False) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT p.*, count(t.id) AS thread_count, max(t.updated_at) AS last_active_at"
            " FROM projects p LEFT JOIN threads t ON t.project_id = p.id"
            + ("" if include_hidden else " WHERE p.hidden = 0")
            + " GROUP BY p.id ORDER BY last_active_at DESC, p.name"
        )
        return [{**dict(r), "hidden": bool(r["hidden"])} for r in rows]

    def skills(self, project_id: str | None = None) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT * FROM skills WHERE (? IS NULL OR project_id IS NULL OR project_id = ?)"
            " ORDER BY CASE scope WHEN 'repo' THEN 0 WHEN 'user' THEN 1"
            " WHEN 'system' THEN 2 ELSE 3 END, name",
            (project_id, project_id),
        )
        out = []
        for r in rows:
            row = dict(r)
            row["allowed_tools"] = orjson.loads(r["allowed_tools"]) if r["allowed_tools"] else None
            row["metadata"] = orjson.loads(r["metadata"])
            out.append(row)
        return out

    def skill_problems(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._db.execute("SELECT * FROM skill_problems ORDER BY path")]

    def status(self) -> dict[str, Any]:
        db = self._db
        by_status = {
            r[0]: r[1] for r in db.execute("SELECT status, count(*) FROM sources GROUP BY status")
        }
        skipped: dict[str, int] = {}
        bytes_total = bytes_done = 0
        for row in db.execute('SELECT skipped, size, "offset" FROM sources'):
            for reason, count in orjson.loads(row[0]).items():
                skipped[reason] = skipped.get(reason, 0) + count
            bytes_total += row[1] or 0
            bytes_done += min(row[2] or 0, row[1] or 0)
        unknown: dict[str, int] = {}
        for (state,) in db.execute("SELECT state FROM sources WHERE state IS NOT NULL"):
            for label, count in (orjson.loads(state).get("unknown") or {}).items():
                unknown[label] = unknown.get(label, 0) + count
        errors = [
            {"path": r[0], "status": r[1], "error": r[2]}
            for r in db.execute(
                "SELECT path, status, error FROM sources WHERE error IS NOT NULL ORDER BY path"
            )
        ]
        threads, messages = db.execute(
            "SELECT count(*), coalesce(sum(message_count), 0) FROM threads"
        ).fetchone()
        return {
            "files": sum(by_status.values()),
            "files_by_status": by_status,
            "threads": threads,
            "messages": messages,
            "rows": db.execute("SELECT count(*) FROM messages").fetchone()[0],
            "projects": db.execute("SELECT count(*) FROM projects").fetchone()[0],
            "skills": db.execute("SELECT count(*) FROM skills").fetchone()[0],
            "units": db.execute("SELECT count(*) FROM units").fetchone()[0],
            "bytes_total": bytes_total,
            "bytes_ingested": bytes_done,
            "skipped_lines": skipped,
            "unknown_types": unknown,
            "errors": errors,
            "skill_problems": self.skill_problems(),
            "last_version": self.last_version(),
        }

    def summary(self) -> dict[str, Any]:
        """A small status for app headers: cheap enough to recompute on every commit."""
        db = self._db
        by_status = {
            r[0]: r[1] for r in db.execute("SELECT status, count(*) FROM sources GROUP BY status")
        }
        skipped: dict[str, int] = {}
        for (raw,) in db.execute("SELECT skipped FROM sources WHERE skipped != '{}'"):
            for reason, count in orjson.loads(raw).items():
                skipped[reason] = skipped.get(reason, 0) + count
        errors = db.execute("SELECT count(*) FROM sources WHERE error IS NOT NULL").fetchone()[0]
        return {
            **self.totals(),
            "files": sum(by_status.values()),
            "files_by_status": by_status,
            "skipped_lines": skipped,
            "errors": int(errors),
            "last_version": self.last_version(),
        }

    def commits_since(self, version: int) -> list[tuple[int, list[str]]]:
        """Commit-log entries after ``version``, oldest first."""
        rows = self._db.execute(
            "SELECT version, touched FROM commit_log WHERE version > ? ORDER BY version",
            (version,),
        )
        return [(int(r[0]), orjson.loads(r[1])) for r in rows]

    def oldest_version(self) -> int:
        row = self._db.execute("SELECT coalesce(min(version), 0) FROM commit_log").fetchone()
        return int(row[0])

    def totals(self) -> dict[str, int]:
        """Thread and message counts from the threads table (cheap at any size)."""
        threads, messages = self._db.execute(
            "SELECT count(*), coalesce(sum(message_count), 0) FROM threads"
        ).fetchone()
        return {"threads": int(threads), "messages": int(messages)}

    def last_version(self) -> int:
        return int(
            self._db.execute("SELECT coalesce(max(version), 0) FROM commit_log").fetchone()[0]
        )


_HEAD_COLUMNS = ", ".join(_q(c) for c in _SOURCE_COLUMNS if c not in ("state", "updated_at"))


def _source(row: sqlite3.Row) -> SourceRow:
    data = dict(row)
    data.pop("updated_at", None)
    data["skipped"] = orjson.loads(data["skipped"] or "{}")
    data["state"] = orjson.loads(data["state"]) if data.get("state") else None
    return SourceRow(**data)


def _thread(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    for key in ("source_detail", "git"):
        data[key] = orjson.loads(data[key]) if data[key] else None
    data["tokens"] = {key: data.pop(f"tokens_{key}") for key in TOKEN_KEYS}
    by_user = data.pop("archived_by_user")
    data["archived"] = bool(data["archived"] if by_user is None else by_user)
    data["pinned"] = bool(data["pinned"])
    return data

"""What a sessionbase database answers: sources, threads, messages, projects, skills, status
and the commit log. ``SQLiteStore`` inherits these queries; they only read its connection."""

from __future__ import annotations

import sqlite3
from typing import Any, cast

import orjson

from sessionbase.store.base import (
    SourceRow,
    SourceStatus,
    ThreadFilter,
    ThreadKey,
    thread_conditions,
)
from sessionbase.store.rows import StoredMessage, ThreadRow

TOKEN_KEYS = ("input", "cached", "output", "reasoning", "total")


def sql_column(column: str) -> str:
    """A ``sources`` column as SQL: ``offset`` is a keyword."""
    return f'"{column}"' if column == "offset" else column


SOURCE_COLUMNS = (
    "path", "codex_home", "thread_id", "generation", "dev", "inode", "size", "mtime_ns",
    "offset", "lines", "fingerprint", "fingerprint_len", "status", "error", "skipped", "state",
    "updated_at",
)  # fmt: skip
_HEAD_COLUMNS = ", ".join(sql_column(c) for c in SOURCE_COLUMNS if c not in ("state", "updated_at"))


class SQLiteReads:
    """The read queries of ``SQLiteStore``."""

    _db: sqlite3.Connection

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

    def threads(self, flt: ThreadFilter) -> list[ThreadRow]:
        sql, args = thread_query(flt)
        return [_thread(r) for r in self._db.execute(sql, args)]

    def subagent_counts(self, thread_ids: list[str]) -> dict[str, int]:
        """How many sub-agent threads each of these threads spawned (absent: none)."""
        if not thread_ids:
            return {}
        marks = ",".join("?" * len(thread_ids))
        rows = self._db.execute(
            "SELECT parent_thread_id, count(*) FROM threads"
            f" WHERE parent_thread_id IN ({marks}) GROUP BY parent_thread_id",
            thread_ids,
        )
        return {r[0]: int(r[1]) for r in rows}

    def transcript_length(self, thread_id: str) -> int:
        """How many rows a thread's transcript has (its messages are numbered 0 to n - 1)."""
        row = self._db.execute(
            "SELECT coalesce(max(idx) + 1, 0) FROM messages WHERE thread_id = ?", (thread_id,)
        ).fetchone()
        return int(row[0])

    def thread(self, thread_id: str) -> ThreadRow | None:
        row = self._db.execute("SELECT * FROM threads WHERE id = ?", (thread_id,)).fetchone()
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
    ) -> list[StoredMessage]:
        """Messages with ``after < idx <= until`` in order, at most ``limit``."""
        rows = self._db.execute(
            "SELECT idx, turn_id, ts, role, kind, text, data, item_id, source_offset FROM messages"
            " WHERE thread_id = ? AND idx > ? AND idx <= ? ORDER BY idx LIMIT ?",
            (thread_id, after, until if until is not None else 2**62, limit),
        )
        return [_message(r) for r in rows]

    def messages_tail(self, thread_id: str, n: int) -> list[StoredMessage]:
        """The newest ``n`` messages, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM (SELECT idx, turn_id, ts, role, kind, text, data, item_id,"
            " source_offset FROM messages WHERE thread_id = ? ORDER BY idx DESC LIMIT ?)"
            " ORDER BY idx",
            (thread_id, n),
        )
        return [_message(r) for r in rows]

    def thread_ids(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT id FROM threads ORDER BY id")]

    def messages(self, thread_id: str) -> list[StoredMessage]:
        rows = self._db.execute(
            "SELECT idx, turn_id, ts, role, kind, text, data, item_id, source_offset"
            " FROM messages WHERE thread_id = ? ORDER BY idx",
            (thread_id,),
        )
        return [_message(r) for r in rows]

    def projects(self, include_hidden: bool = False) -> list[dict[str, Any]]:
        # Threads are counted from threads_by_project alone, then joined: joining each project
        # to its threads read every thread's row (35-160 ms at 8,500 threads; this, ~1 ms).
        rows = self._db.execute(
            "SELECT p.*, coalesce(t.n, 0) AS thread_count, t.last AS last_active_at,"
            " (SELECT json_group_object(machine, working_dir) FROM project_dirs"
            "  WHERE project_id = p.id) AS working_dirs"
            " FROM projects p LEFT JOIN (SELECT project_id, count(*) AS n,"
            " max(updated_at) AS last FROM threads GROUP BY project_id) t"
            " ON t.project_id = p.id"
            + ("" if include_hidden else " WHERE p.hidden = 0")
            + " ORDER BY last_active_at DESC, p.name"
        )
        return [
            {
                **dict(r),
                "hidden": bool(r["hidden"]),
                "working_dirs": _dirs(r["working_dirs"]),
            }
            for r in rows
        ]

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
        # One pass over the narrow sources_summary index, not the wide rows (schema 11).
        by_status: dict[str, int] = {}
        errors = lag = 0
        for status, files, failed, behind in db.execute(
            "SELECT status, count(*), sum(error IS NOT NULL),"
            " sum(CASE WHEN status = 'ok' AND path NOT LIKE '%.zst'"
            ' THEN max(size - "offset", 0) ELSE 0 END)'
            " FROM sources GROUP BY status"
        ):
            by_status[status] = files
            errors += failed or 0
            lag += behind or 0
        skipped: dict[str, int] = {}
        for (raw,) in db.execute("SELECT skipped FROM sources WHERE skipped != '{}'"):
            for reason, count in orjson.loads(raw).items():
                skipped[reason] = skipped.get(reason, 0) + count
        return {
            **self.totals(),
            "files": sum(by_status.values()),
            "files_by_status": by_status,
            "skipped_lines": skipped,
            "errors": int(errors),
            "lag_bytes": int(lag),
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


def thread_query(flt: ThreadFilter) -> tuple[str, list[Any]]:
    """The SQL (and its parameters) that lists the threads passing ``flt``, newest first."""
    args: list[Any] = []
    where = thread_conditions(flt, args, "?")
    if flt.after is not None:
        where.append(_after(flt.after, args))
    if flt.until is not None:
        where.append(_until(flt.until, args))
    sql = "SELECT * FROM threads"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY updated_at DESC, id LIMIT ?"
    args.append(max(0, flt.limit))
    return sql, args


def _after(key: ThreadKey, args: list[Any]) -> str:
    """Threads after ``key`` in the order ``updated_at DESC`` (no time last), then ``id``."""
    updated, thread_id = key
    if updated is None:
        args.append(thread_id)
        return "(updated_at IS NULL AND id > ?)"
    args.extend((updated, updated, thread_id))
    return "(updated_at IS NULL OR updated_at < ? OR (updated_at = ? AND id > ?))"


def _until(key: ThreadKey, args: list[Any]) -> str:
    """Threads up to and including ``key`` in the same order."""
    updated, thread_id = key
    if updated is None:
        args.append(thread_id)
        return "(updated_at IS NOT NULL OR id <= ?)"
    # ``updated_at >= ?`` repeats what the OR implies so that SQLite reads the index range
    # only: a page that keeps its end re-runs on every commit, and must not scan the rest.
    args.extend((updated, updated, updated, thread_id))
    return "(updated_at >= ? AND (updated_at > ? OR (updated_at = ? AND id <= ?)))"


def _dirs(raw: str | None) -> dict[str, str]:
    """Each machine's working dir of a project (``project_dirs``)."""
    return orjson.loads(raw) if raw else {}


def _source(row: sqlite3.Row) -> SourceRow:
    data = dict(row)
    data.pop("updated_at", None)
    data["skipped"] = orjson.loads(data["skipped"] or "{}")
    data["state"] = orjson.loads(data["state"]) if data.get("state") else None
    data["status"] = SourceStatus(data["status"])
    return SourceRow(**data)


def _message(row: sqlite3.Row) -> StoredMessage:
    return cast(StoredMessage, {**dict(row), "data": orjson.loads(row["data"])})


def _thread(row: sqlite3.Row) -> ThreadRow:
    data = dict(row)
    for key in ("source_detail", "git"):
        data[key] = orjson.loads(data[key]) if data[key] else None
    data["tokens"] = {key: data.pop(f"tokens_{key}") for key in TOKEN_KEYS}
    by_user = data.pop("archived_by_user")
    data["archived"] = bool(data["archived"] if by_user is None else by_user)
    data["pinned"] = bool(data["pinned"])
    return cast(ThreadRow, data)

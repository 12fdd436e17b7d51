"""What a sessionbase database on PostgreSQL answers: the read queries of ``PostgresStore``,
returning the same shapes as ``_sqlite_reads`` (text sorts byte-wise, NULLs sort as SQLite
sorts them, so both backends list in the same order)."""

from __future__ import annotations

from typing import Any, cast

import orjson
from psycopg.rows import dict_row

from sessionbase.store._pg_connection import Borrowed
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
_ALL_SOURCE = ", ".join(sql_column(c) for c in SOURCE_COLUMNS)
_HEAD_COLUMNS = ", ".join(sql_column(c) for c in SOURCE_COLUMNS if c not in ("state", "updated_at"))
_THREAD_FIELDS = "t.*"
_MESSAGE_FIELDS = "idx, turn_id, ts, role, kind, text, data, item_id, source_offset"


class PgReads:
    """The read queries of ``PostgresStore``."""

    _db: Borrowed
    machine: str

    def _all(
        self,
        sql: str,
        params: Any = None,
        doing: str = "query failed",
        prepare: bool | None = None,
    ) -> list[Any]:
        """The rows of ``sql``. ``prepare=False``: planned for these very parameters each
        time, never from a prepared statement's plan for any value."""
        with self._db.errors(doing):
            return self._db.get().execute(sql, params, prepare=prepare).fetchall()

    def _dicts(
        self,
        sql: str,
        params: Any = None,
        doing: str = "query failed",
        prepare: bool | None = None,
    ) -> list[dict[str, Any]]:
        with self._db.errors(doing), self._db.get().cursor(row_factory=dict_row) as cur:
            return cur.execute(sql, params, prepare=prepare).fetchall()

    def _one(self, sql: str, params: Any = None) -> Any:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    # ------------------------------------------------------------------ sources

    def source_head(self, path: str) -> SourceRow | None:
        rows = self._dicts(
            f"SELECT {_HEAD_COLUMNS} FROM sources WHERE machine = %s AND path = %s",
            (self.machine, path),
        )
        return _source(rows[0]) if rows else None

    def settled_files(self) -> set[tuple[str, int, int, int]]:
        rows = self._all(
            "SELECT path, size, mtime_ns, inode FROM sources"
            " WHERE machine = %s AND status = 'ok' AND mtime_ns > 0",
            (self.machine,),
        )
        return {(r[0], int(r[1]), int(r[2]), r[3]) for r in rows}

    def tracked_paths(self) -> set[str]:
        rows = self._all(
            "SELECT path FROM sources WHERE machine = %s AND status != 'gone'", (self.machine,)
        )
        return {r[0] for r in rows}

    def source(self, path: str) -> SourceRow | None:
        rows = self._dicts(
            f"SELECT {_ALL_SOURCE} FROM sources WHERE machine = %s AND path = %s",
            (self.machine, path),
        )
        return _source(rows[0]) if rows else None

    def sources(self) -> list[SourceRow]:
        rows = self._dicts(
            f'SELECT {_ALL_SOURCE} FROM sources WHERE machine = %s ORDER BY path COLLATE "C"',
            (self.machine,),
        )
        return [_source(r) for r in rows]

    def sources_by_inode(self, dev: int, inode: int) -> list[SourceRow]:
        rows = self._dicts(
            f"SELECT {_ALL_SOURCE} FROM sources WHERE machine = %s AND dev = %s AND inode = %s",
            (self.machine, dev, inode),
        )
        return [_source(r) for r in rows]

    def sources_for_thread(self, thread_id: str) -> list[SourceRow]:
        rows = self._dicts(
            f"SELECT {_ALL_SOURCE} FROM sources WHERE machine = %s AND thread_id = %s",
            (self.machine, thread_id),
        )
        return [_source(r) for r in rows]

    # ------------------------------------------------------------------ threads, messages

    def threads(self, flt: ThreadFilter) -> list[ThreadRow]:
        args: list[Any] = []
        where = thread_conditions(flt, args, "%s")
        if flt.after is not None:
            where.append(_after(flt.after, args))
        if flt.until is not None:
            where.append(_until(flt.until, args))
        sql = f"SELECT {_THREAD_FIELDS} FROM threads t"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += ' ORDER BY updated_at DESC NULLS LAST, id COLLATE "C" LIMIT %s'
        args.append(max(0, flt.limit))
        return [_thread(r) for r in self._dicts(sql, args)]

    def subagent_counts(self, thread_ids: list[str]) -> dict[str, int]:
        if not thread_ids:
            return {}
        rows = self._all(
            "SELECT parent_thread_id, count(*) FROM threads WHERE parent_thread_id = ANY(%s)"
            " GROUP BY parent_thread_id",
            (thread_ids,),
        )
        return {r[0]: int(r[1]) for r in rows}

    def transcript_length(self, thread_id: str) -> int:
        row = self._one(
            "SELECT coalesce(max(idx) + 1, 0) FROM messages WHERE thread_id = %s", (thread_id,)
        )
        return int(row[0])

    def thread(self, thread_id: str) -> ThreadRow | None:
        rows = self._dicts(f"SELECT {_THREAD_FIELDS} FROM threads t WHERE id = %s", (thread_id,))
        return _thread(rows[0]) if rows else None

    def thread_ids_starting(self, prefix: str, limit: int = 5) -> list[str]:
        escaped = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._all(
            "SELECT id FROM threads WHERE id LIKE %s ESCAPE '\\'"
            ' ORDER BY id COLLATE "C" LIMIT %s',
            (escaped + "%", limit),
        )
        return [r[0] for r in rows]

    def thread_ids(self) -> list[str]:
        return [r[0] for r in self._all('SELECT id FROM threads ORDER BY id COLLATE "C"')]

    def messages_page(
        self, thread_id: str, after: int, until: int | None, limit: int
    ) -> list[StoredMessage]:
        rows = self._dicts(
            f"SELECT {_MESSAGE_FIELDS} FROM messages"
            " WHERE thread_id = %s AND idx > %s AND idx <= %s ORDER BY idx LIMIT %s",
            (thread_id, max(after, -(2**31)), min(until if until is not None else 2**31 - 1,
             2**31 - 1), limit),
        )  # fmt: skip
        return [_message(r) for r in rows]

    def messages_tail(self, thread_id: str, n: int) -> list[StoredMessage]:
        rows = self._dicts(
            f"SELECT * FROM (SELECT {_MESSAGE_FIELDS} FROM messages WHERE thread_id = %s"
            " ORDER BY idx DESC LIMIT %s) newest ORDER BY idx",
            (thread_id, max(0, n)),
        )
        return [_message(r) for r in rows]

    def messages(self, thread_id: str) -> list[StoredMessage]:
        rows = self._dicts(
            f"SELECT {_MESSAGE_FIELDS} FROM messages WHERE thread_id = %s ORDER BY idx",
            (thread_id,),
        )
        return [_message(r) for r in rows]

    # ------------------------------------------------------------------ projects, skills

    def projects(self, include_hidden: bool = False) -> list[dict[str, Any]]:
        rows = self._dicts(  # threads counted per project first, as on SQLite
            "SELECT p.*, coalesce(t.n, 0) AS thread_count, t.last AS last_active_at,"
            " (SELECT coalesce(json_object_agg(machine, working_dir), '{}')::text"
            "  FROM project_dirs WHERE project_id = p.id) AS working_dirs"
            " FROM projects p LEFT JOIN (SELECT project_id, count(*) AS n,"
            " max(updated_at) AS last FROM threads GROUP BY project_id) t"
            " ON t.project_id = p.id"
            + ("" if include_hidden else " WHERE p.hidden = 0")
            + ' ORDER BY last_active_at DESC NULLS LAST, p.name COLLATE "C"'
        )
        return [
            {**r, "hidden": bool(r["hidden"]), "working_dirs": orjson.loads(r["working_dirs"])}
            for r in rows
        ]

    def skills(self, project_id: str | None = None) -> list[dict[str, Any]]:
        rows = self._dicts(
            "SELECT id, scope, name, description, short_description, license, allowed_tools,"
            " metadata, path, project_id FROM skills WHERE (%s::text IS NULL OR project_id IS NULL"
            " OR project_id = %s) ORDER BY CASE scope WHEN 'repo' THEN 0 WHEN 'user' THEN 1"
            " WHEN 'system' THEN 2 ELSE 3 END, name COLLATE \"C\"",
            (project_id, project_id),
        )
        for row in rows:
            tools = row["allowed_tools"]
            row["allowed_tools"] = orjson.loads(tools) if tools else None
            row["metadata"] = orjson.loads(row["metadata"])
        return rows

    def skill_problems(self) -> list[dict[str, Any]]:
        return self._dicts(
            'SELECT path, scope, reason FROM skill_problems ORDER BY path COLLATE "C"'
        )

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        by_status = {
            r[0]: int(r[1]) for r in self._all("SELECT status, count(*) FROM sources GROUP BY 1")
        }
        skipped: dict[str, int] = {}
        bytes_total = bytes_done = 0
        for raw, size, offset in self._all('SELECT skipped, size, "offset" FROM sources'):
            for reason, count in orjson.loads(raw).items():
                skipped[reason] = skipped.get(reason, 0) + count
            bytes_total += int(size or 0)
            bytes_done += min(int(offset or 0), int(size or 0))
        unknown: dict[str, int] = {}
        for (state,) in self._all("SELECT state FROM sources WHERE state IS NOT NULL"):
            for label, count in (orjson.loads(state).get("unknown") or {}).items():
                unknown[label] = unknown.get(label, 0) + count
        errors = [
            {"path": r[0], "status": r[1], "error": r[2]}
            for r in self._all(
                "SELECT path, status, error FROM sources WHERE error IS NOT NULL"
                ' ORDER BY path COLLATE "C"'
            )
        ]
        counts = self._one(
            "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM projects),"
            " (SELECT count(*) FROM skills), (SELECT count(*) FROM units)"
        )
        return {
            **self.totals(),
            "files": sum(by_status.values()),
            "files_by_status": by_status,
            "rows": int(counts[0]),
            "projects": int(counts[1]),
            "skills": int(counts[2]),
            "units": int(counts[3]),
            "bytes_total": bytes_total,
            "bytes_ingested": bytes_done,
            "skipped_lines": skipped,
            "unknown_types": unknown,
            "errors": errors,
            "skill_problems": self.skill_problems(),
            "last_version": self.last_version(),
        }

    def summary(self) -> dict[str, Any]:
        by_status = {
            r[0]: int(r[1]) for r in self._all("SELECT status, count(*) FROM sources GROUP BY 1")
        }
        skipped: dict[str, int] = {}
        for (raw,) in self._all("SELECT skipped FROM sources WHERE skipped != '{}'"):
            for reason, count in orjson.loads(raw).items():
                skipped[reason] = skipped.get(reason, 0) + count
        errors = self._one("SELECT count(*) FROM sources WHERE error IS NOT NULL")[0]
        lag = self._one(
            'SELECT coalesce(sum(greatest(size - "offset", 0)), 0) FROM sources'
            " WHERE status = 'ok' AND path NOT LIKE '%%.zst'"
        )[0]
        return {
            **self.totals(),
            "files": sum(by_status.values()),
            "files_by_status": by_status,
            "skipped_lines": skipped,
            "errors": int(errors),
            "lag_bytes": int(lag),
            "last_version": self.last_version(),
        }

    def totals(self) -> dict[str, int]:
        threads, messages = self._one(
            "SELECT count(*), coalesce(sum(message_count), 0) FROM threads"
        )
        return {"threads": int(threads), "messages": int(messages)}

    # ------------------------------------------------------------------ commit log

    def commits_since(self, version: int) -> list[tuple[int, list[str]]]:
        rows = self._all(
            "SELECT version, touched FROM commit_log WHERE version > %s ORDER BY version",
            (version,),
        )
        return [(int(r[0]), orjson.loads(r[1])) for r in rows]

    def oldest_version(self) -> int:
        return int(self._one("SELECT coalesce(min(version), 0) FROM commit_log")[0])

    def last_version(self) -> int:
        return int(self._one("SELECT coalesce(max(version), 0) FROM commit_log")[0])


def _after(key: ThreadKey, args: list[Any]) -> str:
    """Threads after ``key`` in the order ``updated_at DESC`` (no time last), then ``id``."""
    updated, thread_id = key
    if updated is None:
        args.append(thread_id)
        return '(updated_at IS NULL AND id COLLATE "C" > %s)'
    args.extend((updated, updated, thread_id))
    return '(updated_at IS NULL OR updated_at < %s OR (updated_at = %s AND id COLLATE "C" > %s))'


def _until(key: ThreadKey, args: list[Any]) -> str:
    """Threads up to and including ``key`` in the same order."""
    updated, thread_id = key
    if updated is None:
        args.append(thread_id)
        return '(updated_at IS NOT NULL OR id COLLATE "C" <= %s)'
    args.extend((updated, updated, thread_id))
    return '(updated_at > %s OR (updated_at = %s AND id COLLATE "C" <= %s))'


def _source(row: dict[str, Any]) -> SourceRow:
    data = dict(row)
    data.pop("updated_at", None)
    data["skipped"] = orjson.loads(data["skipped"] or "{}")
    data["state"] = orjson.loads(data["state"]) if data.get("state") else None
    data["status"] = SourceStatus(data["status"])
    return SourceRow(**data)


def _message(row: dict[str, Any]) -> StoredMessage:
    row["data"] = orjson.loads(row["data"])
    return cast(StoredMessage, row)


def _thread(row: dict[str, Any]) -> ThreadRow:
    data = dict(row)
    data.pop("title_search", None)
    for key in ("source_detail", "git"):
        data[key] = orjson.loads(data[key]) if data[key] else None
    data["tokens"] = {key: int(data.pop(f"tokens_{key}")) for key in TOKEN_KEYS}
    by_user = data.pop("archived_by_user")
    data["archived"] = bool(data["archived"] if by_user is None else by_user)
    data["pinned"] = bool(data["pinned"])
    return cast(ThreadRow, data)

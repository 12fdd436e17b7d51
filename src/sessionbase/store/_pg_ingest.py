"""What ingest writes into PostgreSQL: the batch writes of ``PostgresStore``.

A batch is one file's rows and its new offset, written inside the transaction the store opened
(``PostgresStore.commit``). Its statements go out in one pipeline, so a batch costs a round
trip per answer the code waits for, not one per statement; a thread's new messages go in by
COPY when none of them can be stored yet, which is the bulk of a first backfill.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from sessionbase.store._pg_connection import Borrowed, Cursor
from sessionbase.store._pg_fts import tsvector
from sessionbase.store._pg_reads import SOURCE_COLUMNS, TOKEN_KEYS, sql_column
from sessionbase.store.base import THREAD_COLUMNS, IngestBatch, ProjectRow, SourceRow
from sessionbase.store.rows import MessageValues, ThreadFields

_UPSERT_THREAD = (
    f"INSERT INTO threads (id, {', '.join(THREAD_COLUMNS)}) "
    f"VALUES (%(id)s, {', '.join(f'%({c})s' for c in THREAD_COLUMNS)}) "
    f"ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in THREAD_COLUMNS)}"
)

# A user decision as SQL: user_metadata holds JSON text ('true', '"a title"', '1').
_JSON_INT = "CASE {v} WHEN 'true' THEN 1 WHEN 'false' THEN 0 WHEN 'null' THEN NULL ELSE ({v})::numeric::int END"  # noqa: E501
_USER_VALUE = "(SELECT value FROM user_metadata WHERE entity = 'thread' AND id = threads.id AND key = '{key}')"  # noqa: E501

# The title columns come back with the effective title; the caller re-indexes it.
_APPLY_USER = f"""
UPDATE threads SET
  pinned = coalesce({_JSON_INT.format(v=_USER_VALUE.format(key="pinned"))}, 0),
  archived_by_user = {_JSON_INT.format(v=_USER_VALUE.format(key="archived"))},
  title = COALESCE(
    ({_USER_VALUE.format(key="title")})::json #>> '{{}}',
    (SELECT name FROM session_index WHERE thread_id = threads.id),
    name_event, title_auto),
  title_source = CASE
    WHEN EXISTS (SELECT 1 FROM user_metadata
                  WHERE entity = 'thread' AND id = threads.id AND key = 'title') THEN 'user'
    WHEN EXISTS (SELECT 1 FROM session_index WHERE thread_id = threads.id) THEN 'index'
    WHEN name_event IS NOT NULL THEN 'event'
    WHEN title_auto IS NOT NULL THEN 'message'
  END
WHERE id = ANY(%s)
RETURNING id, title
"""

_PROJECT_FROM_THREADS = """
UPDATE projects SET
  created_at = (SELECT min(created_at) FROM threads WHERE project_id = %(id)s),
  updated_at = (SELECT max(updated_at) FROM threads WHERE project_id = %(id)s),
  repo_url = (SELECT git::json ->> 'repository_url' FROM threads
    WHERE project_id = %(id)s AND git::json ->> 'repository_url' IS NOT NULL
    ORDER BY updated_at DESC NULLS LAST, id COLLATE "C" LIMIT 1),
  repo_branch = (SELECT git::json ->> 'branch' FROM threads
    WHERE project_id = %(id)s AND git IS NOT NULL
    ORDER BY updated_at DESC NULLS LAST, id COLLATE "C" LIMIT 1),
  repo_commit = (SELECT git::json ->> 'commit_hash' FROM threads
    WHERE project_id = %(id)s AND git IS NOT NULL
    ORDER BY updated_at DESC NULLS LAST, id COLLATE "C" LIMIT 1)
WHERE id = %(id)s AND origin = 'derived'
"""

_UPSERT_MESSAGE = """
INSERT INTO messages (thread_id, idx, turn_id, ts, role, kind, text, data, item_id,
                      source_offset, search)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::tsvector)
ON CONFLICT (thread_id, idx) DO UPDATE SET
  turn_id = excluded.turn_id, ts = excluded.ts, role = excluded.role, kind = excluded.kind,
  text = excluded.text, data = excluded.data, item_id = excluded.item_id,
  source_offset = excluded.source_offset, search = excluded.search
"""

_MESSAGE_COLUMNS = (
    "thread_id, idx, turn_id, ts, role, kind, text, data, item_id, source_offset, search"
)
_COPY_MESSAGES = f"COPY messages ({_MESSAGE_COLUMNS}) FROM STDIN"
COPY_MIN_ROWS = 32  # fewer new messages go in as upserts, in the batch's pipeline

_UPSERT_SOURCE = (
    f"INSERT INTO sources (machine, {', '.join(sql_column(c) for c in SOURCE_COLUMNS)}) "
    f"VALUES (%s, {', '.join('%s' for _ in SOURCE_COLUMNS)}) "
    f"ON CONFLICT (machine, path) DO UPDATE SET "
    f"{', '.join(f'{sql_column(c)} = excluded.{sql_column(c)}' for c in SOURCE_COLUMNS[1:])}"
)


def clean(value: Any) -> Any:
    """Text PostgreSQL can store: it refuses NUL characters, which SQLite keeps."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def first_value(cursor: Cursor) -> Any:
    row = cursor.fetchone()
    return None if row is None else row[0]


def json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396, as SQLite's ``json_patch``: objects merge recursively, null deletes."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class PgIngest:
    """The ingest writes of ``PostgresStore`` (it opens and commits the transaction)."""

    _db: Borrowed
    machine: str

    def _x(self, sql: str | bytes, params: Any = None) -> Cursor:
        return self._db.get().execute(sql, params)

    def _write_batch(self, batch: IngestBatch) -> list[str]:
        """One file's rows and offset, in the open transaction. The statements go out in one
        pipeline (a round trip per result the code needs, not per statement), and a thread's
        new messages go in by COPY when none of them can exist yet (``_fresh_threads``)."""
        touched: list[str] = [f"sources:{batch.source.path}"]
        thread_id = batch.thread["id"] if batch.thread else batch.source.thread_id
        conn = self._db.get()
        copied: list[tuple[Any, ...]] = []
        with conn.pipeline():
            if batch.reset_thread is not None:
                self._x(
                    "DELETE FROM quarantine WHERE machine = %s AND path = %s",
                    (self.machine, batch.source.path),
                )
            if batch.reset_thread:
                for table, column in (("messages", "thread_id"), ("extras", "thread_id"),
                                      ("threads", "id"), ("units", "thread_id")):  # fmt: skip
                    self._x(f"DELETE FROM {table} WHERE {column} = %s", (batch.reset_thread,))
                touched += [f"messages:{batch.reset_thread}", f"threads:{batch.reset_thread}"]
            if batch.project is not None:
                self._put_project(batch.project)
                touched.append(f"projects:{batch.project.id}")
            titles = None
            if batch.thread is not None:
                titles = self._put_thread(batch.thread)
                touched.append(f"threads:{batch.thread['id']}")
            fresh = self._fresh_threads(batch.messages)
            # The server works through the statements above while the search vectors are built.
            rows = [(*map(clean, m), tsvector(clean(m[6]))) for m in batch.messages]
            if titles is not None:
                self._index_titles(titles)
            copy = fresh()
            upserted = [r for r in rows if r[0] not in copy]
            copied = [r for r in rows if r[0] in copy]
            if upserted:
                with conn.cursor() as cur:
                    cur.executemany(_UPSERT_MESSAGE, upserted)
            if batch.patches and thread_id:
                self._patch_data(thread_id, batch.patches)
            if batch.extras:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO extras (thread_id, source_offset, type, raw)"
                        " VALUES (%s, %s, %s, %s) ON CONFLICT (thread_id, source_offset, type)"
                        " DO UPDATE SET raw = excluded.raw",
                        [(e.thread_id, e.source_offset, clean(e.type), clean(e.raw))
                         for e in batch.extras],
                    )  # fmt: skip
            if batch.quarantine:
                with conn.cursor() as cur:
                    cur.executemany(
                        'INSERT INTO quarantine (machine, path, "offset", lineno, reason, raw)'
                        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (machine, path, \"offset\")"
                        " DO UPDATE SET lineno = excluded.lineno, reason = excluded.reason,"
                        " raw = excluded.raw",
                        [(self.machine, clean(q.path), q.offset, q.lineno, q.reason, q.raw)
                         for q in batch.quarantine],
                    )  # fmt: skip
            self._put_source(batch.source)
        if copied:  # COPY cannot run in a pipeline
            with conn.cursor() as cur, cur.copy(_COPY_MESSAGES) as copy_in:
                for r in copied:
                    copy_in.write_row(r)
        if (batch.messages or batch.patches) and thread_id:
            touched.append(f"messages:{thread_id}")
        return touched

    def _put_project(self, p: ProjectRow) -> None:
        self._x(
            "INSERT INTO projects (id, name, working_dir, machine) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            (p.id, clean(p.name), clean(p.working_dir), p.machine),
        )
        self._x(
            "INSERT INTO project_dirs (project_id, machine, working_dir)"
            " VALUES (%s, %s, %s) ON CONFLICT (project_id, machine)"
            " DO UPDATE SET working_dir = excluded.working_dir",
            (p.id, p.machine or "", clean(p.working_dir)),
        )

    def _put_thread(self, thread: ThreadFields) -> Cursor:
        """Upsert the thread row and recompute the user's choices on it; returns the cursor
        whose rows are the titles to index (``_index_titles``)."""
        row: dict[str, Any] = {**thread}
        for key in ("source_detail", "git"):
            row[key] = json_text(row.get(key))
        tokens = row.pop("tokens", None) or {}
        for key in TOKEN_KEYS:
            row[f"tokens_{key}"] = int(tokens.get(key, 0))
        self._x(_UPSERT_THREAD, {c: clean(row.get(c)) for c in ("id", *THREAD_COLUMNS)})
        titles = self._x(_APPLY_USER, ([row["id"]],))
        if row.get("project_id"):
            self._x(_PROJECT_FROM_THREADS, {"id": row["project_id"]})
        return titles

    def _fresh_threads(self, messages: list[MessageValues]) -> Callable[[], set[str]]:
        """Queue the question "which threads of these messages have none stored at or past
        the batch's first index?" and return how to read the answer.

        Their rows cannot conflict, so they may go in by COPY instead of upserts: a first
        backfill's bulk. Every writer of a thread's messages holds the thread's lock to its
        commit, so no other process can add such a row between the question and the COPY.
        Small batches (a live tail's few lines) stay upserts in the pipeline."""
        firsts: dict[str, int] = {}
        for m in messages:
            firsts[m[0]] = min(m[1], firsts.get(m[0], m[1]))
        for tid in sorted(firsts):  # in one order, as every batch takes them
            self._x("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"messages\n{tid}",))
        unique = len({(m[0], m[1]) for m in messages}) == len(messages)
        if len(messages) < COPY_MIN_ROWS or not unique:
            return set
        asked = {
            tid: self._x(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE thread_id = %s AND idx >= %s)",
                (tid, first),
            )
            for tid, first in firsts.items()
        }

        def answer() -> set[str]:
            return {tid for tid, cur in asked.items() if not first_value(cur)}

        return answer

    def _patch_data(self, thread_id: str, patches: list[tuple[int, dict[str, Any]]]) -> None:
        """Merge each patch into its message's ``data`` (in order: one message may have
        several)."""
        idxs = sorted({idx for idx, _ in patches})
        rows = self._x(
            "SELECT idx, data FROM messages WHERE thread_id = %s AND idx = ANY(%s)",
            (thread_id, idxs),
        ).fetchall()
        data = {int(r[0]): orjson.loads(r[1]) for r in rows}
        for idx, patch in patches:
            if idx in data:
                data[idx] = merge_patch(data[idx], patch)
        with self._db.get().cursor() as cur:
            cur.executemany(
                "UPDATE messages SET data = %s WHERE thread_id = %s AND idx = %s",
                [(clean(orjson.dumps(d).decode()), thread_id, idx) for idx, d in data.items()],
            )

    def _apply_user(self, thread_ids: list[str]) -> None:
        """Recompute the user's choices on these threads, and re-index their titles."""
        self._index_titles(self._x(_APPLY_USER, (thread_ids,)))

    def _index_titles(self, titles: Cursor) -> None:
        """Index the titles ``_APPLY_USER`` returned."""
        with self._db.get().cursor() as cur:
            cur.executemany(
                "UPDATE threads SET title_search = %s::tsvector WHERE id = %s",
                [(tsvector(r[1] or ""), r[0]) for r in titles.fetchall()],
            )

    def _put_source(self, s: SourceRow) -> None:
        self._x(
            _UPSERT_SOURCE,
            (self.machine, clean(s.path), clean(s.codex_home), s.thread_id, s.generation,
             s.dev, s.inode, s.size, s.mtime_ns, s.offset, s.lines, s.fingerprint,
             s.fingerprint_len, s.status, clean(s.error), orjson.dumps(s.skipped).decode(),
             clean(json_text(s.state)), int(time.time() * 1000)),
        )  # fmt: skip

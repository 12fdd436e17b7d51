"""PostgresStore: the backend for several replicas and machines sharing one database.

The same contract as ``SQLiteStore`` (``store.interface.Store``), on psycopg 3 with a pool of
connections per process (``_pg_connection``). Each write is one transaction ending with one
commit-log row and a ``NOTIFY``; versions are handed out under a transaction-scoped advisory
lock held to the commit, so they become visible in version order: a reader that has seen
version V has seen every version below it, whichever process wrote them.

Files are keyed by machine as well as path (two machines may have the same home path); the
store's ``machine`` scopes every question about files. This module holds the transactions and
every write but ingest's (``_pg_ingest``); reads come from ``_pg_reads``, searches from
``_pg_search`` and the device tables from ``_pg_devices``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg

from sessionbase.codex.skills import Skill, SkillProblem
from sessionbase.errors import IngestBusy
from sessionbase.store import _pg_migrations, decisions
from sessionbase.store._pg_connection import Borrowed, Connection, connect, redacted
from sessionbase.store._pg_devices import PgDevices
from sessionbase.store._pg_ingest import PgIngest, clean, first_value, json_text
from sessionbase.store._pg_search import PgSearch
from sessionbase.store.base import (
    AUTH_ENTITIES,
    Entity,
    IngestBatch,
    ReplicaBeat,
    SourceRow,
    SourceStatus,
    UserChange,
)

COMMIT_CHANNEL = "sessionbase_commits"
COMMIT_LOCK = 0x5E55_0002  # pg_advisory_xact_lock key held from a version's choice to commit
COMMIT_LOG_RETENTION_NS = 24 * 3600 * 10**9
# A grouped pass that wrote this many messages leaves fresh planner statistics behind: a first
# backfill otherwise leaves the tables looking empty to the planner until autovacuum's next
# round, and a search then walks every message instead of the GIN index.
ANALYZE_AFTER_MESSAGES = 10_000
REPLICA_ALIVE_MS = 15_000  # a replica whose last heartbeat is older is not listed

# The next version is past the newest (and no earlier than now): run under COMMIT_LOCK.
_LOG_COMMIT = """
WITH logged AS (
  INSERT INTO commit_log (version, touched)
  SELECT greatest(%s::bigint, coalesce(max(version), 0) + 1), %s FROM commit_log
  RETURNING version)
SELECT version, pg_notify(%s, version::text) FROM logged
"""


class PostgresStore(PgIngest, PgSearch, PgDevices):
    """A sessionbase database on PostgreSQL. One instance per thread, like ``SQLiteStore``;
    any number of processes on any number of machines may share the database."""

    in_process = False

    def __init__(
        self,
        url: str,
        *,
        readonly: bool = False,
        machine: str | None = None,
    ) -> None:
        self.url = url
        self.location = redacted(url)
        self.machine = machine or socket.gethostname()
        self._db = Borrowed(url)
        with self._db.errors(f"cannot open database {self.location}"):
            _pg_migrations.migrate(self._db.get(), readonly=readonly)
        self.on_commit: Callable[[int], None] | None = None
        self._group_seconds: float | None = None
        self._group_began = 0.0
        self._group_touched: list[str] = []
        self._group_messages = 0  # written by the grouped pass under way
        self._fence: dict[str, int] = {}  # codex home -> ingest token this writer holds
        self._claim: Connection | None = None  # holds the ingest claim's advisory locks

    @property
    def vector_location(self) -> str:
        """Vectors live in the database itself (the ``vectors`` table)."""
        return self.url

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.release()
        if self._claim is not None:
            # Free the claim before returning: a closed connection frees its locks only once
            # its server process has ended, after this returns (and after the next claim, on
            # a busy machine). A standby, or the next command, takes over at once.
            with contextlib.suppress(psycopg.Error):
                self._claim.execute("SELECT pg_advisory_unlock_all()")
            self._claim.close()
            self._claim = None

    def checkpoint_in_background(self) -> None:
        """PostgreSQL checkpoints on its own: nothing to hand over."""

    # ------------------------------------------------------------------ transactions

    def _begin(self) -> None:
        if self._group_touched or self._db.in_transaction:
            self._end_group()
        self._x("BEGIN")

    @contextmanager
    def grouped_commits(self, seconds: float = 0.25) -> Iterator[None]:
        """As ``SQLiteStore.grouped_commits``: ingest commits share transactions of up to
        ``seconds``, each file's rows still together with its offset."""
        self._group_seconds = seconds
        self._group_messages = 0
        try:
            yield
        finally:
            self._group_seconds = None
            if self._db.in_transaction:
                self._end_group()
        if self._group_messages >= ANALYZE_AFTER_MESSAGES:  # a pass that went through
            with self._db.errors("cannot analyze the ingested tables"):
                self._x("ANALYZE messages, threads, units")

    def _end_group(self) -> int | None:
        touched, self._group_touched = self._group_touched, []
        if not self._db.in_transaction:
            return None
        with self._db.errors("cannot commit ingested files"):
            return self._finish(touched)

    def _finish(self, touched: list[str]) -> int:
        version = self._log_commit(touched)
        self._x("COMMIT")
        if self.on_commit is not None:
            self.on_commit(version)
        return version

    def _log_commit(self, touched: list[str]) -> int:
        """The commit-log row and its NOTIFY, under the commit lock: versions become visible
        in order (the lock is released only after the commit is visible). One round trip:
        the ingest claim is checked before the caller commits."""
        with self._db.get().pipeline():
            fenced = self._ask_fence()
            self._x("SELECT pg_advisory_xact_lock(%s)", (COMMIT_LOCK,))
            logged = self._x(
                _LOG_COMMIT,
                (time.time_ns(), orjson.dumps(sorted(set(touched))).decode(), COMMIT_CHANNEL),
            )
        fenced()
        version = int(first_value(logged))
        if version % 500 == 0:
            self._x(
                "DELETE FROM commit_log WHERE version < %s", (version - COMMIT_LOG_RETENTION_NS,)
            )
        return version

    def fence(self, tokens: dict[str, int]) -> None:
        """From now on, refuse to commit unless this writer still holds the ingest claim on
        these Codex homes (``home -> token``; see ``_pg_claims``)."""
        self._fence = dict(tokens)

    def _ask_fence(self) -> Callable[[], None]:
        """Queue the check of the ingest claim; the returned function raises IngestBusy if
        another process took it over. The rows stay share-locked to the commit, so a
        takeover waits for it."""
        if not self._fence:
            return lambda: None
        expected = dict(self._fence)
        held = self._x(
            "SELECT codex_home, token FROM ingesters WHERE machine = %s"
            " AND codex_home = ANY(%s) FOR SHARE",
            (self.machine, list(expected)),
        )

        def check() -> None:
            if {r[0]: int(r[1]) for r in held.fetchall()} != expected:
                raise IngestBusy("another process took over ingesting these Codex homes")

        return check

    # ------------------------------------------------------------------ ingest

    def commit(self, batch: IngestBatch) -> int | None:
        with self._db.errors(f"ingest commit for {batch.source.path} failed"):
            try:
                if self._group_seconds is None:
                    self._begin()
                    return self._finish(self._write_batch(batch))
                if not self._db.in_transaction:
                    self._begin()
                    self._group_began = time.monotonic()
                self._group_touched += self._write_batch(batch)
                self._group_messages += len(batch.messages)
                if time.monotonic() - self._group_began >= self._group_seconds:
                    return self._end_group()
                return None
            except BaseException:
                self._group_touched = []
                raise

    def move_source(self, old_path: str, new: SourceRow, archived: bool) -> int:
        with self._db.errors(f"cannot record move of {old_path}"):
            self._begin()
            self._x(
                "DELETE FROM sources WHERE machine = %s AND path = %s", (self.machine, old_path)
            )
            self._put_source(new)
            touched = [f"sources:{old_path}", f"sources:{new.path}"]
            if new.thread_id:
                self._x(
                    "UPDATE threads SET rollout_path = %s, archived = %s WHERE id = %s",
                    (clean(new.path), int(archived), new.thread_id),
                )
                self._x(
                    "UPDATE quarantine SET path = %s WHERE machine = %s AND path = %s",
                    (clean(new.path), self.machine, old_path),
                )
                touched.append(f"threads:{new.thread_id}")
            return self._finish(touched)

    def mark_source(self, path: str, status: SourceStatus, error: str | None = None) -> None:
        with self._db.errors(f"cannot update source {path}"):
            self._x(
                "UPDATE sources SET status = %s, error = %s, updated_at = %s"
                " WHERE machine = %s AND path = %s",
                (status, clean(error), int(time.time() * 1000), self.machine, clean(path)),
            )

    def insert_source(self, source: SourceRow) -> None:
        with self._db.errors(f"cannot record source {source.path}"):
            self._put_source(source)

    def replace_skills(
        self, skills: list[Skill], problems: list[SkillProblem], project_ids: dict[str, str]
    ) -> int | None:
        rows = sorted(
            tuple(map(clean, (
                s.id, s.scope, s.name, s.description, s.short_description, s.license,
                json_text(s.allowed_tools), orjson.dumps(s.metadata).decode(), s.path,
                project_ids.get(s.project_dir) if s.project_dir else None,
            )))
            for s in skills
        )  # fmt: skip
        problem_rows = sorted({(clean(p.path), p.scope, clean(p.reason)) for p in problems})
        with self._db.errors("cannot store skills"):
            # Each machine finds skills on its own disk: it replaces only its own.
            current = sorted(tuple(r) for r in self._x(
                "SELECT id, scope, name, description, short_description, license, allowed_tools,"
                " metadata, path, project_id FROM skills WHERE machine = %s",
                (self.machine,)).fetchall())  # fmt: skip
            current_problems = sorted(
                tuple(r)
                for r in self._x(
                    "SELECT path, scope, reason FROM skill_problems WHERE machine = %s",
                    (self.machine,),
                )
            )
            if current == rows and current_problems == problem_rows:
                return None
            self._begin()
            self._x("DELETE FROM skills WHERE machine = %s", (self.machine,))
            self._x("DELETE FROM skill_problems WHERE machine = %s", (self.machine,))
            with self._db.get().cursor() as cur:
                cur.executemany(
                    "INSERT INTO skills (id, scope, name, description, short_description,"
                    " license, allowed_tools, metadata, path, project_id, machine)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [(*r, self.machine) for r in rows],
                )
                cur.executemany(
                    "INSERT INTO skill_problems (path, scope, reason, machine)"
                    " VALUES (%s, %s, %s, %s)",
                    [(*r, self.machine) for r in problem_rows],
                )
            return self._finish(["skills:*"])

    def set_session_names(self, names: dict[str, tuple[str, str | None]]) -> int | None:
        if not names:
            return None
        with self._db.errors("cannot store session names"):
            self._begin()
            with self._db.get().cursor() as cur:
                cur.executemany(
                    "INSERT INTO session_index (thread_id, name, updated_at) VALUES (%s, %s, %s)"
                    " ON CONFLICT (thread_id) DO UPDATE SET name = excluded.name,"
                    " updated_at = excluded.updated_at",
                    [(tid, clean(name), at) for tid, (name, at) in names.items()],
                )
            self._apply_user(list(names))
            return self._finish([f"threads:{tid}" for tid in names])

    # ------------------------------------------------------------------ user decisions

    def apply_user_changes(
        self,
        changes: list[UserChange],
        result: Any,
        idempotency: tuple[str, int] | None,
        call: str | None = None,
    ) -> tuple[int, Any]:
        """As ``SQLiteStore.apply_user_changes``. Replicas share the mutation log: the same
        key sent to two replicas at once is applied once (the second waits on the first's
        row lock, then finds it)."""
        with self._db.errors("cannot store the change"):
            self._begin()
            if idempotency is not None:
                self._x(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, %s))",
                    (idempotency[0], idempotency[1]),
                )
                row = self._x(
                    "SELECT version, result FROM mutation_log"
                    " WHERE session_id = %s AND request_id = %s",
                    idempotency,
                ).fetchone()
                if row is not None:
                    self._x("COMMIT")
                    return int(row[0]), orjson.loads(row[1])
            touched = [self._apply_change(c) for c in changes]
            now = int(time.time() * 1000)
            version = self._log_commit(touched or ["user_metadata:*"])
            if idempotency is not None:
                self._x(
                    "INSERT INTO mutation_log (session_id, request_id, result, version, ts, call)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (*idempotency, clean(orjson.dumps(result).decode()), version, now, call),
                )
            self._x("COMMIT")
        if self.on_commit is not None:
            self.on_commit(version)
        return version, result

    def _apply_change(self, change: UserChange) -> str:
        if change.entity in AUTH_ENTITIES:
            return self._apply_auth_change(change)
        now = int(time.time() * 1000)
        for key, value in change.values.items():
            if value is None:
                self._x(
                    "DELETE FROM user_metadata WHERE entity = %s AND id = %s AND key = %s",
                    (change.entity, change.id, key),
                )
            else:
                self._x(
                    "INSERT INTO user_metadata (entity, id, key, value, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (entity, id, key) DO UPDATE SET"
                    " value = excluded.value, updated_at = excluded.updated_at",
                    (change.entity, change.id, key, clean(orjson.dumps(value).decode()), now),
                )
        if change.entity == Entity.THREAD:
            self._apply_user([change.id])
            return f"threads:{change.id}"
        record = change.values.get("record")
        if isinstance(record, dict):
            self._x(
                "INSERT INTO projects (id, name, working_dir, repo_url, machine, created_at,"
                " updated_at, origin) VALUES (%s, %s, %s, %s, %s, %s, %s, 'user')"
                " ON CONFLICT (id) DO NOTHING",
                (change.id, clean(record.get("name") or change.id),
                 clean(record.get("working_dir") or ""), clean(record.get("repo_url")),
                 record.get("machine"), now, now),
            )  # fmt: skip
        for key in ("name", "working_dir", "repo_url"):
            if isinstance(change.values.get(key), str):
                self._x(
                    f"UPDATE projects SET {key} = %s, updated_at = %s WHERE id = %s",
                    (clean(change.values[key]), now, change.id),
                )
        if "hidden" in change.values:
            self._x(
                "UPDATE projects SET hidden = %s WHERE id = %s",
                (int(bool(change.values["hidden"])), change.id),
            )
        return f"projects:{change.id}"

    def user_changes(self) -> list[UserChange]:
        with self._db.errors("cannot read the user decisions"):
            rows = self._x(
                "SELECT entity, id, key, value FROM user_metadata ORDER BY entity, id, key"
            ).fetchall()
        return decisions.grouped(rows)

    @property
    def user_decisions_file(self) -> None:
        """None: the database server (and its backups) keeps the decisions."""
        return None

    def integrity_problems(self) -> list[str]:
        """Nothing: PostgreSQL checksums and checks its own pages."""
        return []

    def decisions(self) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT entity, id, key, value, updated_at FROM user_metadata"
            ' ORDER BY entity, id COLLATE "C", key'
        )

    def cleared_decisions(self) -> list[dict[str, Any]]:
        """None: push goes from a local SQLite mirror to this database, never from it."""
        return []

    def recorded_mutation(
        self, session_id: str, request_id: int
    ) -> tuple[int, Any, str | None] | None:
        with self._db.errors("cannot read the mutation log"):
            row = self._x(
                "SELECT version, result, call FROM mutation_log"
                " WHERE session_id = %s AND request_id = %s",
                (session_id, request_id),
            ).fetchone()
        return None if row is None else (int(row[0]), orjson.loads(row[1]), row[2])

    # ------------------------------------------------------------------ snapshots, settings

    @contextmanager
    def snapshot(self) -> Iterator[int]:
        """A repeatable-read transaction; yields the newest version it sees."""
        with self._db.errors("cannot open a snapshot"):
            if self._db.in_transaction:
                self._end_group()
            self._x("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            version = self.last_version()
        try:
            yield version
        finally:
            with self._db.errors("cannot end a snapshot"):
                if self._db.in_transaction:
                    self._x("COMMIT")

    def get_setting(self, key: str) -> str | None:
        with self._db.errors("cannot read a setting"):
            row = self._x("SELECT value FROM settings_kv WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put_setting(self, key: str, value: str) -> None:
        with self._db.errors("cannot store a setting"):
            self._x(
                "INSERT INTO settings_kv (key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, clean(value)),
            )

    def replace_units(
        self, thread_id: str, units: list[tuple[int, int, str, str, str]], from_idx: int = 0
    ) -> None:
        with self._db.errors(f"cannot store units of {thread_id}"):
            self._begin()
            self._x(
                "DELETE FROM units WHERE thread_id = %s AND start_idx >= %s",
                (thread_id, from_idx),
            )
            with self._db.get().cursor() as cur:
                cur.executemany(
                    "INSERT INTO units (thread_id, start_idx, end_idx, role, content_hash, text)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    [(thread_id, *map(clean, u)) for u in units],
                )
            self._finish([f"units:{thread_id}"])

    def claim_ingest(self, homes: list[str]) -> bool:
        """Session advisory locks, one per (machine, home), on a connection of this store's
        own: they last while it does, so a process that dies (even by kill -9) frees them at
        once and a standby takes over. Each claim bumps the home's token in ``ingesters``;
        every commit of this store checks the tokens (``fence``)."""
        conn = self._claim
        if conn is None or conn.closed or conn.broken:
            self._claim = conn = connect(self.url, "sessionbase-ingest")
        keys = [f"ingest\n{self.machine}\n{home}" for home in homes]
        tokens: dict[str, int] = {}
        with self._db.errors("cannot claim the ingest"):
            taken = []
            try:
                for key in keys:
                    row = conn.execute(
                        "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)
                    ).fetchone()
                    if not row or not row[0]:
                        return False
                    taken.append(key)
                now = int(time.time() * 1000)
                for home in homes:
                    row = conn.execute(
                        "INSERT INTO ingesters (machine, codex_home, holder, pid, token, since)"
                        " VALUES (%s, %s, %s, %s, 1, %s) ON CONFLICT (machine, codex_home)"
                        " DO UPDATE SET holder = excluded.holder, pid = excluded.pid,"
                        " token = ingesters.token + 1, since = excluded.since RETURNING token",
                        (self.machine, home, f"{socket.gethostname()} pid {os.getpid()}",
                         os.getpid(), now),
                    ).fetchone()  # fmt: skip
                    assert row is not None
                    tokens[home] = int(row[0])
                taken = []
            finally:
                for key in taken:  # not all of them: give back what was taken
                    conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
        self.fence(tokens)
        return True

    def claim_held(self) -> bool:
        conn = self._claim
        if conn is None or conn.closed or conn.broken:
            return False
        try:
            conn.execute("SELECT 1")
        except Exception:
            return False
        return True

    def heartbeat(self, beat: ReplicaBeat) -> None:
        now = int(time.time() * 1000)
        with self._db.errors("cannot record this replica's heartbeat"):
            self._x(
                "INSERT INTO replicas (id, machine, pid, address, started_at, heartbeat_at,"
                " applied) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
                " heartbeat_at = excluded.heartbeat_at, applied = excluded.applied,"
                " address = excluded.address",
                (beat.id, beat.machine, beat.pid, beat.address, beat.started_at, now,
                 beat.applied),
            )  # fmt: skip
            self._x("DELETE FROM replicas WHERE heartbeat_at < %s", (now - 3600_000,))

    def replicas(self) -> list[dict[str, Any]]:
        now = int(time.time() * 1000)
        rows = self._dicts(
            "SELECT id, machine, pid, address, started_at, heartbeat_at, applied,"
            " greatest((SELECT coalesce(max(version), 0) FROM commit_log) - applied, 0) AS lag"
            ' FROM replicas WHERE heartbeat_at >= %s ORDER BY machine COLLATE "C", started_at',
            (now - REPLICA_ALIVE_MS,),
        )
        return [{**r, "lag": int(r["lag"])} for r in rows]

    def ingesters(self) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT machine, codex_home, holder, pid, since FROM ingesters"
            ' ORDER BY machine COLLATE "C", codex_home COLLATE "C"'
        )

    def announce(self, touched: list[str]) -> int:
        with self._db.errors("cannot write the commit log"):
            self._begin()
            return self._finish(touched)

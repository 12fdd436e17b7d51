"""``Store``: everything the rest of sessionbase asks of a database, whatever the backend.

Ingest, the live engine, search and the CLI see only this protocol; each backend implements
all of it (``store._contract`` has mypy check that). Open one with ``store.open_store``.

One instance serves one thread at a time. Every method raises ``StoreError`` when the
database fails; none returns a half-applied write. Versions are commit-log versions:
monotonic integers, nanoseconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

from sessionbase.store.base import (
    IngestBatch,
    NewDevice,
    ReplicaBeat,
    SearchFilter,
    SourceRow,
    SourceStatus,
    ThreadFilter,
    UserChange,
)
from sessionbase.store.rows import StoredMessage, ThreadRow
from sessionbase.store.textquery import TextQuery

if TYPE_CHECKING:  # the skills parser (and YAML) loads only where skills are read
    from sessionbase.codex.skills import Skill, SkillProblem

Unit = tuple[int, int, str, str, str]
"""One search unit as stored: (start_idx, end_idx, role, content_hash, text)."""


class Store(Protocol):
    """A sessionbase database: ingest's rows and offsets, user decisions, the commit log."""

    on_commit: Callable[[int], None] | None
    """Called on the writing thread after each commit this instance makes, with its
    version (the live engine's wake-up)."""

    @property
    def vector_location(self) -> str:
        """Where this database's embeddings live, for ``open_vectors``: the directory beside
        a SQLite file, or the PostgreSQL URL itself."""
        ...

    @property
    def in_process(self) -> bool:
        """Whether reads run inside this process (SQLite) and so take microseconds: a
        server's event loop may run them itself. False for a database across a network,
        whose reads may wait for it."""
        ...

    @property
    def user_decisions_file(self) -> Path | None:
        """Where a copy of the user decisions lives beside the database, to be restored
        into it when it is rebuilt (``store.decisions``); None where the database keeps them
        safe itself (a database server and its backups)."""
        ...

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None:
        """Close the store."""
        ...

    def close(self) -> None:
        """Release the connection (and any helper it started); the store is unusable after."""
        ...

    def checkpoint_in_background(self) -> None:
        """From now on, no commit of this instance waits for the database's housekeeping (a
        client is waiting on it); a backend without such work does nothing."""
        ...

    # ------------------------------------------------------------------ ingest writes

    def commit(self, batch: IngestBatch) -> int | None:
        """Apply the batch and its file offset atomically; return its commit version, or None
        while it waits in a transaction shared by ``grouped_commits``."""
        ...

    def grouped_commits(self, seconds: float = 0.25) -> AbstractContextManager[None]:
        """While open, ingest commits may share transactions of up to ``seconds``; each still
        holds every file's rows together with its offset. Any other write ends the open one."""
        ...

    def move_source(self, old_path: str, new: SourceRow, archived: bool) -> int:
        """A tracked file was renamed (e.g. archived): keep its rows, update path and flag;
        return the commit version."""
        ...

    def mark_source(self, path: str, status: SourceStatus, error: str | None = None) -> None:
        """Record a file-level problem (gone, unreadable, duplicate) without touching rows."""
        ...

    def insert_source(self, source: SourceRow) -> None:
        """Record a file that produced no rows (an unusable or duplicate file)."""
        ...

    def replace_skills(
        self, skills: list[Skill], problems: list[SkillProblem], project_ids: dict[str, str]
    ) -> int | None:
        """Make the skills table equal to ``skills``; return a version if anything changed."""
        ...

    def set_session_names(self, names: dict[str, tuple[str, str | None]]) -> int | None:
        """Upsert ``thread_id -> (name, updated_at)`` from session_index.jsonl; return the
        version, or None when there was nothing to store."""
        ...

    def replace_units(self, thread_id: str, units: list[Unit], from_idx: int = 0) -> None:
        """Replace a thread's search units starting at ``from_idx`` with these, in one commit."""
        ...

    def announce(self, touched: list[str]) -> int:
        """A commit-log entry with no rows: tells live queries that derived state changed."""
        ...

    # ------------------------------------------------------------------ user decisions

    def apply_user_changes(
        self,
        changes: list[UserChange],
        result: Any,
        idempotency: tuple[str, int] | None,
        call: str | None = None,
    ) -> tuple[int, Any]:
        """Store user decisions atomically; return (commit version, result). With an
        idempotency key ``(session_id, request_id)`` seen before, nothing is written and the
        first application's version and result are returned. ``call`` (what was called, as
        a digest) is logged with the key. Changes to ``AUTH_ENTITIES`` go to the device
        tables and the audit log, touching ``devices:<id>``."""
        ...

    def user_changes(self) -> list[UserChange]:
        """Every user decision stored, one change per thread or project (in no set order):
        applying them to an empty database brings them all back."""
        ...

    def decisions(self) -> list[dict[str, Any]]:
        """Every user decision as stored: ``entity, id, key, value`` (JSON text),
        ``updated_at`` (ms); what ``sessionbase push`` carries to another database."""
        ...

    def cleared_decisions(self) -> list[dict[str, Any]]:
        """The decisions the user cleared (an unpin, a rename undone): ``entity, id, key``,
        ``cleared_at`` (ms), so that ``sessionbase push`` clears them in the shared database
        too. A local SQLite mirror keeps them; a shared database, never pushed from, has
        none."""
        ...

    def recorded_mutation(
        self, session_id: str, request_id: int
    ) -> tuple[int, Any, str | None] | None:
        """(version, result, call) of a mutation already applied under this idempotency key;
        ``call`` is None for one logged before calls were recorded."""
        ...

    # ------------------------------------------------------------------ devices

    def device(self, device_id: str) -> dict[str, Any] | None:
        """One paired device with its ``secret_hash`` (revoked ones too), or None."""
        ...

    def devices(self) -> list[dict[str, Any]]:
        """Every paired device, revoked ones too, newest first: ``id, name, scopes`` (a
        list), ``created_at, last_seen_at, last_ip, user_agent, revoked_at``; no secrets."""
        ...

    def redeem_pairing(self, code_hash: str, now: int, device: NewDevice) -> dict[str, Any] | None:
        """Use up a live pairing code and create its device, in one transaction: the device
        (as ``devices`` lists it) with the scopes the code was made with, or None when no
        unused, unexpired code has this hash. A code is used once, whichever process asks."""
        ...

    def live_pairing_codes(self, now: int) -> int:
        """How many pairing codes are unused and unexpired."""
        ...

    def touch_device(
        self, device_id: str, seen_at: int, address: str | None, user_agent: str | None
    ) -> None:
        """Record when and from where a device was last seen (no commit-log entry)."""
        ...

    def log_auth_event(
        self,
        event: str,
        *,
        device_id: str | None = None,
        address: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Append to the audit log (``paired``, ``token``, ``revoked``, ``failed`` …)."""
        ...

    def auth_events(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest audit-log entries first: ``ts, event, device_id, address, detail``."""
        ...

    # ------------------------------------------------------------------ health

    def integrity_problems(self) -> list[str]:
        """The backend's own check of the whole database (slow: it reads every page of a
        SQLite file): what it found wrong, or nothing. A backend that checks its own storage
        returns nothing."""
        ...

    # ------------------------------------------------------------------ settings

    def get_setting(self, key: str) -> str | None:
        """A value kept in the database by sessionbase itself (read offsets, index versions)."""
        ...

    def put_setting(self, key: str, value: str) -> None: ...

    # ------------------------------------------------------------------ versions

    def snapshot(self) -> AbstractContextManager[int]:
        """A read transaction: every read inside sees one state; yields its commit version."""
        ...

    def last_version(self) -> int:
        """The newest commit's version (0 for an empty database)."""
        ...

    def oldest_version(self) -> int:
        """The oldest version the commit log still holds (older entries are pruned)."""
        ...

    def commits_since(self, version: int) -> list[tuple[int, list[str]]]:
        """Commit-log entries after ``version``, oldest first: (version, touched keys such as
        ``threads:<id>``, ``messages:<id>``, ``skills:*``)."""
        ...

    # ------------------------------------------------------------------ sources

    def source(self, path: str) -> SourceRow | None:
        """Where ingest stands in one file, with the normalizer state to read on from."""
        ...

    def source_head(self, path: str) -> SourceRow | None:
        """A source without its normalizer state (cheap: enough to see if a file changed)."""
        ...

    def sources(self) -> list[SourceRow]:
        """Every tracked file, by path."""
        ...

    def sources_by_inode(self, dev: int, inode: int) -> list[SourceRow]: ...

    def sources_for_thread(self, thread_id: str) -> list[SourceRow]: ...

    def settled_files(self) -> set[tuple[str, int, int, int]]:
        """(path, size, mtime_ns, inode) of every file read to its end and in good standing."""
        ...

    def tracked_paths(self) -> set[str]:
        """Paths of every source not yet known to be gone."""
        ...

    # ------------------------------------------------------------------ threads, messages

    def thread(self, thread_id: str) -> ThreadRow | None:
        """The thread with exactly this id, or None (``thread_ids_starting`` finds prefixes)."""
        ...

    def threads(self, flt: ThreadFilter) -> list[ThreadRow]:
        """Threads passing the filter, most recently updated first."""
        ...

    def subagent_counts(self, thread_ids: list[str]) -> dict[str, int]:
        """How many sub-agent threads each of these threads spawned (absent: none)."""
        ...

    def transcript_length(self, thread_id: str) -> int:
        """How many rows a thread's transcript has (its messages are numbered 0 to n - 1)."""
        ...

    def thread_ids(self) -> list[str]: ...

    def thread_ids_starting(self, prefix: str, limit: int = 5) -> list[str]:
        """Ids of the threads whose id starts with ``prefix``, at most ``limit``, in order."""
        ...

    def messages(self, thread_id: str) -> list[StoredMessage]:
        """A thread's whole transcript in order."""
        ...

    def messages_page(
        self, thread_id: str, after: int, until: int | None, limit: int
    ) -> list[StoredMessage]:
        """Messages with ``after < idx <= until`` in order, at most ``limit``."""
        ...

    def messages_tail(self, thread_id: str, n: int) -> list[StoredMessage]:
        """The newest ``n`` messages, oldest first."""
        ...

    # ------------------------------------------------------------------ projects, skills

    def projects(self, include_hidden: bool = False) -> list[dict[str, Any]]:
        """Projects with their thread counts, most recently active first."""
        ...

    def skills(self, project_id: str | None = None) -> list[dict[str, Any]]:
        """Skills visible from a project (its repo skills and every other scope), or all."""
        ...

    def skill_problems(self) -> list[dict[str, Any]]: ...

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        """Everything `sessionbase status` reports about the mirror."""
        ...

    def summary(self) -> dict[str, Any]:
        """A small status for app headers: cheap enough to recompute on every commit (counts,
        files by status, skipped lines, errors, ``lag_bytes`` seen on disk but not yet read)."""
        ...

    def totals(self) -> dict[str, int]:
        """Thread and message counts (cheap at any size)."""
        ...

    # ------------------------------------------------------------------ processes

    def claim_ingest(self, homes: list[str]) -> bool:
        """Become the one process that ingests these Codex homes of this store's machine
        into a shared database: True once held (from then on this store's commits fail if
        another process took the claim over), False while another process holds it. A SQLite
        file answers True: its data dir's lock file (``ingest.mirror.IngestLock``) decides."""
        ...

    def claim_held(self) -> bool:
        """Whether this store still holds the ingest claim it took (its connection alive)."""
        ...

    def heartbeat(self, beat: ReplicaBeat) -> None:
        """Record that a serving process is alive (a shared database lists them in
        ``replicas``; a SQLite file has one process and keeps nothing)."""
        ...

    def replicas(self) -> list[dict[str, Any]]:
        """Serving processes that sent a heartbeat lately: ``id, machine, pid, address,
        started_at, heartbeat_at, applied, lag`` (versions behind the newest commit)."""
        ...

    def ingesters(self) -> list[dict[str, Any]]:
        """Who ingests each (machine, Codex home) of a shared database: ``machine,
        codex_home, holder, pid, since``."""
        ...

    # ------------------------------------------------------------------ search

    def search_messages(
        self, query: TextQuery, flt: SearchFilter, limit: int
    ) -> list[dict[str, Any]]:
        """Full-text hits for every term of ``query``, best first, at most ``limit``: message
        fields, thread title and facts, and ``rank``, a BM25-like relevance negated (below
        zero, lower is better). Raises StoreError if the backend refuses the query."""
        ...

    def search_thread_titles(
        self, query: TextQuery, flt: SearchFilter, limit: int
    ) -> dict[str, float]:
        """Threads whose title matches every term: id → rank (as ``search_messages``)."""
        ...

    def units_for_hashes(self, hashes: list[str], flt: SearchFilter) -> list[dict[str, Any]]:
        """Units with these content hashes that pass the filter, with their thread's facts."""
        ...

    def units_of(self, thread_id: str) -> list[dict[str, Any]]:
        """A thread's units in order."""
        ...

    def unit_at(self, thread_id: str, idx: int) -> dict[str, Any] | None:
        """The unit holding message ``idx``, if any."""
        ...

    def unit_hashes(self, newest_first: bool = False) -> list[str]:
        """The content hash of every unit (what the semantic index must hold), once each;
        ``newest_first``: those of the most recently active threads first."""
        ...

"""The values that cross the storage interface, the same for every backend.

Writes arrive as one ``IngestBatch`` per transaction: rows plus the new file offset, committed
together with one commit-log entry. Reads take filters; user decisions arrive as
``UserChange``s. The interface itself is ``store.interface.Store``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sessionbase.store.rows import ExtraRow, MessageValues, QuarantineRow, ThreadFields


class SourceStatus(StrEnum):
    """Where a tracked file stands."""

    OK = "ok"
    GONE = "gone"  # no longer on disk; its rows stay
    ERROR = "error"  # cannot be read or used; ``error`` says why
    DUPLICATE = "duplicate"  # a copy of a file that already feeds its thread


# A thread's mirrored columns (what ingest writes; user decisions live beside them), in the
# order both backends' upserts name them.
THREAD_COLUMNS = (
    "project_id", "machine", "source", "source_detail", "originator", "cli_version", "model",
    "model_provider", "cwd", "git", "title_auto", "name_event", "rollout_path",
    "forked_from_id", "parent_thread_id", "agent_role", "agent_nickname", "created_at",
    "updated_at", "message_count", "last_message_at", "snippet", "tokens_input",
    "tokens_cached", "tokens_output", "tokens_reasoning", "tokens_total", "archived",
)  # fmt: skip


@dataclass
class SourceRow:
    """Where ingest stands in one file."""

    path: str
    codex_home: str
    thread_id: str | None = None
    generation: str | None = None
    dev: int | None = None
    inode: int | None = None
    size: int = 0
    mtime_ns: int = 0
    offset: int = 0
    lines: int = 0
    fingerprint: str | None = None
    fingerprint_len: int = 0
    status: SourceStatus = SourceStatus.OK
    error: str | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    state: dict[str, Any] | None = None


@dataclass
class ProjectRow:
    id: str
    name: str
    working_dir: str
    repo_url: str | None = None
    repo_branch: str | None = None
    repo_commit: str | None = None
    machine: str | None = None
    created_at: int | None = None
    updated_at: int | None = None


@dataclass
class IngestBatch:
    """Everything one ingest transaction writes."""

    source: SourceRow
    thread: ThreadFields | None = None
    project: ProjectRow | None = None
    messages: list[MessageValues] = field(default_factory=list)
    patches: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    extras: list[ExtraRow] = field(default_factory=list)
    quarantine: list[QuarantineRow] = field(default_factory=list)
    reset_thread: str | None = None
    """Delete this thread's messages and extras first (the file was truncated or replaced)."""


ThreadKey = tuple[int | None, str]
"""A thread's place in the newest-first order: (updated_at, id); ties go by id."""


@dataclass(frozen=True)
class ThreadFilter:
    project_id: str | None = None
    source: str | None = None
    include_archived: bool = True
    include_subagents: bool = True
    limit: int = 50
    machine: str | None = None
    """Only threads that ran on this machine (several machines share a PostgreSQL database)."""
    pinned: bool | None = None
    """Only pinned threads (True), only unpinned ones (False), or both (None)."""
    parent_id: str | None = None
    """Only the sub-agent threads this thread spawned."""
    after: ThreadKey | None = None
    """Start after this place in the order (exclusive)."""
    until: ThreadKey | None = None
    """End at this place in the order (inclusive)."""


@dataclass(frozen=True)
class SearchFilter:
    """Restrictions applied inside the index query, not after it."""

    project_id: str | None = None
    thread_id: str | None = None
    role: str | None = None
    kind: str | None = None
    source: str | None = None
    since: int | None = None  # ms
    until: int | None = None  # ms
    include_subagents: bool = False
    machine: str | None = None


class Entity(StrEnum):
    """What a user decision is about (devices and pairings: see ``AUTH_ENTITIES``)."""

    THREAD = "thread"
    PROJECT = "project"
    DEVICE = "device"
    PAIRING = "pairing"


@dataclass(frozen=True)
class UserChange:
    """User decisions about one entity: key → JSON value, or None to clear it."""

    entity: Entity
    id: str
    values: dict[str, Any]


@dataclass(frozen=True)
class ReplicaBeat:
    """One serving process saying it is alive, and how far it has applied the commit log."""

    id: str
    machine: str
    pid: int
    address: str | None
    started_at: int  # ms
    applied: int  # the commit-log version its live queries are at


AUTH_ENTITIES = (Entity.DEVICE, Entity.PAIRING)
"""``UserChange`` entities the store applies to its device tables, not to user metadata.

``device``: ``{"name": str}``, ``{"revoked_at": ms}`` or ``{"removed": True}``;
``pairing`` (keyed by the code's hash): ``{"record": {"name", "scopes", "expires_at"}}``.
Each may carry ``by`` (who asked, for the audit log)."""


@dataclass(frozen=True)
class NewDevice:
    """A device about to be created by redeeming a pairing code."""

    id: str
    name: str | None  # None: the name the code was made with
    secret_hash: str
    address: str | None = None
    user_agent: str | None = None


def thread_conditions(flt: ThreadFilter, args: list[Any], mark: str) -> list[str]:
    """The conditions of ``flt`` both backends write alike (all but its page bounds, whose
    order is each backend's own), their parameters appended to ``args``; ``mark`` is the
    driver's placeholder (``?`` or ``%s``)."""
    where: list[str] = []
    for column, value in (("project_id", flt.project_id), ("source", flt.source),
                          ("machine", flt.machine)):  # fmt: skip
        if value:
            where.append(f"{column} = {mark}")
            args.append(value)
    if not flt.include_archived:
        where.append("coalesce(archived_by_user, archived) = 0")
    if flt.parent_id is not None:
        where.append(f"parent_thread_id = {mark}")
        args.append(flt.parent_id)
    elif not flt.include_subagents:
        where.append("parent_thread_id IS NULL AND coalesce(source, '') != 'subagent'")
    if flt.pinned is not None:
        where.append("pinned != 0" if flt.pinned else "pinned = 0")
    return where

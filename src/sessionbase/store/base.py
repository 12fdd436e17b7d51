"""The storage interface: what ingest writes and the read commands ask for.

SQLite implements it today; a PostgreSQL backend implements the same ``Store`` protocol, so no
caller changes. Writes arrive as one ``IngestBatch`` per transaction: rows plus the new file
offset, committed together with one commit-log entry.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sessionbase.codex.skills import Skill, SkillProblem
from sessionbase.store.rows import ExtraRow, MessageValues, QuarantineRow

MIN_ID_PREFIX = 4  # a shorter start of a thread id names no thread: it would match too many


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
    status: str = "ok"
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
    thread: dict[str, Any] | None = None
    project: ProjectRow | None = None
    messages: list[MessageValues] = field(default_factory=list)
    patches: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    extras: list[ExtraRow] = field(default_factory=list)
    quarantine: list[QuarantineRow] = field(default_factory=list)
    reset_thread: str | None = None
    """Delete this thread's messages and extras first (the file was truncated or replaced)."""


@dataclass(frozen=True)
class ThreadFilter:
    project_id: str | None = None
    source: str | None = None
    include_archived: bool = True
    include_subagents: bool = True
    limit: int = 50


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


class Store(Protocol):
    """A sessionbase database. Methods raise StoreError when the database fails."""

    def close(self) -> None: ...

    # writes
    def commit(self, batch: IngestBatch) -> int | None:
        """Apply the batch atomically; return its commit version (None while it waits in
        a transaction shared by grouped commits)."""
        ...

    def grouped_commits(self, seconds: float = 0.25) -> AbstractContextManager[None]:
        """While open, ingest commits may share transactions of up to ``seconds``."""
        ...

    def move_source(self, old_path: str, new: SourceRow, archived: bool) -> int:
        """A tracked file was renamed (e.g. archived): keep its rows, update path and flag."""
        ...

    def mark_source(self, path: str, status: str, error: str | None = None) -> None:
        """Record a file-level problem (gone, unreadable, duplicate) without touching rows."""
        ...

    def replace_skills(
        self, skills: list[Skill], problems: list[SkillProblem], project_ids: dict[str, str]
    ) -> int | None:
        """Make the skills table equal to ``skills``; return a version if anything changed."""
        ...

    def set_session_names(self, names: dict[str, tuple[str, str | None]]) -> int | None:
        """Upsert ``thread_id -> (name, updated_at)`` from session_index.jsonl."""
        ...

    def get_setting(self, key: str) -> str | None: ...

    def put_setting(self, key: str, value: str) -> None: ...

    # reads
    def source(self, path: str) -> SourceRow | None: ...

    def sources(self) -> list[SourceRow]: ...

    def sources_for_thread(self, thread_id: str) -> list[SourceRow]: ...

    def sources_by_inode(self, dev: int, inode: int) -> list[SourceRow]: ...

    def insert_source(self, source: SourceRow) -> None:
        """Record a file that produced no rows (an unusable or duplicate file)."""
        ...

    def threads(self, flt: ThreadFilter) -> list[dict[str, Any]]: ...

    def thread(self, thread_id: str) -> dict[str, Any] | None: ...

    def messages(self, thread_id: str) -> list[dict[str, Any]]: ...

    def projects(self) -> list[dict[str, Any]]: ...

    def skills(self) -> list[dict[str, Any]]: ...

    def skill_problems(self) -> list[dict[str, Any]]: ...

    def status(self) -> dict[str, Any]: ...

    def totals(self) -> dict[str, int]: ...

    def last_version(self) -> int: ...

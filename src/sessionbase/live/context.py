"""What a function may touch: reads that are recorded, and staged user decisions."""

from __future__ import annotations

from typing import Any, Protocol

from sessionbase.auth.keys import SigningKey
from sessionbase.auth.scopes import LOCAL, Identity
from sessionbase.errors import FunctionError
from sessionbase.live.readset import ReadSet
from sessionbase.store import Store
from sessionbase.store.base import Entity, ThreadFilter, UserChange
from sessionbase.store.rows import StoredMessage, ThreadRow


class QueryContext:
    """Read access for one query run; every read is recorded in ``reads``.

    ``journal`` is what the previous run of the same subscription left for this one (Convex's
    query journal: a paginated page keeps the end it first had, so pages stay gapless as rows
    arrive); a query may replace it. ``facts`` are the server's own state (is ingest live,
    which Codex homes), read through :meth:`server_facts`.
    """

    def __init__(
        self, store: Store, journal: str | None = None, facts: dict[str, Any] | None = None
    ) -> None:
        self.store = store
        self.reads = ReadSet()
        self.journal = journal
        self._facts = facts or {}

    def thread(self, thread_id: str) -> ThreadRow | None:
        self.reads.add("threads", thread_id)
        return self.store.thread(thread_id)

    def threads(self, flt: ThreadFilter) -> list[ThreadRow]:
        self.reads.add("threads")
        return self.store.threads(flt)

    def subagent_counts(self, thread_ids: list[str]) -> dict[str, int]:
        self.reads.add("threads")
        return self.store.subagent_counts(thread_ids)

    def transcript_length(self, thread_id: str) -> int:
        self.reads.add("messages", thread_id)
        return self.store.transcript_length(thread_id)

    def messages_page(
        self, thread_id: str, after: int, until: int | None, limit: int
    ) -> list[StoredMessage]:
        self.reads.add("messages", thread_id)
        return self.store.messages_page(thread_id, after, until, limit)

    def messages_tail(self, thread_id: str, n: int) -> list[StoredMessage]:
        self.reads.add("messages", thread_id)
        return self.store.messages_tail(thread_id, n)

    def projects(self) -> list[dict[str, Any]]:
        self.reads.add("projects")
        self.reads.add("threads")  # thread counts and activity
        return self.store.projects()

    def skills(self, project_id: str | None) -> list[dict[str, Any]]:
        self.reads.add("skills")
        return self.store.skills(project_id)

    def status(self) -> dict[str, Any]:
        self.reads.add("sources")
        self.reads.add("threads")
        return self.store.summary()

    def skill_problems(self) -> list[dict[str, Any]]:
        self.reads.add("skills")
        return self.store.skill_problems()

    def devices(self) -> list[dict[str, Any]]:
        self.reads.add("devices")
        return self.store.devices()

    def server_facts(self) -> dict[str, Any]:
        """The server's own state; queries reading it re-run when it changes."""
        self.reads.add("server")
        return dict(self._facts)

    def searched(self) -> Store:
        """The store, for search: its results can change with any message or title."""
        self.reads.add("messages")
        self.reads.add("threads")
        self.reads.add("units")
        return self.store


class PairingDesk(Protocol):
    """What ``pairing:create`` needs from the server: the signing key (codes are stored as
    HMACs under it) and the addresses a device may reach the server at."""

    def key(self) -> SigningKey: ...

    def urls(self, code: str) -> list[str]:
        """The pairing page's URL for ``code`` at every address the server is reached at."""
        ...


class MutationContext:
    """What a mutation may do: read the current state and stage user decisions. ``identity``
    is who called (for the audit log); ``pairing`` is None outside a server."""

    def __init__(
        self, store: Store, identity: Identity = LOCAL, pairing: PairingDesk | None = None
    ) -> None:
        self.store = store
        self.identity = identity
        self.pairing = pairing
        self.changes: list[UserChange] = []

    def require_thread(self, thread_id: str) -> ThreadRow:
        """The thread with exactly this id: functions take whole ids, never prefixes (one
        that names a single thread today may name two tomorrow, and a mutation must never
        change the wrong one). A 404 otherwise, naming the thread a prefix would have meant."""
        thread = self.store.thread(thread_id)
        if thread is None:
            starting = self.store.thread_ids_starting(thread_id, 2) if thread_id else []
            hint = (
                f" (functions take whole ids: did you mean {starting[0]!r}?)"
                if len(starting) == 1
                else ""
            )
            raise FunctionError(f"no thread with id {thread_id!r}{hint}", status=404)
        return thread

    def change(self, entity: Entity, entity_id: str, **values: Any) -> None:
        self.changes.append(UserChange(entity, entity_id, values))

    def stage(self, change: UserChange) -> None:
        self.changes.append(change)

"""Which due queries run when, so that one connection cannot hold up everyone else's updates
(a thousand searches that every commit invalidates, say).

Two lanes, each on its own thread and database connection:

- The **foreground** runs what *light* connections need: those whose due queries all took
  under ``HEAVY_SECONDS`` lately. A tick runs in **slices**: once it has run something, it starts
  nothing that would take it past ``SLICE_SECONDS``, publishes what it has, and the next tick
  goes on (at a newer snapshot if something committed). The **order is fair**: the
  connection that has used the least query time goes next (among equals, the one whose next
  query is cheapest), and among one connection's queries the one that has waited longest,
  then the cheapest.
- The **background** runs what *heavy* connections need: those with a due query that is
  slower, or has never run. A connection's due queries run there together, in one snapshot
  (as many as its budget allows), so that it can move to that version; the connection that
  has used the least goes first.
  So a search that takes 50 ms never sits between a client and its cheap update.

Each connection has a **budget** of ``BUDGET_SECONDS`` of re-runs per commit (and per
``BUDGET_PERIOD`` while nothing commits); a query's first run is outside it. What it cannot
afford waits: its connection sees those results later, and nobody else pays for them. A query
shared by several connections runs for the least busy one, in the foreground if any of them
is light: sharing a query with a greedy connection never makes a client wait.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Hashable, Iterable, Mapping, Sequence, Set
from typing import Generic, Protocol, TypeVar

SLICE_SECONDS = 0.002
HEAVY_SECONDS = 0.01  # a query slower than this runs in the background lane
BUDGET_SECONDS = 0.25
BUDGET_PERIOD = 1.0  # seconds: how often an idle engine renews every budget
UNKNOWN_COST = 0.05  # seconds a query never run (or that failed) is assumed to take: heavy
INVALIDATIONS_KEPT = 1024  # ticks whose writes are remembered for late background results


class Due(Protocol):
    """What the scheduler needs to know of a subscription."""

    @property
    def seconds(self) -> float | None: ...  # its last execution, if any

    @property
    def valid_at(self) -> int: ...  # the newest version its value is known to hold for

    @property
    def ready(self) -> bool: ...  # it has run before (a first run is outside any budget)

    @property
    def watched_by(self) -> tuple[Hashable, ...]: ...  # the connections that watch it


D = TypeVar("D", bound=Due)


def cost(item: Due) -> float:
    return UNKNOWN_COST if item.seconds is None else item.seconds


def _watchers(item: Due) -> Sequence[Hashable]:
    return item.watched_by or (id(item),)  # nobody's: an account of its own


def _oldest_first(items: list[D]) -> list[D]:
    """First runs, then the longest waiting, then the cheapest; the next one at the end."""
    items.sort(key=lambda i: (i.ready, i.valid_at, cost(i)))
    items.reverse()
    return items


def split(
    due: Iterable[D], spent: Mapping[Hashable, float]
) -> tuple[list[D], dict[Hashable, list[D]]]:
    """The foreground's share of ``due`` (what light connections need), and the background's,
    by the connection it runs for."""
    due = list(due)
    heavy = {o for item in due if cost(item) > HEAVY_SECONDS for o in _watchers(item)}
    light: list[D] = []
    batches: dict[Hashable, list[D]] = {}
    for item in due:
        watchers = _watchers(item)
        if any(o not in heavy for o in watchers):
            light.append(item)
        else:
            owner = min(watchers, key=lambda o: spent.get(o, 0.0))
            batches.setdefault(owner, []).append(item)
    return light, batches


def next_batch(
    batches: dict[Hashable, list[D]], spent: Mapping[Hashable, float], busy: Set[D]
) -> tuple[Hashable, list[D]] | None:
    """Take the background's next batch out of ``batches``: the due queries of the connection
    that has used the least, as many as its budget allows (a first run goes even past it, one
    at a time). None when no connection with work can afford any."""
    for owner in sorted(batches, key=lambda o: spent.get(o, 0.0)):
        items = _oldest_first([i for i in batches[owner] if i not in busy])
        used = spent.get(owner, 0.0)
        batch: list[D] = []
        while items and (used < BUDGET_SECONDS or (not batch and not items[-1].ready)):
            item = items.pop()
            batch.append(item)
            used += cost(item)
        if items:
            batches[owner] = items[::-1]  # back in their order, the next one first
        else:
            del batches[owner]
        if batch:
            return owner, batch
    return None


class FairQueue(Generic[D]):
    """Hands out the foreground's items one at a time in fair order; ``charge`` each one after
    running it.

    An item's owner is the connection watching it that has used the least. ``spent``
    is each owner's query time in the current budget period; what this queue charges goes to
    ``charged``. An owner that has used its budget gets no more re-runs (first runs still go,
    before its re-runs); ``deferred`` lists what is left.
    """

    def __init__(
        self,
        due: Iterable[D],
        spent: Mapping[Hashable, float],
        budget: float = BUDGET_SECONDS,
    ) -> None:
        self.spent = spent
        self.charged: dict[Hashable, float] = {}
        self.budget = budget
        self._queues: dict[Hashable, list[D]] = {}
        for item in due:
            watchers = _watchers(item)
            owner = min(watchers, key=self.used) if spent else watchers[0]
            self._queues.setdefault(owner, []).append(item)
        for queue in self._queues.values():
            _oldest_first(queue)
        self._order = itertools.count()
        self._heap: list[tuple[float, float, int, Hashable]] = []
        for owner in self._queues:
            self._push(owner)
        self._current: Hashable | None = None

    def used(self, owner: Hashable) -> float:
        return self.spent.get(owner, 0.0) + self.charged.get(owner, 0.0)

    def _push(self, owner: Hashable) -> None:
        queue = self._queues[owner]
        used = self.used(owner)
        if queue and (used < self.budget or not queue[-1].ready):
            heapq.heappush(self._heap, (used, cost(queue[-1]), next(self._order), owner))

    def pop(self) -> D | None:
        """The next item to run, or None when nothing is left that an owner can afford."""
        if not self._heap:
            return None
        *_, owner = heapq.heappop(self._heap)
        self._current = owner
        return self._queues[owner].pop()

    def next_cost(self) -> float:
        """What the item ``pop`` would return next is expected to take (0 when none is left)."""
        return self._heap[0][1] if self._heap else 0.0

    def charge(self, seconds: float) -> None:
        """Charge the item ``pop`` returned last to its owner, and queue that owner's next."""
        owner = self._current
        self.charged[owner] = self.charged.get(owner, 0.0) + seconds
        self._push(owner)

    @property
    def affordable(self) -> bool:
        """Whether something is left that its owner can still afford."""
        return bool(self._heap)

    @property
    def deferred(self) -> list[D]:
        return [item for queue in self._queues.values() for item in queue]


class Invalidations:
    """What recent ticks found written, so that a result computed in the background at an
    older snapshot can tell whether a later commit has already made it stale."""

    def __init__(self, kept: int = INVALIDATIONS_KEPT) -> None:
        self._log: deque[tuple[int, int, frozenset[str] | None]] = deque(maxlen=kept)

    def record(self, since: int, until: int, touched: frozenset[str] | None) -> None:
        """Commits after ``since`` up to ``until`` wrote ``touched`` (None: anything)."""
        self._log.append((since, until, touched))

    def since(self, version: int, now: int) -> set[str] | None:
        """What was written after ``version`` up to ``now`` (None: it may be anything)."""
        if version >= now:
            return set()
        if not self._log or self._log[0][0] > version:
            return None  # older than what is remembered
        written: set[str] = set()
        for _, until, touched in self._log:
            if until > version:
                if touched is None:
                    return None
                written |= touched
        return written

"""The live engine: shared subscriptions, invalidation by read set, a version per connection.

A *tick* reads the commit log since the engine's version and finds the subscriptions whose
reads overlap those commits, plus every new one: they are due. Identical subscriptions (same
path and arguments) share one execution; connections hold references. What is due runs in
the order and the lanes of ``live.scheduler``: light connections' queries in the foreground,
a slice per tick at the newest snapshot; heavy connections' (a slow or new query) on a second
thread, each connection's together in one snapshot. Every subscription records the snapshot
it was computed in and the newest one it is known to hold for, and a connection moves to a
version once all of its own queries hold there (its queries still come from one snapshot).
A background result is applied between foreground ticks, never during one: a tick in flight
has read commits it has not recorded yet, and the result must be checked against them.

A foreground tick whose queries are known to be cheap runs on the event loop itself; any
other runs on the reader thread, so that a slow query never stalls the connections. The hop
to that thread and back costs more than a cheap query (~0.4 ms against ~0.2 ms for
``messages:tail``), and every commit's fan-out waits for it.

Each connection keeps only what it last sent. Its sender compares that with the shared
results when woken, so a slow client receives the latest state in one coalesced Transition
rather than a queue of old ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import itertools
import logging
import os
import socket
import statistics
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic.alias_generators import to_camel

from sessionbase.auth.scopes import LOCAL, Identity
from sessionbase.errors import AuthError, FunctionError, SessionbaseError, StoreUnavailable
from sessionbase.live.context import MutationContext, PairingDesk, QueryContext
from sessionbase.live.functions import registry
from sessionbase.live.readset import ReadSet
from sessionbase.live.registry import Function, Registry
from sessionbase.live.scheduler import (
    BUDGET_PERIOD,
    BUDGET_SECONDS,
    SLICE_SECONDS,
    FairQueue,
    Invalidations,
    next_batch,
    split,
)
from sessionbase.store import Listener, Store, listen_for_commits, open_store
from sessionbase.store.base import ReplicaBeat

log = logging.getLogger("sessionbase.live")
T = TypeVar("T")
POLL_INTERVAL = 1.0  # safety net: commits are normally announced, not polled for
HEARTBEAT_SECONDS = 2.0  # how often a replica of a shared database says it is alive
INLINE_TICK_SECONDS = 0.001  # a tick re-running every subscription within this runs inline
ALWAYS = 2**63 - 1  # the ``valid_at`` of a subscription that reads nothing


# Fields holding data written by Codex or by the user: their keys are kept as written.
VERBATIM_FIELDS = frozenset({"data", "metadata", "git", "source_detail", "skipped_lines",
                             "files_by_status"})  # fmt: skip


def camel(value: Any) -> Any:
    """snake_case keys of our result shapes → camelCase (the protocol's naming), recursively,
    leaving the contents of ``VERBATIM_FIELDS`` untouched."""
    if isinstance(value, dict):
        return {_camel_key(k): v if k in VERBATIM_FIELDS else camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


# Result shapes use a few dozen keys, renamed for every row of every result: each once.
_camel_key = functools.lru_cache(maxsize=1024)(to_camel)


@dataclass(eq=False)
class Subscription:
    """One (path, arguments) pair, however many connections watch it."""

    key: tuple[str, str]
    function: Function | None
    args: Any
    error: str | None = None
    reads: ReadSet = field(default_factory=ReadSet)
    value_json: str = "null"
    changed_at: int = 0  # the engine's change count when its result last changed
    ready: bool = False
    stale: bool = True
    watchers: int = 0
    owners: dict[Hashable, int] = field(default_factory=dict)  # connection → its query ids
    watched_by: tuple[Hashable, ...] = ()  # the same connections, for the reader threads
    seconds: float | None = None  # how long it takes: the median of its recent runs
    runs: tuple[float, ...] = ()  # how long its last few runs took
    journal: str | None = None  # what its last run left for the next (see QueryContext)
    computed_at: int = 0  # the snapshot its value was computed in
    valid_at: int = 0  # the newest snapshot its value is known to hold for


@dataclass
class QueryResult:
    value_json: str | None
    error: str | None
    reads: ReadSet


@dataclass
class Slice:
    """What one foreground tick did: the snapshot it read, what it ran, and what is left."""

    version: int
    touched: frozenset[str] | None  # what commits since the last tick wrote (None: anything)
    results: dict[Subscription, QueryResult]
    deferred: list[Subscription]  # the foreground's, for its next tick
    heavy: dict[Hashable, list[Subscription]]  # the background's, by the connection it serves
    charged: dict[Hashable, float]  # query time this tick charged to each connection
    renewed: bool  # it saw a new commit: every connection has its budget again
    more: bool  # stopped for time, not budgets: the next tick should follow at once


class Engine:
    """Runs queries and mutations against the store and keeps subscriptions current."""

    def __init__(
        self,
        database: str | Path,
        functions: Registry = registry,
        *,
        machine: str | None = None,
        address: str | None = None,
    ) -> None:
        self.database = database
        started = int(time.time() * 1000)
        self.machine = machine or socket.gethostname()
        self.replica = ReplicaBeat(
            f"{self.machine}:{os.getpid()}:{started}", self.machine, os.getpid(), address,
            started, 0,
        )  # fmt: skip
        self.in_process = True  # until start() has asked the store
        self._commits: Listener | None = None
        self._beats: asyncio.Task[None] | None = None
        self.functions = functions
        self.pairing: PairingDesk | None = None  # set by a server: pairing:create needs it
        self.version = 0
        self.executions = 0
        self.facts: dict[str, Any] = {}
        self._changes = 0  # results changed so far: a result's ``changed_at``
        self._spent: dict[Hashable, float] = {}  # query time per connection (scheduler.py)
        self._budgets_renewed = 0.0
        self._more = False  # the last tick left work it can afford to do at once
        self._heavy: dict[Hashable, list[Subscription]] = {}  # due in the background lane
        self._running: set[Subscription] = set()  # in the background lane right now
        self._heavy_ready = asyncio.Event()
        self._invalidations = Invalidations()
        self._ticking = asyncio.Lock()  # held by a tick, and by a background result applied
        self._subs: dict[tuple[str, str], Subscription] = {}
        self._listeners: set[Callable[[], None]] = set()
        self._commit_listeners: set[Callable[[], None]] = set()
        self._wake = asyncio.Event()
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="sessionbase-live")
        self._background = ThreadPoolExecutor(1, thread_name_prefix="sessionbase-live-heavy")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sessionbase-mutate")
        self._http_readers = ThreadPoolExecutor(2, thread_name_prefix="sessionbase-http")
        self._local = threading.local()
        self._task: asyncio.Task[None] | None = None
        self._heavy_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.version = await self._in(self._reader, lambda: self._store().last_version())
        self.in_process = await self._in(self._reader, lambda: self._store().in_process)
        self._task = asyncio.create_task(self._run(), name="sessionbase-live-engine")
        self._heavy_task = asyncio.create_task(self._run_heavy(), name="sessionbase-live-heavy")
        # Other processes commit too (replicas of a shared database, the CLI on a SQLite
        # file): the listener wakes this one, which then reads the commit log from its own
        # version (and, on a shared database, says it is alive).
        self._commits = listen_for_commits(self.database, self.notify_commit)
        if not self.in_process:
            self._beats = asyncio.create_task(self._heartbeats(), name="sessionbase-heartbeat")

    async def close(self) -> None:
        if self._beats is not None:
            self._beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beats
        if self._commits is not None:
            await asyncio.to_thread(self._commits.close)
        for task in (self._task, self._heavy_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for pool in (self._reader, self._background, self._writer, self._http_readers):
            pool.submit(self._close_store).result()
            pool.shutdown(wait=True)
        self._close_store()  # the event loop's own, for inline ticks

    def notify_commit(self, _version: int = 0) -> None:
        """Thread-safe: something committed, here or in another process; a tick will pick
        it up, and the commit listeners hear of it first."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._committed)

    def _committed(self) -> None:
        self._wake.set()
        for listener in list(self._commit_listeners):
            listener()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (on the event loop) after each tick that changed a result or
        moved the version."""
        self._listeners.add(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.discard(listener)

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (on the event loop) as soon as any commit is announced, before a
        tick applies it: what must not wait for the queries to re-run (revocations)."""
        self._commit_listeners.add(listener)

    def remove_commit_listener(self, listener: Callable[[], None]) -> None:
        self._commit_listeners.discard(listener)

    # ------------------------------------------------------------ stores per thread

    def _store(self) -> Store:
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = open_store(self.database)
            store.on_commit = self.notify_commit
            self._local.store = store
        return store

    def _close_store(self) -> None:
        store = getattr(self._local, "store", None)
        if store is not None:
            store.close()
            self._local.store = None

    async def _in(self, pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn)

    # ------------------------------------------------------------ subscriptions

    def set_facts(self, **facts: Any) -> None:
        """Update the server's own state (see ``QueryContext.server_facts``); the queries that
        read it re-run on the next tick. Call on the event loop."""
        if all(self.facts.get(k) == v for k, v in facts.items()):
            return
        self.facts = {**self.facts, **facts}
        for sub in self._subs.values():
            if "server" in sub.reads.tables:
                sub.stale = True
        self._wake.set()

    def subscribe(
        self,
        path: str,
        raw_args: dict[str, Any],
        journal: str | None = None,
        *,
        identity: Identity = LOCAL,
        owner: Hashable | None = None,
    ) -> Subscription:
        """Get (or create) the shared subscription; the caller must ``unsubscribe`` later.
        ``journal`` is one a client kept from an earlier connection (Convex re-sends it), so
        a paginated page resumes with the end it had. A caller without the function's scope
        gets a failed subscription of its own, and nothing runs. ``owner`` (a connection) is
        charged for the query's executions, so that ticks share their time fairly."""
        denied = self._denied(path, identity)
        if denied is not None:
            return denied
        key = (path, orjson.dumps(raw_args, option=orjson.OPT_SORT_KEYS).decode())
        if journal is not None:
            key = (key[0], f"{key[1]}\n{journal}")
        sub = self._subs.get(key)
        if sub is None:
            function: Function | None = None
            args: Any = None
            error: str | None = None
            try:
                function = self.functions.get(path, "query")
                args = function.parse(raw_args)
            except FunctionError as exc:
                function, error = None, str(exc)
            sub = Subscription(key, function, args, error, journal=journal)
        return self._watch(sub, owner)

    def failing(self, error: str) -> Subscription:
        """A failed subscription of the caller's own, that runs nothing: for a query it may
        not, or will not, run. It holds at every version; ``unsubscribe`` it like any other."""
        self._changes += 1
        return Subscription(("failed", error), None, None, error, ready=True, stale=False,
                            changed_at=self._changes, watchers=1, valid_at=ALWAYS)  # fmt: skip

    def _watch(self, sub: Subscription, owner: Hashable | None) -> Subscription:
        if self._subs.setdefault(sub.key, sub) is sub and not sub.watchers:
            self._wake.set()  # new: the next tick runs it
        sub.watchers += 1
        if owner is not None:
            sub.owners[owner] = sub.owners.get(owner, 0) + 1
            sub.watched_by = tuple(sub.owners)
        return sub

    def unsubscribe(self, sub: Subscription, owner: Hashable | None = None) -> None:
        sub.watchers -= 1
        if owner is not None:
            left = sub.owners.pop(owner, 0) - 1
            if left > 0:
                sub.owners[owner] = left
            sub.watched_by = tuple(sub.owners)
        if sub.watchers <= 0 and self._subs.get(sub.key) is sub:
            self._subs.pop(sub.key, None)

    def _denied(self, path: str, identity: Identity) -> Subscription | None:
        """A failed subscription, not shared, when ``identity`` lacks the function's scope."""
        try:
            scope = self.functions.get(path, "query").scope
        except FunctionError:
            return None  # an unknown function fails as such
        try:
            identity.require(scope, path)
        except AuthError as exc:
            return self.failing(str(exc))
        return None

    @property
    def subscription_count(self) -> int:
        return len(self._subs)

    @property
    def backlog(self) -> int:
        """Subscriptions due to run that wait for a later tick (see ``live.scheduler``)."""
        return sum(1 for sub in self._subs.values() if sub.stale)

    async def _heartbeats(self) -> None:
        """Tell the shared database, every few seconds, that this replica is alive and how
        far its live queries have applied the commit log (``sessionbase status`` shows it)."""
        while True:
            beat = dataclasses.replace(self.replica, applied=self.version)
            try:
                await self._in(self._writer, functools.partial(self._beat, beat))
            except SessionbaseError as exc:
                log.debug("heartbeat not recorded: %s", exc)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    def listener_state(self) -> dict[str, object] | None:
        """How the listener for other processes' commits is doing (None before start)."""
        return None if self._commits is None else self._commits.state()

    def _beat(self, beat: ReplicaBeat) -> None:
        self._store().heartbeat(beat)

    # ------------------------------------------------------------ ticks

    async def _run(self) -> None:
        failing: str | None = None  # the store error the last tick failed with, if any
        while True:
            if self._more:
                await asyncio.sleep(0)  # the connections' turn between two slices
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_INTERVAL):
                        await self._wake.wait()
            self._wake.clear()
            try:
                await self.tick()
                failing = None
            except SessionbaseError as exc:  # the database failed: say so once, keep trying
                if str(exc) != failing:
                    log.warning("live queries wait for the database: %s", exc)
                failing = str(exc)
                await asyncio.sleep(0.1)
            except Exception:
                log.exception("live engine tick failed; retrying on the next commit")
                await asyncio.sleep(0.1)

    async def tick(self) -> bool:
        """Run one foreground slice of what is due, at the newest committed snapshot, and
        hand heavy connections' work to the background lane (``live.scheduler``); return
        whether due work is left for later.

        Each subscription knows the snapshot it was computed in and the newest one it is
        known to hold for, so that a connection moves to a version as soon as all of its own
        queries are there, whatever others still wait for.
        """
        async with self._ticking:
            return await self._tick()

    async def _tick(self) -> bool:
        subs = list(self._subs.values())
        now = time.monotonic()
        if now - self._budgets_renewed >= BUDGET_PERIOD:  # nothing committed for a while
            self._spent, self._budgets_renewed = {}, now
        # What the background lane runs, or has queued, is its own to finish.
        running = frozenset(self._running)
        skip = running.union(*self._heavy.values())
        run = functools.partial(self._evaluate, subs, dict(self._spent), skip)
        done = run() if self.in_process and _cheap(subs) else await self._in(self._reader, run)
        version = done.version
        if done.renewed:
            self._spent, self._budgets_renewed = {}, now
        for owner, seconds in done.charged.items():
            self._spent[owner] = self._spent.get(owner, 0.0) + seconds
        changed = False
        for sub, result in done.results.items():
            changed |= self._keep(sub, result, version)
            sub.stale, sub.valid_at = False, version
        waiting = {*done.deferred, *itertools.chain.from_iterable(done.heavy.values())}
        for sub in waiting:
            sub.stale = True
        for sub in subs:  # not due: what it holds is still true at this snapshot
            if sub.ready and not sub.stale and sub not in waiting and sub not in skip:
                sub.valid_at = max(sub.valid_at, version)
        moved = version > self.version
        if moved:
            self._invalidations.record(self.version, version, done.touched)
        self.version = max(self.version, version)
        self._more = done.more
        for owner, batch in done.heavy.items():
            self._heavy.setdefault(owner, []).extend(batch)
        if self._heavy:
            self._heavy_ready.set()
        if changed or moved or done.results:
            self._notify()
        return bool(done.deferred or self._heavy)

    def _evaluate(
        self,
        subs: list[Subscription],
        spent: dict[Hashable, float],
        skip: frozenset[Subscription],
    ) -> Slice:
        """On the reader thread: find what the new commits invalidate; run one slice of the
        light connections' share of it, and leave the heavy ones' to the background."""
        store = self._store()
        results: dict[Subscription, QueryResult] = {}
        with store.snapshot() as version:
            if version < self.version:  # the database was replaced under us
                version = self.version
            renewed = version > self.version
            if renewed:
                spent = {}
            touched: set[str] = set()
            everything = bool(self.version) and store.oldest_version() > self.version
            for _, keys in store.commits_since(self.version):
                touched.update(keys)
            due = [
                sub
                for sub in subs
                if sub not in skip
                and (sub.stale or not sub.ready or everything or sub.reads.overlaps(touched))
            ]
            light, heavy = split(due, spent)
            queue = FairQueue(light, spent)
            began = time.perf_counter()
            while not results or queue.next_cost() < SLICE_SECONDS - (time.perf_counter() - began):
                sub = queue.pop()  # the first one always; then what fits in the slice
                if sub is None:
                    break
                started = time.perf_counter()
                results[sub] = self._execute(store, sub)
                queue.charge(time.perf_counter() - started)
        written = None if everything else frozenset(touched)
        return Slice(version, written, results, queue.deferred, heavy, queue.charged, renewed,
                     queue.affordable)  # fmt: skip

    async def _run_heavy(self) -> None:
        while True:
            await self._heavy_ready.wait()
            self._heavy_ready.clear()
            try:
                while await self.run_heavy():
                    pass
            except SessionbaseError as exc:
                log.warning("heavy live queries wait for the database: %s", exc)
                await asyncio.sleep(0.1)
            except Exception:
                log.exception("heavy live queries failed; retrying on the next commit")
                await asyncio.sleep(0.1)

    async def run_heavy(self) -> bool:
        """Run the background lane's next batch: one heavy connection's due queries, in one
        snapshot; return whether there was one."""
        for owner, queued in list(self._heavy.items()):  # forget what nobody watches now
            self._heavy[owner] = [sub for sub in queued if sub.watchers > 0]
        picked = next_batch(self._heavy, self._spent, self._running)
        if picked is None:
            return False
        owner, batch = picked
        self._running.update(batch)
        try:
            version, results, seconds = await self._in(
                self._background, functools.partial(self._evaluate_batch, batch)
            )
            # A tick in flight may have read commits after ``version`` that touch these
            # results, and skipped them (they were running): it records those commits before
            # it lets go, and only then can they be checked here.
            async with self._ticking:
                self._apply_heavy(owner, batch, version, results, seconds)
        finally:
            self._running.difference_update(batch)
        return True

    def _apply_heavy(
        self,
        owner: Hashable,
        batch: list[Subscription],
        version: int,
        results: dict[Subscription, QueryResult],
        seconds: float,
    ) -> None:
        """Keep a background batch's results, computed at ``version``: each holds up to the
        engine's version unless a commit since ``version`` touched what it read."""
        self._spent[owner] = self._spent.get(owner, 0.0) + seconds
        left = [sub for sub in batch if sub not in results]
        if left:
            self._heavy.setdefault(owner, []).extend(left)
        written = self._invalidations.since(version, self.version)
        for sub, result in results.items():
            self._keep(sub, result, version)
            if written is None or result.reads.overlaps(written):
                sub.stale, sub.valid_at = True, version  # a later commit touched it already
                self._wake.set()
            else:
                sub.stale, sub.valid_at = False, max(version, self.version)
        self._notify()

    def _evaluate_batch(
        self, batch: list[Subscription]
    ) -> tuple[int, dict[Subscription, QueryResult], float]:
        """On the background thread: run ``batch`` in one snapshot, stopping once it has
        taken a budget's worth (its estimates can be wrong); the rest stays due."""
        store = self._store()
        results: dict[Subscription, QueryResult] = {}
        began = time.perf_counter()
        with store.snapshot() as version:
            for sub in batch:
                if results and time.perf_counter() - began >= BUDGET_SECONDS:
                    break
                results[sub] = self._execute(store, sub)
        return version, results, time.perf_counter() - began

    def _keep(self, sub: Subscription, result: QueryResult, version: int) -> bool:
        """Store a run's result as computed at ``version``; return whether it changed."""
        sub.ready = True
        sub.reads = result.reads
        sub.computed_at = version
        value_json = result.value_json or "null"
        if result.error == sub.error and value_json == sub.value_json and sub.changed_at:
            return False
        sub.value_json, sub.error = value_json, result.error
        self._changes += 1
        sub.changed_at = self._changes
        return True

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    def _execute(self, store: Store, sub: Subscription) -> QueryResult:
        if sub.function is None:
            sub.seconds = 0.0  # its arguments were refused: nothing runs
            return QueryResult(None, sub.error, ReadSet())
        ctx = QueryContext(store, sub.journal, self.facts)
        self.executions += 1
        began, sub.seconds = time.perf_counter(), None
        try:
            value = sub.function.handler(ctx, sub.args)
            sub.journal = ctx.journal
        except FunctionError as exc:
            return QueryResult(None, str(exc), ctx.reads)
        except StoreUnavailable:
            raise  # the whole tick waits for the database; clients keep what they have
        except SessionbaseError as exc:
            log.warning("query %s failed: %s", sub.key[0], exc)
            return QueryResult(None, f"{sub.key[0]} failed: {exc}", ctx.reads)
        except Exception:  # a bug in one query must not wedge every subscription
            log.exception("query %s crashed", sub.key[0])
            return QueryResult(None, f"{sub.key[0]} failed: internal error", ctx.reads)
        value_json = orjson.dumps(camel(value)).decode()
        # The median of the last three runs: one run that waited for the CPU (or was lucky)
        # does not make a query slow (or fast); a query whose cost has changed soon is.
        sub.runs = (*sub.runs[-2:], time.perf_counter() - began)
        sub.seconds = statistics.median(sub.runs)
        return QueryResult(value_json, None, ctx.reads)

    # ------------------------------------------------------------ one-shot calls

    async def query(
        self, path: str, raw_args: dict[str, Any], *, identity: Identity = LOCAL
    ) -> Any:
        """Run a query once (HTTP); raises FunctionError for the caller's mistakes and
        AuthError when ``identity`` lacks the function's scope."""
        function = self.functions.get(path, "query")
        identity.require(function.scope, path)
        args = function.parse(raw_args)

        def run() -> Any:
            ctx = QueryContext(self._store(), facts=self.facts)
            return camel(function.handler(ctx, args))

        return await self._in(self._http_readers, run)

    async def mutation(
        self,
        path: str,
        raw_args: dict[str, Any],
        idempotency: tuple[str, int] | None = None,
        *,
        identity: Identity = LOCAL,
    ) -> tuple[Any, int]:
        """Run a mutation serially on the writer; returns (result, commit version)."""
        function = self.functions.get(path, "mutation")
        identity.require(function.scope, path)
        args = function.parse(raw_args)

        call = _call_digest(path, raw_args)

        def run() -> tuple[Any, int]:
            store = self._store()
            store.checkpoint_in_background()  # a client waits on this commit: never on a checkpoint
            if idempotency is not None:
                seen = store.recorded_mutation(*idempotency)
                if seen is not None:
                    version, stored, seen_call = seen
                    if seen_call is not None and seen_call != call:
                        raise FunctionError(
                            f"request {idempotency[1]} of this session already ran another"
                            f" mutation (not {path} with these arguments): a retry must repeat"
                            " its path and arguments, and a new mutation needs a new requestId"
                        )
                    return stored, version
            ctx = MutationContext(store, identity, self.pairing)
            result = camel(function.handler(ctx, args))
            logged = result if function.log_as is None else function.log_as(result)
            version, stored = store.apply_user_changes(ctx.changes, logged, idempotency, call)
            return (result if stored is logged else stored), version

        began = time.monotonic()
        result, version = await self._in(self._writer, run)
        took = (time.monotonic() - began) * 1e3
        log.debug("mutation %s committed %d in %.1f ms", path, version, took)
        return result, version


def _call_digest(path: str, raw_args: Any) -> str:
    """What a mutation call was, in a few bytes: its path and its arguments, keys sorted."""
    canonical = orjson.dumps([path, raw_args], option=orjson.OPT_SORT_KEYS, default=repr)
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def _cheap(subs: list[Subscription]) -> bool:
    """Whether re-running all of them would take under ``INLINE_TICK_SECONDS``, by their last
    executions (one never run, or one that failed, counts as slow)."""
    total = 0.0
    for sub in subs:
        if sub.seconds is None:
            return False
        total += sub.seconds
        if total > INLINE_TICK_SECONDS:
            return False
    return True

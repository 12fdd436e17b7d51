"""One WebSocket speaking the Convex sync protocol, from Connect to close.

Three tasks per connection: the receiver parses frames and updates the query set; the
mutator runs mutations one at a time, in order; the sender writes replies and Transitions.
Nothing is queued per commit: the sender diffs what it last sent against the engine's shared
results, so a slow client gets one coalesced Transition. A broken frame closes this connection
only; a client that stops reading is dropped once a send has waited too long.

A commit reaches every connection, so the per-connection cost of a tick is kept small: a tick
wakes only senders with something to send, a sender waits on a bare future (no timer per
wait; one heartbeat timer per connection, re-armed at most every ``HEARTBEAT_SECONDS``), and
connections whose Transition would be byte-identical share one string (``TransitionCache``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from starlette.websockets import WebSocket, WebSocketDisconnect

from sessionbase.auth.authority import Authority
from sessionbase.auth.scopes import ANONYMOUS, Identity
from sessionbase.errors import AuthError, FunctionError, ProtocolError, SessionbaseError
from sessionbase.live.engine import Engine, Subscription
from sessionbase.protocol import messages as m
from sessionbase.protocol.codec import to_convex
from sessionbase.protocol.messages import Changes, Version

log = logging.getLogger("sessionbase.sync")

MAX_QUERIES = 1000
MAX_DISTINCT_QUERIES = 250  # different (function, arguments) pairs one connection may run
TOO_MANY_QUERIES = (
    f"more than {MAX_DISTINCT_QUERIES} different queries on one connection: this one does not run"
)
MAX_PENDING = 1000
HEARTBEAT_SECONDS = 15.0
SEND_TIMEOUT_SECONDS = 30.0
WATCHDOG_SECONDS = SEND_TIMEOUT_SECONDS / 6  # how often the hub looks for stuck sends
CLOSE_GRACE_SECONDS = 0.5  # a connection told its identity ended is cut off after this


class SyncSession:
    """The server side of one sync connection.

    Its caller starts as what the connection itself is (the local owner, or nobody) and
    becomes a device when an ``Authenticate`` brings a valid token; every query and mutation
    runs as the current caller, and each new identity re-runs every query under it. An
    identity that fails (a refused token, expiry, revocation, a rotated key) gets an
    ``AuthError`` and the connection is closed, as Convex does: the client fetches a new token
    and reconnects.
    """

    def __init__(
        self,
        ws: WebSocket,
        engine: Engine,
        authority: Authority | None = None,
        base: Identity = ANONYMOUS,
    ) -> None:
        self.ws = ws
        self.engine = engine
        self.authority = authority
        self.base = base
        self.caller = base
        self.session_id: str | None = None
        self.queries: dict[int, Subscription] = {}
        self.specs: dict[int, tuple[str, dict[str, object], str | None]] = {}
        self.distinct: set[Subscription] = set()  # the queries this connection runs
        self.sent: dict[int, int] = {}
        self.removed: list[int] = []
        self.version: Version = (0, 0, 0)  # the client's (query set, identity, ts)
        self.query_set = 0
        self.identity = 0
        self.need_ts = 0
        self.replies: deque[str] = deque()
        self.mutations: asyncio.Queue[m.Mutation] = asyncio.Queue(MAX_PENDING)
        self.sending_since: float | None = None
        self.last_sent = 0.0
        self.transition_owed = False
        self.mutating = False
        self._main: asyncio.Task[None] | None = None
        self._aborted = False
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None
        self._beat: asyncio.TimerHandle | None = None
        self._cache: TransitionCache | None = None
        self._hub: Hub | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self.closing = False  # told its identity ended: send what is queued, then close

    def wake(self) -> None:
        """Have the sender look for work (replies, a Transition, a Ping) once more."""
        self._woken = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_tick(self) -> None:
        # Called for every connection on every tick: wake the sender only when this tick can
        # give it something to send, which a commit elsewhere (or an embedding) often cannot.
        if self.transition_owed or self.need_ts > self.version[2]:
            self.wake()
            return
        sent = self.sent
        for qid, sub in self.queries.items():
            if sent.get(qid) != sub.changed_at:
                self.wake()
                return

    def abort(self) -> None:
        """Stop serving this client now (its sends are stuck): cancel the session's tasks."""
        if self._main is not None:
            self._aborted = True
            self._main.cancel()

    async def run(self, hub: Hub) -> None:
        await self.ws.accept()
        self._main = asyncio.current_task()
        self._cache = hub.transitions
        self._hub = hub
        hub.sessions.add(self)
        self._set_caller(self.base)
        self.engine.add_listener(self._on_tick)
        tasks = [
            asyncio.create_task(self._send_loop()),
            asyncio.create_task(self._mutation_loop()),
        ]
        try:
            await self._receive_loop()
        except ProtocolError as exc:
            log.info("closing sync connection: %s", exc)
            with contextlib.suppress(Exception):
                await self.ws.close(code=1008, reason=str(exc)[:120])
        except WebSocketDisconnect:
            pass
        except asyncio.CancelledError:
            if not self._aborted:
                raise
            with contextlib.suppress(Exception):
                await asyncio.shield(self.ws.close(code=1008, reason="client stopped reading"))
        finally:
            hub.sessions.discard(self)
            hub.forget(self)
            if self._expiry is not None:
                self._expiry.cancel()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.engine.remove_listener(self._on_tick)
            if self._beat is not None:
                self._beat.cancel()
            for sub in self.queries.values():
                self.engine.unsubscribe(sub, owner=self)
            self.queries.clear()
            self.distinct.clear()

    # ------------------------------------------------------------ receiving

    async def _receive_loop(self) -> None:
        while True:
            event = await self.ws.receive()
            if event["type"] == "websocket.disconnect":
                return
            text = event.get("text")
            if text is None:
                raise ProtocolError("binary frames are not part of the protocol")
            try:
                message = m.parse_client_message(text)
            except m.MessageError as exc:
                raise ProtocolError(str(exc)) from exc
            if self.closing:
                continue  # its identity ended: nothing more runs for it
            if isinstance(message, m.Authenticate) and self.session_id is not None:
                await self._authenticate(message)  # in order: before its next message
            else:
                self._handle(message)

    def _handle(self, message: m.ClientMessage) -> None:
        if self.session_id is None and not isinstance(message, m.Connect):
            raise ProtocolError("the first message must be Connect")
        if isinstance(message, m.Connect):
            if self.session_id is not None:
                raise ProtocolError("Connect sent twice")
            self.session_id = message.session_id
        elif isinstance(message, m.ModifyQuerySet):
            self._modify(message)
        elif isinstance(message, m.Mutation):
            try:
                self.mutations.put_nowait(message)
            except asyncio.QueueFull:
                raise ProtocolError("TooManyConcurrentMutations") from None
        elif isinstance(message, m.Action):
            self._reply(m.action_response(message.request_id, False,
                                          f"no action named {message.udf_path!r}"))  # fmt: skip

    def _modify(self, message: m.ModifyQuerySet) -> None:
        if message.base_version != self.query_set:
            raise ProtocolError(
                f"BaseVersionMismatch: query set is at {self.query_set}, not {message.base_version}"
            )
        for mod in message.modifications:
            if isinstance(mod, m.AddQuery):
                if mod.query_id in self.queries:
                    raise ProtocolError(f"query {mod.query_id} added twice")
                if len(self.queries) >= MAX_QUERIES:
                    raise ProtocolError(f"more than {MAX_QUERIES} queries on one connection")
                self.queries[mod.query_id] = self._subscribe(mod.udf_path, mod.args, mod.journal)
                self.specs[mod.query_id] = (mod.udf_path, mod.args, mod.journal)
            else:
                sub = self.queries.pop(mod.query_id, None)
                if sub is None:
                    raise ProtocolError(f"query {mod.query_id} removed but never added")
                self._release(sub)
                self.specs.pop(mod.query_id, None)
                self.sent.pop(mod.query_id, None)
                self.removed.append(mod.query_id)
        self.query_set = message.new_version
        self.wake()

    def _subscribe(self, path: str, args: dict[str, object], journal: str | None) -> Subscription:
        """The query's shared subscription as this caller, or one that fails when this
        connection already runs ``MAX_DISTINCT_QUERIES`` others (identical ones count once)."""
        sub = self.engine.subscribe(path, args, journal, identity=self.caller, owner=self)
        if sub not in self.distinct and len(self.distinct) >= MAX_DISTINCT_QUERIES:
            self._release(sub)
            return self.engine.failing(TOO_MANY_QUERIES)
        if self in sub.owners:  # shared, not a refusal of its own
            self.distinct.add(sub)
        return sub

    def _release(self, sub: Subscription) -> None:
        self.engine.unsubscribe(sub, owner=self)
        if self not in sub.owners:
            self.distinct.discard(sub)

    async def _authenticate(self, message: m.Authenticate) -> None:
        try:
            if message.token_type == "None":
                caller = self.base
            elif message.token_type != "User":
                raise AuthError(f"{message.token_type} credentials are not accepted: send a"
                                " device token (tokenType User)")  # fmt: skip
            elif self.authority is None:
                raise AuthError("this server accepts no tokens")
            else:
                caller = await self.authority.identify(message.value or "")
        except AuthError as exc:
            self.end(str(exc), base_version=message.base_version, attempted=True)
            return
        self._set_caller(caller)
        self.identity = message.base_version + 1
        self.wake()

    def _set_caller(self, caller: Identity) -> None:
        """Run every query as ``caller`` from now on (each is sent again, as Convex re-runs
        them all for a new identity), and end the session when its token expires."""
        self.caller = caller
        if self._hub is not None:
            self._hub.index(self)
        for qid, sub in list(self.queries.items()):
            self.queries[qid] = self._subscribe(*self.specs[qid])
            self._release(sub)
            self.sent.pop(qid, None)
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if caller.expires_at is not None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, caller.expires_at + 1 - time.time())
            self._expiry = loop.call_later(delay, self.end, "the token has expired")

    def end(self, reason: str, *, base_version: int | None = None, attempted: bool = False) -> None:
        """Tell the client its identity is no longer valid (``AuthError``) and close: at
        once once the reply is out, and in any case after ``CLOSE_GRACE_SECONDS``."""
        if self.closing:
            return
        self.closing = True
        version = self.identity if base_version is None else base_version
        self.replies.append(m.dumps(m.auth_error(reason, version, attempted)))
        self.wake()
        asyncio.get_running_loop().call_later(CLOSE_GRACE_SECONDS, self.abort)

    def _reply(self, message: dict[str, object]) -> None:
        if len(self.replies) >= MAX_PENDING:
            raise ProtocolError("client is not reading its replies")
        self.replies.append(m.dumps(message))
        self.wake()

    # ------------------------------------------------------------ mutations

    async def _mutation_loop(self) -> None:
        while True:
            message = await self.mutations.get()
            assert self.session_id is not None
            key = (self.session_id, message.request_id)
            if self.closing:
                continue
            ended = None if self.authority is None else await self.authority.ended(self.caller)
            if ended is not None:  # revoked a moment ago: the hub is about to end it too
                self.end(ended)
                continue
            # Hold Transitions while the mutation runs, so its response goes out before any
            # Transition that carries its commit (as Convex orders them).
            self.mutating = True
            try:
                result, version = await self.engine.mutation(
                    message.udf_path, message.args, key, identity=self.caller
                )
            except (FunctionError, AuthError) as exc:
                reply = m.mutation_response(message.request_id, False, str(exc), None)
            except SessionbaseError as exc:
                log.warning("mutation %s failed: %s", message.udf_path, exc)
                reply = m.mutation_response(message.request_id, False, f"server error: {exc}", None)
            else:
                reply = m.mutation_response(message.request_id, True, to_convex(result), version)
                self.need_ts = max(self.need_ts, version)
                # The client resolves a mutation only on a Transition that arrives after its
                # response, even when an earlier one already carried the commit.
                self.transition_owed = True
            self.mutating = False
            self._reply_or_drop(reply)

    def _reply_or_drop(self, reply: dict[str, object]) -> None:
        try:
            self._reply(reply)
        except ProtocolError:
            self.replies.clear()
            asyncio.get_running_loop().create_task(self.ws.close(code=1008))

    # ------------------------------------------------------------ sending

    async def _send(self, text: str) -> None:
        # No per-send timer (it costs a task per client per commit): the hub's watchdog drops
        # a client whose send has been stuck for SEND_TIMEOUT_SECONDS.
        self.sending_since = self.last_sent = asyncio.get_running_loop().time()
        await self.ws.send_text(text)
        self.sending_since = None

    def stuck(self, now: float) -> bool:
        return self.sending_since is not None and now - self.sending_since > SEND_TIMEOUT_SECONDS

    def _heartbeat(self) -> None:
        # One timer per connection, re-armed here rather than per send: it fires at most
        # every HEARTBEAT_SECONDS and wakes the sender only when the line has been quiet.
        loop = asyncio.get_running_loop()
        due = self.last_sent + HEARTBEAT_SECONDS
        if loop.time() >= due:
            self.wake()
            due = loop.time() + HEARTBEAT_SECONDS
        self._beat = loop.call_at(due, self._heartbeat)

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        self.last_sent = loop.time()
        self._beat = loop.call_at(self.last_sent + HEARTBEAT_SECONDS, self._heartbeat)
        while True:
            if not self._woken:
                self._waiter = loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
            self._woken = False
            # A Ping after HEARTBEAT_SECONDS without any frame, however often we were woken.
            if loop.time() - self.last_sent >= HEARTBEAT_SECONDS:
                await self._send(m.dumps(m.PING))
            while self.replies:
                await self._send(self.replies.popleft())
            if self.closing:
                with contextlib.suppress(Exception):
                    await self.ws.close(code=1000, reason="AuthError")
                return
            text = self._transition()
            if text is not None:
                await self._send(text)

    def _transition(self) -> str | None:
        """The next Transition for this client, or None if it has nothing new to learn."""
        if self.mutating or self.session_id is None or self.closing:
            return None
        sent = self.sent
        moved = []
        computed, valid = 0, self.engine.version
        for qid, sub in self.queries.items():
            if not sub.ready:
                return None
            computed, valid = max(computed, sub.computed_at), min(valid, sub.valid_at)
            if sent.get(qid) != sub.changed_at:
                moved.append((qid, sub))
        if computed > valid:
            return None  # some of its queries are newer than others still waiting to re-run
        if self.need_ts > valid:
            return None  # the mutation's commit has not been through a tick yet
        start = self.version
        end = (self.query_set, self.identity, max(valid, start[2]))
        if (
            not moved
            and not self.removed
            and end[:2] == start[:2]
            and self.need_ts <= start[2]
            and not self.transition_owed
        ):
            return None
        changes: Changes = tuple(
            [(qid, sub.error, sub.value_json, sub.journal) for qid, sub in moved]
        )
        for qid, sub in moved:
            sent[qid] = sub.changed_at
        self.transition_owed = False
        self.version = end
        removed, self.removed = tuple(self.removed), []
        if self._cache is None:
            return m.transition(start, end, removed, changes)
        return self._cache.get(start, end, removed, changes)


class TransitionCache:
    """Transition texts of the current engine version, shared by connections whose Transition
    is byte-identical. The key is everything the text is made of (versions, removals, and each
    moving query's id, error and result), so a connection can only ever get the text it would
    have built itself. Results are the engine's shared strings: comparing them is an identity
    check and their hash is computed once.
    """

    MAX_ENTRIES = 256  # distinct texts kept per engine version; past that, built each time

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.version = -1
        self.texts: dict[tuple[Version, Version, tuple[int, ...], Changes], str]
        self.texts = {}
        self.hits = 0

    def get(self, start: Version, end: Version, removed: tuple[int, ...], changes: Changes) -> str:
        if self.version != self.engine.version:  # older texts are rarely asked for again
            self.version = self.engine.version
            self.texts.clear()
        key = (start, end, removed, changes)
        text = self.texts.get(key)
        if text is None:
            text = m.transition(start, end, removed, changes)
            if len(self.texts) < self.MAX_ENTRIES:
                self.texts[key] = text
        else:
            self.hits += 1
        return text


class Hub:
    """Every open sync session, and the watchdog that drops clients that stopped reading.

    Sessions are indexed by the device they run as, so a revoked device's connections are
    found without a scan and told at once (``devices_changed``)."""

    def __init__(self, engine: Engine, authority: Authority | None = None) -> None:
        self.sessions: set[SyncSession] = set()
        self.transitions = TransitionCache(engine)
        self.authority = authority
        self.by_device: dict[str, set[SyncSession]] = {}
        self._task: asyncio.Task[None] | None = None
        self._checks: set[asyncio.Task[None]] = set()

    def index(self, session: SyncSession) -> None:
        self.forget(session)
        device_id = session.caller.device_id
        if device_id is not None:
            self.by_device.setdefault(device_id, set()).add(session)

    def forget(self, session: SyncSession) -> None:
        for device_id, held in list(self.by_device.items()):
            if session in held:
                held.discard(session)
                if not held:
                    del self.by_device[device_id]

    def devices_changed(self, device_ids: set[str], key_changed: bool) -> None:
        """Called by the ``Authority`` when devices changed (or the key was rotated): end the
        sessions of devices that are revoked or gone, and of tokens the old key signed."""
        if key_changed and self.authority is not None:
            kid = self.authority.key.kid
            for session in list(self.sessions):
                if session.caller.kid is not None and session.caller.kid != kid:
                    session.end("the signing key was rotated: fetch a new token")
        for device_id in device_ids & set(self.by_device):
            task = asyncio.get_running_loop().create_task(self._check_device(device_id))
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    async def _check_device(self, device_id: str) -> None:
        assert self.authority is not None
        device = await self.authority.device(device_id)
        if device is None:
            reason = "this device was removed"
        elif device["revoked_at"] is not None:
            reason = "this device was revoked"
        else:
            return
        for session in list(self.by_device.get(device_id, ())):
            session.end(reason)

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="sessionbase-sync-watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(WATCHDOG_SECONDS)
            now = loop.time()
            for session in [s for s in self.sessions if s.stuck(now)]:
                log.info("dropping a sync client that stopped reading")
                self.sessions.discard(session)
                session.abort()

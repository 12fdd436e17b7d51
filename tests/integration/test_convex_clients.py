"""The official Convex clients against a real `sessionbase serve`: the npm `ConvexClient` (driven
through ``js/convex_client.mjs``) and the PyPI `convex` client.

The node script speaks JSON lines: pytest sends commands on its stdin and reads events from its
stdout, each stamped on arrival, so a test can append to a rollout file at the right moment and
measure from the append to the client's callback. One server serves the module, on SQLite and
then on PostgreSQL; the restart test and the one whose threads move start their own on each
backend, and the late-reply reproducer (the server's timing) one on SQLite. Every wait has a
generous timeout; the only timing assertion is the issue's "a new message reaches a subscribed
client within a second".
Set CONVEX_DRIVER_TRACE=1 to have the node script log every frame to its log file.

Without node or the pinned npm packages (``npm ci`` at the repo root) these tests skip; with
``SESSIONBASE_REQUIRE_INTEGRATION=1`` they fail instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.builders.codex import Rollout
from tests.support.codex_cli import harness_setting
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().parent / "js" / "convex_client.mjs"
PINNED_NPM = {"convex": "1.48.0", "ws": "8.23.0"}
WAIT = 20.0  # seconds: how long any single expected event may take before the test fails
LIVE_LATENCY = 1.0  # the issue: an appended message reaches subscribed clients within a second


class EventTimeout(AssertionError):
    """An expected event did not arrive in time."""


class MutationStuck(EventTimeout):
    """A mutation the server reported as successful never resolved in the client."""


class PyPIUnreachable(AssertionError):
    """The PyPI client could not open its sync connection at all."""


# ------------------------------------------------------------------ availability


def _unavailable(reason: str) -> None:
    if harness_setting("SESSIONBASE_REQUIRE_INTEGRATION") == "1":
        pytest.fail(f"SESSIONBASE_REQUIRE_INTEGRATION=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _npm_unavailable_reason() -> str | None:
    node = shutil.which("node")
    if node is None:
        return "node is not on PATH (needed to run the npm Convex client)"
    for package, version in PINNED_NPM.items():
        manifest = REPO / "node_modules" / package / "package.json"
        if not manifest.exists():
            return f"node_modules/{package} is missing: run `npm ci` in {REPO}"
        found = json.loads(manifest.read_text())["version"]
        if found != version:
            return f"node_modules/{package} is {found}, package.json pins {version}: run `npm ci`"
    return None


def npm_node() -> str:
    """The node binary, with the pinned npm packages installed (or skip, or fail)."""
    reason = _npm_unavailable_reason()
    if reason is not None:
        _unavailable(reason)
    found = shutil.which("node")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def node() -> str:
    return npm_node()


@pytest.fixture(scope="module")
def pypi_convex() -> None:
    if importlib.util.find_spec("convex") is None:
        _unavailable("the PyPI `convex` client is not installed (it is a dev dependency: uv sync)")


# ------------------------------------------------------------------ servers and rollouts


class BootedServer(ServerProcess):
    """A ServerProcess whose child runs ``boot`` (Python source) before ``sessionbase serve``:
    for the one test that must change the server's timing to reproduce a race on demand."""

    def __init__(self, data_dir: Path, codex_home: Path, boot: str) -> None:
        super().__init__(data_dir, codex_home)
        self.boot = boot

    def start(self, timeout: float = 30.0) -> ServerProcess:
        real_popen = subprocess.Popen

        def popen(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
            if argv[1:2] == ["-c"] and "sessionbase.cli" in argv[2]:
                argv = [argv[0], "-c", f"{self.boot}\n{argv[2]}", *argv[3:]]
            return real_popen(argv, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("tests.support.server.subprocess.Popen", popen)
            return super().start(timeout)


class Codex:
    """A Codex home served by one `sessionbase serve`."""

    def __init__(self, root: Path, *, boot: str | None = None, database: str = "") -> None:
        self.home = root / "codex-home"
        # The day directory every Rollout here writes to exists before the server watches: a
        # file created in a directory made a moment earlier is sometimes only found by the
        # periodic rescan (seconds later), which is not what these tests are about.
        Rollout().path_in(self.home).parent.mkdir(parents=True)
        if boot is None:
            extra = ("--database", database) if database else ()
            self.server = ServerProcess(root / "data", self.home, extra=extra)
        else:
            self.server = BootedServer(root / "data", self.home, boot)

    def thread(self, pairs: int, *, extra_user: int = 0) -> Thread:
        """A new rollout with ``pairs`` user/assistant exchanges (plus ``extra_user`` user
        messages), written and waited for until the server has ingested it."""
        rollout = Rollout(cwd="/work/convex-clients")
        rollout.turn()
        for i in range(pairs):
            rollout.user(f"question {i}").assistant(f"answer {i}")
        for i in range(extra_user):
            rollout.user(f"extra {i}")
        thread = Thread(self, rollout, rollout.write(self.home), 2 * pairs + extra_user)
        thread.wait_ingested(thread.count)
        return thread

    def query(self, path: str, args: dict[str, Any]) -> Any:
        """A one-shot query over the plain JSON API (for setup and polling, not under test)."""
        query = urllib.parse.urlencode({"args": json.dumps(args)})
        url = f"{self.server.url}/v1/query/{path}?{query}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)


class Thread:
    """One rollout on disk; ``append_user`` adds a message the way Codex does (append + flush)."""

    def __init__(self, codex: Codex, rollout: Rollout, path: Path, count: int) -> None:
        self.codex = codex
        self.rollout = rollout
        self.path = path
        self.count = count  # messages the server should have

    @property
    def id(self) -> str:
        return self.rollout.thread_id

    def message_id(self, idx: int) -> str:
        return f"{self.id}:{idx}"

    def append_user(self, text: str) -> float:
        """Append one user message; returns ``time.monotonic()`` right after the write."""
        before = len(self.rollout.lines)
        self.rollout.user(text)
        data = b"".join(line + b"\n" for line in self.rollout.lines[before:])
        with open(self.path, "ab") as f:
            f.write(data)
            f.flush()
        written = time.monotonic()
        self.count += 1
        return written

    def wait_ingested(self, count: int) -> None:
        deadline = time.monotonic() + WAIT
        thread = None
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                thread = self.codex.query("threads:get", {"id": self.id})
                if thread is not None and thread["messageCount"] == count:
                    return
            time.sleep(0.05)
        raise AssertionError(f"thread {self.id} not ingested with {count} messages: {thread}")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def codex(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Codex]:
    """The module's shared server on each backend in turn (tests make their own threads in
    it; PostgreSQL in a database of its own)."""
    database = ""
    if request.param == "postgres":
        database = request.getfixturevalue("pg_databases").create()
    served = Codex(tmp_path_factory.mktemp("convex-clients"), database=database)
    served.server.start()
    yield served
    served.server.stop()


# ------------------------------------------------------------------ the npm client


class NodeClient:
    """``node js/convex_client.mjs URL``: one npm ``ConvexClient``, commands in, events out."""

    def __init__(self, node: str, url: str, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # the client's own console output, for failures
        self.proc = subprocess.Popen(
            [node, str(DRIVER), url],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._ids = 0
        self.wait(lambda e: e["event"] == "ready")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            arrived = time.monotonic()
            event = json.loads(line)
            with self._changed:
                self.events.append((arrived, event))
                self._changed.notify_all()
        with self._changed:
            self.events.append((time.monotonic(), {"event": "exit"}))
            self._changed.notify_all()

    # ------------------------------------------------------------ plumbing

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def mark(self) -> int:
        """A position in the event list: ``wait(..., since=mark)`` looks only at later events."""
        with self._changed:
            return len(self.events)

    def wait(
        self, match: Callable[[dict[str, Any]], bool], *, since: int = 0, timeout: float = WAIT
    ) -> tuple[float, dict[str, Any]]:
        """The first event at or after ``since`` that matches, with its arrival time."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for arrived, event in self.events[since:]:
                    if match(event):
                        return arrived, event
                    if event["event"] in ("exception", "bad-command", "exit"):
                        raise AssertionError(f"node client: {event}\n{self.stderr()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise EventTimeout(
                        f"no matching event within {timeout} s; events since {since}:\n"
                        + "\n".join(json.dumps(e)[:400] for _, e in self.events[since:])
                        + f"\nclient log:\n{self.stderr()}"
                    )
                self._changed.wait(left)

    def update(
        self,
        name: str,
        match: Callable[[Any], bool] = lambda _: True,
        *,
        since: int = 0,
        timeout: float = WAIT,
    ) -> tuple[float, Any]:
        """The first update of subscription ``name`` whose value matches."""
        arrived, event = self.wait(
            lambda e: e["event"] == "update" and e["name"] == name and match(e["value"]),
            since=since,
            timeout=timeout,
        )
        return arrived, event["value"]

    def updates(self, name: str, *, since: int = 0) -> list[Any]:
        with self._changed:
            return [
                e["value"]
                for _, e in self.events[since:]
                if e["event"] == "update" and e["name"] == name
            ]

    def errors(self, *, since: int = 0) -> list[dict[str, Any]]:
        with self._changed:
            return [e for _, e in self.events[since:] if e["event"] == "error"]

    def stderr(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    # ------------------------------------------------------------ commands

    def subscribe(self, name: str, query: str, args: dict[str, Any]) -> None:
        self.send(cmd="subscribe", name=name, query=query, args=args)

    def paginate(self, name: str, query: str, args: dict[str, Any], initial: int) -> None:
        self.send(cmd="paginate", name=name, query=query, args=args, initialNumItems=initial)

    def query(self, query: str, args: dict[str, Any]) -> dict[str, Any]:
        """A one-shot ``client.query``; its result event."""
        self._ids += 1
        request = self._ids
        since = self.mark()
        self.send(cmd="query", id=request, query=query, args=args)
        return self.wait(lambda e: e["event"] == "result" and e["id"] == request, since=since)[1]

    def mutate(
        self,
        mutation: str,
        args: dict[str, Any],
        *,
        then: tuple[dict[str, Any], ...] = (),
        timeout: float = WAIT,
    ) -> dict[str, Any]:
        """``await client.mutation(...)`` (then the ``then`` queries); its result event.

        The client resolves only once its state is at the commit's timestamp, so the ``then``
        queries check read-your-writes.
        """
        self._ids += 1
        request = self._ids
        since = self.mark()
        self.send(cmd="mutation", id=request, mutation=mutation, args=args, then=list(then))

        def is_result(event: dict[str, Any]) -> bool:
            return event["event"] == "result" and event["id"] == request

        try:
            return self.wait(is_result, since=since, timeout=timeout)[1]
        except EventTimeout as exc:
            raise MutationStuck(str(exc)) from None

    def close(self) -> None:
        if self._log.closed:
            return
        with contextlib.suppress(OSError, ValueError):
            self.send(cmd="close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()
        self._reader.join(timeout=5)
        self._log.close()


@pytest.fixture
def npm_client(node: str, tmp_path: Path) -> Iterator[Callable[[str], NodeClient]]:
    """Factory: an npm ``ConvexClient`` connected to a URL; all are closed at teardown."""
    clients: list[NodeClient] = []

    def connect(url: str) -> NodeClient:
        client = NodeClient(node, url, tmp_path / f"node-client-{len(clients)}.log")
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in messages]


def summary(threads: list[dict[str, Any]], thread_id: str) -> dict[str, Any] | None:
    return next((t for t in threads if t["id"] == thread_id), None)


def has_count(thread_id: str, count: int) -> Callable[[Any], bool]:
    """A ``threads:recent`` result in which the thread has ``count`` messages."""

    def match(value: Any) -> bool:
        found = summary(value, thread_id)
        return found is not None and found["messageCount"] == count

    return match


def assert_unique_ids(messages: list[dict[str, Any]]) -> None:
    ids = [m["id"] for m in messages]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicated, f"duplicated message ids: {duplicated}"


# ------------------------------------------------------------------ 1. live subscriptions


def test_subscriptions_see_an_appended_message_within_a_second(
    codex: Codex, npm_client: Callable[[str], NodeClient]
) -> None:
    thread = codex.thread(3)
    client = npm_client(codex.server.url)
    client.subscribe("recent", "threads:recent", {})
    client.subscribe("tail", "messages:tail", {"threadId": thread.id, "n": 3})

    _, recent = client.update("recent", has_count(thread.id, 6))
    assert summary(recent, thread.id)["title"] == "question 0"
    _, tail = client.update("tail")
    assert texts(tail) == ["answer 1", "question 2", "answer 2"]
    assert [m["id"] for m in tail] == [thread.message_id(i) for i in (3, 4, 5)]

    since = client.mark()
    appended = thread.append_user("a brand new question")
    tail_at, tail = client.update(
        "tail", lambda v: v and v[-1]["text"] == "a brand new question", since=since
    )
    recent_at, recent = client.update("recent", has_count(thread.id, 7), since=since)

    assert texts(tail) == ["question 2", "answer 2", "a brand new question"]
    assert tail[-1] == {**tail[-1], "id": thread.message_id(6), "role": "user", "idx": 6}
    assert summary(recent, thread.id)["snippet"] == "a brand new question"
    assert tail_at - appended <= LIVE_LATENCY, f"tail update took {tail_at - appended:.3f} s"
    assert recent_at - appended <= LIVE_LATENCY, f"recent update took {recent_at - appended:.3f} s"
    assert not client.errors()


# ------------------------------------------------------------------ 2. mutations


def test_mutation_resolves_and_reads_its_own_write(
    codex: Codex, npm_client: Callable[[str], NodeClient]
) -> None:
    thread = codex.thread(2)
    client = npm_client(codex.server.url)
    client.subscribe("recent", "threads:recent", {})
    client.subscribe("get", "threads:get", {"id": thread.id})
    client.update("recent", has_count(thread.id, 4))
    _, detail = client.update("get")
    assert detail["title"] == "question 0"
    assert detail["titleSource"] == "message"

    since = client.mark()
    result = client.mutate(
        "threads:rename",
        {"id": thread.id, "title": "  Renamed from node  "},
        then=({"query": "threads:get", "args": {"id": thread.id}},),
    )
    assert result["ok"], result
    assert result["value"] is None
    # Read-your-writes: when the promise resolved, the client's own subscriptions and a
    # `client.query` issued right after already showed the new title.
    current = result["current"]
    assert current["get"]["title"] == "Renamed from node"
    assert current["get"]["titleSource"] == "user"
    assert summary(current["recent"], thread.id)["title"] == "Renamed from node"
    assert result["then"][0]["title"] == "Renamed from node"
    # …and both subscriptions were told.
    client.update("get", lambda v: v["title"] == "Renamed from node", since=since)
    client.update(
        "recent",
        lambda v: (summary(v, thread.id) or {}).get("title") == "Renamed from node",
        since=since,
    )
    assert codex.query("threads:get", {"id": thread.id})["title"] == "Renamed from node"

    # A null title restores Codex's own.
    since = client.mark()
    result = client.mutate("threads:rename", {"id": thread.id, "title": None})
    assert result["ok"], result
    assert result["current"]["get"]["title"] == "question 0"
    assert result["current"]["get"]["titleSource"] == "message"
    client.update("get", lambda v: v["title"] == "question 0", since=since)

    # A mutation the server refuses rejects the promise at once.
    result = client.mutate("threads:rename", {"id": "no-such-thread", "title": "x"})
    assert not result["ok"]
    assert "no thread with id 'no-such-thread'" in result["message"]
    assert not client.errors()


# Reproduces, deterministically, the race that makes `await client.mutation(...)` hang now and
# then against a normal server: the mutation commits, the live engine's tick picks the commit up
# and the session sends the Transition (ts >= the commit's) *before* the MutationResponse. Here
# the server's Engine.mutation returns its result 0.5 s after committing, as a descheduled writer
# thread might; the server code under test is otherwise unchanged.
DELAYED_MUTATION_REPLY = """
import asyncio
from sessionbase.live.engine import Engine

_mutation = Engine.mutation

async def _late_reply(self, *args, **kwargs):
    result = await _mutation(self, *args, **kwargs)
    await asyncio.sleep(0.5)  # the commit's own tick reaches the clients first
    return result

Engine.mutation = _late_reply
"""


def test_mutation_resolves_when_its_transition_overtakes_the_reply(
    tmp_path: Path, node: str, npm_client: Callable[[str], NodeClient]
) -> None:
    codex = Codex(tmp_path / "late-reply", boot=DELAYED_MUTATION_REPLY)
    codex.server.start()
    thread = codex.thread(1)
    client = npm_client(codex.server.url)
    try:
        client.subscribe("get", "threads:get", {"id": thread.id})
        client.update("get")
        since = client.mark()
        result = client.mutate("threads:rename", {"id": thread.id, "title": "Late"}, timeout=5)
        assert result["ok"], result
        assert result["current"]["get"]["title"] == "Late"
        client.update("get", lambda v: v["title"] == "Late", since=since)
    finally:
        client.close()  # first, or the server waits for it to hang up before exiting
        codex.server.stop()


# ------------------------------------------------------------------ 3. pagination


def test_paginated_query_walks_every_page_and_stays_live(
    codex: Codex, npm_client: Callable[[str], NodeClient]
) -> None:
    thread = codex.thread(12, extra_user=1)  # 25 messages
    client = npm_client(codex.server.url)

    # Walk the pages by hand, the way any paginated UI does: each page its own subscription.
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    for number in range(5):
        name = f"page{number}"
        opts = {"numItems": 10, "cursor": cursor}
        client.subscribe(name, "messages:list", {"threadId": thread.id, "paginationOpts": opts})
        _, page = client.update(name)
        pages.append(page)
        if page["isDone"]:
            break
        cursor = page["continueCursor"]
    assert [len(p["page"]) for p in pages] == [10, 10, 5]
    assert [p["isDone"] for p in pages] == [False, False, True]
    walked = [m for p in pages for m in p["page"]]
    assert [m["id"] for m in walked] == [thread.message_id(i) for i in range(25)]
    assert_unique_ids(walked)

    # The client's own paginated logic (PaginatedQueryClient, as in usePaginatedQuery).
    client.paginate("live", "messages:list", {"threadId": thread.id}, 10)
    _, live = client.update("live", lambda v: v["status"] == "CanLoadMore")
    assert len(live["results"]) == 10
    for loaded in (20, 25):
        since = client.mark()
        client.send(cmd="loadMore", name="live", numItems=10)
        _, ok = client.wait(lambda e: e["event"] == "loadMore", since=since)
        assert ok["ok"]
        _, live = client.update(
            "live",
            lambda v, n=loaded: len(v["results"]) == n and v["status"] != "LoadingMore",
            since=since,
        )
    assert live["status"] == "Exhausted"
    assert [m["id"] for m in live["results"]] == [thread.message_id(i) for i in range(25)]

    # A new message lands on the last page: its subscription (and the paginated view) update.
    since = client.mark()
    thread.append_user("the 26th message")
    _, last = client.update("page2", lambda v: len(v["page"]) == 6, since=since)
    assert last["isDone"] is True
    assert texts(last["page"])[-1] == "the 26th message"
    _, live = client.update("live", lambda v: len(v["results"]) == 26, since=since)
    assert live["status"] == "Exhausted"
    assert [m["id"] for m in live["results"]] == [thread.message_id(i) for i in range(26)]
    # The full pages did not change, so they got no new results.
    assert client.updates("page0", since=since) == []
    assert client.updates("page1", since=since) == []
    assert not client.errors()


def test_paginated_thread_list_stays_gapless_as_threads_move(
    tmp_path: Path, npm_client: Callable[[str], NodeClient], database_option: str
) -> None:
    # Threads move to the top of a newest-first list: each page keeps the end it first had
    # (the query journal), so no thread falls between two pages.
    codex = Codex(tmp_path / "moving", database=database_option)
    codex.server.start()
    try:
        threads = [codex.thread(1) for _ in range(6)]
        client = npm_client(codex.server.url)

        def listed(value: Any) -> list[str]:
            return [t["id"] for t in value["results"]]

        def everything() -> list[str]:
            return [t["id"] for t in codex.query("threads:recent", {"limit": 100})]

        client.paginate("list", "threads:list", {}, 2)
        _, live = client.update("list", lambda v: v["status"] == "CanLoadMore")
        for loaded in (4, 6):
            since = client.mark()
            client.send(cmd="loadMore", name="list", numItems=2)
            _, live = client.update(
                "list",
                lambda v, n=loaded: len(v["results"]) == n and v["status"] != "LoadingMore",
                since=since,
            )
        assert listed(live) == everything()
        assert len(set(listed(live))) == 6

        # The thread at the bottom (on the last page) gets a message: it moves to the top.
        bottom = next(t for t in threads if t.id == listed(live)[-1])
        since = client.mark()
        bottom.append_user("moved to the top")
        bottom.wait_ingested(bottom.count)
        _, live = client.update("list", lambda v: listed(v)[:1] == [bottom.id], since=since)
        assert listed(live) == everything()

        # A new thread appears; the lists still agree, thread for thread.
        since = client.mark()
        extra = codex.thread(1)
        _, live = client.update("list", lambda v: extra.id in listed(v), since=since)
        assert listed(live) == everything()
        assert live["status"] == "Exhausted"
        assert not client.errors()
        client.close()
    finally:
        codex.server.stop()


# ------------------------------------------------------------------ 4. restart


def test_client_reconnects_after_a_restart_and_resumes(
    tmp_path: Path, node: str, npm_client: Callable[[str], NodeClient], database_option: str
) -> None:
    codex = Codex(tmp_path / "restart", database=database_option)
    codex.server.start()
    thread = codex.thread(3)
    client = npm_client(codex.server.url)
    try:
        _reconnect_scenario(codex, thread, client)
    finally:
        client.close()  # first, or the server waits for it to hang up before exiting
        codex.server.stop()


def _reconnect_scenario(codex: Codex, thread: Thread, client: NodeClient) -> None:
    client.subscribe("recent", "threads:recent", {})
    client.subscribe("tail", "messages:tail", {"threadId": thread.id, "n": 50})
    client.paginate("pages", "messages:list", {"threadId": thread.id}, 4)
    client.update("recent", has_count(thread.id, 6))
    client.update("tail", lambda v: len(v) == 6)
    client.update("pages", lambda v: v["status"] == "CanLoadMore")
    since = client.mark()
    client.send(cmd="loadMore", name="pages", numItems=4)
    client.update("pages", lambda v: v["status"] == "Exhausted", since=since)

    # Down: the client notices; a message written meanwhile must be caught up on restart,
    # and a mutation made meanwhile is sent (once) when the connection is back.
    since = client.mark()
    codex.server.stop()
    client.wait(lambda e: e["event"] == "connection" and not e["connected"], since=since)
    thread.append_user("written while the server was down")
    client.send(
        cmd="mutation",
        id="while-down",
        mutation="threads:setPinned",
        args={"id": thread.id, "pinned": True},
    )
    codex.server.start()
    client.wait(lambda e: e["event"] == "connection" and e["connected"], since=since)
    _, tail = client.update("tail", lambda v: len(v) == 7, since=since)
    assert texts(tail)[-1] == "written while the server was down"
    client.update("recent", lambda v: (summary(v, thread.id) or {}).get("pinned"), since=since)

    # Up again: subscriptions are live on the new connection.
    since = client.mark()
    thread.append_user("written after the restart")
    _, tail = client.update("tail", lambda v: len(v) == 8, since=since)
    _, recent = client.update("recent", has_count(thread.id, 8), since=since)
    _, pages = client.update("pages", lambda v: len(v["results"]) == 8, since=since)
    assert summary(recent, thread.id)["pinned"] is True
    # The mutation made while down was re-sent and resolved (by now at the latest: the
    # Transition for the append covers its commit, whatever the order of its reply; see
    # NodeClient.mutate for why that matters).
    result = client.wait(lambda e: e["event"] == "result" and e["id"] == "while-down")[1]
    assert result["ok"], result

    expected = [thread.message_id(i) for i in range(8)]
    assert [m["id"] for m in tail] == expected
    assert [m["id"] for m in pages["results"]] == expected
    for value in client.updates("tail") + [p["results"] for p in client.updates("pages")]:
        assert_unique_ids(value)
    assert not client.errors()


# ------------------------------------------------------------------ 6. failing queries


def test_a_failing_query_fails_alone(codex: Codex, npm_client: Callable[[str], NodeClient]) -> None:
    thread = codex.thread(2)
    client = npm_client(codex.server.url)
    client.subscribe("good", "messages:tail", {"threadId": thread.id, "n": 2})
    client.subscribe("unknown", "nosuch:query", {})
    client.subscribe("badargs", "messages:tail", {"threadId": thread.id, "n": "many"})
    client.subscribe("extra", "threads:get", {"id": thread.id, "bogus": 1})
    client.subscribe(
        "badcursor",
        "messages:list",
        {"threadId": thread.id, "paginationOpts": {"numItems": 5, "cursor": "not-a-cursor"}},
    )
    client.subscribe("recent", "threads:recent", {})
    _, good = client.update("good")
    assert texts(good) == ["question 1", "answer 1"]
    client.update("recent", has_count(thread.id, 4))

    failing = {"unknown", "badargs", "extra", "badcursor"}
    for name in failing:
        client.wait(lambda e, n=name: e["event"] == "error" and e["name"] == n)
    errors = {e["name"]: e["message"] for e in client.errors()}
    assert set(errors) == failing
    assert "no query named 'nosuch:query'" in errors["unknown"]
    assert "invalid arguments" in errors["badargs"]
    assert "n: " in errors["badargs"]
    assert "bogus" in errors["extra"]
    assert "not-a-cursor" in errors["badcursor"]
    for name in failing:
        assert client.updates(name) == [], name

    # The good subscriptions on the same client keep working.
    since = client.mark()
    thread.append_user("still live")
    _, good = client.update("good", lambda v: v[-1]["text"] == "still live", since=since)
    client.update("recent", has_count(thread.id, 5), since=since)
    assert {e["name"] for e in client.errors(since=since)} <= failing

    # One-shot queries: a bad one rejects, the next good one resolves.
    bad = client.query("nosuch:query", {})
    assert not bad["ok"]
    assert "no query named 'nosuch:query'" in bad["message"]
    ok = client.query("threads:get", {"id": thread.id})
    assert ok["ok"]
    assert ok["value"]["messageCount"] == 5

    # A subscription added after the failures is served too.
    client.subscribe("late", "messages:tail", {"threadId": thread.id, "n": 1})
    _, late = client.update("late")
    assert texts(late) == ["still live"]


# ------------------------------------------------------------------ 5. the PyPI client

# The PyPI client (a Rust extension) holds the GIL while it blocks, so it cannot share a process
# with anything that must keep running (reader threads, timeouts). It runs in a child Python
# that takes one JSON command per stdin line and prints one JSON reply per command.
PYPI_CHILD = r"""
import json, sys
import convex

client = convex.ConvexClient(sys.argv[1])
subs = {}
for line in sys.stdin:
    cmd = json.loads(line)
    try:
        op = cmd["op"]
        if op == "query":
            value = client.query(cmd["path"], cmd["args"])
        elif op == "mutation":
            value = client.mutation(cmd["path"], cmd["args"])
        elif op == "subscribe":
            subs[cmd["name"]] = iter(client.subscribe(cmd["path"], cmd["args"]))
            value = next(subs[cmd["name"]])
        elif op == "next":
            value = next(subs[cmd["name"]])
        elif op == "set_auth":
            value = client.set_auth(cmd["token"])
        else:
            raise ValueError(f"unknown op {op!r}")
        reply = {"ok": True, "value": value}
    except Exception as exc:
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(reply), flush=True)
"""


class PyPIClient:
    """The PyPI ``convex.ConvexClient`` in a child process, with a timeout on every call."""

    def __init__(
        self, url: str, log_path: Path, refused: Callable[[], str | None] = lambda: None
    ) -> None:
        self._log = open(log_path, "wb")
        self.log_path = log_path
        self.refused = refused  # why the server refused the connection, if it did
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONBASE_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PYPI_CHILD, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            env=env,
        )
        self.replies: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.replies.append(json.loads(line))
                self._changed.notify_all()

    def __call__(self, op: str, timeout: float = WAIT, **fields: Any) -> dict[str, Any]:
        with self._changed:
            position = len(self.replies)
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.replies) <= position:
                # The client retries a refused upgrade forever (or fails "channel closed").
                refused = self.refused()
                if refused is not None:
                    raise PyPIUnreachable(refused)
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    self._log.flush()
                    log = self.log_path.read_text(errors="replace")[-3000:]
                    raise EventTimeout(f"PyPI client: no reply to {op} {fields}\n{log}")
                self._changed.wait(min(left, 0.5))
            return self.replies[position]

    def close(self) -> None:
        self.proc.kill()  # it may be blocked inside the extension; nothing to flush
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()
        self._reader.join(timeout=5)
        self._log.close()


def _pypi_scenario(codex: Codex, url: str, log_path: Path) -> None:
    thread = codex.thread(2)
    mark = len(codex.server.log_path.read_bytes())

    def refused() -> str | None:
        with open(codex.server.log_path, "rb") as log:
            log.seek(mark)
            lines = log.read().decode(errors="replace").splitlines()
        return next((line for line in lines if '"WebSocket /api/sync" 403' in line), None)

    client = PyPIClient(url, log_path, refused)
    try:
        got = client("query", path="threads:get", args={"id": thread.id})
        if not got["ok"] and "channel closed" in got["error"]:
            # A refused upgrade surfaces like this, too (the server logs the 403 just after).
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if (why := refused()) is not None:
                    raise PyPIUnreachable(why)
                time.sleep(0.1)
        assert got["ok"], got
        assert got["value"]["title"] == "question 0"
        assert got["value"]["messageCount"] == 4

        done = client("mutation", path="threads:rename", args={"id": thread.id, "title": "From Py"})
        assert done == {"ok": True, "value": None}
        got = client("query", path="threads:get", args={"id": thread.id})
        assert got["value"]["title"] == "From Py"

        first = client("subscribe", name="tail", path="messages:tail",
                       args={"threadId": thread.id, "n": 2})  # fmt: skip
        assert first["ok"], first
        assert texts(first["value"]) == ["question 1", "answer 1"]
        thread.append_user("seen by python")
        second = client("next", name="tail")
        assert second["ok"], second
        assert texts(second["value"]) == ["answer 1", "seen by python"]

        bad = client("query", path="nosuch:query", args={})
        assert not bad["ok"]
        assert "no query named 'nosuch:query'" in bad["error"]
        rejected = client("mutation", path="threads:rename", args={"id": "no-such-thread"})
        assert not rejected["ok"]
        assert "no thread with id 'no-such-thread'" in rejected["error"]
    finally:
        client.close()


def test_pypi_client_query_mutation_subscribe(
    codex: Codex, pypi_convex: None, tmp_path: Path
) -> None:
    _pypi_scenario(codex, codex.server.url, tmp_path / "pypi-client.log")

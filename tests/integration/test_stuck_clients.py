"""Clients that stop reading, against a real ``sessionbase serve``: raw sockets complete the
WebSocket upgrade, subscribe to big ``messages:tail`` results and never read another byte.

The server must let go of them: once the watchdog drops one (its send waited too long), its
socket, its buffers and its subscriptions are gone at once, with no close handshake awaited;
and a connection whose unsent bytes would pass the cap is aborted without waiting at all.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import psutil
import pytest

from sessionbase.server.sync import SEND_TIMEOUT_SECONDS, WATCHDOG_SECONDS
from sessionbase.server.websocket_protocol import MAX_UNSENT_BYTES
from tests.builders.codex import DEFAULT_START, Rollout
from tests.support.raw_ws import SilentSocket
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class BigThread:
    """A thread of ``messages`` messages of ``size`` bytes each, appended to as Codex would."""

    def __init__(self, codex_home: Path, start_hours: int, messages: int, size: int) -> None:
        self.rollout = Rollout(start=DEFAULT_START + timedelta(hours=start_hours), cwd="/w/big")
        self.size = size
        turn = self.rollout.turn()
        for i in range(messages):
            self.rollout.user(f"message {i} " + "x" * size)
        self.rollout.end_turn(turn)
        self.id = self.rollout.thread_id
        self.messages = messages
        self.path = self.rollout.write(codex_home)
        self.written = len(self.rollout.lines)

    def append(self, text: str) -> None:
        self.rollout.user(text + " " + "y" * self.size)
        self.messages += 1
        with open(self.path, "ab") as fh:
            fh.write(b"".join(line + b"\n" for line in self.rollout.lines[self.written :]))
        self.written = len(self.rollout.lines)


class Server:
    def __init__(self, server: ServerProcess, codex_home: Path) -> None:
        self.server = server
        self.codex_home = codex_home
        self.http = httpx.Client(base_url=server.url, timeout=30, trust_env=False)

    @property
    def pid(self) -> int:
        assert self.server.proc is not None
        return self.server.proc.pid

    def readyz(self) -> dict[str, int]:
        body: dict[str, int] = self.http.get("/readyz").json()
        return body

    def wait_ingested(self, thread: BigThread) -> None:
        deadline = time.monotonic() + 60
        while True:
            got = self.http.post("/v1/query/threads:get", json={"id": thread.id}).json()
            if got is not None and got["messageCount"] == thread.messages:
                return
            assert time.monotonic() < deadline, f"server has {got and got['messageCount']}"
            time.sleep(0.05)

    def open_sockets(self, client_ports: set[int]) -> set[int]:
        """Which of these client ports still have an open socket in the server process."""
        return {
            c.raddr.port
            for c in psutil.Process(self.pid).net_connections(kind="tcp")
            if c.raddr and c.raddr.port in client_ports and c.status != psutil.CONN_CLOSE
        }

    def log(self) -> str:
        return self.server.log_path.read_text(errors="replace")

    def wait_until(self, done: Callable[[], bool], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not done():
            assert time.monotonic() < deadline, f"{what} after {within:.0f} s: {self.readyz()}"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("stuck")
    codex_home = root / "codex-home"
    (codex_home / "sessions").mkdir(parents=True)
    with ServerProcess(root / "data", codex_home) as server:
        live = Server(server, codex_home)
        try:
            yield live
        finally:
            live.http.close()


def silent_subscribers(served: Server, thread: BigThread, count: int) -> list[SilentSocket]:
    sockets = []
    for _ in range(count):
        silent = SilentSocket(served.server.port)
        silent.send({"type": "Connect", "sessionId": str(uuid.uuid4()), "connectionCount": 0,
                     "lastCloseReason": None, "clientTs": 0})  # fmt: skip
        tail = {"type": "Add", "queryId": 0, "udfPath": "messages:tail",
                "args": [{"threadId": thread.id, "n": 1000}]}  # fmt: skip
        silent.send(
            {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [tail]}
        )
        sockets.append(silent)
    return sockets


def test_dropped_clients_are_released_at_once(served: Server) -> None:
    """The watchdog's drop aborts the transport: nothing waits for a drain that never comes."""
    thread = BigThread(served.codex_home, 1, messages=400, size=1500)  # a ~700 KB tail
    served.wait_ingested(thread)
    baseline = served.readyz()
    silent = silent_subscribers(served, thread, 20)
    ports = {s.local_port for s in silent}
    try:
        served.wait_until(
            lambda: served.readyz()["connections"] == baseline["connections"] + 20,
            30, "the silent clients never connected",
        )  # fmt: skip
        for i in range(20):
            thread.append(f"more {i}")
            time.sleep(0.1)
        served.wait_ingested(thread)
        assert served.open_sockets(ports) == ports  # stuck, not gone yet
        # Dropped within a bounded number of watchdog rounds after their sends got stuck,
        # and then gone at once: sessions, subscriptions and the sockets themselves.
        served.wait_until(
            lambda: served.readyz()["connections"] == baseline["connections"]
            and served.readyz()["subscriptions"] == baseline["subscriptions"]
            and not served.open_sockets(ports),
            SEND_TIMEOUT_SECONDS + 3 * WATCHDOG_SECONDS,
            "silent clients still held",
        )  # fmt: skip
    finally:
        for s in silent:
            s.close()
    assert "dropping a sync client that stopped reading" in served.log()


def test_a_connection_over_the_unsent_cap_is_aborted_without_waiting(served: Server) -> None:
    # A tail of ~5 MB: the first result waits in the buffers, the second cannot join it.
    size = 8000
    messages = MAX_UNSENT_BYTES * 5 // 8 // size
    thread = BigThread(served.codex_home, 2, messages=messages, size=size)
    served.wait_ingested(thread)
    baseline = served.readyz()
    silent = silent_subscribers(served, thread, 2)
    ports = {s.local_port for s in silent}
    try:
        served.wait_until(
            lambda: served.readyz()["connections"] == baseline["connections"] + 2,
            30, "the silent clients never connected",
        )  # fmt: skip
        time.sleep(1)  # the first Transitions are written
        dropped_before = served.log().count("dropping a sync client")
        thread.append("one more")
        served.wait_until(
            lambda: served.readyz()["connections"] == baseline["connections"]
            and not served.open_sockets(ports),
            SEND_TIMEOUT_SECONDS + 3 * WATCHDOG_SECONDS,
            "clients over the cap still held",
        )  # fmt: skip
    finally:
        for s in silent:
            s.close()
    log = served.log()
    assert log.count("bytes would wait unsent") >= 2, log
    assert log.count("dropping a sync client") == dropped_before  # not the watchdog's doing
    assert served.readyz()["subscriptions"] == baseline["subscriptions"]

"""Live-query benchmarks: every figure beside a baseline measured in the same run.

    uv run python bench/bench_live.py                    # everything (about 10 minutes)
    uv run python bench/bench_live.py --quick            # smaller counts, two or three minutes
    uv run python bench/bench_live.py --only fanout      # one section (or a comma list)

Sections (see bench/README.md, "Live-query benchmarks", for what each figure means):

- ``latency``: one raw WebSocket client subscribed to ``messages:tail`` on a thread; a rollout
  line is appended (one ``write()``), and the time to the Transition carrying it is taken.
  Baseline: a bare ``watchfiles`` watcher (same debounce/step as serve) that pushes the new bytes
  over a raw ``websockets`` connection, with the same appends.
- ``fanout``: 100 and 1,000 clients on ``messages:tail {threadId, n: 20}`` of one thread; time
  from the commit (the Transition's ``endVersion.ts``) to the last client's Transition, and from
  the append as info. Baseline: a minimal ``websockets`` broadcast
  server sending a payload of the same size to the same number of clients when triggered.
- ``idle``: server RSS (``/proc/<pid>/status`` VmRSS) with 10,000 connected clients, each
  subscribed to one of ~100 different ``messages:tail`` queries, vs. the same server with none.
- ``executions``: the server in-process (uvicorn in a thread) so ``engine.executions`` can be
  read; query executions per commit with 1,000 identical subscriptions vs. with one.

Clients run in child processes (``--client-procs``), each a plain asyncio loop of
``websockets`` sans-I/O connections; every timestamp is ``time.time_ns()`` on this machine.
Timings are printed as ratios against their baselines; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import math
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.builders: the Rollout builder

from tests.builders.codex import DEFAULT_START, Rollout  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from _common import (  # noqa: E402
    Results,
    child_env,
    git_version,
    log,
    machine_line as common_machine_line,
    percentile,
    raise_nofile,
    sessionbase_cmd,
    verdict,
)

SYNC_PATH = "/api/1.17.0/sync"
TS_RE = re.compile(rb'"endVersion":\{[^}]*"ts":"([A-Za-z0-9+/=]+)"')
# Published anchor (convex-protocol.md §1.10): self-hosted Convex on a 2 vCPU VPS, fan-out p99.
ANCHOR_MS = {100: 44.0, 1000: 297.0}


def ms(v: float) -> str:
    return f"{v:.1f} ms"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b > 0 else "-"


def decode_ts(b64: bytes | str) -> int:
    return int.from_bytes(base64.b64decode(b64), "little")


# ----------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` field in bytes (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def semantic_caught_up(url: str, timeout: float) -> float | None:
    """Seconds until the server's /readyz says semantic search is caught up (None: never)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if get_json(f"{url}/readyz").get("semantic"):
            return time.monotonic() - began
        time.sleep(0.1)
    return None


def get_json(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return orjson.loads(exc.read())


def wait_subscriptions(url: str, want: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    subs = -1
    while time.monotonic() < deadline:
        subs = get_json(f"{url}/readyz")["subscriptions"]
        if subs == want:
            break
        time.sleep(0.1)
    return subs


# --------------------------------------------------------------------------------- data

_WORDS = (
    "the a to of and in is that for it with as on be this are by not or from at which can will "
    "but if have more one all we so use there when what about into than then also any only some "
    "new these may like make just how each first need should because check now file code test "
    "run change fix look update add keep sure next step instead already before after again "
    "output error value result function module class method call return line path config option "
    "thread message rollout offset batch store index session token patch cursor schema event"
).split()


def prose(rng: random.Random, lo: int, hi: int) -> str:
    n = rng.randint(lo, hi)
    out: list[str] = []
    size = 0
    while size < n:
        word = rng.choice(_WORDS)
        out.append(word)
        size += len(word) + 1
    return (" ".join(out)[:n]).capitalize() + "."


@dataclass
class Thread:
    rollout: Rollout
    path: Path
    messages: int


@dataclass
class Home:
    root: Path
    home: Path
    data: Path
    threads: list[Thread]
    rng: random.Random

    def hot(self, k: int = 1) -> list[Thread]:
        """The k threads with the most messages (each has at least 20)."""
        return sorted(self.threads, key=lambda t: -t.messages)[:k]

    def line(self, thread: Thread, text: str) -> bytes:
        """One assistant message line, as Codex writes it (one response_item line)."""
        r = thread.rollout
        r.lines.clear()
        r.assistant(text, event=False)
        return r.to_bytes()


def build_home(root: Path, threads: int, seed: int) -> Home:
    """A Codex home of ``threads`` rollouts made with the test Rollout builder."""
    shutil.rmtree(root, ignore_errors=True)
    home, data = root / "home", root / "data"
    rng = random.Random(seed)
    made: list[Thread] = []
    for i in range(threads):
        start = DEFAULT_START + timedelta(minutes=7 * i)
        r = Rollout(start=start, cwd=f"/home/dev/src/p{i % 17}")
        count = 0
        for _ in range(rng.randint(5, 12)):
            turn = r.turn()
            r.user(prose(rng, 30, 400))
            count += 1
            if rng.random() < 0.6:
                r.reasoning(prose(rng, 60, 500))
                count += 1
            for _ in range(rng.randint(0, 2)):
                r.shell(f"rg {rng.choice(_WORDS)} src", prose(rng, 0, 1500))
                count += 2
            answer = prose(rng, 80, 1200)
            r.assistant(answer)
            count += 1
            r.tokens(rng.randint(10_000, 90_000))
            r.end_turn(turn, answer)
        path = r.write(home)
        made.append(Thread(r, path, count))
    (root / "user-home").mkdir(parents=True, exist_ok=True)
    return Home(root, home, data, made, rng)


def count_messages(data: Path) -> dict[str, int]:
    db = sqlite3.connect(f"file:{data / 'sessionbase.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT thread_id, count(*) FROM messages GROUP BY thread_id").fetchall()
    finally:
        db.close()
    return dict(rows)


def fix_counts(home: Home) -> None:
    """Replace the estimated message counts by what the server actually stored."""
    counts = count_messages(home.data)
    for t in home.threads:
        t.messages = counts.get(t.rollout.thread_id, 0)


# ------------------------------------------------------------------------------ server


class Serve:
    """``sessionbase serve`` as a child with a raised fd limit, ready when /readyz says so."""

    def __init__(self, h: Home, work: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}{SYNC_PATH}"
        self.log_path = h.root / "server.log"
        argv = [*sessionbase_cmd(), "--data-dir", str(h.data), "--codex-home", str(h.home),
                "serve", "--port", str(self.port)]  # fmt: skip
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=child_env(work),
                preexec_fn=raise_nofile,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"serve exited early:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:
                    if response.status == 200:
                        return orjson.loads(response.read())
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise SystemExit(f"serve not ready after {timeout} s:\n{self.tail()}")

    def wait_semantic(self, timeout: float = 600.0) -> float:
        """Wait for the one-time embedding of the whole corpus after start; returns seconds.

        It runs once per new database and takes the CPU a fan-out needs, so a figure measured
        during it would describe start-up, not delivery. Later commits still embed as they come.
        """
        waited = semantic_caught_up(self.url, timeout)
        if waited is None:
            raise SystemExit(f"semantic index not caught up after {timeout} s:\n{self.tail()}")
        return waited

    def rss(self) -> int:
        return proc_status(self.pid, "VmRSS")

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class InProcessServer:
    """``create_app(settings)`` under uvicorn in a thread of this process (engine readable)."""

    def __init__(self, h: Home) -> None:
        import uvicorn

        from sessionbase.config import Settings
        from sessionbase.server import create_app
        from sessionbase.server.websocket_protocol import websocket_options

        settings = Settings(
            data_dir=h.data, codex_homes=(h.home,), home=h.root / "user-home", machine="bench",
            log_level="warning",
        )  # fmt: skip
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}{SYNC_PATH}"
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
            timeout_graceful_shutdown=5, **websocket_options(),
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="bench-uvicorn", daemon=True)
        self.thread.start()

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("in-process server not ready")

    def wait_semantic(self, timeout: float = 600.0) -> float:
        """As ``ServeProcess.wait_semantic``: let the start-up embedding finish first."""
        waited = semantic_caught_up(self.url, timeout)
        if waited is None:
            raise SystemExit(f"in-process server: semantic index not caught up after {timeout} s")
        return waited

    @property
    def engine(self) -> Any:
        return self.app.state.engine

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


# ------------------------------------------------------------------------ client swarm
#
# A client process holds many connections, each a websockets sans-I/O ClientProtocol on a
# plain asyncio.Protocol: no task per connection, the arrival time is taken in
# data_received. The parent drives it over a Pipe:
#   ("connect", ws_url, [[udfPath, args] | None per connection], concurrency)
#       -> ("ready", n_ready, n_failed, seconds)   (None = no subscription: the floor server)
#   ("expect", marker, timeout) -> ("armed",), later ("seen", {...})
#   ("stats",) -> ("stats", {...});  ("close",) -> ("closed",)

_CONNECT = (
    '{{"type":"Connect","sessionId":"{sid}","connectionCount":0,"lastCloseReason":null,'
    '"clientTs":{ts}}}'
)


class _Conn(asyncio.Protocol):
    def __init__(self, swarm: _Swarm, index: int, hello: list[bytes]) -> None:
        self.swarm = swarm
        self.index = index
        self.hello = hello
        # Offer permessage-deflate as browsers do: a server that accepts it pays for it here.
        self.proto = ClientProtocol(
            parse_uri(swarm.url),
            max_size=None,
            extensions=[ClientPerMessageDeflateFactory()],
        )
        self.transport: asyncio.Transport | None = None
        self.ready = asyncio.get_running_loop().create_future()
        self.is_ready = False
        self.seen_at = 0
        self.armed = False  # counted in swarm.waiting until it sees the marker
        self.alive = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.alive = True
        self.proto.send_request(self.proto.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        self.proto.receive_data(data)
        for event in self.proto.events_received():
            if isinstance(event, Frame):
                if event.opcode in (Opcode.TEXT, Opcode.CONT):
                    self.swarm.on_frame(self, event.data, now)
            elif isinstance(event, Response):
                if event.status_code != 101:
                    self._fail(f"handshake status {event.status_code}")
                    return
                for text in self.hello:
                    self.proto.send_text(text)
                if not self.hello:  # nothing to subscribe to: ready once connected
                    self._set_ready()
        self._flush()

    def _set_ready(self) -> None:
        if not self.is_ready:
            self.is_ready = True
            if not self.ready.done():
                self.ready.set_result(True)

    def _fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        if self.transport is not None:
            self.transport.abort()

    def _flush(self) -> None:
        if self.transport is None:
            return
        for chunk in self.proto.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        self.swarm.lost += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(str(exc or "closed")))
        if self.armed and not self.seen_at:
            self.armed = False
            self.swarm.waiting -= 1
            self.swarm.check_done()

    def close(self) -> None:
        if self.transport is not None and self.alive:
            self.transport.abort()


class _Swarm:
    def __init__(self, pipe: Connection, wid: int) -> None:
        self.pipe = pipe
        self.wid = wid
        self.url = ""
        self.conns: list[_Conn] = []
        self.marker: bytes | None = None
        self.waiting = 0
        self.first_frame: bytes = b""
        self.frames = 0
        self.lost = 0
        self.timer: asyncio.TimerHandle | None = None

    def on_frame(self, conn: _Conn, data: bytes, now: int) -> None:
        self.frames += 1
        if not conn.is_ready and b'"QueryUpdated"' in data:
            conn._set_ready()
        marker = self.marker
        if marker is not None and conn.armed and marker in data:
            conn.seen_at = now
            conn.armed = False
            self.waiting -= 1
            if not self.first_frame:
                self.first_frame = data
            self.check_done()

    def check_done(self) -> None:
        if self.marker is not None and self.waiting <= 0:
            self.report()

    def report(self) -> None:
        if self.marker is None:
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        times = sorted(c.seen_at for c in self.conns if c.seen_at)
        m = TS_RE.search(self.first_frame) if self.first_frame else None
        self.pipe.send(("seen", {
            "marker": self.marker,
            "count": len(times),
            "expected": len(self.conns),
            "first": times[0] if times else 0,
            "last": times[-1] if times else 0,
            "median": times[len(times) // 2] if times else 0,
            "size": len(self.first_frame),
            "ts": decode_ts(m.group(1)) if m else 0,
        }))  # fmt: skip
        self.marker = None

    async def connect(self, url: str, subs: list[Any], concurrency: int) -> None:
        from urllib.parse import urlsplit

        self.url = url
        parts = urlsplit(url)
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(concurrency)
        failed = 0
        began = time.perf_counter()

        async def one(i: int, sub: Any) -> None:
            nonlocal failed
            hello: list[bytes] = []
            if sub is not None:
                sid = f"00000000-0000-4000-8000-{self.wid:04d}{i:08d}"
                hello = [
                    _CONNECT.format(sid=sid, ts=int(time.time() * 1000)).encode(),
                    orjson.dumps({
                        "type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                        "modifications": [{"type": "Add", "queryId": 0, "udfPath": sub[0],
                                           "args": [sub[1]]}],
                    }),
                ]  # fmt: skip
            async with sem:
                for attempt in range(5):
                    conn = _Conn(self, i, hello)
                    try:
                        await loop.create_connection(lambda c=conn: c, parts.hostname, parts.port)
                        await asyncio.wait_for(conn.ready, 120)
                        self.conns.append(conn)
                        return
                    except (OSError, ConnectionError, TimeoutError):
                        conn.close()
                        await asyncio.sleep(0.2 * (attempt + 1))
                failed += 1

        await asyncio.gather(*(one(i, s) for i, s in enumerate(subs)))
        self.lost = 0
        self.pipe.send(("ready", len(self.conns), failed, time.perf_counter() - began))

    def expect(self, marker: bytes, timeout: float) -> None:
        self.waiting = 0
        for c in self.conns:
            c.seen_at = 0
            c.armed = c.alive
            self.waiting += c.alive
        self.first_frame = b""
        self.marker = marker
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(timeout, self.report)
        self.pipe.send(("armed",))

    def stats(self) -> None:
        self.pipe.send(("stats", {
            "conns": len(self.conns),
            "alive": sum(1 for c in self.conns if c.alive),
            "frames": self.frames,
            "rss": proc_status(os.getpid(), "VmRSS"),
        }))  # fmt: skip


def _client_main(pipe: Connection, wid: int) -> None:
    raise_nofile()
    asyncio.run(_client_loop(pipe, wid))


async def _client_loop(pipe: Connection, wid: int) -> None:
    loop = asyncio.get_running_loop()
    swarm = _Swarm(pipe, wid)
    stop = asyncio.Event()

    def on_command() -> None:
        while pipe.poll():
            try:
                cmd = pipe.recv()
            except EOFError:
                stop.set()
                return
            if cmd[0] == "connect":
                loop.create_task(swarm.connect(cmd[1], cmd[2], cmd[3]))
            elif cmd[0] == "expect":
                swarm.expect(cmd[1], cmd[2])
            elif cmd[0] == "stats":
                swarm.stats()
            elif cmd[0] == "close":
                for c in swarm.conns:
                    c.close()
                swarm.conns.clear()
                stop.set()

    loop.add_reader(pipe.fileno(), on_command)
    await stop.wait()
    loop.remove_reader(pipe.fileno())
    await asyncio.sleep(0.2)
    pipe.send(("closed",))


class Clients:
    """Client processes holding many subscribed connections; see ``_Swarm``."""

    def __init__(self, procs: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.workers: list[tuple[Any, Connection]] = []
        for wid in range(procs):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_client_main, args=(child, wid), daemon=True)
            p.start()
            child.close()
            self.workers.append((p, parent))

    def _recv(self, pipe: Connection, want: str, timeout: float) -> Any:
        if not pipe.poll(timeout):
            raise SystemExit(f"client process did not answer {want!r} within {timeout} s")
        msg = pipe.recv()
        if msg[0] != want:
            raise SystemExit(f"client process answered {msg!r}, expected {want!r}")
        return msg

    def connect(self, url: str, subs: list[Any], concurrency: int = 64) -> tuple[int, int, float]:
        """Spread ``subs`` (one per connection) over the processes; wait until all are live."""
        n = len(self.workers)
        for i, (_, pipe) in enumerate(self.workers):
            pipe.send(("connect", url, subs[i::n], concurrency))
        ready = failed = 0
        secs = 0.0
        for _, pipe in self.workers:
            _, r, f, s = self._recv(pipe, "ready", 900)
            ready, failed, secs = ready + r, failed + f, max(secs, s)
        return ready, failed, secs

    def arm(self, marker: bytes, timeout: float = 10.0) -> None:
        for _, pipe in self.workers:
            pipe.send(("expect", marker, timeout))
        for _, pipe in self.workers:
            self._recv(pipe, "armed", 30)

    def collect(self, timeout: float = 30.0) -> dict[str, int]:
        got = [self._recv(pipe, "seen", timeout)[1] for _, pipe in self.workers]
        return {
            "count": sum(g["count"] for g in got),
            "expected": sum(g["expected"] for g in got),
            "first": min((g["first"] for g in got if g["first"]), default=0),
            "last": max(g["last"] for g in got),
            "size": max(g["size"] for g in got),
            "ts": max(g["ts"] for g in got),
        }

    def stats(self) -> dict[str, int]:
        for _, pipe in self.workers:
            pipe.send(("stats",))
        out: dict[str, int] = {}
        for _, pipe in self.workers:
            for k, v in self._recv(pipe, "stats", 30)[1].items():
                out[k] = out.get(k, 0) + v
        return out

    def close(self) -> None:
        for _, pipe in self.workers:
            try:
                pipe.send(("close",))
            except OSError:
                pass
        for p, pipe in self.workers:
            if pipe.poll(30):
                try:
                    pipe.recv()
                except EOFError:
                    pass
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()


# ------------------------------------------------------------------------ floor servers


def _floor_main(port: int, watch: str | None, ready: Any) -> None:
    """A minimal ``websockets`` server: the floor for pushing bytes to many sockets.

    Clients connect on any path and are registered. Broadcast mode: a connection on
    ``/control`` sends ``"<marker> <size>"``, and a payload of ``size`` bytes holding the marker
    goes to every client with ``websockets.broadcast``. Watch mode (``watch`` set): a bare
    ``watchfiles`` watcher on that directory (serve's debounce/step) broadcasts each file's
    new bytes when it grows.
    """
    raise_nofile()
    asyncio.run(_floor_loop(port, watch, ready))


async def _floor_loop(port: int, watch: str | None, ready: Any) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.exceptions import ConnectionClosed

    clients: set[ServerConnection] = set()
    hello = '{"type":"Transition","modifications":[{"type":"QueryUpdated"}]}'

    async def handler(ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path == "/control":
            async for msg in ws:
                marker, size = str(msg).split()
                head = '{"type":"Transition","marker":"' + marker + '","pad":"'
                pad = max(0, int(size) - len(head) - 2)
                broadcast(clients, head + "x" * pad + '"}')
            return
        clients.add(ws)
        try:
            await ws.send(hello)
            async for _ in ws:  # Connect, ModifyQuerySet: read and ignore
                pass
        except ConnectionClosed:
            pass
        finally:
            clients.discard(ws)

    async with serve(handler, "127.0.0.1", port, compression=None, max_size=None,
                     ping_interval=None, backlog=4096):  # fmt: skip
        ready.set()
        if watch is None:
            await asyncio.Future()
        import watchfiles

        from sessionbase.ingest.watcher import WATCH_DEBOUNCE_MS, WATCH_STEP_MS

        offsets: dict[str, int] = {}
        for p in Path(watch).rglob("*.jsonl"):  # noqa: ASYNC240 (the floor: no thread hop)
            offsets[str(p)] = p.stat().st_size
        async for changes in watchfiles.awatch(
            watch, debounce=WATCH_DEBOUNCE_MS, step=WATCH_STEP_MS, recursive=True
        ):
            for _, path in changes:
                try:
                    with open(path, "rb") as fh:  # noqa: ASYNC230
                        fh.seek(offsets.get(path, 0))
                        new = fh.read()
                except OSError:
                    continue
                offsets[path] = offsets.get(path, 0) + len(new)
                if new:
                    broadcast(clients, new.decode(errors="replace"))


class Floor:
    def __init__(self, watch: Path | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.port = free_port()
        self.ws_url = f"ws://127.0.0.1:{self.port}{SYNC_PATH}"
        ready = ctx.Event()
        self.proc = ctx.Process(
            target=_floor_main, args=(self.port, str(watch) if watch else None, ready), daemon=True
        )
        self.proc.start()
        if not ready.wait(60):
            raise SystemExit("floor server did not start")
        self.control: Any = None
        self._stack = contextlib.ExitStack()

    def trigger(self, marker: str, size: int) -> int:
        """Ask for a broadcast; returns the time_ns just before the request left."""
        from websockets.sync.client import connect

        if self.control is None:
            self.control = self._stack.enter_context(
                connect(f"ws://127.0.0.1:{self.port}/control", compression=None)
            )
        t0 = time.time_ns()
        self.control.send(f"{marker} {size}")
        return t0

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def stop(self) -> None:
        self._stack.close()
        self.proc.terminate()
        self.proc.join(10)


# ----------------------------------------------------------------------------- latency


async def _single_client_rounds(
    ws_url: str,
    sub: tuple[str, dict[str, Any]] | None,
    rounds: int,
    write: Callable[[int, str], None],
    rng: random.Random,
    tag: str,
    patience: float = 10.0,
) -> tuple[list[float], list[float], list[float], int]:
    """One raw websockets client: (write→client ms, write→commit ms, commit→client ms, misses);
    an append not delivered within ``patience`` seconds is a miss."""
    from websockets.asyncio.client import connect

    total: list[float] = []
    to_commit: list[float] = []
    from_commit: list[float] = []
    misses = 0
    async with connect(ws_url, compression=None, max_size=None) as ws:
        if sub is not None:
            await ws.send(_CONNECT.format(sid="00000000-0000-4000-8000-000000000001", ts=0))
            await ws.send(orjson.dumps({
                "type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                "modifications": [{"type": "Add", "queryId": 0, "udfPath": sub[0],
                                   "args": [sub[1]]}],
            }).decode())  # fmt: skip
        while '"QueryUpdated"' not in str(await ws.recv()):
            pass
        await asyncio.sleep(0.5)
        for i in range(rounds):
            marker = f"@@{tag}{i:05d}@@"
            t0 = time.time_ns()
            write(i, marker)
            try:
                async with asyncio.timeout(patience):
                    while True:
                        msg = await ws.recv(decode=False)
                        if marker.encode() in msg:
                            t1 = time.time_ns()
                            break
            except TimeoutError:
                misses += 1
                continue
            total.append((t1 - t0) / 1e6)
            m = TS_RE.search(msg)
            if m:
                commit = decode_ts(m.group(1))
                to_commit.append((commit - t0) / 1e6)
                from_commit.append((t1 - commit) / 1e6)
            await asyncio.sleep(rng.uniform(0.01, 0.08))
    return total, to_commit, from_commit, misses


def section_latency(args: argparse.Namespace, res: Results) -> None:
    rounds = args.appends
    h = build_home(args.work / "latency", args.threads, args.seed)
    server = Serve(h, args.work)
    try:
        server.wait_ready()
        fix_counts(h)
        thread = h.hot()[0]
        log(f"latency: {len(h.threads)} threads; {rounds} appends to {thread.rollout.thread_id} "
            f"({thread.messages} messages)")  # fmt: skip
        fd = os.open(thread.path, os.O_WRONLY | os.O_APPEND)

        def write(i: int, marker: str) -> None:
            os.write(fd, h.line(thread, f"{marker} {prose(h.rng, 40, 300)}"))

        sub = ("messages:tail", {"threadId": thread.rollout.thread_id, "n": 20})
        try:
            sb, to_commit, from_commit, sb_miss = asyncio.run(
                _single_client_rounds(server.ws_url, sub, rounds, write, random.Random(1), "lat")
            )
        finally:
            os.close(fd)
    finally:
        server.stop()

    # Baseline: a bare watchfiles watcher pushing the appended bytes over one raw websocket.
    floor_dir = h.root / "floor-home"
    floor_dir.mkdir(parents=True, exist_ok=True)
    floor_file = floor_dir / thread.path.name
    shutil.copyfile(thread.path, floor_file)
    floor = Floor(watch=floor_dir)
    time.sleep(0.5)
    log("latency: baseline (watchfiles → websockets push)")
    fd = os.open(floor_file, os.O_WRONLY | os.O_APPEND)

    def write_floor(i: int, marker: str) -> None:
        os.write(fd, h.line(thread, f"{marker} {prose(h.rng, 40, 300)}"))

    try:
        fl, _, _, fl_miss = asyncio.run(
            _single_client_rounds(floor.ws_url, None, rounds, write_floor, random.Random(1), "flr")
        )
    finally:
        os.close(fd)
        floor.stop()

    p50, p99 = percentile(sb, 50), percentile(sb, 99)
    f50, f99 = percentile(fl, 50), percentile(fl, 99)
    base = "watchfiles → raw websockets push"
    res.add(f"append → client latency p50 (1 subscriber, {len(sb)} appends)", ms(p50), base,
            ms(f50), ratio(p50, f50), "(info)", "")  # fmt: skip
    res.add("append → client latency p99", ms(p99), base, ms(f99), ratio(p99, f99), "(info)", "")
    if to_commit:
        c50, c99 = percentile(to_commit, 50), percentile(to_commit, 99)
        d50, d99 = percentile(from_commit, 50), percentile(from_commit, 99)
        res.add("  of which append → commit p50 / p99", f"{c50:.1f} / {c99:.1f} ms", "", "",
                "", "(info)", "")  # fmt: skip
        res.add("  of which commit → client p50 / p99", f"{d50:.1f} / {d99:.1f} ms", "", "", "",
                "(info)", "")  # fmt: skip
    res.notes.append(
        f"latency: sessionbase max {max(sb):.1f} ms, {sb_miss} appends not delivered in 10 s; "
        f"baseline max {max(fl):.1f} ms, {fl_miss} missed; pauses 10–80 ms between appends"
    )
    res.raw["latency"] = {"ms": sb, "to_commit_ms": to_commit, "from_commit_ms": from_commit,
                          "floor_ms": fl}  # fmt: skip


# ------------------------------------------------------------------------------ fan-out


def _fan_rounds(
    clients: Clients,
    rounds: int,
    fire: Callable[[str], int],
    rng: random.Random,
    tag: str,
) -> dict[str, Any]:
    """Rounds of: arm every client, fire (returns t0), wait for the last delivery."""
    total: list[float] = []
    from_commit: list[float] = []
    first: list[float] = []
    sizes: list[int] = []
    partial = 0
    for i in range(rounds):
        marker = f"@@{tag}{i:05d}@@"
        clients.arm(marker.encode())
        t0 = fire(marker)
        got = clients.collect()
        if got["count"] < got["expected"]:
            partial += 1
        if not got["count"]:
            continue
        total.append((got["last"] - t0) / 1e6)
        first.append((got["first"] - t0) / 1e6)
        sizes.append(got["size"])
        if got["ts"]:
            from_commit.append((got["last"] - got["ts"]) / 1e6)
        time.sleep(rng.uniform(0.01, 0.08))
    return {"total": total, "from_commit": from_commit, "first": first, "sizes": sizes,
            "partial": partial}  # fmt: skip


def section_fanout(args: argparse.Namespace, res: Results) -> None:
    h = build_home(args.work / "fanout", args.threads, args.seed + 1)
    server = Serve(h, args.work)
    results: dict[int, dict[str, Any]] = {}
    embed_secs = math.nan
    try:
        server.wait_ready()
        embed_secs = server.wait_semantic()
        log(f"fanout: semantic index caught up {embed_secs:.1f} s after ready")
        fix_counts(h)
        thread = h.hot()[0]
        fd = os.open(thread.path, os.O_WRONLY | os.O_APPEND)
        sub = ["messages:tail", {"threadId": thread.rollout.thread_id, "n": 20}]

        def append(marker: str) -> int:
            line = h.line(thread, f"{marker} {prose(h.rng, 40, 300)}")
            t0 = time.time_ns()
            os.write(fd, line)
            return t0

        try:
            for n in args.fanout:
                clients = Clients(min(args.client_procs, n))
                try:
                    ready, failed, secs = clients.connect(server.ws_url, [sub] * n)
                    subs = get_json(f"{server.url}/readyz")["subscriptions"]
                    log(f"fanout {n}: {ready} clients subscribed in {secs:.1f} s "
                        f"({failed} failed; server has {subs} subscription(s)); "
                        f"{args.fanout_rounds} appends")  # fmt: skip
                    sb = _fan_rounds(clients, args.fanout_rounds, append, random.Random(n), "fo")
                finally:
                    clients.close()
                wait_subscriptions(server.url, 0)
                size = int(statistics.median(sb["sizes"])) if sb["sizes"] else 10_000
                floor = Floor()
                clients = Clients(min(args.client_procs, n))
                try:
                    clients.connect(floor.ws_url, [None] * n)
                    log(f"fanout {n}: baseline broadcast of {size:,} bytes")
                    fl = _fan_rounds(
                        clients, args.fanout_rounds,
                        lambda mk, f=floor, z=size: f.trigger(mk, z),
                        random.Random(n), "fl",
                    )  # fmt: skip
                finally:
                    clients.close()
                    floor.stop()
                results[n] = {"sb": sb, "floor": fl, "clients": ready, "size": size}
        finally:
            os.close(fd)
    finally:
        server.stop()

    for n, r in results.items():
        sb, fl = r["sb"], r["floor"]
        nan = float("nan")
        f99, f50 = percentile(fl["total"], 99), percentile(fl["total"], 50)
        c99 = percentile(sb["from_commit"], 99) if sb["from_commit"] else nan
        c50 = percentile(sb["from_commit"], 50) if sb["from_commit"] else nan
        p99, p50 = percentile(sb["total"], 99), percentile(sb["total"], 50)
        target_ms = 100.0 if n >= 1000 else None
        ok = c99 <= 2 * f99 and (target_ms is None or c99 <= target_ms)
        tgt = "≤ 100 ms, ≤ 2× floor" if target_ms else "≤ 2× floor"
        base = f"raw websockets broadcast, {r['size'] / 1e3:.1f} KB"
        res.add(f"fan-out p99, {n:,} clients (commit → last client)", ms(c99), base, ms(f99),
                ratio(c99, f99), tgt, verdict(ok))  # fmt: skip
        res.add(f"  fan-out p50, {n:,} clients, commit → last client", ms(c50), base, ms(f50),
                ratio(c50, f50), "(info)", "")  # fmt: skip
        res.add(f"  fan-out p99, {n:,} clients, append → last client", ms(p99), base, ms(f99),
                ratio(p99, f99), "(info)", "")  # fmt: skip
        res.add(f"  fan-out p50, {n:,} clients, append → last client", ms(p50), base, ms(f50),
                ratio(p50, f50), "(info)", "")  # fmt: skip
        if n in ANCHOR_MS:
            res.add(f"  anchor: self-hosted Convex, 2 vCPU VPS, {n:,} subscribers",
                    ms(p99), "published p99 (bunvex E2E-VPS)", ms(ANCHOR_MS[n]),
                    ratio(p99, ANCHOR_MS[n]), "(info)", "")  # fmt: skip
        res.notes.append(
            f"fanout {n}: {r['clients']} clients in {min(args.client_procs, n)} processes, "
            f"{len(sb['total'])} appends; first client p50 {percentile(sb['first'], 50):.1f} ms; "
            f"max {max(sb['total']):.1f} ms (floor max {max(fl['total']):.1f} ms); rounds where "
            f"some client missed the message within 10 s: {sb['partial']} (floor {fl['partial']})"
        )
        res.raw[f"fanout_{n}"] = r
    res.notes.append(
        f"fanout: measured once the start-up embedding of the corpus was done "
        f"({embed_secs:.1f} s after ready); each append is still embedded as it comes"
    )


# --------------------------------------------------------------------------------- idle


def section_idle(args: argparse.Namespace, res: Results) -> None:
    n = args.idle_clients
    h = build_home(args.work / "idle", args.threads, args.seed + 2)
    server = Serve(h, args.work)
    try:
        server.wait_ready()
        fix_counts(h)
        time.sleep(2)
        rss0 = max(server.rss() for _ in range(3) if time.sleep(0.3) is None)
        threads = [t.rollout.thread_id for t in h.hot(args.idle_queries)]
        subs = [["messages:tail", {"threadId": threads[i % len(threads)], "n": 20}]
                for i in range(n)]  # fmt: skip
        procs = max(1, math.ceil(n / args.per_proc))
        log(f"idle: server RSS {rss0 / 1e6:.1f} MB with no clients; connecting {n:,} clients "
            f"in {procs} processes")  # fmt: skip
        clients = Clients(procs)
        try:
            ready, failed, secs = clients.connect(server.ws_url, subs, concurrency=32)
            queries = get_json(f"{server.url}/readyz")["subscriptions"]
            log(f"idle: {ready:,} subscribed in {secs:.1f} s ({failed} failed); settling")
            time.sleep(5)
            samples = []
            for _ in range(5):
                samples.append(server.rss())
                time.sleep(1)
            rss = max(samples)
            hwm = proc_status(server.pid, "VmHWM")
            stats = clients.stats()
        finally:
            clients.close()
    finally:
        server.stop()
    per = (rss - rss0) / max(ready, 1)
    res.add(f"server RSS, {ready:,} idle subscribed clients", f"{rss / 1e6:,.1f} MB",
            "same server, 0 clients", f"{rss0 / 1e6:,.1f} MB", ratio(rss, rss0), "≤ 1 GB",
            verdict(rss <= 1e9 and ready == n))  # fmt: skip
    res.add("  per connection", f"{per / 1e3:,.1f} KB", "", "", "", "(info)", "")
    res.notes.append(
        f"idle: {ready:,}/{n:,} clients connected and subscribed in {secs:.1f} s ({failed} "
        f"failed, {stats['alive']:,} still open at the end) over {queries} distinct queries "
        f"(messages:tail on {len(threads)} threads); server peak RSS (VmHWM) {hwm / 1e6:,.1f} "
        f"MB; client processes {procs}, {stats['rss'] / 1e6:,.0f} MB RSS together"
    )
    res.raw["idle"] = {"clients": ready, "rss": rss, "rss0": rss0, "hwm": hwm, "queries": queries,
                       "connect_s": secs}  # fmt: skip


# --------------------------------------------------------------------------- executions


def section_executions(args: argparse.Namespace, res: Results) -> None:
    raise_nofile()
    h = build_home(args.work / "executions", args.threads, args.seed + 3)
    server = InProcessServer(h)
    rows: list[tuple[int, int, int, int]] = []
    try:
        server.wait_ready()
        embed_secs = server.wait_semantic()
        log(f"fanout: semantic index caught up {embed_secs:.1f} s after ready")
        fix_counts(h)
        thread = h.hot()[0]
        fd = os.open(thread.path, os.O_WRONLY | os.O_APPEND)
        sub = ["messages:tail", {"threadId": thread.rollout.thread_id, "n": 20}]
        db = sqlite3.connect(f"file:{h.data / 'sessionbase.db'}?mode=ro", uri=True)

        def append(marker: str) -> int:
            line = h.line(thread, f"{marker} {prose(h.rng, 40, 300)}")
            t0 = time.time_ns()
            os.write(fd, line)
            return t0

        try:
            for n in (1, args.exec_clients):
                clients = Clients(min(args.client_procs, n))
                try:
                    clients.connect(server.ws_url, [sub] * n)
                    time.sleep(0.5)
                    e0, v0 = server.engine.executions, server.engine.version
                    _fan_rounds(clients, args.exec_commits, append, random.Random(n), f"ex{n}-")
                    time.sleep(0.3)
                    e1, v1 = server.engine.executions, server.engine.version
                    commits = db.execute(
                        "SELECT count(*) FROM commit_log WHERE version > ? AND version <= ?",
                        (v0, v1),
                    ).fetchone()[0]
                    rows.append((n, e1 - e0, commits, args.exec_commits))
                    log(f"executions: {n} client(s): {e1 - e0} executions over {commits} commits")
                finally:
                    clients.close()
                wait_subscriptions(server.url, 0)
        finally:
            os.close(fd)
            db.close()
    finally:
        server.stop()
    (n1, e1, c1, a1), (nn, en, cn, an) = rows
    per1, pern = e1 / max(c1, 1), en / max(cn, 1)
    res.add(f"query executions per commit, {nn:,} identical subscriptions", f"{pern:.2f}",
            "same, 1 subscription", f"{per1:.2f}", ratio(pern, per1), "≈ 1 per commit",
            verdict(pern <= 1.5 * max(per1, 1.0)))  # fmt: skip
    res.notes.append(
        f"executions: {nn:,} clients: {en} executions / {cn} commits / {an} appends; "
        f"1 client: {e1} / {c1} / {a1} (engine.executions, in-process server)"
    )
    res.raw["executions"] = rows


# ------------------------------------------------------------------------------- main

SECTIONS: dict[str, Callable[[argparse.Namespace, Results], None]] = {
    "latency": section_latency,
    "fanout": section_fanout,
    "idle": section_idle,
    "executions": section_executions,
}


def machine_line() -> str:
    import websockets

    return common_machine_line(f"websockets {websockets.__version__}", git_version())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/sessionbase-bench-live"))
    parser.add_argument("--quick", action="store_true", help="Smaller counts: a few minutes.")
    parser.add_argument("--only", default="", help="Comma list of: " + ", ".join(SECTIONS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, help="Threads in the home (default 300).")
    parser.add_argument("--appends", type=int, help="latency: appends (default 200, quick 50).")
    parser.add_argument("--fanout", help="fanout: client counts (default 100,1000; quick 100,500).")
    parser.add_argument("--fanout-rounds", type=int, help="fanout: appends (default 200).")
    parser.add_argument("--client-procs", type=int, default=2, help="fanout: client processes.")
    parser.add_argument("--idle-clients", type=int, help="idle: clients (default 10000).")
    parser.add_argument("--idle-queries", type=int, default=100, help="idle: distinct threads.")
    parser.add_argument("--per-proc", type=int, default=2500, help="idle: clients per process.")
    parser.add_argument("--exec-clients", type=int, help="executions: clients (default 1000).")
    parser.add_argument("--exec-commits", type=int, help="executions: appends (default 50).")
    parser.add_argument("--json", type=Path, help="Also write the raw figures here.")
    args = parser.parse_args()
    q = args.quick
    args.threads = args.threads or (150 if q else 300)
    args.appends = args.appends or (50 if q else 200)
    fan = args.fanout or ("100,500" if q else "100,1000")
    args.fanout = [int(x) for x in fan.split(",") if x.strip()]
    args.fanout_rounds = args.fanout_rounds or (30 if q else 200)
    args.idle_clients = args.idle_clients or (2_000 if q else 10_000)
    args.exec_clients = args.exec_clients or (300 if q else 1_000)
    args.exec_commits = args.exec_commits or (15 if q else 50)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    for name in wanted:
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}; choose from {', '.join(SECTIONS)}")
    if args.work.resolve().is_relative_to(REPO):
        parser.error("--work must be outside the repository")
    args.work.mkdir(parents=True, exist_ok=True)
    log(f"fd limit {raise_nofile()}")

    res = Results()
    began = time.perf_counter()
    load_start = os.getloadavg()[0]
    for name in wanted:
        log(f"=== {name}")
        SECTIONS[name](args, res)
    load_end = os.getloadavg()[0]
    title = f"live benchmark ({'quick' if q else 'full'})"
    res.print_report(title, machine_line(), load_start, load_end)
    print(f"- total bench time {time.perf_counter() - began:.0f} s; data under {args.work}")
    if args.json:
        args.json.write_bytes(
            orjson.dumps(
                {"rows": [asdict(r) for r in res.rows], "raw": res.raw},
                option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
            )  # fmt: skip
        )


if __name__ == "__main__":
    main()

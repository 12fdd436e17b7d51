"""What device authentication costs, each figure beside a baseline measured in the same run.

    uv run python bench/bench_auth.py            # about 2 minutes
    uv run python bench/bench_auth.py --quick    # fewer samples, 200 devices

One real ``sessionbase serve`` on loopback (not ``--require-auth``, so the local owner's
requests are the unauthenticated baseline and a request with a Bearer token goes through
exactly the checks a remote one does) over a home of ``--threads`` threads.

- HTTP query: ``POST /v1/query/threads:recent {limit: 20}`` with a paired device's token
  against the same request from the local owner without one, alternated on two kept-alive
  connections, p50 and p99. Target: auth adds at most 10 % to p50.
- WebSocket connect → first Transition: a new socket, ``Connect``, ``Authenticate`` with the
  token, ``ModifyQuerySet`` adding ``threads:recent``, until the Transition that carries its
  result; against the same without ``Authenticate``, alternated. Target: auth adds at most
  1 ms to p50.
- Revocation → socket closed, with ``--devices`` (1,000) devices connected, each on its own
  socket with its own token and a subscription (``threads:get`` of one thread), all held by
  this process: devices are revoked one at a time, alternately through ``devices:revoke``
  over HTTP (the serve's own commit) and straight through the database as ``sessionbase
  devices revoke`` does (another process's commit, which the serve hears of through its
  commit listener), and the time from the request to that device's socket closing is taken.
  Baseline: the ``devices:revoke`` request's own round trip. Target: p99 at most 1 s.

Devices are paired through the store (``auth.devices``, as ``sessionbase pair`` and
``/auth/pair`` do) and their tokens signed with the data dir's key (as ``/auth/token`` does,
without its attempt limit). Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _common import (  # noqa: E402
    Results,
    git_version,
    log,
    machine_line,
    percentile,
    raise_nofile,
    verdict,
)
from tests.builders.codex import Rollout  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

from sessionbase.auth import devices, tokens  # noqa: E402
from sessionbase.auth.keys import ensure_key  # noqa: E402
from sessionbase.store import open_store  # noqa: E402

SYNC = "/api/1.31.0/sync"
QUERY = {"limit": 20}
TOKEN_TTL = 3600


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def build_home(home: Path, threads: int) -> list[str]:
    """``threads`` rollouts of six messages each; their thread ids."""
    ids = []
    for n in range(threads):
        rollout = Rollout(cwd=f"/work/project-{n % 7}")
        rollout.turn()
        for m in range(3):
            rollout.user(f"question {m} about thread {n}").assistant(f"answer {m} for {n}")
        rollout.write(home)
        ids.append(rollout.thread_id)
    return ids


def pair(data: Path, count: int) -> list[tuple[str, str]]:
    """``count`` read devices and a token for each: (device id, token)."""
    key = ensure_key(data)
    paired = []
    with open_store(data / "sessionbase.db") as store:
        for n in range(count):
            code = devices.create_pairing(store, key, f"bench {n}", ("read",), 600, "bench")
            device, _ = devices.redeem(store, key, code.code, f"bench {n}", None, "bench")
            claims = tokens.issue(key, str(device["id"]), ("read",), TOKEN_TTL)
            paired.append((str(device["id"]), tokens.encode(key, claims)))
    return paired


# ------------------------------------------------------------------ HTTP queries


def http_queries(url: str, token: str, rounds: int) -> tuple[list[float], list[float]]:
    """(with the token, without), each ``rounds`` requests, alternated."""
    timed: dict[bool, list[float]] = {True: [], False: []}
    auth = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(base_url=url, timeout=30, trust_env=False, headers=auth) as device,
        httpx.Client(base_url=url, timeout=30, trust_env=False) as owner,
    ):
        for _ in range(50):
            device.post("/v1/query/threads:recent", json=QUERY).raise_for_status()
            owner.post("/v1/query/threads:recent", json=QUERY).raise_for_status()
        for n in range(rounds):
            for with_token in (True, False) if n % 2 else (False, True):
                client = device if with_token else owner
                began = time.perf_counter()
                response = client.post("/v1/query/threads:recent", json=QUERY)
                timed[with_token].append(time.perf_counter() - began)
                response.raise_for_status()
    return timed[True], timed[False]


# ------------------------------------------------------------------ sync connections


def connect_message() -> str:
    return orjson.dumps({"type": "Connect", "sessionId": str(uuid.uuid4()), "connectionCount": 0,
                         "lastCloseReason": None, "clientTs": 0}).decode()  # fmt: skip


def authenticate_message(token: str) -> str:
    return orjson.dumps({"type": "Authenticate", "tokenType": "User", "value": token,
                         "baseVersion": 0}).decode()  # fmt: skip


def subscribe_message(path: str, args: dict[str, Any]) -> str:
    return orjson.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                         "modifications": [{"type": "Add", "queryId": 1, "udfPath": path,
                                            "args": [args]}]}).decode()  # fmt: skip


async def first_result(ws: ClientConnection) -> None:
    """Read until the Transition that carries query 1's result (an error if it failed)."""
    while True:
        message = orjson.loads(await ws.recv())
        if message["type"] == "AuthError":
            raise SystemExit(f"refused: {message}")
        for mod in message.get("modifications", []) if message["type"] == "Transition" else []:
            if mod.get("queryId") == 1:
                if mod["type"] != "QueryUpdated":
                    raise SystemExit(f"query failed: {mod}")
                return


async def open_sync(ws_url: str, token: str | None, path: str, args: dict[str, Any]) -> Any:
    ws = await websockets.connect(ws_url, proxy=None, ping_interval=None, compression=None,
                                  max_size=None)  # fmt: skip
    await ws.send(connect_message())
    if token is not None:
        await ws.send(authenticate_message(token))
    await ws.send(subscribe_message(path, args))
    await first_result(ws)
    return ws


async def connects(ws_url: str, token: str, rounds: int) -> tuple[list[float], list[float]]:
    """Connect → first Transition, (with Authenticate, without), alternated."""
    timed: dict[bool, list[float]] = {True: [], False: []}
    for n in range(rounds + 20):
        for with_token in (True, False) if n % 2 else (False, True):
            began = time.perf_counter()
            ws = await open_sync(ws_url, token if with_token else None, "threads:recent", QUERY)
            elapsed = time.perf_counter() - began
            await ws.close()
            if n >= 20:  # the first ones warm up both paths
                timed[with_token].append(elapsed)
    return timed[True], timed[False]


# ------------------------------------------------------------------ revocation


@dataclass
class Held:
    """One device's open socket, read until it closes."""

    device_id: str
    ws: Any
    closed_at: float | None = None
    auth_error_at: float | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def read(self) -> None:
        try:
            while True:
                message = orjson.loads(await self.ws.recv())
                if message["type"] == "AuthError" and self.auth_error_at is None:
                    self.auth_error_at = time.perf_counter()
        except ConnectionClosed:
            pass
        self.closed_at = time.perf_counter()
        self.closed.set()


async def hold(ws_url: str, paired: list[tuple[str, str]], thread_ids: list[str]) -> list[Held]:
    held: list[Held] = []
    batch = 50
    for start in range(0, len(paired), batch):
        opened = await asyncio.gather(*(
            open_sync(ws_url, token, "threads:get", {"id": thread_ids[n % len(thread_ids)]})
            for n, (_, token) in enumerate(paired[start : start + batch], start)
        ))  # fmt: skip
        held += [Held(device_id, ws) for (device_id, _), ws in
                 zip(paired[start : start + batch], opened, strict=True)]  # fmt: skip
    return held


@dataclass
class Revocations:
    over_http: list[float] = field(default_factory=list)  # request → socket closed
    through_db: list[float] = field(default_factory=list)
    http_round_trip: list[float] = field(default_factory=list)  # the baseline
    db_commit: list[float] = field(default_factory=list)
    auth_error_first: int = 0
    others_closed: int = 0


async def revoke_all(url: str, data: Path, held: list[Held], count: int) -> Revocations:
    for h in held:
        h.task = asyncio.create_task(h.read())
    result = Revocations()
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(1)  # a SQLite connection stays on the thread that opened it
    # Opened as `sessionbase devices revoke` opens it: another process's connection.
    store = await loop.run_in_executor(pool, open_store, data / "sessionbase.db")
    step = max(1, len(held) // count)
    victims = held[::step][:count]
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30, trust_env=False) as http:
            for n, victim in enumerate(victims):
                await asyncio.sleep(0.3)  # let the last one settle
                began = time.perf_counter()
                if n % 2 == 0:
                    response = await http.post("/v1/mutation/devices:revoke",
                                               json={"id": victim.device_id})  # fmt: skip
                    result.http_round_trip.append(time.perf_counter() - began)
                    response.raise_for_status()
                else:
                    change = devices.revoke_change(victim.device_id, "bench")
                    await loop.run_in_executor(
                        pool, lambda c=change: store.apply_user_changes([c], None, None)
                    )
                    result.db_commit.append(time.perf_counter() - began)
                try:
                    await asyncio.wait_for(victim.closed.wait(), 30)
                except TimeoutError:
                    raise SystemExit(f"device {victim.device_id}'s socket stayed open") from None
                assert victim.closed_at is not None
                taken = victim.closed_at - began
                (result.over_http if n % 2 == 0 else result.through_db).append(taken)
                if victim.auth_error_at is not None:
                    result.auth_error_first += 1
    finally:
        await loop.run_in_executor(pool, store.close)
        pool.shutdown()
    victim_ids = {v.device_id for v in victims}
    result.others_closed = sum(
        1 for h in held if h.closed.is_set() and h.device_id not in victim_ids
    )
    for h in held:
        await h.ws.close()
    return result


# ------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/sessionbase-bench-auth"))
    parser.add_argument("--quick", action="store_true", help="Fewer samples, 200 devices.")
    parser.add_argument("--threads", type=int, default=200, help="Threads in the home.")
    parser.add_argument("--devices", type=int, help="Devices connected at once (1,000).")
    parser.add_argument("--queries", type=int, help="HTTP queries each way (2,000).")
    parser.add_argument("--connects", type=int, help="Sync connects each way (300).")
    parser.add_argument("--revocations", type=int, help="Devices revoked one by one (40).")
    parser.add_argument("--json", type=Path, help="Also write the raw figures (seconds) here.")
    args = parser.parse_args()
    quick = args.quick
    n_devices = args.devices or (200 if quick else 1000)
    n_queries = args.queries or (300 if quick else 2000)
    n_connects = args.connects or (60 if quick else 300)
    n_revoke = args.revocations or (10 if quick else 40)
    if args.work.resolve().is_relative_to(REPO):
        parser.error("--work must be outside the repository")
    if args.work.exists():
        import shutil

        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    nofile = raise_nofile()  # the serve child inherits it
    if nofile < n_devices + 200:
        parser.error(f"the open-file limit ({nofile}) is too low for {n_devices} sockets")

    load_start = os.getloadavg()[0]
    home, data = args.work / "home", args.work / "data"
    log(f"home of {args.threads} threads; pairing {n_devices + 1} devices")
    thread_ids = build_home(home, args.threads)
    began = time.perf_counter()
    paired = pair(data, n_devices + 1)
    pairing = time.perf_counter() - began
    _, probe_token = paired.pop()
    server = ServerProcess(data, home, env={"SESSIONBASE_TOKEN_TTL": str(TOKEN_TTL)})
    raw: dict[str, Any] = {}
    try:
        server.start(timeout=120)
        server.wait_semantic(timeout=600)
        assert server.proc is not None
        log(f"HTTP queries: {n_queries} each way")
        http_auth, http_local = http_queries(server.url, probe_token, n_queries)
        ws_url = server.url.replace("http://", "ws://") + SYNC
        log(f"sync connects: {n_connects} each way")
        ws_auth, ws_local = asyncio.run(connects(ws_url, probe_token, n_connects))
        log(f"holding {n_devices} device sockets; revoking {n_revoke}")

        async def revocation() -> tuple[Revocations, float]:
            began = time.perf_counter()
            held = await hold(ws_url, paired, thread_ids)
            opened = time.perf_counter() - began
            return await revoke_all(server.url, data, held, n_revoke), opened

        revoked, opened = asyncio.run(revocation())
        rss = int(open(f"/proc/{server.proc.pid}/status").read().split("VmRSS:")[1].split()[0])
    finally:
        server.stop()
    load_end = os.getloadavg()[0]

    res = Results()
    for p in (50, 99):
        a, b = percentile(http_auth, p), percentile(http_local, p)
        target = "≤ +10 %" if p == 50 else "(info)"
        res.add(f"HTTP query p{p}, device token (threads:recent, 20)", ms(a),
                "local owner, no token", ms(b), f"{a / b:.2f}×", target,
                verdict(a <= 1.10 * b) if p == 50 else "")  # fmt: skip
    for p in (50, 99):
        a, b = percentile(ws_auth, p), percentile(ws_local, p)
        target = "≤ +1 ms" if p == 50 else "(info)"
        res.add(f"sync connect → first Transition p{p}, with Authenticate", ms(a),
                "without Authenticate", ms(b), f"{(a - b) * 1000:+.2f} ms", target,
                verdict(a - b <= 0.001) if p == 50 else "")  # fmt: skip
    both = revoked.over_http + revoked.through_db
    base = percentile(revoked.http_round_trip, 50)
    for label, values in (("revocation → socket closed", both),
                          ("  through devices:revoke (HTTP)", revoked.over_http),
                          ("  through the database (as the CLI)", revoked.through_db)):  # fmt: skip
        for p in (50, 99):
            value = percentile(values, p)
            main_row = p == 99 and not label.startswith(" ")
            res.add(f"{label} p{p}, {n_devices:,} devices connected", ms(value),
                    "devices:revoke round trip p50", ms(base), f"{value / base:.1f}×",
                    "≤ 1 s" if main_row else "(info)",
                    verdict(value <= 1.0) if main_row else "")  # fmt: skip
    res.notes.append(
        f"{n_queries:,} HTTP queries each way on kept-alive connections; {n_connects} sync "
        f"connects each way; {len(both)} revocations ({len(revoked.over_http)} over HTTP, "
        f"{len(revoked.through_db)} through the database), max {max(both) * 1000:.1f} ms"
    )
    res.notes.append(
        f"{n_devices:,} devices paired through the store in {pairing:.1f} s; their sockets "
        f"opened and subscribed in {opened:.1f} s; serve RSS with them {rss / 1024:.0f} MB"
    )
    res.notes.append(
        f"the AuthError message arrived before the close on {revoked.auth_error_first} of "
        f"{len(both)} revoked sockets; sockets of devices not revoked that closed: "
        f"{revoked.others_closed}; database commit of a revocation p50 "
        f"{percentile(revoked.db_commit, 50) * 1000:.1f} ms"
    )
    raw |= {"http_auth": http_auth, "http_local": http_local, "ws_auth": ws_auth,
            "ws_local": ws_local, "revoke_http": revoked.over_http,
            "revoke_db": revoked.through_db,
            "revoke_round_trip": revoked.http_round_trip}  # fmt: skip

    libraries = f"httpx {httpx.__version__}, websockets {websockets.__version__}"
    res.print_report("auth benchmark", machine_line(libraries, git_version()), load_start,
                     load_end)  # fmt: skip
    if args.json:
        args.json.write_bytes(orjson.dumps(raw))


if __name__ == "__main__":
    main()

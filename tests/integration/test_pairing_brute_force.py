"""Guessing pairing codes against a real `sessionbase serve`, over real sockets.

10,000 wrong codes from one address, half of them with forged ``X-Forwarded-For``,
``Forwarded`` and ``X-Real-IP`` headers naming other addresses: all but the first few (and the
per-address refill) are answered 429, and the owner, pairing from another address, redeems the
live code at once. Then wrong codes from hundreds of genuine loopback addresses: the limit for
everyone holds them to its burst plus its refill, pairing is closed to everyone while they
last, and the owner's code works once they stop (after the ``Retry-After`` it is told). The
audit log sums the refusals in a row per interval instead of growing with every attempt,
and the server's memory stays bounded throughout (measured after the first 1,000 guesses, when the
embedder's model is loaded and the connections are open).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest

from sessionbase.auth import devices
from sessionbase.auth.authority import PAIR_LIMITS, REFUSALS_EVERY
from sessionbase.auth.credentials import new_code, normalize_code
from sessionbase.auth.keys import ensure_key
from sessionbase.store import open_store
from tests.builders.codex import Rollout
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
ATTACKER = "127.0.0.1"
WRONG = 10_000
MEMORY_BOUND = 64 * 2**20  # bytes the server may grow by: generous, it should barely move


def wrong_codes(count: int, live: set[str]) -> list[str]:
    codes = []
    while len(codes) < count:
        code = new_code()
        if normalize_code(code) not in live:
            codes.append(code)
    return codes


def forged(n: int) -> dict[str, str]:
    """Headers claiming the request came from elsewhere, on every other request."""
    if n % 2 == 0:
        return {}
    other = f"198.51.{n % 250}.{n % 199 + 1}"
    return {"X-Forwarded-For": other, "Forwarded": f"for={other}", "X-Real-IP": other}


async def guess(url: str, codes: list[str], source: str, workers: int = 4) -> Counter[int]:
    """Try ``codes`` at /auth/pair from ``source`` on a few kept-alive connections."""
    statuses: Counter[int] = Counter()
    queue = list(enumerate(codes))
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=30,
                                 trust_env=False) as http:  # fmt: skip

        async def work() -> None:
            while queue:
                n, code = queue.pop()
                response = await http.post("/auth/pair", json={"code": code, "name": "guess"},
                                           headers=forged(n))  # fmt: skip
                statuses[response.status_code] += 1

        await asyncio.gather(*(work() for _ in range(workers)))
    return statuses


def pair_from(url: str, source: str, code: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=url, transport=transport, timeout=30, trust_env=False) as http:
        return http.post("/auth/pair", json={"code": code, "name": "owner's phone"})


def test_guessing_codes_is_refused_and_the_owner_still_pairs(tmp_path: Path) -> None:
    home, data = tmp_path / "codex-home", tmp_path / "data"
    Rollout().user("hello").write(home)

    key = ensure_key(data)
    with open_store(data / "sessionbase.db") as store:  # as `sessionbase pair` makes them
        first, second = (
            devices.create_pairing(store, key, None, ("read",), 600, "test").code for _ in range(2)
        )
    live = {normalize_code(first), normalize_code(second)}
    server = ServerProcess(data, home)
    with server:
        assert server.proc is not None
        process = psutil.Process(server.proc.pid)
        server.wait_semantic()  # the embedder's model is loaded: the rest is the guessing
        codes = wrong_codes(WRONG, live)
        began = flood_began = time.monotonic()
        statuses = asyncio.run(guess(server.url, codes[:1000], ATTACKER))
        before = process.memory_info().rss
        statuses += asyncio.run(guess(server.url, codes[1000:], ATTACKER))
        elapsed = time.monotonic() - began
        assert set(statuses) <= {401, 429}, statuses
        assert sum(statuses.values()) == WRONG
        # Checked at all: the burst, and the refill over the time the flood took.
        allowed = PAIR_LIMITS.per_address + elapsed / PAIR_LIMITS.address_refill
        assert statuses[401] <= allowed + 1, (statuses, elapsed)
        assert statuses[429] >= WRONG - allowed - 1

        owner = pair_from(server.url, "127.0.0.2", first)
        assert owner.status_code == 200, owner.text
        assert owner.json()["scopes"] == ["read"]
        assert pair_from(server.url, "127.0.0.3", first).status_code == 401  # used: once only

        # From many genuine addresses: each has its own burst, everyone together one.
        sources = [f"127.0.{1 + n // 250}.{1 + n % 250}" for n in range(200)]
        codes = wrong_codes(len(sources) * 3, live)
        began = time.monotonic()

        async def everyone() -> Counter[int]:
            counts: Counter[int] = Counter()
            for n, source in enumerate(sources):
                counts += await guess(server.url, codes[n * 3 : n * 3 + 3], source, workers=1)
            return counts

        spread = asyncio.run(everyone())
        elapsed = time.monotonic() - began
        assert set(spread) <= {401, 429}, spread
        allowed = PAIR_LIMITS.overall + elapsed / PAIR_LIMITS.overall_refill
        assert spread[401] <= allowed + 1, (spread, elapsed)
        assert spread[429] >= len(codes) - allowed - 1

        # While it lasted, pairing was closed to everyone (the owner too); it reopens within
        # the Retry-After the refusal names, and the owner's live code works.
        owner = pair_from(server.url, "127.0.0.4", second)
        waited = 0
        while owner.status_code == 429 and waited < 5:
            time.sleep(float(owner.headers["Retry-After"]))
            waited += 1
            owner = pair_from(server.url, "127.0.0.4", second)
        assert owner.status_code == 200, owner.text

        with open_store(data / "sessionbase.db", readonly=True) as store:
            summaries = [e["detail"] for e in store.auth_events(100_000)
                         if "refused by the rate limit" in (e["detail"] or "")]  # fmt: skip
        # The audit log sums refusals, a row per interval: a flood does not grow it per attempt.
        flooded = time.monotonic() - flood_began
        assert 1 <= len(summaries) <= flooded / REFUSALS_EVERY + 2, summaries
        assert sum(int(d.split()[0]) for d in summaries) <= statuses[429] + spread[429] + 5

        grown = process.memory_info().rss - before
        assert grown < MEMORY_BOUND, f"the server grew by {grown / 2**20:.1f} MB"
        ready = httpx.get(f"{server.url}/readyz", trust_env=False)
        assert ready.status_code == 200

"""The CLI writes to the database while `serve` runs (`pair`, `devices rename`, `devices
revoke`), on SQLite and on PostgreSQL: each change reaches the running serve at once — a code
made meanwhile is redeemable, a rename reaches a live subscription, a revoked device's token
is refused by the very next request — and CLI writers in a loop never make it answer an error
or lose anyone's commit."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_convex_clients import NodeClient
from tests.integration.test_devices import Served, call, node_client
from tests.support.server import run_command

pytestmark = pytest.mark.integration
__all__ = ["node_client"]  # the fixture, shared with test_devices


def named(device_id: str, name: str) -> Callable[[Any], bool]:
    return lambda listed: any(d["id"] == device_id and d["name"] == name for d in listed or [])


def test_what_the_cli_does_reaches_a_running_serve_at_once(
    tmp_path: Path, database_url: str, backend: str, node_client: Callable[[str], NodeClient]
) -> None:
    setup = Served(tmp_path, "--require-auth",
                   database=database_url if backend == "postgres" else None)  # fmt: skip
    with setup.server:
        admin_id, admin = setup.redeem(setup.code("admin"), "laptop")  # codes made meanwhile
        phone_id, phone = setup.redeem(setup.code("read"), "phone")
        status, body = setup.token(phone)
        assert status == 200, body
        token = body["token"]
        assert setup.query(token, "threads:recent", {})[0] == 200

        manager = node_client(setup.url)
        manager.send(cmd="setAuth", tokenUrl=f"{setup.url}/auth/token", secret=admin)
        manager.subscribe("devices", "devices:list", {})
        manager.update("devices", named(phone_id, "phone"))
        setup.cli("devices", "rename", phone_id, "tablet")
        manager.update("devices", named(phone_id, "tablet"))

        device = node_client(setup.url)
        device.send(cmd="setAuth", tokenUrl=f"{setup.url}/auth/token", secret=phone)
        device.subscribe("recent", "threads:recent", {})
        device.update("recent", lambda threads: bool(threads))
        mark = device.mark()
        setup.cli("devices", "revoke", phone_id)
        status, body = setup.query(token, "threads:recent", {})  # at once: no wait
        assert status == 401, body
        assert "revoked" in body["error"]["message"]
        assert setup.token(phone)[0] == 401
        device.wait(lambda e: e["event"] == "connection" and not e["connected"], since=mark)
        assert not manager.errors()
        assert admin_id != phone_id


def test_cli_writers_in_a_loop_while_serve_answers_queries(
    tmp_path: Path, database_url: str, backend: str
) -> None:
    setup = Served(tmp_path, database=database_url if backend == "postgres" else None)
    # five pairings from one address is the limit's burst (PAIR_LIMITS); more would wait a
    # refill of 12 s each and be refused 429 on a machine quick enough to ask sooner
    rounds, writers = 2, 2
    with setup.server:
        statuses: dict[int, int] = {}
        failures: list[str] = []
        done = threading.Event()

        def ask() -> None:  # the local owner, asking all along
            while not done.is_set():
                for path in ("threads:recent", "devices:list"):
                    status, body = call(f"{setup.url}/v1/query/{path}", body={})
                    statuses[status] = statuses.get(status, 0) + 1
                    if status != 200:
                        failures.append(f"{path}: {status} {body}")

        def write(writer: int) -> None:
            for n in range(rounds):
                code = setup.code("read")
                device_id, secret = setup.redeem(code, f"w{writer}-{n}")  # serve writes
                assert setup.token(secret)[0] == 200  # serve writes (audit, last seen)
                setup.cli("devices", "rename", device_id, f"renamed-{writer}-{n}")
                setup.cli("devices", "revoke", device_id)
                assert setup.token(secret)[0] == 401

        asking = threading.Thread(target=ask)
        asking.start()
        try:
            with ThreadPoolExecutor(writers) as pool:
                for finished in [pool.submit(write, w) for w in range(writers)]:
                    finished.result()
        finally:
            done.set()
            asking.join()
        assert not failures, failures[:5]
        assert statuses.get(200, 0) > 0
        assert "disk I/O error" not in setup.server.log()

    listed = json.loads(setup.cli("devices", "--json"))
    expected = {f"renamed-{w}-{n}" for w in range(writers) for n in range(rounds)}
    assert {d["name"] for d in listed} == expected
    assert all(d["revoked_at"] for d in listed)
    events = json.loads(setup.cli("devices", "log", "--json"))
    counts: dict[str, int] = {}
    for event in events:
        counts[event["event"]] = counts.get(event["event"], 0) + 1
    total = rounds * writers
    for event in ("pairing_created", "paired", "token", "renamed", "revoked"):
        assert counts.get(event) == total, (event, counts)
    if backend == "sqlite":
        check = run_command(setup.data, setup.home, "doctor", "--json")
        assert json.loads(check.stdout)["ok"] is True, check.stdout

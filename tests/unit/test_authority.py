"""The serving process's ``Authority`` and the commit listener on a SQLite file: a change
another connection commits (the CLI revoking a device, rotating the key) counts for the very
next token check, however recently the device was cached, and wakes the serving process."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from sessionbase.auth import devices
from sessionbase.auth.authority import REFUSALS_EVERY, WATCH_SECONDS, Authority
from sessionbase.auth.keys import ensure_key, rotate_key
from sessionbase.auth.ratelimit import Limits
from sessionbase.errors import AuthError, RateLimited
from sessionbase.store import listen_for_commits, open_store


def paired(data: Path) -> tuple[str, str]:
    """A device paired through the database, as `sessionbase pair` and /auth/pair do."""
    key = ensure_key(data)
    with open_store(data / "sessionbase.db") as store:
        code = devices.create_pairing(store, key, "phone", ("read",), 600, "test")
        device, secret = devices.redeem(store, key, code.code, None, None, None)
    return str(device["id"]), secret


def test_a_device_revoked_by_another_connection_is_refused_by_the_next_check(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    device_id, secret = paired(data)

    async def scenario() -> None:
        authority = Authority(data / "sessionbase.db", data)
        await authority.start()
        try:
            token = (await authority.token_for(secret, "127.0.0.1", None))["token"]
            identity = await authority.identify(token)  # the device is cached now
            assert identity.device_id == device_id
            with open_store(data / "sessionbase.db") as cli:
                cli.apply_user_changes([devices.revoke_change(device_id, "cli")], None, None)
            with pytest.raises(AuthError, match="revoked"):
                await authority.identify(token)
            assert await authority.ended(identity) == "this device was revoked"
        finally:
            await authority.close()

    asyncio.run(scenario())


def test_a_key_rotated_by_another_process_refuses_old_tokens_at_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _, secret = paired(data)

    async def scenario() -> None:
        authority = Authority(data / "sessionbase.db", data)
        await authority.start()
        try:
            token = (await authority.token_for(secret, "127.0.0.1", None))["token"]
            identity = await authority.identify(token)
            rotate_key(data)
            with open_store(data / "sessionbase.db") as cli:
                cli.announce(["auth:key"])
            with pytest.raises(AuthError):
                await authority.identify(token)
            assert await authority.ended(identity) == (
                "the signing key was rotated: fetch a new token"
            )
            fresh = (await authority.token_for(secret, "127.0.0.1", None))["token"]
            assert (await authority.identify(fresh)).device_id == identity.device_id
        finally:
            await authority.close()

    asyncio.run(scenario())


def test_another_connections_commit_wakes_the_listener_of_a_sqlite_file(tmp_path: Path) -> None:
    database = tmp_path / "sessionbase.db"
    open_store(database).close()
    woke = threading.Event()
    listener = listen_for_commits(database, woke.set)
    try:
        assert woke.wait(10), "no first wake (whatever was committed before it looked)"
        woke.clear()
        with open_store(database) as cli:
            cli.announce(["devices:x"])
        assert woke.wait(10), "another connection's commit did not wake the listener"
        assert listener.state()["wakes"] == 1
    finally:
        listener.close()


def test_refused_attempts_are_summed_in_the_audit_log_not_written_one_by_one(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    paired(data)

    async def scenario() -> None:
        authority = Authority(data / "sessionbase.db", data, pair_limits=Limits(per_address=1))
        await authority.start()
        try:
            for n in range(50):
                with pytest.raises(AuthError, match="wrong" if n == 0 else "too many"):
                    await authority.pair("AAAA-AAAA", None, "10.0.0.1", None)
            for _ in range(300):  # the watcher writes the first row within a second
                if summaries(data):
                    break
                await asyncio.sleep(0.1)
            for _ in range(30):
                with pytest.raises(RateLimited):
                    await authority.pair("AAAA-AAAA", None, "10.0.0.1", None)
            await asyncio.sleep(WATCH_SECONDS * 2)  # within REFUSALS_EVERY: no row yet
        finally:
            await authority.close()  # writes what is left

    assert WATCH_SECONDS * 4 < REFUSALS_EVERY
    asyncio.run(scenario())
    assert summaries(data) == [
        "49 attempts refused by the rate limit",
        "30 attempts refused by the rate limit",
    ]


def summaries(data: Path) -> list[str]:
    """The audit log's rows that sum refused attempts, oldest first."""
    with open_store(data / "sessionbase.db", readonly=True) as store:
        events = store.auth_events(1000)
    return [e["detail"] for e in reversed(events) if "rate limit" in (e["detail"] or "")]

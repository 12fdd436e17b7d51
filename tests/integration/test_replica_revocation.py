"""A device revoked through one replica is cut off on another: two `serve --require-auth`
replicas on one PostgreSQL database (A ingests, B only serves, both with the same signing key,
as the README says replicas must), the official npm `convex` client connected to B.

Revoking the device through A ends its socket on B within about a second (B hears of the
commit through PostgreSQL's NOTIFY), and B refuses its token and its secret from then on; a
device not revoked, connected to B beside it, stays connected and live.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sessionbase.auth.keys import ensure_key, key_path
from tests.integration.test_convex_clients import NodeClient
from tests.integration.test_devices import Served, call, has_messages, node_client
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
__all__ = ["node_client"]  # the fixture, shared with test_devices
CLOSE_WITHIN = 3.0  # seconds: the second, with room for a loaded machine


class Pair:
    """Replica A (``served``: it ingests) and B (``b``: --no-ingest) of one database."""

    def __init__(self, root: Path, database: str) -> None:
        self.a = Served(root / "a", "--require-auth", database=database)
        ensure_key(self.a.data)
        b_data = root / "b" / "data"
        b_data.mkdir(parents=True)
        shutil.copy2(key_path(self.a.data), key_path(b_data))  # replicas share the key
        self.b = ServerProcess(
            b_data, self.a.home, extra=("--require-auth", "--database", database, "--no-ingest"),
            env={"SESSIONBASE_TOKEN_TTL": "15"},
        )  # fmt: skip


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str) -> Iterator[Pair]:
    pair = Pair(tmp_path, pg_url)
    pair.a.server.launch()
    pair.b.launch()
    pair.a.server.wait_ready()
    pair.b.wait_ready()
    yield pair
    pair.b.stop()
    pair.a.server.stop()


def test_a_device_revoked_on_one_replica_is_cut_off_on_another(
    replicas: Pair, node_client: Callable[[str], NodeClient]
) -> None:
    a, b = replicas.a, replicas.b
    phone_id, phone = a.redeem(a.code("read"), "phone")
    _, tablet = a.redeem(a.code("read"), "tablet")
    _, admin = a.redeem(a.code("admin"), "laptop")

    clients = {}
    for name, secret in (("phone", phone), ("tablet", tablet)):
        client = node_client(b.url)
        client.send(cmd="setAuth", tokenUrl=f"{b.url}/auth/token", secret=secret)
        client.subscribe("recent", "threads:recent", {})
        client.update("recent", has_messages(2))
        clients[name] = client
    status, issued = call(f"{b.url}/auth/token", body={},
                          headers={"Authorization": f"Bearer {phone}"})  # fmt: skip
    assert status == 200, issued
    token = issued["token"]
    assert call(f"{b.url}/v1/query/threads:recent", body={},
                headers={"Authorization": f"Bearer {token}"})[0] == 200  # fmt: skip

    marks = {name: client.mark() for name, client in clients.items()}
    admin_token = a.token(admin)[1]["token"]
    status, _ = call(f"{a.url}/v1/mutation/devices:revoke", body={"id": phone_id},
                     headers={"Authorization": f"Bearer {admin_token}"})  # fmt: skip
    revoked = time.monotonic()
    assert status == 200

    closed, _ = clients["phone"].wait(
        lambda e: e["event"] == "connection" and not e["connected"], since=marks["phone"]
    )
    assert closed - revoked < CLOSE_WITHIN, f"B ended the socket {closed - revoked:.2f} s later"
    status, body = call(f"{b.url}/v1/query/threads:recent", body={},
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert status == 401, body
    assert "revoked" in body["error"]["message"]
    status, _ = call(f"{b.url}/auth/token", body={}, headers={"Authorization": f"Bearer {phone}"})
    assert status == 401
    clients["phone"].wait(lambda e: e["event"] == "auth" and not e["authenticated"],
                          since=marks["phone"])  # fmt: skip

    a.append("after the phone was revoked")
    clients["tablet"].update("recent", has_messages(3), since=marks["tablet"])
    tablet_events = clients["tablet"].events[marks["tablet"] :]
    assert not [e for _, e in tablet_events if e["event"] == "connection"], tablet_events
    assert not clients["tablet"].errors(since=marks["tablet"])

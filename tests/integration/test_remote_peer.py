"""A genuinely remote peer: a client in a network namespace of its own, joined to this one by a
veth pair the test creates, talks to `sessionbase serve --host <this side's address>`.

Nothing about it is loopback, so nothing it sends is trusted: without a token every request is
refused (401) and every sync query fails as unauthenticated; with a paired device's token the
HTTP API and the sync socket answer, and the server records the namespace's address as where
the device was last seen. A serve on loopback only cannot be reached from there at all.

It needs root and `ip` (Debian's iproute2; scripts/test installs it): without them it skips
and says why. With them it is mandatory under ``SESSIONBASE_REQUIRE_INTEGRATION=1`` (CI runs
as root): a namespace that cannot be set up fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.builders.codex import Rollout
from tests.conftest import integration_required
from tests.support.server import ServerProcess, free_port, run_command

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Namespace:
    """A network namespace ``name`` whose ``peer`` address reaches ``host`` on this side."""

    name: str
    host: str
    peer: str

    def run(self, script: str, *args: str) -> Any:
        """Run Python ``script`` inside the namespace; what it prints, as JSON."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONBASE_")}
        done = subprocess.run(
            ["ip", "netns", "exec", self.name, sys.executable, "-c", script, *args],
            capture_output=True, text=True, timeout=60, env=env, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def _unavailable() -> str | None:
    if sys.platform != "linux":
        return "network namespaces are Linux's"
    if shutil.which("ip") is None:
        return "`ip` is not installed (Debian package iproute2; scripts/test installs it)"
    if os.geteuid() != 0:
        return "creating a network namespace and a veth pair needs root"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    reason = _unavailable()
    if reason is not None:
        pytest.skip(reason)
    block = os.getpid() % 16384  # a /30 of 10.231.0.0/16 of this process's own
    base = block * 4
    host, peer = f"10.231.{base // 256}.{base % 256 + 1}", f"10.231.{base // 256}.{base % 256 + 2}"
    name, outside, inside = f"sbtest{os.getpid()}", f"sbh{block}", f"sbp{block}"

    def remove() -> None:
        subprocess.run(["ip", "link", "del", outside], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)

    try:
        _ip("netns", "add", name)
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", name)
        _ip("addr", "add", f"{host}/30", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("-n", name, "addr", "add", f"{peer}/30", "dev", inside)
        _ip("-n", name, "link", "set", inside, "up")
        _ip("-n", name, "link", "set", "lo", "up")
    except subprocess.CalledProcessError as exc:
        remove()
        why = f"could not set up a network namespace: {exc.stderr.strip()}"
        if integration_required():
            pytest.fail(f"SESSIONBASE_REQUIRE_INTEGRATION=1 but {why}", pytrace=False)
        pytest.skip(why)
    try:
        yield Namespace(name, host, peer)
    finally:
        remove()


CLIENT = r"""
import json, sys, urllib.error, urllib.request, uuid
from websockets.sync.client import connect

url, secret = sys.argv[1], sys.argv[2]
found = {}

def call(path, body=None, token=None, method=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")

def sync(token):
    ws_url = url.replace("http://", "ws://") + "/api/1.31.0/sync"
    with connect(ws_url, open_timeout=20, proxy=None) as ws:
        ws.send(json.dumps({"type": "Connect", "sessionId": str(uuid.uuid4()),
                            "connectionCount": 0, "lastCloseReason": None, "clientTs": 0}))
        if token:
            ws.send(json.dumps({"type": "Authenticate", "tokenType": "User", "value": token,
                                "baseVersion": 0}))
        ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                            "modifications": [{"type": "Add", "queryId": 1,
                                               "udfPath": "threads:recent", "args": [{}]}]}))
        while True:
            message = json.loads(ws.recv(timeout=20))
            for mod in message.get("modifications", []):
                if mod.get("queryId") == 1 and mod["type"] == "QueryUpdated":
                    return {"ok": True, "threads": len(mod["value"])}
                if mod.get("queryId") == 1 and mod["type"] == "QueryFailed":
                    return {"ok": False, "error": mod["errorMessage"]}

found["recent"] = call("/v1/query/threads:recent", {})
found["convex"] = call("/api/query", {"path": "threads:recent", "args": [{}]})
found["openapi"] = call("/openapi.json")[0]
found["ready"] = call("/readyz")
found["sync"] = sync(None)
status, issued = call("/auth/token", {}, token=secret)
found["token"] = status
token = issued.get("token") if isinstance(issued, dict) else None
found["recent_with_token"] = call("/v1/query/threads:recent", {}, token=token)
found["sync_with_token"] = sync(token)
print(json.dumps(found))
"""

UNREACHABLE = r"""
import json, socket, sys
found = {}
for host in sys.argv[2:]:
    try:
        socket.create_connection((host, int(sys.argv[1])), timeout=5).close()
        found[host] = "connected"
    except OSError as exc:
        found[host] = type(exc).__name__
print(json.dumps(found))
"""


def test_a_peer_in_another_network_namespace_needs_a_token(
    namespace: Namespace, tmp_path: Path
) -> None:
    home, data = tmp_path / "codex-home", tmp_path / "data"
    rollout = Rollout(cwd="/work/remote")
    rollout.user("asked from afar").assistant("answered")
    rollout.write(home)
    done = run_command(data, home, "pair", "--json", "--scope", "read")
    assert done.returncode == 0, done.stderr
    code = json.loads(done.stdout)["code"]

    port = free_port()
    server = ServerProcess(data, home, port=port, extra=("--host", namespace.host))
    server.url = f"http://{namespace.host}:{port}"
    local = ServerProcess(tmp_path / "local-data", home)  # loopback only, as by default
    with server, local:
        status, paired = namespace_pair(namespace, server.url, code)
        assert status == 200, paired
        found = namespace.run(CLIENT, server.url, paired["secret"])
        assert found["recent"][0] == 401, found
        assert "needs authentication" in found["recent"][1]["error"]["message"]
        assert found["convex"][0] == 401, found
        assert found["openapi"] == 401, found
        assert found["ready"] == [200, {"ready": True}], found  # no details for strangers
        assert found["sync"]["ok"] is False, found
        assert "needs authentication" in found["sync"]["error"]
        assert found["token"] == 200, found
        assert found["recent_with_token"][0] == 200, found
        assert [t["title"] for t in found["recent_with_token"][1]] == ["asked from afar"]
        assert found["sync_with_token"] == {"ok": True, "threads": 1}, found

        listed = json.loads(run_command(data, home, "devices", "--json").stdout)
        assert [d["last_ip"] for d in listed] == [namespace.peer]  # the server saw the peer

        local_port = str(local.port)
        unreachable = namespace.run(UNREACHABLE, local_port, namespace.host, "127.0.0.1")
        assert unreachable == {namespace.host: "ConnectionRefusedError",
                               "127.0.0.1": "ConnectionRefusedError"}, unreachable  # fmt: skip
        assert local.ready()  # it is up: only not reachable from there


PAIR = r"""
import json, sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[1] + "/auth/pair", method="POST",
    data=json.dumps({"code": sys.argv[2], "name": "far phone"}).encode(),
    headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(request, timeout=20) as response:
        print(json.dumps([response.status, json.loads(response.read())]))
except urllib.error.HTTPError as exc:
    print(json.dumps([exc.code, json.loads(exc.read())]))
"""


def namespace_pair(namespace: Namespace, url: str, code: str) -> tuple[int, Any]:
    """Pair from inside the namespace, as a phone on the LAN would."""
    status, body = namespace.run(PAIR, url, code)
    return int(status), body

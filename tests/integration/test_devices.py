"""Devices against a real `sessionbase serve --require-auth`: pairing, tokens, the official npm
`convex` client's setAuth refresh cycle across token expiry, revocation closing the socket,
the PyPI `convex` package (its sync client's set_auth, its HTTP client), plain HTTP with Bearer
tokens, and a reverse proxy on loopback that must not pass as local."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.builders.codex import Rollout
from tests.integration.test_convex_clients import (
    EventTimeout,
    NodeClient,
    PyPIClient,
    npm_node,
    pypi_convex,
)
from tests.support.server import ServerProcess, free_port, run_command

pytestmark = pytest.mark.integration
__all__ = ["pypi_convex"]  # the fixture, shared with test_convex_clients
WAIT = 20.0


def call(url: str, *, body: Any = None, headers: dict[str, str] | None = None,
         method: str | None = None) -> tuple[int, Any]:  # fmt: skip
    data = None if body is None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={**sent, **(headers or {})})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"null")


class Served:
    """A serve (``extra`` says how: `--require-auth`) whose tokens live 15 s, and a Codex home
    with one thread; ``database`` is a PostgreSQL URL or None for the data dir's SQLite."""

    def __init__(self, root: Path, *extra: str, database: str | None = None) -> None:
        self.home = root / "codex-home"
        self.data = root / "data"
        self.rollout = Rollout(cwd="/work/devices")
        self.rollout.turn()
        self.rollout.user("first question").assistant("first answer")
        self.path = self.rollout.write(self.home)
        self.database = () if database is None else ("--database", database)
        self.server = ServerProcess(self.data, self.home, extra=(*extra, *self.database),
                                    env={"SESSIONBASE_TOKEN_TTL": "15"})  # fmt: skip
        self.url = self.server.url

    def cli(self, *args: str) -> str:
        done = run_command(self.data, self.home, *self.database, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def code(self, scopes: str = "read") -> str:
        """A new pairing code from `sessionbase pair`."""
        return str(json.loads(self.cli("pair", "--json", "--scope", scopes))["code"])

    def redeem(self, code: str, name: str = "phone") -> tuple[str, str]:
        status, body = call(f"{self.url}/auth/pair", body={"code": code, "name": name})
        assert status == 200, body
        return body["deviceId"], body["secret"]

    def make_codes(self) -> None:
        """Codes made by `sessionbase pair` before the server starts (pair works without
        one; the server finds them in the database)."""
        self.codes = {
            scopes: json.loads(self.cli("pair", "--json", "--scope", scopes))["code"]
            for scopes in ("read", "read,write", "admin")
        }

    def pair(self, scopes: str = "read", name: str = "phone") -> tuple[str, str]:
        return self.redeem(self.codes[scopes], name)

    def token(self, secret: str) -> tuple[int, Any]:
        return call(f"{self.url}/auth/token", body={},
                    headers={"Authorization": f"Bearer {secret}"})  # fmt: skip

    def query(self, token: str, path: str, args: dict[str, Any]) -> tuple[int, Any]:
        return call(f"{self.url}/v1/query/{path}", body=args,
                    headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    def append(self, text: str) -> None:
        before = len(self.rollout.lines)
        self.rollout.user(text)
        with open(self.path, "ab") as f:
            f.write(b"".join(line + b"\n" for line in self.rollout.lines[before:]))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    setup = Served(tmp_path, "--require-auth")
    setup.make_codes()
    setup.server.start()
    yield setup
    setup.server.stop()


@pytest.fixture
def node_client(tmp_path: Path) -> Iterator[Callable[[str], NodeClient]]:
    node = npm_node()
    clients: list[NodeClient] = []

    def connect(url: str) -> NodeClient:
        client = NodeClient(node, url, tmp_path / f"node-{len(clients)}.log")
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


def has_messages(count: int) -> Callable[[Any], bool]:
    return lambda threads: bool(threads) and threads[0]["messageCount"] == count


def test_npm_client_pairs_refreshes_its_token_and_is_cut_off_when_revoked(
    served: Served, node_client: Callable[[str], NodeClient]
) -> None:
    stranger = node_client(served.url)
    stranger.subscribe("recent", "threads:recent", {})
    _, refused = stranger.wait(lambda e: e["event"] == "error" and e["name"] == "recent")
    assert "needs authentication" in refused["message"]

    device_id, secret = served.pair("read")
    client = node_client(served.url)
    client.send(cmd="setAuth", tokenUrl=f"{served.url}/auth/token", secret=secret)
    client.subscribe("recent", "threads:recent", {})
    client.update("recent", has_messages(2))
    client.wait(lambda e: e["event"] == "auth" and e["authenticated"])
    _, first = client.wait(lambda e: e["event"] == "token" and e["ok"])
    connected = client.mark()

    # Tokens live 15 s and the client refreshes 10 s before expiry, over the open socket.
    _, later = client.wait(lambda e: e["event"] == "token" and e["ok"] and e["n"] >= 3,
                           timeout=30)  # fmt: skip
    assert later["expiresAt"] > first["expiresAt"]
    while time.time() * 1000 < first["expiresAt"] + 2000:  # past the first token's expiry
        time.sleep(0.2)
    served.append("after the first token expired")
    client.update("recent", has_messages(3), since=connected)
    assert not [e for _, e in client.events[connected:] if e["event"] == "connection"]
    assert not client.errors(since=connected)

    _, admin = served.pair("admin")
    admin_token = served.token(admin)[1]["token"]
    mark = client.mark()
    status, _ = call(f"{served.url}/v1/mutation/devices:revoke", body={"id": device_id},
                     headers={"Authorization": f"Bearer {admin_token}"})  # fmt: skip
    revoked = time.monotonic()
    assert status == 200
    closed, _ = client.wait(lambda e: e["event"] == "connection" and not e["connected"], since=mark)
    assert closed - revoked < 1.0, "the revoked device's socket stayed open"
    client.wait(lambda e: e["event"] == "token" and not e["ok"] and e["status"] == 401,
                since=mark)  # fmt: skip
    client.wait(lambda e: e["event"] == "auth" and not e["authenticated"], since=mark)
    assert served.token(secret)[0] == 401


def value(reply: dict[str, Any]) -> Any:
    """What the PyPI client answered, which must not be an error."""
    assert reply["ok"], reply
    return reply["value"]


def failure(reply: dict[str, Any]) -> str:
    """The error the PyPI client raised, which it must have."""
    assert not reply["ok"], reply
    return str(reply["error"])


def test_pypi_client_set_auth_and_a_revoked_device(
    served: Served, pypi_convex: None, tmp_path: Path
) -> None:
    from convex.http_client import ConvexHttpClient

    stranger = PyPIClient(served.url, tmp_path / "pypi-stranger.log")
    device_id, secret = served.pair("read")
    token = served.token(secret)[1]["token"]
    device = PyPIClient(served.url, tmp_path / "pypi-device.log")
    _, other = served.pair("read,write")
    watcher = PyPIClient(served.url, tmp_path / "pypi-watcher.log")
    try:
        refused = stranger("query", path="threads:recent", args={})
        assert "needs authentication" in failure(refused)
        refused = stranger("subscribe", name="recent", path="threads:recent", args={})
        assert "needs authentication" in failure(refused)
        over_http = ConvexHttpClient(served.url)
        with pytest.raises(Exception, match="401 Unauthenticated"):
            over_http.query("threads:recent")

        assert device("set_auth", token=token) == {"ok": True, "value": None}
        assert value(device("query", path="threads:recent", args={}))[0]["messageCount"] == 2
        first = value(device("subscribe", name="recent", path="threads:recent", args={}))
        assert first[0]["messageCount"] == 2
        rename = device("mutation", path="threads:rename",
                        args={"id": first[0]["id"], "title": "no"})  # fmt: skip
        assert "'write' scope" in failure(rename)
        over_http.set_auth(token)
        assert over_http.query("threads:recent")[0]["messageCount"] == 2
        assert watcher("set_auth", token=served.token(other)[1]["token"])["ok"]
        assert watcher("subscribe", name="recent", path="threads:recent", args={})["ok"]

        served.append("seen by both")
        for client in (device, watcher):
            assert value(client("next", name="recent"))[0]["messageCount"] == 3

        _, admin = served.pair("admin")
        admin_token = served.token(admin)[1]["token"]
        mark = len(served.server.log_path.read_bytes())
        status, _ = call(f"{served.url}/v1/mutation/devices:revoke", body={"id": device_id},
                         headers={"Authorization": f"Bearer {admin_token}"})  # fmt: skip
        assert status == 200
        with pytest.raises(Exception, match="401 Unauthenticated.*revoked"):
            over_http.query("threads:recent")
        served.append("seen by the live device only")
        assert value(watcher("next", name="recent"))[0]["messageCount"] == 4
        # The revoked client's socket was ended; it reconnects with its token, and each new
        # socket is refused in turn, so its subscription never hears of the new message.
        with pytest.raises(EventTimeout):
            device("next", name="recent", timeout=5)
        with open(served.server.log_path, "rb") as log:
            log.seek(mark)
            reconnects = log.read().count(b'"WebSocket /api/sync" [accepted]')
        assert reconnects >= 2, served.server.log()
    finally:
        for client in (stranger, device, watcher):
            client.close()


def test_pypi_client_given_a_new_token_keeps_its_socket_past_the_old_ones_expiry(
    served: Served, pypi_convex: None, tmp_path: Path
) -> None:
    """The PyPI client takes a token, not a way to fetch one: calling set_auth again before
    expiry re-authenticates over the open socket, and the subscription lives on."""
    _, secret = served.pair("read")
    status, first = served.token(secret)
    assert status == 200, first
    client = PyPIClient(served.url, tmp_path / "pypi-refresh.log")
    try:
        assert value(client("set_auth", token=first["token"])) is None
        assert value(client("subscribe", name="recent", path="threads:recent",
                            args={}))[0]["messageCount"] == 2  # fmt: skip
        mark = len(served.server.log_path.read_bytes())
        time.sleep(2)
        status, second = served.token(secret)
        assert status == 200, second
        assert second["expiresAt"] > first["expiresAt"]
        assert value(client("set_auth", token=second["token"])) is None
        while time.time() * 1000 < first["expiresAt"] + 2000:  # past the first token's expiry
            time.sleep(0.2)
        served.append("after the first token expired")
        counts = [value(client("next", name="recent"))[0]["messageCount"]]
        while counts[-1] != 3 and len(counts) < 5:  # a new identity re-sends every query
            counts.append(value(client("next", name="recent"))[0]["messageCount"])
        assert counts[-1] == 3, counts
        with open(served.server.log_path, "rb") as log:
            log.seek(mark)
            assert b'"WebSocket /api/sync" [accepted]' not in log.read()  # the same socket
    finally:
        client.close()


def test_http_bearer_tokens_scopes_and_every_bad_token(served: Served, tmp_path: Path) -> None:
    status, body = call(f"{served.url}/v1/query/threads:recent", body={})
    assert status == 401
    assert "needs authentication" in body["error"]["message"]
    reader_id, reader = served.pair("read")
    writer_id, writer = served.pair("read,write")
    read_token = served.token(reader)[1]["token"]
    write_token = served.token(writer)[1]["token"]
    status, threads = served.query(read_token, "threads:recent", {})
    assert status == 200
    thread_id = threads[0]["id"]
    rename = {"id": thread_id, "title": "renamed"}
    status, body = call(f"{served.url}/v1/mutation/threads:rename", body=rename,
                        headers={"Authorization": f"Bearer {read_token}"})  # fmt: skip
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, _ = call(f"{served.url}/v1/mutation/threads:rename", body=rename,
                     headers={"Authorization": f"Bearer {write_token}"})  # fmt: skip
    assert status == 200
    status, body = call(f"{served.url}/v1/mutation/pairing:create", body={},
                        headers={"Authorization": f"Bearer {write_token}"})  # fmt: skip
    assert status == 403
    status, body = call(f"{served.url}/api/query", body={"path": "threads:recent", "args": [{}]})
    assert (status, body["code"]) == (401, "Unauthenticated")

    key = json.loads((served.data / "signing-key.json").read_text())
    claims = jwt.decode(read_token, options={"verify_signature": False})
    header = jwt.get_unverified_header(read_token)
    expired = jwt.encode({**claims, "iat": 1, "exp": 2}, b"x" * 32, headers=header)
    import base64

    secret = base64.urlsafe_b64decode(key["secret"] + "=" * (-len(key["secret"]) % 4))
    really_expired = jwt.encode({**claims, "iat": 1, "exp": 2}, secret, headers=header)
    unsigned = read_token.rsplit(".", 1)[0].replace(
        read_token.split(".")[0],
        base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": key["kid"]}).encode())
        .decode().rstrip("="),
    ) + "."  # fmt: skip
    _, admin = served.pair("admin")
    admin_token = served.token(admin)[1]["token"]
    status, _ = call(f"{served.url}/v1/mutation/devices:revoke", body={"id": writer_id},
                     headers={"Authorization": f"Bearer {admin_token}"})  # fmt: skip
    assert status == 200
    assert reader_id
    for bad, reason in [
        (expired, "signature"),
        (really_expired, "expired"),
        (unsigned, "algorithm 'none'"),
        ("garbage", "malformed"),
        (write_token, "revoked"),
    ]:
        status, body = served.query(bad, "threads:recent", {})
        assert status == 401, (reason, body)
        assert reason in body["error"]["message"]
        status, body = call(f"{served.url}/api/query", body={"path": "threads:recent"},
                            headers={"Authorization": f"Bearer {bad}"})  # fmt: skip
        assert (status, body["code"]) == (401, "Unauthenticated"), (reason, body)  # Convex's shape
        assert reason in body["message"]


class XffProxy(http.server.ThreadingHTTPServer):
    """A reverse proxy on loopback that forwards with X-Forwarded-For, as Caddy does."""


def start_proxy(target: str) -> tuple[XffProxy, str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            request = urllib.request.Request(
                target + self.path, headers={"X-Forwarded-For": "203.0.113.9"}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status, body = response.status, response.read()
            except urllib.error.HTTPError as exc:
                with exc:
                    status, body = exc.code, exc.read()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    proxy = XffProxy(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    return proxy, f"http://127.0.0.1:{proxy.server_address[1]}"


def test_loopback_with_proxy_marks_is_not_local(tmp_path: Path) -> None:
    setup = Served(tmp_path)  # no --require-auth: loopback without proxy marks is the owner
    with setup.server:
        assert call(f"{setup.url}/v1/query/threads:recent")[0] == 200
        proxy, proxied = start_proxy(setup.url)
        try:
            status, body = call(f"{proxied}/v1/query/threads:recent")
            assert status == 401, body
        finally:
            proxy.shutdown()
            proxy.server_close()
        for header in ({"Forwarded": "for=203.0.113.9"}, {"Tailscale-User-Login": "a@b.c"},
                       {"X-Forwarded-For": "127.0.0.1"}, {"Via": "1.1 caddy"}):  # fmt: skip
            status, _ = call(f"{setup.url}/v1/query/threads:recent", headers=header)
            assert status == 401, header
        status, body = call(f"{setup.url}/readyz", headers={"X-Forwarded-For": "203.0.113.9"})
        assert set(body) == {"ready"}

"""What a hostile web page or a careless client can send, against a real ``sessionbase serve``.

Every request passes the same guard before anything runs: its ``Host`` must be this machine's,
its ``Origin`` (when it has one) one of the server's own, a POST must be JSON and no body may
outgrow the limit, however it is sent. The attacks are the ones that were found: WebSocket
upgrades from foreign origins, a text/plain POST (which a browser sends cross-site without
asking first), 500 MB bodies, and upgrade requests whose request line or headers are too long.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from tests.builders.codex import DEFAULT_START, Rollout
from tests.support.raw_ws import SYNC_PATH, handshake
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.integration

TITLE = "guarded thread"


class Served:
    def __init__(self, server: ServerProcess, thread_id: str) -> None:
        self.server = server
        self.port = server.port
        self.thread_id = thread_id
        self.http = httpx.Client(base_url=server.url, timeout=30, trust_env=False)

    def title(self) -> str:
        got = self.http.post("/v1/query/threads:get", json={"id": self.thread_id})
        assert got.status_code == 200, got.text
        title: str = got.json()["title"]
        return title

    def rss(self) -> int:
        assert self.server.proc is not None
        return int(psutil.Process(self.server.proc.pid).memory_info().rss)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("guards")
    codex_home = root / "codex-home"
    (codex_home / "sessions").mkdir(parents=True)
    rollout = Rollout(start=DEFAULT_START, cwd="/work/guards")
    turn = rollout.turn()
    rollout.user(TITLE)
    rollout.assistant("an answer")
    rollout.end_turn(turn)
    rollout.write(codex_home)
    with ServerProcess(root / "data", codex_home) as server:
        served = Served(server, rollout.thread_id)
        deadline = time.monotonic() + 30
        while (
            served.http.post("/v1/query/threads:get", json={"id": rollout.thread_id}).json() is None
        ):
            assert time.monotonic() < deadline, "the thread was never imported"
            time.sleep(0.05)
        try:
            yield served
        finally:
            served.http.close()


def own_origins(port: int) -> list[str]:
    return [f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"]


def foreign_origins(port: int) -> list[str]:
    return [
        "http://evil.com",
        "null",
        f"http://evil.com:{port}",
        f"http://127.0.0.1:{free_port()}",  # another server on this machine
        f"https://127.0.0.1:{port}",
        f"http://127.0.0.1.evil.com:{port}",
    ]


# ------------------------------------------------------------------ WebSocket upgrades


def test_upgrade_from_a_foreign_origin_is_refused_before_accepting(served: Served) -> None:
    for origin in foreign_origins(served.port):
        sock, head = handshake(served.port, headers={"Origin": origin})
        try:
            assert head.startswith(b"HTTP/1.1 403 "), (origin, head)
            while sock.recv(65536):  # then closed: recv ends rather than waiting
                pass
        finally:
            sock.close()


def test_upgrade_from_the_servers_own_origins_or_without_one_is_accepted(served: Served) -> None:
    for headers in [{}, *({"Origin": origin} for origin in own_origins(served.port))]:
        sock, head = handshake(served.port, headers=headers)
        sock.close()
        assert head.startswith(b"HTTP/1.1 101 "), (headers, head)


def test_upgrade_through_a_tunnel_may_come_from_the_address_it_reached(served: Served) -> None:
    """``ssh -L 9000:127.0.0.1:P``: the page is http://localhost:9000 and so is its Host."""
    sock, head = handshake(
        served.port, host="localhost:9000", headers={"Origin": "http://localhost:9000"}
    )
    sock.close()
    assert head.startswith(b"HTTP/1.1 101 "), head
    sock, head = handshake(
        served.port, host="localhost:9000", headers={"Origin": "http://localhost:9001"}
    )
    sock.close()
    assert head.startswith(b"HTTP/1.1 403 "), head


# ------------------------------------------------------------------ HTTP: read and mutate


def test_cross_site_text_plain_post_cannot_mutate(served: Served) -> None:
    """The forged request of a "simple" cross-site form or fetch: no preflight protects it."""
    args = f'{{"id":"{served.thread_id}","title":"PWNED"}}'
    body = f'{{"path":"threads:rename","args":{args}}}'
    for origin in foreign_origins(served.port):
        for url, content in [("/api/mutation", body), ("/v1/mutation/threads:rename", args)]:
            response = served.http.post(
                url, content=content, headers={"Origin": origin, "Content-Type": "text/plain"}
            )
            assert response.status_code == 403, (origin, url, response.text)
            refused = response.json()  # Convex's HTTP API has Convex's shape of error
            code = refused["code"] if url.startswith("/api/") else refused["error"]["code"]
            assert code.lower() == "forbidden"
    assert served.title() == TITLE


def test_a_post_must_be_json_even_without_an_origin(served: Served) -> None:
    args = f'{{"id":"{served.thread_id}","title":"PWNED"}}'
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "application/json; charset=latin-1",
        None,
    ]:
        headers = {"Content-Type": content_type} if content_type else {}
        response = served.http.post("/v1/mutation/threads:rename", content=args, headers=headers)
        assert response.status_code == 415, (content_type, response.text)
        assert "application/json" in response.json()["error"]["message"]
    assert served.title() == TITLE
    for content_type in ["application/json", "application/json; charset=utf-8", "Application/JSON"]:
        response = served.http.post(
            "/v1/query/threads:get",
            content=f'{{"id":"{served.thread_id}"}}',
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 200, (content_type, response.text)


def test_foreign_origin_cannot_read_either(served: Served) -> None:
    for origin in foreign_origins(served.port):
        response = served.http.get(
            "/v1/query/threads:recent", params={"args": "{}"}, headers={"Origin": origin}
        )
        assert response.status_code == 403, (origin, response.text)
        assert TITLE not in response.text


def test_own_origin_reads_and_mutates(served: Served) -> None:
    for origin in own_origins(served.port):
        response = served.http.post(
            "/api/query",
            json={"path": "threads:get", "args": {"id": served.thread_id}},
            headers={"Origin": origin},
        )
        assert response.status_code == 200, (origin, response.text)
        assert response.json()["value"]["title"] == TITLE
    response = served.http.post(
        "/v1/mutation/threads:rename",
        json={"id": served.thread_id, "title": "renamed by its own page"},
        headers={"Origin": own_origins(served.port)[1]},
    )
    assert response.status_code == 200, response.text
    assert served.title() == "renamed by its own page"
    served.http.post("/v1/mutation/threads:rename", json={"id": served.thread_id, "title": None})
    assert served.title() == TITLE


# ------------------------------------------------------------------ request bodies


def raw_request(port: int, head: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head.encode())
    return sock


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_oversized_content_length_is_refused_before_the_body_is_sent(served: Served) -> None:
    sock = raw_request(
        served.port,
        f"POST /api/query HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {500 * 2**20}\r\n\r\n",
    )
    try:
        response = read_response(sock)  # nothing of the body was sent: no waiting for it
        assert response.startswith(b"HTTP/1.1 413 "), response
    finally:
        sock.close()


@pytest.mark.slow
def test_500_mb_chunked_post_keeps_memory_flat(served: Served) -> None:
    """A body without Content-Length is counted as it streams and cut off at the limit."""
    before = served.rss()
    peak = before
    sampling = True

    def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, served.rss())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    sock = raw_request(
        served.port,
        f"POST /api/query HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    chunk = b"%x\r\n" % (2**20) + b" " * 2**20 + b"\r\n"
    sent = 0
    try:
        while sent < 500 * 2**20:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break  # the server answered before the body was done
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 2**20
        else:
            sock.sendall(b"0\r\n\r\n")  # the whole body went through: end it
        response = read_response(sock)
    finally:
        sock.close()
        sampling = False
        sampler.join()
    assert response.startswith(b"HTTP/1.1 413 "), response[:200]
    grown = (peak - before) / 2**20
    assert grown < 50, (
        f"the server grew by {grown:.0f} MB for a body it refused ({sent >> 20} MB sent)"
    )


# ------------------------------------------------------------------ oversized handshakes


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        (f"/api/{'x' * 9000}/sync", {}, b"414"),
        (SYNC_PATH, {"X-Padding": "y" * 9000}, b"431"),
        (SYNC_PATH, {f"X-Many-{i}": "z" for i in range(200)}, b"431"),
    ],
    ids=["long-request-line", "long-header", "many-headers"],
)
def test_oversized_upgrade_is_answered_and_closed(
    served: Served, path: str, headers: dict[str, str], status: bytes
) -> None:
    sock, head = handshake(served.port, path=path, headers=headers)
    try:
        assert head.startswith(b"HTTP/1.1 " + status + b" "), head
        while sock.recv(65536):  # the server closes: recv ends instead of timing out
            pass
    finally:
        sock.close()


def test_upgrade_beyond_what_the_http_parser_buffers_is_closed(served: Served) -> None:
    sock, head = handshake(served.port, path=f"/api/{'x' * 100_000}/sync")
    try:
        assert head.startswith(b"HTTP/1.1 4"), head
        while sock.recv(65536):
            pass
    finally:
        sock.close()

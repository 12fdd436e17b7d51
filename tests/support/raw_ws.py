"""WebSocket clients at the TCP level, for tests that must control every byte: hostile
handshakes (foreign origins, oversized request lines), and clients that complete the upgrade,
subscribe, and then never read another byte."""

from __future__ import annotations

import base64
import os
import socket
import struct
from typing import Any

import orjson

SYNC_PATH = "/api/1.31.0/sync"


def handshake(
    port: int,
    *,
    path: str = SYNC_PATH,
    host: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[socket.socket, bytes]:
    """Ask for a WebSocket upgrade; return the socket and the response head (status line and
    headers, read byte by byte so nothing past the handshake is consumed). The socket's receive
    buffer is kept small, as a client that stops reading would have it. ``timeout`` only
    guards the test against a server that never answers."""
    sock = socket.socket()
    try:
        return sock, _upgrade(sock, port, path, host, headers, timeout)
    except BaseException:
        sock.close()
        raise


def _upgrade(
    sock: socket.socket,
    port: int,
    path: str,
    host: str | None,
    headers: dict[str, str] | None,
    timeout: float,
) -> bytes:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host or f'127.0.0.1:{port}'}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        byte = sock.recv(1)
        if not byte:
            break
        head += byte
    return head


def text_frame(message: dict[str, Any]) -> bytes:
    """One masked text frame carrying ``message`` as JSON (clients must mask)."""
    payload = orjson.dumps(message)
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


class SilentSocket:
    """A sync client that completes the upgrade, sends frames, and never reads a byte."""

    def __init__(self, port: int) -> None:
        self.sock, head = handshake(port)
        assert head.startswith(b"HTTP/1.1 101"), head

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def send(self, message: dict[str, Any]) -> None:
        self.sock.sendall(text_frame(message))

    def close(self) -> None:
        self.sock.close()

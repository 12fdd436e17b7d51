"""uvicorn's sans-I/O WebSocket protocol, bounded in what one peer can make the server hold.

uvicorn hands every upgrade to this class (``websocket_options()`` says so). What it adds:

- **Oversized handshakes are answered.** A request line or header line over 8 KiB, or more
  than 128 headers, makes the ``websockets`` parser prepare a 414 or 431, which uvicorn never
  wrote: the socket stayed open, unanswered. It is written now, and the socket closed.
- **The kernel holds little for a peer that stops reading.** The socket's send buffer is
  fixed at ``SEND_BUFFER_BYTES`` instead of being autotuned up to 4 MiB (``tcp_wmem``), where
  a client that never reads left its whole share of kernel TCP memory pinned.
- **Unsent bytes are capped.** A message that would take what already waits in the
  transport past ``MAX_UNSENT_BYTES`` aborts the connection instead. (One message alone may be
  larger: it is sent when nothing else waits.)
- **Closing never waits for a peer that does not read.** asyncio's ``transport.close()``
  flushes the buffer first, so a close sent to a client that stopped reading kept the socket,
  its buffer and the session behind it forever. A close while the peer has left the buffer
  full aborts the transport at once; any other close, or an application that returns, gets
  ``CLOSE_TIMEOUT`` seconds to finish before the transport is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

log = logging.getLogger("sessionbase.sync")

SEND_BUFFER_BYTES = 256 * 1024  # the kernel doubles it for its bookkeeping
MAX_UNSENT_BYTES = 8 * 1024 * 1024
CLOSE_TIMEOUT = 10.0
MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # the largest frame a client may send


def websocket_options() -> dict[str, Any]:
    """The ``ws*`` arguments of ``uvicorn.Config`` for sessionbase's sync sockets."""
    return {
        "ws": BoundedWebSocketProtocol,
        "ws_max_size": MAX_MESSAGE_BYTES,
        # Browsers offer permessage-deflate, and a server that accepts it compresses every
        # frame once per connection (each has its own compression state): fanning a 9 KB
        # result out to 1,000 such clients took 120 ms instead of 35. The server listens on
        # loopback, where compression saves nothing.
        "ws_per_message_deflate": False,
    }


class BoundedWebSocketProtocol(WebSocketsSansIOProtocol):
    """``WebSocketsSansIOProtocol`` that answers oversized handshakes, caps unsent bytes and
    aborts rather than waits on a peer that does not read (see the module docstring)."""

    _linger: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.handshake_initiated and self.conn.handshake_exc is not None:
            # The parser refused the request and prepared its answer (414, 431, or none).
            log.info("refusing a WebSocket handshake: %s", self.conn.handshake_exc)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        super().connection_lost(exc)

    async def send(self, message: ASGISendEvent) -> None:
        if self.handshake_complete and not self.close_sent and not self.disconnected:
            if message["type"] == "websocket.close" and not self.writable.is_set():
                self._abort("closing a connection whose client stopped reading")
                return
            if message["type"] == "websocket.send":
                unsent = self.transport.get_write_buffer_size()
                size = len(message.get("bytes") or message.get("text") or "")
                if unsent and unsent + size > MAX_UNSENT_BYTES:
                    self._abort(f"{unsent + size} bytes would wait unsent")
                    raise ClientDisconnected()
        await super().send(message)
        if message["type"] == "websocket.close" and self.close_timer is not None:
            self.close_timer.cancel()  # it would close(), which waits for the peer to read
            self.close_timer = self._linger = self.loop.call_later(CLOSE_TIMEOUT, self._expire)

    async def run_asgi(self) -> None:
        await super().run_asgi()
        if not self.disconnected and self._linger is None:
            self._linger = self.loop.call_later(CLOSE_TIMEOUT, self._expire)

    def _expire(self) -> None:
        if not self.disconnected:
            self._abort(f"the connection did not close within {CLOSE_TIMEOUT:.0f} s")

    def _abort(self, why: str) -> None:
        log.info("aborting a sync connection: %s", why)
        self.transport.abort()

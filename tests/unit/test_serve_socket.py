"""The socket `serve` listens on: connections accepted from it send without delay.

Uvicorn writes a response as its head, then its body. Without TCP_NODELAY the body waits for
the client to acknowledge the head, which a client delays by up to 40 ms: every request after
the first on a kept-alive connection took 40 ms. asyncio sets the option on a connection only
when the listening socket says it is TCP (``IPPROTO_TCP``, not 0).
"""

from __future__ import annotations

import asyncio
import socket

from sessionbase.cli.mirror import _listen


def test_connections_accepted_by_serve_send_without_delay() -> None:
    listener = _listen("127.0.0.1", 0)

    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[int] = loop.create_future()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=listener)  # as uvicorn does
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            nodelay = await asyncio.wait_for(accepted, 10)
            writer.close()
        return nodelay

    assert asyncio.run(scenario()) != 0

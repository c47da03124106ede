"""The server's listening socket gives connections without Nagle's algorithm."""

from __future__ import annotations

import asyncio
import socket

from mmserve.cli import _bind


def test_accepted_connections_have_tcp_nodelay():
    """asyncio sets TCP_NODELAY on a connection only when its socket names TCP; without it a
    response's body waits for the client's delayed ACK of its headers."""

    async def accept_one() -> int:
        listener = _bind("127.0.0.1", 0)
        accepted: asyncio.Future = asyncio.get_running_loop().create_future()

        def connected(reader, writer) -> None:
            option = writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            accepted.set_result(option)
            writer.close()

        server = await asyncio.start_server(connected, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname())
            option = await asyncio.wait_for(accepted, 5)
            writer.close()
        return option

    assert asyncio.run(accept_one()) != 0

"""TCP_NODELAY is set on accepted connections even when the listener was bound with proto=0,
as uvicorn's multi-worker supervisor binds it (uvicorn issue #3149)."""

from __future__ import annotations

import asyncio
import socket

import httpx

from suggestbox.serving import enable_nodelay
from tests.conftest import start_server, stop_server


async def test_enable_nodelay_on_socket_accepted_from_proto0_listener():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # proto 0, like bind_socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[asyncio.BaseTransport] = []

    class Grab(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted.append(transport)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Grab, sock=listener)
    try:
        _, writer = await asyncio.open_connection(*listener.getsockname())
        for _ in range(100):
            if accepted:
                break
            await asyncio.sleep(0.01)
        sock = accepted[0].get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0  # the bug
        assert enable_nodelay(accepted[0])
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


def test_two_worker_server_serves_keepalive_requests(tmp_path, pg_url):
    """The protocol class loads in uvicorn's worker processes (spawned with the config)."""
    server = start_server(tmp_path, database_url=pg_url, workers=2)
    try:
        with httpx.Client(base_url=server.url) as c:
            assert all(c.get("/healthz").status_code == 200 for _ in range(20))
    finally:
        stop_server(server)

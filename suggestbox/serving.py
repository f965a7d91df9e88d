"""uvicorn protocol that always enables TCP_NODELAY.

With ``--workers N`` uvicorn binds the listening socket itself with ``proto=0``; accepted sockets
inherit it and asyncio then skips TCP_NODELAY, so every keep-alive response after the first waits
for the client's delayed ACK (~40 ms on Linux; uvicorn issue #3149). Setting the option on each
accepted connection restores single-worker latency. It is harmless where it was already set.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.auto import AutoHTTPProtocol


def enable_nodelay(transport: asyncio.BaseTransport) -> bool:
    """Set TCP_NODELAY on the transport's socket if it is a TCP socket; return whether set."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return True
    return False


class NoDelayHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        enable_nodelay(transport)
        super().connection_made(transport)

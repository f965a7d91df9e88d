"""uvicorn protocol for `suggestbox serve`: TCP_NODELAY, and header and body read timeouts.

TCP_NODELAY: with ``--workers N`` uvicorn binds the listening socket itself with ``proto=0``;
accepted sockets inherit it and asyncio then skips TCP_NODELAY, so every keep-alive response
after the first waits for the client's delayed ACK (~40 ms on Linux; uvicorn issue #3149).
Setting the option on each accepted connection restores single-worker latency.

Timeouts: uvicorn has none for reading a request. A connection that never sends its headers, or
a POST whose body never arrives in full, is held forever, and ~1,000 of them exhaust the file
descriptors of a worker. Here a request's headers must arrive within ``header_timeout`` seconds
of the connection (or of the previous response on a keep-alive connection) and its body within
``body_timeout`` seconds of its headers; otherwise the connection is closed (with a 408 when no
answer was started). Time the application spends *working* on a request is not limited.
Values come from ``SUGGESTBOX_HEADER_TIMEOUT`` / ``SUGGESTBOX_BODY_TIMEOUT`` (settings.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                   b"content-length: 0\r\nconnection: close\r\n\r\n")


def enable_nodelay(transport: asyncio.BaseTransport) -> bool:
    """Set TCP_NODELAY on the transport's socket if it is a TCP socket; return whether set."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return True
    return False


def _timeouts() -> tuple[float, float]:
    from .settings import Settings

    s = Settings.from_env()
    return s.header_timeout, s.body_timeout


class GuardedHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    timeouts: tuple[float, float] | None = None  # read once per process

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        enable_nodelay(transport)
        super().connection_made(transport)
        cls = type(self)
        if cls.timeouts is None:
            cls.timeouts = _timeouts()
        self._seen: Any = None  # the request cycle the watch was last armed for
        self._watch: asyncio.TimerHandle | None = None
        self._arm(cls.timeouts[0], self._headers_expired)

    def _arm(self, delay: float, callback: Any) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self._watch = self.loop.call_later(delay, callback) if delay > 0 else None

    def _new_request(self) -> bool:
        cycle = self.cycle
        if cycle is not None and cycle is not self._seen:
            self._seen = cycle
            self._arm(self.timeouts[1] if self.timeouts else 0, self._body_expired)
            return True
        return False

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._new_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined request may already have started; otherwise wait for the next headers.
        if not self._new_request() and self.timeouts is not None:
            self._arm(self.timeouts[0], self._headers_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        super().connection_lost(exc)

    def _headers_expired(self) -> None:
        self._watch = None
        if self.transport.is_closing() or self._new_request():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            self.transport.close()

    def _body_expired(self) -> None:
        self._watch = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or cycle is not self._seen:
            return
        if cycle.response_complete or not cycle.more_body:
            return  # the body arrived; the application is still working: not ours to cut
        if not cycle.response_started:
            cycle.response_started = True  # the app must not write after our answer
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()


# The name `suggestbox serve` and bench/ have always used.
NoDelayHTTPProtocol = GuardedHTTPProtocol

"""A lean HTTP/1.1 server for device-facing endpoints (OsmAnd), on the httptools parser.

Why not uvicorn here: phones and bracelets send one small request per fix, and at thousands of fixes per
second the ASGI machinery (scope dicts, receive/send coroutines, middleware) cost more CPU than decoding and
storing the fix (see docs/benchmarks.md). Device endpoints need none of it: one route, small bodies,
keep-alive, and answers sent only once the reading is committed. The API stays on FastAPI/uvicorn.

One request is handled at a time per connection (reading pauses meanwhile), so answers can never be
reordered even if a client pipelines. Limits: request line + headers, body size, idle time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import cast

import httptools

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GatewayRequest:
    method: str
    path: str
    query: str
    content_type: str
    body: bytes


# Answers a request (status, body); may be called later, from another callback, but only once.
Respond = Callable[[int, bytes], None]
# Handles a request and calls ``respond`` when the answer is known (no task per request: see above).
Handler = Callable[[GatewayRequest, Respond], None]


@dataclass(frozen=True, slots=True)
class GatewayLimits:
    max_head_bytes: int = 16 * 1024
    max_body_bytes: int = 256 * 1024
    idle_timeout_s: float = 120.0


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def response_bytes(status: int, body: bytes, keep_alive: bool) -> bytes:
    if status == 200 and not body and keep_alive:
        return _STORED  # nearly every answer
    reason = HTTPStatus(status).phrase
    connection = "" if keep_alive else "connection: close\r\n"
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n{connection}\r\n"
    )
    return head.encode("latin-1") + body


_STORED = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 0\r\n\r\n"


class GatewayProtocol(asyncio.Protocol):
    """One connection: parse requests, hand each to the handler, write its answer, keep the connection."""

    def __init__(self, handler: Handler, limits: GatewayLimits) -> None:
        self._handler = handler
        self._limits = limits
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._last_active = 0.0  # loop time of the last answer (or of connecting)
        self._busy = False  # a request is waiting for its answer: never idle then
        self._reset()

    def _reset(self) -> None:
        self._url = b""
        self._content_type = b""
        self._head_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0

    # asyncio.Protocol ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        loop = asyncio.get_running_loop()
        self._last_active = loop.time()
        self._idle = loop.call_later(self._limits.idle_timeout_s, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except _Refused as exc:
            self._finish(exc.status, str(exc).encode(), keep_alive=False)
        except httptools.HttpParserUpgrade:
            self._finish(400, b"protocol upgrades are not supported", keep_alive=False)
        except httptools.HttpParserError as exc:
            refused = exc.__context__  # httptools wraps what our callbacks raise
            if isinstance(refused, _Refused):
                self._finish(refused.status, str(refused).encode(), keep_alive=False)
            else:
                self._finish(400, f"malformed HTTP request: {exc}".encode(), keep_alive=False)

    # httptools callbacks -------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value))
        if name.lower() == b"content-type":
            self._content_type = value
        elif (
            name.lower() == b"content-length" and value.isdigit() and int(value) > self._limits.max_body_bytes
        ):
            raise _Refused(413, f"request body larger than {self._limits.max_body_bytes} bytes")

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self._limits.max_body_bytes:
            raise _Refused(413, f"request body larger than {self._limits.max_body_bytes} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        assert self._transport is not None
        path, _, query = self._url.decode("latin-1").partition("?")
        request = GatewayRequest(
            method=self._parser.get_method().decode("latin-1"),
            path=path,
            query=query,
            content_type=self._content_type.decode("latin-1"),
            body=b"".join(self._body),
        )
        keep_alive = self._parser.should_keep_alive()
        self._busy = True
        self._transport.pause_reading()  # one request at a time: answers stay in order
        answered = False

        def respond(status: int, body: bytes) -> None:
            nonlocal answered
            if not answered:
                answered = True
                self._finish(status, body, keep_alive)

        try:
            self._handler(request, respond)
        except Exception:
            log.exception("gateway handler failed")
            respond(500, b"internal error")

    # Helpers -------------------------------------------------------------------------------------
    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self._limits.max_head_bytes:
            raise _Refused(431, f"request line and headers larger than {self._limits.max_head_bytes} bytes")

    def _finish(self, status: int, body: bytes, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(response_bytes(status, body, keep_alive))
        if keep_alive:
            self._busy = False
            self._last_active = asyncio.get_running_loop().time()
            transport.resume_reading()
        else:
            transport.close()

    def _check_idle(self) -> None:
        # One timer per connection, re-armed only when it fires, instead of cancelling and creating a
        # timer for every request (a measurable share of the gateway's CPU at thousands of requests/s).
        if self._transport is None:
            return
        loop = asyncio.get_running_loop()
        remaining = self._limits.idle_timeout_s - (loop.time() - self._last_active)
        if not self._busy and remaining <= 0:
            self._transport.close()
            return
        delay = self._limits.idle_timeout_s if self._busy else remaining  # busy: waiting for the core
        self._idle = loop.call_later(delay, self._check_idle)


async def start_gateway(
    handler: Handler, host: str, port: int, limits: GatewayLimits | None = None, reuse_port: bool = False
) -> asyncio.Server:
    """Listen on ``host:port``; ``reuse_port`` lets several worker processes share the port."""
    loop = asyncio.get_running_loop()
    chosen = limits or GatewayLimits()
    return await loop.create_server(
        lambda: GatewayProtocol(handler, chosen), host, port, reuse_address=True, reuse_port=reuse_port
    )

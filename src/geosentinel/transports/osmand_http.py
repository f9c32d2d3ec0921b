"""The OsmAnd / Traccar Client HTTP endpoint (default port 5055), as a bare ASGI application.

Deliberately not a FastAPI app: this endpoint takes a request per fix from every phone and bracelet, so
it does the minimum per request — read a bounded body, decode, hand to the pipeline, and answer only once
the reading is committed. Errors are plain text that says what was wrong; bad input is answered 4xx and
never disturbs other requests.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from geosentinel.pipeline.runner import Pipeline, UnknownDevice
from geosentinel.protocols import osmand
from geosentinel.protocols.base import DecodeError

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY_BYTES = 256 * 1024  # a JSON batch of a few hundred locations; anything bigger is not a device


class BodyTooLarge(Exception):
    pass


class OsmAndApp:
    def __init__(self, pipeline: Pipeline, max_body: int = MAX_BODY_BYTES) -> None:
        self._pipeline = pipeline
        self._max_body = max_body
        self.counts: dict[str, int] = {"accepted": 0, "rejected": 0, "unknown_device": 0, "failed": 0}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        status, body = await self._handle(scope, receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        method = scope["method"]
        if method not in ("GET", "POST"):
            return self._reject(405, f"method {method} not allowed: use GET or POST")
        try:
            body = await self._read_body(scope, receive)
        except BodyTooLarge:
            return self._reject(413, f"request body larger than {self._max_body} bytes")
        request = osmand.HttpRequest(
            method=method,
            query=scope.get("query_string", b"").decode("latin-1"),
            content_type=_header(scope, b"content-type"),
            body=body,
        )
        try:
            result = osmand.decode(request)
        except DecodeError as exc:
            return self._reject(400, str(exc))
        try:
            await self._pipeline.submit(result.messages)
        except UnknownDevice as exc:
            self.counts["unknown_device"] += 1
            log.info("osmand: unknown device %s", exc)
            return result.unknown_device_status, f"unknown device {exc}".encode()
        except Exception:
            self.counts["failed"] += 1
            log.exception("osmand: could not store a reading")
            return 503, b"temporarily unable to store the reading; retry later"
        self.counts["accepted"] += len(result.messages)
        return 200, result.reply

    def _reject(self, status: int, message: str) -> tuple[int, bytes]:
        self.counts["rejected"] += 1
        return status, message.encode()

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self._max_body:
            raise BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise BodyTooLarge
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""

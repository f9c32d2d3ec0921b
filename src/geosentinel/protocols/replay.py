"""Replay frames of one connection through a protocol's framer and decoder (the ``decode`` command)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from geosentinel.protocols import osmand, stream_codec
from geosentinel.protocols.base import DecodeError, DecodeResult, Session, message_to_json


def replay(
    protocol: str, frames: Iterable[bytes], now: datetime, unique_id: str | None = None
) -> list[dict[str, Any]]:
    """Decode ``frames`` as consecutive input of one connection; one JSON-ready object per message.

    A frame that carries no message (a login, a time request) still yields an object with its device id
    and reply. Raises :class:`DecodeError` on the first malformed frame.
    """
    if protocol == "osmand":
        return [row for f in frames for row in _row(osmand.decode_text(_text(f)), binary=False)]
    try:
        codec = stream_codec(protocol)
    except KeyError as exc:
        raise DecodeError(f"unknown protocol {protocol!r}") from exc
    session = Session(unique_id=unique_id)
    rows: list[dict[str, Any]] = []
    for chunk in frames:
        framer = codec.framer()
        whole = framer.feed(chunk)
        if not whole:
            raise DecodeError(f"not a complete {protocol} frame")
        for frame in whole:
            result = codec.decode(frame, session, now)
            session = result.session or session
            rows.extend(_row(result, binary=codec.spec.binary))
    return rows


def _text(frame: bytes) -> str:
    try:
        return frame.decode()
    except UnicodeDecodeError as exc:
        raise DecodeError("the request is not UTF-8 text") from exc


def _row(result: DecodeResult, *, binary: bool) -> list[dict[str, Any]]:
    reply = (result.reply.hex() if binary else result.reply.decode("latin-1")) if result.reply else None
    if not result.messages:
        return [{"protocol": None, "device_id": result.device_id, "reply": reply}]
    rows = []
    for message in result.messages:
        row = message_to_json(message)
        row["reply"] = reply
        rows.append(row)
    return rows

"""Device protocols. Pure decoders, one module per protocol; :data:`REGISTRY` lists them explicitly."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from geosentinel.protocols import osmand
from geosentinel.protocols.base import CommandEncoder, Framer, ProtocolSpec, StreamDecoder

STREAM_PROTOCOLS = ("watch", "gt06", "h02")
# Every protocol a device can be registered with ("mqtt": the platform's own JSON payload over MQTT).
DEVICE_PROTOCOLS = ("osmand", *STREAM_PROTOCOLS, "mqtt")


@dataclass(frozen=True, slots=True)
class StreamCodec:
    """Everything a TCP gateway needs for one protocol: framer factory, decoder, command encoder."""

    spec: ProtocolSpec
    framer: Callable[[], Framer]
    decode: StreamDecoder
    encode_command: CommandEncoder


def stream_codec(name: str) -> StreamCodec:
    """The codec of a TCP protocol by name (``KeyError`` for an unknown one)."""
    if name not in STREAM_PROTOCOLS:
        raise KeyError(name)
    try:
        module = importlib.import_module(f"geosentinel.protocols.{name}")
    except ModuleNotFoundError as exc:  # only while a protocol module is being written
        raise KeyError(name) from exc
    framer_class = getattr(module, f"{name.capitalize()}Framer")
    return StreamCodec(module.SPEC, framer_class, module.decode, module.encode_command)


REGISTRY: dict[str, ProtocolSpec] = {spec.name: spec for spec in (osmand.SPEC,)}

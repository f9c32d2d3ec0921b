"""Device protocols. Pure decoders, one module per protocol; the registries list them explicitly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from geosentinel.protocols import gt06, h02, mqtt, osmand, watch
from geosentinel.protocols.base import CommandEncoder, Framer, ProtocolSpec, StreamDecoder


@dataclass(frozen=True, slots=True)
class StreamCodec:
    """Everything a TCP gateway needs for one protocol: framer factory, decoder, command encoder."""

    spec: ProtocolSpec
    framer: Callable[[], Framer]
    decode: StreamDecoder
    encode_command: CommandEncoder


STREAM_CODECS: dict[str, StreamCodec] = {
    codec.spec.name: codec
    for codec in (
        StreamCodec(watch.SPEC, watch.WatchFramer, watch.decode, watch.encode_command),
        StreamCodec(gt06.SPEC, gt06.Gt06Framer, gt06.decode, gt06.encode_command),
        StreamCodec(h02.SPEC, h02.H02Framer, h02.decode, h02.encode_command),
    )
}
STREAM_PROTOCOLS = tuple(STREAM_CODECS)

# Every protocol a device can be registered with ("mqtt": the platform's own JSON payload over MQTT).
REGISTRY: dict[str, ProtocolSpec] = {
    spec.name: spec for spec in (osmand.SPEC, watch.SPEC, gt06.SPEC, h02.SPEC, mqtt.SPEC)
}
DEVICE_PROTOCOLS = tuple(REGISTRY)


def stream_codec(name: str) -> StreamCodec:
    """The codec of a TCP protocol by name (``KeyError`` for an unknown one)."""
    return STREAM_CODECS[name]

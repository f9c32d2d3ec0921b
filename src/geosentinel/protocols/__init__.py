"""Device protocols. Pure decoders, one module per protocol; :data:`REGISTRY` lists them explicitly."""

from __future__ import annotations

from geosentinel.protocols import osmand
from geosentinel.protocols.base import ProtocolSpec

REGISTRY: dict[str, ProtocolSpec] = {spec.name: spec for spec in (osmand.SPEC,)}

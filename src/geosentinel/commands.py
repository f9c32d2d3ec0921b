"""Sending a command to a device: pick its transport, encode it for its protocol, send it now.

Commands go to devices that are connected (TCP: an open connection; MQTT: published on the device's down
topic, which the broker queues for a persistent device session). A set-time-zone command carries the
offset of the wearer's IANA zone at the moment it is sent, so it is right on both sides of a daylight
saving change (Traccar's ``LZ`` sends a fixed configured offset).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from geosentinel.model import Device
from geosentinel.protocols import STREAM_PROTOCOLS, stream_codec
from geosentinel.protocols.base import CommandKind, DeviceCommand, UnsupportedCommand
from geosentinel.transports.mqtt import MqttGateway
from geosentinel.transports.tcp_gateway import TcpGateway


class Delivery(enum.StrEnum):
    SENT = "sent"  # written to the device's connection
    QUEUED = "queued"  # published to the broker, delivered when the device is online


@dataclass(frozen=True, slots=True)
class SentCommand:
    delivery: Delivery
    payload: str  # what went on the wire: text, or hex for binary protocols


class NotConnected(Exception):
    """The device has no open connection to this service (or its transport is not running)."""


def utc_offset_minutes(zone: str, at: datetime) -> int:
    """The UTC offset of an IANA zone at an instant, in minutes (Paris: 60 in winter, 120 in summer)."""
    offset = at.astimezone(ZoneInfo(zone)).utcoffset()
    assert offset is not None
    return int(offset.total_seconds() // 60)


def with_offset(command: DeviceCommand, zone: str, now: datetime) -> DeviceCommand:
    if command.kind is CommandKind.SET_TIMEZONE and command.utc_offset_min is None:
        return replace(command, utc_offset_min=utc_offset_minutes(zone, now))
    return command


def send_command(
    device: Device,
    command: DeviceCommand,
    zone: str,
    now: datetime,
    tcp: Mapping[str, TcpGateway],
    mqtt: MqttGateway | None,
) -> SentCommand:
    """Encode and send; raises :class:`UnsupportedCommand` or :class:`NotConnected`."""
    command = with_offset(command, device.timezone or zone, now)
    if device.protocol in STREAM_PROTOCOLS:
        gateway = tcp.get(device.protocol)
        connection = gateway.connection_of(device.unique_id) if gateway else None
        if connection is None:
            raise NotConnected(f"device {device.unique_id} is not connected")
        codec = stream_codec(device.protocol)
        data = codec.encode_command(command, connection.session, now)
        if not connection.send(data):
            raise NotConnected(f"device {device.unique_id} just disconnected")
        return SentCommand(Delivery.SENT, data.hex() if codec.spec.binary else data.decode("latin-1"))
    if device.protocol == "mqtt":
        if mqtt is None:
            raise NotConnected("this service is not connected to an MQTT broker")
        _command_id, payload = mqtt.publish_command(device.org_id, device.unique_id, command, now)
        return SentCommand(Delivery.QUEUED, payload.decode())
    raise UnsupportedCommand(f"{device.protocol} devices take no commands")

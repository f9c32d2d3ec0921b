"""MQTT transport: consume device messages from a real broker, publish commands back.

The service subscribes to ``geosentinel/+/+/up`` at QoS 1 with a persistent session and acknowledges
each PUBLISH manually, only once its reading is committed (so a crash before the commit makes the broker
deliver it again), and in the order received, as MQTT requires. A reading the pipeline could not store
yet is retried here with backoff while it stays unacknowledged. Malformed payloads, unknown devices and
devices publishing under another organisation's topic are acknowledged (a retry would not fix them),
counted and logged.

paho-mqtt runs its network loop in its own thread; every message is handed to the event loop at once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from geosentinel.pipeline.runner import Outcome, Pipeline
from geosentinel.protocols import mqtt as payloads
from geosentinel.protocols.base import DecodeError, DeviceCommand

log = logging.getLogger(__name__)

RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps our queue while the service restarts
RECEIVE_MAXIMUM = 1000  # unacknowledged messages the broker may send us at once (commits are batched)


@dataclass(slots=True)
class MqttCounters:
    received: int = 0
    stored: int = 0
    malformed: int = 0
    unknown_devices: int = 0
    wrong_org: int = 0
    retries: int = 0


@dataclass(slots=True)
class _Pending:
    mid: int
    done: bool = False


class MqttGateway:
    def __init__(self, url: str, pipeline: Pipeline) -> None:
        """``url``: ``mqtt://[user:password@]host[:port][?client_id=…]``.

        The client id names the broker session that queues messages while the service is down: keep it
        stable across restarts (default ``geosentinel-core``), and distinct per installation.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ValueError(f"MQTT URL {url!r}: expected mqtt://host[:port]")
        client_id = parse_qs(parts.query).get("client_id", ["geosentinel-core"])[0]
        self._host = parts.hostname
        self._port = parts.port or payloads.SPEC.default_port
        self._pipeline = pipeline
        self.counters = MqttCounters()
        self.connected = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._pending: collections.deque[_Pending] = collections.deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5, manual_ack=True
        )
        if parts.username:
            self._client.username_pw_set(parts.username, parts.password)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect

    # lifecycle ----------------------------------------------------------------------------------------
    async def start(self, timeout_s: float = 10.0) -> None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        await asyncio.to_thread(
            self._client.connect, self._host, self._port, 30, clean_start=False, properties=properties
        )
        self._client.loop_start()
        await asyncio.wait_for(self.connected.wait(), timeout_s)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    # paho thread --------------------------------------------------------------------------------------
    def _on_connect(self, client: paho.Client, _userdata: object, _flags: object, reason: object,
                    _properties: object) -> None:  # fmt: skip
        client.subscribe(payloads.UP_FILTER, qos=1)
        self._loop.call_soon_threadsafe(self.connected.set)
        log.info("MQTT connected to %s:%d (%s)", self._host, self._port, reason)

    def _on_disconnect(self, _client: paho.Client, _userdata: object, _flags: object, reason: object,
                       _properties: object) -> None:  # fmt: skip
        self._loop.call_soon_threadsafe(self.connected.clear)
        log.warning("MQTT disconnected (%s); paho reconnects", reason)

    def _on_message(self, _client: paho.Client, _userdata: object, message: paho.MQTTMessage) -> None:
        self._loop.call_soon_threadsafe(
            self._received, message.topic, bytes(message.payload), message.mid, message.qos
        )

    # event loop ---------------------------------------------------------------------------------------
    def _received(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self.counters.received += 1
        pending = _Pending(mid if qos else -1)
        self._pending.append(pending)
        task = asyncio.create_task(self._handle(topic, payload, pending))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, topic: str, payload: bytes, pending: _Pending) -> None:
        try:
            org_id, unique_id = payloads.parse_topic(topic)
            result = payloads.decode_payload(unique_id, payload)
        except DecodeError as exc:
            self.counters.malformed += 1
            log.info("MQTT %s: %s", topic, exc)
            self._settle(pending)
            return
        device = await self._pipeline.directory.lookup(unique_id, self._pipeline.clock.now())
        if device is None or device.org_id != org_id:
            if device is None:
                self.counters.unknown_devices += 1
            else:
                self.counters.wrong_org += 1
            log.info("MQTT %s: no such device in organisation %s; dropped", topic, org_id)
            self._settle(pending)
            return
        attempt = 0
        while (outcome := await self._pipeline.offer(result.messages)) in (Outcome.FAILED, Outcome.BUSY):
            # Unacknowledged meanwhile: if the service dies now, the broker delivers it again. Later
            # messages wait for this one's PUBACK, so a store outage holds the stream back at the broker.
            self.counters.retries += 1
            if attempt == 0:
                log.warning("MQTT %s: not stored (%s); retrying", topic, outcome.name)
            await asyncio.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])
            attempt += 1
        if outcome is Outcome.STORED:
            self.counters.stored += 1
        self._settle(pending)

    def _settle(self, pending: _Pending) -> None:
        pending.done = True
        # PUBACKs go out in the order the PUBLISHes came in (MQTT 3.1.1 §4.6, MQTT 5 §4.6).
        while self._pending and self._pending[0].done:
            head = self._pending.popleft()
            if head.mid >= 0:
                self._client.ack(head.mid, 1)

    # commands -----------------------------------------------------------------------------------------
    def publish_command(
        self, org_id: str, unique_id: str, command: DeviceCommand, now: datetime
    ) -> tuple[str, bytes]:
        """Publish a command on the device's down topic (QoS 1); returns its id and payload."""
        command_id = uuid.uuid4().hex
        payload = payloads.encode_command(command, command_id, now)
        self._client.publish(payloads.down_topic(org_id, unique_id), payload, qos=1)
        return command_id, payload

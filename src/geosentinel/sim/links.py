"""The network side of a simulated device: its TCP connection, or its share of an MQTT client.

A link takes a bracelet's queue of reports and delivers it **in order, at least once**: a report counts as
delivered once the service (or the MQTT broker) acknowledged it, except for the frames a real device
expects no reply to (the watch's ``UD_LTE``), which count as delivered once written. What was sent but
not acknowledged when the connection breaks is sent again on the next connection, so the service may
store a report twice (as with a real device), but never loses or reorders one.

:class:`TcpLink` is one device's TCP connection, as real devices keep one: connect, log in when the
protocol has a login (GT06) and wait for its ack, send the heartbeat first (watch ``LK``, GT06 0x13, H02
``HTBT``) and again every ``heartbeat_interval_s`` simulated seconds, then the reports. Up to ``window``
acknowledged frames are in flight at once; replies come back in frame order. A frame without a reply is
only written when nothing is awaiting an ack, so a reconnection never makes it overtake an earlier frame.
Each connection is an ``asyncio.Protocol`` (no task, no stream buffers): a few kilobytes per device.

:class:`MqttHub` is one shared paho-mqtt client (its own network thread) publishing every device's
reports on the device's own topic at QoS 1; :class:`MqttLink` is one device's view of it. paho keeps a
QoS 1 message until its PUBACK and re-sends it after a reconnection, so a retry waits for the same
message instead of publishing a copy.

Encoding is not done here: :mod:`geosentinel.sim.speakers` turns reports into bytes.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from geosentinel.protocols.base import DecodeError
from geosentinel.protocols.mqtt import SPEC as MQTT_SPEC
from geosentinel.sim.bracelet import Report
from geosentinel.sim.speakers import Frame, TcpSpeaker, mqtt_payload, mqtt_topic

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 8  # acknowledged frames in flight per connection (the service reads 16 before pausing)


class Counters(Protocol):
    """Delivery counters the links update (``FleetStats`` has them)."""

    sent: int  # attempts: a report written (TCP) or waited for (MQTT)
    ok: int
    failed: int
    rejected: int
    pending: int
    connections: int


@dataclass(frozen=True, slots=True)
class LinkOptions:
    timeout_s: float = 10.0  # connect timeout, and the longest wait for an expected reply
    heartbeat_interval_s: float = 300.0  # simulated seconds between two heartbeats
    window: int = DEFAULT_WINDOW


class LinkBroken(Exception):
    """The connection failed: what was not acknowledged goes back to the queue."""


# -- TCP -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _InFlight:
    ack: str
    report: Report | None  # None: a login or a heartbeat


class _Connection(asyncio.Protocol):
    """One TCP connection of a link; callbacks of a connection the link has dropped are ignored."""

    def __init__(self, link: TcpLink) -> None:
        self._link = link
        self._framer = link.speaker.framer()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.paused = False  # the kernel's send buffer is full: write no more until it drains

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._framer.feed(data)
        except DecodeError as exc:  # a reply larger than any reply: not our service
            log.warning("%s: unreadable reply stream: %s", self._link.unique_id, exc)
            self.close()
            return
        for frame in frames:
            self._link.on_reply(self, frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._link.on_change(self)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._link.on_change(self)

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise LinkBroken("connection closed")
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class TcpLink:
    """One device's TCP connection to the service. Only the bracelet's own task calls :meth:`deliver`."""

    def __init__(
        self,
        unique_id: str,
        speaker: TcpSpeaker,
        address: tuple[str, int],
        options: LinkOptions,
        counters: Counters,
        connect_slots: asyncio.Semaphore,
    ) -> None:
        speaker.check_id(unique_id)
        self.unique_id = unique_id
        self.speaker = speaker
        self._address = address
        self._options = options
        self._counters = counters
        self._slots = connect_slots
        self._conn: _Connection | None = None
        self._in_flight: deque[_InFlight] = deque()
        self._wake = asyncio.Event()
        self._serial = 1
        self._last_heartbeat: datetime | None = None
        self._heartbeat_every = timedelta(seconds=options.heartbeat_interval_s)
        self._answered = False  # the current connection got at least one ack
        self._warned = False

    async def deliver(self, queue: deque[Report]) -> bool:
        """Send the queue in order; True once it is empty, False after a failure (retry after a backoff).

        Reports leave the queue as they are acknowledged (or written, when no reply is expected); on a
        failure the unacknowledged ones go back to its head.
        """
        if not queue:
            return True
        if self._conn is not None and self._conn.closed:
            self.close()  # the service hung up meanwhile (idle timeout): just reconnect
        try:
            if self._conn is None:
                await self._connect()
            while queue or self._in_flight:
                self._fill(queue)
                if self._in_flight or queue:
                    await self._wait()  # for a reply, or for the send buffer to drain
            return True
        except LinkBroken as exc:
            self._drop(queue, str(exc))
            return False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- connection callbacks -------------------------------------------------------------------------

    def on_reply(self, conn: _Connection, frame: bytes) -> None:
        if conn is not self._conn:
            return
        key = self.speaker.reply_key(self.unique_id, frame)
        if key is None:
            return  # a command, or something else we do not answer
        index = next((i for i, entry in enumerate(self._in_flight) if entry.ack == key), -1)
        if index < 0:
            return
        self._answered = True
        counters = self._counters
        # Replies come in frame order: frames before the acknowledged one were refused (undecodable).
        for _ in range(index):
            skipped = self._in_flight.popleft()
            if skipped.report is not None:
                counters.rejected += 1
                counters.pending -= 1
                log.debug("%s: no reply to a report at %s", self.unique_id, skipped.report.time)
        entry = self._in_flight.popleft()
        if entry.report is not None:
            counters.ok += 1
            counters.pending -= 1
        self._wake.set()

    def on_change(self, conn: _Connection) -> None:
        """The connection closed, or can be written to again."""
        if conn is self._conn:
            self._wake.set()

    # -- internals ------------------------------------------------------------------------------------

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self._address
        async with self._slots:
            try:
                _, conn = await asyncio.wait_for(
                    loop.create_connection(lambda: _Connection(self), host, port), self._options.timeout_s
                )
            except (OSError, TimeoutError) as exc:
                raise LinkBroken(f"cannot connect to {host}:{port}: {exc!r}") from None
        self._conn = conn
        self._answered = False
        self._counters.connections += 1
        self._last_heartbeat = None  # a new connection starts with a heartbeat
        login = self.speaker.login(self.unique_id, self._serial)
        if login is not None:
            self._write(login, None)
            while self._in_flight:
                await self._wait()

    def _fill(self, queue: deque[Report]) -> None:
        """Write what the window allows, heartbeats included."""
        counters = self._counters
        assert self._conn is not None
        while queue and len(self._in_flight) < self._options.window and not self._conn.paused:
            report = queue[0]
            if self._last_heartbeat is None or report.time - self._last_heartbeat >= self._heartbeat_every:
                self._write(self.speaker.heartbeat(self.unique_id, report.battery_pct, self._serial), None)
                self._last_heartbeat = report.time
                continue
            frame = self.speaker.report(report, self._serial)
            if frame.ack is None:
                if self._in_flight:
                    return  # written only once nothing is awaiting an ack, so it can never overtake
                self._write(frame, report)
                queue.popleft()
                counters.sent += 1
                counters.ok += 1
                counters.pending -= 1
            else:
                self._write(frame, report)
                queue.popleft()
                counters.sent += 1

    def _write(self, frame: Frame, report: Report | None) -> None:
        assert self._conn is not None
        self._conn.write(frame.data)
        self._serial = self._serial % 0xFFFF + 1
        if frame.ack is not None:
            self._in_flight.append(_InFlight(frame.ack, report))

    async def _wait(self) -> None:
        """Wait for the next reply (or a drained send buffer); LinkBroken when the connection drops or
        stays silent too long."""
        conn = self._conn
        if conn is None or conn.closed:
            raise LinkBroken("connection closed by the service")
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), self._options.timeout_s)
        except TimeoutError:
            raise LinkBroken(f"no reply within {self._options.timeout_s} s") from None
        if conn.closed and self._in_flight:
            raise LinkBroken("connection closed by the service")

    def _drop(self, queue: deque[Report], why: str) -> None:
        reports = [entry.report for entry in self._in_flight if entry.report is not None]
        self._in_flight.clear()
        self._counters.failed += len(reports)
        queue.extendleft(reversed(reports))
        if self._conn is not None and not self._answered and not self._warned:
            # The service hangs up on unknown devices without a word: say so once per device.
            self._warned = True
            log.warning("%s %s: %s before any reply (is the device registered?); retrying",
                        self.speaker.name, self.unique_id, why)  # fmt: skip
        else:
            log.debug("%s %s: %s; retrying", self.speaker.name, self.unique_id, why)
        self.close()


# -- MQTT ----------------------------------------------------------------------------------------------


def parse_mqtt_url(url: str) -> tuple[str, int, str | None, str | None]:
    """(host, port, user, password) of ``mqtt://[user:password@]host[:port]``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise ValueError(f"MQTT URL {url!r}: expected mqtt://[user:password@]host[:port]")
    return parts.hostname, parts.port or MQTT_SPEC.default_port, parts.username, parts.password


class MqttHub:
    """One MQTT client shared by the whole fleet, each device publishing on its own topic.

    paho runs its network loop in its own thread; its callbacks are handed to the event loop at once.
    """

    def __init__(self, url: str, org_id: str, options: LinkOptions, counters: Counters, max_delay_s: float):
        self._host, self._port, user, password = parse_mqtt_url(url)
        self.org_id = org_id
        self.options = options
        self.counters = counters
        self.connected = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._acked: set[int] = set()  # PUBACKs that came while nobody waited (after a timeout)
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"geosentinel-sim-{uuid.uuid4().hex[:12]}",
            protocol=paho.MQTTv311,
            clean_session=True,
        )
        if user:
            self._client.username_pw_set(user, password)
        self._client.max_inflight_messages_set(0)  # no cap: each device has at most one message out
        self._client.reconnect_delay_set(1, max(1, round(max_delay_s)))
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

    async def start(self) -> None:
        """Connect in the background; a broker that is down is retried by paho while devices back off."""
        self._client.connect_async(self._host, self._port, keepalive=30)
        self._client.loop_start()
        try:
            await asyncio.wait_for(self.connected.wait(), self.options.timeout_s)
        except TimeoutError:
            log.warning("MQTT broker %s:%d not reachable yet; retrying", self._host, self._port)

    async def close(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self._down()

    def link(self, unique_id: str) -> MqttLink:
        return MqttLink(self, unique_id)

    def publish(self, topic: str, payload: bytes) -> paho.MQTTMessageInfo:
        """Hand a QoS 1 message to paho (which keeps it until its PUBACK, across reconnections)."""
        info = self._client.publish(topic, payload, qos=1)
        self._acked.discard(info.mid)  # a mid is reused once its previous message was acknowledged
        return info

    async def acknowledged(self, info: paho.MQTTMessageInfo) -> bool:
        """Wait up to ``timeout_s`` for the PUBACK; False on a timeout or a disconnection."""
        mid = info.mid
        if mid in self._acked:
            self._acked.discard(mid)
            return True
        future = self._loop.create_future()
        self._waiting[mid] = future
        try:
            return await asyncio.wait_for(future, self.options.timeout_s)
        except TimeoutError:
            return False
        finally:
            if self._waiting.get(mid) is future:
                del self._waiting[mid]

    # paho thread -------------------------------------------------------------------------------------
    def _call(self, callback: Callable[..., None], *args: object) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the event loop is closed: the fleet is over
            pass

    def _on_connect(self, client: paho.Client, userdata: object, flags: object, reason: object,
                    properties: object) -> None:  # fmt: skip
        if getattr(reason, "is_failure", False):
            log.warning("MQTT broker refused the connection: %s", reason)
            return
        self._call(self._up)

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: object, reason: object,
                       properties: object) -> None:  # fmt: skip
        self._call(self._down)

    def _on_publish(self, client: paho.Client, userdata: object, mid: int, reason: object,
                    properties: object) -> None:  # fmt: skip
        self._call(self._puback, mid)

    # event loop --------------------------------------------------------------------------------------
    def _up(self) -> None:
        self.counters.connections += 1
        self.connected.set()

    def _down(self) -> None:
        self.connected.clear()
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_result(False)

    def _puback(self, mid: int) -> None:
        future = self._waiting.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(True)
        else:
            self._acked.add(mid)


class MqttLink:
    """One device on the shared client: one message out at a time, so its reports stay in order."""

    def __init__(self, hub: MqttHub, unique_id: str) -> None:
        self._hub = hub
        self._topic = mqtt_topic(hub.org_id, unique_id)
        self._out: tuple[Report, paho.MQTTMessageInfo] | None = None  # published, not acknowledged yet

    async def deliver(self, queue: deque[Report]) -> bool:
        hub, counters = self._hub, self._hub.counters
        while queue:
            report = queue[0]
            if self._out is None or self._out[0] is not report:
                if not hub.connected.is_set():
                    try:
                        await asyncio.wait_for(hub.connected.wait(), hub.options.timeout_s)
                    except TimeoutError:
                        return False
                self._out = (report, hub.publish(self._topic, mqtt_payload(report)))
            counters.sent += 1
            if not await hub.acknowledged(self._out[1]):
                counters.failed += 1
                return False
            self._out = None
            queue.popleft()
            counters.ok += 1
            counters.pending -= 1
        return True

    def close(self) -> None:
        pass

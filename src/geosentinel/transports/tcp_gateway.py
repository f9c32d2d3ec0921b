"""TCP gateways for the stream protocols (watch, GT06, H02): one listener per protocol.

Each connection is an ``asyncio.Protocol`` (no task, no stream reader: tens of thousands of idle
bracelets must cost a few kilobytes each). Bytes go through the protocol's framer, each frame through its
pure decoder with the connection's session; messages go to the pipeline, and the frame's reply is written
only once its messages are committed, in frame order. A frame that fails to decode is counted and skipped:
the frames around it are unaffected. An unknown device is logged, counted and disconnected; nothing of it
is stored.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from geosentinel.clock import Clock
from geosentinel.model import DeviceMessage
from geosentinel.pipeline.runner import Outcome
from geosentinel.protocols import StreamCodec
from geosentinel.protocols.base import DecodeError, DecodeResult, FrameTooLarge, Session

log = logging.getLogger(__name__)

OnOutcome = Callable[[Outcome], None]
THROTTLE_POLL_S = 0.02
# Throttled connections resumed per event-loop turn. Each resumed connection reads its whole backlog at
# once: resuming 10,000 together read 190,000 frames in one turn, blocked the worker for 5 s and left the
# core idle meanwhile, then flooded it (measured with 10,000 watches; see bench/NOTES.md).
RESUME_SLICE = 200
RESUME_PAUSE_S = 0.001


class Sink(Protocol):
    """Where a gateway hands its work: the pipeline (see :class:`geosentinel.pipeline.runner.Pipeline`)."""

    def enqueue(
        self, messages: Sequence[DeviceMessage], on_done: OnOutcome, may_refuse: bool = True
    ) -> None: ...

    def saturated(self) -> bool: ...

    def recognise(self, unique_id: str, on_done: OnOutcome) -> None: ...


@dataclass(frozen=True, slots=True)
class TcpLimits:
    max_frame_bytes: int = 64 * 1024
    # Garbage tolerated on one connection before it is cut off (bytes that start no frame).
    max_skipped_bytes: int = 256 * 1024
    # Senior watches send LK every few minutes; GT06 heartbeats every 3 min by default.
    idle_timeout_s: float = 600.0
    # Carrier-grade NAT puts many devices behind one address: generous, but bounded.
    max_connections_per_address: int = 5000
    # Reads (each one frame or more) awaiting their commit before reading from the connection pauses.
    max_pending_frames: int = 16


@dataclass(slots=True)
class GatewayCounters:
    connections: int = 0
    frames: int = 0
    decode_errors: int = 0
    unknown_devices: int = 0
    refused_connections: int = 0
    cut_off: int = 0
    failed: int = 0
    throttled: int = 0


class _Pending:
    """The frames of one read awaiting their commit: their replies (joined, in frame order), the number
    of sink calls still to answer, and the first outcome that was not STORED."""

    __slots__ = ("connection", "outcome", "remaining", "reply")

    def __init__(self, connection: DeviceConnection, reply: bytes, calls: int) -> None:
        self.connection = connection
        self.reply = reply
        self.remaining = calls
        self.outcome = Outcome.STORED

    def settle(self, outcome: Outcome) -> None:
        if outcome is not Outcome.STORED and self.outcome is Outcome.STORED:
            self.outcome = outcome
        self.remaining -= 1
        if self.remaining == 0:
            self.connection._flush()


@dataclass(slots=True)
class _Registry:
    """The open connections of one gateway, by peer address and by device (for commands)."""

    by_address: collections.Counter[str] = field(default_factory=collections.Counter)
    by_device: dict[str, DeviceConnection] = field(default_factory=dict)
    all: set[DeviceConnection] = field(default_factory=set)


class DeviceConnection(asyncio.Protocol):
    """One device's TCP connection."""

    # Ten thousand of these per process: no instance dict, and a list for the few reads awaiting their
    # commit (an empty deque takes ~600 bytes, an empty list 56).
    __slots__ = ("_address", "_framer", "_gw", "_paused", "_pending", "_transport", "last_seen", "session")

    def __init__(self, gateway: TcpGateway) -> None:
        self._gw = gateway
        self._framer = gateway.codec.framer()
        self.session = Session()
        self._transport: asyncio.Transport | None = None
        self._address = ""
        self._pending: list[_Pending] = []  # at most max_pending_frames
        self._paused = False
        self.last_seen = time.monotonic()

    # asyncio.Protocol -------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if peer else "?"
        registry = self._gw.registry
        if registry.by_address[self._address] >= self._gw.limits.max_connections_per_address:
            self._gw.counters.refused_connections += 1
            transport.close()
            return
        registry.by_address[self._address] += 1
        registry.all.add(self)
        self._gw.counters.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        registry = self._gw.registry
        if self in registry.all:
            registry.all.discard(self)
            registry.by_address[self._address] -= 1
            if registry.by_address[self._address] <= 0:
                del registry.by_address[self._address]
        unique_id = self.session.unique_id
        if unique_id is not None and registry.by_device.get(unique_id) is self:
            del registry.by_device[unique_id]
            if self._gw.on_session is not None:
                self._gw.on_session(unique_id, None)
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self.last_seen = time.monotonic()
        gw = self._gw
        try:
            frames = self._framer.feed(data)
        except FrameTooLarge as exc:
            self._cut_off(str(exc))
            return
        if self._framer.skipped > gw.limits.max_skipped_bytes:
            self._cut_off(f"{self._framer.skipped} bytes of garbage")
            return
        if frames:
            self._handle(frames)
        if self._transport is not None and gw.sink.saturated():
            # Most frames of these protocols are never acknowledged, so a device would not resend what
            # we dropped: keep what was read, and stop reading until the pipeline has room.
            gw.throttle(self)

    # frames -----------------------------------------------------------------------------------------
    def _handle(self, frames: list[bytes]) -> None:
        """Decode the frames of one read and hand them to the sink in one call (usually one frame: a
        device sends one at a time; a burst after a reconnection comes in one read)."""
        gw = self._gw
        gw.counters.frames += len(frames)
        decode = gw.codec.decode
        now = gw.clock.now()
        messages: list[DeviceMessage] = []
        replies: list[bytes] = []
        silent: list[str] = []  # devices of frames without messages: only their registration is checked
        for frame in frames:
            try:
                result = decode(frame, self.session, now)
            except DecodeError as exc:
                gw.counters.decode_errors += 1
                log.debug("%s: undecodable frame from %s: %s", gw.codec.spec.name, self._address, exc)
                continue
            if result.session is not None or self.session.unique_id is None:
                self._adopt(result)
            device_id = result.device_id or self.session.unique_id
            if device_id is None:
                continue  # before login: nothing to attribute the frame to (GT06 devices then log in)
            replies.append(result.reply)
            if result.messages:
                messages += result.messages
            elif device_id not in silent:
                silent.append(device_id)
        if not replies:
            return
        if messages and silent:  # a device whose messages are enqueued is checked by the enqueue itself
            ids = {m.unique_id for m in messages}
            silent = [d for d in silent if d not in ids]
        pending = _Pending(
            self, replies[0] if len(replies) == 1 else b"".join(replies), len(silent) + bool(messages)
        )
        self._pending.append(pending)
        if messages:
            gw.sink.enqueue(messages, pending.settle, may_refuse=False)
        for device_id in silent:
            gw.sink.recognise(device_id, pending.settle)
        if len(self._pending) >= gw.limits.max_pending_frames and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def _adopt(self, result: DecodeResult) -> None:
        new = result.session if result.session != self.session else None
        if new is None and self.session.unique_id is None and result.device_id is not None:
            new = dataclasses.replace(self.session, unique_id=result.device_id)  # ids in every frame
        if new is None:
            return
        self.session = new
        if new.unique_id is not None:
            self._gw.registry.by_device[new.unique_id] = self
            if self._gw.on_session is not None:
                self._gw.on_session(new.unique_id, new)

    def _flush(self) -> None:
        # Replies leave in frame order: a later read committed first waits for the earlier ones.
        while self._pending and self._pending[0].remaining == 0:
            pending = self._pending.pop(0)
            if self._transport is None:
                continue
            if pending.outcome is Outcome.STORED:
                if pending.reply:
                    self._transport.write(pending.reply)
            elif pending.outcome is Outcome.UNKNOWN_DEVICE:
                self._gw.counters.unknown_devices += 1
                log.info("%s: unknown device %s from %s; disconnected", self._gw.codec.spec.name,
                         self.session.unique_id, self._address)  # fmt: skip
                self._transport.close()
            else:
                # Not stored: no reply, and the device reconnects and sends again.
                self._gw.counters.failed += 1
                self._transport.close()
        if (
            self._paused
            and self._transport is not None
            and len(self._pending) < self._gw.limits.max_pending_frames
        ):
            self._paused = False
            self._transport.resume_reading()

    def pause(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume(self) -> None:
        if self._transport is not None and not self._paused and not self._transport.is_closing():
            self._transport.resume_reading()

    def _cut_off(self, why: str) -> None:
        self._gw.counters.cut_off += 1
        log.warning("%s: cutting off %s: %s", self._gw.codec.spec.name, self._address, why)
        if self._transport is not None:
            self._transport.abort()

    # commands ---------------------------------------------------------------------------------------
    def send(self, data: bytes) -> bool:
        if self._transport is None or self._transport.is_closing():
            return False
        self._transport.write(data)
        return True

    def close_if_idle(self, now: float, idle_s: float) -> None:
        if now - self.last_seen > idle_s:
            self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class TcpGateway:
    """A listener for one stream protocol."""

    def __init__(self, codec: StreamCodec, sink: Sink, clock: Clock, limits: TcpLimits | None = None) -> None:
        self.codec = codec
        self.sink = sink
        self.clock = clock
        self.limits = limits or TcpLimits()
        self.counters = GatewayCounters()
        self.registry = _Registry()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        # Throttled connections in the order they were paused (a dict as an ordered set): the first
        # paused is the first resumed, so no device waits behind others for ever.
        self._throttled: dict[DeviceConnection, None] = {}
        self._resumer: asyncio.Task[None] | None = None
        # Told when a device's connection is registered (with its session) or gone (None): a gateway
        # worker mirrors its connections in the core process, which sends the commands.
        self.on_session: Callable[[str, Session | None], None] | None = None

    async def start(self, host: str, port: int, reuse_port: bool = False) -> None:
        """Listen on ``host:port``; ``reuse_port`` lets several gateway workers share the port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: DeviceConnection(self), host, port, backlog=4096, reuse_port=reuse_port
        )
        self._sweeper = asyncio.create_task(self._sweep_idle())

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def throttle(self, connection: DeviceConnection) -> None:
        """Stop reading from ``connection`` until the pipeline is no longer saturated."""
        connection.pause()
        self.counters.throttled += 1
        self._throttled[connection] = None
        if self._resumer is None or self._resumer.done():
            self._resumer = asyncio.create_task(self._resume_when_drained())

    async def _resume_when_drained(self) -> None:
        """Resume throttled connections a slice per event-loop turn while the sink has room."""
        throttled = self._throttled
        while throttled:
            while self.sink.saturated():
                await asyncio.sleep(THROTTLE_POLL_S)
            for connection in list(itertools.islice(throttled, RESUME_SLICE)):
                del throttled[connection]
                connection.resume()
            # A timer, not sleep(0): the loop then polls the sockets, so the resumed connections read (and
            # may be throttled again) before the next slice is resumed.
            await asyncio.sleep(RESUME_PAUSE_S)

    def connection_of(self, unique_id: str) -> DeviceConnection | None:
        return self.registry.by_device.get(unique_id)

    async def _sweep_idle(self) -> None:
        # One sweep over all connections now and then costs less than a timer per connection per frame.
        period = max(self.limits.idle_timeout_s / 4, 0.05)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for connection in list(self.registry.all):
                connection.close_if_idle(now, self.limits.idle_timeout_s)

    async def close(self) -> None:
        for task in (self._sweeper, self._resumer):
            if task is not None:
                task.cancel()
        if self._server is not None:
            self._server.close()
            for connection in list(self.registry.all):
                connection.close()
            await self._server.wait_closed()

"""The link between device-gateway worker processes and the core process (pipeline + single writer).

Gateway workers parse HTTP, hold the TCP device connections and decode, on their own cores; the core
keeps what must stay single: per-device ordered processing and the one store writer. A worker sends
decoded messages with a request id; the core answers each id once the messages are committed (or
refused), and only then does the worker reply to the device — the acknowledgement rule holds across the
process boundary.

Besides requests and outcomes the link carries what commands and back-pressure need: a worker tells the
core which devices it holds a TCP connection of (with their sessions, which command encoders need), the
core sends command bytes to the worker holding the device, and every answer frame says whether the
pipeline is saturated (stream gateways then stop reading, as they do in the core).

Frames are a 4-byte big-endian length and a MessagePack body (msgspec, decoded straight into typed
``DeviceMessage`` structs: about a quarter of pickle's cost per message), over a Unix socket in a private
(0700) folder: both ends are our own processes, never the network. Everything queued during one
event-loop turn leaves in one frame.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

import msgspec

from geosentinel.model import DeviceMessage
from geosentinel.pipeline.runner import OnDone, Outcome
from geosentinel.protocols.base import Session

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 64 * 1024 * 1024
# Messages a worker may have awaiting the core before its stream gateways count as saturated: what the
# core's partitions hold when full (4 × 4,000), so one worker alone cannot queue beyond that.
MAX_IN_FLIGHT_MESSAGES = 16_000
# A frame leaves early once it holds this many messages. When stream gateways resume reading after
# saturation, one event-loop turn can read the backlog of 10,000 connections at once: left in one frame,
# that exceeded MAX_FRAME_BYTES (77 MB measured) and the link was dropped.
MAX_MESSAGES_PER_FRAME = 2_000

T = TypeVar("T")
_OUTCOMES = tuple(Outcome)  # by value: cheaper than calling the enum on every answer


class Up(msgspec.Struct, array_like=True, gc=False):
    """Worker → core.

    ``requests``: (request id, messages, device id to recognise or "", may refuse). A request without
    messages asks whether the device is registered (a login or heartbeat frame).
    ``sessions``: (protocol, device id, its session or None when its connection is gone).
    """

    requests: list[tuple[int, list[DeviceMessage], str, bool]] = msgspec.field(default_factory=list)
    sessions: list[tuple[str, str, Session | None]] = msgspec.field(default_factory=list)


class Down(msgspec.Struct, array_like=True, gc=False):
    """Core → worker: outcomes (request id, Outcome), whether the pipeline is saturated, and commands
    to write to device connections (protocol, device id, bytes)."""

    outcomes: list[tuple[int, int]] = msgspec.field(default_factory=list)
    saturated: bool = False
    sends: list[tuple[str, str, bytes]] = msgspec.field(default_factory=list)


class FrameReader(Generic[T]):
    """Reads length-prefixed MessagePack frames of one type from a stream."""

    def __init__(self, reader: asyncio.StreamReader, frame_type: type[T]) -> None:
        self._reader = reader
        self._decoder = msgspec.msgpack.Decoder(frame_type)

    async def read(self) -> T:
        (size,) = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
        if size > MAX_FRAME_BYTES:
            raise ValueError(f"link frame of {size} bytes is too large")
        return self._decoder.decode(await self._reader.readexactly(size))


class FrameWriter(Generic[T]):
    """Coalesces what is queued during one event-loop turn into a single frame.

    ``frame()`` is the frame being filled (a new one is started, and its sending scheduled, when none
    is); ``finish`` completes it just before it is encoded.
    """

    _encoder = msgspec.msgpack.Encoder()

    def __init__(
        self, writer: asyncio.StreamWriter, new: Callable[[], T], finish: Callable[[T], None] | None = None
    ) -> None:
        self._writer = writer
        self._new = new
        self._finish = finish
        self._frame: T | None = None

    def flush(self) -> None:
        """Send the frame being filled now (the next ``frame()`` starts another)."""
        self._flush()

    def frame(self) -> T:
        frame = self._frame
        if frame is None:
            frame = self._frame = self._new()
            asyncio.get_running_loop().call_soon(self._flush)
        return frame

    def _flush(self) -> None:
        frame, self._frame = self._frame, None
        if frame is None or self._writer.is_closing():
            return
        if self._finish is not None:
            self._finish(frame)
        payload = self._encoder.encode(frame)
        self._writer.write(_HEADER.pack(len(payload)) + payload)


# -- core side ---------------------------------------------------------------------------------------


class RemoteConnection:
    """A device's TCP connection held by a gateway worker, as commands see it (``session``, ``send``)."""

    __slots__ = ("_peer", "protocol", "session", "unique_id")

    def __init__(self, peer: _Peer, protocol: str, unique_id: str, session: Session) -> None:
        self._peer = peer
        self.protocol = protocol
        self.unique_id = unique_id
        self.session = session

    def send(self, data: bytes) -> bool:
        """Hand ``data`` to the worker, which writes it to the device (if it is still connected then)."""
        if self._peer.closed:
            return False
        self._peer.out.frame().sends.append((self.protocol, self.unique_id, data))
        return True


class RemoteGateway:
    """The devices connected to one TCP protocol's listeners in the workers (what commands look up)."""

    def __init__(self) -> None:
        self._by_device: dict[str, RemoteConnection] = {}

    def connection_of(self, unique_id: str) -> RemoteConnection | None:
        return self._by_device.get(unique_id)

    def _update(self, peer: _Peer, protocol: str, unique_id: str, session: Session | None) -> None:
        current = self._by_device.get(unique_id)
        if session is not None:
            self._by_device[unique_id] = RemoteConnection(peer, protocol, unique_id, session)
        elif current is not None and current._peer is peer:
            # Only the worker holding the device's latest connection removes it: a device that
            # reconnected to another worker must not be forgotten when its old connection closes.
            del self._by_device[unique_id]

    def _drop(self, peer: _Peer) -> None:
        for unique_id in [u for u, c in self._by_device.items() if c._peer is peer]:
            del self._by_device[unique_id]


class _Peer:
    """One connected worker, on the core side."""

    __slots__ = ("closed", "out")

    def __init__(self, out: FrameWriter[Down]) -> None:
        self.out = out
        self.closed = False


class Core(Protocol):
    """What the link needs of the core's pipeline (:class:`geosentinel.pipeline.runner.Pipeline`)."""

    def enqueue(
        self, messages: Sequence[DeviceMessage], on_done: OnDone, may_refuse: bool = True
    ) -> None: ...

    def recognise(self, unique_id: str, on_done: OnDone) -> None: ...

    def saturated(self) -> bool: ...


class LinkServer:
    """Core side: feeds the pipeline with what the workers decoded, answers when committed."""

    def __init__(self, pipeline: Core, protocols: Sequence[str] = ()) -> None:
        self._pipeline = pipeline
        self.connected = 0
        # What commands use in place of in-process TCP gateways (see commands.send_command).
        self.gateways: dict[str, RemoteGateway] = {name: RemoteGateway() for name in protocols}

    async def start(self, path: str) -> asyncio.Server:
        return await asyncio.start_unix_server(self._serve, path, limit=MAX_FRAME_BYTES)

    def _finish(self, frame: Down) -> None:
        frame.saturated = self._pipeline.saturated()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _Peer(FrameWriter(writer, Down, self._finish))
        frames = FrameReader(reader, Up)
        enqueue, recognise = self._pipeline.enqueue, self._pipeline.recognise
        ready = False
        try:
            while True:
                up = await frames.read()
                if not ready:  # a worker's first frame says it listens on every port (see LinkClient.ready)
                    ready = True
                    self.connected += 1
                for protocol, unique_id, session in up.sessions:
                    gateway = self.gateways.get(protocol)
                    if gateway is not None:
                        gateway._update(peer, protocol, unique_id, session)
                for request_id, messages, device_id, may_refuse in up.requests:
                    answer = functools.partial(_answer, peer.out, request_id)
                    if messages:
                        enqueue(messages, answer, may_refuse)
                    else:
                        recognise(device_id, answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the worker went away; its in-flight requests were never acknowledged
        except (msgspec.DecodeError, ValueError):
            # Only a bug can get here (both ends are ours): drop the worker, which reconnects; what it
            # had in flight was never acknowledged, so its devices resend.
            log.exception("unreadable frame from a gateway worker: link closed")
        finally:
            self.connected -= ready
            peer.closed = True
            for gateway in self.gateways.values():
                gateway._drop(peer)
            writer.close()


def _answer(out: FrameWriter[Down], request_id: int, outcome: Outcome) -> None:
    out.frame().outcomes.append((request_id, outcome))


# -- worker side -------------------------------------------------------------------------------------


class LinkClient:
    """Worker side: submit messages to the core and get the outcome; the sink of the worker's gateways."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._out = FrameWriter(writer, Up)
        self._writer = writer
        self._waiting: dict[int, tuple[OnDone, int]] = {}  # request id → (callback, message count)
        self._in_flight = 0  # messages awaiting the core
        self._framed = 0  # messages in the frame being filled
        self._core_saturated = False
        self._next_id = 0
        self._reader_task: asyncio.Task[None] | None = None
        # Where commands from the core go: (protocol, device id, bytes) → written to the device.
        self.on_send: Callable[[str, str, bytes], None] | None = None
        self.closed = asyncio.Event()

    @classmethod
    async def connect(cls, path: str) -> LinkClient:
        reader, writer = await asyncio.open_unix_connection(path, limit=MAX_FRAME_BYTES)
        client = cls(reader, writer)
        # Held on the client: the event loop keeps only weak references to tasks.
        client._reader_task = asyncio.create_task(client._read_answers())
        return client

    def enqueue(self, messages: Sequence[DeviceMessage], on_done: OnDone, may_refuse: bool = True) -> None:
        """Forward to the core; ``on_done`` gets the outcome once it is known (``may_refuse`` as in
        :meth:`Pipeline.enqueue`: HTTP is refused at once when the core is full, TCP is queued)."""
        self._submit(messages if isinstance(messages, list) else list(messages), "", may_refuse, on_done)

    def recognise(self, unique_id: str, on_done: OnDone) -> None:
        """Ask the core whether ``unique_id`` is registered (as :meth:`Pipeline.recognise`)."""
        self._submit([], unique_id, False, on_done)

    def _submit(
        self, messages: list[DeviceMessage], device_id: str, may_refuse: bool, on_done: OnDone
    ) -> None:
        if self.closed.is_set():
            on_done(Outcome.FAILED)
            return
        self._next_id += 1
        self._waiting[self._next_id] = (on_done, len(messages))
        self._in_flight += len(messages)
        frame = self._out.frame()
        if not frame.requests:
            self._framed = 0
        frame.requests.append((self._next_id, messages, device_id, may_refuse))
        self._framed += len(messages)
        if self._framed >= MAX_MESSAGES_PER_FRAME:
            self._out.flush()

    def ready(self) -> None:
        """Tell the core that this worker listens on all its ports (the core serves only once all are)."""
        self._out.frame()

    def saturated(self) -> bool:
        """Whether stream gateways should stop reading: the core said its pipeline is full while some of
        ours waits there, or this worker alone has as much in flight as the core's queues hold."""
        return (self._core_saturated and self._in_flight > 0) or self._in_flight >= MAX_IN_FLIGHT_MESSAGES

    def session_changed(self, protocol: str, unique_id: str, session: Session | None) -> None:
        """Tell the core that a device's connection is here (with its session) or gone (None)."""
        if not self.closed.is_set():
            self._out.frame().sessions.append((protocol, unique_id, session))

    async def _read_answers(self) -> None:
        frames = FrameReader(self._reader, Down)
        waiting = self._waiting
        try:
            while True:
                down = await frames.read()
                self._core_saturated = down.saturated
                for request_id, outcome in down.outcomes:
                    entry = waiting.pop(request_id, None)
                    if entry is not None:
                        self._in_flight -= entry[1]
                        entry[0](_OUTCOMES[outcome])
                if self.on_send is not None:
                    for protocol, unique_id, data in down.sends:
                        self.on_send(protocol, unique_id, data)
        except (asyncio.IncompleteReadError, ConnectionError, msgspec.DecodeError, ValueError):
            log.warning("link to the core process lost", exc_info=True)
        finally:
            self.closed.set()
            pending, self._waiting = self._waiting, {}
            self._in_flight = 0
            for on_done, _count in pending.values():
                on_done(Outcome.FAILED)  # never acknowledged: the device will resend
            self._writer.close()

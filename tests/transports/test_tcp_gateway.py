"""The TCP gateway over real loopback sockets, with a minimal line protocol and a scripted sink.

The protocol is deliberately trivial (``ID,TEXT\\n`` frames, reply ``ok:TEXT``) so these tests pin the
gateway's own behaviour: replies only after commit and in frame order, bad frames skipped without
losing their neighbours, unknown devices disconnected, limits enforced.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

import pytest

from geosentinel.model import DeviceMessage
from geosentinel.pipeline.runner import Outcome
from geosentinel.protocols import StreamCodec
from geosentinel.protocols.base import (
    DecodeError,
    DecodeResult,
    DeviceCommand,
    FrameTooLarge,
    ProtocolSpec,
    Session,
)
from geosentinel.testing import FakeClock, until
from geosentinel.transports import tcp_gateway
from geosentinel.transports.tcp_gateway import TcpGateway, TcpLimits

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.anyio


class LineFramer:
    def __init__(self, max_frame: int = 64) -> None:
        self.skipped = 0
        self._buffer = b""
        self._max = max_frame

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        *frames, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > self._max:
            raise FrameTooLarge("line too long")
        good = [f for f in frames if not f.startswith(b"~")]
        self.skipped += sum(len(f) for f in frames if f.startswith(b"~"))
        return good


def decode_line(frame: bytes, session: Session, now: datetime) -> DecodeResult:
    device, sep, text = frame.decode("latin-1").partition(",")
    if not sep or not device.isdigit():
        raise DecodeError("want ID,TEXT")
    reply = f"ok:{text}".encode()
    if text == "hello":  # a login: no message
        return DecodeResult((), reply, device_id=device)
    return DecodeResult((DeviceMessage(device, "line", time=now),), reply, device_id=device)


def encode(command: DeviceCommand, session: Session, now: datetime) -> bytes:
    return f"cmd:{command.kind}\n".encode()


CODEC = StreamCodec(ProtocolSpec("line", "tcp", 0, "test lines"), LineFramer, decode_line, encode)


class ScriptedSink:
    """Holds outcomes until the test releases them, to control commit order."""

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.held: list[tuple[Sequence[DeviceMessage], Callable[[Outcome], None]]] = []
        self.auto = True

    def saturated(self) -> bool:
        return False

    def enqueue(
        self, messages: Sequence[DeviceMessage], on_done: Callable[[Outcome], None], may_refuse: bool = True
    ) -> None:
        if self.auto:
            on_done(self._outcome(messages[0].unique_id))
        else:
            self.held.append((messages, on_done))

    def recognise(self, unique_id: str, on_done: Callable[[Outcome], None]) -> None:
        on_done(self._outcome(unique_id))

    def _outcome(self, unique_id: str) -> Outcome:
        return Outcome.STORED if unique_id in self.known else Outcome.UNKNOWN_DEVICE


@pytest.fixture
async def gateway() -> AsyncIterator[TcpGateway]:
    gw = TcpGateway(CODEC, ScriptedSink({"1", "2"}), FakeClock(NOW), TcpLimits(max_skipped_bytes=100))
    await gw.start("127.0.0.1", 0)
    yield gw
    await gw.close()


_OPEN: list[asyncio.StreamWriter] = []


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    while _OPEN:
        writer = _OPEN.pop()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def connect(gw: TcpGateway) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    _OPEN.append(writer)
    return reader, writer


async def read_exactly(reader: asyncio.StreamReader, text: bytes) -> bytes:
    return await asyncio.wait_for(reader.readexactly(len(text)), 5)


async def test_replies_follow_frames_split_and_joined_across_reads(gateway: TcpGateway) -> None:
    reader, writer = await connect(gateway)
    writer.write(b"1,a\n1,b\n1,")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(b"c\n")
    assert await read_exactly(reader, b"ok:aok:bok:c") == b"ok:aok:bok:c"


async def test_a_bad_frame_between_two_good_ones_loses_neither(gateway: TcpGateway) -> None:
    reader, writer = await connect(gateway)
    writer.write(b"1,first\nnot a frame\n1,second\n")
    assert await read_exactly(reader, b"ok:firstok:second") == b"ok:firstok:second"
    assert gateway.counters.decode_errors == 1


async def test_replies_wait_for_commit_and_keep_frame_order(gateway: TcpGateway) -> None:
    sink = gateway.sink
    assert isinstance(sink, ScriptedSink)
    sink.auto = False
    reader, writer = await connect(gateway)
    for count, frame in enumerate((b"1,a\n", b"1,b\n"), 1):  # two reads: two calls to the sink
        writer.write(frame)
        await writer.drain()
        for _ in range(100):
            if len(sink.held) == count:
                break
            await asyncio.sleep(0.01)
    assert len(sink.held) == 2
    sink.held[1][1](Outcome.STORED)  # the second commits first: its reply must wait
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), 0.2)
    sink.held[0][1](Outcome.STORED)
    assert await read_exactly(reader, b"ok:aok:b") == b"ok:aok:b"


async def test_unknown_device_is_disconnected_without_reply(gateway: TcpGateway) -> None:
    reader, writer = await connect(gateway)
    writer.write(b"9,hello\n")
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert gateway.counters.unknown_devices == 1


async def test_login_frame_is_answered_for_a_known_device_and_registers_the_connection(
    gateway: TcpGateway,
) -> None:
    reader, writer = await connect(gateway)
    writer.write(b"2,hello\n")
    assert await read_exactly(reader, b"ok:hello") == b"ok:hello"
    connection = gateway.connection_of("2")
    assert connection is not None
    assert connection.send(b"cmd\n")
    assert await read_exactly(reader, b"cmd\n") == b"cmd\n"


async def test_garbage_beyond_the_limit_cuts_the_connection_off(gateway: TcpGateway) -> None:
    reader, writer = await connect(gateway)
    writer.write(b"~" + b"x" * 200 + b"\n")
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert gateway.counters.cut_off == 1


async def test_a_frame_larger_than_the_limit_cuts_the_connection_off(gateway: TcpGateway) -> None:
    reader, writer = await connect(gateway)
    writer.write(b"1," + b"x" * 100)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert gateway.counters.cut_off == 1


async def test_idle_connections_are_closed() -> None:
    gw = TcpGateway(CODEC, ScriptedSink({"1"}), FakeClock(NOW), TcpLimits(idle_timeout_s=0.2))
    await gw.start("127.0.0.1", 0)
    try:
        reader, _writer = await connect(gw)
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        await gw.close()


async def test_connections_per_address_are_limited() -> None:
    gw = TcpGateway(CODEC, ScriptedSink({"1"}), FakeClock(NOW), TcpLimits(max_connections_per_address=2))
    await gw.start("127.0.0.1", 0)
    try:
        kept = [await connect(gw) for _ in range(2)]
        reader, _writer = await connect(gw)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert gw.counters.refused_connections == 1
        kept[0][1].write(b"1,still served\n")
        assert await read_exactly(kept[0][0], b"ok:still served") == b"ok:still served"
    finally:
        await gw.close()


async def test_garbage_flood_is_cut_off_and_memory_stays_bounded(gateway: TcpGateway) -> None:
    # A client pushing megabytes of bytes that never form a frame is cut off early.
    sock = socket.create_connection(("127.0.0.1", gateway.port))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    sent = 0
    with pytest.raises(ConnectionError):
        while sent < 100 * 1024 * 1024:
            await loop.sock_sendall(sock, b"~garbage\n" * 10_000)
            sent += 90_000
    sock.close()
    assert sent < 10 * 1024 * 1024
    assert gateway.counters.cut_off == 1


class BoundedSink(ScriptedSink):
    """Holds everything it is given and is saturated once it holds ``capacity`` requests."""

    def __init__(self, known: set[str]) -> None:
        super().__init__(known)
        self.auto = False
        self.capacity = 0

    def saturated(self) -> bool:
        return len(self.held) >= self.capacity


async def test_throttled_connections_resume_a_slice_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Resuming every throttled connection at once makes each read its whole backlog in one event-loop
    # turn (190,000 frames with 10,000 watches): a slice per turn, and none once the sink is full again.
    monkeypatch.setattr(tcp_gateway, "RESUME_SLICE", 2)
    sink = BoundedSink({"1"})
    gw = TcpGateway(CODEC, sink, FakeClock(NOW))
    await gw.start("127.0.0.1", 0)
    try:
        clients = [await connect(gw) for _ in range(6)]
        for _reader, writer in clients:
            writer.write(b"1,first\n")
        await until(lambda: gw.counters.throttled == 6)
        for _reader, writer in clients:
            writer.write(b"1,second\n")  # waits in the socket: every connection is paused
            await writer.drain()
        await asyncio.sleep(0.1)
        assert len(sink.held) == 6

        sink.capacity = 7  # room for one more request: one slice is resumed, then the sink is full again
        await until(lambda: len(sink.held) >= 8)
        await asyncio.sleep(0.2)
        assert len(sink.held) == 8  # the second slice waits: 2 connections read, not 6

        sink.capacity = 100
        await until(lambda: len(sink.held) == 12)  # every connection is read in the end
    finally:
        await gw.close()

"""A TCP gateway in a "worker" whose sink is the link to a "core" (both in this process, over a real Unix
socket): replies only after the core's commit, unknown devices, commands routed to the worker holding the
device, back-pressure from the core, and a lost link failing what was in flight."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_tcp_gateway import CODEC, NOW, read_exactly

from geosentinel.model import DeviceMessage
from geosentinel.pipeline.runner import Outcome
from geosentinel.protocols.base import Session
from geosentinel.testing import FakeClock, until
from geosentinel.transports import link
from geosentinel.transports.link import LinkClient, LinkServer
from geosentinel.transports.tcp_gateway import TcpGateway

pytestmark = pytest.mark.anyio


class ScriptedCore:
    """The core's pipeline: devices "1" and "2" are registered; outcomes can be held."""

    def __init__(self) -> None:
        self.held: list[tuple[Sequence[DeviceMessage], Callable[[Outcome], None]]] = []
        self.auto = True
        self.full = False

    def enqueue(
        self, messages: Sequence[DeviceMessage], on_done: Callable[[Outcome], None], may_refuse: bool = True
    ) -> None:
        if self.auto:
            on_done(self._outcome(messages[0].unique_id))
        else:
            self.held.append((messages, on_done))

    def recognise(self, unique_id: str, on_done: Callable[[Outcome], None]) -> None:
        on_done(self._outcome(unique_id))

    def saturated(self) -> bool:
        return self.full

    @staticmethod
    def _outcome(unique_id: str) -> Outcome:
        return Outcome.STORED if unique_id in {"1", "2"} else Outcome.UNKNOWN_DEVICE


@dataclass
class Linked:
    core: ScriptedCore
    server: LinkServer
    client: LinkClient
    gateway: TcpGateway
    listener: asyncio.Server


@pytest.fixture
async def linked(tmp_path: Path) -> AsyncIterator[Linked]:
    core = ScriptedCore()
    server = LinkServer(core, ["line"])
    path = str(tmp_path / "link.sock")
    listener = await server.start(path)
    client = await LinkClient.connect(path)
    gateway = TcpGateway(CODEC, client, FakeClock(NOW))
    gateway.on_session = lambda unique_id, session: client.session_changed("line", unique_id, session)
    await gateway.start("127.0.0.1", 0)
    client.on_send = lambda protocol, unique_id, data: _send(gateway, unique_id, data)
    client.ready()
    yield Linked(core, server, client, gateway, listener)
    await gateway.close()
    listener.close()


def _send(gateway: TcpGateway, unique_id: str, data: bytes) -> None:
    connection = gateway.connection_of(unique_id)
    assert connection is not None
    connection.send(data)


@contextlib.asynccontextmanager
async def device(gateway: TcpGateway) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        yield reader, writer
    finally:
        writer.close()


async def test_replies_come_after_the_core_commits_in_frame_order(linked: Linked) -> None:
    linked.core.auto = False
    async with device(linked.gateway) as (reader, writer):
        writer.write(b"1,a\n")
        await until(lambda: len(linked.core.held) == 1)
        writer.write(b"1,b\n")
        await until(lambda: len(linked.core.held) == 2)
        linked.core.held[1][1](Outcome.STORED)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.2)
        linked.core.held[0][1](Outcome.STORED)
        assert await read_exactly(reader, b"ok:aok:b") == b"ok:aok:b"


async def test_several_frames_of_one_read_are_one_request(linked: Linked) -> None:
    linked.core.auto = False
    async with device(linked.gateway) as (reader, writer):
        writer.write(b"1,a\n1,b\n2,hello\n")
        await until(lambda: len(linked.core.held) == 1)
        assert [m.unique_id for m in linked.core.held[0][0]] == ["1", "1"]
        linked.core.held[0][1](Outcome.STORED)
        assert await read_exactly(reader, b"ok:aok:bok:hello") == b"ok:aok:bok:hello"


async def test_an_unknown_device_is_disconnected(linked: Linked) -> None:
    async with device(linked.gateway) as (reader, writer):
        writer.write(b"9,hello\n")
        assert await asyncio.wait_for(reader.read(), 5) == b""
    assert linked.gateway.counters.unknown_devices == 1


async def test_commands_reach_the_device_through_the_worker_holding_it(linked: Linked) -> None:
    remote = linked.server.gateways["line"]
    async with device(linked.gateway) as (reader, writer):
        writer.write(b"2,hello\n")
        assert await read_exactly(reader, b"ok:hello") == b"ok:hello"
        await until(lambda: remote.connection_of("2") is not None)
        connection = remote.connection_of("2")
        assert connection is not None and connection.session == Session("2")
        assert connection.send(b"cmd:locate\n")
        assert await read_exactly(reader, b"cmd:locate\n") == b"cmd:locate\n"
    await until(lambda: remote.connection_of("2") is None)  # gone with its connection


async def test_a_saturated_core_makes_the_worker_stop_reading(linked: Linked) -> None:
    linked.core.full = True
    async with device(linked.gateway) as (reader, writer):
        writer.write(b"1,a\n")
        assert await read_exactly(reader, b"ok:a") == b"ok:a"
        linked.core.auto = False
        writer.write(b"1,b\n")
        await until(lambda: len(linked.core.held) == 1)
        assert linked.client.saturated()  # the core said so, and this worker has a frame waiting there
        await until(lambda: linked.gateway.counters.throttled >= 1)
        linked.core.full = False
        linked.core.held[0][1](Outcome.STORED)
        assert await read_exactly(reader, b"ok:b") == b"ok:b"
        assert not linked.client.saturated()
        writer.write(b"1,c\n")  # reading resumed
        await until(lambda: len(linked.core.held) == 2)


async def test_a_lost_link_fails_what_was_in_flight_and_disconnects(linked: Linked) -> None:
    linked.core.auto = False
    async with device(linked.gateway) as (reader, writer):
        writer.write(b"1,a\n")
        await until(lambda: len(linked.core.held) == 1)
        linked.listener.close()
        for task in asyncio.all_tasks():  # the core's side of the link goes away
            if task is not asyncio.current_task() and "_serve" in repr(task.get_coro()):
                task.cancel()
        await asyncio.wait_for(linked.client.closed.wait(), 5)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # not stored: no reply, the device resends
    assert linked.gateway.counters.failed == 1


async def test_a_backlog_read_in_one_turn_leaves_in_frames_of_bounded_size(
    linked: Linked, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Gateways resuming after saturation can read thousands of connections' backlogs in one event-loop turn:
    # one frame for all of it once exceeded the link's frame limit and cost the worker its link.
    frames: list[int] = []
    read = link.FrameReader.read

    async def counting(self: link.FrameReader[Any]) -> Any:
        frame = await read(self)
        if isinstance(frame, link.Up):
            frames.append(sum(len(messages) for _id, messages, _device, _refuse in frame.requests))
        return frame

    monkeypatch.setattr(link.FrameReader, "read", counting)
    outcomes: list[tuple[int, Outcome]] = []
    count = 2 * link.MAX_MESSAGES_PER_FRAME + 500
    for number in range(count):  # all in this one turn
        message = DeviceMessage("1", "line", NOW, steps=number)
        linked.client.enqueue([message], lambda outcome, n=number: outcomes.append((n, outcome)))
    await until(lambda: len(outcomes) == count)
    assert outcomes == [(n, Outcome.STORED) for n in range(count)]  # every one, in order
    # The core was already waiting for the first frame when read was wrapped: it goes uncounted.
    assert len(frames) >= 2 and max(frames) <= link.MAX_MESSAGES_PER_FRAME
    assert sum(frames) >= count - link.MAX_MESSAGES_PER_FRAME

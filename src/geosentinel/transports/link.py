"""The link between device-gateway worker processes and the core process (pipeline + single writer).

Gateway workers parse HTTP and decode on their own cores; the core keeps what must stay single: per-device
ordered processing and the one store writer. A worker sends decoded messages with a request id; the core
answers each id once the messages are committed (or refused), and only then does the worker reply to the
device — the acknowledgement rule holds across the process boundary.

Frames are a 4-byte big-endian length and a MessagePack body (msgspec, decoded straight into typed
``DeviceMessage`` structs: about a quarter of pickle's cost per message), over a Unix socket in a private
(0700) folder: both ends are our own processes, never the network.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import msgspec

from geosentinel.model import DeviceMessage
from geosentinel.pipeline.runner import OnDone, Outcome, Pipeline

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 64 * 1024 * 1024


T = TypeVar("T")

Requests = list[tuple[int, list[DeviceMessage]]]  # worker → core: (request id, its messages)
Outcomes = list[tuple[int, int]]  # core → worker: (request id, Outcome)


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


class FrameWriter:
    """Coalesces the items queued during one event-loop turn into a single frame."""

    _encoder = msgspec.msgpack.Encoder()

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._pending: list[Any] = []

    def send(self, item: Any) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(item)

    def _flush(self) -> None:
        items, self._pending = self._pending, []
        if self._writer.is_closing():
            return
        payload = self._encoder.encode(items)
        self._writer.write(_HEADER.pack(len(payload)) + payload)


class LinkServer:
    """Core side: feeds the pipeline with what the workers decoded, answers when committed."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self.connected = 0

    async def start(self, path: str) -> asyncio.Server:
        return await asyncio.start_unix_server(self._serve, path, limit=MAX_FRAME_BYTES)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connected += 1
        out = FrameWriter(writer)
        frames = FrameReader(reader, Requests)
        try:
            while True:
                for request_id, messages in await frames.read():
                    answer = functools.partial(_answer, out, request_id)
                    self._pipeline.enqueue(messages, answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the worker went away; its in-flight requests were never acknowledged
        except (msgspec.DecodeError, ValueError):
            # Only a bug can get here (both ends are ours): drop the worker, which reconnects; what it
            # had in flight was never acknowledged, so its devices resend.
            log.exception("unreadable frame from a gateway worker: link closed")
        finally:
            self.connected -= 1
            writer.close()


def _answer(out: FrameWriter, request_id: int, outcome: Outcome) -> None:
    out.send((request_id, int(outcome)))


class LinkClient:
    """Worker side: submit messages to the core and wait for the outcome."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._out = FrameWriter(writer)
        self._writer = writer
        self._waiting: dict[int, OnDone] = {}
        self._next_id = 0
        self._reader_task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    @classmethod
    async def connect(cls, path: str) -> LinkClient:
        reader, writer = await asyncio.open_unix_connection(path, limit=MAX_FRAME_BYTES)
        client = cls(reader, writer)
        # Held on the client: the event loop keeps only weak references to tasks.
        client._reader_task = asyncio.create_task(client._read_outcomes())
        return client

    def enqueue(self, messages: Sequence[DeviceMessage], on_done: OnDone, may_refuse: bool = True) -> None:
        """Forward to the core; ``on_done`` gets the outcome once it is known (the core's pipeline
        refuses when full: gateways are request/response, so ``may_refuse`` is always true there)."""
        if self.closed.is_set():
            on_done(Outcome.FAILED)
            return
        self._next_id += 1
        self._waiting[self._next_id] = on_done
        self._out.send((self._next_id, list(messages)))

    async def _read_outcomes(self) -> None:
        frames = FrameReader(self._reader, Outcomes)
        try:
            while True:
                for request_id, outcome in await frames.read():
                    on_done = self._waiting.pop(request_id, None)
                    if on_done is not None:
                        on_done(Outcome(outcome))
        except (asyncio.IncompleteReadError, ConnectionError, msgspec.DecodeError, ValueError):
            log.warning("link to the core process lost", exc_info=True)
        finally:
            waiting, self._waiting = self._waiting, {}
            for on_done in waiting.values():
                on_done(Outcome.FAILED)  # never acknowledged: the device will resend
            self._writer.close()
            self.closed.set()

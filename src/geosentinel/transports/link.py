"""The link between device-gateway worker processes and the core process (pipeline + single writer).

Gateway workers parse HTTP and decode on their own cores; the core keeps what must stay single: per-device
ordered processing and the one store writer. A worker sends decoded messages with a request id; the core
answers each id once the messages are committed (or refused), and only then does the worker reply to the
device — the acknowledgement rule holds across the process boundary.

Frames are a 4-byte big-endian length and a pickle, over a Unix socket in a private (0700) folder: both
ends are our own processes, never the network.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import pickle
import struct
from collections.abc import Sequence
from typing import Any

from geosentinel.model import DeviceMessage
from geosentinel.pipeline.runner import Outcome, Pipeline

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 64 * 1024 * 1024


async def read_frame(reader: asyncio.StreamReader) -> Any:
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if size > MAX_FRAME_BYTES:
        raise ValueError(f"link frame of {size} bytes is too large")
    return pickle.loads(await reader.readexactly(size))  # noqa: S301 (our own processes, private socket)


class FrameWriter:
    """Coalesces the items queued during one event-loop turn into a single frame."""

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
        payload = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
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
        try:
            while True:
                for request_id, messages in await read_frame(reader):
                    answer = functools.partial(_answer, out, request_id)
                    self._pipeline.enqueue(messages, answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the worker went away; its in-flight requests were never acknowledged
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
        self._waiting: dict[int, asyncio.Future[Outcome]] = {}
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

    async def offer(self, messages: Sequence[DeviceMessage]) -> Outcome:
        if self.closed.is_set():
            return Outcome.FAILED
        self._next_id += 1
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting[self._next_id] = future
        self._out.send((self._next_id, list(messages)))
        return await future

    async def _read_outcomes(self) -> None:
        try:
            while True:
                for request_id, outcome in await read_frame(self._reader):
                    future = self._waiting.pop(request_id, None)
                    if future is not None and not future.done():
                        future.set_result(Outcome(outcome))
        except (asyncio.IncompleteReadError, ConnectionError):
            log.warning("link to the core process lost")
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_result(Outcome.FAILED)  # never acknowledged: the device will resend
            self._waiting.clear()
            self._writer.close()
            self.closed.set()

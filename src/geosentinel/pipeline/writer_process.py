"""The pipeline's commits in a process of their own (``serve --writer-process``).

With thousands of devices the core process is bound by its GIL, not by its cores: the event loop (links,
routing, detection) and the store's writer thread (building rows, binding parameters) take turns on one
interpreter, and each SQLite statement the writer runs with the GIL released ends with it waiting for the
event loop to let go again. Measured with 10,000 watches: the core alone, commits skipped, keeps up with
20,000 frames/s; with its writer thread beside it, 11,700 (bench/NOTES.md).

Here the core turns each :class:`IngestBatch` into the rows the writer binds (:class:`IngestRows`: plain
values, which the child decodes for a fifth of what the typed structs cost, 2.7 against 13.2 µs per reading
and device state) and hands them to a child process over a socket pair (MessagePack, msgspec); the child
commits them with the same store code (its own single writer, group commits, one transaction per region)
and answers the batch's number with "" or the error. The
core's future for the batch resolves only then, so a device is still acknowledged only for what is durably
stored, and batches reach the child's writer in the order the pipeline made them.

Everything else the core writes (API, alert delivery, retention) stays on the core's own writer: SQLite
serialises the two writers with its lock (``BEGIN IMMEDIATE`` and a busy timeout), as it already does for
CLI commands, and PostgreSQL has no such question. If the child dies, the batches it held fail (their
devices are not acknowledged and send them again) and a new child is started; when the core dies, the child
sees the socket close and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
import subprocess
import sys
import time

import msgspec

from geosentinel import metrics
from geosentinel.gctuning import freeze_long_lived
from geosentinel.store import StoreError, open_store
from geosentinel.store.base import IngestBatch, IngestRows
from geosentinel.store.ingest import ingest_rows
from geosentinel.transports.link import MAX_FRAME_BYTES, FrameReader, FrameWriter

log = logging.getLogger(__name__)

RESTART_DELAY_S = 0.5  # between a child's death and its successor (a child that cannot start must not spin)


class Batches(msgspec.Struct, array_like=True, gc=False):
    """Core → child: batches to commit, each with its number."""

    batches: list[tuple[int, IngestRows]] = msgspec.field(default_factory=list)


class Committed(msgspec.Struct, array_like=True, gc=False):
    """Child → core: (batch number, "" once committed or the error). The child's first frame, empty,
    says that its store is open."""

    results: list[tuple[int, str]] = msgspec.field(default_factory=list)


class WriterProcess:
    """Core side: :meth:`ingest` has the child commit a batch (a drop-in for :meth:`Store.ingest`)."""

    def __init__(self, db_url: str) -> None:
        self._db_url = db_url
        self._child: subprocess.Popen[bytes] | None = None
        self._out: FrameWriter[Batches] | None = None
        self._stream: asyncio.StreamWriter | None = None
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._next_id = 0
        self._ready: asyncio.Future[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0  # children started after the first (a child died)

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    async def start(self, timeout_s: float = 60.0) -> None:
        """Start the child and return once its store is open."""
        self._ready = asyncio.get_running_loop().create_future()
        self._keeper = asyncio.create_task(self._keep_running(), name="writer-process")
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout_s)
        except BaseException:
            await self.stop()
            raise

    async def ingest(self, batch: IngestBatch) -> None:
        if self._out is None:
            raise StoreError("the writer process is not running")
        started = time.perf_counter()
        self._next_id += 1
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[self._next_id] = done
        # Every batch submitted during one event-loop turn leaves in one frame.
        self._out.frame().batches.append((self._next_id, ingest_rows(batch)))
        await done
        metrics.committed(
            len(batch.readings), (e.kind.value for e in batch.events), time.perf_counter() - started
        )

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Close the socket: the child commits what it holds, answers, and exits."""
        self._stopping = True
        out, self._out = self._out, None
        if out is not None and self._stream is not None:
            out.flush()
            self._stream.write_eof()  # half-closed: the child's last answers still come back
        if self._keeper is not None:
            try:
                await asyncio.wait_for(self._keeper, timeout_s)
            except TimeoutError:
                log.error("the writer process did not exit within %.0f s: killed", timeout_s)
                if self._child is not None:
                    self._child.kill()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._keeper

    async def _keep_running(self) -> None:
        while not self._stopping:
            ours, theirs = socket.socketpair()
            try:
                self._child = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                    [sys.executable, "-m", "geosentinel", "writer-process", "--db", self._db_url,
                     "--fd", str(theirs.fileno())],
                    pass_fds=[theirs.fileno()],
                )  # fmt: skip
            finally:
                theirs.close()
            try:
                await self._serve(ours)
            finally:
                self._fail_waiting("the writer process exited before committing the batch")
                await asyncio.to_thread(_reap, self._child)
            if self._ready is not None and not self._ready.done():
                # Never ready: a wrong database URL, say. Starting it again would not help.
                reason = f"the writer process could not start (exit code {self._child.returncode})"
                self._ready.set_exception(StoreError(reason))
                return
            if not self._stopping:
                self.restarts += 1
                log.error("the writer process exited with %s; starting another", self._child.returncode)
                await asyncio.sleep(RESTART_DELAY_S)

    async def _serve(self, sock: socket.socket) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_FRAME_BYTES)
        frames = FrameReader(reader, Committed)
        try:
            await frames.read()  # the child's store is open
            if self._stopping:
                return
            self._stream, self._out = writer, FrameWriter(writer, Batches)
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
            while True:
                for batch_id, error in (await frames.read()).results:
                    done = self._waiting.pop(batch_id, None)
                    if done is None or done.done():
                        continue
                    if error:
                        done.set_exception(StoreError(error))
                    else:
                        done.set_result(None)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the child exited (or was killed); what it had not answered fails below
        except (msgspec.DecodeError, ValueError):
            log.exception("unreadable frame from the writer process")  # only a bug can get here
        finally:
            self._stream = self._out = None
            writer.close()

    def _fail_waiting(self, reason: str) -> None:
        waiting, self._waiting = self._waiting, {}
        for done in waiting.values():
            if not done.done():
                done.set_exception(StoreError(reason))


def _reap(child: subprocess.Popen[bytes] | None) -> None:
    if child is None:
        return
    try:
        child.wait(10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


# -- the child ----------------------------------------------------------------------------------------


async def run_child(fd: int, db_url: str) -> None:
    """The body of the writer process: commit what the core sends until it closes the socket."""
    # Its life is the socket's: Ctrl-C in a terminal reaches the whole process group, and the core must be
    # able to finish its last commits through this process while it shuts down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    store = await asyncio.to_thread(open_store, db_url, False)  # the core has migrated the schema
    freeze_long_lived()  # see gctuning.py
    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=fd), limit=MAX_FRAME_BYTES)
    out = FrameWriter(writer, Committed)
    out.frame()  # ready
    frames = FrameReader(reader, Batches)
    commits: set[asyncio.Future[None]] = set()
    try:
        while True:
            for batch_id, batch in (await frames.read()).batches:
                # Started in the order received: the store's writer queues them in that order.
                commit = asyncio.ensure_future(store.ingest_rows(batch))
                commits.add(commit)
                commit.add_done_callback(commits.discard)
                commit.add_done_callback(functools.partial(_answer, out, batch_id))
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the core closed the socket (stopping) or died
    finally:
        if commits:
            await asyncio.wait(commits)
        out.flush()
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
        await asyncio.to_thread(store.close)


def _answer(out: FrameWriter[Committed], batch_id: int, commit: asyncio.Future[None]) -> None:
    exc = commit.exception() if not commit.cancelled() else asyncio.CancelledError()
    if exc is not None:
        log.error("commit of batch %d failed", batch_id, exc_info=exc)
    # The error's text only: the core treats every failure alike (the batch is not acknowledged).
    out.frame().results.append((batch_id, "" if exc is None else f"{type(exc).__name__}: {exc}"[:2000]))

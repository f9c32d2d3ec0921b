"""The single writer: one thread owns the only write connection and commits jobs in groups.

Every write goes through :meth:`BatchWriter.submit`. The thread takes whatever jobs are queued, runs them
in one transaction and commits once (group commit: one fsync for many devices' readings), then resolves
each job's future. If the group fails, each job is retried alone so that one bad job cannot take the
others down with it. This is Datasette's write model, and SQLite's only sane one; PostgreSQL gets the same
discipline, which keeps batches large and ordering simple.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

log = logging.getLogger(__name__)

T = TypeVar("T")

# Execution option set on the writer's connection (lets the SQLite backend take its write lock early).
WRITER_OPTION = "geosentinel_writer"


@dataclass(slots=True)
class _Job:
    fn: Callable[[sa.Connection], Any]
    future: Future[Any]


class BatchWriter:
    def __init__(self, engine: sa.Engine, max_jobs: int = 512, name: str = "store-writer") -> None:
        self._engine = engine
        self._max_jobs = max_jobs
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, fn: Callable[[sa.Connection], T]) -> Future[T]:
        """Queue ``fn(connection)``; the future resolves once its transaction is committed."""
        if self._closed:
            raise RuntimeError("store writer is closed")
        future: Future[T] = Future()
        self._queue.put(_Job(fn, future))
        return future

    def run(self, fn: Callable[[sa.Connection], T]) -> T:
        """Submit and wait (for CLI commands and tools)."""
        return self.submit(fn).result()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        with self._engine.connect().execution_options(**{WRITER_OPTION: True}) as connection:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                jobs = [first]
                stop = self._drain(jobs)
                # A job whose caller gave up (its future cancelled, e.g. at shutdown) is not run; the
                # others can no longer be cancelled, so setting their results cannot fail.
                jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
                if jobs:
                    self._commit_group(connection, jobs)
                if stop:
                    return

    def _drain(self, jobs: list[_Job]) -> bool:
        while len(jobs) < self._max_jobs:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return False
            if job is None:
                return True
            jobs.append(job)
        return False

    def _commit_group(self, connection: sa.Connection, jobs: list[_Job]) -> None:
        try:
            with connection.begin():
                results = [job.fn(connection) for job in jobs]
        except Exception as exc:
            if len(jobs) == 1:
                log.exception("store write failed")
                jobs[0].future.set_exception(exc)
                return
            log.warning("group commit of %d jobs failed; retrying them one by one", len(jobs))
            for job in jobs:
                self._commit_group(connection, [job])
            return
        for job, result in zip(jobs, results, strict=True):
            job.future.set_result(result)

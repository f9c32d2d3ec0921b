"""The single writer thread (store.writer): group commits, and callers that give up."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa

from geosentinel.store.writer import BatchWriter


def test_a_cancelled_job_is_skipped_and_the_writer_goes_on(tmp_path: Path) -> None:
    # A caller that gives up (an asyncio task cancelled at shutdown cancels the job's future) must not
    # kill the writer thread: every later write of the process would then hang for ever.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    writer = BatchWriter(engine)
    try:
        writer.run(lambda c: c.exec_driver_sql("CREATE TABLE t (v INTEGER)"))
        started, release = threading.Event(), threading.Event()

        def blocking(connection: sa.Connection) -> None:
            started.set()
            release.wait(5)
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")

        first = writer.submit(blocking)
        assert started.wait(5)
        given_up = writer.submit(lambda c: c.exec_driver_sql("INSERT INTO t VALUES (2)"))
        assert given_up.cancel()
        release.set()
        first.result(5)
        writer.submit(lambda c: c.exec_driver_sql("INSERT INTO t VALUES (3)")).result(5)  # not a hang
        values = writer.submit(
            lambda c: [r[0] for r in c.exec_driver_sql("SELECT v FROM t ORDER BY v")]
        ).result(5)
        assert values == [1, 3]
    finally:
        if writer._thread.is_alive():
            writer.close()
        engine.dispose()

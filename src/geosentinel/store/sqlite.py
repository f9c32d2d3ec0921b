"""The embedded default: one SQLite file in WAL mode, written by a single thread.

``synchronous=FULL`` makes every commit durable before a device is acknowledged; the cost of the fsync is
shared by all the readings of a group commit. Throwaway databases (simulated days, benchmarks of
something else than durability) may ask for ``?synchronous=normal`` in the URL: still crash-safe for the
process, but a power cut may lose the last commits.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from geosentinel.store.sql import SqlStore
from geosentinel.store.writer import WRITER_OPTION

SYNCHRONOUS = ("full", "normal")


def _pragmas(synchronous: str) -> Any:
    def on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (pysqlite's own handling
        # would defer BEGIN and break savepoints).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            f"synchronous={synchronous}",
            "busy_timeout=10000",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    return on_connect


def _on_begin(connection: sa.Connection) -> None:
    # The writer's IMMEDIATE takes the write lock up front, so a CLI command and the service never
    # deadlock; readers use plain (deferred) transactions and never wait for the writer (WAL).
    immediate = connection.get_execution_options().get(WRITER_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class SqliteStore(SqlStore):
    def __init__(self, url: str) -> None:
        parsed = sa.make_url(url)
        synchronous = str(parsed.query.get("synchronous", "full")).lower()
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}, not {synchronous!r}")
        parsed = parsed.difference_update_query(["synchronous"])
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, pool_size=8, max_overflow=8)
        sa.event.listen(engine, "connect", _pragmas(synchronous))
        sa.event.listen(engine, "begin", _on_begin)
        super().__init__(engine, placeholder="?", multirow_inserts=True)

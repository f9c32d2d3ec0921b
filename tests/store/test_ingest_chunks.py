"""How the ingest hot path writes rows with multi-row statements (store.ingest.MultiRowInsert): how it
splits them (chunk_sizes), and the NULLs it binds as NaN on SQLite."""

from __future__ import annotations

import math
import sqlite3

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from geosentinel.store import schema
from geosentinel.store.ingest import READING_COLUMNS, MultiRowInsert, chunk_sizes


@given(st.integers(0, 20_000), st.integers(1, 5_000))
def test_every_row_lands_in_exactly_one_statement_within_the_limit(count: int, limit: int) -> None:
    sizes = chunk_sizes(count, limit)
    assert sum(sizes) == count
    assert all(0 < size <= limit for size in sizes)


def test_a_table_needs_a_handful_of_statement_texts_whatever_the_batch_sizes() -> None:
    # One text per row count missed the driver's statement cache (128 entries) at nearly every batch.
    texts = {size for count in range(1, 5_001) for size in chunk_sizes(count, 695)}
    assert texts == {1, 2, 4, 8, 16, 32, 64, 128, 256, 512}
    assert chunk_sizes(1_500, 695) == [512, 512, 256, 128, 64, 16, 8, 4]


def test_sqlite_stores_a_nan_parameter_as_null_whatever_the_column() -> None:
    # What MultiRowInsert relies on to bind None as NaN (see its docstring).
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BOOLEAN, n NUMERIC, x)")
    connection.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", (math.nan,) * 6)
    assert connection.execute("SELECT *, typeof(r) FROM t").fetchall() == [(None,) * 6 + ("null",)]


def test_none_fields_of_a_multi_row_insert_are_stored_as_null() -> None:
    engine = sa.create_engine("sqlite://")
    schema.metadata.create_all(engine, tables=[schema.readings])
    row = ("org", "device", None, 1, 2, 43.3, 5.4, True, None, 0.0, None, None, None, None, 0, 86.0, None, 0,
           None, None, None, None, None)  # fmt: skip
    rows = [row, (*row[:2], "wearer", *row[3:])]
    with engine.begin() as connection:
        MultiRowInsert("readings", READING_COLUMNS, "?").execute(connection, rows)
        stored = connection.exec_driver_sql(f"SELECT {', '.join(READING_COLUMNS)} FROM readings ORDER BY id")
        assert [tuple(r) for r in stored] == [(*row[:7], 1, *row[8:]), (*rows[1][:7], 1, *row[8:])]

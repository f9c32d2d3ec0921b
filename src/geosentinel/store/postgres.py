"""PostgreSQL backend (psycopg 3), for organisations that outgrow one machine."""

from __future__ import annotations

import sqlalchemy as sa

from geosentinel.store.sql import SqlStore


def engine_url(url: str) -> sa.URL:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver for them."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


class PostgresStore(SqlStore):
    def __init__(self, url: str) -> None:
        engine = sa.create_engine(engine_url(url), pool_size=8, max_overflow=8, pool_pre_ping=True)
        super().__init__(engine, placeholder="%s", multirow_inserts=False)

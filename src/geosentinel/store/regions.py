"""Where each region's store lives.

One URL names a deployment (``--db``): it is the shared directory's database, and each region's store is
derived from it unless configured on its own:

- ``sqlite:///var/gs.db`` → the directory in ``gs.db``, the ``eu`` store in ``gs.eu.db``, the ``cn``
  store in ``gs.cn.db`` (the embedded default: one SQLite file per region);
- ``postgresql://host/gs`` → databases ``gs_eu`` and ``gs_cn`` on the same server, created on first use;
- ``GEOSENTINEL_DB_EU`` / ``GEOSENTINEL_DB_CN`` name a region's database explicitly (in production, a
  server in that region), whatever the directory URL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from geosentinel.model import Region

ENV_PREFIX = "GEOSENTINEL_DB_"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def region_url(directory_url: str, region: Region, env: Mapping[str, str] | None = None) -> str:
    """The database URL of ``region``'s store in the deployment named by ``directory_url``."""
    configured = (os.environ if env is None else env).get(ENV_PREFIX + region.value.upper())
    if configured:
        return configured
    parsed = sa.make_url(directory_url)
    database = parsed.database
    if is_sqlite(directory_url):
        if not database or database == ":memory:":
            raise ValueError("regions need files: give the database a path, not :memory:")
        path = Path(database)
        derived = str(path.with_name(f"{path.stem}.{region.value}{path.suffix}"))
    else:
        if not database:
            raise ValueError(f"the URL {directory_url!r} names no database")
        derived = f"{database}_{region.value}"
    return parsed.set(database=derived).render_as_string(hide_password=False)


def directory_engine(url: str) -> sa.Engine:
    """An engine on the directory's database (created when it is a missing SQLite file)."""
    if is_sqlite(url):
        parsed = sa.make_url(url).difference_update_query(["synchronous"])
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        from geosentinel.store.postgres import engine_url

        return sa.create_engine(engine_url(url), pool_size=2, max_overflow=4, pool_pre_ping=True)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://…")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "busy_timeout=10000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def ensure_database(directory_url: str, url: str) -> None:
    """Create the region's PostgreSQL database when it is missing (same server as the directory)."""
    if is_sqlite(url) or is_sqlite(directory_url):
        return  # SQLite files are created on open
    import psycopg
    from psycopg import sql

    target = sa.make_url(url)
    server = sa.make_url(directory_url).set(drivername="postgresql")
    if (target.host, target.port) != (server.host, server.port) or not target.database:
        return  # configured elsewhere: its operators create it
    conninfo = server.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)
        ).fetchone()
        if exists:
            return
        try:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target.database)))
        except psycopg.errors.DuplicateDatabase:
            pass  # another process created it meanwhile

"""Durable storage: one contract (:mod:`.base`), two backends (SQLite, PostgreSQL), one store per region.

:func:`open_store` opens a deployment: the shared directory (which organisation lives in which region) at
the given URL, and each region's store beside it (:mod:`.regions`), behind one routing
:class:`~geosentinel.store.regional.RegionalStore`. :func:`open_region_store` opens one backend store.
"""

from __future__ import annotations

from collections.abc import Mapping

from geosentinel.model import Region
from geosentinel.store.base import Scope, Store, StoreError


def open_region_store(url: str, migrate: bool = True) -> Store:
    """Open one backend store (``sqlite:///path`` or ``postgresql://…``) and migrate it."""
    store: Store
    if url.startswith("sqlite:"):
        from geosentinel.store.sqlite import SqliteStore

        try:
            store = SqliteStore(url)
        except ValueError as exc:
            raise StoreError(str(exc)) from exc
    elif url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        from geosentinel.store.postgres import PostgresStore

        store = PostgresStore(url)
    else:
        raise StoreError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://…")
    if migrate:
        store.migrate()
    return store


def open_store(url: str, migrate: bool = True, regions: Mapping[Region, str] | None = None) -> Store:
    """Open the deployment whose directory is at ``url``; region stores are derived or given."""
    from geosentinel.store.org_directory import OrgDirectory
    from geosentinel.store.regional import RegionalStore
    from geosentinel.store.regions import directory_engine, ensure_database, region_url

    try:
        urls = {r: (regions or {}).get(r) or region_url(url, r) for r in Region}
        directory = OrgDirectory(directory_engine(url))
    except ValueError as exc:
        raise StoreError(str(exc)) from exc

    def open_region(region_url_: str) -> Store:
        ensure_database(url, region_url_)
        return open_region_store(region_url_, migrate)

    store = RegionalStore(directory, urls, open_region)
    if migrate:
        store.migrate()
    return store


__all__ = ["Scope", "Store", "StoreError", "open_region_store", "open_store"]

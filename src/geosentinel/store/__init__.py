"""Durable storage: one contract (:mod:`.base`), two backends (SQLite, PostgreSQL)."""

from __future__ import annotations

from geosentinel.store.base import Scope, Store, StoreError


def open_store(url: str, migrate: bool = True) -> Store:
    """Open the store named by a URL (``sqlite:///path`` or ``postgresql://…``) and migrate it."""
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


__all__ = ["Scope", "Store", "StoreError", "open_store"]

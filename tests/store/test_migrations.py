"""The migrations build exactly the tables the code declares (store/schema.py), on every backend."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from geosentinel.store import Store, schema
from geosentinel.testing import backend_of


def test_migrated_database_matches_the_declared_schema(store: Store) -> None:
    with backend_of(store).engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, schema.metadata)
    assert differences == []


def test_every_declared_table_exists(store: Store) -> None:
    assert set(schema.metadata.tables) <= set(sa.inspect(backend_of(store).engine).get_table_names())


def test_head_names_the_newest_migration() -> None:
    """``migrate.HEAD`` lets an up-to-date database skip Alembic; a stale one makes every open run it."""
    from alembic.script import ScriptDirectory

    from geosentinel.store import migrate

    script = ScriptDirectory.from_config(migrate.alembic_config())  # type: ignore[arg-type]
    assert script.get_current_head() == migrate.HEAD

from __future__ import annotations

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from geosentinel.store import migrate, schema
from geosentinel.store.sql import SqlStore


def test_head_constant_matches_the_migration_scripts() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())  # type: ignore[arg-type]
    assert script.get_current_head() == migrate.HEAD


def test_migrations_create_exactly_the_declared_schema(store: SqlStore) -> None:
    """The migrations and schema.py agree, on every backend (autogenerate finds nothing to do)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), schema.metadata)
    assert diff == []
    assert migrate.current_revision(store.engine) == migrate.HEAD
    assert "readings" in sa.inspect(store.engine).get_table_names()

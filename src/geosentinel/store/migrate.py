"""Apply the schema migrations (the same Alembic scripts for SQLite and PostgreSQL)."""

from __future__ import annotations

from importlib.resources import files

import sqlalchemy as sa

# The newest revision under migrations/versions. Checked against Alembic's own view by a test; lets an
# up-to-date database skip loading Alembic at all (seconds saved on every CLI command and start).
HEAD = "0009"


def alembic_config(connection: sa.Connection | None = None) -> object:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("geosentinel.store") / "migrations"))
    config.attributes["connection"] = connection
    return config


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def upgrade(engine: sa.Engine) -> None:
    """Bring the database to the latest schema; a no-op when it is already there."""
    if current_revision(engine) == HEAD:
        return
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")  # type: ignore[arg-type]

"""Apply the schema migrations (the same Alembic scripts for SQLite and PostgreSQL)."""

from __future__ import annotations

from importlib.resources import files

import sqlalchemy as sa
from alembic import command
from alembic.config import Config


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("geosentinel.store") / "migrations"))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine) -> None:
    """Bring the database to the latest schema; a no-op when it is already there."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")

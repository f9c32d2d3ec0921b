"""Shared fixtures: every store test runs against SQLite and a real PostgreSQL (started by make test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from geosentinel.store import Store


POSTGRES_ENV = "GEOSENTINEL_TEST_POSTGRES_URL"
MQTT_ENV = "GEOSENTINEL_TEST_MQTT_URL"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def new_database(backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'gs.db'}"
    url = os.environ.get(POSTGRES_ENV)
    if not url:  # a missing server is a failure, never a skip
        pytest.fail(f"{POSTGRES_ENV} is not set: run the suite with `make test`, which starts PostgreSQL")
    from geosentinel.testing import fresh_postgres_database  # lazily: pure-core tests stay fast

    return fresh_postgres_database(url)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return new_database(request.param, tmp_path)


@pytest.fixture(scope="module", params=BACKENDS)
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return new_database(request.param, tmp_path_factory.mktemp("db"))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    from geosentinel.store import open_store

    s = open_store(db_url)
    yield s
    s.close()


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``pytest.mark.anyio``) run on asyncio, as the service does."""
    return "asyncio"


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    """The mosquitto broker `make test` started. Missing is a failure, not a skip."""
    url = os.environ.get(MQTT_ENV)
    if not url:
        pytest.fail(f"{MQTT_ENV} is not set: run the suite with `make test`, which starts mosquitto")
    return url

"""The real service in a child process, one per module and backend, reached over loopback sockets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from geosentinel.testing import ServiceProcess, Tenant, provision

UNIQUE_ID = "861001000719969"


@pytest.fixture(scope="module")
def tenant(module_db_url: str) -> Tenant:
    """One organisation per module and backend; tests add their own wearers and devices."""
    return provision(module_db_url, "Probe", UNIQUE_ID, "a@example.org")


@pytest.fixture(scope="module")
def service(tenant: Tenant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    svc = ServiceProcess(tenant.db_url, tmp_path_factory.mktemp("serve") / "serve.log").start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def mqtt_service(
    tenant: Tenant, mqtt_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The service consuming the test broker (its own client id), without the TCP gateways."""
    url = f"{mqtt_url}?client_id=test-{uuid.uuid4().hex[:8]}"
    svc = ServiceProcess(
        tenant.db_url, tmp_path_factory.mktemp("serve") / "serve.log", "--mqtt", url,
        "--watch-port", "0", "--gt06-port", "0", "--h02-port", "0",
    ).start()  # fmt: skip
    yield svc
    svc.stop()

"""The real service in a child process, one per module and backend, reached over loopback sockets."""

from __future__ import annotations

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

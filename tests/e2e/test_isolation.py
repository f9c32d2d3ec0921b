"""Tenant isolation, walked over every endpoint of the running service.

Organisation A has an admin, a family member linked to one of its two wearers, and an anonymous caller;
organisation B has its own wearer, device, alert, geofence, contact, policy and token. Every route of the
OpenAPI schema is called by each of A's callers against B's resources (and, for the family member, against
A's other wearer): every such access is refused (401, 403 or 404, or 422 for a body naming another
organisation's resource), and no answer, refused or not, carries any of B's (or the other wearer's)
identifiers or names. A route missing from :data:`CASES` fails the test: a new endpoint must say here how
it is walked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from geosentinel.alerts.policy import Policy, Step
from geosentinel.app import create_api
from geosentinel.auth import hash_password, new_token
from geosentinel.model import Locale, Role
from geosentinel.store import Scope, open_store
from geosentinel.testing import TEST_PASSWORD, ServiceProcess, Tenant, provision

pytestmark = pytest.mark.e2e

B_WEARER_NAME = "Bernadette Secret-B"
A2_WEARER_NAME = "Octave Unlinked-A2"


@dataclass
class World:
    a: Tenant
    b: Tenant
    family_token: str
    a2: dict[str, str]  # A's wearer the family member is not linked to: its ids
    b_ids: dict[str, str]  # B's resources
    markers_b: set[str] = field(default_factory=set)
    markers_a2: set[str] = field(default_factory=set)


def _sos(service: ServiceProcess, unique_id: str) -> None:
    fix = {"id": unique_id, "lat": 43.5263, "lon": 5.4454, "alarm": "sos"}
    assert httpx.get(f"{service.osmand}/", params=fix, timeout=10).status_code == 200


def _alert_id(db_url: str, org_id: str, wearer_id: str) -> str:
    deadline = time.monotonic() + 10
    store = open_store(db_url)
    try:
        while True:
            alerts = store.alerts(Scope(org_id), wearer_id=wearer_id)
            if alerts:
                return alerts[0].id
            assert time.monotonic() < deadline, "no alert"
            time.sleep(0.1)
    finally:
        store.close()


@pytest.fixture(scope="module")
def world(module_db_url: str) -> World:
    a = provision(module_db_url, "Isolation A", "880000000000001", "admin-a@example.org")
    b = provision(module_db_url, "Isolation B", "880000000000009", "admin-b@example.org")
    now = datetime.now(UTC)
    store = open_store(module_db_url)
    try:
        a2 = store.create_wearer(a.org_id, A2_WEARER_NAME)
        a2_device = store.create_device(a.org_id, a2.id, "880000000000003", "osmand")
        b_wearer = store.create_wearer(b.org_id, B_WEARER_NAME)
        b_device = store.create_device(b.org_id, b_wearer.id, "880000000000002", "osmand")
        family = store.create_user(
            a.org_id, "family-a@example.org", hash_password(TEST_PASSWORD), Role.FAMILY, "Fam"
        )
        store.link_wearer(family.id, a.wearer_id)
        family_token, digest = new_token()
        store.create_token(family.id, digest, "family")
        contact = store.create_contact(
            b.org_id, "Contact-B", Locale.FR, "Europe/Paris", ["json://127.0.0.1:9/b"], now
        )
        policy = store.create_policy(b.org_id, "Policy-B", Policy([Step([contact.id])]), True, now)
        point = {"type": "Point", "coordinates": [5.45, 43.53]}
        fence = store.create_geofence(b.org_id, b_wearer.id, "Fence-B", "safe", point, 100.0)
        a2_fence = store.create_geofence(a.org_id, a2.id, "Fence-A2", "safe", point, 100.0)
        b_admin = store.user_by_email("admin-b@example.org")
        assert b_admin is not None
        b_token = store.create_scoped_token(b_admin[0].id, new_token()[1], "B's", ["read"], now)
        store.set_wearer_contacts(Scope(b.org_id), b_wearer.id, [contact.id])
    finally:
        store.close()
    return World(
        a, b, family_token,
        {"wearer_id": a2.id, "device_id": a2_device.id, "fence_id": a2_fence.id},
        {"wearer_id": b_wearer.id, "device_id": b_device.id, "fence_id": fence.id, "contact_id": contact.id,
         "policy_id": policy.id, "token_id": b_token.id, "org_id": b.org_id, "user_id": b_admin[0].id},
    )  # fmt: skip


@pytest.fixture(scope="module")
def isolated(
    world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceProcess, World]]:
    service = ServiceProcess(world.a.db_url, tmp_path_factory.mktemp("serve") / "serve.log").start()
    try:
        _sos(service, "880000000000002")
        _sos(service, "880000000000003")
        world.b_ids["alert_id"] = _alert_id(world.a.db_url, world.b.org_id, world.b_ids["wearer_id"])
        world.a2["alert_id"] = _alert_id(world.a.db_url, world.a.org_id, world.a2["wearer_id"])
        world.markers_b = {*world.b_ids.values(), B_WEARER_NAME, "880000000000002", "Contact-B", "Policy-B",
                           "Fence-B"}  # fmt: skip
        world.markers_a2 = {*world.a2.values(), A2_WEARER_NAME, "880000000000003", "Fence-A2"}
        yield service, world
    finally:
        service.stop()


def _body(method: str, path: str, other: dict[str, str]) -> dict[str, Any] | None:
    """A valid body for the route, naming the other side's resources wherever a body can name one."""
    contact, policy, wearer = (other.get(k, "nobody") for k in ("contact_id", "policy_id", "wearer_id"))
    point = {"type": "Point", "coordinates": [5.4, 43.5]}
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/api/v1/alerts/{alert_id}/resolve"): {"outcome": "other"},
        ("PUT", "/api/v1/wearers/{wearer_id}/detection"): {"heart_rate_max_bpm": 110},
        ("POST", "/api/v1/devices/{device_id}/commands"): {"kind": "locate"},
        ("POST", "/api/v1/geofences"): {
            "type": "Feature", "geometry": point,
            "properties": {"name": "x", "radius_m": 50, "wearer_id": wearer},
        },
        ("POST", "/api/v1/contacts"): {"name": "New", "urls": ["json://127.0.0.1:9/new"]},
        ("POST", "/api/v1/escalation-policies"): {
            "name": "x", "policy": {"steps": [{"contacts": [contact]}]}
        },
        ("POST", "/api/v1/escalation-policies/from-template"): {
            "template": "fr_charter", "name": "x", "emergency": [contact]
        },
        ("PUT", "/api/v1/wearers/{wearer_id}/escalation-policy"): {"policy_id": policy},
        ("PUT", "/api/v1/wearers/{wearer_id}/contacts"): {"contact_ids": [contact]},
        ("POST", "/api/v1/tokens"): {"label": "mine"},
        ("POST", "/api/v1/session"): {"email": "admin-b@example.org", "password": "not-the-password"},
        ("POST", "/api/v1/users"): {
            "email": "new-a@example.org", "password": TEST_PASSWORD, "role": "caregiver", "display_name": "N"
        },
        ("PUT", "/api/v1/users/{user_id}/wearers"): {"wearer_ids": [wearer]},
        ("POST", "/api/v1/wearers"): {"name": "New wearer of A"},
        ("PATCH", "/api/v1/organisation"): {"retention_days": 365},
        ("PATCH", "/api/v1/wearers/{wearer_id}"): {"name": "Renamed"},
        ("POST", "/api/v1/devices"): {"unique_id": "880000000077", "protocol": "osmand", "wearer_id": wearer},
        ("PATCH", "/api/v1/devices/{device_id}"): {"wearer_id": None, "expected_interval_s": 60},
    }  # fmt: skip
    return bodies.get((method, path), {} if method in ("POST", "PUT", "PATCH") else None)


# Every route, and whether it names a resource of someone else in its path. Routes with no path
# parameter are called as they are (their answers must hold only the caller's data).
CASES: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/alerts"): "list",
    ("GET", "/api/v1/alerts/{alert_id}"): "other",
    ("POST", "/api/v1/alerts/{alert_id}/seen"): "other",
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): "other",
    ("POST", "/api/v1/alerts/{alert_id}/resolve"): "other",
    ("POST", "/api/v1/alerts/{alert_id}/reopen"): "other",
    ("POST", "/api/v1/alerts/{alert_id}/arrival"): "other",
    ("GET", "/api/v1/alerts/{alert_id}/timeline"): "other",
    ("GET", "/api/v1/wearers"): "list",
    ("POST", "/api/v1/wearers"): "list",
    ("PATCH", "/api/v1/wearers/{wearer_id}"): "other",
    ("GET", "/api/v1/wearers/{wearer_id}"): "other",
    ("GET", "/api/v1/wearers/{wearer_id}/positions"): "other",
    ("GET", "/api/v1/wearers/{wearer_id}/detection"): "other",
    ("PUT", "/api/v1/wearers/{wearer_id}/detection"): "other",
    ("GET", "/api/v1/devices"): "list",
    ("POST", "/api/v1/devices"): "body",
    ("GET", "/api/v1/devices/{device_id}"): "other",
    ("PATCH", "/api/v1/devices/{device_id}"): "other",
    ("POST", "/api/v1/devices/{device_id}/commands"): "other",
    ("GET", "/api/v1/events"): "list",
    ("GET", "/api/v1/geofences"): "list",
    ("POST", "/api/v1/geofences"): "body",
    ("GET", "/api/v1/geofences/{fence_id}"): "other",
    ("DELETE", "/api/v1/geofences/{fence_id}"): "other",
    ("GET", "/api/v1/contacts"): "list",
    ("POST", "/api/v1/contacts"): "list",
    ("GET", "/api/v1/escalation-policies"): "list",
    ("POST", "/api/v1/escalation-policies"): "body",
    ("GET", "/api/v1/escalation-policies/templates"): "list",
    ("POST", "/api/v1/escalation-policies/from-template"): "body",
    ("PUT", "/api/v1/wearers/{wearer_id}/escalation-policy"): "other",
    ("GET", "/api/v1/reports/service-levels"): "list",
    ("GET", "/api/v1/audit"): "list",
    ("GET", "/api/v1/session"): "list",
    ("POST", "/api/v1/session"): "public",
    ("DELETE", "/api/v1/session"): "list",
    ("GET", "/api/v1/tokens"): "list",
    ("POST", "/api/v1/tokens"): "list",
    ("DELETE", "/api/v1/tokens/{token_id}"): "other",
    ("GET", "/api/v1/wearers/{wearer_id}/contacts"): "other",
    ("PUT", "/api/v1/wearers/{wearer_id}/contacts"): "other",
    ("GET", "/api/v1/wearers/{wearer_id}/export"): "other",
    # Erases nothing here: A's admin is answered 404 for B's wearer before any confirmation is looked at,
    # and the family member 403 (admins only), so the world the other cases use stays whole.
    ("DELETE", "/api/v1/wearers/{wearer_id}"): "other",
    (
        "GET",
        "/ack/{token}",
    ): "signed",  # the signed link is the credential (tests/e2e/test_alert_notifications.py)
    ("POST", "/ack/{token}"): "signed",
    ("GET", "/api/v1/organisation"): "list",
    ("PATCH", "/api/v1/organisation"): "list",
    ("GET", "/api/v1/users"): "list",
    ("POST", "/api/v1/users"): "list",
    ("PUT", "/api/v1/users/{user_id}/wearers"): "other",
    ("DELETE", "/api/v1/users/{user_id}"): "other",
    # The dashboard's reads (api/routes/overview.py): the overview lists only the caller's wearers.
    ("GET", "/api/v1/overview"): "list",
    ("GET", "/api/v1/wearers/{wearer_id}/vitals"): "other",
    ("GET", "/health"): "public",
    ("GET", "/metrics"): "public",
    # The event stream never ends: it is read for a moment (see ENDLESS), and what came must hold only
    # the caller's data, as for a list. tests/e2e/test_live_updates.py sends traffic.
    ("GET", "/api/v1/stream"): "list",
}
ENDLESS = {("GET", "/api/v1/stream")}


PATH_KEYS = ("alert_id", "wearer_id", "device_id", "fence_id", "token_id", "user_id")


def test_every_route_is_walked() -> None:
    paths = create_api(object()).openapi()["paths"]  # type: ignore[arg-type]
    routes = {(method.upper(), path) for path, methods in paths.items() for method in methods}
    assert routes - set(CASES) == set(), "routes missing from the isolation walk: add them to CASES"
    assert set(CASES) - routes == set(), "CASES names routes that no longer exist"


def _call(
    service: ServiceProcess, token: str | None, method: str, path: str, other: dict[str, str]
) -> httpx.Response:
    filled = path.format(**{k: v for k, v in other.items()}, token="x") if "{" in path else path
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if (method, path) in ENDLESS:
        return _glimpse(method, f"{service.api}{filled}", headers)
    body = _body(method, path, other)
    return httpx.request(method, f"{service.api}{filled}", json=body, headers=headers, timeout=15)


def _glimpse(method: str, url: str, headers: dict[str, str], seconds: float = 1.0) -> httpx.Response:
    """The first ``seconds`` of an endless answer, as a finished response (a refusal ends by itself)."""
    with httpx.stream(method, url, headers=headers, timeout=httpx.Timeout(15, read=seconds)) as response:
        content = b""
        try:
            for chunk in response.iter_raw():
                content += chunk
        except httpx.ReadTimeout:
            pass  # nothing more within the moment
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=response.request
        )


def _leaks(response: httpx.Response, markers: set[str]) -> list[str]:
    """Markers in the answer that the caller did not send (a 404 may name the id it was asked for)."""
    sent = str(response.request.url) + response.request.content.decode()
    return sorted(m for m in markers if m and m in response.text and m not in sent)


@pytest.mark.parametrize("caller", ["admin", "family", "anonymous"])
def test_no_caller_reaches_or_sees_another_organisation_or_wearer(
    isolated: tuple[ServiceProcess, World], caller: str
) -> None:
    service, world = isolated
    token = {"admin": world.a.token, "family": world.family_token, "anonymous": None}[caller]
    targets = [world.b_ids] + ([world.a2] if caller == "family" else [])
    markers = world.markers_b | (world.markers_a2 if caller == "family" else set())
    problems: list[str] = []
    for (method, path), kind in CASES.items():
        if kind == "signed" or (method, path) == ("DELETE", "/api/v1/session"):
            continue
        for other in targets:
            if kind != "other" and other is not targets[0]:
                continue
            if kind == "other" and any(f"{{{k}}}" in path and k not in other for k in PATH_KEYS):
                continue  # A's other wearer has no token
            response = _call(service, token, method, path, other)
            status = response.status_code
            if caller == "anonymous" and kind not in ("public",):
                allowed = {401}
            elif kind == "other":
                allowed = {403, 404}
            elif kind == "body":
                allowed = {403, 404, 422}
            else:
                allowed = set(range(200, 300)) | {401, 403}
            if status not in allowed:
                problems.append(f"{caller} {method} {path} -> {status}: {response.text[:200]}")
            leaked = _leaks(response, markers)
            if leaked:
                problems.append(f"{caller} {method} {path} leaked {leaked}: {response.text[:200]}")
    assert problems == []

"""Logging in for the dashboard and tokens for integrations, against the running service: the session
cookie and its CSRF token, logout, lockout after failed logins (without telling which addresses have an
account), read-only and revoked tokens."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from geosentinel.auth import hash_password
from geosentinel.model import Role
from geosentinel.store import open_store
from geosentinel.testing import TEST_PASSWORD, ServiceProcess, Tenant

pytestmark = pytest.mark.e2e


def _user(tenant: Tenant, email: str) -> None:
    store = open_store(tenant.db_url)
    try:
        store.create_user(tenant.org_id, email, hash_password(TEST_PASSWORD), Role.CAREGIVER, "Carer")
    finally:
        store.close()


def _login(client: httpx.Client, email: str, password: str = TEST_PASSWORD) -> httpx.Response:
    return client.post("/api/v1/session", json={"email": email, "password": password})


def test_login_sets_a_safe_cookie_and_changes_need_the_csrf_token(
    service: ServiceProcess, tenant: Tenant
) -> None:
    _user(tenant, "flow@example.org")
    with httpx.Client(base_url=service.api, timeout=10) as client:
        assert client.get("/api/v1/alerts").status_code == 401
        response = _login(client, "Flow@Example.org")
        assert response.status_code == 200, response.text
        cookie = response.headers["set-cookie"]
        assert "gs_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Max-Age=43200" in cookie
        csrf = response.json()["csrf_token"]
        assert response.json()["user"]["role"] == "caregiver"
        assert client.get("/api/v1/alerts").status_code == 200  # the cookie is enough to read
        assert client.get("/api/v1/session").json()["csrf_token"] == csrf
        body: dict[str, Any] = {"label": "from the dashboard"}
        refused = client.post("/api/v1/tokens", json=body)
        assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["error"]["message"]
        assert client.post("/api/v1/tokens", json=body, headers={"X-CSRF-Token": "wrong"}).status_code == 403
        assert client.post("/api/v1/tokens", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
        kept = dict(client.cookies)
        assert client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    with httpx.Client(base_url=service.api, timeout=10, cookies=kept) as replay:
        assert replay.get("/api/v1/alerts").status_code == 401  # a copy of the cookie no longer works


def test_failed_logins_lock_the_account_and_unknown_addresses_look_the_same(
    service: ServiceProcess, tenant: Tenant
) -> None:
    _user(tenant, "guessed@example.org")
    with httpx.Client(base_url=service.api, timeout=10) as client:
        wrong = [_login(client, "guessed@example.org", "not-the-password") for _ in range(5)]
        unknown = [_login(client, "nobody-here@example.org", "not-the-password") for _ in range(5)]
        for answers in (wrong, unknown):
            assert [r.status_code for r in answers] == [401, 401, 401, 401, 429]
            assert answers[0].json() == {
                "error": {"code": "unauthorized", "message": "wrong e-mail or password"}
            }
            assert answers[-1].headers["retry-after"] == "900"
        # Locked: even the right password is refused until the lock ends.
        assert _login(client, "guessed@example.org").status_code == 429
        assert _login(client, "someone-else@example.org", "x").status_code == 401  # others are not locked


def test_read_only_and_revoked_tokens(service: ServiceProcess, tenant: Tenant) -> None:
    admin = {"Authorization": f"Bearer {tenant.token}"}
    with httpx.Client(base_url=service.api, timeout=10) as client:
        made = client.post("/api/v1/tokens", json={"label": "reporting"}, headers=admin)
        assert made.status_code == 201 and made.json()["scopes"] == ["read"]
        reader = {"Authorization": f"Bearer {made.json()['token']}"}
        assert client.get("/api/v1/alerts", headers=reader).status_code == 200
        refused = client.post(
            "/api/v1/contacts", json={"name": "X", "urls": ["json://127.0.0.1:9/x"]}, headers=reader
        )
        assert refused.status_code == 403 and refused.json()["error"]["message"] == "this token may only read"
        listed = client.get("/api/v1/tokens", headers=admin).json()
        assert made.json()["id"] in [t["id"] for t in listed] and all("token" not in t for t in listed)
        assert client.delete(f"/api/v1/tokens/{made.json()['id']}", headers=admin).status_code == 204
        assert client.get("/api/v1/alerts", headers=reader).status_code == 401
        assert client.delete(f"/api/v1/tokens/{made.json()['id']}", headers=admin).status_code == 404

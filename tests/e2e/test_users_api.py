"""The organisation and its users, against the running service: the caller's organisation, and an admin
adding users, linking a family member to wearers, and disabling an account (which ends its sessions and
tokens at once)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from geosentinel.auth import hash_password, new_token
from geosentinel.model import Role
from geosentinel.store import open_store
from geosentinel.testing import TEST_PASSWORD, ServiceProcess, Tenant

pytestmark = pytest.mark.e2e


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _caregiver_token(tenant: Tenant, email: str) -> str:
    store = open_store(tenant.db_url)
    try:
        user = store.create_user(tenant.org_id, email, hash_password(TEST_PASSWORD), Role.CAREGIVER, "Carer")
        token, digest = new_token()
        store.create_token(user.id, digest, "test")
    finally:
        store.close()
    return token


def test_every_caller_sees_their_own_organisation(service: ServiceProcess, tenant: Tenant) -> None:
    carer = _caregiver_token(tenant, "org-reader@example.org")
    expected = {"id": tenant.org_id, "name": "Probe", "region": "eu", "timezone": "Europe/Paris",
                "locale": "fr", "retention_days": 365}  # fmt: skip
    for token in (tenant.token, carer):
        response = httpx.get(f"{service.api}/api/v1/organisation", headers=_bearer(token), timeout=10)
        assert response.status_code == 200, response.text
        assert response.json() == expected
    assert httpx.get(f"{service.api}/api/v1/organisation", timeout=10).status_code == 401


def test_an_admin_adds_links_and_disables_users(service: ServiceProcess, tenant: Tenant) -> None:
    admin = _bearer(tenant.token)
    with httpx.Client(base_url=f"{service.api}/api/v1", timeout=10) as api:
        new: dict[str, Any] = {"email": "Mum@Example.org", "password": "short", "role": "family",
                               "display_name": "Mum"}  # fmt: skip
        weak = api.post("/users", json=new, headers=admin | {"Accept-Language": "fr"})
        assert weak.status_code == 422
        assert weak.json()["error"]["message"].startswith("le mot de passe est trop faible : ")
        made = api.post("/users", json=new | {"password": TEST_PASSWORD}, headers=admin)
        assert made.status_code == 201, made.text
        mum = made.json()
        assert mum["email"] == "mum@example.org" and mum["role"] == "family" and mum["wearer_ids"] == []
        assert mum["disabled_at"] is None and set(mum) == {
            "id", "email", "role", "display_name", "created_at", "disabled_at", "wearer_ids"
        }  # fmt: skip
        again = api.post("/users", json=new | {"email": "mum@example.ORG", "password": TEST_PASSWORD},
                         headers=admin)  # fmt: skip
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"

        listed = api.get("/users", headers=admin)
        assert listed.status_code == 200 and "argon2" not in listed.text and "password" not in listed.text
        assert {"a@example.org", "mum@example.org"} <= {u["email"] for u in listed.json()["items"]}
        families = api.get("/users", params={"role": "family", "limit": 1}, headers=admin).json()
        assert [u["email"] for u in families["items"]] == ["mum@example.org"] and families["limit"] == 1

        # The family member logs in; they see no wearer until linked to one.
        login = api.post("/session", json={"email": "mum@example.org", "password": TEST_PASSWORD})
        assert login.status_code == 200, login.text
        csrf = login.json()["csrf_token"]
        body = {"label": "mum", "scopes": ["read", "write"]}
        token = api.post("/tokens", json=body, headers={"X-CSRF-Token": csrf}).json()["token"]
        assert api.get("/wearers", headers=_bearer(token)).json()["items"] == []
        assert api.get("/users", headers=_bearer(token)).status_code == 403

        path = f"/users/{mum['id']}/wearers"
        linked = api.put(path, json={"wearer_ids": [tenant.wearer_id]}, headers=admin)
        assert linked.status_code == 200 and linked.json()["wearer_ids"] == [tenant.wearer_id]
        assert [w["id"] for w in api.get("/wearers", headers=_bearer(token)).json()["items"]] == [
            tenant.wearer_id
        ]
        unknown = api.put(path, json={"wearer_ids": ["nobody"]}, headers=admin)
        assert unknown.status_code == 422 and unknown.json()["error"]["message"] == "no wearer nobody"
        me = api.get("/session", headers=admin).json()["user"]["id"]
        assert api.put(f"/users/{me}/wearers", json={"wearer_ids": []}, headers=admin).status_code == 422
        assert api.put("/users/nobody/wearers", json={"wearer_ids": []}, headers=admin).status_code == 404

        # Disabling: not oneself; then the session, the token and the password stop working at once.
        own = api.delete(f"/users/{me}", headers=admin)
        assert own.status_code == 409
        assert own.json()["error"]["message"] == "you cannot disable your own account"
        assert api.delete(f"/users/{mum['id']}", headers=_bearer(token)).status_code == 403
        assert api.get("/wearers").status_code == 200  # the session cookie, still live
        assert api.delete(f"/users/{mum['id']}", headers=admin).status_code == 204
        assert api.get("/wearers").status_code == 401
        assert api.get("/wearers", headers=_bearer(token)).status_code == 401
        relogin = api.post("/session", json={"email": "mum@example.org", "password": TEST_PASSWORD})
        assert relogin.status_code == 401
        shown = [u for u in api.get("/users", headers=admin).json()["items"] if u["id"] == mum["id"]]
        assert shown[0]["disabled_at"] is not None
        assert api.delete(f"/users/{mum['id']}", headers=admin).status_code == 204  # already: no change
        assert api.delete("/users/nobody", headers=admin).status_code == 404

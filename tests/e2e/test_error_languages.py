"""The API's error messages in the caller's language (Accept-Language: fr, en, zh), same codes."""

from __future__ import annotations

import httpx
import pytest

from geosentinel.testing import ServiceProcess, Tenant

pytestmark = pytest.mark.e2e

EXPECTED = {
    "en": ("no alert nope", "authentication required", "invalid request"),
    "fr": ("aucune alerte nope", "authentification requise", "requête invalide"),
    "zh": ("没有警报 nope", "需要身份验证", "请求无效"),
}


@pytest.mark.parametrize("language", ["en", "fr", "zh"])
def test_errors_speak_the_callers_language(service: ServiceProcess, tenant: Tenant, language: str) -> None:
    accept = {"en": "en-GB,en;q=0.9", "fr": "fr-FR,fr;q=0.9,en;q=0.5", "zh": "zh-CN,zh;q=0.9"}[language]
    headers = {"Accept-Language": accept, "Authorization": f"Bearer {tenant.token}"}
    not_found, unauthenticated, invalid = EXPECTED[language]
    with httpx.Client(base_url=service.api, timeout=10) as client:
        missing = client.get("/api/v1/alerts/nope", headers=headers)
        assert missing.status_code == 404 and missing.headers["content-language"] == language
        assert missing.json() == {"error": {"code": "not_found", "message": not_found}}
        anonymous = client.get("/api/v1/alerts", headers={"Accept-Language": accept})
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
        assert anonymous.json()["error"]["message"].startswith(unauthenticated)
        bad = client.get("/api/v1/alerts", params={"limit": "many"}, headers=headers)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
        assert (
            bad.json()["error"]["message"].startswith(invalid) and "limit" in bad.json()["error"]["message"]
        )
        unknown_route = client.get("/api/v1/nothing-here", headers=headers)
        assert unknown_route.status_code == 404
        assert (
            unknown_route.json()["error"]["message"]
            == {"en": "Not Found", "fr": "Introuvable", "zh": "未找到"}[language]
        )

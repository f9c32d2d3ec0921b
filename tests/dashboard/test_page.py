"""The dashboard's page and assets as the service serves them (``geosentinel.dashboard``), and the shipped
bundle itself: every file the page names is in the package, pinned libraries, the basemap's licence."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from geosentinel.dashboard import STATIC, DashboardSettings, install

WEB = Path(__file__).parent.parent.parent / "web"


class _Client:
    """Requests to an app with only the dashboard installed (through ASGI, no server)."""

    def __init__(self, settings: DashboardSettings | None = None) -> None:
        self.app = FastAPI()
        install(self.app, settings or DashboardSettings())

    async def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get(path, headers=headers)


def _client(settings: DashboardSettings | None = None) -> _Client:
    return _Client(settings)


def _config(page: str) -> dict[str, object]:
    found = re.search(r'<script id="gs-config" type="application/json">(.*?)</script>', page, re.S)
    assert found is not None
    config: dict[str, object] = json.loads(found.group(1))
    return config


@pytest.mark.anyio
async def test_the_page_names_its_assets_by_version_and_is_revalidated() -> None:
    response = await _client().get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "connect-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert "img-src 'self' data: blob:;" in csp  # no tile server: nothing from elsewhere
    urls = re.findall(r'(?:href|src)="(/assets/[^"]+)"', response.text)
    assert [u.split("?")[0] for u in urls] == ["/assets/app.css", "/assets/app.js"]
    config = _config(response.text)
    assert config["tiles"] is None and config["tiles_cn"] is None
    assert set(config["assets"]) == {"countries", "streets"}  # type: ignore[arg-type]
    client = _client()
    for url in [*urls, *config["assets"].values()]:  # type: ignore[attr-defined]
        assert (await client.get(url)).status_code == 200, url


@pytest.mark.anyio
async def test_versioned_assets_are_cached_for_a_year_and_revalidated_otherwise() -> None:
    client = _client()
    js = re.search(r'src="(/assets/app.js\?v=(\w+))"', (await client.get("/")).text)
    assert js is not None
    fresh = await client.get(js.group(1), headers={"Accept-Encoding": "gzip"})
    assert fresh.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert fresh.headers["etag"] == f'"{js.group(2)}"'
    assert fresh.headers["content-type"].startswith(("application/javascript", "text/javascript"))
    assert fresh.content == (STATIC / "app.js").read_bytes()  # the client undid the gzip encoding
    assert fresh.headers["content-encoding"] == "gzip"
    unversioned = await client.get("/assets/app.js")
    assert unversioned.headers["cache-control"] == "no-cache"
    again = await client.get("/assets/app.js", headers={"If-None-Match": fresh.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.anyio
async def test_assets_are_gzipped_only_for_browsers_that_accept_it() -> None:
    client = _client()
    plain = await client.get("/assets/basemap/streets.json", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    raw = await client.get("/assets/basemap/streets.json", headers={"Accept-Encoding": "gzip"})
    assert len(gzip.compress(plain.content)) < len(plain.content) / 2
    assert raw.json() == plain.json()


@pytest.mark.parametrize("path", ["/assets/nope.js", "/assets/../__init__.py", "/assets/%2e%2e/__init__.py",
                                  "/assets/basemap", "/assets/"])  # fmt: skip
@pytest.mark.anyio
async def test_only_the_shipped_files_are_served(path: str) -> None:
    assert (await _client().get(path)).status_code == 404


def test_tile_servers_come_from_the_environment() -> None:
    settings = DashboardSettings.from_env({
        "GEOSENTINEL_TILE_URL": "https://{s}.tiles.example.org/{z}/{x}/{y}.png",
        "GEOSENTINEL_TILE_ATTRIBUTION": "© Example </script><script>alert(1)</script>",
        "GEOSENTINEL_TILE_URL_CN": "https://webrd0{s}.is.autonavi.example/appmaptile?x={x}&y={y}&z={z}",
    })  # fmt: skip
    assert settings.tiles is not None and settings.tiles.datum == "wgs84"
    assert settings.tiles_cn is not None and settings.tiles_cn.datum == "gcj02"  # Chinese maps' datum
    response = asyncio.run(_client(settings).get("/"))
    assert "</script><script>alert(1)" not in response.text  # written as \u003c inside the JSON
    config = _config(response.text)
    assert config["tiles"] == {
        "url": "https://{s}.tiles.example.org/{z}/{x}/{y}.png",
        "attribution": "© Example </script><script>alert(1)</script>",
        "datum": "wgs84",
    }
    assert config["tiles_cn"]["datum"] == "gcj02"  # type: ignore[index]
    csp = response.headers["content-security-policy"]
    assert (
        "img-src 'self' data: blob: https://*.tiles.example.org https://webrd0*.is.autonavi.example;" in csp
    )


@pytest.mark.parametrize("env", [{"GEOSENTINEL_TILE_URL": "file:///etc/passwd"},
                                 {"GEOSENTINEL_TILE_URL": "https://t.example/{z}/{x}/{y}.png",
                                  "GEOSENTINEL_TILE_DATUM": "bd09"}])  # fmt: skip
def test_bad_tile_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"GEOSENTINEL_TILE_URL|datum"):
        DashboardSettings.from_env(env)


def test_the_street_extract_is_compact_and_credits_openstreetmap() -> None:
    path = STATIC / "basemap" / "streets.json"
    assert path.stat().st_size < 400_000
    extract = json.loads(path.read_text())
    assert extract["attribution"] == "© OpenStreetMap contributors"
    assert "ODbL" in extract["licence"]
    assert [c["name"] for c in extract["cities"]] == ["marseille", "aix"]
    assert all(extract["layers"][name] for name in ("major", "tertiary", "minor", "water", "green"))
    assert "OpenStreetMap</a> contributors" in (STATIC / "app.js").read_text()  # the map's credit line


def test_front_end_libraries_are_pinned_to_exact_versions() -> None:
    package = json.loads((WEB / "package.json").read_text())
    lock = json.loads((WEB / "package-lock.json").read_text())
    pinned = {**package["dependencies"], **package["devDependencies"]}
    assert {"leaflet", "@geoman-io/leaflet-geoman-free", "gcoord", "esbuild"} <= set(pinned)
    for name, version in pinned.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} {version} is not an exact version"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    notices = (STATIC / "THIRD-PARTY-LICENSES.txt").read_text()
    assert "== leaflet ==" in notices and "== gcoord ==" in notices

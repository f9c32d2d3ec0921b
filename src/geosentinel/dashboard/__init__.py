"""The caregivers' dashboard, served by the service itself: ``/`` the page, ``/assets/…`` its files.

The page is a single-page application (``web/`` in the repository, bundled by ``make web`` into
``static/``, which ships in the package: the service needs no node and no network at run time). It talks to
the same ``/api/v1`` routes as any client, logged in with the session cookie, and follows the event stream.

Settings come from the environment (read when the API is created), so that a deployment can point the map at
its own tile server; with none, the page draws the bundled offline basemap (Natural Earth outlines and an
OpenStreetMap street extract of central Marseille and Aix):

- ``GEOSENTINEL_TILE_URL``: a raster tile URL template (``https://tiles.example/{z}/{x}/{y}.png``);
  ``GEOSENTINEL_TILE_ATTRIBUTION`` its credit line; ``GEOSENTINEL_TILE_DATUM`` ``wgs84`` (default) or
  ``gcj02``;
- ``GEOSENTINEL_TILE_URL_CN``, ``GEOSENTINEL_TILE_ATTRIBUTION_CN``, ``GEOSENTINEL_TILE_DATUM_CN`` (default
  ``gcj02``): the same for organisations of region ``cn``, whose maps (Amap/Gaode style) are drawn in
  GCJ-02: the page then converts positions from WGS-84 for display, and drawn geofences back.

Assets are answered from memory, gzipped when the browser accepts it, with an ETag; the page names them
with a ``?v=<hash of the content>`` that lets the browser keep them for a year (``immutable``), while the
page itself is revalidated at every load.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import mimetypes
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, cast
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, FastAPI, Request, Response

from geosentinel.api.routes.overview import LOW_BATTERY_PCT

STATIC: Final = Path(__file__).parent / "static"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
REVALIDATE: Final = "no-cache"
_COMPRESSIBLE: Final = ("text/", "application/javascript", "application/json", "image/svg+xml")

Datum = Literal["wgs84", "gcj02"]


@dataclass(frozen=True, slots=True)
class TileServer:
    """A raster tile server for the map, and the datum its images are drawn in."""

    url: str
    attribution: str = ""
    datum: Datum = "wgs84"

    def origin(self) -> str:
        """Where its images come from, for the page's Content-Security-Policy (``{s}`` subdomains: ``*``)."""
        parts = urlsplit(self.url.replace("{s}", "x-sub"))
        return f"{parts.scheme}://{parts.netloc}".replace("x-sub", "*")


def _datum(value: str | None, default: Datum) -> Datum:
    value = (value or default).strip().lower()
    if value not in ("wgs84", "gcj02"):
        raise ValueError(f"tile datum must be wgs84 or gcj02, not {value!r}")
    return cast(Datum, value)


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    tiles: TileServer | None = None  # None: the bundled offline basemap
    tiles_cn: TileServer | None = None  # for organisations of region cn (None: as the others)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> DashboardSettings:
        def server(suffix: str, default_datum: Datum) -> TileServer | None:
            url = env.get(f"GEOSENTINEL_TILE_URL{suffix}", "").strip()
            if not url:
                return None
            if urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(f"GEOSENTINEL_TILE_URL{suffix} must be an http(s) URL template")
            attribution = env.get(f"GEOSENTINEL_TILE_ATTRIBUTION{suffix}", "")
            return TileServer(
                url, attribution, _datum(env.get(f"GEOSENTINEL_TILE_DATUM{suffix}"), default_datum)
            )

        return cls(server("", "wgs84"), server("_CN", "gcj02"))

    def page_config(self) -> dict[str, object]:
        def one(server: TileServer | None) -> dict[str, str] | None:
            if server is None:
                return None
            return {"url": server.url, "attribution": server.attribution, "datum": server.datum}

        return {"tiles": one(self.tiles), "tiles_cn": one(self.tiles_cn), "low_battery_pct": LOW_BATTERY_PCT}

    def image_origins(self) -> list[str]:
        return sorted({s.origin() for s in (self.tiles, self.tiles_cn) if s is not None})


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    version: str  # the first 16 hex digits of the content's SHA-256
    gzipped: bytes | None = None


@dataclass(slots=True)
class Assets:
    """The files of ``static/``, read once (the folder is small), by path relative to it."""

    folder: Path = STATIC
    files: dict[str, Asset] = field(default_factory=dict)

    def load(self) -> dict[str, Asset]:
        if not self.files:
            for path in sorted(p for p in self.folder.rglob("*") if p.is_file()):
                body = path.read_bytes()
                media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                if media_type.startswith("text/") or media_type == "application/javascript":
                    media_type += "; charset=utf-8"
                packed = gzip.compress(body, 6, mtime=0) if media_type.startswith(_COMPRESSIBLE) else None
                version = hashlib.sha256(body).hexdigest()[:16]
                self.files[path.relative_to(self.folder).as_posix()] = Asset(
                    body, media_type, version, packed
                )
        return self.files

    def url(self, name: str) -> str:
        return f"/assets/{name}?v={self.load()[name].version}"


SHELL: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>GeoSentinel</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{css}">
<script id="gs-config" type="application/json">{config}</script>
<script src="{js}" defer></script>
</head>
<body>
<div id="app"></div>
<noscript>GeoSentinel needs JavaScript. / GeoSentinel a besoin de JavaScript.
/ GeoSentinel 需要 JavaScript。</noscript>
</body>
</html>
"""


def _csp(settings: DashboardSettings) -> str:
    images = " ".join(["'self'", "data:", "blob:", *settings.image_origins()])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src {images}; connect-src 'self'; font-src 'self'; media-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def router(settings: DashboardSettings, assets: Assets | None = None) -> APIRouter:
    """The page and its assets (not part of the API's OpenAPI schema)."""
    assets = assets or Assets()
    routes = APIRouter(include_in_schema=False)
    page_headers = {
        "Cache-Control": REVALIDATE,
        "Content-Security-Policy": _csp(settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }

    @routes.api_route("/", methods=["GET", "HEAD"])
    async def page() -> Response:
        files = {
            "countries": assets.url("basemap/countries-50m.json"),
            "streets": assets.url("basemap/streets.json"),
        }
        config = orjson.dumps({**settings.page_config(), "assets": files}).decode()
        # In a <script> element "</" would end it: JSON lets "<" be written as \\u003c.
        body = SHELL.format(
            css=html.escape(assets.url("app.css")),
            js=html.escape(assets.url("app.js")),
            config=config.replace("<", "\\u003c"),
        )
        return Response(body, media_type="text/html; charset=utf-8", headers=page_headers)

    @routes.api_route("/assets/{name:path}", methods=["GET", "HEAD"])
    async def asset(name: str, request: Request) -> Response:
        found = assets.load().get(name)
        if found is None:
            return Response(status_code=404)
        etag = f'"{found.version}"'
        cache = IMMUTABLE if request.query_params.get("v") == found.version else REVALIDATE
        headers = {"ETag": etag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff",
                   "Vary": "Accept-Encoding"}  # fmt: skip
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        body = found.body
        if found.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            body, headers["Content-Encoding"] = found.gzipped, "gzip"
        return Response(body, media_type=found.media_type, headers=headers)

    return routes


def install(app: FastAPI, settings: DashboardSettings | None = None) -> None:
    """Serve the dashboard at ``/`` (settings from the environment unless given)."""
    app.include_router(router(settings or DashboardSettings.from_env()))

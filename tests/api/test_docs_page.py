"""The API's /docs page works on a machine without internet: every file it loads comes from the service."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from geosentinel.app import create_api
from geosentinel.store import open_store


@pytest.mark.anyio
async def test_docs_page_loads_only_files_the_service_serves(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gs.db'}")
    try:
        transport = httpx.ASGITransport(app=create_api(store))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            page = await client.get("/docs")
            assert page.status_code == 200
            assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            assert any(a.endswith(".js") for a in assets), assets
            for asset in assets:
                assert asset.startswith("/"), f"{asset} is not served by the service"
                assert (await client.get(asset)).status_code == 200, asset
            assert "/openapi.json" in page.text
            assert (await client.get("/openapi.json")).status_code == 200
    finally:
        store.close()

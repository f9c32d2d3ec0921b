"""A page of Debian's headless Chromium (installed by `make test`), driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, sync_playwright

from geosentinel.testing import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module")
def blank_page() -> Iterator[Page]:
    """An empty page (no server): tests load the bundle into it and call its functions."""
    if not CHROMIUM.exists():  # a missing browser is a failure, not a skip: make test installs it
        pytest.fail(f"{CHROMIUM} is missing: run the suite with `make test`, which installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_content("<!doctype html><html><head></head><body></body></html>")
        yield page
        browser.close()

"""The caregivers' dashboard in a real browser: Playwright drives Debian's headless Chromium against the real
service, fed by simulated bracelets over OsmAnd.

A care organisation in Marseille has four wearers: Jeanne walked along La Canebière this morning, Marcel is
at the Palais Longchamp, Louise's bracelet runs low, Henri's was never heard. The tests log in, watch a
marker move, see an SOS reach the inbox within two seconds without a reload (with its banner and beep),
acknowledge it (the API agrees), draw a circle and a polygon zone (the API has them), and switch the page
to Chinese. They save screenshots (see :data:`SCREENSHOTS`); those in the README come from these tests.

The tests run in order against one service (the SOS of one is acknowledged by the next).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from geosentinel.auth import hash_password
from geosentinel.model import Role
from geosentinel.store import open_store
from geosentinel.testing import CHROMIUM, CHROMIUM_ARGS, TEST_PASSWORD, ServiceProcess, Tenant, provision

pytestmark = pytest.mark.e2e

# Where the screenshots go: var/screenshots (ignored by git) unless GEOSENTINEL_SCREENSHOTS names another
# folder; the README's come from `GEOSENTINEL_SCREENSHOTS=docs/screenshots` (docs/dashboard.md).
ROOT = Path(__file__).parent.parent.parent
SCREENSHOTS = ROOT / os.environ.get("GEOSENTINEL_SCREENSHOTS", "var/screenshots")
EMAIL = "soignante@example.org"
FAMILY_EMAIL = "fils.durand@example.org"  # Marcel's son
JEANNE, MARCEL, LOUISE, HENRI = "861001000700001", "861001000700002", "861001000700003", "861001000700004"
# La Canebière, from the Vieux-Port to the Réformés church (a straight avenue).
CANEBIERE = ((43.29555, 5.37445), (43.29905, 5.38475))
LONGCHAMP = (43.30440, 5.39420)


@dataclass
class World:
    tenant: Tenant
    service: ServiceProcess
    wearers: dict[str, str]  # name -> id


def _fix(service: ServiceProcess, unique_id: str, lat: float, lon: float, at: datetime | None = None,
         **extra: object) -> None:  # fmt: skip
    stamp = int((at or datetime.now(UTC)).timestamp())
    params: dict[str, Any] = {"id": unique_id, "lat": lat, "lon": lon, "timestamp": stamp, **extra}
    assert httpx.get(f"{service.osmand}/", params=params, timeout=10).status_code == 200


def _walk_this_morning(service: ServiceProcess) -> None:
    """Jeanne's walk along La Canebière, with heart rate, SpO2, steps and battery, within today (Paris)."""
    now = datetime.now(UTC)
    midnight = datetime.now(ZoneInfo("Europe/Paris")).replace(hour=0, minute=0, second=0, microsecond=0)
    start = max(midnight.astimezone(UTC) + timedelta(minutes=1), now - timedelta(hours=3))
    count = 36
    step = (now - timedelta(minutes=5) - start) / count
    (lat0, lon0), (lat1, lon1) = CANEBIERE
    for i in range(count + 1):
        share = i / count if i <= count // 2 else (count - i) / count * 0.6 + 0.4  # there, and part way back
        _fix(service, JEANNE, lat0 + (lat1 - lat0) * share, lon0 + (lon1 - lon0) * share, start + step * i,
             batt=92 - i // 3, heartrate=68 + (i * 7) % 15, spo2=95 + i % 4, steps=i * 140)  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("dashboard")
    tenant = provision(f"sqlite:///{folder / 'gs.db'}", "Résidence du Vieux-Port", JEANNE, EMAIL,
                       wearer_name="Jeanne Martin")  # fmt: skip
    store = open_store(tenant.db_url)
    try:
        wearers = {"Jeanne Martin": tenant.wearer_id}
        for name, unique_id in (
            ("Marcel Durand", MARCEL),
            ("Louise Bernard", LOUISE),
            ("Henri Blanc", HENRI),
        ):
            wearer = store.create_wearer(tenant.org_id, name)
            store.create_device(tenant.org_id, wearer.id, unique_id, "osmand")
            wearers[name] = wearer.id
        son = store.create_user(
            tenant.org_id, FAMILY_EMAIL, hash_password(TEST_PASSWORD), Role.FAMILY, "Paul"
        )
        store.link_wearer(son.id, wearers["Marcel Durand"])
    finally:
        store.close()
    service = ServiceProcess(tenant.db_url, folder / "serve.log").start()
    try:
        _walk_this_morning(service)
        _fix(service, MARCEL, *LONGCHAMP, batt=64, heartrate=74)
        for _ in range(2):  # two readings under the threshold open a low-battery alert
            _fix(service, LOUISE, 43.29150, 5.38490, batt=11)
            time.sleep(1.1)
        yield World(tenant, service, wearers)
    finally:
        service.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():  # a missing browser is a failure, not a skip: make test installs it
        pytest.fail(
            f"{CHROMIUM} is missing: run the suite with `make test`, which installs Debian's chromium"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


PAGE_ERRORS: list[str] = []  # uncaught script errors of every page opened here


@pytest.fixture(autouse=True)
def _close_pages(browser: Browser) -> Iterator[None]:
    yield
    for context in browser.contexts:
        context.close()  # and its event stream: streams left open by earlier tests would pile up


def _open(browser: Browser, world: World, width: int = 1400, height: int = 900) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height}, locale="en-GB")
    page = context.new_page()
    page.on("pageerror", lambda error: PAGE_ERRORS.append(str(error)))
    page.goto(f"{world.service.api}/")
    return page


def _log_in(page: Page, email: str = EMAIL) -> None:
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#live-map")).to_be_visible()
    # The event stream is open (generous: a loaded CI machine may take a while; the SOS test times
    # what matters, from the fix sent to the card shown).
    expect(page.locator("#live")).to_have_text("Live", timeout=30_000)


def _pin(page: Page, wearer_id: str) -> Any:
    return page.locator(f'.gs-pin[data-wearer-id="{wearer_id}"]')


def _screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def _api(world: World, path: str, **params: object) -> Any:
    headers = {"Authorization": f"Bearer {world.tenant.token}"}
    response = httpx.get(f"{world.service.api}{path}", params=params, headers=headers, timeout=10)  # type: ignore[arg-type]
    response.raise_for_status()
    return response.json()


def test_log_in_and_see_every_wearer_on_the_live_map(browser: Browser, world: World) -> None:
    page = _open(browser, world)
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    _log_in(page)
    expect(page.locator("#live-map[data-basemap=ready]")).to_be_attached()
    for name in ("Jeanne Martin", "Marcel Durand", "Louise Bernard"):
        expect(_pin(page, world.wearers[name])).to_be_visible()
    expect(_pin(page, world.wearers["Louise Bernard"])).to_have_class("gs-pin st-low_battery")
    expect(_pin(page, world.wearers["Marcel Durand"])).to_have_class("gs-pin st-ok")
    expect(page.locator(".wearer-list")).to_contain_text("Henri Blanc")  # never heard: listed, not mapped
    expect(_pin(page, world.wearers["Henri Blanc"])).to_have_count(0)
    expect(page.locator(".leaflet-control-attribution")).to_contain_text("© OpenStreetMap contributors")
    assert PAGE_ERRORS == []


def test_a_wearers_marker_moves_when_their_bracelet_reports(browser: Browser, world: World) -> None:
    page = _open(browser, world)
    _log_in(page)
    pin = _pin(page, world.wearers["Marcel Durand"])
    before = pin.bounding_box()
    assert before is not None
    _fix(world.service, MARCEL, LONGCHAMP[0] - 0.0030, LONGCHAMP[1] - 0.0040, batt=63)
    deadline = time.monotonic() + 5
    after = pin.bounding_box()
    while after == before and time.monotonic() < deadline:
        page.wait_for_timeout(100)
        after = pin.bounding_box()
    assert after is not None and after != before, "the marker did not move"
    assert after["x"] < before["x"] and after["y"] > before["y"]  # south-west, as the fix
    _screenshot(page, "map.png")


def test_an_sos_reaches_the_inbox_within_two_seconds_without_reload(browser: Browser, world: World) -> None:
    page = _open(browser, world)
    _log_in(page)
    page.mouse.click(5, 300)  # a user gesture: the page may play the alert's sound from now on
    sent = time.monotonic()
    _fix(world.service, JEANNE, *CANEBIERE[1], alarm="sos", batt=80)
    card = page.locator(".alert-card").filter(has_text="Jeanne Martin").filter(has_text="SOS")
    card.wait_for(timeout=2000)
    elapsed = time.monotonic() - sent
    assert elapsed < 2.0, f"the SOS took {elapsed:.2f} s to appear"
    expect(page.locator("#alert-banner")).to_contain_text("New alert: SOS — Jeanne Martin")
    assert page.evaluate("window.GeoSentinel.cues.beeps") >= 1  # the audible cue
    expect(_pin(page, world.wearers["Jeanne Martin"])).to_have_class("gs-pin st-alert")
    # Most severe first: the SOS above Louise's low battery.
    assert "SOS" in page.locator(".alert-card").first.inner_text()
    expect(page.locator("#nav-count")).to_have_text("2")
    page.wait_for_timeout(300)
    _screenshot(page, "map-sos.png")


def test_acknowledging_the_sos_changes_its_state_and_the_api_agrees(browser: Browser, world: World) -> None:
    page = _open(browser, world)
    _log_in(page)
    page.get_by_role("link", name="Alerts").click()
    card = page.locator(".alert-card").filter(has_text="Jeanne Martin").filter(has_text="SOS")
    card.get_by_label("Note").fill("Called her: she fell, I am on my way")
    card.get_by_role("button", name="Acknowledge").click()
    expect(card.locator(".alert-status")).to_have_text("Acknowledged")
    expect(card.get_by_role("button", name="Acknowledge")).to_be_hidden()
    alert_id = card.get_attribute("data-alert-id")
    assert _api(world, f"/api/v1/alerts/{alert_id}")["status"] == "acknowledged"
    card.get_by_role("button", name="Timeline").click()
    expect(card.locator(".timeline")).to_contain_text(
        "Acknowledged by you — « Called her: she fell, I am on my way »"
    )
    _screenshot(page, "inbox.png")


def _draw(page: Page, tool: str, points: list[tuple[float, float]]) -> None:
    """Draws with a Leaflet-Geoman tool, clicking at points given as fractions of the map's size."""
    page.locator(f".leaflet-pm-icon-{tool}").click()
    box = page.locator("#wearer-map").bounding_box()
    assert box is not None
    for fx, fy in points:
        page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy, steps=4)
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)


def _save_zone(page: Page, name: str, kind: str) -> None:
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill(name)
    dialog.get_by_label("Kind").select_option(kind)
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(".fence-list")).to_contain_text(name)


def test_draw_zones_on_the_wearers_page_and_see_them_saved(browser: Browser, world: World) -> None:
    page = _open(browser, world)
    _log_in(page)
    jeanne = world.wearers["Jeanne Martin"]
    page.goto(f"{world.service.api}/#/wearers/{jeanne}")
    expect(page.get_by_role("heading", name="Jeanne Martin", level=1)).to_be_visible()
    expect(page.locator(".trail-info")).to_contain_text("positions this day")
    expect(page.locator(".chart svg")).to_have_count(4)  # heart rate, SpO2, steps, battery
    _draw(page, "circle", [(0.30, 0.45), (0.38, 0.45)])
    _save_zone(page, "Home", "safe")
    _draw(page, "polygon", [(0.60, 0.30), (0.75, 0.32), (0.72, 0.55), (0.58, 0.50), (0.60, 0.30)])
    _save_zone(page, "Railway works", "danger")
    saved = _api(world, "/api/v1/geofences", wearer_id=jeanne)["features"]
    fences = {f["properties"]["name"]: f for f in saved}
    home, works = fences["Home"], fences["Railway works"]
    assert home["geometry"]["type"] == "Point" and home["properties"]["radius_m"] > 20
    assert home["properties"]["kind"] == "safe" and home["properties"]["wearer_id"] == jeanne
    lon, lat = home["geometry"]["coordinates"]
    assert 43.28 < lat < 43.31 and 5.36 < lon < 5.40  # drawn over central Marseille
    assert works["geometry"]["type"] == "Polygon" and works["properties"]["kind"] == "danger"
    ring = works["geometry"]["coordinates"][0]
    assert len(ring) == 5 and ring[0] == ring[-1]
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / "wearer.png"), full_page=True)


def test_settings_add_a_contact_and_a_policy_from_a_template(browser: Browser, world: World) -> None:
    page = _open(browser, world)
    _log_in(page)
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Contacts")).to_be_visible()
    form = page.locator("form").filter(has_text="Add a contact")
    form.get_by_label("Name").fill("Nurse station")
    form.get_by_label("Language").select_option("fr")
    form.get_by_label("Channels").fill("json://127.0.0.1:9/nurse")
    form.get_by_role("button", name="Add").click()
    expect(page.locator("table.data")).to_contain_text("Nurse station")
    policy = page.locator("form").filter(has_text="Add a policy from a template")
    policy.get_by_label("Template").select_option("fr_charter")
    policy.get_by_label("Name").fill("Charte")
    policy.get_by_label("Use for every wearer without their own policy").check()
    policy.get_by_label("Emergency contacts (required)").select_option(label="Nurse station")
    policy.get_by_role("button", name="Add").click()
    expect(page.locator(".policies")).to_contain_text("Charte")
    contacts = {c["name"]: c for c in _api(world, "/api/v1/contacts")}
    policies = {p["name"]: p for p in _api(world, "/api/v1/escalation-policies")}
    assert contacts["Nurse station"]["locale"] == "fr"
    assert policies["Charte"]["is_default"] is True
    steps = policies["Charte"]["policy"]["steps"]  # the wearer's own contacts first, then the emergency group
    assert contacts["Nurse station"]["id"] in {c for step in steps for c in step["contacts"]}
    _screenshot(page, "settings.png")


def test_a_family_member_sees_only_their_wearer_and_cannot_change_settings(
    browser: Browser, world: World
) -> None:
    page = _open(browser, world)
    _log_in(page, FAMILY_EMAIL)
    expect(page.locator(".wearer-list li")).to_have_count(1)
    expect(page.locator(".wearer-list")).to_contain_text("Marcel Durand")
    expect(page.get_by_role("navigation").get_by_role("link", name="Settings")).to_have_count(0)
    page.goto(f"{world.service.api}/#/wearers/{world.wearers['Marcel Durand']}")
    expect(page.get_by_role("heading", name="Marcel Durand", level=1)).to_be_visible()
    expect(page.locator(".leaflet-pm-toolbar")).to_have_count(0)  # no drawing of zones
    expect(page.get_by_role("button", name="Locate now")).to_have_count(0)


def test_switch_the_interface_to_chinese(browser: Browser, world: World) -> None:
    page = _open(browser, world)
    _log_in(page)
    page.get_by_label("Language").select_option("zh")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    nav = page.get_by_role("navigation")
    expect(nav.get_by_role("link", name="地图")).to_be_visible()
    expect(nav.get_by_role("link", name="设置")).to_be_visible()
    expect(page.get_by_role("heading", name="警报收件箱")).to_be_visible()
    expect(page.get_by_role("button", name="退出登录")).to_be_visible()
    expect(page.locator(".wearer-list")).to_contain_text("电量低")  # Louise's status
    page.reload()  # the choice is kept
    expect(page.get_by_role("link", name="地图")).to_be_visible()
    _screenshot(page, "map-zh.png")


def test_on_a_phone_the_page_fits_and_works_with_the_keyboard(browser: Browser, world: World) -> None:
    page = _open(browser, world, width=390, height=844)
    _log_in(page)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390  # no sideways scrolling
    map_box = page.locator("#live-map").bounding_box()
    inbox_box = page.locator(".inbox").bounding_box()
    assert map_box is not None and inbox_box is not None and inbox_box["y"] > map_box["y"]  # stacked
    unlabelled = page.evaluate(
        """[...document.querySelectorAll('input, select, textarea, button')].filter((el) =>
            !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim()
            && !el.title).map((el) => el.outerHTML)"""
    )
    assert unlabelled == []
    pin = _pin(page, world.wearers["Marcel Durand"]).locator("xpath=..")
    pin.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".leaflet-popup")).to_contain_text("Marcel Durand")
    page.wait_for_timeout(600)  # the map pans to show the whole popup
    _screenshot(page, "phone.png")
    assert PAGE_ERRORS == []

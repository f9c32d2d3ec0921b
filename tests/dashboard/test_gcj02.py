"""WGS-84 → GCJ-02, as the dashboard converts positions for a Chinese basemap: the functions of the shipped
bundle (gcoord), run in Chromium, against published reference points.

The WGS-84/GCJ-02 pairs are the test points of eviltransform (github.com/googollee/eviltransform, MIT), the
reference implementation most ports are checked against; the GCJ-02 → WGS-84 example is gcoord's own
(its README). Points outside China are left as they are.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

import geosentinel.dashboard

BUNDLE = Path(geosentinel.dashboard.__file__).parent / "static" / "app.js"

# (WGS-84 latitude, longitude) -> (GCJ-02 latitude, longitude)
REFERENCE = [
    pytest.param((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215), id="shanghai"),
    pytest.param((22.543847, 113.912316), (22.540796131694766, 113.9171764808363), id="shenzhen"),
    pytest.param((39.911954, 116.377817), (39.91334545536069, 116.38404722455657), id="beijing"),
]
TOLERANCE_DEG = 1e-9  # the same formula: the published digits, to a millimetre


@pytest.fixture(scope="module")
def coords(blank_page: Page) -> Page:
    blank_page.add_script_tag(path=str(BUNDLE))
    assert blank_page.evaluate("typeof window.GeoSentinel.coords.wgs84ToGcj02") == "function"
    return blank_page


def _call(page: Page, function: str, lon: float, lat: float) -> tuple[float, float]:
    x, y = page.evaluate(f"([x, y]) => window.GeoSentinel.coords.{function}(x, y)", [lon, lat])
    return float(x), float(y)


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE)
def test_wgs84_to_gcj02_gives_the_published_points(
    coords: Page, wgs: tuple[float, float], gcj: tuple[float, float]
) -> None:
    lon, lat = _call(coords, "wgs84ToGcj02", wgs[1], wgs[0])
    assert lat == pytest.approx(gcj[0], abs=TOLERANCE_DEG)
    assert lon == pytest.approx(gcj[1], abs=TOLERANCE_DEG)
    # The shift is hundreds of metres: a marker drawn unconverted would sit on the wrong street.
    assert abs(lon - wgs[1]) > 0.004


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE)
def test_gcj02_back_to_wgs84_lands_within_a_centimetre(
    coords: Page, wgs: tuple[float, float], gcj: tuple[float, float]
) -> None:
    lon, lat = _call(coords, "gcj02ToWgs84", gcj[1], gcj[0])
    assert lat == pytest.approx(wgs[0], abs=1e-7)
    assert lon == pytest.approx(wgs[1], abs=1e-7)


def test_gcj02_to_wgs84_gives_gcoords_example(coords: Page) -> None:
    lon, lat = _call(coords, "gcj02ToWgs84", 123.0, 45.0)
    assert lon == pytest.approx(122.99395597, abs=1e-8)  # the README's digits, truncated
    assert lat == pytest.approx(44.99804071, abs=1e-8)


@pytest.mark.parametrize(("lat", "lon"), [(43.2965, 5.3698), (48.8584, 2.2945), (35.6586, 139.7454)])
def test_positions_outside_china_are_unchanged(coords: Page, lat: float, lon: float) -> None:
    assert _call(coords, "wgs84ToGcj02", lon, lat) == (lon, lat)

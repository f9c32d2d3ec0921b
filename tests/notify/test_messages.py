"""Rendering: every alerting kind in every language, times across DST, map links, ack links, details."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geosentinel.alerts.engine import OPENS_ALERT
from geosentinel.model import EventKind, ExtraValue, Region
from geosentinel.notify.messages import KIND_TEXTS, AlertNotice, kind_label, map_link, render

LOCALES = ("en", "fr", "zh")
ZONES = {"en": "Europe/London", "fr": "Europe/Paris", "zh": "Asia/Shanghai"}
OPENED = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
ACK = "https://gs.example/ack/tok"
CJK = re.compile(r"[\u4e00-\u9fff]")
# Typical findings, as the detectors write them (detect/*.py), to exercise every detail line.
DETAILS: dict[EventKind, dict[str, ExtraValue]] = {
    EventKind.FALL: {"fall_score": 0.934},
    EventKind.LOW_BATTERY: {"battery_pct": 12.0, "threshold_pct": 15.0},
    EventKind.GEOFENCE_EXIT: {"fence_id": "f1", "fence_name": "Maison", "distance_m": 352.4},
    EventKind.GEOFENCE_ENTER: {"fence_id": "f2", "fence_name": "Étang", "distance_m": -12.0},
    EventKind.HEART_RATE: {"value": 135.0, "limit": 120.0, "direction": "high", "reason": "limit"},
    EventKind.SPO2: {"value": 86.0, "limit": 90.0, "direction": "low", "reason": "limit"},
    EventKind.TEMPERATURE: {"value": 38.6, "limit": 38.0, "direction": "high", "reason": "limit"},
    EventKind.INACTIVITY: {
        "inactive_hours": 3.5,
        "limit_hours": 3.0,
        "last_activity": "2026-03-28T21:30:00+00:00",
    },
    EventKind.OFFLINE: {"expected_interval_s": 300.0, "last_seen": "2026-03-29T00:40:00+00:00"},
}


def notice(kind: EventKind = EventKind.SOS, **changes: object) -> AlertNotice:
    values: dict[str, object] = {
        "alert_id": "al-1",
        "kind": kind,
        "wearer_name": "Mme Dupont",
        "org_name": "Résidence Les Tilleuls",
        "region": Region.EU,
        "opened_at": OPENED,
        "latitude": 48.8566,
        "longitude": 2.3522,
        "ack_url": ACK,
        "details": DETAILS.get(kind, {}),
    }
    values.update(changes)
    return AlertNotice(**values)  # type: ignore[arg-type]


def lines(kind: EventKind, locale: str, **changes: object) -> list[str]:
    return render(notice(kind, **changes), locale, ZONES[locale]).body.split("\n")


# --- every kind, every language -----------------------------------------------------------------------


def test_every_kind_that_opens_an_alert_has_texts() -> None:
    assert set(KIND_TEXTS) == OPENS_ALERT


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", sorted(OPENS_ALERT))
def test_every_kind_renders_in_every_language(kind: EventKind, locale: str) -> None:
    message = render(notice(kind), locale, ZONES[locale])

    assert message.title.strip() and message.body.strip()
    assert "Mme Dupont" in message.title and message.body.split("\n")[0].count("Mme Dupont") == 1
    assert ACK in message.body
    assert "{" not in message.title + message.body  # every placeholder filled
    assert message.urgent == (kind in {EventKind.SOS, EventKind.FALL})


@pytest.mark.parametrize("locale", ["fr", "zh"])
@pytest.mark.parametrize("kind", sorted(OPENS_ALERT))
def test_the_kind_sentence_is_translated(kind: EventKind, locale: str) -> None:
    english = render(notice(kind, details={}), "en", "UTC")
    translated = render(notice(kind, details={}), locale, "UTC")
    english_lead, lead = english.body.split("\n")[0], translated.body.split("\n")[0]

    assert translated.title != english.title and lead != english_lead
    if locale == "zh":
        assert CJK.search(translated.title) and CJK.search(lead)
    assert not (words(english.title) | words(english_lead)) & (words(translated.title) | words(lead)), lead


COGNATES = {"bracelet", "zone", "urgent", "long", "dupont"}  # French words too, and the wearer's name


def words(text: str) -> set[str]:
    return set(re.findall(r"[^\W\d_]{4,}", text.lower())) - COGNATES


@pytest.mark.parametrize("kind", sorted(OPENS_ALERT))
def test_english_stays_ascii_for_gsm7_sms(kind: EventKind) -> None:
    """Our own English words and numbers never force an SMS out of GSM-7 (names are what people typed)."""
    details = {**DETAILS.get(kind, {}), "fence_name": "Home"}
    message = render(notice(kind, org_name="Tilleuls", wearer_name="Mrs Smith", details=details), "en", "UTC")
    assert (message.title + message.body).replace("°C", "C").isascii()  # the unit stays as CLDR writes it


def test_exact_french_sos() -> None:
    message = render(notice(EventKind.SOS, event_count=3, step=2), "fr", "Europe/Paris")

    assert message.title == "URGENT – Alerte SOS : Mme Dupont"
    assert message.body.split("\n") == [
        "Mme Dupont a appuyé sur le bouton SOS.",
        "Première alerte le dim. 29 mars 2026, 03:00, répétée 3 fois.",
        "Dernière position connue : https://www.openstreetmap.org/?mlat=48.8566&mlon=2.3522#map=17/48.8566/2.3522",
        "Personne n'a encore pris en charge cette alerte (étape 2 de l'escalade).",
        f"Prendre en charge cette alerte, sans vous connecter : {ACK}",
        "- Résidence Les Tilleuls",
    ]


def test_exact_chinese_fall() -> None:
    shanghai = {"region": Region.CN, "latitude": 31.2304, "longitude": 121.4737}
    message = render(
        notice(EventKind.FALL, wearer_name="王秀英", org_name="幸福养老院", **shanghai), "zh", "Asia/Shanghai"
    )

    assert message.title == "【紧急】跌倒警报：王秀英"
    assert message.body.split("\n") == [
        "手环检测到跌倒，王秀英可能需要帮助。",
        "发生时间：2026年3月29日周日 09:00",
        "检测置信度：93%。",
        "最后已知位置：https://uri.amap.com/marker?position=121.4737,31.2304&coordinate=wgs84",
        f"认领此警报（无需登录）：{ACK}",
        "- 幸福养老院",
    ]


def test_exact_english_low_battery() -> None:
    message = render(notice(EventKind.LOW_BATTERY, ack_url=None, latitude=None), "en", "Europe/London")

    assert message.title == "Low battery: Mme Dupont"
    assert message.body.split("\n") == [
        "The bracelet worn by Mme Dupont needs charging soon.",
        "Raised on Sun, Mar 29, 2026, 2:00 AM.",
        "Battery: 12%.",
        "No position known.",
        "- Résidence Les Tilleuls",
    ]


# --- time in the recipient's zone ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("utc", "locale", "zone", "expected"),
    [
        # Spring forward in Paris: 02:00 local never exists on 2026-03-29.
        (
            datetime(2026, 3, 29, 0, 59),
            "fr",
            "Europe/Paris",
            "Alerte déclenchée le dim. 29 mars 2026, 01:59.",
        ),
        (datetime(2026, 3, 29, 1, 0), "fr", "Europe/Paris", "Alerte déclenchée le dim. 29 mars 2026, 03:00."),
        # Fall back: 02:00-03:00 local happens twice on 2026-10-25.
        (
            datetime(2026, 10, 25, 0, 59),
            "fr",
            "Europe/Paris",
            "Alerte déclenchée le dim. 25 oct. 2026, 02:59.",
        ),
        (
            datetime(2026, 10, 25, 1, 0),
            "fr",
            "Europe/Paris",
            "Alerte déclenchée le dim. 25 oct. 2026, 02:00.",
        ),
        # Shanghai: UTC+8 all year, and the date moves with it.
        (datetime(2026, 3, 29, 0, 59), "zh", "Asia/Shanghai", "发生时间：2026年3月29日周日 08:59"),
        (datetime(2026, 3, 28, 16, 30), "zh", "Asia/Shanghai", "发生时间：2026年3月29日周日 00:30"),
        (datetime(2026, 3, 29, 1, 0), "en", "Europe/London", "Raised on Sun, Mar 29, 2026, 2:00 AM."),
        (datetime(2026, 3, 29, 1, 0), "en", "America/New_York", "Raised on Sat, Mar 28, 2026, 9:00 PM."),
    ],
)
def test_the_time_is_in_the_recipient_zone_across_dst(
    utc: datetime, locale: str, zone: str, expected: str
) -> None:
    body = render(notice(opened_at=utc.replace(tzinfo=UTC)), locale, zone).body
    assert body.split("\n")[1] == expected


def test_an_opened_at_in_another_offset_is_the_same_instant() -> None:
    paris_summer = timezone(timedelta(hours=2))
    same = notice(opened_at=OPENED.astimezone(paris_summer))
    assert render(same, "fr", "Europe/Paris") == render(notice(), "fr", "Europe/Paris")


def test_an_unknown_zone_falls_back_to_utc_and_says_so() -> None:
    body = render(notice(), "en", "Mars/Olympus_Mons").body
    assert body.split("\n")[1] == "Raised on Sun, Mar 29, 2026, 1:00 AM UTC."


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        notice(opened_at=datetime(2026, 3, 29, 1, 0))


# --- repeats, escalation, ack -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "First raised on Sun, Mar 29, 2026, 2:00 AM, repeated 4 times."),
        ("fr", "Première alerte le dim. 29 mars 2026, 03:00, répétée 4 fois."),
        ("zh", "首次发生于2026年3月29日周日 09:00，已重复 4 次。"),
    ],
)
def test_repeated_alerts_say_how_many_times(locale: str, expected: str) -> None:
    assert lines(EventKind.SOS, locale, event_count=4)[1] == expected


def test_a_single_event_does_not_say_repeated() -> None:
    assert "repeated" not in render(notice(), "en", "UTC").body


def test_the_first_step_does_not_mention_escalation() -> None:
    assert "escalation" not in render(notice(step=1), "en", "UTC").body
    assert "(escalation step 3)." in render(notice(step=3), "en", "UTC").body


@pytest.mark.parametrize(
    ("locale", "sentence"),
    [
        ("en", f"Take charge of this alert, no login needed: {ACK}"),
        ("fr", f"Prendre en charge cette alerte, sans vous connecter : {ACK}"),
        ("zh", f"认领此警报（无需登录）：{ACK}"),
    ],
)
def test_the_ack_link_says_it_needs_no_login(locale: str, sentence: str) -> None:
    assert sentence in lines(EventKind.FALL, locale)


def test_without_an_ack_link_there_is_no_ack_line() -> None:
    assert "Take charge" not in render(notice(ack_url=None), "en", "UTC").body


# --- map links ----------------------------------------------------------------------------------------


def test_eu_gets_openstreetmap() -> None:
    assert map_link(Region.EU, 48.8566, 2.3522) == (
        "https://www.openstreetmap.org/?mlat=48.8566&mlon=2.3522#map=17/48.8566/2.3522"
    )


def test_cn_gets_amap_with_longitude_first_and_wgs84() -> None:
    assert map_link(Region.CN, 31.2304, 121.4737) == (
        "https://uri.amap.com/marker?position=121.4737,31.2304&coordinate=wgs84"
    )


def test_coordinates_keep_six_decimals_at_most() -> None:
    assert map_link(Region.EU, -33.868819812, 151.0) == (
        "https://www.openstreetmap.org/?mlat=-33.86882&mlon=151#map=17/-33.86882/151"
    )


@pytest.mark.parametrize(("lat", "lon"), [(None, 2.0), (48.0, None), (91.0, 2.0), (48.0, float("nan"))])
def test_no_usable_position_says_so(lat: float | None, lon: float | None) -> None:
    assert map_link(Region.EU, lat, lon) is None
    body = lines(EventKind.SOS, "fr", latitude=lat, longitude=lon)
    assert "Position inconnue." in body and not any("openstreetmap" in line for line in body)


# --- details ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "locale", "expected"),
    [
        (EventKind.HEART_RATE, "en", "Measured 135 bpm, above the limit of 120 bpm."),
        (EventKind.HEART_RATE, "zh", "测量值：135 次/分，高于上限 120 次/分。"),
        (EventKind.SPO2, "fr", "Mesure : 86 %, en dessous du seuil de 90 %."),
        (EventKind.TEMPERATURE, "fr", "Mesure : 38,6 °C, au-dessus du seuil de 38 °C."),
        (EventKind.GEOFENCE_EXIT, "fr", "À environ 352 m hors de la zone."),
        (EventKind.GEOFENCE_ENTER, "en", "About 12 m inside the zone."),
        (EventKind.INACTIVITY, "fr", "Dernier mouvement : sam. 28 mars 2026, 22:30."),
        (EventKind.OFFLINE, "zh", "最后一次收到消息：2026年3月29日周日 08:40。"),
        (EventKind.FALL, "fr", "Fiabilité de la détection : 93 %."),
    ],
)
def test_the_kind_details(kind: EventKind, locale: str, expected: str) -> None:
    assert expected in lines(kind, locale)


def test_a_heart_rate_far_from_the_wearers_own_baseline() -> None:
    details: dict[str, ExtraValue] = {"value": 48.0, "limit": 55.0, "direction": "low", "reason": "baseline"}
    details |= {"baseline": 72.0, "spread": 4.0}
    assert "Measured 48 bpm, far below their usual 72 bpm." in lines(
        EventKind.HEART_RATE, "en", details=details
    )


@pytest.mark.parametrize(
    ("kind", "locale", "expected"),
    [
        (EventKind.GEOFENCE_EXIT, "fr", "Mme Dupont a quitté la zone de sécurité « Maison »."),
        (EventKind.GEOFENCE_ENTER, "zh", "Mme Dupont已进入危险区域“Étang”。"),
        (EventKind.INACTIVITY, "fr", "Mme Dupont n'a fait aucun mouvement depuis 3,5 heures."),
        (EventKind.INACTIVITY, "zh", "Mme Dupont已有3.5小时没有活动。"),
    ],
)
def test_leads_that_name_the_zone_or_the_duration(kind: EventKind, locale: str, expected: str) -> None:
    assert lines(kind, locale)[0] == expected


def test_without_details_the_generic_sentence_is_used() -> None:
    assert lines(EventKind.GEOFENCE_EXIT, "en", details={})[0] == "Mme Dupont has left a safe zone."
    assert lines(EventKind.INACTIVITY, "en", details={})[0] == (
        "Mme Dupont has not moved for an unusually long time."
    )


def test_urgency_follows_the_kind_unless_the_caller_says_otherwise() -> None:
    removed = render(notice(EventKind.REMOVED, urgent=True), "fr", "UTC")
    assert removed.urgent and removed.title == "URGENT – Bracelet retiré : Mme Dupont"
    sos = render(notice(EventKind.SOS, urgent=False), "en", "UTC")
    assert not sos.urgent and sos.title == "SOS alert: Mme Dupont"


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en", "Fall detected"), ("fr", "Chute détectée"), ("zh", "跌倒警报"), ("de", "Fall detected")],
)
def test_kind_labels_for_pages(locale: str, expected: str) -> None:
    assert kind_label(EventKind.FALL, locale) == expected


def test_a_kind_that_opens_no_alert_is_refused() -> None:
    with pytest.raises(ValueError, match="back_online"):
        render(notice(EventKind.BACK_ONLINE), "en", "UTC")
    with pytest.raises(ValueError, match="fall_rejected"):
        kind_label(EventKind.FALL_REJECTED, "fr")


def test_a_broken_translation_falls_back_to_english(monkeypatch: pytest.MonkeyPatch) -> None:
    from geosentinel.i18n import translator

    french = translator("fr")
    broken = {"Battery: {percent}.": "Batterie : {pourcent}."}  # a translator's typo in the placeholder
    original = french.gettext
    monkeypatch.setattr(french, "gettext", lambda msgid: broken.get(msgid, original(msgid)))

    body = lines(EventKind.LOW_BATTERY, "fr")
    assert (
        "Battery: 12 %." in body
        and body[0] == "Le bracelet porté par Mme Dupont doit être rechargé rapidement."
    )


def test_unknown_languages_get_english() -> None:
    assert render(notice(), "de_DE", "Europe/Berlin").title == "URGENT - SOS alert: Mme Dupont"
    assert render(notice(), "fr-CA", "America/Toronto").title == "URGENT – Alerte SOS : Mme Dupont"


_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.just(10**400), st.floats(), st.text(max_size=30)
)
_KEYS = st.sampled_from(
    ["fall_score", "battery_pct", "fence_name", "distance_m", "value", "limit", "direction", "reason",
     "baseline", "inactive_hours", "last_activity", "last_seen", "other"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(sorted(OPENS_ALERT)), details=st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_odd_details_never_stop_a_notification(kind: EventKind, details: dict[str, ExtraValue]) -> None:
    for locale in LOCALES:
        message = render(notice(kind, details=details), locale, ZONES[locale])
        assert message.title and message.body

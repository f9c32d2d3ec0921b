"""An alert in words for one recipient: a title and a short plain-text body, in their language and zone.

Pure: no I/O beyond reading the packaged catalogs once, no wall clock (times come with the notice).

Bodies are written for the smallest screen they reach (an SMS): the first line alone says what happened
and to whom; then when (in the recipient's time zone), the kind's measurements, where (a map link), and
how to take the alert. Our English words stay plain ASCII (CLDR's no-break spaces become spaces), so an
English SMS keeps the cheaper GSM-7 encoding unless a name or a °C needs more.
Details come from the detectors' events and are optional: a missing or odd value drops its line, it never
stops a notification.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale as CldrLocale
from babel.dates import format_datetime
from babel.numbers import format_decimal, format_percent
from babel.support import Translations
from babel.units import format_unit

from geosentinel.i18n import babel_locale, translator
from geosentinel.model import EventKind, ExtraValue, Region


def N_(message: str) -> str:
    """Marks a msgid for the catalogs without translating it (the gettext name Babel's extractor knows)."""
    return message


@dataclass(frozen=True, slots=True)
class AlertNotice:
    """What a recipient needs to know about an alert, as the notification loop hands it over.

    ``opened_at`` is when the alert opened (tz-aware). ``step`` is the 1-based escalation step this
    notification belongs to; from step 2 the body says nobody has taken the alert yet. ``details`` are
    the detectors' findings (``fall_score``, ``fence_name``, ``value``, ``battery_pct`` ...). ``urgent``
    overrides the kind's default (SOS and fall are urgent), e.g. from an escalation policy's severity.
    """

    alert_id: str
    kind: EventKind
    wearer_name: str
    org_name: str
    region: Region
    opened_at: datetime
    event_count: int = 1
    latitude: float | None = None
    longitude: float | None = None
    step: int = 1
    ack_url: str | None = None
    details: Mapping[str, ExtraValue] = field(default_factory=dict)
    urgent: bool | None = None

    def __post_init__(self) -> None:
        if self.opened_at.tzinfo is None or self.opened_at.utcoffset() is None:
            raise ValueError("AlertNotice.opened_at must be timezone-aware")
        if self.event_count < 1 or self.step < 1:
            raise ValueError("AlertNotice.event_count and step start at 1")


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """A notification ready to send. ``urgent`` marks alerts someone must act on now (SOS, fall)."""

    title: str
    body: str
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class _KindText:
    label: str  # msgid: the kind in a few words, the title's start and the ack page's heading
    lead: str  # msgid with {wearer}: the body's first line, enough on its own
    urgent: bool = False


KIND_TEXTS: Mapping[EventKind, _KindText] = {
    EventKind.SOS: _KindText(N_("SOS alert"), N_("{wearer} pressed the SOS button."), urgent=True),
    EventKind.FALL: _KindText(
        N_("Fall detected"), N_("The bracelet detected a fall: {wearer} may need help."), urgent=True
    ),
    EventKind.REMOVED: _KindText(
        N_("Bracelet removed"),
        N_("{wearer} is no longer wearing the bracelet: falls and SOS calls cannot be detected."),
    ),
    EventKind.LOW_BATTERY: _KindText(
        N_("Low battery"), N_("The bracelet worn by {wearer} needs charging soon.")
    ),
    EventKind.POWER_OFF: _KindText(
        N_("Bracelet switched off"),
        N_("The bracelet worn by {wearer} was switched off or lost power: it no longer protects them."),
    ),
    EventKind.GEOFENCE_EXIT: _KindText(N_("Left a safe zone"), N_("{wearer} has left a safe zone.")),
    EventKind.GEOFENCE_ENTER: _KindText(
        N_("Entered a danger zone"), N_("{wearer} has entered a danger zone.")
    ),
    EventKind.HEART_RATE: _KindText(N_("Abnormal heart rate"), N_("{wearer} has an abnormal heart rate.")),
    EventKind.SPO2: _KindText(N_("Low blood oxygen"), N_("{wearer} has low blood oxygen (SpO2).")),
    EventKind.TEMPERATURE: _KindText(
        N_("Abnormal temperature"), N_("{wearer} has an abnormal body temperature.")
    ),
    EventKind.INACTIVITY: _KindText(
        N_("No movement"), N_("{wearer} has not moved for an unusually long time.")
    ),
    EventKind.OFFLINE: _KindText(
        N_("Bracelet not responding"), N_("The bracelet worn by {wearer} is no longer responding.")
    ),
}

# A narrow or plain no-break space (CLDR puts them in "1:59 AM", "93 %", "37,8 °C") becomes a plain space:
# SMS gateways mangle them and they would push an English SMS out of GSM-7.
_PLAIN_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " "})


class _Writer:
    """Words, numbers and times in one recipient's language and time zone."""

    def __init__(self, locale: str, timezone: str) -> None:
        self.translations: Translations = translator(locale)
        self.locale = babel_locale(locale)
        try:
            self.zone: ZoneInfo | None = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.zone = None  # a bad zone in a contact must not stop an SOS: times then say UTC

    def say(self, msgid: str, **values: str | int) -> str:
        return _fill(self.translations.gettext(msgid), msgid, values)

    def ngettext(self, singular: str, plural: str, count: int, **values: str | int) -> str:
        english = singular if count == 1 else plural
        return _fill(self.translations.ngettext(singular, plural, count), english, {"count": count, **values})

    def number(self, value: float) -> str:
        return format_decimal(value, format="#,##0.#", locale=self.locale)

    def unit(self, value: float, unit: str, length: Literal["short", "long"] = "short") -> str:
        return format_unit(value, unit, length=length, format="#,##0.#", locale=self.locale)

    def percent(self, fraction: float) -> str:
        return format_percent(fraction, locale=self.locale)

    def when(self, moment: datetime) -> str:
        local = format_datetime(
            moment, _datetime_pattern(self.locale), tzinfo=self.zone or UTC, locale=self.locale
        )
        return local if self.zone is not None else f"{local} UTC"


def _fill(text: str, english: str, values: Mapping[str, str | int]) -> str:
    try:
        filled = text.format(**values)
    except (KeyError, IndexError, ValueError):
        filled = english.format(**values)  # a broken translation must not stop an alert: say it in English
    return filled.translate(_PLAIN_SPACES)


@functools.cache
def _datetime_pattern(locale: str) -> str:
    """Weekday, date and short time without seconds, joined the locale's way ("dim. 29 mars 2026, 01:59")."""
    cldr = CldrLocale.parse(locale)
    date = cldr.datetime_skeletons["yMMMEd"].pattern
    time = cldr.time_formats["short"].pattern
    return str(cldr.datetime_formats["medium"]).replace("{1}", date).replace("{0}", time)


def render(notice: AlertNotice, locale: str, timezone: str) -> RenderedMessage:
    """The notification of ``notice`` for a recipient who reads ``locale`` and lives in ``timezone``.

    Raises ValueError for a kind that never opens an alert (``back_online``, ``fall_rejected``).
    """
    text = _kind_text(notice.kind)
    w = _Writer(locale, timezone)
    title = w.say(N_("{label}: {wearer}"), label=w.say(text.label), wearer=notice.wearer_name)
    urgent = text.urgent if notice.urgent is None else notice.urgent
    if urgent:
        title = w.say(N_("URGENT - {title}"), title=title)
    lines = [_LEADS.get(notice.kind, _plain_lead)(w, notice, text.lead), _when_line(w, notice)]
    lines += _DETAILS.get(notice.kind, _no_details)(w, notice.details)
    lines.append(_position_line(w, notice))
    if notice.step > 1:
        lines.append(
            w.say(N_("No one has taken charge of this alert yet (escalation step {step})."), step=notice.step)
        )
    if notice.ack_url:
        lines.append(w.say(N_("Take charge of this alert, no login needed: {url}"), url=notice.ack_url))
    lines.append(f"- {notice.org_name}")
    return RenderedMessage(title, "\n".join(lines), urgent)


def kind_label(kind: EventKind, locale: str) -> str:
    """The kind of an alert in a few words of ``locale`` ("Chute détectée"), e.g. for a page's heading."""
    return _fill(translator(locale).gettext(_kind_text(kind).label), _kind_text(kind).label, {})


def _kind_text(kind: EventKind) -> _KindText:
    text = KIND_TEXTS.get(kind)
    if text is None:
        raise ValueError(f"no notification text for {kind.value!r}: it does not open an alert")
    return text


def map_link(region: Region, latitude: float | None, longitude: float | None) -> str | None:
    """A link that shows the position on a map people in ``region`` can open (``None`` without a usable one).

    Mainland China blocks or degrades OpenStreetMap and Google: CN organisations get Amap, which converts
    our WGS-84 coordinates to its GCJ-02 grid itself (``coordinate=wgs84``); the position stays exact.
    """
    if latitude is None or longitude is None or not _usable_position(latitude, longitude):
        return None
    lat, lon = _coordinate(latitude), _coordinate(longitude)
    if region is Region.CN:
        return f"https://uri.amap.com/marker?position={lon},{lat}&coordinate=wgs84"
    return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"


def _coordinate(value: float) -> str:
    """Six decimals (about 10 cm) without trailing zeros: short links for SMS."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _usable_position(latitude: float, longitude: float) -> bool:
    finite = math.isfinite(latitude) and math.isfinite(longitude)
    return finite and -90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0


# --- the lines of a body ------------------------------------------------------------------------------


def _plain_lead(w: _Writer, notice: AlertNotice, lead: str) -> str:
    return w.say(lead, wearer=notice.wearer_name)


def _geofence_lead(w: _Writer, notice: AlertNotice, lead: str) -> str:
    zone = _text(notice.details, "fence_name")
    if zone is None:
        return _plain_lead(w, notice, lead)
    if notice.kind is EventKind.GEOFENCE_EXIT:
        return w.say(N_('{wearer} has left the safe zone "{zone}".'), wearer=notice.wearer_name, zone=zone)
    return w.say(N_('{wearer} has entered the danger zone "{zone}".'), wearer=notice.wearer_name, zone=zone)


def _inactivity_lead(w: _Writer, notice: AlertNotice, lead: str) -> str:
    hours = _number(notice.details, "inactive_hours")
    if hours is None or hours <= 0:
        return _plain_lead(w, notice, lead)
    duration = w.unit(hours, "duration-hour", length="long")
    return w.say(N_("{wearer} has not moved for {duration}."), wearer=notice.wearer_name, duration=duration)


_LEADS: Mapping[EventKind, Callable[[_Writer, AlertNotice, str], str]] = {
    EventKind.GEOFENCE_EXIT: _geofence_lead,
    EventKind.GEOFENCE_ENTER: _geofence_lead,
    EventKind.INACTIVITY: _inactivity_lead,
}


def _when_line(w: _Writer, notice: AlertNotice) -> str:
    when = w.when(notice.opened_at)
    if notice.event_count > 1:
        return w.ngettext(
            "First raised on {when}, repeated {count} time.",
            "First raised on {when}, repeated {count} times.",
            notice.event_count,
            when=when,
        )
    return w.say(N_("Raised on {when}."), when=when)


def _position_line(w: _Writer, notice: AlertNotice) -> str:
    link = map_link(notice.region, notice.latitude, notice.longitude)
    if link is None:
        return w.say(N_("No position known."))
    return w.say(N_("Last known position: {link}"), link=link)


# --- the kinds' measurements --------------------------------------------------------------------------

Details = Mapping[str, ExtraValue]


def _no_details(w: _Writer, details: Details) -> list[str]:
    return []


def _fall_details(w: _Writer, details: Details) -> list[str]:
    score = _number(details, "fall_score")
    if score is None or not 0.0 <= score <= 1.0:  # a probability; other scales mean nothing to a reader
        return []
    return [w.say(N_("Detection confidence: {percent}."), percent=w.percent(score))]


def _battery_details(w: _Writer, details: Details) -> list[str]:
    pct = _number(details, "battery_pct")
    if pct is None:
        return []
    return [w.say(N_("Battery: {percent}."), percent=w.percent(pct / 100.0))]


def _geofence_details(w: _Writer, details: Details) -> list[str]:
    # Signed distance to the fence's edge (> 0 outside): outside a safe zone, inside a danger zone.
    distance_m = _number(details, "distance_m")
    if distance_m is None or abs(distance_m) < 1.0:
        return []
    metres = abs(distance_m)
    distance = (
        w.unit(round(metres), "length-meter") if metres < 1000 else w.unit(metres / 1000, "length-kilometer")
    )
    if distance_m > 0:
        return [w.say(N_("About {distance} outside the zone."), distance=distance)]
    return [w.say(N_("About {distance} inside the zone."), distance=distance)]


def _since_details(key: str, msgid: str) -> Callable[[_Writer, Details], list[str]]:
    """A line with the time stored (ISO 8601) under ``key``, in the recipient's zone."""

    def lines(w: _Writer, details: Details) -> list[str]:
        moment = _moment(details, key)
        return [] if moment is None else [w.say(msgid, when=w.when(moment))]

    return lines


def _vital_details(quantity: Callable[[_Writer, float], str]) -> Callable[[_Writer, Details], list[str]]:
    """The measured value against the wearer's limit or usual value (see detect/vitals.py's findings)."""

    def lines(w: _Writer, details: Details) -> list[str]:
        value = _number(details, "value")
        if value is None:
            return []
        measured = quantity(w, value)
        high = _text(details, "direction") != "low"
        baseline = _number(details, "baseline")
        limit = _number(details, "limit")
        if _text(details, "reason") == "baseline" and baseline is not None:
            msgid = (
                N_("Measured {value}, far above their usual {usual}.")
                if high
                else N_("Measured {value}, far below their usual {usual}.")
            )
            return [w.say(msgid, value=measured, usual=quantity(w, baseline))]
        if limit is not None:
            msgid = (
                N_("Measured {value}, above the limit of {limit}.")
                if high
                else N_("Measured {value}, below the limit of {limit}.")
            )
            return [w.say(msgid, value=measured, limit=quantity(w, limit))]
        return [w.say(N_("Measured {value}."), value=measured)]

    return lines


def _bpm(w: _Writer, value: float) -> str:
    return w.say(N_("{number} bpm"), number=w.number(round(value)))


def _spo2_pct(w: _Writer, value: float) -> str:
    return w.percent(value / 100.0)


def _celsius(w: _Writer, value: float) -> str:
    return w.unit(value, "temperature-celsius")


_DETAILS: Mapping[EventKind, Callable[[_Writer, Details], list[str]]] = {
    EventKind.FALL: _fall_details,
    EventKind.LOW_BATTERY: _battery_details,
    EventKind.GEOFENCE_EXIT: _geofence_details,
    EventKind.GEOFENCE_ENTER: _geofence_details,
    EventKind.HEART_RATE: _vital_details(_bpm),
    EventKind.SPO2: _vital_details(_spo2_pct),
    EventKind.TEMPERATURE: _vital_details(_celsius),
    EventKind.INACTIVITY: _since_details("last_activity", N_("Last movement: {when}.")),
    EventKind.OFFLINE: _since_details("last_seen", N_("Last message received: {when}.")),
}


_PLAUSIBLE = 1e9  # no measurement here comes near; beyond it Babel's decimal formatting gives up


def _number(details: Details, key: str) -> float | None:
    value = details.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if abs(value) < _PLAUSIBLE else None  # also False for NaN and infinities


def _text(details: Details, key: str) -> str | None:
    value = details.get(key)
    return (value.strip() or None) if isinstance(value, str) else None


def _moment(details: Details, key: str) -> datetime | None:
    value = _text(details, key)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None

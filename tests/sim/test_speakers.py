"""Every speaker's frames decode with the service's own decoders to the report they carry, exactly."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from geosentinel.model import Alarm, DeviceMessage
from geosentinel.protocols import gt06, h02, mqtt, osmand, watch
from geosentinel.protocols.base import CommandKind, DecodeResult, DeviceCommand, Session
from geosentinel.sim.bracelet import Bracelet, BraceletConfig, IncidentRates, Report
from geosentinel.sim.speakers import (
    TCP_SPEAKERS,
    Frame,
    Gt06Speaker,
    H02Speaker,
    WatchSpeaker,
    degrees_minutes,
    gt06_battery,
    mqtt_payload,
    mqtt_topic,
    osmand_query,
    whole_percent,
)
from geosentinel.sim.streets import StreetGraph

UID = "861000000000007"
NOW = datetime(2025, 6, 2, 12, 0, 0, tzinfo=UTC)  # the service's clock: only used in its replies
FIX = Report(
    unique_id=UID,
    time=datetime(2025, 6, 2, 9, 14, 7, tzinfo=UTC),
    latitude=43.295812,
    longitude=5.381374,
    speed_knots=2.14,
    bearing_deg=271.3,
    altitude_m=41.0,
    accuracy_m=7.5,
    battery_pct=86.4,
)
SOS = replace(FIX, alarm="sos", battery_pct=14.9)
# South and west, a negative altitude, a bearing the model rounded up to 360.0.
ANTIPODE = replace(FIX, latitude=-33.868822, longitude=-151.209296, altitude_m=-3.4, bearing_deg=360.0)

WATCH, GT06, H02 = WatchSpeaker(), Gt06Speaker(), H02Speaker()


def _one(result: DecodeResult) -> DeviceMessage:
    assert len(result.messages) == 1
    return result.messages[0]


# -- watch ---------------------------------------------------------------------------------------------


def test_watch_fix_is_an_unanswered_ud_lte() -> None:
    frame = WATCH.report(FIX, serial=1)
    assert frame.ack is None  # real watches get no reply to UD frames
    assert frame.data == (
        b"[3G*861000000000007*005A*UD_LTE,020625,091407,A,43.295812,N,5.381374,E,3.96,271.3,41.0,9,80,"
        b"86,0,0,00000000,0,0,7.5]"
    )
    assert int(frame.data[20:24], 16) == len(frame.data) - 26  # the length field is right
    result = watch.decode(frame.data, Session(), NOW)
    assert result.reply == b""
    message = _one(result)
    assert message.unique_id == UID
    assert message.time == FIX.time
    assert (message.latitude, message.longitude, message.valid) == (43.295812, 5.381374, True)
    assert message.speed_kmh == 3.96  # 2.14 knots in km/h, 2 decimals
    assert message.course_deg == 271.3
    assert message.altitude_m == 41.0
    assert message.accuracy_m == 7.5
    assert message.battery_pct == 86.0
    assert message.alarms == frozenset()


def test_watch_sos_is_an_al_lte_with_the_sos_bit_and_is_answered() -> None:
    frame = WATCH.report(SOS, serial=1)
    assert b"*AL_LTE," in frame.data and b",00010000," in frame.data
    result = watch.decode(frame.data, Session(), NOW)
    assert result.reply == b"[3G*861000000000007*0002*AL]"
    assert WATCH.reply_key(UID, result.reply) == frame.ack == "AL"
    message = _one(result)
    assert message.alarms == frozenset({Alarm.SOS})
    assert message.time == SOS.time
    assert (message.latitude, message.longitude) == (SOS.latitude, SOS.longitude)
    assert message.battery_pct == 14.0  # floored: a battery that crossed 15 % reads below it


def test_watch_heartbeat_is_lk_with_the_battery() -> None:
    frame = WATCH.heartbeat(UID, 14.9, serial=1)
    assert frame.data == b"[3G*861000000000007*0009*LK,0,0,14]"
    result = watch.decode(frame.data, Session(), NOW)
    assert result.reply == b"[3G*861000000000007*0002*LK]"
    assert WATCH.reply_key(UID, result.reply) == frame.ack == "LK"
    assert _one(result).battery_pct == 14.0
    assert WATCH.login(UID, 1) is None


def test_watch_south_west_and_course_360() -> None:
    message = _one(watch.decode(WATCH.report(ANTIPODE, 1).data, Session(), NOW))
    assert (message.latitude, message.longitude) == (-33.868822, -151.209296)
    assert message.altitude_m == -3.4
    assert message.course_deg == 0.0


def test_watch_reply_key_ignores_other_devices_and_commands() -> None:
    assert WATCH.reply_key("123", b"[3G*861000000000007*0002*LK]") is None
    command = watch.encode_command(_locate(), Session(unique_id=UID, dialect="3G"), NOW)
    assert WATCH.reply_key(UID, command) == "CR"  # not a key any frame waits for


# -- GT06 ----------------------------------------------------------------------------------------------


def test_gt06_login_carries_the_imei_in_bcd_and_is_acknowledged() -> None:
    frame = GT06.login(UID, serial=1)
    assert frame is not None
    assert frame.data.hex() == "78780d010861000000000007000117820d0a"
    result = gt06.decode(frame.data, Session(), NOW)
    assert result.session == Session(unique_id=UID)
    assert result.reply == b"\x78\x78\x05\x01\x00\x01\xd9\xdc\r\n"
    assert GT06.reply_key(UID, result.reply) == frame.ack


def test_gt06_fix_is_a_gps_lbs_packet() -> None:
    frame = GT06.report(FIX, serial=2)
    assert frame.data[3] == 0x12
    result = gt06.decode(frame.data, Session(unique_id=UID), NOW)
    assert GT06.reply_key(UID, result.reply) == frame.ack
    message = _one(result)
    assert "crc_ok" not in message.extras
    assert message.time == FIX.time
    # Coordinates travel in 1/1,800,000 degree, speed in whole km/h, course in whole degrees.
    assert message.latitude == round(43.295812 * 1_800_000) / 1_800_000
    assert message.longitude == round(5.381374 * 1_800_000) / 1_800_000
    assert abs(message.latitude - FIX.latitude) < 1e-6 and abs(message.longitude - FIX.longitude) < 1e-6
    assert (message.valid, message.speed_kmh, message.course_deg, message.satellites) == (True, 4.0, 271.0, 9)
    assert message.alarms == frozenset()
    assert message.cells == ()  # no made-up cell towers
    assert message.battery_pct is None  # 0x12 has no battery: the 0x13 heartbeat carries it


def test_gt06_sos_is_an_alarm_packet_with_alarm_byte_1() -> None:
    frame = GT06.report(SOS, serial=3)
    assert frame.data[3] == 0x16
    result = gt06.decode(frame.data, Session(unique_id=UID), NOW)
    assert result.reply == b"\x78\x78\x05\x16\x00\x03" + result.reply[6:8] + b"\r\n"
    assert GT06.reply_key(UID, result.reply) == frame.ack
    message = _one(result)
    assert message.alarms == frozenset({Alarm.SOS})
    assert message.extras["alarm_code"] == 1
    assert message.time == SOS.time
    assert message.latitude == round(SOS.latitude * 1_800_000) / 1_800_000
    assert message.battery_pct == 14.0
    assert message.charging is False


@pytest.mark.parametrize(
    ("battery", "read"), [(86.4, 86.0), (15.0, 15.0), (14.9, 14.0), (7.0, 7.0), (6.9, 0.0)]
)
def test_gt06_heartbeat_carries_the_battery(battery: float, read: float) -> None:
    frame = GT06.heartbeat(UID, battery, serial=70000)  # the serial wraps at 16 bits
    assert frame.data[3] == 0x13
    result = gt06.decode(frame.data, Session(unique_id=UID), NOW)
    assert GT06.reply_key(UID, result.reply) == frame.ack == f"13/{70000 & 0xFFFF}"
    message = _one(result)
    assert "crc_ok" not in message.extras
    assert message.battery_pct == read == float(gt06_battery(battery))
    assert message.alarms == frozenset()


def test_gt06_south_west() -> None:
    message = _one(gt06.decode(GT06.report(ANTIPODE, 5).data, Session(unique_id=UID), NOW))
    assert message.latitude == -round(33.868822 * 1_800_000) / 1_800_000
    assert message.longitude == -round(151.209296 * 1_800_000) / 1_800_000
    assert message.course_deg == 0.0


def test_gt06_reply_key_ignores_commands() -> None:
    command = gt06.encode_command(_locate(), Session(unique_id=UID), NOW)
    assert GT06.reply_key(UID, command) is None


# -- H02 -----------------------------------------------------------------------------------------------


def test_h02_fix_is_v1_and_is_answered() -> None:
    frame = H02.report(FIX, serial=1)
    assert (
        frame.data == b"*HQ,861000000000007,V1,091407,A,4317.7487,N,00522.8824,E,002.14,271,020625,FFFFFBFF#"
    )
    result = h02.decode(frame.data, Session(), NOW)
    assert result.reply == b"*HQ,861000000000007,V4,V1,20250602120000#"
    assert H02.reply_key(UID, result.reply) == frame.ack == "V1"
    message = _one(result)
    assert message.time == FIX.time
    # DDMM.MMMM: minutes to 1e-4, i.e. 43°17.7487' and 5°22.8824'.
    assert (message.latitude, message.longitude) == (43.295812, 5.381373)
    assert (message.valid, message.speed_kmh, message.course_deg) == (True, round(2.14 * 1.852, 3), 271.0)
    assert message.alarms == frozenset()
    assert message.battery_pct is None  # V1 has no battery percentage: HTBT carries it


def test_h02_sos_clears_status_bit_1() -> None:
    frame = H02.report(SOS, serial=1)
    assert frame.data.endswith(b",FFFFFBFD#")
    message = _one(h02.decode(frame.data, Session(), NOW))
    assert message.alarms == frozenset({Alarm.SOS})
    assert message.time == SOS.time


def test_h02_heartbeat_is_htbt_with_the_battery() -> None:
    frame = H02.heartbeat(UID, 14.9, serial=1)
    assert frame.data == b"*HQ,861000000000007,HTBT,14#"
    result = h02.decode(frame.data, Session(), NOW)
    assert result.reply == b"*HQ,861000000000007,HTBT#"
    assert H02.reply_key(UID, result.reply) == frame.ack == "HTBT"
    assert _one(result).battery_pct == 14.0
    assert H02.login(UID, 1) is None


def test_h02_south_west() -> None:
    frame = H02.report(ANTIPODE, 1)
    assert b",3352.1293,S,15112.5578,W," in frame.data
    message = _one(h02.decode(frame.data, Session(), NOW))
    assert (message.latitude, message.longitude, message.course_deg) == (-33.868822, -151.209297, 0.0)


def test_degrees_minutes_never_writes_60_minutes() -> None:
    assert degrees_minutes(43.99999999, 2) == "4400.0000"
    assert degrees_minutes(-5.5, 3) == "00530.0000"


# -- falls, removals, vitals and cell-tower positions --------------------------------------------------

FALL = replace(FIX, alarm="fall")
REMOVAL = replace(FIX, alarm="removed")
CELL = replace(FIX, source="cell", accuracy_m=1234.0, speed_knots=0.0)
VITALS = replace(FIX, heart_rate_bpm=152.0, spo2_pct=96.0, temperature_c=36.7, steps=4321)


@pytest.mark.parametrize(
    ("report", "word", "alarm"), [(FALL, "00200000", Alarm.FALL), (REMOVAL, "00100000", Alarm.REMOVED)]
)
def test_watch_fall_and_removal_set_their_status_bits(report: Report, word: str, alarm: Alarm) -> None:
    frame = WATCH.report(report, serial=1)
    assert b"*AL_LTE," in frame.data and f",{word},".encode() in frame.data
    result = watch.decode(frame.data, Session(), NOW)
    assert WATCH.reply_key(UID, result.reply) == frame.ack == "AL"
    assert _one(result).alarms == frozenset({alarm})


@pytest.mark.parametrize(
    ("report", "code", "alarm"), [(FALL, 0x23, Alarm.FALL), (REMOVAL, 0x18, Alarm.REMOVED)]
)
def test_gt06_fall_and_removal_alarm_codes(report: Report, code: int, alarm: Alarm) -> None:
    frame = GT06.report(report, serial=4)
    assert frame.data[3] == 0x16
    result = gt06.decode(frame.data, Session(unique_id=UID), NOW)
    assert GT06.reply_key(UID, result.reply) == frame.ack
    message = _one(result)
    assert message.alarms == frozenset({alarm})
    assert message.extras["alarm_code"] == code


def test_h02_has_no_bit_for_a_fall() -> None:
    assert H02.report(FALL, serial=1).data == H02.report(FIX, serial=1).data


def test_cell_positions_are_not_gps_fixes() -> None:
    ud = _one(watch.decode(WATCH.report(CELL, 1).data, Session(), NOW))
    assert (ud.valid, ud.satellites, ud.accuracy_m) == (False, 0, 1234.0)
    assert (ud.latitude, ud.longitude) == (CELL.latitude, CELL.longitude)
    fix = _one(gt06.decode(GT06.report(CELL, 2).data, Session(unique_id=UID), NOW))
    assert (fix.valid, fix.satellites) == (False, 0)
    v1 = _one(h02.decode(H02.report(CELL, 3).data, Session(), NOW))
    assert v1.valid is False and v1.latitude == CELL.latitude
    message = _one(mqtt.decode(mqtt_topic("org", UID), mqtt_payload(CELL)))
    assert (message.extras["position_source"], message.satellites, message.accuracy_m) == (
        "cell",
        None,
        1234.0,
    )


def test_vitals_and_steps_travel_where_the_protocol_has_room() -> None:
    assert osmand_query(VITALS) == osmand_query(FIX) | {
        "heartrate": "152",
        "spo2": "96",
        "temperature": "36.7",
        "steps": "4321",
    }
    message = _one(mqtt.decode(mqtt_topic("org", UID), mqtt_payload(VITALS)))
    assert (message.heart_rate_bpm, message.spo2_pct, message.temperature_c, message.steps) == (
        152.0,
        96.0,
        36.7,
        4321,
    )
    assert _one(watch.decode(WATCH.report(VITALS, 1).data, Session(), NOW)).steps == 4321


# -- MQTT ----------------------------------------------------------------------------------------------


def test_mqtt_payload_decodes_to_the_report() -> None:
    result = mqtt.decode(mqtt_topic("org-1", UID), mqtt_payload(SOS))
    assert mqtt.parse_topic(mqtt_topic("org-1", UID)) == ("org-1", UID)
    message = _one(result)
    assert message.unique_id == UID
    assert message.time == SOS.time
    assert (message.latitude, message.longitude) == (SOS.latitude, SOS.longitude)
    assert (message.accuracy_m, message.altitude_m, message.course_deg) == (7.5, 41.0, 271.3)
    assert message.speed_kmh == round(2.14 * 1.852, 2)
    assert message.battery_pct == 14.9  # JSON keeps the model's 0.1 %
    assert message.alarms == frozenset({Alarm.SOS})
    plain = _one(mqtt.decode(mqtt_topic("org-1", UID), mqtt_payload(ANTIPODE)))
    assert plain.alarms == frozenset() and plain.course_deg == 0.0
    assert (plain.latitude, plain.longitude, plain.altitude_m) == (-33.868822, -151.209296, -3.4)


# -- a whole day of one bracelet, in every protocol ----------------------------------------------------


def _day_of_reports() -> list[Report]:
    rates = IncidentRates(
        sos_per_hour=2.0,
        silence_per_hour=0.0,
        low_battery_per_day=3.0,
        fall_per_day=8.0,
        removed_per_day=6.0,
        vitals_per_day=3.0,
    )
    start = datetime(2025, 6, 2, 4, 0, tzinfo=UTC)
    config = BraceletConfig(rates=rates, cell_only_per_day=4.0)
    bracelet = Bracelet(UID, StreetGraph.load("marseille"), random.Random(3), start, config)
    reports: list[Report] = []
    for hour in range(1, 25):
        reports += bracelet.step(start + timedelta(hours=hour))
    return reports


@pytest.fixture(scope="module")
def day() -> list[Report]:
    reports = _day_of_reports()
    assert {r.alarm for r in reports} == {None, "sos", "fall", "removed"}
    assert any(r.battery_pct < 15 for r in reports)
    assert any(r.source == "cell" for r in reports) and any(r.source == "gps" for r in reports)
    assert any(r.heart_rate_bpm is not None for r in reports)
    assert any(r.spo2_pct is not None and r.temperature_c is not None for r in reports)
    return reports


ALARMS = {"sos": Alarm.SOS, "fall": Alarm.FALL, "removed": Alarm.REMOVED}


def _alarms(report: Report, name: str) -> frozenset[Alarm]:
    """What the protocol can say of the report's alarm: H02 has a status bit for SOS only."""
    if report.alarm is None or (name == "h02" and report.alarm != "sos"):
        return frozenset()
    return frozenset({ALARMS[report.alarm]})


def _decode_stream(name: str, frames: list[Frame], session: Session) -> list[tuple[Frame, DecodeResult]]:
    """Cut the concatenated frames with the service's framer, decode them in order."""
    speaker = TCP_SPEAKERS[name]
    codec = {"watch": watch, "gt06": gt06, "h02": h02}[name]
    framer = speaker.framer()
    cut = framer.feed(b"".join(f.data for f in frames))
    assert cut == [f.data for f in frames] and framer.skipped == 0
    out = []
    for frame in frames:
        result = codec.decode(frame.data, session, NOW)
        session = result.session or session
        if frame.ack is None:
            assert result.reply == b""
        else:
            assert speaker.reply_key(UID, result.reply) == frame.ack
        out.append((frame, result))
    return out


@pytest.mark.parametrize("name", ["watch", "gt06", "h02"])
def test_a_day_of_reports_round_trips(name: str, day: list[Report]) -> None:
    speaker = TCP_SPEAKERS[name]
    frames = [f for f in [speaker.login(UID, 1)] if f is not None]
    for serial, report in enumerate(day, start=2):
        frames.append(speaker.heartbeat(UID, report.battery_pct, serial * 2))
        frames.append(speaker.report(report, serial * 2 + 1))
    decoded = _decode_stream(name, frames, Session())
    fixes = [_one(result) for _, result in decoded if result.messages and _one(result).time is not None]
    beats = [_one(result) for _, result in decoded if result.messages and _one(result).time is None]
    assert len(fixes) == len(beats) == len(day)
    # The wire's resolution: 1e-6° (watch), 1/1,800,000° (GT06), 1e-4' then 6 decimals (H02).
    tolerance = {"watch": 0.0, "gt06": 0.28e-6, "h02": 1.34e-6}[name]
    for report, fix, beat in zip(day, fixes, beats, strict=True):
        assert fix.time == report.time
        assert fix.alarms == _alarms(report, name)
        assert fix.valid == (report.source == "gps")  # a cell-tower position is no GPS fix
        if name == "watch":
            assert fix.steps == report.steps
            assert fix.accuracy_m == report.accuracy_m
        if name in ("watch", "gt06"):
            assert (fix.satellites == 0) == (report.source == "cell")
        assert fix.latitude is not None and fix.longitude is not None
        assert abs(fix.latitude - report.latitude) <= tolerance + 1e-12
        assert abs(fix.longitude - report.longitude) <= tolerance + 1e-12
        expected_battery = (
            gt06_battery(report.battery_pct) if name == "gt06" else whole_percent(report.battery_pct)
        )
        assert beat.battery_pct == expected_battery
        assert (beat.battery_pct < 15) == (report.battery_pct < 15)
        assert fix.course_deg is not None and 0 <= fix.course_deg < 360
        assert math.isclose(fix.speed_kmh or 0.0, report.speed_knots * 1.852, abs_tol=0.51)


def test_a_day_of_reports_round_trips_over_mqtt(day: list[Report]) -> None:
    for report in day:
        message = _one(mqtt.decode(mqtt_topic("org", UID), mqtt_payload(report)))
        assert (message.time, message.latitude, message.longitude) == (
            report.time,
            report.latitude,
            report.longitude,
        )
        assert message.battery_pct == report.battery_pct
        assert message.alarms == _alarms(report, "mqtt")
        assert message.extras["position_source"] == report.source
        assert message.accuracy_m == report.accuracy_m
        assert (message.heart_rate_bpm, message.spo2_pct) == (report.heart_rate_bpm, report.spo2_pct)
        assert (message.temperature_c, message.steps) == (report.temperature_c, report.steps)


def test_a_day_of_reports_round_trips_over_osmand(day: list[Report]) -> None:
    for report in day:
        request = osmand.HttpRequest("GET", urlencode(osmand_query(report)), "", b"")
        message = _one(osmand.decode(request))
        assert (message.unique_id, message.time) == (UID, report.time)
        assert (message.latitude, message.longitude) == (report.latitude, report.longitude)
        assert (message.accuracy_m, message.battery_pct) == (report.accuracy_m, report.battery_pct)
        assert message.alarms == _alarms(report, "osmand")
        assert (message.heart_rate_bpm, message.spo2_pct) == (report.heart_rate_bpm, report.spo2_pct)
        assert (message.temperature_c, message.steps) == (report.temperature_c, report.steps)


def test_ids_a_protocol_cannot_carry_are_refused() -> None:
    with pytest.raises(ValueError, match="GT06"):
        GT06.check_id("12345678901234567")  # 17 digits do not fit 8 BCD bytes
    with pytest.raises(ValueError, match="H02"):
        H02.check_id("ABC123")
    with pytest.raises(ValueError, match="watch"):
        WATCH.check_id("abc-123")
    for speaker in (WATCH, GT06, H02):
        speaker.check_id(UID)


def _locate() -> DeviceCommand:
    return DeviceCommand(CommandKind.LOCATE)

"""Shared protocol encodings, pinned to values from real frames."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geosentinel.protocols.codec import bcd_digits, crc_itu, crc_itu_is, degrees_minutes


def test_crc_itu_matches_a_real_gt06_login_ack() -> None:
    # Traccar's reply to the login frame 78780D01086471700328358100093F040D0A is 78780501000955940D0A:
    # the CRC covers length..serial.
    assert crc_itu(bytes.fromhex("05010009")) == 0x5594


def test_crc_itu_check_value() -> None:
    assert crc_itu(b"123456789") == 0x906E  # the published check value of CRC-16/X-25


def _crc_itu_bitwise(data: bytes) -> int:
    """The textbook definition, one bit at a time."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


@given(st.binary(max_size=300))
def test_crc_itu_equals_the_bitwise_definition(data: bytes) -> None:
    assert crc_itu(data) == _crc_itu_bitwise(data)
    assert crc_itu(bytearray(data)) == _crc_itu_bitwise(data)


@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_crc_itu_is_agrees_with_crc_itu(data: bytes, other: int) -> None:
    crc = crc_itu(data)
    assert crc_itu_is(data, crc >> 8, crc & 0xFF)
    assert crc_itu_is(data, other >> 8, other & 0xFF) == (other == crc)


def test_bcd_digits() -> None:
    assert bcd_digits(bytes.fromhex("0864717003283581")) == "0864717003283581"
    with pytest.raises(ValueError, match="not BCD"):
        bcd_digits(b"\x1a")


@pytest.mark.parametrize(
    ("text", "degrees"),
    [("2235.1777", 22.586295), ("11357.8913", 113.964855), ("-3342.0000", -33.7), ("0038.6508", 0.64418)],
)
def test_degrees_minutes(text: str, degrees: float) -> None:
    assert degrees_minutes(text) == pytest.approx(degrees, abs=1e-6)


@pytest.mark.parametrize("text", ["", "12", "ab12.5", "1234.5x", "--1234.5"])
def test_degrees_minutes_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="degrees and minutes"):
        degrees_minutes(text)

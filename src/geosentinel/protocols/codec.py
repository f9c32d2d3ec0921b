"""Small encodings that several device protocols share: BCD, CRC-ITU, degrees-and-minutes."""

from __future__ import annotations


def _crc_itu_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_ITU = _crc_itu_table()


def crc_itu(data: bytes) -> int:
    """CRC-16/X-25 (reflected polynomial 0x8408, init and final xor 0xFFFF), as GT06 devices compute it."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_ITU[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


def bcd_digits(data: bytes) -> str:
    """The decimal digits of packed BCD bytes (high nibble first). Raises on a non-digit nibble."""
    text = data.hex()
    if not text.isdigit():
        raise ValueError(f"not BCD: {text}")
    return text


def degrees_minutes(text: str) -> float:
    """NMEA-style ``DDMM.MMMM`` / ``DDDMM.MMMM`` to decimal degrees (sign kept). Raises on malformed text."""
    negative = text.startswith("-")
    body = text.removeprefix("-")
    whole, _, fraction = body.partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()) or len(whole) < 3:
        raise ValueError(f"not degrees and minutes: {text!r}")
    degrees = int(whole[:-2])
    minutes = float(f"{whole[-2:]}.{fraction or '0'}")
    value = degrees + minutes / 60.0
    return -value if negative else value

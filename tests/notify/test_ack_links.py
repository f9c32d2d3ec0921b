"""Signed acknowledgement links: round trip, expiry against the given time, tampering, other alerts."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer

from geosentinel.notify.ack_links import SALT, AckClaim, AckLinkProblem, AckSigner, InvalidAckLink

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(hours=24)
SIGNER = AckSigner(SECRET)


def token(alert_id: str = "al-1", expires_at: datetime = EXPIRES) -> str:
    return SIGNER.sign(alert_id, "ct-7", "ntf-3", expires_at)


def problem(token: str, now: datetime = NOW, signer: AckSigner = SIGNER, **kwargs: str) -> AckLinkProblem:
    with pytest.raises(InvalidAckLink) as caught:
        signer.verify(token, now, **kwargs)
    return caught.value.reason


def test_round_trip() -> None:
    assert SIGNER.verify(token(), NOW) == AckClaim("al-1", "ct-7", "ntf-3", EXPIRES)


def test_the_token_is_url_safe_and_short_enough_for_an_sms() -> None:
    t = SIGNER.sign("3f2c9a4e-8b1d-4c55-9e0a-2b7d6f1a0c93", "ct-7", "ntf-3", EXPIRES)
    assert set(t) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert len(t) < 160


def test_expiry_is_checked_against_the_time_passed_in() -> None:
    assert SIGNER.verify(token(), EXPIRES - timedelta(seconds=1)).alert_id == "al-1"
    assert problem(token(), now=EXPIRES) is AckLinkProblem.EXPIRED
    assert problem(token(), now=EXPIRES + timedelta(days=400)) is AckLinkProblem.EXPIRED


def test_expiry_in_another_offset_is_the_same_instant() -> None:
    beijing = timezone(timedelta(hours=8))
    claim = SIGNER.verify(token(expires_at=EXPIRES.astimezone(beijing)), NOW)
    assert claim.expires_at == EXPIRES and claim.expires_at.tzinfo is UTC


def test_a_tampered_token_is_refused() -> None:
    t = token()
    payload, signature = t.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data[0] = "al-OTHER"  # the same link, pointed at another alert
    forged = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()

    assert problem(f"{forged}.{signature}") is AckLinkProblem.BAD_SIGNATURE
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    assert problem(f"{payload}.{flipped}") is AckLinkProblem.BAD_SIGNATURE


def test_a_token_for_another_alert_cannot_take_this_one() -> None:
    other = token("al-2")
    assert SIGNER.verify(other, NOW).alert_id == "al-2"  # it names its own alert, never the caller's
    assert problem(other, alert_id="al-1") is AckLinkProblem.OTHER_ALERT
    assert SIGNER.verify(token("al-1"), NOW, alert_id="al-1").alert_id == "al-1"


def test_another_secret_or_salt_does_not_verify() -> None:
    assert (
        problem(token(), signer=AckSigner(b"another secret, 32 bytes long!!!"))
        is AckLinkProblem.BAD_SIGNATURE
    )
    same_secret_other_use = URLSafeSerializer(SECRET, salt="password-reset").dumps(
        ["al-1", "ct-7", "ntf-3", 2**40]
    )
    assert problem(same_secret_other_use) is AckLinkProblem.BAD_SIGNATURE


def test_a_validly_signed_payload_of_the_wrong_shape_is_malformed() -> None:
    import hashlib

    ours = URLSafeSerializer(SECRET, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})
    for payload in (["al-1", "ct-7", "ntf-3"], {"a": 1}, ["al-1", "ct-7", "ntf-3", "soon"], [1, 2, 3, 4]):
        assert problem(ours.dumps(payload)) is AckLinkProblem.MALFORMED
    assert problem(ours.dumps(["al-1", "ct-7", "ntf-3", 10**30])) is AckLinkProblem.MALFORMED


def test_a_rotated_secret_still_verifies_old_links() -> None:
    rotated = AckSigner(b"the new secret, 32 bytes long!!!", previous_secrets=[SECRET])
    assert rotated.verify(token(), NOW).alert_id == "al-1"
    assert (
        problem(rotated.sign("al-1", "c", "n", EXPIRES)) is AckLinkProblem.BAD_SIGNATURE
    )  # new links: new key


@pytest.mark.parametrize("bad", ["", ".", "abc", "a.b.c.d.e", "é.é", "x" * 5000, "a b.c", "\ud800.x"])
def test_malformed_tokens(bad: str) -> None:
    assert problem(bad) in {AckLinkProblem.MALFORMED, AckLinkProblem.BAD_SIGNATURE}


@pytest.mark.parametrize("secret", [b"", b"short", "a str secret, 32 characters long"])
def test_a_weak_or_missing_secret_is_refused(secret: bytes) -> None:
    with pytest.raises(ValueError, match="secret"):
        AckSigner(secret)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SIGNER.sign("al-1", "c", "n", datetime(2026, 3, 30))
    with pytest.raises(ValueError, match="timezone-aware"):
        SIGNER.verify(token(), datetime(2026, 3, 29))


@settings(max_examples=400, deadline=None)
@given(
    st.text(max_size=300)
    | st.from_regex(r"\.?[A-Za-z0-9_\-]{0,80}(\.[A-Za-z0-9_\-]{0,60}){0,3}", fullmatch=True)
)
def test_verify_raises_only_invalid_ack_link_for_any_string(candidate: str) -> None:
    try:
        SIGNER.verify(candidate, NOW)
    except InvalidAckLink as exc:
        assert exc.reason in set(AckLinkProblem)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=40), st.integers(min_value=0, max_value=20))
def test_any_single_character_change_breaks_the_token(alert_id: str, position: int) -> None:
    t = SIGNER.sign(alert_id, "ct-7", "ntf-3", EXPIRES)
    i = position % len(t)
    replacement = "A" if t[i] != "A" else "B"
    changed = t[:i] + replacement + t[i + 1 :]
    try:
        claim = SIGNER.verify(changed, NOW)
    except InvalidAckLink:
        return
    # Base64's last character can carry unused bits: a change there may decode to the same bytes.
    assert claim == SIGNER.verify(t, NOW)

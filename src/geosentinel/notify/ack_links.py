"""Signed links that let a notified contact take an alert without logging in.

A token names one alert, one contact and one notification, and carries its own expiry; it is signed with
the platform's secret (HMAC-SHA256 through itsdangerous), so changing any of them breaks the signature.
Expiry is checked against the ``now`` the caller passes: itsdangerous' timed serializers read the wall
clock, so the expiry is part of the signed payload instead. Pure: no I/O, no clock.

Rotating the secret: sign with the new one and keep the old one in ``previous_secrets`` until the
longest-lived link signed with it has expired.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "geosentinel.ack-link.v1"  # separates these signatures from any other use of the same secret
MIN_SECRET_BYTES = 16
# A token is URL-safe base64 with "." separators (a leading "." marks a compressed payload); anything else
# is rejected before it reaches the HMAC.
_TOKEN_SHAPE = re.compile(r"\.?[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)+")
_MAX_TOKEN_CHARS = 2048


class AckLinkProblem(enum.StrEnum):
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad signature"
    EXPIRED = "expired"
    OTHER_ALERT = "other alert"  # a valid link, but for another alert than the one being taken


class InvalidAckLink(Exception):
    """The link cannot take the alert; ``reason`` says why (never which secret or what was expected)."""

    def __init__(self, reason: AckLinkProblem) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AckClaim:
    """Who may take which alert, through which notification, until when (UTC, whole seconds)."""

    alert_id: str
    contact_id: str
    notification_id: str
    expires_at: datetime


class AckSigner:
    """Signs and checks acknowledgement tokens with ``secret`` (bytes, never a default)."""

    def __init__(self, secret: bytes, previous_secrets: Sequence[bytes] = ()) -> None:
        for key in (secret, *previous_secrets):
            if not isinstance(key, bytes) or len(key) < MIN_SECRET_BYTES:
                raise ValueError(
                    f"an ack-link secret is bytes, at least {MIN_SECRET_BYTES} long (32 advised)"
                )
        # itsdangerous signs with the last key and accepts any of them.
        self._serializer = URLSafeSerializer(
            [*previous_secrets, secret], salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
        )

    def sign(self, alert_id: str, contact_id: str, notification_id: str, expires_at: datetime) -> str:
        """A URL-safe token for ``contact_id`` to take ``alert_id`` until ``expires_at`` (tz-aware)."""
        if expires_at.tzinfo is None or expires_at.utcoffset() is None:
            raise ValueError("expires_at must be timezone-aware")
        expires_s = int(expires_at.timestamp())  # whole seconds keep the token short (it goes in SMS)
        return self._serializer.dumps([alert_id, contact_id, notification_id, expires_s])

    def verify(self, token: str, now: datetime, *, alert_id: str | None = None) -> AckClaim:
        """The claim in ``token`` if it is genuine and unexpired at ``now``.

        With ``alert_id``, a token for any other alert is refused too (for routes that name the alert).
        Raises InvalidAckLink and nothing else for any string.
        """
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        if len(token) > _MAX_TOKEN_CHARS or not _TOKEN_SHAPE.fullmatch(token):
            raise InvalidAckLink(AckLinkProblem.MALFORMED)
        try:
            payload = self._serializer.loads(token)
        except BadSignature as exc:  # also BadPayload: a signed but undecodable payload is not ours
            raise InvalidAckLink(AckLinkProblem.BAD_SIGNATURE) from exc
        claim = _claim(payload)
        if claim is None:
            raise InvalidAckLink(AckLinkProblem.MALFORMED)
        if now >= claim.expires_at:
            raise InvalidAckLink(AckLinkProblem.EXPIRED)
        if alert_id is not None and claim.alert_id != alert_id:
            raise InvalidAckLink(AckLinkProblem.OTHER_ALERT)
        return claim


def _claim(payload: Any) -> AckClaim | None:
    if not isinstance(payload, list) or len(payload) != 4:
        return None
    alert_id, contact_id, notification_id, expires_s = payload
    if not all(isinstance(v, str) for v in (alert_id, contact_id, notification_id)):
        return None
    if isinstance(expires_s, bool) or not isinstance(expires_s, int):
        return None
    try:
        expires_at = datetime.fromtimestamp(expires_s, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return AckClaim(alert_id, contact_id, notification_id, expires_at)

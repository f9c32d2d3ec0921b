"""Sending a rendered message to one contact through Apprise, channel after channel until one works.

Blocking network I/O: the notification loop runs :func:`deliver` in a worker thread. A contact's channels
are Apprise URLs (``mailto://``, ``json://``, ``ntfy://``, ``tgram://`` ...) tried in their order; the
first that succeeds ends the delivery. Delivery is at-least-once (a send that timed out may still have
arrived, and the outbox retries): webhooks get an ``Idempotency-Key`` header so receivers can drop
repeats, other channels a short reference line at the end of the body.

No secret reaches a status or a log line: URLs are shown through Apprise's privacy mode (plus masking of
the custom headers and parameters it leaves visible), and failure reasons are scrubbed of every part of
the URL that the privacy mode hides.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

import apprise
from apprise.plugins.base import NotifyBase

from geosentinel.notify.apprise_logs import LogLine, captured_apprise_logs
from geosentinel.notify.messages import RenderedMessage

with warnings.catch_warnings(), contextlib.suppress(ImportError):
    # Apprise's e-mail plugin imports the stdlib ``imghdr`` (deprecated in 3.11) the first time it loads,
    # mid-delivery; importing it once here, quietly, keeps that third-party warning out of warnings-as-errors
    # test runs (and out of the delivery's reason).
    warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
    import imghdr  # noqa: F401

log = logging.getLogger(__name__)

WEBHOOK_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
IDEMPOTENCY_HEADER = "Idempotency-Key"
CONNECT_TIMEOUT_S = 4.0  # Apprise's ``cto``; a dead channel must not hold up the fall-back for long
READ_TIMEOUT_S = 4.0  # Apprise's ``rto``
SERVICE_TIMEOUT_S = 30.0  # the whole attempt, whatever the plugin does (SMTP has no read timeout of its own)
MAX_ERROR_CHARS = 300

_ASSET = apprise.AppriseAsset(
    app_id="GeoSentinel",
    app_desc="GeoSentinel alerts",
    storage_mode="memory",  # no Apprise cache files next to the service
    language="en",  # Apprise's own messages, which end up in the failure reasons
    service_timeout=SERVICE_TIMEOUT_S,
    result_log_disk_size=0,
)
# Parameters every Apprise URL takes (timeouts, retry, format...): noise in a status line, never secret.
_GENERIC_PARAMS = frozenset(NotifyBase.template_args)
_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.\-]*)://")
# A webhook path segment that looks generated (12+ characters mixing letters and digits, like
# /api/webhook/3f9a7c01e2b4): receivers often use it as the secret, and privacy mode shows paths in clear.
_TOKEN_LIKE = re.compile(r"(?=[^/]*[0-9])(?=[^/]*[A-Za-z])[^/]{12,}")


@dataclass(frozen=True, slots=True)
class ChannelAttempt:
    """One try of one channel: ``channel`` is its index in the contact's URLs; ``error`` why it failed."""

    channel: int
    url_redacted: str
    ok: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome for one contact: ``channel`` is the index of the URL that worked (``None``: none did)."""

    ok: bool
    channel: int | None
    attempts: tuple[ChannelAttempt, ...]


def deliver(urls: Sequence[str], message: RenderedMessage, idempotency_key: str) -> Delivery:
    """Send ``message`` through the first of ``urls`` that works; never raises for a channel's failure.

    ``idempotency_key`` identifies this notification (the same key on every retry of it).
    """
    attempts: list[ChannelAttempt] = []
    for channel, url in enumerate(urls):
        attempt = _attempt(channel, url, message, idempotency_key)
        attempts.append(attempt)
        if attempt.ok:
            log.info(
                "notification %s sent via channel %d (%s)", idempotency_key, channel, attempt.url_redacted
            )
            return Delivery(True, channel, tuple(attempts))
        log.warning(
            "notification %s: channel %d (%s) failed: %s",
            idempotency_key,
            channel,
            attempt.url_redacted,
            attempt.error,
        )
    return Delivery(False, None, tuple(attempts))


def redact(url: str) -> str:
    """``url`` with its secrets masked, for statuses and logs (``scheme://****`` if Apprise refuses it)."""
    return _redaction(url)[0]


def with_delivery_options(url: str, idempotency_key: str) -> str:
    """``url`` with short timeouts unless it sets its own, and the idempotency header for webhooks.

    Parameters go at the very end: Apprise splits the query at the first ``?`` and keeps a ``#channel``
    in the path, so there is no need to take the URL apart.
    """
    query = url.split("?", 1)[1] if "?" in url else ""
    present = {unquote(pair.split("=", 1)[0]).strip().lower() for pair in query.split("&") if pair}
    extra: list[str] = []
    if "cto" not in present:
        extra.append(f"cto={CONNECT_TIMEOUT_S:g}")
    if "rto" not in present:
        extra.append(f"rto={READ_TIMEOUT_S:g}")
    if _scheme(url) in WEBHOOK_SCHEMES:
        extra.append(f"+{IDEMPOTENCY_HEADER}={quote(idempotency_key, safe='')}")
    if not extra:
        return url
    separator = "" if url.endswith(("?", "&")) else ("&" if "?" in url else "?")
    return url + separator + "&".join(extra)


# --- one attempt --------------------------------------------------------------------------------------


def _attempt(channel: int, url: str, message: RenderedMessage, idempotency_key: str) -> ChannelAttempt:
    shown, visible = _redaction(url)
    prepared = with_delivery_options(url, idempotency_key)
    with captured_apprise_logs() as lines:
        try:
            sent, refused = _send(url, prepared, message, idempotency_key)
        except Exception as exc:  # a plugin's bug must not stop the fall-back to the next channel
            sent, refused = False, False
            lines.append(LogLine(logging.ERROR, f"{type(exc).__name__}: {exc}"))
    if sent:
        return ChannelAttempt(channel, shown, True)
    scrub = _scrubber((prepared, url), shown, visible)
    return ChannelAttempt(channel, shown, False, scrub(_reason(lines, refused)))


def _send(url: str, prepared: str, message: RenderedMessage, idempotency_key: str) -> tuple[bool, bool]:
    """(sent, URL refused by Apprise)."""
    plugin = _instantiate(prepared)
    if plugin is None:
        return False, True
    body = message.body
    if _scheme(url) not in WEBHOOK_SCHEMES:
        body = f"{body}\nRef. {idempotency_key}"
    sender = apprise.Apprise(asset=_ASSET)
    sender.add(plugin)
    result = sender.notify(
        body=body,
        title=message.title,
        notify_type=apprise.NotifyType.FAILURE if message.urgent else apprise.NotifyType.WARNING,
        body_format=apprise.NotifyFormat.TEXT,
    )
    return bool(result), False


def _instantiate(url: str) -> NotifyBase | None:
    plugin = apprise.Apprise.instantiate(url, asset=_ASSET)
    return plugin if isinstance(plugin, NotifyBase) else None


def _scheme(url: str) -> str:
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else ""


# --- why it failed ------------------------------------------------------------------------------------

# Apprise's warning says *that* a send failed; the cause is in its exception text. Checked in order.
_CAUSES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"connection refused", re.IGNORECASE), "connection refused"),
    (re.compile(r"timed out|timeout", re.IGNORECASE), "timed out"),
    (
        re.compile(r"name or service not known|name resolution|nodename nor servname|getaddrinfo", re.I),
        "host name not found",
    ),
    (re.compile(r"network is unreachable|no route to host", re.IGNORECASE), "network unreachable"),
    (re.compile(r"certificate verify|ssl:|sslerror|wrong version number", re.IGNORECASE), "TLS failure"),
    (re.compile(r"\b535\b|authentication", re.IGNORECASE), "authentication refused"),
    (re.compile(r"recipients? refused|\b550\b", re.IGNORECASE), "recipient refused"),
    (
        re.compile(r"connection (reset|aborted)|remote end closed|disconnected|broken pipe", re.IGNORECASE),
        "connection dropped",
    ),
)


def _reason(lines: Sequence[LogLine], refused: bool) -> str:
    """A short, never empty, sentence: the cause if one is recognised, then Apprise's own warnings."""
    telling = [line.message for line in lines if line.level >= logging.WARNING or "xception" in line.message]
    cause = next((name for pattern, name in _CAUSES for text in telling if pattern.search(text)), None)
    warnings: list[str] = []
    for line in lines:
        text = line.message.strip()
        if line.level >= logging.WARNING and text and text not in warnings:
            warnings.append(text)
    parts = ([cause] if cause else []) + warnings[:3]
    reason = "; ".join(parts) if parts else "failed, and Apprise gave no reason"
    if refused:
        reason = f"not a valid notification URL: {reason}"
    return reason if len(reason) <= MAX_ERROR_CHARS else reason[: MAX_ERROR_CHARS - 1] + "…"


def _scrubber(urls: Sequence[str], shown: str, visible: frozenset[str]) -> Callable[[str], str]:
    """Masks, in a text, the ``urls`` themselves and every piece of them not in ``visible``."""
    hidden = {p for url in urls for p in _pieces(url) if len(p) >= 4 and p not in visible}
    secrets = sorted(hidden, key=len, reverse=True)  # longest first: a token before its fragments

    def scrub(text: str) -> str:
        for url in filter(None, urls):  # replacing "" would put the mask between every character
            text = text.replace(url, shown)
        for secret in secrets:
            text = text.replace(secret, "****")
        return text

    return scrub


def _pieces(text: str) -> set[str]:
    """The words of a URL, as written and percent-decoded."""
    split = re.compile(r"[/:@?&=#,;+\s\[\]]+")
    return {p for form in (text, unquote(text)) for p in split.split(form) if p}


# --- what a URL may show ------------------------------------------------------------------------------


def _redaction(url: str) -> tuple[str, frozenset[str]]:
    """The URL as statuses show it, and the pieces of it that may appear in clear.

    That is Apprise's privacy URL without its generic parameters, with the custom headers (``+``),
    query parameters (``-``) and payload fields (``:``) masked: privacy mode leaves those in clear, and
    they are where webhook tokens usually go (``+Authorization=Bearer ...``). The generic parameters are
    dropped as noise but stay "visible": they are never secret, so error texts keep words like ``text``.
    """
    with captured_apprise_logs():  # a refused URL is logged in full by Apprise: keep it out of the logs
        plugin = _instantiate(url)
    if plugin is None:
        match = _SCHEME.match(url)
        shown = f"{match.group(1).lower()}://****" if match else "****"
        return shown, frozenset(_pieces(shown))
    privacy_url: str = plugin.url(privacy=True)  # type: ignore[no-untyped-call]  # untyped in Apprise
    base, _, query = privacy_url.partition("?")
    if _scheme(url) in WEBHOOK_SCHEMES:
        base = _mask_token_like_path(base)
    kept: list[str] = []
    visible = _pieces(base)
    for pair in query.split("&") if query else []:
        raw_key, _, _ = pair.partition("=")
        key = unquote(raw_key)
        if key.lower() in _GENERIC_PARAMS:
            visible |= _pieces(pair)
        elif key.startswith(("+", "-", ":")):
            kept.append(f"{raw_key}=****")
            visible |= _pieces(raw_key)
        else:
            kept.append(pair)
            visible |= _pieces(pair)
    shown = f"{base}?{'&'.join(kept)}" if kept else base
    return shown, frozenset(visible | {"****"})


def _mask_token_like_path(base: str) -> str:
    scheme, _, rest = base.partition("://")
    authority, slash, path = rest.partition("/")
    masked = "/".join("****" if _TOKEN_LIKE.fullmatch(part) else part for part in path.split("/"))
    return f"{scheme}://{authority}{slash}{masked}"

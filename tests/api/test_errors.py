"""Error messages in the caller's language: the Accept-Language negotiation and the filling of values."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from geosentinel.api.errors import N_, localise, request_locale


def request(accept_language: str | None) -> Request:
    headers = [] if accept_language is None else [(b"accept-language", accept_language.encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "query_string": b""})


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, "en"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        ("zh-CN,zh;q=0.9", "zh"),
        ("de-DE,de;q=0.9,zh;q=0.5,fr;q=0.4", "zh"),  # the best of the ones we have
        ("en;q=0.2, fr;q=0.8", "fr"),
        ("pt-BR", "en"),
        ("fr;q=0", "en"),  # q=0 means "not this one"
        ("fr;q=nonsense", "en"),
        (",,;;q=,", "en"),
    ],
)
def test_the_language_comes_from_accept_language(header: str | None, locale: str) -> None:
    assert request_locale(request(header)) == locale


def test_messages_are_translated_then_filled() -> None:
    message = N_("no alert {alert_id}")
    assert localise(message, "en", {"alert_id": "a-1"}) == "no alert a-1"
    assert localise(message, "fr", {"alert_id": "a-1"}) == "aucune alerte a-1"
    assert localise(message, "zh", {"alert_id": "a-1"}) == "没有警报 a-1"
    # A value is never read as a placeholder (an id with braces stays as sent).
    assert localise(message, "fr", {"alert_id": "{oops}"}) == "aucune alerte {oops}"
    assert localise("a message no catalog has", "zh") == "a message no catalog has"

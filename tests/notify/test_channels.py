"""Delivery through real Apprise plugins to real receivers on 127.0.0.1 (no mocks, no other network)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import pytest
from receivers import LOOPBACK, Hook, Mailbox, free_port

from geosentinel.model import EventKind, Region
from geosentinel.notify.apprise_logs import APPRISE_LOGGER, URLLIB3_LOGGER
from geosentinel.notify.channels import Delivery, deliver, redact, with_delivery_options
from geosentinel.notify.messages import AlertNotice, RenderedMessage, render

KEY = "al-1:0:2:ct-7"  # <alert id>:<round>:<step>:<contact id>, as the dispatch loop makes them
MESSAGE = RenderedMessage("URGENT - SOS alert: Mme Dupont", "Mme Dupont pressed the SOS button.", urgent=True)


def mailto(port: int, to: str = "famille@example.org") -> str:
    """Plain SMTP on a custom port: no TLS (mode=insecure), no login (no user:password)."""
    return (
        f"mailto://{LOOPBACK}:{port}?from=alertes@geosentinel.example&to={to}&mode=insecure&name=GeoSentinel"
    )


def json_hook(port: int, path: str = "/alerts") -> str:
    return f"json://{LOOPBACK}:{port}{path}"


# --- e-mail -------------------------------------------------------------------------------------------


def test_a_french_email_reaches_a_real_smtp_server(smtp_server: Mailbox) -> None:
    notice = AlertNotice(
        "al-1", EventKind.FALL, "Mme Dupont", "Résidence Les Tilleuls", Region.EU,
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC), latitude=48.8566, longitude=2.3522,
        ack_url="https://gs.example/ack/abc",
    )  # fmt: skip
    message = render(notice, "fr", "Europe/Paris")

    delivery = deliver([mailto(smtp_server.port)], message, KEY)

    assert delivery.ok and delivery.channel == 0
    assert delivery.attempts[0].error is None
    (envelope,) = smtp_server.envelopes
    assert envelope.rcpt_tos == ["famille@example.org"]
    assert envelope.mail_from == "alertes@geosentinel.example"
    (mail,) = smtp_server.messages
    assert mail["Subject"] == "URGENT – Chute détectée : Mme Dupont"
    assert mail["From"] == "GeoSentinel <alertes@geosentinel.example>"
    body = mail.get_content().replace("\r\n", "\n")
    assert body.startswith("Le bracelet a détecté une chute : Mme Dupont a peut-être besoin d'aide.\n")
    assert "Alerte déclenchée le dim. 29 mars 2026, 03:00." in body
    assert "Prendre en charge cette alerte, sans vous connecter : https://gs.example/ack/abc" in body
    assert body.rstrip("\n").endswith(f"Ref. {KEY}")  # e-mail has no header for it: a reference line


def test_chinese_subject_and_body_arrive_as_utf8(smtp_server: Mailbox) -> None:
    notice = AlertNotice(
        "al-2", EventKind.SOS, "王秀英", "幸福养老院", Region.CN, datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        latitude=31.2304, longitude=121.4737,
    )  # fmt: skip
    message = render(notice, "zh", "Asia/Shanghai")

    assert deliver([mailto(smtp_server.port)], message, KEY).ok

    (mail,) = smtp_server.messages
    assert mail["Subject"] == "【紧急】SOS 紧急求助：王秀英"
    body = mail.get_content()
    assert "王秀英按下了 SOS 紧急求助按钮。" in body
    assert "发生时间：2026年3月29日周日 09:00" in body
    assert "https://uri.amap.com/marker?position=121.4737,31.2304&coordinate=wgs84" in body


# --- webhooks -----------------------------------------------------------------------------------------


def test_a_json_webhook_gets_the_idempotency_key_header_and_the_message(webhook: Hook) -> None:
    delivery = deliver([json_hook(webhook.port)], MESSAGE, KEY)

    assert delivery == Delivery(True, 0, delivery.attempts) and delivery.attempts[0].ok
    (request,) = webhook.requests
    assert request["path"] == "/alerts"
    assert request["headers"]["Idempotency-Key"] == KEY
    assert request["json"]["title"] == MESSAGE.title
    assert request["json"]["message"] == MESSAGE.body  # webhooks carry the key in a header, not the body
    assert request["json"]["type"] == "failure"  # urgent: the strongest Apprise type, for chat colours


def test_the_same_key_is_sent_again_on_a_retry(webhook: Hook) -> None:
    deliver([json_hook(webhook.port)], MESSAGE, KEY)
    deliver([json_hook(webhook.port)], MESSAGE, KEY)

    assert [r["headers"]["Idempotency-Key"] for r in webhook.requests] == [KEY, KEY]


def test_an_http_error_is_a_failed_attempt_with_the_status(webhook: Hook) -> None:
    webhook.status = 500

    delivery = deliver([json_hook(webhook.port)], MESSAGE, KEY)

    assert not delivery.ok and delivery.channel is None
    error = delivery.attempts[0].error
    assert error is not None and "500" in error


# --- fall-back ----------------------------------------------------------------------------------------


def test_a_dead_channel_falls_back_to_the_next(webhook: Hook) -> None:
    dead = free_port()

    delivery = deliver([json_hook(dead), json_hook(webhook.port)], MESSAGE, KEY)

    assert delivery.ok and delivery.channel == 1
    first, second = delivery.attempts
    assert (first.channel, first.ok, second.channel, second.ok) == (0, False, 1, True)
    assert first.error is not None and first.error.startswith("connection refused")
    assert first.url_redacted == f"json://{LOOPBACK}:{dead}/alerts?method=POST"
    assert len(webhook.requests) == 1


def test_the_first_channel_that_works_ends_the_delivery(webhook: Hook, smtp_server: Mailbox) -> None:
    delivery = deliver([json_hook(webhook.port), mailto(smtp_server.port)], MESSAGE, KEY)

    assert delivery.channel == 0 and len(delivery.attempts) == 1
    assert smtp_server.envelopes == []


def test_every_channel_down_fails_with_a_reason_for_each() -> None:
    urls = [json_hook(free_port()), mailto(free_port()), "foo://nothing-here"]

    delivery = deliver(urls, MESSAGE, KEY)

    assert not delivery.ok and delivery.channel is None
    assert [a.channel for a in delivery.attempts] == [0, 1, 2]
    assert all(not a.ok and a.error for a in delivery.attempts)
    assert delivery.attempts[1].error is not None and delivery.attempts[1].error.startswith(
        "connection refused"
    )
    assert delivery.attempts[2].error is not None
    assert delivery.attempts[2].error.startswith("not a valid notification URL")


@pytest.mark.parametrize("url", ["foo://bar", "mailto://", "json://", "not a url", "", "json://[::1/x"])
def test_an_invalid_url_is_a_failed_attempt_not_an_exception(url: str) -> None:
    delivery = deliver([url], MESSAGE, KEY)

    (attempt,) = delivery.attempts
    assert not attempt.ok
    assert attempt.error is not None and attempt.error.startswith("not a valid notification URL")


def test_no_channel_at_all_is_a_failed_delivery_without_attempts() -> None:
    assert deliver([], MESSAGE, KEY) == Delivery(False, None, ())


def test_concurrent_deliveries_keep_their_own_reasons() -> None:
    """Apprise logs through one process-wide logger: each thread must still read only its own lines."""
    ports = [free_port() for _ in range(4)]
    results: dict[int, Delivery] = {}

    def run(port: int) -> None:
        results[port] = deliver([f"json://{LOOPBACK}:{port}/t{port}"], MESSAGE, KEY)

    threads = [threading.Thread(target=run, args=(port,)) for port in ports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    for port, delivery in results.items():
        (attempt,) = delivery.attempts
        assert attempt.error is not None and attempt.error.startswith("connection refused")
        assert str(port) in attempt.url_redacted
        others = [str(p) for p in ports if p != port]
        assert not any(other in (attempt.error or "") for other in others)
    assert len(results) == len(ports)
    assert APPRISE_LOGGER.level == logging.NOTSET and not APPRISE_LOGGER.filters  # back as it was
    assert not URLLIB3_LOGGER.filters


# --- secrets ------------------------------------------------------------------------------------------

SECRET_URLS = [
    (f"json://alice:Sup3rSecret@{LOOPBACK}:{{port}}/hook", "Sup3rSecret"),
    (f"json://{LOOPBACK}:{{port}}/hook?+Authorization=Bearer%20tok-9f8e7d6c5b", "tok-9f8e7d6c5b"),
    (
        f"mailto://bob:Pa55w0rdX@{LOOPBACK}:{{port}}?from=a@example.org&to=b@example.org&mode=insecure",
        "Pa55w0rdX",
    ),
    ("ntfy://tk_ntfysecret0123@{host}:{port}/alerts", "tk_ntfysecret0123"),
]


@pytest.mark.parametrize(("template", "secret"), SECRET_URLS)
def test_a_secret_never_appears_in_attempts_or_logs(
    template: str, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = template.format(port=free_port(), host=LOOPBACK)
    caplog.set_level(logging.DEBUG)  # even an application logging everything must not see it

    delivery = deliver([url], MESSAGE, KEY)

    (attempt,) = delivery.attempts
    assert not attempt.ok and attempt.error
    assert secret not in attempt.url_redacted
    assert secret not in attempt.error
    assert secret not in caplog.text and secret not in repr(delivery)
    assert caplog.records  # the delivery did log: the failure, scrubbed


def test_a_token_in_a_webhook_path_stays_out_of_every_log(
    webhook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    """urllib3 logs each request line ("POST /hook/<token>") at DEBUG; during a delivery it is kept back."""
    caplog.set_level(logging.DEBUG)
    url = f"json://{LOOPBACK}:{webhook.port}/hook/Tok3nInPath9f8e"

    delivery = deliver([url], MESSAGE, KEY)

    assert delivery.ok and webhook.requests[0]["path"] == "/hook/Tok3nInPath9f8e"
    assert delivery.attempts[0].url_redacted == f"json://{LOOPBACK}:{webhook.port}/hook/****?method=POST"
    assert "Tok3nInPath9f8e" not in caplog.text
    logging.getLogger("urllib3.connectionpool").debug("outside a delivery: %s", "passes")
    assert "outside a delivery: passes" in caplog.text  # the filter only acts during deliveries


def test_redact_masks_password_and_custom_headers() -> None:
    assert redact("json://u:pw12345@hooks.example.org/x?+Authorization=Bearer%20abc") == (
        "json://u:****@hooks.example.org/x?method=POST&%2BAuthorization=****"
    )
    assert redact("mailto://bob:Pa55w0rd@mail.example.org:2525?from=a@example.org&to=c@example.org") == (
        "mailto://bob:****@mail.example.org:2525/c%40example.org?from=a%40example.org"
    )
    assert redact("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123").startswith("tgram://1...w/")
    assert redact("foo://user:secret@host") == "foo://****"
    assert redact("not a url") == "****"


# --- URL options --------------------------------------------------------------------------------------


def test_webhooks_get_the_header_and_short_timeouts() -> None:
    assert with_delivery_options("json://h/x", "k 1/2") == "json://h/x?cto=4&rto=4&+Idempotency-Key=k%201%2F2"
    assert with_delivery_options("xmls://h/x?a=1", "k") == "xmls://h/x?a=1&cto=4&rto=4&+Idempotency-Key=k"


def test_other_channels_get_timeouts_only_and_keep_their_own() -> None:
    assert with_delivery_options("mailto://h?to=a@b.c&cto=10", "k") == "mailto://h?to=a@b.c&cto=10&rto=4"
    assert with_delivery_options("ntfy://h/topic?rto=9&CTO=2", "k") == "ntfy://h/topic?rto=9&CTO=2"
    # A #channel stays in the path: Apprise splits the query at the first "?", not at "#".
    assert with_delivery_options("slack://T/B/C/#alerts", "k") == "slack://T/B/C/#alerts?cto=4&rto=4"

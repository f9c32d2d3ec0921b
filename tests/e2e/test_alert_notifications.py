"""Alerts reach people through real receivers on loopback: an SMTP server (aiosmtpd) and webhook servers.

The service runs as a child process with a signing secret; policies have steps a few seconds apart so that
escalation, acknowledgement through the link, SIGKILL in the middle, retries and fall-back all happen in a
test's time.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from geosentinel.testing import ServiceProcess, Tenant, add_devices, eventually, free_port, provision

pytestmark = pytest.mark.e2e

SECRET = "test-secret-" + "x" * 40


class Mailbox:
    """An SMTP server on loopback keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def url(self, to: str) -> str:
        return f"mailto://127.0.0.1:{self.port}?mode=insecure&from=alerts@geosentinel.test&to={to}"

    def start(self) -> Mailbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


class Webhook:
    """An HTTP server on loopback recording every request (headers and JSON body)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append(({k.lower(): v for k, v in self.headers.items()}, json.loads(body or b"{}")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)

    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def about(self, alert_id: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        """The requests about one alert (its id starts their idempotency key)."""
        return [r for r in self.requests if r[0].get("idempotency-key", "").startswith(f"{alert_id}:")]

    def start(self) -> Webhook:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox().start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    hook = Webhook().start()
    yield hook
    hook.stop()


@pytest.fixture(scope="module")
def tenant(module_db_url: str) -> Tenant:
    return provision(module_db_url, "Notifications", "870000000000001", "admin@example.org")


@pytest.fixture(scope="module")
def service(tenant: Tenant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    svc = ServiceProcess(
        tenant.db_url, tmp_path_factory.mktemp("serve") / "serve.log", "--notify-retry-delays", "1,2,30",
        env={"GEOSENTINEL_SECRET_KEY": SECRET},
    ).start()  # fmt: skip
    yield svc
    svc.stop()


def _api(service: ServiceProcess, tenant: Tenant, method: str, path: str, **body: Any) -> Any:
    response = httpx.request(
        method, f"{service.api}/api/v1{path}", json=body or None, timeout=10,
        headers={"Authorization": f"Bearer {tenant.token}"},
    )  # fmt: skip
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def _contact(service: ServiceProcess, tenant: Tenant, name: str, locale: str, *urls: str) -> str:
    contact = _api(service, tenant, "POST", "/contacts", name=name, locale=locale, timezone="Europe/Paris",
                   urls=list(urls))  # fmt: skip
    assert all("secret" not in url for url in contact["urls"])
    return str(contact["id"])


def _wearer_with_policy(
    service: ServiceProcess, tenant: Tenant, steps: list[dict[str, Any]]
) -> tuple[str, str]:
    """A new wearer and OsmAnd device, with their own policy (no repeat)."""
    unique_id = str(880_000_000_000 + uuid.uuid4().int % 1_000_000)
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, [unique_id])[0]
    policy = _api(service, tenant, "POST", "/escalation-policies", name=f"p-{unique_id}",
                  policy={"steps": steps, "repeat_after_s": None})  # fmt: skip
    _api(service, tenant, "PUT", f"/wearers/{wearer_id}/escalation-policy", policy_id=policy["id"])
    return wearer_id, unique_id


def _sos(service: ServiceProcess, unique_id: str) -> None:
    fix = {"id": unique_id, "lat": 43.5263, "lon": 5.4454, "timestamp": int(time.time()), "alarm": "sos"}
    assert httpx.get(f"{service.osmand}/", params=fix, timeout=5).status_code == 200  # type: ignore[arg-type]


def _mail_to(mailbox: Mailbox, address: str) -> list[EmailMessage]:
    return [m for m in mailbox.messages if address in str(m["To"])]


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    assert part is not None
    return str(part.get_content())


def _alert_of(service: ServiceProcess, tenant: Tenant, wearer_id: str) -> dict[str, Any]:
    items = _api(service, tenant, "GET", f"/alerts?wearer_id={wearer_id}")["items"]
    assert len(items) == 1
    return dict(items[0])


def test_the_email_in_french_carries_a_link_that_takes_the_alert_and_stops_escalation(
    service: ServiceProcess, tenant: Tenant, mailbox: Mailbox, webhook: Webhook
) -> None:
    address = f"garde-{uuid.uuid4().hex[:8]}@example.org"  # the mailbox serves every backend's run
    nurse = _contact(service, tenant, "Infirmière de garde", "fr", mailbox.url(address))
    family = _contact(service, tenant, "Son", "en", webhook.url())
    wearer_id, unique_id = _wearer_with_policy(
        service, tenant, [{"contacts": [nurse]}, {"contacts": [family], "delay_s": 4}]
    )
    _sos(service, unique_id)
    (mail,) = eventually(lambda: _mail_to(mailbox, address), 5, "the nurse's e-mail")
    body = _text(mail)
    assert "SOS" in str(mail["Subject"]) and "Jeanne" not in body  # this wearer's name, not the tenant's
    assert "Wearer " in body and re.search(r"\b\d{1,2}:\d{2}\b", body)  # the time, in Paris time
    link = re.search(r"https?://\S+/ack/\S+", body)
    assert link is not None, body
    page = httpx.get(link.group(0), timeout=5)
    assert page.status_code == 200 and '<html lang="fr"' in page.text and "<form" in page.text
    assert _alert_of(service, tenant, wearer_id)["status"] == "open"  # opening the link changes nothing
    taken = httpx.post(link.group(0), timeout=5)
    assert taken.status_code == 200
    alert = _alert_of(service, tenant, wearer_id)
    assert alert["status"] == "acknowledged"
    time.sleep(6)  # past the family's step
    assert webhook.about(alert["id"]) == []
    timeline = _api(service, tenant, "GET", f"/alerts/{alert['id']}/timeline")
    assert [(t["action"], t["actor"]) for t in timeline["transitions"]] == [
        ("open", "system"),
        ("acknowledge", f"contact:{nurse}"),
    ]
    (sent,) = timeline["notifications"]
    assert (sent["contact_id"], sent["status"], sent["channel"]) == (nurse, "delivered", 0)
    assert httpx.post(link.group(0), timeout=5).status_code == 409  # taken already


def test_a_service_killed_mid_escalation_sends_the_next_step_once_at_its_time(
    service: ServiceProcess, tenant: Tenant, mailbox: Mailbox, webhook: Webhook
) -> None:
    address = f"night-{uuid.uuid4().hex[:8]}@example.org"
    nurse = _contact(service, tenant, "Night nurse", "en", mailbox.url(address))
    family = _contact(service, tenant, "Daughter", "zh", webhook.url())
    wearer_id, unique_id = _wearer_with_policy(
        service, tenant, [{"contacts": [nurse]}, {"contacts": [family], "delay_s": 6}]
    )
    sent_at = time.monotonic()
    _sos(service, unique_id)
    eventually(lambda: _mail_to(mailbox, address), 5, "the nurse's e-mail")
    alert_id = _alert_of(service, tenant, wearer_id)["id"]
    service.kill()
    service.start()
    restarted = time.monotonic() - sent_at
    (request,) = eventually(lambda: webhook.about(alert_id), 15, "the family's webhook after the restart")
    elapsed = time.monotonic() - sent_at
    # Never early; and at its due time (6 s), or at once when the restart itself took longer than that (on
    # a loaded machine a start takes 10-25 s: the step is then overdue and must not wait for anything).
    assert 5.5 <= elapsed <= max(6.0, restarted) + 4.0, (elapsed, restarted)
    headers, payload = request
    assert headers["idempotency-key"].startswith(f"{alert_id}:0:1:")
    assert "SOS" in payload["title"] or "紧急" in payload["title"]
    time.sleep(3)
    assert len(webhook.about(alert_id)) == 1 and len(_mail_to(mailbox, address)) == 1


def test_a_channel_that_is_down_is_retried_then_falls_back_and_the_status_says_why(
    service: ServiceProcess, tenant: Tenant
) -> None:
    late_port = free_port()  # nobody listens here yet: the first tries fail
    dead_port = free_port()  # nobody ever listens here
    on_call = _contact(
        service,
        tenant,
        "On-call line",
        "en",
        f"json://127.0.0.1:{dead_port}/x",
        f"json://127.0.0.1:{late_port}/x",
    )
    wearer_id, unique_id = _wearer_with_policy(service, tenant, [{"contacts": [on_call]}])
    _sos(service, unique_id)
    alerts = eventually(
        lambda: _api(service, tenant, "GET", f"/alerts?wearer_id={wearer_id}")["items"], 5, "alert"
    )
    alert_id = alerts[0]["id"]

    def notification() -> dict[str, Any]:
        timeline = _api(service, tenant, "GET", f"/alerts/{alert_id}/timeline")
        return dict(timeline["notifications"][0]) if timeline["notifications"] else {}

    first = eventually(lambda: (n := notification()) and n["tries"] >= 1 and n, 5, "the first try")
    assert first["status"] == "retrying" and first["last_error"]
    assert "refused" in first["last_error"].lower() or "connect" in first["last_error"].lower()
    late = Webhook(late_port).start()
    try:
        done = eventually(lambda: (n := notification()) and n["status"] == "delivered" and n, 10, "the retry")
        assert done["channel"] == 1 and done["tries"] >= 2  # the second address took it
        assert len(late.requests) == 1
    finally:
        late.stop()


def test_without_a_valid_link_nothing_is_taken(service: ServiceProcess) -> None:
    assert httpx.get(f"{service.api}/ack/not-a-token", timeout=5).status_code == 400
    assert httpx.post(f"{service.api}/ack/abc.def", timeout=5).status_code == 400

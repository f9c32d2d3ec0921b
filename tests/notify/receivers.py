"""Real receivers on loopback for the delivery tests: an SMTP server (aiosmtpd) and an HTTP webhook.

The fixtures that start them are in conftest.py."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on (bound then released: a closed port refuses connections at once)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
    return port


@dataclass
class Mailbox:
    """What the SMTP server accepted: envelopes and parsed messages, in order."""

    port: int
    envelopes: list[Envelope] = field(default_factory=list)

    @property
    def messages(self) -> list[EmailMessage]:
        parsed: list[EmailMessage] = []
        for envelope in self.envelopes:
            content = envelope.content if isinstance(envelope.content, bytes) else b""
            message = email.message_from_bytes(content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed


class _StoringHandler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.mailbox.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@contextmanager
def running_smtp_server() -> Iterator[Mailbox]:
    port = free_port()
    mailbox = Mailbox(port)
    controller = Controller(_StoringHandler(mailbox), hostname=LOOPBACK, port=port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@dataclass
class Hook:
    """A webhook receiver: every request it got, and the status it answers with."""

    port: int
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)


def _handler(hook: Hook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            is_json = self.headers.get("Content-Type", "").startswith("application/json")
            hook.requests.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers.items()),
                    "body": raw,
                    "json": json.loads(raw) if is_json else None,
                }
            )
            self.send_response(hook.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
            pass

    return Handler


@contextmanager
def running_webhook() -> Iterator[Hook]:
    hook = Hook(0)
    server = ThreadingHTTPServer((LOOPBACK, 0), _handler(hook))
    hook.port = server.server_port
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="webhook", daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

"""Fixtures that start real receivers on 127.0.0.1 (see receivers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from receivers import Hook, Mailbox, running_smtp_server, running_webhook


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    with running_smtp_server() as mailbox:
        yield mailbox


@pytest.fixture
def webhook() -> Iterator[Hook]:
    with running_webhook() as hook:
        yield hook

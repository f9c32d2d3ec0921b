"""Apprise's log lines of the current delivery: the only place Apprise says why a send failed.

Apprise reports failures by logging, and the useful cause ("Socket Exception: ... Connection refused") is
a DEBUG line, while its logger normally stops at WARNING. Those DEBUG lines also carry bot tokens and
message bodies (a Telegram POST URL embeds the token). So while a delivery runs, the ``apprise`` logger
is opened to DEBUG and a filter takes every record made *in that delivery's context* into the delivery's
own list and stops it there: the application's handlers never see it, and two deliveries in two threads
never read each other's lines (Apprise runs services in worker threads with a copy of the caller's
context, so the list follows the work). Records from anywhere else pass as the logger would have let them.
urllib3's request lines are taken the same way (its level is left alone): they show the request path,
where Telegram and many webhooks put their token.

``apprise.LogCapture`` is not used: it adds a handler for *all* threads and lowers the level for the whole
process, so concurrent deliveries would swap failure reasons and DEBUG lines would reach the app's logs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

APPRISE_LOGGER = logging.getLogger("apprise")
URLLIB3_LOGGER = logging.getLogger("urllib3.connectionpool")


@dataclass(frozen=True, slots=True)
class LogLine:
    level: int
    message: str


_current: ContextVar[list[LogLine] | None] = ContextVar("geosentinel_apprise_lines", default=None)


class _DeliveryFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__("geosentinel.notify")
        self.threshold = logging.NOTSET  # outside deliveries: what the logger let through before we opened it

    def filter(self, record: logging.LogRecord) -> bool:
        lines = _current.get()
        if lines is None:
            return record.levelno >= self.threshold
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed Apprise log call must not end the delivery
            message = str(record.msg)
        lines.append(LogLine(record.levelno, message.replace("\r", " ").replace("\n", " ")))
        return False


class _Opener:
    """Keeps Apprise's logger at DEBUG and the filters on while at least one delivery is running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved_level = logging.NOTSET
        self._apprise_filter = _DeliveryFilter()
        self._urllib3_filter = _DeliveryFilter()

    def open(self) -> None:
        with self._lock:
            if self._users == 0:
                self._saved_level = APPRISE_LOGGER.level
                self._apprise_filter.threshold = APPRISE_LOGGER.getEffectiveLevel()
                APPRISE_LOGGER.addFilter(self._apprise_filter)
                URLLIB3_LOGGER.addFilter(self._urllib3_filter)
                APPRISE_LOGGER.setLevel(logging.DEBUG)
            self._users += 1

    def close(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                APPRISE_LOGGER.setLevel(self._saved_level)
                APPRISE_LOGGER.removeFilter(self._apprise_filter)
                URLLIB3_LOGGER.removeFilter(self._urllib3_filter)


_OPENER = _Opener()


@contextlib.contextmanager
def captured_apprise_logs() -> Iterator[list[LogLine]]:
    """The lines Apprise logs inside the ``with`` block (in this context only), in order."""
    lines: list[LogLine] = []
    token = _current.set(lines)
    _OPENER.open()
    try:
        yield lines
    finally:
        _OPENER.close()
        _current.reset(token)

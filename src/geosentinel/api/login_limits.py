"""Brakes on password guessing, on top of the per-account lockout kept in the store.

- per client address: at most ``per_address`` attempts in ``window`` (a sliding window), whatever the
  accounts tried;
- per unknown e-mail: the same failure count as a real account gets, so that a lockout answer never tells
  an attacker which addresses have accounts.

In memory: the API runs in one process (the core), and a restart only gives an attacker back a few
attempts per address. Pure: the time is passed in.
"""

from __future__ import annotations

import collections
from datetime import datetime, timedelta


class LoginLimits:
    def __init__(
        self,
        per_address: int = 20,
        window: timedelta = timedelta(minutes=10),
        max_failures: int = 5,
        lock_for: timedelta = timedelta(minutes=15),
    ) -> None:
        self.per_address = per_address
        self.window = window
        self.max_failures = max_failures
        self.lock_for = lock_for
        self._attempts: dict[str, collections.deque[datetime]] = {}
        self._unknown: dict[str, tuple[int, datetime | None]] = {}  # e-mail -> (failures, locked until)

    def allow_attempt(self, address: str, now: datetime) -> bool:
        """Count an attempt from ``address``; False when it is over its budget (the attempt is refused)."""
        attempts = self._attempts.setdefault(address, collections.deque())
        while attempts and now - attempts[0] >= self.window:
            attempts.popleft()
        if len(attempts) >= self.per_address:
            return False
        attempts.append(now)
        if len(self._attempts) > 100_000:  # bounded memory under a spray of addresses
            self._forget(now)
        return True

    def unknown_locked(self, email: str, now: datetime) -> bool:
        _, until = self._unknown.get(email, (0, None))
        return until is not None and now < until

    def unknown_failed(self, email: str, now: datetime) -> bool:
        """A failed login for an address without an account; True when it is now 'locked'."""
        failures, _ = self._unknown.get(email, (0, None))
        failures += 1
        locked = failures >= self.max_failures
        self._unknown[email] = (0, now + self.lock_for) if locked else (failures, None)
        if len(self._unknown) > 100_000:
            self._unknown.clear()
        return locked

    def _forget(self, now: datetime) -> None:
        self._attempts = {a: q for a, q in self._attempts.items() if q and now - q[-1] < self.window}

"""The brakes on password guessing, on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from geosentinel.api.login_limits import LoginLimits

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def test_an_address_gets_a_budget_of_attempts_per_sliding_window() -> None:
    limits = LoginLimits(per_address=3, window=timedelta(minutes=10))
    assert [limits.allow_attempt("10.0.0.1", T0 + timedelta(minutes=i)) for i in range(4)] == [True] * 3 + [
        False
    ]
    assert limits.allow_attempt("10.0.0.2", T0)  # another address has its own budget
    assert not limits.allow_attempt("10.0.0.1", T0 + timedelta(minutes=9, seconds=59))
    assert limits.allow_attempt("10.0.0.1", T0 + timedelta(minutes=10))  # the first attempt left the window


def test_unknown_addresses_lock_like_real_accounts() -> None:
    limits = LoginLimits(max_failures=3, lock_for=timedelta(minutes=15))
    assert [limits.unknown_failed("nobody@example.org", T0) for _ in range(3)] == [False, False, True]
    assert limits.unknown_locked("nobody@example.org", T0 + timedelta(minutes=14))
    assert not limits.unknown_locked("nobody@example.org", T0 + timedelta(minutes=15))
    assert not limits.unknown_locked("other@example.org", T0)

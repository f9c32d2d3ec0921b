"""A wearer's vital signs over time (heart rate, SpO2, steps, battery), for the dashboard's charts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from geosentinel.store import schema
from geosentinel.store.base import Scope
from geosentinel.store.schema import from_us, to_us

Row = sa.Row[tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class Vitals:
    """One reading's vital signs (null: the reading did not carry that measure)."""

    time: datetime
    heart_rate_bpm: float | None
    spo2_pct: float | None
    steps: int | None
    battery_pct: float | None


class VitalsStore:
    """Mixed into :class:`~geosentinel.store.sql.SqlStore` (which provides the reads)."""

    _read: Callable[[sa.Executable], list[Row]]

    def vitals(
        self, scope: Scope, wearer_id: str, since: datetime, until: datetime, limit: int
    ) -> list[Vitals]:
        """The wearer's readings in ``[since, until)`` that carry a vital sign or a battery level, oldest
        first (at most ``limit``: the newest ones when there are more). Empty outside the scope."""
        if not scope.allows(wearer_id):
            return []
        r = schema.readings
        measured = sa.or_(
            r.c.heart_rate_bpm.is_not(None),
            r.c.spo2_pct.is_not(None),
            r.c.steps.is_not(None),
            r.c.battery_pct.is_not(None),
        )
        query = (
            sa.select(r.c.time_us, r.c.heart_rate_bpm, r.c.spo2_pct, r.c.steps, r.c.battery_pct)
            .where(r.c.org_id == scope.org_id, r.c.wearer_id == wearer_id, measured)
            .where(r.c.time_us >= to_us(since), r.c.time_us < to_us(until))
            .order_by(r.c.time_us.desc(), r.c.id.desc())
            .limit(limit)
        )
        rows = self._read(query)
        return [
            Vitals(
                from_us(int(row.time_us)),
                None if row.heart_rate_bpm is None else float(row.heart_rate_bpm),
                None if row.spo2_pct is None else float(row.spo2_pct),
                None if row.steps is None else int(row.steps),
                None if row.battery_pct is None else float(row.battery_pct),
            )
            for row in reversed(rows)
        ]

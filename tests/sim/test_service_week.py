"""Simulated days with the dispatcher and simulated caregivers: alerts reach contacts under the charter,
people take, reach and resolve them, and the report counts it (the path of docs/service-levels.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from geosentinel.alerts.lifecycle import TAKING_ACTIONS
from geosentinel.sim.service_week import run_service_week
from geosentinel.store import Scope, open_store

pytestmark = pytest.mark.slow


def test_a_simulated_half_day_with_people_answering(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'week.db'}?synchronous=normal")
    try:
        week = asyncio.run(run_service_week(store, wearers=3, days=0.5, seed=4))
        report = week.report
        overall = report.overall
        assert overall.alerts >= 5 and week.notifications > 0
        # Everything that needed a person was taken by one (the model answers every alert within 20 min,
        # low-severity ones in the morning): nothing never-answered except what the night holds back.
        assert overall.answered + overall.closed_without_person + len(report.overdue) >= overall.alerts - 3
        assert overall.within_s[180] is not None and overall.within_s[180] > 0.6
        assert overall.median_s is not None and overall.median_s < 180
        assert sum(overall.outcomes.values()) > 0
        org = store.org_by_name("Simulated days")
        assert org is not None
        facts = store.alert_facts(Scope(org.id), week.days.start, week.days.end)
        taken = [f for f in facts if f.taken_at is not None]
        assert taken and all(f.taken_by and not f.taken_by.startswith(("system", "device:")) for f in taken)
        assert all(f.shown_at is not None and f.shown_at <= f.taken_at for f in taken if f.taken_at)
        assert {"acknowledge"} <= {a.value for a in TAKING_ACTIONS}
    finally:
        store.close()

"""``/api/v1/reports``: how fast people take alarms (service levels), per organisation and period."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from geosentinel.alerts import service_levels
from geosentinel.api.audit import audit_read
from geosentinel.api.deps import CallerDep, StoreDep
from geosentinel.api.errors import N_, ApiError
from geosentinel.api.times import check_times
from geosentinel.model import Role

router = APIRouter(prefix="/reports", tags=["reports"])
MAX_PERIOD = timedelta(days=366)


class GroupOut(BaseModel):
    group: str  # all, kind, hour (local hour of reception, the organisation's zone)
    key: str
    alerts: int
    answered: int  # taken by a person
    closed_without_person: int  # closed by the system or the device before anyone took them
    within_60s: float | None  # share answered within 60 s (null: nothing to count)
    within_180s: float | None
    median_s: float | None  # null: more than half never answered
    p95_s: float | None  # null: more than 5 % never answered
    never_answered: int
    outcomes: dict[str, int]  # resolved alerts by outcome
    outcome_shares: dict[str, float]  # the same as shares of the resolved alerts with an outcome


class ServiceLevelsOut(BaseModel):
    start: datetime
    end: datetime
    timezone: str
    generated_at: datetime
    overall: GroupOut
    by_kind: list[GroupOut]
    by_hour: list[GroupOut]
    overdue: list[str]  # open alerts nobody has taken after 180 s, now
    real_emergency_share: float | None  # of those people resolved: assistance at home or emergency services


def _group(g: service_levels.GroupFigures) -> GroupOut:
    return GroupOut(
        group=g.group, key=g.key, alerts=g.alerts, answered=g.answered,
        closed_without_person=g.closed_without_person, within_60s=g.within_s.get(60),
        within_180s=g.within_s.get(180), median_s=g.median_s, p95_s=g.p95_s, never_answered=g.never_answered,
        outcomes=g.outcomes, outcome_shares=g.outcome_shares,
    )  # fmt: skip


@router.get(
    "/service-levels",
    response_model=ServiceLevelsOut,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
)
async def service_level_report(
    store: StoreDep,
    caller: CallerDep,
    since: Annotated[datetime | None, Query(description="start (default: 7 days before until)")] = None,
    until: Annotated[datetime | None, Query(description="end, excluded (default: now)")] = None,
    format: Literal["json", "csv"] = "json",
) -> ServiceLevelsOut | Response:
    """Share of alarms taken by a person within 60 s and 180 s, median and 95th percentile time to take
    them, by kind and by local hour of the day, outcomes, and the alerts overdue now."""
    if caller.user.role is Role.FAMILY:
        raise ApiError(403, N_("family members do not see the organisation's service levels"))
    check_times(since=since, until=until)
    now = datetime.now(UTC)
    end = until or now
    start = since or end - timedelta(days=7)
    if not start < end or end - start > MAX_PERIOD:
        raise ApiError(422, N_("the period must run forwards and last at most 366 days"))
    org = await asyncio.to_thread(store.org, caller.user.org_id)
    assert org is not None  # the caller's own organisation
    facts = await asyncio.to_thread(store.alert_facts, caller.scope, start, end)
    await audit_read(store, caller, "service_levels", (f.wearer_id for f in facts), len(facts), since=start,
                     until=end, format=format)  # fmt: skip
    result = service_levels.report(facts, start, end, now, ZoneInfo(org.timezone))
    if format == "csv":
        name = f"service-levels-{start.date()}-{end.date()}.csv"
        return Response(
            service_levels.to_csv(result), media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )  # fmt: skip
    return ServiceLevelsOut(
        start=result.start, end=result.end, timezone=result.timezone, generated_at=result.generated_at,
        overall=_group(result.overall), by_kind=[_group(g) for g in result.by_kind],
        by_hour=[_group(g) for g in result.by_hour], overdue=result.overdue,
        real_emergency_share=result.real_emergency_share,
    )  # fmt: skip

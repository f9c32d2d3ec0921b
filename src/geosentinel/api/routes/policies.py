"""``/api/v1/escalation-policies``: who is told about an alert, when, and again until someone takes it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import orjson
from fastapi import APIRouter
from pydantic import BaseModel, Field

from geosentinel.alerts import templates
from geosentinel.alerts.policy import WEARER_CONTACT, Policy, PolicyError, parse_policy
from geosentinel.api.deps import CallerDep, StoreDep
from geosentinel.api.errors import N_, ApiError
from geosentinel.api.paging import DEFAULT_LIMIT, Limit, Offset
from geosentinel.api.routes.contacts import may_manage
from geosentinel.model import Role
from geosentinel.store.alert_care import PolicyRecord

router = APIRouter(tags=["alerts"])


class PolicyIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    is_default: bool = False
    policy: dict[str, Any]  # alerts.policy.Policy: steps, repeat_after_s, max_rounds, quiet_hours, severity


class PolicyOut(BaseModel):
    id: str
    name: str
    is_default: bool
    policy: dict[str, Any]

    @classmethod
    def of(cls, record: PolicyRecord) -> PolicyOut:
        return cls(id=record.id, name=record.name, is_default=record.is_default,
                   policy=msgspec.to_builtins(record.policy))  # fmt: skip


class WearerPolicyIn(BaseModel):
    policy_id: str | None  # None: back to the organisation's default


def _checked(policy: dict[str, Any], contacts: set[str]) -> Policy:
    try:
        parsed = parse_policy(orjson.dumps(policy))
    except (PolicyError, TypeError) as exc:  # TypeError: a number JSON cannot hold (beyond 64 bits)
        raise ApiError(422, N_("the policy cannot be used: {reason}"), reason=str(exc)) from None
    named = {c for step in parsed.steps for c in step.contacts if not c.startswith(WEARER_CONTACT)}
    unknown = sorted(named - contacts)
    if unknown:
        raise ApiError(
            422, N_("invalid escalation policy: unknown contacts {contacts}"), contacts=", ".join(unknown)
        )
    return parsed


@router.get("/escalation-policies", response_model=list[PolicyOut])
async def list_policies(
    store: StoreDep, caller: CallerDep, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> list[PolicyOut]:
    """The organisation's escalation policies, by name."""
    if caller.user.role is Role.FAMILY:
        raise ApiError(403, N_("family members do not see the organisation's escalation policies"))
    return [PolicyOut.of(p) for p in await asyncio.to_thread(store.policies, caller.scope, limit, offset)]


@router.post("/escalation-policies", response_model=PolicyOut, status_code=201)
async def create_policy(body: PolicyIn, store: StoreDep, caller: CallerDep) -> PolicyOut:
    """A new policy; ``is_default`` makes it the organisation's default (the previous one stops being)."""
    may_manage(caller)
    contacts = {c.id for c in await asyncio.to_thread(store.contacts, caller.scope)}
    policy = _checked(body.policy, contacts)
    record = await asyncio.to_thread(
        store.create_policy, caller.user.org_id, body.name, policy, body.is_default, datetime.now(UTC)
    )
    return PolicyOut.of(record)


class TemplateOut(BaseModel):
    name: str
    summary: str
    needs: list[str]  # contact groups to give when creating a policy from it
    recommended: bool  # the one for this organisation (the charter for French organisations)


class FromTemplateIn(BaseModel):
    template: templates.TemplateName
    name: Annotated[str, Field(min_length=1, max_length=200)]
    is_default: bool = False
    emergency: list[str] = Field(default_factory=list, max_length=20)  # fr_charter: control room, number
    staff: list[str] = Field(default_factory=list, max_length=20)  # care_home: staff on duty
    night_nurse: list[str] = Field(default_factory=list, max_length=20)  # care_home
    attempt_gap_s: Annotated[int, Field(ge=15, le=1800)] = templates.DEFAULT_ATTEMPT_GAP_S


@router.get("/escalation-policies/templates", response_model=list[TemplateOut])
async def list_templates(store: StoreDep, caller: CallerDep) -> list[TemplateOut]:
    """Ready-made policies: the French téléassistance charter, a care home, family only."""
    org = await asyncio.to_thread(store.org, caller.user.org_id)
    recommended = templates.recommended(org.locale.value if org is not None else "")
    return [
        TemplateOut(name=t.name, summary=t.summary, needs=list(t.needs), recommended=t.name == recommended)
        for t in templates.TEMPLATES.values()
    ]


@router.post("/escalation-policies/from-template", response_model=PolicyOut, status_code=201)
async def create_from_template(body: FromTemplateIn, store: StoreDep, caller: CallerDep) -> PolicyOut:
    """A new policy made from a template, with the organisation's contacts in its places."""
    may_manage(caller)
    try:
        policy = templates.build(
            body.template, body.emergency, body.staff, body.night_nurse, body.attempt_gap_s
        )
    except templates.TemplateError as exc:
        raise ApiError(422, N_("the policy cannot be used: {reason}"), reason=str(exc)) from None
    contacts = {c.id for c in await asyncio.to_thread(store.contacts, caller.scope)}
    checked = _checked(msgspec.to_builtins(policy), contacts)
    record = await asyncio.to_thread(
        store.create_policy, caller.user.org_id, body.name, checked, body.is_default, datetime.now(UTC)
    )
    return PolicyOut.of(record)


@router.put("/wearers/{wearer_id}/escalation-policy", status_code=204)
async def set_wearer_policy(wearer_id: str, body: WearerPolicyIn, store: StoreDep, caller: CallerDep) -> None:
    """Give a wearer their own policy (``null``: the organisation's default again)."""
    may_manage(caller)
    if not await asyncio.to_thread(store.set_wearer_policy, caller.scope, wearer_id, body.policy_id):
        message = N_("no wearer {wearer_id} or no policy {policy_id} in this organisation")
        raise ApiError(404, message, wearer_id=wearer_id, policy_id=body.policy_id)

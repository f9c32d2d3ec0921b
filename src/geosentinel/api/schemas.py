"""Response models of the API (pydantic at the edge; the domain stays dataclasses)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from geosentinel.protocols.base import CommandKind


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class AlertOut(_Out):
    id: str
    wearer_id: str
    kind: str
    status: str
    opened_at: datetime
    last_event_at: datetime
    event_count: int
    latitude: float | None
    longitude: float | None
    # Open and not taken 180 s after it opened: social-alarm practice has such calls looked into.
    ack_overdue: bool = False


class PositionOut(_Out):
    time: datetime
    received_at: datetime
    device_id: str
    latitude: float
    longitude: float
    accuracy_m: float | None
    speed_kmh: float | None
    battery_pct: float | None
    rejected: str | None


class WearerOut(_Out):
    id: str
    name: str


class DeviceOut(_Out):
    id: str
    wearer_id: str | None
    unique_id: str
    protocol: str
    model: str | None
    timezone: str | None
    expected_interval_s: float | None = None


class EventOut(_Out):
    wearer_id: str | None
    device_id: str
    kind: str
    time: datetime
    received_at: datetime
    latitude: float | None
    longitude: float | None
    # What the detector found, e.g. fence_id and distance_m of a geofence event, fall_score of a fall.
    details: dict[str, str | int | float | bool]


class TransitionOut(_Out):
    at: datetime
    action: str
    from_status: str | None
    to_status: str
    actor: str  # user:<id>, contact:<id> (acknowledgement link) or system
    outcome: str | None
    note: str | None


class NotificationOut(_Out):
    id: str
    contact_id: str
    round: int
    step: int
    status: str  # pending, retrying, delivered, failed
    tries: int
    created_at: datetime
    next_try_at: datetime | None
    handed_at: datetime | None
    delivered_at: datetime | None
    channel: int | None  # which of the contact's addresses took it (0: the first)
    last_error: str | None


class ServiceFiguresOut(BaseModel):
    """One alert's service figures, in seconds from the reception of its first event (null: not yet)."""

    received_at: datetime
    to_shown_s: float | None  # first delivered to a contact, or first seen by a person
    to_taken_s: float | None  # first acknowledged, resolved or arrival recorded by a person
    taken_by: str | None
    to_arrival_s: float | None
    to_resolved_s: float | None
    outcome: str | None
    contact_attempts: int
    failed_attempts: int
    overdue: bool


class TimelineOut(BaseModel):
    alert: AlertOut
    events: list[EventOut]
    transitions: list[TransitionOut]
    notifications: list[NotificationOut]
    service: ServiceFiguresOut | None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int


class CommandIn(BaseModel):
    """A command for a device. Parameters by kind: ``set_interval`` → ``interval_s``; ``set_sos_numbers`` →
    ``phone_numbers``; ``removal_alarm`` → ``enabled``; ``set_timezone`` → nothing (the offset is computed
    from the wearer's zone when sent) or an explicit ``utc_offset_min``."""

    model_config = ConfigDict(extra="forbid")

    kind: CommandKind
    interval_s: int | None = Field(default=None, ge=10, le=86_400)
    phone_numbers: list[Annotated[str, Field(pattern=r"^\+?[0-9]{3,20}$")]] = Field(
        default_factory=list, max_length=3
    )
    enabled: bool | None = None
    utc_offset_min: int | None = Field(default=None, ge=-720, le=840)


class CommandOut(BaseModel):
    device_id: str
    kind: CommandKind
    delivery: str
    payload: str


# Paging: past this offset a client should narrow its filters (and the store's integers must not overflow).
MAX_OFFSET = 10_000_000

"""Response models of the API (pydantic at the edge; the domain stays dataclasses)."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict


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


class EventOut(_Out):
    wearer_id: str | None
    device_id: str
    kind: str
    time: datetime
    received_at: datetime
    latitude: float | None
    longitude: float | None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int

"""Geofences: a wearer leaving a safe zone or entering a danger zone, confirmed before anyone is alerted.

Pure state machine per device and fence. The pipeline computes the fix's signed distance to every fence
that matters (:meth:`FenceIndex.relations`, for a whole batch at once) and hands them to
:func:`geofence_step` with the reading.

**What one fix says.** With ``d`` the signed distance to the boundary (> 0 outside), ``u`` the fix's
uncertainty (:func:`position_uncertainty_m`) and ``m`` the margin, a fix is

- *clearly outside* when ``d - u > m``: its whole accuracy circle is outside, with the margin to spare;
- *clearly inside* when ``d < 0`` and ``d + u < m``: the position is inside and its accuracy circle does
  not reach more than the margin past the boundary;
- *uncertain* otherwise: it neither adds to nor resets anything.

The two thresholds are never closer than the margin (``m + u`` vs ``min(0, m - u)``), which is the
hysteresis: a wearer standing on the boundary with fixes jittering across it is never "out" then "in"
then "out". The inside rule is deliberately not the mirror image ``d + u < -m``: a 50 m garden could
then never be "inside" with a 30 m fix, and a wearer who came back would stay "outside" for ever. A fix
too coarse for a small fence (a 100 m Wi-Fi fix in a 50 m circle) is just uncertain. The same rule
serves danger zones, where "inside" is the violation.

**Confirmation.** A violation (outside a safe zone, inside a danger zone) is confirmed by
``confirm_fixes`` consecutive violating fixes, or by at least 2 spanning ``dwell``; a run whose first
fix is older than ``max_gap`` starts again. At least one fix of the run must not come from the cell
network: cell positions (hundreds of metres) never confirm a violation on their own. A clearly
non-violating fix resets the run, and ends the episode: the next confirmed violation alerts again. So a
single wild fix never alerts, and a real exit alerts once.

**Events.** ``geofence_exit`` (safe zone) or ``geofence_enter`` (danger zone), at the confirming fix's
time and position, with ``fence_id``, ``fence_name`` and ``distance_m``: the confirming fix's signed
distance to the boundary (negative inside a danger zone).

**Schedules.** The event is raised at confirmation if the fence's schedule is active then (in the
wearer's local time, ``profile.timezone``). A violation confirmed while the fence is not watched stays
confirmed, and the first violating fix once the schedule is active raises the event ("not home by
22:00"). One event per episode: staying out for days raises nothing more.

**Order.** Only good fixes count, and a fix not newer than the last one counted (late, out of order, or
a duplicate) changes nothing. Everything is timed by the fix's own time.

**Bounded state.** A track is kept only for the fences in the current fix's relations, and not for a
danger zone the wearer is clearly out of with nothing pending (no track means exactly that). A fence
missing from the relations is either a danger zone more than the index's ``near_m`` away (clearly
outside) or a safe zone that was deleted or no longer applies; either way its track is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar, Final, Literal

import msgspec

from geosentinel.detect.base import WearerProfile, event
from geosentinel.detect.fences import FenceKind, Relation
from geosentinel.detect.schedule import schedule_active
from geosentinel.detect.uncertainty import position_uncertainty_m
from geosentinel.model import Event, EventKind, Reading

Side = Literal["inside", "outside"]
Status = Literal["unknown", "inside", "outside"]


@dataclass(frozen=True, slots=True)
class GeofenceParams:
    """How sure the detector must be before it alerts (see the module for how each is used)."""

    # Beyond the fix's own uncertainty, how far past the boundary a fix must be to count as outside. Chosen
    # on 200 simulated wearer-days (seed 1): 25 m missed short exits 50-60 m deep (recall 99.4 %), 15 m
    # caught them with the same single false alert; 10 m gained nothing more.
    margin_m: float = 15.0
    confirm_fixes: int = 3
    # ... or at least 2 violating fixes this far apart (devices reporting every few minutes).
    dwell: timedelta = timedelta(seconds=60)
    # A run of violating fixes that started longer ago than this is stale and starts again.
    max_gap: timedelta = timedelta(minutes=15)


DEFAULT_PARAMS = GeofenceParams()


class FenceTrack(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """Where a device stands with one fence.

    ``status`` is the last *settled* side: confirmed violating, or seen clearly not violating. ``pending``
    counts the consecutive violating fixes not yet confirmed, from ``pending_since``; ``pending_non_cell``
    tells whether any of them was better than a cell position. ``alerted``: this episode's event was
    raised.
    """

    kind: FenceKind
    status: Status = "unknown"
    pending: int = 0
    pending_since: datetime | None = None
    pending_non_cell: bool = False
    alerted: bool = False


class GeofenceState(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """A device's tracks by fence id, and the time of the last fix counted (to drop late ones)."""

    last_fix_time: datetime | None = None
    fences: dict[str, FenceTrack] = msgspec.field(default_factory=dict)


def classify(distance_m: float, uncertainty_m: float, margin_m: float) -> Side | None:
    """Which side of the boundary a fix is clearly on, or ``None`` when it cannot tell (see the module)."""
    if distance_m - uncertainty_m > margin_m:
        return "outside"
    if distance_m < 0 and distance_m + uncertainty_m < margin_m:
        return "inside"
    return None


VIOLATING_SIDE: Final[dict[str, Side]] = {"safe": "outside", "danger": "inside"}


def _pend(
    track: FenceTrack, side: Side, time: datetime, non_cell: bool, params: GeofenceParams
) -> tuple[FenceTrack, bool]:
    """A violating fix while the violation is not confirmed yet: extend (or restart) the run."""
    since = track.pending_since
    if track.pending == 0 or since is None or time - since > params.max_gap:
        pending, since = 1, time
    else:
        pending, non_cell = track.pending + 1, track.pending_non_cell or non_cell
    enough = pending >= params.confirm_fixes or (pending >= 2 and time - since >= params.dwell)
    if enough and non_cell:
        return FenceTrack(track.kind, side), True
    return FenceTrack(track.kind, track.status, pending, since, non_cell), False


def _advance(
    track: FenceTrack | None,
    kind: FenceKind,
    side: Side | None,
    time: datetime,
    non_cell: bool,
    params: GeofenceParams,
) -> tuple[FenceTrack | None, bool]:
    """The track after a fix clearly on ``side`` (None: uncertain), or None when there is nothing to
    remember; and whether the fix should raise the event (if the schedule allows)."""
    if track is None or track.kind != kind:  # new fence, or a fence turned from safe to danger
        track = FenceTrack(kind)
    elif side is None or (side == track.status and track.pending == 0):
        # Most fixes: uncertain, or on the settled side again. Only a confirmed violation that could
        # not be alerted yet (schedule) asks for the event.
        return track, side is not None and side == VIOLATING_SIDE[kind] and not track.alerted
    if side is None:
        return track, False
    if side != VIOLATING_SIDE[kind]:
        # Clearly not violating: the episode, if any, is over. Out of a danger zone is no different
        # from far away from it: nothing to remember.
        return (None if kind == "danger" else FenceTrack(kind, side)), False
    return _pend(track, side, time, non_cell, params)  # (a confirmed violation took the first branch)


def _event(reading: Reading, relation: Relation) -> Event:
    fence = relation.fence
    kind = EventKind.GEOFENCE_EXIT if fence.kind == "safe" else EventKind.GEOFENCE_ENTER
    message = reading.message
    return event(
        reading.device,
        kind,
        reading.time,
        reading.received_at,
        message.latitude,
        message.longitude,
        fence_id=fence.id,
        fence_name=fence.name,
        distance_m=round(relation.distance_m, 1),
    )


def geofence_step(
    state: GeofenceState | None,
    reading: Reading,
    relations: Sequence[Relation],
    now: datetime,
    profile: WearerProfile,
    params: GeofenceParams = DEFAULT_PARAMS,
) -> tuple[GeofenceState, list[Event]]:
    """The device's geofence state after ``reading`` and the events it raises (at most one per fence).

    ``relations`` are the reading's signed distances to the fences that matter to its wearer. ``now`` is
    part of the detector contract but unused: the fix's own time orders and times everything.
    """
    current = state if state is not None else GeofenceState()
    last = current.last_fix_time
    if not reading.position_ok or (last is not None and reading.time <= last):
        return current, []
    uncertainty_m, source = position_uncertainty_m(reading.message)
    time, non_cell, margin_m = reading.time, source != "cell", params.margin_m
    before = current.fences
    tracks: dict[str, FenceTrack] = {}
    events: list[Event] = []
    for relation in relations:
        fence = relation.fence
        distance = relation.distance_m
        # classify(), inlined: this loop runs for every fence near every fix (see bench/geofence.py).
        if distance - uncertainty_m > margin_m:
            side: Side | None = "outside"
        elif distance < 0 and distance + uncertainty_m < margin_m:
            side = "inside"
        else:
            side = None
        old = before.get(fence.id)
        if old is None:
            if fence.kind == "danger" and side != "inside":
                continue  # out of a danger zone it was not in, as with every far-away one: nothing to keep
        elif old.kind == fence.kind and old.pending == 0 and (side is None or side == old.status):
            # The common case, settled and unchanged: keep the track; only a confirmed violation whose
            # event the schedule held back may alert now.
            if side is None or old.alerted or side != VIOLATING_SIDE[fence.kind]:
                tracks[fence.id] = old
                continue
        track, alert = _advance(old, fence.kind, side, time, non_cell, params)
        if track is None:
            continue
        if alert and schedule_active(fence.schedule, time, profile.timezone):
            track = msgspec.structs.replace(track, alerted=True)
            events.append(_event(reading, relation))
        tracks[fence.id] = track
    return GeofenceState(time, tracks), events


@dataclass(frozen=True, slots=True)
class GeofenceDetector:
    """The geofence detector as the pipeline knows it: a name and a state type for saving states.

    Unlike other reading detectors it needs the reading's fence relations, computed per batch.
    """

    name: ClassVar[str] = "geofence"
    state_type: ClassVar[type[GeofenceState]] = GeofenceState
    params: GeofenceParams = DEFAULT_PARAMS

    def on_reading(
        self,
        state: GeofenceState | None,
        reading: Reading,
        now: datetime,
        profile: WearerProfile,
        *,
        relations: Sequence[Relation],
    ) -> tuple[GeofenceState, list[Event]]:
        return geofence_step(state, reading, relations, now, profile, self.params)


GEOFENCE = GeofenceDetector()

"""Geofences: a wearer leaving a safe zone or entering a danger zone, confirmed before anyone is alerted.

Pure state machine per device and fence. :func:`geofence_step` takes one reading and the fix's signed
distances to every fence that matters to it (:meth:`FenceIndex.relations`, computed for a whole batch
at once). :func:`geofence_batch` does the same for a whole batch of readings from the devices' states,
in numpy where it can, with exactly the same states and events; the pipeline calls it once per batch.

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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain, islice, repeat
from operator import attrgetter
from typing import ClassVar, Final, Literal, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt

from geosentinel.detect.base import WearerProfile, event
from geosentinel.detect.fences import Fence, FenceIndex, FenceKind, Relation, Scope
from geosentinel.detect.schedule import schedule_active
from geosentinel.detect.uncertainty import position_uncertainty_m, positions_uncertainty_m
from geosentinel.model import Event, EventKind, Reading

Side = Literal["inside", "outside"]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]
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


def _event(reading: Reading, fence: Fence, distance_m: float) -> Event:
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
        distance_m=round(distance_m, 1),
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
    part of the detector contract but unused: the fix's own time orders and times everything. The
    reference for :func:`geofence_batch`, which does the same for a whole batch of readings.
    """
    current = state if state is not None else GeofenceState()
    last = current.last_fix_time
    if not reading.position_ok or (last is not None and reading.time <= last):
        return current, []
    uncertainty_m, source = position_uncertainty_m(reading.message)
    margin_m = params.margin_m
    distances = [relation.distance_m for relation in relations]
    tracks, events = _tracks_after(
        current.fences,
        [relation.fence for relation in relations],
        distances,
        [classify(distance, uncertainty_m, margin_m) for distance in distances],
        reading,
        source != "cell",
        lambda _: profile,
        params,
    )
    return GeofenceState(reading.time, tracks), events


def _tracks_after(
    before: Mapping[str, FenceTrack],
    fences: Sequence[Fence],
    distances: Sequence[float],
    sides: Sequence[Side | None],
    reading: Reading,
    non_cell: bool,
    profile_of: Callable[[str | None], WearerProfile],
    params: GeofenceParams,
) -> tuple[dict[str, FenceTrack], list[Event]]:
    """A counted fix's tracks and events, from the tracks before it and the fix's side of each fence that
    matters to it (``fences[i]`` at ``distances[i]``, clearly on ``sides[i]``)."""
    time = reading.time
    tracks: dict[str, FenceTrack] = {}
    events: list[Event] = []
    for fence, distance, side in zip(fences, distances, sides, strict=True):
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
        # The profile (for its time zone) is only looked up when a schedule has to be read.
        if alert and (
            fence.schedule is None
            or schedule_active(fence.schedule, time, profile_of(reading.device.wearer_id).timezone)
        ):
            track = msgspec.structs.replace(track, alerted=True)
            events.append(_event(reading, fence, distance))
        tracks[fence.id] = track
    return tracks, events


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


# -- a whole batch at once ----------------------------------------------------------------------------------
#
# geofence_step walks every fence that matters to a fix in Python (~2 µs a fence), after the index built a
# Relation per pair. The batch path takes the index's pairs as arrays and runs the same state machine for
# every (fix, fence) pair at once in numpy: the side each fix is clearly on, then each track's next value,
# against the tracks each device had when the batch started. A fix that leaves its device's tracks
# exactly as they were (the common case: uncertain, or on the settled side again) costs nothing more.
# The numpy step is exact for the first counted fix of every device in the batch; a later fix of the
# same device depends on what the earlier one did, so it goes through _tracks_after (geofence_step's own
# code) unless its device's tracks are still those of the start and it leaves them. FenceTrack objects
# are only built for tracks that change, and schedules are only read when an event is due.

UNCERTAIN: Final = 0  # side codes; also status codes, where 0 is "unknown"
INSIDE: Final = 1
OUTSIDE: Final = 2
_SIDE_OF_CODE: Final[tuple[Side | None, ...]] = (None, "inside", "outside")
_STATUS_CODE: Final[dict[str, int]] = {"unknown": UNCERTAIN, "inside": INSIDE, "outside": OUTSIDE}
_STATUS_NAME: Final = np.array(["unknown", "inside", "outside"], dtype=object)
_KIND_NAME: Final = np.array(["danger", "safe"], dtype=object)  # by "is safe"
# A track's settled fields as bits of one int (the pending count is read only for pending runs).
_SAFE_BIT: Final = 1
_ALERTED_BIT: Final = 2
_PENDING: Final = 4
_STATUS_SHIFT: Final = 3
_CODES: Final[dict[tuple[str, str, bool], int]] = {
    (kind, status, alerted): (_SAFE_BIT if kind == "safe" else 0)
    | (_ALERTED_BIT if alerted else 0)
    | (code << _STATUS_SHIFT)
    for kind in ("safe", "danger")
    for status, code in (("unknown", UNCERTAIN), ("inside", INSIDE), ("outside", OUTSIDE))
    for alerted in (False, True)
}
# The same code by a track's (kind, status, alerted, pending), for the pending counts a track can have
# with the default parameters; other tracks are coded by _track_code.
_TRACK_FIELDS: Final = attrgetter("kind", "status", "alerted", "pending")
_TRACK_CODES: Final[dict[tuple[str, str, bool, int], int]] = {
    (kind, status, alerted, pending): code | (_PENDING if pending else 0)
    for (kind, status, alerted), code in _CODES.items()
    for pending in range(8)
}


def _track_code(track: FenceTrack) -> int:
    return _CODES[track.kind, track.status, track.alerted] | (_PENDING if track.pending else 0)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NO_TRACKS: Final[dict[str, FenceTrack]] = {}  # never modified
_BLANK: Final = FenceTrack("danger")  # the row of pairs without a track
_MICROSECOND: Final = timedelta(microseconds=1)
# What a pair's track becomes.
_DROP: Final = 0  # no track (as for every danger zone the wearer is clearly out of)
_KEEP: Final = 1  # the same FenceTrack object
_NEW: Final = 2  # a new FenceTrack


def _micros(time: datetime) -> int:
    """Microseconds since the epoch: datetimes compared and subtracted exactly, as int64 in numpy."""
    return (time - _EPOCH) // _MICROSECOND


_READING_FIELDS: Final = attrgetter("device", "message", "time", "rejected")
_MESSAGE_FIELDS: Final = attrgetter("latitude", "longitude", "accuracy_m", "extras")
_DEVICE_FIELDS: Final = attrgetter("id", "org_id", "wearer_id")


@dataclass(slots=True)
class _Fixes:
    """The batch's good fixes (``position_ok``), in reading order, and the devices they belong to."""

    reading: Sequence[int]  # the fix's position among the readings
    slot: Sequence[int]  # its device's position in ``devices``
    time: Sequence[datetime]
    non_cell: Sequence[bool]
    uncertainty_m: Sequence[float]
    queried: Sequence[int]  # the fixes with a wearer, the only ones that meet fences
    scopes: Sequence[Scope]
    latitude: Sequence[float]
    longitude: Sequence[float]
    devices: Sequence[str]

    @classmethod
    def of(cls, readings: Sequence[Reading]) -> _Fixes:
        # Each object's fields read in one C pass (attrgetter, then zip to columns): this runs for every
        # reading, and every pass over the batch's objects costs.
        if not readings:
            return cls((), (), (), (), (), (), (), (), (), ())
        devices, messages, times, rejected = zip(*map(_READING_FIELDS, readings), strict=True)
        latitude, longitude, accuracy, extras = zip(*map(_MESSAGE_FIELDS, messages), strict=True)
        # Reading.position_ok for every reading at once: not rejected, and a latitude and a longitude.
        positions: Sequence[int] = range(len(readings))
        if rejected.count(None) != len(rejected) or None in latitude or None in longitude:
            positions = [
                i
                for i, (no_reason, lat, lon) in enumerate(zip(rejected, latitude, longitude, strict=True))
                if no_reason is None and lat is not None and lon is not None
            ]
            if not positions:
                return cls((), (), (), (), (), (), (), (), (), ())
            good = [readings[i] for i in positions]
            devices, messages, times, _ = zip(*map(_READING_FIELDS, good), strict=True)
            latitude, longitude, accuracy, extras = zip(*map(_MESSAGE_FIELDS, messages), strict=True)
        device_ids, orgs, wearers = zip(*map(_DEVICE_FIELDS, devices), strict=True)
        unique = list(dict.fromkeys(device_ids))
        slot_of = dict(zip(unique, range(len(unique)), strict=True))
        uncertainty, non_cell = positions_uncertainty_m(messages, accuracy, extras)
        queried: Sequence[int] = range(len(devices))  # the fixes that meet fences: those of a wearer
        if None in wearers:
            queried = [j for j, wearer in enumerate(wearers) if wearer is not None]
            orgs, wearers = tuple(orgs[j] for j in queried), tuple(wearers[j] for j in queried)
            latitude, longitude = tuple(latitude[j] for j in queried), tuple(longitude[j] for j in queried)
        return cls(
            positions,
            list(map(slot_of.__getitem__, device_ids)),
            times,
            non_cell,
            uncertainty,
            queried,
            list(zip(orgs, wearers, strict=True)),
            latitude,
            longitude,
            unique,
        )


class _Pairs(NamedTuple):
    """Every (fix, fence) pair of the batch (fixes numbered as in :class:`_Fixes`) as the index measured
    it, and the side the fix is clearly on (:func:`classify`, vectorised)."""

    fix: IntArray
    fence: IntArray
    distance_m: FloatArray
    safe: BoolArray
    side: IntArray

    @classmethod
    def of(cls, fixes: _Fixes, index: FenceIndex, margin_m: float) -> _Pairs:
        found = index.measure(fixes.scopes, np.array(fixes.latitude), np.array(fixes.longitude))
        fix = np.asarray(fixes.queried, dtype=np.intp)[found.fix]
        distance = found.distance_m
        uncertainty = np.array(fixes.uncertainty_m)[fix]
        side: IntArray = np.where(
            distance - uncertainty > margin_m,
            OUTSIDE,
            np.where((distance < 0) & (distance + uncertainty < margin_m), INSIDE, UNCERTAIN),
        )
        return cls(fix, found.fence, distance, found.safe, side)


@dataclass(slots=True)
class _Tracks:
    """The devices' tracks when the batch started, flat (one row per track, then a blank row that pairs
    without a track point to), and each pair's row. ``None`` from :meth:`of` when pairs cannot be matched
    with tracks in bulk, i.e. when fence ids repeat in the index (the caller then does it all in Python)."""

    objects: list[FenceTrack]
    safe: BoolArray
    status: IntArray
    pending: IntArray  # 1 for a pending run (its count is read from the object when needed), else 0
    alerted: BoolArray
    tracked: IntArray  # per device: how many tracks it has
    row: IntArray  # per pair: its track's row (the blank row when it has none)
    matched: BoolArray  # per pair: its device has a track for its fence

    @classmethod
    def of(
        cls, starts: Sequence[GeofenceState | None], index: FenceIndex, pairs: _Pairs, slot: IntArray
    ) -> _Tracks | None:
        if len(index.positions) != len(index):  # fence ids repeat: a track would meet two fences
            return None
        # Every track gathered with C loops (chain, map) rather than a Python loop over tracks: the
        # devices' fence ids and tracks in order, then each track's settled fields as one small code,
        # looked up by (kind, status, alerted, pending) (computed in Python only for unusual counts).
        fence_maps = [_NO_TRACKS if state is None else state.fences for state in starts]
        tracked = list(map(len, fence_maps))
        ids = list(chain.from_iterable(fence_maps))
        objects = list(chain.from_iterable(map(dict.values, fence_maps)))
        codes = list(map(_TRACK_CODES.get, map(_TRACK_FIELDS, objects)))
        if None in codes:
            codes = [
                _track_code(track) if code is None else code
                for code, track in zip(codes, objects, strict=True)
            ]
        # Each track's fence by its position in the index (-1: a fence that left the index, whose track
        # meets no pair and is dropped, as in geofence_step). Pairs are joined with tracks on (device,
        # fence position): exact integer keys, unique per track since a device has one track per fence id
        # and fence ids do not repeat in the index.
        positions = np.fromiter(map(index.positions.get, ids, repeat(-1)), np.int64, len(ids))
        objects.append(_BLANK)
        codes.append(_CODES["danger", "unknown", False])
        width = len(index)
        key = np.repeat(np.arange(len(starts), dtype=np.int64) * width, tracked) + positions
        known = positions >= 0
        order = np.flatnonzero(known) if not known.all() else None
        if order is not None:
            key = key[order]
        sorter = np.argsort(key)
        key = key[sorter]
        blank = len(ids)
        pair_key = slot[pairs.fix] * width + pairs.fence
        row = np.full(len(pair_key), blank, dtype=np.intp)
        if len(key):
            at = np.minimum(np.searchsorted(key, pair_key), len(key) - 1)
            candidate = np.flatnonzero(key[at] == pair_key)
            found = sorter[at[candidate]]
            row[candidate] = found if order is None else order[found]
        code = np.array(codes, dtype=np.intp)
        return cls(
            objects,
            code & _SAFE_BIT != 0,
            (code >> _STATUS_SHIFT) & 3,
            (code & _PENDING != 0).astype(np.int64),
            code & _ALERTED_BIT != 0,
            np.array(tracked, dtype=np.intp),
            row,
            row != blank,
        )

    def leaves(self, pairs: _Pairs, index: FenceIndex, slot: IntArray) -> BoolArray:
        """Per fix: whether, applied to its device's tracks as they were when the batch started, it would
        leave them exactly as they are (same fences, same tracks, no event)."""
        # The sides a fix can be on and leave a track as it is: uncertain; or, nothing pending, its settled
        # side, unless that is a violation not alerted yet (the schedule may allow the event now).
        violating = np.where(self.safe, OUTSIDE, INSIDE)
        settled = (
            (self.pending == 0) & (self.status != UNCERTAIN) & ((self.status != violating) | self.alerted)
        )
        still = (1 << UNCERTAIN) | np.where(settled, 1 << self.status, 0)
        row, safe, side = self.row, pairs.safe, pairs.side
        may_stay = self.matched & (self.safe[row] == safe) & ((still[row] >> side) & 1 == 1)
        # A fence without a track leaves nothing behind only if it is a danger zone the fix is not clearly in.
        quiet = may_stay | (~self.matched & ~safe & (side != INSIDE))
        count = len(slot)
        noisy = np.bincount(pairs.fix[~quiet], minlength=count)
        kept = np.bincount(pairs.fix[self.matched], minlength=count)
        # Every track must be met again: a fence no longer among the fix's fences has its track dropped.
        leaves: BoolArray = (noisy == 0) & (kept == self.tracked[slot])
        return leaves


class _Next(NamedTuple):
    """What each selected pair's track becomes (:data:`_DROP`, :data:`_KEEP`, :data:`_NEW`), the new
    track's fields, and whether the pair's fix should raise the fence's event (if its schedule allows)."""

    outcome: IntArray
    safe: BoolArray
    status: IntArray
    pending: IntArray
    since: ObjectArray
    non_cell: BoolArray
    alert: BoolArray


def _next_tracks(
    chosen: IntArray, pairs: _Pairs, tracks: _Tracks, fixes: _Fixes, index: FenceIndex, params: GeofenceParams
) -> _Next:
    """:func:`_tracks_after` for the pairs ``chosen``, against the tracks the batch started with."""
    side, safe = pairs.side[chosen], pairs.safe[chosen]
    violating = np.where(safe, OUTSIDE, INSIDE)
    row, matched = tracks.row[chosen], tracks.matched[chosen]
    # A fence without a track, or whose track was of the other kind, starts from FenceTrack(kind).
    fresh = ~(matched & (tracks.safe[row] == safe))
    status = np.where(fresh, UNCERTAIN, tracks.status[row])
    pending = np.where(fresh, 0, tracks.pending[row])
    uncertain = side == UNCERTAIN
    settled = ~fresh & ~uncertain & (pending == 0) & (side == status)
    keep = ~fresh & (uncertain | settled)
    alert = settled & (side == violating) & ~tracks.alerted[row]
    calm = ~uncertain & ~settled & (side != violating)
    pending[calm] = 0  # FenceTrack(kind, side): the episode is over
    pend = ~uncertain & ~settled & (side == violating)
    # No track: a danger zone it has no track for and is not clearly in, or one it is clearly out of.
    drop = (~matched & ~safe & (side != INSIDE)) | (calm & ~safe)
    outcome = np.where(drop, _DROP, np.where(keep, _KEEP, _NEW))
    status = np.where(calm, side, status)
    since = np.full(len(chosen), None, dtype=object)
    non_cell = np.zeros(len(chosen), dtype=bool)
    if pend.any():
        # _pend: extend the run, or restart it when there is none or it is stale.
        which = np.flatnonzero(pend)
        fix = pairs.fix[chosen[which]]
        row_p, fresh_p = row[which], fresh[which]
        time_us = np.array([_micros(fixes.time[f]) for f in fix.tolist()], dtype=np.int64)
        # Only pending runs are timed: their starts are looked up and converted here, not every track's.
        runs = [tracks.objects[r] for r in row_p.tolist()]
        pending[which] = np.where(fresh_p, 0, np.array([track.pending for track in runs], dtype=np.int64))
        run_start = np.empty(len(runs), dtype=object)
        run_start[:] = [track.pending_since for track in runs]
        has_since = ~fresh_p & np.array([t is not None for t in run_start.tolist()], dtype=bool)
        since_us = np.array([0 if t is None else _micros(t) for t in run_start.tolist()], dtype=np.int64)
        old_non_cell = np.array([track.pending_non_cell for track in runs], dtype=bool)
        restart = (pending[which] == 0) | ~has_since | (time_us - since_us > params.max_gap // _MICROSECOND)
        count = np.where(restart, 1, pending[which] + 1)
        start_us = np.where(restart, time_us, since_us)
        fix_non_cell = np.array(fixes.non_cell, dtype=bool)[fix]
        run_non_cell = np.where(restart, fix_non_cell, (~fresh_p & old_non_cell) | fix_non_cell)
        enough = (count >= params.confirm_fixes) | (
            (count >= 2) & (time_us - start_us >= params.dwell // _MICROSECOND)
        )
        confirmed = enough & run_non_cell
        times = np.empty(len(fix), dtype=object)
        times[:] = [fixes.time[f] for f in fix.tolist()]
        # Confirmed: settled on the violating side (FenceTrack(kind, side)), the event is due.
        pending[which] = np.where(confirmed, 0, count)
        status[which] = np.where(confirmed, side[which], status[which])
        run_since = run_start
        run_since[restart] = times[restart]
        run_since[confirmed] = None
        since[which] = run_since
        non_cell[which] = ~confirmed & run_non_cell
        alert[which] = confirmed
    return _Next(outcome, safe, status, pending, since, non_cell, alert)


def _first_fixes(
    first: list[int],
    pairs: _Pairs,
    tracks: _Tracks,
    fixes: _Fixes,
    readings: Sequence[Reading],
    index: FenceIndex,
    profile_of: Callable[[str | None], WearerProfile],
    params: GeofenceParams,
) -> tuple[list[dict[str, FenceTrack]], list[list[Event]]]:
    """The tracks after each of ``first`` (fixes that are the first counted one of their device in the
    batch) and their events: :func:`_tracks_after` for all of them at once."""
    selected = np.zeros(len(fixes.reading), dtype=bool)
    selected[first] = True
    chosen = np.flatnonzero(selected[pairs.fix])
    after = _next_tracks(chosen, pairs, tracks, fixes, index, params)
    result = np.empty(len(chosen), dtype=object)
    keep = np.flatnonzero(after.outcome == _KEEP)
    objects = tracks.objects
    result[keep] = [objects[row] for row in tracks.row[chosen[keep]].tolist()]
    new = np.flatnonzero(after.outcome == _NEW)
    result[new] = list(
        map(
            FenceTrack,
            _KIND_NAME[after.safe[new].astype(np.intp)].tolist(),
            _STATUS_NAME[after.status[new]].tolist(),
            after.pending[new].tolist(),
            after.since[new].tolist(),
            after.non_cell[new].tolist(),
        )
    )
    events: list[list[Event]] = [[] for _ in first]
    alerts = np.flatnonzero(after.alert).tolist()
    place = {fix: n for n, fix in enumerate(first)} if alerts else {}
    for at in alerts:  # in pair order: a fix's events in its fences' order
        pair = int(chosen[at])
        fence, fix = index.fences[int(pairs.fence[pair])], int(pairs.fix[pair])
        reading = readings[fixes.reading[fix]]
        if fence.schedule is None or schedule_active(
            fence.schedule, reading.time, profile_of(reading.device.wearer_id).timezone
        ):
            result[at] = msgspec.structs.replace(result[at], alerted=True)
            events[place[fix]].append(_event(reading, fence, float(pairs.distance_m[pair])))
    kept = np.flatnonzero(after.outcome != _DROP)
    # Each fix's tracks are the next ``count`` of the kept pairs (pairs are ordered by fix).
    count = np.bincount(pairs.fix[chosen[kept]], minlength=len(fixes.reading))[first].tolist()
    entries = zip(index.ids[pairs.fence[chosen[kept]]].tolist(), result[kept].tolist(), strict=True)
    new_tracks = [dict(islice(entries, n)) for n in count]
    return new_tracks, events


def _later_fixes(
    later: list[int],
    leaves: list[bool],
    changed: list[bool],
    current: list[dict[str, FenceTrack]],
    events: list[list[Event]],
    pairs: _Pairs,
    fixes: _Fixes,
    readings: Sequence[Reading],
    index: FenceIndex,
    profile_of: Callable[[str | None], WearerProfile],
    params: GeofenceParams,
) -> None:
    """Apply ``later`` (fixes after their device's first counted one in the batch), in order, to the
    devices' ``current`` tracks, through _tracks_after: they depend on what the fixes before did."""
    bounds = np.searchsorted(pairs.fix, np.arange(len(fixes.reading) + 1)).tolist()
    for fix in later:
        device = fixes.slot[fix]
        if leaves[fix] and not changed[device]:
            continue  # its device's tracks are still those the batch started with, and it leaves them
        changed[device] = True
        start, end = bounds[fix], bounds[fix + 1]
        current[device], events[fixes.reading[fix]] = _tracks_after(
            current[device],
            [index.fences[k] for k in pairs.fence[start:end].tolist()],
            pairs.distance_m[start:end].tolist(),
            [_SIDE_OF_CODE[code] for code in pairs.side[start:end].tolist()],
            readings[fixes.reading[fix]],
            fixes.non_cell[fix],
            profile_of,
            params,
        )


def geofence_batch(
    states: Mapping[str, GeofenceState | None],
    readings: Sequence[Reading],
    index: FenceIndex,
    profile_of: Callable[[str | None], WearerProfile],
    params: GeofenceParams = DEFAULT_PARAMS,
) -> tuple[dict[str, GeofenceState], list[list[Event]]]:
    """The geofence detector over a batch of readings in order: exactly what asking ``index`` for every
    good fix's relations and calling :func:`geofence_step` reading by reading gives, in a fraction of the
    time.

    ``states`` are the devices' states before the batch, by device id (absent or ``None``: never seen).
    Readings that are not ``position_ok`` are not looked at. A good fix of a device without a wearer
    meets no fence (geofence_step with no relations: its tracks are dropped). Returns the state of every
    device with a good fix in the batch (the state it had, or a blank one, when none of its fixes
    counted) and the events of each reading, by position in ``readings``. ``profile_of`` gives a wearer's
    profile; it is only called when a scheduled fence has an event due. Pure: no I/O, no clock.
    """
    events: list[list[Event]] = [[] for _ in readings]
    if not len(index):
        return _without_fences(states, readings), events
    fixes = _Fixes.of(readings)
    if not fixes.reading:
        return {}, events
    pairs = _Pairs.of(fixes, index, params.margin_m)
    starts = [states.get(device_id) for device_id in fixes.devices]
    slot = np.array(fixes.slot, dtype=np.int64)
    tracks = _Tracks.of(starts, index, pairs, slot)
    vectorised = tracks is not None
    leaves = [False] * len(slot) if tracks is None else tracks.leaves(pairs, index, slot).tolist()
    # Which fixes count (newer than the device's last counted fix) and whether each is its device's first.
    last = [None if state is None else state.last_fix_time for state in starts]
    counted = [False] * len(starts)
    first: list[int] = []
    later: list[int] = []
    for fix, (device, time) in enumerate(zip(fixes.slot, fixes.time, strict=True)):
        before = last[device]
        if before is not None and time <= before:
            continue  # late, out of order or repeated: changes nothing
        last[device] = time
        if counted[device]:
            later.append(fix)
        elif not leaves[fix]:
            (first if vectorised else later).append(fix)
        counted[device] = True
    current = [{} if state is None else state.fences for state in starts]
    changed = [False] * len(starts)
    if first and tracks is not None:
        found, raised = _first_fixes(first, pairs, tracks, fixes, readings, index, profile_of, params)
        for fix, new_tracks, fix_events in zip(first, found, raised, strict=True):
            current[fixes.slot[fix]], changed[fixes.slot[fix]] = new_tracks, True
            events[fixes.reading[fix]] = fix_events
    if later:
        _later_fixes(
            later, leaves, changed, current, events, pairs, fixes, readings, index, profile_of, params
        )
    return _new_states(fixes.devices, starts, counted, last, current), events


def _new_states(
    devices: Sequence[str],
    starts: Sequence[GeofenceState | None],
    counted: Sequence[bool],
    last: Sequence[datetime | None],
    current: Sequence[dict[str, FenceTrack]],
) -> dict[str, GeofenceState]:
    """Each device's state after the batch: its last counted fix and tracks, or as it was if none counted."""
    if all(counted):  # the common case: built in C
        return dict(zip(devices, map(GeofenceState, last, current), strict=True))
    new_states: dict[str, GeofenceState] = {}
    for device, device_id in enumerate(devices):
        start_state = starts[device]
        if counted[device]:
            new_states[device_id] = GeofenceState(last[device], current[device])
        else:
            new_states[device_id] = start_state if start_state is not None else GeofenceState()
    return new_states


def _without_fences(
    states: Mapping[str, GeofenceState | None], readings: Sequence[Reading]
) -> dict[str, GeofenceState]:
    """geofence_batch when no fence exists at all (a new installation, an organisation without any): a
    counted fix only moves its device's last fix time, and tracks of fences since deleted are dropped.
    Spares such installations the vectorised machinery on every batch."""
    after: dict[str, GeofenceState] = {}
    for reading in readings:
        if not reading.position_ok:
            continue
        device_id = reading.device.id
        state = after.get(device_id) or states.get(device_id) or GeofenceState()
        last = state.last_fix_time
        after[device_id] = state if last is not None and reading.time <= last else GeofenceState(reading.time)
    return after

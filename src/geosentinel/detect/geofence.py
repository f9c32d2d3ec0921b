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

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain, islice, repeat
from operator import attrgetter
from typing import ClassVar, Final, Literal, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt

from geosentinel.detect.base import WearerProfile, event
from geosentinel.detect.fences import Fence, FenceIndex, FenceKind, Relation
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
#
# What costs here is touching Python objects, not arithmetic (a batch's readings, devices and states are
# cold in memory): each field is read in one C pass over the batch, a track is recognised by the
# identity of its object and of its fence id string (see _SETTLED and _join) rather than by its fields and
# a lookup among 100,000 fence ids, tracks that do not change are shared objects, and nothing is
# converted per fix (times are compared as datetimes, as geofence_step does, and only pending runs are
# timed).

UNCERTAIN: Final = 0  # side codes; also status codes, where 0 is "unknown"
INSIDE: Final = 1
OUTSIDE: Final = 2
_SIDE_OF_CODE: Final[tuple[Side | None, ...]] = (None, "inside", "outside")
_KIND_NAME: Final[tuple[FenceKind, ...]] = ("danger", "safe")  # by "is safe"
_STATUS_NAME: Final[tuple[Status, ...]] = ("unknown", "inside", "outside")
# A track's fields as bits of one small int: kind, alerted, whether a run is pending (its count, start and
# sources are read from the object, only for pending runs that a fix extends), status.
_SAFE_BIT: Final = 1
_ALERTED_BIT: Final = 2
_PENDING: Final = 4
_STATUS_SHIFT: Final = 3
_CODE_COUNT: Final = 4 << _STATUS_SHIFT


def _code(kind: str, status: str, alerted: bool, pending: bool) -> int:
    return (
        (_SAFE_BIT if kind == "safe" else 0)
        | (_ALERTED_BIT if alerted else 0)
        | (_PENDING if pending else 0)
        | (_STATUS_CODE[status] << _STATUS_SHIFT)
    )


_STATUS_CODE: Final[dict[str, int]] = {"unknown": UNCERTAIN, "inside": INSIDE, "outside": OUTSIDE}
# A track with nothing pending is one of twelve values. The batch path builds those only once and shares
# them (they are immutable), by code: a track's fields are then known from its id() (one sorted search
# for all tracks in numpy) instead of read attribute by attribute, and settled tracks take no memory per
# device. Other tracks (pending runs, tracks decoded from JSON or built by geofence_step) are read field
# by field; the batch path replaces the settled ones it keeps by the shared ones, so after a restart a
# device pays that until its tracks next change.
_SETTLED: Final = np.full(_CODE_COUNT, None, dtype=object)
for _kind in _KIND_NAME:
    for _status in _STATUS_NAME:
        for _alerted in (False, True):
            _SETTLED[_code(_kind, _status, _alerted, False)] = FenceTrack(_kind, _status, alerted=_alerted)
# The shared tracks' ids (object addresses, sorted) and codes: a track is one of them if its id() is.
_SETTLED_ID: Final = np.array([id(track) for track in _SETTLED.tolist()], dtype=np.int64)
_SETTLED_ORDER: Final = np.argsort(_SETTLED_ID)
_SETTLED_ID_SORTED: Final = _SETTLED_ID[_SETTLED_ORDER]
_NONE_ID: Final = id(None)  # the unused codes' entries
_TRACK_FIELDS: Final = attrgetter("kind", "status", "alerted", "pending")
# Codes of other tracks by their (kind, status, alerted, pending), for the counts a run can reach with the
# default parameters; a longer run is coded by _track_code.
_TRACK_CODES: Final[dict[tuple[str, str, bool, int], int]] = {
    (kind, status, alerted, pending): _code(kind, status, alerted, pending > 0)
    for kind in ("safe", "danger")
    for status in ("unknown", "inside", "outside")
    for alerted in (False, True)
    for pending in range(8)
}


def _track_code(track: FenceTrack) -> int:
    return _code(track.kind, track.status, track.alerted, track.pending > 0)


_NO_TRACKS: Final[dict[str, FenceTrack]] = {}  # never modified
_BLANK: Final = FenceTrack("danger")  # the row of pairs without a track
_BLANK_CODE: Final = _code("danger", "unknown", False, False)
# What a pair's track becomes.
_DROP: Final = 0  # no track (as for every danger zone the wearer is clearly out of)
_KEEP: Final = 1  # the same track
_NEW: Final = 2  # a new track


# One attribute each: a C pass per field (map) costs less than one pass building a tuple per object
# and another transposing them.
_DEVICE: Final = attrgetter("device")
_MESSAGE: Final = attrgetter("message")
_TIME: Final = attrgetter("time")
_REJECTED: Final = attrgetter("rejected")
_LATITUDE: Final = attrgetter("latitude")
_LONGITUDE: Final = attrgetter("longitude")
_ACCURACY: Final = attrgetter("accuracy_m")
_EXTRAS: Final = attrgetter("extras")
_ID: Final = attrgetter("id")
_ORG: Final = attrgetter("org_id")
_WEARER: Final = attrgetter("wearer_id")
_FENCES: Final = attrgetter("fences")


@dataclass(slots=True)
class _Fixes:
    """The batch's good fixes (``position_ok``), in reading order, and the devices they belong to."""

    reading: Sequence[int]  # the fix's position among the readings
    slot: Sequence[int]  # its device's position in ``devices``
    time: Sequence[datetime]
    non_cell: Sequence[bool]
    uncertainty_m: Sequence[float]
    orgs: Sequence[str]  # per fix: its device's organisation
    wearers: Sequence[str | None]  # and wearer
    latitude: Sequence[float]
    longitude: Sequence[float]
    devices: Sequence[str]
    all_worn: bool  # every fix's device has a wearer (only those meet fences)

    @classmethod
    def of(cls, readings: Sequence[Reading]) -> _Fixes:
        # This runs for every reading: each field is read in one C pass over the batch's objects.
        messages = list(map(_MESSAGE, readings))
        latitude = list(map(_LATITUDE, messages))
        longitude = list(map(_LONGITUDE, messages))
        rejected = list(map(_REJECTED, readings))
        good = readings
        positions: Sequence[int] = range(len(readings))
        # Reading.position_ok for every reading at once: not rejected, and a latitude and a longitude.
        if rejected.count(None) != len(rejected) or None in latitude or None in longitude:
            positions = [
                i
                for i, (no_reason, lat, lon) in enumerate(zip(rejected, latitude, longitude, strict=True))
                if no_reason is None and lat is not None and lon is not None
            ]
            good = [readings[i] for i in positions]
            messages = [messages[i] for i in positions]
            latitude = [latitude[i] for i in positions]
            longitude = [longitude[i] for i in positions]
            if not good:
                return cls((), (), (), (), (), (), (), (), (), (), True)
        devices = list(map(_DEVICE, good))
        device_ids = list(map(_ID, devices))
        wearers = list(map(_WEARER, devices))
        unique = list(dict.fromkeys(device_ids))
        # Devices in order of first appearance: when none repeats, device i is fix i's.
        slot: Sequence[int] = range(len(unique))
        if len(unique) != len(device_ids):
            slot = list(map(dict(zip(unique, slot, strict=True)).__getitem__, device_ids))
        uncertainty, non_cell = positions_uncertainty_m(
            messages, list(map(_ACCURACY, messages)), list(map(_EXTRAS, messages))
        )
        return cls(
            positions,
            slot,
            list(map(_TIME, good)),
            non_cell,
            uncertainty,
            list(map(_ORG, devices)),
            wearers,
            latitude,
            longitude,
            unique,
            None not in wearers,
        )


class _Pairs(NamedTuple):
    """Every (fix, fence) pair of the batch (fixes numbered as in :class:`_Fixes`) as the index measured
    it, and the side the fix is clearly on (:func:`classify`, vectorised)."""

    fix: IntArray
    fence: IntArray
    distance_m: FloatArray
    safe: BoolArray
    id_object: npt.NDArray[np.int64]  # id() of the fence's id string
    side: IntArray

    @classmethod
    def of(cls, fixes: _Fixes, queried: Sequence[int] | None, index: FenceIndex, margin_m: float) -> _Pairs:
        """The pairs of the fixes ``queried`` (None: every fix)."""
        count = len(fixes.time)
        if queried is None:
            found = index.measure(
                fixes.orgs,
                fixes.wearers,
                np.fromiter(fixes.latitude, np.float64, count),
                np.fromiter(fixes.longitude, np.float64, count),
            )
            fix = found.fix
        else:
            found = index.measure(
                [fixes.orgs[i] for i in queried],
                [fixes.wearers[i] for i in queried],
                np.array([fixes.latitude[i] for i in queried], dtype=np.float64),
                np.array([fixes.longitude[i] for i in queried], dtype=np.float64),
            )
            fix = np.asarray(queried, dtype=np.intp)[found.fix]
        distance = found.distance_m
        uncertainty = np.take(np.fromiter(fixes.uncertainty_m, np.float64, count), fix)
        side: IntArray = np.where(
            distance - uncertainty > margin_m,
            OUTSIDE,
            np.where((distance < 0) & (distance + uncertainty < margin_m), INSIDE, UNCERTAIN),
        )
        return cls(fix, found.fence, distance, found.safe, found.id_object, side)


@dataclass(slots=True)
class _Tracks:
    """The devices' tracks when the batch started, flat (one row per track, then a blank row that pairs
    without a track point to), and each pair's row. ``None`` from :meth:`of` when pairs cannot be matched
    with tracks in bulk, i.e. when fence ids repeat in the index (the caller then does it all in Python)."""

    objects: ObjectArray
    code: IntArray  # per row: the track's fields (see _code)
    # per row: the track equals the shared track of its code (see _SETTLED), which may then stand for it
    shareable: BoolArray
    tracked: IntArray  # per device: how many tracks it has
    row: IntArray  # per pair: its track's row (the blank row when it has none)
    matched: BoolArray  # per pair: its device has a track for its fence

    @classmethod
    def of(
        cls, fence_maps: Sequence[dict[str, FenceTrack]], index: FenceIndex, pairs: _Pairs, slot: IntArray
    ) -> _Tracks | None:
        """From each device's tracks (``fence_maps``, by device slot)."""
        if len(index.positions) != len(index):  # fence ids repeat: a track would meet two fences
            return None
        # Every track gathered with C loops (chain, map) rather than a Python loop over tracks.
        tracked = np.fromiter(map(len, fence_maps), np.intp, len(fence_maps))
        ids = list(chain.from_iterable(fence_maps))
        count = len(ids)
        listed: list[FenceTrack] = list(chain.from_iterable(map(dict.values, fence_maps)))
        listed.append(_BLANK)
        objects = np.fromiter(listed, object, count + 1)
        track_id = np.fromiter(map(id, listed), np.int64, count + 1)
        at = np.minimum(np.searchsorted(_SETTLED_ID_SORTED, track_id), len(_SETTLED_ID_SORTED) - 1)
        shared = (_SETTLED_ID_SORTED[at] == track_id) & (track_id != _NONE_ID)
        code = np.where(shared, _SETTLED_ORDER[at], -1)
        odd = np.flatnonzero(~shared)
        if len(odd):  # tracks not shared (see _SETTLED): their fields one by one
            others = objects[odd].tolist()
            found = list(map(_TRACK_CODES.get, map(_TRACK_FIELDS, others)))
            code[odd] = [_track_code(t) if c is None else c for c, t in zip(found, others, strict=True)]
            # Settled, and nothing else set (a state saved by other code could say otherwise).
            shared[odd] = [
                not track.pending and track.pending_since is None and not track.pending_non_cell
                for track in others
            ]
        code[count] = _BLANK_CODE
        row = _join(ids, tracked, index, pairs, slot)
        return cls(objects, code, shared, tracked, row, row != count)

    def leaves(self, pairs: _Pairs, slot: IntArray) -> BoolArray:
        """Per fix: whether, applied to its device's tracks as they were when the batch started, it would
        leave them exactly as they are (same fences in the same order, same tracks, no event)."""
        # The sides a fix can be on and leave a track as it is: uncertain; or, nothing pending, its settled
        # side, unless that is a violation not alerted yet (the schedule may allow the event now). As a
        # bit mask of sides per track code.
        row, safe, side = self.row, pairs.safe, pairs.side
        code = np.take(self.code, row)
        may_stay = (
            self.matched & ((code & _SAFE_BIT != 0) == safe) & ((np.take(_STILL, code) >> side) & 1 == 1)
        )
        # A fence without a track leaves nothing behind only if it is a danger zone the fix is not clearly in.
        quiet = may_stay | (~self.matched & ~safe & (side != INSIDE))
        count = len(slot)
        noisy = np.bincount(pairs.fix[~quiet], minlength=count)
        met = np.flatnonzero(self.matched)
        fix_met = pairs.fix[met]
        kept = np.bincount(fix_met, minlength=count)
        # The tracks in the order the fix meets their fences, as geofence_step would write them again
        # (the order of the saved JSON): only an index rebuilt since can change it.
        row_met = row[met]
        moved = fix_met[1:][(fix_met[1:] == fix_met[:-1]) & (row_met[1:] < row_met[:-1])]
        noisy[moved] += 1
        # Every track must be met again: a fence no longer among the fix's fences has its track dropped.
        leaves: BoolArray = (noisy == 0) & (kept == np.take(self.tracked, slot))
        return leaves


def _join(ids: list[str], tracked: IntArray, index: FenceIndex, pairs: _Pairs, slot: IntArray) -> IntArray:
    """Each pair's track: its row among ``ids`` (the devices' tracks' fence ids, ``tracked[d]`` of them
    for device d, in device order), or ``len(ids)`` when its device has no track for its fence.

    Every pair is compared with every track of its device (a device has a few), rather than each track's
    fence id looked up among the index's (a dictionary of 100,000 entries all over memory: one of the
    largest costs of the batch path before)."""
    count = len(ids)
    row = np.full(len(pairs.fix), count, dtype=np.intp)
    if not count:
        return row
    pair_device = np.take(slot, pairs.fix)
    per_pair = np.take(tracked, pair_device)
    total = int(per_pair.sum())
    pair = np.repeat(np.arange(len(per_pair), dtype=np.intp), per_pair)
    first_row = np.cumsum(tracked) - tracked
    candidate = np.repeat(np.take(first_row, pair_device) - (np.cumsum(per_pair) - per_pair), per_pair)
    candidate += np.arange(total, dtype=np.intp)
    # Tracks are keyed by the index's own id strings (the batch path builds them so): the very object,
    # compared by address without reading the string.
    same = np.take(np.fromiter(map(id, ids), np.int64, count), candidate) == np.take(pairs.id_object, pair)
    row[pair[same]] = candidate[same]
    found = np.zeros(count, dtype=bool)
    found[candidate[same]] = True
    if not found.all():
        # Other tracks (ids decoded from a saved state, an index rebuilt since, or fences gone): by
        # hash, then by value.
        left = np.flatnonzero(~found[candidate] & (row[pair] == count))
        pair, candidate = pair[left], candidate[left]
        id_hash = np.zeros(count, dtype=np.int64)
        unfound = np.flatnonzero(~found)
        id_hash[unfound] = np.fromiter(
            map(hash, map(ids.__getitem__, unfound.tolist())), np.int64, len(unfound)
        )
        hit = np.flatnonzero(np.take(id_hash, candidate) == index.id_hashes[np.take(pairs.fence, pair)])
        pair, candidate = pair[hit], candidate[hit]
        equal = [
            ids[track] == fence_id
            for track, fence_id in zip(
                candidate.tolist(), index.ids[np.take(pairs.fence, pair)].tolist(), strict=True
            )
        ]
        equal_array = np.fromiter(equal, bool, len(equal))
        row[pair[equal_array]] = candidate[equal_array]
    return row


def _still_sides(code: int) -> int:
    """The sides (a bit per side code) a fix may be on and leave a track of this code as it is."""
    status, safe = (code >> _STATUS_SHIFT) & 3, code & _SAFE_BIT
    violating = OUTSIDE if safe else INSIDE
    settled = not code & _PENDING and status != UNCERTAIN and (status != violating or code & _ALERTED_BIT)
    return (1 << UNCERTAIN) | ((1 << status) if settled else 0)


_STILL: Final = np.array([_still_sides(code) for code in range(_CODE_COUNT)], dtype=np.intp)


class _Next(NamedTuple):
    """What each selected pair's track becomes (:data:`_DROP`, :data:`_KEEP`, :data:`_NEW`) and the new
    track, and whether the pair's fix should raise the fence's event (if its schedule allows)."""

    outcome: IntArray
    track: ObjectArray  # the track kept or new (None for dropped ones)
    code: IntArray  # its code
    alert: BoolArray


def _next_tracks(
    chosen: IntArray, pairs: _Pairs, tracks: _Tracks, fixes: _Fixes, params: GeofenceParams
) -> _Next:
    """:func:`_tracks_after` for the pairs ``chosen``, against the tracks the batch started with."""
    side, safe = pairs.side[chosen], pairs.safe[chosen]
    violating = np.where(safe, OUTSIDE, INSIDE)
    row, matched = tracks.row[chosen], tracks.matched[chosen]
    old = np.take(tracks.code, row)
    # A fence without a track, or whose track was of the other kind, starts from FenceTrack(kind).
    fresh = ~(matched & ((old & _SAFE_BIT != 0) == safe))
    status = np.where(fresh, UNCERTAIN, (old >> _STATUS_SHIFT) & 3)
    pending = ~fresh & (old & _PENDING != 0)
    uncertain = side == UNCERTAIN
    settled = ~fresh & ~uncertain & ~pending & (side == status)
    keep = ~fresh & (uncertain | settled)
    alert = settled & (side == violating) & (old & _ALERTED_BIT == 0)
    calm = ~uncertain & ~settled & (side != violating)
    pend = ~uncertain & ~settled & (side == violating)
    # No track: a danger zone it has no track for and is not clearly in, or one it is clearly out of.
    drop = (~matched & ~safe & (side != INSIDE)) | (calm & ~safe)
    outcome = np.where(drop, _DROP, np.where(keep, _KEEP, _NEW))
    # New tracks with nothing pending: FenceTrack(kind) (fresh and uncertain) or FenceTrack(kind, side).
    code = safe.astype(np.intp) | (np.where(calm, side, status) << _STATUS_SHIFT)
    # Kept tracks: the same, except that a settled one becomes the shared track of the same value.
    code = np.where(keep, old, code)
    track = np.take(_SETTLED, code)
    kept_as_is = np.flatnonzero(keep & ~np.take(tracks.shareable, row))
    track[kept_as_is] = np.take(tracks.objects, row[kept_as_is])
    if pend.any():
        _extend_runs(
            np.flatnonzero(pend), chosen, pairs, tracks, fixes, params, status, fresh, track, code, alert
        )
    track[outcome == _DROP] = None
    return _Next(outcome, track, code, alert)


def _extend_runs(
    which: IntArray,
    chosen: IntArray,
    pairs: _Pairs,
    tracks: _Tracks,
    fixes: _Fixes,
    params: GeofenceParams,
    status: IntArray,
    fresh: BoolArray,
    track: ObjectArray,
    code: IntArray,
    alert: BoolArray,
) -> None:
    """_pend for the pairs ``which`` (violating fixes, the violation not confirmed yet): extend the run,
    or restart it when there is none or it is stale; confirm it when long enough. Fills in ``track``,
    ``code`` and ``alert`` for them. Only these pairs' tracks and times are read, as Python objects:
    datetimes are compared as geofence_step compares them."""
    count = len(which)
    fix = pairs.fix[chosen[which]].tolist()
    times = list(map(fixes.time.__getitem__, fix))
    fix_non_cell = list(map(fixes.non_cell.__getitem__, fix))
    rows = tracks.row[chosen[which]]
    running = ~fresh[which] & (np.take(tracks.code, rows) & _PENDING != 0)
    runs = np.take(tracks.objects, rows).tolist()
    max_gap, dwell, confirm = params.max_gap, params.dwell, params.confirm_fixes
    safe = pairs.safe[chosen[which]].tolist()
    side = pairs.side[chosen[which]].tolist()
    before = np.take(status, which).tolist()
    new: list[FenceTrack | None] = [None] * count
    confirmed = [False] * count
    for n, (time, fix_cell_ok, run, is_running) in enumerate(
        zip(times, fix_non_cell, runs, running.tolist(), strict=True)
    ):
        # As _pend, on the run's fields (a fresh track has none: it starts one).
        since = run.pending_since if is_running else None
        if since is None or time - since > max_gap:
            pending, since, non_cell = 1, time, fix_cell_ok
        else:
            pending, non_cell = run.pending + 1, run.pending_non_cell or fix_cell_ok
        if non_cell and (pending >= confirm or (pending >= 2 and time - since >= dwell)):
            confirmed[n] = True
        else:
            new[n] = FenceTrack(_KIND_NAME[safe[n]], _STATUS_NAME[before[n]], pending, since, non_cell)
    done = np.array(confirmed, dtype=bool)
    # Confirmed: settled on the violating side (FenceTrack(kind, side)), the event is due.
    settled_code = np.array(safe, dtype=np.intp) | (np.array(side, dtype=np.intp) << _STATUS_SHIFT)
    code[which] = np.where(done, settled_code, _PENDING)  # pending codes are not read again
    built = np.fromiter(new, object, count)
    track[which] = np.where(done, np.take(_SETTLED, settled_code), built)
    alert[which] = done


def _first_fixes(
    first: IntArray,
    pairs: _Pairs,
    tracks: _Tracks,
    fixes: _Fixes,
    readings: Sequence[Reading],
    index: FenceIndex,
    profile_of: Callable[[str | None], WearerProfile],
    params: GeofenceParams,
) -> tuple[list[dict[str, FenceTrack]], dict[int, list[Event]]]:
    """The tracks after each of ``first`` (fixes that are the first counted one of their device in the
    batch, in order) and the events of those that raise any, by fix: :func:`_tracks_after` for all of
    them at once."""
    selected = np.zeros(len(fixes.time), dtype=bool)
    selected[first] = True
    chosen = np.flatnonzero(selected[pairs.fix])
    after = _next_tracks(chosen, pairs, tracks, fixes, params)
    result = after.track
    events: dict[int, list[Event]] = {}
    for at in np.flatnonzero(after.alert).tolist():  # in pair order: a fix's events in its fences' order
        pair = int(chosen[at])
        fence, fix = index.fences[int(pairs.fence[pair])], int(pairs.fix[pair])
        reading = readings[fixes.reading[fix]]
        if fence.schedule is None or schedule_active(
            fence.schedule, reading.time, profile_of(reading.device.wearer_id).timezone
        ):
            track = result[at]
            shared = _SETTLED[after.code[at]]
            result[at] = (
                _SETTLED[after.code[at] | _ALERTED_BIT]
                if track is shared
                else msgspec.structs.replace(track, alerted=True)
            )
            events.setdefault(fix, []).append(_event(reading, fence, float(pairs.distance_m[pair])))
    kept = np.flatnonzero(after.outcome != _DROP)
    # Each fix's tracks are the next ``count`` of the kept pairs (pairs are ordered by fix).
    count = np.bincount(pairs.fix[chosen[kept]], minlength=len(fixes.time))[first].tolist()
    entries = zip(index.ids[pairs.fence[chosen[kept]]].tolist(), result[kept].tolist(), strict=True)
    new_tracks = [dict(islice(entries, n)) for n in count]
    return new_tracks, events


def _later_fixes(
    later: list[int],
    leaves: BoolArray | None,
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
    """Apply ``later`` (fixes after their device's first counted one in the batch, or every counted fix
    when the batch is done in Python), in order, to the devices' ``current`` tracks, through
    _tracks_after: they depend on what the fixes before did."""
    bounds = np.searchsorted(pairs.fix, np.arange(len(fixes.time) + 1)).tolist()
    skip = [False] * len(fixes.time) if leaves is None else leaves.tolist()
    for fix in later:
        device = fixes.slot[fix]
        if skip[fix] and not changed[device]:
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


def _counted(
    fixes: _Fixes, starts: Sequence[GeofenceState | None]
) -> tuple[list[bool], list[bool], list[int], list[bool], Sequence[datetime | None]]:
    """Which fixes count (newer than their device's last counted fix), which of them is its device's
    first counted one in the batch, the others in order, which devices have one, and each device's last
    counted fix time after the batch (for those that have one)."""
    times = fixes.time
    if len(starts) == len(times):  # no device repeats (the usual batch): device i is fix i's
        counted = [
            state is None or state.last_fix_time is None or time > state.last_fix_time
            for time, state in zip(times, starts, strict=True)
        ]
        return counted, counted, [], counted, times
    last = [None if state is None else state.last_fix_time for state in starts]
    counted = [False] * len(times)
    first = [False] * len(times)
    later: list[int] = []
    seen = [False] * len(last)
    for fix, (device, time) in enumerate(zip(fixes.slot, times, strict=True)):
        before = last[device]
        if before is not None and time <= before:
            continue  # late, out of order or repeated: changes nothing
        last[device] = time
        counted[fix] = True
        if seen[device]:
            later.append(fix)
        else:
            first[fix] = seen[device] = True
    return counted, first, later, seen, last


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
    if not fixes.time:
        return {}, events
    starts = list(map(states.get, fixes.devices))
    counted, first_counted, later, device_counted, last = _counted(fixes, starts)
    # Only counted fixes of wearers meet fences: a late fix changes nothing, whatever its position.
    queried: list[int] | None = None
    if not fixes.all_worn or not all(counted):
        wearers = fixes.wearers
        queried = [fix for fix, new in enumerate(counted) if new and wearers[fix] is not None]
    pairs = _Pairs.of(fixes, queried, index, params.margin_m)
    slot = np.asarray(fixes.slot, dtype=np.intp)
    # Each device's tracks as the batch goes: those it started with (shared, never modified), replaced
    # by a new dictionary when they change. (States are Structs, always true: all() finds a None in C.)
    seen_before = all(starts)
    current: list[dict[str, FenceTrack]] = (
        list(map(_FENCES, starts))
        if seen_before
        else [_NO_TRACKS if state is None else state.fences for state in starts]
    )
    tracks = _Tracks.of(current, index, pairs, slot)
    changed = [False] * len(starts)
    if tracks is None:  # everything in order through _tracks_after
        later = [fix for fix, new in enumerate(counted) if new]
        leaves = None
    else:
        leaves = tracks.leaves(pairs, slot)
        first = np.flatnonzero(np.fromiter(first_counted, bool, len(first_counted)) & ~leaves)
        if len(first):
            found, raised = _first_fixes(first, pairs, tracks, fixes, readings, index, profile_of, params)
            moved = np.take(slot, first).tolist()
            deque(map(current.__setitem__, moved, found), maxlen=0)  # current[device] = tracks, in C
            if later:
                deque(map(changed.__setitem__, moved, repeat(True)), maxlen=0)
            for fix, fix_events in raised.items():
                events[fixes.reading[fix]] = fix_events
    if later:
        _later_fixes(
            later, leaves, changed, current, events, pairs, fixes, readings, index, profile_of, params
        )
    if not seen_before:  # devices seen for the first time: their own (empty) dictionary
        current = [{} if tracks_now is _NO_TRACKS else tracks_now for tracks_now in current]
    return _new_states(fixes.devices, starts, device_counted, last, current), events


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

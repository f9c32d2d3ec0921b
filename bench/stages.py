"""The core's pure work per reading: the pipeline's stages and the rows the writer binds (no I/O).

A diagnostic for optimising the core (see bench/NOTES.md), not part of ``make bench``. Watches' UD fixes
(decoded by the real decoder beforehand) go through ``stages.process`` and ``store.ingest.ingest_rows`` in
batches, as the pipeline runs them; the figure is CPU µs per reading after a first warming round:

    .venv/bin/python bench/stages.py --devices 10000 --rounds 12 --interval 30

The VMs this runs on move CPU time by 2x from one minute to the next. Instruction counts do not: run it
under valgrind twice with different ``--rounds`` (the messages are built for ``--build-rounds`` up front,
so the two runs differ by the processing alone) and divide the difference by the extra readings:

    PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \\
        .venv/bin/python bench/stages.py --devices 1000 --rounds 3 --build-rounds 8 --interval 1
    (the same with --rounds 8; "I refs" of the second minus the first, divided by 5,000)

Those counts moved by up to 4 % between identical runs here (object addresses differ), so compare
means of two or three runs.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from geosentinel.gctuning import freeze_long_lived
from geosentinel.model import Device, DeviceMessage
from geosentinel.pipeline.fixfilter import FixLimits
from geosentinel.pipeline.runner import OPENS_ALERT
from geosentinel.pipeline.stages import Context, DeviceStates, Memory, process
from geosentinel.protocols import stream_codec
from geosentinel.protocols.base import Session
from geosentinel.store.base import IngestBatch
from geosentinel.store.ingest import ingest_rows

sys.path.insert(0, str(Path(__file__).parent))
from tcp_load import FIX_TAIL, ID_BASE  # a sibling script: the watches and the fix it sends

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class NoStore:
    """Every device is already in memory: the stages never ask the store."""

    def device_states(self, device_ids: object) -> dict[str, object]:
        return {}


def watch_fix(device: Device, index: int, at: datetime) -> DeviceMessage:
    codec = stream_codec("watch")
    content = f"UD,{at:%d%m%y,%H%M%S},A,{43.5 + (index % 1000) * 1e-6:.6f},{FIX_TAIL}"
    frame = f"[3G*{device.unique_id}*{len(content):04X}*{content}]".encode()
    return codec.decode(frame, Session(), at).messages[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=12, help="one fix per device per round")
    parser.add_argument("--build-rounds", type=int, default=0, help="build at least this many rounds")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between a device's fixes")
    parser.add_argument("--batch", type=int, default=300, help="readings per pipeline batch")
    args = parser.parse_args()
    count = args.devices
    devices = [Device(f"dev-{i}", "org", f"wearer-{i}", str(ID_BASE + i), "watch") for i in range(count)]
    rounds = []
    for r in range(max(args.rounds, args.build_rounds)):
        at = T0 + timedelta(seconds=args.interval * (r + 1))
        received = at + timedelta(seconds=1)
        rounds.append([(d, watch_fix(d, i, at), received) for i, d in enumerate(devices)])
    states = DeviceStates(NoStore())  # type: ignore[arg-type]
    states.apply({d.id: Memory(None) for d in devices})
    limits, context = FixLimits(), Context()
    freeze_long_lived()  # as the service does once serving
    timings = []
    for r in range(args.rounds):
        items = rounds[r]
        cpu = time.process_time()
        for start in range(0, len(items), args.batch):
            result = process(items[start : start + args.batch], states, limits, context)
            states.apply(result.memories)
            ingest_rows(IngestBatch(result.readings, result.events, result.states, alert_kinds=OPENS_ALERT))
        if r > 0:  # the first round creates every device's states
            timings.append((time.process_time() - cpu) / len(items) * 1e6)
    gc.collect()
    listed = ", ".join(f"{t:.1f}" for t in timings)
    print(f"stages + rows: {statistics.median(timings):.1f} µs of CPU per reading (rounds: {listed})")


if __name__ == "__main__":
    main()

"""Decode throughput per protocol: frames/s on one core (framer + decoder, as a gateway runs them).

Each protocol gets a representative mix of frames a senior watch or tracker sends in a day (mostly fixes,
some heartbeats, an alarm), built here so the benchmark does not depend on test fixtures. The figure is
frames decoded per second in this one process (one core), median of several runs: per second of wall clock
and per second of CPU time (``time.process_time``). On a machine shared with other work the wall-clock
figure moves 2x from hour to hour; the CPU-time one is the steadier measure of the code.
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from geosentinel.protocols import stream_codec
from geosentinel.protocols.base import Session
from geosentinel.protocols.codec import crc_itu

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def watch_frames() -> tuple[list[bytes], Session]:
    def frame(content: str) -> bytes:
        return f"[3G*8800000015*{len(content):04X}*{content}]".encode()

    fix = "271126,120000,A,43.529742,N,5.447427,E,0.5,0.0,120.0,9,100,86,1520,0,00000000"
    fix += ",1,0,208,1,3000,12345,-80,0"
    return [frame(f"UD_LTE,{fix}")] * 6 + [frame("LK,1520,0,86")] * 3 + [frame(f"AL_LTE,{fix}")], Session()


def gt06_frames() -> tuple[list[bytes], Session]:
    def frame(protocol: int, content: bytes, serial: int) -> bytes:
        body = bytes([len(content) + 5, protocol]) + content + struct.pack(">H", serial)
        return b"\x78\x78" + body + struct.pack(">H", crc_itu(body)) + b"\r\n"

    gps = bytes([26, 11, 27, 12, 0, 0, 0xC9]) + struct.pack(
        ">IIBH", round(43.529742 * 1_800_000), round(5.447427 * 1_800_000), 3, 0x1400 | 90
    )
    lbs = struct.pack(">HBH", 208, 1, 3000) + (12345).to_bytes(3, "big")
    heartbeat = bytes([0x44, 5, 4, 0x00, 0x02])
    alarm = gps + b"\x09" + lbs + bytes([0x60, 5, 4, 0x01, 0x02])
    frames = [frame(0x12, gps + lbs, i) for i in range(6)] + [frame(0x13, heartbeat, 7)] * 3
    return [*frames, frame(0x16, alarm, 9)], Session(unique_id="864717003283581")


def h02_frames() -> tuple[list[bytes], Session]:
    fix = b"*HQ,4970105243,V1,120000,A,4331.7845,N,00526.8456,E,000.27,235,271126,FFFFFBFF,208,1,3000,12345#"
    return [fix] * 7 + [b"*HQ,4970105243,HTBT,86#"] * 3, Session()


MIXES: dict[str, Callable[[], tuple[list[bytes], Session]]] = {
    "watch": watch_frames,
    "gt06": gt06_frames,
    "h02": h02_frames,
}


def frames_per_second(protocol: str, seconds: float) -> tuple[float, float]:
    """(frames per second of wall clock, frames per second of this process's CPU time)."""
    codec = stream_codec(protocol)
    frames, session = MIXES[protocol]()
    stream = b"".join(frames)
    decode = codec.decode
    for frame in frames:  # every frame of the mix must decode: a benchmark of errors measures nothing
        session = decode(frame, session, NOW).session or session
    done = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        framer = codec.framer()
        for frame in framer.feed(stream):
            # The connection keeps the session a frame returns, as the TCP gateway does.
            session = decode(frame, session, NOW).session or session
        done += len(frames)
    cpu = time.process_time() - cpu_start
    return done / (time.perf_counter() - start), done / cpu if cpu > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    results = {}
    for protocol in MIXES:
        both = [frames_per_second(protocol, args.seconds) for _ in range(args.runs)]
        runs, cpu_runs = [wall for wall, _ in both], [cpu for _, cpu in both]
        results[protocol] = {
            "median": statistics.median(runs),
            "runs": runs,
            "cpu_median": statistics.median(cpu_runs),
            "cpu_runs": cpu_runs,
        }
        listed = ", ".join(f"{r:,.0f}" for r in runs)
        cpu_listed = ", ".join(f"{r:,.0f}" for r in cpu_runs)
        print(
            f"{protocol}: {results[protocol]['median']:,.0f} frames/s wall (runs: {listed}); "
            f"{results[protocol]['cpu_median']:,.0f} frames/s CPU (runs: {cpu_listed})"
        )
    if args.out is not None:
        args.out.write_text(
            json.dumps({"args": {"runs": args.runs, "seconds": args.seconds}, "results": results})
        )


if __name__ == "__main__":
    main()

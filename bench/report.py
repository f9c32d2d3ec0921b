"""Write docs/benchmarks.md from the JSON results of bench/ingest.py (one file per backend)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

TARGET_HTTP = 5000.0
TARGET_ALERT_P99_MS = 500.0
TARGET_FALL_SCORE_MS = 5.0
TARGET_STORE_RATIO = 0.5
TARGET_DECODE = 100_000.0
TARGET_TCP = 20_000.0
TARGET_RSS_KB = 10.0


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def row(result: dict) -> str:
    m = result["median"]
    runs = result["runs"]
    return (
        f"| {result['backend']} | {m['raw']:,.0f} | {m['store']:,.0f} | **{m['store_vs_raw']:.2f}×** "
        f"| {m['http']:,.0f} | {m['http_vs_raw']:.3f}× | {m['p50_ms']:.0f} | {m['p99_ms']:.0f} "
        f"| {', '.join(f'{v:,.0f}' for v in runs['http'])} |"
    )


def decode_section(path: Path) -> list[str]:
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    rows = [
        f"| {name} | {r['median']:,.0f} | {r.get('cpu_median', float('nan')):,.0f} "
        f"| {', '.join(f'{v:,.0f}' for v in r['runs'])} |"
        for name, r in data["results"].items()
    ]
    return [
        "",
        "## Protocol decoding",
        "",
        "`bench/decode.py`: framer + decoder on one core, over a day's typical mix per protocol "
        "(mostly fixes, some heartbeats, one alarm), median of "
        f"{data['args']['runs']} runs of {data['args']['seconds']:.0f} s. Frames per second of CPU time "
        "are steadier than wall-clock ones when other work shares the machine.",
        "",
        "| protocol | frames/s (one core, wall clock) | frames/s of CPU time | runs (wall clock) |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Target (issue 3): ≥ {TARGET_DECODE:,.0f} frames/s per core for watch and gt06.",
    ]


def tcp_section(path: Path) -> list[str]:
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    m, a = data["median"], data["args"]
    runs = ", ".join(f"{r['frames_per_s']:,.0f}" for r in data["runs"])
    return [
        "",
        "## TCP load (senior watches)",
        "",
        f"`bench/tcp_load.py`: {a['devices']:,} watches connected at once to `geosentinel serve` on SQLite "
        "(one TCP connection each, from a separate load process on the same 2 cores), each sending a `UD` "
        "fix every "
        f"{a['interval']} s ({m['offered_per_s']:,.0f} frames/s offered); frames/s counts readings committed "
        f"over {a['seconds']:.0f} s after a 5 s warm-up. Median of {len(data['runs'])} runs. Service: "
        f"`--gateway-workers {a['gateway_workers']}`"
        f"{' --writer-process' if a.get('writer_process') else ''}; RSS counts all its processes.",
        "",
        "| committed frames/s | RSS per connected device | service RSS idle → connected | runs (frames/s) "
        "| CPU per frame: core / gateway workers / writer / load |",
        "|---|---|---|---|---|",
        f"| {m['frames_per_s']:,.0f} | {m['rss_per_device_kb']:.1f} KB | {m['rss_before_mb']:.0f} MB → "
        f"{m['rss_connected_mb']:.0f} MB | {runs} | {m['core_cpu_us']:.0f} / {m['workers_cpu_us']:.0f} / "
        f"{m.get('writer_cpu_us', 0):.0f} / {m['load_cpu_us']:.0f} µs |",
        *_machine_line(m),
        "",
        f"Targets (issue 3): ≥ {TARGET_TCP:,.0f} frames/s committed; "
        f"≤ {TARGET_RSS_KB:.0f} KB per connected device.",
    ]


def _machine_line(m: dict[str, float]) -> list[str]:
    """Where the whole machine's two cores went during the measured window (runs since 2026-11-28)."""
    if "machine_user_cores" not in m:
        return []
    return [
        "",
        f"The whole machine over the measured window, in cores: user {m['machine_user_cores']:.2f}, "
        f"system {m['machine_system_cores']:.2f}, softirq {m['machine_softirq_cores']:.2f} (the kernel's "
        "share of moving frames over loopback TCP, counted in no process), idle "
        f"{m['machine_idle_cores']:.2f}, stolen by the host {m['machine_steal_cores']:.2f}.",
    ]


def geofence_section(path: Path) -> list[str]:
    if not path.exists():
        return []
    d = json.loads(path.read_text())
    runs = ", ".join(f"{v:,.0f}" for v in d["fixes_per_s_runs"])
    shapes = ", ".join(f"{k} {v:,}" for k, v in d["fence_shapes"].items())
    kinds = ", ".join(f"{k} {v:,}" for k, v in d["fence_kinds"].items())
    return [
        "",
        "## Geofence evaluation",
        "",
        f"`bench/geofence.py`: {d['fences']:,} fences ({shapes}; {kinds}) over Marseille and Aix, indexed in "
        f"{d['build_s']:.1f} s; {d['fixes']:,} fixes in batches of {d['batch']:,} as the pipeline runs them, "
        f"{d['relations_per_fix']:.2f} fences per fix on average. One process, one core.",
        "",
        "| fixes/s: index + distances | fixes/s: + hysteresis detector | runs (full) |",
        "|---|---|---|",
        f"| {d['relations_only_per_s']:,.0f} | {d['fixes_per_s_median']:,.0f} | {runs} |",
        "",
        "Target (issue 4): ≥ 50,000 fixes/s per core against 100,000 fences.",
    ]


def falls_section(path: Path) -> list[str]:
    if not path.exists():
        return []
    d = json.loads(path.read_text())
    verdict = "met" if d["score_ms_p99"] < TARGET_FALL_SCORE_MS and d["load_s_median"] < 1 else "**not met**"
    return [
        "",
        "## Fall classifier",
        "",
        f"`bench/falls.py`: the shipped model ({d['model_bytes']:,} bytes) loaded in fresh processes, then "
        f"{d['windows']:,} real UMAFall wrist windows of {d['window_s']} s with the gyroscope scored through "
        "`FallModel.score_window` (resampling, candidate impacts, features, the trees and the sequence "
        "network), as the service does. "
        "Detection quality (leave-one-subject-out) is in docs/falls.md.",
        "",
        "| import (fresh process) | load | score p50 | score p99 | score max |",
        "|---|---|---|---|---|",
        f"| {d['import_s_median']:.2f} s | {1000 * d['load_s_median']:.0f} ms "
        f"| {d['score_ms_median']:.1f} ms | {d['score_ms_p99']:.1f} ms | {d['score_ms_max']:.1f} ms |",
        "",
        "Targets (issue 5): loads in well under a second, scores a window in under "
        f"{TARGET_FALL_SCORE_MS:.0f} ms: {verdict}.",
    ]


def alert_latency_section(path: Path) -> list[str]:
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    m, a = data["median"], data["args"]
    runs = ", ".join(f"{r['p99_ms']:,.0f}" for r in data["runs"])
    verdict = "met" if m["p99_ms"] <= TARGET_ALERT_P99_MS else "**not met**"
    return [
        "",
        "## SOS to notification",
        "",
        f"`bench/alert_latency.py`: {a['sos']} watches each press SOS once ({a['every']} s apart) while "
        f"{a['load_devices']:,} other watches send fixes ({m['offered_per_s']:,.0f} frames/s offered, "
        f"{m['committed_per_s']:,.0f} committed: about half of what the service commits at most). "
        "Latency, on the service's clock: the SOS frame read on the socket (the event's `received_at`) "
        "to the first notification handed to its channel (a webhook on loopback), through the pipeline, "
        "the commit, the escalation step and rendering. Median of the runs' figures.",
        "",
        "| p50 | p99 | max | of which: read → step written (p99) | SOS reply round trip (p99) | runs (p99) |",
        "|---|---|---|---|---|---|",
        f"| {m['p50_ms']:,.0f} ms | {m['p99_ms']:,.0f} ms | {m['max_ms']:,.0f} ms "
        f"| {m['written_p99_ms']:,.0f} ms | {m['reply_p99_ms']:,.0f} ms | {runs} ms |",
        "",
        f"Target (issue 6): p99 ≤ {TARGET_ALERT_P99_MS:,.0f} ms: {verdict}. Every SOS reached the webhook: "
        f"{'yes' if all(r['notified'] == r['sos'] for r in data['runs']) else '**no**'}.",
    ]


def detection_section(path: Path) -> list[str]:
    if not path.exists():
        return []
    d = json.loads(path.read_text())
    run = d.get("run", {})
    rows = []
    for k in d["kinds"]:
        recall = "–" if k["recall"] is None else f"{100 * k['recall']:.2f} %"
        p95 = "–" if k["latency_p95_s"] is None else f"{k['latency_p95_s']:.0f}"
        rows.append(f"| {k['kind']} | {k['detection_kind']} | {k['truth']} | {k['masked']} | {k['detected']} "
                    f"| {recall} | {p95} |")  # fmt: skip
    false_rows = [
        f"| {kind} | {v['count']} | {v['per_wearer_day']:.3f} |" for kind, v in d["false_alerts"].items()
    ]
    checks = [f"- {'met' if c['ok'] else '**not met**'}: {c['name']} = {c['value']} (target {c['target']})"
              for c in d["acceptance"]]  # fmt: skip
    return [
        "",
        "## Detection against the simulator's truth",
        "",
        f"`geosentinel simulate-days --wearers {run.get('wearers')} --days {run.get('days')} --seed "
        f"{run.get('seed')}`: {d['wearer_days']:g} wearer-days ({run.get('readings', 0):,} readings) through "
        "the OsmAnd decoder, the pipeline, its detectors and the SQLite store, on a simulated clock; "
        "scored by `sim/scoring.py` (rules in docs/detection-scoring.md).",
        "",
        "| truth | detected as | truth | not scorable | detected | recall | p95 latency s |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "| false alerts | count | per wearer-day |",
        "|---|---|---|",
        *false_rows,
        "",
        *checks,
    ]


def main() -> None:
    results = [json.loads(Path(p).read_text()) for p in sys.argv[1:]]
    args = results[0]["args"]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`scripts/bench.sh` → `bench/ingest.py` → `bench/report.py`);",
        "do not edit by hand. Every figure is the **median of "
        f"{args['runs']} runs**, and each ratio compares figures measured in the same invocation on the same",
        "machine (these machines are noisy: single runs vary by ±30 %).",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit `{commit}` on {os.cpu_count()} cores "
        f"({cpu_model()}), Python {platform.python_version()}.",
        "",
        "## Ingest",
        "",
        "- **raw**: the same reading rows inserted with the driver's plain `executemany`, "
        f"{args['chunk']} rows per transaction, same schema and indexes, same durability settings "
        "(SQLite WAL + `synchronous=FULL`).",
        "- **store**: the same readings through `Store.ingest` (row building, the single writer thread, "
        "group commit).",
        "- **http**: end to end — `wrk` (1 thread, "
        f"{args['connections']} keep-alive connections, {args['devices']} devices) sends OsmAnd fixes to "
        f"`geosentinel serve --gateway-workers {args['gateway_workers']}` "
        f"for {float(args['seconds']):.0f} s "
        "after a 3 s warm-up; readings/s counts rows committed in the store; latency is request → reply, "
        "and the reply is sent only after the commit, so it is the ingest → commit latency.",
        "",
        "| backend | raw rows/s | store rows/s | store / raw | HTTP readings/s | HTTP / raw "
        "| p50 ms | p99 ms | HTTP runs |",
        "|---|---|---|---|---|---|---|---|---|",
        *[row(r) for r in results],
        "",
        "Targets (issue 2): HTTP ≥ "
        f"{TARGET_HTTP:,.0f} readings/s on this 2-core machine; store path ≥ {TARGET_STORE_RATIO}× raw.",
        "",
    ]
    for r in results:
        m = r["median"]
        http_ok = "met" if m["http"] >= TARGET_HTTP else "**not met**"
        store_ok = "met" if m["store_vs_raw"] >= TARGET_STORE_RATIO else "**not met**"
        lines.append(f"- {r['backend']}: HTTP target {http_ok}; store-path target {store_ok}.")
    lines += decode_section(Path("var/bench/decode.json")) + tcp_section(Path("var/bench/tcp.json"))
    lines += geofence_section(Path("var/bench/geofence.json"))
    lines += detection_section(Path("var/bench/detection.json"))
    lines += falls_section(Path("var/bench/falls.json"))
    lines += alert_latency_section(Path("var/bench/alert_latency.json"))
    notes = Path(__file__).with_name("NOTES.md")
    if notes.exists():
        lines += ["", notes.read_text().strip(), ""]
    Path("docs/benchmarks.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

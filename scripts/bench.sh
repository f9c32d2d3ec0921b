#!/usr/bin/env bash
# `make bench`: start PostgreSQL in a throwaway folder, run the ingest benchmark on both backends, the
# decoders' throughput and the TCP load run, write docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_apt 'command -v wrk' wrk
WORK=$(mktemp -d -t geosentinel-bench.XXXXXX)
chmod 755 "$WORK"
cleanup() { pg_down; rm -rf "$WORK"; }
trap cleanup EXIT
pg_up "$WORK"
mkdir -p var/bench
RUNS=${BENCH_RUNS:-3}
for backend in sqlite postgres; do
  .venv/bin/python bench/ingest.py --backend "$backend" --runs "$RUNS" --connections 1000 --gateway-workers 1 \
    --out "var/bench/$backend.json"
done
.venv/bin/python bench/decode.py --runs "$((RUNS + 2))" --out var/bench/decode.json
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
.venv/bin/python bench/tcp_load.py --devices 10000 --interval 0.5 --runs "$RUNS" --out var/bench/tcp.json
.venv/bin/python bench/geofence.py --fences 100000 --fixes 200000 --runs "$((RUNS + 2))" --out var/bench/geofence.json
# Detection scored over simulated wearer-days (40 wearers x 5 days), through the real pipeline and store.
# Seed 2: the geofence margin was chosen on seed 1, so this run is held out from that choice.
rm -f var/bench/days*.db var/bench/days*.db-wal var/bench/days*.db-shm
.venv/bin/geosentinel simulate-days --db "sqlite:///var/bench/days.db?synchronous=normal" \
  --truth var/bench/days-truth.jsonl --wearers 40 --days 5 --seed 2 --report var/bench/detection.json
.venv/bin/python bench/falls.py --out var/bench/falls.json
# SOS to notification while the service ingests at about half its maximum rate.
.venv/bin/python bench/alert_latency.py --runs "$RUNS" --out var/bench/alert_latency.json
.venv/bin/python bench/report.py var/bench/sqlite.json var/bench/postgres.json
echo "wrote docs/benchmarks.md"

#!/usr/bin/env bash
# `make test`: start the servers the suite needs in a throwaway folder, run every test, stop them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
WORK=$(mktemp -d -t geosentinel-test.XXXXXX)
chmod 755 "$WORK"
cleanup() { mqtt_down; pg_down; rm -rf "$WORK"; }
trap cleanup EXIT
pg_up "$WORK"
mqtt_up "$WORK"
chromium_ready
echo "PostgreSQL up: $GEOSENTINEL_TEST_POSTGRES_URL; mosquitto up: $GEOSENTINEL_TEST_MQTT_URL"
.venv/bin/pytest "$@"

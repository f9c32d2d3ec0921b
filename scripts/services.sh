# Start and stop the servers the tests and benchmarks need, in a throwaway folder. Sourced, not run.
# Installs missing Debian packages first (the machines run as root; no systemd, so we start daemons ourselves).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

ensure_apt() {  # ensure_apt PROBE_COMMAND PACKAGE...
  local probe=$1; shift
  if ! eval "$probe" >/dev/null 2>&1; then
    echo "installing $* (Debian packages)"
    if [ "$(id -u)" != 0 ]; then echo "need root to apt-get install $*"; return 1; fi
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >/dev/null || return 1
  fi
}

# chromium_ready: Debian's chromium, which Playwright drives headless in the dashboard's browser tests
# (tests/e2e/test_dashboard.py, tests/dashboard/); never `playwright install`.
# A Chinese font too, so that the screenshots of the interface in Chinese show characters, not boxes.
chromium_ready() {
  ensure_apt '[ -x /usr/bin/chromium ]' chromium || return 1
  ensure_apt 'fc-list :lang=zh | grep -q .' fonts-wqy-microhei || return 1
}

as_postgres() {  # initdb and postgres refuse to run as root
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi
}

# pg_up DIR: starts PostgreSQL under DIR on a free loopback port; exports GEOSENTINEL_TEST_POSTGRES_URL.
pg_up() {
  local dir=$1 bin port
  ensure_apt '[ -x "$(pg_bin)/initdb" ]' postgresql || return 1
  bin=$(pg_bin); port=$(free_port)
  mkdir -p "$dir/pg"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$dir/pg"
  as_postgres "$bin/initdb -D $dir/pg/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 -N" >"$dir/pg/initdb.log" 2>&1 \
    || { cat "$dir/pg/initdb.log"; return 1; }
  as_postgres "$bin/pg_ctl -D $dir/pg/data -l $dir/pg/log -o '-p $port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200' -w start" >/dev/null \
    || { cat "$dir/pg/log"; return 1; }
  as_postgres "$bin/createdb -h 127.0.0.1 -p $port -U postgres geosentinel" || return 1
  export GEOSENTINEL_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/geosentinel"
  PG_DIR=$dir
}

pg_down() {
  [ -n "${PG_DIR:-}" ] && as_postgres "$(pg_bin)/pg_ctl -D $PG_DIR/pg/data -m fast stop" >/dev/null 2>&1
  PG_DIR=
}

# mqtt_up DIR: starts mosquitto under DIR on a free loopback port; exports GEOSENTINEL_TEST_MQTT_URL.
mqtt_up() {
  local dir=$1 port
  ensure_apt 'command -v mosquitto' mosquitto mosquitto-clients || return 1
  port=$(free_port)
  mkdir -p "$dir/mqtt"
  # Raised in-flight/queue limits: the service acknowledges in batches, after each commit.
  cat >"$dir/mqtt/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 1000
max_queued_messages 100000
pid_file $dir/mqtt/pid
CONF
  [ "$(id -u)" = 0 ] && chown -R mosquitto: "$dir/mqtt" 2>/dev/null
  mosquitto -c "$dir/mqtt/mosquitto.conf" -d || return 1
  for _ in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
    sleep 0.1
  done
  export GEOSENTINEL_TEST_MQTT_URL="mqtt://127.0.0.1:$port"
  MQTT_DIR=$dir
}

mqtt_down() {
  [ -n "${MQTT_DIR:-}" ] && [ -f "$MQTT_DIR/mqtt/pid" ] && kill "$(cat "$MQTT_DIR/mqtt/pid")" 2>/dev/null
  MQTT_DIR=
}

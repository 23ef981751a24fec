# Sourced by the benchmarks in this directory: the PostgreSQL to run on, the release build, and
# a throwaway cluster that loads this build's library (never the system's PostgreSQL).
#   ROWSEC_PG_VERSION=15|18  which private copy (tests/pg.sh); ROWSEC_PG_BIN overrides it
#   SKIP_INSTALL=1           reuse the release build already installed
#   PORT                     the cluster's port (default: a free one)
# After bench_cluster: WORK, DATA, as_pg, and PSQL (an array: psql on database `bench`); and
# median and pgbench_latency for every benchmark.

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=tests/pg.sh
source "$ROOT/tests/pg.sh"
case "${ROWSEC_PG_VERSION:-15}" in
    15) default_config() { private_pg 15 "${SYSTEM_PG15_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"; } ;;
    18) default_config() { wheel_pg18; } ;;
    *) echo "ROWSEC_PG_VERSION must be 15 or 18" >&2; exit 2 ;;
esac
BIN=${ROWSEC_PG_BIN:-$("$(default_config)" --bindir)}
export PGRX_HOME=${PGRX_HOME:-$ROOT/target/pgrx-home}
PORT=${PORT:-$(free_port)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HERE/../target}

if [ -z "${SKIP_INSTALL:-}" ]; then
    log=$(mktemp /tmp/rowsec-bench-build.XXXXXX)
    (cd "$HERE" && cargo pgrx install --release --pg-config "$BIN/pg_config") >"$log" 2>&1 || { cat "$log"; exit 1; }
    rm -f "$log"
fi

as_pg() { if [ "$(id -u)" = 0 ]; then sudo -u postgres "$@"; else "$@"; fi; }

# bench_cluster NAME [SERVER OPTIONS...]: initdb and start a cluster under /tmp (removed on
# exit) with shared_buffers=512MB, jit off, rowsec preloaded, and a database `bench`.
bench_cluster() {
    local name=$1
    shift
    WORK=$(mktemp -d "/tmp/rowsec-$name.XXXXXX")
    chmod 777 "$WORK"
    DATA="$WORK/data"
    trap 'as_pg "$BIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
    # Load this build's release library even if someone installs another build meanwhile
    # (module_pathname is plain 'rowsec', so dynamic_library_path decides).
    mkdir -p "$WORK/lib"
    cp "$CARGO_TARGET_DIR/release/librowsec.so" "$WORK/lib/rowsec.so"
    chmod -R a+rX "$WORK/lib"
    as_pg "$BIN/initdb" -D "$DATA" >/dev/null 2>&1
    echo "dynamic_library_path = '$WORK/lib:\$libdir'" | as_pg tee -a "$DATA/postgresql.conf" >/dev/null
    as_pg "$BIN/pg_ctl" -D "$DATA" \
        -o "-p $PORT -k $WORK -c shared_buffers=512MB -c jit=off -c shared_preload_libraries=rowsec $*" \
        -l "$WORK/log" -w start >/dev/null
    PSQL=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U postgres)
    "${PSQL[@]}" -c "CREATE DATABASE bench"
    PSQL+=(-d bench)
}

# bench_pool_rows TABLE: in database `bench`, the extension, schema `bench`, 100,000 people
# (fan-out 8, person 1 the CEO) under identity setting app.person_id, and bench.TABLE (id,
# owner_id, name, amount) with 1,000,000 rows, ten per person, indexed on nothing but its key.
bench_pool_rows() {
    "${PSQL[@]}" >/dev/null <<SQL
CREATE EXTENSION rowsec;
CREATE SCHEMA bench;
CREATE TABLE bench.people (id bigint PRIMARY KEY, manager_id bigint, team text, login text, active boolean);
INSERT INTO bench.people SELECT g, CASE WHEN g > 1 THEN (g - 2) / 8 + 1 END, NULL, NULL, true FROM generate_series(1, 100000) g;
SELECT rowsec.configure('bench.people', 'id', 'manager_id', 'team', 'login', 'active', 'setting', 'app.person_id');
CREATE TABLE bench.$1 (id bigint PRIMARY KEY, owner_id bigint NOT NULL, name text, amount numeric);
INSERT INTO bench.$1 SELECT g, (g - 1) % 100000 + 1, 'deal ' || g, g * 1.5 FROM generate_series(1, 1000000) g;
SQL
}

# median NUMBER...: the median of the numbers (the mean of the middle two for an even count).
median() { printf '%s\n' "$@" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# pgbench_latency SCRIPT [PGBENCH OPTIONS...]: mean latency in ms of SECONDS_EACH seconds of
# SCRIPT, one client (the options name the server, user, protocol and database).
pgbench_latency() {
    local script=$1
    shift
    "$BIN/pgbench" -n -c 1 -T "$SECONDS_EACH" -f "$script" "$@" 2>/dev/null |
        sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p'
}

#!/usr/bin/env bash
# The compiled script at scale (a measurement, not a test): generated specs of TABLES x ROLES
# (generator/examples/bench_compile.rs: three levels, classed columns, `always` rules), compiled,
# applied to an empty database, re-applied unchanged, then read by one person.
#   compile: median of 7 (release build), script size, CREATE POLICY count
#   apply on an empty database, under PostgreSQL's default settings (only
#     shared_preload_libraries=rowsec): wall time of psql -f, or the error
#   re-apply unchanged: wall time; relations of protected tables the re-apply held in ACCESS
#     EXCLUSIVE mode (pg_locks, read by the script's own session just before its COMMIT); and the
#     same re-apply while another session holds ACCESS SHARE on a protected table (an open
#     transaction that read it), with lock_timeout 2s: ok or the error
#   memory: one person (one role) reads every table in one session; then that backend's
#     CacheMemoryContext and all its memory contexts (pg_backend_memory_contexts)
#   extension/bench/script_scale.sh                  # 200 x 100, then 2000 x 200 (compile only)
#   SIZES="200x100" APPLY_LARGE=1 extension/bench/script_scale.sh
#   BENCH_COMPILE=/path/to/an/older/bench_compile extension/bench/script_scale.sh   # before/after
#   SERVER_OPTS="-c max_locks_per_transaction=1024"   # settings beyond the defaults
# Runs on the private PostgreSQL copy (tests/pg.sh) with the extension tests/run.sh installed
# there (ROWSEC_PG_BIN overrides it), in a cluster under /tmp torn down at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/pg.sh
source "$ROOT/tests/pg.sh"
BIN=${ROWSEC_PG_BIN:-$ROOT/target/pg/15/usr/lib/postgresql/15/bin}
SIZES=${SIZES:-200x100 2000x200}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# BENCH_COMPILE: another build of the example (to measure an older rowsec side by side).
if [ -n "${BENCH_COMPILE:-}" ]; then
    COMPILE=$BENCH_COMPILE
else
    (cd "$ROOT" && cargo build -q --release -p rowsec-generator --example bench_compile)
    COMPILE=$CARGO_TARGET_DIR/release/examples/bench_compile
fi

WORK=$(mktemp -d /tmp/rowsec-script-scale.XXXXXX)
chmod 777 "$WORK"
DATA=$WORK/data
PORT=${PORT:-$(free_port)}
cleanup() {
    [ -n "${HOLDER:-}" ] && kill "$HOLDER" 2>/dev/null || true
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
as_pg "$BIN/initdb" -D "$DATA" >/dev/null
as_pg "$BIN/pg_ctl" -D "$DATA" -o "-p $PORT -k $WORK -c shared_preload_libraries=rowsec ${SERVER_OPTS:-}" -l "$WORK/log" -w start >/dev/null
PSQL=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT")

for size in $SIZES; do
    tables=${size%x*} roles=${size#*x}
    dir=$WORK/$size
    echo "== $tables tables x $roles roles"
    "$COMPILE" "$tables" "$roles" "$dir"
    if [ "$tables" -gt 200 ] && [ -z "${APPLY_LARGE:-}" ]; then
        continue
    fi
    db=scale_$tables
    "${PSQL[@]}" -U postgres -d postgres -c "CREATE DATABASE $db"
    "${PSQL[@]}" -U postgres -d "$db" -f "$dir/schema.sql"
    chmod -R a+rX "$dir"

    t0=$(now)
    if "${PSQL[@]}" -U postgres -d "$db" -f "$dir/script.sql" >"$dir/apply.log" 2>&1; then
        echo "apply (empty database, default settings): $(secs "$t0" "$(now)") s"
    else
        echo "apply (empty database, default settings): FAILED after $(secs "$t0" "$(now)") s: $(grep -m1 ERROR "$dir/apply.log")"
        continue
    fi

    # The script's own session reads its locks just before it commits.
    sed '$d' "$dir/script.sql" >"$dir/reapply.sql"
    cat >>"$dir/reapply.sql" <<'SQL'
SELECT pg_catalog.count(*) AS locked FROM pg_catalog.pg_locks l
WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
  AND l.relation IN (SELECT tbl FROM rowsec.protected_tables) \gset
COMMIT;
\echo locked :locked
SQL
    t0=$(now)
    out=$("${PSQL[@]}" -U postgres -d "$db" -f "$dir/reapply.sql" 2>&1)
    echo "re-apply unchanged: $(secs "$t0" "$(now)") s; protected tables held in ACCESS EXCLUSIVE mode: $(grep -o 'locked [0-9]*' <<<"$out" | cut -d' ' -f2)"

    # Another session reads a protected table and keeps its transaction open.
    "${PSQL[@]}" -U postgres -d "$db" -c "BEGIN; SELECT count(*) FROM app.table_0001; SELECT pg_sleep(300);" >/dev/null 2>&1 &
    HOLDER=$!
    until [ "$("${PSQL[@]}" -U postgres -d "$db" -Atc "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.query LIKE '%pg_sleep(300)%' AND l.relation = 'app.table_0001'::regclass")" = 1 ]; do sleep 0.2; done
    sed "s/^SET LOCAL lock_timeout = .*/SET LOCAL lock_timeout = '2s';/" "$dir/script.sql" >"$dir/reapply-2s.sql"
    t0=$(now)
    if out=$("${PSQL[@]}" -U postgres -d "$db" -f "$dir/reapply-2s.sql" 2>&1); then
        echo "re-apply unchanged while another session reads app.table_0001 (lock_timeout 2s): ok in $(secs "$t0" "$(now)") s"
    else
        echo "re-apply unchanged while another session reads app.table_0001 (lock_timeout 2s): FAILED after $(secs "$t0" "$(now)") s: $(grep -m1 ERROR <<<"$out")"
    fi
    "${PSQL[@]}" -U postgres -d "$db" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(300)%' AND pid <> pg_backend_pid()" >/dev/null
    wait "$HOLDER" 2>/dev/null || true
    HOLDER=

    # One person of one role (individual level, no override) reads every table.
    "${PSQL[@]}" -U postgres -d "$db" <<'SQL'
CREATE ROLE person LOGIN IN ROLE role_002, pg_read_all_stats;
INSERT INTO app.people VALUES (1, NULL, 1, 'person', true);
SQL
    "${PSQL[@]}" -U person -d "$db" -At <<SQL
\\set QUIET on
SELECT pg_catalog.sum(total_bytes) AS fresh FROM pg_backend_memory_contexts \\gset
DO \$\$ DECLARE t regclass; n bigint; BEGIN
  FOR t IN SELECT c.oid FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
           WHERE s.nspname = 'app' AND c.relname LIKE 'table\\_%' AND c.relkind = 'r' LOOP
    EXECUTE format('SELECT count(*) FROM %s', t) INTO n;
  END LOOP; END \$\$;
SELECT 'backend memory after reading $tables tables as one person: ' || pg_size_pretty(pg_catalog.sum(total_bytes))
       || ' (fresh: ' || pg_size_pretty(:fresh::bigint) || '); CacheMemoryContext and its children: '
       || pg_size_pretty((SELECT pg_catalog.sum(total_bytes) FROM pg_backend_memory_contexts
                          WHERE name = 'CacheMemoryContext' OR parent = 'CacheMemoryContext'))
FROM pg_backend_memory_contexts;
SQL
done

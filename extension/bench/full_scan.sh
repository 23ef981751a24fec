#!/usr/bin/env bash
# A full scan by a person who sees every row (a measurement, not a test): issue 12's goal of at
# most 1.2x the unprotected scan. 100,000 people (fan-out 8), 1,000,000 rows, identity setting,
# the CEO (person 1, whose subtree is everyone): `SELECT count(*)` and `SELECT sum(amount)` over
#   no RLS          an unprotected copy
#   scope all       a copy under the generator's `all` condition, `rowsec.in_all(owner_id)`
#   CEO, subtree    a copy under `rowsec.in_subtree(owner_id)`
# timed inside the server (PL/pgSQL static statements: prepared, generic plans after five runs,
# as an application's prepared statements; no network), the cells interleaved, REPS runs of each
# per round, ROUNDS rounds; median milliseconds.
#   SKIP_INSTALL=1 ROUNDS=6 REPS=5 extension/bench/full_scan.sh
#   BEFORE_LIB=/path/to/an/older/librowsec.so extension/bench/full_scan.sh   # side by side
# BEFORE_LIB: another build of the library (same SQL objects), alternating with this one by
# restart each round.
set -euo pipefail

# shellcheck source=extension/bench/common.sh
source "$(dirname "$0")/common.sh"
ROUNDS=${ROUNDS:-6}
REPS=${REPS:-5}
bench_cluster full_scan -c max_parallel_workers_per_gather=0
cp "$WORK/lib/rowsec.so" "$WORK/lib/after.so"
[ -n "${BEFORE_LIB:-}" ] && cp "$BEFORE_LIB" "$WORK/lib/before.so"
bench_pool_rows open
"${PSQL[@]}" >/dev/null <<'SQL'
CREATE TABLE bench.everyone (LIKE bench.open INCLUDING ALL);
INSERT INTO bench.everyone SELECT * FROM bench.open;
CREATE TABLE bench.subtree (LIKE bench.open INCLUDING ALL);
INSERT INTO bench.subtree SELECT * FROM bench.open;
CREATE ROLE pool LOGIN;
GRANT USAGE ON SCHEMA bench TO pool;
GRANT SELECT ON bench.open, bench.everyone, bench.subtree TO pool;
ALTER TABLE bench.everyone ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.everyone FORCE ROW LEVEL SECURITY;
CREATE POLICY rowsec_select_all ON bench.everyone FOR SELECT TO pool USING (rowsec.in_all(owner_id));
ALTER TABLE bench.subtree ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.subtree FORCE ROW LEVEL SECURITY;
CREATE POLICY rowsec_select_subtree ON bench.subtree FOR SELECT TO pool USING (rowsec.in_subtree(owner_id));
SELECT rowsec.protect_table(t, 'id', 'owner_id', false) FROM unnest('{bench.everyone,bench.subtree}'::regclass[]) t;
VACUUM ANALYZE;
-- One row per run: cell, query, milliseconds.
CREATE FUNCTION bench.scan_times(reps int) RETURNS TABLE (cell text, query text, ms float8) LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    n bigint;
    s numeric;
BEGIN
    FOR i IN 1..reps LOOP
        cell := 'open'; query := 'count'; t0 := clock_timestamp();
        SELECT count(*) INTO n FROM bench.open;
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000; RETURN NEXT;
        cell := 'all'; t0 := clock_timestamp();
        SELECT count(*) INTO n FROM bench.everyone;
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000; RETURN NEXT;
        cell := 'subtree'; t0 := clock_timestamp();
        SELECT count(*) INTO n FROM bench.subtree;
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000; RETURN NEXT;
        cell := 'open'; query := 'sum'; t0 := clock_timestamp();
        SELECT sum(amount) INTO s FROM bench.open;
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000; RETURN NEXT;
        cell := 'all'; t0 := clock_timestamp();
        SELECT sum(amount) INTO s FROM bench.everyone;
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000; RETURN NEXT;
        cell := 'subtree'; t0 := clock_timestamp();
        SELECT sum(amount) INTO s FROM bench.subtree;
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000; RETURN NEXT;
    END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION bench.scan_times(int) TO pool;
SQL
builds=(after)
[ -n "${BEFORE_LIB:-}" ] && builds=(before after)
declare -A t
for round in $(seq "$ROUNDS"); do
    for b in "${builds[@]}"; do
        cp "$WORK/lib/$b.so" "$WORK/lib/rowsec.so"
        as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w restart -l "$WORK/log" \
            -o "-p $PORT -k $WORK -c shared_buffers=512MB -c jit=off -c shared_preload_libraries=rowsec -c max_parallel_workers_per_gather=0" >/dev/null
        # One warm-up run (buffers, the directory's first load), then the timed ones.
        while IFS='|' read -r cell query ms; do
            t[$b.$cell.$query]+=" $ms"
        done < <("$BIN/psql" -X -q -At -h "$WORK" -p "$PORT" -U pool -d bench <<SQL
SET app.person_id = '1';
\\o /dev/null
SELECT * FROM bench.scan_times(1);
\\o
SELECT * FROM bench.scan_times($REPS);
SQL
        )
    done
    echo "round $round done" >&2
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '\n%s rounds of %s runs, median ms (%s)\n' "$ROUNDS" "$REPS" "$("$BIN/postgres" --version)"
header='| query | no RLS |'
rule='|---|---|'
for b in "${builds[@]}"; do
    header+=" scope all ($b) | CEO, subtree ($b) |"
    rule+='---|---|'
done
printf '%s\n%s\n' "$header" "$rule"
for query in count sum; do
    # shellcheck disable=SC2086
    open=$(median ${t[after.open.$query]} ${t[before.open.$query]:-})
    row="| \`SELECT $query(...)\` | $(printf '%.1f' "$open") |"
    for b in "${builds[@]}"; do
        for cell in all subtree; do
            # shellcheck disable=SC2086
            v=$(median ${t[$b.$cell.$query]})
            row+=" $(printf '%.1f' "$v") ($(ratio "$v" "$open")x) |"
        done
    done
    echo "$row"
done
printf '\nThe plans (this build):\n'
"$BIN/psql" -X -q -h "$WORK" -p "$PORT" -U pool -d bench -c "SET app.person_id = '1'" \
    -c "EXPLAIN (COSTS OFF) SELECT count(*) FROM bench.everyone" -c "EXPLAIN (COSTS OFF) SELECT count(*) FROM bench.subtree"

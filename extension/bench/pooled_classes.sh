#!/usr/bin/env bash
# What a pool pays when consecutive transactions serve people of different sizes (a measurement,
# not a test). rowsec shapes a plan for the person it is made for and has the backend plan a
# cached statement again when the next person's size class differs (extension/src/plans.rs).
# pgbench, prepared and simple protocol, one connection, identity setting app.person_id, 100,000 people
# (fan-out 8), 1,000,000 rows; each script execution is two transactions, each setting its
# person with set_config(..., true) and running one statement:
#   same class:   two reps (persons 100000 and 99999, 10 rows each)
#   class change: the CEO (everyone), then the rep 100000
# statements: a point lookup by key ($1, the rep's own rows) and the 50-row page
# `SELECT id, amount FROM t ORDER BY id LIMIT 50` (no parameter: always the generic plan);
# on the protected table (`rowsec.in_subtree(owner_id)`) and on an unprotected copy.
#   SKIP_INSTALL=1 ROUNDS=5 SECONDS_EACH=5 extension/bench/pooled_classes.sh
#   PROTOCOLS=prepared LOOPS=20000 ...      # only the prepared cells; the loop's length
#   BEFORE_LIB=/path/to/an/older/librowsec.so extension/bench/pooled_classes.sh
# A second table times the mechanism alone, without the network: one PL/pgSQL loop (its
# statements are cached plans too) alternating the two people with set_config(..., true) and
# running the point lookup, LOOPS times; microseconds per iteration.
# BEFORE_LIB: another build of the library (same SQL objects) measured in the same run: each
# round restarts the cluster once with each build, alternating, and the table gains its column.
set -euo pipefail

# shellcheck source=extension/bench/common.sh
source "$(dirname "$0")/common.sh"
ROUNDS=${ROUNDS:-3}
LOOPS=${LOOPS:-20000}
PROTOCOLS=${PROTOCOLS:-prepared simple}
SECONDS_EACH=${SECONDS_EACH:-5}
bench_cluster pooled -c max_parallel_workers_per_gather=0
cp "$WORK/lib/rowsec.so" "$WORK/lib/after.so"
[ -n "${BEFORE_LIB:-}" ] && cp "$BEFORE_LIB" "$WORK/lib/before.so"
bench_pool_rows deals
"${PSQL[@]}" >/dev/null <<'SQL'
CREATE INDEX ON bench.deals (owner_id);
CREATE TABLE bench.open (LIKE bench.deals INCLUDING ALL);
INSERT INTO bench.open SELECT * FROM bench.deals;
ALTER TABLE bench.deals ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.deals FORCE ROW LEVEL SECURITY;
CREATE ROLE pool LOGIN;
GRANT USAGE ON SCHEMA bench TO pool;
GRANT SELECT ON bench.deals, bench.open TO pool;
CREATE POLICY sel ON bench.deals FOR SELECT TO pool USING (rowsec.in_subtree(owner_id));
SELECT rowsec.protect_table('bench.deals', 'id', 'owner_id', false);
VACUUM ANALYZE bench.deals; VACUUM ANALYZE bench.open;
CREATE FUNCTION bench.alternate(n int, a text, b text, protected boolean) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    x bigint;
    t0 timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1..n LOOP
        PERFORM set_config('app.person_id', CASE WHEN i % 2 = 0 THEN a ELSE b END, true);
        IF protected THEN
            SELECT count(*) INTO x FROM bench.deals WHERE id = 100000;
        ELSE
            SELECT count(*) INTO x FROM bench.open WHERE id = 100000;
        END IF;
    END LOOP;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / n;
END
$$;
GRANT EXECUTE ON FUNCTION bench.alternate(int, text, text, boolean) TO pool;
SQL
# script KIND(same|change) QUERY(point|page) TABLE
script() {
    local first=100000 second=99999 q
    [ "$1" = change ] && first=1 second=100000
    printf '\\set k random(1, 10)\n'
    for who in $first $second; do
        if [ "$2" = point ]; then
            q="SELECT * FROM bench.$3 WHERE id = :k * 100000;"
            [ "$who" = 99999 ] && q="SELECT * FROM bench.$3 WHERE id = :k * 100000 - 1;"
        else
            q="SELECT id, amount FROM bench.$3 ORDER BY id LIMIT 50;"
        fi
        printf "BEGIN;\nSELECT set_config('app.person_id', '%s', true);\n%s\nCOMMIT;\n" "$who" "$q"
    done
}
for kind in same change; do
    for q in point page; do
        for tbl in open deals; do script "$kind" "$q" "$tbl" >"$WORK/$kind.$q.$tbl.sql"; done
    done
done
builds=(after)
[ -n "${BEFORE_LIB:-}" ] && builds=(before after)
use_build() {
    cp "$WORK/lib/$1.so" "$WORK/lib/rowsec.so"
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w restart -l "$WORK/log" \
        -o "-p $PORT -k $WORK -c shared_buffers=512MB -c jit=off -c shared_preload_libraries=rowsec -c max_parallel_workers_per_gather=0" >/dev/null
    # Warm the buffers and the directory's first load outside the timed part.
    "$BIN/psql" -X -q -h "$WORK" -p "$PORT" -U pool -d bench -c "SELECT count(*) FROM bench.open" \
        -c "BEGIN" -c "SELECT set_config('app.person_id', '1', true)" -c "SELECT count(*) FROM bench.deals" -c "COMMIT" >/dev/null
}
declare -A t
for round in $(seq "$ROUNDS"); do
    for b in "${builds[@]}"; do
        use_build "$b"
        for m in $PROTOCOLS; do
            for kind in same change; do
                for q in point page; do
                    for tbl in open deals; do
                        t[$b.$m.$kind.$q.$tbl]+=" $(pgbench_latency "$WORK/$kind.$q.$tbl.sql" -M $m -h "$WORK" -p "$PORT" -U pool bench)"
                    done
                done
            done
        done
        for kind in same change; do
            for protected in false true; do
                pair="'100000', '99999'"
                [ "$kind" = change ] && pair="'1', '100000'"
                t[$b.loop.$kind.$protected]+=" $("$BIN/psql" -X -q -At -h "$WORK" -p "$PORT" -U pool -d bench \
                    -c "SELECT round(bench.alternate($LOOPS, $pair, $protected)::numeric, 2)")"
            done
        done
    done
    echo "round $round done" >&2
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '\n%s rounds, pgbench %s s a cell, median ms per two transactions (%s)\n' \
    "$ROUNDS" "$SECONDS_EACH" "$("$BIN/postgres" --version)"
if [ ${#builds[@]} = 2 ]; then
    printf '| protocol | people | statement | no RLS | rowsec before | rowsec after | before/no RLS | after/no RLS |\n|---|---|---|---|---|---|---|---|\n'
else
    printf '| protocol | people | statement | no RLS | rowsec | rowsec/no RLS |\n|---|---|---|---|---|---|\n'
fi
for m in $PROTOCOLS; do
    for kind in same change; do
        for q in point page; do
            # The unprotected copy's cells of every build together: the build does not touch it.
            # shellcheck disable=SC2086
            open=$(median ${t[after.$m.$kind.$q.open]} ${t[before.$m.$kind.$q.open]:-})
            label=$([ "$kind" = same ] && echo "two reps" || echo "CEO, then a rep")
            name=$([ "$q" = point ] && echo "point lookup" || echo "50-row page")
            if [ ${#builds[@]} = 2 ]; then
                # shellcheck disable=SC2086
                before=$(median ${t[before.$m.$kind.$q.deals]})
                # shellcheck disable=SC2086
                after=$(median ${t[after.$m.$kind.$q.deals]})
                printf '| %s | %s | %s | %s | %s | %s | %sx | %sx |\n' "$m" "$label" "$name" "$open" "$before" "$after" \
                    "$(ratio "$before" "$open")" "$(ratio "$after" "$open")"
            else
                # shellcheck disable=SC2086
                rls=$(median ${t[after.$m.$kind.$q.deals]})
                printf '| %s | %s | %s | %s | %s | %sx |\n' "$m" "$label" "$name" "$open" "$rls" "$(ratio "$rls" "$open")"
            fi
        done
    done
done
printf '\nOne PL/pgSQL loop, %s iterations of set_config + the point lookup, microseconds per iteration (median of %s)\n' "$LOOPS" "$ROUNDS"
if [ ${#builds[@]} = 2 ]; then
    printf '| people | no RLS | rowsec before | rowsec after |\n|---|---|---|---|\n'
else
    printf '| people | no RLS | rowsec |\n|---|---|---|\n'
fi
for kind in same change; do
    label=$([ "$kind" = same ] && echo "two reps" || echo "CEO, then a rep")
    # shellcheck disable=SC2086
    open=$(median ${t[after.loop.$kind.false]} ${t[before.loop.$kind.false]:-})
    if [ ${#builds[@]} = 2 ]; then
        # shellcheck disable=SC2086
        printf '| %s | %s | %s | %s |\n' "$label" "$open" "$(median ${t[before.loop.$kind.true]})" "$(median ${t[after.loop.$kind.true]})"
    else
        # shellcheck disable=SC2086
        printf '| %s | %s | %s |\n' "$label" "$open" "$(median ${t[after.loop.$kind.true]})"
    fi
done

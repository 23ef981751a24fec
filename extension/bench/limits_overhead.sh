#!/usr/bin/env bash
# What limits (SPEC item 12) cost a person's statements (a measurement, not a test), side by side
# in one run on 1,000,000 rows: the same statements by the same login through the same policies,
# with limits off (no role has one: `rowsec.configure_limits('{}')`) and on (its role has select
# 1,000,000, update 1,000, delete 100, so nothing fails and every row is counted). Off and on
# alternate, ROUNDS times; the best of each is kept (noise on a shared machine only slows).
#   point lookup, 50-row page, one-row update: pgbench, one client, SECONDS each, mean latency
#   100k-row scan: SELECT count(*) over 100,000 rows, median of 5 inside each round
#   extension/bench/limits_overhead.sh           # builds and installs the release build first
#   SKIP_INSTALL=1 extension/bench/limits_overhead.sh
# Own cluster under /tmp from the private PostgreSQL copy (tests/pg.sh), torn down at the end.
set -euo pipefail

# shellcheck source=extension/bench/common.sh
source "$(dirname "$0")/common.sh"
ROWS=${ROWS:-1000000}
ROUNDS=${ROUNDS:-3}
SECONDS_EACH=${SECONDS_EACH:-5}

bench_cluster limits-bench -c max_parallel_workers_per_gather=0

# shellcheck source=extension/bench/deals.sh
source "$(dirname "$0")/deals.sh"
best() { printf '%s\n' "$@" | sort -n | head -n1; }

declare -A t
for round in $(seq "$ROUNDS"); do
    for mode in off on; do
        if [ "$mode" = on ]; then
            "${PSQL[@]}" -c "SELECT rowsec.configure_limits('{\"managers\": {\"select\": 1000000, \"update\": 1000, \"delete\": 100}}')" >/dev/null
        else
            "${PSQL[@]}" -c "SELECT rowsec.configure_limits('{}')" >/dev/null
        fi
        for q in point page update; do t[${q}_$mode]+=" $(latency $q)"; done
        t[scan_$mode]+=" $(scan)"
    done
    echo "round $round done" >&2
done

# The limit really counts when on: 100,001 rows of a 100,000 select limit fail.
"${PSQL[@]}" -c "SELECT rowsec.configure_limits('{\"managers\": {\"select\": 100000}}')" >/dev/null
check=$("$BIN/psql" -X -q -h "$WORK" -p "$PORT" -U rep -d bench -At -c "SELECT count(*) FROM bench.deals WHERE id <= 100001" 2>&1 || true)

printf '\n%s rows, %s rounds alternating off/on, best of each (%s)\n' "$ROWS" "$ROUNDS" "$("$BIN/postgres" --version)"
printf '| statement | limits off | limits on | ratio |\n|---|---|---|---|\n'
ratio_rows best
echo "with a select limit of 100,000, reading 100,001 rows: $check"

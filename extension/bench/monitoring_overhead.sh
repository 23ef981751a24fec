#!/usr/bin/env bash
# What monitoring and limits (SPEC items 12 to 14) cost a person's statements (a measurement,
# not a test), side by side in one run on 1,000,000 rows: the same statements by the same login
# through the same policies, with both off (`configure_limits('{}')`,
# `configure_monitoring(false, '[]')`) and both on (select 1,000,000, update 1,000, delete 100;
# `reads: true` with the bulk_read and off_hours rules of examples/crm.yaml, so every statement
# leaves a row in rowsec.activity, stored by the background writer meanwhile). Off and on
# alternate, ROUNDS times; each figure is the median over the rounds.
#   point lookup, 50-row page, one-row update: pgbench, one client, SECONDS_EACH each, mean latency
#   100k-row scan: SELECT count(*) over 100,000 rows, median of 5 inside each round
#   extension/bench/monitoring_overhead.sh           # builds and installs the release build first
#   SKIP_INSTALL=1 ROWS=1000000 ROUNDS=5 extension/bench/monitoring_overhead.sh
# Also prints the shared memory rowsec allocates (pg_shmem_allocations) and what the writer
# stored and dropped. Own cluster under /tmp from the private PostgreSQL copy (tests/pg.sh).
set -euo pipefail

# shellcheck source=extension/bench/common.sh
source "$(dirname "$0")/common.sh"
ROWS=${ROWS:-1000000}
ROUNDS=${ROUNDS:-5}
SECONDS_EACH=${SECONDS_EACH:-5}

bench_cluster monitoring-bench -c max_parallel_workers_per_gather=0

# shellcheck source=extension/bench/deals.sh
source "$(dirname "$0")/deals.sh"

RULES='[{"name": "bulk_read", "rows": 2000, "within_seconds": 600, "within": "10m"}, {"name": "off_hours", "from": "08:00", "to": "20:00", "days": [1, 2, 3, 4, 5], "timezone": "Asia/Shanghai"}]'
declare -A t
for round in $(seq "$ROUNDS"); do
    for mode in off on; do
        if [ "$mode" = on ]; then
            "${PSQL[@]}" -c "SELECT rowsec.configure_limits('{\"managers\": {\"select\": 1000000, \"update\": 1000, \"delete\": 100}}')" \
                -c "SELECT rowsec.configure_monitoring(true, '$RULES')" >/dev/null
        else
            "${PSQL[@]}" -c "SELECT rowsec.configure_limits('{}')" -c "SELECT rowsec.configure_monitoring(false, '[]')" >/dev/null
        fi
        for q in point page update; do t[${q}_$mode]+=" $(latency $q)"; done
        t[scan_$mode]+=" $(scan)"
    done
    echo "round $round done" >&2
done

"${PSQL[@]}" -c "SELECT rowsec.flush_activity()" >/dev/null
stored=$("${PSQL[@]}" -At -c "SELECT count(*) || ' rows in rowsec.activity, ' || count(DISTINCT person) || ' person(s)' FROM rowsec.activity")
status=$("${PSQL[@]}" -At -F ' ' -c "SELECT 'buffer ' || buffer_records || ' records, waiting ' || waiting || ', dropped ' || dropped FROM rowsec.activity_status()")
shmem=$("${PSQL[@]}" -At -F ': ' -c "SELECT name, size FROM pg_shmem_allocations WHERE name LIKE 'rowsec%' ORDER BY name")

printf '\n%s rows, %s rounds alternating off/on, median of each (%s)\n' "$ROWS" "$ROUNDS" "$("$BIN/postgres" --version)"
printf '| statement | monitoring and limits off | on | ratio |\n|---|---|---|---|\n'
ratio_rows median
echo "activity stored: $stored; $status"
echo "shared memory (pg_shmem_allocations, bytes; fixed at server start, whatever the number of people):"
echo "$shmem"

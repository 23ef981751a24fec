#!/usr/bin/env bash
# What recording row changes (`audit.data`) costs a writer (a measurement, not a test): a bulk
# INSERT of 100,000 rows and an UPDATE of those 100,000 rows into a table under rowsec's data
# audit, side by side with the same statements into an identical table without it. Each
# statement runs in its own transaction, COMMIT included (the audit chain is sealed at commit),
# three times; the medians and their ratio are printed.
#   extension/bench/audit_overhead.sh            # builds and installs the release build first
#   SKIP_INSTALL=1 extension/bench/audit_overhead.sh
# Own cluster under /tmp from the private PostgreSQL copy (tests/pg.sh), torn down at the end.
set -euo pipefail

# shellcheck source=extension/bench/common.sh
source "$(dirname "$0")/common.sh"
ROWS=${ROWS:-100000}
RUNS=${RUNS:-3}

bench_cluster audit-bench

"${PSQL[@]}" >/dev/null <<'SQL'
CREATE EXTENSION rowsec;
CREATE SCHEMA bench;
CREATE TABLE bench.people (id bigint PRIMARY KEY, manager_id bigint, team text, login text, active boolean);
INSERT INTO bench.people VALUES (1, NULL, 'a', 'postgres', true);
SELECT rowsec.configure('bench.people', 'id', 'manager_id', 'team', 'login', 'active');
CREATE TABLE bench.plain (id bigint PRIMARY KEY, owner_id bigint NOT NULL, name text, amount numeric, note text);
CREATE TABLE bench.audited (LIKE bench.plain INCLUDING ALL);
SELECT rowsec.audit_table('bench.audited', 'id', ARRAY['amount']::name[]);
SQL

# Milliseconds a statement takes as its own transaction (commit included), from the client.
ms() {
    local start end
    start=$(date +%s%N)
    "${PSQL[@]}" -c "$1"
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}

declare -A t
for run in $(seq "$RUNS"); do
    for table in plain audited; do
        "${PSQL[@]}" -c "TRUNCATE bench.$table" -c "VACUUM ANALYZE bench.$table"
        t[insert_$table]+=" $(ms "INSERT INTO bench.$table SELECT g, g % 100, 'name ' || g, g * 1.5, 'note' FROM generate_series(1, $ROWS) g")"
        t[update_$table]+=" $(ms "UPDATE bench.$table SET name = name || 'x', amount = amount + 1")"
    done
    echo "run $run done" >&2
done

audited_rows=$("${PSQL[@]}" -At -c "SELECT count(*) FROM rowsec.audit_log")
printf '\n%s rows, median of %s runs (each statement its own transaction, commit included)\n' "$ROWS" "$RUNS"
printf '| statement | without audit | with audit | ratio |\n|---|---|---|---|\n'
for op in insert update; do
    # shellcheck disable=SC2086
    plain=$(median ${t[${op}_plain]})
    # shellcheck disable=SC2086
    audited=$(median ${t[${op}_audited]})
    printf '| %s %s rows | %s ms | %s ms | %sx |\n' "$op" "$ROWS" "$plain" "$audited" \
        "$(awk -v a="$audited" -v p="$plain" 'BEGIN { printf "%.1f", a / p }')"
done
echo "audit rows written: $audited_rows; chain verifies: $("${PSQL[@]}" -At -c "SELECT coalesce(rowsec.verify_audit()::text, 'yes')")"

#!/usr/bin/env bash
# What recording row changes (`audit.data`) costs a writer (a measurement, not a test): a bulk
# INSERT of 100,000 rows and an UPDATE of those 100,000 rows into a table under rowsec's data
# audit, side by side with the same statements into an identical table without it, on the
# extension (database bench) and on the SQL backend (database audit_sql, its PL/pgSQL
# trigger). Each statement runs in its own transaction, COMMIT included (both backends seal the
# audit chain at commit), three times, the tables in turn; the medians and their ratio are
# printed.
#   extension/bench/audit_overhead.sh            # builds and installs the release build first
#   SKIP_INSTALL=1 extension/bench/audit_overhead.sh
# Own cluster under /tmp from the private PostgreSQL copy (tests/pg.sh), torn down at the end.
set -euo pipefail

# shellcheck source=extension/bench/common.sh
source "$(dirname "$0")/common.sh"
ROWS=${ROWS:-100000}
RUNS=${RUNS:-3}

bench_cluster audit-bench

# The same tables in both databases, after each backend's install.
TABLES=$(cat <<'SQL'
CREATE SCHEMA bench;
CREATE TABLE bench.people (id bigint PRIMARY KEY, manager_id bigint, team text, login text, active boolean);
INSERT INTO bench.people VALUES (1, NULL, 'a', 'postgres', true);
SELECT rowsec.configure('bench.people', 'id', 'manager_id', 'team', 'login', 'active');
CREATE TABLE bench.plain (id bigint PRIMARY KEY, owner_id bigint NOT NULL, name text, amount numeric, note text);
CREATE TABLE bench.audited (LIKE bench.plain INCLUDING ALL);
SELECT rowsec.audit_table('bench.audited', 'id', ARRAY['amount']::name[]);
SQL
)
"${PSQL[@]}" >/dev/null -c "CREATE EXTENSION rowsec" -c "CREATE DATABASE audit_sql"
"${PSQL[@]}" >/dev/null <<<"$TABLES"
PSQL_SQL=("${PSQL[@]}")
PSQL_SQL[${#PSQL_SQL[@]}-1]=audit_sql
grep -v '^--!' "$ROOT/sql/backend/rowsec.sql" | sed "s/{{rowsec_version}}/'bench'/" | "${PSQL_SQL[@]}" >/dev/null
"${PSQL_SQL[@]}" >/dev/null <<<"$TABLES"

# Milliseconds a statement takes as its own transaction (commit included), from the client;
# $1: the database's psql (an array's name), $2: the statement.
ms() {
    local -n client=$1
    local start end
    start=$(date +%s%N)
    "${client[@]}" -c "$2"
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}

declare -A t
for run in $(seq "$RUNS"); do
    for backend in extension sql; do
        client=PSQL
        [ "$backend" = sql ] && client=PSQL_SQL
        for table in plain audited; do
            ms "$client" "TRUNCATE bench.$table" >/dev/null
            ms "$client" "VACUUM ANALYZE bench.$table" >/dev/null
            t[${backend}_insert_$table]+=" $(ms "$client" "INSERT INTO bench.$table SELECT g, g % 100, 'name ' || g, g * 1.5, 'note' FROM generate_series(1, $ROWS) g")"
            t[${backend}_update_$table]+=" $(ms "$client" "UPDATE bench.$table SET name = name || 'x', amount = amount + 1")"
        done
    done
    echo "run $run done" >&2
done

printf '\n%s rows, median of %s runs (each statement its own transaction, commit included)\n' "$ROWS" "$RUNS"
printf '| backend | statement | without audit | with audit | ratio |\n|---|---|---|---|---|\n'
for backend in extension sql; do
    for op in insert update; do
        # shellcheck disable=SC2086
        plain=$(median ${t[${backend}_${op}_plain]})
        # shellcheck disable=SC2086
        audited=$(median ${t[${backend}_${op}_audited]})
        printf '| %s | %s %s rows | %s ms | %s ms | %sx |\n' "$backend" "$op" "$ROWS" "$plain" "$audited" \
            "$(awk -v a="$audited" -v p="$plain" 'BEGIN { printf "%.1f", a / p }')"
    done
done
echo "audit rows written: extension $("${PSQL[@]}" -At -c "SELECT count(*) FROM rowsec.audit_log WHERE kind = 'data'"), chain verifies: $("${PSQL[@]}" -At -c "SELECT coalesce(rowsec.verify_audit()::text, 'yes')"); SQL backend $("${PSQL_SQL[@]}" -At -c "SELECT count(*) FROM rowsec.audit_log WHERE kind = 'data'"), chain verifies: $("${PSQL_SQL[@]}" -At -c "SELECT coalesce(rowsec.verify_audit()::text, 'yes')")"

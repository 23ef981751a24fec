#!/usr/bin/env bash
# The cheap statements of issue 12 measured with thousands of executions per cell (a
# measurement, not a test): bench.sh times each cell as the median of 5 psql executions, too
# few to tell 1.05x from 1.3x at 0.1 ms. Here pgbench runs each statement for SECONDS_EACH as
# one login, on 100,000 people (fan-out 8) and 1,000,000 rows: the CEO (login ceo, sees every
# row) and a rep without subordinates (login rep, 10 rows), a point lookup and a one-row update
# by key, prepared and simple protocol, through `rowsec.in_subtree(owner_id)` (identity: login)
# and on an unprotected copy of the table, alternating, ROUNDS times; medians and ratios.
#   SKIP_INSTALL=1 ROUNDS=3 SECONDS_EACH=5 extension/bench/cheap_statements.sh
set -euo pipefail

# shellcheck source=extension/bench/common.sh
source "$(dirname "$0")/common.sh"
ROWS=1000000
ROUNDS=${ROUNDS:-3}
SECONDS_EACH=${SECONDS_EACH:-5}
bench_cluster cheap -c max_parallel_workers_per_gather=0
"${PSQL[@]}" >/dev/null <<SQL
CREATE EXTENSION rowsec;
CREATE SCHEMA bench;
CREATE TABLE bench.people (id bigint PRIMARY KEY, manager_id bigint, team text, login text, active boolean);
INSERT INTO bench.people SELECT g, CASE WHEN g > 1 THEN (g - 2) / 8 + 1 END, NULL, CASE WHEN g = 1 THEN 'ceo' WHEN g = 100000 THEN 'rep' END, true FROM generate_series(1, 100000) g;
SELECT rowsec.configure('bench.people', 'id', 'manager_id', 'team', 'login', 'active');
CREATE TABLE bench.deals (id bigint PRIMARY KEY, owner_id bigint NOT NULL, name text, amount numeric);
INSERT INTO bench.deals SELECT g, (g - 1) % 100000 + 1, 'deal ' || g, g * 1.5 FROM generate_series(1, $ROWS) g;
CREATE INDEX ON bench.deals (owner_id);
CREATE TABLE bench.open (LIKE bench.deals INCLUDING ALL);
INSERT INTO bench.open SELECT * FROM bench.deals;
ALTER TABLE bench.deals ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.deals FORCE ROW LEVEL SECURITY;
CREATE ROLE staff;
CREATE ROLE ceo LOGIN IN ROLE staff;
CREATE ROLE rep LOGIN IN ROLE staff;
GRANT USAGE ON SCHEMA bench TO staff;
GRANT SELECT, UPDATE ON bench.deals, bench.open TO staff;
CREATE POLICY sel ON bench.deals FOR SELECT TO staff USING (rowsec.in_subtree(owner_id));
CREATE POLICY upd ON bench.deals FOR UPDATE TO staff USING (rowsec.in_subtree(owner_id));
SELECT rowsec.protect_table('bench.deals', 'id', 'owner_id', false);
VACUUM ANALYZE bench.deals; VACUUM ANALYZE bench.open;
SQL
# The rep (person 100000) owns rows 100000, 200000, ...; the CEO reads any row.
for tbl in deals open; do
  printf '\\set id random(1, 1000000)\nSELECT * FROM bench.%s WHERE id = :id;\n' "$tbl" >"$WORK/p_ceo_$tbl.sql"
  printf '\\set id random(1, 1000000)\nUPDATE bench.%s SET amount = amount + 1 WHERE id = :id;\n' "$tbl" >"$WORK/u_ceo_$tbl.sql"
  printf '\\set k random(1, 10)\nSELECT * FROM bench.%s WHERE id = :k * 100000;\n' "$tbl" >"$WORK/p_rep_$tbl.sql"
  printf '\\set k random(1, 10)\nUPDATE bench.%s SET amount = amount + 1 WHERE id = :k * 100000;\n' "$tbl" >"$WORK/u_rep_$tbl.sql"
done
lat() { pgbench_latency "$WORK/$1.sql" -M "$3" -h "$WORK" -p "$PORT" -U "$2" bench; }
declare -A t
for round in $(seq "$ROUNDS"); do
    for who in ceo rep; do
        for m in prepared simple; do
            for q in p u; do
                for side in open deals; do t[$who.$m.$q.$side]+=" $(lat "${q}_${who}_$side" "$who" "$m")"; done
            done
        done
    done
    echo "round $round done" >&2
done
printf '\n%s rounds, pgbench %s s a cell, median ms (%s)\n' "$ROUNDS" "$SECONDS_EACH" "$("$BIN/postgres" --version)"
printf '| login | protocol | statement | no RLS | rowsec | ratio |\n|---|---|---|---|---|---|\n'
for who in ceo rep; do
    for m in prepared simple; do
        for q in p u; do
            # shellcheck disable=SC2086
            open=$(median ${t[$who.$m.$q.open]})
            # shellcheck disable=SC2086
            rls=$(median ${t[$who.$m.$q.deals]})
            name=$([ "$q" = p ] && echo "point lookup" || echo "one-row update")
            printf '| %s | %s | %s | %s | %s | %sx |\n' "$who" "$m" "$name" "$open" "$rls" "$(awk -v a="$rls" -v b="$open" 'BEGIN { printf "%.2f", a / b }')"
        done
    done
done

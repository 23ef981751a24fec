# The 1,000,000-row setup the limits and monitoring benchmarks share (sourced after common.sh's
# bench_cluster): a manager `rep` who sees every row of bench.deals through rowsec.in_subtree,
# the pgbench scripts point/page/update, `latency NAME` and `scan` that measure as rep, and
# `ratio_rows` that prints their table.
# Needs ROWS and SECONDS_EACH.

# rep (person 1) manages people 2..1000; the rows belong to all of them, so rep sees every row
# through rowsec.in_subtree, as a manager does.
"${PSQL[@]}" >/dev/null <<SQL
CREATE EXTENSION rowsec;
CREATE SCHEMA bench;
CREATE TABLE bench.people (id bigint PRIMARY KEY, manager_id bigint, team text, login text, active boolean);
INSERT INTO bench.people SELECT g, CASE WHEN g > 1 THEN 1 END, 't', CASE WHEN g = 1 THEN 'rep' END, true FROM generate_series(1, 1000) g;
SELECT rowsec.configure('bench.people', 'id', 'manager_id', 'team', 'login', 'active');
CREATE TABLE bench.deals (id bigint PRIMARY KEY, owner_id bigint NOT NULL, name text, amount numeric);
INSERT INTO bench.deals SELECT g, g % 1000 + 1, 'deal ' || g, g * 1.5 FROM generate_series(1, $ROWS) g;
CREATE INDEX ON bench.deals (owner_id);
ALTER TABLE bench.deals ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.deals FORCE ROW LEVEL SECURITY;
CREATE ROLE managers;
CREATE ROLE rep LOGIN IN ROLE managers;
GRANT USAGE ON SCHEMA bench TO managers;
GRANT SELECT, UPDATE ON bench.deals TO managers;
CREATE POLICY sel ON bench.deals FOR SELECT TO managers USING (rowsec.in_subtree(owner_id));
CREATE POLICY upd ON bench.deals FOR UPDATE TO managers USING (rowsec.in_subtree(owner_id));
SELECT rowsec.protect_table('bench.deals', 'id', 'owner_id', false);
VACUUM ANALYZE bench.deals;
SQL

cat >"$WORK/point.sql" <<'SQL'
\set id random(1, 1000000)
SELECT * FROM bench.deals WHERE id = :id;
SQL
cat >"$WORK/page.sql" <<'SQL'
\set id random(1, 999000)
SELECT * FROM bench.deals WHERE id > :id ORDER BY id LIMIT 50;
SQL
cat >"$WORK/update.sql" <<'SQL'
\set id random(1, 1000000)
UPDATE bench.deals SET amount = amount + 1 WHERE id = :id;
SQL

# Mean latency in ms of a pgbench script, as rep.
latency() { pgbench_latency "$WORK/$1.sql" -h "$WORK" -p "$PORT" -U rep bench; }
# Median ms of the 100k-row scan, as rep, measured by the server.
scan() {
    for _ in 1 2 3 4 5; do
        "$BIN/psql" -X -q -h "$WORK" -p "$PORT" -U rep -d bench -At -c \
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM bench.deals WHERE id <= 100000" |
            sed -n 's/.*"Execution Time": \([0-9.]*\).*/\1/p'
    done | sort -n | sed -n 3p
}

# ratio_rows AGGREGATE: one table row per statement from the timings in `t` (keys <q>_off and
# <q>_on), each side reduced by AGGREGATE (a function printing one number of its arguments).
ratio_rows() {
    local q off on name
    for q in point page update scan; do
        # shellcheck disable=SC2086
        off=$("$1" ${t[${q}_off]})
        # shellcheck disable=SC2086
        on=$("$1" ${t[${q}_on]})
        case $q in
            point) name="point lookup (pgbench, mean latency)" ;;
            page) name="50-row page (pgbench, mean latency)" ;;
            update) name="one-row update (pgbench, mean latency)" ;;
            scan) name="count(*) over 100,000 rows (execution time, median of 5)" ;;
        esac
        printf '| %s | %s ms | %s ms | %sx |\n' "$name" "$off" "$on" "$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }')"
    done
}

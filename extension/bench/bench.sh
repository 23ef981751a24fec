#!/usr/bin/env bash
# rowsec benchmark (not a test): one command, own cluster under /tmp, torn down at the end.
#   extension/bench/bench.sh                         # builds and installs the release build first
#   SKIP_INSTALL=1 extension/bench/bench.sh
#   PEOPLE=10000 ROWS=100000 extension/bench/bench.sh   # a quick check at a small size
# Like tests/run.sh it uses the private PostgreSQL copy under target/pg (never the system's),
# unless ROWSEC_PG_BIN names another bin directory (ROWSEC_PG_VERSION=18 for the 18 copy).
#
# Side by side in one run, on PEOPLE people (default 100,000) in a tree of fan-out 8 and ROWS
# rows (default 1,000,000), the same data in four tables:
#   plain   no row-level security, no filter (what the person would see if they saw everything)
#   any     no row-level security, the application passing the visible owners: owner_id = ANY($1)
#   cte     row-level security with the recursive CTE policy a DBA writes by hand
#   ltree   row-level security with an ltree path policy (gist index on the path)
#   rowsec  row-level security with rowsec.in_subtree(owner_id)
#   sql     the SQL backend (issue 15: `rowsec compile --backend sql`, sql/backend/rowsec.sql) in
#           a second database of the same cluster (the extension and it both live in schema
#           rowsec), with the policy the generator writes: USING `owner_id = ANY ((SELECT
#           rowsec.subtree())::bigint[])` (the person's subtree once per query, usable as an
#           index condition); under identity login (the login phase), for people who see an
#           eighth of the directory or more (chosen when planning), an EXISTS probe of its
#           closure table (per row or hashed); WITH CHECK an EXISTS probe.
#           SQL_SHAPES="sql sqlany sqlexists sqlin sqlprobe" adds other shapes of the same
#           policy for comparison: sqlany the array for everyone in both phases (the login
#           phase's policy without the second shape), sqlexists the correlated EXISTS for both (the planner may probe
#           the closure per row or hash it), sqlin `owner_id IN (SELECT descendant ...)` (a
#           hashed subplan), sqlprobe the EXISTS with OFFSET 0 (never hashed: one probe per row).
# Personas: the people whose subtrees are closest to 1, 9, 73, 4,681 and everyone (the CEO).
# Queries: point lookup by key, `SELECT id, amount FROM t ORDER BY id LIMIT 50`,
# `SELECT count(*), sum(amount) FROM t`, a one-row insert, a one-row update; each unprepared
# (literal SQL) and prepared (PREPARE/EXECUTE: PostgreSQL's plan cache, as protocol-level
# prepared statements of JDBC, psycopg 3, pgx use it; after 5 custom plans it may keep a generic
# one, and a statement without parameters always runs its generic plan), in two connection modes:
#   pooled  one connection (role `pool`), people in turn between transactions with
#           SET LOCAL app.person_id, the CEO first, then ever smaller subtrees
#   login   one connection per person, logged in as that person's role
# Each cell: ROUNDS (default 11) executions per persona, the first WARMUP (default 6) dropped
# (the plan cache has chosen its plan by then), the median of the rest, timed by psql (\timing,
# client side). The table gives each policy's median over the best of `plain` and `any`, and
# rowsec's over `any` alone (the application filtering by the same owners).
# Then the plans rowsec ran (pooled, prepared) and planning times (EXPLAIN ANALYZE, SUMMARY).
# Settings: max_parallel_workers_per_gather = 0 (plans comparable on a small machine),
# work_mem = 64MB (the hand-written policies' hashed subplans fit in memory, as a DBA would set).
set -euo pipefail
SQL_SHAPES=${SQL_SHAPES:-sql}

# shellcheck source=extension/bench/common.sh
source "$(dirname "$0")/common.sh"
PEOPLE=${PEOPLE:-100000}
ROWS=${ROWS:-1000000}
ROUNDS=${ROUNDS:-11}
WARMUP=${WARMUP:-6}
[ "$ROUNDS" -gt "$WARMUP" ] || { echo "ROUNDS must be larger than WARMUP" >&2; exit 2; }

bench_cluster bench -c max_parallel_workers_per_gather=0 -c work_mem=64MB
echo "== PostgreSQL $("$BIN/postgres" --version | awk '{print $3}'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"

echo "== setup: $PEOPLE people (fan-out 8), $ROWS rows in each of 4 tables"
"${PSQL[@]}" >/dev/null <<SQL
CREATE EXTENSION rowsec;
CREATE EXTENSION ltree;
CREATE SCHEMA bench;
-- A complete tree of fan-out 8 in breadth-first order: person i manages 8(i-1)+2 .. 8(i-1)+9.
CREATE TABLE bench.people (id bigint PRIMARY KEY, manager_id bigint, team bigint, login text, active boolean NOT NULL, path ltree);
INSERT INTO bench.people
SELECT id, CASE WHEN id > 1 THEN (id - 2) / 8 + 1 END, id / 10, 'u' || id, true
FROM generate_series(1, $PEOPLE) id;
CREATE INDEX ON bench.people (manager_id);
CREATE UNIQUE INDEX ON bench.people (login);
WITH RECURSIVE p(id, path) AS (
    SELECT 1::bigint, '1'::ltree
    UNION ALL
    SELECT c.id, p.path || c.id::text FROM bench.people c JOIN p ON c.manager_id = p.id)
UPDATE bench.people SET path = p.path FROM p WHERE people.id = p.id;
CREATE INDEX ON bench.people USING gist (path);
VACUUM ANALYZE bench.people;

CREATE SEQUENCE bench.new_ids START 100000000;
CREATE TABLE bench.t_plain (id bigint PRIMARY KEY DEFAULT nextval('bench.new_ids'), owner_id bigint NOT NULL, amount numeric NOT NULL, pad text);
INSERT INTO bench.t_plain
SELECT g, 1 + ((g::bigint * 2654435761) % $PEOPLE), (g % 1000)::numeric, 'x'
FROM generate_series(1, $ROWS) g;
CREATE TABLE bench.t_cte (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.t_ltree (LIKE bench.t_plain INCLUDING ALL);
CREATE TABLE bench.t_rowsec (LIKE bench.t_plain INCLUDING ALL);
INSERT INTO bench.t_cte SELECT * FROM bench.t_plain;
INSERT INTO bench.t_ltree SELECT * FROM bench.t_plain;
INSERT INTO bench.t_rowsec SELECT * FROM bench.t_plain;
CREATE INDEX ON bench.t_plain (owner_id);
CREATE INDEX ON bench.t_cte (owner_id);
CREATE INDEX ON bench.t_ltree (owner_id);
CREATE INDEX ON bench.t_rowsec (owner_id);
VACUUM ANALYZE bench.t_plain, bench.t_cte, bench.t_ltree, bench.t_rowsec;

-- Who is asking, for the hand-written policies: the setting (pooled) or the login (redefined
-- before the login phase), as rowsec.configure's identity says for rowsec.
CREATE FUNCTION bench.me() RETURNS bigint STABLE LANGUAGE sql
    AS \$\$ SELECT nullif(current_setting('app.person_id', true), '')::bigint \$\$;
ALTER TABLE bench.t_cte ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.t_cte FORCE ROW LEVEL SECURITY;
CREATE POLICY subtree ON bench.t_cte
    USING (owner_id IN (WITH RECURSIVE sub(id) AS (
                            SELECT bench.me()
                            UNION ALL
                            SELECT p.id FROM bench.people p JOIN sub ON p.manager_id = sub.id)
                        SELECT id FROM sub));
ALTER TABLE bench.t_ltree ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.t_ltree FORCE ROW LEVEL SECURITY;
CREATE POLICY subtree ON bench.t_ltree
    USING (owner_id IN (SELECT id FROM bench.people
                        WHERE path <@ (SELECT path FROM bench.people WHERE id = bench.me())));
ALTER TABLE bench.t_rowsec ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.t_rowsec FORCE ROW LEVEL SECURITY;
CREATE POLICY subtree ON bench.t_rowsec USING (rowsec.in_subtree(owner_id));
SELECT rowsec.configure('bench.people', 'id', 'manager_id', 'team', 'login', 'active', 'setting', 'app.person_id');

CREATE ROLE pool LOGIN;
GRANT USAGE ON SCHEMA bench TO pool;
GRANT SELECT, INSERT, UPDATE ON bench.t_plain, bench.t_cte, bench.t_ltree, bench.t_rowsec TO pool;
GRANT SELECT ON bench.people TO pool;
GRANT USAGE ON SEQUENCE bench.new_ids TO pool;

-- Personas: the last person of each level of the tree (their subtrees are complete: 1, 9, 73,
-- ...) and the CEO; for each target the one whose subtree size is closest.
CREATE TABLE bench.personas AS
WITH lasts AS (SELECT DISTINCT least((8::numeric ^ (k + 1) - 1) / 7, $PEOPLE)::bigint AS id FROM generate_series(0, 12) k),
sizes AS (SELECT id, cardinality(rowsec.subtree_of(id)) AS n FROM lasts),
picked AS (
    SELECT DISTINCT ON (p.id) t.target, p.id, p.n
    FROM unnest(ARRAY[$PEOPLE, 4681, 73, 9, 1]) WITH ORDINALITY t(target, ord)
    CROSS JOIN LATERAL (SELECT id, n FROM sizes ORDER BY abs(n - t.target), id DESC LIMIT 1) p
    ORDER BY p.id, t.ord)
SELECT target, id, n,
       (SELECT min(id) FROM bench.t_plain WHERE owner_id = picked.id) AS own_key
FROM picked;
SQL

echo "== setup of the SQL backend's database (bench_sql): the same people and rows, sql/backend/rowsec.sql"
"${PSQL[@]}" -c "CREATE DATABASE bench_sql" >/dev/null
PSQL_SQL=("${PSQL[@]}")
PSQL_SQL[${#PSQL_SQL[@]}-1]=bench_sql
"${PSQL_SQL[@]}" >/dev/null <<SQL
CREATE SCHEMA bench;
CREATE TABLE bench.people (id bigint PRIMARY KEY, manager_id bigint, team bigint, login text, active boolean NOT NULL);
INSERT INTO bench.people
SELECT id, CASE WHEN id > 1 THEN (id - 2) / 8 + 1 END, id / 10, 'u' || id, true
FROM generate_series(1, $PEOPLE) id;
CREATE INDEX ON bench.people (manager_id);
CREATE UNIQUE INDEX ON bench.people (login);
CREATE SEQUENCE bench.new_ids START 100000000;
CREATE TABLE bench.t_sql (id bigint PRIMARY KEY DEFAULT nextval('bench.new_ids'), owner_id bigint NOT NULL, amount numeric NOT NULL, pad text);
INSERT INTO bench.t_sql
SELECT g, 1 + ((g::bigint * 2654435761) % $PEOPLE), (g % 1000)::numeric, 'x'
FROM generate_series(1, $ROWS) g;
CREATE INDEX ON bench.t_sql (owner_id);
CREATE TABLE bench.t_sqlany (LIKE bench.t_sql INCLUDING ALL);
CREATE TABLE bench.t_sqlexists (LIKE bench.t_sql INCLUDING ALL);
CREATE TABLE bench.t_sqlin (LIKE bench.t_sql INCLUDING ALL);
CREATE TABLE bench.t_sqlprobe (LIKE bench.t_sql INCLUDING ALL);
SQL
for shape in $SQL_SHAPES; do
    [ "$shape" = sql ] || "${PSQL_SQL[@]}" -c "INSERT INTO bench.t_$shape SELECT * FROM bench.t_sql" >/dev/null
done
grep -v '^--!' "$ROOT/sql/backend/rowsec.sql" | sed "s/{{rowsec_version}}/'bench'/" | "${PSQL_SQL[@]}" >/dev/null
start=$(date +%s%N)
"${PSQL_SQL[@]}" -c "SELECT rowsec.configure('bench.people', 'id', 'manager_id', 'team', 'login', 'active', 'setting', 'app.person_id')" >/dev/null
echo "SQL backend: configure (copies of the directory and its closure table, from nothing): $(( ($(date +%s%N) - start) / 1000000 )) ms, $("${PSQL_SQL[@]}" -At -c "SELECT count(*) FROM rowsec.closure") closure rows"
"${PSQL_SQL[@]}" >/dev/null <<'SQL'
VACUUM ANALYZE bench.people, bench.t_sql, bench.t_sqlany, bench.t_sqlexists, bench.t_sqlin, bench.t_sqlprobe, rowsec.people, rowsec.closure, rowsec.team_members, rowsec.login_people;
ALTER TABLE bench.t_sql ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.t_sql FORCE ROW LEVEL SECURITY;
-- What `rowsec compile --backend sql` writes for a subtree scope (generator/src/sql/extension_api.rs).
-- (Identity setting; the login phase below replaces it with what the generator writes for login.)
CREATE POLICY subtree ON bench.t_sql USING (t_sql.owner_id = ANY ((SELECT rowsec.subtree())::bigint[]))
    WITH CHECK (EXISTS (SELECT FROM rowsec.closure rowsec_c
                        WHERE rowsec_c.ancestor = (SELECT rowsec.current_person()) AND rowsec_c.descendant = t_sql.owner_id));
ALTER TABLE bench.t_sqlany ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.t_sqlany FORCE ROW LEVEL SECURITY;
CREATE POLICY subtree ON bench.t_sqlany USING (t_sqlany.owner_id = ANY ((SELECT rowsec.subtree())::bigint[]))
    WITH CHECK (EXISTS (SELECT FROM rowsec.closure rowsec_c
                        WHERE rowsec_c.ancestor = (SELECT rowsec.current_person()) AND rowsec_c.descendant = t_sqlany.owner_id));
ALTER TABLE bench.t_sqlexists ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.t_sqlexists FORCE ROW LEVEL SECURITY;
CREATE POLICY subtree ON bench.t_sqlexists USING (EXISTS (SELECT FROM rowsec.closure rowsec_c
    WHERE rowsec_c.ancestor = (SELECT rowsec.current_person()) AND rowsec_c.descendant = t_sqlexists.owner_id));
ALTER TABLE bench.t_sqlin ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.t_sqlin FORCE ROW LEVEL SECURITY;
CREATE POLICY subtree ON bench.t_sqlin USING (owner_id IN (SELECT rowsec_c.descendant FROM rowsec.closure rowsec_c
    WHERE rowsec_c.ancestor = (SELECT rowsec.current_person())));
ALTER TABLE bench.t_sqlprobe ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.t_sqlprobe FORCE ROW LEVEL SECURITY;
CREATE POLICY subtree ON bench.t_sqlprobe USING (EXISTS (SELECT FROM rowsec.closure rowsec_c
    WHERE rowsec_c.ancestor = (SELECT rowsec.current_person()) AND rowsec_c.descendant = t_sqlprobe.owner_id OFFSET 0));
GRANT USAGE ON SCHEMA bench TO pool;
GRANT SELECT, INSERT, UPDATE ON bench.t_sql, bench.t_sqlany, bench.t_sqlexists, bench.t_sqlin, bench.t_sqlprobe TO pool;
GRANT USAGE ON SEQUENCE bench.new_ids TO pool;
SQL

mapfile -t PERSONAS < <("${PSQL[@]}" -At -F' ' -c "SELECT id, n, own_key FROM bench.personas ORDER BY n DESC")
for line in "${PERSONAS[@]}"; do
    read -r id _ _ <<<"$line"
    "${PSQL[@]}" -At -c "SELECT rowsec.subtree_of($id)::text" >"$WORK/owners_$id"
    "${PSQL[@]}" >/dev/null <<SQL
CREATE ROLE u$id LOGIN;
GRANT USAGE ON SCHEMA bench TO u$id;
GRANT SELECT, INSERT, UPDATE ON bench.t_plain, bench.t_cte, bench.t_ltree, bench.t_rowsec TO u$id;
GRANT SELECT ON bench.people TO u$id;
GRANT USAGE ON SEQUENCE bench.new_ids TO u$id;
SQL
    "${PSQL_SQL[@]}" >/dev/null <<SQL
GRANT USAGE ON SCHEMA bench TO u$id;
GRANT SELECT, INSERT, UPDATE ON bench.t_sql, bench.t_sqlany, bench.t_sqlexists, bench.t_sqlin, bench.t_sqlprobe TO u$id;
GRANT USAGE ON SEQUENCE bench.new_ids TO u$id;
SQL
done
printf 'personas (id: owners visible, rows visible):'
for line in "${PERSONAS[@]}"; do
    read -r id n _ <<<"$line"
    printf ' %s: %s, %s;' "$id" "$n" "$("${PSQL[@]}" -At -c "SELECT count(*) FROM bench.t_plain WHERE owner_id = ANY(rowsec.subtree_of($id))")"
done
echo

QUERIES=(point page agg insert update)
read -r -a SHAPES <<<"$SQL_SHAPES"
POLICIES=(plain any cte ltree rowsec "${SHAPES[@]}")

table_of() {
    case $1 in plain | any) echo bench.t_plain ;; *) echo "bench.t_$1" ;; esac
}

# The database a policy's table is in: the SQL backend's shapes in bench_sql.
db_of() {
    case $1 in sql*) echo bench_sql ;; *) echo bench ;; esac
}

# statement POLICY QUERY PREPARED(0|1) PERSON KEY: the SQL to time; with PREPARED=1 the
# EXECUTE of statement q (prepare_of gives its PREPARE).
statement() {
    local policy=$1 query=$2 prepared=$3 person=$4 key=$5 t owners
    t=$(table_of "$policy")
    owners="'$(cat "$WORK/owners_$person")'"
    if [ "$prepared" = 1 ]; then
        case $policy:$query in
            any:point | any:update) echo "EXECUTE q($key, $owners);" ;;
            any:insert) echo "EXECUTE q($person, $owners);" ;;
            any:*) echo "EXECUTE q($owners);" ;;
            *:point | *:update) echo "EXECUTE q($key);" ;;
            *:insert) echo "EXECUTE q($person);" ;;
            *) echo "EXECUTE q;" ;;
        esac
        return
    fi
    local filter="" and=""
    if [ "$policy" = any ]; then
        filter=" WHERE owner_id = ANY($owners::bigint[])"
        and=" AND owner_id = ANY($owners::bigint[])"
    fi
    case $query in
        point) echo "SELECT id, amount FROM $t WHERE id = $key$and;" ;;
        page) echo "SELECT id, amount FROM $t$filter ORDER BY id LIMIT 50;" ;;
        agg) echo "SELECT count(*), sum(amount) FROM $t$filter;" ;;
        insert)
            if [ "$policy" = any ]; then
                echo "INSERT INTO $t (owner_id, amount, pad) SELECT $person, 1, 'x' WHERE $person = ANY($owners::bigint[]);"
            else
                echo "INSERT INTO $t (owner_id, amount, pad) VALUES ($person, 1, 'x');"
            fi ;;
        update) echo "UPDATE $t SET amount = amount + 1 WHERE id = $key$and;" ;;
    esac
}

prepare_of() {
    local policy=$1 query=$2 t
    t=$(table_of "$policy")
    if [ "$policy" = any ]; then
        case $query in
            point) echo "PREPARE q(bigint, bigint[]) AS SELECT id, amount FROM $t WHERE id = \$1 AND owner_id = ANY(\$2);" ;;
            page) echo "PREPARE q(bigint[]) AS SELECT id, amount FROM $t WHERE owner_id = ANY(\$1) ORDER BY id LIMIT 50;" ;;
            agg) echo "PREPARE q(bigint[]) AS SELECT count(*), sum(amount) FROM $t WHERE owner_id = ANY(\$1);" ;;
            insert) echo "PREPARE q(bigint, bigint[]) AS INSERT INTO $t (owner_id, amount, pad) SELECT \$1, 1, 'x' WHERE \$1 = ANY(\$2);" ;;
            update) echo "PREPARE q(bigint, bigint[]) AS UPDATE $t SET amount = amount + 1 WHERE id = \$1 AND owner_id = ANY(\$2);" ;;
        esac
        return
    fi
    case $query in
        point) echo "PREPARE q(bigint) AS SELECT id, amount FROM $t WHERE id = \$1;" ;;
        page) echo "PREPARE q AS SELECT id, amount FROM $t ORDER BY id LIMIT 50;" ;;
        agg) echo "PREPARE q AS SELECT count(*), sum(amount) FROM $t;" ;;
        insert) echo "PREPARE q(bigint) AS INSERT INTO $t (owner_id, amount, pad) VALUES (\$1, 1, 'x');" ;;
        update) echo "PREPARE q(bigint) AS UPDATE $t SET amount = amount + 1 WHERE id = \$1;" ;;
    esac
}

# One timed transaction: the tag line, then psql's "Time:" line for the statement alone.
timed() {
    local tag=$1 setting=$2 sql=$3
    echo "BEGIN;"
    if [ -n "$setting" ]; then echo "SET LOCAL app.person_id = '$setting';"; fi
    echo "\\echo @ $tag"
    echo "\\timing on"
    echo "$sql"
    echo "\\timing off"
    echo "COMMIT;"
}

# pooled_script POLICY PREPARED: one session, every query, people in turn (CEO first).
pooled_script() {
    local policy=$1 prepared=$2 query r line id key
    for query in "${QUERIES[@]}"; do
        if [ "$prepared" = 1 ]; then prepare_of "$policy" "$query"; fi
        for ((r = 1; r <= ROUNDS; r++)); do
            for line in "${PERSONAS[@]}"; do
                read -r id _ key <<<"$line"
                timed "$policy pooled $prepared $query $id $r" "$id" "$(statement "$policy" "$query" "$prepared" "$id" "$key")"
            done
        done
        if [ "$prepared" = 1 ]; then echo "DEALLOCATE q;"; fi
    done
}

# login_script POLICY PREPARED ID KEY: one session of one person.
login_script() {
    local policy=$1 prepared=$2 id=$3 key=$4 query r
    for query in "${QUERIES[@]}"; do
        if [ "$prepared" = 1 ]; then prepare_of "$policy" "$query"; fi
        for ((r = 1; r <= ROUNDS; r++)); do
            timed "$policy login $prepared $query $id $r" "" "$(statement "$policy" "$query" "$prepared" "$id" "$key")"
        done
        if [ "$prepared" = 1 ]; then echo "DEALLOCATE q;"; fi
    done
}

RAW="$WORK/raw"
: >"$RAW"
run_as() { # ROLE SCRIPT-FILE [DATABASE]: results to /dev/null, tags and times to $RAW
    "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U "$1" -d "${3:-bench}" -o /dev/null -f "$2" >>"$RAW"
}

echo "== pooled: one connection, people in turn (SET LOCAL app.person_id), CEO first"
for prepared in 0 1; do
    for policy in "${POLICIES[@]}"; do
        pooled_script "$policy" "$prepared" >"$WORK/script.sql"
        run_as pool "$WORK/script.sql" "$(db_of "$policy")"
    done
done
# The plans rowsec's prepared statements run in the pooled order, after the rounds above.
{
    for query in page agg; do
        prepare_of rowsec "$query"
        echo "\\o /dev/null"
        for ((r = 1; r <= WARMUP; r++)); do
            for line in "${PERSONAS[@]}"; do
                read -r id _ key <<<"$line"
                echo "BEGIN; SET LOCAL app.person_id = '$id';"
                statement rowsec "$query" 1 "$id" "$key"
                echo "COMMIT;"
            done
        done
        echo "\\o"
        for line in "${PERSONAS[@]}"; do
            read -r id _ key <<<"$line"
            echo "BEGIN; SET LOCAL app.person_id = '$id';"
            echo "\\echo plan rowsec pooled prepared $query person $id"
            echo "EXPLAIN (COSTS OFF) $(statement rowsec "$query" 1 "$id" "$key")"
            echo "COMMIT;"
        done
        echo "DEALLOCATE q;"
    done
} >"$WORK/plans.sql"
"$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U pool -d bench -f "$WORK/plans.sql" | grep -v '^$' >"$WORK/plans.txt"

echo "== login: one connection per person (rowsec identity: login)"
"${PSQL[@]}" >/dev/null <<'SQL'
SELECT rowsec.configure('bench.people', 'id', 'manager_id', 'team', 'login', 'active', 'login');
CREATE OR REPLACE FUNCTION bench.me() RETURNS bigint STABLE LANGUAGE sql
    AS $$ SELECT id FROM bench.people WHERE login = current_user $$;
SQL
"${PSQL_SQL[@]}" >/dev/null <<'SQL'
SELECT rowsec.configure('bench.people', 'id', 'manager_id', 'team', 'login', 'active', 'login');
-- What the generator writes for identity login: the second shape for large subtrees.
ALTER POLICY subtree ON bench.t_sql USING (CASE WHEN rowsec.subtree_is_large_at_plan()
    THEN t_sql.owner_id = ANY ((SELECT rowsec.subtree_unless_large())::bigint[])
         OR (SELECT rowsec.person_if_large()) IS NOT NULL
         AND EXISTS (SELECT FROM rowsec.closure rowsec_c WHERE rowsec_c.ancestor = (SELECT rowsec.person_if_large())
                     AND rowsec_c.descendant = t_sql.owner_id)
    ELSE t_sql.owner_id = ANY ((SELECT rowsec.subtree())::bigint[]) END);
SQL
for prepared in 0 1; do
    for policy in "${POLICIES[@]}"; do
        for line in "${PERSONAS[@]}"; do
            read -r id _ key <<<"$line"
            login_script "$policy" "$prepared" "$id" "$key" >"$WORK/script.sql"
            run_as "u$id" "$WORK/script.sql" "$(db_of "$policy")"
        done
    done
done

echo "== planning time of the CEO's point lookup (EXPLAIN (ANALYZE, SUMMARY ON), login, median of 5)"
read -r ceo _ ceo_key <<<"${PERSONAS[0]}"
for policy in "${POLICIES[@]}"; do
    {
        for ((r = 1; r <= 6; r++)); do
            echo "EXPLAIN (ANALYZE, SUMMARY ON, TIMING OFF) $(statement "$policy" point 0 "$ceo" "$ceo_key")"
        done
    } >"$WORK/explain.sql"
    # The first run warms the caches; the median of the other 5.
    planning=$("$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U "u$ceo" -d "$(db_of "$policy")" -f "$WORK/explain.sql" \
        | awk '/Planning Time/ { print $3 }' | tail -n +2 | sort -g | sed -n 3p)
    printf '  %-7s planning %s ms\n' "$policy" "$planning"
done

echo
echo "== median ms of the best no-RLS row (plain or any), and each policy's median over it"
python3 - "$RAW" "$WARMUP" "$SQL_SHAPES" <<'PY'
import sys, statistics
raw, warmup, shapes = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
cols = ["rowsec", "cte", "ltree"] + shapes
times, tag = {}, None
for line in open(raw):
    if line.startswith("@ "):
        tag = line.split()[1:]
    elif line.startswith("Time: ") and tag:
        policy, conn, prep, query, person, rnd = tag
        if int(rnd) > warmup:
            times.setdefault((conn, prep, query, person, policy), []).append(float(line.split()[1]))
        tag = None
med = {k: statistics.median(v) for k, v in times.items()}
people = []
for (conn, prep, query, person, policy) in med:
    if person not in people:
        people.append(person)
print(f"{'conn':7} {'prepared':8} {'query':7} {'person':>7} {'best ms':>9} {'of':6} " + " ".join(f"{c:>8}" for c in cols)
      + f" {'rowsec/any':>10} {'sql/rowsec':>10} {'sql/cte':>8}")
sqlworst = []
worst = []
for conn in ("pooled", "login"):
    for prep in ("0", "1"):
        for query in ("point", "page", "agg", "insert", "update"):
            for person in people:
                k = (conn, prep, query, person)
                plain, anyf = med.get(k + ("plain",)), med.get(k + ("any",))
                if plain is None or anyf is None:
                    continue
                best, of = (plain, "plain") if plain <= anyf else (anyf, "any")
                ratios = [med[k + (p,)] / best for p in cols]
                worst.append((ratios[0], conn, prep, query, person))
                sql_rowsec = med[k + ("sql",)] / med[k + ("rowsec",)]
                sql_cte = med[k + ("sql",)] / med[k + ("cte",)]
                sqlworst.append((sql_rowsec, sql_cte, conn, prep, query, person))
                print(f"{conn:7} {'yes' if prep == '1' else 'no':8} {query:7} {person:>7} {best:9.3f} {of:6} "
                      + " ".join(f"{r:8.2f}" for r in ratios) + f" {med[k + ('rowsec',)] / anyf:10.2f}"
                      + f" {sql_rowsec:10.2f} {sql_cte:8.2f}")
worst.sort(reverse=True)
print("rowsec cells above 1.05x: %d of %d; worst: %s" % (
    sum(1 for w in worst if w[0] > 1.05), len(worst),
    ", ".join(f"{w[0]:.2f}x {w[1]} {'prepared' if w[2] == '1' else 'unprepared'} {w[3]} person {w[4]}" for w in worst[:5])))
for shape in shapes:
    over_ext = [med[k + (shape,)] / med[k + ("rowsec",)] for k in {w[:4] for w in times} if k + (shape,) in med]
    over_cte = [med[k + (shape,)] / med[k + ("cte",)] for k in {w[:4] for w in times} if k + (shape,) in med]
    if over_ext:
        gm = statistics.geometric_mean(over_ext)
        print(f"{shape}: within 1.5x of the extension in {sum(r <= 1.5 for r in over_ext)} of {len(over_ext)} cells, "
              f"not slower than the recursive CTE in {sum(r <= 1.0 for r in over_cte)}, geometric mean over the extension {gm:.2f}")
sqlworst.sort(reverse=True)
print("SQL backend over the extension: cells above 1.5x: %d of %d; above the recursive CTE: %d; worst: %s" % (
    sum(1 for w in sqlworst if w[0] > 1.5), len(sqlworst), sum(1 for w in sqlworst if w[1] > 1.0),
    ", ".join(f"{w[0]:.2f}x {w[2]} {'prepared' if w[3] == '1' else 'unprepared'} {w[4]} person {w[5]}" for w in sqlworst[:5])))
PY

echo
echo "== plans rowsec ran (pooled, prepared, after the rounds: the plan cache's choice)"
awk '/^plan / { if (line) print line; line = $0 ":"; next } { sub(/^ +(-> +)?/, ""); line = line " " $0 ";" } END { print line }' "$WORK/plans.txt"

echo
echo "== directory change: moving a manager (and their whole subtree) under another manager, committed"
# The people whose subtrees are closest to 37,449, 4,681 and 585 people (a complete tree of
# fan-out 8 has no subtree of 10,000); each moves under person 9 and back. Extension: the UPDATE
# (its trigger invalidates the cache) and the next query that needs a subtree (the reload). SQL
# backend: the UPDATE, whose trigger rewrites the closure rows of the moved subtree, and the same
# query. Identity `setting` again in both databases, the CEO asking.
for db in bench bench_sql; do
    psql_db=("${PSQL[@]}")
    psql_db[${#psql_db[@]}-1]=$db
    "${psql_db[@]}" -c "SELECT rowsec.configure('bench.people', 'id', 'manager_id', 'team', 'login', 'active', 'setting', 'app.person_id')" >/dev/null
done
read -r -a MOVERS < <("${PSQL[@]}" -At -c "WITH s AS (SELECT id, cardinality(rowsec.subtree_of(id)) AS n FROM bench.people WHERE id BETWEEN 2 AND 600 AND id <> 9)
    SELECT string_agg(id::text, ' ') FROM (SELECT DISTINCT ON (t) t, id FROM s, unnest(ARRAY[37449, 4681, 585]) t ORDER BY t DESC, abs(n - t), id) x")
for mover in "${MOVERS[@]}"; do
    n=$("${PSQL[@]}" -At -c "SELECT cardinality(rowsec.subtree_of($mover))")
    home=$("${PSQL[@]}" -At -c "SELECT manager_id FROM bench.people WHERE id = $mover")
    for db in bench bench_sql; do
        psql_db=("${PSQL[@]}")
        psql_db[${#psql_db[@]}-1]=$db
        times=()
        for target in 9 "$home"; do
            out=$("${psql_db[@]}" -At <<SQL
\\timing on
UPDATE bench.people SET manager_id = $target WHERE id = $mover;
BEGIN; SET LOCAL app.person_id = '1'; SELECT count(*) FROM unnest(rowsec.subtree()); COMMIT;
SQL
)
            times+=("$(echo "$out" | awk '/^Time:/ { t[++n] = $2 } END { printf "update %.1f ms, next subtree query %.1f ms", t[1], t[4] }')")
        done
        printf '  %-9s person %s (subtree %s): %s; and back: %s\n' "$db" "$mover" "$n" "${times[0]}" "${times[1]}"
    done
done

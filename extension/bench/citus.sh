#!/usr/bin/env bash
# rowsec on Citus, benchmark (not a test): a coordinator and two workers under /tmp, torn down at
# the end; docs/distributed.md. Needs Citus in the PostgreSQL 15 copy (tests/run.sh builds it:
# PG_CONFIG=.../pg_config bash vendor/citus/build.sh).
#   extension/bench/citus.sh                        # builds and installs the release build first
#   SKIP_INSTALL=1 PEOPLE=10000 ROWS=100000 extension/bench/citus.sh
#
# Side by side in one run, on PEOPLE people (default 100,000, a tree of fan-out 8; a reference
# table) and ROWS rows (default 1,000,000), the same rows in four distributed tables (32 shards):
#   plain_key    no row-level security, distributed by key (id)
#   rowsec_key   row-level security with rowsec.in_subtree(owner_id), distributed by key
#   plain_owner  no row-level security, distributed by owner (owner_id; key (id, owner_id))
#   rowsec_owner row-level security with rowsec.in_subtree(owner_id), distributed by owner
# Personas of the single-node benchmark (bench.sh): the people whose subtrees are closest to 1, 9,
# 73, 4,681 and everyone (the CEO). Queries, unprepared, through the coordinator, one pooled
# connection (SET LOCAL app.person_id, propagated to the workers with
# citus.propagate_set_commands = 'local'), people in turn:
#   point  SELECT id, amount FROM t WHERE id = <a key of the persona's>   (by key: one shard)
#   page   SELECT id, amount FROM t ORDER BY id LIMIT 50                  (every shard)
#   agg    SELECT count(*), sum(amount) FROM t                            (every shard)
#   CACHED_CONNS=16 keeps 16 connections per worker open between transactions (Citus: 1).
# Each cell: ROUNDS (default 11) executions per persona, the first WARMUP (default 6) dropped,
# the median of the rest, timed by psql (\timing, client side). The table gives rowsec's median
# over no row-level security on the same distribution, and by owner over by key.
set -euo pipefail

# shellcheck source=extension/bench/common.sh
source "$(dirname "$0")/common.sh"
PEOPLE=${PEOPLE:-100000}
ROWS=${ROWS:-1000000}
ROUNDS=${ROUNDS:-11}
# Connections the coordinator keeps open to each worker between transactions (Citus's default
# is 1): each worker backend loads the directory once, so a query that opens new connections to
# the workers pays a directory load on each (docs/distributed.md).
CACHED_CONNS=${CACHED_CONNS:-1}
WARMUP=${WARMUP:-6}
[ "$ROUNDS" -gt "$WARMUP" ] || { echo "ROUNDS must be larger than WARMUP" >&2; exit 2; }
[ -f "$("$BIN/pg_config" --pkglibdir)/citus.so" ] || {
    echo "Citus is not installed into $("$BIN/pg_config" --pkglibdir): PG_CONFIG=$BIN/pg_config bash vendor/citus/build.sh" >&2
    exit 2
}

WORK=$(mktemp -d /tmp/rowsec-citus-bench.XXXXXX)
chmod 777 "$WORK"
mkdir -p "$WORK/lib"
cp "$CARGO_TARGET_DIR/release/librowsec.so" "$WORK/lib/rowsec.so"
chmod -R a+rX "$WORK/lib"
NODES=(coordinator worker1 worker2)
declare -A PORTS
stop_all() {
    local n
    if [ -n "${KEEP:-}" ]; then echo "kept: $WORK ports ${PORTS[*]}"; return; fi
    for n in "${NODES[@]}"; do as_pg "$BIN/pg_ctl" -D "$WORK/$n" -m fast stop >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
}
trap stop_all EXIT
for n in "${NODES[@]}"; do
    PORTS[$n]=$(free_port)
    as_pg "$BIN/initdb" -D "$WORK/$n" >/dev/null 2>&1
    echo "dynamic_library_path = '$WORK/lib:\$libdir'" | as_pg tee -a "$WORK/$n/postgresql.conf" >/dev/null
    as_pg "$BIN/pg_ctl" -D "$WORK/$n" \
        -o "-p ${PORTS[$n]} -k $WORK -c listen_addresses=127.0.0.1 -c shared_buffers=256MB -c jit=off \
            -c shared_preload_libraries=citus,rowsec -c max_prepared_transactions=100 \
            -c max_parallel_workers_per_gather=0 -c work_mem=64MB" \
        -l "$WORK/$n.log" -w start >/dev/null
done
psql_on() { local n=$1; shift; "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${PORTS[$n]}" -U postgres "$@"; }
for n in "${NODES[@]}"; do
    psql_on "$n" -c "CREATE DATABASE bench"
    psql_on "$n" -d bench -c "CREATE EXTENSION citus" 2>/dev/null
done
PSQL=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${PORTS[coordinator]}" -U postgres -d bench)
"${PSQL[@]}" >/dev/null <<SQL
SELECT citus_set_coordinator_host('127.0.0.1', ${PORTS[coordinator]});
SELECT citus_add_node('127.0.0.1', ${PORTS[worker1]});
SELECT citus_add_node('127.0.0.1', ${PORTS[worker2]});
SQL
echo "== citus.max_cached_conns_per_worker = $CACHED_CONNS for the pool"
echo "== PostgreSQL $("$BIN/postgres" --version | awk '{print $3}'), Citus $("${PSQL[@]}" -At -c "SELECT extversion FROM pg_extension WHERE extname = 'citus'"), a coordinator and 2 workers on one machine ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)), $(date -u '+%Y-%m-%d %H:%M UTC')"

echo "== setup: $PEOPLE people (fan-out 8, a reference table), $ROWS rows in each of 4 distributed tables"
"${PSQL[@]}" >/dev/null <<SQL
SET client_min_messages = warning;
SET citus.shard_count = 32;
CREATE EXTENSION rowsec;
CREATE SCHEMA bench;
CREATE TABLE bench.people (id bigint PRIMARY KEY, manager_id bigint, team bigint, login text, active boolean NOT NULL);
INSERT INTO bench.people
SELECT id, CASE WHEN id > 1 THEN (id - 2) / 8 + 1 END, id / 10, 'u' || id, true
FROM generate_series(1, $PEOPLE) id;
CREATE UNIQUE INDEX ON bench.people (login);
SELECT create_reference_table('bench.people');
SELECT truncate_local_data_after_distributing_table('bench.people');
CREATE TABLE bench.plain_key (id bigint NOT NULL, owner_id bigint NOT NULL, amount numeric NOT NULL, pad text, PRIMARY KEY (id));
CREATE TABLE bench.rowsec_key (LIKE bench.plain_key INCLUDING ALL);
CREATE TABLE bench.plain_owner (id bigint NOT NULL, owner_id bigint NOT NULL, amount numeric NOT NULL, pad text, PRIMARY KEY (id, owner_id));
CREATE TABLE bench.rowsec_owner (LIKE bench.plain_owner INCLUDING ALL);
CREATE INDEX ON bench.plain_key (owner_id);
CREATE INDEX ON bench.rowsec_key (owner_id);
CREATE INDEX ON bench.plain_owner (owner_id);
CREATE INDEX ON bench.rowsec_owner (owner_id);
CREATE INDEX ON bench.plain_owner (id);
CREATE INDEX ON bench.rowsec_owner (id);
SELECT create_distributed_table('bench.plain_key', 'id');
SELECT create_distributed_table('bench.rowsec_key', 'id');
SELECT create_distributed_table('bench.plain_owner', 'owner_id');
SELECT create_distributed_table('bench.rowsec_owner', 'owner_id');
INSERT INTO bench.plain_key
SELECT g, 1 + ((g::bigint * 2654435761) % $PEOPLE), (g % 1000)::numeric, 'x' FROM generate_series(1, $ROWS) g;
INSERT INTO bench.rowsec_key SELECT * FROM bench.plain_key;
INSERT INTO bench.plain_owner SELECT * FROM bench.plain_key;
INSERT INTO bench.rowsec_owner SELECT * FROM bench.plain_key;
VACUUM ANALYZE bench.plain_key, bench.rowsec_key, bench.plain_owner, bench.rowsec_owner;

SELECT rowsec.configure('bench.people', 'id', 'manager_id', 'team', 'login', 'active', 'setting', 'app.person_id');
ALTER TABLE bench.rowsec_key ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.rowsec_key FORCE ROW LEVEL SECURITY;
CREATE POLICY subtree ON bench.rowsec_key USING (rowsec.in_subtree(owner_id));
ALTER TABLE bench.rowsec_owner ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.rowsec_owner FORCE ROW LEVEL SECURITY;
CREATE POLICY subtree ON bench.rowsec_owner USING (rowsec.in_subtree(owner_id));

CREATE ROLE pool LOGIN;
ALTER ROLE pool SET citus.propagate_set_commands = 'local';
ALTER ROLE pool SET citus.max_cached_conns_per_worker = $CACHED_CONNS;
GRANT USAGE ON SCHEMA bench TO pool;
GRANT SELECT ON bench.plain_key, bench.rowsec_key, bench.plain_owner, bench.rowsec_owner TO pool;

-- Personas: the last person of each level of the tree (complete subtrees: 1, 9, 73, ...) and the
-- CEO; for each target the one whose subtree size is closest.
CREATE TABLE bench.personas AS
WITH lasts AS (SELECT DISTINCT least((8::numeric ^ (k + 1) - 1) / 7, $PEOPLE)::bigint AS id FROM generate_series(0, 12) k),
sizes AS (SELECT id, cardinality(rowsec.subtree_of(id)) AS n FROM lasts),
picked AS (
    SELECT DISTINCT ON (p.id) t.target, p.id, p.n
    FROM unnest(ARRAY[$PEOPLE, 4681, 73, 9, 1]) WITH ORDINALITY t(target, ord)
    CROSS JOIN LATERAL (SELECT id, n FROM sizes ORDER BY abs(n - t.target), id DESC LIMIT 1) p
    ORDER BY p.id, t.ord)
SELECT target, id, n FROM picked;
SQL

# Each persona with one key of their own (a query per persona: Citus plans no correlated subquery
# over a distributed table here).
PERSONAS=()
while read -r id n; do
    PERSONAS+=("$id $n $("${PSQL[@]}" -At -c "SELECT min(id) FROM bench.plain_key WHERE owner_id = $id")")
done < <("${PSQL[@]}" -At -F' ' -c "SELECT id, n FROM bench.personas ORDER BY n DESC")
printf 'personas (id: owners visible, rows visible):'
for line in "${PERSONAS[@]}"; do
    read -r id n _ <<<"$line"
    printf ' %s: %s, %s;' "$id" "$n" "$("${PSQL[@]}" -At -c "SELECT count(*) FROM bench.plain_key WHERE owner_id = ANY(rowsec.subtree_of($id))")"
done
echo

QUERIES=(point page agg)
TABLES=(plain_key rowsec_key plain_owner rowsec_owner)
statement() { # TABLE QUERY KEY
    case $2 in
        point) echo "SELECT id, amount FROM bench.$1 WHERE id = $3;" ;;
        page) echo "SELECT id, amount FROM bench.$1 ORDER BY id LIMIT 50;" ;;
        agg) echo "SELECT count(*), sum(amount) FROM bench.$1;" ;;
    esac
}
RAW="$WORK/raw"
{
    for t in "${TABLES[@]}"; do
        for q in "${QUERIES[@]}"; do
            for ((r = 1; r <= ROUNDS; r++)); do
                for line in "${PERSONAS[@]}"; do
                    read -r id _ key <<<"$line"
                    echo "BEGIN;"
                    echo "SET LOCAL app.person_id = '$id';"
                    echo "\\echo @ $t $q $id $r"
                    echo "\\timing on"
                    statement "$t" "$q" "$key"
                    echo "\\timing off"
                    echo "COMMIT;"
                done
            done
        done
    done
} >"$WORK/script.sql"
# The row counts each persona got, once: rowsec's tables must return the persona's rows only.
"$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${PORTS[coordinator]}" -U pool -d bench -o /dev/null -f "$WORK/script.sql" >"$RAW"
for line in "${PERSONAS[@]}"; do
    read -r id n _ <<<"$line"
    # One statement per -c: Citus forwards a propagated SET LOCAL's whole query string.
    got=$("$BIN/psql" -X -q -At -h 127.0.0.1 -p "${PORTS[coordinator]}" -U pool -d bench -c "BEGIN" \
        -c "SET LOCAL app.person_id = '$id'" -c "SELECT count(*) FROM bench.rowsec_key" \
        -c "SELECT count(*) FROM bench.rowsec_owner" -c "COMMIT" | tr '\n' ' ')
    want=$("${PSQL[@]}" -At -c "SELECT count(*) FROM bench.plain_key WHERE owner_id = ANY(rowsec.subtree_of($id))")
    [ "$got" = "$want $want " ] || { echo "persona $id: rowsec returned '$got', expected $want twice" >&2; exit 1; }
done
echo "row counts through rowsec checked for every persona (by key and by owner)"

echo
echo "== median ms (client side, through the coordinator); rowsec over no RLS on the same distribution; by owner over by key"
python3 - "$RAW" "$WARMUP" <<'PY'
import sys, statistics
raw, warmup = sys.argv[1], int(sys.argv[2])
times, tag = {}, None
for line in open(raw):
    if line.startswith("@ "):
        tag = line.split()[1:]
    elif line.startswith("Time: ") and tag:
        table, query, person, rnd = tag
        if int(rnd) > warmup:
            times.setdefault((query, person, table), []).append(float(line.split()[1]))
        tag = None
med = {k: statistics.median(v) for k, v in times.items()}
people = sorted({k[1] for k in med}, key=lambda p: int(p))
print(f"{'query':6} {'person':>7} | {'plain key':>9} {'rowsec key':>10} {'ratio':>6} | {'plain own':>9} {'rowsec own':>10} {'ratio':>6} | {'own/key rowsec':>14}")
for q in ["point", "page", "agg"]:
    for p in people:
        pk, rk, po, ro = (med[(q, p, t)] for t in ["plain_key", "rowsec_key", "plain_owner", "rowsec_owner"])
        print(f"{q:6} {p:>7} | {pk:9.2f} {rk:10.2f} {rk / pk:6.2f} | {po:9.2f} {ro:10.2f} {ro / po:6.2f} | {ro / rk:14.2f}")
PY

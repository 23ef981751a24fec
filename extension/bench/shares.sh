#!/usr/bin/env bash
# Shares at volume (a measurement, not a test; issue 12): 1,000,000 shares in rowsec.shares,
# 10,000 people (about 100 shares each), bench.deals of 1,000,000 rows. Pgbench, one client per
# script, SECONDS_EACH seconds, mean latency:
#   share+unshare  a manager (boss) shares a row with someone and takes it back in one
#                  transaction (rowsec.share, then rowsec.unshare: permission check,
#                  rowsec.shares, the audit trail), beside the same transaction inserting and
#                  deleting one row of a plain table: the difference is what sharing adds
#   read, quiet    the reader (person 2, 100 shares) reads one row shared with them, by key
#   read, churn    the same while boss shares and unshares without pause on another connection:
#                  every share or unshare invalidates every backend's shares
#   page           the reader's rows by key range (own rows and rows shared with them)
# and, for the reader, each of these beside the same query on an unprotected copy of the table
# (bench.deals_open, no row-level security), over which the table gives ratios as bench.sh does:
#   key            a row shared with them, by key (the copy: the same lookup, no filter)
#   page           50 rows by key (the copy: the application's filter for the same rows,
#                  owner_id = 2 OR id = ANY(the keys shared with them))
#   agg            count(*) and sum(amount) of what they see (the copy: the same filter)
# each sent as simple and as prepared statements (pgbench -M prepared: the plan cache, as drivers
# use it).
# Each library in LIBS (default: this checkout's release build) gets its own cluster, all set up
# the same way and running at once; then ROUNDS rounds measure every cell on each cluster in
# turn, and the table prints the median of each and its ratio to the first library. For a
# before/after comparison, build the older rowsec's release library and pass it first:
#   LIBS="/path/to/old/librowsec.so" extension/bench/shares.sh   (this build is appended)
#   ROWS=1000000 SHARES=1000000 PEOPLE=10000 SECONDS_EACH=5 ROUNDS=3 SKIP_INSTALL=1
set -euo pipefail
ROWS=${ROWS:-1000000}
SHARES=${SHARES:-1000000}
PEOPLE=${PEOPLE:-10000}
SECONDS_EACH=${SECONDS_EACH:-5}
ROUNDS=${ROUNDS:-3}
# shellcheck source=extension/bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
THIS_BUILD=$CARGO_TARGET_DIR/release/librowsec.so
read -r -a LIB_LIST <<<"${LIBS:-}"
LIB_LIST+=("$THIS_BUILD")

CLUSTERS=()
cleanup() {
    local w
    for w in "${CLUSTERS[@]}"; do
        as_pg "$BIN/pg_ctl" -D "$w/data" -m fast stop >/dev/null 2>&1 || true
        rm -rf "$w"
    done
}
trap cleanup EXIT

# setup N LIB: cluster N (under /tmp, its own port) loading LIB, with the data set.
setup() {
    local n=$1 lib=$2 work port
    work=$(mktemp -d /tmp/rowsec-shares.XXXXXX)
    CLUSTERS+=("$work")
    chmod 777 "$work"
    mkdir -p "$work/lib" && cp "$lib" "$work/lib/rowsec.so" && chmod -R a+rX "$work/lib"
    port=$(free_port)
    as_pg "$BIN/initdb" -D "$work/data" >/dev/null 2>&1
    # This library, whatever rowsec build is installed (module_pathname is plain 'rowsec').
    echo "dynamic_library_path = '$work/lib:\$libdir'" | as_pg tee -a "$work/data/postgresql.conf" >/dev/null
    as_pg "$BIN/pg_ctl" -D "$work/data" \
        -o "-p $port -k $work -c shared_buffers=512MB -c jit=off -c shared_preload_libraries=rowsec" \
        -l "$work/log" -w start >/dev/null
    local psql=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$port" -U postgres)
    "${psql[@]}" -d postgres -c "CREATE DATABASE bench"
    "${psql[@]}" -d bench >/dev/null <<SQL
CREATE EXTENSION rowsec;
CREATE SCHEMA bench;
CREATE TABLE bench.people (id bigint PRIMARY KEY, manager_id bigint, team text, login text, active boolean);
INSERT INTO bench.people SELECT g, CASE WHEN g > 1 THEN 1 END, 'team_' || (g % 1000),
    CASE g WHEN 1 THEN 'boss' WHEN 2 THEN 'reader' END, true FROM generate_series(1, $PEOPLE) g;
SELECT rowsec.configure('bench.people', 'id', 'manager_id', 'team', 'login', 'active');
CREATE TABLE bench.deals (id bigint PRIMARY KEY, owner_id bigint NOT NULL, name text, amount numeric);
INSERT INTO bench.deals SELECT g, g % $PEOPLE + 1, 'deal ' || g, g * 1.5 FROM generate_series(1, $ROWS) g;
CREATE INDEX ON bench.deals (owner_id);
ALTER TABLE bench.deals ENABLE ROW LEVEL SECURITY;
ALTER TABLE bench.deals FORCE ROW LEVEL SECURITY;
CREATE TABLE bench.plain (id bigint);
CREATE ROLE boss LOGIN;
CREATE ROLE reader LOGIN;
GRANT USAGE ON SCHEMA bench TO boss, reader;
GRANT SELECT, UPDATE ON bench.deals TO boss;
GRANT INSERT, DELETE, SELECT ON bench.plain TO boss;
GRANT SELECT ON bench.deals TO reader;
CREATE POLICY boss_sel ON bench.deals FOR SELECT TO boss USING (rowsec.in_subtree(owner_id));
CREATE POLICY boss_upd ON bench.deals FOR UPDATE TO boss USING (rowsec.in_subtree(owner_id));
CREATE POLICY reader_sel ON bench.deals FOR SELECT TO reader
    USING (owner_id = rowsec.current_person() OR rowsec.is_shared('bench.deals'::regclass, id, 'read'));
SELECT rowsec.protect_table('bench.deals', 'id', 'owner_id', true);
-- Row g goes to person (g * 7919) % PEOPLE + 1: about SHARES / PEOPLE shares each.
INSERT INTO rowsec.shares (tbl, row_key, grantee_person, access, granted_by)
SELECT 'bench.deals'::regclass, g, (g::bigint * 7919) % $PEOPLE + 1, 'read', 1 FROM generate_series(1, $SHARES) g;
CREATE TABLE bench.deals_open AS SELECT * FROM bench.deals;
ALTER TABLE bench.deals_open ADD PRIMARY KEY (id);
CREATE INDEX ON bench.deals_open (owner_id);
GRANT SELECT ON bench.deals_open TO reader;
VACUUM ANALYZE bench.deals;
VACUUM ANALYZE bench.deals_open;
VACUUM ANALYZE rowsec.shares;
SQL
    CONN[$n]="-h $work -p $port -d bench"
    PSQLS[$n]="${psql[*]} -d bench"
}

declare -A CONN PSQLS
for i in "${!LIB_LIST[@]}"; do
    echo "== cluster $((i + 1)): ${LIB_LIST[$i]}" >&2
    setup "$i" "${LIB_LIST[$i]}"
done

# The scripts (the same data on every cluster).
SCRIPTS=$(mktemp -d /tmp/rowsec-shares-scripts.XXXXXX)
CLUSTERS+=("$SCRIPTS")
chmod 755 "$SCRIPTS"
# The reader's shared rows: keys g with (g * 7919) % PEOPLE + 1 = 2.
${PSQLS[0]} -At -c "SELECT row_key FROM rowsec.shares WHERE grantee_person = 2 ORDER BY row_key" >"$SCRIPTS/keys"
NKEYS=$(wc -l <"$SCRIPTS/keys")
{
    echo "\\set i random(1, $NKEYS)"
    printf 'SELECT id, amount FROM bench.deals WHERE id = (SELECT (ARRAY[%s])[:i]);\n' "$(paste -sd, "$SCRIPTS/keys")"
} >"$SCRIPTS/read.sql"
echo "SELECT id, amount FROM bench.deals ORDER BY id LIMIT 50;" >"$SCRIPTS/page.sql"
sed 's/bench\.deals /bench.deals_open /' "$SCRIPTS/read.sql" >"$SCRIPTS/read_open.sql"
# What the application would send to show the reader the same rows without row-level security.
FILTER="owner_id = 2 OR id = ANY ('{$(paste -sd, "$SCRIPTS/keys")}'::bigint[])"
echo "SELECT id, amount FROM bench.deals_open WHERE $FILTER ORDER BY id LIMIT 50;" >"$SCRIPTS/page_open.sql"
echo "SELECT count(*), sum(amount) FROM bench.deals;" >"$SCRIPTS/agg.sql"
echo "SELECT count(*), sum(amount) FROM bench.deals_open WHERE $FILTER;" >"$SCRIPTS/agg_open.sql"
# One transaction: a share and its unshare; and the same transaction shape writing and deleting
# one row of a plain table (what the commit and two writes cost anyway).
cat >"$SCRIPTS/share.sql" <<SHARE
\set id random(1, $ROWS)
\set p random(3, $PEOPLE)
BEGIN;
SELECT rowsec.share('bench.deals'::regclass, :id, to_person => :p) AS sid \gset
SELECT rowsec.unshare(:sid);
COMMIT;
SHARE
cat >"$SCRIPTS/plain.sql" <<PLAIN
\set id random(1, $ROWS)
BEGIN;
INSERT INTO bench.plain VALUES (:id);
DELETE FROM bench.plain WHERE id = :id;
COMMIT;
PLAIN
chmod 644 "$SCRIPTS"/*

# latency N USER SCRIPT [PROTOCOL]: mean latency in ms of SECONDS_EACH seconds of SCRIPT on
# cluster N, sent as simple (default) or prepared statements.
latency() {
    # shellcheck disable=SC2086
    pgbench_latency "$3" -M "${4:-simple}" -U "$2" ${CONN[$1]}
}
# The reader's queries beside the unprotected copy's: cell name, script, the copy's script.
VISIBILITY=("key read read_open" "page page page_open" "agg agg agg_open")
declare -A SAMPLES
CELLS=(share plain quiet churn page)
for round in $(seq "$ROUNDS"); do
    for i in "${!LIB_LIST[@]}"; do
        echo "round $round, cluster $((i + 1))" >&2
        SAMPLES[$i,share]+=" $(latency "$i" boss "$SCRIPTS/share.sql")"
        SAMPLES[$i,plain]+=" $(latency "$i" boss "$SCRIPTS/plain.sql")"
        SAMPLES[$i,quiet]+=" $(latency "$i" reader "$SCRIPTS/read.sql")"
        SAMPLES[$i,page]+=" $(latency "$i" reader "$SCRIPTS/page.sql")"
        # The reader again while boss shares and unshares without pause on another connection:
        # every share or unshare invalidates every backend's shares.
        # shellcheck disable=SC2086
        "$BIN/pgbench" -n -c 1 -T "$((SECONDS_EACH + 3))" -U boss -f "$SCRIPTS/share.sql" ${CONN[$i]} >/dev/null 2>&1 &
        churner=$!
        sleep 1
        SAMPLES[$i,churn]+=" $(latency "$i" reader "$SCRIPTS/read.sql")"
        wait "$churner"
        for v in "${VISIBILITY[@]}"; do
            read -r cell mine open <<<"$v"
            for protocol in simple prepared; do
                SAMPLES[$i,v_${cell}_$protocol]+=" $(latency "$i" reader "$SCRIPTS/$mine.sql" "$protocol")"
                SAMPLES[$i,o_${cell}_$protocol]+=" $(latency "$i" reader "$SCRIPTS/$open.sql" "$protocol")"
            done
        done
    done
done

echo
echo "$SHARES shares, $PEOPLE people ($NKEYS shares to the reader), $ROWS rows; pgbench 1 client, ${SECONDS_EACH}s a cell, median of $ROUNDS rounds, mean latency (ms)"
echo "| library | share+unshare (one transaction) | insert+delete of a plain row (one transaction) | reader: a shared row by key | reader: the same while boss shares and unshares | reader: 50-row page |"
echo "|---|---|---|---|---|---|"
for i in "${!LIB_LIST[@]}"; do
    row="| $((i + 1)). ${LIB_LIST[$i]}"
    for cell in "${CELLS[@]}"; do
        # shellcheck disable=SC2086
        m=$(median ${SAMPLES[$i,$cell]})
        if [ "$i" = 0 ]; then
            row+=" | $m"
        else
            # shellcheck disable=SC2086
            base=$(median ${SAMPLES[0,$cell]})
            row+=" | $(awk -v a="$m" -v b="$base" 'BEGIN { printf "%s (%.3gx)", a, a / b }')"
        fi
    done
    echo "$row |"
done

echo
echo "Visibility through shares: the reader (own rows and $NKEYS shared rows) with rowsec, and the same rows from the unprotected copy (key: no filter; page, agg: the application's filter); mean latency (ms), median of $ROUNDS rounds, and rowsec over the copy"
echo "| library | protocol | key | key, copy | ratio | page | page, copy | ratio | agg | agg, copy | ratio |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for i in "${!LIB_LIST[@]}"; do
    for protocol in simple prepared; do
        row="| $((i + 1)) | $protocol"
        for v in "${VISIBILITY[@]}"; do
            read -r cell _ _ <<<"$v"
            # shellcheck disable=SC2086
            m=$(median ${SAMPLES[$i,v_${cell}_$protocol]})
            # shellcheck disable=SC2086
            o=$(median ${SAMPLES[$i,o_${cell}_$protocol]})
            row+=" | $m | $o | $(awk -v a="$m" -v b="$o" 'BEGIN { printf "%.2fx", a / b }')"
        done
        echo "$row |"
    done
done

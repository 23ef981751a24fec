#!/usr/bin/env bash
# Cache invalidation across two concurrent sessions, at the extension level.
# Needs the extension installed in the PostgreSQL whose bin directory is ROWSEC_PG_BIN (tests/run.sh
# sets it to its private copy; default: the pg_config on PATH). Starts its own cluster under /tmp
# as the postgres user on a free port and removes it at the end.
# Usage: extension/tests/two_sessions.sh        (exit status 0 when every check passes)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/pg.sh
source "$ROOT/tests/pg.sh"
BIN=${ROWSEC_PG_BIN:-$(pg_config --bindir)}
PORT=${PORT:-$(free_port)}
WORK=$(mktemp -d /tmp/rowsec-two-sessions.XXXXXX)
chmod 777 "$WORK"
DATA="$WORK/data"
as_pg() { if [ "$(id -u)" = 0 ]; then sudo -u postgres "$@"; else "$@"; fi; }

cleanup() {
    for fd in ${FD_A:-} ${FD_B:-}; do eval "exec $fd>&-" 2>/dev/null || true; done
    as_pg "$BIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

as_pg "$BIN/initdb" -D "$DATA" >/dev/null 2>&1
# As every cluster rowsec runs in: the library preloaded (the membership audit hook, README).
as_pg "$BIN/pg_ctl" -D "$DATA" -o "-p $PORT -k $WORK -c shared_preload_libraries=rowsec" -l "$WORK/log" -w start >/dev/null
PSQL=("$BIN/psql" -X -h "$WORK" -p "$PORT" -U postgres)

"${PSQL[@]}" -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE DATABASE inval;
\c inval
CREATE EXTENSION rowsec;
CREATE SCHEMA inv;
CREATE TABLE inv.people (id bigint PRIMARY KEY, manager_id bigint, team text, login text, active boolean NOT NULL DEFAULT true);
INSERT INTO inv.people VALUES (1, NULL, 'a', 'inv_p1', true), (2, 1, 'a', 'inv_p2', true), (3, 2, NULL, 'inv_p3', true);
SELECT rowsec.configure('inv.people', 'id', 'manager_id', 'team', 'login', 'active');
CREATE ROLE inv_p1;
SQL

# A session is a psql reading a FIFO; `ask` sends one statement and waits for its output.
session() {
    mkfifo "$WORK/$1.in"
    stdbuf -oL -eL "${PSQL[@]}" -d inval -qAt <"$WORK/$1.in" >"$WORK/$1.out" 2>&1 &
    exec {fd}>"$WORK/$1.in"
    eval "FD_$1=$fd"
}
ask() {
    local fdvar="FD_$1" marker="__done_${RANDOM}${RANDOM}__" before
    before=$(wc -l <"$WORK/$1.out")
    printf '%s\n\\echo %s\n' "$2" "$marker" >&"${!fdvar}"
    until grep -q "$marker" "$WORK/$1.out"; do sleep 0.05; done
    tail -n +"$((before + 1))" "$WORK/$1.out" | grep -v "$marker" | grep -v '^\(BEGIN\|COMMIT\|ROLLBACK\|SET\|RESET\|INSERT.*\|UPDATE.*\|DELETE.*\)$' || true
}
FAILED=0
check() { # name expected actual
    if [ "$2" = "$3" ]; then echo "ok   - $1"; else echo "FAIL - $1: expected [$2], got [$3]"; FAILED=1; fi
}

session A
session B

check "A loads the directory" "{1,2,3}" "$(ask A "SELECT rowsec.subtree_of(1);")"
ask B "BEGIN;" >/dev/null
ask B "INSERT INTO inv.people VALUES (4, 3, NULL, NULL, true);" >/dev/null
check "B sees its own uncommitted change in its next statement" "{1,2,3,4}" "$(ask B "SELECT rowsec.subtree_of(1);")"
check "A does not see B's uncommitted change" "{1,2,3}" "$(ask A "SELECT rowsec.subtree_of(1);")"
ask B "COMMIT;" >/dev/null
check "A sees B's committed change in its next transaction" "{1,2,3,4}" "$(ask A "SELECT rowsec.subtree_of(1);")"

ask B "BEGIN;" >/dev/null
ask B "DELETE FROM inv.people WHERE id = 4;" >/dev/null
check "B sees its own delete" "{1,2,3}" "$(ask B "SELECT rowsec.subtree_of(1);")"
ask B "ROLLBACK;" >/dev/null
check "B no longer sees its rolled-back delete" "{1,2,3,4}" "$(ask B "SELECT rowsec.subtree_of(1);")"
check "A never sees B's rolled-back delete" "{1,2,3,4}" "$(ask A "SELECT rowsec.subtree_of(1);")"

check "p1 is active" "1" "$(ask A "SET ROLE inv_p1; SELECT rowsec.current_person(); RESET ROLE;")"
ask B "UPDATE inv.people SET active = false WHERE id = 1;" >/dev/null
check "A sees a deactivation at its next transaction" "" "$(ask A "SET ROLE inv_p1; SELECT rowsec.current_person(); RESET ROLE;")"
ask B "UPDATE inv.people SET active = true WHERE id = 1;" >/dev/null

ask A "BEGIN ISOLATION LEVEL REPEATABLE READ;" >/dev/null
check "A in a repeatable-read transaction" "{1,2,3,4}" "$(ask A "SELECT rowsec.subtree_of(1);")"
ask B "INSERT INTO inv.people VALUES (5, 4, NULL, NULL, true);" >/dev/null
ask A "COMMIT;" >/dev/null
check "A sees the change in the transaction after its repeatable-read one" "{1,2,3,4,5}" "$(ask A "SELECT rowsec.subtree_of(1);")"

ask B "TRUNCATE inv.people;" >/dev/null
check "A sees a truncate" "{}" "$(ask A "SELECT rowsec.subtree_of(1);")"

exit $FAILED

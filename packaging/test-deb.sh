#!/usr/bin/env bash
# Installs the packages of packaging/out/ (build-deb.sh) into the system's clean PostgreSQL 15
# (/usr/lib/postgresql/15, Debian's postgresql-15), starts a throwaway cluster of it with
# shared_preload_libraries = rowsec, applies the CRM example compiled by the installed
# /usr/bin/rowsec, checks what a sales rep and a manager see, and removes the packages again.
# Needs root (dpkg). Refuses to run when rowsec is already installed there by anything else, so
# it never overwrites or removes what it did not install; runs one at a time on a machine.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
OUT_DIR=${OUT_DIR:-$ROOT/packaging/out}
BIN=/usr/lib/postgresql/15/bin
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
arch=$(dpkg --print-architecture)
ext_deb=$(ls "$OUT_DIR"/postgresql-15-rowsec_"$version"-*_"$arch".deb | tail -n1)
cli_deb=$(ls "$OUT_DIR"/rowsec_"$version"-*_"$arch".deb | tail -n1)
[ "$(id -u)" = 0 ] || { echo "test-deb.sh: needs root (dpkg -i)" >&2; exit 2; }

exec 9>/tmp/rowsec-deb-test.lock
flock 9
for pkg in postgresql-15-rowsec rowsec; do
    if dpkg -s "$pkg" >/dev/null 2>&1; then
        echo "test-deb.sh: $pkg is installed already; remove it first (dpkg -r $pkg)" >&2
        exit 2
    fi
done
for f in /usr/lib/postgresql/15/lib/rowsec.so /usr/share/postgresql/15/extension/rowsec.control /usr/bin/rowsec; do
    if [ -e "$f" ]; then
        echo "test-deb.sh: $f exists and no rowsec package owns it: not overwriting it" >&2
        exit 2
    fi
done

WORK=$(mktemp -d /tmp/rowsec-deb-test.XXXXXX)
chmod 755 "$WORK"
chown postgres: "$WORK"
DATA=$WORK/data
cleanup() {
    runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
    dpkg -r rowsec postgresql-15-rowsec >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass=0
ok() { pass=$((pass + 1)); echo "ok $pass - $*"; }

dpkg -i "$ext_deb" "$cli_deb" >/dev/null
ok "dpkg -i $(basename "$ext_deb") $(basename "$cli_deb")"
[ "$(command -v rowsec)" = /usr/bin/rowsec ] || fail "rowsec is not /usr/bin/rowsec"
[ "$(/usr/bin/rowsec --version)" = "rowsec $version" ] || fail "rowsec --version: $(/usr/bin/rowsec --version)"
man -l /usr/share/man/man1/rowsec.1.gz 2>/dev/null | grep -q "EXIT STATUS" || fail "man page without EXIT STATUS"
bash -n /usr/share/bash-completion/completions/rowsec || fail "bash completion does not parse"
ok "/usr/bin/rowsec $version with its man page and completions"

runuser -u postgres -- "$BIN/initdb" -D "$DATA" -A trust >/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -l "$WORK/log" -w \
    -o "-p $port -k $WORK -c listen_addresses='' -c shared_preload_libraries=rowsec" start >/dev/null \
    || { cat "$WORK/log"; fail "the cluster does not start with the packaged rowsec.so preloaded"; }
ok "a PostgreSQL 15 cluster starts with shared_preload_libraries = rowsec"

psql() { runuser -u postgres -- "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$port" "$@"; }
cp examples/crm.yaml examples/crm-schema.sql "$WORK/"
(cd "$WORK" && /usr/bin/rowsec compile crm.yaml --schema crm-schema.sql -o crm.sql --quiet)
chmod a+r "$WORK"/*
psql -d postgres -c "CREATE DATABASE crm"
psql -d crm -f "$WORK/crm-schema.sql"
psql -d crm -f "$WORK/crm.sql" 2>"$WORK/apply.log" || { cat "$WORK/apply.log"; fail "the compiled script failed"; }
grep -q "rowsec: spec .* applied" "$WORK/apply.log" || fail "no summary: $(cat "$WORK/apply.log")"
[ "$(psql -d crm -At -c "SELECT extversion FROM pg_extension WHERE extname = 'rowsec'")" = "$version" ] \
    || fail "extension rowsec $version not created"
ok "the CRM example, compiled by /usr/bin/rowsec, applies (CREATE EXTENSION rowsec $version)"

psql -d crm <<'SQL'
CREATE ROLE alice LOGIN; GRANT sales_manager TO alice;
CREATE ROLE bob   LOGIN; GRANT sales_rep     TO bob;
INSERT INTO crm.app_users (id, name, manager_id, team_id, db_login) VALUES
  (1, 'Alice', NULL, 10, 'alice'), (2, 'Bob', 1, 20, 'bob'), (3, 'Carol', 1, 30, NULL);
INSERT INTO crm.accounts (owner_id, name, annual_revenue) VALUES
  (1, 'Acme', 5e6), (2, 'Globex', 1e6), (3, 'Initech', 2e6);
SQL
bob=$(psql -U bob -d crm -At -c 'SELECT string_agg(name, $$,$$ ORDER BY name) FROM crm.accounts')
[ "$bob" = Globex ] || fail "bob (sales_rep) sees: $bob"
alice=$(psql -U alice -d crm -At -c 'SELECT string_agg(name, $$,$$ ORDER BY name) FROM crm.accounts')
[ "$alice" = Acme,Globex,Initech ] || fail "alice (sales_manager) sees: $alice"
err=$(psql -U bob -d crm -At -c "INSERT INTO crm.accounts (owner_id, name) VALUES (3, 'x')" 2>&1) && fail "bob inserted for carol"
case "$err" in *"violates row-level security policy"*) ;; *) fail "bob's insert for carol: $err" ;; esac
ok "bob sees his own account (Globex), alice all three, bob cannot insert one for carol"

runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null
dpkg -r rowsec postgresql-15-rowsec >/dev/null
for f in /usr/lib/postgresql/15/lib/rowsec.so /usr/share/postgresql/15/extension/rowsec.control /usr/bin/rowsec; do
    [ ! -e "$f" ] || fail "$f left after dpkg -r"
done
ok "dpkg -r removes every file"
echo "packaging: $pass passed, 0 failed"

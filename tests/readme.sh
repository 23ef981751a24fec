#!/usr/bin/env bash
# Runs README.md's walk-through verbatim on a throwaway cluster: every fenced block that follows a
# `<!-- walkthrough -->` line. A ```sh block must succeed; in a ```console block each `$ command`
# runs and its output (stdout and stderr) must be exactly the lines under it. The extension
# install block is not marked: tests/run.sh has run those commands against its private
# PostgreSQL (ROWSEC_PG_BIN), whose binaries come first on PATH here.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
# shellcheck source=tests/pg.sh
source "$ROOT/tests/pg.sh"
: "${ROWSEC_PG_BIN:?set ROWSEC_PG_BIN to the bin directory of a PostgreSQL with the extension installed}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

DIR=$(mktemp -d /tmp/rowsec-readme.XXXXXX)
chmod 755 "$DIR"
[ "$(id -u)" = 0 ] && chown postgres: "$DIR"
PORT=$(free_port)
stop() {
    as_pg "$ROWSEC_PG_BIN/pg_ctl" -D "$DIR/data" stop -m immediate >/dev/null 2>&1 || true
    as_root rm -rf "$DIR"
}
trap stop EXIT

as_pg "$ROWSEC_PG_BIN/initdb" -D "$DIR/data" -U postgres --auth=trust >/dev/null
as_pg "$ROWSEC_PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
    -o "-p $PORT -k $DIR -c listen_addresses='' -c shared_preload_libraries=rowsec" start >/dev/null

export PATH="$ROWSEC_PG_BIN:$PATH" PGHOST="$DIR" PGPORT="$PORT"

# The marked blocks, as "<kind>\n<body>" records separated by the ASCII record separator.
blocks=$(awk '
    /^<!-- walkthrough -->$/ { want = 1; next }
    want && /^```/ { kind = substr($0, 4); want = 0; inside = 1; body = ""; next }
    inside && /^```$/ { printf "%s\n%s\036", kind, body; inside = 0; next }
    inside { body = body $0 "\n" }
' README.md)

n=0
failed=0
IFS=$'\036'
for block in $blocks; do
    [ -n "$block" ] || continue
    kind=${block%%$'\n'*}
    body=${block#*$'\n'}
    n=$((n + 1))
    case "$kind" in
        sh)
            echo "--- block $n (sh)"
            if ! bash -euo pipefail -c "$body"; then
                echo "README walk-through: block $n failed:"; echo "$body"
                exit 1
            fi
            ;;
        console)
            echo "--- block $n (console)"
            # Each "$ command" with the lines up to the next one.
            command=""; expected=""
            check() {
                [ -n "$command" ] || return 0
                actual=$(bash -c "$command" 2>&1 || true)
                while [[ $expected == *$'\n' ]]; do expected=${expected%$'\n'}; done
                if [ "$actual" != "$expected" ]; then
                    echo "README walk-through: \`$command\` printed:"; echo "$actual"
                    echo "README says:"; echo "$expected"
                    failed=1
                fi
            }
            while IFS= read -r line; do
                if [[ $line == '$ '* ]]; then
                    check
                    command=${line#\$ }; expected=""
                else
                    expected+="$line"$'\n'
                fi
            done <<< "$body"
            check
            ;;
        *)
            echo "README walk-through: block $n is \`\`\`$kind; only sh and console blocks can be run"
            exit 1
            ;;
    esac
done
unset IFS
[ "$n" -ge 4 ] || { echo "README walk-through: found only $n marked blocks"; exit 1; }
[ "$failed" = 0 ] || exit 1
echo "README walk-through: $n blocks ran as written"

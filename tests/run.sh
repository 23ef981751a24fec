#!/usr/bin/env bash
# The whole check of the repository, for CI and for people: installs what is missing
# (idempotently), then formatting, lints, the generator's tests, the extension's pgrx tests,
# installs the extension into a private copy of PostgreSQL 15 (target/pg, see tests/pg.sh; the
# system's PostgreSQL is never written to), and runs the end-to-end tests on clusters of that copy.
# Exits non-zero on the first failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
# shellcheck source=tests/pg.sh
source "$ROOT/tests/pg.sh"
SYSTEM_PG15_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PGRX_VERSION=0.18.0
# pgrx's configuration (which pg_config builds and tests use) is this checkout's own.
export PGRX_HOME=${PGRX_HOME_FOR_TESTS:-$ROOT/target/pgrx-home}
# The pgrx test cluster runs as postgres, so its directory lives under /tmp (one per checkout).
PGRX_TEST_DATA=/tmp/rowsec-pgrx-test-data-$(printf %s "$ROOT" | md5sum | cut -c1-8)

step() { printf '\n==> %s\n' "$*"; }
# Every test runner's output is also kept here, to print one total at the end.
RESULTS=$(mktemp /tmp/rowsec-test-results.XXXXXX)
tally() { tee -a "$RESULTS"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# End-to-end clusters live in /tmp/rowsec-e2e-<pid>-<n>; each test binary's watchdog removes
# its own. This catches what a killed run leaves behind: only dirs whose test process is gone.
cleanup_clusters() {
    local d pid
    for d in /tmp/rowsec-e2e-[0-9]*-[0-9]*; do
        [ -d "$d" ] || continue
        pid=${d#/tmp/rowsec-e2e-}; pid=${pid%%-*}
        if ! kill -0 "$pid" 2>/dev/null; then
            if [ -f "$d/data/postmaster.pid" ] && [ -n "${ROWSEC_PG_BIN:-}" ]; then
                as_root runuser -u postgres -- "$ROWSEC_PG_BIN/pg_ctl" -D "$d/data" stop -m immediate >/dev/null 2>&1 || true
            fi
            as_root rm -rf "$d"
        fi
    done
}
trap cleanup_clusters EXIT

step "system packages"
missing=()
# pgTAP and pg_prove: `rowsec verify --emit pgtap` is tested with them; chromium renders
# `rowsec review --format html` in a test.
for pkg in postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl chromium libclang-dev clang sudo; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
    echo "all present"
fi

step "cargo-pgrx $PGRX_VERSION"
if cargo pgrx --version 2>/dev/null | grep -qx "cargo-pgrx $PGRX_VERSION"; then
    echo "present: $(cargo pgrx --version)"
else
    echo "installing cargo-pgrx $PGRX_VERSION"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

step "private PostgreSQL 15 for the tests"
PG_CONFIG=$(private_pg 15 "$SYSTEM_PG15_CONFIG")
export ROWSEC_PG_BIN
ROWSEC_PG_BIN=$("$PG_CONFIG" --bindir)
echo "$("$PG_CONFIG" --version) at $ROWSEC_PG_BIN"
# pgTAP comes from Debian's package into the system's tree; the private copy needs its files too.
cp -u "$(/usr/lib/postgresql/15/bin/pg_config --sharedir)"/extension/pgtap* "$("$PG_CONFIG" --sharedir)/extension/"
if grep -qsx "pg15 = \"$PG_CONFIG\"" "$PGRX_HOME/config.toml"; then
    echo "pgrx ($PGRX_HOME) already knows it"
else
    echo "cargo pgrx init --pg15 $PG_CONFIG"
    cargo pgrx init --pg15 "$PG_CONFIG"
fi

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy (every workspace crate present) -- -D warnings"
packages=()
for dir in generator live cli core extension tests; do
    if [ -f "$dir/Cargo.toml" ]; then
        packages+=(-p "$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$dir/Cargo.toml" | head -n1)")
    else
        echo "skipping $dir: not in the repository yet"
    fi
done
cargo clippy "${packages[@]}" --all-targets -- -D warnings

step "cargo test -p rowsec-generator (spec, SQL generation, oracle; no database)"
cargo test -p rowsec-generator 2>&1 | tally

step "cargo test -p rowsec-live (live-database library, unit tests)"
cargo test -p rowsec-live 2>&1 | tally

step "cargo test -p rowsec --test cli (the CLI without a database)"
cargo test -p rowsec --bins --test cli 2>&1 | tally

step "cargo test -p rowsec-core (the extension's logic, without pgrx or PostgreSQL)"
cargo test -p rowsec-core 2>&1 | tally

if [ -f extension/Cargo.toml ]; then
    step "extension tests: cargo pgrx test pg15"
    # The test cluster runs as postgres: give it a directory it owns.
    as_root rm -rf "$PGRX_TEST_DATA"
    (cd extension && cargo pgrx test pg15 --runas postgres --pgdata "$PGRX_TEST_DATA") 2>&1 | tally

    step "install the extension into the private PostgreSQL 15"
    (cd extension && as_root cargo pgrx install --pg-config "$PG_CONFIG")

    step "extension: cache invalidation across two concurrent sessions"
    bash extension/tests/two_sessions.sh

    step "README walk-through, run verbatim on a throwaway cluster (tests/readme.sh)"
    bash tests/readme.sh
else
    echo "skipping the extension: not in the repository yet"
fi

step "end-to-end tests: cargo test -p rowsec-e2e"
cargo test -p rowsec-e2e -- --nocapture 2>&1 | tally

step "the CLI against live databases: cargo test -p rowsec --test 'live_*' (plan, apply, verify, ...)"
cargo test -p rowsec --test 'live_*' 2>&1 | tally

step "all checks passed ($ROOT)"
passed=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$RESULTS" | awk '{ s += $1 } END { print s + 0 }')
rm -f "$RESULTS"
echo "rowsec: $passed passed, 0 failed"

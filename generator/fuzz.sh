#!/usr/bin/env bash
# The long fuzz run (issue 14): each target of generator/tests/fuzz.rs for SECONDS (default
# 600), one after the other, from SEED (default: the time). A failure saves its input under
# target/fuzz-findings/; once fixed, copy it into generator/tests/fuzz/regressions/<target>/,
# where every run (tests/run.sh included) checks it again.
# cargo-fuzz (libFuzzer) is not used: it needs the cargo-fuzz binary and nightly Rust.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export ROWSEC_FUZZ_SECONDS=${1:-600}
export ROWSEC_FUZZ_SEED=${SEED:-$(date +%s)}
echo "fuzzing each target for ${ROWSEC_FUZZ_SECONDS}s, seed ${ROWSEC_FUZZ_SEED}"
cargo test --release -p rowsec-generator --test fuzz -- --nocapture --test-threads 1

#!/usr/bin/env bash
# The long fuzz run (issue 14): each target for SECONDS (first argument, default 600), one after
# the other, or side by side with ROWSEC_FUZZ_PARALLEL=1 (libFuzzer only). Not part of tests/run.sh, which runs the short stable loop (generator/tests/fuzz.rs).
#
# With cargo-fuzz installed (`cargo install cargo-fuzz`): libFuzzer on the targets of
# generator/fuzz/ (`spec`, `always`; the properties are generator/tests/fuzz_properties/). Stable
# Rust takes cargo-fuzz's nightly flags with RUSTC_BOOTSTRAP=1; --sanitizer none because the code
# is safe Rust and the properties, not a sanitizer, are the oracle. Seeds: the repository's specs
# and the `always` corpus, regressions included; the corpus libFuzzer grows is kept in
# generator/fuzz/corpus/<target>/ (ignored by git). A failing input is written to
# generator/fuzz/artifacts/<target>/; once fixed, copy it into
# generator/tests/fuzz/regressions/<target>/, where every run of the stable loop checks it again.
# generator/fuzz/tokens.dict gives libFuzzer the stable loop's tokens (YAML syntax, spec keys, SQL).
#
# Without cargo-fuzz (or with ROWSEC_FUZZ_STABLE=1): the stable mutation loop from SEED (default:
# the time); its failures go to target/fuzz-findings/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
seconds=${1:-600}
if [ -z "${ROWSEC_FUZZ_STABLE:-}" ] && cargo fuzz --version >/dev/null 2>&1; then
    export RUSTC_BOOTSTRAP=1
    # libFuzzer would cap inputs at the largest seed; specs and expressions may grow past them.
    declare -A max_len=([spec]=16384 [always]=2048)
    declare -A seeds=(
        [spec]="../examples ../tests/fixtures tests/bad-specs tests/fuzz/regressions/spec"
        [always]="tests/fuzz/corpus/always tests/fuzz/regressions/always"
    )
    # Built once before any run, so two runs side by side do not build it twice.
    cargo fuzz build --sanitizer none
    fuzz() {
        local target=$1 existing=() d
        mkdir -p "fuzz/corpus/$target"
        for d in ${seeds[$target]}; do [ -d "$d" ] && existing+=("$d"); done
        echo "libFuzzer: target $target for ${seconds}s"
        # The first directory is the one libFuzzer adds to; the seed directories are only read.
        cargo fuzz run --sanitizer none "$target" "fuzz/corpus/$target" "${existing[@]}" -- \
            -max_total_time="$seconds" -max_len="${max_len[$target]}" -timeout=20 -rss_limit_mb=2048 -dict=fuzz/tokens.dict -print_final_stats=1
    }
    if [ -n "${ROWSEC_FUZZ_PARALLEL:-}" ]; then
        # One core a target, each with its own log (fuzz/logs/<target>.log, ignored by git); the
        # run fails when either target found something.
        mkdir -p fuzz/logs
        pids=()
        for target in spec always; do
            fuzz "$target" >"fuzz/logs/$target.log" 2>&1 &
            pids+=($!)
        done
        status=0
        for pid in "${pids[@]}"; do wait "$pid" || status=1; done
        for target in spec always; do echo "== $target"; tail -n 20 "fuzz/logs/$target.log"; done
        exit "$status"
    fi
    for target in spec always; do fuzz "$target"; done
else
    export ROWSEC_FUZZ_SECONDS=$seconds
    export ROWSEC_FUZZ_SEED=${SEED:-$(date +%s)}
    echo "cargo-fuzz is not installed (or ROWSEC_FUZZ_STABLE is set): the stable loop, each target for ${seconds}s, seed ${ROWSEC_FUZZ_SEED}"
    cargo test --release -p rowsec-generator --test fuzz -- --nocapture --test-threads 1
fi

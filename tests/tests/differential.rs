//! Issue 14: random specs, directories, rows and shares against the oracle (see
//! tests/src/differential.rs). `ROWSEC_CASES` cases (default 12: the fixed-seed run of
//! tests/run.sh; the nightly run is `ROWSEC_CASES=10000`), from `ROWSEC_SEED` (default 14).

use std::time::Instant;

use rowsec_e2e::differential::{self, Case};
use rowsec_e2e::fixture::env;

fn var(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// At most this many smaller cases are tried while shrinking a failure.
const SHRINK_BUDGET: usize = 400;

#[test]
fn random_specs_do_in_the_database_exactly_what_the_oracle_says() {
    let (cases, seed) = (var("ROWSEC_CASES", 12), var("ROWSEC_SEED", 14));
    let env = env();
    let db = env.cluster.create_database("diff", None);
    let mut admin = env.cluster.admin(&db);
    differential::prepare(&mut admin);
    let started = Instant::now();
    let (mut comparisons, mut redrawn) = (0, 0);
    for i in 0..cases {
        // Each case's seed is printed on failure: ROWSEC_SEED=<it> ROWSEC_CASES=1 replays it.
        let mut case_seed = seed.wrapping_mul(0x1000_0000_01B3).wrapping_add(i);
        let (case, loaded) = loop {
            let case = Case::random(case_seed);
            if let Some(l) = case.load() {
                break (case, l);
            }
            // Random scopes can make a spec the loader rightly refuses (update without select).
            redrawn += 1;
            case_seed = case_seed.wrapping_add(0x9E37_79B9);
        };
        let (mismatches, n) = differential::run(&mut admin, &case, &loaded);
        comparisons += n;
        if !mismatches.is_empty() {
            let (small, found) = shrink(&mut admin, case, mismatches);
            panic!(
                "case {i} differs from the oracle in {} comparisons; shrunk to:\n{}\nfirst differences:\n{}",
                found.len(),
                small.describe(),
                found.iter().take(15).cloned().collect::<Vec<_>>().join("\n")
            );
        }
    }
    println!(
        "differential: {cases} cases (seed {seed}), {comparisons} comparisons, 0 mismatched, {redrawn} invalid draws redrawn, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Greedy shrinking: take the first simpler case that still differs, until none does.
fn shrink(admin: &mut postgres::Client, mut case: Case, mut found: Vec<String>) -> (Case, Vec<String>) {
    let mut tried = 0;
    'outer: while tried < SHRINK_BUDGET {
        for smaller in case.simpler() {
            let Some(loaded) = smaller.load() else { continue };
            tried += 1;
            let (m, _) = differential::run(admin, &smaller, &loaded);
            if !m.is_empty() {
                case = smaller;
                found = m;
                continue 'outer;
            }
            if tried >= SHRINK_BUDGET {
                break;
            }
        }
        break;
    }
    (case, found)
}

//! Issue 14: random specs, directories, rows and shares against the oracle (see
//! tests/src/differential.rs). `ROWSEC_CASES` cases (default 12: the fixed-seed run of
//! tests/run.sh; the nightly run is `ROWSEC_CASES=10000`), from `ROWSEC_SEED` (default 14), on
//! `ROWSEC_JOBS` clusters side by side (default: one per core from 200 cases, else one).

use std::time::Instant;

use rowsec_e2e::cluster::Cluster;
use rowsec_e2e::differential::{self, Case};
use rowsec_e2e::fixture::env;

fn var(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// At most this many smaller cases are tried while shrinking a failure.
const SHRINK_BUDGET: usize = 400;

/// How many clusters run cases side by side: `ROWSEC_JOBS`, else one per core for a nightly-sized
/// run and one for the small fixed-seed run (a second cluster would cost more than it saves).
/// Each needs a cluster of its own: the cases' roles and logins are cluster-wide.
fn jobs(cases: u64) -> u64 {
    let cores = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
    let default = if cases >= 200 { cores } else { 1 };
    var("ROWSEC_JOBS", default).clamp(1, cases.max(1))
}

#[test]
fn random_specs_do_in_the_database_exactly_what_the_oracle_says() {
    let (cases, seed) = (var("ROWSEC_CASES", 12), var("ROWSEC_SEED", 14));
    // A failure names its case: ROWSEC_FIRST_CASE=i with ROWSEC_CASES=i+1 replays just it.
    let first = var("ROWSEC_FIRST_CASE", 0);
    let jobs = jobs(cases.saturating_sub(first));
    let started = Instant::now();
    // Case i runs in job i % jobs: the same seed gives the same cases whatever the job count.
    let results: Vec<Result<Tally, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..jobs).map(|job| scope.spawn(move || run_job(first + job, jobs, cases, seed))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a job panicked (see above)".to_owned()))).collect()
    });
    let ran = cases.saturating_sub(first);
    let mut t = Tally::default();
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(job) => {
                t.comparisons += job.comparisons;
                t.redrawn += job.redrawn;
                t.setting += job.setting;
                t.signed += job.signed;
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    println!(
        "differential: {ran} cases (seed {seed}, from case {first}, {jobs} clusters; identity: {} login, {} setting, {} signed), \
         {} comparisons, 0 mismatched, {} invalid draws redrawn, {:.1} s",
        ran - t.setting - t.signed,
        t.setting,
        t.signed,
        t.comparisons,
        t.redrawn,
        started.elapsed().as_secs_f64()
    );
}

/// What a job did.
#[derive(Default)]
struct Tally {
    comparisons: usize,
    redrawn: u64,
    /// Cases under the setting identity, unsigned and signed (the rest are login identity).
    setting: u64,
    signed: u64,
}

/// Runs cases `from`, `from + jobs`, ... below `cases` on a cluster of its own (the shared one
/// when alone). Returns the comparisons made and the invalid draws redrawn, or the shrunk first
/// mismatch.
fn run_job(from: u64, jobs: u64, cases: u64, seed: u64) -> Result<Tally, String> {
    let own;
    let cluster = if jobs == 1 {
        &env().cluster
    } else {
        own = Cluster::start();
        &own
    };
    let db = cluster.create_database("diff", None);
    let mut admin = cluster.admin(&db);
    differential::prepare(&mut admin);
    let mut t = Tally::default();
    for i in (from..cases).step_by(jobs as usize) {
        let mut case_seed = seed.wrapping_mul(0x1000_0000_01B3).wrapping_add(i);
        let (case, loaded) = loop {
            let case = Case::random(case_seed);
            if let Some(l) = case.load() {
                break (case, l);
            }
            // Random scopes can make a spec the loader rightly refuses (update without select).
            t.redrawn += 1;
            case_seed = case_seed.wrapping_add(0x9E37_79B9);
        };
        let (mismatches, n) = differential::run(&mut admin, &case, &loaded);
        t.comparisons += n;
        t.signed += u64::from(case.signed);
        t.setting += u64::from(case.setting_identity && !case.signed);
        if !mismatches.is_empty() {
            let (small, found) = shrink(&mut admin, case, mismatches);
            return Err(format!(
                "case {i} differs from the oracle in {} comparisons (replay: ROWSEC_SEED={seed} ROWSEC_FIRST_CASE={i} ROWSEC_CASES={}); shrunk to:\n{}\nfirst differences:\n{}",
                found.len(),
                i + 1,
                small.describe(),
                found.iter().take(15).cloned().collect::<Vec<_>>().join("\n")
            ));
        }
    }
    Ok(t)
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

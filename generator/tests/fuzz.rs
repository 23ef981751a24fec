//! Fuzzing on stable Rust (issue 14): a seeded mutation loop over the corpus in the repository,
//! short enough for every test run, checking the properties (tests/fuzz_properties/) that the
//! libFuzzer targets of generator/fuzz/ check in the long run (generator/fuzz.sh):
//!
//! - the spec loader and the `always` checker never panic and never hang (an input that runs
//!   longer than [`HANG`] aborts the run, naming the input);
//! - every rejection is a diagnostic with a valid position: line 1 or more and within the file,
//!   byte offsets inside the text and on character boundaries, and the report renders;
//! - an accepted spec compiles.
//!
//! Corpus: tests/fuzz/corpus/ (always expressions), the repository's specs (examples/,
//! tests/fixtures/, tests/bad-specs/). Every input that ever failed is kept in
//! tests/fuzz/regressions/{spec,always}/ and checked on every run.
//!
//! `ROWSEC_FUZZ_CASES` mutated inputs per target (default 3000, a few seconds: tests/run.sh);
//! `ROWSEC_FUZZ_SECONDS` runs each target for that long instead (generator/fuzz.sh without
//! cargo-fuzz); `ROWSEC_FUZZ_SEED` (default 14).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod fuzz_properties;

use fuzz_properties::{check_always, check_spec, invoice_columns, schema, valid_position};

/// An input that takes this long is a hang (no single input comes near it).
const HANG: Duration = Duration::from_secs(20);

const TOKENS: &[&str] = &[
    ":",
    ": ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\"",
    "'",
    "*",
    "&a ",
    "*a",
    "!!str ",
    "!!map ",
    "\n",
    "\n  ",
    "  ",
    "\t",
    "-",
    "- ",
    "#",
    "|",
    ">",
    "?",
    "%YAML 1.2\n",
    "---\n",
    "...\n",
    "\\",
    "\0",
    "é",
    "😀",
    "\u{feff}",
    "NOT ",
    "(",
    ")",
    "::",
    ";",
    "$$",
    "AND ",
    "OR ",
    "voided",
    "total",
    "= ",
    "IS NULL",
    "(SELECT 1)",
    "now()",
    "current_user",
    "\"*\"",
    "none",
    "all",
    "own",
    "team",
    "subtree",
    "select",
    "insert",
    "update",
    "delete",
    "read",
    "write",
    "crm.accounts",
    "tables",
    "roles",
    "levels",
    "identity",
    "setting",
    "signed",
    "references",
    "version",
    "1",
    "99999999999999999999",
    "-1",
    "null",
    "~",
    "true",
    "no",
    "0x1F",
    "1e400",
    "crm.\"Weird\"",
    "\"a\"\"b\"",
];

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// One mutation: replace, insert, delete or duplicate a range, insert a token, splice another
/// input in. Works on bytes; the result is turned back into text lossily (the loader takes
/// `&str`, as the CLI does after reading the file as UTF-8).
fn mutate(rng: &mut Rng, input: &str, corpus: &[String]) -> String {
    let mut b = input.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        let len = rng.below(16).min(b.len() - at);
        match rng.below(6) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next_u64() as u8;
            }
            1 => {
                b.drain(at..at + len);
            }
            2 => {
                let copy = b[at..at + len].to_vec();
                b.splice(at..at, copy);
            }
            3 => {
                let other = corpus[rng.below(corpus.len())].as_bytes();
                let from = rng.below(other.len() + 1);
                let n = rng.below(64).min(other.len() - from);
                b.splice(at..at, other[from..from + n].iter().copied());
            }
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                b.splice(at..at, t.iter().copied());
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut v: Vec<(PathBuf, String)> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "sql"))
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|s| (p, s)))
        .collect();
    v.sort();
    v
}

/// Runs `check` on the corpus and on mutations of it; on a failure, writes the input under
/// target/ and panics naming it.
fn fuzz(target: &str, corpus: Vec<String>, check: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) {
    let cases: u64 = std::env::var("ROWSEC_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let seconds: Option<u64> = std::env::var("ROWSEC_FUZZ_SECONDS").ok().and_then(|v| v.parse().ok());
    let seed: u64 = std::env::var("ROWSEC_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(14);
    // The watchdog: an input running past HANG is a hang; it is saved and the run aborts.
    let current: Arc<Mutex<(Instant, String)>> = Arc::new(Mutex::new((Instant::now(), String::new())));
    let done = Arc::new(AtomicU64::new(0));
    {
        let (current, done, target) = (current.clone(), done.clone(), target.to_owned());
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            if done.load(Ordering::SeqCst) == u64::MAX {
                return;
            }
            let (started, input) = current.lock().unwrap().clone();
            if started.elapsed() > HANG {
                let path = save(&target, "hang", &input);
                eprintln!("fuzz {target}: an input runs for more than {HANG:?} (a hang), saved in {}", path.display());
                std::process::abort();
            }
        });
    }
    let started = Instant::now();
    let mut rng = Rng(seed);
    let mut run = 0u64;
    let run_one = |input: &str| {
        *current.lock().unwrap() = (Instant::now(), input.to_owned());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(input)));
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(why),
            Err(_) => Some("panicked".to_owned()),
        };
        if let Some(why) = failure {
            let path = save(target, "crash", input);
            panic!(
                "fuzz {target}: {why}; input saved in {} (copy it into generator/tests/fuzz/regressions/{target}/ once fixed)",
                path.display()
            );
        }
        done.fetch_add(1, Ordering::SeqCst);
    };
    for input in &corpus {
        run_one(input);
    }
    loop {
        let more = match seconds {
            Some(s) => started.elapsed() < Duration::from_secs(s),
            None => run < cases,
        };
        if !more {
            break;
        }
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, base, &corpus);
        run_one(&input);
        run += 1;
    }
    done.store(u64::MAX, Ordering::SeqCst);
    println!(
        "fuzz {target}: {} corpus inputs, {run} mutated inputs, seed {seed}, {:.1} s, no failure",
        corpus.len(),
        started.elapsed().as_secs_f64()
    );
}

fn save(target: &str, kind: &str, input: &str) -> PathBuf {
    let dir = root().join("target/fuzz-findings");
    let _ = std::fs::create_dir_all(&dir);
    let hash = input.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let path = dir.join(format!("{target}-{kind}-{hash:016x}.txt"));
    let _ = std::fs::write(&path, input);
    path
}

fn spec_corpus() -> Vec<String> {
    let r = root();
    [
        r.join("examples"),
        r.join("tests/fixtures"),
        r.join("generator/tests/bad-specs"),
        r.join("generator/tests/fuzz/regressions/spec"),
    ]
    .iter()
    .flat_map(|d| files(d))
    .filter(|(p, _)| p.extension().is_some_and(|e| e == "yaml"))
    .map(|(_, s)| s)
    .collect()
}

fn always_corpus() -> Vec<String> {
    let r = root();
    [r.join("generator/tests/fuzz/corpus/always"), r.join("generator/tests/fuzz/regressions/always")]
        .iter()
        .flat_map(|d| files(d))
        .map(|(_, s)| s)
        .collect()
}

#[test]
fn the_spec_loader_survives_mutated_specs() {
    let corpus = spec_corpus();
    assert!(corpus.len() > 50, "the corpus is the repository's specs");
    let schema = schema();
    fuzz("spec", corpus, move |s| check_spec(s, &schema));
}

#[test]
fn the_always_checker_survives_mutated_expressions() {
    let corpus = always_corpus();
    assert!(corpus.len() >= 12);
    let (columns, schema) = (invoice_columns(), schema());
    assert!(!columns.is_empty());
    fuzz("always", corpus, move |s| check_always(s, &columns, &schema));
}

/// The position check is not vacuous: a span outside its file, or inside a character, fails it.
#[test]
fn the_position_check_refuses_a_position_outside_the_file() {
    use rowsec_generator::diagnostic::Span;
    let text = "version: é\n";
    assert!(valid_position(text, Span { line: 1, col: 9, start: 9, end: 11 }));
    assert!(!valid_position(text, Span { line: 9, col: 0, start: 0, end: 0 }), "line past the end");
    assert!(!valid_position(text, Span { line: 1, col: 0, start: 5, end: 60 }), "offset past the end");
    assert!(!valid_position(text, Span { line: 1, col: 0, start: 10, end: 10 }), "inside a character");
    assert!(!valid_position(text, Span { line: 0, col: 0, start: 0, end: 0 }), "line 0");
}

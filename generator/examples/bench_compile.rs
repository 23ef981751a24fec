//! Benchmark (not a test): load and compile a generated spec with 2,000 tables and 200 roles.
//!
//!     cargo run --release -p rowsec-generator --example bench_compile
//!
//! Prints the median of several runs for each stage.

use std::fmt::Write;
use std::time::{Duration, Instant};

fn generated_spec(tables: usize, roles: usize) -> String {
    let mut s = String::from(
        "version: 1\ndirectory: { table: app.people, id: id, manager: manager_id, team: team_id, login: login, active: active }\nidentity: login\nlevels:\n  full: { select: all, insert: all, update: all, delete: all }\n  manager: { select: all, insert: subtree, update: subtree, delete: subtree }\n  individual: { select: team, insert: own, update: own, delete: own }\ntables:\n",
    );
    for t in 0..tables {
        let _ = write!(s, "  app.table_{t:04}: {{ key: id, owner: owner_id, sharing: {}", t % 3 == 0);
        if t % 2 == 0 {
            let _ = write!(s, ", columns: {{ amount: financial, phone: pii }}");
        }
        if t % 5 == 0 {
            let _ = write!(s, ", always: \"NOT archived\"");
        }
        s.push_str(" }\n");
    }
    s.push_str("roles:\n");
    let levels = ["full", "manager", "individual"];
    for r in 0..roles {
        let _ = write!(
            s,
            "  role_{r:03}: {{ level: {}, fields: {{ financial: {}, pii: read }}",
            levels[r % 3],
            ["none", "read", "write"][r % 3]
        );
        if r % 4 == 0 {
            let _ = write!(s, ", tables: {{ app.table_{:04}: none, \"*\": {{ delete: none }} }}", r % tables);
        }
        s.push_str(" }\n");
    }
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let source = generated_spec(2000, 200);
    let (mut load, mut resolve, mut compile) = (Vec::new(), Vec::new(), Vec::new());
    let mut bytes = 0;
    for _ in 0..7 {
        let t = Instant::now();
        let loaded = rowsec_generator::load_str("bench.yaml", &source, None).expect("valid");
        load.push(t.elapsed());
        let t = Instant::now();
        let g = rowsec_generator::resolve::grants(&loaded.spec);
        resolve.push(t.elapsed());
        drop(g);
        let t = Instant::now();
        let sql = rowsec_generator::compile(&loaded);
        compile.push(t.elapsed());
        bytes = sql.len();
    }
    let (l, c) = (median(load), median(compile));
    println!(
        "spec: 2000 tables, 200 roles, {} KiB of YAML; script: {} MiB",
        source.len() / 1024,
        bytes / (1024 * 1024)
    );
    println!(
        "load+validate: {l:?}  resolve (part of compile): {:?}  compile (incl. resolve): {c:?}  total: {:?} (median of 7)",
        median(resolve),
        l + c
    );
}

//! Benchmark (not a test): load and compile a generated spec, by default 2,000 tables and 200
//! roles (three levels, two classed columns on every other table, an `always` rule on every
//! fifth, overrides on every fourth role).
//!
//!     cargo run --release -p rowsec-generator --example bench_compile [TABLES ROLES [OUT_DIR]]
//!
//! Prints the median of several runs for each stage, the script's size and its number of
//! policies. With OUT_DIR it also writes `spec.yaml`, `schema.sql` (the tables the spec protects,
//! for a throwaway database) and `script.sql` there: extension/bench/script_scale.sh applies them.

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

/// The tables `generated_spec` protects, and its directory.
fn generated_schema(tables: usize) -> String {
    let mut s = String::from(
        "CREATE SCHEMA app;\nCREATE TABLE app.people (id bigint PRIMARY KEY, manager_id bigint, team_id bigint, login text, active boolean NOT NULL DEFAULT true);\n",
    );
    for t in 0..tables {
        let _ = writeln!(
            s,
            "CREATE TABLE app.table_{t:04} (id bigserial PRIMARY KEY, owner_id bigint NOT NULL, name text, amount numeric, phone text, archived boolean NOT NULL DEFAULT false);"
        );
    }
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: usize| args.get(i).map_or(default, |a| a.parse().expect("a whole number"));
    let (tables, roles) = (number(0, 2000), number(1, 200));
    let out_dir = args.get(2).map(std::path::PathBuf::from);
    let source = generated_spec(tables, roles);
    let (mut load, mut resolve, mut compile) = (Vec::new(), Vec::new(), Vec::new());
    let mut sql = String::new();
    for _ in 0..7 {
        let t = Instant::now();
        let loaded = rowsec_generator::load_str("bench.yaml", &source, None).expect("valid");
        load.push(t.elapsed());
        let t = Instant::now();
        let g = rowsec_generator::resolve::grants(&loaded.spec);
        resolve.push(t.elapsed());
        drop(g);
        let t = Instant::now();
        sql = rowsec_generator::compile(&loaded);
        compile.push(t.elapsed());
    }
    let (l, c) = (median(load), median(compile));
    let policies = sql.matches("CREATE POLICY ").count();
    println!(
        "spec: {tables} tables, {roles} roles, {} KiB of YAML; script: {:.1} MiB ({} bytes), {policies} policies",
        source.len() / 1024,
        sql.len() as f64 / (1024.0 * 1024.0),
        sql.len()
    );
    println!(
        "load+validate: {l:?}  resolve (part of compile): {:?}  compile (incl. resolve): {c:?}  total: {:?} (median of 7)",
        median(resolve),
        l + c
    );
    if let Some(dir) = out_dir {
        std::fs::create_dir_all(&dir).expect("OUT_DIR");
        std::fs::write(dir.join("spec.yaml"), &source).expect("spec.yaml");
        std::fs::write(dir.join("schema.sql"), generated_schema(tables)).expect("schema.sql");
        std::fs::write(dir.join("script.sql"), &sql).expect("script.sql");
    }
}

//! What the live-database tests of the binary share: the binary, run from the repository root,
//! and URLs of the fixture's throwaway databases (rowsec_e2e).
#![allow(dead_code)]

use std::process::Stdio;

use assert_cmd::Command;
use rowsec_e2e::fixture::env;

pub fn rowsec() -> Command {
    let mut cmd = Command::cargo_bin("rowsec").unwrap();
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    // The tests give --db; the environment must not decide for them.
    for var in ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD"] {
        cmd.env_remove(var);
    }
    cmd
}

/// The binary as a std process, for tests that kill it.
pub fn rowsec_process() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("rowsec"));
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// A superuser URL of a database of the fixture's cluster.
pub fn url(db: &str) -> String {
    format!("postgresql://postgres@127.0.0.1:{}/{db}", env().cluster.port)
}

/// A URL as some other role.
pub fn url_as(user: &str, db: &str) -> String {
    format!("postgresql://{user}@127.0.0.1:{}/{db}", env().cluster.port)
}

/// Polls (without a deadline of its own: the test harness's is the bound) until `sql` returns true.
pub fn wait_until(client: &mut postgres::Client, sql: &str) {
    loop {
        if client.query_one(sql, &[]).unwrap().get::<_, bool>(0) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

//! `rowsec plan` and `rowsec apply` against throwaway databases of the CRM fixture.

mod common;

use common::{rowsec, rowsec_process, url, wait_until};
use predicates::prelude::*;
use rowsec_e2e::fixture::{catalog_snapshot, env, schema_path};

const CHANGED: &str = "tests/fixtures/crm-rep-no-delete.yaml";

#[test]
fn planning_a_database_the_spec_was_applied_to_shows_no_change() {
    let db = env().crm_db();
    rowsec()
        .args(["plan", "examples/crm.yaml", "--db", &url(&db)])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(": no changes"));
}

#[test]
fn plan_lists_a_changed_specs_changes_per_table_exits_1_and_changes_nothing() {
    let db = env().crm_db();
    let mut admin = env().cluster.admin(&db);
    let before = catalog_snapshot(&mut admin);
    let out = rowsec().args(["plan", CHANGED, "--db", &url(&db)]).assert().code(1).get_output().stdout.clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("\ncrm.activities\n"), "grouped under the table:\n{out}");
    // The delete policy is shared with support: it changes (sales_rep leaves its roles); the
    // revoked privilege is sales_rep's own.
    assert!(
        out.contains("\n  ~ policy crm.activities rowsec_delete_own\n      was: d t {sales_rep,support} "),
        "the shared policy, with its roles before:\n{out}"
    );
    assert!(
        out.contains("\n  role sales_rep\n    - privilege crm.activities sales_rep DELETE\n"),
        "per role, the revoked privilege:\n{out}"
    );
    assert!(out.contains("policy crm.activities"), "the policy:\n{out}");
    assert!(!out.contains("crm.accounts"), "nothing else changes:\n{out}");
    assert_eq!(before, catalog_snapshot(&mut admin), "plan changed the catalog");
}

#[test]
fn apply_then_plan_shows_no_change_and_json_lists_the_changes() {
    let db = env().crm_db();
    let out = rowsec()
        .args(["apply", CHANGED, "--db", &url(&db), "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let plan: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(plan["applied"], true);
    let changes = plan["changes"].as_array().unwrap();
    assert!(changes.iter().any(|c| c["kind"] == "privilege"
        && c["object"] == "crm.activities sales_rep DELETE"
        && c["change"] == "removed"
        && c["group"] == "crm.activities"
        && c["role"] == "sales_rep"));
    rowsec().args(["plan", CHANGED, "--db", &url(&db)]).assert().code(0).stdout(predicate::str::contains("no changes"));
    // And back: the reference spec's plan is exactly the reverse.
    rowsec().args(["plan", "examples/crm.yaml", "--db", &url(&db)]).assert().code(1);
}

#[test]
fn apply_dry_run_prints_the_changes_and_rolls_back() {
    let db = env().crm_db();
    let mut admin = env().cluster.admin(&db);
    let before = catalog_snapshot(&mut admin);
    rowsec()
        .args(["apply", CHANGED, "--dry-run", "--db", &url(&db)])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("would change"));
    assert_eq!(before, catalog_snapshot(&mut admin));
}

#[test]
fn plan_on_a_database_with_only_the_schema_creates_the_extension_and_protects_every_table() {
    let db = env().cluster.create_database("bare", None);
    let mut admin = env().cluster.admin(&db);
    admin.batch_execute(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
    let out =
        rowsec().args(["plan", "examples/crm.yaml", "--db", &url(&db)]).assert().code(1).get_output().stdout.clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("+ extension rowsec"), "{out}");
    for t in ["accounts", "contacts", "opportunities", "invoices", "activities"] {
        assert!(out.contains(&format!("+ table crm.{t}")), "crm.{t} protected:\n{out}");
    }
    let installed: bool =
        admin.query_one("SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'rowsec')", &[]).unwrap().get(0);
    assert!(!installed, "plan left the extension installed");
}

#[test]
fn a_second_apply_waits_for_the_first_and_says_so_when_it_gives_up() {
    let db = env().crm_db();
    let mut holder = env().cluster.admin(&db);
    // What a running apply holds.
    holder.execute("SELECT pg_advisory_lock($1)", &[&rowsec_live::plan::ADVISORY_LOCK]).unwrap();
    rowsec()
        .args(["apply", CHANGED, "--db", &url(&db), "--lock-timeout", "100ms", "--attempts", "2"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("another rowsec apply is running on this database"));
    holder.execute("SELECT pg_advisory_unlock($1)", &[&rowsec_live::plan::ADVISORY_LOCK]).unwrap();
    rowsec().args(["apply", CHANGED, "--db", &url(&db)]).assert().code(0);
}

#[test]
fn apply_retries_on_lock_timeout_and_ends_with_a_clear_error() {
    let db = env().crm_db();
    let mut reader = env().cluster.admin(&db);
    let mut tx = reader.transaction().unwrap();
    tx.batch_execute("LOCK crm.activities IN ACCESS SHARE MODE").unwrap();
    rowsec()
        .args(["apply", CHANGED, "--db", &url(&db), "--lock-timeout", "100ms", "--attempts", "2"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("gave up after 2 attempts"))
        .stderr(predicate::str::contains("lock timeout"));
    tx.rollback().unwrap();
}

/// Starts an apply of the changed spec that blocks on crm.activities' lock after changing the
/// tables before it, and returns it with the session holding the lock (in a transaction) and
/// the catalog as it was.
fn apply_blocked_mid_way(db: &str) -> (std::process::Child, postgres::Client, postgres::Client) {
    let mut holder = env().cluster.admin(db);
    holder.batch_execute("BEGIN; LOCK crm.activities IN ACCESS SHARE MODE").unwrap();
    let child = rowsec_process()
        .args(["apply", CHANGED, "--db", &url(db), "--lock-timeout", "0", "--attempts", "1"])
        .spawn()
        .unwrap();
    let mut watcher = env().cluster.admin(db);
    wait_until(
        &mut watcher,
        "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'rowsec' AND datname = current_database() AND wait_event_type = 'Lock')",
    );
    (child, holder, watcher)
}

#[test]
fn killing_the_client_mid_apply_leaves_the_database_as_before() {
    let db = env().crm_db();
    let before = catalog_snapshot(&mut env().cluster.admin(&db));
    let (mut child, mut holder, mut watcher) = apply_blocked_mid_way(&db);
    child.kill().unwrap();
    child.wait().unwrap();
    holder.batch_execute("COMMIT").unwrap();
    // The backend finishes the script, finds its client gone and rolls back.
    wait_until(&mut watcher, "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'rowsec' AND datname = current_database())");
    assert_eq!(before, catalog_snapshot(&mut watcher), "a killed apply changed the catalog");
    rowsec().args(["plan", CHANGED, "--db", &url(&db)]).assert().code(1);
}

#[test]
fn killing_the_backend_mid_apply_leaves_the_database_as_before() {
    let db = env().crm_db();
    let before = catalog_snapshot(&mut env().cluster.admin(&db));
    let (child, mut holder, mut watcher) = apply_blocked_mid_way(&db);
    watcher
        .batch_execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'rowsec' AND datname = current_database()")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    holder.batch_execute("COMMIT").unwrap();
    assert_eq!(before, catalog_snapshot(&mut watcher), "a terminated apply changed the catalog");
}

#[test]
fn bad_urls_unreachable_servers_and_unknown_databases_are_bad_input() {
    rowsec()
        .args(["plan", "examples/crm.yaml", "--db", "postgresql://postgres@127.0.0.1:notaport/crm"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--db postgresql://postgres@127.0.0.1:notaport/crm: not a PostgreSQL URL"));
    // Port 1 is privileged and unused on a test machine: connection refused.
    rowsec()
        .args(["plan", "examples/crm.yaml", "--db", "postgresql://postgres@127.0.0.1:1/crm"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot connect to postgres@127.0.0.1:1/crm"))
        .stderr(predicate::str::contains("fix: check that the server runs"));
    rowsec()
        .args(["plan", "examples/crm.yaml", "--db", &url("no_such_database")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not exist"))
        .stderr(predicate::str::contains("fix: create the database"));
}

#[test]
fn a_spec_that_does_not_match_the_database_is_bad_input_naming_the_table() {
    let db = env().cluster.create_database("empty", None);
    rowsec()
        .args(["plan", "examples/crm.yaml", "--db", &url(&db)])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the spec's directory.table names table crm.app_users"));
}

#[test]
fn plan_needs_a_superuser() {
    let db = env().crm_db();
    rowsec()
        .args(["plan", "examples/crm.yaml", "--db", &common::url_as("rs_p20", &db)])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("role rs_p20 is not a superuser"));
}

#[test]
fn apply_succeeds_on_a_later_attempt_once_the_lock_is_free() {
    let db = env().crm_db();
    let mut holder = env().cluster.admin(&db);
    holder.batch_execute("BEGIN; LOCK crm.activities IN ACCESS SHARE MODE").unwrap();
    let child = rowsec_process()
        .args(["apply", CHANGED, "--db", &url(&db), "--lock-timeout", "300ms", "--attempts", "5", "--format", "json"])
        .spawn()
        .unwrap();
    let mut watcher = env().cluster.admin(&db);
    // The first attempt waits for the lock, times out and rolls back; then the lock is freed.
    wait_until(
        &mut watcher,
        "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'rowsec' \
         AND datname = current_database() AND wait_event_type = 'Lock')",
    );
    wait_until(
        &mut watcher,
        "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'rowsec' \
         AND datname = current_database() AND state = 'idle')",
    );
    holder.batch_execute("COMMIT").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(plan["attempts"].as_u64().unwrap() >= 2, "{plan:#}");
    assert_eq!(plan["applied"], true);
    rowsec().args(["plan", CHANGED, "--db", &url(&db)]).assert().code(0);
}

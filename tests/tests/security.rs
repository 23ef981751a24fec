//! Issue 14: what a person can learn or do around row-level security, tried as that person.
//! The bypass catalogue (docs/security.md) points at these tests, one or more per entry.

use postgres::Client;
use rowsec_e2e::fixture::{db_error, env, keys};

/// The SQLSTATE a statement fails with, or `None` when it succeeds.
fn fails_with(c: &mut Client, sql: &str) -> Option<String> {
    match c.batch_execute(sql) {
        Ok(()) => None,
        Err(e) => Some(e.code().map_or_else(|| db_error(&e), |s| s.code().to_owned())),
    }
}

/// The ids of one `bigint[]` result.
fn ids(c: &mut Client, sql: &str) -> Vec<i64> {
    let mut v: Vec<i64> = c.query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {}", db_error(&e))).get(0);
    v.sort_unstable();
    v
}

fn references_spec() -> std::path::PathBuf {
    rowsec_e2e::cluster::repo_root().join("tests/fixtures/crm-references.yaml")
}

// ---- the two leaks found first ----

#[test]
fn a_rep_cannot_read_the_org_chart_through_the_helpers() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 21);
    for sql in ["SELECT rowsec.subtree_of(1)", "SELECT rowsec.team_of(23)", "SELECT * FROM rowsec.directory_status()"] {
        assert_eq!(fails_with(&mut rep, sql).as_deref(), Some("42501"), "{sql} as a sales rep");
    }
    // What the rep's own policies use answers for the rep only.
    assert_eq!(ids(&mut rep, "SELECT rowsec.subtree()"), vec![21]);
    assert_eq!(ids(&mut rep, "SELECT rowsec.team()"), vec![10, 20, 21, 22, 30, 31, 33, 55, 60, 73, 74]);
    // The tooling (the extension owner) still has them.
    let mut admin = env.cluster.admin(&db);
    assert_eq!(ids(&mut admin, "SELECT rowsec.subtree_of(20)"), vec![20, 30, 31, 33]);
}

/// A contact naming an account: (rep 21's own account, a hidden one of rep 23, a missing one).
const OWN_ACCOUNT: i64 = 2101;
const HIDDEN_ACCOUNT: i64 = 2301;
const MISSING_ACCOUNT: i64 = 999_999;

fn insert_contact(c: &mut Client, account: i64) -> Option<String> {
    let sql =
        format!("INSERT INTO crm.contacts (id, owner_id, full_name, account_id) VALUES (5000001, 21, 'x', {account})");
    let mut tx = c.transaction().unwrap();
    let r = tx.batch_execute(&sql);
    let _ = tx.rollback();
    r.err().map(|e| e.code().map_or_else(|| db_error(&e), |s| s.code().to_owned()))
}

#[test]
fn without_a_references_rule_a_foreign_key_is_an_existence_oracle_leaks() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 21);
    assert_eq!(
        keys(&mut rep, &format!("SELECT id FROM crm.accounts WHERE id = {HIDDEN_ACCOUNT}")),
        Ok(Default::default())
    );
    // The leak, as PostgreSQL has it: the hidden key is accepted, the missing one refused.
    assert_eq!(insert_contact(&mut rep, HIDDEN_ACCOUNT), None);
    assert_eq!(insert_contact(&mut rep, MISSING_ACCOUNT).as_deref(), Some("23503"));
}

#[test]
fn a_references_rule_refuses_hidden_and_missing_rows_alike() {
    let env = env();
    let db = env.database_for(&references_spec());
    let mut rep = env.login(&db, 21);
    assert_eq!(insert_contact(&mut rep, OWN_ACCOUNT), None, "an account the rep sees");
    assert_eq!(insert_contact(&mut rep, HIDDEN_ACCOUNT).as_deref(), Some("42501"));
    assert_eq!(insert_contact(&mut rep, MISSING_ACCOUNT).as_deref(), Some("42501"), "the same answer: no oracle");
    let mut tx = rep.transaction().unwrap();
    let moved = tx.batch_execute(&format!("UPDATE crm.contacts SET account_id = {HIDDEN_ACCOUNT} WHERE id = 2101"));
    assert_eq!(moved.err().and_then(|e| e.code().map(|c| c.code().to_owned())).as_deref(), Some("42501"));
    let _ = tx.rollback();
    // A NULL reference and rows that name nothing hidden are untouched.
    let mut tx = rep.transaction().unwrap();
    tx.batch_execute("UPDATE crm.contacts SET account_id = NULL WHERE id = 2101").unwrap();
    tx.batch_execute(&format!("UPDATE crm.contacts SET account_id = {OWN_ACCOUNT} WHERE id = 2101")).unwrap();
    let _ = tx.rollback();
    // A manager who sees every account may link to any of them.
    let mut manager = env.login(&db, 10);
    let mut tx = manager.transaction().unwrap();
    tx.batch_execute(&format!(
        "INSERT INTO crm.contacts (id, owner_id, full_name, account_id) VALUES (5000002, 20, 'y', {HIDDEN_ACCOUNT})"
    ))
    .unwrap();
    let _ = tx.rollback();
}

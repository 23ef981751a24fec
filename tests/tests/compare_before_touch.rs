//! The compiled script compares before it touches (issue 12): re-run with nothing changed it runs
//! no DDL on a protected table, so it waits for no lock even while other sessions are writing
//! every one of them; the script of a changed spec locks only the tables it changes, and the
//! audit trail's `apply` row says what changed.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use postgres::Client;

use rowsec_e2e::fixture::{catalog_snapshot as snapshot, crm_spec_path, db_error, env, load};

/// Every table crm.yaml protects.
const TABLES: &str = "crm.accounts, crm.activities, crm.contacts, crm.invoices, crm.opportunities";

/// The script for `spec`, waiting at most one second for any lock.
fn script(spec: &Path) -> String {
    let options = rowsec_generator::Options { lock_timeout: "1s".parse().unwrap(), ..rowsec_e2e::fixture::options() };
    rowsec_generator::compile_with(&load(spec), &options)
}

/// crm.yaml, except that sales_rep may not delete activities: only crm.activities changes.
fn rep_without_activity_delete() -> std::path::PathBuf {
    let spec = std::fs::read_to_string(crm_spec_path()).unwrap();
    let changed = spec.replace(
        "tables: { crm.invoices: { select: own } }",
        "tables: { crm.invoices: { select: own }, crm.activities: { delete: none } }",
    );
    assert_ne!(spec, changed, "the replaced line is in examples/crm.yaml");
    let path = std::env::temp_dir().join(format!("rowsec-e2e-cbt-{}.yaml", std::process::id()));
    std::fs::write(&path, changed).unwrap();
    path
}

/// Each test of this file applies scripts with a one-second lock timeout, and every script takes
/// the cluster-wide lock on pg_authid that serialises rowsec scripts across databases (roles are
/// shared): run concurrently, one test's script waits for another's (and times out). So they
/// take turns; each still has a database of its own.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A session that writes `tables` in an open transaction: it holds their ROW EXCLUSIVE locks,
/// which conflict with the SHARE, SHARE ROW EXCLUSIVE and ACCESS EXCLUSIVE locks of DDL
/// (CREATE/DROP POLICY, ALTER TABLE, CREATE TRIGGER), and with nothing a plain read takes.
fn writer(db: &str, tables: &str) -> Client {
    let mut c = env().cluster.admin(db);
    c.batch_execute(&format!("BEGIN; LOCK TABLE {tables} IN ROW EXCLUSIVE MODE")).unwrap();
    c
}

/// The `changes` of the newest `apply` row of the audit trail, without the spec's counts, as
/// `kind created/changed/removed` for the kinds with a change.
fn last_apply_changes(admin: &mut Client) -> Vec<String> {
    admin
        .query(
            "SELECT k || ' ' || concat_ws('/', v->>'created', v->>'changed', v->>'removed')
             FROM (SELECT detail FROM rowsec.audit_log WHERE kind = 'apply' ORDER BY id DESC LIMIT 1) a,
                  jsonb_each(a.detail->'changes') e(k, v)
             WHERE k <> 'spec' AND v::text <> '{\"changed\": 0, \"created\": 0, \"removed\": 0}'
             ORDER BY k",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn an_unchanged_rerun_waits_for_no_lock_while_every_protected_table_is_being_written() {
    let _turn = one_at_a_time();
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let before = snapshot(&mut admin);
    let mut writing = writer(&db, TABLES);
    admin
        .batch_execute(&script(&crm_spec_path()))
        .unwrap_or_else(|e| panic!("the unchanged script waited for a table's lock: {}", db_error(&e)));
    assert_eq!(snapshot(&mut admin), before, "an unchanged re-run changed the catalog");
    assert_eq!(last_apply_changes(&mut admin), Vec::<String>::new(), "its apply row records no change");
    writing.batch_execute("ROLLBACK").expect("the writer's transaction was never disturbed");
}

#[test]
fn a_changed_spec_locks_only_the_table_it_changes() {
    let _turn = one_at_a_time();
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let changed = rep_without_activity_delete();
    let changed_script = script(&changed);
    let _ = std::fs::remove_file(&changed);

    // Every other protected table is being written: the changed script still applies.
    let mut writing = writer(&db, "crm.accounts, crm.contacts, crm.invoices, crm.opportunities");
    admin
        .batch_execute(&changed_script)
        .unwrap_or_else(|e| panic!("the changed script locked a table it does not change: {}", db_error(&e)));
    writing.batch_execute("ROLLBACK").unwrap();
    // sales_rep left the shared DELETE policy (it is support's now) and lost the privilege.
    let delete_roles: String = admin
        .query_one(
            "SELECT string_agg(policyname || ' ' || roles::text, '; ' ORDER BY policyname) FROM pg_policies
             WHERE schemaname = 'crm' AND tablename = 'activities' AND cmd = 'DELETE'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!delete_roles.contains("sales_rep") && delete_roles.contains("support"), "{delete_roles}");
    assert_eq!(last_apply_changes(&mut admin), ["policy 0/1/0", "privilege 0/0/1"]);

    // The table it changes is locked: the script of crm.yaml must wait for it, gives up after
    // its lock timeout, and leaves everything as it was.
    let before = snapshot(&mut admin);
    let mut writing = writer(&db, "crm.activities");
    let e = admin.batch_execute(&script(&crm_spec_path())).expect_err("crm.activities is locked");
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("55P03"), "{}", db_error(&e));
    admin.batch_execute("ROLLBACK").unwrap();
    assert_eq!(snapshot(&mut admin), before, "a failed apply changed nothing");
    writing.batch_execute("ROLLBACK").unwrap();
    admin.batch_execute(&script(&crm_spec_path())).expect("applies once the writer is done");
    assert_eq!(last_apply_changes(&mut admin), ["policy 0/1/0", "privilege 1/0/0"]);
}

#[test]
fn a_hand_edited_policy_is_put_back_by_a_rerun() {
    let _turn = one_at_a_time();
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let before = snapshot(&mut admin);
    admin.batch_execute("ALTER POLICY rowsec_select_team ON crm.accounts USING (true)").unwrap();
    admin.batch_execute(&script(&crm_spec_path())).expect("re-run");
    assert_eq!(snapshot(&mut admin), before, "the re-run restored the spec's policy");
    assert_eq!(last_apply_changes(&mut admin), ["policy 0/1/0"]);
}

//! The generated script converges: applying it again changes nothing, and the script of a
//! changed spec removes exactly what the spec no longer grants.

use std::collections::BTreeSet;

use postgres::Client;

use rowsec_e2e::cluster::repo_root;
use rowsec_e2e::fixture::{catalog_snapshot as snapshot, compile, crm_spec_path, env, try_rolled_back};
use rowsec_generator::oracle::Outcome;

fn diff(a: &BTreeSet<String>, b: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    (a.difference(b).cloned().collect(), b.difference(a).cloned().collect())
}

#[test]
fn applying_the_generated_script_twice_changes_nothing() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let before = snapshot(&mut admin);
    admin.batch_execute(&compile(&crm_spec_path())).expect("second run");
    let after = snapshot(&mut admin);
    let (removed, added) = diff(&before, &after);
    assert!(
        removed.is_empty() && added.is_empty(),
        "second run changed the catalog\nremoved: {removed:#?}\nadded: {added:#?}"
    );
    assert!(before.iter().any(|l| l.starts_with("policy ")), "snapshot sees policies");
}

#[test]
fn the_script_compiled_without_the_schema_grants_exactly_the_same() {
    // Without --schema, column lists are computed from the catalog when the script runs.
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let before = snapshot(&mut admin);
    let without_schema = rowsec_generator::load(&crm_spec_path(), None).expect("loads");
    admin
        .batch_execute(&rowsec_generator::compile_with(&without_schema, &rowsec_e2e::fixture::options()))
        .expect("applies");
    let (removed, added) = diff(&before, &snapshot(&mut admin));
    assert!(removed.is_empty() && added.is_empty(), "removed: {removed:#?}\nadded: {added:#?}");
    assert!(before.iter().any(|l| l.starts_with("colacl crm.accounts.name ")), "snapshot sees column grants");
}

#[test]
fn dropping_a_grant_from_the_spec_removes_that_policy_and_privilege_and_nothing_else() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let before = snapshot(&mut admin);
    let changed = repo_root().join("tests/fixtures/crm-rep-no-delete.yaml");
    admin.batch_execute(&compile(&changed)).expect("changed spec applies");
    let after = snapshot(&mut admin);
    let (removed, added) = diff(&before, &after);
    // Expected: sales_rep's DELETE privilege on crm.activities, and sales_rep out of the
    // DELETE policy on crm.activities (the policy removed, or re-created without sales_rep).
    let is_rep_activity_delete = |l: &String| {
        (l.starts_with("acl crm.activities sales_rep DELETE"))
            || (l.starts_with("policy crm.activities ") && l.contains(" DELETE "))
            || l.starts_with("config ")
    };
    let unexpected: Vec<_> = removed.iter().chain(added.iter()).filter(|l| !is_rep_activity_delete(l)).collect();
    assert!(
        unexpected.is_empty(),
        "the changed spec touched more than sales_rep's delete on crm.activities: {unexpected:#?}"
    );
    assert!(
        removed.iter().any(|l| l.starts_with("acl crm.activities sales_rep DELETE")),
        "sales_rep keeps DELETE on crm.activities; removed: {removed:#?}"
    );
    assert!(
        !after
            .iter()
            .any(|l| l.starts_with("policy crm.activities ") && l.contains(" DELETE ") && l.contains("sales_rep")),
        "a DELETE policy on crm.activities still applies to sales_rep"
    );
    assert!(
        after.iter().any(|l| l.starts_with("policy crm.activities ") && l.contains(" DELETE ")),
        "other roles keep their DELETE policy on crm.activities"
    );
    // Behaviour: the rep's delete is now refused outright; a manager's still works.
    let mut rep = env.login(&db, 20);
    assert_eq!(try_rolled_back(&mut rep, "DELETE FROM crm.activities WHERE id = 2001"), Outcome::PermissionDenied);
    let mut manager = env.login(&db, 10);
    assert_eq!(try_rolled_back(&mut manager, "DELETE FROM crm.activities WHERE id = 2001"), Outcome::Rows(1));
}

#[test]
fn a_person_with_two_roles_keeps_the_other_roles_rights_after_one_role_loses_a_grant() {
    let env = env();
    let db = env.crm_db();
    let changed = repo_root().join("tests/fixtures/crm-rep-no-delete.yaml");
    env.cluster.admin(&db).batch_execute(&compile(&changed)).expect("changed spec applies");
    // 55 is sales_rep + support: support (individual) still deletes own activities.
    let mut c = env.login(&db, 55);
    assert_eq!(try_rolled_back(&mut c, "DELETE FROM crm.activities WHERE id = 5501"), Outcome::Rows(1));
}

#[test]
fn tables_that_leave_audit_data_lose_their_audit_trigger() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let triggers = |admin: &mut Client| -> Vec<String> {
        admin
            .query(
                "SELECT tgrelid::regclass::text || ' ' || string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger \
                 WHERE tgname LIKE 'rowsec\\_audit\\_%' GROUP BY tgrelid ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let all = "rowsec_audit_delete,rowsec_audit_insert,rowsec_audit_truncate,rowsec_audit_update";
    assert_eq!(
        triggers(&mut admin),
        [format!("crm.accounts {all}"), format!("crm.invoices {all}"), format!("crm.opportunities {all}")]
    );
    // crm.yaml with only crm.invoices left under audit.data, and no readers.
    let spec = std::fs::read_to_string(crm_spec_path())
        .unwrap()
        .replace("data: [crm.accounts, crm.opportunities, crm.invoices]", "data: [crm.invoices]")
        .replace("readers: [crm_admin]", "readers: []");
    let path = std::env::temp_dir().join(format!("rowsec-e2e-{}-{db}.yaml", std::process::id()));
    std::fs::write(&path, spec).unwrap();
    let script = rowsec_generator::compile_with(
        &rowsec_generator::load(&path, None).expect("loads"),
        &rowsec_e2e::fixture::options(),
    );
    let _ = std::fs::remove_file(&path);
    admin.batch_execute(&script).expect("applies");
    assert_eq!(triggers(&mut admin), [format!("crm.invoices {all}")]);
    let audited: Vec<String> = admin
        .query("SELECT tbl::text FROM rowsec.audited_tables ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(audited, ["crm.invoices"]);
    // crm_admin is no longer a reader.
    let mut admin_person = env.login(&db, 2);
    let seen: i64 = admin_person.query_one("SELECT count(*) FROM rowsec.audit_log", &[]).unwrap().get(0);
    assert_eq!(seen, 0);
}

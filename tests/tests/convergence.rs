//! The generated script converges: applying it again changes nothing, and the script of a
//! changed spec removes exactly what the spec no longer grants.

use std::collections::BTreeSet;

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
    admin.batch_execute(&rowsec_generator::compile(&without_schema)).expect("applies");
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

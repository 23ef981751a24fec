//! SPEC 10, 11: directory changes reach open sessions at their next transaction; manager
//! cycles neither hang nor error.

use std::collections::BTreeSet;

use rowsec_e2e::fixture::{env, keys, rows, tables, try_rolled_back, Tally};
use rowsec_generator::model::Command;
use rowsec_generator::oracle::{Oracle, Outcome};

#[test]
fn a_new_manager_is_enforced_in_the_next_transaction_of_an_open_session() {
    let env = env();
    let db = env.crm_db();
    // Manager 10 (sales_manager: update subtree) cannot update rep 23's account (west team).
    let mut m = env.login(&db, 10);
    let update = "UPDATE crm.accounts SET name = name WHERE id = 2301";
    assert_eq!(try_rolled_back(&mut m, update), Outcome::Rows(0));
    env.cluster.admin(&db).batch_execute("UPDATE crm.app_users SET manager_id = 10 WHERE id = 23").unwrap();
    // Same session, next transaction: 23 and 23's report 32 now are 10's subtree.
    assert_eq!(try_rolled_back(&mut m, update), Outcome::Rows(1));
    assert_eq!(try_rolled_back(&mut m, "UPDATE crm.accounts SET name = name WHERE id = 3201"), Outcome::Rows(1));
    // And 11 lost them.
    let mut w = env.login(&db, 11);
    assert_eq!(try_rolled_back(&mut w, update), Outcome::Rows(0));
}

#[test]
fn a_deactivation_is_enforced_in_the_next_transaction_of_an_open_session() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 21);
    assert!(!keys(&mut rep, "SELECT id FROM crm.accounts").unwrap().is_empty());
    env.cluster.admin(&db).batch_execute("UPDATE crm.app_users SET active = false WHERE id = 21").unwrap();
    for t in tables() {
        assert_eq!(keys(&mut rep, &format!("SELECT id FROM {t}")), Ok(BTreeSet::new()), "{t} after deactivation");
    }
    assert_eq!(
        try_rolled_back(&mut rep, "INSERT INTO crm.activities (id, owner_id, kind) VALUES (7000001, 21, 'call')"),
        Outcome::RlsViolation
    );
}

#[test]
fn a_team_move_is_enforced_in_the_next_transaction_of_an_open_session() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 22);
    let west = "SELECT id FROM crm.accounts WHERE owner_id = 24";
    assert_eq!(keys(&mut rep, west), Ok(BTreeSet::new()));
    env.cluster.admin(&db).batch_execute("UPDATE crm.app_users SET team_id = 200 WHERE id = 22").unwrap();
    assert_eq!(keys(&mut rep, west), Ok(BTreeSet::from([2401])));
    assert_eq!(keys(&mut rep, "SELECT id FROM crm.accounts WHERE owner_id = 21"), Ok(BTreeSet::new()));
}

#[test]
fn a_manager_cycle_neither_hangs_nor_errors_and_subtrees_stay_finite() {
    let env = env();
    let db = env.crm_db();
    // 10 -> 20 -> 30 -> 33 already; make 10 report to 33: a four-person cycle.
    env.cluster.admin(&db).batch_execute("UPDATE crm.app_users SET manager_id = 33 WHERE id = 10").unwrap();
    let mut people = env.people.clone();
    people.iter_mut().find(|p| p.id == 10).unwrap().manager = Some(33);
    let oracle = Oracle::new(&env.spec, &people);
    let rows = rows();
    let mut tally = Tally::new("update scope under a manager cycle");
    // Everyone whose subtree touches the cycle: the sales director, the cycle, and around it.
    for id in [1, 3, 10, 20, 30, 33, 21, 55] {
        let mut c = env.login(&db, id);
        for t in tables() {
            if !oracle.has_privilege(id, &t, Command::Update) {
                continue;
            }
            let expected: BTreeSet<i64> =
                rows[&t].iter().filter(|r| oracle.updatable(id, &t, r)).map(|r| r.key).collect();
            let mut tx = c.transaction().unwrap();
            let actual = tx
                .query(&format!("UPDATE {t} SET owner_id = owner_id RETURNING id"), &[])
                .map(|rs| rs.iter().map(|r| r.get::<_, i64>(0)).collect::<BTreeSet<_>>())
                .map_err(|e| rowsec_e2e::fixture::db_error(&e));
            let _ = tx.rollback();
            tally.check(format!("person {id} {t}"), Ok(expected), actual);
        }
    }
    tally.finish();
}

#[test]
fn a_manager_cycle_is_reported_by_directory_status() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    // A subtree lookup loads the directory before the cache is asked what it found.
    let cycles = |admin: &mut postgres::Client| -> Vec<String> {
        admin
            .query_one("SELECT cycles FROM rowsec.directory_status() WHERE rowsec.subtree_of(10) IS NOT NULL", &[])
            .expect("rowsec.directory_status()")
            .get(0)
    };
    assert_eq!(cycles(&mut admin), Vec::<String>::new(), "the fixture has no cycle");
    admin.batch_execute("UPDATE crm.app_users SET manager_id = 33 WHERE id = 10").unwrap();
    let found = cycles(&mut admin);
    assert_eq!(found.len(), 1, "one cycle: {found:?}");
    let members: BTreeSet<&str> = found[0].split(" -> ").collect();
    assert_eq!(members, BTreeSet::from(["10", "20", "30", "33"]), "{found:?}");
}

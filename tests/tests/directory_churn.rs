//! Issue 15's proof of equality for directory changes: a run of moves, deactivations, team moves
//! and manager cycles (one of them made and undone, one a person managing themselves, one
//! statement moving two people at once), and after every step each person's visible and
//! updatable accounts, through sessions kept open across the steps, compared with the oracle of
//! SPEC.md over the changed directory. tests/run.sh runs it on both backends (ROWSEC_BACKEND), so
//! both give the oracle's sets, hence the same sets, after every step.

use std::collections::BTreeSet;

use rowsec_e2e::fixture::{backend, env, keys, rows, table, Tally};
use rowsec_generator::model::Command;
use rowsec_generator::oracle::Oracle;

/// (what the step does, its SQL, how the oracle's people change)
type Step = (&'static str, &'static str, fn(&mut Vec<rowsec_e2e::fixture::Person>));

fn set_manager(people: &mut [rowsec_e2e::fixture::Person], id: i64, manager: i64) {
    people.iter_mut().find(|p| p.id == id).unwrap().manager = Some(manager);
}

const STEPS: &[Step] = &[
    ("rep 23 moves under manager 10", "UPDATE crm.app_users SET manager_id = 10 WHERE id = 23", |p| {
        set_manager(p, 23, 10)
    }),
    ("rep 21 is deactivated", "UPDATE crm.app_users SET active = false WHERE id = 21", |p| {
        p.iter_mut().find(|p| p.id == 21).unwrap().active = false
    }),
    (
        "manager 10 reports to 33: a cycle 10 -> 33 -> 30 -> 20 -> 10",
        "UPDATE crm.app_users SET manager_id = 33 WHERE id = 10",
        |p| set_manager(p, 10, 33),
    ),
    ("rep 22 moves from team 100 to 200", "UPDATE crm.app_users SET team_id = 200 WHERE id = 22", |p| {
        p.iter_mut().find(|p| p.id == 22).unwrap().team = Some(200)
    }),
    ("the cycle is broken: 10 reports to 3 again", "UPDATE crm.app_users SET manager_id = 3 WHERE id = 10", |p| {
        set_manager(p, 10, 3)
    }),
    ("rep 21 is reactivated", "UPDATE crm.app_users SET active = true WHERE id = 21", |p| {
        p.iter_mut().find(|p| p.id == 21).unwrap().active = true
    }),
    ("manager 12 and their reports move under rep 20", "UPDATE crm.app_users SET manager_id = 20 WHERE id = 12", |p| {
        set_manager(p, 12, 20)
    }),
    ("rep 26 manages themselves", "UPDATE crm.app_users SET manager_id = 26 WHERE id = 26", |p| set_manager(p, 26, 26)),
    (
        "one statement: director 3 moves under support lead 50, who moves under admin 2's peer 1",
        "UPDATE crm.app_users SET manager_id = CASE id WHEN 3 THEN 50 ELSE 1 END WHERE id IN (3, 50)",
        |p| {
            set_manager(p, 3, 50);
            set_manager(p, 50, 1)
        },
    ),
    (
        "one statement: a two-person cycle, 51 and 53 each other's manager",
        "UPDATE crm.app_users SET manager_id = CASE id WHEN 51 THEN 53 ELSE 51 END WHERE id IN (51, 53)",
        |p| {
            set_manager(p, 51, 53);
            set_manager(p, 53, 51)
        },
    ),
];

#[test]
fn after_every_directory_change_each_person_sees_and_updates_what_the_oracle_says() {
    let env = env();
    let db = env.crm_db();
    let accounts = table("accounts");
    let rows = rows();
    let mut people = env.people.clone();
    // Sessions opened before the first change and kept: changes reach open sessions.
    let mut sessions: Vec<(i64, postgres::Client)> = env.logins().map(|p| (p.id, env.login(&db, p.id))).collect();
    let mut admin = env.cluster.admin(&db);
    let mut tally = Tally::new("directory churn: person x step, visible and updatable accounts");
    for (what, sql, change) in STEPS {
        admin.batch_execute(sql).unwrap_or_else(|e| panic!("{what}: {e}"));
        change(&mut people);
        if backend() == rowsec_generator::Backend::Sql {
            // The closure the triggers kept (a moved subtree's rows rewritten in place, or the
            // affected people's walked again) is the one a walk of the whole directory gives.
            let differ: i64 = admin
                .query_one(
                    "WITH RECURSIVE up(d, a) AS (
                         SELECT id, id FROM crm.app_users
                         UNION
                         SELECT u.d, m.id FROM up u JOIN crm.app_users p ON p.id = u.a JOIN crm.app_users m ON m.id = p.manager_id),
                     fresh AS (SELECT a AS ancestor, d AS descendant FROM up)
                     SELECT count(*) FROM ((TABLE rowsec.closure EXCEPT TABLE fresh) UNION ALL (TABLE fresh EXCEPT TABLE rowsec.closure)) x",
                    &[],
                )
                .unwrap()
                .get(0);
            tally.check(format!("{what}: closure rows differing from a fresh walk"), 0, differ);
        }
        let oracle = Oracle::new(&env.spec, &people);
        for (id, c) in sessions.iter_mut() {
            let id = *id;
            let expect = |pass: &dyn Fn(&rowsec_e2e::fixture::Row) -> bool| -> BTreeSet<i64> {
                rows[&accounts].iter().filter(|r| pass(r)).map(|r| r.key).collect()
            };
            let visible = if oracle.has_privilege(id, &accounts, Command::Select) {
                Ok(expect(&|r| oracle.visible(id, &accounts, r)))
            } else {
                Err(rowsec_generator::oracle::Outcome::PermissionDenied)
            };
            tally.check(format!("{what}: person {id} sees"), visible, keys(c, "SELECT id FROM crm.accounts"));
            if oracle.has_privilege(id, &accounts, Command::Update) {
                let updatable = expect(&|r| oracle.updatable(id, &accounts, r));
                let mut tx = c.transaction().unwrap();
                let actual = tx
                    .query("UPDATE crm.accounts SET owner_id = owner_id RETURNING id", &[])
                    .map(|rs| rs.iter().map(|r| r.get::<_, i64>(0)).collect::<BTreeSet<_>>())
                    .map_err(|e| rowsec_e2e::fixture::db_error(&e));
                let _ = tx.rollback();
                tally.check(format!("{what}: person {id} updates"), Ok(updatable), actual);
            }
        }
    }
    println!("backend: {}", backend().as_str());
    tally.finish();
}

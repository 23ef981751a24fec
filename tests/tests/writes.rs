//! SPEC 3, 4, 5, 8: inserts, updates and deletes per person and table, all rolled back.

use std::collections::BTreeSet;

use postgres::Client;
use rowsec_e2e::fixture::{
    classify, env, insert_unclassed_sql, plain_column, tables, try_rolled_back, Env, Person, Row, Tally,
};
use rowsec_generator::model::Command;
use rowsec_generator::oracle::{Oracle, Outcome};

/// Owners to try for a person: self, a teammate, a subordinate, their manager, an outsider.
fn owners(env: &Env, oracle: &Oracle, p: &Person) -> Vec<(&'static str, i64)> {
    let subtree = oracle.subtree(p.id);
    let teammate = env.people.iter().find(|q| q.id != p.id && p.team.is_some() && q.team == p.team);
    let subordinate = env.people.iter().find(|q| q.manager == Some(p.id));
    let outsider = env.people.iter().find(|q| {
        q.id != p.id && !(p.team.is_some() && q.team == p.team) && !subtree.contains(&q.id) && Some(q.id) != p.manager
    });
    let mut v = vec![("self", p.id)];
    v.extend(teammate.map(|q| ("teammate", q.id)));
    v.extend(subordinate.map(|q| ("subordinate", q.id)));
    v.extend(p.manager.map(|m| ("manager", m)));
    v.extend(outsider.map(|q| ("outsider", q.id)));
    v
}

/// Runs a statement with RETURNING id in a rolled-back transaction.
fn returning(c: &mut Client, sql: &str) -> Result<BTreeSet<i64>, Outcome> {
    let mut tx = c.transaction().expect("begin");
    let r = tx.query(sql, &[]);
    let _ = tx.rollback();
    match r {
        Ok(rows) => Ok(rows.iter().map(|r| r.get::<_, i64>(0)).collect()),
        Err(e) => Err(classify(Err(e))),
    }
}

#[test]
fn inserts_owned_by_self_teammate_subordinate_manager_and_outsider_follow_the_insert_scope() {
    let env = env();
    let db = env.crm_db();
    let oracle = Oracle::new(&env.spec, &env.people);
    let mut tally = Tally::new("insert: person x table x owner");
    let mut key = 5_000_000;
    for p in env.logins() {
        let mut c = env.login(&db, p.id);
        for t in tables() {
            for (who, owner) in owners(env, &oracle, p) {
                key += 1;
                let row = Row { key, owner, voided: false };
                let actual = try_rolled_back(&mut c, &insert_unclassed_sql(&t, &row));
                tally.check(
                    format!("{} ({}) inserts {t} owned by {who} {owner}", p.name, p.id),
                    oracle.insert(p.id, &t, &row),
                    actual,
                );
            }
        }
    }
    tally.finish();
}

#[test]
fn inserting_a_voided_invoice_is_rejected_for_every_person() {
    let env = env();
    let db = env.crm_db();
    let oracle = Oracle::new(&env.spec, &env.people);
    let t = rowsec_e2e::fixture::table("invoices");
    let mut tally = Tally::new("insert voided invoice");
    for p in env.logins() {
        let mut c = env.login(&db, p.id);
        let row = Row { key: 6_000_000 + p.id, owner: p.id, voided: true };
        let expected = oracle.insert(p.id, &t, &row);
        assert_ne!(expected, Outcome::Rows(1), "oracle must reject voided inserts");
        tally.check(
            format!("{} ({})", p.name, p.id),
            expected,
            try_rolled_back(&mut c, &insert_unclassed_sql(&t, &row)),
        );
    }
    tally.finish();
}

#[test]
fn updates_change_exactly_the_rows_in_update_scope_and_nothing_outside() {
    let env = env();
    let db = env.crm_db();
    let oracle = Oracle::new(&env.spec, &env.people);
    let mut tally = Tally::new("update: person x table (row sets)");
    for p in env.logins() {
        let mut c = env.login(&db, p.id);
        for t in tables() {
            let col = plain_column(&t);
            let expected =
                if oracle.has_privilege(p.id, &t, Command::Update) && oracle.has_privilege(p.id, &t, Command::Select) {
                    Ok(env.rows[&t].iter().filter(|r| oracle.updatable(p.id, &t, r)).map(|r| r.key).collect())
                } else {
                    Err(Outcome::PermissionDenied)
                };
            let sql = format!("UPDATE {t} SET {col} = {col} RETURNING id");
            tally.check(format!("{} ({}) {t}", p.name, p.id), expected, returning(&mut c, &sql));
        }
    }
    tally.finish();
}

#[test]
fn updating_one_row_by_key_changes_one_row_in_scope_and_none_outside() {
    let env = env();
    let db = env.crm_db();
    let oracle = Oracle::new(&env.spec, &env.people);
    let mut tally = Tally::new("update by key: person x table x owner");
    for p in env.logins() {
        let mut c = env.login(&db, p.id);
        for t in tables() {
            let col = plain_column(&t);
            for (who, owner) in owners(env, &oracle, p) {
                let row = env.rows[&t].iter().find(|r| r.owner == owner && !r.voided).unwrap();
                let sql = format!("UPDATE {t} SET {col} = {col} WHERE id = {}", row.key);
                tally.check(
                    format!("{} ({}) updates {t} row of {who} {owner}", p.name, p.id),
                    oracle.update_owner(p.id, &t, row, row.owner),
                    try_rolled_back(&mut c, &sql),
                );
            }
        }
    }
    tally.finish();
}

#[test]
fn handing_a_row_to_someone_outside_update_scope_is_rejected() {
    let env = env();
    let db = env.crm_db();
    let oracle = Oracle::new(&env.spec, &env.people);
    let mut tally = Tally::new("update owner: person x table x new owner");
    let mut rejected = 0;
    for p in env.logins() {
        let mut c = env.login(&db, p.id);
        for t in tables() {
            let Some(row) = env.rows[&t].iter().find(|r| r.owner == p.id && !r.voided) else {
                continue;
            };
            for (who, new_owner) in owners(env, &oracle, p) {
                let expected = oracle.update_owner(p.id, &t, row, new_owner);
                rejected += usize::from(expected == Outcome::RlsViolation);
                let sql = format!("UPDATE {t} SET owner_id = {new_owner} WHERE id = {}", row.key);
                tally.check(
                    format!("{} ({}) gives own {t} row to {who} {new_owner}", p.name, p.id),
                    expected,
                    try_rolled_back(&mut c, &sql),
                );
            }
        }
    }
    assert!(rejected > 100, "the matrix must contain hand-overs that are refused");
    tally.finish();
}

#[test]
fn deletes_remove_exactly_the_rows_in_delete_scope() {
    let env = env();
    let db = env.crm_db();
    let oracle = Oracle::new(&env.spec, &env.people);
    let mut tally = Tally::new("delete: person x table (row sets)");
    for p in env.logins() {
        let mut c = env.login(&db, p.id);
        for t in tables() {
            let expected =
                if oracle.has_privilege(p.id, &t, Command::Delete) && oracle.has_privilege(p.id, &t, Command::Select) {
                    Ok(env.rows[&t].iter().filter(|r| oracle.deletable(p.id, &t, r)).map(|r| r.key).collect())
                } else {
                    Err(Outcome::PermissionDenied)
                };
            let sql = format!("DELETE FROM {t} RETURNING id");
            tally.check(format!("{} ({}) {t}", p.name, p.id), expected, returning(&mut c, &sql));
        }
    }
    tally.finish();
}

#[test]
fn voided_invoices_cannot_be_updated_or_deleted_by_anyone() {
    let env = env();
    let db = env.crm_db();
    let mut tally = Tally::new("voided invoices touched");
    for p in env.logins() {
        let mut c = env.login(&db, p.id);
        for sql in [
            "UPDATE crm.invoices SET total = total WHERE voided",
            "UPDATE crm.invoices SET voided = false WHERE voided",
            "DELETE FROM crm.invoices WHERE voided",
        ] {
            let touched = matches!(try_rolled_back(&mut c, sql), Outcome::Rows(n) if n > 0);
            tally.check(format!("{} ({}) {sql}", p.name, p.id), false, touched);
        }
    }
    tally.finish();
}

#[test]
fn voiding_an_invoice_is_rejected_because_the_new_row_breaks_the_always_rule() {
    let env = env();
    let db = env.crm_db();
    // Rep 20 may update their own invoice (sales_rep: invoices update own) but not void it.
    let mut c = env.login(&db, 20);
    assert_eq!(try_rolled_back(&mut c, "UPDATE crm.invoices SET total = total WHERE id = 2001"), Outcome::Rows(1));
    assert_eq!(try_rolled_back(&mut c, "UPDATE crm.invoices SET voided = true WHERE id = 2001"), Outcome::RlsViolation);
}

#[test]
fn inserting_with_the_default_key_works_for_an_allowed_owner() {
    // Real applications let the sequence pick the key: the roles need USAGE on it.
    let env = env();
    let db = env.crm_db();
    let mut c = env.login(&db, 20);
    assert_eq!(
        try_rolled_back(&mut c, "INSERT INTO crm.activities (owner_id, kind) VALUES (20, 'call')"),
        Outcome::Rows(1)
    );
}

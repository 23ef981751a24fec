//! SPEC "identity": `{ setting: app.person_id }` for pooled connections, and `login`.

use std::collections::BTreeSet;

use postgres::Client;
use rowsec_e2e::fixture::{classify, env, keys, setting_spec_path, tables, Tally};
use rowsec_generator::model::Command;
use rowsec_generator::oracle::{Oracle, Outcome};

/// A database under crm-setting.yaml and a pool login that is a member of every spec role
/// (as an application's pool would be; it picks the role per transaction).
fn pool() -> (String, Client) {
    let env = env();
    let db = env.database_for(&setting_spec_path());
    let roles: Vec<&str> = env.setting_spec.roles.keys().map(String::as_str).collect();
    env.cluster
        .admin(&db)
        .batch_execute(&format!(
            // Tests run in parallel and roles are cluster-wide: two sessions creating or granting
            // the same role race on the catalog's unique index (23505); whoever loses keeps the
            // winner's.
            "DO $$ BEGIN \
               BEGIN CREATE ROLE app_pool LOGIN; \
               EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END; \
               BEGIN GRANT {} TO app_pool; \
               EXCEPTION WHEN unique_violation THEN NULL; END; \
             END $$;",
            roles.join(", ")
        ))
        .unwrap();
    let c = env.cluster.connect("app_pool", &db).expect("pool login");
    (db, c)
}

/// The account keys one transaction sees after running `setup` (SET LOCAL ...).
fn accounts_seen(c: &mut Client, setup: &str) -> Result<BTreeSet<i64>, Outcome> {
    let mut tx = c.transaction().unwrap();
    if let Err(e) = tx.batch_execute(setup) {
        return Err(classify(Err(e)));
    }
    let r = tx.query("SELECT id FROM crm.accounts", &[]);
    let _ = tx.rollback();
    r.map(|rows| rows.iter().map(|r| r.get(0)).collect()).map_err(|e| classify(Err(e)))
}

#[test]
fn a_pooled_session_without_the_setting_sees_nothing() {
    let (_db, mut c) = pool();
    assert_eq!(accounts_seen(&mut c, "SET LOCAL ROLE crm_admin"), Ok(BTreeSet::new()));
}

#[test]
fn a_pooled_session_with_an_empty_setting_sees_nothing() {
    let (_db, mut c) = pool();
    assert_eq!(accounts_seen(&mut c, "SET LOCAL ROLE crm_admin; SET LOCAL app.person_id = ''"), Ok(BTreeSet::new()));
}

#[test]
fn a_pooled_session_with_a_malformed_setting_sees_nothing() {
    let (_db, mut c) = pool();
    for bad in ["abc", "1.5", "2; DROP TABLE x", "99999999999999999999999", " ", "-"] {
        assert_eq!(
            accounts_seen(&mut c, &format!("SET LOCAL ROLE crm_admin; SET LOCAL app.person_id = '{bad}'")),
            Ok(BTreeSet::new()),
            "setting {bad:?}"
        );
    }
}

#[test]
fn a_pooled_session_with_an_unknown_or_inactive_person_sees_nothing() {
    let (_db, mut c) = pool();
    for id in ["424242", "60", "61"] {
        assert_eq!(
            accounts_seen(&mut c, &format!("SET LOCAL ROLE sales_manager; SET LOCAL app.person_id = '{id}'")),
            Ok(BTreeSet::new()),
            "person {id}"
        );
    }
}

#[test]
fn set_local_person_switches_the_person_between_transactions_of_one_connection() {
    let env = env();
    let (_db, mut c) = pool();
    let oracle = Oracle::new(&env.setting_spec, &env.people);
    let mut tally = Tally::new("setting identity: person x table, one pooled connection");
    // People with one role: the pool takes that role for the transaction.
    for p in env.people.iter().filter(|p| p.roles.len() == 1) {
        for t in tables() {
            let expected = if oracle.has_privilege(p.id, &t, Command::Select) {
                Ok(env.rows[&t].iter().filter(|r| oracle.visible(p.id, &t, r)).map(|r| r.key).collect::<BTreeSet<_>>())
            } else {
                Err(Outcome::PermissionDenied)
            };
            let mut tx = c.transaction().unwrap();
            tx.batch_execute(&format!("SET LOCAL ROLE {}; SET LOCAL app.person_id = '{}'", p.roles[0], p.id)).unwrap();
            let actual = tx
                .query(&format!("SELECT id FROM {t}"), &[])
                .map(|rows| rows.iter().map(|r| r.get::<_, i64>(0)).collect())
                .map_err(|e| classify(Err(e)));
            let _ = tx.rollback();
            tally.check(format!("{} ({}) {t}", p.name, p.id), expected, actual);
        }
    }
    // After the last transaction the setting is gone again: nobody.
    assert_eq!(accounts_seen(&mut c, "SET LOCAL ROLE crm_admin"), Ok(BTreeSet::new()));
    tally.finish();
}

#[test]
fn under_login_identity_setting_a_person_id_changes_nothing() {
    let env = env();
    let db = env.crm_db();
    let mut c = env.login(&db, 20);
    let before = keys(&mut c, "SELECT id FROM crm.accounts").unwrap();
    c.batch_execute("SET app.person_id = '1'").unwrap();
    let after = keys(&mut c, "SELECT id FROM crm.accounts").unwrap();
    assert_eq!(before, after);
}

/// PostgreSQL 16 and later can grant a pool login its roles WITH INHERIT FALSE, SET TRUE: the
/// login holds no privilege of its own, so a transaction that forgets `SET LOCAL ROLE` reads
/// nothing instead of the union of every role. README recommends it; this checks it does that.
#[test]
fn on_16_and_later_a_pool_login_without_inherit_reads_nothing_until_it_switches_role() {
    let env = env();
    let db = env.database_for(&setting_spec_path());
    let mut admin = env.cluster.admin(&db);
    let version: i32 = admin.query_one("SELECT current_setting('server_version_num')::int", &[]).unwrap().get(0);
    if version < 160000 {
        eprintln!("PostgreSQL {version}: GRANT ... WITH INHERIT FALSE needs 16 or later; checked on 18");
        return;
    }
    let roles: Vec<&str> = env.setting_spec.roles.keys().map(String::as_str).collect();
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN \
               BEGIN CREATE ROLE app_pool_switching LOGIN; \
               EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END; \
               BEGIN GRANT {} TO app_pool_switching WITH INHERIT FALSE, SET TRUE; \
               EXCEPTION WHEN unique_violation THEN NULL; END; \
             END $$;",
            roles.join(", ")
        ))
        .unwrap();
    let mut switching = env.cluster.connect("app_pool_switching", &db).unwrap();
    let (_, mut inheriting) = pool();

    // Forgetting SET ROLE: the inheriting pool reads through every role, the other reads nothing.
    let forgot = "SET LOCAL app.person_id = '20'";
    assert!(!accounts_seen(&mut inheriting, forgot).unwrap().is_empty());
    assert_eq!(accounts_seen(&mut switching, forgot), Err(Outcome::PermissionDenied));

    // Switching: both see exactly what rep 20's role gives.
    let switched = "SET LOCAL ROLE sales_rep; SET LOCAL app.person_id = '20'";
    let seen = accounts_seen(&mut switching, switched).unwrap();
    assert!(!seen.is_empty());
    assert_eq!(Ok(seen), accounts_seen(&mut inheriting, switched));
}

/// What one pooled transaction as `person` (with their one role) sees of `table`.
fn seen_as(c: &mut Client, person: &rowsec_e2e::fixture::Person, table: &str) -> Result<BTreeSet<i64>, Outcome> {
    let mut tx = c.transaction().unwrap();
    tx.batch_execute(&format!("SET LOCAL ROLE {}; SET LOCAL app.person_id = '{}'", person.roles[0], person.id))
        .unwrap();
    let r = tx.query(&format!("SELECT id FROM {table}"), &[]);
    let _ = tx.rollback();
    r.map(|rows| rows.iter().map(|r| r.get(0)).collect()).map_err(|e| classify(Err(e)))
}

/// Each backend keeps the shares of the people it served lately (read by grantee, not the whole
/// of rowsec.shares): one pooled connection serving everyone in turn must see each person's own
/// shares and their team's, and a share or unshare made on another connection at its next
/// transaction.
#[test]
fn a_pooled_session_sees_each_persons_shares_and_those_made_meanwhile() {
    let env = env();
    let (db, mut pooled) = pool();
    // A second connection of the pool, to the same database.
    let mut sharer = env.cluster.connect("app_pool", &db).expect("pool login");
    let mut oracle = Oracle::new(&env.setting_spec, &env.people);
    let one_role: Vec<_> = env.people.iter().filter(|p| p.roles.len() == 1).collect();
    let tables = ["crm.accounts", "crm.contacts"];
    let check = |oracle: &Oracle, pooled: &mut Client, step: &str| {
        let mut tally = Tally::new("pooled person x table, with shares");
        for p in &one_role {
            for t in tables {
                let t = rowsec_e2e::fixture::table(t.trim_start_matches("crm."));
                let expected = if oracle.has_privilege(p.id, &t, Command::Select) {
                    Ok(env.rows[&t].iter().filter(|r| oracle.visible(p.id, &t, r)).map(|r| r.key).collect())
                } else {
                    Err(Outcome::PermissionDenied)
                };
                tally.check(format!("{step}: {} ({}) {t}", p.name, p.id), expected, seen_as(pooled, p, &t.to_string()));
            }
        }
        tally.finish();
    };
    // Every person once: the connection now keeps (at most 64 of) their shares.
    check(&oracle, &mut pooled, "before");
    let as_rep_20 = "SET LOCAL ROLE sales_rep; SET LOCAL app.person_id = '20'; ";
    let share_id: i64 = {
        let mut tx = sharer.transaction().unwrap();
        tx.batch_execute(as_rep_20).unwrap();
        let id = tx.query_one("SELECT rowsec.share('crm.accounts', 2001, to_person => 23)", &[]).unwrap().get(0);
        tx.query_one("SELECT rowsec.share('crm.contacts', 2001, to_team => '200')", &[]).unwrap();
        tx.commit().unwrap();
        id
    };
    let share = |table: &str, to_person: Option<i64>, to_team: Option<&str>| rowsec_generator::oracle::Share {
        table: rowsec_e2e::fixture::table(table),
        key: 2001,
        to_person,
        to_team: to_team.map(str::to_owned),
        write: false,
        expired: false,
    };
    oracle.shares.push(share("accounts", Some(23), None));
    oracle.shares.push(share("contacts", None, Some("200")));
    check(&oracle, &mut pooled, "after two shares");
    {
        let mut tx = sharer.transaction().unwrap();
        tx.batch_execute(as_rep_20).unwrap();
        tx.execute("SELECT rowsec.unshare($1)", &[&share_id]).unwrap();
        tx.commit().unwrap();
    }
    oracle.shares.remove(0);
    check(&oracle, &mut pooled, "after an unshare");
}

//! `rowsec init`'s templates, guessed from the CRM schema, compile and apply to a real database
//! unchanged, and PostgreSQL then does what each template's comments promise: checked as each
//! person, through their own login.

mod common;

use std::path::PathBuf;
use std::sync::Mutex;

use common::{rowsec, url};
use postgres::Client;
use rowsec_e2e::fixture::{env, schema_path};

/// A database with the CRM schema, the template written by `rowsec init --schema` and applied
/// by `rowsec apply`; the spec's path.
fn applied(template: &str) -> (String, PathBuf) {
    // Group roles are the cluster's: an apply drops rowsec's roles its spec does not name when
    // nothing depends on them, so the templates are applied one at a time (each then holds
    // privileges in its database, which keeps its roles).
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let env = env();
    let db = env.cluster.create_database(&format!("init_{}", template.replace('-', "_")), None);
    env.cluster.admin(&db).batch_execute(&std::fs::read_to_string(schema_path()).unwrap()).expect("schema");
    let spec = env.cluster.dir.join(format!("{db}.yaml"));
    rowsec()
        .args(["init", "--template", template, "--schema", "examples/crm-schema.sql", "-o"])
        .arg(&spec)
        .assert()
        .code(0);
    rowsec().arg("apply").arg(&spec).args(["--db", &url(&db), "--quiet"]).assert().code(0);
    (db, spec)
}

/// People 1 (manager of 2 and 3), 2 and 3 (teams 20 and 30), each with a login `<db>_<id>`
/// holding `roles[i]`, and one account each.
fn people(db: &str, roles: [&str; 3]) {
    let mut admin = env().cluster.admin(db);
    for (i, role) in roles.iter().enumerate() {
        let id = i + 1;
        admin.batch_execute(&format!("CREATE ROLE {db}_{id} LOGIN; GRANT {role} TO {db}_{id}")).unwrap();
    }
    admin
        .batch_execute(&format!(
            "INSERT INTO crm.app_users (id, name, manager_id, team_id, db_login) VALUES
               (1, 'Alice', NULL, 10, '{db}_1'), (2, 'Bob', 1, 20, '{db}_2'), (3, 'Carol', 1, 30, '{db}_3');
             INSERT INTO crm.accounts (id, owner_id, name, annual_revenue) VALUES
               (101, 1, 'Acme', 5e6), (102, 2, 'Globex', 1e6), (103, 3, 'Initech', 2e6);"
        ))
        .unwrap();
}

fn login(db: &str, id: i64) -> Client {
    env().cluster.connect(&format!("{db}_{id}"), db).unwrap()
}

fn accounts(c: &mut Client) -> Vec<String> {
    c.query("SELECT name FROM crm.accounts ORDER BY name", &[]).unwrap().iter().map(|r| r.get(0)).collect()
}

fn sqlstate(r: Result<u64, postgres::Error>) -> String {
    match r {
        Ok(n) => format!("ok {n}"),
        Err(e) => e.code().map_or_else(|| e.to_string(), |c| c.code().to_owned()),
    }
}

#[test]
fn the_three_level_template_gives_a_rep_their_team_and_a_manager_everything() {
    let (db, _) = applied("three-level");
    people(&db, ["sales_manager", "sales_rep", "support"]);
    assert_eq!(accounts(&mut login(&db, 1)), ["Acme", "Globex", "Initech"]);
    let mut bob = login(&db, 2);
    assert_eq!(accounts(&mut bob), ["Globex"]);
    // individual: changes their own only; cannot hand an account to someone else.
    assert_eq!(sqlstate(bob.execute("UPDATE crm.accounts SET name = 'Globex Corp' WHERE id = 102", &[])), "ok 1");
    assert_eq!(sqlstate(bob.execute("UPDATE crm.accounts SET name = 'x' WHERE id = 103", &[])), "ok 0");
    assert_eq!(sqlstate(bob.execute("INSERT INTO crm.accounts (owner_id, name) VALUES (3, 'x')", &[])), "42501");
    // Guessed classes: a rep reads financial columns, support does not.
    assert_eq!(sqlstate(bob.execute("SELECT annual_revenue FROM crm.accounts", &[])), "ok 1");
    let mut carol = login(&db, 3);
    assert_eq!(sqlstate(carol.execute("SELECT annual_revenue FROM crm.accounts", &[])), "42501");
    assert_eq!(accounts(&mut carol), ["Initech"]);
}

#[test]
fn the_two_level_template_shows_staff_every_record_and_lets_them_change_their_own() {
    let (db, _) = applied("two-level");
    people(&db, ["crm_manager", "crm_staff", "crm_staff"]);
    let mut bob = login(&db, 2);
    assert_eq!(accounts(&mut bob), ["Acme", "Globex", "Initech"]);
    assert_eq!(sqlstate(bob.execute("UPDATE crm.accounts SET name = 'Globex Corp' WHERE id = 102", &[])), "ok 1");
    assert_eq!(sqlstate(bob.execute("UPDATE crm.accounts SET name = 'x' WHERE id = 103", &[])), "ok 0");
    assert_eq!(sqlstate(bob.execute("DELETE FROM crm.accounts WHERE id = 101", &[])), "ok 0");
    assert_eq!(sqlstate(bob.execute("INSERT INTO crm.accounts (owner_id, name) VALUES (3, 'x')", &[])), "42501");
    // Staff read the financial columns but may not write them.
    assert_eq!(sqlstate(bob.execute("UPDATE crm.accounts SET annual_revenue = 0 WHERE id = 102", &[])), "42501");
    let mut alice = login(&db, 1);
    assert_eq!(sqlstate(alice.execute("UPDATE crm.accounts SET annual_revenue = 0", &[])), "ok 3");
    assert_eq!(sqlstate(alice.execute("DELETE FROM crm.accounts WHERE id = 103", &[])), "ok 1");
}

#[test]
fn the_blank_template_protects_the_tables_and_opens_them_to_nobody() {
    let (db, spec) = applied("blank");
    let text = std::fs::read_to_string(spec).unwrap();
    assert!(text.contains("roles: {}"), "{text}");
    let mut admin = env().cluster.admin(&db);
    let forced: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'crm'::regnamespace AND relkind = 'r'
               AND relrowsecurity AND relforcerowsecurity",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(forced, 5, "the five CRM tables besides the directory");
    admin
        .batch_execute(&format!(
            "CREATE ROLE {db}_x LOGIN; GRANT USAGE ON SCHEMA crm TO {db}_x; GRANT SELECT ON crm.accounts TO {db}_x"
        ))
        .unwrap();
    admin.batch_execute("INSERT INTO crm.app_users (id, name) VALUES (1, 'A'); INSERT INTO crm.accounts (owner_id, name) VALUES (1, 'Acme')").unwrap();
    // Even a direct grant sees nothing: no role, no policy.
    let mut x = env().cluster.connect(&format!("{db}_x"), &db).unwrap();
    assert_eq!(accounts(&mut x), Vec::<String>::new());
}

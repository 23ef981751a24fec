//! Issue 15: what only the SQL backend has to show: it installs and converges as a managed
//! service's administrator (not a superuser), and its own objects keep the security rules
//! (SECURITY DEFINER only with a pinned search_path, nothing PUBLIC may create or write).
//! Skipped on the extension backend, which these say nothing about.

use std::collections::BTreeSet;

use postgres::Client;
use rowsec_e2e::fixture::{backend, env, keys, schema_path};
use rowsec_generator::Backend;

fn sql_backend_only() -> bool {
    if backend() != Backend::Sql {
        println!("skipped on the extension backend: these tests are about the SQL backend's own objects");
        return false;
    }
    true
}

fn apply(c: &mut Client, script: &str) {
    c.batch_execute(script).unwrap_or_else(|e| panic!("the script applies: {}", rowsec_e2e::fixture::db_error(&e)));
}

#[test]
fn a_createrole_administrator_who_is_not_a_superuser_installs_and_reapplies_it() {
    if !sql_backend_only() {
        return;
    }
    let env = env();
    // The spec's roles first, by the fixture's template (as a superuser): without the
    // superuser's lock on pg_authid, two scripts applied at once to two databases race on
    // creating a role (README), and the other test of this binary applies one.
    let _ = env.crm_db();
    let mut admin = env.cluster.admin("postgres");
    admin
        .batch_execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'managed_admin') THEN \
             CREATE ROLE managed_admin LOGIN CREATEROLE; END IF; END $$;",
        )
        .unwrap();
    let db = env.cluster.create_database("managed", None);
    admin.batch_execute(&format!("ALTER DATABASE {db} OWNER TO managed_admin")).unwrap();
    let mut dba = env.cluster.connect("managed_admin", &db).unwrap();
    let superuser: bool =
        dba.query_one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", &[]).unwrap().get(0);
    assert!(!superuser);
    dba.batch_execute(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
    let script = rowsec_e2e::fixture::compile(&rowsec_e2e::fixture::crm_spec_path());
    apply(&mut dba, &script);
    // The directory, as the administrator keeps it (its triggers run as rowsec's owner, the
    // administrator), and three accounts loaded by a superuser: row-level security is forced,
    // so the tables' owner, who is nobody in the directory, may write no row.
    dba.batch_execute(
        "INSERT INTO crm.app_users (id, name, team_id, db_login, active) VALUES (1, 'ceo', NULL, 'rs_p1', true), \
         (20, 'rep', 100, 'rs_p20', true), (21, 'rep', 100, 'rs_p21', true), (23, 'west', 200, 'rs_p23', true);
         UPDATE crm.app_users SET manager_id = 1 WHERE id <> 1;",
    )
    .unwrap();
    let e =
        dba.batch_execute("INSERT INTO crm.accounts (id, owner_id, name) VALUES (2001, 20, 'a')").expect_err("forced");
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42501"));
    env.cluster
        .admin(&db)
        .batch_execute(
            "INSERT INTO crm.accounts (id, owner_id, name) VALUES (2001, 20, 'a'), (2101, 21, 'b'), (2301, 23, 'c')",
        )
        .unwrap();
    // Re-applied: nothing changes (the script's own check compares before it touches).
    let before: i64 = dba.query_one("SELECT count(*) FROM pg_policies WHERE schemaname = 'crm'", &[]).unwrap().get(0);
    apply(&mut dba, &script);
    let after: i64 = dba.query_one("SELECT count(*) FROM pg_policies WHERE schemaname = 'crm'", &[]).unwrap().get(0);
    assert_eq!(before, after);
    // Logins of the fixture exist cluster-wide (earlier databases made them); rep 20 sees the team's rows.
    let mut rep = env.login(&db, 20);
    assert_eq!(keys(&mut rep, "SELECT id FROM crm.accounts"), Ok(BTreeSet::from([2001, 2101])));
    let mut ceo = env.login(&db, 1);
    assert_eq!(keys(&mut ceo, "SELECT id FROM crm.accounts"), Ok(BTreeSet::from([2001, 2101, 2301])));
}

#[test]
fn security_definer_functions_pin_their_search_path_and_public_writes_nothing() {
    if !sql_backend_only() {
        return;
    }
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let unpinned: Vec<String> = admin
        .query(
            "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'rowsec'::regnamespace \
             AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c = 'search_path=pg_catalog, pg_temp') ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(unpinned, Vec::<String>::new(), "every function of the schema pins search_path");
    let definers: i64 = admin
        .query_one("SELECT count(*) FROM pg_proc WHERE pronamespace = 'rowsec'::regnamespace AND prosecdef", &[])
        .unwrap()
        .get(0);
    assert!(definers > 0);
    // PUBLIC may create nothing in the schema, and write no table but the proofs (row-level security).
    let create: bool =
        admin.query_one("SELECT has_schema_privilege('public', 'rowsec', 'CREATE')", &[]).unwrap().get(0);
    assert!(!create);
    let writable: Vec<String> = admin
        .query(
            "SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = 'rowsec'::regnamespace AND c.relkind = 'r' \
             AND (has_table_privilege('public', c.oid, 'INSERT') OR has_table_privilege('public', c.oid, 'UPDATE') \
                  OR has_table_privilege('public', c.oid, 'DELETE') OR has_table_privilege('public', c.oid, 'TRUNCATE') \
                  OR has_any_column_privilege('public', c.oid, 'INSERT') OR has_any_column_privilege('public', c.oid, 'UPDATE')) \
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(writable, vec!["update_proofs".to_owned()]);
    // A person forging a proof for a row they may not update is refused by its row-level security.
    let mut rep = env.login(&db, 21);
    let e = rep
        .batch_execute(
            "INSERT INTO rowsec.update_proofs (tbl, row_key, person, own) VALUES ('crm.accounts', 2301, 21, true)",
        )
        .expect_err("a forged proof");
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42501"));
    // The audit trail stays append-only for its owner too.
    let e = admin.batch_execute("DELETE FROM rowsec.audit_log").expect_err("append-only");
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42501"));
}

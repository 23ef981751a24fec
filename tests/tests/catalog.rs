//! What the applied script leaves in the catalog: the guarantees SPEC 1 makes about every
//! protected table and every spec role, read from PostgreSQL rather than from the SQL text.

use rowsec_e2e::fixture::{env, tables};

#[test]
fn every_protected_table_has_row_level_security_enabled_and_forced() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    for t in tables() {
        let row = admin
            .query_one(
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = $1::text::regclass",
                &[&format!("{}.{}", t.schema, t.name)],
            )
            .unwrap();
        assert_eq!((row.get::<_, bool>(0), row.get::<_, bool>(1)), (true, true), "{}.{}", t.schema, t.name);
    }
}

#[test]
fn every_spec_role_is_a_plain_nologin_group_role_marked_as_rowsec_s() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let spec = &rowsec_e2e::fixture::load(&rowsec_e2e::fixture::crm_spec_path()).spec;
    for role in spec.roles.keys() {
        let row = admin
            .query_one(
                "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication,
                        coalesce(shobj_description(oid, 'pg_authid'), '')
                 FROM pg_roles WHERE rolname = $1",
                &[role],
            )
            .unwrap_or_else(|e| panic!("{role}: {e}"));
        for (i, attribute) in
            ["LOGIN", "SUPERUSER", "BYPASSRLS", "CREATEROLE", "CREATEDB", "REPLICATION"].iter().enumerate()
        {
            assert!(!row.get::<_, bool>(i), "{role} has {attribute}");
        }
        assert!(row.get::<_, String>(6).starts_with("rowsec:"), "{role} lacks rowsec's marker");
    }
}

#[test]
fn no_role_but_the_spec_roles_holds_privileges_on_a_protected_table() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let spec = &rowsec_e2e::fixture::load(&rowsec_e2e::fixture::crm_spec_path()).spec;
    let owner: String = admin.query_one("SELECT current_user::text", &[]).unwrap().get(0);
    let grantees: Vec<String> = admin
        .query(
            "SELECT DISTINCT coalesce(pg_get_userbyid(x.grantee), 'PUBLIC') FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) x
             WHERE n.nspname = 'crm' AND c.relname <> 'app_users' AND c.relkind = 'r'
             UNION
             SELECT DISTINCT pg_get_userbyid(x.grantee) FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace,
             aclexplode(a.attacl) x WHERE n.nspname = 'crm' AND c.relname <> 'app_users'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for g in &grantees {
        assert!(*g == owner || spec.roles.contains_key(g), "{g} holds privileges on a protected table");
    }
    assert!(grantees.len() > 5, "{grantees:?}");
}

#[test]
fn a_spec_with_hostile_names_applies_and_is_enforced_as_written() {
    let env = env();
    let root = rowsec_e2e::cluster::repo_root();
    let db = env.cluster.create_database("hostile", None);
    let mut admin = env.cluster.admin(&db);
    admin.batch_execute(&std::fs::read_to_string(root.join("tests/fixtures/hostile-schema.sql")).unwrap()).unwrap();
    let loaded = rowsec_generator::load(
        &root.join("tests/fixtures/hostile.yaml"),
        Some(&root.join("tests/fixtures/hostile-schema.sql")),
    )
    .unwrap();
    admin.batch_execute(&rowsec_generator::compile(&loaded)).expect("the script applies");
    admin
        .batch_execute(
            "DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rs_hostile_1') THEN
                    CREATE ROLE rs_hostile_1 LOGIN; END IF;
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rs_hostile_2') THEN
                    CREATE ROLE rs_hostile_2 LOGIN; END IF;
             END $$;
             GRANT \"Sales Rep\" TO rs_hostile_1;
             GRANT \"select\" TO rs_hostile_2;
             INSERT INTO \"Odd Schema\".people VALUES (1, NULL, 7, 'rs_hostile_1', true), (2, NULL, 8, 'rs_hostile_2', true);
             INSERT INTO \"Odd Schema\".\"deals; DROP TABLE x\" VALUES (11, 1, 100), (12, 2, 200);",
        )
        .unwrap();
    // Nothing was injected: the canary table still exists.
    admin.query_one("SELECT count(*) FROM x", &[]).expect("table x survived");

    let mut rep = env.cluster.connect("rs_hostile_1", &db).unwrap();
    let keys: Vec<i64> = rep
        .query("SELECT \"key\" FROM \"Odd Schema\".\"deals; DROP TABLE x\"", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(keys, vec![11], "\"Sales Rep\" sees its own row only");
    let err = rep.query("SELECT \"Amount'\" FROM \"Odd Schema\".\"deals; DROP TABLE x\"", &[]).unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "the classed column is hidden: {err}");

    let mut other = env.cluster.connect("rs_hostile_2", &db).unwrap();
    let amounts = other.query("SELECT \"Amount'\"::text FROM \"Odd Schema\".\"deals; DROP TABLE x\"", &[]).unwrap();
    assert_eq!(amounts.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>(), vec!["200".to_owned()]);
}

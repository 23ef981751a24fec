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

//! A script compiled without `--schema` checks the names it was not able to check: applying it
//! to a database where a column the spec names is missing fails with SQLSTATE 42703, naming
//! the table and the column, and applies nothing (one transaction).

use postgres::error::DbError;
use rowsec_e2e::fixture::{env, schema_path};

/// A database with the CRM schema and nothing of rowsec.
fn crm_schema_only() -> String {
    let env = env();
    let db = env.cluster.create_database("noschema", None);
    env.cluster.admin(&db).batch_execute(&std::fs::read_to_string(schema_path()).unwrap()).expect("schema");
    db
}

/// Applies `spec` compiled without --schema; the error it fails with.
fn apply_failing(db: &str, spec: &str) -> DbError {
    let loaded = rowsec_generator::load_str("spec.yaml", spec, None).unwrap_or_else(|e| panic!("{e}"));
    let script = rowsec_generator::compile(&loaded);
    let e = env().cluster.admin(db).batch_execute(&script).expect_err("the script must fail");
    e.as_db_error().cloned().unwrap_or_else(|| panic!("not a database error: {e}"))
}

/// Nothing of the script is left: no extension, registry, policy, grant or role.
fn nothing_applied(db: &str, roles: &[&str]) {
    let mut admin = env().cluster.admin(db);
    let count = |admin: &mut postgres::Client, sql: &str| admin.query_one(sql, &[]).unwrap().get::<_, i64>(0);
    assert_eq!(count(&mut admin, "SELECT count(*) FROM pg_extension WHERE extname = 'rowsec'"), 0);
    assert_eq!(count(&mut admin, "SELECT count(*) FROM pg_policies"), 0);
    assert_eq!(count(&mut admin, "SELECT count(*) FROM pg_class WHERE relrowsecurity"), 0);
    assert_eq!(
        count(
            &mut admin,
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'crm'::regnamespace AND relacl IS NOT NULL"
        ),
        0
    );
    for role in roles {
        let n = admin.query_one("SELECT count(*) FROM pg_roles WHERE rolname = $1", &[role]).unwrap().get::<_, i64>(0);
        assert_eq!(n, 0, "role {role} was left behind");
    }
}

fn crm_with_accounts_columns(columns: &str) -> String {
    let spec = std::fs::read_to_string(rowsec_e2e::fixture::crm_spec_path()).unwrap();
    let old = "columns: { annual_revenue: financial, credit_limit: financial }";
    assert!(spec.contains(old));
    spec.replacen(old, columns, 1)
}

#[test]
fn a_missing_classed_column_stops_the_script_naming_the_table_and_the_column() {
    let db = crm_schema_only();
    let spec =
        crm_with_accounts_columns("columns: { annual_revenue: financial, credit_limit: financial, tax_id: pii }");
    let e = apply_failing(&db, &spec);
    assert_eq!(e.code().code(), "42703", "{e:?}");
    assert_eq!(e.message(), "classed column \"tax_id\" of crm.accounts does not exist");
    assert!(e.detail().is_some_and(|d| d.contains("annual_revenue")), "the detail lists the table's columns: {e:?}");
    assert!(e.hint().is_some_and(|h| h.contains("--schema")), "{e:?}");
    nothing_applied(&db, &["crm_admin", "sales_rep"]);
}

#[test]
fn a_missing_classed_column_is_caught_even_when_every_role_may_use_its_class() {
    // No role lacks the class, so no column-level grant ever names the column: the check must
    // not depend on one.
    let db = crm_schema_only();
    let spec = "version: 1
directory: { table: crm.app_users, id: id, manager: manager_id, team: team_id, login: db_login, active: active }
identity: login
tables:
  crm.accounts: { key: id, owner: owner_id, columns: { annual_revenu: financial, credit_limit: financial } }
roles:
  noschema_admin: { tables: { \"*\": { select: all, update: all } }, fields: { financial: write } }
";
    let e = apply_failing(&db, spec);
    assert_eq!(e.code().code(), "42703", "{e:?}");
    assert_eq!(e.message(), "classed column \"annual_revenu\" of crm.accounts does not exist");
    nothing_applied(&db, &["noschema_admin"]);
}

#[test]
fn a_missing_owner_column_stops_the_script_naming_the_table_and_the_column() {
    let db = crm_schema_only();
    let spec = std::fs::read_to_string(rowsec_e2e::fixture::crm_spec_path()).unwrap().replacen(
        "crm.invoices:\n    key: id\n    owner: owner_id",
        "crm.invoices:\n    key: id\n    owner: owner",
        1,
    );
    assert!(spec.contains("owner: owner\n"));
    let e = apply_failing(&db, &spec);
    assert_eq!(e.code().code(), "42703", "{e:?}");
    assert!(e.message().contains("\"owner\"") && e.message().contains("crm.invoices"), "{e:?}");
    nothing_applied(&db, &["crm_admin", "sales_rep"]);
}

//! `rowsec verify` finds spec roles that can log in or bypass row-level security. Roles are
//! cluster-wide, so these tests have a cluster of their own (one test binary, one cluster) and
//! run one after the other.

mod common;

use common::{rowsec, url};
use rowsec_e2e::fixture::env;

fn drift_checks(db: &str) -> (i32, Vec<String>) {
    let out = rowsec()
        .args(["verify", "examples/crm.yaml", "--db", &url(db), "--no-truth", "--format", "json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = report["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| format!("{} {}", d["check"].as_str().unwrap(), d["object"].as_str().unwrap()))
        .collect();
    (out.status.code().unwrap(), checks)
}

#[test]
fn a_spec_role_with_bypassrls_or_login_is_drift() {
    let db = env().crm_db();
    let mut admin = env().cluster.admin(&db);
    assert_eq!(drift_checks(&db), (0, vec![]));
    admin.batch_execute("ALTER ROLE sales_rep BYPASSRLS").unwrap();
    assert_eq!(drift_checks(&db), (1, vec!["role-bypassrls sales_rep".to_owned()]));
    admin.batch_execute("ALTER ROLE sales_rep NOBYPASSRLS; ALTER ROLE marketer LOGIN").unwrap();
    assert_eq!(drift_checks(&db), (1, vec!["role-login marketer".to_owned()]));
    admin.batch_execute("ALTER ROLE marketer NOLOGIN").unwrap();
    assert_eq!(drift_checks(&db), (0, vec![]));
}

//! `rowsec verify` against throwaway databases of the CRM fixture: a clean database passes both
//! checks, each kind of hand-made drift is found, and the pgTAP file passes under pg_prove and
//! fails after drift.

mod common;

use common::{rowsec, url};
use predicates::prelude::*;
use rowsec_e2e::cluster::pg_bin;
use rowsec_e2e::fixture::env;

/// `rowsec verify --format json` on a database after `sql` ran there as a superuser.
fn verify_after(sql: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let db = env().crm_db();
    env().cluster.admin(&db).batch_execute(sql).unwrap();
    let url = url(&db);
    let mut args = vec!["verify", "examples/crm.yaml", "--db", &url, "--format", "json"];
    args.extend_from_slice(extra);
    let out = rowsec().args(&args).output().unwrap();
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report)
}

/// The drift checks that fired, as (check, object).
fn drift(report: &serde_json::Value) -> Vec<(String, String)> {
    report["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["check"].as_str().unwrap().to_owned(), d["object"].as_str().unwrap().to_owned()))
        .collect()
}

fn mismatches(report: &serde_json::Value) -> usize {
    report["truth"]["mismatches"].as_array().map_or(0, Vec::len)
}

#[test]
fn a_database_the_spec_was_applied_to_has_no_drift_and_every_person_matches_the_oracle() {
    let db = env().crm_db();
    // Standard error is not a terminal here: no progress lines.
    let out = rowsec()
        .args(["verify", "examples/crm.yaml", "--db", &url(&db)])
        .assert()
        .code(0)
        .stderr("")
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("drift: none"), "{out}");
    assert!(out.contains(" 0 mismatch(es)"), "{out}");
    assert!(out.contains("ok: the database does what the spec says"), "{out}");
    // Every person with a login was tried: the fixture has 43 logins.
    assert!(out.contains("truth: 43 people"), "{out}");
    println!("{}", out.lines().find(|l| l.starts_with("truth:")).unwrap_or_default());
}

#[test]
fn an_extra_policy_is_drift_and_its_rows_are_truth_mismatches() {
    let (code, report) =
        verify_after("CREATE POLICY hand_made ON crm.accounts FOR SELECT TO sales_rep USING (true)", &[]);
    assert_eq!(code, 1);
    assert_eq!(drift(&report), [("extra-policy".to_owned(), "crm.accounts hand_made".to_owned())]);
    assert!(mismatches(&report) > 0, "sales reps see every account now");
}

#[test]
fn an_extra_grant_is_drift() {
    let (code, report) = verify_after(
        "GRANT SELECT ON crm.invoices TO support; GRANT TRUNCATE ON crm.accounts TO PUBLIC",
        &["--no-truth"],
    );
    assert_eq!(code, 1);
    assert_eq!(
        drift(&report),
        [
            ("extra-grant".to_owned(), "crm.accounts PUBLIC TRUNCATE".to_owned()),
            ("extra-grant".to_owned(), "crm.invoices support SELECT".to_owned())
        ]
    );
}

#[test]
fn row_level_security_disabled_is_drift() {
    let (code, report) = verify_after("ALTER TABLE crm.activities DISABLE ROW LEVEL SECURITY", &[]);
    assert_eq!(code, 1);
    assert_eq!(drift(&report), [("rls-off".to_owned(), "crm.activities".to_owned())]);
    assert!(mismatches(&report) > 0, "without RLS every rep sees every activity");
}

#[test]
fn row_level_security_not_forced_is_drift() {
    let (code, report) = verify_after("ALTER TABLE crm.contacts NO FORCE ROW LEVEL SECURITY", &["--no-truth"]);
    assert_eq!(code, 1);
    assert_eq!(drift(&report), [("force-off".to_owned(), "crm.contacts".to_owned())]);
}

#[test]
fn a_policy_edited_by_hand_is_drift() {
    let (code, report) = verify_after("ALTER POLICY rowsec_update_own ON crm.opportunities USING (true)", &[]);
    assert_eq!(code, 1);
    assert_eq!(drift(&report), [("policy-edited".to_owned(), "crm.opportunities rowsec_update_own".to_owned())]);
    let what = report["drift"][0]["what"].as_str().unwrap();
    assert!(what.contains("USING is (true)"), "{what}");
}

#[test]
fn a_configuration_changed_by_hand_is_drift_and_departed_people_get_their_rows_back() {
    // Forgetting the active column: people marked inactive are people again.
    let (code, report) = verify_after("UPDATE rowsec.config SET active_column = NULL", &[]);
    assert_eq!(code, 1);
    assert_eq!(drift(&report), [("config".to_owned(), "rowsec.config".to_owned())]);
    if rowsec_e2e::fixture::extension_only(
        "the SQL backend's copy of the directory reads rowsec.config at the next directory change, not at once",
    ) {
        return;
    }
    let departed: Vec<_> =
        report["truth"]["mismatches"].as_array().unwrap().iter().map(|m| m["person"].as_i64().unwrap()).collect();
    assert!(departed.contains(&60), "the departed rep sees rows again: {report:#}");
}

#[test]
fn verify_of_a_database_without_the_spec_tables_is_bad_input() {
    let db = env().cluster.create_database("empty", None);
    rowsec()
        .args(["verify", "examples/crm.yaml", "--db", &url(&db)])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("names table crm.app_users, which this database does not have"));
}

fn pg_prove(db: &str, file: &std::path::Path) -> std::process::Output {
    std::process::Command::new("pg_prove")
        .args(["-v", "-h", "127.0.0.1", "-p", &env().cluster.port.to_string(), "-U", "postgres", "-d", db])
        .arg(file)
        .env("PATH", format!("{}:{}", pg_bin(), std::env::var("PATH").unwrap_or_default()))
        .output()
        .expect("pg_prove (Debian: libtap-parser-sourcehandler-pgtap-perl) runs")
}

#[test]
fn the_pgtap_file_passes_under_pg_prove_and_fails_after_drift() {
    let db = env().crm_db();
    let file = env().cluster.dir.join(format!("{db}.sql"));
    rowsec()
        .args(["verify", "examples/crm.yaml", "--db", &url(&db), "--no-truth", "--emit", "pgtap"])
        .arg(&file)
        .assert()
        .code(0);
    let out = pg_prove(&db, &file);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pg_prove failed on a clean database:\n{text}");
    assert!(text.contains("All tests successful"), "{text}");
    env().cluster.admin(&db).batch_execute("ALTER TABLE crm.invoices DISABLE ROW LEVEL SECURITY").unwrap();
    let out = pg_prove(&db, &file);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "pg_prove passed after drift:\n{text}");
    assert!(text.contains("row-level security is enabled on crm.invoices"), "{text}");
}

#[test]
fn verify_shows_progress_on_a_terminal() {
    let db = env().crm_db();
    // script(1) gives the command a pseudo-terminal.
    let command = format!(
        "{} verify examples/crm.yaml --db {} --people 3",
        assert_cmd::cargo::cargo_bin("rowsec").display(),
        url(&db)
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("rowsec: verify: person 3 of 3"), "{text}");
}

#[test]
fn a_spec_with_the_setting_identity_is_verified_through_the_setting() {
    let env = env();
    let db = env.database_for(&rowsec_e2e::fixture::setting_spec_path());
    let out = rowsec()
        .args(["verify", "tests/fixtures/crm-setting.yaml", "--db", &url(&db), "--people", "12"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("truth: 12 people") && out.contains(" 0 mismatch(es)"), "{out}");
    // Without the setting nobody is anybody: the truth check must have set it.
    let mut rep = env.login(&db, 20);
    assert!(rowsec_e2e::fixture::keys(&mut rep, "SELECT id FROM crm.accounts").unwrap().is_empty());
}

#[test]
fn an_empty_table_is_verified_and_the_inserts_it_cannot_model_are_named() {
    let (code, report) = verify_after("DELETE FROM crm.activities", &[]);
    assert_eq!(code, 0, "{report:#}");
    let skipped: Vec<&str> =
        report["truth"]["skipped"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(
        skipped.contains(&"inserts into crm.activities: it has no row the always rule keeps to copy"),
        "{skipped:?}"
    );
    assert_eq!(report["truth"]["people"], 43);
}

/// Masked views (`classes:`): `--no-truth` drift on a crm-masked.yaml database, as (check, object).
fn masked_drift_after(sql: &str) -> Vec<(String, String)> {
    let spec = rowsec_e2e::fixture::examples().join("crm-masked.yaml");
    let db = env().database_for(&spec);
    env().cluster.admin(&db).batch_execute(sql).unwrap();
    let url = url(&db);
    let out = rowsec()
        .args(["verify", "examples/crm-masked.yaml", "--db", &url, "--format", "json", "--no-truth"])
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    drift(&report)
}

#[test]
fn a_masked_view_missing_altered_or_left_over_is_drift() {
    let view = "crm_app.contacts".to_owned();
    assert_eq!(masked_drift_after(""), vec![]);
    assert_eq!(
        masked_drift_after("DROP VIEW crm_app.contacts"),
        vec![("masked-view-missing".to_owned(), view.clone())]
    );
    for change in [
        "ALTER VIEW crm_app.contacts RESET (security_barrier)",
        "GRANT SELECT ON crm_app.contacts TO PUBLIC",
        "DROP TRIGGER rowsec_write ON crm_app.contacts",
        "CREATE OR REPLACE VIEW crm_app.contacts WITH (security_barrier) AS SELECT * FROM crm_app.contacts_all",
    ] {
        let setup = if change.contains("contacts_all") {
            // A definition without the row filter, same columns.
            format!(
                "CREATE VIEW crm_app.contacts_all AS SELECT id, owner_id, account_id, full_name, phone, email, created_at \
                 FROM crm.contacts; {change}"
            )
        } else {
            change.to_owned()
        };
        let got = masked_drift_after(&setup);
        assert_eq!(got, vec![("masked-view-altered".to_owned(), view.clone())], "{change}");
    }
    // The same database checked against crm.yaml, which masks nothing: the view is left over.
    let spec = rowsec_e2e::fixture::examples().join("crm-masked.yaml");
    let db = env().database_for(&spec);
    let out = rowsec()
        .args(["verify", "examples/crm.yaml", "--db", &url(&db), "--format", "json", "--no-truth"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(drift(&report).contains(&("masked-view-extra".to_owned(), view)), "{:?}", drift(&report));
}

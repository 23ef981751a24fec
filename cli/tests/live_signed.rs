//! `explain`, `preview` and verify's truth check under signed identity
//! (`tests/fixtures/crm-signed.yaml`): they act as each person with a short-lived token signed
//! with the database's newest key, so they see what the person's application would; without a
//! key they refuse, and the pgTAP file (which runs later) refuses to carry tokens.

mod common;

use common::{rowsec, url};
use predicates::prelude::*;
use rowsec_e2e::cluster::{pg_bin, repo_root};
use rowsec_e2e::fixture::env;

const SPEC: &str = "tests/fixtures/crm-signed.yaml";

/// A database under signed identity with one key (`with_key`), or none.
fn signed_db(with_key: bool) -> String {
    let db = env().database_for(&repo_root().join(SPEC));
    if with_key {
        env()
            .cluster
            .admin(&db)
            .batch_execute(&format!(
                "INSERT INTO rowsec.identity_keys (key_id, secret) VALUES ('k1', '\\x{}')",
                "5a".repeat(32)
            ))
            .unwrap();
    }
    db
}

#[test]
fn preview_under_signed_identity_shows_what_the_person_sees_through_their_login() {
    let db = signed_db(true);
    // The same people and rows under login identity: what psql shows rep 20 there.
    let login_db = env().crm_db();
    let sql = "SELECT id, name FROM crm.accounts ORDER BY id";
    let preview = rowsec()
        .args(["preview", SPEC, "--db", &url(&db), "--person", "rs_p20", "-c", sql])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let psql = std::process::Command::new(format!("{}/psql", pg_bin()))
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            &env().cluster.port.to_string(),
            "-U",
            "rs_p20",
            "-d",
            &login_db,
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(psql.status.success());
    let (preview, psql) = (String::from_utf8(preview).unwrap(), String::from_utf8(psql.stdout).unwrap());
    assert_eq!(preview, psql.trim_end_matches('\n').to_owned() + "\n");
    // Not everything, and not nothing: rep 20 sees some accounts only.
    let all: i64 = env().cluster.admin(&db).query_one("SELECT count(*) FROM crm.accounts", &[]).unwrap().get(0);
    assert!(preview.contains("rows)") && !preview.contains(&format!("({all} rows)")), "{preview}");
}

#[test]
fn verify_checks_the_truth_under_signed_identity_and_explain_agrees_with_login_identity() {
    let db = signed_db(true);
    let out = rowsec().args(["verify", SPEC, "--db", &url(&db), "--format", "json"]).output().unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let truth = &report["truth"];
    assert_eq!(truth["mismatches"], serde_json::json!([]), "{report:#}");
    assert!(truth["people"].as_u64().unwrap() >= 10 && truth["checks"].as_u64().unwrap() > 100, "{report:#}");

    // explain's verdicts for rep 20 match those under login identity, row by row.
    let login_db = env().crm_db();
    for key in [2001, 3001, 2101, 2301] {
        let verdicts = |spec: &str, db: &str| -> Vec<(serde_json::Value, serde_json::Value)> {
            let out = rowsec()
                .args(["explain", spec, "--db", &url(db), "--format", "json", "--person", "20", "crm.accounts"])
                .arg(key.to_string())
                .output()
                .unwrap();
            let e: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
            let commands = e["commands"].as_array().unwrap();
            assert!(commands.iter().all(|c| c["agrees"] == true), "{e:#}");
            commands.iter().map(|c| (c["command"].clone(), c["allowed"].clone())).collect()
        };
        assert_eq!(verdicts(SPEC, &db), verdicts("examples/crm.yaml", &login_db), "crm.accounts {key}");
    }
}

#[test]
fn without_a_key_the_commands_refuse_and_pgtap_never_writes_tokens() {
    let db = signed_db(false);
    rowsec()
        .args(["preview", SPEC, "--db", &url(&db), "--person", "rs_p20", "-c", "SELECT 1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("rowsec.identity_keys has no key"));
    let db = signed_db(true);
    let file = env().cluster.dir.join("signed.pgtap.sql");
    rowsec()
        .args(["verify", SPEC, "--db", &url(&db), "--emit", "pgtap"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot act as people without writing signed tokens"));
    assert!(!file.exists());
}

//! `rowsec explain` and `rowsec preview` against the CRM fixture: explain's verdicts agree with
//! what PostgreSQL does when the person tries (the test's own attempts), reasons name the chain
//! and the share, and preview prints exactly what psql prints for the same person.

mod common;

use common::{rowsec, url};
use predicates::prelude::*;
use rowsec_e2e::cluster::pg_bin;
use rowsec_e2e::fixture::{env, keys, try_rolled_back};
use rowsec_generator::oracle::Outcome;

fn explain(db: &str, person: i64, table: &str, key: i64) -> serde_json::Value {
    let out = rowsec()
        .args([
            "explain",
            "examples/crm.yaml",
            "--db",
            &url(db),
            "--format",
            "json",
            "--person",
            &person.to_string(),
            table,
        ])
        .arg(key.to_string())
        .output()
        .unwrap();
    assert!(out.status.code() == Some(0) || out.status.code() == Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn allowed(e: &serde_json::Value, command: &str) -> bool {
    e["commands"].as_array().unwrap().iter().find(|c| c["command"] == command).unwrap()["allowed"].as_bool().unwrap()
}

#[test]
fn explain_agrees_with_what_postgresql_lets_each_person_do() {
    let env = env();
    let db = env.crm_db();
    let mut checked = 0;
    // A rep, a manager, a director, a marketer who is also an analyst, a rep who is also
    // support, a departed rep, a person without a role, the CEO.
    for person in [20, 10, 3, 44, 55, 60, 70, 1] {
        let mut session = env.login(&db, person);
        for table in ["accounts", "invoices"] {
            // Own, a subordinate's, a teammate's, another team's, and a voided invoice.
            let mut rows = vec![2001, 3001, 2101, 2301];
            if table == "invoices" {
                rows.push(2002);
            }
            for key in rows {
                let name = format!("crm.{table}");
                let e = explain(&db, person, &name, key);
                let sees = keys(&mut session, &format!("SELECT id FROM {name} WHERE id = {key}"))
                    .map(|k| k.contains(&key))
                    .unwrap_or(false);
                let updates = try_rolled_back(&mut session, &format!("UPDATE {name} SET id = id WHERE id = {key}"))
                    == Outcome::Rows(1);
                let deletes =
                    try_rolled_back(&mut session, &format!("DELETE FROM {name} WHERE id = {key}")) == Outcome::Rows(1);
                let what = format!("person {person} {name} {key}");
                let verdicts = (allowed(&e, "select"), allowed(&e, "update"), allowed(&e, "delete"));
                assert_eq!(verdicts, (sees, updates, deletes), "{what} (select, update, delete): {e:#}");
                assert!(e["commands"].as_array().unwrap().iter().all(|c| c["agrees"] == true), "{what}: {e:#}");
                checked += 3;
            }
        }
    }
    println!("explain: {checked} verdicts compared with real attempts");
}

#[test]
fn explain_names_the_role_the_scope_the_chain_and_the_column_rights() {
    let db = env().crm_db();
    // 33 reports to 30, who reports to 20, who reports to 10 (a sales manager: subtree).
    let out = rowsec()
        .args(["explain", "examples/crm.yaml", "--db", &url(&db), "--person", "10", "crm.accounts", "3301"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains(
            "update: ALLOWED: role sales_manager (subtree): owner 33 reports to 30 reports to 20 reports to 10"
        ),
        "{out}"
    );
    assert!(out.contains("(from roles.sales_manager.level (manager))"), "{out}");
    assert!(out.contains("annual_revenue (financial): write"), "{out}");
}

#[test]
fn explain_shows_the_share_that_lets_a_person_see_a_row() {
    let db = env().crm_db();
    // 23 (west team) shares an account with 20 (east team) until tomorrow.
    env()
        .cluster
        .admin(&db)
        .batch_execute(
            "INSERT INTO rowsec.shares (tbl, row_key, grantee_person, access, expires_at, granted_by) \
             VALUES ('crm.accounts', 2301, 20, 'read', now() + interval '1 day', 23)",
        )
        .unwrap();
    let e = explain(&db, 20, "crm.accounts", 2301);
    assert!(allowed(&e, "select") && !allowed(&e, "update"), "{e:#}");
    let select = &e["commands"][0];
    assert_eq!(select["summary"], "shared with the person or their team");
    let share = select["shares"][0].as_str().unwrap();
    assert!(share.contains("to person 20, read access, by person 23"), "{share}");
}

#[test]
fn explain_and_preview_refuse_unknown_people_tables_and_keys_with_status_2() {
    let db = env().crm_db();
    let base = ["--db".to_owned(), url(&db)];
    rowsec()
        .args(["explain", "examples/crm.yaml", "--person", "9999", "crm.accounts", "2001"])
        .args(&base)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no person 9999 in the directory"));
    rowsec()
        .args(["explain", "examples/crm.yaml", "--person", "20", "crm.nothing", "1"])
        .args(&base)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("crm.nothing is not a table of the spec"));
    rowsec()
        .args(["explain", "examples/crm.yaml", "--person", "20", "crm.accounts", "77777"])
        .args(&base)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("crm.accounts has no row with id = 77777"));
    rowsec()
        .args(["preview", "examples/crm.yaml", "--person", "nobody", "-c", "SELECT 1"])
        .args(&base)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no person nobody in the directory"));
}

#[test]
fn preview_prints_what_psql_prints_for_the_same_person() {
    let db = env().crm_db();
    let sql = "SELECT id, name, annual_revenue FROM crm.accounts ORDER BY id";
    let preview = rowsec()
        .args(["preview", "examples/crm.yaml", "--db", &url(&db), "--person", "rs_p20", "-c", sql])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let psql = std::process::Command::new(format!("{}/psql", pg_bin()))
        .args(["-X", "-h", "127.0.0.1", "-p", &env().cluster.port.to_string(), "-U", "rs_p20", "-d", &db, "-c", sql])
        .output()
        .unwrap();
    assert!(psql.status.success());
    let (preview, psql) = (String::from_utf8(preview).unwrap(), String::from_utf8(psql.stdout).unwrap());
    assert_eq!(preview, psql.trim_end_matches('\n').to_owned() + "\n");
    assert!(preview.contains("rows)"), "{preview}");
}

#[test]
fn preview_refuses_anything_that_is_not_one_read_only_query() {
    let db = env().crm_db();
    let count = |db: &str| -> i64 {
        env().cluster.admin(db).query_one("SELECT count(*) FROM crm.accounts", &[]).unwrap().get(0)
    };
    let before = count(&db);
    for sql in [
        "DELETE FROM crm.accounts",
        "SELECT 1; SELECT 2",
        "WITH gone AS (DELETE FROM crm.accounts RETURNING id) SELECT * FROM gone",
        "SELECT set_config('role', 'none', true), query_to_xml('SELECT * FROM crm.accounts', true, false, '')",
        "SELECT * FROM crm.accounts FOR UPDATE",
        "SET ROLE postgres",
    ] {
        rowsec()
            .args(["preview", "examples/crm.yaml", "--db", &url(&db), "--person", "20", "-c", sql])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("preview runs only read-only queries"));
    }
    assert_eq!(count(&db), before, "nothing was deleted");
}

#[test]
fn preview_shows_the_error_postgresql_gives_the_person() {
    let db = env().crm_db();
    // Support may not read the financial class.
    rowsec()
        .args([
            "preview",
            "examples/crm.yaml",
            "--db",
            &url(&db),
            "--person",
            "50",
            "-c",
            "SELECT annual_revenue FROM crm.accounts",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("ERROR:  permission denied for table accounts"));
}

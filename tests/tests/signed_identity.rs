//! Issue 14, signed identity: `identity: { setting: app.person_id, signed: true }`. The pool sets
//! a token made with `rowsec_core::token::sign` under a key only the database owner can read; a
//! forged, expired, malformed token, or one made for another database or for other roles, means
//! nobody, told to the server log only.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use postgres::Client;
use rowsec_core::token::{sign, Claims};
use rowsec_e2e::cluster::{repo_root, Notices};
use rowsec_e2e::fixture::{db_error, env};

const K1: &[u8] = b"k1: thirty-two bytes of secret..";
const K2: &[u8] = b"k2: the next key, also 32 bytes.";
const POOL: &str = "app_signed_pool";

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A database under crm-signed.yaml with key k1, and the pool's login (a member of every spec
/// role, as a pool that picks the role per transaction must be), collecting notices.
fn pool() -> (String, Client, Notices) {
    let env = env();
    let db = env.database_for(&repo_root().join("tests/fixtures/crm-signed.yaml"));
    let roles: Vec<&str> = env.setting_spec.roles.keys().map(String::as_str).collect();
    env.cluster
        .admin(&db)
        .batch_execute(&format!(
            // Two tests may create the pool at once: the loser's CREATE ROLE fails on the unique index.
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{POOL}') THEN CREATE ROLE {POOL} LOGIN; END IF;
             EXCEPTION WHEN unique_violation OR duplicate_object THEN NULL; END $$;
             GRANT {} TO {POOL};
             INSERT INTO rowsec.identity_keys (key_id, secret) VALUES ('k1', '\\x{}');",
            roles.join(", "),
            hex(K1)
        ))
        .unwrap();
    let (c, notices) = env.cluster.connect_collecting_notices(POOL, &db).unwrap();
    (db, c, notices)
}

fn claims(db: &str, person: i64, roles: &[&str]) -> Claims {
    Claims {
        key_id: "k1".into(),
        person,
        expires_at: now() + 300,
        database: db.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

fn token(db: &str, person: i64, roles: &[&str]) -> String {
    sign(K1, &claims(db, person, roles)).unwrap()
}

/// The accounts one transaction sees as `role` with `value` in the setting.
fn seen(c: &mut Client, role: Option<&str>, value: &str) -> BTreeSet<i64> {
    let mut tx = c.transaction().unwrap();
    if let Some(role) = role {
        tx.batch_execute(&format!("SET LOCAL ROLE {role}")).unwrap();
    }
    tx.execute("SELECT set_config('app.person_id', $1, true)", &[&value]).unwrap();
    let rows = tx.query("SELECT id FROM crm.accounts", &[]).unwrap_or_else(|e| panic!("{}", db_error(&e)));
    rows.iter().map(|r| r.get(0)).collect()
}

fn team_100() -> BTreeSet<i64> {
    [10, 20, 21, 22, 30, 31, 33, 55, 60, 73, 74].iter().map(|p| p * 100 + 1).collect()
}

#[test]
fn a_signed_token_names_its_person_for_a_role_it_names() {
    let (db, mut c, _) = pool();
    assert_eq!(seen(&mut c, Some("sales_rep"), &token(&db, 21, &["sales_rep"])), team_100());
    assert_eq!(seen(&mut c, Some("cxo"), &token(&db, 1, &["cxo"])).len(), 44);
}

#[test]
fn forged_expired_malformed_and_foreign_tokens_mean_nobody_and_are_logged_only() {
    let (db, mut c, notices) = pool();
    let good = token(&db, 21, &["sales_rep"]);
    let forged = good.replacen(".21.", ".1.", 1);
    let expired = sign(K1, &Claims { expires_at: now() - 1, ..claims(&db, 21, &["sales_rep"]) }).unwrap();
    let elsewhere = token("another_db", 21, &["sales_rep"]);
    let unknown_key = sign(K2, &Claims { key_id: "k9".into(), ..claims(&db, 21, &["sales_rep"]) }).unwrap();
    let other_secret = sign(K2, &claims(&db, 21, &["sales_rep"])).unwrap();
    for (what, value) in [
        ("forged person", forged.as_str()),
        ("expired", &expired),
        ("another database", &elsewhere),
        ("unknown key", &unknown_key),
        ("signed with another secret", &other_secret),
        ("a plain id", "21"),
        ("malformed", "v1.k1.21"),
        ("empty", ""),
    ] {
        assert_eq!(seen(&mut c, Some("sales_rep"), value), BTreeSet::new(), "{what}");
    }
    assert!(notices.lock().unwrap().is_empty(), "the session is told nothing: {:?}", notices.lock().unwrap());
    let log = env().cluster.server_log();
    for why in [
        "names nobody: the token's signature does not match",
        "names nobody: the token has expired",
        "names nobody: the token was made for another database",
        "names nobody: the token's key id is not in rowsec.identity_keys",
        "names nobody: the token is malformed",
    ] {
        assert!(log.contains(why), "the server log has `{why}`");
    }
}

#[test]
fn a_role_the_token_does_not_name_sees_nothing() {
    let (db, mut c, _) = pool();
    let rep = token(&db, 21, &["sales_rep"]);
    // The pool's login is a member of crm_admin; whoever runs SQL on it gains nothing by it.
    assert_eq!(seen(&mut c, Some("crm_admin"), &rep), BTreeSet::new());
    assert_eq!(seen(&mut c, None, &rep), BTreeSet::new(), "the pool's own login is not named either");
    // A token naming both roles of person 55 works under either.
    let both = token(&db, 55, &["sales_rep", "support"]);
    assert_eq!(seen(&mut c, Some("support"), &both), team_100());
}

#[test]
fn keys_rotate_without_downtime() {
    let (db, mut c, _) = pool();
    let mut admin = env().cluster.admin(&db);
    let old = token(&db, 21, &["sales_rep"]);
    admin
        .batch_execute(&format!("INSERT INTO rowsec.identity_keys (key_id, secret) VALUES ('k2', '\\x{}')", hex(K2)))
        .unwrap();
    let new = sign(K2, &Claims { key_id: "k2".into(), ..claims(&db, 21, &["sales_rep"]) }).unwrap();
    assert_eq!(seen(&mut c, Some("sales_rep"), &old), team_100(), "the old key during the rotation");
    assert_eq!(seen(&mut c, Some("sales_rep"), &new), team_100(), "the new key during the rotation");
    admin.batch_execute("DELETE FROM rowsec.identity_keys WHERE key_id = 'k1'").unwrap();
    assert_eq!(seen(&mut c, Some("sales_rep"), &old), BTreeSet::new(), "the old key is gone, in the same session");
    assert_eq!(seen(&mut c, Some("sales_rep"), &new), team_100());
}

#[test]
fn the_keys_are_readable_by_no_application_role() {
    let (_db, mut c, _) = pool();
    for role in ["app_signed_pool", "crm_admin", "sales_rep"] {
        let e = c.batch_execute(&format!("SET ROLE {role}; SELECT * FROM rowsec.identity_keys")).unwrap_err();
        assert_eq!(e.code().map(|s| s.code()), Some("42501"), "{role}");
        c.batch_execute("RESET ROLE").unwrap();
    }
}

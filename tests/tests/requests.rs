//! SPEC items 16 and 17 (the SQL side): access requests decided by the owner's manager, with the
//! share they create, the refusals (42501, 22023), every step in the audit trail, and attestations.

use std::collections::BTreeSet;
use std::time::Duration;

use postgres::Client;
use rowsec_e2e::fixture::{db_error, env, keys};

fn one<T: for<'a> postgres::types::FromSql<'a>>(c: &mut Client, sql: &str) -> Result<T, String> {
    c.query_one(sql, &[]).map(|r| r.get(0)).map_err(|e| db_error(&e))
}

#[test]
fn a_reps_request_approved_by_the_owners_manager_is_seen_until_its_end_and_not_after() {
    let env = env();
    let db = env.crm_db();
    // 23 (west rep) asks for 20's account (east rep, managed by 10).
    let mut rep = env.login(&db, 23);
    let q = "SELECT id FROM crm.accounts WHERE id = 2001";
    assert_eq!(keys(&mut rep, q), Ok(BTreeSet::new()));
    let request: i64 = one(
        &mut rep,
        "SELECT rowsec.request_access('crm.accounts', 2001, 'read', clock_timestamp() + interval '4 seconds', 'joint bid')",
    )
    .unwrap();
    assert_eq!(
        one::<String>(
            &mut rep,
            "SELECT string_agg(concat_ws(',', id, tbl, row_key, access, status), ';') FROM rowsec.my_requests"
        )
        .unwrap(),
        format!("{request},crm.accounts,2001,read,pending")
    );
    assert_eq!(keys(&mut rep, q), Ok(BTreeSet::new()), "nothing is granted without a decision");

    // Not allowed: the owner's teammate (update own), another manager (20 not in their subtree).
    for person in [21, 11] {
        let mut c = env.login(&db, person);
        let e = one::<Option<i64>>(&mut c, &format!("SELECT rowsec.decide({request}, true)")).unwrap_err();
        assert_eq!(e, format!("42501: permission denied to decide request {request}"), "person {person}");
        assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM rowsec.requests_to_decide").unwrap(), 0, "person {person}");
    }
    // The requester cannot see the others' queue either, nor decide their own request.
    let e = one::<Option<i64>>(&mut rep, &format!("SELECT rowsec.decide({request}, true)")).unwrap_err();
    assert_eq!(e, format!("42501: permission denied to decide request {request}"));

    let mut manager = env.login(&db, 10);
    assert_eq!(
        one::<String>(
            &mut manager,
            "SELECT string_agg(concat_ws(',', id, requester, reason), ';') FROM rowsec.requests_to_decide"
        )
        .unwrap(),
        format!("{request},23,joint bid")
    );
    let share: i64 =
        one::<Option<i64>>(&mut manager, &format!("SELECT rowsec.decide({request}, true, 'ok for the bid')"))
            .unwrap()
            .expect("approving returns the share");
    assert_eq!(keys(&mut rep, q), Ok(BTreeSet::from([2001])), "seen once approved");
    assert_eq!(
        one::<String>(&mut rep, "SELECT concat_ws(',', status, decided_by, share_id, note) FROM rowsec.my_requests")
            .unwrap(),
        format!("approved,10,{share},ok for the bid")
    );

    let mut admin = env.cluster.admin(&db);
    let trail: Vec<String> = admin
        .query(
            "SELECT concat_ws('|', kind, actor, login, object, detail - 'until' - 'expires_at' - 'requested_expires_at')
             FROM rowsec.audit_log WHERE kind IN ('request', 'decision', 'share') ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        trail,
        [
            format!(
                "request|23|rs_p23|crm.accounts|{{\"key\": 2001, \"access\": \"read\", \"reason\": \"joint bid\", \"request\": {request}}}"
            ),
            format!(
                "share|10|rs_p10|crm.accounts|{{\"key\": 2001, \"role\": \"rs_p10\", \"access\": \"read\", \"reason\": \"request {request}\", \
                 \"share_id\": {share}, \"derived_from\": null, \"grantee_team\": null, \"expiry_capped\": false, \"grantee_person\": 23}}"
            ),
            format!(
                "decision|10|rs_p10|crm.accounts|{{\"key\": 2001, \"note\": \"ok for the bid\", \"access\": \"read\", \"approve\": true, \
                 \"request\": {request}, \"share_id\": {share}, \"requester\": 23}}"
            ),
        ]
    );
    // The times are ISO 8601 in UTC, and the share ends when the request does.
    assert_eq!(
        one::<String>(
            &mut admin,
            "SELECT concat_ws(',', (SELECT (detail->>'until')::timestamptz = r.until FROM rowsec.audit_log WHERE kind = 'decision'),
                                   s.expires_at = r.until)
             FROM rowsec.requests r JOIN rowsec.shares s ON s.id = r.share_id"
        )
        .unwrap(),
        "t,t"
    );

    // After `until`, the share grants nothing.
    std::thread::sleep(Duration::from_millis(4500));
    assert_eq!(keys(&mut rep, q), Ok(BTreeSet::new()), "not after the expiry");
}

#[test]
fn bad_requests_get_22023_and_a_key_without_a_row_stays_pending() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 23);
    for (args, message) in [
        ("'crm.activities', 2001, 'read', now() + interval '1 day', NULL", "crm.activities does not allow sharing"),
        ("'crm.accounts', 2001, 'read', now() - interval '1 minute', NULL", "until is not in the future"),
        ("'crm.accounts', 2001, 'read', now() + interval '15 days', NULL", "until is more than 14 days ahead"),
        ("'crm.accounts', 2001, 'owner', now() + interval '1 day', NULL", "invalid share access \"owner\""),
    ] {
        let e = one::<i64>(&mut rep, &format!("SELECT rowsec.request_access({args})")).unwrap_err();
        assert_eq!(e, format!("22023: {message}"), "{args}");
    }
    // A key that matches no row is accepted like any other; nobody can decide it, and the
    // refusal is the one for a row that exists.
    let missing: i64 =
        one(&mut rep, "SELECT rowsec.request_access('crm.accounts', 999999, 'read', now() + interval '1 day', NULL)")
            .unwrap();
    let existing: i64 =
        one(&mut rep, "SELECT rowsec.request_access('crm.accounts', 2201, 'read', now() + interval '1 day', NULL)")
            .unwrap();
    let mut ceo = env.login(&db, 1);
    let refusal = |c: &mut Client, id: i64| {
        one::<Option<i64>>(c, &format!("SELECT rowsec.decide({id}, true)"))
            .unwrap_err()
            .replace(&format!("request {id}"), "request N")
    };
    assert_eq!(refusal(&mut ceo, missing), "42501: permission denied to decide request N");
    let mut analyst = env.login(&db, 4);
    assert_eq!(refusal(&mut analyst, existing), refusal(&mut ceo, missing), "no update right: same answer");
    assert_eq!(
        one::<String>(
            &mut rep,
            "SELECT string_agg(concat_ws(',', row_key, status), ';' ORDER BY id) FROM rowsec.my_requests"
        )
        .unwrap(),
        "999999,pending;2201,pending"
    );
    // The CEO (cxo: update all) decides the existing one; rejecting grants nothing.
    assert_eq!(one::<Option<i64>>(&mut ceo, &format!("SELECT rowsec.decide({existing}, false, 'no')")).unwrap(), None);
    let e = one::<Option<i64>>(&mut ceo, &format!("SELECT rowsec.decide({existing}, true)")).unwrap_err();
    assert_eq!(e, format!("22023: request {existing} was already decided"));
    assert_eq!(keys(&mut rep, "SELECT id FROM crm.accounts WHERE id = 2201"), Ok(BTreeSet::new()));
    // Someone who is not an active person may not ask.
    let mut departed = env.login(&db, 60);
    let e = one::<i64>(
        &mut departed,
        "SELECT rowsec.request_access('crm.accounts', 2001, 'read', now() + interval '1 day', NULL)",
    )
    .unwrap_err();
    assert_eq!(e, "42501: only an active person in the directory may request access");
}

/// A request made while the table allowed sharing is not approved after sharing was turned off
/// (the share would grant nothing, and would start granting if sharing came back); it can still
/// be rejected.
#[test]
fn a_request_is_not_approved_once_its_table_stops_allowing_sharing() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 23);
    let request: i64 = one(
        &mut rep,
        "SELECT rowsec.request_access('crm.accounts', 2001, 'read', now() + interval '1 day', 'joint bid')",
    )
    .unwrap();
    env.cluster
        .admin(&db)
        .batch_execute(
            "SELECT rowsec.protect_table('crm.accounts'::regclass, key_column => 'id', owner_column => 'owner_id', sharing => false)",
        )
        .unwrap();
    let mut manager = env.login(&db, 10);
    let e = one::<Option<i64>>(&mut manager, &format!("SELECT rowsec.decide({request}, true)")).unwrap_err();
    assert_eq!(e, "22023: crm.accounts does not allow sharing");
    assert_eq!(
        one::<Option<i64>>(&mut manager, &format!("SELECT rowsec.decide({request}, false, 'no sharing')")).unwrap(),
        None
    );
    assert_eq!(one::<String>(&mut rep, "SELECT string_agg(status, ',') FROM rowsec.my_requests").unwrap(), "rejected");
}

#[test]
fn a_manager_attests_the_people_of_their_subtree() {
    let env = env();
    let db = env.crm_db();
    let mut manager = env.login(&db, 10);
    let id: i64 = one(&mut manager, "SELECT rowsec.attest(30, true, 'still selling east')").unwrap();
    for person in [10, 23, 3] {
        let e = one::<i64>(&mut manager, &format!("SELECT rowsec.attest({person}, false, NULL)")).unwrap_err();
        assert_eq!(e, format!("42501: permission denied to attest person {person}"));
    }
    let mut admin = env.cluster.admin(&db);
    assert_eq!(
        one::<String>(
            &mut admin,
            &format!("SELECT concat_ws('|', kind, actor, login, object, detail) FROM rowsec.audit_log WHERE id = {id}")
        )
        .unwrap(),
        "attest|10|rs_p10|crm.app_users|{\"keep\": true, \"note\": \"still selling east\", \"login\": \"rs_p30\", \
         \"roles\": [\"sales_rep\"], \"person\": 30}"
    );
    let e = one::<i64>(&mut manager, "SELECT rowsec.attest(30, NULL, 'undecided')").unwrap_err();
    assert_eq!(e, "22004: keep must not be NULL");
    let mut departed = env.login(&db, 60);
    let e = one::<i64>(&mut departed, "SELECT rowsec.attest(30, true, NULL)").unwrap_err();
    assert_eq!(e, "42501: only an active person in the directory may attest access");
    // A session that acts as the manager's login through SET ROLE attests as the manager.
    admin.batch_execute("SET ROLE rs_p10").unwrap();
    let id: i64 = one(&mut admin, "SELECT rowsec.attest(33, false, 'left the account')").unwrap();
    admin.batch_execute("RESET ROLE").unwrap();
    assert_eq!(
        one::<String>(&mut admin, &format!("SELECT concat_ws('|', actor, login, detail->>'person', detail->>'keep') FROM rowsec.audit_log WHERE id = {id}"))
            .unwrap(),
        "10|postgres|33|false"
    );
}

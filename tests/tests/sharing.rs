//! SPEC 9: sharing rows to people and teams through rowsec.share / rowsec.unshare.

use std::collections::BTreeSet;

use postgres::Client;
use rowsec_e2e::fixture::{classify, env, keys, table, try_rolled_back, Tally};
use rowsec_e2e::oracle::{Oracle, Outcome, Share};

fn share(c: &mut Client, args: &str) -> Result<i64, Outcome> {
    c.query_one(&format!("SELECT rowsec.share({args})"), &[]).map(|r| r.get(0)).map_err(|e| classify(Err(e)))
}

#[test]
fn a_read_share_makes_a_row_visible_but_not_updatable() {
    let env = env();
    let db = env.crm_db();
    let mut owner = env.login(&db, 20);
    let mut other = env.login(&db, 23);
    let q = "SELECT id FROM crm.accounts WHERE id = 2001";
    assert_eq!(keys(&mut other, q), Ok(BTreeSet::new()));
    share(&mut owner, "'crm.accounts', 2001, to_person => 23, access => 'read'").unwrap();
    assert_eq!(keys(&mut other, q), Ok(BTreeSet::from([2001])));
    assert_eq!(try_rolled_back(&mut other, "UPDATE crm.accounts SET name = 'x' WHERE id = 2001"), Outcome::Rows(0));
}

#[test]
fn a_write_share_lets_the_sharee_update_the_row() {
    let env = env();
    let db = env.crm_db();
    let mut owner = env.login(&db, 20);
    let mut other = env.login(&db, 23);
    let update = "UPDATE crm.opportunities SET title = 'x' WHERE id = 2001";
    assert_eq!(try_rolled_back(&mut other, update), Outcome::Rows(0));
    share(&mut owner, "'crm.opportunities', 2001, to_person => 23, access => 'write'").unwrap();
    assert_eq!(try_rolled_back(&mut other, update), Outcome::Rows(1));
}

#[test]
fn a_write_share_never_lets_the_sharee_take_the_row_or_hand_it_away() {
    let env = env();
    let db = env.crm_db();
    let mut owner = env.login(&db, 20);
    let mut other = env.login(&db, 23);
    share(&mut owner, "'crm.opportunities', 2001, to_person => 23, access => 'write'").unwrap();
    // 23 itself (taking the record), 24 (23's teammate), 21 (the owner's teammate), 1 (the CEO).
    for new_owner in [23, 24, 21, 1] {
        assert_eq!(
            try_rolled_back(
                &mut other,
                &format!("UPDATE crm.opportunities SET owner_id = {new_owner} WHERE id = 2001")
            ),
            Outcome::RlsViolation,
            "hand to {new_owner}"
        );
    }
}

#[test]
fn a_write_share_stays_within_the_sharees_column_rights() {
    let env = env();
    let db = env.crm_db();
    let mut owner = env.login(&db, 20);
    let mut other = env.login(&db, 23);
    share(&mut owner, "'crm.opportunities', 2001, to_person => 23, access => 'write'").unwrap();
    // A rep only reads `financial`.
    assert_eq!(
        try_rolled_back(&mut other, "UPDATE crm.opportunities SET amount = 1 WHERE id = 2001"),
        Outcome::PermissionDenied
    );
}

#[test]
fn a_team_share_reaches_exactly_the_members_of_that_team() {
    let env = env();
    let db = env.crm_db();
    let mut owner = env.login(&db, 20);
    share(&mut owner, "'crm.contacts', 2001, to_team => '200', access => 'read'").unwrap();
    let mut oracle = Oracle::new(&env.spec, &env.people);
    oracle.shares.push(Share {
        table: table("contacts"),
        key: 2001,
        to_person: None,
        to_team: Some(200),
        write: false,
        expired: false,
    });
    let t = table("contacts");
    let row = env.rows[&t].iter().find(|r| r.key == 2001).unwrap();
    let mut tally = Tally::new("team share: person sees contact 2001");
    let mut reached = 0;
    for p in env.logins() {
        let mut c = env.login(&db, p.id);
        let expected = oracle.visible(p.id, &t, row);
        reached += usize::from(expected && p.team == Some(200));
        let seen =
            keys(&mut c, "SELECT id FROM crm.contacts WHERE id = 2001").map(|k| k.contains(&2001)).unwrap_or(false);
        tally.check(format!("{} ({})", p.name, p.id), expected, seen);
    }
    assert!(reached >= 5, "team 200 members are reached");
    tally.finish();
}

#[test]
fn an_expired_share_grants_nothing() {
    let env = env();
    let db = env.crm_db();
    let mut owner = env.login(&db, 20);
    let mut other = env.login(&db, 23);
    share(
        &mut owner,
        "'crm.accounts', 2001, to_person => 23, access => 'write', \
         expires_at => clock_timestamp() + interval '1 second'",
    )
    .unwrap();
    let q = "SELECT id FROM crm.accounts WHERE id = 2001";
    assert_eq!(keys(&mut other, q), Ok(BTreeSet::from([2001])), "before expiry");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(keys(&mut other, q), Ok(BTreeSet::new()), "after expiry");
    assert_eq!(try_rolled_back(&mut other, "UPDATE crm.accounts SET name = 'x' WHERE id = 2001"), Outcome::Rows(0));
}

#[test]
fn sharing_a_row_the_caller_cannot_update_is_refused() {
    let env = env();
    let db = env.crm_db();
    // Rep 21 sees teammate 20's account (select team) but may not update it (update own).
    let mut rep = env.login(&db, 21);
    assert_eq!(keys(&mut rep, "SELECT id FROM crm.accounts WHERE id = 2001"), Ok(BTreeSet::from([2001])));
    for key in [2001, 2301] {
        let r = share(&mut rep, &format!("'crm.accounts', {key}, to_person => 21, access => 'write'"));
        assert!(matches!(r, Err(Outcome::PermissionDenied) | Err(Outcome::RlsViolation)), "share of {key}: {r:?}");
    }
    let count: i64 = env.cluster.admin(&db).query_one("SELECT count(*) FROM rowsec.shares", &[]).unwrap().get(0);
    assert_eq!(count, 0);
}

#[test]
fn unsharing_revokes_access_and_share_and_unshare_are_audited() {
    let env = env();
    let db = env.crm_db();
    let mut owner = env.login(&db, 20);
    let mut other = env.login(&db, 23);
    let id = share(&mut owner, "'crm.accounts', 2001, to_person => 23, access => 'read'").unwrap();
    let q = "SELECT id FROM crm.accounts WHERE id = 2001";
    assert_eq!(keys(&mut other, q), Ok(BTreeSet::from([2001])));
    owner.batch_execute(&format!("SELECT rowsec.unshare({id}, reason => 'done')")).expect("the owner may unshare");
    assert_eq!(keys(&mut other, q), Ok(BTreeSet::new()));
    let audited: i64 = env.cluster.admin(&db).query_one("SELECT count(*) FROM rowsec.share_audit", &[]).unwrap().get(0);
    assert!(audited >= 2, "share and unshare are audited, found {audited} audit rows");
}

#[test]
fn a_table_without_sharing_cannot_be_shared() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 20);
    let r = share(&mut rep, "'crm.activities', 2001, to_person => 23");
    assert!(r.is_err(), "crm.activities has no sharing, got share id {r:?}");
}

#[test]
fn the_share_tables_cannot_be_written_directly() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 20);
    for sql in
        ["DELETE FROM rowsec.share_audit", "DELETE FROM rowsec.shares", "UPDATE rowsec.shares SET expires_at = NULL"]
    {
        assert_eq!(try_rolled_back(&mut rep, sql), Outcome::PermissionDenied, "{sql}");
    }
}

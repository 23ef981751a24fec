//! SPEC 9: sharing rows to people and teams through rowsec.share / rowsec.unshare.

use std::collections::BTreeSet;

use postgres::Client;
use rowsec_e2e::fixture::{classify, env, keys, table, try_rolled_back, Tally};
use rowsec_generator::oracle::{Oracle, Outcome, Share};

/// The share and unshare rows of `rowsec.audit_log`, with the columns the earlier separate
/// `rowsec.share_audit` had.
const SHARE_TRAIL: &str = "(SELECT id, kind AS action, (detail->>'share_id')::bigint AS share_id, \
    actor AS actor_person, detail->>'reason' AS reason, (detail->>'derived_from')::bigint AS derived_from, \
    (detail->>'expiry_capped')::boolean AS expiry_capped, detail->>'requested_expires_at' AS requested_expires_at \
    FROM rowsec.audit_log WHERE kind IN ('share', 'unshare')) AS t";

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
        to_team: Some("200".to_owned()),
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
    let audited: i64 =
        env.cluster.admin(&db).query_one(&format!("SELECT count(*) FROM {SHARE_TRAIL}"), &[]).unwrap().get(0);
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
        ["DELETE FROM rowsec.audit_log", "DELETE FROM rowsec.shares", "UPDATE rowsec.shares SET expires_at = NULL"]
    {
        assert_eq!(try_rolled_back(&mut rep, sql), Outcome::PermissionDenied, "{sql}");
    }
}

/// `SELECT rowsec.share(...)` as `person`, keeping the notices: (share id, notices' messages).
fn share_noticed(env: &rowsec_e2e::fixture::Env, db: &str, person: i64, args: &str) -> (i64, Vec<String>) {
    let (mut c, notices) = env.login_collecting_notices(db, person);
    let id = share(&mut c, args).unwrap_or_else(|e| panic!("share({args}) as {person}: {e:?}"));
    let notices =
        notices.lock().unwrap().iter().map(|n| format!("{}|{}", n.message(), n.detail().unwrap_or(""))).collect();
    (id, notices)
}

fn admin_text(env: &rowsec_e2e::fixture::Env, db: &str, sql: &str) -> String {
    env.cluster.admin(db).query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
}

// Issue 8, "temporary becomes permanent": a rep holding a one-day write share re-shared the
// record to a whole team with no expiry.
#[test]
fn a_share_made_through_a_one_day_write_share_ends_with_it() {
    let env = env();
    let db = env.crm_db();
    let mut owner = env.login(&db, 20);
    let parent = share(
        &mut owner,
        "'crm.opportunities', 2001, to_person => 23, access => 'write', expires_at => now() + interval '1 day'",
    )
    .unwrap();
    // 23 (a west rep: update own) may update 2001 only through the share.
    let (child, notices) =
        share_noticed(env, &db, 23, "'crm.opportunities', 2001, to_team => '100', access => 'write', reason => 'team'");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains(&format!("when share {parent} it derives from expires")), "{notices:?}");
    assert!(notices[0].contains("you asked for no expiry"), "{notices:?}");
    assert_eq!(
        admin_text(
            env,
            &db,
            &format!(
                "SELECT concat_ws(',', c.derived_from = p.id, c.expiry_capped, c.expires_at = p.expires_at, c.access)
                 FROM rowsec.shares c, rowsec.shares p WHERE c.id = {child} AND p.id = {parent}"
            )
        ),
        "t,t,t,write"
    );
    assert_eq!(
        admin_text(
            env,
            &db,
            &format!(
                "SELECT concat_ws(',', derived_from = {parent}, expiry_capped, requested_expires_at IS NULL)
                 FROM {SHARE_TRAIL} WHERE action = 'share' AND share_id = {child}"
            )
        ),
        "t,t,t",
        "the trail records the cap and what was asked"
    );
    // 22 (east rep, team 100) may edit 20's opportunity through the derived share ...
    let mut teammate = env.login(&db, 22);
    let update = "UPDATE crm.opportunities SET title = 'x' WHERE id = 2001";
    assert_eq!(try_rolled_back(&mut teammate, update), Outcome::Rows(1));
    // ... until the owner unshares the parent: the derived share ends with it, on the record.
    owner.batch_execute(&format!("SELECT rowsec.unshare({parent}, 'cover over')")).unwrap();
    assert_eq!(try_rolled_back(&mut teammate, update), Outcome::Rows(0));
    assert_eq!(admin_text(env, &db, "SELECT count(*)::text FROM rowsec.shares"), "0");
    assert_eq!(
        admin_text(
            env,
            &db,
            &format!(
                "SELECT string_agg(concat_ws(',', share_id, actor_person, reason), ' ; ' ORDER BY id)
                 FROM {SHARE_TRAIL} WHERE action = 'unshare'"
            )
        ),
        format!("{parent},20,cover over ; {child},20,derived from share {parent}, which was removed")
    );
}

#[test]
fn a_share_made_through_a_team_share_is_capped_at_the_team_share() {
    let env = env();
    let db = env.crm_db();
    let mut owner = env.login(&db, 20);
    let parent = share(
        &mut owner,
        "'crm.accounts', 2001, to_team => '200', access => 'write', expires_at => now() + interval '2 hours'",
    )
    .unwrap();
    // 24 is in team 200.
    let (child, notices) = share_noticed(
        env,
        &db,
        24,
        "'crm.accounts', 2001, to_person => 26, access => 'read', expires_at => now() + interval '1 week'",
    );
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(
        admin_text(
            env,
            &db,
            &format!(
                "SELECT concat_ws(',', c.derived_from = p.id, c.expiry_capped, c.expires_at = p.expires_at)
                 FROM rowsec.shares c, rowsec.shares p WHERE c.id = {child} AND p.id = {parent}"
            )
        ),
        "t,t,t"
    );
}

#[test]
fn a_share_made_with_ones_own_update_right_is_not_derived() {
    let env = env();
    let db = env.crm_db();
    let mut owner = env.login(&db, 20);
    share(
        &mut owner,
        "'crm.accounts', 2001, to_person => 10, access => 'write', expires_at => now() + interval '1 day'",
    )
    .unwrap();
    // 10 manages 20 (update subtree): the share adds nothing to their right.
    let (id, notices) = share_noticed(env, &db, 10, "'crm.accounts', 2001, to_person => 23");
    assert_eq!(notices, Vec::<String>::new());
    assert_eq!(
        admin_text(
            env,
            &db,
            &format!("SELECT concat_ws(',', derived_from IS NULL, expiry_capped, expires_at IS NULL) FROM rowsec.shares WHERE id = {id}")
        ),
        "t,f,t"
    );
}

#[test]
fn shares_to_an_unknown_team_or_an_inactive_person_are_refused_with_a_hint() {
    let env = env();
    let db = env.crm_db();
    let mut owner = env.login(&db, 20);
    for (args, message) in [
        ("to_team => 'no-such-team'", "no person of the directory has the team \"no-such-team\""),
        ("to_person => 60", "person 60 is inactive"),
        ("to_person => 999", "person 999 is not in the directory"),
    ] {
        let e = owner.query_one(&format!("SELECT rowsec.share('crm.accounts', 2001, {args})"), &[]).expect_err(args);
        let e = e.as_db_error().expect("a database error");
        assert_eq!((e.code().code(), e.message()), ("22023", message), "{args}");
        assert!(e.detail().is_some_and(|d| !d.is_empty()) && e.hint().is_some_and(|h| !h.is_empty()), "{args}: {e:?}");
    }
    assert_eq!(admin_text(env, &db, "SELECT count(*)::text FROM rowsec.shares"), "0");
}

fn my_shares(c: &mut postgres::Client) -> Vec<(i64, String)> {
    c.query("SELECT share_id, seen_as FROM rowsec.my_shares ORDER BY share_id", &[])
        .expect("rowsec.my_shares is readable by everyone")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

// Issue 8, "shares nobody can see": people could not find a share's id to unshare it.
#[test]
fn people_find_their_shares_in_my_shares_and_unshare_them_by_id() {
    let env = env();
    let db = env.crm_db();
    let mut owner = env.login(&db, 20);
    let id = share(&mut owner, "'crm.contacts', 2001, to_person => 23, reason => 'intro'").unwrap();
    assert_eq!(my_shares(&mut owner), vec![(id, "granter".to_owned())]);
    assert_eq!(my_shares(&mut env.login(&db, 23)), vec![(id, "grantee".to_owned())]);
    // 10 and 3 manage 20; 11 manages 23, the grantee, which is not 11's business; 21 is 20's teammate.
    assert_eq!(my_shares(&mut env.login(&db, 10)), vec![(id, "manager".to_owned())]);
    assert_eq!(my_shares(&mut env.login(&db, 3)), vec![(id, "manager".to_owned())]);
    for outsider in [11, 21, 40] {
        assert_eq!(my_shares(&mut env.login(&db, outsider)), vec![], "person {outsider}");
    }
    // Share metadata only, never the row.
    let row = owner
        .query_one(
            "SELECT tbl::text, row_key, grantee_person, access, expires_at IS NULL, granted_by, reason FROM rowsec.my_shares",
            &[],
        )
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, i64>(1), row.get::<_, i64>(2), row.get::<_, String>(3)),
        ("crm.contacts".to_owned(), 2001, 23, "read".to_owned())
    );
    assert_eq!((row.get::<_, bool>(4), row.get::<_, i64>(5), row.get::<_, String>(6)), (true, 20, "intro".to_owned()));
    // The unshare error's hint names a query that works.
    let e = owner.batch_execute("SELECT rowsec.unshare(987654321)").expect_err("no such share");
    let hint = e.as_db_error().and_then(|d| d.hint()).unwrap_or_default().to_owned();
    assert!(hint.contains("SELECT * FROM rowsec.my_shares"), "{hint}");
    let found: i64 = owner.query_one("SELECT share_id FROM rowsec.my_shares WHERE row_key = 2001", &[]).unwrap().get(0);
    owner.batch_execute(&format!("SELECT rowsec.unshare({found})")).unwrap();
    assert_eq!(my_shares(&mut env.login(&db, 23)), vec![]);
}

// The owner's and managers' rows follow the shared row: to its new owner when it is handed on,
// to nobody but the share's parties once it is deleted. The SQL backend keeps the row's owner
// with the share (triggers on the table); the extension reads it from the row.
#[test]
fn my_shares_follows_the_shared_row_to_its_new_owner_and_forgets_it_when_deleted() {
    let env = env();
    let db = env.crm_db();
    let mut owner = env.login(&db, 20);
    let id = share(&mut owner, "'crm.contacts', 2001, to_person => 23, reason => 'intro'").unwrap();
    let listing = |person: i64| my_shares(&mut env.login(&db, person));
    let seen = |as_: &str| vec![(id, as_.to_owned())];
    assert_eq!(
        (listing(20), listing(10), listing(3), listing(26), listing(12)),
        (seen("granter"), seen("manager"), seen("manager"), vec![], vec![])
    );

    // Handed from 20 (under 10, under 3) to 26 (under 12, under 3).
    let mut admin = env.cluster.admin(&db);
    admin.batch_execute("UPDATE crm.contacts SET owner_id = 26 WHERE id = 2001").unwrap();
    assert_eq!(
        (listing(20), listing(23), listing(10), listing(3), listing(26), listing(12)),
        (seen("granter"), seen("grantee"), vec![], seen("manager"), seen("owner"), seen("manager"))
    );
    // An update that keeps the owner changes nothing; one in a rolled-back transaction neither.
    admin.batch_execute("UPDATE crm.contacts SET owner_id = 26, full_name = full_name || '.' WHERE id = 2001").unwrap();
    admin.batch_execute("BEGIN; UPDATE crm.contacts SET owner_id = 40 WHERE id = 2001; ROLLBACK").unwrap();
    assert_eq!((listing(26), listing(12), listing(40)), (seen("owner"), seen("manager"), vec![]));

    // Deleted: the share names a row that is gone; its granter and grantee still list it.
    admin
        .batch_execute("UPDATE crm.activities SET contact_id = NULL WHERE contact_id = 2001; DELETE FROM crm.contacts WHERE id = 2001")
        .unwrap();
    assert_eq!(
        (listing(20), listing(23), listing(26), listing(12), listing(3)),
        (seen("granter"), seen("grantee"), vec![], vec![], vec![])
    );
}

// The same listing under a setting identity (a pool: SET LOCAL ROLE and the person's id), where
// the SQL backend resolves the caller from the setting inside a SECURITY DEFINER function.
#[test]
fn my_shares_under_a_setting_identity_lists_the_parties_and_the_managers() {
    let env = env();
    let db = env.database_for(&rowsec_e2e::fixture::setting_spec_path());
    let roles: Vec<&str> = env.setting_spec.roles.keys().map(String::as_str).collect();
    env.cluster
        .admin(&db)
        .batch_execute(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ms_pool') THEN CREATE ROLE ms_pool LOGIN; END IF; END $$; \
             GRANT {} TO ms_pool;",
            roles.join(", ")
        ))
        .unwrap();
    let mut pool = env.cluster.connect("ms_pool", &db).expect("pool login");
    let mut as_person = |person: i64, sql: &str| -> Vec<(i64, String)> {
        let role = &env.person(person).roles[0];
        let mut tx = pool.transaction().unwrap();
        tx.batch_execute(&format!("SET LOCAL ROLE {role}; SET LOCAL app.person_id = '{person}'")).unwrap();
        let rows = tx.query(sql, &[]).unwrap_or_else(|e| panic!("{person}: {sql}: {e}"));
        tx.commit().unwrap();
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    };
    let made = as_person(20, "SELECT rowsec.share('crm.contacts', 2001, to_person => 23), 'made'");
    let id = made[0].0;
    let listing = "SELECT share_id, seen_as FROM rowsec.my_shares ORDER BY share_id";
    let seen = |as_: &str| vec![(id, as_.to_owned())];
    assert_eq!(as_person(20, listing), seen("granter"));
    assert_eq!(as_person(23, listing), seen("grantee"));
    assert_eq!(as_person(10, listing), seen("manager"));
    assert_eq!(as_person(3, listing), seen("manager"));
    for outsider in [11, 21, 40] {
        assert_eq!(as_person(outsider, listing), vec![], "person {outsider}");
    }
}

// The SQL backend's triggers that keep a share's row owner come back when the script is applied
// again (also to tables an earlier version protected, whose blocks the script leaves alone),
// and applying it again takes no lock on rowsec.shares that would hold up readers.
#[test]
fn applying_again_restores_the_share_triggers_and_locks_no_share_table() {
    if rowsec_e2e::fixture::backend() != rowsec_generator::Backend::Sql {
        println!("only on the SQL backend: the extension keeps no owner with a share");
        return;
    }
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let triggers = |admin: &mut Client| -> i64 {
        admin
            .query_one(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'crm.contacts'::regclass AND tgname LIKE 'rowsec\\_shared\\_%'",
                &[],
            )
            .unwrap()
            .get(0)
    };
    assert_eq!(triggers(&mut admin), 3);
    admin.batch_execute("DROP TRIGGER rowsec_shared_row_moved ON crm.contacts").unwrap();
    assert_eq!(triggers(&mut admin), 2);
    let script = rowsec_e2e::fixture::compile(&rowsec_e2e::fixture::crm_spec_path());
    let body = script.trim_end().strip_suffix("COMMIT;").expect("the script ends with COMMIT");
    admin.batch_execute(body).unwrap();
    let locked: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation' AND mode = 'AccessExclusiveLock' \
             AND relation IN ('rowsec.shares'::regclass, 'rowsec.update_proofs'::regclass)",
            &[],
        )
        .unwrap()
        .get(0);
    admin.batch_execute("COMMIT").unwrap();
    assert_eq!(locked, 0, "ACCESS EXCLUSIVE locks on rowsec.shares or rowsec.update_proofs");
    assert_eq!(triggers(&mut admin), 3);
}

#[test]
fn a_proof_naming_another_owner_of_the_row_is_refused() {
    if rowsec_e2e::fixture::backend() != rowsec_generator::Backend::Sql {
        println!("only on the SQL backend: the extension keeps no owner with a share");
        return;
    }
    let env = env();
    let db = env.crm_db();
    let mut owner = env.login(&db, 20);
    // 20 may update row 2001 of crm.contacts and owns it: a proof saying 40 owns it would list the
    // share to 40 and 40's managers.
    let mut tx = owner.transaction().unwrap();
    let e = tx
        .batch_execute(
            "INSERT INTO rowsec.update_proofs (tbl, row_key, person, own, row_owner) VALUES ('crm.contacts', 2001, 20, true, 40)",
        )
        .expect_err("a forged owner");
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42501"), "{e}");
    tx.rollback().unwrap();
    let mut tx = owner.transaction().unwrap();
    tx.batch_execute(
        "INSERT INTO rowsec.update_proofs (tbl, row_key, person, own, row_owner) VALUES ('crm.contacts', 2001, 20, true, 20)",
    )
    .expect("the true owner");
    tx.rollback().unwrap();
}

#[test]
fn expired_shares_are_cleaned_up_with_their_derived_shares_and_stay_in_the_trail() {
    let env = env();
    let db = env.crm_db();
    let mut owner = env.login(&db, 20);
    let parent = share(
        &mut owner,
        "'crm.accounts', 2001, to_person => 23, access => 'write', expires_at => clock_timestamp() + interval '1 second'",
    )
    .unwrap();
    let (child, _) = share_noticed(env, &db, 23, "'crm.accounts', 2001, to_person => 22");
    let kept = share(&mut owner, "'crm.accounts', 2001, to_person => 24").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // Owner-only: a person may not run it.
    assert_eq!(try_rolled_back(&mut owner, "SELECT rowsec.cleanup_expired_shares()"), Outcome::PermissionDenied);
    let mut admin = env.cluster.admin(&db);
    let removed: i64 = admin.query_one("SELECT rowsec.cleanup_expired_shares()", &[]).unwrap().get(0);
    assert_eq!(removed, 2);
    assert_eq!(admin_text(env, &db, "SELECT string_agg(id::text, ',') FROM rowsec.shares"), kept.to_string());
    assert_eq!(
        admin_text(
            env,
            &db,
            &format!(
                "SELECT string_agg(concat_ws(',', share_id, coalesce(actor_person::text, '-'), reason), ' ; ' ORDER BY id)
                 FROM {SHARE_TRAIL} WHERE action = 'unshare'"
            )
        ),
        format!("{parent},-,expired ; {child},-,expired")
    );
}

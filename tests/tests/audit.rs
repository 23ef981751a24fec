//! SPEC item 15: the audit trail `rowsec.audit_log` on a real cluster with crm.yaml applied:
//! each kind of row with its exact content, the hash chain and tampering with the guard trigger
//! disabled, readers and non-readers, and an apply that rolls back leaving no `apply` row.

use postgres::Client;
use rowsec_e2e::fixture::{compile, crm_spec_path, db_error, env, extension_only, load};

/// The trail rows after `after` (an id), as `kind|actor|login|object|detail`, in id order.
fn trail_after(admin: &mut Client, after: i64) -> Vec<String> {
    admin
        .query(
            "SELECT concat_ws('|', kind, coalesce(actor::text, '-'), login, object, detail::text)
             FROM rowsec.audit_log WHERE id > $1 ORDER BY id",
            &[&after],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn last_id(admin: &mut Client) -> i64 {
    admin.query_one("SELECT coalesce(max(id), 0) FROM rowsec.audit_log", &[]).unwrap().get(0)
}

fn one_i64(c: &mut Client, sql: &str) -> Option<i64> {
    c.query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {}", db_error(&e))).get(0)
}

#[test]
fn share_and_unshare_rows_name_the_person_the_login_and_the_share() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let start = last_id(&mut admin);
    let mut rep = env.login(&db, 20);
    let id: i64 = rep
        .query_one("SELECT rowsec.share('crm.accounts', 2001, to_person => 23, reason => 'cover')", &[])
        .unwrap()
        .get(0);
    rep.batch_execute(&format!("SELECT rowsec.unshare({id}, 'back')")).unwrap();
    assert_eq!(
        trail_after(&mut admin, start),
        [
            format!(
                "share|20|rs_p20|crm.accounts|{{\"key\": 2001, \"role\": \"rs_p20\", \"access\": \"read\", \"reason\": \"cover\", \
                 \"share_id\": {id}, \"expires_at\": null, \"derived_from\": null, \"grantee_team\": null, \"expiry_capped\": false, \
                 \"grantee_person\": 23, \"requested_expires_at\": null}}"
            ),
            format!(
                "unshare|20|rs_p20|crm.accounts|{{\"key\": 2001, \"role\": \"rs_p20\", \"access\": \"read\", \"reason\": \"back\", \
                 \"share_id\": {id}, \"expires_at\": null, \"derived_from\": null, \"grantee_team\": null, \"expiry_capped\": false, \
                 \"grantee_person\": 23}}"
            ),
        ]
    );
}

#[test]
fn directory_rows_record_old_and_new_and_what_a_move_did_to_access() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let start = last_id(&mut admin);
    // 30 (with 33 under them) moves from rep 20's subtree (under 10, 3, 1) to manager 11's.
    admin.batch_execute("UPDATE crm.app_users SET manager_id = 11 WHERE id = 30").unwrap();
    // 31 moves from team 100 (11 people) to team 200 (8 people).
    admin.batch_execute("UPDATE crm.app_users SET team_id = 200 WHERE id = 31").unwrap();
    admin.batch_execute("UPDATE crm.app_users SET name = 'renamed' WHERE id = 31").unwrap();
    admin
        .batch_execute(
            "INSERT INTO crm.app_users (id, name, manager_id, team_id, db_login, active) VALUES (90, 'new hire', 20, NULL, 'rs_p90', true);
             UPDATE crm.app_users SET active = false, db_login = NULL WHERE id = 90;
             DELETE FROM crm.app_users WHERE id = 90",
        )
        .unwrap();
    assert_eq!(
        trail_after(&mut admin, start),
        [
            "directory|-|postgres|crm.app_users|{\"id\": 30, \"op\": \"update\", \"access\": {\"manager\": {\"people_moved\": 2, \
             \"left_subtree_of\": [20, 10], \"entered_subtree_of\": [11]}}, \"changes\": {\"manager\": {\"new\": 11, \"old\": 20}}}",
            "directory|-|postgres|crm.app_users|{\"id\": 31, \"op\": \"update\", \"access\": {\"team\": {\"teammates_lost\": 10, \
             \"teammates_gained\": 8}}, \"changes\": {\"team\": {\"new\": \"200\", \"old\": \"100\"}}}",
            "directory|-|postgres|crm.app_users|{\"id\": 90, \"op\": \"insert\", \"access\": {\"manager\": {\"people_moved\": 1, \
             \"left_subtree_of\": [], \"entered_subtree_of\": [20, 10, 3, 1]}}, \"changes\": {\"id\": {\"new\": 90, \"old\": null}, \
             \"login\": {\"new\": \"rs_p90\", \"old\": null}, \"active\": {\"new\": true, \"old\": null}, \"manager\": {\"new\": 20, \"old\": null}}}",
            "directory|-|postgres|crm.app_users|{\"id\": 90, \"op\": \"update\", \"access\": {}, \"changes\": {\"login\": {\"new\": null, \
             \"old\": \"rs_p90\"}, \"active\": {\"new\": false, \"old\": true}}}",
            "directory|-|postgres|crm.app_users|{\"id\": 90, \"op\": \"delete\", \"access\": {\"manager\": {\"people_moved\": 1, \
             \"left_subtree_of\": [20, 10, 3, 1], \"entered_subtree_of\": []}}, \"changes\": {\"id\": {\"new\": null, \"old\": 90}, \
             \"active\": {\"new\": null, \"old\": false}, \"manager\": {\"new\": null, \"old\": 20}}}",
        ],
        "a rename changes no access and is not recorded"
    );
}

#[test]
fn membership_rows_record_spec_role_grants_by_any_statement() {
    if extension_only("membership rows need the extension's ProcessUtility hook") {
        return;
    }
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let start = last_id(&mut admin);
    let who = format!("{db}_m");
    admin
        .batch_execute(&format!(
            "CREATE ROLE {who} LOGIN IN ROLE sales_rep;
             GRANT support TO {who};
             REVOKE sales_rep FROM {who};
             DROP ROLE {who}"
        ))
        .unwrap();
    let row = |role: &str, op: &str, statement: &str| {
        format!(
            "membership|-|postgres|{role}|{{\"op\": \"{op}\", \"role\": \"{role}\", \"member\": \"{who}\", \"statement\": \"{statement}\", \
             \"admin_option\": false, \"member_can_login\": true}}"
        )
    };
    assert_eq!(
        trail_after(&mut admin, start),
        [
            row("sales_rep", "grant", "CREATE ROLE"),
            row("support", "grant", "GRANT"),
            row("sales_rep", "revoke", "REVOKE"),
            row("support", "revoke", "DROP ROLE"),
        ]
    );
}

#[test]
fn membership_changes_nothing_saw_are_recorded_when_reconciled() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let who = format!("{db}_r");
    // Granted from another database: the extension's hook records only where rowsec is
    // installed, and on the SQL backend nothing sees a GRANT of a role as it happens.
    let mut elsewhere = env.cluster.admin("postgres");
    elsewhere.batch_execute(&format!("CREATE ROLE {who} LOGIN; GRANT support TO {who} WITH ADMIN OPTION")).unwrap();
    let start = last_id(&mut admin);
    let reconciled = |admin: &mut Client| -> Vec<String> {
        admin.batch_execute("SELECT rowsec.reconcile_memberships()").unwrap();
        admin
            .query(
                "SELECT concat_ws('|', kind, coalesce(actor::text, '-'), object, detail->>'op', detail->>'member_can_login',
                                  detail->>'admin_option', detail->>'statement', detail->>'reconciled')
                 FROM rowsec.audit_log WHERE id > $1 AND detail->>'member' = $2 ORDER BY id",
                &[&start, &who],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let grant = "membership|-|support|grant|true|true|rowsec.reconcile_memberships()|true";
    assert_eq!(reconciled(&mut admin), [grant]);
    assert_eq!(reconciled(&mut admin), [grant], "recorded once");
    elsewhere.batch_execute(&format!("REVOKE support FROM {who}; DROP ROLE {who}")).unwrap();
    assert_eq!(
        reconciled(&mut admin),
        [grant, "membership|-|support|revoke|false|false|rowsec.reconcile_memberships()|true"],
        "a member gone since: can_login false, as the extension records it"
    );
}

#[test]
fn data_rows_record_changed_columns_with_classed_ones_redacted() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let start = last_id(&mut admin);
    let mut rep = env.login(&db, 20);
    rep.batch_execute("INSERT INTO crm.accounts (id, owner_id, name) VALUES (5000001, 20, 'new')").unwrap();
    rep.batch_execute("UPDATE crm.accounts SET name = 'renamed', industry = NULL WHERE id = 2001").unwrap();
    let mut manager = env.login(&db, 10);
    manager.batch_execute("UPDATE crm.accounts SET annual_revenue = 1 WHERE id = 2001").unwrap();
    rep.batch_execute("DELETE FROM crm.accounts WHERE id = 5000001").unwrap();
    // crm.activities is not under audit.data.
    rep.batch_execute("UPDATE crm.activities SET kind = 'email' WHERE id = 2001").unwrap();
    let rows: Vec<String> = admin
        .query(
            "SELECT concat_ws('|', kind, actor, login, object,
                    jsonb_set(detail, '{columns}', (detail->'columns') - 'created_at')::text,
                    detail->'columns' ? 'created_at')
             FROM rowsec.audit_log WHERE id > $1 ORDER BY id",
            &[&start],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        rows,
        [
            "data|20|rs_p20|crm.accounts|{\"op\": \"insert\", \"key\": 5000001, \"columns\": {\"id\": {\"new\": \"5000001\", \"old\": null}, \
             \"name\": {\"new\": \"new\", \"old\": null}, \"owner_id\": {\"new\": \"20\", \"old\": null}}}|t",
            "data|20|rs_p20|crm.accounts|{\"op\": \"update\", \"key\": 2001, \"columns\": {\"name\": {\"new\": \"renamed\", \
             \"old\": \"account 2001\"}, \"industry\": {\"new\": null, \"old\": \"retail\"}}}|f",
            "data|10|rs_p10|crm.accounts|{\"op\": \"update\", \"key\": 2001, \"columns\": {\"annual_revenue\": {\"new\": \"redacted\", \
             \"old\": \"redacted\"}}}|f",
            "data|20|rs_p20|crm.accounts|{\"op\": \"delete\", \"key\": 5000001, \"columns\": {\"id\": {\"new\": null, \"old\": \"5000001\"}, \
             \"name\": {\"new\": null, \"old\": \"new\"}, \"owner_id\": {\"new\": null, \"old\": \"20\"}}}|t",
        ]
    );
}

#[test]
fn the_apply_row_names_the_spec_and_a_rolled_back_apply_leaves_none() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let loaded = load(&crm_spec_path());
    let apply_rows = |admin: &mut Client| one_i64(admin, "SELECT count(*) FROM rowsec.audit_log WHERE kind = 'apply'");
    assert_eq!(apply_rows(&mut admin), Some(1), "the template's apply");
    let (object, detail): (String, serde_json::Value) = {
        let r = admin.query_one("SELECT object, detail::text FROM rowsec.audit_log WHERE kind = 'apply'", &[]).unwrap();
        (r.get(0), serde_json::from_str(r.get(1)).unwrap())
    };
    assert_eq!(object, loaded.sha256);
    assert_eq!(detail["spec_sha256"], loaded.sha256.as_str());
    assert_eq!(detail["rowsec_version"], env!("CARGO_PKG_VERSION"));
    let changes = &detail["changes"];
    assert_eq!(changes["spec"], serde_json::json!({"roles": 8, "tables": 5, "audited_tables": 3}));
    // What the script changed, as its summary says: the database's own objects exactly (roles
    // are cluster-wide, so whether this database's apply created them depends on test order).
    assert_eq!(changes["table"], serde_json::json!({"created": 5, "changed": 0, "removed": 0}));
    assert_eq!(changes["policy"], serde_json::json!({"created": 56, "changed": 0, "removed": 0}));
    assert_eq!(changes["privilege"], serde_json::json!({"created": 276, "changed": 0, "removed": 0}));
    assert!(changes["role"]["created"].as_i64().is_some(), "{changes}");
    let script = compile(&crm_spec_path());
    let rolled_back = script.replacen("\nCOMMIT;\n", "\nROLLBACK;\n", 1);
    assert_ne!(rolled_back, script);
    admin.batch_execute(&rolled_back).unwrap();
    assert_eq!(apply_rows(&mut admin), Some(1), "a rolled-back apply leaves no apply row");
    admin.batch_execute(&script).unwrap();
    assert_eq!(apply_rows(&mut admin), Some(2));
    assert_eq!(one_i64(&mut admin, "SELECT rowsec.verify_audit()"), None);
}

/// A database with some committed, sealed trail: shares by two people.
fn database_with_a_trail() -> (String, Client) {
    let env = env();
    let db = env.crm_db();
    for (person, key, to) in [(20, 2001, 23), (23, 2301, 20), (20, 2001, 24), (10, 1001, 11)] {
        env.login(&db, person)
            .batch_execute(&format!("SELECT rowsec.share('crm.accounts', {key}, to_person => {to})"))
            .unwrap();
    }
    let mut admin = env.cluster.admin(&db);
    assert_eq!(one_i64(&mut admin, "SELECT rowsec.verify_audit()"), None, "an untouched trail verifies");
    assert_eq!(
        one_i64(&mut admin, "SELECT count(*) FROM rowsec.audit_log WHERE seq IS NULL OR hash IS NULL"),
        Some(0),
        "every committed row is sealed"
    );
    (db, admin)
}

fn id_at(admin: &mut Client, from_last: i64) -> i64 {
    one_i64(admin, &format!("SELECT id FROM rowsec.audit_log ORDER BY seq DESC OFFSET {from_last} LIMIT 1")).unwrap()
}

#[test]
fn an_edited_row_is_reported_at_that_row() {
    let (_db, mut admin) = database_with_a_trail();
    let edited = id_at(&mut admin, 2);
    // The guard refuses, even a superuser; disabling it is what a tamperer has to do.
    let e = admin.batch_execute(&format!("UPDATE rowsec.audit_log SET actor = 1 WHERE id = {edited}")).unwrap_err();
    assert_eq!(db_error(&e), "42501: rowsec.audit_log is append-only");
    admin
        .batch_execute(&format!(
            "ALTER TABLE rowsec.audit_log DISABLE TRIGGER audit_log_no_update;
             UPDATE rowsec.audit_log SET actor = 1 WHERE id = {edited};
             ALTER TABLE rowsec.audit_log ENABLE TRIGGER audit_log_no_update"
        ))
        .unwrap();
    assert_eq!(one_i64(&mut admin, "SELECT rowsec.verify_audit()"), Some(edited));
}

#[test]
fn a_deleted_row_is_reported_at_the_row_after_it() {
    let (_db, mut admin) = database_with_a_trail();
    let deleted = id_at(&mut admin, 2);
    let next = id_at(&mut admin, 1);
    let e = admin.batch_execute(&format!("DELETE FROM rowsec.audit_log WHERE id = {deleted}")).unwrap_err();
    assert_eq!(db_error(&e), "42501: rowsec.audit_log is append-only");
    admin
        .batch_execute(&format!(
            "ALTER TABLE rowsec.audit_log DISABLE TRIGGER audit_log_no_delete;
             DELETE FROM rowsec.audit_log WHERE id = {deleted};
             ALTER TABLE rowsec.audit_log ENABLE TRIGGER audit_log_no_delete"
        ))
        .unwrap();
    assert_eq!(one_i64(&mut admin, "SELECT rowsec.verify_audit()"), Some(next));
}

#[test]
fn reordered_rows_are_reported_at_the_first_moved_row() {
    let (_db, mut admin) = database_with_a_trail();
    let (earlier, later) = (id_at(&mut admin, 2), id_at(&mut admin, 0));
    let seq = |admin: &mut Client, id: i64| {
        one_i64(admin, &format!("SELECT seq FROM rowsec.audit_log WHERE id = {id}")).unwrap()
    };
    let (earlier_seq, later_seq) = (seq(&mut admin, earlier), seq(&mut admin, later));
    // seq is unique: swap through a free value.
    admin
        .batch_execute(&format!(
            "ALTER TABLE rowsec.audit_log DISABLE TRIGGER audit_log_no_update;
             UPDATE rowsec.audit_log SET seq = -1 WHERE id = {earlier};
             UPDATE rowsec.audit_log SET seq = {earlier_seq} WHERE id = {later};
             UPDATE rowsec.audit_log SET seq = {later_seq} WHERE id = {earlier};
             ALTER TABLE rowsec.audit_log ENABLE TRIGGER audit_log_no_update"
        ))
        .unwrap();
    // The later row now stands where the earlier one was.
    assert_eq!(one_i64(&mut admin, "SELECT rowsec.verify_audit()"), Some(later));
}

#[test]
fn a_row_committed_with_the_seal_disabled_is_reported() {
    let (_db, mut admin) = database_with_a_trail();
    admin
        .batch_execute(
            "ALTER TABLE rowsec.audit_log DISABLE TRIGGER audit_log_seal;
             INSERT INTO rowsec.audit_log (kind, object) VALUES ('share', 'forged');
             ALTER TABLE rowsec.audit_log ENABLE TRIGGER audit_log_seal",
        )
        .unwrap();
    let forged = one_i64(&mut admin, "SELECT id FROM rowsec.audit_log WHERE object = 'forged'");
    assert_eq!(one_i64(&mut admin, "SELECT rowsec.verify_audit()"), forged);
}

#[test]
fn only_superusers_and_audit_readers_see_a_row() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let total = one_i64(&mut admin, "SELECT count(*) FROM rowsec.audit_log").unwrap();
    assert!(total > 0);
    let mut checked = 0;
    for p in env.logins() {
        let mut c = env.login(&db, p.id);
        let seen = one_i64(&mut c, "SELECT count(*) FROM rowsec.audit_log").unwrap();
        let reader = p.roles.contains(&"crm_admin");
        assert_eq!(seen, if reader { total } else { 0 }, "{} ({}) with roles {:?}", p.name, p.id, p.roles);
        let verify = c.query_one("SELECT rowsec.verify_audit()", &[]);
        if reader {
            assert_eq!(verify.unwrap().get::<_, Option<i64>>(0), None);
        } else {
            let e = verify.unwrap_err();
            assert!(
                db_error(&e).starts_with("42501: permission denied for function rowsec.verify_audit"),
                "{}",
                db_error(&e)
            );
        }
        checked += 1;
    }
    assert!(checked > 40, "every login, the person without a role (70) included");
    assert!(env.person(70).roles.is_empty());
}

#[test]
fn on_a_pooled_connection_the_actor_is_the_person_and_the_login_the_pool() {
    let env = env();
    let db = env.database_for(&rowsec_e2e::fixture::setting_spec_path());
    let mut admin = env.cluster.admin(&db);
    admin
        .batch_execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'audit_pool') THEN \
             CREATE ROLE audit_pool LOGIN; END IF; END $$; GRANT sales_rep TO audit_pool;",
        )
        .unwrap();
    let start = last_id(&mut admin);
    let mut pool = env.cluster.connect("audit_pool", &db).expect("pool login");
    pool.batch_execute(
        "BEGIN; SET LOCAL ROLE sales_rep; SET LOCAL app.person_id = '20';
         SELECT rowsec.share('crm.accounts', 2001, to_person => 23); COMMIT",
    )
    .unwrap();
    let rows: Vec<String> = admin
        .query(
            "SELECT concat_ws('|', kind, actor, login, detail->>'role') FROM rowsec.audit_log WHERE id > $1 AND kind = 'share'",
            &[&start],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, ["share|20|audit_pool|sales_rep"], "the person, the pool's login, the role it used");
}

//! SPEC items 13 and 14 on a real cluster with crm.yaml applied (`monitoring.reads: true`,
//! `bulk_read` over 2000 rows in 10m, `off_hours` outside 08:00-20:00 mon-fri in
//! Asia/Shanghai): what each person's statements leave in `rowsec.activity`, which alerts fire,
//! who may read them, and retention. Every test has its own database; the activity writer is a
//! background worker per database, so each test waits for it with `rowsec.flush_activity()`.

use std::collections::BTreeSet;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Error};
use rowsec_e2e::cluster::Cluster;
use rowsec_e2e::fixture::{
    compile as fixture_compile, crm_spec_path, db_error, env, login_of, schema_path, setting_spec_path,
};
use rowsec_generator::{compile, load_str, Schema};

/// (relation, command, rows, failed, login) of a person's activity, in the order recorded.
type Row = (String, String, i64, bool, String);

fn flush(admin: &mut Client) {
    admin.batch_execute("SELECT rowsec.flush_activity()").unwrap_or_else(|e| panic!("flush: {}", db_error(&e)));
}

fn activity_of(admin: &mut Client, person: i64) -> Vec<Row> {
    flush(admin);
    admin
        .query(
            "SELECT relation, command, rows, failed, login::text FROM rowsec.activity WHERE person = $1 ORDER BY id",
            &[&person],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

fn row(relation: &str, command: &str, rows: usize, failed: bool, login: &str) -> Row {
    (relation.into(), command.into(), rows as i64, failed, login.into())
}

/// (id, detail) of a person's alerts of one rule.
fn alerts_of(admin: &mut Client, person: i64, rule: &str) -> Vec<(i64, serde_json::Value)> {
    flush(admin);
    admin
        .query(
            "SELECT id, detail::text FROM rowsec.alerts WHERE person = $1 AND rule = $2 ORDER BY id",
            &[&person, &rule],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), serde_json::from_str(r.get::<_, &str>(1)).unwrap()))
        .collect()
}

fn sqlstate(e: &Error) -> String {
    e.as_db_error().map_or_else(|| e.to_string(), |d| d.code().code().to_owned())
}

#[test]
fn committed_rolled_back_and_read_only_transactions_each_leave_their_rows() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let mut rep = env.login(&db, 20);
    let login = login_of(20);

    let mut tx = rep.transaction().unwrap();
    let accounts = tx.query("SELECT id FROM crm.accounts", &[]).unwrap().len();
    let updated = tx.execute("UPDATE crm.accounts SET name = name WHERE owner_id = 20", &[]).unwrap() as usize;
    tx.commit().unwrap();

    let mut tx = rep.transaction().unwrap();
    let contacts = tx.query("SELECT id FROM crm.contacts", &[]).unwrap().len();
    tx.rollback().unwrap();

    let mut tx = rep.build_transaction().read_only(true).start().unwrap();
    let opportunities = tx.query("SELECT id, owner_id FROM crm.opportunities", &[]).unwrap().len();
    tx.commit().unwrap();

    assert!(accounts > 0 && updated > 0 && contacts > 0 && opportunities > 0);
    assert_eq!(
        activity_of(&mut admin, 20),
        vec![
            row("crm.accounts", "select", accounts, false, &login),
            row("crm.accounts", "update", updated, false, &login),
            row("crm.contacts", "select", contacts, false, &login),
            row("crm.opportunities", "select", opportunities, false, &login),
        ]
    );
    // Nobody else's statements were attributed to the rep.
    let others: i64 = admin
        .query_one("SELECT count(*) FROM rowsec.activity WHERE login = $1 AND person IS DISTINCT FROM 20", &[&login])
        .unwrap()
        .get(0);
    assert_eq!(others, 0);
}

#[test]
fn inserts_are_recorded_with_the_rows_written_and_a_refused_one_as_failed() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let mut rep = env.login(&db, 20);
    let login = login_of(20);

    let written = rep
        .execute("INSERT INTO crm.accounts (id, owner_id, name) VALUES (7000001, 20, 'a'), (7000002, 20, 'b')", &[])
        .unwrap();
    assert_eq!(written, 2);
    // Someone else's record: refused by the insert policy (SPEC item 3), still an attempt.
    let refused = rep.execute("INSERT INTO crm.accounts (id, owner_id, name) VALUES (7000003, 3, 'c')", &[]);
    assert_eq!(sqlstate(&refused.unwrap_err()), "42501");

    assert_eq!(
        activity_of(&mut admin, 20),
        vec![row("crm.accounts", "insert", 2, false, &login), row("crm.accounts", "insert", 0, true, &login)]
    );
}

#[test]
fn a_statement_that_fails_on_its_limit_is_recorded_with_the_rows_it_read() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    admin
        .batch_execute("INSERT INTO crm.accounts (id, owner_id, name) SELECT 100000 + g, 20, 'bulk ' || g FROM generate_series(0, 599) g")
        .unwrap();
    let mut rep = env.login(&db, 20);
    let e = rep.query("SELECT id FROM crm.accounts", &[]).expect_err("611 rows pass the limit of 500");
    assert_eq!(sqlstate(&e), "42501", "{}", db_error(&e));
    assert_eq!(activity_of(&mut admin, 20), vec![row("crm.accounts", "select", 500, true, &login_of(20))]);
}

#[test]
fn a_pooled_session_is_recorded_as_the_person_its_setting_names() {
    let env = env();
    let db = env.database_for(&setting_spec_path());
    let mut admin = env.cluster.admin(&db);
    admin
        .batch_execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'activity_pool') THEN \
             CREATE ROLE activity_pool LOGIN; END IF; END $$; GRANT sales_rep TO activity_pool;",
        )
        .unwrap();
    let mut pool = env.cluster.connect("activity_pool", &db).expect("pool login");
    let mut tx = pool.transaction().unwrap();
    tx.batch_execute("SET LOCAL ROLE sales_rep; SET LOCAL app.person_id = '21'").unwrap();
    let seen = tx.query("SELECT id FROM crm.accounts", &[]).unwrap().len();
    tx.commit().unwrap();
    // Without the setting the same login is nobody.
    let mut tx = pool.transaction().unwrap();
    tx.batch_execute("SET LOCAL ROLE sales_rep").unwrap();
    assert_eq!(tx.query("SELECT id FROM crm.accounts", &[]).unwrap().len(), 0);
    tx.commit().unwrap();

    assert_eq!(activity_of(&mut admin, 21), vec![row("crm.accounts", "select", seen, false, "activity_pool")]);
    let nobody: Vec<(i64, String)> = admin
        .query("SELECT rows, login::text FROM rowsec.activity WHERE person IS NULL AND login = 'activity_pool'", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(nobody, vec![(0, "activity_pool".to_owned())]);
}

/// Accounts 200000..202999, owned by the sales director: managers (select: all, no limit) read
/// them in slices of known size.
fn bulk_database() -> String {
    let env = env();
    let db = env.crm_db();
    env.cluster
        .admin(&db)
        .batch_execute(
            "INSERT INTO crm.accounts (id, owner_id, name) SELECT 200000 + g, 3, 'bulk ' || g FROM generate_series(0, 2999) g",
        )
        .unwrap();
    db
}

fn read_slice(c: &mut Client, from: i64, n: i64) {
    let got = c.query("SELECT id FROM crm.accounts WHERE id >= $1 AND id < $2", &[&from, &(from + n)]).unwrap().len();
    assert_eq!(got as i64, n);
}

#[test]
fn bulk_read_fires_once_for_a_burst_over_two_connections_and_not_below_the_threshold() {
    let env = env();
    let db = bulk_database();
    let mut admin = env.cluster.admin(&db);
    let mut listener = env.cluster.admin(&db);
    listener.batch_execute("LISTEN rowsec_alerts").unwrap();

    // Manager 11 reads 1500 rows: under 2000.
    let mut west = env.login(&db, 11);
    read_slice(&mut west, 200000, 1500);
    // Manager 10 reads 1200 on one connection and 1200 on another: 2400 within 10 minutes.
    let (mut a, mut b) = (env.login(&db, 10), env.login(&db, 10));
    read_slice(&mut a, 200000, 1200);
    read_slice(&mut b, 201200, 1200);
    let fired = alerts_of(&mut admin, 10, "bulk_read");
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].1["rows"], 2400);
    assert_eq!(fired[0].1["threshold"], 2000);
    assert_eq!(fired[0].1["tables"]["crm.accounts"], 2400);
    assert!(alerts_of(&mut admin, 11, "bulk_read").is_empty());

    // Still within the window: more reads do not fire again.
    read_slice(&mut a, 200000, 1200);
    assert_eq!(alerts_of(&mut admin, 10, "bulk_read").len(), 1);

    // The listener got the alert's id.
    let ids = notified(&mut listener);
    assert!(ids.contains(&fired[0].0.to_string()), "notified {ids:?}, alert {}", fired[0].0);
}

/// The payloads of the `rowsec_alerts` notifications a listening session has received.
fn notified(listener: &mut Client) -> BTreeSet<String> {
    let notes: Vec<postgres::Notification> =
        listener.notifications().timeout_iter(Duration::from_secs(5)).collect().unwrap();
    notes.iter().filter(|n| n.channel() == "rowsec_alerts").map(|n| n.payload().to_owned()).collect()
}

/// Sets the clock person `id`'s sessions in `db` are stamped with (a superuser-only testing aid).
fn set_clock(admin: &mut Client, db: &str, id: i64, at: &str) {
    admin.batch_execute(&format!("ALTER ROLE {} IN DATABASE {db} SET rowsec.clock = '{at}'", login_of(id))).unwrap();
}

#[test]
fn off_hours_fires_for_the_first_statement_outside_the_hours_once_per_day() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let mut listener = env.cluster.admin(&db);
    listener.batch_execute("LISTEN rowsec_alerts").unwrap();
    let person = 21;
    // 2026-12-07 is a Monday. 23:30 and 23:45 in Shanghai: outside 08:00-20:00, the same day.
    for (at, expected) in [
        ("2026-12-07 23:30:00+08", 1),
        ("2026-12-07 23:45:00+08", 1),
        // Monday 12:00 in Shanghai: inside the hours.
        ("2026-12-07 04:00:00+00", 1),
        // Saturday night: not a listed day.
        ("2026-12-12 23:00:00+08", 1),
        // Tuesday 06:59 in Shanghai (Monday 22:59 UTC): another day, outside.
        ("2026-12-07 22:59:00+00", 2),
    ] {
        set_clock(&mut admin, &db, person, at);
        let mut rep = env.login(&db, person);
        rep.query("SELECT id FROM crm.accounts", &[]).unwrap();
        rep.query("SELECT id FROM crm.contacts", &[]).unwrap();
        let fired = alerts_of(&mut admin, person, "off_hours");
        assert_eq!(fired.len(), expected, "after a session at {at}: {fired:?}");
    }
    let fired = alerts_of(&mut admin, person, "off_hours");
    assert_eq!(fired[0].1["day"], "2026-12-07");
    assert_eq!(fired[0].1["local_time"], "23:30:00");
    assert_eq!(fired[0].1["timezone"], "Asia/Shanghai");
    assert_eq!(fired[1].1["day"], "2026-12-08");
    // The activity carries the injected time.
    let at: String = admin
        .query_one(
            "SELECT to_char(min(at) AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') FROM rowsec.activity WHERE person = $1",
            &[&person],
        )
        .unwrap()
        .get(0);
    assert_eq!(at, "2026-12-07 12:00");
    let ids = notified(&mut listener);
    for (id, _) in &fired {
        assert!(ids.contains(&id.to_string()), "notified {ids:?}, alert {id}");
    }
}

#[test]
fn only_superusers_and_audit_readers_see_activity_and_alerts_and_nobody_changes_them() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    // Something to see: the clock makes rep 20's read an off_hours alert.
    set_clock(&mut admin, &db, 20, "2026-12-07 23:30:00+08");
    env.login(&db, 20).query("SELECT id FROM crm.accounts", &[]).unwrap();
    assert_eq!(alerts_of(&mut admin, 20, "off_hours").len(), 1);
    let total: i64 = admin.query_one("SELECT count(*) FROM rowsec.activity", &[]).unwrap().get(0);
    assert!(total > 0);

    // crm_admin is audit.readers: sees every row.
    let mut reader = env.login(&db, 2);
    let seen: i64 = reader.query_one("SELECT count(*) FROM rowsec.activity", &[]).unwrap().get(0);
    assert!(seen >= total, "reader saw {seen} of {total}");
    let alerts: i64 = reader.query_one("SELECT count(*) FROM rowsec.alerts", &[]).unwrap().get(0);
    assert!(alerts >= 1);
    reader.query_one("SELECT * FROM rowsec.activity_status()", &[]).unwrap();

    // A rep and a manager: no row, no change, no status.
    for person in [20, 10] {
        let mut c = env.login(&db, person);
        for table in ["rowsec.activity", "rowsec.alerts"] {
            let n: i64 = c.query_one(&format!("SELECT count(*) FROM {table}"), &[]).unwrap().get(0);
            assert_eq!(n, 0, "person {person} sees rows of {table}");
        }
        for sql in [
            "INSERT INTO rowsec.activity (at, person, login, relation, relid, command, rows, failed) \
             VALUES (now(), 1, 'x', 'crm.accounts', 1, 'select', 1, false)",
            "UPDATE rowsec.activity SET rows = 0",
            "DELETE FROM rowsec.activity",
            "TRUNCATE rowsec.activity",
            "INSERT INTO rowsec.alerts (at, person, rule, detail) VALUES (now(), 1, 'bulk_read', '{}')",
            "UPDATE rowsec.alerts SET person = 1",
            "DELETE FROM rowsec.alerts",
            "SELECT * FROM rowsec.activity_status()",
            "SELECT rowsec.set_activity_retention(interval '1 day')",
        ] {
            let e = c.batch_execute(sql).expect_err(sql);
            assert_eq!(sqlstate(&e), "42501", "person {person}: {sql}: {}", db_error(&e));
        }
    }
    // Not even a superuser edits what was recorded.
    for sql in ["UPDATE rowsec.activity SET rows = 0", "DELETE FROM rowsec.alerts", "TRUNCATE rowsec.activity"] {
        let e = admin.batch_execute(sql).expect_err(sql);
        assert_eq!(sqlstate(&e), "42501", "{sql}: {}", db_error(&e));
    }
}

#[test]
fn retention_drops_the_partitions_older_than_it() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    admin.batch_execute("SELECT rowsec.set_activity_retention(interval '36500 days')").unwrap();
    set_clock(&mut admin, &db, 20, "2020-01-15 10:00:00+00");
    let seen = env.login(&db, 20).query("SELECT id FROM crm.accounts", &[]).unwrap().len();
    flush(&mut admin);
    let old: i64 = admin.query_one("SELECT count(*) FROM rowsec.activity_20200115", &[]).unwrap().get(0);
    assert_eq!(old, 1);
    let rows: i64 = admin.query_one("SELECT rows FROM rowsec.activity_20200115", &[]).unwrap().get(0);
    assert_eq!(rows, seen as i64);

    admin.batch_execute("SELECT rowsec.set_activity_retention(interval '30 days')").unwrap();
    flush(&mut admin);
    let kept: Vec<Option<String>> = admin
        .query_one(
            "SELECT to_regclass('rowsec.activity_20200115')::text, \
                    to_regclass('rowsec.activity_' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD'))::text",
            &[],
        )
        .map(|r| vec![r.get(0), r.get(1)])
        .unwrap();
    assert_eq!(kept[0], None, "the 2020 partition is past 30 days");
    assert!(kept[1].is_some(), "today's partition is kept");
    let e = admin.batch_execute("SELECT rowsec.set_activity_retention(interval '1 hour')").expect_err("under a day");
    assert_eq!(sqlstate(&e), "22023");
}

#[test]
fn a_later_spec_without_monitoring_turns_it_off() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let spec = std::fs::read_to_string(crm_spec_path()).unwrap();
    let start = spec.find("\nmonitoring:\n").expect("crm.yaml has monitoring:");
    let end = spec[start + 1..].find("\nrequests:").map(|i| start + 1 + i).expect("requests: follows it");
    let without = format!("{}{}", &spec[..start], &spec[end..]);
    let schema = Schema::parse(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
    let loaded = load_str("crm-without-monitoring.yaml", &without, Some(schema)).unwrap();
    admin.batch_execute(&compile(&loaded)).unwrap_or_else(|e| panic!("applying: {}", db_error(&e)));
    let configured: i64 = admin.query_one("SELECT count(*) FROM rowsec.monitoring", &[]).unwrap().get(0);
    assert_eq!(configured, 0);
    env.login(&db, 20).query("SELECT id FROM crm.accounts", &[]).unwrap();
    assert_eq!(activity_of(&mut admin, 20), vec![]);
}

#[test]
fn monitoring_without_the_library_preloaded_stops_the_script_with_a_hint() {
    let cluster = Cluster::start_without_preload();
    let db = cluster.create_database("nopreload", None);
    let mut admin = cluster.admin(&db);
    admin.batch_execute(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
    // crm-setting.yaml has monitoring.reads and no limits (whose own check would stop it first).
    let e = admin.batch_execute(&fixture_compile(&setting_spec_path())).expect_err("monitoring needs the library");
    let d = e.as_db_error().unwrap_or_else(|| panic!("{e}"));
    assert_eq!(d.code().code(), "55000", "{}", db_error(&e));
    assert_eq!(d.message(), "monitoring (monitoring.reads) needs the rowsec library in shared_preload_libraries");
    assert!(
        d.hint().unwrap_or_default().contains("Add rowsec to shared_preload_libraries in postgresql.conf"),
        "{d:?}"
    );
    // Nothing half-applied: the script is one transaction (left open by the error).
    admin.batch_execute("ROLLBACK").unwrap();
    let installed: i64 =
        admin.query_one("SELECT count(*) FROM pg_extension WHERE extname = 'rowsec'", &[]).unwrap().get(0);
    assert_eq!(installed, 0);
}

//! SPEC item 12: limits on a real cluster with crm.yaml applied (`sales_rep`: select 500,
//! update 50, delete 10). Rep 20 owns 600 extra accounts, so every way of reading them passes
//! the limit; each must fail with 42501 naming table, command and limit, after at most 500 rows
//! reached the client.

use std::io::Read;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Error};
use rowsec_e2e::fixture::{crm_spec_path, db_error, env};

const REP: i64 = 20;
/// Accounts rep 20 sees: the 600 below and the fixture's rows of team 100 (11 people).
const EXTRA: i64 = 600;

/// A database of its own where rep 20 owns 600 more accounts (keys 100000..100599).
fn database() -> String {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    admin
        .batch_execute(&format!(
            "INSERT INTO crm.accounts (id, owner_id, name) SELECT 100000 + g, {REP}, 'bulk ' || g FROM generate_series(0, {EXTRA} - 1) g;
             ANALYZE crm.accounts"
        ))
        .unwrap();
    db
}

/// The SQLSTATE and message of a limit error, checked to name the table, command and limit.
fn assert_limit_error(e: &Error, command: &str, limit: u64) {
    let d = e.as_db_error().unwrap_or_else(|| panic!("not a database error: {e}"));
    assert_eq!(d.code().code(), "42501", "{}", db_error(e));
    assert_eq!(
        d.message(),
        format!("{command} of more than {limit} rows of table crm.accounts in one statement is not allowed")
    );
}

/// Streams a query's rows: how many arrived before it failed, and the error.
fn rows_until_error(c: &mut Client, sql: &str) -> (u64, Option<Error>) {
    let mut it = c.query_raw(sql, std::iter::empty::<i32>()).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut n = 0;
    loop {
        match it.next() {
            Ok(Some(_)) => n += 1,
            Ok(None) => return (n, None),
            Err(e) => return (n, Some(e)),
        }
    }
}

#[test]
fn a_plain_select_stops_at_the_501st_row() {
    let db = database();
    let mut rep = env().login(&db, REP);
    let (delivered, err) = rows_until_error(&mut rep, "SELECT id, name FROM crm.accounts");
    assert_limit_error(&err.expect("the select must fail"), "select", 500);
    assert!(delivered <= 500, "{delivered} rows reached the client");
}

#[test]
fn a_cursor_fetching_in_pages_fails_on_the_page_that_passes_the_limit() {
    let db = database();
    let mut rep = env().login(&db, REP);
    let mut tx = rep.transaction().unwrap();
    tx.batch_execute("DECLARE c CURSOR FOR SELECT id FROM crm.accounts ORDER BY id").unwrap();
    let mut delivered = 0;
    for _ in 0..5 {
        delivered += tx.query("FETCH 100 FROM c", &[]).unwrap().len();
    }
    assert_eq!(delivered, 500);
    // Another statement between pages does not reset the cursor's count.
    tx.query("SELECT count(*) FROM crm.contacts", &[]).unwrap();
    let err = tx.query("FETCH 100 FROM c", &[]).expect_err("the sixth page passes the limit");
    assert_limit_error(&err, "select", 500);
}

#[test]
fn copy_to_stdout_stops_at_the_limit() {
    let db = database();
    let mut rep = env().login(&db, REP);
    let mut out = Vec::new();
    let result = rep.copy_out("COPY (SELECT id FROM crm.accounts) TO STDOUT").and_then(|mut r| {
        r.read_to_end(&mut out).map_err(|e| {
            // The error arrives inside the stream; its source is the database error.
            e.into_inner().and_then(|i| i.downcast::<Error>().ok()).map(|b| *b).expect("a database error")
        })
    });
    let err = match result {
        Ok(_) => panic!("COPY delivered {} lines without failing", out.split(|b| *b == b'\n').count()),
        Err(e) => e,
    };
    assert_limit_error(&err, "select", 500);
    let lines = out.iter().filter(|b| **b == b'\n').count();
    assert!(lines <= 500, "{lines} rows reached the client");
}

#[test]
fn a_join_counts_every_account_row_it_reads() {
    let db = database();
    let mut rep = env().login(&db, REP);
    let (delivered, err) = rows_until_error(
        &mut rep,
        "SELECT a.id, c.id FROM crm.accounts a LEFT JOIN crm.contacts c ON c.account_id = a.id",
    );
    assert_limit_error(&err.expect("the join must fail"), "select", 500);
    assert!(delivered <= 500, "{delivered} rows reached the client");
}

#[test]
fn count_star_reads_every_row_it_counts() {
    let db = database();
    let mut rep = env().login(&db, REP);
    let err = rep.query_one("SELECT count(*) FROM crm.accounts", &[]).expect_err("count(*) reads 611 rows");
    assert_limit_error(&err, "select", 500);
    // Below the limit the same aggregate works.
    let n: i64 = rep.query_one("SELECT count(*) FROM crm.accounts WHERE id < 100400", &[]).unwrap().get(0);
    assert_eq!(n, 400 + 11);
}

#[test]
fn parallel_workers_count_into_the_same_limit() {
    let db = database();
    let mut rep = env().login(&db, REP);
    // Workers only, and as many as possible, so no single process sees all the rows.
    rep.batch_execute(FORCE_PARALLEL).unwrap();
    let plan: Vec<String> =
        rep.query("EXPLAIN SELECT id FROM crm.accounts", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert!(plan.iter().any(|l| l.contains("Parallel Seq Scan")), "not a parallel plan: {plan:#?}");
    let (delivered, err) = rows_until_error(&mut rep, "SELECT id FROM crm.accounts");
    assert_limit_error(&err.expect("the parallel scan must fail"), "select", 500);
    assert!(delivered <= 500, "{delivered} rows reached the client");
}

const FORCE_PARALLEL: &str =
    "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
     SET max_parallel_workers_per_gather = 4; SET parallel_leader_participation = off; SET enable_indexscan = off;
     SET enable_bitmapscan = off";

#[test]
fn a_parallel_query_after_a_limited_one_in_the_same_session_starts_from_zero() {
    let db = database();
    // One backend: a limited person's parallel scan fails, then an unlimited person's works.
    let mut admin = env().cluster.admin(&db);
    admin.batch_execute(FORCE_PARALLEL).unwrap();
    admin.batch_execute(&format!("SET ROLE {}", rowsec_e2e::fixture::login_of(REP))).unwrap();
    let (_, err) = rows_until_error(&mut admin, "SELECT id FROM crm.accounts");
    assert_limit_error(&err.expect("the rep's parallel scan fails"), "select", 500);
    admin.batch_execute(&format!("RESET ROLE; SET ROLE {}", rowsec_e2e::fixture::login_of(72))).unwrap();
    let (delivered, err) = rows_until_error(&mut admin, "SELECT id FROM crm.accounts");
    assert!(err.is_none(), "{}", db_error(&err.unwrap()));
    assert!(delivered > 600, "{delivered}");
}

#[test]
fn an_update_of_51_rows_fails_and_changes_nothing() {
    let db = database();
    let mut rep = env().login(&db, REP);
    let err = rep
        .execute("UPDATE crm.accounts SET name = 'changed' WHERE id BETWEEN 100000 AND 100050", &[])
        .expect_err("51 rows pass the update limit of 50");
    let d = err.as_db_error().unwrap();
    assert_eq!(d.code().code(), "42501");
    assert_eq!(d.message(), "update of more than 50 rows of table crm.accounts in one statement is not allowed");
    let mut admin = env().cluster.admin(&db);
    let changed: i64 = admin.query_one("SELECT count(*) FROM crm.accounts WHERE name = 'changed'", &[]).unwrap().get(0);
    assert_eq!(changed, 0);
    // 50 rows are within the limit.
    assert_eq!(
        rep.execute("UPDATE crm.accounts SET name = 'changed' WHERE id BETWEEN 100000 AND 100049", &[]).unwrap(),
        50
    );
}

#[test]
fn a_person_holding_a_role_without_limits_is_unlimited() {
    let db = database();
    let mut admin = env().cluster.admin(&db);
    // Person 72 holds cxo (no limits) and sales_rep; give them the same 600 rows to read.
    admin.batch_execute("UPDATE crm.accounts SET owner_id = 72 WHERE id >= 100000").unwrap();
    let mut both = env().login(&db, 72);
    let n = both.query("SELECT id FROM crm.accounts", &[]).unwrap().len();
    assert!(n > 600, "{n}");
    // A person holding only limited roles gets the largest limit: 55 holds sales_rep (500) and
    // support (200).
    admin.batch_execute("UPDATE crm.accounts SET owner_id = 55 WHERE id >= 100000").unwrap();
    let mut rep_support = env().login(&db, 55);
    let n = rep_support.query("SELECT id FROM crm.accounts WHERE id BETWEEN 100000 AND 100499", &[]).unwrap().len();
    assert_eq!(n, 500);
    let err = rep_support.query("SELECT id FROM crm.accounts WHERE id BETWEEN 100000 AND 100500", &[]).unwrap_err();
    assert_limit_error(&err, "select", 500);
}

#[test]
fn a_later_spec_without_limits_removes_them() {
    let db = database();
    let spec = std::fs::read_to_string(crm_spec_path()).unwrap();
    let without: String =
        spec.lines().filter(|l| !l.trim_start().starts_with("limits:")).map(|l| format!("{l}\n")).collect();
    assert_ne!(spec.len(), without.len(), "crm.yaml has limits");
    let path = std::env::temp_dir().join(format!("rowsec-no-limits-{}.yaml", std::process::id()));
    std::fs::write(&path, without).unwrap();
    let script = rowsec_generator::compile(&rowsec_generator::load(&path, None).expect("loads"));
    let _ = std::fs::remove_file(&path);
    env().cluster.admin(&db).batch_execute(&script).unwrap_or_else(|e| panic!("{}", db_error(&e)));
    let mut rep = env().login(&db, REP);
    assert_eq!(rep.query("SELECT id FROM crm.accounts", &[]).unwrap().len() as i64, EXTRA + 11);
}

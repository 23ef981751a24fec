//! What a client sees when something fails inside rowsec: a SQLSTATE and SQL's words, never
//! Rust's (`None`, `Some(..)`, panics, backtraces), and no directory warnings meant for the DBA.
//! The cluster's server runs with RUST_BACKTRACE=1 (tests/src/cluster.rs), as a server started
//! from a developer's shell does.

use postgres::error::DbError;
use postgres::Client;
use rowsec_e2e::fixture::env;

/// Marks of Rust internals that must never reach a client.
const RUST_MARKS: &[&str] = &[
    "stack backtrace",
    "backtrace",
    ".rs:",
    "rust_begin_unwind",
    "std::",
    "core::",
    "pgrx",
    "rowsec::",
    "Some(",
    "NotTrigger",
    "\n   0: ",
];

fn assert_speaks_sql(e: &DbError, what: &str) {
    let fields = [("message", Some(e.message())), ("detail", e.detail()), ("hint", e.hint()), ("context", e.where_())];
    for (field, text) in fields {
        let text = text.unwrap_or("");
        for mark in RUST_MARKS {
            assert!(!text.contains(mark), "{what}: the {field} shows {mark:?}:\n{text}");
        }
    }
}

/// The database error `sql` raises.
fn error_of(c: &mut Client, sql: &str) -> DbError {
    let e = c.batch_execute(sql).expect_err(sql);
    e.as_db_error().cloned().unwrap_or_else(|| panic!("{sql}: not a database error: {e}"))
}

/// A database with the extension and a directory, without the CRM spec.
fn bare_db() -> (String, Client) {
    let env = env();
    let db = env.cluster.create_database("bare", None);
    let mut admin = env.cluster.admin(&db);
    admin
        .batch_execute(
            "CREATE EXTENSION rowsec;
             CREATE SCHEMA d;
             CREATE TABLE d.people (id bigint PRIMARY KEY, manager_id bigint, login text);
             INSERT INTO d.people VALUES (1, NULL, 'x');
             CREATE MATERIALIZED VIEW d.people_m AS SELECT * FROM d.people;
             CREATE UNIQUE INDEX ON d.people_m (id);",
        )
        .expect("set up");
    (db, admin)
}

// Issue 8: "one [backtrace] did when configure failed inside PostgreSQL".
#[test]
fn configure_on_a_materialized_view_is_refused_in_sql_terms() {
    let (_db, mut admin) = bare_db();
    let e = error_of(&mut admin, "SELECT rowsec.configure('d.people_m', 'id', 'manager_id', login_column => 'login')");
    assert_eq!((e.code().code(), e.message()), ("42809", "the rowsec directory d.people_m is a materialized view"));
    assert!(e.hint().is_some_and(|h| h.contains("ordinary table")), "{e:?}");
    assert_speaks_sql(&e, "configure on a materialized view");
}

#[test]
fn a_statement_rowsec_runs_that_fails_reports_the_step_without_a_backtrace() {
    let (_db, mut admin) = bare_db();
    admin
        .batch_execute(
            "CREATE FUNCTION d.no_triggers() RETURNS event_trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'triggers are frozen' USING DETAIL = 'change freeze until Monday'; END $$;
             CREATE EVENT TRIGGER no_triggers ON ddl_command_start WHEN TAG IN ('CREATE TRIGGER')
                 EXECUTE FUNCTION d.no_triggers();",
        )
        .unwrap();
    let e = error_of(&mut admin, "SELECT rowsec.configure('d.people', 'id', 'manager_id', login_column => 'login')");
    assert_eq!((e.code().code(), e.message()), ("P0001", "triggers are frozen"));
    assert_eq!(
        e.detail(),
        Some("rowsec was creating the trigger rowsec_directory_changed on the directory d.people. change freeze until Monday")
    );
    assert_speaks_sql(&e, "configure whose CREATE TRIGGER fails");
}

#[test]
fn a_postgres_error_inside_a_rowsec_function_reaches_a_person_without_a_backtrace() {
    let env = env();
    let db = env.crm_db();
    // The registry renamed (as only a superuser can): rowsec's own lookup fails with 42P01,
    // raised by PostgreSQL inside rowsec's SPI call and passed through pgrx.
    env.cluster.admin(&db).batch_execute("ALTER TABLE rowsec.protected_tables RENAME TO registry").unwrap();
    let mut rep = env.login(&db, 20);
    let e = error_of(&mut rep, "SELECT rowsec.share('crm.accounts', 2001, to_person => 23)");
    assert_eq!(e.code().code(), "42P01", "{e:?}");
    assert_speaks_sql(&e, "share with the registry renamed");
}

#[test]
fn the_invalidation_trigger_function_called_directly_is_refused_in_sql_terms() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 20);
    let e = error_of(&mut rep, "SELECT rowsec.invalidate_caches()");
    assert_eq!((e.code().code(), e.message()), ("0A000", "trigger functions can only be called as triggers"));
    assert_speaks_sql(&e, "invalidate_caches() called directly");
}

#[test]
fn argument_errors_spell_values_as_sql() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 20);
    let e = error_of(&mut rep, "SELECT rowsec.share('crm.accounts', 2001)");
    assert_eq!(e.code().code(), "22023");
    assert_eq!(e.detail(), Some("rowsec.share was called with to_person => NULL, to_team => NULL."));
    let e = error_of(&mut rep, "SELECT rowsec.share('crm.accounts', 2001, to_person => 23, to_team => '100')");
    assert_eq!(e.detail(), Some("rowsec.share was called with to_person => 23, to_team => '100'."));
    let e = error_of(&mut rep, "SELECT rowsec.share('crm.accounts', 2001, to_person => 23, access => 'Write')");
    assert_eq!(e.message(), "invalid share access \"Write\"");
    for (sql, what) in [
        ("SELECT rowsec.share('crm.accounts', 2001)", "no grantee"),
        ("SELECT rowsec.share('crm.accounts', 2001, to_team => '')", "empty team"),
        ("SELECT rowsec.unshare(NULL)", "NULL share id"),
        ("SELECT rowsec.shared_keys('crm.accounts', 'all')", "unknown access"),
    ] {
        assert_speaks_sql(&error_of(&mut rep, sql), what);
    }
}

// Issue 8: a manager cycle's WARNING reached every end user's session.
#[test]
fn a_manager_cycle_is_logged_for_the_dba_and_not_shown_to_people() {
    let env = env();
    let db = env.crm_db();
    // 10 manages 20, who manages 30, who manages 33: make 33 manage 10.
    env.cluster.admin(&db).batch_execute("UPDATE crm.app_users SET manager_id = 33 WHERE id = 10").unwrap();
    let (mut rep, notices) = env.login_collecting_notices(&db, 21);
    let shown: Vec<i64> = rep.query("SELECT id FROM crm.accounts", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert!(!shown.is_empty());
    // directory_status() is the DBA's (issue 14: a person may not read the org chart).
    let cycles: Vec<String> =
        env.cluster.admin(&db).query_one("SELECT cycles FROM rowsec.directory_status()", &[]).unwrap().get(0);
    assert_eq!(cycles, vec!["10 -> 33 -> 30 -> 20 -> 10".to_owned()]);
    let received: Vec<String> = notices.lock().unwrap().iter().map(|n| n.message().to_owned()).collect();
    assert_eq!(received, Vec::<String>::new(), "a person with the default client_min_messages is told nothing");
    let log = env.cluster.server_log();
    assert!(log.contains("rowsec found 1 manager cycle(s) in crm.app_users"), "the server log has it");
    assert!(log.contains("cycles: 10 -> 33 -> 30 -> 20 -> 10"), "with the cycle");
}

// pgrx converts text to Rust strings by panicking on bytes that are not UTF-8, which a database
// with another encoding holds as soon as a value is not ASCII.
#[test]
fn text_that_is_not_utf8_is_refused_with_an_error_not_a_panic() {
    let env = env();
    let db = "latin1_db";
    env.cluster
        .admin("postgres")
        .batch_execute(&format!(
            "CREATE DATABASE {db} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        ))
        .unwrap();
    let mut admin = env.cluster.admin(db);
    admin
        .batch_execute(
            "CREATE EXTENSION rowsec;
             CREATE SCHEMA d;
             CREATE TABLE d.people (id bigint PRIMARY KEY, manager_id bigint, team text, login text);
             INSERT INTO d.people VALUES (1, NULL, 'sales', 'x');
             SELECT rowsec.configure('d.people', 'id', 'manager_id', 'team', 'login');
             CREATE TABLE d.deals (id bigint PRIMARY KEY, owner_id bigint NOT NULL);
             SELECT rowsec.protect_table('d.deals', 'id', 'owner_id', true);",
        )
        .unwrap();
    // The client sends UTF-8; the server stores LATIN1, where 'é' is one byte that is not UTF-8.
    for (sql, code) in [
        ("SELECT rowsec.share('d.deals', 1, to_team => 'équipe')", "22021"),
        ("SELECT rowsec.shared_keys('d.deals', 'écrire')", "22023"),
    ] {
        let e = error_of(&mut admin, sql);
        assert_eq!(e.code().code(), code, "{sql}: {e:?}");
        assert_speaks_sql(&e, sql);
    }
    admin.batch_execute("UPDATE d.people SET team = 'café' WHERE id = 1").unwrap();
    let e = error_of(&mut admin, "SELECT rowsec.subtree_of(1)");
    assert_eq!(
        (e.code().code(), e.message()),
        ("22021", "rowsec cannot read a team of the directory as UTF-8"),
        "{e:?}"
    );
    assert_speaks_sql(&e, "a LATIN1 team in the directory");
}

/// PostgreSQL's own errors cross rowsec's hooks (planner, executor, utility; the library is
/// preloaded, and a rep's scans are counted for their role's limits) with every field, as they
/// do without rowsec: a unique violation names its constraint, table and schema (applications
/// map it to a field by that name), COPY's error its line, an error raised while planning or
/// inside a counted scan its context and column. And the limits still count right after them,
/// in a savepoint's rollback too.
#[test]
fn postgres_errors_cross_rowsecs_hooks_with_every_field() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    admin
        .batch_execute(
            "CREATE OR REPLACE FUNCTION public.e2e_fails_on_row(bigint) RETURNS boolean VOLATILE LANGUAGE plpgsql
                 AS $$ BEGIN RAISE EXCEPTION 'e2e: row %', $1 USING COLUMN = 'c1'; END $$;
             CREATE OR REPLACE FUNCTION public.e2e_fails_when_planned() RETURNS bigint IMMUTABLE LANGUAGE plpgsql
                 AS $$ BEGIN RAISE EXCEPTION 'e2e: planned' USING COLUMN = 'c2'; END $$;",
        )
        .unwrap();
    // The executor: a duplicate key on a protected table, as a person.
    let constraint: String = admin
        .query_one(
            "SELECT conname::text FROM pg_constraint WHERE conrelid = 'crm.accounts'::regclass AND contype = 'p'",
            &[],
        )
        .unwrap()
        .get(0);
    let mut rep = env.login(&db, 20);
    let key: i64 = rep.query_one("SELECT id FROM crm.accounts WHERE owner_id = 20 LIMIT 1", &[]).unwrap().get(0);
    let e = error_of(&mut rep, &format!("INSERT INTO crm.accounts (id, owner_id, name) VALUES ({key}, 20, 'again')"));
    assert_eq!(
        (e.code().code(), e.constraint(), e.table(), e.schema()),
        ("23505", Some(constraint.as_str()), Some("accounts"), Some("crm")),
        "{e:?}"
    );
    // A utility statement: COPY into a table of the admin's.
    admin
        .batch_execute("CREATE TEMP TABLE e2e_copied (id int CONSTRAINT e2e_copied_key PRIMARY KEY); INSERT INTO e2e_copied VALUES (1)")
        .unwrap();
    let copied = (|| -> Result<u64, postgres::Error> {
        let mut w = admin.copy_in("COPY e2e_copied FROM STDIN")?;
        std::io::Write::write_all(&mut w, b"1\n").unwrap();
        w.finish()
    })();
    let e = copied.expect_err("a duplicate key").as_db_error().cloned().expect("a database error");
    assert_eq!((e.code().code(), e.constraint(), e.table()), ("23505", Some("e2e_copied_key"), Some("e2e_copied")));
    assert!(e.where_().is_some_and(|w| w.contains("COPY e2e_copied, line 1")), "{e:?}");
    // Planning (an immutable function folded), and a counted scan (the rep's select limit).
    let e = error_of(&mut rep, "SELECT id FROM crm.accounts WHERE id = public.e2e_fails_when_planned()");
    assert_eq!((e.code().code(), e.column()), ("P0001", Some("c2")), "{e:?}");
    assert!(e.where_().is_some_and(|w| w.contains("e2e_fails_when_planned")), "{e:?}");
    let e = error_of(&mut rep, "SELECT id FROM crm.accounts WHERE public.e2e_fails_on_row(id)");
    assert_eq!((e.code().code(), e.column()), ("P0001", Some("c1")), "{e:?}");
    assert!(e.where_().is_some_and(|w| w.contains("e2e_fails_on_row")), "{e:?}");
    // The limits' own state survived the errors: counting, a failed statement in a savepoint.
    let seen: i64 = rep.query_one("SELECT count(*) FROM crm.accounts", &[]).unwrap().get(0);
    assert!(seen > 0);
    let mut tx = rep.transaction().unwrap();
    tx.batch_execute("SAVEPOINT a").unwrap();
    tx.batch_execute("SELECT id FROM crm.accounts WHERE public.e2e_fails_on_row(id)").expect_err("fails");
    tx.batch_execute("ROLLBACK TO SAVEPOINT a").unwrap();
    let again: i64 = tx.query_one("SELECT count(*) FROM crm.accounts", &[]).unwrap().get(0);
    assert_eq!(again, seen);
    tx.commit().unwrap();
}

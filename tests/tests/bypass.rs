//! The bypass catalogue (docs/security.md): each known way around row-level security, tried as
//! a sales rep of crm.yaml (person 21, team 100, who sees the accounts of team 100 and none
//! of rep 23's). A test named `..._leaks` shows a channel rowsec does not close (inherent to
//! PostgreSQL, documented, or for `rowsec doctor`); the others show it closed.

use std::collections::BTreeSet;

use postgres::{Client, SimpleQueryMessage};
use rowsec_e2e::fixture::{db_error, env, keys, setting_spec_path};

const REP: i64 = 21;
/// An account of rep 23 (team 200): hidden from the rep.
const HIDDEN: i64 = 2301;
/// The rep's own account.
const OWN: i64 = 2101;

fn rep() -> (String, Client) {
    let env = env();
    let db = env.crm_db();
    let c = env.login(&db, REP);
    (db, c)
}

/// The accounts the rep sees through row-level security (team 100's).
fn visible_accounts() -> BTreeSet<i64> {
    [10, 20, 21, 22, 30, 31, 33, 55, 60, 73, 74].iter().map(|p| p * 100 + 1).collect()
}

fn code(r: Result<(), postgres::Error>) -> Option<String> {
    r.err().map(|e| e.code().map_or_else(|| db_error(&e), |c| c.code().to_owned()))
}

/// Every line of a statement's text result (EXPLAIN), joined.
fn text_of(c: &mut Client, sql: &str) -> String {
    c.simple_query(sql)
        .unwrap_or_else(|e| panic!("{sql}: {}", db_error(&e)))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn one_i64(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {}", db_error(&e))).get(0)
}

// ---- 1-2: leaky functions and operators, errors carrying values ----

#[test]
fn a_leaky_function_in_where_never_sees_a_hidden_row() {
    let env = env();
    let db = env.crm_db();
    let (mut rep, notices) = env.login_collecting_notices(&db, REP);
    rep.batch_execute(
        "SET client_min_messages = notice;
         CREATE FUNCTION pg_temp.leak(bigint, text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS
         $$ BEGIN RAISE NOTICE 'saw % %', $1, $2; RETURN true; END $$;",
    )
    .unwrap();
    let shown = keys(&mut rep, "SELECT id FROM crm.accounts WHERE pg_temp.leak(id, name)").unwrap();
    assert_eq!(shown, visible_accounts());
    let seen: BTreeSet<i64> = notices
        .lock()
        .unwrap()
        .iter()
        .filter_map(|n| n.message().strip_prefix("saw ")?.split(' ').next()?.parse().ok())
        .collect();
    assert!(!seen.is_empty(), "the function ran");
    assert!(seen.is_subset(&visible_accounts()), "the leaky function saw hidden rows: {seen:?}");
}

#[test]
fn a_leaky_operator_never_sees_a_hidden_row() {
    let env = env();
    let db = env.crm_db();
    let (mut rep, notices) = env.login_collecting_notices(&db, REP);
    rep.batch_execute(
        "SET client_min_messages = notice;
         CREATE FUNCTION pg_temp.peek(bigint, bigint) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS
         $$ BEGIN RAISE NOTICE 'saw %', $1; RETURN $1 <> $2; END $$;
         CREATE OPERATOR pg_temp.<~> (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = pg_temp.peek);",
    )
    .unwrap();
    keys(&mut rep, "SELECT id FROM crm.accounts WHERE id OPERATOR(pg_temp.<~>) 0").unwrap();
    let seen: BTreeSet<i64> =
        notices.lock().unwrap().iter().filter_map(|n| n.message().strip_prefix("saw ")?.parse().ok()).collect();
    assert!(!seen.is_empty() && seen.is_subset(&visible_accounts()), "{seen:?}");
}

#[test]
fn an_error_in_a_where_clause_is_never_raised_by_a_hidden_row() {
    let (_db, mut rep) = rep();
    // Division by zero (and a failing cast) would say "this row exists" if evaluated on it.
    let probe = |rep: &mut Client, key: i64| {
        code(rep.batch_execute(&format!("SELECT id FROM crm.accounts WHERE 1 / (id - {key}) = 1")))
    };
    assert_eq!(probe(&mut rep, OWN).as_deref(), Some("22012"), "the probe works on a visible row");
    assert_eq!(probe(&mut rep, HIDDEN), None, "and says nothing of a hidden one");
    let cast = format!("SELECT id FROM crm.accounts WHERE (CASE WHEN id = {HIDDEN} THEN name::int ELSE 0 END) = 1");
    assert_eq!(code(rep.batch_execute(&cast)), None);
}

// ---- 3-4: EXPLAIN ----

#[test]
fn explain_analyze_counts_hidden_rows_leaks() {
    let (_db, mut rep) = rep();
    rep.batch_execute("SET enable_indexscan = off; SET enable_bitmapscan = off").unwrap();
    let plan = text_of(&mut rep, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT id FROM crm.accounts");
    // 44 accounts, 11 visible: "Rows Removed by Filter: 33" tells the rep how many are hidden.
    assert!(plan.contains("Rows Removed by Filter: 33"), "{plan}");
}

#[test]
fn explain_estimates_from_statistics_leak_the_table_size() {
    let env = env();
    let db = env.crm_db();
    env.cluster.admin(&db).batch_execute("ANALYZE crm.accounts").unwrap();
    let mut rep = env.login(&db, REP);
    rep.batch_execute("SET enable_indexscan = off; SET enable_bitmapscan = off").unwrap();
    let plan = text_of(&mut rep, "EXPLAIN SELECT id FROM crm.accounts WHERE true");
    // The seq scan's estimate is made from all 44 rows (reltuples), whatever the rep sees.
    assert!(plan.contains("Seq Scan on accounts"), "{plan}");
    assert_eq!(one_i64(&mut rep, "SELECT reltuples::bigint FROM pg_class WHERE oid = 'crm.accounts'::regclass"), 44);
}

// ---- 5-7: constraint violations ----

#[test]
fn a_unique_violation_on_a_hidden_key_leaks() {
    let (_db, mut rep) = rep();
    let insert = |rep: &mut Client, key: i64| {
        let mut tx = rep.transaction().unwrap();
        let r =
            tx.batch_execute(&format!("INSERT INTO crm.accounts (id, owner_id, name) VALUES ({key}, {REP}, 'probe')"));
        let _ = tx.rollback();
        code(r)
    };
    assert_eq!(insert(&mut rep, HIDDEN).as_deref(), Some("23505"), "the hidden key exists");
    assert_eq!(insert(&mut rep, 777_777), None, "a free key");
    // ON CONFLICT DO NOTHING says the same by inserting nothing.
    let n = rep
        .execute(
            &format!(
                "INSERT INTO crm.accounts (id, owner_id, name) VALUES ({HIDDEN}, {REP}, 'p') ON CONFLICT DO NOTHING"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn a_foreign_key_on_delete_leaks_that_a_hidden_row_refers_to_a_visible_one() {
    let env = env();
    let db = env.crm_db();
    // Rep 23's contact (hidden from 21) names 21's account.
    env.cluster
        .admin(&db)
        .batch_execute(&format!("UPDATE crm.contacts SET account_id = {OWN} WHERE id = 2301"))
        .unwrap();
    let mut rep = env.login(&db, REP);
    let mut tx = rep.transaction().unwrap();
    let r = tx.batch_execute(&format!("DELETE FROM crm.accounts WHERE id = {OWN}"));
    let _ = tx.rollback();
    assert_eq!(code(r).as_deref(), Some("23503"), "the delete is refused because of a row the rep cannot see");
}

// ---- 8-9: statistics ----

#[test]
fn pg_stats_hides_the_values_of_a_protected_table() {
    let env = env();
    let db = env.crm_db();
    env.cluster.admin(&db).batch_execute("ANALYZE crm.accounts").unwrap();
    assert!(one_i64(&mut env.cluster.admin(&db), "SELECT count(*) FROM pg_stats WHERE tablename = 'accounts'") > 0);
    let mut rep = env.login(&db, REP);
    assert_eq!(
        one_i64(&mut rep, "SELECT count(*) FROM pg_stats WHERE schemaname = 'crm' AND tablename = 'accounts'"),
        0
    );
    assert_eq!(one_i64(&mut rep, "SELECT count(*) FROM pg_stats_ext WHERE schemaname = 'crm'"), 0);
}

// ---- 11-14: objects that run as someone else ----

#[test]
fn a_rep_cannot_attach_triggers_or_rules_to_a_protected_table() {
    let (_db, mut rep) = rep();
    rep.batch_execute("CREATE FUNCTION pg_temp.t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$")
        .unwrap();
    let trigger = "CREATE TRIGGER probe BEFORE INSERT ON crm.accounts FOR EACH ROW EXECUTE FUNCTION pg_temp.t()";
    assert_eq!(code(rep.batch_execute(trigger)).as_deref(), Some("42501"));
    let rule = "CREATE RULE probe AS ON INSERT TO crm.accounts DO ALSO NOTHING";
    assert_eq!(code(rep.batch_execute(rule)).as_deref(), Some("42501"));
}

#[test]
fn a_view_owned_by_a_role_that_bypasses_rls_leaks_unless_security_invoker() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    admin
        .batch_execute(
            "CREATE VIEW crm.all_accounts AS SELECT id FROM crm.accounts;
             CREATE VIEW crm.my_accounts WITH (security_invoker = true) AS SELECT id FROM crm.accounts;
             GRANT SELECT ON crm.all_accounts, crm.my_accounts TO sales_rep;",
        )
        .unwrap();
    let mut rep = env.login(&db, REP);
    assert_eq!(keys(&mut rep, "SELECT id FROM crm.all_accounts").unwrap().len(), 44, "the owner's view shows all");
    assert_eq!(keys(&mut rep, "SELECT id FROM crm.my_accounts").unwrap(), visible_accounts());
}

#[test]
fn a_security_definer_function_of_a_superuser_leaks() {
    let env = env();
    let db = env.crm_db();
    env.cluster
        .admin(&db)
        .batch_execute(
            "CREATE FUNCTION crm.account_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER
             SET search_path = pg_catalog AS $$ SELECT count(*) FROM crm.accounts $$;",
        )
        .unwrap();
    let mut rep = env.login(&db, REP);
    assert_eq!(one_i64(&mut rep, "SELECT crm.account_count()"), 44);
}

#[test]
fn a_table_owner_that_is_not_a_superuser_is_held_by_forced_rls() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    admin
        .batch_execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'crm_owner') THEN CREATE ROLE crm_owner; END IF; END $$;
             GRANT USAGE ON SCHEMA crm TO crm_owner;
             ALTER TABLE crm.accounts OWNER TO crm_owner;",
        )
        .unwrap();
    let forced = one_i64(
        &mut admin,
        "SELECT count(*) FROM pg_class WHERE relnamespace = 'crm'::regnamespace AND relkind = 'r' AND relforcerowsecurity",
    );
    assert_eq!(forced, 5, "every protected table");
    // The owner is nobody in the directory: it sees nothing.
    admin.batch_execute("SET ROLE crm_owner").unwrap();
    assert_eq!(one_i64(&mut admin, "SELECT count(*) FROM crm.accounts"), 0);
}

#[test]
fn no_generated_role_bypasses_rls() {
    let env = env();
    let db = env.crm_db();
    let n = one_i64(
        &mut env.cluster.admin(&db),
        "SELECT count(*) FROM pg_roles WHERE (rolbypassrls OR rolsuper)
           AND pg_catalog.shobj_description(oid, 'pg_authid') LIKE 'rowsec:%'",
    );
    assert_eq!(n, 0);
}

#[test]
fn rowsec_share_refuses_a_hidden_row_as_it_refuses_a_missing_one() {
    let (_db, mut rep) = rep();
    let share = |rep: &mut Client, key: i64| -> (String, String) {
        let e = rep
            .batch_execute(&format!("SELECT rowsec.share('crm.accounts', {key}, to_person => 20)"))
            .expect_err("refused");
        let d = e.as_db_error().expect("a database error");
        (d.code().code().to_owned(), d.message().replace(&key.to_string(), "K"))
    };
    assert_eq!(share(&mut rep, HIDDEN), share(&mut rep, 888_888));
}

// ---- 15-18: sequences, COPY, TRUNCATE, REFERENCES ----

#[test]
fn a_sequence_leaks_how_many_rows_were_inserted() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, REP);
    // USAGE on the sequence comes with insert; its value counts everyone's inserts.
    let before = one_i64(&mut rep, "SELECT nextval('crm.accounts_id_seq')");
    env.cluster.admin(&db).batch_execute("INSERT INTO crm.accounts (owner_id, name) VALUES (23, 'hidden')").unwrap();
    let after = one_i64(&mut rep, "SELECT nextval('crm.accounts_id_seq')");
    assert_eq!(after - before, 2, "the rep learns that someone inserted a row");
}

#[test]
fn copy_to_shows_only_visible_rows() {
    let (_db, mut rep) = rep();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut rep.copy_out("COPY crm.accounts (id) TO STDOUT").unwrap(), &mut out).unwrap();
    let copied: BTreeSet<i64> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(copied, visible_accounts());
}

#[test]
fn copy_from_into_a_protected_table_is_refused() {
    let (_db, mut rep) = rep();
    let r = rep.copy_in("COPY crm.accounts (id, owner_id, name) FROM STDIN");
    assert_eq!(r.err().and_then(|e| e.code().map(|c| c.code().to_owned())).as_deref(), Some("0A000"));
}

#[test]
fn truncate_is_refused() {
    let (_db, mut rep) = rep();
    assert_eq!(code(rep.batch_execute("TRUNCATE crm.accounts")).as_deref(), Some("42501"));
}

#[test]
fn a_foreign_key_of_ones_own_onto_a_protected_table_is_refused() {
    let (_db, mut rep) = rep();
    // A temporary table may not reference a permanent one; a permanent table needs a schema the
    // rep may create in (none: public's CREATE is PUBLIC's no more since PostgreSQL 15) and the
    // REFERENCES privilege, which rowsec never grants.
    let sql = "CREATE TEMP TABLE probe (a bigint REFERENCES crm.accounts (id))";
    assert_eq!(code(rep.batch_execute(sql)).as_deref(), Some("42P16"));
    let sql = "CREATE TABLE public.probe (a bigint REFERENCES crm.accounts (id))";
    assert_eq!(code(rep.batch_execute(sql)).as_deref(), Some("42501"));
    let can: bool = rep.query_one("SELECT has_table_privilege('crm.accounts', 'REFERENCES')", &[]).unwrap().get(0);
    assert!(!can, "no REFERENCES privilege");
}

// ---- 19-22: large objects, search_path, temp tables, row_security ----

#[test]
fn large_objects_of_others_are_not_readable() {
    let env = env();
    let db = env.crm_db();
    let oid: u32 = env.cluster.admin(&db).query_one("SELECT lo_from_bytea(0, 'secret')::oid", &[]).unwrap().get(0);
    let mut rep = env.login(&db, REP);
    assert_eq!(code(rep.batch_execute(&format!("SELECT lo_get({oid})"))).as_deref(), Some("42501"));
}

#[test]
fn shadowing_the_policy_functions_on_the_search_path_changes_nothing() {
    let (_db, mut rep) = rep();
    rep.batch_execute(
        "CREATE FUNCTION pg_temp.in_team(bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';
         CREATE FUNCTION pg_temp.current_person() RETURNS bigint LANGUAGE sql AS 'SELECT 1::bigint';
         SET search_path = pg_temp, rowsec, crm, public;",
    )
    .unwrap();
    assert_eq!(keys(&mut rep, "SELECT id FROM accounts").unwrap(), visible_accounts());
    let create = "CREATE FUNCTION rowsec.in_team2(bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true'";
    assert_eq!(code(rep.batch_execute(create)).as_deref(), Some("42501"), "rowsec's schema is not writable");
}

#[test]
fn a_temp_table_copies_only_what_the_rep_sees() {
    let (_db, mut rep) = rep();
    rep.batch_execute("CREATE TEMP TABLE mine AS SELECT * FROM crm.accounts").unwrap();
    assert_eq!(keys(&mut rep, "SELECT id FROM mine").unwrap(), visible_accounts());
}

#[test]
fn turning_row_security_off_is_an_error_not_a_bypass() {
    let (_db, mut rep) = rep();
    rep.batch_execute("SET row_security = off").unwrap();
    assert_eq!(code(rep.batch_execute("SELECT id FROM crm.accounts")).as_deref(), Some("42501"));
}

// ---- 23-25: identity changes, parallel workers ----

#[test]
fn a_prepared_statement_answers_for_whoever_runs_it() {
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    admin.batch_execute("SET ROLE rs_p21").unwrap();
    let stmt = admin.prepare("SELECT id FROM crm.accounts").unwrap();
    let seen =
        |c: &mut Client| c.query(&stmt, &[]).unwrap().iter().map(|r| r.get::<_, i64>(0)).collect::<BTreeSet<_>>();
    // Run often enough for a generic plan to be cached.
    for _ in 0..6 {
        assert_eq!(seen(&mut admin), visible_accounts());
    }
    admin.batch_execute("RESET ROLE; SET ROLE rs_p23").unwrap();
    let as_23 = seen(&mut admin);
    assert!(as_23.contains(&HIDDEN) && !as_23.contains(&OWN), "{as_23:?}");
}

#[test]
fn a_prepared_statement_follows_the_identity_setting() {
    let env = env();
    let db = env.database_for(&setting_spec_path());
    let mut admin = env.cluster.admin(&db);
    admin.batch_execute("SET ROLE sales_rep; SET app.person_id = '21'").unwrap();
    let stmt = admin.prepare("SELECT id FROM crm.accounts").unwrap();
    let seen =
        |c: &mut Client| c.query(&stmt, &[]).unwrap().iter().map(|r| r.get::<_, i64>(0)).collect::<BTreeSet<_>>();
    for _ in 0..6 {
        assert_eq!(seen(&mut admin), visible_accounts());
    }
    admin.batch_execute("SET app.person_id = '23'").unwrap();
    assert!(seen(&mut admin).contains(&HIDDEN));
    admin.batch_execute("SET app.person_id = ''").unwrap();
    assert_eq!(seen(&mut admin), BTreeSet::new());
}

#[test]
fn parallel_workers_see_what_the_leader_sees() {
    let (_db, mut rep) = rep();
    rep.batch_execute(
        "SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
         SET min_parallel_table_scan_size = 0; SET enable_indexscan = off; SET enable_bitmapscan = off",
    )
    .unwrap();
    // Renamed in PostgreSQL 16.
    rep.batch_execute("SET debug_parallel_query = on")
        .or_else(|_| rep.batch_execute("SET force_parallel_mode = on"))
        .unwrap();
    let plan = text_of(&mut rep, "EXPLAIN (COSTS OFF) SELECT id FROM crm.accounts");
    assert!(plan.contains("Gather"), "{plan}");
    assert_eq!(keys(&mut rep, "SELECT id FROM crm.accounts").unwrap(), visible_accounts());
}

// ---- 26-27: the setting identity and a pool's memberships ----

#[test]
fn the_unsigned_identity_setting_can_be_set_to_anyone_leaks() {
    let env = env();
    let db = env.database_for(&setting_spec_path());
    let mut admin = env.cluster.admin(&db);
    // Whoever runs SQL on the pool's connection (a SQL injection) names the CEO.
    admin.batch_execute("SET ROLE cxo; SET app.person_id = '1'").unwrap();
    assert_eq!(one_i64(&mut admin, "SELECT count(*) FROM crm.accounts"), 44);
}

#[test]
fn a_pool_login_in_every_group_role_can_become_the_admin_role_leaks() {
    let env = env();
    let db = env.database_for(&setting_spec_path());
    let mut admin = env.cluster.admin(&db);
    admin
        .batch_execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bypass_pool') THEN CREATE ROLE bypass_pool LOGIN; END IF; END $$;
             GRANT sales_rep, crm_admin TO bypass_pool;",
        )
        .unwrap();
    let mut pool = env.cluster.connect("bypass_pool", &db).unwrap();
    pool.batch_execute("SET ROLE crm_admin; SET app.person_id = '21'").unwrap();
    // Person 21 is a rep, yet the admin role's scope (all) applies.
    assert_eq!(one_i64(&mut pool, "SELECT count(*) FROM crm.accounts"), 44);
}

// ---- 28-33: rowsec's own objects ----

#[test]
fn the_directory_and_rowsec_tables_are_not_readable() {
    let (_db, mut rep) = rep();
    for sql in [
        "SELECT * FROM crm.app_users",
        "SELECT * FROM rowsec.shares",
        "SELECT * FROM rowsec.config",
        "SELECT * FROM rowsec.protected_tables",
    ] {
        if sql.contains("shares") && rowsec_e2e::fixture::backend() == rowsec_generator::Backend::Sql {
            // The SQL backend's policies probe rowsec.shares as the querying role: it is readable,
            // its row-level security showing each person the shares they made or received only.
            assert_eq!(one_i64(&mut rep, "SELECT count(*) FROM rowsec.shares"), 0, "{sql}");
            // The tables it probes show a person their own subtree, team and login, nothing else.
            for (probe, expected) in [
                ("SELECT count(*) FROM rowsec.closure WHERE ancestor <> rowsec.current_person()", 0),
                ("SELECT count(*) FROM rowsec.closure WHERE ancestor = rowsec.current_person()", 1),
                ("SELECT count(DISTINCT team) FROM rowsec.team_members", 1),
                ("SELECT count(*) FROM rowsec.login_people WHERE login <> current_user", 0),
                ("SELECT count(*) FROM rowsec.login_people", 1),
            ] {
                assert_eq!(one_i64(&mut rep, probe), expected, "{probe}");
            }
            continue;
        }
        assert_eq!(code(rep.batch_execute(sql)).as_deref(), Some("42501"), "{sql}");
    }
}

#[test]
fn the_audit_trail_shows_a_rep_nothing() {
    let (_db, mut rep) = rep();
    assert_eq!(one_i64(&mut rep, "SELECT count(*) FROM rowsec.audit_log"), 0);
}

#[test]
fn in_subtree_and_in_team_answer_only_for_the_caller() {
    let (_db, mut rep) = rep();
    // Probing any id answers "in my reach?", which the rep's own rows already say.
    let reach: BTreeSet<i64> =
        (1..80i64).filter(|id| rep.query_one("SELECT rowsec.in_team($1)", &[id]).unwrap().get::<_, bool>(0)).collect();
    let team: BTreeSet<i64> = visible_accounts().iter().map(|k| k / 100).collect();
    assert_eq!(reach, team);
}

//! Issue 15: what only the SQL backend has to show: it installs and converges as a managed
//! service's administrator (not a superuser), and its own objects keep the security rules
//! (SECURITY DEFINER only with a pinned search_path, nothing PUBLIC may create or write).
//! Skipped on the extension backend, which these say nothing about.

use std::collections::BTreeSet;

use postgres::Client;
use rowsec_e2e::fixture::{backend, env, keys, schema_path};
use rowsec_generator::Backend;

fn sql_backend_only() -> bool {
    if backend() != Backend::Sql {
        println!("skipped on the extension backend: these tests are about the SQL backend's own objects");
        return false;
    }
    true
}

fn apply(c: &mut Client, script: &str) {
    c.batch_execute(script).unwrap_or_else(|e| panic!("the script applies: {}", rowsec_e2e::fixture::db_error(&e)));
}

#[test]
fn a_createrole_administrator_who_is_not_a_superuser_installs_and_reapplies_it() {
    if !sql_backend_only() {
        return;
    }
    let env = env();
    // The spec's roles first, by the fixture's template (as a superuser): without the
    // superuser's lock on pg_authid, two scripts applied at once to two databases race on
    // creating a role (README), and the other test of this binary applies one.
    let _ = env.crm_db();
    let mut admin = env.cluster.admin("postgres");
    admin
        .batch_execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'managed_admin') THEN \
             CREATE ROLE managed_admin LOGIN CREATEROLE; END IF; END $$;",
        )
        .unwrap();
    let db = env.cluster.create_database("managed", None);
    admin.batch_execute(&format!("ALTER DATABASE {db} OWNER TO managed_admin")).unwrap();
    let mut dba = env.cluster.connect("managed_admin", &db).unwrap();
    let superuser: bool =
        dba.query_one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", &[]).unwrap().get(0);
    assert!(!superuser);
    dba.batch_execute(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
    let script = rowsec_e2e::fixture::compile(&rowsec_e2e::fixture::crm_spec_path());
    apply(&mut dba, &script);
    // The directory, as the administrator keeps it (its triggers run as rowsec's owner, the
    // administrator), and three accounts loaded by a superuser: row-level security is forced,
    // so the tables' owner, who is nobody in the directory, may write no row.
    dba.batch_execute(
        "INSERT INTO crm.app_users (id, name, team_id, db_login, active) VALUES (1, 'ceo', NULL, 'rs_p1', true), \
         (20, 'rep', 100, 'rs_p20', true), (21, 'rep', 100, 'rs_p21', true), (23, 'west', 200, 'rs_p23', true);
         UPDATE crm.app_users SET manager_id = 1 WHERE id <> 1;",
    )
    .unwrap();
    let e =
        dba.batch_execute("INSERT INTO crm.accounts (id, owner_id, name) VALUES (2001, 20, 'a')").expect_err("forced");
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42501"));
    env.cluster
        .admin(&db)
        .batch_execute(
            "INSERT INTO crm.accounts (id, owner_id, name) VALUES (2001, 20, 'a'), (2101, 21, 'b'), (2301, 23, 'c')",
        )
        .unwrap();
    // Re-applied: nothing changes (the script's own check compares before it touches).
    let before: i64 = dba.query_one("SELECT count(*) FROM pg_policies WHERE schemaname = 'crm'", &[]).unwrap().get(0);
    apply(&mut dba, &script);
    let after: i64 = dba.query_one("SELECT count(*) FROM pg_policies WHERE schemaname = 'crm'", &[]).unwrap().get(0);
    assert_eq!(before, after);
    // Logins of the fixture exist cluster-wide (earlier databases made them); rep 20 sees the team's rows.
    let mut rep = env.login(&db, 20);
    assert_eq!(keys(&mut rep, "SELECT id FROM crm.accounts"), Ok(BTreeSet::from([2001, 2101])));
    let mut ceo = env.login(&db, 1);
    assert_eq!(keys(&mut ceo, "SELECT id FROM crm.accounts"), Ok(BTreeSet::from([2001, 2101, 2301])));
}

#[test]
fn security_definer_functions_pin_their_search_path_and_public_writes_nothing() {
    if !sql_backend_only() {
        return;
    }
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let unpinned: Vec<String> = admin
        .query(
            "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'rowsec'::regnamespace \
             AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c = 'search_path=pg_catalog, pg_temp') ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // But the audit chain's two functions, left without a SET clause so that the planner inlines
    // them (a call cost 42 us a row): plain SQL, not SECURITY DEFINER, and every function and
    // operator in their bodies schema-qualified, so that no search_path can change what they run.
    assert_eq!(
        unpinned,
        [
            "rowsec.chain_field(text)",
            "rowsec.chain_hash(bytea,bigint,bigint,timestamp with time zone,bigint,text,text,text,text)"
        ],
        "every other function of the schema pins search_path"
    );
    for r in admin
        .query(
            "SELECT p.proname::text, p.prosrc, p.prosecdef, l.lanname::text FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang              WHERE p.pronamespace = 'rowsec'::regnamespace AND p.proname IN ('chain_field', 'chain_hash')",
            &[],
        )
        .unwrap()
    {
        let (name, body, definer, language): (String, String, bool, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        assert!(!definer && language == "sql", "{name}");
        let operators = ["||", "-", "*"].iter().fold(body.clone(), |b, op| b.replace(&format!("OPERATOR(pg_catalog.{op})"), ""));
        assert!(!operators.contains("||") && !operators.contains(" - ") && !operators.contains(" * "), "{name}: {body}");
        // Every name followed by "(" is a qualified function, or SQL syntax.
        let mut rest = body.as_str();
        while let Some(at) = rest.find('(') {
            let word: String =
                rest[..at].chars().rev().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.').collect();
            let word: String = word.chars().rev().collect();
            assert!(
                word.is_empty()
                    || word.starts_with("pg_catalog.")
                    || word.starts_with("rowsec.")
                    || ["OPERATOR", "SELECT", "WHEN", "THEN", "ELSE", "AND", "OR"].contains(&word.as_str()),
                "{name}: unqualified {word}( in {body}"
            );
            rest = &rest[at + 1..];
        }
    }
    let definers: i64 = admin
        .query_one("SELECT count(*) FROM pg_proc WHERE pronamespace = 'rowsec'::regnamespace AND prosecdef", &[])
        .unwrap()
        .get(0);
    assert!(definers > 0);
    // PUBLIC may create nothing in the schema, and write no table but the proofs (row-level security).
    let create: bool =
        admin.query_one("SELECT has_schema_privilege('public', 'rowsec', 'CREATE')", &[]).unwrap().get(0);
    assert!(!create);
    let writable: Vec<String> = admin
        .query(
            "SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = 'rowsec'::regnamespace AND c.relkind = 'r' \
             AND (has_table_privilege('public', c.oid, 'INSERT') OR has_table_privilege('public', c.oid, 'UPDATE') \
                  OR has_table_privilege('public', c.oid, 'DELETE') OR has_table_privilege('public', c.oid, 'TRUNCATE') \
                  OR has_any_column_privilege('public', c.oid, 'INSERT') OR has_any_column_privilege('public', c.oid, 'UPDATE')) \
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(writable, ["decision_proofs", "update_proofs"]);
    // A person forging a proof for a row they may not update is refused by its row-level security.
    let mut rep = env.login(&db, 21);
    let e = rep
        .batch_execute(
            "INSERT INTO rowsec.update_proofs (tbl, row_key, person, own) VALUES ('crm.accounts', 2301, 21, true)",
        )
        .expect_err("a forged proof");
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42501"));
    // The audit trail stays append-only for its owner too.
    let e = admin.batch_execute("DELETE FROM rowsec.audit_log").expect_err("append-only");
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42501"));
}

/// The same, by behaviour: under a search_path that puts look-alikes of every function and
/// operator the chain's bodies use before pg_catalog (a role with CREATE on any schema can make
/// them), the chain's hash of a row is the one computed under a clean search_path, and
/// `rowsec.verify_audit()` still finds the whole trail intact. An unqualified name in either body
/// would resolve to a look-alike here (an exact match in the first schema of the path).
#[test]
fn the_audit_chain_hashes_alike_under_a_search_path_of_look_alikes() {
    if !sql_backend_only() {
        return;
    }
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let mut tx = admin.transaction().unwrap();
    let hash = "SELECT rowsec.chain_hash('\\x0102'::bytea, 7, 42, '2026-12-07 10:00:00.123456+00', NULL, 'rs_p20', 'share', 'crm.accounts', '{\"x\": 1}')";
    let verified = "SELECT rowsec.verify_audit()";
    let clean: Vec<u8> = tx.query_one(hash, &[]).unwrap().get(0);
    let intact: Option<i64> = tx.query_one(verified, &[]).unwrap().get(0);
    tx.batch_execute(
        "CREATE SCHEMA lookalike;
         CREATE FUNCTION lookalike.sha256(bytea) RETURNS bytea LANGUAGE sql AS $$ SELECT '\\x00'::bytea $$;
         CREATE FUNCTION lookalike.decode(text, text) RETURNS bytea LANGUAGE sql AS $$ SELECT '\\x'::bytea $$;
         CREATE FUNCTION lookalike.int8send(bigint) RETURNS bytea LANGUAGE sql AS $$ SELECT '\\x'::bytea $$;
         CREATE FUNCTION lookalike.convert_to(text, name) RETURNS bytea LANGUAGE sql AS $$ SELECT '\\x'::bytea $$;
         CREATE FUNCTION lookalike.octet_length(bytea) RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$;
         CREATE FUNCTION lookalike.extract(text, timestamptz) RETURNS numeric LANGUAGE sql AS $$ SELECT 0::numeric $$;
         CREATE FUNCTION lookalike.first(bytea, bytea) RETURNS bytea LANGUAGE sql AS $$ SELECT $1 $$;
         CREATE OPERATOR lookalike.|| (LEFTARG = bytea, RIGHTARG = bytea, FUNCTION = lookalike.first);
         CREATE FUNCTION lookalike.zero(numeric, numeric) RETURNS numeric LANGUAGE sql AS $$ SELECT 0::numeric $$;
         CREATE OPERATOR lookalike.- (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = lookalike.zero);
         CREATE OPERATOR lookalike.* (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = lookalike.zero);
         SET LOCAL search_path = lookalike, pg_catalog, public",
    )
    .unwrap();
    // The look-alikes are what an unqualified call finds on this path.
    let shadowed: Vec<u8> = tx.query_one("SELECT sha256('\\x01'::bytea) || '\\x02'::bytea", &[]).unwrap().get(0);
    assert_eq!(shadowed, [0u8]);
    let hostile: Vec<u8> = tx.query_one(hash, &[]).unwrap().get(0);
    assert_eq!(hostile, clean, "the chain's hash changed with the search_path");
    assert_eq!(clean.len(), 32);
    let still: Option<i64> = tx.query_one(verified, &[]).unwrap().get(0);
    assert_eq!(still, intact);
    tx.rollback().unwrap();
}

/// The size of each person's subtree in the fixture's directory (themselves included, inactive
/// people too: the closure table holds everyone).
fn subtree_sizes() -> std::collections::BTreeMap<i64, usize> {
    let people = rowsec_e2e::fixture::people();
    let mut sizes = std::collections::BTreeMap::new();
    for p in &people {
        let mut at = Some(p.id);
        while let Some(id) = at {
            *sizes.entry(id).or_insert(0) += 1;
            at = people.iter().find(|q| q.id == id).and_then(|q| q.manager);
        }
    }
    sizes
}

fn plan_of(tx: &mut postgres::Transaction<'_>, sql: &str) -> String {
    tx.query(&format!("EXPLAIN (VERBOSE, COSTS OFF) {sql}"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A transaction acting as manager `id`: by their login (identity login) or as the pool
/// (identity setting: the role sales_manager and app.person_id).
fn as_person(c: &mut Client, id: i64, login: bool) -> postgres::Transaction<'_> {
    let mut tx = c.transaction().unwrap();
    let setup = if login {
        format!("SET LOCAL ROLE {}", rowsec_e2e::fixture::login_of(id))
    } else {
        format!("SET LOCAL ROLE sales_manager; SET LOCAL app.person_id = '{id}'")
    };
    tx.batch_execute(&setup).unwrap();
    tx
}

fn accounts(tx: &mut postgres::Transaction<'_>, statement: &postgres::Statement) -> BTreeSet<i64> {
    tx.query(statement, &[]).unwrap().iter().map(|r| r.get::<_, i64>(0)).collect()
}

/// The keys of the accounts of `id`'s subtree (the fixture: one account per person, key
/// person * 100 + 1).
fn subtree_accounts(id: i64) -> BTreeSet<i64> {
    let people = rowsec_e2e::fixture::people();
    let mut out = BTreeSet::new();
    for p in &people {
        let mut at = Some(p.id);
        while let Some(a) = at {
            if a == id {
                out.insert(p.id * 100 + 1);
            }
            at = people.iter().find(|q| q.id == a).and_then(|q| q.manager);
        }
    }
    out
}

fn large(c: &mut impl postgres::GenericClient) -> Vec<i64> {
    c.query("SELECT person FROM rowsec.large_subtrees ORDER BY 1", &[]).unwrap().iter().map(|r| r.get(0)).collect()
}

/// The subtree policy's second shape (docs/performance.md, "The SQL backend"): under identity
/// login, people who see an eighth of the directory or more are probed in rowsec.closure and the
/// others compared with their array, each plan made for its own login; under identity setting
/// (a pool's plans serve everyone) the array for everyone. rowsec.large_subtrees follows
/// directory changes, and every shape gives each person exactly their rows.
#[test]
fn under_login_the_subtree_policy_probes_for_people_who_see_much_and_under_a_setting_it_never_does() {
    if !sql_backend_only() {
        return;
    }
    let env = env();
    let sizes = subtree_sizes();
    let line = sizes.len() / 8 + 1;
    let expected_large: Vec<i64> = sizes.iter().filter(|(_, n)| **n >= line).map(|(id, _)| *id).collect();
    // Manager east (10 people) is large, manager solo (4) is not; managers update accounts by
    // subtree (they read all of them): the subtree policy is the UPDATE's USING. Every
    // transaction here is rolled back.
    assert!(expected_large.contains(&10) && !expected_large.contains(&12), "{expected_large:?}");
    let update = "UPDATE crm.accounts SET name = name RETURNING id";

    let login_db = env.crm_db();
    let mut admin = env.cluster.admin(&login_db);
    assert_eq!(large(&mut admin), expected_large);
    for id in [10, 12] {
        let mut tx = as_person(&mut admin, id, true);
        let plan = plan_of(&mut tx, update);
        if id == 10 {
            assert!(
                plan.contains("rowsec.person_if_large()") && !plan.contains("rowsec.subtree()"),
                "manager east's plan probes: {plan}"
            );
        } else {
            assert!(
                plan.contains("rowsec.subtree()") && !plan.contains("rowsec.person_if_large()"),
                "manager solo's plan compares: {plan}"
            );
        }
        let s = tx.prepare(update).unwrap();
        assert_eq!(accounts(&mut tx, &s), subtree_accounts(id), "person {id}");
    }
    // One statement prepared on the connection, forced to its generic plan, run by one login
    // then the other.
    for order in [[10, 12], [12, 10]] {
        admin.batch_execute("DEALLOCATE ALL; SET plan_cache_mode = force_generic_plan").unwrap();
        let statement = admin.prepare(update).unwrap();
        for id in order {
            let mut tx = as_person(&mut admin, id, true);
            assert_eq!(accounts(&mut tx, &statement), subtree_accounts(id), "person {id} after {order:?}");
            tx.rollback().unwrap();
        }
    }
    admin.batch_execute("RESET plan_cache_mode").unwrap();
    // A directory change moves the line: two reps (and the juniors below one) to manager solo.
    let mut tx = admin.transaction().unwrap();
    tx.batch_execute("UPDATE crm.app_users SET manager_id = 12 WHERE id IN (20, 21)").unwrap();
    let now = large(&mut tx);
    assert!(now.contains(&12) && !now.contains(&10), "after the move: {now:?}");
    tx.rollback().unwrap();
    assert_eq!(large(&mut admin), expected_large);

    // Identity setting: the array for the large manager too, and their rows.
    let setting_db = env.database_for(&rowsec_e2e::fixture::setting_spec_path());
    env.cluster
        .admin(&setting_db)
        .batch_execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shape_pool') THEN \
             CREATE ROLE shape_pool LOGIN; END IF; END $$; GRANT sales_manager TO shape_pool;",
        )
        .unwrap();
    // Nothing reads rowsec.large_subtrees there: the directory's triggers keep it empty.
    assert_eq!(large(&mut env.cluster.admin(&setting_db)), Vec::<i64>::new());
    let mut pool = env.cluster.connect("shape_pool", &setting_db).unwrap();
    let mut tx = as_person(&mut pool, 10, false);
    let plan = plan_of(&mut tx, update);
    assert!(plan.contains("rowsec.subtree()") && !plan.contains("rowsec.person_if_large()"), "setting: {plan}");
    let s = tx.prepare(update).unwrap();
    assert_eq!(accounts(&mut tx, &s), subtree_accounts(10));
}

/// The identity setting's name is written into dollar-quoted function bodies: a name with a "$"
/// (which PostgreSQL allows) is refused with 22023 and a hint, and nothing changes.
#[test]
fn a_setting_name_with_a_dollar_is_refused_and_nothing_changes() {
    if !sql_backend_only() {
        return;
    }
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let before: String =
        admin.query_one("SELECT pg_get_functiondef('rowsec.current_person()'::regprocedure)", &[]).unwrap().get(0);
    let e = admin
        .batch_execute(
            "SELECT rowsec.configure('crm.app_users', 'id', 'manager_id', 'team_id', 'db_login', 'active', \
             'setting', 'app.x$b$y')",
        )
        .expect_err("a name with a dollar");
    let d = e.as_db_error().expect("a database error");
    assert_eq!(d.code().code(), "22023", "{}", d.message());
    assert!(d.message().contains("app.x$b$y") && d.hint().is_some_and(|h| h.contains("without \"$\"")), "{d:?}");
    let after: String =
        admin.query_one("SELECT pg_get_functiondef('rowsec.current_person()'::regprocedure)", &[]).unwrap().get(0);
    assert_eq!(before, after);
}

/// The seal serialises on `rowsec.audit_head`: concurrent transactions in READ COMMITTED chain
/// one after the other in commit order; a REPEATABLE READ transaction whose snapshot predates
/// another's seal fails at commit with 40001 (to retry) instead of forking the chain.
#[test]
fn concurrent_seals_chain_in_commit_order_and_a_stale_repeatable_read_gets_40001() {
    if !sql_backend_only() {
        return;
    }
    let env = env();
    let db = env.crm_db();
    let mut a = env.cluster.admin(&db);
    let mut b = env.cluster.admin(&db);
    let insert = "INSERT INTO rowsec.audit_log (kind, object) VALUES ('share', 'concurrency test')";
    // READ COMMITTED: a inserts first, b inserts and commits, then a commits.
    a.batch_execute(&format!("BEGIN; {insert}")).unwrap();
    b.batch_execute(&format!("BEGIN; {insert}; COMMIT")).unwrap();
    a.batch_execute("COMMIT").unwrap();
    let order: Vec<(i64, i64)> = a
        .query("SELECT id, seq FROM rowsec.audit_log WHERE object = 'concurrency test' ORDER BY seq", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(order.len(), 2);
    assert!(order[0].0 > order[1].0, "b's row (the later id) committed first and is chained first: {order:?}");
    assert_eq!(order[1].1, order[0].1 + 1);
    // REPEATABLE READ: a's snapshot is taken before b seals.
    a.batch_execute(&format!("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1; {insert}")).unwrap();
    b.batch_execute(&format!("BEGIN; {insert}; COMMIT")).unwrap();
    let e = a.batch_execute("COMMIT").expect_err("a stale snapshot cannot seal");
    assert_eq!(e.code(), Some(&postgres::error::SqlState::T_R_SERIALIZATION_FAILURE), "{e:?}");
    let verified: Option<i64> = a.query_one("SELECT rowsec.verify_audit()", &[]).unwrap().get(0);
    assert_eq!(verified, None, "the chain is whole");
}

/// The SECURITY DEFINER triggers read column values through the types' output functions, never
/// through a cast to text, which a type's owner may write (and which would run as rowsec's
/// owner): an audited column of a type whose owner cast it to text records its label, and the
/// cast's function never runs.
#[test]
fn a_cast_to_text_written_by_a_types_owner_never_runs_as_rowsecs_owner() {
    if !sql_backend_only() {
        return;
    }
    let env = env();
    let db = env.crm_db();
    let mut admin = env.cluster.admin(&db);
    let caster = format!("{db}_caster");
    admin
        .batch_execute(&format!(
            "CREATE ROLE {caster}; GRANT USAGE, CREATE ON SCHEMA crm TO {caster};
             SET ROLE {caster};
             CREATE TYPE crm.stage AS ENUM ('lead', 'won');
             CREATE TABLE crm.cast_calls (who name);
             CREATE FUNCTION crm.stage_text(crm.stage) RETURNS text LANGUAGE sql
                 AS 'INSERT INTO crm.cast_calls VALUES (current_user) RETURNING ''forged''';
             CREATE CAST (crm.stage AS text) WITH FUNCTION crm.stage_text(crm.stage);
             RESET ROLE;
             CREATE TABLE crm.staged (id bigint PRIMARY KEY, stage crm.stage);
             SELECT rowsec.audit_table('crm.staged', 'id');
             INSERT INTO crm.staged VALUES (1, 'lead');"
        ))
        .unwrap();
    let (calls, recorded): (i64, String) = {
        let r = admin
            .query_one(
                "SELECT (SELECT count(*) FROM crm.cast_calls),
                        (SELECT detail->'columns'->'stage'->>'new' FROM rowsec.audit_log
                         WHERE kind = 'data' AND object = 'crm.staged' ORDER BY id DESC LIMIT 1)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((calls, recorded.as_str()), (0, "lead"));
}

/// A role that bypasses row-level security is not bound by the proofs' policies, but the
/// owner's halves take a proof only for the person the session acts as: such a role cannot
/// decide (or share) in somebody else's name.
#[test]
fn a_bypassrls_role_cannot_write_a_proof_for_somebody_else() {
    if !sql_backend_only() {
        return;
    }
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 23);
    let request: i64 = rep
        .query_one("SELECT rowsec.request_access('crm.accounts', 2001, 'read', now() + interval '1 day', 'x')", &[])
        .unwrap()
        .get(0);
    let mut admin = env.cluster.admin(&db);
    let forger = format!("{db}_forger");
    admin
        .batch_execute(&format!(
            "CREATE ROLE {forger} LOGIN BYPASSRLS; GRANT USAGE ON SCHEMA rowsec TO {forger};
             GRANT INSERT (request, person) ON rowsec.decision_proofs TO {forger};"
        ))
        .unwrap();
    let mut c = env.cluster.connect(&forger, &db).unwrap();
    let e = c
        .batch_execute(&format!(
            "BEGIN; INSERT INTO rowsec.decision_proofs (request, person) VALUES ({request}, 10);
             SELECT rowsec.record_decision({request}, true, 'forged'); COMMIT;"
        ))
        .expect_err("a proof for person 10 written by someone else");
    assert_eq!(rowsec_e2e::fixture::db_error(&e), format!("42501: permission denied to decide request {request}"));
    let status: String =
        admin.query_one("SELECT status FROM rowsec.requests WHERE id = $1", &[&request]).unwrap().get(0);
    assert_eq!(status, "pending");
}

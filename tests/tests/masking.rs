//! Masked columns (docs/spec.md, `classes`): examples/crm-masked.yaml's view crm_app.contacts,
//! read and written as several people. Everyone's `SELECT *` works; a phone number (`pii`,
//! mask `partial`) or e-mail address (`contact`, mask `email`) the person may not read shows
//! masked; a sales rep reads phones in clear on their own records only; the view never shows
//! a row the table hides; nothing recovers a hidden value; writes follow the table's rules.

use std::collections::BTreeSet;
use std::path::PathBuf;

use postgres::Client;
use rowsec_e2e::fixture::{classify, db_error, env, examples, keys};
use rowsec_generator::oracle::Outcome;

const SUPPORT: i64 = 51; // support: neither class; team 400 with 50, 52, 53
const REP: i64 = 20; // sales_rep: pii only on own rows; team 100 with 21, 22, ...
const TEAMMATE: i64 = 21;
const MANAGER: i64 = 10; // sales_manager east: pii and contact write; subtree 20, 21, ...
const ADMIN: i64 = 2; // crm_admin: everything
const ANALYST: i64 = 5; // data_analyst: sees every row, neither class

fn spec() -> PathBuf {
    examples().join("crm-masked.yaml")
}

/// The fixture's contact row of a person: key `person * 100 + 1`.
fn contact(person: i64) -> i64 {
    person * 100 + 1
}

fn phone(person: i64) -> String {
    format!("+1-555-{}", contact(person))
}

fn email(person: i64) -> String {
    format!("c{}@example.com", contact(person))
}

/// (phone, email) of one contact through the view, as `who` reads it.
fn read(c: &mut Client, key: i64) -> Option<(Option<String>, Option<String>)> {
    c.query_opt("SELECT phone, email FROM crm_app.contacts WHERE id = $1", &[&key])
        .unwrap_or_else(|e| panic!("reading contact {key} through the view: {}", db_error(&e)))
        .map(|r| (r.get(0), r.get(1)))
}

fn clear(person: i64) -> Option<(Option<String>, Option<String>)> {
    Some((Some(phone(person)), Some(email(person))))
}

fn masked_phone(person: i64) -> Option<String> {
    Some(format!("****{}", contact(person)))
}

fn outcome(c: &mut Client, sql: &str) -> Outcome {
    classify(c.execute(sql, &[]))
}

#[test]
fn select_star_works_for_everyone_and_shows_each_value_as_the_person_may_read_it() {
    let env = env();
    let db = env.database_for(&spec());
    let masked_email = Some("****@example.com".to_owned());

    // The table itself keeps SPEC item 7: support lacks `pii`, so `SELECT *` fails there.
    let mut support = env.login(&db, SUPPORT);
    assert_eq!(outcome(&mut support, "SELECT * FROM crm.contacts"), Outcome::PermissionDenied);
    assert_eq!(outcome(&mut support, "SELECT phone FROM crm.contacts"), Outcome::PermissionDenied);
    // Through the view it works, masked.
    let rows = support.query("SELECT * FROM crm_app.contacts", &[]).expect("support: SELECT * through the view");
    assert!(!rows.is_empty());
    assert_eq!(read(&mut support, contact(SUPPORT)), Some((masked_phone(SUPPORT), masked_email.clone())));
    assert_eq!(read(&mut support, contact(52)), Some((masked_phone(52), masked_email.clone())));

    // A rep: phone in clear on their own record, masked on a teammate's; e-mail in clear (write).
    let mut rep = env.login(&db, REP);
    assert_eq!(read(&mut rep, contact(REP)), clear(REP));
    assert_eq!(read(&mut rep, contact(TEAMMATE)), Some((masked_phone(TEAMMATE), Some(email(TEAMMATE)))));
    // The rep's `{ read: own }` is no column privilege: the table itself still refuses phone.
    assert_eq!(outcome(&mut rep, "SELECT phone FROM crm.contacts"), Outcome::PermissionDenied);

    let mut manager = env.login(&db, MANAGER);
    assert_eq!(read(&mut manager, contact(TEAMMATE)), clear(TEAMMATE));
    let mut admin = env.login(&db, ADMIN);
    assert_eq!(read(&mut admin, contact(SUPPORT)), clear(SUPPORT));
    let mut analyst = env.login(&db, ANALYST);
    assert_eq!(read(&mut analyst, contact(REP)), Some((masked_phone(REP), masked_email)));

    // A value of four characters or fewer keeps nothing; NULL stays NULL; an address without
    // `@` keeps nothing.
    env.cluster
        .admin(&db)
        .batch_execute(&format!(
            "UPDATE crm.contacts SET phone = '1234', email = 'nobody' WHERE id = {}; \
             UPDATE crm.contacts SET phone = NULL, email = NULL WHERE id = {}",
            contact(52),
            contact(53)
        ))
        .unwrap();
    assert_eq!(read(&mut support, contact(52)), Some((Some("****".into()), Some("****".into()))));
    assert_eq!(read(&mut support, contact(53)), Some((None, None)));
}

#[test]
fn the_view_shows_exactly_the_rows_the_table_shows_each_person() {
    let env = env();
    let db = env.database_for(&spec());
    let mut checked = 0;
    for p in env.logins() {
        let mut c = env.login(&db, p.id);
        let table = keys(&mut c, "SELECT id FROM crm.contacts");
        let view = keys(&mut c, "SELECT id FROM crm_app.contacts");
        match table {
            Ok(table) => assert_eq!(view, Ok(table), "{} ({}): rows of the view and of the table", p.name, p.id),
            // No select at all on the table: none on the view either.
            Err(e) => assert_eq!(view, Err(e), "{} ({})", p.name, p.id),
        }
        checked += 1;
    }
    println!("masking: rows of crm_app.contacts = rows of crm.contacts for {checked} people");
    // Someone who sees no row (an inactive rep) sees none through the view.
    let mut departed = env.login(&db, 60);
    assert_eq!(keys(&mut departed, "SELECT id FROM crm_app.contacts"), Ok(BTreeSet::new()));
}

#[test]
fn nothing_recovers_a_masked_value() {
    let env = env();
    let db = env.database_for(&spec());
    let (target, hidden) = (contact(52), phone(52)); // support 52's contact: visible to support 51, masked
    let mut s = env.login(&db, SUPPORT);
    let count = |s: &mut Client, cond: &str| -> i64 {
        s.query_one(&format!("SELECT count(*) FROM crm_app.contacts WHERE {cond}"), &[])
            .unwrap_or_else(|e| panic!("{cond}: {}", db_error(&e)))
            .get(0)
    };
    // Predicates compare the masked value, never the hidden one.
    assert_eq!(count(&mut s, &format!("phone = '{hidden}'")), 0);
    assert_eq!(count(&mut s, &format!("phone = '****{target}'")), 1);
    assert_eq!(count(&mut s, "phone LIKE '+1-555-%'"), 0);
    assert_eq!(count(&mut s, "phone >= '+1' AND phone < '+2'"), 0);
    assert_eq!(count(&mut s, "email LIKE 'c%'"), 0);
    assert_eq!(count(&mut s, "length(phone) = 11"), 0);
    // ORDER BY and GROUP BY see masked values only.
    let ordered: Vec<Option<String>> =
        s.query("SELECT phone FROM crm_app.contacts ORDER BY phone", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert!(ordered.iter().flatten().all(|p| p.starts_with("****")), "{ordered:?}");
    let groups: Vec<String> = s
        .query("SELECT DISTINCT email FROM crm_app.contacts GROUP BY email", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(groups, vec!["****@example.com".to_owned()]);
    let distinct: i64 = s.query_one("SELECT count(DISTINCT email) FROM crm_app.contacts", &[]).unwrap().get(0);
    assert_eq!(distinct, 1);
    // A failing cast names the masked value.
    let err = s
        .query_one(&format!("SELECT phone::int FROM crm_app.contacts WHERE id = {target}"), &[])
        .expect_err("casting a masked phone to int fails");
    let message = db_error(&err);
    assert!(message.contains(&format!("****{target}")) && !message.contains("+1-555"), "{message}");
    // EXPLAIN ANALYZE VERBOSE shows the view's expressions, no value.
    let plan: Vec<String> = s
        .query("EXPLAIN (ANALYZE, VERBOSE, COSTS OFF) SELECT * FROM crm_app.contacts", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(!plan.contains("+1-555") && !plan.contains("@example.com"), "{plan}");
    // The row filter is the reader's own: called directly, it says no for a hidden row.
    let sees: bool = s.query_one("SELECT crm_app.rowsec_sees_contacts($1)", &[&contact(REP)]).unwrap().get(0);
    assert!(!sees, "support does not see the rep's contact in crm.contacts");
}

#[test]
fn a_leaky_function_in_where_sees_neither_hidden_rows_nor_hidden_values() {
    let env = env();
    let db = env.database_for(&spec());
    env.cluster
        .admin(&db)
        .batch_execute(
            "CREATE FUNCTION public.leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS \
             $$ BEGIN RAISE NOTICE 'leak: %', $1; RETURN true; END $$; \
             GRANT EXECUTE ON FUNCTION public.leak(text) TO PUBLIC",
        )
        .unwrap();
    let (mut s, notices) = env.login_collecting_notices(&db, SUPPORT);
    let rows = s
        .query(
            "SELECT id FROM crm_app.contacts WHERE public.leak(phone) AND public.leak(email) AND public.leak(full_name)",
            &[],
        )
        .expect("a leaky function on the view");
    let leaked: Vec<String> = notices.lock().unwrap().iter().map(|n| n.message().to_owned()).collect();
    assert!(!rows.is_empty() && !leaked.is_empty());
    for m in &leaked {
        assert!(!m.contains("+1-555"), "a hidden phone reached a leaky function: {m}");
        assert!(!m.contains("@example.com") || m.contains("****@"), "a hidden address reached a leaky function: {m}");
    }
    // Only the names of rows support sees (their team's 50-53 and shares: none here).
    let visible: BTreeSet<String> = [50, 51, 52, 53].iter().map(|p| format!("leak: contact {}", contact(*p))).collect();
    for m in leaked.iter().filter(|m| m.starts_with("leak: contact ")) {
        assert!(visible.contains(m), "a hidden row reached a leaky function: {m}");
    }
}

#[test]
fn writes_through_the_view_follow_the_tables_row_and_column_rules() {
    let env = env();
    let db = env.database_for(&spec());
    let mut admin = env.cluster.admin(&db);
    let base = |admin: &mut Client, key: i64| -> Option<(String, Option<String>, Option<String>)> {
        admin
            .query_opt("SELECT full_name, phone, email FROM crm.contacts WHERE id = $1", &[&key])
            .unwrap()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
    };
    let mut s = env.login(&db, SUPPORT);
    // Updating another column keeps the masked ones' real values.
    let own = contact(SUPPORT);
    assert_eq!(
        outcome(&mut s, &format!("UPDATE crm_app.contacts SET full_name = 'renamed' WHERE id = {own}")),
        Outcome::Rows(1)
    );
    assert_eq!(base(&mut admin, own), Some(("renamed".into(), Some(phone(SUPPORT)), Some(email(SUPPORT)))));
    // Writing the masked value back unchanged changes nothing either.
    assert_eq!(
        outcome(&mut s, &format!("UPDATE crm_app.contacts SET phone = phone, email = email WHERE id = {own}")),
        Outcome::Rows(1)
    );
    assert_eq!(base(&mut admin, own).unwrap().1, Some(phone(SUPPORT)));
    // A class the person may not write cannot be written through the view.
    assert_eq!(
        outcome(&mut s, &format!("UPDATE crm_app.contacts SET phone = '0' WHERE id = {own}")),
        Outcome::PermissionDenied
    );
    assert_eq!(
        outcome(&mut s, "INSERT INTO crm_app.contacts (owner_id, full_name, phone) VALUES (51, 'x', '0')"),
        Outcome::PermissionDenied
    );
    // Row rules: a teammate's row is visible but not the support agent's to change.
    let mate = contact(52);
    assert_eq!(
        outcome(&mut s, &format!("UPDATE crm_app.contacts SET full_name = 'no' WHERE id = {mate}")),
        Outcome::Rows(0)
    );
    assert_eq!(outcome(&mut s, &format!("DELETE FROM crm_app.contacts WHERE id = {mate}")), Outcome::Rows(0));
    assert!(base(&mut admin, mate).is_some());
    assert_eq!(
        outcome(&mut s, "INSERT INTO crm_app.contacts (owner_id, full_name) VALUES (52, 'for a teammate')"),
        Outcome::RlsViolation
    );
    // Insert and delete in scope work; left-out columns get the table's defaults.
    assert_eq!(
        outcome(&mut s, "INSERT INTO crm_app.contacts (owner_id, full_name) VALUES (51, 'new contact')"),
        Outcome::Rows(1)
    );
    let created: i64 = admin
        .query_one("SELECT count(*) FROM crm.contacts WHERE full_name = 'new contact' AND owner_id = 51 AND id > 1000000 AND phone IS NULL", &[])
        .unwrap()
        .get(0);
    assert_eq!(created, 1);
    assert_eq!(outcome(&mut s, &format!("DELETE FROM crm_app.contacts WHERE id = {own}")), Outcome::Rows(1));
    assert_eq!(base(&mut admin, own), None);

    // A rep reads their own phone in clear but may not write it (a scoped read is read-only).
    let mut rep = env.login(&db, REP);
    let rep_own = contact(REP);
    assert_eq!(
        outcome(&mut rep, &format!("UPDATE crm_app.contacts SET phone = '0' WHERE id = {rep_own}")),
        Outcome::PermissionDenied
    );
    // ...and writes the e-mail (contact: write); the phone stays.
    assert_eq!(
        outcome(&mut rep, &format!("UPDATE crm_app.contacts SET email = 'new@example.org' WHERE id = {rep_own}")),
        Outcome::Rows(1)
    );
    assert_eq!(base(&mut admin, rep_own).map(|b| (b.1, b.2)), Some((Some(phone(REP)), Some("new@example.org".into()))));
    // A manager writes the phone of someone in their subtree.
    let mut manager = env.login(&db, MANAGER);
    let mate_of_rep = contact(TEAMMATE);
    assert_eq!(
        outcome(&mut manager, &format!("UPDATE crm_app.contacts SET phone = '+1-000' WHERE id = {mate_of_rep}")),
        Outcome::Rows(1)
    );
    assert_eq!(base(&mut admin, mate_of_rep).unwrap().1, Some("+1-000".into()));
}

#[test]
fn the_views_are_barriers_owned_by_rowsec_and_converge_away_with_the_spec() {
    let env = env();
    let db = env.database_for(&spec());
    let mut admin = env.cluster.admin(&db);
    let options: Vec<String> = admin
        .query_one("SELECT reloptions::text[] FROM pg_class WHERE oid = 'crm_app.contacts'::regclass", &[])
        .unwrap()
        .get(0);
    assert_eq!(options, vec!["security_barrier=true", "security_invoker=false"]);
    // PUBLIC holds nothing in the schema.
    let public: bool =
        admin.query_one("SELECT has_schema_privilege('public', 'crm_app', 'USAGE')", &[]).unwrap().get(0);
    assert!(!public);
    let views = |admin: &mut Client| -> i64 {
        admin.query_one("SELECT count(*) FROM pg_namespace WHERE nspname = 'crm_app'", &[]).unwrap().get(0)
    };
    // The same spec again: views recreated, nothing changed.
    let masked = rowsec_e2e::fixture::compile(&spec());
    let (mut c, notices) = env.cluster.connect_collecting_notices("postgres", &db).unwrap();
    c.batch_execute(&masked).unwrap();
    let said: Vec<String> = notices.lock().unwrap().iter().map(|n| n.message().to_owned()).collect();
    assert!(said.iter().any(|m| m == "rowsec: masked views: crm_app.contacts (0 created, 0 changed)"), "{said:?}");
    // crm.yaml has no `classes`: its script removes the views and the schema rowsec made.
    let plain = rowsec_e2e::fixture::compile(&rowsec_e2e::fixture::crm_spec_path());
    notices.lock().unwrap().clear();
    c.batch_execute(&plain).unwrap();
    let said: Vec<String> = notices.lock().unwrap().iter().map(|n| n.message().to_owned()).collect();
    assert!(said.iter().any(|m| m.contains("masked view crm_app.contacts removed")), "{said:?}");
    assert_eq!(views(&mut admin), 0);
    c.batch_execute(&masked).unwrap();
    assert_eq!(views(&mut admin), 1);
    // A schema of that name that rowsec did not make is refused, and nothing is applied.
    admin.batch_execute("DROP SCHEMA crm_app CASCADE; CREATE SCHEMA crm_app").unwrap();
    let err = c.batch_execute(&masked).expect_err("a foreign crm_app schema");
    assert_eq!(err.as_db_error().map(|d| d.code().code()), Some("42P06"), "{}", db_error(&err));
}

/// Limits (SPEC item 12) hold through the view, and count each row read through it twice: once
/// at the view's scan of the table, once at its row filter's lookup (docs/spec.md says so).
#[test]
fn limits_hold_through_the_view_and_count_each_row_twice() {
    if rowsec_e2e::fixture::extension_only("limits (SPEC item 12) need the extension's executor hooks (E1701)") {
        return;
    }
    let env = env();
    let db = env.database_for(&spec());
    // Support's select limit is 200; give support 51 120 more rows of their own (about 125 visible).
    env.cluster
        .admin(&db)
        .batch_execute(
            "INSERT INTO crm.contacts (owner_id, full_name, phone) \
             SELECT 51, 'bulk ' || g, '+1-555-9' || g FROM generate_series(1, 120) g",
        )
        .unwrap();
    let mut s = env.login(&db, SUPPORT);
    let table = keys(&mut s, "SELECT id FROM crm.contacts").expect("within the limit on the table");
    assert!(table.len() > 100 && table.len() <= 200, "{}", table.len());
    let err = s.query("SELECT id FROM crm_app.contacts", &[]).expect_err("twice the rows through the view");
    let message = db_error(&err);
    assert!(message.starts_with("42501") && message.contains("200"), "{message}");
    // Under half the limit, the view reads.
    let few = s.query("SELECT id FROM crm_app.contacts WHERE owner_id = 51 LIMIT 90", &[]).expect("90 rows");
    assert_eq!(few.len(), 90);
}

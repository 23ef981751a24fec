//! SPEC 7: column classes. Reading and writing every column, and ways around them.

use postgres::Client;
use rowsec_e2e::fixture::{env, table, tables, try_rolled_back, Env, Tally};
use rowsec_generator::model::{Command, QualifiedName};
use rowsec_generator::oracle::{Oracle, Outcome};

/// Every column of a table with its SQL type, read from the catalog as superuser.
fn columns(env: &Env, db: &str, t: &QualifiedName) -> Vec<(String, String)> {
    env.cluster
        .admin(db)
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&t.to_string()],
        )
        .expect("columns")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn allowed(o: Outcome) -> Outcome {
    // Privilege checks happen before any row is read: any success means "allowed".
    match o {
        Outcome::Rows(_) => Outcome::Rows(0),
        other => other,
    }
}

fn expect(ok: bool) -> Outcome {
    if ok {
        Outcome::Rows(0)
    } else {
        Outcome::PermissionDenied
    }
}

fn column_matrix(cmd: Command, statement: impl Fn(&QualifiedName, &str, &str) -> String) {
    let env = env();
    let db = env.crm_db();
    let oracle = Oracle::new(&env.spec, &env.people);
    let mut tally = Tally::new(match cmd {
        Command::Select => "column read: person x table x column",
        Command::Insert => "column insert: person x table x column",
        _ => "column update: person x table x column",
    });
    let cols: Vec<_> = tables().into_iter().map(|t| (columns(env, &db, &t), t)).collect();
    for p in env.logins() {
        let mut c = env.login(&db, p.id);
        for (cs, t) in &cols {
            for (col, ty) in cs {
                tally.check(
                    format!("{} ({}) {t}.{col}", p.name, p.id),
                    expect(oracle.column_allowed(p.id, t, col, cmd)),
                    allowed(try_rolled_back(&mut c, &statement(t, col, ty))),
                );
            }
        }
    }
    tally.finish();
}

#[test]
fn reading_each_column_is_allowed_exactly_when_the_role_has_its_class() {
    column_matrix(Command::Select, |t, col, _| format!("SELECT {col} FROM {t} LIMIT 0"));
}

#[test]
fn updating_each_column_is_allowed_exactly_when_the_role_may_write_its_class() {
    column_matrix(Command::Update, |t, col, _| format!("UPDATE {t} SET {col} = DEFAULT WHERE false"));
}

#[test]
fn inserting_into_each_column_is_allowed_exactly_when_the_role_may_write_its_class() {
    column_matrix(Command::Insert, |t, col, ty| format!("INSERT INTO {t} ({col}) SELECT NULL::{ty} WHERE false"));
}

fn support(db: &str) -> Client {
    // Support 51: pii read, no financial.
    env().login(db, 51)
}

#[test]
fn select_star_fails_without_the_class_while_the_other_columns_still_work() {
    let env = env();
    let db = env.crm_db();
    let mut c = support(&db);
    assert_eq!(try_rolled_back(&mut c, "SELECT * FROM crm.accounts"), Outcome::PermissionDenied);
    let rows =
        c.query("SELECT id, name FROM crm.accounts WHERE owner_id = 51", &[]).expect("unclassed columns are readable");
    assert_eq!(rows.len(), 1);
}

#[test]
fn returning_a_classed_column_without_the_class_fails() {
    let env = env();
    let db = env.crm_db();
    // Marketer 41 may update own opportunities (level manager) but has no financial class.
    let mut c = env.login(&db, 41);
    assert_eq!(try_rolled_back(&mut c, "UPDATE crm.opportunities SET title = 'x' WHERE id = 4101"), Outcome::Rows(1));
    assert_eq!(
        try_rolled_back(&mut c, "UPDATE crm.opportunities SET title = 'x' WHERE id = 4101 RETURNING amount"),
        Outcome::PermissionDenied
    );
}

#[test]
fn a_view_created_by_a_person_reveals_neither_classed_columns_nor_more_rows() {
    let env = env();
    let db = env.crm_db();
    let login = env.person(51).login.clone().unwrap();
    env.cluster.admin(&db).batch_execute(&format!("CREATE SCHEMA {login} AUTHORIZATION {login}")).unwrap();
    let mut c = support(&db);
    c.batch_execute(&format!("CREATE VIEW {login}.all_accounts AS SELECT id FROM crm.accounts"))
        .expect("a person may create a view in their own schema");
    let direct = rowsec_e2e::fixture::keys(&mut c, "SELECT id FROM crm.accounts").unwrap();
    let through_view = rowsec_e2e::fixture::keys(&mut c, &format!("SELECT id FROM {login}.all_accounts")).unwrap();
    assert_eq!(through_view, direct, "the view runs with the person's own policies");
    // Either creating or reading the view fails: the classed values never come out.
    let revenue = c
        .batch_execute(&format!("CREATE VIEW {login}.revenue AS SELECT id, annual_revenue FROM crm.accounts"))
        .and_then(|_| c.query(&format!("SELECT * FROM {login}.revenue"), &[]).map(|_| ()));
    let err = revenue.expect_err("a view must not reveal annual_revenue");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
}

#[test]
fn a_rep_can_write_pii_but_only_read_financial() {
    let env = env();
    let db = env.crm_db();
    let mut c = env.login(&db, 20);
    assert_eq!(try_rolled_back(&mut c, "UPDATE crm.contacts SET phone = '1' WHERE id = 2001"), Outcome::Rows(1));
    assert_eq!(
        try_rolled_back(&mut c, "UPDATE crm.accounts SET annual_revenue = 1 WHERE id = 2001"),
        Outcome::PermissionDenied
    );
    let t = table("accounts");
    let rows = c.query(&format!("SELECT annual_revenue FROM {t} WHERE id = 2001"), &[]).expect("financial read");
    assert_eq!(rows.len(), 1);
}

//! Security probes: things a person might try to get around the policies. All must fail.

use rowsec_e2e::fixture::{env, try_rolled_back};
use rowsec_generator::oracle::Outcome;

#[test]
fn a_rep_cannot_insert_a_record_owned_by_someone_else() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 20);
    for owner in [21, 10, 30, 1] {
        assert_eq!(
            try_rolled_back(
                &mut rep,
                &format!("INSERT INTO crm.accounts (id, owner_id, name) VALUES (8000{owner}, {owner}, 'x')")
            ),
            Outcome::RlsViolation,
            "owner {owner}"
        );
    }
}

#[test]
fn a_rep_cannot_hand_a_record_away_by_updating_its_owner() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 20);
    assert_eq!(
        try_rolled_back(&mut rep, "UPDATE crm.accounts SET owner_id = 21 WHERE id = 2001"),
        Outcome::RlsViolation
    );
}

#[test]
fn a_rep_cannot_take_over_a_teammates_record_by_updating_its_owner() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 20);
    // 2101 is visible (team) but not updatable (own): nothing changes.
    assert_eq!(try_rolled_back(&mut rep, "UPDATE crm.accounts SET owner_id = 20 WHERE id = 2101"), Outcome::Rows(0));
}

#[test]
fn a_group_role_cannot_disable_row_level_security() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 20);
    for role in ["NONE", "sales_rep"] {
        rep.batch_execute(&format!("SET ROLE {role}")).unwrap();
        for sql in [
            "ALTER TABLE crm.accounts DISABLE ROW LEVEL SECURITY",
            "ALTER TABLE crm.accounts NO FORCE ROW LEVEL SECURITY",
        ] {
            assert_eq!(try_rolled_back(&mut rep, sql), Outcome::PermissionDenied, "{role}: {sql}");
        }
    }
}

#[test]
fn a_group_role_cannot_alter_or_drop_a_policy() {
    let env = env();
    let db = env.crm_db();
    let policy: String = env
        .cluster
        .admin(&db)
        .query_one(
            "SELECT policyname::text FROM pg_policies WHERE schemaname = 'crm' \
             AND tablename = 'accounts' AND 'sales_rep' = ANY (roles) LIMIT 1",
            &[],
        )
        .expect("sales_rep has a policy on crm.accounts")
        .get(0);
    let mut rep = env.login(&db, 20);
    rep.batch_execute("SET ROLE sales_rep").unwrap();
    for sql in [
        format!("ALTER POLICY \"{policy}\" ON crm.accounts USING (true)"),
        format!("DROP POLICY \"{policy}\" ON crm.accounts"),
        "CREATE POLICY mine ON crm.accounts USING (true)".to_owned(),
    ] {
        assert_eq!(try_rolled_back(&mut rep, &sql), Outcome::PermissionDenied, "{sql}");
    }
}

#[test]
fn a_person_cannot_reconfigure_the_extension_or_register_tables() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 20);
    for sql in [
        "SELECT rowsec.configure('crm.app_users', 'id', 'manager_id')",
        "SELECT rowsec.unprotect_table('crm.accounts')",
        "DELETE FROM rowsec.config",
    ] {
        assert_eq!(try_rolled_back(&mut rep, sql), Outcome::PermissionDenied, "{sql}");
    }
}

#[test]
fn a_person_cannot_change_the_directory() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 20);
    for sql in [
        "UPDATE crm.app_users SET manager_id = NULL WHERE id = 20",
        "UPDATE crm.app_users SET active = true WHERE id = 60",
        "INSERT INTO crm.app_users (id, name, db_login) VALUES (999, 'x', 'postgres')",
    ] {
        assert_eq!(try_rolled_back(&mut rep, sql), Outcome::PermissionDenied, "{sql}");
    }
}

#[test]
fn a_security_definer_function_of_a_person_runs_with_their_own_policies() {
    // A person who can create functions gets nothing more: the definer is themself.
    let env = env();
    let db = env.crm_db();
    let login = env.person(21).login.clone().unwrap();
    env.cluster.admin(&db).batch_execute(&format!("CREATE SCHEMA {login} AUTHORIZATION {login}")).unwrap();
    let mut rep = env.login(&db, 21);
    rep.batch_execute(&format!(
        "CREATE FUNCTION {login}.n() RETURNS bigint LANGUAGE sql SECURITY DEFINER \
         AS 'SELECT count(*) FROM crm.accounts'"
    ))
    .unwrap();
    let direct: i64 = rep.query_one("SELECT count(*) FROM crm.accounts", &[]).unwrap().get(0);
    let via: i64 = rep.query_one(&format!("SELECT {login}.n()"), &[]).unwrap().get(0);
    assert_eq!(direct, via);
}

#[test]
fn insert_on_conflict_cannot_hand_away_or_take_over_a_record() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 20);
    // 2001 is the rep's own account: the conflict turns into an UPDATE whose new row leaves
    // the rep's update scope.
    assert_eq!(
        try_rolled_back(
            &mut rep,
            "INSERT INTO crm.accounts (id, owner_id, name) VALUES (2001, 20, 'x') \
             ON CONFLICT (id) DO UPDATE SET owner_id = 21"
        ),
        Outcome::RlsViolation
    );
    // 2101 belongs to teammate 21: visible, but not updatable by the rep.
    assert_eq!(
        try_rolled_back(
            &mut rep,
            "INSERT INTO crm.accounts (id, owner_id, name) VALUES (2101, 20, 'x') \
             ON CONFLICT (id) DO UPDATE SET owner_id = 20"
        ),
        Outcome::RlsViolation
    );
}

fn copy_out(client: &mut postgres::Client, sql: &str) -> Result<String, Outcome> {
    use std::io::Read;
    let mut out = String::new();
    match client.copy_out(sql) {
        Ok(mut reader) => {
            reader.read_to_string(&mut out).expect("read COPY data");
            Ok(out)
        }
        Err(e) => Err(rowsec_e2e::fixture::classify(Err(e))),
    }
}

#[test]
fn copy_to_sees_only_the_rows_and_columns_a_query_would() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 20);
    let visible = rowsec_e2e::fixture::keys(&mut rep, "SELECT id FROM crm.accounts").unwrap();
    let copied: std::collections::BTreeSet<i64> =
        copy_out(&mut rep, "COPY crm.accounts (id) TO STDOUT").unwrap().lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(copied, visible);
    assert!(copied.len() < 43, "a rep sees their team, not the whole table");

    // Support lacks the financial class: COPY of the table, or of a classed column, is refused.
    let mut support = env.login(&db, 50);
    assert_eq!(copy_out(&mut support, "COPY crm.accounts TO STDOUT"), Err(Outcome::PermissionDenied));
    assert_eq!(copy_out(&mut support, "COPY crm.accounts (annual_revenue) TO STDOUT"), Err(Outcome::PermissionDenied));
}

#[test]
fn copy_from_cannot_bypass_the_insert_policy() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 20);
    // PostgreSQL refuses COPY FROM into a table with row-level security for non-bypassing roles.
    let mut tx = rep.transaction().unwrap();
    let err = match tx.copy_in("COPY crm.accounts (id, owner_id, name) FROM STDIN") {
        Ok(_) => panic!("COPY FROM must be refused"),
        Err(e) => rowsec_e2e::fixture::db_error(&e),
    };
    let _ = tx.rollback();
    assert!(err.starts_with("0A000"), "{err}");
}

#[test]
fn a_cheap_leaky_function_in_where_sees_only_rows_the_policies_let_through() {
    let env = env();
    let db = env.crm_db();
    let mut rep = env.login(&db, 20);
    // The function records every owner it is shown; PostgreSQL must apply the policies first
    // (security barrier), however cheap the function claims to be.
    rep.batch_execute(
        "CREATE TEMP TABLE seen (owner bigint);
         CREATE FUNCTION pg_temp.leak(o bigint) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS
         $$ BEGIN INSERT INTO pg_temp.seen VALUES (o); RETURN true; END $$;",
    )
    .unwrap();
    rep.batch_execute("SELECT count(*) FROM crm.accounts WHERE pg_temp.leak(owner_id)").unwrap();
    let seen = rowsec_e2e::fixture::keys(&mut rep, "SELECT DISTINCT owner FROM seen").unwrap();
    let visible = rowsec_e2e::fixture::keys(&mut rep, "SELECT DISTINCT owner_id FROM crm.accounts").unwrap();
    assert!(!seen.is_empty());
    assert!(seen.is_subset(&visible), "leaked owners outside the policy: {:?}", seen.difference(&visible));
}

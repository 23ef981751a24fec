//! Security probes: things a person might try to get around the policies. All must fail.

use rowsec_e2e::fixture::{env, try_rolled_back};
use rowsec_e2e::oracle::Outcome;

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

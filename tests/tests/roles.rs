//! What the script does to roles and what it says when it is done (issue 8, points 1 and 10):
//! a role rowsec did not create is refused unless the spec adopts it, an adopted role is given
//! back as it was, a spec role with members is not dropped without `--drop-roles-with-members`
//! (which names each membership it ends), the script ends with a summary of what it changed,
//! psql prints a screenful rather than an echo of every statement, and the lock timeout is the
//! compile option's. Roles are cluster-wide, so every test here starts its own cluster.

use std::process::Command;

use postgres::Client;
use rowsec_e2e::cluster::{pg_bin, Cluster, Notices};
use rowsec_e2e::fixture::{db_error, schema_path};
use rowsec_generator::{compile_with, load_str, LockTimeout, Options, Schema};

/// A spec over crm.accounts with the given `roles:` section (indented two spaces).
fn spec(roles: &str) -> String {
    format!(
        "version: 1
directory: {{ table: crm.app_users, id: id, manager: manager_id, team: team_id, login: db_login, active: active }}
identity: login
tables:
  crm.accounts: {{ key: id, owner: owner_id }}
roles:
{roles}"
    )
}

fn script(spec: &str, options: &Options) -> String {
    let schema = Schema::parse(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
    let loaded = load_str("roles.yaml", spec, Some(schema)).unwrap_or_else(|e| panic!("{e}"));
    // On the backend under test (ROWSEC_BACKEND).
    let fixture = rowsec_e2e::fixture::options();
    compile_with(
        &loaded,
        &Options { backend: fixture.backend, accept_unenforced: fixture.accept_unenforced, ..options.clone() },
    )
}

/// A cluster with one database holding the CRM schema, and a superuser connection to it that
/// keeps notices.
fn database() -> (Cluster, String, Client, Notices) {
    let cluster = Cluster::start();
    let db = cluster.create_database("roles", None);
    let (mut admin, notices) = cluster.connect_collecting_notices("postgres", &db).unwrap();
    admin.batch_execute(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
    (cluster, db, admin, notices)
}

/// Applies a script and returns rowsec's notices (not PostgreSQL's own, such as "extension
/// already exists, skipping").
fn apply(admin: &mut Client, notices: &Notices, sql: &str) -> Result<Vec<String>, postgres::Error> {
    notices.lock().unwrap().clear();
    if let Err(e) = admin.batch_execute(sql) {
        // The script's BEGIN leaves the session in the failed transaction (psql would exit).
        admin.batch_execute("ROLLBACK").unwrap();
        return Err(e);
    }
    let said: Vec<String> = notices.lock().unwrap().drain(..).map(|n| n.message().to_owned()).collect();
    Ok(said.into_iter().filter(|m| m.starts_with("rowsec:")).collect())
}

fn role_comment(admin: &mut Client, role: &str) -> Option<String> {
    admin
        .query_one("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1", &[&role])
        .unwrap()
        .get(0)
}

fn is_member(admin: &mut Client, role: &str, member: &str) -> bool {
    admin
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_auth_members WHERE roleid = to_regrole($1) AND member = to_regrole($2))",
            &[&role, &member],
        )
        .unwrap()
        .get(0)
}

fn role_exists(admin: &mut Client, role: &str) -> bool {
    admin.query_one("SELECT to_regrole($1) IS NOT NULL", &[&role]).unwrap().get(0)
}

#[test]
fn a_role_rowsec_did_not_create_is_refused_adopted_only_on_request_and_given_back_as_it_was() {
    let (_cluster, _db, mut admin, notices) = database();
    admin
        .batch_execute(
            "CREATE ROLE analytics NOLOGIN; COMMENT ON ROLE analytics IS 'BI team, owned by data engineering';
             CREATE ROLE bi_user LOGIN; GRANT analytics TO bi_user;",
        )
        .unwrap();

    // Named by the spec without `adopt`: refused, naming the role, what it has, and the fix.
    let plain = spec("  analytics: { tables: { crm.accounts: { select: all } } }\n");
    let e = apply(&mut admin, &notices, &script(&plain, &Options::default())).unwrap_err();
    let d = e.as_db_error().unwrap_or_else(|| panic!("{e}"));
    assert_eq!(d.code().code(), "42710", "{}", db_error(&e));
    assert_eq!(d.message(), "role \"analytics\" already exists and was not created by rowsec");
    assert_eq!(
        d.detail(),
        Some(
            "Its comment is 'BI team, owned by data engineering'; its members are bi_user. \
             rowsec does not take over a role it did not create."
        )
    );
    assert!(d.hint().unwrap().contains("add `adopt: true` under roles.analytics"), "{:?}", d.hint());
    // Nothing was applied: the script is one transaction.
    assert_eq!(role_comment(&mut admin, "analytics").as_deref(), Some("BI team, owned by data engineering"));
    let extension: i64 =
        admin.query_one("SELECT count(*) FROM pg_extension WHERE extname = 'rowsec'", &[]).unwrap().get(0);
    assert_eq!(extension, 0);

    // Adopted on request: rowsec's mark, with the earlier comment kept in it; members stay.
    let adopted = spec("  analytics: { adopt: true, tables: { crm.accounts: { select: all } } }\n");
    let said = apply(&mut admin, &notices, &script(&adopted, &Options::default())).unwrap();
    assert!(
        said.iter().any(|n| n.starts_with(
            "rowsec: existing role analytics adopted (adopt: true); its comment 'BI team, owned by data engineering' is kept"
        )),
        "{said:?}"
    );
    assert_eq!(
        role_comment(&mut admin, "analytics").as_deref(),
        Some("rowsec: group role of spec role analytics, adopted; comment before: BI team, owned by data engineering")
    );
    assert!(is_member(&mut admin, "analytics", "bi_user"));
    let has_select: bool =
        admin.query_one("SELECT has_table_privilege('analytics', 'crm.accounts', 'SELECT')", &[]).unwrap().get(0);
    assert!(has_select);

    // Applying again neither adopts again nor changes anything.
    let said = apply(&mut admin, &notices, &script(&adopted, &Options::default())).unwrap();
    assert!(said.iter().all(|n| !n.contains("adopted")), "{said:?}");
    assert!(said.last().unwrap().contains("applied: nothing changed"), "{said:?}");

    // The spec drops it: given back, comment restored, members kept, rowsec's privileges gone.
    let other = spec("  someone_else: { tables: { crm.accounts: { select: own } } }\n");
    let said = apply(&mut admin, &notices, &script(&other, &Options::default())).unwrap();
    assert!(
        said.iter().any(|n| n
            == "rowsec: role analytics (adopted) is no longer in the spec: given back with its earlier comment, not dropped"),
        "{said:?}"
    );
    assert!(role_exists(&mut admin, "analytics"));
    assert_eq!(role_comment(&mut admin, "analytics").as_deref(), Some("BI team, owned by data engineering"));
    assert!(is_member(&mut admin, "analytics", "bi_user"));
    let has_select: bool =
        admin.query_one("SELECT has_table_privilege('analytics', 'crm.accounts', 'SELECT')", &[]).unwrap().get(0);
    assert!(!has_select);
}

#[test]
fn an_adopted_role_without_a_comment_is_given_back_without_one() {
    let (_cluster, _db, mut admin, notices) = database();
    admin.batch_execute("CREATE ROLE reporting NOLOGIN").unwrap();
    let adopted = spec("  reporting: { adopt: true, tables: { crm.accounts: { select: all } } }\n");
    apply(&mut admin, &notices, &script(&adopted, &Options::default())).unwrap();
    assert_eq!(
        role_comment(&mut admin, "reporting").as_deref(),
        Some("rowsec: group role of spec role reporting, adopted; no comment before")
    );
    let other = spec("  someone_else: { tables: { crm.accounts: { select: own } } }\n");
    apply(&mut admin, &notices, &script(&other, &Options::default())).unwrap();
    assert!(role_exists(&mut admin, "reporting"));
    assert_eq!(role_comment(&mut admin, "reporting"), None);
}

#[test]
fn a_spec_role_with_members_is_kept_unless_dropping_it_is_asked_for_and_then_each_membership_is_named() {
    let (_cluster, _db, mut admin, notices) = database();
    let with_support = spec(
        "  support: { tables: { crm.accounts: { select: team } } }\n  sales_rep: { tables: { crm.accounts: { select: own } } }\n",
    );
    apply(&mut admin, &notices, &script(&with_support, &Options::default())).unwrap();
    admin
        .batch_execute("CREATE ROLE dave LOGIN; GRANT support TO dave; CREATE ROLE erin LOGIN; GRANT support TO erin")
        .unwrap();

    // The spec drops `support`: kept, because logins are members; the script says so.
    let without = spec("  sales_rep: { tables: { crm.accounts: { select: own } } }\n");
    let said = apply(&mut admin, &notices, &script(&without, &Options::default())).unwrap();
    assert!(
        said.iter().any(|n| n
            == "rowsec: role support is no longer in the spec but has members (dave, erin): it is kept, without privileges on protected tables"),
        "{said:?}"
    );
    assert!(role_exists(&mut admin, "support"));
    assert!(is_member(&mut admin, "support", "dave"));
    let has_select: bool =
        admin.query_one("SELECT has_table_privilege('support', 'crm.accounts', 'SELECT')", &[]).unwrap().get(0);
    assert!(!has_select, "a kept role keeps no privilege on a protected table");

    // Asked for: dropped, and every membership it ends is named (and in the summary).
    let options = Options { drop_roles_with_members: true, ..Options::default() };
    let said = apply(&mut admin, &notices, &script(&without, &options)).unwrap();
    assert!(
        said.iter()
            .any(|n| n == "rowsec: role support is dropped (--drop-roles-with-members); memberships ended: dave, erin"),
        "{said:?}"
    );
    assert!(said.iter().any(|n| n == "rowsec: membership ended: support <- dave"), "{said:?}");
    assert!(said.iter().any(|n| n == "rowsec: membership ended: support <- erin"), "{said:?}");
    assert!(said.last().unwrap().contains("roles: 1 removed; memberships: 2 ended"), "{said:?}");
    assert!(!role_exists(&mut admin, "support"));
    assert!(role_exists(&mut admin, "dave"));
}

#[test]
fn the_script_ends_with_a_summary_of_what_it_created_changed_and_removed() {
    let (_cluster, _db, mut admin, notices) = database();
    let first = spec("  viewer: { tables: { crm.accounts: { select: own } } }\n");
    let sha = |s: &str| load_str("x.yaml", s, None).unwrap().sha256[..12].to_owned();

    // First apply: a role, a table, the select policy, SELECT on the table and USAGE on crm.
    let said = apply(&mut admin, &notices, &script(&first, &Options::default())).unwrap();
    assert_eq!(
        said,
        [format!(
            "rowsec: spec {} applied: roles: 1 created; tables: 1 protected; policies: 1 created; privileges: 2 granted",
            sha(&first)
        )]
    );

    // Again: nothing.
    let said = apply(&mut admin, &notices, &script(&first, &Options::default())).unwrap();
    assert_eq!(
        said,
        [format!(
            "rowsec: spec {} applied: nothing changed (roles 1, memberships 0, tables 1, policies 1, privileges 2)",
            sha(&first)
        )]
    );

    // A wider select scope is another condition, so another policy (policies are named after
    // their condition: rowsec_select_own goes, rowsec_select_team comes); an update grant adds a
    // policy and a privilege.
    let second = spec("  viewer: { tables: { crm.accounts: { select: team, update: own } } }\n");
    let said = apply(&mut admin, &notices, &script(&second, &Options::default())).unwrap();
    assert_eq!(
        said,
        [format!("rowsec: spec {} applied: policies: 2 created, 1 removed; privileges: 1 granted", sha(&second))]
    );

    // A membership granted outside rowsec is not the script's change, but is counted as there.
    admin.batch_execute("CREATE ROLE frank LOGIN; GRANT viewer TO frank").unwrap();
    let said = apply(&mut admin, &notices, &script(&second, &Options::default())).unwrap();
    assert!(
        said[0].ends_with("nothing changed (roles 1, memberships 1, tables 1, policies 2, privileges 3)"),
        "{said:?}"
    );
}

/// psql is how most people apply the script: it shows a screenful, not every statement.
#[test]
fn psql_prints_a_summary_instead_of_an_echo_of_every_statement() {
    let (cluster, db, _admin, _notices) = database();
    let crm = std::fs::read_to_string(rowsec_e2e::fixture::crm_spec_path()).unwrap();
    let file = cluster.dir.join("crm.sql");
    std::fs::write(&file, script(&crm, &Options::default())).unwrap();
    let out = Command::new(format!("{}/psql", pg_bin()))
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(cluster.port.to_string())
        .args(["-d", &db, "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines = stdout.lines().count() + stderr.lines().count();
    assert!(lines <= 25, "psql printed {lines} lines:\n{stdout}\n{stderr}");
    assert!(
        stderr.contains("applied: roles: 8 created; tables: 5 protected; policies: 56 created; privileges:"),
        "{stderr}"
    );
    assert!(!stdout.contains("CREATE POLICY") && !stdout.contains("(1 row)"), "{stdout}");
}

#[test]
fn the_lock_timeout_is_the_compile_options() {
    let (cluster, db, mut admin, notices) = database();
    let s = spec("  viewer: { tables: { crm.accounts: { select: own } } }\n");
    // Somebody holds a lock on the table that policy DDL must wait for.
    let mut other = cluster.admin(&db);
    other.batch_execute("BEGIN; LOCK TABLE crm.accounts IN ACCESS SHARE MODE").unwrap();
    let options = Options { lock_timeout: "200ms".parse::<LockTimeout>().unwrap(), ..Options::default() };
    let sql = script(&s, &options);
    assert!(sql.contains("SET LOCAL lock_timeout = '200ms';"));
    let e = apply(&mut admin, &notices, &sql).unwrap_err();
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("55P03"), "{}", db_error(&e));
    other.batch_execute("ROLLBACK").unwrap();
    apply(&mut admin, &notices, &sql).unwrap();
}

//! Issue 15: the SQL backend installed as a pg_tle trusted-language extension
//! (`rowsec compile --backend sql --pg-tle`), as managed services that offer pg_tle let a
//! database owner who is not a superuser do it: pg_tle 1.5.2 is built into the private
//! PostgreSQL 15 by vendor/pg_tle/build.sh (tests/run.sh does it) and preloaded; the superuser
//! creates the pg_tle extension and grants `pgtle_admin`, as the services do. Where pg_tle is
//! not installed the test says so and skips, unless `ROWSEC_REQUIRE_PG_TLE=1` (tests/run.sh).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use postgres::Client;
use rowsec_e2e::cluster::{pg_bin, Cluster};
use rowsec_e2e::fixture::{
    create_logins, crm_spec_path, db_error, env, keys, load, load_directory_and_rows, schema_path,
};
use rowsec_generator::{Backend, Options};

const NAME: &str = "rowsec_sql";

fn pg_tle_available() -> bool {
    let out = Command::new(format!("{}/pg_config", pg_bin())).arg("--pkglibdir").output().expect("pg_config");
    let so = Path::new(String::from_utf8_lossy(&out.stdout).trim()).join("pg_tle.so");
    if so.exists() {
        return true;
    }
    let msg = format!(
        "PG_TLE NOT INSTALLED: {} is missing, so the pg_tle test did not run. Build it with \
         `PG_CONFIG=$ROWSEC_PG_BIN/pg_config bash vendor/pg_tle/build.sh` (tests/run.sh does).",
        so.display()
    );
    assert!(std::env::var("ROWSEC_REQUIRE_PG_TLE").as_deref() != Ok("1"), "{msg}");
    println!("{msg}");
    false
}

fn tle_script() -> String {
    let options = Options { backend: Backend::Sql, accept_unenforced: true, pg_tle: true, ..Options::default() };
    rowsec_generator::compile_with(&load(&crm_spec_path()), &options)
}

fn apply(c: &mut Client, script: &str) {
    c.batch_execute(script).unwrap_or_else(|e| panic!("the --pg-tle script applies: {}", db_error(&e)));
}

/// A database owned by `owner` (CREATEROLE, not a superuser) with pg_tle created in it and
/// `pgtle_admin` granted, as a managed service sets it up; the CRM schema loaded by the owner.
fn managed_database(cluster: &Cluster, owner: &str) -> String {
    let mut root = cluster.admin("postgres");
    root.batch_execute(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{owner}') THEN \
         CREATE ROLE {owner} LOGIN CREATEROLE; END IF; END $$;"
    ))
    .unwrap();
    let db = cluster.create_database("tle", None);
    root.batch_execute(&format!("ALTER DATABASE {db} OWNER TO {owner}")).unwrap();
    cluster.admin(&db).batch_execute(&format!("CREATE EXTENSION pg_tle; GRANT pgtle_admin TO {owner};")).unwrap();
    let mut dba = cluster.connect(owner, &db).unwrap();
    dba.batch_execute(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
    db
}

fn installed_version(c: &mut Client) -> Option<String> {
    c.query_opt("SELECT extversion FROM pg_extension WHERE extname = $1", &[&NAME]).unwrap().map(|r| r.get(0))
}

/// One person's view of one table: the keys, or how the statement failed.
type Seen = (i64, &'static str, Result<BTreeSet<i64>, rowsec_generator::oracle::Outcome>);

/// What each of these people sees of every protected table, on `db` of `cluster`.
fn visible(cluster: &Cluster, db: &str, people: &[i64]) -> Vec<Seen> {
    let mut out = Vec::new();
    for &id in people {
        let mut c = cluster.connect(&rowsec_e2e::fixture::login_of(id), db).unwrap();
        for t in rowsec_e2e::fixture::TABLES {
            out.push((id, t, keys(&mut c, &format!("SELECT id FROM crm.{t}"))));
        }
    }
    out
}

#[test]
fn a_database_owner_installs_the_sql_backend_with_pg_tle_and_it_sees_what_the_plain_install_sees() {
    if !pg_tle_available() {
        return;
    }
    let cluster = Cluster::start_with("-c shared_preload_libraries=pg_tle");
    let script = tle_script();
    let db = managed_database(&cluster, "tle_owner");
    let mut dba = cluster.connect("tle_owner", &db).unwrap();
    let superuser: bool =
        dba.query_one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", &[]).unwrap().get(0);
    assert!(!superuser);
    apply(&mut dba, &script);

    // Installed as an extension of the build's version (the release and the body's hash), its
    // objects members of it.
    let version = installed_version(&mut dba).expect("rowsec_sql is installed");
    assert!(version.starts_with(env!("CARGO_PKG_VERSION")) && version.len() > env!("CARGO_PKG_VERSION").len() + 1);
    let member: bool = dba
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid \
             WHERE e.extname = $1 AND d.deptype = 'e' AND d.classid = 'pg_class'::regclass \
             AND d.objid = 'rowsec.closure'::regclass)",
            &[&NAME],
        )
        .unwrap()
        .get(0);
    assert!(member, "rowsec.closure belongs to the extension");

    // People, rows and logins as the fixture has them; each sees what they see on a database the
    // plain SQL-backend script set up (itself checked against SPEC's oracle by the other suites).
    let mut root = cluster.admin(&db);
    create_logins(&mut root);
    load_directory_and_rows(&mut root);
    let people = [1, 3, 10, 20, 33, 50, 60, 62];
    let plain = {
        let env = env();
        let plain_db = env.cluster.create_database("tle_plain", None);
        let mut admin = env.cluster.admin(&plain_db);
        admin.batch_execute(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
        let options = Options { backend: Backend::Sql, accept_unenforced: true, ..Options::default() };
        apply(&mut admin, &rowsec_generator::compile_with(&load(&crm_spec_path()), &options));
        create_logins(&mut admin);
        load_directory_and_rows(&mut admin);
        visible(&env.cluster, &plain_db, &people)
    };
    assert_eq!(visible(&cluster, &db, &people), plain);

    // Applied again: nothing to install, nothing changed.
    let policies = |c: &mut Client| -> i64 {
        c.query_one("SELECT count(*) FROM pg_policies WHERE schemaname = 'crm'", &[]).unwrap().get(0)
    };
    let before = policies(&mut dba);
    apply(&mut dba, &script);
    assert_eq!(policies(&mut dba), before);
    assert_eq!(installed_version(&mut dba).as_deref(), Some(version.as_str()));
    let versions: i64 = dba
        .query_one("SELECT count(*) FROM pgtle.available_extension_versions() WHERE name = $1", &[&NAME])
        .unwrap()
        .get(0);
    assert_eq!(versions, 1);

    // Uninstalled: the tables' policies call its functions, so DROP EXTENSION needs CASCADE,
    // which takes the policies with it while the tables stay FORCE ROW LEVEL SECURITY: everyone
    // sees nothing, never everything. The script installs it again as it was.
    let e = dba.batch_execute(&format!("DROP EXTENSION {NAME}")).expect_err("the policies depend on it");
    assert_eq!(e.code(), Some(&postgres::error::SqlState::DEPENDENT_OBJECTS_STILL_EXIST), "{e:?}");
    dba.batch_execute(&format!("DROP EXTENSION {NAME} CASCADE; SELECT pgtle.uninstall_extension('{NAME}');")).unwrap();
    let schema_left: bool = dba.query_one("SELECT to_regnamespace('rowsec') IS NOT NULL", &[]).unwrap().get(0);
    assert!(!schema_left, "the schema went with the extension");
    // (A table a role may not select stays refused, 42501, as before.)
    let nothing: Vec<Seen> =
        plain.iter().map(|(id, t, seen)| (*id, *t, seen.clone().map(|_| BTreeSet::new()))).collect();
    assert!(nothing.iter().filter(|s| s.2.is_ok()).count() > 30);
    assert_eq!(visible(&cluster, &db, &people), nothing, "without rowsec, nobody sees a row");
    apply(&mut dba, &script);
    assert_eq!(visible(&cluster, &db, &people), plain, "installed again, as before");
}

/// A database where an older rowsec_sql is installed (here a stand-in that only made the
/// schema) is brought to this build's version by an update path the script installs.
#[test]
fn the_script_updates_an_older_pg_tle_install_to_its_own_version() {
    if !pg_tle_available() {
        return;
    }
    let cluster = Cluster::start_with("-c shared_preload_libraries=pg_tle");
    let db = managed_database(&cluster, "tle_owner2");
    let mut dba = cluster.connect("tle_owner2", &db).unwrap();
    dba.batch_execute(&format!(
        "SELECT pgtle.install_extension('{NAME}', '0.0.1-old', 'an older rowsec', 'CREATE SCHEMA rowsec;'); \
         CREATE EXTENSION {NAME};"
    ))
    .unwrap();
    assert_eq!(installed_version(&mut dba).as_deref(), Some("0.0.1-old"));
    apply(&mut dba, &tle_script());
    let version = installed_version(&mut dba).unwrap();
    assert!(version.starts_with(env!("CARGO_PKG_VERSION")), "{version}");
    let mut root = cluster.admin(&db);
    create_logins(&mut root);
    load_directory_and_rows(&mut root);
    // A rep sees their team's accounts: the updated extension's functions and tables work.
    let mut rep = cluster.connect(&rowsec_e2e::fixture::login_of(20), &db).unwrap();
    let seen = keys(&mut rep, "SELECT id FROM crm.accounts").unwrap();
    assert!(seen.contains(&2001) && !seen.contains(&2301), "{seen:?}");
}

//! `rowsec doctor` on a cluster of its own (it changes server settings and pg_hba.conf): set up
//! cleanly it scores 100 with no finding; with one misconfiguration per check, every check
//! fires exactly once.

mod common;

use common::rowsec;
use rowsec_e2e::fixture::{backend, env};
use rowsec_generator::Backend;

const PASSWORD: &str = "doctor-secret";

fn url(db: &str, sslmode: &str) -> String {
    format!("postgresql://postgres:{PASSWORD}@127.0.0.1:{}/{db}?sslmode={sslmode}", env().cluster.port)
}

fn admin(db: &str) -> postgres::Client {
    postgres::Config::new()
        .host("127.0.0.1")
        .port(env().cluster.port)
        .user("postgres")
        .password(PASSWORD)
        .dbname(db)
        .connect(postgres::NoTls)
        .unwrap()
}

/// examples/crm.yaml with a references rule for every foreign key between its tables.
const SPEC: &str = "tests/fixtures/crm-doctor.yaml";

fn doctor(db: &str, sslmode: &str) -> (i32, serde_json::Value) {
    doctor_with(SPEC, db, sslmode)
}

fn doctor_with(spec: &str, db: &str, sslmode: &str) -> (i32, serde_json::Value) {
    let out = rowsec().args(["doctor", spec, "--db", &url(db, sslmode), "--format", "json"]).output().unwrap();
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report)
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect()
}

/// The finding of `check`, if it fired.
fn finding<'a>(report: &'a serde_json::Value, check: &str) -> Option<&'a serde_json::Value> {
    report["findings"].as_array().unwrap().iter().find(|f| f["check"] == check)
}

#[test]
fn a_clean_cluster_scores_100_and_one_misconfiguration_per_check_fires_each_check_once() {
    let env = env();
    let db = env.database_for(&rowsec_e2e::cluster::repo_root().join(SPEC));
    // The identity checks need databases under setting identity: made now, while the fixture's
    // own connections (trust over the socket) still get in.
    // Signed identity needs the extension (the SQL backend refuses it).
    let signed_db = (backend() == Backend::Extension)
        .then(|| env.database_for(&rowsec_e2e::cluster::repo_root().join("tests/fixtures/crm-signed.yaml")));
    let setting_db = env.database_for(&rowsec_e2e::fixture::setting_spec_path());
    let cluster = &env.cluster;
    // A clean cluster offers SSL. A server built without it (the PostgreSQL 18 wheel the tests
    // use) cannot: there the clean cluster has exactly the one finding ssl-off, and everything
    // after it runs the same.
    let ssl_library: String =
        cluster.admin(&db).query_one("SELECT current_setting('ssl_library')", &[]).unwrap().get(0);
    let has_ssl = !ssl_library.is_empty();
    if !has_ssl {
        eprintln!("this PostgreSQL is built without SSL: the clean cluster is expected to find ssl-off only");
    }
    // Clean: SSL with a throwaway certificate, archiving on, SCRAM passwords that expire,
    // no login for inactive people or people without a role, only SCRAM from loopback.
    if has_ssl {
        cluster.as_owner(
            "cd data && openssl req -new -x509 -days 2 -nodes -subj /CN=localhost -keyout server.key -out server.crt \
             2>/dev/null && chmod 600 server.key",
        );
    }
    let mut setup = cluster.admin(&db);
    // ALTER SYSTEM refuses to run in a transaction block: one statement per call.
    let ssl_on = if has_ssl { "ALTER SYSTEM SET ssl = on" } else { "ALTER SYSTEM RESET ssl" };
    for s in [ssl_on, "ALTER SYSTEM SET archive_mode = on", "ALTER SYSTEM SET archive_command = 'true'"] {
        setup.batch_execute(s).unwrap();
    }
    setup
        .batch_execute(&format!(
            "ALTER ROLE postgres PASSWORD '{PASSWORD}';
             DO $$ DECLARE r record; BEGIN
               FOR r IN SELECT rolname FROM pg_roles WHERE rolcanlogin AND rolname LIKE 'rs\\_p%' LOOP
                 EXECUTE format('ALTER ROLE %I PASSWORD %L VALID UNTIL %L', r.rolname, 'pw', '2100-01-01');
               END LOOP; END $$;
             ALTER ROLE rs_p60 NOLOGIN; ALTER ROLE rs_p61 NOLOGIN; ALTER ROLE rs_p64 NOLOGIN; ALTER ROLE rs_p70 NOLOGIN;"
        ))
        .unwrap();
    drop(setup);
    let loopback = if has_ssl { "hostssl" } else { "host" };
    cluster.as_owner(&format!("echo '{loopback} all all 127.0.0.1/32 scram-sha-256' > data/pg_hba.conf"));
    cluster.restart();

    let (code, report) = if has_ssl {
        // Only TLS gets in now: rowsec connects with it (sslmode=require), and is refused without.
        rowsec()
            .args(["doctor", "--db", &url(&db, "disable")])
            .assert()
            .code(2)
            .stderr(predicates::str::contains("no encryption"));
        doctor(&db, "require")
    } else {
        doctor(&db, "disable")
    };
    if has_ssl {
        assert_eq!(report["findings"], serde_json::json!([]), "a clean cluster has findings");
        assert_eq!((code, report["score"].as_u64()), (0, Some(100)));
    } else {
        let fired: Vec<&str> =
            report["findings"].as_array().unwrap().iter().map(|f| f["check"].as_str().unwrap()).collect();
        assert_eq!(fired, ["ssl-off"], "a clean cluster without SSL:\n{report:#}");
    }
    let checks = strings(&report["checks_run"]);
    // The SQL backend adds the checks of its copy of the directory and of its shares' row owners.
    let sql_backend = backend() == Backend::Sql;
    assert_eq!(checks.len(), 28 + 2 * usize::from(sql_backend), "{checks:?}");

    // One misconfiguration per check.
    cluster.as_owner(
        "printf '%s\\n' 'host all all 10.0.0.0/8 trust' 'host all all 192.168.0.0/16 md5' \
         'host all all 0.0.0.0/0 scram-sha-256' >> data/pg_hba.conf",
    );
    cluster.restart();
    let mut a = admin(&db);
    for s in [
        "ALTER SYSTEM SET password_encryption = 'md5'",
        "ALTER SYSTEM SET ssl = off",
        "ALTER SYSTEM SET archive_mode = off",
    ] {
        a.batch_execute(s).unwrap();
    }
    a.batch_execute(
        "SET password_encryption = 'md5'; CREATE ROLE dr_md5 LOGIN PASSWORD 'x' VALID UNTIL '2100-01-01';
         SET password_encryption = 'scram-sha-256';
         CREATE ROLE dr_nopw LOGIN;
         CREATE ROLE dr_noexpiry LOGIN PASSWORD 'x';
         CREATE ROLE dr_super SUPERUSER LOGIN PASSWORD 'x' VALID UNTIL '2100-01-01';
         CREATE ROLE dr_bypass BYPASSRLS LOGIN PASSWORD 'x' VALID UNTIL '2100-01-01';
         CREATE TABLE public.notes (id int, owner_id bigint);
         CREATE TABLE public.halfway (id int); ALTER TABLE public.halfway ENABLE ROW LEVEL SECURITY;
         CREATE POLICY positive ON public.halfway USING (id > 0);
         CREATE TABLE public.locked (id int); ALTER TABLE public.locked ENABLE ROW LEVEL SECURITY;
         ALTER TABLE public.locked FORCE ROW LEVEL SECURITY;
         CREATE TABLE public.open_to_all (id int); ALTER TABLE public.open_to_all ENABLE ROW LEVEL SECURITY;
         ALTER TABLE public.open_to_all FORCE ROW LEVEL SECURITY; CREATE POLICY everyone ON public.open_to_all USING (true);
         CREATE FUNCTION public.definer() RETURNS int SECURITY DEFINER LANGUAGE sql AS 'SELECT 1';
         CREATE SCHEMA scratch; GRANT CREATE ON SCHEMA scratch TO PUBLIC;
         ALTER ROLE rs_p60 LOGIN;
         ALTER ROLE rs_p70 LOGIN;
         CREATE ROLE dr_ghost LOGIN PASSWORD 'x' VALID UNTIL '2100-01-01'; GRANT sales_rep TO dr_ghost;
         INSERT INTO rowsec.shares (tbl, row_key, grantee_person, access, expires_at, granted_by)
           VALUES ('crm.accounts', 2001, 21, 'read', now() - interval '1 day', 20);
         CREATE FUNCTION public.peek(bigint) RETURNS boolean LEAKPROOF LANGUAGE sql AS 'SELECT true';
         CREATE VIEW public.every_account AS SELECT id, name FROM crm.accounts;
         CREATE VIEW public.every_account_invoker WITH (security_invoker = true) AS SELECT id, name FROM crm.accounts;
         CREATE FUNCTION public.account_count() RETURNS bigint SECURITY DEFINER SET search_path = pg_catalog, pg_temp
           LANGUAGE sql AS 'SELECT count(*) FROM crm.accounts';
         ALTER ROLE rs_p64 BYPASSRLS;
         ALTER TABLE crm.activities ADD COLUMN account_id bigint REFERENCES crm.accounts (id);
         CREATE UNIQUE INDEX accounts_name_key ON crm.accounts (name);",
    )
    .unwrap();
    // A directory trigger disabled; on the SQL backend a change made meanwhile leaves its copy
    // of the directory behind (person 31's team).
    let trigger = if sql_backend { "rowsec_directory_update" } else { "rowsec_directory_changed" };
    a.batch_execute(&format!(
        "ALTER TABLE crm.app_users DISABLE TRIGGER {trigger}; UPDATE crm.app_users SET team_id = 200 WHERE id = 31;"
    ))
    .unwrap();
    if sql_backend {
        a.batch_execute("ALTER TABLE crm.accounts DISABLE TRIGGER rowsec_shared_rows_gone").unwrap();
    }
    drop(a);
    cluster.restart();
    let (code, report) = doctor(&db, "prefer");
    assert_eq!(code, 1);
    let mut fired: Vec<String> =
        report["findings"].as_array().unwrap().iter().map(|f| f["check"].as_str().unwrap().to_owned()).collect();
    fired.sort();
    let mut all = checks.clone();
    all.sort();
    assert_eq!(fired, all, "each check fires exactly once:\n{report:#}");
    for f in report["findings"].as_array().unwrap() {
        assert_eq!(f["objects"].as_array().unwrap().len(), 1, "one object per check: {f:#}");
    }
    assert!(report["score"].as_u64().unwrap() < 100);
    // Each new check names the object it was given (and only it: the security_invoker view
    // and the pinned, table-free definer function above are not findings).
    for (check, object) in [
        ("leakproof-functions", "peek(bigint)"),
        ("views-over-protected-tables", "every_account (owner postgres, superuser) reads crm.accounts"),
        ("definer-functions-over-protected-tables", "account_count() (owner postgres, superuser) names crm.accounts"),
        ("bypassing-members", "rs_p64 (BYPASSRLS, member of marketer)"),
        ("unguarded-foreign-keys", "crm.activities (account_id) -> crm.accounts"),
        ("natural-unique-keys", "CREATE UNIQUE INDEX accounts_name_key ON crm.accounts USING btree (name)"),
        ("directory-triggers-not-firing", &format!("{trigger} on crm.app_users (disabled)")),
    ] {
        let objects = strings(&finding(&report, check).unwrap()["objects"]);
        assert_eq!(objects, [object], "{check}");
    }
    if sql_backend {
        let objects = strings(&finding(&report, "directory-copy-out-of-date").unwrap()["objects"]);
        assert_eq!(
            objects,
            ["rowsec.people differs from crm.app_users for 1 people (31), rowsec.closure from the subtrees rowsec.people gives in 0 pairs"]
        );
        // The fix the finding names: the trigger on again, the copy rebuilt.
        admin(&db)
            .batch_execute(&format!(
                "ALTER TABLE crm.app_users ENABLE TRIGGER {trigger}; SELECT rowsec.directory_rebuild();"
            ))
            .unwrap();
        let (_, report) = doctor(&db, "prefer");
        for check in ["directory-copy-out-of-date", "directory-triggers-not-firing"] {
            assert!(finding(&report, check).is_none(), "{check} after the fix:\n{report:#}");
        }
        // The triggers that keep a share's row owner: the one disabled above, and one dropped.
        assert_eq!(
            strings(&finding(&report, "shared-row-triggers-not-firing").unwrap()["objects"]),
            ["crm.accounts: rowsec_shared_rows_gone is disabled"]
        );
        admin(&db).batch_execute("DROP TRIGGER rowsec_shared_row_moved ON crm.contacts").unwrap();
        let (_, report) = doctor(&db, "prefer");
        assert_eq!(
            strings(&finding(&report, "shared-row-triggers-not-firing").unwrap()["objects"]),
            ["crm.accounts: rowsec_shared_rows_gone is disabled", "crm.contacts: rowsec_shared_row_moved is missing"]
        );
        admin(&db)
            .batch_execute(
                "ALTER TABLE crm.accounts ENABLE TRIGGER rowsec_shared_rows_gone; \
                 SELECT rowsec.follow_shared_rows('crm.contacts')",
            )
            .unwrap();
        let (_, report) = doctor(&db, "prefer");
        assert!(finding(&report, "shared-row-triggers-not-firing").is_none(), "after the fix:\n{report:#}");
    }

    // A pool login in every spec role (under signed identity it must be, to SET LOCAL ROLE to
    // the one the token names), nobody in the directory.
    let roles: Vec<&str> = env.setting_spec.roles.keys().map(String::as_str).collect();
    admin(&setting_db)
        .batch_execute(&format!(
            "CREATE ROLE dr_pool LOGIN PASSWORD 'x' VALID UNTIL '2100-01-01'; GRANT {} TO dr_pool;",
            roles.join(", ")
        ))
        .unwrap();
    if let Some(signed_db) = signed_db {
        signed_identity(&signed_db);
    } else {
        println!("skipped on the SQL backend: signed identity (identity-keys) needs the extension");
    }

    // The pool under an unsigned setting: it names anyone and becomes any role. A login
    // with one spec role and the directory's people with two (44, 55, 56, 72) are not pools.
    admin(&setting_db).batch_execute("CREATE ROLE dr_rep_pool LOGIN; GRANT sales_rep TO dr_rep_pool;").unwrap();
    let (_, report) = doctor_with("tests/fixtures/crm-setting.yaml", &setting_db, "prefer");
    assert!(!strings(&report["checks_run"]).iter().any(|c| c == "identity-keys"));
    let objects = strings(&finding(&report, "unsigned-setting-identity").expect("unsigned is found")["objects"]);
    assert_eq!(objects, ["identity: { setting: app.person_id } without signed: true"]);
    let objects = strings(&finding(&report, "pool-login-roles").expect("the pool is found")["objects"]);
    assert_eq!(
        objects,
        ["dr_pool (member of crm_admin, cxo, data_analyst, marketer, sales_director, sales_manager, sales_rep, support)"]
    );
}

/// Signed identity, set up as docs/spec.md says: one fresh key and the pool login (made above).
fn signed_identity(signed_db: &str) {
    admin(signed_db)
        .batch_execute(&format!(
            "INSERT INTO rowsec.identity_keys (key_id, secret) VALUES ('k1', '\\x{}');",
            "ab".repeat(32)
        ))
        .unwrap();
    let (_, report) = doctor_with("tests/fixtures/crm-signed.yaml", signed_db, "prefer");
    let run = strings(&report["checks_run"]);
    for check in ["unsigned-setting-identity", "identity-keys"] {
        assert!(run.iter().any(|c| c == check), "{check} runs under signed identity: {run:?}");
    }
    for check in ["pool-login-roles", "spec-role-member-not-in-directory"] {
        assert!(!run.iter().any(|c| c == check), "{check} is for other identities: {run:?}");
    }
    for check in ["unsigned-setting-identity", "identity-keys"] {
        assert!(finding(&report, check).is_none(), "{check} fired on a clean signed setup:\n{report:#}");
    }
    // A key past the rotation period.
    admin(signed_db).batch_execute("UPDATE rowsec.identity_keys SET created_at = now() - interval '200 days'").unwrap();
    let (_, report) = doctor_with("tests/fixtures/crm-signed.yaml", signed_db, "prefer");
    let objects = strings(&finding(&report, "identity-keys").expect("an old key is found")["objects"]);
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert!(objects[0].starts_with("key k1 is 200 days old"), "{objects:?}");
}

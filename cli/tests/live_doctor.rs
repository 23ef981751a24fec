//! `rowsec doctor` on a cluster of its own (it changes server settings and pg_hba.conf): set up
//! cleanly it scores 100 with no finding; with one misconfiguration per check, every check
//! fires exactly once.

mod common;

use common::rowsec;
use rowsec_e2e::fixture::env;

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

fn doctor(db: &str, sslmode: &str) -> (i32, serde_json::Value) {
    let out =
        rowsec().args(["doctor", "examples/crm.yaml", "--db", &url(db, sslmode), "--format", "json"]).output().unwrap();
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report)
}

#[test]
fn a_clean_cluster_scores_100_and_one_misconfiguration_per_check_fires_each_check_once() {
    let env = env();
    let db = env.crm_db();
    let cluster = &env.cluster;
    // A clean cluster offers SSL; a server built without it (the PostgreSQL 18 wheel the tests
    // use) cannot be made clean, so this runs where SSL exists (Debian's 15 in tests/run.sh).
    let ssl_library: String =
        cluster.admin(&db).query_one("SELECT current_setting('ssl_library')", &[]).unwrap().get(0);
    if ssl_library.is_empty() {
        eprintln!("this PostgreSQL is built without SSL: the clean-cluster doctor test runs on a build with it");
        return;
    }
    // Clean: SSL with a throwaway certificate, archiving on, SCRAM passwords that expire,
    // no login for inactive people or people without a role, only SCRAM from loopback.
    cluster.as_owner(
        "cd data && openssl req -new -x509 -days 2 -nodes -subj /CN=localhost -keyout server.key -out server.crt \
         2>/dev/null && chmod 600 server.key",
    );
    let mut setup = cluster.admin(&db);
    // ALTER SYSTEM refuses to run in a transaction block: one statement per call.
    for s in
        ["ALTER SYSTEM SET ssl = on", "ALTER SYSTEM SET archive_mode = on", "ALTER SYSTEM SET archive_command = 'true'"]
    {
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
    cluster.as_owner("echo 'hostssl all all 127.0.0.1/32 scram-sha-256' > data/pg_hba.conf");
    cluster.restart();

    // Only TLS gets in now: rowsec connects with it (sslmode=require), and is refused without.
    rowsec()
        .args(["doctor", "--db", &url(&db, "disable")])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no encryption"));
    let (code, report) = doctor(&db, "require");
    assert_eq!(report["findings"], serde_json::json!([]), "a clean cluster has findings");
    assert_eq!((code, report["score"].as_u64()), (0, Some(100)));
    let checks: Vec<String> =
        report["checks_run"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(checks.len(), 21, "{checks:?}");

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
           VALUES ('crm.accounts', 2001, 21, 'read', now() - interval '1 day', 20);",
    )
    .unwrap();
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
}

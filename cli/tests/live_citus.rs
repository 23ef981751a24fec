//! The live commands on a Citus coordinator (issue 16, docs/distributed.md): `plan`, `apply`,
//! `verify` and `doctor` against a coordinator and two workers, the directory a reference table
//! and the CRM tables distributed by key, with tests/fixtures/crm-citus.yaml. What the commands
//! change must reach the workers' shards through Citus, and drift made there must be seen.
//!
//! Skipped, with a loud message, where Citus is not installed (tests/src/citus.rs).

mod common;

use common::rowsec;
use postgres::Client;
use rowsec_e2e::citus::{self, citus_spec_path, connect, distribute_sql, Citus, Distribution};
use rowsec_e2e::cluster::Cluster;
use rowsec_e2e::fixture::{create_logins, load_directory_and_rows, login_of, schema_path};

/// Runs the CLI; returns its exit status and standard output (standard error is printed).
fn run(args: &[&str]) -> (i32, String) {
    let start = std::time::Instant::now();
    let out = rowsec().args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap_or(-1);
    println!(
        "$ rowsec {}\nexit {code} after {:.1} s\n{stdout}\n{stderr}",
        args.join(" "),
        start.elapsed().as_secs_f64()
    );
    (code, stdout)
}

fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
}

/// A superuser session on `node` that sees the shards (Citus hides them from the catalog).
fn admin(node: &Cluster, db: &str) -> Client {
    let mut c = node.admin(db);
    c.batch_execute("SET citus.override_table_visibility = off").unwrap();
    c
}

/// The shards of crm.accounts that `node` holds.
fn account_shards(node: &Cluster, db: &str) -> i64 {
    count(&mut admin(node, db), "SELECT count(*) FROM pg_class WHERE relname ~ '^accounts_[0-9]+$' AND relkind = 'r'")
}

/// rowsec's policies on crm.accounts as this node holds them: on the coordinator the table's,
/// on a worker those of its shards (`accounts_<shardid>`).
fn account_policies(node: &Cluster, db: &str) -> i64 {
    count(
        &mut admin(node, db),
        "SELECT count(*) FROM pg_policies WHERE schemaname = 'crm' AND tablename ~ '^accounts(_[0-9]+)?$' \
         AND policyname LIKE 'rowsec%'",
    )
}

#[test]
fn plan_apply_verify_and_doctor_work_through_a_coordinator() {
    if !citus::available("live_citus") {
        return;
    }
    let cluster = Citus::start();
    let db = cluster.create_database("livecitus");
    {
        let mut admin = cluster.coordinator.admin(&db);
        admin.batch_execute(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
        admin.batch_execute(&distribute_sql(Distribution::ByKey)).unwrap();
    }
    let spec = citus_spec_path();
    let spec = spec.to_str().unwrap();
    let url = format!("postgresql://postgres@127.0.0.1:{}/{db}", cluster.coordinator.port);

    // plan: the changes, and nothing left behind on any node.
    let (code, out) = run(&["plan", spec, "--db", &url]);
    assert_eq!(code, 1, "plan on a database without rowsec reports changes");
    assert!(out.contains("crm.accounts"), "plan names the protected tables");
    for node in cluster.nodes() {
        assert_eq!(account_policies(node, &db), 0, "plan rolled back on node {}", node.port);
    }

    // apply: the policies reach every shard.
    let (code, _) = run(&["apply", spec, "--db", &url]);
    assert_eq!(code, 0, "apply");
    let on_coordinator = account_policies(&cluster.coordinator, &db);
    assert!(on_coordinator > 0);
    for w in &cluster.workers {
        let shards = account_shards(w, &db);
        assert!(shards > 0, "worker {} holds shards of crm.accounts", w.port);
        // The shell table Citus's metadata sync keeps on every worker, and each shard.
        assert_eq!(
            account_policies(w, &db),
            on_coordinator * (shards + 1),
            "every shard on worker {} has the policies",
            w.port
        );
    }

    {
        let mut admin = cluster.coordinator.admin(&db);
        create_logins(&mut admin);
        load_directory_and_rows(&mut admin);
    }
    // Enforced on the shards: a rep (person 20, "rep e1") reads fewer accounts than everyone's.
    let all = count(&mut cluster.coordinator.admin(&db), "SELECT count(*) FROM crm.accounts");
    let rep = count(&mut connect(&cluster.coordinator, &login_of(20), &db), "SELECT count(*) FROM crm.accounts");
    assert!(rep > 0 && rep < all, "a rep reads {rep} of {all} accounts");

    // Converged: nothing to change, no drift, and each person's rows as the spec says.
    let (code, _) = run(&["plan", spec, "--db", &url]);
    assert_eq!(code, 0, "plan after apply: no change");
    // verify's truth as three people (the cxo's `all`, the admin, a director's subtree): each
    // statement as a person opens Citus connections to the workers as that person's login, so
    // every person costs seconds here (docs/distributed.md).
    let (code, out) = run(&["verify", spec, "--db", &url, "--people", "3"]);
    assert_eq!(code, 0, "verify after apply: no drift, no mismatch\n{out}");

    // Drift made on the coordinator (Citus propagates it to the shards) is found and repaired.
    let policy: String = cluster
        .coordinator
        .admin(&db)
        .query_one(
            "SELECT policyname::text FROM pg_policies WHERE schemaname = 'crm' AND tablename = 'accounts' \
             AND policyname LIKE 'rowsec%' ORDER BY policyname LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    cluster.coordinator.admin(&db).batch_execute(&format!("DROP POLICY {policy} ON crm.accounts")).unwrap();
    let (code, out) = run(&["verify", spec, "--db", &url, "--no-truth"]);
    assert_eq!(code, 1, "verify finds the dropped policy");
    assert!(out.contains("missing-policy") && out.contains(&policy), "verify names the dropped policy");
    let (code, _) = run(&["apply", spec, "--db", &url]);
    assert_eq!(code, 0, "apply repairs");
    for w in &cluster.workers {
        let shards = account_shards(w, &db);
        assert_eq!(account_policies(w, &db), on_coordinator * (shards + 1), "the repair reached worker {}", w.port);
    }
    let (code, _) = run(&["verify", spec, "--db", &url, "--no-truth"]);
    assert_eq!(code, 0, "verify after the repair");

    // doctor reads the coordinator's settings and the directory like a single server's: the
    // fixture's departed people keep their logins, which it finds.
    let (code, out) = run(&["doctor", spec, "--db", &url]);
    assert_eq!(code, 1, "doctor's findings");
    assert!(out.contains("score:") && out.contains("[HIGH] inactive-person-can-log-in"), "doctor ran its checks");
}

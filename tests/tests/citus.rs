//! rowsec on Citus (issue 16, docs/distributed.md): a coordinator and two workers, the directory
//! a reference table, the CRM tables distributed by key or by owner, tests/fixtures/crm-citus.yaml
//! compiled and applied on the coordinator. The oracle of SPEC.md decides, as on one node, what
//! each person reads, writes and is refused; every answer comes from the workers' shards.
//!
//! Skipped, with a loud message, where Citus is not installed (tests/src/citus.rs).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use postgres::Client;
use rowsec_e2e::citus::{self, citus_spec_path, connect, Citus, Distribution};
use rowsec_e2e::cluster::Cluster;
use rowsec_e2e::fixture::{
    classify, compile, db_error, insert_unclassed_sql, keys, load, people, plain_column, rows, table, tables,
    try_rolled_back, Person, Row, Tally,
};
use rowsec_generator::model::{Command, Spec};
use rowsec_generator::oracle::{Oracle, Outcome, Share};

struct Env {
    citus: Citus,
    spec: Spec,
    people: Vec<Person>,
}

/// One Citus cluster per test binary; each test makes its own database on it.
fn env(test: &str) -> Option<&'static Env> {
    if !citus::available(test) {
        return None;
    }
    static ENV: OnceLock<Env> = OnceLock::new();
    Some(ENV.get_or_init(|| Env { citus: Citus::start(), spec: load(&citus_spec_path()).spec, people: people() }))
}

fn login(node: &Cluster, db: &str, person: i64) -> Client {
    connect(node, &rowsec_e2e::fixture::login_of(person), db)
}

fn logins(env: &Env) -> impl Iterator<Item = &Person> {
    env.people.iter().filter(|p| p.login.is_some())
}

/// Every person x table on `node`: the rows read (and their count, which Citus computes from
/// per-shard counts) are the oracle's.
fn check_visibility(env: &Env, node: &Cluster, db: &str, what: &'static str) {
    check_visibility_with(env, &Oracle::new(&env.spec, &env.people), node, db, what);
}

/// [`check_visibility`] against `oracle` (e.g. one that knows the shares made).
fn check_visibility_with(env: &Env, oracle: &Oracle, node: &Cluster, db: &str, what: &'static str) {
    let fixture = rows();
    let mut tally = Tally::new(what);
    for p in logins(env) {
        let mut c = login(node, db, p.id);
        for t in tables() {
            let expected = if oracle.has_privilege(p.id, &t, Command::Select) {
                Ok(fixture[&t].iter().filter(|r| oracle.visible(p.id, &t, r)).map(|r| r.key).collect::<BTreeSet<_>>())
            } else {
                Err(Outcome::PermissionDenied)
            };
            let count = expected.as_ref().map(|k| k.len() as i64).map_err(Clone::clone);
            tally.check(format!("{} ({}) {t}", p.name, p.id), expected, keys(&mut c, &format!("SELECT id FROM {t}")));
            let counted = c.query_one(&format!("SELECT count(*) FROM {t}"), &[]).map(|r| r.get::<_, i64>(0));
            tally.check(format!("{} ({}) count(*) {t}", p.name, p.id), count, counted.map_err(|e| classify(Err(e))));
        }
    }
    tally.finish();
}

#[test]
fn every_person_sees_exactly_the_oracles_rows_with_tables_distributed_by_key() {
    let Some(env) = env("citus: visibility by key") else { return };
    let db = env.citus.crm_database(&citus_spec_path(), Distribution::ByKey);
    check_visibility(env, &env.citus.coordinator, &db, "citus by key: select and count(*), person x table");
}

#[test]
fn every_person_sees_exactly_the_oracles_rows_with_tables_distributed_by_owner() {
    let Some(env) = env("citus: visibility by owner") else { return };
    let db = env.citus.crm_database(&citus_spec_path(), Distribution::ByOwner);
    check_visibility(env, &env.citus.coordinator, &db, "citus by owner: select and count(*), person x table");
    // Sharing, where a row is locked by key and owner (Citus locks rows in one shard only).
    let mut owner = login(&env.citus.coordinator, &db, 20);
    let mut grantee = login(&env.citus.coordinator, &db, 23);
    share(&mut owner, "'crm.accounts', 2001, to_person => 23, access => 'read'");
    let write = share(&mut owner, "'crm.opportunities', 2001, to_person => 23, access => 'write'");
    assert_eq!(keys(&mut grantee, "SELECT id FROM crm.accounts WHERE id = 2001"), Ok(BTreeSet::from([2001])));
    assert_eq!(
        try_rolled_back(&mut grantee, "UPDATE crm.opportunities SET title = 'x' WHERE id = 2001"),
        Outcome::Rows(1)
    );
    let derived = share(&mut grantee, "'crm.opportunities', 2001, to_person => 24, access => 'read'");
    let parent: Option<i64> = env
        .citus
        .coordinator
        .admin(&db)
        .query_one("SELECT derived_from FROM rowsec.shares WHERE id = $1", &[&derived])
        .unwrap()
        .get(0);
    assert_eq!(parent, Some(write), "what 23 shares of a row 23 updates through a share derives from it");
}

#[test]
fn a_person_connected_to_a_worker_sees_no_more_than_on_the_coordinator() {
    let Some(env) = env("citus: worker connections") else { return };
    let db = env.citus.crm_database(&citus_spec_path(), Distribution::ByKey);
    // Citus with metadata lets a worker run queries on the distributed tables: the same rows.
    check_visibility(env, &env.citus.workers[0], &db, "citus: select on a worker, person x table");
    // A shard read directly: its policies are the table's, so a person sees that shard's part of
    // what they see on the coordinator, never more.
    let admin = &mut env.citus.workers[1].admin(&db);
    let shards: Vec<String> = admin
        .query(
            "SELECT shard_name(logicalrelid, shardid) FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) \
             WHERE logicalrelid = 'crm.accounts'::regclass AND p.groupid = (SELECT groupid FROM pg_dist_local_group)",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!shards.is_empty(), "worker 1 holds shards of crm.accounts");
    let mut tally = Tally::new("citus: a shard read directly on a worker");
    for id in [1, 10, 20, 40, 50, 60, 70] {
        let mut coord = login(&env.citus.coordinator, &db, id);
        let allowed = keys(&mut coord, "SELECT id FROM crm.accounts").unwrap_or_default();
        let mut w = login(&env.citus.workers[1], &db, id);
        for shard in &shards {
            match keys(&mut w, &format!("SELECT id FROM {shard}")) {
                Ok(seen) => tally.check(format!("person {id} {shard}"), BTreeSet::new(), &seen - &allowed),
                Err(o) => tally.check(format!("person {id} {shard}"), Outcome::PermissionDenied, o),
            }
        }
    }
    tally.finish();
}

/// Owners to try: self, a teammate, a subordinate, the manager, an outsider (as tests/writes.rs).
fn owners(env: &Env, oracle: &Oracle, p: &Person) -> Vec<i64> {
    let subtree = oracle.subtree(p.id);
    let mut v = vec![p.id];
    v.extend(env.people.iter().find(|q| q.id != p.id && p.team.is_some() && q.team == p.team).map(|q| q.id));
    v.extend(env.people.iter().find(|q| q.manager == Some(p.id)).map(|q| q.id));
    v.extend(p.manager);
    v.extend(
        env.people
            .iter()
            .find(|q| q.id != p.id && !(p.team.is_some() && q.team == p.team) && !subtree.contains(&q.id))
            .map(|q| q.id),
    );
    v
}

#[test]
fn inserts_updates_and_deletes_follow_the_oracle_on_shards() {
    let Some(env) = env("citus: writes") else { return };
    let db = env.citus.crm_database(&citus_spec_path(), Distribution::ByKey);
    let oracle = Oracle::new(&env.spec, &env.people);
    let fixture = rows();
    let mut tally = Tally::new("citus: insert, update, delete by key: person x table x owner");
    let mut key = 5_000_000;
    for p in logins(env) {
        let mut c = login(&env.citus.coordinator, &db, p.id);
        for t in tables() {
            let col = plain_column(&t);
            for owner in owners(env, &oracle, p) {
                key += 1;
                let new = Row { key, owner, voided: false };
                tally.check(
                    format!("{} ({}) inserts {t} owned by {owner}", p.name, p.id),
                    oracle.insert(p.id, &t, &new),
                    try_rolled_back(&mut c, &insert_unclassed_sql(&t, &new)),
                );
                let row = fixture[&t].iter().find(|r| r.owner == owner && !r.voided).unwrap();
                tally.check(
                    format!("{} ({}) updates {t} row of {owner}", p.name, p.id),
                    oracle.update_owner(p.id, &t, row, row.owner),
                    try_rolled_back(&mut c, &format!("UPDATE {t} SET {col} = {col} WHERE id = {}", row.key)),
                );
                let expected = if !oracle.has_privilege(p.id, &t, Command::Delete)
                    || !oracle.has_privilege(p.id, &t, Command::Select)
                {
                    Outcome::PermissionDenied
                } else {
                    Outcome::Rows(u64::from(oracle.deletable(p.id, &t, row)))
                };
                tally.check(
                    format!("{} ({}) deletes {t} row of {owner}", p.name, p.id),
                    expected,
                    try_rolled_back(&mut c, &format!("DELETE FROM {t} WHERE id = {}", row.key)),
                );
            }
        }
    }
    tally.finish();
}

#[test]
fn column_grants_hold_on_distributed_tables() {
    let Some(env) = env("citus: columns") else { return };
    let db = env.citus.crm_database(&citus_spec_path(), Distribution::ByKey);
    let oracle = Oracle::new(&env.spec, &env.people);
    let mut tally = Tally::new("citus: column read, person x table x column");
    let mut admin = env.citus.coordinator.admin(&db);
    for p in logins(env) {
        let mut c = login(&env.citus.coordinator, &db, p.id);
        for t in tables() {
            let cols: Vec<String> = admin
                .query(
                    "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::text::regclass \
                     AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                    &[&t.to_string()],
                )
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            for col in cols {
                let expected =
                    if oracle.column_allowed(p.id, &t, &col, Command::Select) { "allowed" } else { "denied" };
                let actual = match try_rolled_back(&mut c, &format!("SELECT {col} FROM {t} WHERE id = 2001")) {
                    Outcome::Rows(_) => "allowed",
                    Outcome::PermissionDenied => "denied",
                    other => panic!("{t}.{col} as {}: {other:?}", p.id),
                };
                tally.check(format!("{} ({}) {t}.{col}", p.name, p.id), expected, actual);
            }
        }
    }
    tally.finish();
}

#[test]
fn the_script_applied_twice_converges_with_the_same_configuration_on_every_node() {
    let Some(env) = env("citus: converge") else { return };
    let db = env.citus.crm_database(&citus_spec_path(), Distribution::ByKey);
    let script = compile(&citus_spec_path());
    env.citus
        .coordinator
        .admin(&db)
        .batch_execute(&script)
        .unwrap_or_else(|e| panic!("the script applied a second time: {}", db_error(&e)));
    let state = |node: &Cluster| -> Vec<String> {
        let q = "SELECT 'config ' || concat_ws(' ', directory::text, id_column, manager_column, team_column, \
                     login_column, active_column, identity, identity_setting) FROM rowsec.config \
                 UNION ALL SELECT 'protected ' || concat_ws(' ', tbl::text, key_column, owner_column, sharing) \
                     FROM rowsec.protected_tables \
                 UNION ALL SELECT 'policy ' || concat_ws(' ', tablename, policyname, permissive, cmd, roles::text, qual, with_check) \
                     FROM pg_policies WHERE schemaname = 'crm' \
                 ORDER BY 1";
        node.admin(&db).query(q, &[]).unwrap().iter().map(|r| r.get(0)).collect()
    };
    let on_coordinator = state(&env.citus.coordinator);
    assert!(on_coordinator.iter().any(|l| l.starts_with("config crm.app_users")), "{on_coordinator:?}");
    assert_eq!(on_coordinator.iter().filter(|l| l.starts_with("protected ")).count(), 5);
    assert!(on_coordinator.iter().any(|l| l.contains("rowsec.in_all(owner_id)")), "{on_coordinator:?}");
    // The registry of protected tables stays on the coordinator (extension/src/citus.rs).
    let shared: Vec<String> = on_coordinator.iter().filter(|l| !l.starts_with("protected ")).cloned().collect();
    // Every shard carries its table's policies, restrictive ones (`always:`) still restrictive.
    let shard_policies = |node: &Cluster| -> Vec<String> {
        let q = "SELECT DISTINCT concat_ws(' ', s.logicalrelid::text, p.polname, p.polpermissive, p.polcmd, \
                     pg_get_expr(p.polqual, p.polrelid)) \
                 FROM pg_dist_shard s JOIN pg_policy p ON p.polrelid = to_regclass(shard_name(s.logicalrelid, s.shardid)) \
                 WHERE s.logicalrelid::text LIKE 'crm.%' ORDER BY 1";
        node.admin(&db).query(q, &[]).unwrap().iter().map(|r| r.get(0)).collect()
    };
    let on_shells: Vec<String> = env
        .citus
        .coordinator
        .admin(&db)
        .query(
            "SELECT concat_ws(' ', polrelid::regclass::text, polname, polpermissive, polcmd, pg_get_expr(polqual, polrelid)) \
             FROM pg_policy WHERE polrelid::regclass::text LIKE 'crm.%' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(on_shells.iter().any(|l| l.starts_with("crm.invoices rowsec_always f ")), "{on_shells:?}");
    for (i, w) in env.citus.workers.iter().enumerate() {
        assert_eq!(state(w), shared, "worker {i}'s rowsec configuration and policies");
        assert_eq!(shard_policies(w), on_shells, "the policies of worker {i}'s shards");
    }
    check_visibility(env, &env.citus.coordinator, &db, "citus: select after the second apply, person x table");
}

#[test]
fn a_directory_change_reaches_sessions_on_the_coordinator_and_on_workers_in_their_next_transaction() {
    let Some(env) = env("citus: directory changes") else { return };
    let db = env.citus.crm_database(&citus_spec_path(), Distribution::ByKey);
    // Manager 10 (sales_manager: update subtree) cannot update rep 23's account (west team).
    let update = "UPDATE crm.accounts SET name = name WHERE id = 2301";
    let mut on_coordinator = login(&env.citus.coordinator, &db, 10);
    let mut on_worker = login(&env.citus.workers[0], &db, 10);
    let mut rep = login(&env.citus.workers[1], &db, 21);
    assert_eq!(try_rolled_back(&mut on_coordinator, update), Outcome::Rows(0));
    assert_eq!(try_rolled_back(&mut on_worker, update), Outcome::Rows(0));
    assert!(!keys(&mut rep, "SELECT id FROM crm.accounts").unwrap().is_empty());
    env.citus
        .coordinator
        .admin(&db)
        .batch_execute("UPDATE crm.app_users SET manager_id = 10 WHERE id = 23; UPDATE crm.app_users SET active = false WHERE id = 21")
        .unwrap();
    // The same sessions, their next transaction: 23 and 23's report 32 are 10's subtree.
    assert_eq!(try_rolled_back(&mut on_coordinator, update), Outcome::Rows(1));
    assert_eq!(try_rolled_back(&mut on_worker, update), Outcome::Rows(1));
    assert_eq!(
        try_rolled_back(&mut on_worker, "UPDATE crm.accounts SET name = name WHERE id = 3201"),
        Outcome::Rows(1)
    );
    // And a deactivated rep sees nothing on any node.
    assert_eq!(keys(&mut rep, "SELECT id FROM crm.accounts"), Ok(BTreeSet::new()));
}

#[test]
fn identity_by_setting_reaches_the_workers_through_set_local_propagation() {
    let Some(env) = env("citus: identity by setting") else { return };
    let spec = rowsec_e2e::citus::citus_setting_spec_path();
    let db = env.citus.crm_database(&spec, Distribution::ByKey);
    let setting = load(&spec).spec;
    let oracle = Oracle::new(&setting, &env.people);
    // Citus connects to the workers as the current role, and spec roles cannot log in: a pool
    // per spec role (a login that is a member of that role alone) rather than one pool that
    // switches with SET LOCAL ROLE (docs/distributed.md).
    let mut pools = std::collections::BTreeMap::new();
    for role in setting.roles.keys() {
        let login = format!("citus_pool_{role}");
        env.citus
            .coordinator
            .admin(&db)
            .batch_execute(&format!(
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{login}') THEN \
                 CREATE ROLE {login} LOGIN; END IF; END $$; GRANT {role} TO {login}"
            ))
            .unwrap();
        let mut c = connect(&env.citus.coordinator, &login, &db);
        // Citus sends SET LOCAL to the workers only when asked (docs/distributed.md).
        c.batch_execute("SET citus.propagate_set_commands = 'local'").unwrap();
        pools.insert(role.clone(), c);
    }
    let fixture = rows();
    let mut tally = Tally::new("citus: identity by setting, person x table, a pool per role");
    // People with one role, through their role's pool.
    for p in env.people.iter().filter(|p| p.roles.len() == 1) {
        let pool = pools.get_mut(p.roles[0]).unwrap();
        for t in tables() {
            let expected = if oracle.has_privilege(p.id, &t, Command::Select) {
                Ok(fixture[&t].iter().filter(|r| oracle.visible(p.id, &t, r)).map(|r| r.key).collect::<BTreeSet<_>>())
            } else {
                Err(Outcome::PermissionDenied)
            };
            let mut tx = pool.transaction().unwrap();
            tx.batch_execute(&format!("SET LOCAL app.person_id = '{}'", p.id)).unwrap();
            let actual = tx
                .query(&format!("SELECT id FROM {t}"), &[])
                .map(|rows| rows.iter().map(|r| r.get::<_, i64>(0)).collect())
                .map_err(|e| classify(Err(e)));
            let _ = tx.rollback();
            tally.check(format!("{} ({}) {t}", p.name, p.id), expected, actual);
        }
    }
    tally.finish();
    // Without the setting nobody is anyone: no row, on any shard; and a setting that is not
    // propagated (propagate_set_commands off) reaches no worker: no row either.
    let admin_pool = pools.get_mut("crm_admin").unwrap();
    assert_eq!(admin_pool.query("SELECT id FROM crm.accounts", &[]).unwrap().len(), 0);
    let mut tx = admin_pool.transaction().unwrap();
    tx.batch_execute("SET LOCAL citus.propagate_set_commands = 'none'; SET LOCAL app.person_id = '1'").unwrap();
    assert_eq!(tx.query("SELECT id FROM crm.accounts", &[]).unwrap().len(), 0);
}

#[test]
fn a_distributed_directory_is_refused_with_a_clear_error_and_no_backtrace() {
    let Some(env) = env("citus: distributed directory") else { return };
    let db = env.citus.create_database("citus_dir");
    let mut admin = env.citus.coordinator.admin(&db);
    for sql in [
        "CREATE EXTENSION rowsec",
        "CREATE TABLE people (id bigint PRIMARY KEY, manager_id bigint)",
        "SELECT create_distributed_table('people', 'id')",
    ] {
        admin.batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {}", citus::full_error(&e)));
    }
    let e = admin
        .batch_execute(
            "SELECT rowsec.configure('people', 'id', 'manager_id', identity => 'setting', identity_setting => 'app.person_id')",
        )
        .unwrap_err();
    let d = e.as_db_error().expect("a database error");
    assert_eq!(d.code().code(), "42809", "{}", citus::full_error(&e));
    assert_eq!(d.message(), "the rowsec directory public.people is a distributed table");
    assert!(
        d.hint().unwrap_or_default().contains("create_reference_table('public.people')"),
        "{}",
        citus::full_error(&e)
    );
    let all = citus::full_error(&e);
    for frame in ["backtrace", ".rs:", "rust_begin_unwind", "   0: "] {
        assert!(!all.contains(frame), "the client got Rust internals ({frame}): {all}");
    }
    // Nothing was configured, on any node.
    for n in env.citus.nodes() {
        let configured: i64 = n.admin(&db).query_one("SELECT count(*) FROM rowsec.config", &[]).unwrap().get(0);
        assert_eq!(configured, 0);
    }
}

#[test]
fn a_worker_added_later_enforces_the_same_after_the_rebalance_copies_the_reference_tables() {
    if !citus::available("citus: a worker added later") {
        return;
    }
    let env = env("citus: a worker added later").unwrap();
    // A cluster of its own: this test adds a node.
    let mut cluster = Citus::start();
    let db = cluster.crm_database(&citus_spec_path(), Distribution::ByKey);
    // A share made before the worker exists.
    share(&mut login(&cluster.coordinator, &db, 20), "'crm.accounts', 2001, to_person => 23, access => 'read'");
    let port = cluster.add_worker(&db).port;
    // The rebalancer copies the reference tables (the directory, rowsec.config) to the new node
    // first, then moves shards onto it.
    cluster
        .coordinator
        .admin(&db)
        .batch_execute("SELECT rebalance_table_shards(shard_transfer_mode := 'block_writes')")
        .unwrap_or_else(|e| panic!("rebalance: {}", citus::full_error(&e)));
    let new = cluster.workers.last().unwrap();
    let held: i64 = cluster
        .coordinator
        .admin(&db)
        .query_one(
            "SELECT count(*) FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) \
             JOIN pg_dist_shard s USING (shardid) WHERE n.nodeport = $1::int AND s.logicalrelid = 'crm.accounts'::regclass",
            &[&i32::from(port)],
        )
        .unwrap()
        .get(0);
    assert!(held > 0, "the rebalance moved shards of crm.accounts to the new worker");
    // The row reached it by a binary copy: `directory` holds the coordinator's OID, which names
    // nothing (or something else) there; rowsec resolves `directory_name` on each node.
    let name: String = new.admin(&db).query_one("SELECT directory_name FROM rowsec.config", &[]).unwrap().get(0);
    assert_eq!(name, "crm.app_users");
    let people: i64 = new.admin(&db).query_one("SELECT people FROM rowsec.directory_status()", &[]).unwrap().get(0);
    assert_eq!(people, env.people.len() as i64, "the new worker reads the whole directory from its placement");
    // The share reached it with the reference tables (rows copied in binary: matched by name).
    let shared: Vec<String> =
        new.admin(&db).query("SELECT tbl_name FROM rowsec.shares", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(shared, ["crm.accounts"]);
    assert_eq!(placement_shares(new, &db).len(), 1, "the new worker's own copy of rowsec.shares");
    let with_new = Env { citus: cluster, spec: env.spec.clone(), people: env.people.clone() };
    let mut oracle = Oracle::new(&with_new.spec, &with_new.people);
    oracle.shares.push(oracle_share("accounts", 2001, Some(23), None, false));
    check_visibility_with(
        &with_new,
        &oracle,
        &with_new.citus.coordinator,
        &db,
        "citus: select with a third worker, person x table",
    );
    let mut grantee = login(with_new.citus.workers.last().unwrap(), &db, 23);
    assert_eq!(keys(&mut grantee, "SELECT id FROM crm.accounts WHERE id = 2001"), Ok(BTreeSet::from([2001])));
    // And a directory change reaches a session on the new worker in its next transaction.
    let mut rep = login(with_new.citus.workers.last().unwrap(), &db, 21);
    assert!(!keys(&mut rep, "SELECT id FROM crm.accounts").unwrap().is_empty());
    with_new
        .citus
        .coordinator
        .admin(&db)
        .batch_execute("UPDATE crm.app_users SET active = false WHERE id = 21")
        .unwrap();
    assert_eq!(keys(&mut rep, "SELECT id FROM crm.accounts"), Ok(BTreeSet::new()));
}

#[test]
fn a_truncate_of_the_directory_reaches_sessions_on_workers_in_their_next_transaction() {
    let Some(env) = env("citus: directory truncated") else { return };
    let db = env.citus.crm_database(&citus_spec_path(), Distribution::ByKey);
    let mut admin = env.citus.coordinator.admin(&db);
    // TRUNCATE needs the owners' foreign keys gone (as a DBA reloading the directory would).
    for t in rowsec_e2e::fixture::TABLES {
        admin.batch_execute(&format!("ALTER TABLE crm.{t} DROP CONSTRAINT {t}_owner_id_fkey")).unwrap();
    }
    let mut on_worker = login(&env.citus.workers[0], &db, 21);
    let mut on_coordinator = login(&env.citus.coordinator, &db, 40);
    assert!(!keys(&mut on_worker, "SELECT id FROM crm.accounts").unwrap().is_empty());
    assert!(!keys(&mut on_coordinator, "SELECT id FROM crm.accounts").unwrap().is_empty());
    // Citus copies no TRUNCATE trigger to the placements: rowsec's writes rowsec.config instead.
    admin.batch_execute("TRUNCATE crm.app_users").unwrap_or_else(|e| panic!("TRUNCATE: {}", citus::full_error(&e)));
    assert_eq!(keys(&mut on_worker, "SELECT id FROM crm.accounts"), Ok(BTreeSet::new()));
    assert_eq!(keys(&mut on_coordinator, "SELECT id FROM crm.accounts"), Ok(BTreeSet::new()));
}

/// `SELECT rowsec.share(args)` as `c`'s person: the share's id.
fn share(c: &mut Client, args: &str) -> i64 {
    c.query_one(&format!("SELECT rowsec.share({args})"), &[])
        .unwrap_or_else(|e| panic!("rowsec.share({args}): {}", citus::full_error(&e)))
        .get(0)
}

/// An oracle share of row `key` of crm.`t`.
fn oracle_share(t: &str, key: i64, to_person: Option<i64>, to_team: Option<&str>, write: bool) -> Share {
    Share { table: table(t), key, to_person, to_team: to_team.map(str::to_owned), write, expired: false }
}

/// The ids in `node`'s own copy of rowsec.shares (its placement of the reference table), read
/// directly: what that node's policies read.
fn placement_shares(node: &Cluster, db: &str) -> BTreeSet<i64> {
    let mut admin = node.admin(db);
    let placement: String = admin
        .query_one(
            "SELECT shard_name(s.logicalrelid, s.shardid) FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) \
             WHERE s.logicalrelid = 'rowsec.shares'::regclass AND p.groupid = (SELECT groupid FROM pg_dist_local_group)",
            &[],
        )
        .unwrap_or_else(|e| panic!("finding the placement of rowsec.shares: {}", citus::full_error(&e)))
        .get(0);
    keys(&mut admin, &format!("SELECT id FROM {placement}")).unwrap()
}

#[test]
fn shares_made_on_the_coordinator_reach_every_node_in_the_next_transaction() {
    let Some(env) = env("citus: sharing") else { return };
    let db = env.citus.crm_database(&citus_spec_path(), Distribution::ByKey);
    let (coordinator, worker) = (&env.citus.coordinator, &env.citus.workers[0]);
    // Open sessions, before any share: rep 23 (team 200) on the coordinator and on a worker.
    let mut on_coordinator = login(coordinator, &db, 23);
    let mut on_worker = login(worker, &db, 23);
    let account = "SELECT id FROM crm.accounts WHERE id = 2001";
    assert_eq!(keys(&mut on_coordinator, account), Ok(BTreeSet::new()));
    assert_eq!(keys(&mut on_worker, account), Ok(BTreeSet::new()));
    // Rep 20 owns the rows 20xx: shares to a person, to a team, and a write share.
    let mut owner = login(coordinator, &db, 20);
    let to_person = share(&mut owner, "'crm.accounts', 2001, to_person => 23, access => 'read'");
    share(&mut owner, "'crm.contacts', 2001, to_team => '200', access => 'read'");
    let write = share(&mut owner, "'crm.opportunities', 2001, to_person => 23, access => 'write'");
    let mut oracle = Oracle::new(&env.spec, &env.people);
    oracle.shares.push(oracle_share("accounts", 2001, Some(23), None, false));
    oracle.shares.push(oracle_share("contacts", 2001, None, Some("200"), false));
    oracle.shares.push(oracle_share("opportunities", 2001, Some(23), None, true));
    // Every node's copy holds them, in the sharer's transaction.
    for n in env.citus.nodes() {
        assert_eq!(placement_shares(n, &db).len(), 3, "the shares on node {}", n.port);
    }
    // The open sessions, their next transaction.
    assert_eq!(keys(&mut on_coordinator, account), Ok(BTreeSet::from([2001])));
    assert_eq!(keys(&mut on_worker, account), Ok(BTreeSet::from([2001])));
    // Everyone, on the coordinator and connected to a worker, against the oracle with the shares.
    check_visibility_with(env, &oracle, coordinator, &db, "citus: with shares, on the coordinator, person x table");
    check_visibility_with(env, &oracle, worker, &db, "citus: with shares, on a worker, person x table");
    // The write share: 23 updates the row (not its owner), on either node.
    let update = "UPDATE crm.opportunities SET title = 'x' WHERE id = 2001";
    assert_eq!(try_rolled_back(&mut on_coordinator, update), Outcome::Rows(1));
    assert_eq!(try_rolled_back(&mut on_worker, update), Outcome::Rows(1));
    assert_eq!(
        try_rolled_back(&mut on_worker, "UPDATE crm.opportunities SET owner_id = 23 WHERE id = 2001"),
        Outcome::RlsViolation
    );
    assert_eq!(try_rolled_back(&mut on_worker, "UPDATE crm.accounts SET name = 'x' WHERE id = 2001"), Outcome::Rows(0));
    // 23 may update the opportunity only through the share: what 23 shares of it derives from
    // it (the policies that decide run on the workers: extension/src/sharing.rs, update_right).
    // A shard's policy names the distributed table (the shell), which is what the shares name.
    let shard_policy: String = worker
        .admin(&db)
        .query_one(
            "SELECT string_agg(pg_get_expr(p.polqual, p.polrelid), ' ') FROM pg_dist_shard s \
             JOIN pg_policy p ON p.polrelid = to_regclass(shard_name(s.logicalrelid, s.shardid)) \
             WHERE s.logicalrelid = 'crm.opportunities'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(shard_policy.contains("rowsec.is_shared('crm.opportunities'::regclass, id, "), "{shard_policy}");
    let derived = share(&mut on_coordinator, "'crm.opportunities', 2001, to_person => 24, access => 'read'");
    let mut admin = coordinator.admin(&db);
    let parent: Option<i64> =
        admin.query_one("SELECT derived_from FROM rowsec.shares WHERE id = $1", &[&derived]).unwrap().get(0);
    assert_eq!(parent, Some(write));
    // rowsec.my_shares on the coordinator: what 23 received and made.
    let mine: Vec<(i64, String)> = on_coordinator
        .query("SELECT share_id, seen_as FROM rowsec.my_shares ORDER BY share_id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(mine.contains(&(to_person, "grantee".to_owned())), "{mine:?}");
    assert!(mine.contains(&(derived, "granter".to_owned())), "{mine:?}");
    // The script applied again keeps the shares.
    admin.batch_execute(&compile(&citus_spec_path())).unwrap_or_else(|e| panic!("second apply: {}", db_error(&e)));
    for n in env.citus.nodes() {
        assert_eq!(placement_shares(n, &db).len(), 4, "the shares on node {} after the second apply", n.port);
    }
    let mut teammate = login(worker, &db, 24);
    assert_eq!(keys(&mut teammate, "SELECT id FROM crm.opportunities WHERE id = 2001"), Ok(BTreeSet::from([2001])));
    assert_eq!(keys(&mut on_worker, account), Ok(BTreeSet::from([2001])));
    // Unsharing, on the coordinator, reaches every node's copy and the open sessions' next
    // transaction; unsharing the write share ends the share derived from it too.
    owner.batch_execute(&format!("SELECT rowsec.unshare({to_person}); SELECT rowsec.unshare({write})")).unwrap();
    for n in env.citus.nodes() {
        assert_eq!(placement_shares(n, &db).len(), 1, "the shares on node {} after unsharing", n.port);
    }
    assert_eq!(keys(&mut on_worker, account), Ok(BTreeSet::new()));
    assert_eq!(keys(&mut on_coordinator, account), Ok(BTreeSet::new()));
    assert_eq!(try_rolled_back(&mut on_worker, update), Outcome::Rows(0));
    assert_eq!(keys(&mut teammate, "SELECT id FROM crm.opportunities WHERE id = 2001"), Ok(BTreeSet::new()));
    let removed: Vec<String> = admin
        .query(
            "SELECT object || ' ' || (detail->>'share_id') FROM rowsec.audit_log WHERE kind = 'unshare' ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        removed,
        [
            format!("crm.accounts {to_person}"),
            format!("crm.opportunities {write}"),
            format!("crm.opportunities {derived}")
        ]
    );
    let mut oracle = Oracle::new(&env.spec, &env.people);
    oracle.shares.push(oracle_share("contacts", 2001, None, Some("200"), false));
    check_visibility_with(env, &oracle, worker, &db, "citus: after unsharing, on a worker, person x table");
}

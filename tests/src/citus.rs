//! A Citus cluster for the distributed tests (tests/tests/citus.rs): a coordinator and two
//! workers, each a throwaway [`Cluster`] on its own loopback port, run as `postgres`, with
//! `shared_preload_libraries = 'citus,rowsec'` (Citus must come first). Citus 13.2.2 is built into
//! the private PostgreSQL 15 by vendor/citus/build.sh (tests/run.sh does it); where it is absent
//! the tests say so loudly and skip, unless `ROWSEC_REQUIRE_CITUS=1` (tests/run.sh sets it once
//! Citus is built), which makes its absence a failure.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use postgres::Client;

use crate::cluster::{pg_bin, repo_root, Cluster};
use crate::fixture::{compile, create_logins, db_error, load_directory_and_rows, schema_path, TABLES};

/// The library directory of the PostgreSQL under test (`pg_config --pkglibdir`).
fn pkglibdir() -> PathBuf {
    let out =
        Command::new(format!("{}/pg_config", pg_bin())).arg("--pkglibdir").output().expect("run pg_config --pkglibdir");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Whether Citus is installed into the PostgreSQL under test. When it is not, prints why the
/// caller is skipped (or panics under `ROWSEC_REQUIRE_CITUS=1`).
pub fn available(test: &str) -> bool {
    let so = pkglibdir().join("citus.so");
    if Path::new(&so).exists() {
        return true;
    }
    let msg = format!(
        "CITUS NOT INSTALLED: {} is missing, so `{test}` did not run. Build it with \
         `PG_CONFIG=$ROWSEC_PG_BIN/pg_config bash vendor/citus/build.sh` (tests/run.sh does).",
        so.display()
    );
    assert!(std::env::var("ROWSEC_REQUIRE_CITUS").as_deref() != Ok("1"), "{msg}");
    eprintln!("\n!!!!!!!! {msg}\n");
    false
}

/// How the CRM tables are distributed (the directory is always a reference table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// By the key column `id`: a lookup by key goes to one shard.
    ByKey,
    /// By the owner column `owner_id`: a person's own rows live on one shard.
    ByOwner,
}

impl Distribution {
    pub fn column(self) -> &'static str {
        match self {
            Distribution::ByKey => "id",
            Distribution::ByOwner => "owner_id",
        }
    }
}

pub struct Citus {
    pub coordinator: Cluster,
    pub workers: Vec<Cluster>,
}

const NODE_OPTIONS: &str = "-c shared_preload_libraries=citus,rowsec -c max_prepared_transactions=100";

impl Citus {
    /// Starts the three nodes (their databases are made by [`Citus::create_database`]).
    pub fn start() -> Citus {
        let coordinator = Cluster::start_with(NODE_OPTIONS);
        let workers = (0..2).map(|_| Cluster::start_with(NODE_OPTIONS)).collect();
        Citus { coordinator, workers }
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Cluster> {
        std::iter::once(&self.coordinator).chain(self.workers.iter())
    }

    /// A database of the same name on every node, Citus created in each, the coordinator
    /// registered and both workers added (Citus keeps its metadata per database).
    pub fn create_database(&self, prefix: &str) -> String {
        let db = self.coordinator.create_database(prefix, None);
        for w in &self.workers {
            w.admin("postgres").batch_execute(&format!("CREATE DATABASE {db}")).expect("create database on worker");
        }
        for n in self.nodes() {
            n.admin(&db)
                .batch_execute("CREATE EXTENSION citus")
                .unwrap_or_else(|e| panic!("CREATE EXTENSION citus: {}", db_error(&e)));
        }
        let mut sql = format!("SELECT citus_set_coordinator_host('127.0.0.1', {});", self.coordinator.port);
        for w in &self.workers {
            let _ = write!(sql, "SELECT citus_add_node('127.0.0.1', {});", w.port);
        }
        // The statements run as one implicit transaction: a failed attempt leaves nothing. Under
        // the full run's load a worker has refused the coordinator's connection once
        // ("failure on connection marked as essential"); another attempt a moment later gets in.
        let mut attempt = 1;
        while let Err(e) = self.coordinator.admin(&db).batch_execute(&sql) {
            let message = db_error(&e);
            if attempt == 3 || !message.contains("failure on connection") {
                panic!("adding the nodes (attempt {attempt}): {message}");
            }
            eprintln!("adding the nodes, attempt {attempt} failed: {message}; trying again");
            std::thread::sleep(std::time::Duration::from_secs(2));
            attempt += 1;
        }
        db
    }

    /// Adds one more worker to `db` (a node started now, Citus created in its database).
    pub fn add_worker(&mut self, db: &str) -> &Cluster {
        let w = Cluster::start_with(NODE_OPTIONS);
        w.admin("postgres").batch_execute(&format!("CREATE DATABASE {db}")).expect("create database on the new worker");
        w.admin(db).batch_execute("CREATE EXTENSION citus").expect("citus on the new worker");
        self.coordinator
            .admin(db)
            .batch_execute(&format!("SELECT citus_add_node('127.0.0.1', {})", w.port))
            .unwrap_or_else(|e| panic!("citus_add_node: {}", db_error(&e)));
        self.workers.push(w);
        self.workers.last().unwrap()
    }

    /// The CRM schema with its tables distributed, `spec`'s compiled script applied on the
    /// coordinator, the logins and the fixture's people and rows: a fresh database.
    pub fn crm_database(&self, spec: &Path, distribution: Distribution) -> String {
        // One at a time: logins are cluster-wide, and two tests creating the same role race.
        static SETUP: Mutex<()> = Mutex::new(());
        let _one = SETUP.lock().unwrap_or_else(|e| e.into_inner());
        let db = self.create_database("citus");
        let mut admin = self.coordinator.admin(&db);
        let schema = std::fs::read_to_string(schema_path()).expect("read crm-schema.sql");
        admin.batch_execute(&schema).expect("load crm-schema.sql");
        admin.batch_execute(&distribute_sql(distribution)).unwrap_or_else(|e| panic!("distributing: {}", db_error(&e)));
        let script = compile(spec);
        admin
            .batch_execute(&script)
            .unwrap_or_else(|e| panic!("applying the script on the coordinator: {}", full_error(&e)));
        create_logins(&mut admin);
        load_directory_and_rows(&mut admin);
        db
    }
}

/// Citus distributes a table with foreign keys only to reference tables or between colocated
/// tables on their distribution column: the fixture's links between the CRM tables go (the
/// owners' links to the directory stay), and a table distributed by owner keys on (id, owner_id).
pub fn distribute_sql(distribution: Distribution) -> String {
    let mut sql = String::from(
        "ALTER TABLE crm.contacts DROP CONSTRAINT contacts_account_id_fkey;\
         ALTER TABLE crm.opportunities DROP CONSTRAINT opportunities_account_id_fkey;\
         ALTER TABLE crm.invoices DROP CONSTRAINT invoices_account_id_fkey;\
         ALTER TABLE crm.activities DROP CONSTRAINT activities_contact_id_fkey;\
         SELECT create_reference_table('crm.app_users');",
    );
    for t in TABLES {
        if distribution == Distribution::ByOwner {
            let _ = write!(
                sql,
                "ALTER TABLE crm.{t} DROP CONSTRAINT {t}_pkey; ALTER TABLE crm.{t} ADD PRIMARY KEY (id, owner_id);"
            );
        }
        let _ = write!(sql, "SELECT create_distributed_table('crm.{t}', '{}');", distribution.column());
    }
    sql
}

/// The Citus variant of crm.yaml (tests/fixtures/crm-citus.yaml).
pub fn citus_spec_path() -> PathBuf {
    repo_root().join("tests/fixtures/crm-citus.yaml")
}

/// crm-citus.yaml with identity by setting (`app.person_id`).
pub fn citus_setting_spec_path() -> PathBuf {
    repo_root().join("tests/fixtures/crm-citus-setting.yaml")
}

/// Everything the server said about an error: SQLSTATE, message, detail, hint and where.
pub fn full_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!(
            "{}: {}\ndetail: {}\nhint: {}\nwhere: {}",
            d.code().code(),
            d.message(),
            d.detail().unwrap_or("-"),
            d.hint().unwrap_or("-"),
            d.where_().unwrap_or("-")
        ),
        None => e.to_string(),
    }
}

/// A connection to `node` as `user`, with a statement timeout (a hang must fail, not stall).
pub fn connect(node: &Cluster, user: &str, db: &str) -> Client {
    let mut c = node.connect(user, db).unwrap_or_else(|e| panic!("connect as {user}: {e}"));
    c.batch_execute("SET statement_timeout = '30s'").unwrap();
    c
}

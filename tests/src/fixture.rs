//! The CRM fixture: a directory of people (hierarchy six levels deep, teams, people without a
//! team, inactive people, people with two roles, one without any role, one without a login),
//! one row per person in every protected table (two invoices: one voided), and the database
//! setup that loads the schema, applies the compiled spec and creates every login.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use postgres::Client;
use rowsec_generator::model::{QualifiedName, Spec};
use rowsec_generator::{Backend, Options};

use crate::cluster::{repo_root, Cluster, Notices};
use rowsec_generator::oracle::{self, Outcome};

#[derive(Debug, Clone)]
pub struct Person {
    pub id: i64,
    pub name: String,
    pub manager: Option<i64>,
    pub team: Option<i64>,
    pub active: bool,
    /// PostgreSQL login role; `None` for a person who never logs in.
    pub login: Option<String>,
    /// Spec roles (group roles) the login is a member of.
    pub roles: Vec<&'static str>,
}

pub use rowsec_generator::oracle::Row;

impl From<&Person> for oracle::Person {
    fn from(p: &Person) -> oracle::Person {
        oracle::Person {
            id: p.id,
            manager: p.manager,
            team: p.team.map(|t| t.to_string()),
            active: p.active,
            roles: p.roles.iter().map(|r| r.to_string()).collect(),
        }
    }
}

pub fn login_of(id: i64) -> String {
    format!("rs_p{id}")
}

/// (id, name, manager, team, active, has login, roles)
type P = (i64, &'static str, Option<i64>, Option<i64>, bool, bool, &'static [&'static str]);

const PEOPLE: &[P] = &[
    (1, "ceo", None, None, true, true, &["cxo"]),
    (2, "admin", Some(1), None, true, true, &["crm_admin"]),
    (3, "sales director", Some(1), None, true, true, &["sales_director"]),
    (4, "analyst lead", Some(1), Some(900), true, true, &["data_analyst"]),
    (5, "analyst", Some(4), Some(900), true, true, &["data_analyst"]),
    (10, "manager east", Some(3), Some(100), true, true, &["sales_manager"]),
    (11, "manager west", Some(3), Some(200), true, true, &["sales_manager"]),
    (12, "manager solo", Some(3), None, true, true, &["sales_manager"]),
    (20, "rep e1", Some(10), Some(100), true, true, &["sales_rep"]),
    (21, "rep e2", Some(10), Some(100), true, true, &["sales_rep"]),
    (22, "rep e3", Some(10), Some(100), true, true, &["sales_rep"]),
    (23, "rep w1", Some(11), Some(200), true, true, &["sales_rep"]),
    (24, "rep w2", Some(11), Some(200), true, true, &["sales_rep"]),
    (25, "rep w3", Some(11), Some(200), true, true, &["sales_rep"]),
    (26, "rep solo1", Some(12), None, true, true, &["sales_rep"]),
    (27, "rep solo2", Some(12), None, true, true, &["sales_rep"]),
    (30, "junior e1", Some(20), Some(100), true, true, &["sales_rep"]),
    (31, "junior e2", Some(20), Some(100), true, true, &["sales_rep"]),
    (32, "junior w1", Some(23), Some(200), true, true, &["sales_rep"]),
    (33, "intern e1", Some(30), Some(100), true, true, &["sales_rep"]),
    (40, "marketing head", Some(1), Some(300), true, true, &["marketer"]),
    (41, "marketer 1", Some(40), Some(300), true, true, &["marketer"]),
    (42, "marketer 2", Some(40), Some(300), true, true, &["marketer"]),
    (43, "marketer 3", Some(41), Some(300), true, true, &["marketer"]),
    (44, "marketing analyst", Some(40), Some(300), true, true, &["marketer", "data_analyst"]),
    (50, "support lead", Some(2), Some(400), true, true, &["support"]),
    (51, "support 1", Some(50), Some(400), true, true, &["support"]),
    (52, "support 2", Some(50), Some(400), true, true, &["support"]),
    (53, "support 3", Some(51), Some(400), true, true, &["support"]),
    (54, "support solo", Some(50), None, true, true, &["support"]),
    (55, "rep+support east", Some(10), Some(100), true, true, &["sales_rep", "support"]),
    (56, "rep+support west", Some(11), Some(200), true, true, &["sales_rep", "support"]),
    (60, "departed rep", Some(10), Some(100), false, true, &["sales_rep"]),
    (61, "departed manager", Some(3), None, false, true, &["sales_manager"]),
    (62, "rep under departed", Some(61), Some(500), true, true, &["sales_rep"]),
    (63, "junior under departed", Some(62), Some(500), true, true, &["sales_rep"]),
    (64, "departed marketer", Some(40), Some(300), false, true, &["marketer"]),
    (70, "no role", Some(1), None, true, true, &[]),
    (71, "rep w4", Some(11), Some(200), true, true, &["sales_rep"]),
    (72, "cxo who sells", Some(1), None, true, true, &["cxo", "sales_rep"]),
    (73, "deputy director", Some(3), Some(100), true, true, &["sales_director"]),
    (74, "rep e4", Some(10), Some(100), true, true, &["sales_rep"]),
    (75, "manager's deputy", Some(11), Some(200), true, true, &["sales_manager"]),
    (76, "no login", Some(12), None, true, false, &[]),
];

pub fn people() -> Vec<Person> {
    PEOPLE
        .iter()
        .map(|&(id, name, manager, team, active, login, roles)| Person {
            id,
            name: name.to_owned(),
            manager,
            team,
            active,
            login: login.then(|| login_of(id)),
            roles: roles.to_vec(),
        })
        .collect()
}

pub fn table(name: &str) -> QualifiedName {
    QualifiedName::new("crm", name)
}

pub const TABLES: [&str; 5] = ["accounts", "contacts", "opportunities", "invoices", "activities"];

/// Every protected table of crm.yaml.
pub fn tables() -> Vec<QualifiedName> {
    TABLES.iter().map(|t| table(t)).collect()
}

/// One row per person per table, keyed `person * 100 + 1`; invoices also get a voided
/// `person * 100 + 2`.
pub fn rows() -> BTreeMap<QualifiedName, Vec<Row>> {
    let mut out = BTreeMap::new();
    for t in tables() {
        let mut v = Vec::new();
        for p in PEOPLE {
            v.push(Row { key: p.0 * 100 + 1, owner: p.0, voided: false });
            if t.name == "invoices" {
                v.push(Row { key: p.0 * 100 + 2, owner: p.0, voided: true });
            }
        }
        out.insert(t, v);
    }
    out
}

/// An INSERT of one row with every NOT NULL column filled (and classed columns set, so a
/// successful read returns data).
pub fn insert_sql(table: &QualifiedName, row: &Row) -> String {
    let (k, o) = (row.key, row.owner);
    match table.name.as_str() {
        "accounts" => format!(
            "INSERT INTO crm.accounts (id, owner_id, name, industry, annual_revenue, credit_limit) \
             VALUES ({k}, {o}, 'account {k}', 'retail', {k}000, {k}0)"
        ),
        "contacts" => format!(
            "INSERT INTO crm.contacts (id, owner_id, full_name, phone, email) \
             VALUES ({k}, {o}, 'contact {k}', '+1-555-{k}', 'c{k}@example.com')"
        ),
        "opportunities" => format!(
            "INSERT INTO crm.opportunities (id, owner_id, title, amount) \
             VALUES ({k}, {o}, 'deal {k}', {k}00)"
        ),
        "invoices" => {
            format!("INSERT INTO crm.invoices (id, owner_id, total, voided) VALUES ({k}, {o}, {k}, {})", row.voided)
        }
        "activities" => {
            format!("INSERT INTO crm.activities (id, owner_id, kind, note) VALUES ({k}, {o}, 'call', 'note {k}')")
        }
        other => panic!("unknown table {other}"),
    }
}

/// An INSERT naming only unclassed columns (what a person without any class can write).
pub fn insert_unclassed_sql(table: &QualifiedName, row: &Row) -> String {
    let (k, o) = (row.key, row.owner);
    match table.name.as_str() {
        "accounts" => {
            format!("INSERT INTO crm.accounts (id, owner_id, name) VALUES ({k}, {o}, 'a{k}')")
        }
        "contacts" => format!("INSERT INTO crm.contacts (id, owner_id, full_name) VALUES ({k}, {o}, 'c{k}')"),
        "opportunities" => format!("INSERT INTO crm.opportunities (id, owner_id, title) VALUES ({k}, {o}, 'o{k}')"),
        "invoices" => {
            format!("INSERT INTO crm.invoices (id, owner_id, total, voided) VALUES ({k}, {o}, 1, {})", row.voided)
        }
        "activities" => format!("INSERT INTO crm.activities (id, owner_id, kind) VALUES ({k}, {o}, 'call')"),
        other => panic!("unknown table {other}"),
    }
}

/// An unclassed, non-key, non-owner column every table has something to write into.
pub fn plain_column(table: &QualifiedName) -> &'static str {
    match table.name.as_str() {
        "accounts" => "name",
        "contacts" => "full_name",
        "opportunities" => "title",
        "invoices" => "total",
        "activities" => "kind",
        other => panic!("unknown table {other}"),
    }
}

pub fn examples() -> PathBuf {
    repo_root().join("examples")
}

pub fn crm_spec_path() -> PathBuf {
    examples().join("crm.yaml")
}

pub fn setting_spec_path() -> PathBuf {
    repo_root().join("tests/fixtures/crm-setting.yaml")
}

pub fn schema_path() -> PathBuf {
    examples().join("crm-schema.sql")
}

/// Loads a spec through the generator's public `load` (the oracle reads the raw model).
pub fn load(spec: &Path) -> rowsec_generator::Loaded {
    rowsec_generator::load(spec, Some(&schema_path())).unwrap_or_else(|e| panic!("loading {}: {e:?}", spec.display()))
}

/// The backend under test: `ROWSEC_BACKEND=sql` runs the suites on the SQL backend (clusters
/// without the extension preloaded, scripts compiled with `--backend sql --accept-unenforced`);
/// anything else, or nothing, on the extension.
pub fn backend() -> Backend {
    match std::env::var("ROWSEC_BACKEND").as_deref() {
        Ok("sql") => Backend::Sql,
        _ => Backend::Extension,
    }
}

/// The options every fixture script is compiled with: the backend under test.
pub fn options() -> Options {
    Options { backend: backend(), accept_unenforced: backend() == Backend::Sql, ..Options::default() }
}

/// True (and says why, once per test) when a test checks what only the extension does: the
/// caller returns early on the SQL backend.
pub fn extension_only(why: &str) -> bool {
    if backend() == Backend::Sql {
        println!("skipped on the SQL backend: {why}");
        return true;
    }
    false
}

/// The whole generated script for a spec, for the backend under test.
pub fn compile(spec: &Path) -> String {
    rowsec_generator::compile_with(&load(spec), &options())
}

/// Schema, generated script, logins, directory and rows: everything a test database needs.
pub fn prepare_database(cluster: &Cluster, db: &str, spec: &Path) {
    let mut admin = cluster.admin(db);
    let schema = std::fs::read_to_string(schema_path()).expect("read crm-schema.sql");
    admin.batch_execute(&schema).expect("load crm-schema.sql");
    let script = compile(spec);
    admin
        .batch_execute(&script)
        .unwrap_or_else(|e| panic!("applying the generated script for {}: {}", spec.display(), db_error(&e)));
    create_logins(&mut admin);
    load_directory_and_rows(&mut admin);
}

/// Login roles are cluster-wide: created once, memberships re-granted idempotently.
pub fn create_logins(admin: &mut Client) {
    let mut sql = String::new();
    for p in people() {
        let Some(login) = &p.login else { continue };
        let _ = write!(
            sql,
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{login}') THEN \
             CREATE ROLE {login} LOGIN; END IF; END $$;"
        );
        for r in &p.roles {
            let _ = write!(sql, "GRANT {r} TO {login};");
        }
    }
    admin.batch_execute(&sql).expect("create logins");
}

pub fn load_directory_and_rows(admin: &mut Client) {
    let mut sql = String::from("BEGIN;");
    // Managers first would need ordering; insert without managers, then link them.
    for p in people() {
        let team = p.team.map_or("NULL".to_owned(), |t| t.to_string());
        let login = p.login.as_ref().map_or("NULL".to_owned(), |l| format!("'{l}'"));
        let _ = write!(
            sql,
            "INSERT INTO crm.app_users (id, name, team_id, db_login, active) \
             VALUES ({}, '{}', {team}, {login}, {});",
            p.id,
            p.name.replace('\'', "''"),
            p.active
        );
    }
    for p in people() {
        if let Some(m) = p.manager {
            let _ = write!(sql, "UPDATE crm.app_users SET manager_id = {m} WHERE id = {};", p.id);
        }
    }
    for (t, rows) in rows() {
        for r in rows {
            sql.push_str(&insert_sql(&t, &r));
            sql.push(';');
        }
    }
    // Keys written by tests with DEFAULT must not collide with the fixture's.
    for t in TABLES {
        let _ = write!(sql, "SELECT setval('crm.{t}_id_seq', 1000000);");
    }
    sql.push_str("COMMIT;");
    admin.batch_execute(&sql).expect("load directory and rows");
}

/// Policies, table and column privileges, roles and memberships, as comparable lines (no OIDs).
pub fn catalog_snapshot(c: &mut Client) -> BTreeSet<String> {
    let queries = [
        "SELECT 'policy ' || schemaname || '.' || tablename || ' ' || policyname || ' ' || permissive \
         || ' ' || cmd || ' ' || roles::text || ' using ' || coalesce(qual, '-') || ' check ' \
         || coalesce(with_check, '-') FROM pg_policies",
        "SELECT 'table ' || c.oid::regclass::text || ' rls ' || c.relrowsecurity || ' force ' \
         || c.relforcerowsecurity || ' owner ' || pg_get_userbyid(c.relowner) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('crm', 'rowsec')",
        "SELECT 'acl ' || c.oid::regclass::text || ' ' || pg_get_userbyid(x.grantee) || ' ' \
         || x.privilege_type || ' by ' || pg_get_userbyid(x.grantor) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) x \
         WHERE n.nspname IN ('crm', 'rowsec')",
        "SELECT 'colacl ' || a.attrelid::regclass::text || '.' || a.attname || ' ' \
         || pg_get_userbyid(x.grantee) || ' ' || x.privilege_type FROM pg_attribute a \
         JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace, \
         aclexplode(a.attacl) x WHERE n.nspname IN ('crm', 'rowsec')",
        // The script keeps its before-state in a temporary table; PostgreSQL keeps the
        // session's temporary schemas for later sessions, so they are not the script's doing.
        "SELECT 'schema ' || nspname || ' ' || coalesce(nspacl::text, '-') FROM pg_namespace \
         WHERE nspname !~ '^pg_(toast_)?temp_'",
        "SELECT 'function ' || p.oid::regprocedure::text || ' ' || coalesce(p.proacl::text, '-') \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'rowsec'",
        "SELECT 'role ' || rolname || ' ' || rolsuper || rolinherit || rolcreaterole || rolcreatedb \
         || rolcanlogin || rolreplication || rolbypassrls FROM pg_roles",
        "SELECT 'member ' || pg_get_userbyid(roleid) || ' ' || pg_get_userbyid(member) \
         || ' ' || admin_option FROM pg_auth_members",
        "SELECT 'config ' || t::text FROM rowsec.config t",
        // Not `applied`: the script's own bookkeeping (a hash of the block that built the table),
        // which differs between two scripts that make the same catalog (with and without --schema).
        "SELECT 'protected ' || concat_ws(' ', tbl, key_column, owner_column, sharing) FROM rowsec.protected_tables",
    ];
    let mut out = BTreeSet::new();
    for q in queries {
        for r in c.query(q, &[]).unwrap_or_else(|e| panic!("{q}: {e}")) {
            out.insert(r.get::<_, String>(0));
        }
    }
    out
}

/// One cluster per test binary, with a template database per spec.
pub struct Env {
    pub cluster: Cluster,
    pub spec: Spec,
    pub setting_spec: Spec,
    pub people: Vec<Person>,
    pub rows: BTreeMap<QualifiedName, Vec<Row>>,
    templates: Mutex<BTreeMap<String, String>>,
}

pub fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| Env {
        cluster: Cluster::start(),
        spec: load(&crm_spec_path()).spec,
        setting_spec: load(&setting_spec_path()).spec,
        people: people(),
        rows: rows(),
        templates: Mutex::new(BTreeMap::new()),
    })
}

impl Env {
    /// A database of its own for one test, copied from a prepared template for `spec`.
    pub fn database_for(&self, spec: &Path) -> String {
        // Serialised: CREATE DATABASE .. TEMPLATE refuses while the template is being copied
        // or prepared by another test.
        let mut templates = self.templates.lock().unwrap_or_else(|e| e.into_inner());
        let key = spec.display().to_string();
        let template = match templates.get(&key) {
            Some(t) => t.clone(),
            None => {
                let t = self.cluster.create_database("tpl", None);
                prepare_database(&self.cluster, &t, spec);
                templates.insert(key, t.clone());
                t
            }
        };
        self.cluster.create_database("t", Some(&template))
    }

    /// A database with crm.yaml applied (login identity).
    pub fn crm_db(&self) -> String {
        self.database_for(&crm_spec_path())
    }

    /// People who can log in.
    pub fn logins(&self) -> impl Iterator<Item = &Person> {
        self.people.iter().filter(|p| p.login.is_some())
    }

    pub fn person(&self, id: i64) -> &Person {
        self.people.iter().find(|p| p.id == id).unwrap_or_else(|| panic!("no person {id}"))
    }

    /// Like [`Env::login`], keeping the notices and warnings the session receives.
    pub fn login_collecting_notices(&self, db: &str, person: i64) -> (Client, Notices) {
        let login = self.person(person).login.clone().expect("person has a login");
        let (mut c, notices) =
            self.cluster.connect_collecting_notices(&login, db).unwrap_or_else(|e| panic!("login as {login}: {e}"));
        c.batch_execute("SET statement_timeout = '20s'").unwrap();
        (c, notices)
    }

    /// A session as a person, through their own login role.
    pub fn login(&self, db: &str, person: i64) -> Client {
        let login = self.person(person).login.clone().expect("person has a login");
        let mut c = self.cluster.connect(&login, db).unwrap_or_else(|e| panic!("login as {login}: {e}"));
        // A hang (e.g. on a manager cycle) must fail the test, not stall it.
        c.batch_execute("SET statement_timeout = '20s'").unwrap();
        c
    }
}

/// `"SQLSTATE: message"` of a database error, for assertion messages.
pub fn db_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    }
}

/// Maps a statement's result onto the oracle's outcomes.
pub fn classify(r: Result<u64, postgres::Error>) -> Outcome {
    match r {
        Ok(n) => Outcome::Rows(n),
        Err(e) => match e.as_db_error() {
            Some(d) if d.code().code() == "42501" => {
                if d.message().contains("row-level security") {
                    Outcome::RlsViolation
                } else {
                    Outcome::PermissionDenied
                }
            }
            _ => Outcome::Error(db_error(&e)),
        },
    }
}

/// Runs one statement in a transaction that is always rolled back, so the data stays fixed.
pub fn try_rolled_back(client: &mut Client, sql: &str) -> Outcome {
    let mut tx = client.transaction().expect("begin");
    let r = tx.execute(sql, &[]);
    let _ = tx.rollback();
    classify(r)
}

/// The keys a query returns, or how it failed.
pub fn keys(client: &mut Client, sql: &str) -> Result<BTreeSet<i64>, Outcome> {
    match client.query(sql, &[]) {
        Ok(rows) => Ok(rows.iter().map(|r| r.get::<_, i64>(0)).collect()),
        Err(e) => Err(classify(Err(e))),
    }
}

/// Counts checks and prints the total, so a run shows how much it compared.
pub struct Tally {
    pub name: &'static str,
    pub checked: usize,
    pub failures: Vec<String>,
}

impl Tally {
    pub fn new(name: &'static str) -> Self {
        Tally { name, checked: 0, failures: Vec::new() }
    }

    pub fn check<T: PartialEq + std::fmt::Debug>(&mut self, what: String, expected: T, actual: T) {
        self.checked += 1;
        if expected != actual {
            self.failures.push(format!("{what}: expected {expected:?}, got {actual:?}"));
        }
    }

    /// Prints the count and fails with (up to 40 of) the mismatches.
    pub fn finish(self) {
        println!("{}: {} combinations checked, {} mismatched", self.name, self.checked, self.failures.len());
        assert!(
            self.failures.is_empty(),
            "{}: {} of {} combinations differ from the oracle:\n{}",
            self.name,
            self.failures.len(),
            self.checked,
            self.failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
        );
    }
}

//! Differential testing (issue 14): random valid specs, directories (deep and wide trees,
//! teams, inactive people, cycles, people without a login), rows and shares, applied to a real
//! cluster and compared with the oracle of SPEC.md person x table x command x column. A case
//! that differs is shrunk (greedily: drop a share, a row, a person, a role, a table, a rule...
//! while it still differs) and printed as a spec, a directory and rows anyone can replay.
//!
//! Everything comes from a seed (splitmix64, no dependency), so a failure names the seed that
//! reproduces it: `ROWSEC_SEED=<seed> ROWSEC_CASES=1 cargo test -p rowsec-e2e --test differential`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use postgres::Client;
use rowsec_generator::model::{Command, QualifiedName};
use rowsec_generator::oracle::{self, Oracle, Outcome, Row};
use rowsec_generator::Schema;

use crate::fixture::{classify, db_error};

/// splitmix64: small, seedable, good enough to pick test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0..n
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// true with probability `p` percent
    pub fn chance(&mut self, p: u64) -> bool {
        self.next_u64() % 100 < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The tables every case may protect (all exist in every case's database).
pub const TABLE_NAMES: [&str; 3] = ["t1", "t2", "t3"];
/// Columns a case may class; `note` is never classed.
const CLASSABLE: [&str; 2] = ["c1", "c2"];
const CLASSES: [&str; 2] = ["k1", "k2"];
/// Group roles a case may define (cluster-wide names, reused from case to case).
const ROLE_NAMES: [&str; 4] = ["dr0", "dr1", "dr2", "dr3"];
const SCOPES: [&str; 5] = ["none", "own", "team", "subtree", "all"];
const COMMANDS: [&str; 4] = ["select", "insert", "update", "delete"];
/// Person ids come from 1..=MAX_ID, so some owners and share targets are not in the directory.
const MAX_ID: i64 = 14;
/// The login of somebody the directory does not know: resolves to nobody.
pub const NOBODY_LOGIN: &str = "dl_nobody";
const SETTING: &str = "diff.person";
/// The key signed identity's tokens are made with (in every database `prepare` made).
const KEY_ID: &str = "dk";
const SECRET: &[u8; 32] = b"differential-testing-secret-0001";

pub const SCHEMA_SQL: &str = "
CREATE SCHEMA d;
CREATE TABLE d.people (id bigint PRIMARY KEY, manager_id bigint, team_id text, login text, active boolean);
CREATE TABLE d.t1 (id bigint PRIMARY KEY, owner_id bigint NOT NULL, voided boolean NOT NULL DEFAULT false, note text, c1 text, c2 text);
CREATE TABLE d.t2 (id bigint PRIMARY KEY, owner_id bigint NOT NULL, voided boolean NOT NULL DEFAULT false, note text, c1 text, c2 text);
CREATE TABLE d.t3 (id bigint PRIMARY KEY, owner_id bigint NOT NULL, voided boolean NOT NULL DEFAULT false, note text, c1 text, c2 text);
";

pub fn login_of(id: i64) -> String {
    format!("dl{id}")
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableCase {
    pub name: &'static str,
    /// column -> class
    pub columns: BTreeMap<&'static str, &'static str>,
    pub always: bool,
    pub sharing: bool,
}

/// command -> scope (`None` = the whole override is `none`).
pub type Commands = Option<BTreeMap<&'static str, &'static str>>;

#[derive(Debug, Clone, PartialEq)]
pub struct RoleCase {
    pub name: &'static str,
    pub level: Option<String>,
    /// `"*"` or a table name -> override
    pub tables: BTreeMap<String, Commands>,
    pub fields: BTreeMap<&'static str, &'static str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PersonCase {
    pub id: i64,
    pub manager: Option<i64>,
    pub team: Option<&'static str>,
    pub active: bool,
    /// The directory's login column names the person's PostgreSQL role.
    pub login: bool,
    pub roles: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShareCase {
    pub table: &'static str,
    pub key: i64,
    pub to_person: Option<i64>,
    pub to_team: Option<&'static str>,
    pub write: bool,
    pub expired: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub seed: u64,
    pub setting_identity: bool,
    /// With the setting: `signed: true`, so each actor's setting is a token (issue 14).
    pub signed: bool,
    pub levels: BTreeMap<String, BTreeMap<&'static str, &'static str>>,
    pub tables: Vec<TableCase>,
    pub roles: Vec<RoleCase>,
    pub people: Vec<PersonCase>,
    /// The roles of the login the directory does not know (login identity only).
    pub nobody_roles: Vec<&'static str>,
    /// table -> rows
    pub rows: BTreeMap<&'static str, Vec<Row>>,
    pub shares: Vec<ShareCase>,
}

fn random_commands(rng: &mut Rng, at_least_one: bool) -> BTreeMap<&'static str, &'static str> {
    let mut m = BTreeMap::new();
    for c in COMMANDS {
        if rng.chance(55) {
            m.insert(c, *rng.pick(&SCOPES));
        }
    }
    if at_least_one && m.is_empty() {
        m.insert(*rng.pick(&COMMANDS), *rng.pick(&SCOPES));
    }
    m
}

impl Case {
    /// A random case; it may be an invalid spec (the caller draws again: see [`Case::valid`]).
    pub fn random(seed: u64) -> Case {
        let mut rng = Rng::new(seed);
        let mut levels = BTreeMap::new();
        for i in 0..rng.below(3) {
            levels.insert(format!("lv{i}"), random_commands(&mut rng, true));
        }
        let mut tables = Vec::new();
        for name in TABLE_NAMES {
            if tables.is_empty() || rng.chance(50) {
                let mut columns = BTreeMap::new();
                for c in CLASSABLE {
                    if rng.chance(40) {
                        columns.insert(c, *rng.pick(&CLASSES));
                    }
                }
                tables.push(TableCase { name, columns, always: rng.chance(35), sharing: rng.chance(50) });
            }
        }
        let classes: BTreeSet<&str> = tables.iter().flat_map(|t| t.columns.values().copied()).collect();
        let mut roles = Vec::new();
        for name in ROLE_NAMES {
            if !roles.is_empty() && rng.chance(40) {
                continue;
            }
            let level = (!levels.is_empty() && rng.chance(75))
                .then(|| rng.pick(&levels.keys().cloned().collect::<Vec<_>>()).clone());
            let mut overrides = BTreeMap::new();
            if rng.chance(30) {
                overrides
                    .insert("*".to_owned(), if rng.chance(15) { None } else { Some(random_commands(&mut rng, true)) });
            }
            for t in &tables {
                if rng.chance(25) {
                    let o = if rng.chance(25) { None } else { Some(random_commands(&mut rng, true)) };
                    overrides.insert(format!("d.{}", t.name), o);
                }
            }
            let mut fields = BTreeMap::new();
            for c in &classes {
                if rng.chance(60) {
                    fields.insert(*c, *rng.pick(&["none", "read", "write"]));
                }
            }
            roles.push(RoleCase { name, level, tables: overrides, fields });
        }
        let role_names: Vec<&'static str> = roles.iter().map(|r| r.name).collect();
        // Deep (chains), wide (one manager, many reports), or random; sometimes a cycle.
        let n = 2 + rng.below(9);
        let mut ids: Vec<i64> = (1..=MAX_ID).collect();
        for i in (1..ids.len()).rev() {
            let j = rng.below(i + 1);
            ids.swap(i, j);
        }
        ids.truncate(n);
        let shape = rng.below(3);
        let mut people = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            let manager = match (i, shape) {
                (0, _) => None,
                (_, 0) => Some(ids[i - 1]),
                (_, 1) => Some(ids[0]),
                _ => (rng.chance(85)).then(|| ids[rng.below(i)]),
            };
            let mut held = Vec::new();
            for r in &role_names {
                if rng.chance(if held.is_empty() { 60 } else { 25 }) {
                    held.push(*r);
                }
            }
            people.push(PersonCase {
                id,
                manager,
                team: *rng.pick(&[None, Some("a"), Some("b"), Some("a")]),
                active: rng.chance(85),
                login: rng.chance(90),
                roles: held,
            });
        }
        if n > 2 && rng.chance(20) {
            // The root reports to someone below it: a cycle.
            let k = 1 + rng.below(n - 1);
            people[0].manager = Some(ids[k]);
        }
        let nobody_roles = role_names.iter().copied().filter(|_| rng.chance(50)).collect();
        let mut rows = BTreeMap::new();
        let mut key = 100;
        for t in &tables {
            let mut v = Vec::new();
            for _ in 0..(2 + rng.below(6)) {
                key += 1;
                let owner = if rng.chance(85) { ids[rng.below(n)] } else { 1 + rng.below(MAX_ID as usize) as i64 };
                v.push(Row { key, owner, voided: rng.chance(25) });
            }
            rows.insert(t.name, v);
        }
        let mut shares = Vec::new();
        for t in tables.iter().filter(|t| t.sharing) {
            for _ in 0..rng.below(4) {
                let key = rng.pick(&rows[t.name]).key;
                let (to_person, to_team) =
                    if rng.chance(70) { (Some(ids[rng.below(n)]), None) } else { (None, Some(*rng.pick(&["a", "b"]))) };
                shares.push(ShareCase {
                    table: t.name,
                    key,
                    to_person,
                    to_team,
                    write: rng.chance(50),
                    expired: rng.chance(20),
                });
            }
        }
        let setting_identity = rng.chance(30);
        // Drawn last, so a seed's other draws are what they were before signed identity.
        let signed = setting_identity && rng.chance(50);
        Case { seed, setting_identity, signed, levels, tables, roles, people, nobody_roles, rows, shares }
    }

    /// The spec as YAML.
    pub fn yaml(&self) -> String {
        let mut y = String::from("version: 1\n");
        y.push_str("directory: { table: d.people, id: id, manager: manager_id, team: team_id, login: login, active: active }\n");
        if self.signed {
            let _ = writeln!(y, "identity: {{ setting: {SETTING}, signed: true }}");
        } else if self.setting_identity {
            let _ = writeln!(y, "identity: {{ setting: {SETTING} }}");
        } else {
            y.push_str("identity: login\n");
        }
        if !self.levels.is_empty() {
            y.push_str("levels:\n");
            for (name, cmds) in &self.levels {
                let _ = writeln!(y, "  {name}: {}", flow(cmds));
            }
        }
        y.push_str("tables:\n");
        for t in &self.tables {
            let _ = write!(y, "  d.{}: {{ key: id, owner: owner_id", t.name);
            if !t.columns.is_empty() {
                let _ = write!(y, ", columns: {}", flow(&t.columns));
            }
            if t.always {
                y.push_str(", always: \"NOT voided\"");
            }
            if t.sharing {
                y.push_str(", sharing: true");
            }
            y.push_str(" }\n");
        }
        y.push_str("roles:\n");
        for r in &self.roles {
            let mut parts = Vec::new();
            if let Some(l) = &r.level {
                parts.push(format!("level: {l}"));
            }
            if !r.tables.is_empty() {
                let o: Vec<String> = r
                    .tables
                    .iter()
                    .map(|(t, c)| {
                        let t = if t == "*" { "\"*\"".to_owned() } else { t.clone() };
                        format!("{t}: {}", c.as_ref().map_or("none".to_owned(), flow))
                    })
                    .collect();
                parts.push(format!("tables: {{ {} }}", o.join(", ")));
            }
            if !r.fields.is_empty() {
                parts.push(format!("fields: {}", flow(&r.fields)));
            }
            let _ = writeln!(y, "  {}: {{ {} }}", r.name, parts.join(", "));
        }
        y
    }

    /// The case's spec, when valid.
    pub fn load(&self) -> Option<rowsec_generator::Loaded> {
        let schema = Schema::parse(SCHEMA_SQL).expect("the differential schema parses");
        rowsec_generator::load_str("differential.yaml", &self.yaml(), Some(schema)).ok()
    }

    /// Directory, memberships, rows and shares, for a person who replays a failure by hand.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "seed {}\n--- spec\n{}--- directory (id, manager, team, active, login, roles)\n",
            self.seed,
            self.yaml()
        );
        for p in &self.people {
            let _ = writeln!(
                s,
                "  {}, {:?}, {:?}, {}, {}, {:?}",
                p.id,
                p.manager,
                p.team,
                p.active,
                if p.login { login_of(p.id) } else { "-".into() },
                p.roles
            );
        }
        if !self.setting_identity {
            let _ = writeln!(s, "  (login {NOBODY_LOGIN}, not in the directory: roles {:?})", self.nobody_roles);
        }
        s.push_str("--- rows (table: key/owner[/voided])\n");
        for (t, rows) in &self.rows {
            let r: Vec<String> = rows
                .iter()
                .map(|r| format!("{}/{}{}", r.key, r.owner, if r.voided { "/voided" } else { "" }))
                .collect();
            let _ = writeln!(s, "  {t}: {}", r.join(" "));
        }
        if !self.shares.is_empty() {
            s.push_str("--- shares\n");
            for sh in &self.shares {
                let _ = writeln!(s, "  {sh:?}");
            }
        }
        s
    }

    /// Smaller cases, each one simplification away from this one.
    pub fn simpler(&self) -> Vec<Case> {
        let mut out = Vec::new();
        let mut push = |f: &dyn Fn(&mut Case)| {
            let mut c = self.clone();
            f(&mut c);
            if c != *self {
                out.push(c);
            }
        };
        for i in 0..self.shares.len() {
            push(&|c| {
                c.shares.remove(i);
            });
        }
        for (t, rows) in &self.rows {
            for i in 0..rows.len() {
                let t = *t;
                push(&|c| {
                    let key = c.rows.get_mut(t).unwrap().remove(i).key;
                    c.shares.retain(|s| !(s.table == t && s.key == key));
                });
            }
        }
        for i in 0..self.people.len() {
            push(&|c| {
                let gone = c.people.remove(i).id;
                for p in &mut c.people {
                    if p.manager == Some(gone) {
                        p.manager = None;
                    }
                }
                c.shares.retain(|s| s.to_person != Some(gone));
            });
        }
        for i in 0..self.people.len() {
            push(&|c| c.people[i].manager = None);
            push(&|c| c.people[i].team = None);
            push(&|c| c.people[i].active = true);
            push(&|c| c.people[i].login = true);
            for j in 0..self.people[i].roles.len() {
                push(&|c| {
                    c.people[i].roles.remove(j);
                });
            }
        }
        push(&|c| c.nobody_roles.clear());
        push(&|c| {
            c.setting_identity = false;
            c.signed = false;
        });
        push(&|c| c.signed = false);
        for i in 0..self.roles.len() {
            push(&|c| {
                let gone = c.roles.remove(i).name;
                for p in &mut c.people {
                    p.roles.retain(|r| *r != gone);
                }
                c.nobody_roles.retain(|r| *r != gone);
            });
            push(&|c| c.roles[i].level = None);
            for t in self.roles[i].tables.keys() {
                push(&|c| {
                    c.roles[i].tables.remove(t);
                });
            }
            for f in self.roles[i].fields.keys() {
                push(&|c| {
                    c.roles[i].fields.remove(f);
                });
            }
        }
        for l in self.levels.keys() {
            push(&|c| {
                c.levels.remove(l);
                for r in &mut c.roles {
                    if r.level.as_ref() == Some(l) {
                        r.level = None;
                    }
                }
            });
        }
        for i in 0..self.tables.len() {
            push(&|c| {
                let gone = c.tables.remove(i).name;
                c.rows.remove(gone);
                c.shares.retain(|s| s.table != gone);
                for r in &mut c.roles {
                    r.tables.remove(&format!("d.{gone}"));
                }
            });
            push(&|c| c.tables[i].always = false);
            push(&|c| {
                c.tables[i].sharing = false;
                let t = c.tables[i].name;
                c.shares.retain(|s| s.table != t);
            });
            for col in self.tables[i].columns.keys() {
                push(&|c| {
                    c.tables[i].columns.remove(col);
                });
            }
        }
        out
    }
}

fn flow<K: std::fmt::Display, V: std::fmt::Display>(m: &BTreeMap<K, V>) -> String {
    let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{ {} }}", items.join(", "))
}

/// The database every case of a run is applied to, one after another (each apply converges
/// from the previous case's spec, which is tested along the way).
pub fn prepare(admin: &mut Client) {
    admin.batch_execute("CREATE EXTENSION rowsec").expect("create extension");
    admin.batch_execute(SCHEMA_SQL).expect("differential schema");
    let mut sql = String::new();
    let logins = (1..=MAX_ID).map(login_of).chain([NOBODY_LOGIN.to_owned()]);
    for l in logins {
        let _ = write!(
            sql,
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{l}') THEN CREATE ROLE {l} LOGIN; END IF; END $$;"
        );
    }
    admin.batch_execute(&sql).expect("differential logins");
    let hex: String = SECRET.iter().map(|b| format!("{b:02x}")).collect();
    admin
        .batch_execute(&format!("INSERT INTO rowsec.identity_keys (key_id, secret) VALUES ('{KEY_ID}', '\\x{hex}')"))
        .expect("the signing key");
}

/// A token for `person` acting as `role`, made with `secret` (a wrong one forges it), expiring
/// `ttl` seconds from now (negative: expired).
fn token(secret: &[u8], database: &str, person: i64, role: &str, ttl: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let claims = rowsec_core::token::Claims {
        key_id: KEY_ID.to_owned(),
        person,
        expires_at: now + ttl,
        database: database.to_owned(),
        roles: vec![role.to_owned()],
    };
    rowsec_core::token::sign(secret, &claims).expect("a valid token")
}

/// One check that differed.
pub type Mismatch = String;

/// Applies the case and compares every person x table x command x column with the oracle.
/// Returns the mismatches and how many comparisons were made.
pub fn run(admin: &mut Client, case: &Case, loaded: &rowsec_generator::Loaded) -> (Vec<Mismatch>, usize) {
    // Memberships of the previous case go first: a group role with members is kept by the
    // converge step, and this case's roles must hold exactly what it says.
    admin
        .batch_execute(
            "DO $$ DECLARE r record; BEGIN
               FOR r IN SELECT g.rolname AS g, m.rolname AS m FROM pg_auth_members a
                        JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
                        WHERE m.rolname LIKE 'dl%' LOOP
                 EXECUTE format('REVOKE %I FROM %I', r.g, r.m);
               END LOOP; END $$;
             DELETE FROM rowsec.shares; DELETE FROM d.people; DELETE FROM d.t1; DELETE FROM d.t2; DELETE FROM d.t3;",
        )
        .unwrap_or_else(|e| panic!("reset: {}", db_error(&e)));
    let script = rowsec_generator::compile(loaded);
    if let Err(e) = admin.batch_execute(&script) {
        return (vec![format!("applying the script failed: {}", db_error(&e))], 1);
    }
    let mut sql = String::from("BEGIN;");
    for p in &case.people {
        let login = if p.login { format!("'{}'", login_of(p.id)) } else { "NULL".into() };
        let team = p.team.map_or("NULL".to_owned(), |t| format!("'{t}'"));
        let manager = p.manager.map_or("NULL".to_owned(), |m| m.to_string());
        let _ = write!(sql, "INSERT INTO d.people VALUES ({}, {manager}, {team}, {login}, {});", p.id, p.active);
        for r in &p.roles {
            let _ = write!(sql, "GRANT {r} TO {};", login_of(p.id));
        }
    }
    if !case.setting_identity {
        for r in &case.nobody_roles {
            let _ = write!(sql, "GRANT {r} TO {NOBODY_LOGIN};");
        }
    }
    for (t, rows) in &case.rows {
        for r in rows {
            let _ = write!(
                sql,
                "INSERT INTO d.{t} (id, owner_id, voided, note, c1, c2) VALUES ({}, {}, {}, 'n', 'x', 'y');",
                r.key, r.owner, r.voided
            );
        }
    }
    for s in &case.shares {
        let _ = write!(
            sql,
            "INSERT INTO rowsec.shares (tbl, row_key, grantee_person, grantee_team, access, expires_at, granted_by) \
             VALUES ('d.{}', {}, {}, {}, '{}', {}, 0);",
            s.table,
            s.key,
            s.to_person.map_or("NULL".into(), |p| p.to_string()),
            s.to_team.map_or("NULL".into(), |t| format!("'{t}'")),
            if s.write { "write" } else { "read" },
            if s.expired { "now() - interval '1 hour'" } else { "now() + interval '1 day'" },
        );
    }
    sql.push_str("COMMIT;");
    admin.batch_execute(&sql).unwrap_or_else(|e| panic!("loading case {}: {}", case.seed, db_error(&e)));

    let spec = &loaded.spec;
    let mut people: Vec<oracle::Person> = case
        .people
        .iter()
        .map(|p| oracle::Person {
            id: p.id,
            manager: p.manager,
            team: p.team.map(str::to_owned),
            active: p.active,
            roles: p.roles.iter().map(|r| r.to_string()).collect(),
        })
        .collect();
    // Who acts: under login identity every person whose directory row names their login, and
    // the login the directory does not know (an inactive stranger to the oracle); under the
    // setting, every person (through their own role), and a missing setting (nobody).
    let mut actors: Vec<(i64, String, Option<String>)> = Vec::new();
    const STRANGER: i64 = 1_000;
    if case.setting_identity {
        // Signed: each person's token names them and the role they act as (their own login,
        // member of their group roles), for this database.
        let database: String = if case.signed {
            admin.query_one("SELECT current_database()::text", &[]).expect("database name").get(0)
        } else {
            String::new()
        };
        let setting = |person: i64, secret: &[u8], ttl: i64| {
            if case.signed {
                token(secret, &database, person, &login_of(person), ttl)
            } else {
                person.to_string()
            }
        };
        for p in &case.people {
            actors.push((p.id, login_of(p.id), Some(setting(p.id, SECRET, 3600))));
        }
        if let Some(p) = case.people.first() {
            // The person's roles and no setting, a forged token or an expired one: nobody.
            // The oracle sees an inactive stranger with those roles.
            people.push(oracle::Person {
                id: STRANGER,
                manager: None,
                team: None,
                active: false,
                roles: people[0].roles.clone(),
            });
            actors.push((STRANGER, login_of(p.id), None));
            if case.signed {
                actors.push((STRANGER, login_of(p.id), Some(setting(p.id, b"not-the-key-of-this-database-000", 3600))));
                actors.push((STRANGER, login_of(p.id), Some(setting(p.id, SECRET, -60))));
            }
        }
    } else {
        for p in case.people.iter().filter(|p| p.login) {
            actors.push((p.id, login_of(p.id), None));
        }
        people.push(oracle::Person {
            id: STRANGER,
            manager: None,
            team: None,
            active: false,
            roles: case.nobody_roles.iter().map(|r| r.to_string()).collect(),
        });
        actors.push((STRANGER, NOBODY_LOGIN.to_owned(), None));
    }
    let shares = case
        .shares
        .iter()
        .map(|s| oracle::Share {
            table: QualifiedName::new("d", s.table),
            key: s.key,
            to_person: s.to_person,
            to_team: s.to_team.map(str::to_owned),
            write: s.write,
            expired: s.expired,
        })
        .collect();
    let o = Oracle { spec, people: people.into_iter().map(|p| (p.id, p)).collect(), shares };

    let mut mismatches = Vec::new();
    let mut checked = 0;
    let mut check = |what: String, expected: Outcome, actual: Outcome| {
        checked += 1;
        if expected != actual {
            mismatches.push(format!("{what}: oracle {expected:?}, database {actual:?}"));
        }
    };
    let owners: Vec<i64> = case.people.iter().map(|p| p.id).chain([MAX_ID + 1]).collect();
    for (person, login, setting) in &actors {
        let mut tx = admin.transaction().expect("begin");
        let mut setup = format!("SET LOCAL ROLE {login};");
        if let Some(v) = setting {
            let _ = write!(setup, "SET LOCAL {SETTING} = '{v}';");
        }
        tx.batch_execute(&setup).expect("become the person");
        let who = format!(
            "person {person} ({login}{})",
            setting.as_ref().map_or(String::new(), |v| format!(", {SETTING}={v}"))
        );
        for t in &case.tables {
            let table = QualifiedName::new("d", t.name);
            let rows = &case.rows[t.name];
            // select: the rows seen, or no privilege.
            let seen = {
                let mut sp = tx.savepoint("s").expect("savepoint");
                let r = sp.query(&format!("SELECT id FROM d.{} ORDER BY id", t.name), &[]);
                let _ = sp.rollback();
                match r {
                    Ok(rs) => Ok(rs.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<i64>>()),
                    Err(e) => Err(classify(Err(e))),
                }
            };
            let expected: Result<Vec<i64>, Outcome> = if o.has_privilege(*person, &table, Command::Select) {
                Ok(rows.iter().filter(|r| o.visible(*person, &table, r)).map(|r| r.key).collect())
            } else {
                Err(Outcome::PermissionDenied)
            };
            checked_eq(&mut check, format!("{who} select d.{}", t.name), &expected, &seen);
            let mut attempt = |sql: &str| -> Outcome {
                let mut sp = tx.savepoint("s").expect("savepoint");
                let r = sp.execute(sql, &[]);
                let _ = sp.rollback();
                classify(r)
            };
            // columns: read, insert, update each column by name.
            for col in ["note", "c1", "c2"] {
                let sel = attempt(&format!("SELECT {col} FROM d.{} WHERE false", t.name));
                let exp = allowed(o.column_allowed(*person, &table, col, Command::Select));
                check(format!("{who} select column d.{}.{col}", t.name), exp, sel);
                let upd = attempt(&format!("UPDATE d.{} SET {col} = NULL WHERE false", t.name));
                let exp = allowed(o.column_allowed(*person, &table, col, Command::Update));
                check(format!("{who} update column d.{}.{col}", t.name), exp, upd);
                let ins =
                    attempt(&format!("INSERT INTO d.{} (id, owner_id, {col}) SELECT 1, 1, NULL WHERE false", t.name));
                let exp = allowed(o.column_allowed(*person, &table, col, Command::Insert));
                check(format!("{who} insert column d.{}.{col}", t.name), exp, ins);
            }
            // insert: each owner, voided or not.
            for (i, owner) in owners.iter().enumerate() {
                let voided = i % 3 == 2;
                let row = Row { key: 90_000 + i as i64, owner: *owner, voided };
                let got = attempt(&format!(
                    "INSERT INTO d.{} (id, owner_id, voided) VALUES ({}, {}, {})",
                    t.name, row.key, row.owner, row.voided
                ));
                check(
                    format!("{who} insert d.{} owner {owner} voided {voided}", t.name),
                    o.insert(*person, &table, &row),
                    got,
                );
            }
            // update (keeping the owner, and handing the row to someone else) and delete.
            for (i, row) in rows.iter().enumerate() {
                let got = attempt(&format!("UPDATE d.{} SET owner_id = owner_id WHERE id = {}", t.name, row.key));
                check(
                    format!("{who} update d.{} row {}", t.name, row.key),
                    o.update_owner(*person, &table, row, row.owner),
                    got,
                );
                let to = owners[(i + *person as usize) % owners.len()];
                let got = attempt(&format!("UPDATE d.{} SET owner_id = {to} WHERE id = {}", t.name, row.key));
                check(
                    format!("{who} update d.{} row {} owner {} -> {to}", t.name, row.key, row.owner),
                    o.update_owner(*person, &table, row, to),
                    got,
                );
                let got = attempt(&format!("DELETE FROM d.{} WHERE id = {}", t.name, row.key));
                let exp = if !o.has_privilege(*person, &table, Command::Delete)
                    || !o.has_privilege(*person, &table, Command::Select)
                {
                    Outcome::PermissionDenied
                } else {
                    Outcome::Rows(u64::from(o.deletable(*person, &table, row)))
                };
                check(format!("{who} delete d.{} row {}", t.name, row.key), exp, got);
            }
        }
        let _ = tx.rollback();
    }
    (mismatches, checked)
}

fn allowed(ok: bool) -> Outcome {
    if ok {
        Outcome::Rows(0)
    } else {
        Outcome::PermissionDenied
    }
}

fn checked_eq(
    check: &mut impl FnMut(String, Outcome, Outcome),
    what: String,
    expected: &Result<Vec<i64>, Outcome>,
    actual: &Result<Vec<i64>, Outcome>,
) {
    let show = |r: &Result<Vec<i64>, Outcome>| match r {
        Ok(keys) => Outcome::Error(format!("rows {keys:?}")),
        Err(o) => o.clone(),
    };
    check(what, show(expected), show(actual));
}

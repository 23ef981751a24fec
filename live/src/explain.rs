//! `rowsec explain`: for one person and one row, each command allowed or not and why (which
//! role, which scope with the chain that puts the owner in it, which share, the `always` rule),
//! and per classed column the class and the person's right. The reasons come from the oracle;
//! the verdicts are also tried for real, as the person, in a transaction that is rolled back,
//! and a disagreement is reported, never hidden.

use std::collections::BTreeSet;

use postgres::Client;
use rowsec_generator::model::{Access, Command, QualifiedName, Scope, Spec};
use rowsec_generator::oracle::{Oracle, Outcome, Row};
use rowsec_generator::resolve::{self, Source};
use serde::Serialize;

use crate::catalog::{self, quote_ident, quoted};
use crate::error::{Error, Result};
use crate::people::{self, Directory, Member};
use crate::verify::attempt;

#[derive(Debug, Clone, Serialize)]
pub struct RoleReason {
    pub role: String,
    pub scope: String,
    /// Which part of the spec gave the scope.
    pub from: String,
    /// Whether the row's owner is in the scope, and how.
    pub matches: bool,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommandExplanation {
    pub command: String,
    pub allowed: bool,
    /// What PostgreSQL did when the person tried (in a rolled-back transaction).
    pub observed: String,
    pub agrees: bool,
    pub roles: Vec<RoleReason>,
    pub shares: Vec<String>,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnRight {
    pub column: String,
    pub class: String,
    pub right: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub person: i64,
    pub login: Option<String>,
    pub active: bool,
    pub table: String,
    pub key: i64,
    pub owner: i64,
    pub always: Option<String>,
    pub always_holds: bool,
    pub commands: Vec<CommandExplanation>,
    pub columns: Vec<ColumnRight>,
}

impl Explanation {
    pub fn agrees(&self) -> bool {
        self.commands.iter().all(|c| c.agrees)
    }
}

/// The spec's table named `name` (`schema.table`), or a clear error.
pub fn spec_table<'s>(spec: &'s Spec, name: &str) -> Result<&'s QualifiedName> {
    spec.tables.keys().find(|t| t.dotted().to_string() == name).ok_or_else(|| Error::BadInput {
        what: format!("{name} is not a table of the spec"),
        fix: format!(
            "name one of: {}",
            spec.tables.keys().map(|t| t.dotted().to_string()).collect::<Vec<_>>().join(", ")
        ),
    })
}

/// "owner 42 reports to 17 reports to 5": the manager chain from the owner up to `p`.
fn chain(oracle: &Oracle<'_>, owner: i64, p: i64) -> Option<String> {
    let mut path = vec![owner];
    let mut seen = BTreeSet::from([owner]);
    let mut at = owner;
    while at != p {
        at = oracle.people.get(&at)?.manager?;
        if !seen.insert(at) {
            return None;
        }
        path.push(at);
    }
    Some(path.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(" reports to "))
}

fn source_word(spec: &Spec, role: &str, table: &QualifiedName, s: Source) -> String {
    match s {
        Source::NamedTable => format!("roles.{role}.tables.{}", table.dotted()),
        Source::EveryTable => format!("roles.{role}.tables.\"*\""),
        Source::Level => format!("roles.{role}.level ({})", spec.roles[role].level.as_deref().unwrap_or("")),
        Source::Nothing => "nothing grants it".to_owned(),
    }
}

fn scope_reason(oracle: &Oracle<'_>, p: i64, scope: Scope, owner: i64) -> (bool, String) {
    let in_scope = oracle.in_scope(p, scope, owner);
    let why = match scope {
        Scope::None => "no privilege".to_owned(),
        Scope::Own if in_scope => format!("owner {owner} is the person"),
        Scope::Own => format!("owner {owner} is not the person"),
        Scope::Team if owner == p => format!("owner {owner} is the person"),
        Scope::Team if in_scope => {
            let team = oracle.people.get(&p).and_then(|q| q.team.clone()).unwrap_or_default();
            format!("owner {owner} is in the person's team {team}")
        }
        Scope::Team => format!("owner {owner} is not in the person's team"),
        Scope::Subtree if in_scope => format!("owner {}", chain(oracle, owner, p).unwrap_or_else(|| owner.to_string())),
        Scope::Subtree => format!("owner {owner} does not report to {p}, directly or indirectly"),
        Scope::All if in_scope => "every row".to_owned(),
        Scope::All => "every row, but the person is not active".to_owned(),
    };
    (in_scope, why)
}

pub fn run(client: &mut Client, spec: &Spec, person: &str, table: &str, key: i64) -> Result<Explanation> {
    catalog::require_superuser(client, "read the directory and act as the person")?;
    catalog::check_spec_tables(client, spec)?;
    let t = spec_table(spec, table)?.clone();
    let directory = Directory::read(client, spec)?;
    let m: Member = directory.find(person)?.clone();
    let mut oracle = Oracle::new(spec, directory.people());
    oracle.shares = people::shares(client)?;
    let st = &spec.tables[&t];
    let always = st.always.as_deref().map_or("true".to_owned(), |a| format!("coalesce(({a}), false)"));
    let row = client
        .query_opt(
            &format!(
                "SELECT {o}::bigint, NOT {always} FROM {tbl} WHERE {k} = $1",
                o = quote_ident(&st.owner),
                tbl = quoted(&t),
                k = quote_ident(&st.key)
            ),
            &[&key],
        )
        .map_err(Error::query(format!("explain: reading {table} key {key}")))?
        .ok_or_else(|| Error::BadInput {
            what: format!("{table} has no row with {} = {key}", st.key),
            fix: "give the key of an existing row".to_owned(),
        })?;
    let owner: Option<i64> = row.get(0);
    let owner = owner.ok_or_else(|| Error::BadInput {
        what: format!("{table} key {key} has no owner ({} is NULL): it is in no scope", st.owner),
        fix: "give the row an owner".to_owned(),
    })?;
    let r = Row { key, owner, voided: row.get(1) };
    let share_rows = client
        .query(
            "SELECT s.id, coalesce('person ' || s.grantee_person, 'team ' || s.grantee_team), s.access, s.granted_by, \
             s.granted_at::text, coalesce(s.expires_at::text, 'no expiry'), coalesce(s.expires_at <= now(), false) \
             FROM rowsec.shares s WHERE s.tbl = $1::text::regclass AND s.row_key = $2 ORDER BY s.id",
            &[&quoted(&t), &key],
        )
        .map_err(Error::query("explain: reading rowsec.shares"))?;
    let p = m.id;
    let observed = observe(client, spec, &m, &t, &r)?;
    let mut commands = Vec::new();
    for cmd in Command::ALL {
        let allowed = match cmd {
            Command::Select => oracle.visible(p, &t, &r),
            Command::Update => oracle.updatable(p, &t, &r),
            Command::Delete => oracle.deletable(p, &t, &r),
            Command::Insert => oracle.insert(p, &t, &r) == Outcome::Rows(1),
        };
        let roles = m
            .person
            .roles
            .iter()
            .map(|role| {
                let (scope, source) = resolve::resolve_scope(&spec.levels, &spec.roles[role], &t, cmd);
                let (matches, why) = scope_reason(&oracle, p, scope, owner);
                RoleReason {
                    role: role.clone(),
                    scope: scope.as_str().to_owned(),
                    from: source_word(spec, role, &t, source),
                    matches,
                    why,
                }
            })
            .collect::<Vec<_>>();
        let shares: Vec<String> = if matches!(cmd, Command::Select | Command::Update) && st.sharing {
            share_rows
                .iter()
                .map(|s| {
                    let expired = if s.get::<_, bool>(6) { " (expired: grants nothing)" } else { "" };
                    format!(
                        "share {} to {}, {} access, by person {} at {}, until {}{expired}",
                        s.get::<_, i64>(0),
                        s.get::<_, String>(1),
                        s.get::<_, String>(2),
                        s.get::<_, i64>(3),
                        s.get::<_, String>(4),
                        s.get::<_, String>(5)
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let summary = if !m.person.active {
            "the person is not active: no scope matches anything".to_owned()
        } else if !oracle.has_privilege(p, &t, cmd) {
            "none of the person's roles has a privilege for it".to_owned()
        } else if !oracle.always(&t, &r) {
            format!("the always rule ({}) does not hold for this row", st.always.as_deref().unwrap_or(""))
        } else if allowed {
            match roles.iter().find(|x| x.matches) {
                Some(x) => format!("role {} ({}): {}", x.role, x.scope, x.why),
                None => match oracle.share_of(p, &t, key, cmd == Command::Update) {
                    Some(_) => "shared with the person or their team".to_owned(),
                    None => "allowed".to_owned(),
                },
            }
        } else if cmd == Command::Insert {
            "a row with this owner is outside every insert scope of the person".to_owned()
        } else if matches!(cmd, Command::Update | Command::Delete) && !oracle.visible(p, &t, &r) {
            "the person cannot see the row".to_owned()
        } else {
            "the owner is outside every scope of the person's roles, and no share gives it".to_owned()
        };
        let seen = &observed[cmd_index(cmd)];
        // Someone without a login cannot be tried; that is not a disagreement.
        let agrees = seen.starts_with("not tried") || (seen == "allowed") == allowed;
        commands.push(CommandExplanation {
            command: cmd.as_str().to_owned(),
            allowed,
            observed: seen.clone(),
            agrees,
            roles,
            shares,
            summary,
        });
    }
    let columns = st
        .columns
        .iter()
        .map(|(column, class)| {
            let read = oracle.class_access(p, class, Command::Select, &t);
            let write = oracle.class_access(p, class, Command::Update, &t).max(oracle.class_access(
                p,
                class,
                Command::Insert,
                &t,
            ));
            let right = match (read.can_read(), write) {
                (_, Access::Write) => "write",
                (true, _) => "read",
                _ => "none",
            };
            ColumnRight { column: column.clone(), class: class.clone(), right: right.to_owned() }
        })
        .collect();
    Ok(Explanation {
        person: p,
        login: m.login.clone(),
        active: m.person.active,
        table: table.to_owned(),
        key,
        owner,
        always: st.always.clone(),
        always_holds: !r.voided,
        commands,
        columns,
    })
}

fn cmd_index(c: Command) -> usize {
    Command::ALL.iter().position(|x| *x == c).unwrap_or(0)
}

/// What PostgreSQL does when the person tries each command on the row (insert: a copy of the
/// row's unclassed columns with the same owner), in Command::ALL order.
fn observe(client: &mut Client, spec: &Spec, m: &Member, t: &QualifiedName, r: &Row) -> Result<Vec<String>> {
    let Some(login) = &m.login else {
        return Ok(vec!["not tried: the person has no login".to_owned(); 4]);
    };
    let st = &spec.tables[t];
    let (real, key) = (quoted(t), quote_ident(&st.key));
    let cols: Vec<String> = client
        .query(
            "SELECT attname::text FROM pg_catalog.pg_attribute WHERE attrelid = $1::text::regclass \
             AND attnum > 0 AND NOT attisdropped AND attgenerated = '' AND attidentity <> 'a' ORDER BY attnum",
            &[&real],
        )
        .map_err(Error::query("explain: columns"))?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|c| !st.columns.contains_key(c))
        .map(|c| quote_ident(&c))
        .collect();
    let list = cols.join(", ");
    let json: String = client
        .query_one(&format!("SELECT row_to_json(t)::text FROM {real} t WHERE {key} = $1"), &[&r.key])
        .map_err(Error::query("explain: the row"))?
        .get(0);
    let acting = crate::people::Impersonation::new(client, spec)?;
    let mut tx = client.transaction().map_err(Error::query("explain: begin"))?;
    acting.enter(&mut tx, m.id, login, "explain")?;
    let word = |res: std::result::Result<Vec<i64>, Outcome>| match res {
        Ok(rows) if !rows.is_empty() => "allowed".to_owned(),
        Ok(_) => "no row (the row is filtered out)".to_owned(),
        Err(Outcome::PermissionDenied) => "permission denied".to_owned(),
        Err(Outcome::RlsViolation) => "refused by row-level security".to_owned(),
        Err(Outcome::Rows(_)) => "allowed".to_owned(),
        Err(Outcome::Error(e)) => format!("error: {e}"),
    };
    let mut out = Vec::new();
    for cmd in Command::ALL {
        let res = match cmd {
            Command::Select => attempt(&mut tx, &format!("SELECT {key}::bigint FROM {real} WHERE {key} = $1"), &[&r.key])?,
            Command::Update => {
                attempt(&mut tx, &format!("UPDATE {real} SET {key} = {key} WHERE {key} = $1 RETURNING {key}::bigint"), &[&r.key])?
            }
            Command::Delete => attempt(&mut tx, &format!("DELETE FROM {real} WHERE {key} = $1 RETURNING {key}::bigint"), &[&r.key])?,
            Command::Insert => attempt(
                &mut tx,
                &format!("INSERT INTO {real} ({list}) SELECT {list} FROM pg_catalog.json_populate_record(NULL::{real}, $1::text::json) RETURNING 0::bigint"),
                &[&json],
            )?,
        };
        out.push(word(res));
    }
    tx.rollback().map_err(Error::query("explain: rollback"))?;
    Ok(out)
}

impl Explanation {
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let who = self.login.as_deref().map_or(String::new(), |l| format!(" ({l})"));
        let _ = writeln!(s, "person {}{who} and {} key {} (owner {})", self.person, self.table, self.key, self.owner);
        if !self.active {
            let _ = writeln!(s, "the person is inactive in the directory");
        }
        if let Some(a) = &self.always {
            let _ = writeln!(
                s,
                "always: {a}: {}",
                if self.always_holds { "holds" } else { "does NOT hold: nobody may see or touch the row" }
            );
        }
        for c in &self.commands {
            let verdict = if c.allowed { "ALLOWED" } else { "denied" };
            let _ = writeln!(s, "\n{}: {verdict}: {}", c.command, c.summary);
            for r in &c.roles {
                let mark = if r.matches { "+" } else { "-" };
                let _ = writeln!(s, "  {mark} role {}: {} (from {}): {}", r.role, r.scope, r.from, r.why);
            }
            for sh in &c.shares {
                let _ = writeln!(s, "  share: {sh}");
            }
            let check = if c.agrees { "agrees" } else { "DISAGREES with the spec" };
            let _ = writeln!(s, "  PostgreSQL: {} ({check})", c.observed);
        }
        if !self.columns.is_empty() {
            let _ = writeln!(s, "\ncolumns:");
            for c in &self.columns {
                let _ = writeln!(s, "  {} ({}): {}", c.column, c.class, c.right);
            }
        }
        s
    }
}

//! `rowsec plan` and `rowsec apply`: run the compiled script in one transaction and read back
//! what it changed, then roll back (plan, `apply --dry-run`) or commit (apply).
//!
//! What changed is not guessed from the script's text: the script snapshots what rowsec manages
//! (roles, memberships, protected tables, policies, privileges; `sql/compile/state.sql`) before
//! it changes anything and leaves the difference with the state after in `pg_temp.rowsec_changes`
//! (`summary.sql`), which is read here before the transaction ends. So planning takes the same
//! locks as applying (each protected table's ACCESS EXCLUSIVE lock, briefly, bounded by the lock
//! timeout), and a plan after an apply shows no change exactly when the catalog converged.
//!
//! The script runs without its own BEGIN/COMMIT (`Options::embedded`): COMMIT is sent only after
//! the changes are read, so a client killed mid-apply, or a backend terminated, commits nothing.

use std::time::Duration;

use postgres::{Client, Transaction};
use rowsec_generator::{compile_with, Loaded, Options};
use serde::Serialize;

use crate::catalog;
use crate::error::{describe, Error, Result};

/// Key of the transaction-level advisory lock every plan and apply holds, so that two never
/// interleave ("rowsec" in ASCII).
pub const ADVISORY_LOCK: i64 = 0x726f_7773_6563;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run and roll back: `plan` and `apply --dry-run`.
    DryRun,
    /// Run and commit: `apply`.
    Commit,
}

/// How often to try again when a lock is not granted within the lock timeout.
#[derive(Debug, Clone)]
pub struct Retry {
    pub attempts: u32,
    /// The wait before the second attempt; it doubles after each further one (capped at 30s).
    pub first_wait: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 4, first_wait: Duration::from_secs(1) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Created,
    Changed,
    Removed,
}

/// One object rowsec manages whose state the script creates, changes or removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// role, membership, table, policy, privilege, config, extension
    pub kind: String,
    pub object: String,
    pub change: ChangeKind,
    pub before: Option<String>,
    pub after: Option<String>,
    /// What the change is grouped under: a table, `roles` or `schema NAME`.
    pub group: String,
    /// The role the change concerns, when there is one (within a group, changes are listed per role).
    pub role: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub spec: String,
    pub spec_sha256: String,
    pub database: String,
    /// Whether the changes were committed.
    pub applied: bool,
    pub attempts: u32,
    pub changes: Vec<Change>,
}

/// Runs the compiled script of `loaded` in a transaction and returns what it changed.
pub fn run(
    client: &mut Client,
    database: &str,
    loaded: &Loaded,
    options: &Options,
    mode: Mode,
    retry: &Retry,
    progress: &dyn Fn(&str),
) -> Result<Plan> {
    catalog::require_superuser(client, "apply the compiled script")?;
    catalog::check_spec_tables(client, &loaded.spec)?;
    let script = compile_with(loaded, &Options { embedded: true, ..options.clone() });
    let mut wait = retry.first_wait;
    let mut attempt = 0;
    loop {
        attempt += 1;
        progress(&format!("attempt {attempt} of {}: running the compiled script", retry.attempts));
        match once(client, &script, &options.lock_timeout.to_string(), mode) {
            Ok(changes) => {
                return Ok(Plan {
                    spec: loaded.file.clone(),
                    spec_sha256: loaded.sha256.clone(),
                    database: database.to_owned(),
                    applied: mode == Mode::Commit && !changes.is_empty(),
                    attempts: attempt,
                    changes,
                })
            }
            Err(Failure::Busy(holder)) if attempt >= retry.attempts => {
                return Err(Error::Busy { key: ADVISORY_LOCK, holder })
            }
            Err(Failure::Db(e)) if is_lock_timeout(&e) && attempt >= retry.attempts => {
                return Err(Error::LockTimeout { attempts: attempt, detail: describe(&e) })
            }
            Err(Failure::Busy(_)) => {}
            Err(Failure::Db(e)) if is_lock_timeout(&e) => {}
            Err(Failure::Db(e)) => return Err(script_error(e)),
        }
        progress(&format!("lock not granted within {}; trying again in {wait:?}", options.lock_timeout));
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

enum Failure {
    /// Another plan or apply holds the advisory lock (its process id).
    Busy(String),
    Db(postgres::Error),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Failure::Db(e)
    }
}

fn once(client: &mut Client, script: &str, lock_timeout: &str, mode: Mode) -> Result<Vec<Change>, Failure> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_catalog.set_config('lock_timeout', $1, true)", &[&lock_timeout])?;
    if !tx.query_one("SELECT pg_catalog.pg_try_advisory_xact_lock($1)", &[&ADVISORY_LOCK])?.get::<_, bool>(0) {
        let holder: Option<String> = tx
            .query_one(
                "SELECT pg_catalog.string_agg(pid::text, ', ') FROM pg_catalog.pg_locks \
                 WHERE locktype = 'advisory' AND granted \
                   AND (classid::bigint << 32 | objid::bigint) = $1",
                &[&ADVISORY_LOCK],
            )?
            .get(0);
        // Wait for it like for any lock, bounded by the lock timeout.
        if let Err(e) = tx.execute("SELECT pg_catalog.pg_advisory_xact_lock($1)", &[&ADVISORY_LOCK]) {
            return Err(if is_lock_timeout(&e) { Failure::Busy(holder.unwrap_or_default()) } else { e.into() });
        }
    }
    let config_before = config(&mut tx)?;
    tx.batch_execute(script)?;
    let mut changes = Vec::new();
    if config_before.is_none() {
        changes.push(change("extension", "rowsec", ChangeKind::Created, None, Some("installed".into())));
    }
    let config_after = config(&mut tx)?;
    if config_before.is_some() && config_before != config_after {
        changes.push(change("config", "rowsec.config", ChangeKind::Changed, config_before, config_after));
    }
    for r in tx.query(
        "SELECT kind, object, change, before, after FROM pg_temp.rowsec_changes \
         ORDER BY array_position(ARRAY['role', 'membership', 'table', 'policy', 'privilege'], kind), object",
        &[],
    )? {
        let kind = match r.get::<_, &str>(2) {
            "created" => ChangeKind::Created,
            "removed" => ChangeKind::Removed,
            _ => ChangeKind::Changed,
        };
        changes.push(change(r.get(0), r.get(1), kind, r.get(3), r.get(4)));
    }
    match mode {
        Mode::DryRun => tx.rollback()?,
        Mode::Commit => tx.commit()?,
    }
    Ok(changes)
}

/// rowsec's configuration row as text, or `None` without the extension.
fn config(tx: &mut Transaction<'_>) -> Result<Option<String>, postgres::Error> {
    let exists: bool = tx.query_one("SELECT pg_catalog.to_regclass('rowsec.config') IS NOT NULL", &[])?.get(0);
    if !exists {
        return Ok(None);
    }
    let row = tx.query_opt("SELECT pg_catalog.row_to_json(c)::text FROM rowsec.config c", &[])?;
    Ok(Some(row.map(|r| r.get(0)).unwrap_or_default()))
}

fn change(kind: &str, object: &str, change: ChangeKind, before: Option<String>, after: Option<String>) -> Change {
    let role = match kind {
        // A policy shared by several roles (one per condition) belongs to none of them, and one
        // whose roles change belongs to its table: only a policy of one role, before and after,
        // is listed under that role.
        "policy" => {
            let (b, a) = (role_of(kind, object, before.as_deref()), role_of(kind, object, after.as_deref()));
            match (b, a) {
                (Some(b), Some(a)) if a == b => Some(a),
                (None, a) if before.is_none() => a,
                (b, None) if after.is_none() => b,
                _ => None,
            }
        }
        _ => role_of(kind, object, after.as_deref().or(before.as_deref())),
    };
    Change {
        group: group_of(kind, object),
        role,
        kind: kind.to_owned(),
        object: object.to_owned(),
        change,
        before,
        after,
    }
}

/// The role in an object of `state.sql`'s view: named in the object, or (policies) in its state.
fn role_of(kind: &str, object: &str, state: Option<&str>) -> Option<String> {
    let word = |s: &str, i: usize| s.split(' ').nth(i).map(|w| w.trim_matches(|c| c == '{' || c == '}').to_owned());
    match kind {
        "role" => Some(object.to_owned()),
        "membership" => word(object, 0),
        "privilege" if object.starts_with("schema ") => word(object, 2),
        "privilege" => word(object, 1),
        // polcmd, polpermissive, then the roles as {a,b}: only a policy of one role is its.
        "policy" => state.and_then(|s| word(s, 2)).filter(|roles| !roles.contains(',')),
        _ => None,
    }
}

/// Roles and memberships under `roles`; everything else under its table (or schema).
fn group_of(kind: &str, object: &str) -> String {
    match kind {
        "role" | "membership" => "roles".to_owned(),
        "extension" | "config" => "rowsec".to_owned(),
        "table" => object.to_owned(),
        _ if object.starts_with("schema ") => object.splitn(3, ' ').take(2).collect::<Vec<_>>().join(" "),
        _ => {
            let head = object.split(' ').next().unwrap_or(object);
            // A column privilege's object starts with table.column.
            let parts: Vec<&str> = head.split('.').collect();
            if kind == "privilege" && parts.len() == 3 {
                format!("{}.{}", parts[0], parts[1])
            } else {
                head.to_owned()
            }
        }
    }
}

pub fn is_lock_timeout(e: &postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| d.code().code() == "55P03")
}

/// Errors the script raises because the database is not what the spec says are the user's to
/// fix (exit 2); anything else failed the run.
fn script_error(e: postgres::Error) -> Error {
    let code = e.as_db_error().map(|d| d.code().code().to_owned()).unwrap_or_default();
    match code.as_str() {
        "42P01" | "42703" | "42704" | "3F000" | "55000" | "42710" | "22023" => Error::Mismatch {
            what: describe(&e),
            fix: "make the database match the spec (or the spec match the database), then plan again".to_owned(),
        },
        "58P01" | "0A000" if describe(&e).contains("extension") => Error::Mismatch {
            what: describe(&e),
            fix: "install the rowsec extension on this server (README: Install the extension)".to_owned(),
        },
        _ => Error::Query { context: "running the compiled script".to_owned(), source: e },
    }
}

impl Plan {
    /// For people: the changes grouped per table and role, or that nothing changes.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let verb = match (self.applied, self.changes.is_empty()) {
            (_, true) => "no changes",
            (true, false) => "applied",
            (false, false) => "would change",
        };
        let _ = writeln!(
            s,
            "rowsec: spec {} ({}) on database {}: {verb}",
            self.spec,
            &self.spec_sha256[..12],
            self.database
        );
        let mut groups: Vec<&str> = self.changes.iter().map(|c| c.group.as_str()).collect();
        groups.dedup();
        let mut seen = std::collections::BTreeSet::new();
        for g in groups {
            if !seen.insert(g) {
                continue;
            }
            let _ = writeln!(s, "\n{g}");
            let mut in_group: Vec<&Change> = self.changes.iter().filter(|c| c.group == g).collect();
            // Changes without a role first, then role by role (the sort is stable).
            in_group.sort_by(|a, b| a.role.cmp(&b.role));
            let mut current: Option<&str> = None;
            for c in in_group {
                let indent = match (c.role.as_deref(), g) {
                    (_, "roles") | (None, _) => "  ",
                    (Some(r), _) => {
                        if current != Some(r) {
                            let _ = writeln!(s, "  role {r}");
                            current = Some(r);
                        }
                        "    "
                    }
                };
                let mark = match c.change {
                    ChangeKind::Created => '+',
                    ChangeKind::Changed => '~',
                    ChangeKind::Removed => '-',
                };
                let _ = writeln!(s, "{indent}{mark} {} {}", c.kind, c.object);
                if c.change == ChangeKind::Changed {
                    let _ = writeln!(s, "{indent}    was: {}", c.before.as_deref().unwrap_or(""));
                    let _ = writeln!(s, "{indent}    now: {}", c.after.as_deref().unwrap_or(""));
                }
            }
        }
        if !self.changes.is_empty() {
            let count = |k| self.changes.iter().filter(|c| c.change == k).count();
            let (c, ch, r) = (count(ChangeKind::Created), count(ChangeKind::Changed), count(ChangeKind::Removed));
            if self.applied {
                let _ = writeln!(s, "\n{c} created, {ch} changed, {r} removed");
            } else {
                let _ = writeln!(s, "\n{c} to create, {ch} to change, {r} to remove");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_grouped_by_table_and_carry_their_role() {
        let c = change(
            "privilege",
            "crm.accounts.annual_revenue sales_rep UPDATE",
            ChangeKind::Removed,
            Some(String::new()),
            None,
        );
        assert_eq!((c.group.as_str(), c.role.as_deref()), ("crm.accounts", Some("sales_rep")));
        let c = change("privilege", "schema crm sales_rep USAGE", ChangeKind::Created, None, Some(String::new()));
        assert_eq!((c.group.as_str(), c.role.as_deref()), ("schema crm", Some("sales_rep")));
        let c = change(
            "policy",
            "crm.accounts rowsec_select_all",
            ChangeKind::Created,
            None,
            Some("r true {cxo} (rowsec.current_person() IS NOT NULL)".into()),
        );
        assert_eq!((c.group.as_str(), c.role.as_deref()), ("crm.accounts", Some("cxo")));
        let c = change(
            "policy",
            "crm.accounts rowsec_select_all",
            ChangeKind::Changed,
            Some("r true {cxo} (rowsec.current_person() IS NOT NULL)".into()),
            Some("r true {crm_admin,cxo} (rowsec.current_person() IS NOT NULL)".into()),
        );
        assert_eq!((c.group.as_str(), c.role), ("crm.accounts", None));
        let c = change(
            "policy",
            "crm.accounts rowsec_delete_own",
            ChangeKind::Changed,
            Some("d t {sales_rep,support} (owner_id = rowsec.current_person())".into()),
            Some("d t {support} (owner_id = rowsec.current_person())".into()),
        );
        assert_eq!(c.role, None, "a policy whose roles change is its table's");
        let c = change("membership", "sales_rep <- bob", ChangeKind::Removed, Some("false".into()), None);
        assert_eq!((c.group.as_str(), c.role.as_deref()), ("roles", Some("sales_rep")));
        let c = change("table", "crm.accounts", ChangeKind::Changed, Some("a".into()), Some("b".into()));
        assert_eq!((c.group.as_str(), c.role), ("crm.accounts", None));
    }
}

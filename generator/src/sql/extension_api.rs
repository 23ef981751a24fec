//! Every object of the `rowsec` extension that generated SQL calls, in one place.
//! The contract is docs/extension-interface.md; change both together.

use crate::model::{Directory, Identity, QualifiedName, Scope};
use crate::sql::ident::{Ident, Literal};

pub const EXTENSION: &str = "rowsec";
/// The extension's schema: nothing else may live there.
pub const SCHEMA: &str = "rowsec";
/// The extension's registry of protected tables (`tbl regclass`), read by the converge step.
pub fn protected_tables() -> QualifiedName {
    QualifiedName::new(SCHEMA, "protected_tables")
}

/// `rowsec.unprotect_table(tbl regclass)`: forgets a table the spec no longer has.
pub fn unprotect_table() -> QualifiedName {
    QualifiedName::new(SCHEMA, "unprotect_table")
}

/// `'crm.accounts'::regclass`
pub fn regclass(table: &QualifiedName) -> String {
    format!("{}::regclass", Literal(&table.to_string()))
}

/// The call (an expression) that points the extension at the directory.
pub fn configure(d: &Directory, identity: &Identity) -> String {
    let opt = |c: &Option<String>| c.as_deref().map_or("NULL".to_owned(), |c| Literal(c).to_string());
    let (mode, setting) = match identity {
        Identity::Login => ("login", "NULL".to_owned()),
        Identity::Setting(name) => ("setting", Literal(name).to_string()),
        Identity::SignedSetting(name) => ("signed_setting", Literal(name).to_string()),
    };
    format!(
        "rowsec.configure(\n    directory        => {},\n    id_column        => {},\n    manager_column   => {},\n    team_column      => {},\n    login_column     => {},\n    active_column    => {},\n    identity         => {},\n    identity_setting => {}\n)",
        regclass(&d.table),
        Literal(&d.id),
        Literal(&d.manager),
        opt(&d.team),
        opt(&d.login),
        opt(&d.active),
        Literal(mode),
        setting,
    )
}

/// The call (an expression) that registers a protected table.
pub fn protect_table(table: &QualifiedName, key: &str, owner: &str, sharing: bool) -> String {
    format!(
        "rowsec.protect_table({}, key_column => {}, owner_column => {}, sharing => {sharing})",
        regclass(table),
        Literal(key),
        Literal(owner)
    )
}

pub fn current_person() -> &'static str {
    "rowsec.current_person()"
}

/// The condition "the row's owner is in `scope` of the current person". `Scope::None` is
/// `false`: no row is in it.
pub fn scope_condition(scope: Scope, owner: &str) -> String {
    match scope {
        Scope::Own => format!("{} = {}", Ident(owner), current_person()),
        Scope::Team => format!("rowsec.in_team({})", Ident(owner)),
        Scope::Subtree => format!("rowsec.in_subtree({})", Ident(owner)),
        // Every row while the caller is a person. It names the owner column (which it does not
        // read) because Citus plans a query over shards only when its clauses refer to the table.
        Scope::All => format!("rowsec.in_all({})", Ident(owner)),
        Scope::None => "false".to_owned(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareAccess {
    /// Read or write shares.
    Read,
    Write,
}

pub fn is_shared(table: &QualifiedName, key: &str, access: ShareAccess) -> String {
    let access = match access {
        ShareAccess::Read => "read",
        ShareAccess::Write => "write",
    };
    format!("rowsec.is_shared({}, {}, {})", regclass(table), Ident(key), Literal(access))
}

pub fn shared_write_keeps_owner(table: &QualifiedName, key: &str, owner: &str) -> String {
    format!("rowsec.shared_write_keeps_owner({}, {}, {})", regclass(table), Ident(key), Ident(owner))
}

/// A `name[]` literal: `ARRAY['a', 'b']::name[]` (`'{}'::name[]` when empty).
fn name_array<S: AsRef<str>>(names: &[S]) -> String {
    if names.is_empty() {
        return "'{}'::name[]".to_owned();
    }
    let items: Vec<String> = names.iter().map(|n| Literal(n.as_ref()).to_string()).collect();
    format!("ARRAY[{}]::name[]", items.join(", "))
}

/// `rowsec.set_audit_readers(name[])`: the roles of `audit.readers`.
pub fn set_audit_readers(roles: &[String]) -> String {
    format!("rowsec.set_audit_readers({})", name_array(roles))
}

/// `rowsec.audit_table(tbl, key_column, redacted)`: record the row changes of a table of
/// `audit.data`, its classed columns redacted.
pub fn audit_table(table: &QualifiedName, key: &str, redacted: &[&str]) -> String {
    format!(
        "rowsec.audit_table({}, key_column => {}, redacted => {})",
        regclass(table),
        Literal(key),
        name_array(redacted)
    )
}

/// `rowsec.audit_only(regclass[])`: stop recording tables that left `audit.data`.
pub fn audit_only(tables: &[QualifiedName]) -> String {
    let items: Vec<String> = tables.iter().map(regclass).collect();
    format!("rowsec.audit_only(ARRAY[{}]::regclass[])", items.join(", "))
}

/// `rowsec.configure_requests(max_days)`: NULL when the spec has no `requests:`.
pub fn configure_requests(max_days: Option<u32>) -> String {
    let days = max_days.map_or_else(|| "NULL".to_owned(), |d| d.to_string());
    format!("rowsec.configure_requests(max_days => {days})")
}

/// `rowsec.reconcile_memberships()`: record spec role memberships changed out of the hook's sight.
pub fn reconcile_memberships() -> &'static str {
    "rowsec.reconcile_memberships()"
}

/// `rowsec.record_apply(spec_sha256 text, rowsec_version text, changes jsonb)`: the script's own
/// audit row, called by the summary at the end of the script.
pub fn record_apply() -> QualifiedName {
    QualifiedName::new(SCHEMA, "record_apply")
}

/// `rowsec.configure_monitoring(reads boolean, alerts jsonb)`: `monitoring:` of the spec, every
/// time (reads false and no alerts when the spec has none), so monitoring a later spec drops is
/// removed.
pub fn configure_monitoring(reads: bool, alerts_json: &str) -> String {
    format!("rowsec.configure_monitoring({reads}, {}::jsonb)", Literal(alerts_json))
}

/// `rowsec.configure_limits(limits jsonb)`: every spec role with its limits (`{}`: none), so
/// the limits of roles and commands a later spec drops are removed.
pub fn configure_limits(limits_json: &str) -> String {
    format!("rowsec.configure_limits({}::jsonb)", Literal(limits_json))
}

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
        // A pseudo-constant: PostgreSQL evaluates it once per query (a one-time filter).
        Scope::All => format!("{} IS NOT NULL", current_person()),
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

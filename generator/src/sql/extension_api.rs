//! Every object of the `rowsec` extension that generated SQL calls, in one place.
//! The contract is docs/extension-interface.md; change both together.

use crate::model::{Directory, Identity, QualifiedName, Scope};
use crate::sql::ident::{Ident, Literal};

pub const EXTENSION: &str = "rowsec";
/// The SQL backend's name as a `pg_tle` extension (`--pg-tle`): not `rowsec`, which the
/// backend's script refuses to run beside (the C extension).
pub const PG_TLE_EXTENSION: &str = "rowsec_sql";
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

/// Which implementation of the `rowsec` schema the script installs and its policies use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// The C extension (`CREATE EXTENSION rowsec`): policies call its functions.
    #[default]
    Extension,
    /// Plain SQL and PL/pgSQL (sql/backend/rowsec.sql), for managed PostgreSQL: policies probe
    /// the tables its triggers keep (closure, teams, shares), each probe an index lookup or a
    /// hashed subplan the planner chooses, with the person resolved once per query (an InitPlan).
    Sql,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Extension => "extension",
            Backend::Sql => "sql",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "extension" => Ok(Backend::Extension),
            "sql" => Ok(Backend::Sql),
            _ => Err(format!("`{text}` is not a backend: write extension (the default) or sql")),
        }
    }
}

/// The current person, once per query on the SQL backend (an InitPlan, not a call per row).
fn person(backend: Backend) -> &'static str {
    match backend {
        Backend::Extension => current_person(),
        Backend::Sql => "(SELECT rowsec.current_person())",
    }
}

/// `accounts."owner_id"`: a column of the protected table, qualified by the table's name (how a
/// policy or a view over it names its row) so that no column of rowsec's tables in a subquery
/// can capture it.
fn outer(table: &QualifiedName, column: &str) -> String {
    format!("{}.{}", Ident(&table.name), Ident(column))
}

/// Whether a plan may outlive its person: how the SQL backend shapes a subtree's USING.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plans {
    /// Identity login: PostgreSQL remakes a plan that reads a table with row-level security when
    /// the current user changes, so a plan is only ever run for the login it was made for.
    PerLogin,
    /// Identity setting: one session serves everyone its setting names, and a prepared
    /// statement keeps the plan of whoever planned it first.
    Shared,
}

impl Plans {
    pub fn of(identity: &crate::model::Identity) -> Plans {
        match identity {
            crate::model::Identity::Login => Plans::PerLogin,
            _ => Plans::Shared,
        }
    }
}

/// Which side of a policy a condition is for, on the SQL backend: rows read (USING, which the
/// planner may turn into an index condition) or one new row checked (WITH CHECK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clause {
    Using,
    Check,
}

/// The condition "the row's owner is in `scope` of the current person", for rows of `table`.
/// `Scope::None` is `false`: no row is in it.
///
/// On the SQL backend, by the side-by-side numbers (docs/performance.md): USING compares with
/// the person's set as one array per query (`= ANY ((SELECT rowsec.subtree())::bigint[])`, an
/// InitPlan the planner can use as an index condition on the owner column); WITH CHECK, which
/// sees one row, probes the table behind it (`EXISTS`, an index lookup) instead of building the
/// whole set. With [`Plans::PerLogin`], a subtree's USING has a second shape for people who see
/// an eighth of the directory or more, chosen when the statement is planned
/// (`rowsec.subtree_is_large_at_plan()`, folded by the planner): their array would be built for
/// every statement and mislead the planner, so the closure table is probed per row or hashed.
/// Both shapes admit the same rows. With [`Plans::Shared`] the array only: a pool's prepared
/// statement planned for the CEO in the second shape cost a rep up to 1,000x on pages and sums
/// (docs/performance.md).
pub fn scope_condition_for(
    backend: Backend,
    clause: Clause,
    plans: Plans,
    table: &QualifiedName,
    scope: Scope,
    owner: &str,
) -> String {
    if backend == Backend::Extension {
        return scope_condition(scope, owner);
    }
    let (o, p) = (outer(table, owner), person(backend));
    match (scope, clause) {
        (Scope::Own, _) => format!("{o} = {p}"),
        (Scope::Team, Clause::Using) => format!("{o} = ANY ((SELECT rowsec.team())::bigint[])"),
        (Scope::Team, Clause::Check) => format!(
            "({o} = {p} OR EXISTS (SELECT FROM rowsec.team_members rowsec_m WHERE rowsec_m.team = (SELECT rowsec.current_team()) AND rowsec_m.person = {o}))"
        ),
        (Scope::Subtree, Clause::Using) if plans == Plans::Shared => {
            format!("{o} = ANY ((SELECT rowsec.subtree())::bigint[])")
        }
        (Scope::Subtree, Clause::Using) => format!(
            "CASE WHEN rowsec.subtree_is_large_at_plan() \
             THEN {o} = ANY ((SELECT rowsec.subtree_unless_large())::bigint[]) \
             OR (SELECT rowsec.person_if_large()) IS NOT NULL \
             AND EXISTS (SELECT FROM rowsec.closure rowsec_c WHERE rowsec_c.ancestor = (SELECT rowsec.person_if_large()) \
             AND rowsec_c.descendant = {o}) \
             ELSE {o} = ANY ((SELECT rowsec.subtree())::bigint[]) END"
        ),
        (Scope::Subtree, Clause::Check) => format!(
            "EXISTS (SELECT FROM rowsec.closure rowsec_c WHERE rowsec_c.ancestor = {p} AND rowsec_c.descendant = {o})"
        ),
        (Scope::All, _) => format!("{p} IS NOT NULL"),
        (Scope::None, _) => "false".to_owned(),
    }
}

/// [`is_shared`] for a backend and clause (see [`scope_condition_for`]).
pub fn is_shared_for(
    backend: Backend,
    clause: Clause,
    table: &QualifiedName,
    key: &str,
    access: ShareAccess,
) -> String {
    if backend == Backend::Extension {
        return is_shared(table, key, access);
    }
    let access_text = match access {
        ShareAccess::Read => "read",
        ShareAccess::Write => "write",
    };
    if clause == Clause::Using {
        return format!(
            "{} = ANY ((SELECT rowsec.shared_keys({}, {}))::bigint[])",
            outer(table, key),
            regclass(table),
            Literal(access_text)
        );
    }
    let write = match access {
        ShareAccess::Read => "",
        ShareAccess::Write => " AND rowsec_s.access = 'write'",
    };
    format!(
        "EXISTS (SELECT FROM rowsec.shares rowsec_s WHERE rowsec_s.tbl = {} AND rowsec_s.row_key = {}{write} \
         AND (rowsec_s.grantee_person = {} OR rowsec_s.grantee_team = (SELECT rowsec.current_team())) \
         AND (rowsec_s.expires_at IS NULL OR rowsec_s.expires_at > pg_catalog.now()))",
        regclass(table),
        outer(table, key),
        person(backend)
    )
}

/// The condition "the row's owner is in `scope` of the current person" as the extension's
/// functions say it. `Scope::None` is `false`: no row is in it.
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

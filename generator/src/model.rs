//! The spec as plain data: what the YAML says, after the checks of `load`.
//!
//! This is the raw model: precedence between `level`, `"*"` and named tables is resolved in
//! `resolve`, not here, so that tests (and the end-to-end oracle) can read the spec exactly
//! as written.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::sql::ident::Ident;

/// `schema.name`, as PostgreSQL stores it (case preserved, no quotes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

impl QualifiedName {
    pub fn new(schema: &str, name: &str) -> Self {
        QualifiedName { schema: schema.to_owned(), name: name.to_owned() }
    }

    /// `schema.name` unquoted, as the spec writes it: for messages, comments and suggestions.
    pub fn dotted(&self) -> Dotted<'_> {
        Dotted(self)
    }
}

/// See [`QualifiedName::dotted`].
pub struct Dotted<'a>(&'a QualifiedName);

impl fmt::Display for Dotted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0.schema, self.0.name)
    }
}

/// Displays as SQL: both parts quoted through the one quoting routine.
impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", Ident(&self.schema), Ident(&self.name))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub version: u32,
    pub directory: Directory,
    pub identity: Identity,
    pub levels: BTreeMap<String, Level>,
    pub tables: BTreeMap<QualifiedName, Table>,
    pub roles: BTreeMap<String, Role>,
    /// `audit:` (SPEC item 15); empty when the spec has none.
    pub audit: Audit,
    /// `requests:` (SPEC item 16); `None`: the spec has none and access requests are refused.
    pub requests: Option<Requests>,
    /// `monitoring:` (SPEC items 13, 14); default: no activity, no alerts.
    pub monitoring: Monitoring,
    /// `classes:` (rowsec's masked columns): class -> how its columns read without the class.
    /// Empty when the spec has none: no masked views.
    pub classes: BTreeMap<String, Class>,
}

/// `monitoring:`: whether every statement on a protected table is recorded, and the alert rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Monitoring {
    pub reads: bool,
    pub alerts: Vec<AlertRule>,
}

/// A rule of `monitoring.alerts` (SPEC item 14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertRule {
    /// One person's rows read across protected tables within `within` exceed `rows`.
    BulkRead { rows: u64, within_seconds: u64, within: String },
    /// The first statement of a person outside `from`-`to` (HH:MM) on `days` (ISO, 1 = Monday)
    /// in `timezone`, once per day.
    OffHours { from: String, to: String, days: Vec<u8>, timezone: String },
}

impl AlertRule {
    pub fn name(&self) -> &'static str {
        match self {
            AlertRule::BulkRead { .. } => "bulk_read",
            AlertRule::OffHours { .. } => "off_hours",
        }
    }
}

/// `classes.<name>`: a column class opted in to masking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    pub name: String,
    pub mask: Mask,
}

/// What a person without the class reads in a masked view instead of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mask {
    /// `****` and the last 4 characters (as text).
    Partial,
    /// `****@` and the domain (as text).
    Email,
    /// NULL (the column keeps its type).
    Null,
}

impl Mask {
    pub const NAMES: [&'static str; 3] = ["partial", "email", "null"];

    pub fn parse(s: &str) -> Option<Mask> {
        match s {
            "partial" => Some(Mask::Partial),
            "email" => Some(Mask::Email),
            "null" => Some(Mask::Null),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        Mask::NAMES[self as usize]
    }
}

/// `audit:`: the tables whose row changes are recorded, and the roles that read the trail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audit {
    /// `audit.data`, in the spec's order (each a table of `tables`).
    pub data: Vec<QualifiedName>,
    /// `audit.readers`, in the spec's order (each a role of `roles`).
    pub readers: Vec<String>,
}

impl Audit {
    pub fn records_data_of(&self, table: &QualifiedName) -> bool {
        self.data.contains(table)
    }
}

/// `requests:`: how long a temporary access an approver may give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requests {
    pub max_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    pub table: QualifiedName,
    pub id: String,
    pub manager: String,
    pub team: Option<String>,
    pub login: Option<String>,
    pub active: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// `current_user` matched against `directory.login`.
    Login,
    /// `current_setting(name, true)` holds the person's id.
    Setting(String),
    /// `{ setting: name, signed: true }`: the setting holds a token signed by the application
    /// (person, expiry, database, roles; `rowsec_core::token`).
    SignedSetting(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Select,
    Insert,
    Update,
    Delete,
}

impl Command {
    pub const ALL: [Command; 4] = [Command::Select, Command::Insert, Command::Update, Command::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Select => "select",
            Command::Insert => "insert",
            Command::Update => "update",
            Command::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    None,
    Own,
    Team,
    Subtree,
    All,
}

impl Scope {
    pub const NAMES: [&'static str; 5] = ["none", "own", "team", "subtree", "all"];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::None => "none",
            Scope::Own => "own",
            Scope::Team => "team",
            Scope::Subtree => "subtree",
            Scope::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        [Scope::None, Scope::Own, Scope::Team, Scope::Subtree, Scope::All].into_iter().find(|x| x.as_str() == s)
    }

    /// Whether every row in `other` is also in `self`, for every person and directory.
    pub fn covers(self, other: Scope) -> bool {
        match (self, other) {
            (_, Scope::None) | (Scope::All, _) => true,
            (Scope::Team | Scope::Subtree, Scope::Own) => true,
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level: one scope per command; a command the level leaves out is `none`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Level {
    pub scopes: BTreeMap<Command, Scope>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: QualifiedName,
    pub key: String,
    pub owner: String,
    /// column -> class
    pub columns: BTreeMap<String, String>,
    pub always: Option<String>,
    pub sharing: bool,
    /// `references`: column -> a spec table whose row (by its key) the column names. Opt-in:
    /// a new or updated row may name only a row the person can see (issue 14: a foreign key
    /// check ignores row-level security, so without it an insert tells whether a hidden key
    /// exists, and links to it).
    pub references: BTreeMap<String, QualifiedName>,
}

impl Table {
    pub fn classes(&self) -> impl Iterator<Item = &str> {
        self.columns.values().map(String::as_str)
    }
}

/// Which tables a role's `tables` entry applies to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TableSelector {
    /// `"*"`: every table of the spec.
    Every,
    Named(QualifiedName),
}

/// A role's per-table override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableOverride {
    /// `none`: no privilege on the table at all, whatever the level and `"*"` say.
    None,
    /// command -> scope; commands not named keep what `"*"` or the level gives.
    Commands(BTreeMap<Command, Scope>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    None,
    Read,
    Write,
}

impl Access {
    pub const NAMES: [&'static str; 3] = ["none", "read", "write"];

    pub fn parse(s: &str) -> Option<Access> {
        match s {
            "none" => Some(Access::None),
            "read" => Some(Access::Read),
            "write" => Some(Access::Write),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        Access::NAMES[self as usize]
    }

    pub fn can_read(self) -> bool {
        self >= Access::Read
    }

    pub fn can_write(self) -> bool {
        self == Access::Write
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub level: Option<String>,
    pub tables: BTreeMap<TableSelector, TableOverride>,
    /// class -> access; a class not named is `none`.
    pub fields: BTreeMap<String, Access>,
    /// `adopt: true`: the group role may already exist without rowsec's mark (made by someone
    /// else); rowsec then takes it over and gives it back, comment restored, when the spec drops it.
    pub adopt: bool,
    /// `limits:` (SPEC item 12): the most rows of one protected table one statement may read
    /// (select) or change (update, delete); a command not named has no limit.
    pub limits: BTreeMap<Command, u64>,
    /// `fields: { <class>: { read: <scope> } }`: the class's clear value only through masked
    /// views and only on rows whose owner is in that scope (masked elsewhere). Such a class is
    /// `none` in `fields`: no column privilege on the table itself, which would show every row.
    pub scoped_reads: BTreeMap<String, Scope>,
}

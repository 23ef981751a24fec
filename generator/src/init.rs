//! `rowsec init`: a commented starter spec that compiles as written.
//!
//! Three templates: `three-level` (the levels CRM vendors describe: full, manager, individual),
//! `two-level` (small firms that merge sales and service: manager, staff) and `blank` (the
//! required parts only). Without a DDL file the spec protects the CRM example's tables
//! (examples/crm-schema.sql); with one ([`guess`]) the directory, each table's key and owner
//! column and the sensitive columns are guessed from names and types, and every guess is said
//! in a comment beside it, for a person to check.

use std::fmt::Write;

use crate::codes::Code;
use crate::model::QualifiedName;
use crate::schema::{ColumnType, Schema};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    ThreeLevel,
    TwoLevel,
    Blank,
}

impl Template {
    pub fn name(self) -> &'static str {
        match self {
            Template::ThreeLevel => "three-level",
            Template::TwoLevel => "two-level",
            Template::Blank => "blank",
        }
    }
}

/// `--schema` has no table that can be the directory of people: nothing to start from.
#[derive(Debug, thiserror::Error)]
#[error(
    "{file}: error[{code}]: no table of this DDL looks like the directory of people \
(a table with a bigint `id` and a bigint manager column: {managers})\n  = hint: write the \
`directory:` part by hand, starting from `rowsec init` without --schema; the tables considered: {considered}",
    code = Code::NoDirectoryTable,
    managers = MANAGER_COLUMNS.join(", "),
    considered = if considered.is_empty() { "none".to_owned() } else { considered.join(", ") }
)]
pub struct NoDirectory {
    pub file: String,
    pub considered: Vec<String>,
}

/// The directory as guessed (or the CRM example's).
#[derive(Debug, Clone)]
pub struct DirectoryGuess {
    pub table: QualifiedName,
    pub id: String,
    pub manager: String,
    pub team: Option<String>,
    pub login: Option<String>,
    pub active: Option<String>,
}

/// A table to protect, as guessed (or the CRM example's).
#[derive(Debug, Clone)]
pub struct TableGuess {
    pub name: QualifiedName,
    pub key: String,
    pub owner: String,
    /// (column, class), in the table's column order.
    pub classes: Vec<(String, &'static str)>,
    pub always: Option<&'static str>,
}

/// What the spec is written over.
#[derive(Debug, Clone)]
pub struct Layout {
    pub directory: DirectoryGuess,
    pub tables: Vec<TableGuess>,
    /// Tables of the DDL left out, each with why.
    pub left_out: Vec<String>,
    /// The DDL file the layout was guessed from; `None`: the CRM example.
    pub from: Option<String>,
}

const MANAGER_COLUMNS: &[&str] =
    &["manager_id", "manager", "reports_to", "reports_to_id", "supervisor_id", "boss_id", "parent_id"];
const TEAM_COLUMNS: &[&str] =
    &["team_id", "team", "department_id", "department", "dept_id", "group_id", "office_id", "region_id"];
const LOGIN_COLUMNS: &[&str] = &["db_login", "login", "db_user", "username", "user_name", "rolname", "role_name"];
const ACTIVE_COLUMNS: &[&str] = &["active", "is_active", "enabled", "is_enabled"];
/// Most specific first: a table with both `owner_id` and `created_by` is owned by `owner_id`.
const OWNER_COLUMNS: &[&str] = &[
    "owner_id",
    "owner",
    "assigned_to_id",
    "assigned_to",
    "assignee_id",
    "account_manager_id",
    "sales_rep_id",
    "rep_id",
    "user_id",
    "employee_id",
    "created_by_id",
    "created_by",
];
/// Directory tables are usually called one of these; a tie between candidates goes to them.
const DIRECTORY_NAMES: &[&str] =
    &["app_users", "users", "people", "persons", "employees", "staff", "members", "team_members"];
/// Words of a column name (split at `_`) that make it a class: kept short, since a classed
/// column that a role cannot write blocks that role's inserts when it is NOT NULL.
const FINANCIAL_WORDS: &[&str] = &["revenue", "salary", "amount", "balance", "price", "cost", "discount", "margin"];
const FINANCIAL_NAMES: &[&str] = &["credit_limit"];
const PII_WORDS: &[&str] = &["email", "phone", "mobile", "address", "birthday", "ssn", "passport", "iban"];
const PII_NAMES: &[&str] = &["date_of_birth", "birth_date", "tax_id"];

/// The CRM example's tables (examples/crm-schema.sql), as crm.yaml protects them.
pub fn crm_example() -> Layout {
    let t = |name: &str, classes: &[(&str, &'static str)], always| TableGuess {
        name: QualifiedName::new("crm", name),
        key: "id".into(),
        owner: "owner_id".into(),
        classes: classes.iter().map(|(c, k)| ((*c).to_owned(), *k)).collect(),
        always,
    };
    Layout {
        directory: DirectoryGuess {
            table: QualifiedName::new("crm", "app_users"),
            id: "id".into(),
            manager: "manager_id".into(),
            team: Some("team_id".into()),
            login: Some("db_login".into()),
            active: Some("active".into()),
        },
        tables: vec![
            t("accounts", &[("annual_revenue", "financial"), ("credit_limit", "financial")], None),
            t("contacts", &[("phone", "pii"), ("email", "pii")], None),
            t("opportunities", &[("amount", "financial")], None),
            t("invoices", &[], Some("NOT voided")),
            t("activities", &[], None),
        ],
        left_out: Vec::new(),
        from: None,
    }
}

/// A name the spec can take as written: YAML reads it as a string, the spec as one identifier.
fn plain(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !matches!(name, "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n")
}

fn find<'a>(columns: &'a [(String, ColumnType)], names: &[&str], ok: impl Fn(&ColumnType) -> bool) -> Option<&'a str> {
    names.iter().find_map(|n| columns.iter().find(|(c, t)| c == n && ok(t)).map(|(c, _)| c.as_str()))
}

fn bigint(t: &ColumnType) -> bool {
    *t == ColumnType::BigInt
}

/// The key column: `id`, else `<table>_id` or `<table without a final s>_id`, bigint.
fn key_column<'a>(table: &QualifiedName, columns: &'a [(String, ColumnType)]) -> Option<&'a str> {
    let singular = table.name.strip_suffix('s').unwrap_or(&table.name);
    let names = ["id".to_owned(), format!("{}_id", table.name), format!("{singular}_id")];
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    find(columns, &names, bigint)
}

fn class_of(column: &str) -> Option<&'static str> {
    let words: Vec<&str> = column.split('_').collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    if FINANCIAL_NAMES.contains(&column) || has(FINANCIAL_WORDS) {
        Some("financial")
    } else if PII_NAMES.contains(&column) || has(PII_WORDS) {
        Some("pii")
    } else {
        None
    }
}

/// Guesses the directory and the tables to protect from a DDL file's tables. `file` names it
/// in the spec's comments and in the error.
pub fn guess(schema: &Schema, file: &str) -> Result<Layout, NoDirectory> {
    // The directory: a plainly named table with a bigint id and a bigint manager column; among
    // several, the one with the usual name, then the most directory columns, then by name.
    let mut candidates: Vec<(bool, usize, &QualifiedName, DirectoryGuess)> = Vec::new();
    let mut considered = Vec::new();
    for (name, columns) in &schema.tables {
        if !plain(&name.schema) || !plain(&name.name) {
            continue;
        }
        let Some(manager) = find(columns, MANAGER_COLUMNS, bigint) else { continue };
        considered.push(name.dotted().to_string());
        let Some(id) = find(columns, &["id"], bigint).or_else(|| key_column(name, columns)) else { continue };
        let guess = DirectoryGuess {
            table: name.clone(),
            id: id.into(),
            manager: manager.into(),
            team: find(columns, TEAM_COLUMNS, |_| true).map(Into::into),
            login: find(columns, LOGIN_COLUMNS, |t| *t == ColumnType::Text).map(Into::into),
            active: find(columns, ACTIVE_COLUMNS, |t| *t == ColumnType::Boolean).map(Into::into),
        };
        let found = [&guess.team, &guess.login, &guess.active].iter().filter(|c| c.is_some()).count();
        candidates.push((DIRECTORY_NAMES.contains(&name.name.as_str()), found, name, guess));
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
    let Some((_, _, _, directory)) = candidates.into_iter().next() else {
        return Err(NoDirectory { file: file.to_owned(), considered });
    };

    let mut tables = Vec::new();
    let mut left_out = Vec::new();
    for (name, columns) in &schema.tables {
        if *name == directory.table {
            continue;
        }
        if !plain(&name.schema) || !plain(&name.name) {
            left_out.push(format!("{}: its name needs quoting; add it by hand", name.dotted()));
            continue;
        }
        let Some(key) = key_column(name, columns) else {
            left_out.push(format!("{}: no bigint key column (id, {}_id)", name.dotted(), name.name));
            continue;
        };
        let Some(owner) = find(columns, OWNER_COLUMNS, bigint) else {
            left_out.push(format!("{}: no bigint owner column ({})", name.dotted(), OWNER_COLUMNS.join(", ")));
            continue;
        };
        let classes = columns
            .iter()
            .filter(|(c, _)| c != key && c != owner && plain(c))
            .filter_map(|(c, _)| Some((c.clone(), class_of(c)?)))
            .collect();
        tables.push(TableGuess { name: name.clone(), key: key.into(), owner: owner.into(), classes, always: None });
    }
    Ok(Layout { directory, tables, left_out, from: Some(file.to_owned()) })
}

/// The spec's text: `command` is how it was made (said in its first line).
pub fn render(template: Template, layout: &Layout, command: &str) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# A rowsec spec, a starting point written by `{command}`.");
    match template {
        Template::ThreeLevel => {
            let _ = writeln!(w, "# The three access levels CRM vendors describe:");
            let _ = writeln!(w, "#   full:       view, edit and delete everything");
            let _ = writeln!(w, "#   manager:    view everything; edit and delete own and subordinates' records");
            let _ = writeln!(w, "#   individual: view own and team's records; edit and delete own records only");
        }
        Template::TwoLevel => {
            let _ = writeln!(w, "# Two levels, for a small firm where the same people sell and serve:");
            let _ = writeln!(w, "#   manager: view, edit and delete everything");
            let _ = writeln!(w, "#   staff:   view every record; edit and delete their own");
        }
        Template::Blank => {
            let _ = writeln!(w, "# The required parts, with no level and no role: every protected table is closed");
            let _ = writeln!(w, "# to everyone until roles are added (see the commented examples).");
        }
    }
    let _ = writeln!(w, "# It compiles as it is. Check it with `rowsec check SPEC --schema DDL`, then edit it:");
    let _ = writeln!(w, "# docs/spec.md says what each key means; `rowsec schema` prints the JSON Schema that");
    let _ = writeln!(w, "# editors use to complete and check it.");
    match &layout.from {
        Some(file) => {
            let _ = writeln!(w, "# Tables and columns were guessed from the names and types in {file}:");
            let _ = writeln!(w, "# check each one marked `guessed`.");
        }
        None => {
            let _ = writeln!(w, "# It protects the tables of rowsec's CRM example (examples/crm-schema.sql); give");
            let _ = writeln!(w, "# `--schema` with your database's DDL to start from your own tables.");
        }
    }
    let _ = writeln!(w, "version: 1");
    directory(w, layout);
    identity(w, layout);
    let team = layout.directory.team.is_some();
    levels(w, template, team);
    tables(w, template, layout);
    roles(w, template, layout);
    part2(w, template, layout);
    out
}

/// A comment after a value: what it is, and `guessed` when it came from the DDL.
fn note(layout: &Layout, what: &str) -> String {
    match (layout.from.is_some(), what.is_empty()) {
        (true, true) => "   # guessed".to_owned(),
        (true, false) => format!("   # guessed; {what}"),
        (false, true) => String::new(),
        (false, false) => format!("   # {what}"),
    }
}

fn directory(w: &mut String, layout: &Layout) {
    let d = &layout.directory;
    let n = |what| note(layout, what);
    let _ = writeln!(w, "\n# The table of people: one row per person.");
    let _ = writeln!(w, "directory:");
    let _ = writeln!(w, "  table: {}{}", d.table.dotted(), n(""));
    let _ = writeln!(w, "  id: {}{}", d.id, n("bigint"));
    let _ = writeln!(w, "  manager: {}{}", d.manager, n("the person's manager, NULL at the top"));
    match &d.team {
        Some(team) => {
            let _ = writeln!(w, "  team: {team}{}", n("people with the same non-null team are teammates"));
        }
        None => {
            let _ = writeln!(w, "  # team: COLUMN   # none found: people with the same non-null team are teammates");
        }
    }
    match &d.login {
        Some(login) => {
            let _ = writeln!(w, "  login: {login}{}", n("the person's PostgreSQL login role"));
        }
        None => {
            let _ = writeln!(w, "  # login: COLUMN  # none found: the person's PostgreSQL login role (text)");
        }
    }
    match &d.active {
        Some(active) => {
            let _ = writeln!(w, "  active: {active}{}", n("false takes all access away at once"));
        }
        None => {
            let _ = writeln!(w, "  # active: COLUMN # none found: a boolean; false takes all access away at once");
        }
    }
}

fn identity(w: &mut String, layout: &Layout) {
    let _ = writeln!(w, "\n# How the database knows who the current person is.");
    if layout.directory.login.is_some() {
        let _ = writeln!(w, "# login: the person whose login column is current_user. A pooled application sets");
        let _ = writeln!(w, "# a setting per transaction instead: identity: {{ setting: app.person_id }}");
        let _ = writeln!(w, "identity: login");
    } else {
        let _ = writeln!(w, "# The directory has no login column: a pooled application sets the person's id per");
        let _ = writeln!(w, "# transaction (SET LOCAL app.person_id = '42'); with a login column, `identity: login`.");
        let _ = writeln!(w, "identity: {{ setting: app.person_id }}");
    }
}

fn levels(w: &mut String, template: Template, team: bool) {
    let _ = writeln!(w, "\n# Named bundles of scopes, one per command. Scopes: none, own, team (own and");
    let _ = writeln!(w, "# teammates'), subtree (own and every subordinate's), all.");
    match template {
        Template::ThreeLevel => {
            let seen = if team { "team," } else { "own, " };
            let _ = writeln!(w, "levels:");
            let _ = writeln!(w, "  full:       {{ select: all,  insert: all,     update: all,     delete: all }}");
            let _ = writeln!(w, "  manager:    {{ select: all,  insert: subtree, update: subtree, delete: subtree }}");
            let _ = write!(w, "  individual: {{ select: {seen} insert: own,     update: own,     delete: own }}");
            if team {
                let _ = writeln!(w);
            } else {
                let _ = writeln!(w, "   # team needs directory.team");
            }
        }
        Template::TwoLevel => {
            let _ =
                writeln!(w, "# staff see every record, as a small firm's shared customer base; to keep colleagues'");
            let _ = writeln!(w, "# records apart, give them `select: team` (needs directory.team) or `select: own`.");
            let _ = writeln!(w, "levels:");
            let _ = writeln!(w, "  manager: {{ select: all, insert: all, update: all, delete: all }}");
            let _ = writeln!(w, "  staff:   {{ select: all, insert: own, update: own, delete: own }}");
        }
        Template::Blank => {
            let _ = writeln!(w, "# For example:  individual: {{ select: own, insert: own, update: own, delete: own }}");
            let _ = writeln!(w, "levels: {{}}");
        }
    }
}

fn tables(w: &mut String, template: Template, layout: &Layout) {
    let g = note(layout, "");
    let _ = writeln!(w, "\n# Each protected table: its key and its owner column (a directory id, bigint). Optional:");
    let _ = writeln!(w, "# columns (column: class, for sensitive columns a role sees only when its fields say so),");
    let _ = writeln!(w, "# sharing (rows can be shared to people and teams), always (a rule every role must meet).");
    if !layout.left_out.is_empty() {
        let _ = writeln!(w, "# Not protected (no row-level security until you add them here):");
        for line in &layout.left_out {
            let _ = writeln!(w, "#   {line}");
        }
    }
    if layout.tables.is_empty() {
        let _ = writeln!(w, "# For example:  crm.accounts: {{ key: id, owner: owner_id }}");
        let _ = writeln!(w, "tables: {{}}");
        return;
    }
    let _ = writeln!(w, "tables:");
    for t in &layout.tables {
        let _ = writeln!(w, "  {}:", t.name.dotted());
        let _ = writeln!(w, "    key: {}{g}", t.key);
        let _ = writeln!(w, "    owner: {}{g}", t.owner);
        if template != Template::Blank && !t.classes.is_empty() {
            let classes: Vec<String> = t.classes.iter().map(|(c, k)| format!("{c}: {k}")).collect();
            let _ = writeln!(w, "    columns: {{ {} }}{g}", classes.join(", "));
        }
        if let Some(always) = t.always {
            let _ = writeln!(w, "    always: \"{always}\"   # every role, every command");
        }
        if template != Template::Blank {
            let _ = writeln!(w, "    sharing: true");
        }
    }
}

/// The classes the tables use, in a fixed order.
fn classes(layout: &Layout) -> Vec<&'static str> {
    ["financial", "pii"]
        .into_iter()
        .filter(|c| layout.tables.iter().any(|t| t.classes.iter().any(|x| x.1 == *c)))
        .collect()
}

fn fields(w: &mut String, layout: &Layout, access: &[(&str, &str)]) {
    let present = classes(layout);
    let granted: Vec<String> =
        access.iter().filter(|(c, _)| present.contains(c)).map(|(c, a)| format!("{c}: {a}")).collect();
    if !granted.is_empty() {
        let _ = writeln!(w, "    fields: {{ {} }}", granted.join(", "));
    }
}

fn roles(w: &mut String, template: Template, layout: &Layout) {
    let _ = writeln!(w, "\n# Each role becomes a PostgreSQL group role (NOLOGIN); people log in as their own");
    let _ =
        writeln!(w, "# roles and are granted these. fields: what a role may do with each class (none, read, write).");
    let limits = "    # limits: { select: 500, update: 50, delete: 10 }   # rows of one table per statement \
(needs shared_preload_libraries = 'rowsec')";
    let crm = layout.from.is_none();
    match template {
        Template::ThreeLevel => {
            let _ = writeln!(w, "roles:");
            let _ = writeln!(w, "  crm_admin:");
            let _ = writeln!(w, "    level: full");
            fields(w, layout, &[("financial", "write"), ("pii", "write")]);
            let _ = writeln!(w, "  sales_manager:");
            let _ = writeln!(w, "    level: manager");
            fields(w, layout, &[("financial", "write"), ("pii", "write")]);
            let _ = writeln!(w, "  sales_rep:");
            let _ = writeln!(w, "    level: individual");
            fields(w, layout, &[("financial", "read"), ("pii", "write")]);
            let _ = writeln!(w, "{limits}");
            let _ = writeln!(w, "  support:");
            let _ = writeln!(w, "    level: individual");
            if crm {
                let _ = writeln!(
                    w,
                    "    tables: {{ crm.invoices: none, crm.opportunities: none }}   # a named table beats the level"
                );
            }
            fields(w, layout, &[("pii", "read")]);
        }
        Template::TwoLevel => {
            let _ = writeln!(w, "roles:");
            let _ = writeln!(w, "  crm_manager:");
            let _ = writeln!(w, "    level: manager");
            fields(w, layout, &[("financial", "write"), ("pii", "write")]);
            let _ = writeln!(w, "  crm_staff:   # sales and service alike");
            let _ = writeln!(w, "    level: staff");
            fields(w, layout, &[("financial", "read"), ("pii", "write")]);
            let _ = writeln!(w, "{limits}");
        }
        Template::Blank => {
            let _ = writeln!(w, "# For example:  sales_rep: {{ level: individual }}");
            let _ = writeln!(w, "roles: {{}}");
        }
    }
}

fn part2(w: &mut String, template: Template, layout: &Layout) {
    let reader = match template {
        Template::ThreeLevel => Some("crm_admin"),
        Template::TwoLevel => Some("crm_manager"),
        Template::Blank => None,
    };
    let first = layout.tables.first().map_or_else(|| "crm.accounts".to_owned(), |t| t.name.dotted().to_string());
    let _ = writeln!(w, "\n# Optional (SPEC Part 2): the audit trail and access requests.");
    match reader {
        Some(reader) => {
            let _ = writeln!(w, "audit:");
            let _ = writeln!(w, "  readers: [{reader}]   # who reads the audit trail, besides superusers");
            let _ = writeln!(w, "  # data: [{first}]   # tables whose every row change is recorded");
        }
        None => {
            let _ = writeln!(w, "# audit:");
            let _ = writeln!(w, "#   readers: [ROLE]   # who reads the audit trail, besides superusers");
            let _ = writeln!(w, "#   data: [{first}]   # tables whose every row change is recorded");
        }
    }
    let _ = writeln!(w, "# requests:");
    let _ = writeln!(w, "#   max_days: 14   # longest temporary access an approver may give (tables with sharing)");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crm_schema() -> Schema {
        Schema::parse(include_str!("../../examples/crm-schema.sql")).unwrap()
    }

    #[test]
    fn the_crm_schema_is_guessed_as_crm_yaml_writes_it() {
        let layout = guess(&crm_schema(), "crm-schema.sql").unwrap();
        let d = &layout.directory;
        assert_eq!(d.table, QualifiedName::new("crm", "app_users"));
        assert_eq!(
            (d.id.as_str(), d.manager.as_str(), d.team.as_deref(), d.login.as_deref(), d.active.as_deref()),
            ("id", "manager_id", Some("team_id"), Some("db_login"), Some("active"))
        );
        let names: Vec<String> = layout.tables.iter().map(|t| t.name.dotted().to_string()).collect();
        assert_eq!(names, ["crm.accounts", "crm.activities", "crm.contacts", "crm.invoices", "crm.opportunities"]);
        assert!(layout.tables.iter().all(|t| t.key == "id" && t.owner == "owner_id"));
        let accounts = &layout.tables[0];
        assert_eq!(
            accounts.classes,
            [("annual_revenue".to_owned(), "financial"), ("credit_limit".to_owned(), "financial")]
        );
        assert!(layout.left_out.is_empty());
    }

    #[test]
    fn a_table_without_an_owner_column_is_left_out_and_said() {
        let ddl = "CREATE TABLE people (id bigint, manager_id bigint);\n\
                   CREATE TABLE notes (id bigint, body text);\n\
                   CREATE TABLE deals (deal_id bigint, assigned_to bigint, amount numeric);";
        let layout = guess(&Schema::parse(ddl).unwrap(), "x.sql").unwrap();
        assert_eq!(layout.directory.table, QualifiedName::new("public", "people"));
        assert!(layout.directory.team.is_none() && layout.directory.login.is_none());
        assert_eq!(layout.tables.len(), 1);
        assert_eq!((layout.tables[0].key.as_str(), layout.tables[0].owner.as_str()), ("deal_id", "assigned_to"));
        assert_eq!(
            layout.left_out,
            ["public.notes: no bigint owner column (".to_owned() + &OWNER_COLUMNS.join(", ") + ")"]
        );
    }

    #[test]
    fn a_manager_column_of_another_type_is_no_directory() {
        let ddl = "CREATE TABLE users (id integer, manager_id integer);";
        let e = guess(&Schema::parse(ddl).unwrap(), "x.sql").unwrap_err();
        assert_eq!(e.considered, Vec::<String>::new());
        assert!(e.to_string().starts_with("x.sql: error[E1506 no-directory-table]: "), "{e}");
    }
}

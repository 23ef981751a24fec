//! The role x table x command matrix with column rights: what a reviewer reads instead of SQL.
//!
//! JSON layout (`format` = "rowsec-matrix/1"; documented in docs/matrix.md, stable):
//! `{ format, spec, sha256, audit_readers: [role], requests_max_days: N|null,
//!   limits: {role: {select|update|delete: N}},
//!   tables: [ { table, sharing, audited, always, classes: {column: class},
//!   roles: [ { role, select, insert, update, delete, classes: {class: none|read|write} } ] } ] }`

use std::collections::BTreeSet;
use std::fmt::Write;

use serde::Serialize;

use crate::model::{Access, Command, Scope, Spec};
use crate::resolve::{class_access, scope};
use crate::Loaded;

#[derive(Debug, Serialize)]
pub struct Matrix {
    pub format: &'static str,
    pub spec: String,
    pub sha256: String,
    /// `audit.readers`: the roles that read the audit trail (besides superusers).
    pub audit_readers: Vec<String>,
    /// `requests.max_days`; null when the spec takes no access requests.
    pub requests_max_days: Option<u32>,
    /// `roles.<name>.limits`: role -> command -> the most rows of one protected table per
    /// statement; only roles with a limit, only the commands they limit.
    pub limits: std::collections::BTreeMap<String, std::collections::BTreeMap<&'static str, u64>>,
    pub tables: Vec<TableRow>,
}

#[derive(Debug, Serialize)]
pub struct TableRow {
    pub table: String,
    pub sharing: bool,
    /// Under `audit.data`: every row change is recorded in the audit trail.
    pub audited: bool,
    pub always: Option<String>,
    /// column -> class
    pub classes: std::collections::BTreeMap<String, String>,
    pub roles: Vec<RoleRow>,
}

#[derive(Debug, Serialize)]
pub struct RoleRow {
    pub role: String,
    pub select: Scope,
    pub insert: Scope,
    pub update: Scope,
    pub delete: Scope,
    /// class -> what the role can do with the table's columns of that class, given both its
    /// `fields` and its commands (reading needs select; writing needs insert or update).
    pub classes: std::collections::BTreeMap<String, Access>,
}

pub fn build(loaded: &Loaded) -> Matrix {
    let spec: &Spec = &loaded.spec;
    let tables = spec
        .tables
        .values()
        .map(|t| {
            let classes: BTreeSet<&str> = t.classes().collect();
            let roles = spec
                .roles
                .values()
                .map(|r| {
                    let s = |c| scope(&spec.levels, r, &t.name, c);
                    let can_read = s(Command::Select) != Scope::None;
                    let can_write = s(Command::Insert) != Scope::None || s(Command::Update) != Scope::None;
                    let classes = classes
                        .iter()
                        .map(|c| {
                            let a = class_access(r, c);
                            let effective = if a.can_write() && can_write {
                                Access::Write
                            } else if a.can_read() && can_read {
                                Access::Read
                            } else {
                                Access::None
                            };
                            (c.to_string(), effective)
                        })
                        .collect();
                    RoleRow {
                        role: r.name.clone(),
                        select: s(Command::Select),
                        insert: s(Command::Insert),
                        update: s(Command::Update),
                        delete: s(Command::Delete),
                        classes,
                    }
                })
                .collect();
            TableRow {
                table: format!("{}.{}", t.name.schema, t.name.name),
                sharing: t.sharing,
                audited: spec.audit.records_data_of(&t.name),
                always: t.always.clone(),
                classes: t.columns.clone(),
                roles,
            }
        })
        .collect();
    Matrix {
        format: "rowsec-matrix/1",
        spec: loaded.file.clone(),
        sha256: loaded.sha256.clone(),
        audit_readers: spec.audit.readers.clone(),
        requests_max_days: spec.requests.map(|r| r.max_days),
        limits: spec
            .roles
            .values()
            .filter(|r| !r.limits.is_empty())
            .map(|r| (r.name.clone(), r.limits.iter().map(|(c, n)| (c.as_str(), *n)).collect()))
            .collect(),
        tables,
    }
}

/// How [`render`] lays the matrix out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

pub fn render(m: &Matrix, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(m).expect("matrix serializes") + "\n",
        Format::Text => render_table(m, false),
        Format::Markdown => render_table(m, true),
    }
}

fn render_table(m: &Matrix, markdown: bool) -> String {
    let mut out = String::new();
    if markdown {
        let _ = writeln!(out, "# Access matrix for `{}`\n", m.spec);
    } else {
        let _ = writeln!(out, "Access matrix for {} (rows: scopes per command; classes: none/read/write)", m.spec);
    }
    let readers = if m.audit_readers.is_empty() { "superusers only".to_owned() } else { m.audit_readers.join(", ") };
    let requests = m.requests_max_days.map_or_else(|| "not taken".to_owned(), |d| format!("up to {d} days"));
    let _ = writeln!(out, "Audit trail readers: {readers}. Access requests: {requests}.");
    let limits: Vec<String> = m
        .limits
        .iter()
        .map(|(role, l)| {
            let l: Vec<String> = l.iter().map(|(c, n)| format!("{c} {n}")).collect();
            format!("{role} ({})", l.join(", "))
        })
        .collect();
    let limits = if limits.is_empty() { "none".to_owned() } else { limits.join("; ") };
    let _ = writeln!(out, "Limits, rows of one table per statement (a person gets the largest of their roles'; a role without one lifts it): {limits}.");
    if markdown {
        out.push('\n');
    }
    for t in &m.tables {
        let mut notes = Vec::new();
        if t.sharing {
            notes.push("sharing".to_owned());
        }
        if t.audited {
            notes.push("audited: every row change recorded".to_owned());
        }
        if let Some(a) = &t.always {
            notes.push(format!("always: {a}"));
        }
        for (column, class) in &t.classes {
            notes.push(format!("{column}: {class}"));
        }
        let classes: Vec<&str> = t.classes.values().map(String::as_str).collect::<BTreeSet<_>>().into_iter().collect();
        let mut header = vec!["role", "select", "insert", "update", "delete"];
        header.extend(&classes);
        let rows: Vec<Vec<String>> = t
            .roles
            .iter()
            .map(|r| {
                let mut row = vec![
                    r.role.clone(),
                    r.select.to_string(),
                    r.insert.to_string(),
                    r.update.to_string(),
                    r.delete.to_string(),
                ];
                row.extend(classes.iter().map(|c| r.classes[*c].as_str().to_owned()));
                row
            })
            .collect();
        let suffix = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) };
        if markdown {
            let _ = writeln!(out, "## `{}`{suffix}\n", t.table);
            let _ = writeln!(out, "| {} |", header.join(" | "));
            let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
            for row in rows {
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
            out.push('\n');
        } else {
            let _ = writeln!(out, "\n{}{suffix}", t.table);
            let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.len());
                }
            }
            let line = |cells: Vec<&str>| {
                let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
                format!("  {}", padded.join("  ").trim_end())
            };
            let _ = writeln!(out, "{}", line(header.clone()));
            for row in &rows {
                let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
            }
        }
    }
    out
}

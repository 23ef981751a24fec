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
    /// One self-contained page (inline CSS, no script, nothing fetched), readable on a phone.
    Html,
}

pub fn render(m: &Matrix, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(m).expect("matrix serializes") + "\n",
        Format::Text => render_table(m, false),
        Format::Markdown => render_table(m, true),
        Format::Html => render_html(m),
    }
}

/// Text for HTML: every name and rule of the spec goes through here.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Scopes and class rights are coloured by how much they give, from none to all or write.
const STYLE: &str = "\
:root{color-scheme:light;--line:#d0d7de;--muted:#57606a}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;padding:1rem;color:#1f2328;background:#fff}
main{max-width:64rem;margin:0 auto}
h1{font-size:1.35rem;margin:.2rem 0 .6rem;overflow-wrap:anywhere}
h2{font-size:1.1rem;margin:1.6rem 0 .3rem;overflow-wrap:anywhere}
p,dl,ul{margin:.3rem 0}
.muted{color:var(--muted)}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;padding:0 .2em;border-radius:3px;overflow-wrap:anywhere}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;border:1px solid var(--line);border-radius:6px;margin:.4rem 0}
table{border-collapse:collapse;width:100%;min-width:32rem}
th,td{padding:.35rem .5rem;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
thead th{background:#f6f8fa;font-weight:600}
tbody th{position:sticky;left:0;background:#fff;font-weight:600}
tr:last-child td,tr:last-child th{border-bottom:0}
.s{display:inline-block;min-width:4.2em;text-align:center;border-radius:999px;padding:0 .5em;font-size:13px}
.none{background:#eaeef2;color:#57606a}.own{background:#ddf4ff;color:#0550ae}.team{background:#d8f3e3;color:#116329}
.subtree{background:#fff1c2;color:#7d4e00}.all{background:#ffe2dd;color:#a40e26}
.read{background:#ddf4ff;color:#0550ae}.write{background:#ffe2dd;color:#a40e26}
.tags span{display:inline-block;margin:.15rem .3rem .15rem 0;padding:0 .45em;border:1px solid var(--line);border-radius:4px;font-size:13px}
h1 code,h2 code{font-size:1em}
@media (max-width:40rem){body{padding:.6rem;font-size:14px}th,td{padding:.3rem .3rem}table{min-width:0}.s{min-width:0;padding:0 .35em;font-size:12px}}
";

fn render_html(m: &Matrix) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">");
    let _ = writeln!(w, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    let _ = writeln!(
        w,
        "<title>Access matrix: {}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>",
        esc(&m.spec)
    );
    let _ = writeln!(w, "<h1>Access matrix for <code>{}</code></h1>", esc(&m.spec));
    let _ = writeln!(
        w,
        "<p class=\"muted\">spec SHA-256 <code>{}</code>. Each cell is the scope a role has for a command (which rows); \
class columns say what it may do with the table's classed columns. A person gets the union of their roles.</p>",
        esc(&m.sha256)
    );
    let scope_legend: Vec<String> =
        ["none", "own", "team", "subtree", "all"].iter().map(|s| format!("<span class=\"s {s}\">{s}</span>")).collect();
    let _ = writeln!(
        w,
        "<p>Scopes: {} (own: the owner is the person; team: or a teammate; subtree: or anyone below them).</p>",
        scope_legend.join(" ")
    );
    let readers = if m.audit_readers.is_empty() {
        "superusers only".to_owned()
    } else {
        m.audit_readers.iter().map(|r| format!("<code>{}</code>", esc(r))).collect::<Vec<_>>().join(", ")
    };
    let requests = m.requests_max_days.map_or_else(|| "not taken".to_owned(), |d| format!("up to {d} days"));
    let _ = writeln!(w, "<ul>\n<li>Audit trail readers: {readers}</li>\n<li>Access requests: {requests}</li>\n</ul>");
    if !m.limits.is_empty() {
        let _ = writeln!(w, "<h2>Limits</h2>");
        let _ = writeln!(
            w,
            "<p class=\"muted\">Rows of one protected table per statement; a person gets the largest of their roles', and a role without one lifts it.</p>"
        );
        let _ = writeln!(w, "<div class=\"scroll\"><table>\n<thead><tr><th>role</th><th>select</th><th>update</th><th>delete</th></tr></thead>\n<tbody>");
        for (role, limits) in &m.limits {
            let cell = |c: &str| {
                limits.get(c).map_or_else(|| "<span class=\"muted\">none</span>".to_owned(), |n| n.to_string())
            };
            let _ = writeln!(
                w,
                "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(role),
                cell("select"),
                cell("update"),
                cell("delete")
            );
        }
        let _ = writeln!(w, "</tbody>\n</table></div>");
    }
    for t in &m.tables {
        let _ = writeln!(w, "<h2 id=\"{}\"><code>{}</code></h2>", esc(&t.table), esc(&t.table));
        let mut tags = Vec::new();
        if t.sharing {
            tags.push("sharing".to_owned());
        }
        if t.audited {
            tags.push("audited: every row change recorded".to_owned());
        }
        if let Some(a) = &t.always {
            tags.push(format!("always: <code>{}</code>", esc(a)));
        }
        for (column, class) in &t.classes {
            tags.push(format!("<code>{}</code>: {}", esc(column), esc(class)));
        }
        if !tags.is_empty() {
            let tags: Vec<String> = tags.into_iter().map(|t| format!("<span>{t}</span>")).collect();
            let _ = writeln!(w, "<p class=\"tags\">{}</p>", tags.join(""));
        }
        let classes: Vec<&str> = t.classes.values().map(String::as_str).collect::<BTreeSet<_>>().into_iter().collect();
        let _ = write!(w, "<div class=\"scroll\"><table>\n<thead><tr><th>role</th><th>select</th><th>insert</th><th>update</th><th>delete</th>");
        for c in &classes {
            let _ = write!(w, "<th>{}</th>", esc(c));
        }
        let _ = writeln!(w, "</tr></thead>\n<tbody>");
        for r in &t.roles {
            let _ = write!(w, "<tr><th>{}</th>", esc(&r.role));
            for s in [r.select, r.insert, r.update, r.delete] {
                let s = s.to_string();
                let _ = write!(w, "<td><span class=\"s {s}\">{s}</span></td>");
            }
            for c in &classes {
                let a = r.classes[*c].as_str();
                let _ = write!(w, "<td><span class=\"s {a}\">{a}</span></td>");
            }
            let _ = writeln!(w, "</tr>");
        }
        let _ = writeln!(w, "</tbody>\n</table></div>");
    }
    let _ = writeln!(w, "</main>\n</body>\n</html>");
    out
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

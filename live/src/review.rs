//! `rowsec review` (SPEC item 17): one section per manager, listing each person in their
//! subtree with their roles, what each role lets them do per table (scope, and the rows that
//! gives them today), their active shares and the share changes since a date.
//!
//! Built only from what this database has: the directory, the spec's roles, `rowsec.shares`, and
//! the audit trail `rowsec.audit_log` (share and unshare rows, directory and membership changes,
//! attestations since `--since`) when the connecting role may read it, on either backend (the
//! SQL backend's membership rows are reconciled ones). Activity and alerts
//! (SPEC items 13 and 14, `rowsec.activity`, `rowsec.alerts`) are not read by this version; the
//! review says so for each part it has no source for, and never fills it in.

use std::collections::BTreeMap;
use std::fmt::Write;

use postgres::Client;
use rowsec_generator::model::Command;
use rowsec_generator::oracle::{Oracle, Row};
use serde::Serialize;

use crate::catalog;
use crate::error::{Error, Result};
use crate::people::{self, Directory};

#[derive(Debug, Clone, Serialize)]
pub struct DataSource {
    pub part: String,
    /// Where the part comes from, or `None` when there is no data source yet.
    pub source: Option<String>,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableAccess {
    pub table: String,
    /// command -> the best scope among the person's roles ("none" without a privilege)
    pub scopes: BTreeMap<String, String>,
    pub rows_visible: usize,
    pub rows_updatable: usize,
    pub rows_total: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PersonReview {
    pub id: i64,
    pub login: Option<String>,
    pub active: bool,
    pub reports_to: Option<i64>,
    pub roles: Vec<String>,
    pub access: Vec<TableAccess>,
    pub shares: Vec<String>,
    pub share_changes: Vec<String>,
    /// Directory and membership changes of this person since `--since`, from the audit trail.
    pub access_changes: Vec<String>,
    /// Earlier reviews' decisions about this person (`rowsec.attest`), from the audit trail.
    pub attestations: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManagerSection {
    pub manager: i64,
    pub login: Option<String>,
    pub people: Vec<PersonReview>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Review {
    pub database: String,
    pub spec: String,
    pub since: Option<String>,
    pub sources: Vec<DataSource>,
    pub managers: Vec<ManagerSection>,
}

/// Rows counted per table, at most (by key).
const ROW_BOUND: i64 = 100_000;

pub fn run(
    client: &mut Client,
    database: &str,
    loaded: &rowsec_generator::Loaded,
    since: Option<&str>,
) -> Result<Review> {
    let spec = &loaded.spec;
    catalog::require_superuser(client, "read the directory, the shares and their history")?;
    catalog::check_spec_tables(client, spec)?;
    if let Some(s) = since {
        client.query_one("SELECT $1::text::timestamptz", &[&s]).map_err(|e| Error::BadInput {
            what: format!("--since {s}: not a date or time PostgreSQL understands ({})", crate::error::describe(&e)),
            fix: "write it as 2026-01-31 or 2026-01-31 09:00+00".to_owned(),
        })?;
    }
    let directory = Directory::read(client, spec)?;
    // Both backends keep shares and the trail in the same tables (the SQL backend records
    // membership changes only when reconciling: nothing in SQL sees a GRANT of a role).
    let backend = catalog::installed_backend(client)?;
    let installed = backend.is_some();
    let mut oracle = Oracle::new(spec, directory.people());
    if installed {
        oracle.shares = people::shares(client)?;
    }
    let mut rows: BTreeMap<_, Vec<Row>> = BTreeMap::new();
    for t in spec.tables.keys() {
        rows.insert(t.clone(), people::rows(client, spec, t, ROW_BOUND)?);
    }
    let exists = |client: &mut Client, name: &str| -> Result<bool> {
        Ok(client
            .query_one("SELECT pg_catalog.to_regclass($1) IS NOT NULL OR EXISTS (SELECT FROM pg_catalog.pg_proc WHERE oid::regproc::text = $1)", &[&name])
            .map_err(Error::query("review: looking for rowsec's tables"))?
            .get(0))
    };
    let mut sources = vec![
        DataSource {
            part: "people and managers".into(),
            source: Some(format!("directory {} ({} people)", spec.directory.table.dotted(), directory.members.len())),
            note: String::new(),
        },
        DataSource {
            part: "roles and what they allow".into(),
            source: Some(format!(
                "spec {} (sha256 {}), memberships in pg_auth_members",
                loaded.file,
                &loaded.sha256[..12]
            )),
            note: "row counts are what the spec's rules give each person on today's rows".into(),
        },
    ];
    let share_source = |what: &str, table: &str| DataSource {
        part: what.into(),
        source: installed.then(|| table.to_owned()),
        note: if installed {
            String::new()
        } else {
            "rowsec (the extension or the SQL backend) is not installed in this database".into()
        },
    };
    sources.push(share_source("active shares", "rowsec.shares"));
    // The trail hides its rows from anyone but superusers and audit.readers: say so rather than
    // report "no changes" to a reviewer who cannot see them.
    let trail_readable = installed
        && exists(client, "rowsec.audit_log")?
        && client
            .query_one("SELECT rowsec.is_audit_reader()", &[])
            .map_err(Error::query("review: asking whether the audit trail is readable"))?
            .get::<_, bool>(0);
    let trail_note = if trail_readable {
        String::new()
    } else if installed && exists(client, "rowsec.audit_log")? {
        "rowsec.audit_log exists but the connecting role is neither a superuser nor in audit.readers: \
         connect as one to see these"
            .into()
    } else {
        "no data source yet: rowsec.audit_log (SPEC item 15) is not installed in this database".into()
    };
    for part in ["share changes", "changes to people, managers and memberships", "earlier reviews and attestations"] {
        let note = if trail_readable && part.ends_with("memberships") && backend == Some(rowsec_generator::Backend::Sql)
        {
            "on the SQL backend membership changes reach the trail only when rowsec.reconcile_memberships() runs \
             (every apply, or as scheduled), without when or by whom: nothing in SQL sees a GRANT of a role"
                .into()
        } else {
            trail_note.clone()
        };
        sources.push(DataSource {
            part: part.into(),
            source: trail_readable.then(|| "rowsec.audit_log".to_owned()),
            note,
        });
    }
    for (part, object, item) in [("activity totals", "rowsec.activity", "13"), ("alerts", "rowsec.alerts", "14")] {
        let note = if exists(client, object)? {
            format!("{object} exists, but this version of rowsec review does not read it yet")
        } else {
            format!("no data source yet: {object} (SPEC item {item}) is not installed in this database")
        };
        sources.push(DataSource { part: part.into(), source: None, note });
    }

    // Shares held, per grantee person.
    let mut shares_of: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    if installed {
        for r in client
            .query(
                "SELECT grantee_person, tbl::text || ' key ' || row_key || ', ' || access || ', ' \
                 || coalesce('until ' || expires_at, 'no expiry') FROM rowsec.shares \
                 WHERE grantee_person IS NOT NULL AND (expires_at IS NULL OR expires_at > now()) ORDER BY id",
                &[],
            )
            .map_err(Error::query("review: reading rowsec.shares"))?
        {
            shares_of.entry(r.get(0)).or_default().push(r.get(1));
        }
    }
    // From the trail, per person: (share changes, directory and membership changes, attestations).
    let mut changes_of: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut access_of: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut attested: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    if trail_readable {
        let login_of: BTreeMap<&str, i64> =
            directory.members.values().filter_map(|m| Some((m.login.as_deref()?, m.id))).collect();
        for r in client
            .query(
                "SELECT kind, at::text, coalesce('person ' || actor, login), detail::text, object FROM rowsec.audit_log \
                 WHERE kind IN ('share', 'unshare', 'directory', 'membership', 'attest') \
                 AND ($1::text IS NULL OR at >= $1::text::timestamptz) ORDER BY seq NULLS LAST, id",
                &[&since],
            )
            .map_err(Error::query("review: reading rowsec.audit_log"))?
        {
            let (kind, at, by, detail, object): (String, String, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            let d: serde_json::Value = serde_json::from_str(&detail).unwrap_or_default();
            let text = |k: &str| d.get(k).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
            let id = |k: &str| d.get(k).and_then(serde_json::Value::as_i64);
            match kind.as_str() {
                "share" | "unshare" => {
                    if let Some(p) = id("grantee_person") {
                        let line = format!(
                            "{at}: {kind} {object} key {} ({}) by {by}{}",
                            text("key").unwrap_or_default(),
                            text("access").unwrap_or_default(),
                            text("reason").map(|r| format!(": {r}")).unwrap_or_default()
                        );
                        changes_of.entry(p).or_default().push(line);
                    }
                }
                "directory" => {
                    if let Some(p) = id("id") {
                        let what = d.get("changes").map(ToString::to_string).unwrap_or_default();
                        access_of.entry(p).or_default().push(format!(
                            "{at}: directory {} by {by}: {what}",
                            text("op").unwrap_or_default()
                        ));
                    }
                }
                "membership" => {
                    let member = text("member").unwrap_or_default();
                    if let Some(&p) = login_of.get(member.as_str()) {
                        access_of.entry(p).or_default().push(format!(
                            "{at}: {} {} by {by}",
                            text("op").unwrap_or_default(),
                            text("role").unwrap_or_default()
                        ));
                    }
                }
                _ => {
                    if let Some(p) = id("person") {
                        let keep = if d.get("keep").and_then(serde_json::Value::as_bool) == Some(true) {
                            "keep"
                        } else {
                            "revoke"
                        };
                        attested.entry(p).or_default().push(format!(
                            "{at}: {keep} by {by}{}",
                            text("note").map(|n| format!(": {n}")).unwrap_or_default()
                        ));
                    }
                }
            }
        }
    }

    let mut managers = Vec::new();
    for m in directory.members.values() {
        let mut below: Vec<i64> = oracle.subtree(m.id).into_iter().filter(|id| *id != m.id).collect();
        if below.is_empty() {
            continue;
        }
        below.sort();
        let people = below
            .iter()
            .filter_map(|id| directory.members.get(id))
            .map(|p| {
                let access = rows
                    .iter()
                    .map(|(t, table_rows)| {
                        let scopes = Command::ALL
                            .iter()
                            .map(|c| {
                                let best = p
                                    .person
                                    .roles
                                    .iter()
                                    .map(|r| oracle.scope(r, t, *c))
                                    .max_by_key(|s| scope_rank(*s));
                                (c.as_str().to_owned(), best.map_or("none", |s| s.as_str()).to_owned())
                            })
                            .collect();
                        TableAccess {
                            table: t.dotted().to_string(),
                            scopes,
                            rows_visible: table_rows.iter().filter(|r| oracle.visible(p.id, t, r)).count(),
                            rows_updatable: table_rows.iter().filter(|r| oracle.updatable(p.id, t, r)).count(),
                            rows_total: table_rows.len(),
                        }
                    })
                    .collect();
                PersonReview {
                    id: p.id,
                    login: p.login.clone(),
                    active: p.person.active,
                    reports_to: p.person.manager,
                    roles: p.person.roles.clone(),
                    access,
                    shares: shares_of.get(&p.id).cloned().unwrap_or_default(),
                    share_changes: changes_of.get(&p.id).cloned().unwrap_or_default(),
                    access_changes: access_of.get(&p.id).cloned().unwrap_or_default(),
                    attestations: attested.get(&p.id).cloned().unwrap_or_default(),
                }
            })
            .collect();
        managers.push(ManagerSection { manager: m.id, login: m.login.clone(), people });
    }
    Ok(Review {
        database: database.to_owned(),
        spec: loaded.file.clone(),
        since: since.map(str::to_owned),
        sources,
        managers,
    })
}

fn scope_rank(s: rowsec_generator::model::Scope) -> u8 {
    use rowsec_generator::model::Scope::*;
    match s {
        None => 0,
        Own => 1,
        Team => 2,
        Subtree => 3,
        All => 4,
    }
}

fn name(id: i64, login: &Option<String>) -> String {
    login.as_ref().map_or(format!("person {id}"), |l| format!("person {id} ({l})"))
}

impl Review {
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Access review: {}\n", self.database);
        let _ = writeln!(
            s,
            "Spec: `{}`. Changes since: {}.\n",
            self.spec,
            self.since.as_deref().unwrap_or("the beginning of the records (no --since)")
        );
        let _ = writeln!(s, "## Data sources\n");
        for d in &self.sources {
            match &d.source {
                Some(src) => {
                    let note = if d.note.is_empty() { String::new() } else { format!(" ({})", d.note) };
                    let _ = writeln!(s, "- {}: {src}{note}", d.part);
                }
                None => {
                    let _ = writeln!(s, "- {}: **{}**", d.part, d.note);
                }
            }
        }
        for m in &self.managers {
            let _ = writeln!(s, "\n## Manager {}: {} people\n", name(m.manager, &m.login), m.people.len());
            for p in &m.people {
                let state = if p.active { "active" } else { "INACTIVE" };
                let reports = p.reports_to.map_or(String::new(), |r| format!(", reports to {r}"));
                let _ = writeln!(s, "### {}, {state}{reports}\n", name(p.id, &p.login));
                let roles = if p.roles.is_empty() { "none".to_owned() } else { p.roles.join(", ") };
                let _ = writeln!(s, "Roles: {roles}\n");
                let _ = writeln!(s, "| table | select | insert | update | delete | rows visible | rows updatable |");
                let _ = writeln!(s, "|---|---|---|---|---|---|---|");
                for a in &p.access {
                    let sc = |c: &str| a.scopes.get(c).cloned().unwrap_or_default();
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {} | {} of {} | {} |",
                        a.table,
                        sc("select"),
                        sc("insert"),
                        sc("update"),
                        sc("delete"),
                        a.rows_visible,
                        a.rows_total,
                        a.rows_updatable
                    );
                }
                let list = |items: &[String]| if items.is_empty() { "none".to_owned() } else { items.join("; ") };
                let _ = writeln!(s, "\nActive shares: {}\n", list(&p.shares));
                let _ = writeln!(s, "Share changes: {}\n", list(&p.share_changes));
                let _ = writeln!(s, "Access changes: {}\n", list(&p.access_changes));
                let _ = writeln!(s, "Earlier reviews: {}\n", list(&p.attestations));
            }
        }
        s
    }

    /// A self-contained page (no script, no external resource).
    pub fn html(&self) -> String {
        let e = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
        let mut s = String::from(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>rowsec access review</title>\n<style>\
             body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0}\
             td,th{border:1px solid #bbb;padding:.2em .6em;text-align:left}th{background:#eee}.missing{color:#a40}\
             .inactive{color:#a00;font-weight:bold}section{border-top:2px solid #444;margin-top:1.5em}</style></head><body>\n",
        );
        let _ = writeln!(s, "<h1>Access review: {}</h1>", e(&self.database));
        let _ = writeln!(
            s,
            "<p>Spec <code>{}</code>. Changes since: {}.</p><h2>Data sources</h2><ul>",
            e(&self.spec),
            e(self.since.as_deref().unwrap_or("the beginning of the records (no --since)"))
        );
        for d in &self.sources {
            match &d.source {
                Some(src) => {
                    let _ = writeln!(s, "<li>{}: {} {}</li>", e(&d.part), e(src), e(&d.note));
                }
                None => {
                    let _ = writeln!(s, "<li>{}: <span class=\"missing\">{}</span></li>", e(&d.part), e(&d.note));
                }
            }
        }
        s.push_str("</ul>\n");
        for m in &self.managers {
            let _ =
                writeln!(s, "<section><h2>Manager {}: {} people</h2>", e(&name(m.manager, &m.login)), m.people.len());
            for p in &m.people {
                let state =
                    if p.active { "active".to_owned() } else { "<span class=\"inactive\">inactive</span>".to_owned() };
                let _ = writeln!(
                    s,
                    "<h3>{}, {state}</h3><p>Roles: {}</p>",
                    e(&name(p.id, &p.login)),
                    e(&p.roles.join(", "))
                );
                s.push_str("<table><tr><th>table</th><th>select</th><th>insert</th><th>update</th><th>delete</th><th>rows visible</th><th>rows updatable</th></tr>\n");
                for a in &p.access {
                    let sc = |c: &str| e(&a.scopes.get(c).cloned().unwrap_or_default());
                    let _ = writeln!(
                        s,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} of {}</td><td>{}</td></tr>",
                        e(&a.table),
                        sc("select"),
                        sc("insert"),
                        sc("update"),
                        sc("delete"),
                        a.rows_visible,
                        a.rows_total,
                        a.rows_updatable
                    );
                }
                s.push_str("</table>\n");
                let list = |items: &[String]| if items.is_empty() { "none".to_owned() } else { e(&items.join("; ")) };
                let _ = writeln!(
                    s,
                    "<p>Active shares: {}</p><p>Share changes: {}</p><p>Access changes: {}</p><p>Earlier reviews: {}</p>",
                    list(&p.shares),
                    list(&p.share_changes),
                    list(&p.access_changes),
                    list(&p.attestations)
                );
            }
            s.push_str("</section>\n");
        }
        s.push_str("</body></html>\n");
        s
    }
}

//! `audit:` (SPEC item 15): `data`, the tables whose row changes are recorded, and `readers`,
//! the roles that read the audit trail. Both must name what the spec defines (`check`, run over
//! the built parts).

use std::collections::BTreeMap;

use super::reader::Reader;
use crate::diagnostic::{suggestion, Code, Span};
use crate::model::{Audit, QualifiedName, Role};
use crate::yaml::{Node, NodeKind};

const KEYS: &[&str] = &["data", "readers"];

/// Where each table and reader was written, as written.
#[derive(Default)]
pub(super) struct AuditPlaces {
    pub data: Vec<(Span, String)>,
    pub readers: Vec<Span>,
}

pub(super) fn read(r: &mut Reader, node: &Node, key: Span) -> (Audit, AuditPlaces) {
    let mut audit = Audit::default();
    let mut places = AuditPlaces::default();
    let Some(f) = r.fields(node, "`audit`", KEYS, &[], key) else { return (audit, places) };
    for item in f.get("data").map(|n| list(r, n, "`audit.data`")).unwrap_or_default() {
        let Some(table) = r.qualified_name(item, "a table name") else { continue };
        let written = item.as_str().unwrap_or_default().to_owned();
        if let Some(at) = audit.data.iter().position(|t| *t == table) {
            r.error(
                Code::DuplicateTable,
                item.span,
                format!("table `{written}` is listed twice in `audit.data` (first on line {})", places.data[at].0.line),
                "remove one of them",
            );
            continue;
        }
        audit.data.push(table);
        places.data.push((item.span, written));
    }
    for item in f.get("readers").map(|n| list(r, n, "`audit.readers`")).unwrap_or_default() {
        let Some(role) = r.string(item, "a role name") else { continue };
        if !audit.readers.contains(&role) {
            audit.readers.push(role);
            places.readers.push(item.span);
        }
    }
    (audit, places)
}

/// The items of a YAML list (a null node: none).
fn list<'n>(r: &mut Reader, node: &'n Node, what: &str) -> Vec<&'n Node> {
    match &node.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        _ if node.is_null() => Vec::new(),
        _ => {
            r.error(
                Code::NotAValue,
                node.span,
                format!("{what} must be a list, found {}", node.kind_name()),
                "write a list such as `[crm.accounts, crm.opportunities]`",
            );
            Vec::new()
        }
    }
}

/// Every table of `audit.data` is a table of the spec, every reader a role of the spec.
pub(super) fn check<T>(
    r: &mut Reader,
    audit: &Audit,
    places: &AuditPlaces,
    tables: &BTreeMap<QualifiedName, T>,
    roles: &BTreeMap<String, Role>,
) {
    let table_names: Vec<String> = tables.keys().map(|t| t.dotted().to_string()).collect();
    let table_names: Vec<&str> = table_names.iter().map(String::as_str).collect();
    for (table, (span, written)) in audit.data.iter().zip(&places.data) {
        if !tables.contains_key(table) {
            r.error(
                Code::UnknownTable,
                *span,
                format!("`audit.data` names table `{written}`, which is not under `tables`"),
                suggestion(written, &table_names, "table"),
            );
        }
    }
    let role_names: Vec<&str> = roles.keys().map(String::as_str).collect();
    for (role, span) in audit.readers.iter().zip(&places.readers) {
        if !roles.contains_key(role) {
            r.error(
                Code::UnknownRole,
                *span,
                format!("`audit.readers` names role `{role}`, which is not under `roles`"),
                suggestion(role, &role_names, "role"),
            );
        }
    }
}

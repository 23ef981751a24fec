//! `classes:` (rowsec's masked columns): per column class, how its columns read in the masked
//! views for a person without the class. `check` runs over the built parts: every class named
//! must be used by a table, a scoped read (`fields: { pii: { read: own } }`) needs its class
//! masked, and the views' schemas and helper names must be ones PostgreSQL and rowsec accept.

use std::collections::{BTreeMap, BTreeSet};

use super::reader::Reader;
use super::{Parts, Places};
use crate::diagnostic::{did_you_mean, suggestion, Code, Span};
use crate::model::{Class, Mask, Scope};
use crate::names::MAX_IDENTIFIER_BYTES;
use crate::sql::masking;
use crate::yaml::{Node, NodeKind};

const KEYS: &[&str] = &["mask"];

/// class -> where its name was written.
pub(super) type ClassPlaces = BTreeMap<String, Span>;

pub(super) fn read(r: &mut Reader, node: &Node) -> (BTreeMap<String, Class>, ClassPlaces) {
    let mut classes = BTreeMap::new();
    let mut places = BTreeMap::new();
    let Some(e) = r.entries(node, "`classes`") else { return (classes, places) };
    for (name, k, v) in e.items {
        places.insert(name.to_owned(), k.span);
        let what = format!("class `{name}`");
        let Some(f) = r.fields(v, &what, KEYS, &["mask"], k.span) else {
            if v.is_null() {
                r.error(
                    Code::MissingKey,
                    k.span,
                    format!("{what} under `classes` is missing the required key `mask`"),
                    "write e.g. `pii: { mask: partial }` (partial, email or null)",
                );
            }
            continue;
        };
        let Some(n) = f.get("mask") else { continue };
        // `mask: null` is YAML's null: the mask of that name, not a missing value.
        let text = match &n.kind {
            NodeKind::Scalar { text, quoted: false } if n.is_null() && !text.is_empty() => "null".to_owned(),
            _ => {
                let Some(text) = r.string(n, &format!("the mask of {what}")) else { continue };
                text
            }
        };
        match Mask::parse(&text) {
            Some(mask) => {
                classes.insert(name.to_owned(), Class { name: name.to_owned(), mask });
            }
            None => r.error(
                Code::UnknownMask,
                n.span,
                format!("unknown mask `{text}` for {what}"),
                suggestion(&text, &Mask::NAMES, "mask"),
            ),
        }
    }
    (classes, places)
}

pub(super) fn check(r: &mut Reader, parts: &Parts, places: &Places) {
    let used: BTreeSet<&str> = parts.tables.values().flat_map(|t| t.classes()).collect();
    let unread = &places.unread_tables;
    for (class, span) in &places.classes {
        if used.contains(class.as_str()) || unread.any_class || unread.classes.contains(class) {
            continue;
        }
        let hint = match did_you_mean(class, used.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!("class a column with it (`columns: {{ phone: {class} }}`), or remove it"),
        };
        r.error(
            Code::ClassNotUsed,
            *span,
            format!("`classes` masks class `{class}`, which no table's `columns` uses"),
            hint,
        );
    }
    let team = parts.directory.as_ref().map(|d| d.team.is_some());
    for (name, role) in &parts.roles {
        let Some(place) = places.roles.get(name) else { continue };
        for (class, scope) in &role.scoped_reads {
            let span = place.scoped_reads.get(class).copied().unwrap_or(place.name);
            if !parts.classes.contains_key(class) && !places.classes.contains_key(class) {
                r.error(
                    Code::ScopedReadWithoutMask,
                    span,
                    format!("role `{name}` reads class `{class}` only in scope `{scope}`, but `{class}` is not masked"),
                    format!("add `classes: {{ {class}: {{ mask: partial }} }}` (or email, null): outside its scope the role reads the masked value"),
                );
            }
            if *scope == Scope::Team && team == Some(false) {
                r.error(
                    Code::TeamColumnNeeded,
                    span,
                    format!(
                        "role `{name}` reads class `{class}` in scope `team`, but the directory has no `team` column"
                    ),
                    "add `team:` to `directory`, or use another scope",
                );
            }
        }
    }
    if parts.classes.is_empty() {
        return;
    }
    let table_schemas: BTreeSet<&str> = parts.tables.keys().map(|t| t.schema.as_str()).collect();
    let directory_schema = parts.directory.as_ref().map(|d| d.table.schema.as_str());
    let mut reported = BTreeSet::new();
    for (name, draft) in &parts.tables {
        if !draft.classes().any(|c| parts.classes.contains_key(c)) {
            continue;
        }
        let Some(place) = places.tables.get(name) else { continue };
        let view_schema = masking::view_schema(name);
        let clash = if table_schemas.contains(view_schema.as_str()) {
            Some("it holds tables the spec protects")
        } else if directory_schema == Some(view_schema.as_str()) {
            Some("it holds the directory")
        } else if view_schema == crate::sql::extension_api::SCHEMA || view_schema.starts_with("pg_") {
            Some("it is reserved")
        } else {
            None
        };
        if let Some(why) = clash {
            if reported.insert(view_schema.clone()) {
                r.error(
                    Code::ViewSchemaClash,
                    place.name,
                    format!(
                        "table `{}` has masked columns, whose view would live in schema `{view_schema}`, but {why}",
                        place.written
                    ),
                    format!(
                        "masked views live in `<schema>{}`: rename schema `{view_schema}` or the table's schema",
                        masking::VIEW_SCHEMA_SUFFIX
                    ),
                );
            }
            continue;
        }
        for helper in [view_schema, masking::visible_function(&name.name), masking::write_function(&name.name)] {
            if helper.len() > MAX_IDENTIFIER_BYTES {
                r.error(
                    Code::NameTooLong,
                    place.name,
                    format!(
                        "table `{}` has masked columns, and the name `{helper}` rowsec gives its view or helper is {} bytes; PostgreSQL truncates names to {MAX_IDENTIFIER_BYTES}",
                        place.written,
                        helper.len()
                    ),
                    "shorten the table's or schema's name",
                );
                break;
            }
        }
    }
}

//! Spec text -> [`Spec`], with every problem found and its place in the file.
//!
//! Three steps, so that a new part of the spec is a new module and a new rule a new check:
//! 1. each top-level key is read by its own module (`directory`, `identity`, `levels`,
//!    `tables`, `roles`), which reports what is wrong with the key's own text and notes where
//!    each thing was written (`Places`);
//! 2. `references` checks what the parts say about each other, over the parts as built;
//! 3. `against_schema` checks the tables, columns and `always` rules against `--schema`.
//!
//! One mistake, one problem: where a part could not be read (reported in step 1), the checks
//! of steps 2 and 3 conclude nothing from it (`Places` notes what was not read), so a misspelt
//! scope is reported once, not again as every role's update without select.

mod against_schema;
mod audit;
mod classes;
mod directory;
mod identity;
mod levels;
mod monitoring;
mod reader;
mod references;
mod requests;
mod roles;
mod tables;

use std::collections::BTreeMap;

use crate::diagnostic::{Code, Diagnostic, Span};
use crate::model::{Audit, Class, Directory, Identity, Level, Monitoring, QualifiedName, Requests, Role, Spec};
use crate::schema::Schema;
use crate::yaml::Node;
use reader::Reader;

pub(crate) const TOP_KEYS: &[&str] =
    &["version", "directory", "identity", "levels", "tables", "roles", "audit", "requests", "monitoring", "classes"];
pub(crate) const REQUIRED_TOP_KEYS: &[&str] = &["version", "directory", "identity", "tables", "roles"];

/// Loads a spec from its text. `schema`, when given, is checked against every table and column
/// the spec names.
pub fn load_spec(source: &str, schema: Option<&Schema>) -> Result<Spec, Vec<Diagnostic>> {
    let root = crate::yaml::parse(source).map_err(|d| vec![d])?;
    let mut r = Reader::default();
    let Some((parts, places)) = read(&mut r, &root) else { return Err(r.diagnostics) };
    references::check(&mut r, &parts, &places);
    audit::check(&mut r, &parts.audit, &places.audit, &parts.tables, &parts.roles);
    classes::check(&mut r, &parts, &places);
    against_schema::check(&mut r, &parts, &places, schema);
    match parts.finish() {
        Some(spec) if r.diagnostics.is_empty() => Ok(spec),
        _ => Err(r.diagnostics),
    }
}

/// The spec's parts as read, before the checks across them. `None` (or a draft without some
/// value) where a part could not be read; that problem is already reported.
struct Parts {
    version: Option<u32>,
    directory: Option<Directory>,
    identity: Option<Identity>,
    levels: BTreeMap<String, Level>,
    tables: BTreeMap<QualifiedName, tables::TableDraft>,
    roles: BTreeMap<String, Role>,
    audit: Audit,
    requests: Option<Requests>,
    monitoring: Monitoring,
    classes: BTreeMap<String, Class>,
}

impl Parts {
    fn finish(self) -> Option<Spec> {
        let tables =
            self.tables.into_iter().map(|(name, draft)| Some((name, draft.finish()?))).collect::<Option<_>>()?;
        Some(Spec {
            version: self.version?,
            directory: self.directory?,
            identity: self.identity?,
            levels: self.levels,
            tables,
            roles: self.roles,
            audit: self.audit,
            requests: self.requests,
            monitoring: self.monitoring,
            classes: self.classes,
        })
    }
}

/// Where each part was written: the checks over the built parts point their messages here.
#[derive(Default)]
struct Places {
    directory: Option<directory::DirectoryPlaces>,
    identity: Option<Span>,
    levels: levels::LevelPlaces,
    tables: BTreeMap<QualifiedName, tables::TablePlaces>,
    /// What of `tables` could not be read.
    unread_tables: tables::Unread,
    roles: BTreeMap<String, roles::RolePlaces>,
    audit: audit::AuditPlaces,
    classes: classes::ClassPlaces,
}

fn read(r: &mut Reader, root: &Node) -> Option<(Parts, Places)> {
    let start = Span { end: root.span.start, ..root.span };
    if root.is_null() {
        // `~`, `null` or a lone anchor: a document with nothing in it, as an empty file is. Said
        // here because an empty part elsewhere is no problem (found by fuzzing: the spec was
        // rejected without a diagnostic).
        for key in REQUIRED_TOP_KEYS {
            r.error(
                Code::MissingKey,
                start,
                format!("the spec is missing the required key `{key}`"),
                format!("add `{key}:` under it"),
            );
        }
        return None;
    }
    let top = r.fields(root, "the spec", TOP_KEYS, REQUIRED_TOP_KEYS, start)?;
    let mut places = Places::default();

    let version = top.get("version").and_then(|v| {
        if v.as_str() == Some("1") {
            Some(1)
        } else {
            r.error(
                Code::UnsupportedVersion,
                v.span,
                format!("unsupported spec version `{}`", v.as_str().unwrap_or("?")),
                "this rowsec understands `version: 1`",
            );
            None
        }
    });
    let directory = top.get("directory").zip(top.key_span("directory")).and_then(|(node, key_span)| {
        let (directory, place) = directory::read(r, node, key_span)?;
        places.directory = Some(place);
        Some(directory)
    });
    let identity = top.get("identity").and_then(|node| {
        places.identity = Some(node.span);
        identity::read(r, node)
    });
    let levels = top.get("levels").map_or_else(BTreeMap::new, |node| {
        let (levels, place) = levels::read(r, node);
        places.levels = place;
        levels
    });
    let tables = top.get("tables").map_or_else(BTreeMap::new, |node| {
        let (tables, place, unread) = tables::read(r, node);
        places.tables = place;
        places.unread_tables = unread;
        tables
    });
    let roles = top.get("roles").map_or_else(BTreeMap::new, |node| {
        let (roles, place) = roles::read(r, node);
        places.roles = place;
        roles
    });
    let audit = top.get("audit").zip(top.key_span("audit")).map_or_else(Audit::default, |(node, key)| {
        let (audit, place) = audit::read(r, node, key);
        places.audit = place;
        audit
    });
    let requests = top.get("requests").zip(top.key_span("requests")).and_then(|(n, key)| requests::read(r, n, key));
    let monitoring = top
        .get("monitoring")
        .zip(top.key_span("monitoring"))
        .map_or_else(Monitoring::default, |(n, key)| monitoring::read(r, n, key));
    let classes = top.get("classes").map_or_else(BTreeMap::new, |node| {
        let (classes, place) = classes::read(r, node);
        places.classes = place;
        classes
    });
    Some((Parts { version, directory, identity, levels, tables, roles, audit, requests, monitoring, classes }, places))
}

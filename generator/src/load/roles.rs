//! `roles`: each role's level, per-table overrides and column classes. Whether the level,
//! tables and classes a role names exist is checked afterwards, in `references.rs`.

use std::collections::BTreeMap;

use super::levels;
use super::reader::Reader;
use crate::diagnostic::{suggestion, Code, Span};
use crate::model::{Access, Command, Role, Scope, TableOverride, TableSelector};
use crate::yaml::{Node, NodeKind};

const KEYS: &[&str] = &["level", "tables", "fields", "adopt", "limits"];
/// The commands a limit may be given for (SPEC item 12).
const LIMITED: [Command; 3] = [Command::Select, Command::Update, Command::Delete];

/// Where a role's parts were written.
pub(super) struct RolePlaces {
    /// The role's name (the key under `roles`).
    pub name: Span,
    pub level: Option<Span>,
    /// selector -> where the table was named, and the name as written
    pub tables: BTreeMap<TableSelector, (Span, String)>,
    /// class -> where it was named (also when its access is not valid)
    pub fields: BTreeMap<String, Span>,
    /// selector -> command -> where the override's scope was written
    pub scopes: BTreeMap<TableSelector, BTreeMap<Command, Span>>,
    /// command -> where its limit was written
    pub limits: BTreeMap<Command, Span>,
    /// class -> where its scoped read (`{ read: own }`) was written
    pub scoped_reads: BTreeMap<String, Span>,
    /// The level or an override could not be read (already reported): the role's scopes are
    /// not what the author meant, so nothing is concluded from them.
    pub incomplete: bool,
}

pub(super) fn read(r: &mut Reader, node: &Node) -> (BTreeMap<String, Role>, BTreeMap<String, RolePlaces>) {
    let mut roles = BTreeMap::new();
    let mut places = BTreeMap::new();
    let Some(e) = r.entries(node, "`roles`") else { return (roles, places) };
    for (name, k, v) in e.items {
        if !check_role_name(r, name, k.span) {
            continue;
        }
        let what = format!("role `{name}`");
        let mut place = RolePlaces {
            name: k.span,
            level: None,
            tables: BTreeMap::new(),
            fields: BTreeMap::new(),
            scopes: BTreeMap::new(),
            limits: BTreeMap::new(),
            scoped_reads: BTreeMap::new(),
            incomplete: false,
        };
        // Problems from here to the end of `tables` (a misspelt `level` key included) make
        // the role's scopes uncertain.
        let before = r.diagnostics.len();
        let Some(f) = r.fields(v, &what, KEYS, &[], k.span) else {
            // `role:` with nothing under it: a role with no privileges.
            if v.is_null() {
                let role = Role {
                    name: name.to_owned(),
                    level: None,
                    tables: BTreeMap::new(),
                    fields: BTreeMap::new(),
                    adopt: false,
                    limits: BTreeMap::new(),
                    scoped_reads: BTreeMap::new(),
                };
                roles.insert(name.to_owned(), role);
                places.insert(name.to_owned(), place);
            }
            continue;
        };
        let level = f.get("level").and_then(|n| {
            place.level = Some(n.span);
            r.string(n, "`level`")
        });
        let adopt = f.get("adopt").and_then(|n| r.boolean(n, "`adopt`")).unwrap_or(false);
        let mut overrides = BTreeMap::new();
        if let Some(t) = f.get("tables").and_then(|n| r.entries(n, &format!("`tables` of {what}"))) {
            for (selector, sk, sv) in t.items {
                let written = selector.to_owned();
                let selector = if selector == "*" {
                    TableSelector::Every
                } else {
                    let Some(q) = r.qualified_name(sk, "a table name") else { continue };
                    TableSelector::Named(q)
                };
                let o = match &sv.kind {
                    NodeKind::Scalar { text, .. } if text == "none" => TableOverride::None,
                    NodeKind::Scalar { text, .. } => {
                        r.error(
                            Code::BadTableOverride,
                            sv.span,
                            format!("`{text}` is not a table override"),
                            "write `none`, or a mapping of command to scope such as `{ select: own }`",
                        );
                        continue;
                    }
                    _ => {
                        let what = format!("{what} on `{}`", sk.as_str().unwrap_or(""));
                        let read = levels::scopes(r, sv, &what);
                        place.scopes.insert(selector.clone(), read.places);
                        TableOverride::Commands(read.scopes)
                    }
                };
                place.tables.insert(selector.clone(), (sk.span, written));
                overrides.insert(selector, o);
            }
        }
        place.incomplete = r.diagnostics.len() != before;
        let mut fields = BTreeMap::new();
        let mut scoped_reads = BTreeMap::new();
        if let Some(fl) = f.get("fields").and_then(|n| r.entries(n, &format!("`fields` of {what}"))) {
            for (class, ck, cv) in fl.items {
                place.fields.insert(class.to_owned(), ck.span);
                if let NodeKind::Map(_) = &cv.kind {
                    if let Some(scope) = read_scoped(r, cv, ck.span, class, &what) {
                        place.scoped_reads.insert(class.to_owned(), cv.span);
                        scoped_reads.insert(class.to_owned(), scope);
                    }
                    continue;
                }
                let Some(text) = r.string(cv, &format!("the access to `{class}`")) else { continue };
                match Access::parse(&text) {
                    Some(a) => {
                        fields.insert(class.to_owned(), a);
                    }
                    None => r.error(
                        Code::UnknownAccess,
                        cv.span,
                        format!("unknown access `{text}` for class `{class}`"),
                        suggestion(&text, &Access::NAMES, "access"),
                    ),
                }
            }
        }
        let limits = f.get("limits").map_or_else(BTreeMap::new, |n| read_limits(r, n, &what, &mut place.limits));
        let role = Role { name: name.to_owned(), level, tables: overrides, fields, adopt, limits, scoped_reads };
        roles.insert(name.to_owned(), role);
        places.insert(name.to_owned(), place);
    }
    (roles, places)
}

/// `{ read: own }` under `fields`: the class's clear value on rows in that scope, through the
/// masked views only (masked elsewhere). Read-only: a write right must be `write`.
fn read_scoped(r: &mut Reader, node: &Node, key: Span, class: &str, what: &str) -> Option<Scope> {
    let f = r.fields(node, &format!("the access of {what} to `{class}`"), &["read"], &["read"], key)?;
    let n = f.get("read")?;
    let text = r.string(n, &format!("the scope of `{class}`"))?;
    match Scope::parse(&text) {
        Some(Scope::None) => {
            r.error(
                Code::UnknownScope,
                n.span,
                format!("`{{ read: none }}` for class `{class}` of {what} gives nothing"),
                format!("write `{class}: none`, or a scope (`own`, `team`, `subtree`, `all`) whose rows show `{class}` in clear"),
            );
            None
        }
        Some(scope) => Some(scope),
        None => {
            r.error(
                Code::UnknownScope,
                n.span,
                format!("unknown scope `{text}` for class `{class}` of {what}"),
                suggestion(&text, &Scope::NAMES[1..], "scope"),
            );
            None
        }
    }
}

/// A role name PostgreSQL accepts, that is not reserved, and whose policy names fit.
fn check_role_name(r: &mut Reader, name: &str, span: Span) -> bool {
    if !r.check_identifier(name, span, "the role name") {
        return false;
    }
    let lower = name.to_lowercase();
    let reserved = lower == "public"
        || lower == "none"
        || lower.starts_with("pg_")
        || lower == crate::sql::extension_api::EXTENSION
        || matches!(lower.as_str(), "current_user" | "current_role" | "session_user" | "user");
    if reserved {
        r.error(
            Code::ReservedRoleName,
            span,
            format!("role name `{name}` is reserved by PostgreSQL or by rowsec"),
            "choose another name (not `public`, `none`, `pg_*`, `current_user`, `session_user` or `rowsec`)",
        );
        return false;
    }
    true
}

/// `limits: { select: 500, update: 50, delete: 10 }`: rows of one table per statement.
fn read_limits(
    r: &mut Reader,
    node: &Node,
    what: &str,
    places: &mut BTreeMap<Command, Span>,
) -> BTreeMap<Command, u64> {
    let mut limits = BTreeMap::new();
    let Some(e) = r.entries(node, &format!("`limits` of {what}")) else { return limits };
    let names: Vec<&str> = LIMITED.iter().map(|c| c.as_str()).collect();
    for (command, ck, cv) in e.items {
        let Some(c) = Command::parse(command).filter(|c| LIMITED.contains(c)) else {
            let hint = if command == "insert" {
                "limits count rows read or changed: give them for `select`, `update` or `delete`".to_owned()
            } else {
                suggestion(command, &names, "command")
            };
            r.error(Code::UnknownCommand, ck.span, format!("no limit exists for `{command}` in {what}"), hint);
            continue;
        };
        let rows = match &cv.kind {
            NodeKind::Scalar { text, quoted: false } => text.parse::<u64>().ok(),
            _ => None,
        };
        let Some(rows) = rows else {
            let found = match &cv.kind {
                NodeKind::Scalar { text, .. } => format!("`{text}`"),
                _ => cv.kind_name().to_owned(),
            };
            r.error(
                Code::NotARowCount,
                cv.span,
                format!("the `{command}` limit of {what} must be a whole number of rows, zero or more, found {found}"),
                format!("write e.g. `{command}: 500`, or leave `{command}` out for no limit"),
            );
            continue;
        };
        places.insert(c, ck.span);
        limits.insert(c, rows);
    }
    limits
}

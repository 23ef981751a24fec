//! `levels`: named bundles of one scope per command. Roles' per-table overrides are read with
//! the same [`scopes`].

use std::collections::BTreeMap;

use super::reader::Reader;
use crate::diagnostic::{suggestion, Code, Span};
use crate::model::{Command, Level, Scope};
use crate::yaml::Node;

/// Where each level's scopes were written: level -> command -> the scope's text.
pub(super) type LevelPlaces = BTreeMap<String, BTreeMap<Command, Span>>;

pub(super) fn read(r: &mut Reader, node: &Node) -> (BTreeMap<String, Level>, LevelPlaces) {
    let mut levels = BTreeMap::new();
    let mut places = BTreeMap::new();
    let Some(e) = r.entries(node, "`levels`") else { return (levels, places) };
    for (name, _, v) in e.items {
        let (scopes, spans) = scopes(r, v, &format!("level `{name}`"));
        levels.insert(name.to_owned(), Level { scopes });
        places.insert(name.to_owned(), spans);
    }
    (levels, places)
}

/// A command -> scope mapping (a level body or a role's table override), and where each scope
/// was written.
pub(super) fn scopes(r: &mut Reader, node: &Node, what: &str) -> (BTreeMap<Command, Scope>, BTreeMap<Command, Span>) {
    let mut out = BTreeMap::new();
    let mut places = BTreeMap::new();
    let Some(e) = r.entries(node, what) else { return (out, places) };
    for (key, k, v) in &e.items {
        let Some(command) = Command::parse(key) else {
            r.error(
                Code::UnknownCommand,
                k.span,
                format!("unknown command `{key}` in {what}"),
                suggestion(key, &Command::ALL.map(Command::as_str), "command"),
            );
            continue;
        };
        let Some(text) = r.string(v, &format!("the scope for `{key}`")) else { continue };
        let Some(scope) = Scope::parse(&text) else {
            r.error(
                Code::UnknownScope,
                v.span,
                format!("unknown scope `{text}` for `{key}` in {what}"),
                suggestion(&text, &Scope::NAMES, "scope"),
            );
            continue;
        };
        out.insert(command, scope);
        places.insert(command, v.span);
    }
    (out, places)
}

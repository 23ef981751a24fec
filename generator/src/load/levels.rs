//! `levels`: named bundles of one scope per command. Roles' per-table overrides are read with
//! the same [`scopes`].

use std::collections::{BTreeMap, BTreeSet};

use super::reader::Reader;
use crate::diagnostic::{suggestion, Code, Span};
use crate::model::{Command, Level, Scope};
use crate::yaml::Node;

/// Where each level's scopes were written, and which levels could not be read whole: what a
/// role gets from those is not what the author meant, so nothing is concluded from it.
#[derive(Default)]
pub(super) struct LevelPlaces {
    /// level -> command -> the scope's text
    pub scopes: BTreeMap<String, BTreeMap<Command, Span>>,
    /// Levels with a problem in their scopes (already reported).
    pub incomplete: BTreeSet<String>,
    /// `levels` itself is not a mapping (already reported): every level name is unknown.
    pub unreadable: bool,
}

pub(super) fn read(r: &mut Reader, node: &Node) -> (BTreeMap<String, Level>, LevelPlaces) {
    let mut levels = BTreeMap::new();
    let mut places = LevelPlaces::default();
    let Some(e) = r.entries(node, "`levels`") else {
        places.unreadable = !node.is_null();
        return (levels, places);
    };
    for (name, _, v) in e.items {
        let read = scopes(r, v, &format!("level `{name}`"));
        if !read.complete {
            places.incomplete.insert(name.to_owned());
        }
        levels.insert(name.to_owned(), Level { scopes: read.scopes });
        places.scopes.insert(name.to_owned(), read.places);
    }
    (levels, places)
}

/// A command -> scope mapping as read.
pub(super) struct Scopes {
    pub scopes: BTreeMap<Command, Scope>,
    /// Where each scope was written.
    pub places: BTreeMap<Command, Span>,
    /// False when an entry (or the whole mapping) could not be read; that is reported.
    pub complete: bool,
}

/// A command -> scope mapping: a level body or a role's table override.
pub(super) fn scopes(r: &mut Reader, node: &Node, what: &str) -> Scopes {
    let before = r.diagnostics.len();
    let mut out = Scopes { scopes: BTreeMap::new(), places: BTreeMap::new(), complete: true };
    if let Some(e) = r.entries(node, what) {
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
            out.scopes.insert(command, scope);
            out.places.insert(command, v.span);
        }
    }
    out.complete = r.diagnostics.len() == before;
    out
}

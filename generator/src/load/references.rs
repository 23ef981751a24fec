//! Checks across the parts of the spec, run over the parts once they are built: what a role
//! names exists, what a scope or the identity needs from the directory is there, and no role
//! may change rows it cannot see.

use std::collections::BTreeSet;

use super::reader::Reader;
use super::{Parts, Places};
use crate::diagnostic::{suggestion, Code};
use crate::model::{Command, Identity, QualifiedName, Scope, TableSelector};

pub(super) fn check(r: &mut Reader, parts: &Parts, places: &Places) {
    directory_has_what_identity_and_scopes_need(r, parts, places);
    directory_is_not_protected(r, parts, places);
    roles_name_what_exists(r, parts, places);
    update_and_delete_act_on_visible_rows(r, parts, places);
}

fn directory_has_what_identity_and_scopes_need(r: &mut Reader, parts: &Parts, places: &Places) {
    let Some(directory) = &parts.directory else { return };
    if let (Some(Identity::Login), Some(span), None) = (&parts.identity, places.identity, &directory.login) {
        r.error(
            Code::LoginColumnNeeded,
            span,
            "`identity: login` needs `directory.login`",
            "add `login: <column>` to `directory`, the column holding each person's PostgreSQL role name",
        );
    }
    if directory.team.is_none() {
        for (name, level) in &parts.levels {
            for (command, _) in level.scopes.iter().filter(|(_, s)| **s == Scope::Team) {
                r.error(
                    Code::TeamColumnNeeded,
                    places.levels[name][command],
                    "scope `team` needs `directory.team`",
                    "add `team: <column>` to `directory`, or use another scope",
                );
            }
        }
    }
}

/// The extension reads the directory with its own rights; policies on it would hide people
/// from the extension's view of who reports to whom.
fn directory_is_not_protected(r: &mut Reader, parts: &Parts, places: &Places) {
    let Some(directory) = &parts.directory else { return };
    if let Some(place) = places.tables.get(&directory.table) {
        r.error(
            Code::DirectoryTableProtected,
            place.name,
            format!("table `{}` is the directory table", place.written),
            "the directory is read by the rowsec extension with its own rights; protect it with ordinary GRANTs",
        );
    }
}

fn roles_name_what_exists(r: &mut Reader, parts: &Parts, places: &Places) {
    let level_names: Vec<&str> = parts.levels.keys().map(String::as_str).collect();
    let table_names: Vec<String> = parts.tables.keys().map(|t| t.dotted().to_string()).collect();
    let table_names: Vec<&str> = table_names.iter().map(String::as_str).collect();
    let classes: BTreeSet<&str> = parts.tables.values().flat_map(|t| t.classes()).collect();
    let classes: Vec<&str> = classes.into_iter().collect();
    for (name, role) in &parts.roles {
        let place = &places.roles[name];
        if let (Some(level), Some(span)) = (&role.level, place.level) {
            if !parts.levels.contains_key(level) {
                r.error(
                    Code::UnknownLevel,
                    span,
                    format!("role `{name}` uses level `{level}`, which is not defined"),
                    suggestion(level, &level_names, "level"),
                );
            }
        }
        for selector in role.tables.keys() {
            let TableSelector::Named(table) = selector else { continue };
            if !parts.tables.contains_key(table) {
                let (span, written) = &place.tables[selector];
                r.error(
                    Code::UnknownTable,
                    *span,
                    format!("role `{name}` names table `{written}`, which is not in `tables`"),
                    suggestion(written, &table_names, "table"),
                );
            }
        }
        for (class, span) in &place.fields {
            if !classes.contains(&class.as_str()) {
                r.error(
                    Code::UnknownClass,
                    *span,
                    format!("role `{name}` grants class `{class}`, which no table uses"),
                    suggestion(class, &classes, "class"),
                );
            }
        }
    }
}

/// SPEC: update and delete act on visible rows only, so a role that may change a table it
/// cannot see is a spec mistake, not something to compile silently.
fn update_and_delete_act_on_visible_rows(r: &mut Reader, parts: &Parts, places: &Places) {
    const COMMANDS: [Command; 3] = [Command::Select, Command::Update, Command::Delete];
    for (name, role) in &parts.roles {
        let scopes = |table| COMMANDS.map(|c| crate::resolve::scope(&parts.levels, role, table, c));
        // Every table the role does not name resolves alike (level and "*"): resolve it once.
        let named: BTreeSet<&QualifiedName> =
            role.tables.keys().filter_map(|s| if let TableSelector::Named(t) = s { Some(t) } else { None }).collect();
        let mut unnamed = None;
        for table in parts.tables.keys() {
            let [select, update, delete] =
                if named.contains(table) { scopes(table) } else { *unnamed.get_or_insert_with(|| scopes(table)) };
            if select != Scope::None {
                continue;
            }
            for (c, scope) in [(Command::Update, update), (Command::Delete, delete)] {
                if scope != Scope::None {
                    r.error(
                        Code::ChangeWithoutSelect,
                        places.roles[name].name,
                        format!("role `{name}` may {} rows of `{}` but may not select any", c.as_str(), table.dotted()),
                        format!("give it a select scope on that table, or set `{}: none`", c.as_str()),
                    );
                }
            }
        }
    }
}

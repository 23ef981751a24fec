//! Checks across the parts of the spec, run over the parts once they are built: what a role
//! names exists, what a scope or the identity needs from the directory is there, and no role
//! may change rows it cannot see.

use std::collections::{BTreeMap, BTreeSet};

use super::reader::Reader;
use super::{Parts, Places};
use crate::diagnostic::{suggestion, Code, Span};
use crate::model::{Command, Identity, QualifiedName, Scope, TableOverride, TableSelector};

pub(super) fn check(r: &mut Reader, parts: &Parts, places: &Places) {
    directory_has_what_identity_and_scopes_need(r, parts, places);
    directory_is_not_protected(r, parts, places);
    table_references_name_spec_tables(r, parts, places);
    let uncertain = roles_name_what_exists(r, parts, places);
    update_and_delete_act_on_visible_rows(r, parts, places, &uncertain);
    limits_are_for_commands_the_role_runs(r, parts, places, &uncertain);
}

/// A limit on a command the role may not run on any table limits nothing: most likely the
/// wrong role or command.
fn limits_are_for_commands_the_role_runs(r: &mut Reader, parts: &Parts, places: &Places, uncertain: &BTreeSet<&str>) {
    for (name, role) in parts.roles.iter().filter(|(name, _)| !uncertain.contains(name.as_str())) {
        for command in role.limits.keys() {
            let runs =
                parts.tables.keys().any(|t| crate::resolve::scope(&parts.levels, role, t, *command) != Scope::None);
            let Some(span) = places.roles.get(name).and_then(|p| p.limits.get(command)) else { continue };
            if !runs {
                r.error(
                    Code::LimitWithoutPrivilege,
                    *span,
                    format!(
                        "role `{name}` has a `{}` limit but may not {} any table",
                        command.as_str(),
                        command.as_str()
                    ),
                    format!("remove the `{}` limit, or give the role a `{}` scope", command.as_str(), command.as_str()),
                );
            }
        }
    }
}

/// `references` points at a table under `tables`: its key is the column a reference names, and
/// its policies are what decides which rows the person can see.
fn table_references_name_spec_tables(r: &mut Reader, parts: &Parts, places: &Places) {
    let table_names: Vec<String> = parts.tables.keys().map(|t| t.dotted().to_string()).collect();
    let table_names: Vec<&str> = table_names.iter().map(String::as_str).collect();
    for (name, table) in &parts.tables {
        let Some(place) = places.tables.get(name) else { continue };
        for (column, target) in &table.references {
            let (_, span, written) = &place.references[column];
            if parts.tables.contains_key(target)
                || places.unread_tables.any_table
                || places.unread_tables.tables.contains(target)
            {
                continue;
            }
            r.error(
                Code::UnknownTable,
                *span,
                format!(
                    "`references` of table `{}` names table `{written}`, which is not under `tables`",
                    place.written
                ),
                suggestion(written, &table_names, "table"),
            );
        }
    }
}

fn directory_has_what_identity_and_scopes_need(r: &mut Reader, parts: &Parts, places: &Places) {
    let (Some(directory), Some(place)) = (&parts.directory, &places.directory) else { return };
    // A column key given but not valid is reported where it is written; that it is "missing"
    // would be a consequence.
    let written = |key: &str| place.columns.contains_key(key);
    if let (Some(Identity::Login), Some(span), None) = (&parts.identity, places.identity, &directory.login) {
        if !written("login") {
            r.error(
                Code::LoginColumnNeeded,
                span,
                "`identity: login` needs `directory.login`",
                "add `login: <column>` to `directory`, the column holding each person's PostgreSQL role name",
            );
        }
    }
    if directory.team.is_none() && !written("team") {
        team_scope_without_team_column(r, parts, places);
    }
}

/// One problem for every use of scope `team` (the mistake is one: `directory.team` is not
/// given), at the first use, naming the others.
fn team_scope_without_team_column(r: &mut Reader, parts: &Parts, places: &Places) {
    // (where, who uses it, the commands)
    let mut uses: Vec<(Span, String, Vec<&str>)> = Vec::new();
    let mut add = |spans: &BTreeMap<Command, Span>, scopes: &BTreeMap<Command, Scope>, who: String| {
        let team: Vec<(Command, Span)> =
            scopes.iter().filter(|(_, s)| **s == Scope::Team).filter_map(|(c, _)| Some((*c, *spans.get(c)?))).collect();
        if let Some(first) = team.iter().map(|(_, s)| *s).min_by_key(|s| (s.line, s.col)) {
            uses.push((first, who, team.iter().map(|(c, _)| c.as_str()).collect()));
        }
    };
    for (name, level) in &parts.levels {
        if let Some(spans) = places.levels.scopes.get(name) {
            add(spans, &level.scopes, format!("level `{name}`"));
        }
    }
    for (name, role) in &parts.roles {
        for (selector, over) in &role.tables {
            let (TableOverride::Commands(scopes), Some(spans)) =
                (over, places.roles.get(name).and_then(|p| p.scopes.get(selector)))
            else {
                continue;
            };
            let on = places.roles[name].tables.get(selector).map_or("", |(_, w)| w.as_str());
            add(spans, scopes, format!("role `{name}` on `{on}`"));
        }
    }
    uses.sort_by_key(|(span, ..)| (span.line, span.col));
    let Some((first, ..)) = uses.first() else { return };
    let mut message = "scope `team` needs `directory.team`, which is not given".to_owned();
    if uses.len() > 1 || uses[0].2.len() > 1 {
        let users: Vec<String> =
            uses.iter().map(|(_, who, commands)| format!("{who} ({})", commands.join(", "))).collect();
        message.push_str(&format!("; it is used by {}", users.join(", ")));
    }
    r.error(Code::TeamColumnNeeded, *first, message, "add `team: <column>` to `directory`, or use another scope");
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

/// Reports the levels, tables and classes roles name that do not exist, unless the part that
/// would define them could not be read. Returns the roles whose scopes are uncertain: they
/// name something missing or unreadable, or could not be read whole.
fn roles_name_what_exists<'p>(r: &mut Reader, parts: &'p Parts, places: &Places) -> BTreeSet<&'p str> {
    let mut uncertain = BTreeSet::new();
    let level_names: Vec<&str> = parts.levels.keys().map(String::as_str).collect();
    let table_names: Vec<String> = parts.tables.keys().map(|t| t.dotted().to_string()).collect();
    let table_names: Vec<&str> = table_names.iter().map(String::as_str).collect();
    let classes: BTreeSet<&str> = parts.tables.values().flat_map(|t| t.classes()).collect();
    let classes: Vec<&str> = classes.into_iter().collect();
    let unread = &places.unread_tables;
    for (name, role) in &parts.roles {
        let place = &places.roles[name];
        if place.incomplete {
            uncertain.insert(name.as_str());
        }
        if let (Some(level), Some(span)) = (&role.level, place.level) {
            if !parts.levels.contains_key(level) {
                uncertain.insert(name.as_str());
                if !places.levels.unreadable {
                    r.error(
                        Code::UnknownLevel,
                        span,
                        format!("role `{name}` uses level `{level}`, which is not defined"),
                        suggestion(level, &level_names, "level"),
                    );
                }
            } else if places.levels.incomplete.contains(level) {
                uncertain.insert(name.as_str());
            }
        }
        for selector in role.tables.keys() {
            let TableSelector::Named(table) = selector else { continue };
            if parts.tables.contains_key(table) {
                continue;
            }
            uncertain.insert(name.as_str());
            if unread.any_table || unread.tables.contains(table) {
                continue;
            }
            let (span, written) = &place.tables[selector];
            r.error(
                Code::UnknownTable,
                *span,
                format!("role `{name}` names table `{written}`, which is not in `tables`"),
                suggestion(written, &table_names, "table"),
            );
        }
        for (class, span) in &place.fields {
            if classes.contains(&class.as_str()) || unread.any_class || unread.classes.contains(class) {
                continue;
            }
            r.error(
                Code::UnknownClass,
                *span,
                format!("role `{name}` grants class `{class}`, which no table uses"),
                suggestion(class, &classes, "class"),
            );
        }
    }
    uncertain
}

/// SPEC: update and delete act on visible rows only, so a role that may change a table it
/// cannot see is a spec mistake, not something to compile silently. One problem per role,
/// naming the tables; none for a role whose scopes are uncertain (see above).
fn update_and_delete_act_on_visible_rows(r: &mut Reader, parts: &Parts, places: &Places, uncertain: &BTreeSet<&str>) {
    const COMMANDS: [Command; 3] = [Command::Select, Command::Update, Command::Delete];
    for (name, role) in parts.roles.iter().filter(|(name, _)| !uncertain.contains(name.as_str())) {
        let scopes = |table| COMMANDS.map(|c| crate::resolve::scope(&parts.levels, role, table, c));
        // Every table the role does not name resolves alike (level and "*"): resolve it once.
        let named: BTreeSet<&QualifiedName> =
            role.tables.keys().filter_map(|s| if let TableSelector::Named(t) = s { Some(t) } else { None }).collect();
        let mut unnamed = None;
        // table -> the commands it may use without select
        let mut blind: Vec<(&QualifiedName, Vec<&str>)> = Vec::new();
        for table in parts.tables.keys() {
            let [select, update, delete] =
                if named.contains(table) { scopes(table) } else { *unnamed.get_or_insert_with(|| scopes(table)) };
            let commands: Vec<&str> = [(Command::Update, update), (Command::Delete, delete)]
                .into_iter()
                .filter(|(_, scope)| select == Scope::None && *scope != Scope::None)
                .map(|(c, _)| c.as_str())
                .collect();
            if !commands.is_empty() {
                blind.push((table, commands));
            }
        }
        if blind.is_empty() {
            continue;
        }
        let same = blind.iter().all(|(_, c)| *c == blind[0].1);
        let (message, hint) = if same {
            let commands = &blind[0].1;
            let tables: Vec<String> = blind.iter().map(|(t, _)| format!("`{}`", t.dotted())).collect();
            let those = if blind.len() == 1 { "that table" } else { "those tables" };
            let nones: Vec<String> = commands.iter().map(|c| format!("`{c}: none`")).collect();
            (
                format!(
                    "role `{name}` may {} rows of {} but may not select any",
                    commands.join(" and "),
                    list(&tables)
                ),
                format!("give it a select scope on {those}, or set {} there", nones.join(" and ")),
            )
        } else {
            let tables: Vec<String> =
                blind.iter().map(|(t, c)| format!("`{}` ({})", t.dotted(), c.join(", "))).collect();
            (
                format!("role `{name}` may change rows it may not select, on {}", list(&tables)),
                "give it a select scope on those tables, or set the commands named to `none` there".to_owned(),
            )
        };
        r.error(Code::ChangeWithoutSelect, places.roles[name].name, message, hint);
    }
}

/// `a`, `b` and `c`; past five items, `a`, ..., `e` and 3 more.
fn list(items: &[String]) -> String {
    const SHOWN: usize = 5;
    match items {
        [] => String::new(),
        [one] => one.clone(),
        _ if items.len() > SHOWN => format!("{} and {} more", items[..SHOWN].join(", "), items.len() - SHOWN),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

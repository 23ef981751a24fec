//! SPEC.md's precedence rules: from a role's `level`, `"*"` and named-table overrides and its
//! `fields`, what each role may do on each table. SQL generation and `matrix` both read this.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::*;

/// The scope a role has for one command on one table: a named table beats `"*"`, which beats
/// the level; a command an override does not name keeps what the next rule down gives; an
/// override of `none` denies the whole table.
pub fn scope(levels: &BTreeMap<String, Level>, role: &Role, table: &QualifiedName, command: Command) -> Scope {
    resolve_scope(levels, role, table, command).0
}

/// Which rule of the spec decided a scope (shown in comments of the generated SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `roles.R.tables.<table>`
    NamedTable,
    /// `roles.R.tables."*"`
    EveryTable,
    /// `roles.R.level`
    Level,
    /// Nothing grants the command.
    Nothing,
}

/// [`scope`], with the rule that decided it.
pub fn resolve_scope(
    levels: &BTreeMap<String, Level>,
    role: &Role,
    table: &QualifiedName,
    command: Command,
) -> (Scope, Source) {
    let named = role.tables.iter().find(|(k, _)| matches!(k, TableSelector::Named(q) if q == table)).map(|(_, v)| v);
    for (over, source) in [(named, Source::NamedTable), (role.tables.get(&TableSelector::Every), Source::EveryTable)] {
        match over {
            Some(TableOverride::None) => return (Scope::None, source),
            Some(TableOverride::Commands(map)) => {
                if let Some(scope) = map.get(&command) {
                    return (*scope, source);
                }
            }
            None => {}
        }
    }
    match role.level.as_ref().and_then(|l| levels.get(l)).and_then(|l| l.scopes.get(&command)) {
        Some(scope) => (*scope, Source::Level),
        None => (Scope::None, Source::Nothing),
    }
}

/// A role's access to a column class; a class the role does not name is `none`.
pub fn class_access(role: &Role, class: &str) -> Access {
    role.fields.get(class).copied().unwrap_or(Access::None)
}

/// The columns a column-level privilege covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "except", rename_all = "snake_case")]
pub enum Columns {
    /// Every column: a table-level privilege.
    All,
    /// Every column but these (classed columns the role lacks the right for): column grants.
    AllExcept(Vec<String>),
}

/// What one role may do with one command on one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant<'a> {
    pub role: &'a str,
    pub table: &'a QualifiedName,
    pub command: Command,
    pub scope: Scope,
    pub source: Source,
    pub columns: Columns,
}

/// Every grant the spec makes, ordered by table, role, command. Commands with scope `none`
/// are left out: they get no privilege and no policy.
pub fn grants(spec: &Spec) -> Vec<Grant<'_>> {
    let mut out = Vec::new();
    for table in spec.tables.values() {
        for role in spec.roles.values() {
            for command in Command::ALL {
                let (scope, source) = resolve_scope(&spec.levels, role, &table.name, command);
                if scope == Scope::None {
                    continue;
                }
                let allowed = |access: Access| match command {
                    Command::Select => access.can_read(),
                    Command::Insert | Command::Update => access.can_write(),
                    Command::Delete => true,
                };
                let hidden: Vec<String> = table
                    .columns
                    .iter()
                    .filter(|(_, class)| !allowed(class_access(role, class)))
                    .map(|(column, _)| column.clone())
                    .collect();
                let columns = if hidden.is_empty() { Columns::All } else { Columns::AllExcept(hidden) };
                out.push(Grant { role: &role.name, table: &table.name, command, scope, source, columns });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(pairs: &[(Command, Scope)]) -> Level {
        Level { scopes: pairs.iter().copied().collect() }
    }

    fn role(level: Option<&str>, tables: Vec<(TableSelector, TableOverride)>) -> Role {
        Role {
            name: "r".into(),
            level: level.map(Into::into),
            tables: tables.into_iter().collect(),
            fields: BTreeMap::new(),
            adopt: false,
            limits: BTreeMap::new(),
            scoped_reads: BTreeMap::new(),
        }
    }

    fn t(name: &str) -> QualifiedName {
        QualifiedName::new("crm", name)
    }

    fn levels() -> BTreeMap<String, Level> {
        [(
            "individual".to_string(),
            level(&[
                (Command::Select, Scope::Team),
                (Command::Insert, Scope::Own),
                (Command::Update, Scope::Own),
                (Command::Delete, Scope::Own),
            ]),
        )]
        .into()
    }

    #[test]
    fn a_role_without_level_or_override_gets_nothing() {
        assert_eq!(scope(&levels(), &role(None, vec![]), &t("a"), Command::Select), Scope::None);
    }

    #[test]
    fn the_level_applies_to_every_table() {
        let r = role(Some("individual"), vec![]);
        assert_eq!(scope(&levels(), &r, &t("a"), Command::Select), Scope::Team);
        assert_eq!(scope(&levels(), &r, &t("b"), Command::Delete), Scope::Own);
    }

    #[test]
    fn star_beats_the_level_only_for_the_commands_it_names() {
        let r = role(
            Some("individual"),
            vec![(TableSelector::Every, TableOverride::Commands([(Command::Select, Scope::All)].into()))],
        );
        assert_eq!(scope(&levels(), &r, &t("a"), Command::Select), Scope::All);
        assert_eq!(scope(&levels(), &r, &t("a"), Command::Update), Scope::Own);
    }

    #[test]
    fn a_named_table_beats_star_and_level() {
        let r = role(
            Some("individual"),
            vec![
                (
                    TableSelector::Every,
                    TableOverride::Commands([(Command::Select, Scope::All), (Command::Delete, Scope::None)].into()),
                ),
                (TableSelector::Named(t("a")), TableOverride::Commands([(Command::Select, Scope::Own)].into())),
            ],
        );
        assert_eq!(scope(&levels(), &r, &t("a"), Command::Select), Scope::Own);
        // Not named for `a`: falls to "*".
        assert_eq!(scope(&levels(), &r, &t("a"), Command::Delete), Scope::None);
        // Named nowhere: falls to the level.
        assert_eq!(scope(&levels(), &r, &t("a"), Command::Insert), Scope::Own);
        assert_eq!(scope(&levels(), &r, &t("b"), Command::Select), Scope::All);
    }

    #[test]
    fn none_on_a_named_table_denies_every_command() {
        let r = role(
            Some("individual"),
            vec![
                (TableSelector::Every, TableOverride::Commands([(Command::Select, Scope::All)].into())),
                (TableSelector::Named(t("a")), TableOverride::None),
            ],
        );
        for c in Command::ALL {
            assert_eq!(scope(&levels(), &r, &t("a"), c), Scope::None);
        }
    }

    #[test]
    fn a_named_table_beats_none_on_star() {
        let r = role(
            Some("individual"),
            vec![
                (TableSelector::Every, TableOverride::None),
                (TableSelector::Named(t("a")), TableOverride::Commands([(Command::Select, Scope::Own)].into())),
            ],
        );
        assert_eq!(scope(&levels(), &r, &t("a"), Command::Select), Scope::Own);
        assert_eq!(scope(&levels(), &r, &t("a"), Command::Insert), Scope::None);
        assert_eq!(scope(&levels(), &r, &t("b"), Command::Select), Scope::None);
    }
}

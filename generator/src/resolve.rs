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
    decide(named_override(role, table), role.tables.get(&TableSelector::Every), role_level(levels, role), command)
}

/// The override a role gives a table by name.
fn named_override<'s>(role: &'s Role, table: &QualifiedName) -> Option<&'s TableOverride> {
    role.tables.iter().find(|(k, _)| matches!(k, TableSelector::Named(q) if q == table)).map(|(_, v)| v)
}

fn role_level<'s>(levels: &'s BTreeMap<String, Level>, role: &Role) -> Option<&'s Level> {
    role.level.as_ref().and_then(|l| levels.get(l))
}

/// [`resolve_scope`] from the rules already looked up: the named table's override, `"*"`'s and
/// the level.
fn decide(
    named: Option<&TableOverride>,
    every: Option<&TableOverride>,
    level: Option<&Level>,
    command: Command,
) -> (Scope, Source) {
    for (over, source) in [(named, Source::NamedTable), (every, Source::EveryTable)] {
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
    match level.and_then(|l| l.scopes.get(&command)) {
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
pub enum Columns<'a> {
    /// Every column: a table-level privilege.
    All,
    /// Every column but these (classed columns the role lacks the right for): column grants.
    AllExcept(Vec<&'a str>),
}

/// What one role may do with one command on one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant<'a> {
    pub role: &'a str,
    pub table: &'a QualifiedName,
    pub command: Command,
    pub scope: Scope,
    pub source: Source,
    pub columns: Columns<'a>,
}

/// Every grant the spec makes, ordered by table, role, command. Commands with scope `none`
/// are left out: they get no privilege and no policy.
pub fn grants(spec: &Spec) -> Vec<Grant<'_>> {
    let resolver = Resolver::new(spec);
    let mut out = Vec::with_capacity(spec.tables.len() * spec.roles.len() * Command::ALL.len());
    for table in spec.tables.values() {
        resolver.table_grants(table, &mut out);
    }
    out
}

/// [`grants`] a table at a time, for a large spec (2,000 tables x 200 roles make 1.6 million
/// grants; the script needs one table's at once). Each role's level and `"*"` override are
/// looked up once.
pub struct Resolver<'s> {
    roles: Vec<(&'s Role, Option<&'s Level>, Option<&'s TableOverride>)>,
}

impl<'s> Resolver<'s> {
    pub fn new(spec: &'s Spec) -> Resolver<'s> {
        let roles = spec
            .roles
            .values()
            .map(|r| (r, role_level(&spec.levels, r), r.tables.get(&TableSelector::Every)))
            .collect();
        Resolver { roles }
    }

    /// The spec's roles in name order (the order of every table's grants).
    pub fn role_names(&self) -> impl Iterator<Item = &'s str> + '_ {
        self.roles.iter().map(|(r, _, _)| r.name.as_str())
    }

    /// Whether the role at `index` (of [`Resolver::role_names`]) has any command on `table`.
    pub fn has_any(&self, index: usize, table: &Table) -> bool {
        let (role, level, every) = self.roles[index];
        let named = named_override(role, &table.name);
        Command::ALL.iter().any(|&c| decide(named, every, level, c).0 != Scope::None)
    }

    /// `table`'s grants, ordered by role, then command, appended to `out`.
    pub fn table_grants(&self, table: &'s Table, out: &mut Vec<Grant<'s>>) {
        for &(role, level, every) in &self.roles {
            let named = named_override(role, &table.name);
            // The columns hidden from reading and from writing, worked out once per role and
            // table rather than per command.
            let hidden = |allowed: fn(Access) -> bool| -> Vec<&'s str> {
                table
                    .columns
                    .iter()
                    .filter(|(_, class)| !allowed(class_access(role, class)))
                    .map(|(column, _)| column.as_str())
                    .collect()
            };
            let (unread, unwritten) = (hidden(Access::can_read), hidden(Access::can_write));
            for command in Command::ALL {
                let (scope, source) = decide(named, every, level, command);
                if scope == Scope::None {
                    continue;
                }
                let hidden = match command {
                    Command::Select => &unread,
                    Command::Insert | Command::Update => &unwritten,
                    Command::Delete => &Vec::new(),
                };
                let columns = if hidden.is_empty() { Columns::All } else { Columns::AllExcept(hidden.clone()) };
                out.push(Grant { role: &role.name, table: &table.name, command, scope, source, columns });
            }
        }
    }
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

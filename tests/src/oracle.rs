//! SPEC.md as plain Rust: from the raw spec model and the fixture's directory and rows, what
//! each person may see and do. Deliberately independent of the generator's resolution and SQL
//! code (only the raw `model` types are shared), so a bug there is not mirrored here.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rowsec_generator::model::{Access, Command, QualifiedName, Role, Scope, Spec, TableOverride, TableSelector};

use crate::fixture::{Person, Row};

/// What a statement is expected to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Succeeded, touching this many rows.
    Rows(u64),
    /// SQLSTATE 42501 "new row violates row-level security policy".
    RlsViolation,
    /// SQLSTATE 42501 "permission denied" / "must be owner": no privilege.
    PermissionDenied,
    /// Anything else (never expected by the oracle; shows up in a mismatch).
    Error(String),
}

/// A row shared through `rowsec.share`.
#[derive(Debug, Clone)]
pub struct Share {
    pub table: QualifiedName,
    pub key: i64,
    pub to_person: Option<i64>,
    pub to_team: Option<i64>,
    pub write: bool,
    pub expired: bool,
}

pub struct Oracle<'a> {
    pub spec: &'a Spec,
    pub people: BTreeMap<i64, &'a Person>,
    pub shares: Vec<Share>,
}

impl<'a> Oracle<'a> {
    pub fn new(spec: &'a Spec, people: &'a [Person]) -> Self {
        Oracle { spec, people: people.iter().map(|p| (p.id, p)).collect(), shares: Vec::new() }
    }

    /// SPEC "roles": a named table beats `"*"`, which beats `level`; a command an override does
    /// not name falls through to the next rule; an override of `none` denies the table.
    pub fn scope(&self, role: &str, table: &QualifiedName, cmd: Command) -> Scope {
        let role: &Role = self.spec.roles.get(role).unwrap_or_else(|| panic!("fixture role {role} is not in the spec"));
        for selector in [TableSelector::Named(table.clone()), TableSelector::Every] {
            match role.tables.get(&selector) {
                Some(TableOverride::None) => return Scope::None,
                Some(TableOverride::Commands(m)) => {
                    if let Some(s) = m.get(&cmd) {
                        return *s;
                    }
                }
                None => {}
            }
        }
        role.level
            .as_ref()
            .and_then(|l| self.spec.levels.get(l))
            .and_then(|l| l.scopes.get(&cmd).copied())
            .unwrap_or(Scope::None)
    }

    fn person(&self, id: i64) -> &Person {
        self.people[&id]
    }

    /// The resolved current person: present and active.
    fn current(&self, id: i64) -> Option<&Person> {
        self.people.get(&id).copied().filter(|p| p.active)
    }

    /// Scopes of every role the person holds, for one command; `none` left out.
    fn scopes(&self, person: i64, table: &QualifiedName, cmd: Command) -> Vec<Scope> {
        self.person(person).roles.iter().map(|r| self.scope(r, table, cmd)).filter(|s| *s != Scope::None).collect()
    }

    /// Whether any of the person's roles holds the table privilege for `cmd`.
    pub fn has_privilege(&self, person: i64, table: &QualifiedName, cmd: Command) -> bool {
        !self.scopes(person, table, cmd).is_empty()
    }

    /// Everyone reporting to `p`, directly or transitively, and `p`; finite on cycles.
    pub fn subtree(&self, p: i64) -> BTreeSet<i64> {
        let mut seen = BTreeSet::from([p]);
        let mut queue = VecDeque::from([p]);
        while let Some(m) = queue.pop_front() {
            for q in self.people.values() {
                if q.manager == Some(m) && seen.insert(q.id) {
                    queue.push_back(q.id);
                }
            }
        }
        seen
    }

    fn same_team(&self, p: i64, o: i64) -> bool {
        match (self.person(p).team, self.people.get(&o).and_then(|q| q.team)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    pub fn in_scope(&self, person: i64, scope: Scope, owner: i64) -> bool {
        if self.current(person).is_none() {
            return false;
        }
        match scope {
            Scope::None => false,
            Scope::Own => owner == person,
            Scope::Team => owner == person || self.same_team(person, owner),
            Scope::Subtree => self.subtree(person).contains(&owner),
            Scope::All => true,
        }
    }

    fn any_scope(&self, person: i64, table: &QualifiedName, cmd: Command, owner: i64) -> bool {
        self.scopes(person, table, cmd).into_iter().any(|s| self.in_scope(person, s, owner))
    }

    /// The table's `always` rule, evaluated in Rust. Only the rules the fixture knows are
    /// supported: a new rule in the spec must be taught here, not silently ignored.
    pub fn always(&self, table: &QualifiedName, row: &Row) -> bool {
        match self.spec.tables[table].always.as_deref() {
            None => true,
            Some(rule) if rule.trim().eq_ignore_ascii_case("NOT voided") => !row.voided,
            Some(other) => panic!("oracle does not know the always rule {other:?}"),
        }
    }

    fn shared(&self, person: i64, table: &QualifiedName, key: i64, write: bool) -> bool {
        if self.current(person).is_none() || !self.spec.tables[table].sharing {
            return false;
        }
        let team = self.person(person).team;
        self.shares.iter().any(|s| {
            &s.table == table
                && s.key == key
                && !s.expired
                && (s.write || !write)
                && (s.to_person == Some(person) || (s.to_team.is_some() && s.to_team == team))
        })
    }

    /// SPEC 2, 8, 9: select scope or a share, and `always`.
    pub fn visible(&self, person: i64, table: &QualifiedName, row: &Row) -> bool {
        self.has_privilege(person, table, Command::Select)
            && self.always(table, row)
            && (self.any_scope(person, table, Command::Select, row.owner) || self.shared(person, table, row.key, false))
    }

    /// SPEC 4, 9: in update scope (or write-shared) and visible.
    pub fn updatable(&self, person: i64, table: &QualifiedName, row: &Row) -> bool {
        self.has_privilege(person, table, Command::Update)
            && self.visible(person, table, row)
            && (self.any_scope(person, table, Command::Update, row.owner) || self.shared(person, table, row.key, true))
    }

    /// SPEC 5.
    pub fn deletable(&self, person: i64, table: &QualifiedName, row: &Row) -> bool {
        self.has_privilege(person, table, Command::Delete)
            && self.visible(person, table, row)
            && self.any_scope(person, table, Command::Delete, row.owner)
    }

    /// SPEC 3, 8: inserting a row with this owner (and `voided`).
    pub fn insert(&self, person: i64, table: &QualifiedName, row: &Row) -> Outcome {
        if !self.has_privilege(person, table, Command::Insert) {
            Outcome::PermissionDenied
        } else if self.always(table, row) && self.any_scope(person, table, Command::Insert, row.owner) {
            Outcome::Rows(1)
        } else {
            Outcome::RlsViolation
        }
    }

    /// SPEC 4: `UPDATE .. SET owner = new_owner WHERE key = row.key`. The new row must be in the
    /// update scope and not write-shared (or keep the owner under a write share) and stay visible, as PostgreSQL
    /// checks SELECT policies on the new row of an UPDATE that reads the table.
    pub fn update_owner(&self, person: i64, table: &QualifiedName, row: &Row, new_owner: i64) -> Outcome {
        if !self.has_privilege(person, table, Command::Update) || !self.has_privilege(person, table, Command::Select) {
            return Outcome::PermissionDenied;
        }
        if !self.updatable(person, table, row) {
            return Outcome::Rows(0);
        }
        let new = Row { key: row.key, owner: new_owner, voided: row.voided };
        // While the row is write-shared to the person, roles below `all` may only keep the owner:
        // a share lets its grantee edit the record, never take or hand it away.
        let write_shared = self.shared(person, table, row.key, true);
        let in_update = self
            .scopes(person, table, Command::Update)
            .into_iter()
            .any(|s| self.in_scope(person, s, new_owner) && (s == Scope::All || !write_shared))
            || (new_owner == row.owner && write_shared);
        if in_update && self.visible(person, table, &new) {
            Outcome::Rows(1)
        } else {
            Outcome::RlsViolation
        }
    }

    /// The person's access to a class, unioned over their roles.
    fn class_access(&self, person: i64, class: &str, cmd: Command, table: &QualifiedName) -> Access {
        self.person(person)
            .roles
            .iter()
            .filter(|r| self.scope(r, table, cmd) != Scope::None)
            .map(|r| self.spec.roles[*r].fields.get(class).copied().unwrap_or(Access::None))
            .max()
            .unwrap_or(Access::None)
    }

    /// SPEC 7: may the person name this column in a statement of kind `cmd`
    /// (select = read it; insert/update = write it)?
    pub fn column_allowed(&self, person: i64, table: &QualifiedName, column: &str, cmd: Command) -> bool {
        match self.spec.tables[table].columns.get(column) {
            None => self.has_privilege(person, table, cmd),
            Some(class) => {
                let access = self.class_access(person, class, cmd, table);
                match cmd {
                    Command::Select => access.can_read(),
                    Command::Insert | Command::Update => access.can_write(),
                    Command::Delete => self.has_privilege(person, table, cmd),
                }
            }
        }
    }
}

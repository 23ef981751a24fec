//! SPEC.md as plain Rust: from the raw spec model, a directory of people and rows, what each
//! person may see and do. Deliberately independent of the generator's resolution and SQL code
//! (only the raw `model` types are shared), so a bug there is not mirrored here. `rowsec verify`
//! and `rowsec explain` compare a live database with it; the end-to-end tests compare the
//! fixture's database with it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::model::{Access, Command, QualifiedName, Scope, Spec, TableOverride, TableSelector};

/// A person of the directory, as the oracle needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: i64,
    pub manager: Option<i64>,
    /// Compared as text, as the extension does (SPEC: same non-null team).
    pub team: Option<String>,
    pub active: bool,
    /// The spec roles the person holds; names the spec does not have grant nothing.
    pub roles: Vec<String>,
}

impl From<&Person> for Person {
    fn from(p: &Person) -> Person {
        p.clone()
    }
}

/// A row of a protected table, as the oracle needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub key: i64,
    pub owner: i64,
    /// The table's `always` rule is false for this row (in crm.yaml: the invoice is voided).
    /// The caller evaluates the rule; the oracle only applies SPEC 8 to the answer.
    pub voided: bool,
}

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
    pub to_team: Option<String>,
    pub write: bool,
    pub expired: bool,
}

pub struct Oracle<'a> {
    pub spec: &'a Spec,
    pub people: BTreeMap<i64, Person>,
    pub shares: Vec<Share>,
}

impl<'a> Oracle<'a> {
    /// An oracle over these people (anything that converts to a [`Person`]), without shares.
    pub fn new<'p, P: 'p>(spec: &'a Spec, people: impl IntoIterator<Item = &'p P>) -> Self
    where
        &'p P: Into<Person>,
    {
        let people = people.into_iter().map(Into::into).map(|p: Person| (p.id, p)).collect();
        Oracle { spec, people, shares: Vec::new() }
    }

    /// SPEC "roles": a named table beats `"*"`, which beats `level`; a command an override does
    /// not name falls through to the next rule; an override of `none` denies the table.
    /// A role the spec does not have grants nothing.
    pub fn scope(&self, role: &str, table: &QualifiedName, cmd: Command) -> Scope {
        let Some(role) = self.spec.roles.get(role) else { return Scope::None };
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

    /// The person's roles; none for someone not in the directory.
    fn roles_of(&self, id: i64) -> &[String] {
        self.people.get(&id).map_or(&[], |p| p.roles.as_slice())
    }

    /// The resolved current person: present and active.
    pub fn current(&self, id: i64) -> Option<&Person> {
        self.people.get(&id).filter(|p| p.active)
    }

    /// Scopes of every role the person holds, for one command; `none` left out.
    fn scopes(&self, person: i64, table: &QualifiedName, cmd: Command) -> Vec<Scope> {
        self.roles_of(person).iter().map(|r| self.scope(r, table, cmd)).filter(|s| *s != Scope::None).collect()
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
        match (self.people.get(&p).and_then(|q| q.team.as_ref()), self.people.get(&o).and_then(|q| q.team.as_ref())) {
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

    pub fn any_scope(&self, person: i64, table: &QualifiedName, cmd: Command, owner: i64) -> bool {
        self.scopes(person, table, cmd).into_iter().any(|s| self.in_scope(person, s, owner))
    }

    /// SPEC 8: the table's `always` rule holds for the row (a table without one: always).
    pub fn always(&self, table: &QualifiedName, row: &Row) -> bool {
        self.spec.tables.get(table).is_none_or(|t| t.always.is_none() || !row.voided)
    }

    pub fn shared(&self, person: i64, table: &QualifiedName, key: i64, write: bool) -> bool {
        self.share_of(person, table, key, write).is_some()
    }

    /// The first unexpired share that gives the person the row (for `write`, a write share).
    pub fn share_of(&self, person: i64, table: &QualifiedName, key: i64, write: bool) -> Option<&Share> {
        let current = self.current(person)?;
        if !self.spec.tables.get(table).is_some_and(|t| t.sharing) {
            return None;
        }
        let team = current.team.as_ref();
        self.shares.iter().find(|s| {
            &s.table == table
                && s.key == key
                && !s.expired
                && (s.write || !write)
                && (s.to_person == Some(person) || (s.to_team.is_some() && s.to_team.as_ref() == team))
        })
    }

    /// SPEC 2, 8, 9: select scope or a share, and `always`.
    pub fn visible(&self, person: i64, table: &QualifiedName, row: &Row) -> bool {
        self.has_privilege(person, table, Command::Select)
            && self.always(table, row)
            && (self.any_scope(person, table, Command::Select, row.owner) || self.shared(person, table, row.key, false))
    }

    /// SPEC 2, 8, 9 for one role: in its select scope or shared, and `always`.
    fn visible_to_role(&self, person: i64, role: &str, table: &QualifiedName, row: &Row) -> bool {
        let select = self.scope(role, table, Command::Select);
        select != Scope::None
            && self.always(table, row)
            && (self.in_scope(person, select, row.owner) || self.shared(person, table, row.key, false))
    }

    /// SPEC 4, 6, 9: some role may update the row: it is in that role's update scope (or
    /// write-shared) and visible to that role. SPEC 5 and 6 say "visible to it" of the role,
    /// and unions what each role allows: a row one role sees and another may update in scope
    /// (but not see) is updatable by neither (found by the differential test, issue 14).
    pub fn updatable(&self, person: i64, table: &QualifiedName, row: &Row) -> bool {
        self.roles_of(person).iter().any(|r| {
            let update = self.scope(r, table, Command::Update);
            update != Scope::None
                && self.visible_to_role(person, r, table, row)
                && (self.in_scope(person, update, row.owner) || self.shared(person, table, row.key, true))
        })
    }

    /// SPEC 5, 6: some role may delete the row: in its delete scope and visible to it.
    pub fn deletable(&self, person: i64, table: &QualifiedName, row: &Row) -> bool {
        self.roles_of(person).iter().any(|r| {
            let delete = self.scope(r, table, Command::Delete);
            delete != Scope::None
                && self.visible_to_role(person, r, table, row)
                && self.in_scope(person, delete, row.owner)
        })
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
    pub fn class_access(&self, person: i64, class: &str, cmd: Command, table: &QualifiedName) -> Access {
        self.roles_of(person)
            .iter()
            .filter(|r| self.scope(r, table, cmd) != Scope::None)
            .filter_map(|r| self.spec.roles.get(r))
            .map(|r| r.fields.get(class).copied().unwrap_or(Access::None))
            .max()
            .unwrap_or(Access::None)
    }

    /// SPEC 7: may the person name this column in a statement of kind `cmd`
    /// (select = read it; insert/update = write it)?
    pub fn column_allowed(&self, person: i64, table: &QualifiedName, column: &str, cmd: Command) -> bool {
        match self.spec.tables.get(table).and_then(|t| t.columns.get(column)) {
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

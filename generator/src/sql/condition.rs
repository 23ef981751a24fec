//! Row conditions of policies: a small typed tree that prints itself, adding the parentheses.
//!
//! The leaves ([`Term`]) are what a policy can ask about a row; how each is written in SQL
//! (today: a call of the rowsec extension) is decided in one place, [`Condition::sql`].

use std::fmt::{self, Write};

use crate::model::{Scope, Table};
use crate::sql::extension_api::{self as api, ShareAccess};

/// What a policy can ask about a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    /// The row's owner is in this scope of the current person (`none`: no row is).
    InScope(Scope),
    /// The row is shared to the person or their team: `Read` counts read and write shares,
    /// `Write` only write shares.
    Shared(ShareAccess),
    /// The row is write-shared to the person, and its new version keeps the owner it has.
    SharedWriteKeepsOwner,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Term(Term),
    Not(Box<Condition>),
    /// All of these (at least two).
    And(Vec<Condition>),
    /// Any of these (at least two).
    Or(Vec<Condition>),
}

impl From<Term> for Condition {
    fn from(t: Term) -> Self {
        Condition::Term(t)
    }
}

impl std::ops::Not for Condition {
    type Output = Condition;

    fn not(self) -> Condition {
        Condition::Not(Box::new(self))
    }
}

/// [`Term::InScope`] as a condition.
pub fn in_scope(scope: Scope) -> Condition {
    Condition::Term(Term::InScope(scope))
}

/// [`Term::Shared`] as a condition.
pub fn shared(access: ShareAccess) -> Condition {
    Condition::Term(Term::Shared(access))
}

/// [`Term::SharedWriteKeepsOwner`] as a condition.
pub fn shared_write_keeps_owner() -> Condition {
    Condition::Term(Term::SharedWriteKeepsOwner)
}

impl Condition {
    pub fn and(self, other: impl Into<Condition>) -> Condition {
        match (self, other.into()) {
            (Condition::And(mut a), Condition::And(b)) => {
                a.extend(b);
                Condition::And(a)
            }
            (Condition::And(mut a), b) => {
                a.push(b);
                Condition::And(a)
            }
            (a, b) => Condition::And(vec![a, b]),
        }
    }

    pub fn or(self, other: impl Into<Condition>) -> Condition {
        match (self, other.into()) {
            (Condition::Or(mut a), Condition::Or(b)) => {
                a.extend(b);
                Condition::Or(a)
            }
            (Condition::Or(mut a), b) => {
                a.push(b);
                Condition::Or(a)
            }
            (a, b) => Condition::Or(vec![a, b]),
        }
    }

    /// The condition in SQL, for rows of `table`. Each alternative starts a new line, and so
    /// does a condition ANDed with a parenthesized one.
    pub fn sql<'a>(
        &'a self,
        table: &'a Table,
        backend: api::Backend,
        clause: api::Clause,
        plans: api::Plans,
    ) -> Sql<'a> {
        Sql { condition: self, table, backend, clause, plans }
    }

    fn is_compound(&self) -> bool {
        matches!(self, Condition::And(_) | Condition::Or(_))
    }

    /// Writes the tree; `term` writes a leaf. Every operand that is itself an AND or OR is
    /// parenthesized, so no reader needs SQL's precedence rules.
    fn write(
        &self,
        f: &mut fmt::Formatter<'_>,
        layout: &Layout,
        term: &dyn Fn(&mut fmt::Formatter<'_>, Term) -> fmt::Result,
    ) -> fmt::Result {
        let operand = |f: &mut fmt::Formatter<'_>, c: &Condition| {
            if c.is_compound() {
                f.write_char('(')?;
                c.write(f, layout, term)?;
                f.write_char(')')
            } else {
                c.write(f, layout, term)
            }
        };
        let join = |f: &mut fmt::Formatter<'_>, items: &[Condition], separator: &str| {
            for (i, c) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(separator)?;
                }
                operand(f, c)?;
            }
            Ok(())
        };
        match self {
            Condition::Term(t) => term(f, *t),
            Condition::Not(c) => {
                f.write_str("NOT ")?;
                operand(f, c)
            }
            Condition::And(items) if items.iter().any(Condition::is_compound) => join(f, items, layout.long_and),
            Condition::And(items) => join(f, items, " AND "),
            Condition::Or(items) => join(f, items, layout.or),
        }
    }
}

/// Separators between operands: alternatives, and conditions one of which has parentheses.
struct Layout {
    or: &'static str,
    long_and: &'static str,
}

const ONE_LINE: Layout = Layout { or: " OR ", long_and: " AND " };
/// Each alternative, and each condition beside a parenthesized one, on its own line.
const SQL_LINES: Layout = Layout { or: "\n        OR ", long_and: "\n        AND " };

/// In SPEC's words, on one line: `(own AND NOT shared_write) OR keeps_owner`. For tests and
/// messages; [`Condition::sql`] writes the SQL.
impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, &ONE_LINE, &|f, t| match t {
            Term::InScope(scope) => f.write_str(scope.as_str()),
            Term::Shared(ShareAccess::Read) => f.write_str("shared_read"),
            Term::Shared(ShareAccess::Write) => f.write_str("shared_write"),
            Term::SharedWriteKeepsOwner => f.write_str("keeps_owner"),
        })
    }
}

/// See [`Condition::sql`].
pub struct Sql<'a> {
    condition: &'a Condition,
    table: &'a Table,
    backend: api::Backend,
    clause: api::Clause,
    plans: api::Plans,
}

impl fmt::Display for Sql<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.table;
        self.condition.write(f, &SQL_LINES, &|f, term| match term {
            Term::InScope(scope) => {
                f.write_str(&api::scope_condition_for(self.backend, self.clause, self.plans, &t.name, scope, &t.owner))
            }
            Term::Shared(access) => {
                f.write_str(&api::is_shared_for(self.backend, self.clause, &t.name, &t.key, access))
            }
            Term::SharedWriteKeepsOwner => f.write_str(&api::shared_write_keeps_owner(&t.name, &t.key, &t.owner)),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::QualifiedName;
    use ShareAccess::{Read, Write};

    #[test]
    fn mixed_and_or_operands_are_parenthesized() {
        let c = in_scope(Scope::Own).and(!shared(Write)).or(shared_write_keeps_owner());
        assert_eq!(c.to_string(), "(own AND NOT shared_write) OR keeps_owner");
        let c = in_scope(Scope::Own).and(in_scope(Scope::Team).or(shared(Read)));
        assert_eq!(c.to_string(), "own AND (team OR shared_read)");
        assert_eq!((!in_scope(Scope::Own).or(in_scope(Scope::Team))).to_string(), "NOT (own OR team)");
    }

    #[test]
    fn same_operators_flatten() {
        let c = in_scope(Scope::Own).or(in_scope(Scope::Team)).or(in_scope(Scope::Subtree));
        assert_eq!(c, Condition::Or(vec![in_scope(Scope::Own), in_scope(Scope::Team), in_scope(Scope::Subtree)]));
        assert_eq!(c.to_string(), "own OR team OR subtree");
    }

    #[test]
    fn sql_calls_the_extension_and_breaks_lines_before_or() {
        let table = Table {
            name: QualifiedName::new("crm", "Deals"),
            key: "id".into(),
            owner: "Owner".into(),
            columns: BTreeMap::new(),
            always: None,
            sharing: true,
            references: BTreeMap::new(),
        };
        let c = in_scope(Scope::Own).and(!shared(Write)).or(shared_write_keeps_owner());
        assert_eq!(
            c.sql(&table, api::Backend::Extension, api::Clause::Using, api::Plans::Shared).to_string(),
            "(\"Owner\" = rowsec.current_person() AND NOT rowsec.is_shared('crm.\"Deals\"'::regclass, id, 'write'))\n        \
             OR rowsec.shared_write_keeps_owner('crm.\"Deals\"'::regclass, id, \"Owner\")"
        );
    }
}

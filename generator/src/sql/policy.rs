//! What each policy checks: SPEC Part 1's rules for select, insert, update and delete (items
//! 2-5) and sharing (item 9), as row conditions. This is where a scope becomes a policy.

use crate::model::{Command, Scope};
use crate::sql::condition::{in_scope, shared, shared_write_keeps_owner, Condition};
use crate::sql::extension_api::ShareAccess::{Read, Write};

/// The USING and WITH CHECK conditions of one role's policy for one command on one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConditions {
    /// Which existing rows the command may act on (select, update, delete).
    pub using: Option<Condition>,
    /// What a new or updated row must satisfy (insert, update).
    pub with_check: Option<Condition>,
}

/// What a policy's conditions depend on, besides the table: the command, its scope and, for an
/// update or delete whose scope the role's select scope does not cover, that select scope
/// (`seeing`). Roles with the same key on a table get the same conditions, so they share one
/// policy (`CREATE POLICY ... TO role_a, role_b`), named after the key (`names::policy_name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConditionKey {
    pub command: Command,
    pub scope: Scope,
    pub seeing: Option<Scope>,
}

impl ConditionKey {
    /// The key of `command` granted with `scope` to a role whose select scope is `select`.
    pub fn new(command: Command, scope: Scope, select: Scope) -> ConditionKey {
        // Mirrors `conditions`: only update and delete read the select scope, and only when it
        // does not cover their own (then they act on rows in scope that are also visible).
        let seeing = match command {
            Command::Update | Command::Delete if !select.covers(scope) => Some(select),
            _ => None,
        };
        ConditionKey { command, scope, seeing }
    }

    /// The conditions of every role with this key.
    pub fn conditions(self, sharing: bool) -> PolicyConditions {
        conditions(self.command, self.scope, self.seeing.unwrap_or(self.scope), sharing)
    }
}

/// The conditions for `command` granted with `scope` to a role whose select scope is `select`,
/// on a table with or without `sharing`. `scope` is never `none`: such a command gets no
/// privilege and no policy.
pub fn conditions(command: Command, scope: Scope, select: Scope, sharing: bool) -> PolicyConditions {
    // Shares add rows to a scope; `all` has them already.
    let shares = |scope: Scope| sharing && scope != Scope::All;
    // Item 2 (and 9): the role sees its select scope, plus rows read- or write-shared to P.
    let visible = if shares(select) { in_scope(select).or(shared(Read)) } else { in_scope(select) };
    // Items 4 and 5: update and delete act on rows in their scope that the role also sees.
    let visible_in_scope = if select.covers(scope) { in_scope(scope) } else { in_scope(scope).and(visible.clone()) };

    let (using, with_check) = match command {
        Command::Select => (Some(visible), None),
        // Item 3: the new row must be in the insert scope.
        Command::Insert => (None, Some(in_scope(scope))),
        // Item 4: the row after the update is still in the update scope. Item 9: write-shared
        // rows are updatable too, but a share never moves a record: while a row is write-shared
        // to P only the second alternative holds, and it keeps the owner.
        Command::Update if shares(scope) => (
            Some(visible_in_scope.or(shared(Write))),
            Some(in_scope(scope).and(!shared(Write)).or(shared_write_keeps_owner())),
        ),
        Command::Update => (Some(visible_in_scope), Some(in_scope(scope))),
        Command::Delete => (Some(visible_in_scope), None),
    };
    PolicyConditions { using, with_check }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Command::*;
    use Scope::*;

    /// `USING | WITH CHECK` in SPEC's words, `-` for none.
    fn rule(command: Command, scope: Scope, select: Scope, sharing: bool) -> String {
        let c = conditions(command, scope, select, sharing);
        let show = |c: Option<Condition>| c.map_or("-".to_owned(), |c| c.to_string());
        format!("{} | {}", show(c.using), show(c.with_check))
    }

    #[test]
    fn roles_with_the_same_key_get_the_same_conditions() {
        let scopes = [None, Own, Team, Subtree, All];
        for command in Command::ALL {
            for scope in [Own, Team, Subtree, All] {
                for select in scopes {
                    // A role's select grant has its select scope.
                    if command == Select && select != scope {
                        continue;
                    }
                    for sharing in [false, true] {
                        let key = ConditionKey::new(command, scope, select);
                        assert_eq!(
                            key.conditions(sharing),
                            conditions(command, scope, select, sharing),
                            "{command:?} {scope:?} seeing {select:?}, sharing {sharing}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn select_sees_its_scope_and_what_is_shared() {
        assert_eq!(rule(Select, Team, Team, false), "team | -");
        assert_eq!(rule(Select, Team, Team, true), "team OR shared_read | -");
        assert_eq!(rule(Select, All, All, true), "all | -");
    }

    #[test]
    fn insert_checks_the_new_row_only() {
        assert_eq!(rule(Insert, Own, Team, true), "- | own");
        assert_eq!(rule(Insert, Subtree, None, false), "- | subtree");
    }

    #[test]
    fn update_keeps_rows_in_scope_and_shares_never_move_a_record() {
        assert_eq!(rule(Update, Own, Team, false), "own | own");
        assert_eq!(rule(Update, Own, Team, true), "own OR shared_write | (own AND NOT shared_write) OR keeps_owner");
        assert_eq!(rule(Update, All, All, true), "all | all");
    }

    #[test]
    fn update_and_delete_act_on_visible_rows_only() {
        assert_eq!(rule(Delete, Own, Team, false), "own | -");
        assert_eq!(rule(Delete, Subtree, Own, false), "subtree AND own | -");
        assert_eq!(rule(Delete, Subtree, Own, true), "subtree AND (own OR shared_read) | -");
        assert_eq!(
            rule(Update, Subtree, Team, true),
            "(subtree AND (team OR shared_read)) OR shared_write | (subtree AND NOT shared_write) OR keeps_owner"
        );
        assert_eq!(rule(Update, All, Team, true), "all AND (team OR shared_read) | all");
    }
}

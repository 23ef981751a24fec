//! The names rowsec gives the objects it creates, and the marks by which it finds them again.
//!
//! The converge step of every script recognises what an earlier script created by these names
//! and marks, so changing one changes what rowsec considers its own in databases that already
//! ran a script: treat them as a stored format.

use crate::model::{Command, Scope};

/// PostgreSQL truncates identifiers longer than this many bytes (NAMEDATALEN - 1); rowsec
/// rejects such names instead.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// Prefix of every policy rowsec creates.
pub const POLICY_PREFIX: &str = "rowsec_";

/// The restrictive policy that carries a table's `always` rule (it has the policy prefix too,
/// so the converge step drops it like the others).
pub const ALWAYS_POLICY: &str = "rowsec_always";

/// The restrictive policy of a table's `references` (no condition's policy is named this way:
/// those start with a command).
pub const REFERENCES_POLICY: &str = "rowsec_references";

/// Start of the COMMENT on every role and policy rowsec owns: the converge step drops only
/// objects that carry it, never a same-named object somebody else made.
pub const OWNER_MARK: &str = "rowsec:";

/// The dollar-quote tag of the script's DO blocks (`DO $rowsec$ ... $rowsec$;`).
pub const DO_BLOCK_TAG: &str = "$rowsec$";

/// `rowsec_<command>_<scope>[_seeing_<select scope>]`: one permissive policy per table, command
/// and condition, for every role that shares the condition (`sql::policy::ConditionKey`). Named
/// after the condition, not the roles: a role added or removed leaves the name (and the other
/// roles' policies) as they were, and no role name can push it past 63 bytes (at most 36).
pub fn policy_name(command: Command, scope: Scope, seeing: Option<Scope>) -> String {
    let mut name = format!("{POLICY_PREFIX}{}_{}", command.as_str(), scope.as_str());
    if let Some(seeing) = seeing {
        name.push_str("_seeing_");
        name.push_str(seeing.as_str());
    }
    name
}

/// LIKE pattern of rowsec's policy names (`_` escaped: it is a wildcard in LIKE).
pub fn policy_name_pattern() -> String {
    format!("{}%", POLICY_PREFIX.replace('_', "\\_"))
}

/// LIKE pattern of the comments of objects rowsec owns.
pub fn owned_comment_pattern() -> String {
    format!("{OWNER_MARK}%")
}

/// The comment on a spec role's group role, before the role's name.
pub fn role_comment_prefix() -> String {
    format!("{OWNER_MARK} group role of spec role ")
}

/// What follows `<role_comment_prefix><name>` on a role rowsec adopted (`adopt: true`): the
/// comment it had before comes after it, so that the role can be given back as it was.
pub const ADOPTED_MARK: &str = ", adopted; comment before: ";

/// What follows `<role_comment_prefix><name>` on an adopted role that had no comment.
pub const ADOPTED_WITHOUT_COMMENT_MARK: &str = ", adopted; no comment before";

/// The comment on a table's `always` policy; `table` is the table's SQL name.
pub fn always_comment(table: &str) -> String {
    format!("{OWNER_MARK} always rule of {table}")
}

pub fn references_comment(table: &str) -> String {
    format!("{OWNER_MARK} references rule of {table}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_always_policy_is_found_by_the_policy_pattern_too() {
        assert!(ALWAYS_POLICY.starts_with(POLICY_PREFIX));
        assert_eq!(policy_name_pattern(), "rowsec\\_%");
    }

    #[test]
    fn policy_names_say_the_command_and_the_condition() {
        assert_eq!(policy_name(Command::Update, Scope::Own, None), "rowsec_update_own");
        assert_eq!(
            policy_name(Command::Delete, Scope::Subtree, Some(Scope::Team)),
            "rowsec_delete_subtree_seeing_team"
        );
        // Neither rule's name is a condition's.
        for name in [ALWAYS_POLICY, REFERENCES_POLICY] {
            assert!(!Command::ALL.iter().any(|c| name.starts_with(&format!("{POLICY_PREFIX}{}_", c.as_str()))));
        }
    }
}

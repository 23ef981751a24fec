//! The names rowsec gives the objects it creates, and the marks by which it finds them again.
//!
//! The converge step of every script recognises what an earlier script created by these names
//! and marks, so changing one changes what rowsec considers its own in databases that already
//! ran a script: treat them as a stored format.

use crate::model::Command;

/// PostgreSQL truncates identifiers longer than this many bytes (NAMEDATALEN - 1); rowsec
/// rejects such names instead.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// Prefix of every policy rowsec creates.
pub const POLICY_PREFIX: &str = "rowsec_";

/// The restrictive policy that carries a table's `always` rule (it has the policy prefix too,
/// so the converge step drops it like the others).
pub const ALWAYS_POLICY: &str = "rowsec_always";

/// The restrictive policy of a table's `references` (no role's policy ends this way: those end
/// in a command).
pub const REFERENCES_POLICY: &str = "rowsec_references";

/// Start of the COMMENT on every role and policy rowsec owns: the converge step drops only
/// objects that carry it, never a same-named object somebody else made.
pub const OWNER_MARK: &str = "rowsec:";

/// The dollar-quote tag of the script's DO blocks (`DO $rowsec$ ... $rowsec$;`).
pub const DO_BLOCK_TAG: &str = "$rowsec$";

/// `rowsec_<role>_<command>`: one permissive policy per role and command.
pub fn policy_name(role: &str, command: Command) -> String {
    format!("{POLICY_PREFIX}{role}_{}", command.as_str())
}

/// The longest policy name a role gets: it must fit in [`MAX_IDENTIFIER_BYTES`].
pub fn longest_policy_name(role: &str) -> String {
    // The first of the longest, so messages name the select policy (all commands are as long).
    Command::ALL.map(|c| policy_name(role, c)).into_iter().rev().max_by_key(String::len).unwrap_or_default()
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
    fn policy_names_join_prefix_role_and_command() {
        assert_eq!(policy_name("sales_rep", Command::Update), "rowsec_sales_rep_update");
        assert_eq!(longest_policy_name("r").len(), "rowsec_r_select".len());
    }
}

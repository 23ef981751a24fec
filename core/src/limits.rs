//! Bulk-operation limits (SPEC item 12): which commands have limits, the union rule that turns a
//! person's roles into one limit, and the words of the error a statement gets when it passes it.

/// A command a role may limit: rows of one protected table read or changed by one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    Select,
    Update,
    Delete,
    /// Recorded by activity (SPEC item 13) only: no limit names it.
    Insert,
}

impl Command {
    /// The commands a limit may name (SPEC item 12), in [`RoleLimits`] order.
    pub const ALL: [Command; 3] = [Command::Select, Command::Update, Command::Delete];
    /// Every command activity records, by [`Command::index`].
    pub const RECORDED: [Command; 4] = [Command::Select, Command::Update, Command::Delete, Command::Insert];

    pub fn name(self) -> &'static str {
        match self {
            Command::Select => "select",
            Command::Update => "update",
            Command::Delete => "delete",
            Command::Insert => "insert",
        }
    }

    pub fn parse(text: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == text)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The limit of one role for each command; `None`: the role has no limit for it.
pub type RoleLimits = [Option<u64>; 3];

/// The union rule: a person's limit is the largest among the roles they hold; a role without a
/// limit for the command has none, so holding it makes the person unlimited. Holding no role
/// with limits configured is unlimited too (such a person's privileges come from elsewhere).
pub fn person_limit<'a>(held: impl IntoIterator<Item = &'a RoleLimits>, command: Command) -> Option<u64> {
    let mut largest: Option<u64> = None;
    for limits in held {
        let limit = limits[command.index()]?;
        largest = Some(largest.map_or(limit, |l| l.max(limit)));
    }
    largest
}

/// The error a statement gets the moment it passes a limit (SQLSTATE 42501 in the extension).
pub struct LimitExceeded<'a> {
    pub table: &'a str,
    pub command: Command,
    pub limit: u64,
}

impl LimitExceeded<'_> {
    pub fn message(&self) -> String {
        format!(
            "{} of more than {} rows of table {} in one statement is not allowed",
            self.command.name(),
            self.limit,
            self.table
        )
    }

    pub fn detail(&self) -> String {
        format!(
            "The roles of the current user allow at most {} rows of {} per {} statement (roles.<name>.limits of the spec); \
             the statement failed at row {}{}.",
            self.limit,
            self.table,
            self.command.name(),
            self.limit + 1,
            if self.command == Command::Select { "" } else { " and changed nothing" }
        )
    }

    pub fn hint(&self) -> String {
        match self.command {
            Command::Select => "Narrow the query with a condition, or read fewer rows per statement.".into(),
            Command::Update => "Update fewer rows per statement.".into(),
            Command::Delete => "Delete fewer rows per statement.".into(),
            // No limit names inserts (`Command::ALL`): unreachable from configuration.
            Command::Insert => "Insert fewer rows per statement.".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REP: RoleLimits = [Some(500), Some(50), Some(10)];
    const SUPPORT: RoleLimits = [Some(200), Some(20), Some(5)];
    const UNLIMITED: RoleLimits = [None, None, None];

    #[test]
    fn a_person_with_one_limited_role_gets_its_limit() {
        assert_eq!(person_limit([&REP], Command::Update), Some(50));
    }

    #[test]
    fn the_largest_limit_among_the_roles_wins() {
        assert_eq!(person_limit([&SUPPORT, &REP], Command::Select), Some(500));
        assert_eq!(person_limit([&REP, &SUPPORT], Command::Delete), Some(10));
    }

    #[test]
    fn a_role_without_a_limit_makes_the_person_unlimited() {
        assert_eq!(person_limit([&REP, &UNLIMITED], Command::Select), None);
        assert_eq!(person_limit([&[Some(1), None, Some(1)]], Command::Update), None);
    }

    #[test]
    fn holding_no_role_is_unlimited() {
        assert_eq!(person_limit([], Command::Select), None);
    }

    #[test]
    fn commands_parse_by_their_sql_word_only() {
        assert_eq!(Command::parse("select"), Some(Command::Select));
        assert_eq!(Command::parse("insert"), None);
        assert_eq!(Command::parse("SELECT"), None);
    }

    #[test]
    fn the_message_names_table_command_and_limit() {
        let e = LimitExceeded { table: "crm.accounts", command: Command::Select, limit: 500 };
        assert_eq!(e.message(), "select of more than 500 rows of table crm.accounts in one statement is not allowed");
    }
}

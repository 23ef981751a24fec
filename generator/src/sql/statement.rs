//! The statements the script writes per table, role and command, as types that print
//! themselves (the way sqlparser's AST does): names go through [`Ident`] and text through
//! [`Literal`], so a caller cannot forget to quote.

use std::fmt;

use crate::model::{Command, QualifiedName};
use crate::sql::ident::{Ident, Literal};

/// A name quoted once through [`Ident`] and kept: role, policy and table names are written
/// millions of times for large specs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quoted(String);

impl Quoted {
    pub fn ident(name: &str) -> Quoted {
        Quoted(Ident(name).to_string())
    }

    /// `schema.name`, both parts quoted.
    pub fn table(name: &QualifiedName) -> Quoted {
        Quoted(name.to_string())
    }
}

impl fmt::Display for Quoted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The table privilege a command needs.
pub fn privilege(command: Command) -> &'static str {
    match command {
        Command::Select => "SELECT",
        Command::Insert => "INSERT",
        Command::Update => "UPDATE",
        Command::Delete => "DELETE",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// PostgreSQL ORs the permissive policies that apply.
    Permissive,
    /// And ANDs each restrictive one onto that.
    Restrictive,
}

#[derive(Debug, Clone, Copy)]
pub enum Grantee<'a> {
    Public,
    /// One or more roles (a policy shared by every role with the same condition).
    Roles(&'a [&'a Quoted]),
}

/// `CREATE POLICY name ON table AS kind FOR command TO role USING (..) WITH CHECK (..);`
pub struct CreatePolicy<'a> {
    pub name: &'a Quoted,
    pub table: &'a Quoted,
    pub kind: PolicyKind,
    /// `None`: every command (`FOR ALL`).
    pub command: Option<Command>,
    pub to: Grantee<'a>,
    /// SQL boolean expressions: a [`crate::sql::condition::Condition`]'s, or a checked `always`.
    pub using: Option<&'a str>,
    pub with_check: Option<&'a str>,
}

// Written with write_str, not write!: millions of these are printed for large specs.
impl fmt::Display for CreatePolicy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CREATE POLICY ")?;
        f.write_str(&self.name.0)?;
        f.write_str(" ON ")?;
        f.write_str(&self.table.0)?;
        f.write_str(match self.kind {
            PolicyKind::Permissive => " AS PERMISSIVE FOR ",
            PolicyKind::Restrictive => " AS RESTRICTIVE FOR ",
        })?;
        f.write_str(self.command.map_or("ALL", privilege))?;
        f.write_str(" TO ")?;
        match self.to {
            Grantee::Public => f.write_str("PUBLIC")?,
            Grantee::Roles(roles) => {
                for (i, role) in roles.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(&role.0)?;
                }
            }
        }
        if let Some(using) = self.using {
            f.write_str("\n    USING (")?;
            f.write_str(using)?;
            f.write_str(")")?;
        }
        if let Some(check) = self.with_check {
            f.write_str("\n    WITH CHECK (")?;
            f.write_str(check)?;
            f.write_str(")")?;
        }
        f.write_str(";")
    }
}

/// `COMMENT ON POLICY name ON table IS '...';`
pub struct CommentOnPolicy<'a> {
    pub name: &'a Quoted,
    pub table: &'a Quoted,
    pub comment: &'a str,
}

impl fmt::Display for CommentOnPolicy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("COMMENT ON POLICY ")?;
        f.write_str(&self.name.0)?;
        f.write_str(" ON ")?;
        f.write_str(&self.table.0)?;
        f.write_str(" IS ")?;
        fmt::Display::fmt(&Literal(self.comment), f)?;
        f.write_str(";")
    }
}

/// One privilege of a GRANT: on the whole table, or on these columns.
#[derive(Debug, PartialEq)]
pub struct Privilege<'a> {
    pub command: Command,
    pub columns: Option<Vec<&'a str>>,
}

/// `GRANT SELECT, UPDATE (a, b) ON table TO role, ...;`
pub struct GrantOnTable<'a> {
    pub privileges: &'a [Privilege<'a>],
    pub table: &'a Quoted,
    /// One or more (every role with the same privileges on the table).
    pub roles: &'a [&'a Quoted],
}

impl fmt::Display for GrantOnTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GRANT ")?;
        for (i, p) in self.privileges.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(privilege(p.command))?;
            if let Some(columns) = &p.columns {
                f.write_str(" (")?;
                for (j, c) in columns.iter().enumerate() {
                    if j > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", Ident(c))?;
                }
                f.write_str(")")?;
            }
        }
        write!(f, " ON {} TO ", self.table)?;
        for (i, role) in self.roles.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&role.0)?;
        }
        f.write_str(";")
    }
}

/// `GRANT USAGE ON SCHEMA schema TO role, ...;`
pub struct GrantSchemaUsage<'a> {
    pub schema: &'a str,
    pub roles: &'a [&'a str],
}

impl fmt::Display for GrantSchemaUsage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GRANT USAGE ON SCHEMA {} TO ", Ident(self.schema))?;
        for (i, r) in self.roles.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", Ident(r))?;
        }
        f.write_str(";")
    }
}

#[derive(Debug, Clone, Copy)]
pub enum RowSecurity {
    Enable,
    /// Also for the table's owner.
    Force,
}

/// `ALTER TABLE table ENABLE|FORCE ROW LEVEL SECURITY;`
pub struct AlterTableRowSecurity<'a> {
    pub table: &'a Quoted,
    pub action: RowSecurity,
}

impl fmt::Display for AlterTableRowSecurity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            RowSecurity::Enable => "ENABLE",
            RowSecurity::Force => "FORCE",
        };
        write!(f, "ALTER TABLE {} {action} ROW LEVEL SECURITY;", self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_prints_only_the_clauses_it_has() {
        let (name, table, role) = (Quoted::ident("rowsec_r_insert"), Quoted::ident("t"), Quoted::ident("Sales Rep"));
        let p = CreatePolicy {
            name: &name,
            table: &table,
            kind: PolicyKind::Permissive,
            command: Some(Command::Insert),
            to: Grantee::Roles(&[&role, &Quoted::ident("support")]),
            using: None,
            with_check: Some("x"),
        };
        assert_eq!(
            p.to_string(),
            "CREATE POLICY rowsec_r_insert ON t AS PERMISSIVE FOR INSERT TO \"Sales Rep\", support\n    WITH CHECK (x);"
        );
    }

    #[test]
    fn grants_quote_columns_and_roles() {
        let (table, role) = (Quoted::table(&QualifiedName::new("crm", "a")), Quoted::ident("select"));
        let privileges = [
            Privilege { command: Command::Select, columns: None },
            Privilege { command: Command::Update, columns: Some(vec!["id", "Amount'"]) },
        ];
        let g = GrantOnTable { privileges: &privileges, table: &table, roles: &[&role, &Quoted::ident("b")] };
        assert_eq!(g.to_string(), "GRANT SELECT, UPDATE (id, \"Amount'\") ON crm.a TO \"select\", b;");
        let u = GrantSchemaUsage { schema: "Odd Schema", roles: &["a", "user"] };
        assert_eq!(u.to_string(), "GRANT USAGE ON SCHEMA \"Odd Schema\" TO a, \"user\";");
    }

    #[test]
    fn comments_are_literals() {
        let (name, table) = (Quoted::ident("p"), Quoted::ident("t"));
        let c = CommentOnPolicy { name: &name, table: &table, comment: "rowsec: it's" };
        assert_eq!(c.to_string(), "COMMENT ON POLICY p ON t IS 'rowsec: it''s';");
    }
}

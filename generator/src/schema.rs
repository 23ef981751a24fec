//! The tables and columns of a DDL file (`--schema`), read with sqlparser's PostgreSQL dialect.

use std::collections::BTreeMap;

use sqlparser::ast::{ObjectName, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::diagnostic::{Code, Diagnostic, Span};
use crate::model::QualifiedName;

/// The column types rowsec cares about; everything else is kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    BigInt,
    Integer,
    SmallInt,
    Boolean,
    Text,
    Other(String),
}

impl ColumnType {
    fn from_sql(sql_type: &str) -> ColumnType {
        let t = sql_type.to_lowercase();
        let base = t.split('(').next().unwrap_or("").trim();
        match base {
            "bigint" | "int8" | "bigserial" | "serial8" => ColumnType::BigInt,
            "integer" | "int" | "int4" | "serial" | "serial4" => ColumnType::Integer,
            "smallint" | "int2" | "smallserial" | "serial2" => ColumnType::SmallInt,
            "boolean" | "bool" => ColumnType::Boolean,
            "text" | "varchar" | "character varying" | "name" | "citext" => ColumnType::Text,
            _ => ColumnType::Other(t),
        }
    }

    pub fn describe(&self) -> &str {
        match self {
            ColumnType::BigInt => "bigint",
            ColumnType::Integer => "integer",
            ColumnType::SmallInt => "smallint",
            ColumnType::Boolean => "boolean",
            ColumnType::Text => "text",
            ColumnType::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub tables: BTreeMap<QualifiedName, Vec<(String, ColumnType)>>,
}

impl Schema {
    /// Parses the CREATE TABLE statements of a DDL script; other statements are ignored.
    pub fn parse(ddl: &str) -> Result<Schema, Diagnostic> {
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, ddl).map_err(|e| {
            let text = e.to_string();
            let (line, col) = sqlparser_location(&text).unwrap_or((1, 1));
            Diagnostic::new(
                Code::SchemaSyntax,
                Span::point(ddl, line, col.saturating_sub(1)),
                format!("cannot parse this DDL: {text}"),
            )
            .with_hint("--schema takes plain PostgreSQL DDL (CREATE SCHEMA / CREATE TABLE / CREATE INDEX)")
        })?;
        let mut schema = Schema::default();
        for statement in statements {
            if let Statement::CreateTable(table) = statement {
                let columns = table
                    .columns
                    .iter()
                    .map(|c| (ident_value(&c.name), ColumnType::from_sql(&c.data_type.to_string())))
                    .collect();
                schema.tables.insert(qualified(&table.name), columns);
            }
        }
        Ok(schema)
    }

    pub fn column(&self, table: &QualifiedName, column: &str) -> Option<&ColumnType> {
        self.tables.get(table)?.iter().find(|(c, _)| c == column).map(|(_, t)| t)
    }

    pub fn columns(&self, table: &QualifiedName) -> Option<impl Iterator<Item = &str>> {
        Some(self.tables.get(table)?.iter().map(|(c, _)| c.as_str()))
    }
}

/// Unquoted identifiers fold to lower case, as PostgreSQL does.
fn ident_value(ident: &sqlparser::ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

fn qualified(name: &ObjectName) -> QualifiedName {
    let parts: Vec<String> = name.0.iter().filter_map(|p| p.as_ident()).map(ident_value).collect();
    match parts.as_slice() {
        [schema, table] => QualifiedName::new(schema, table),
        [.., schema, table] => QualifiedName::new(schema, table),
        [table] => QualifiedName::new("public", table),
        [] => QualifiedName::new("public", ""),
    }
}

/// sqlparser reports positions as text ("... at Line: 3, Column: 7").
fn sqlparser_location(message: &str) -> Option<(usize, usize)> {
    let rest = &message[message.rfind("Line: ")? + 6..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, col.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_reference_schema() {
        let schema = Schema::parse(include_str!("../../examples/crm-schema.sql")).unwrap();
        let accounts = QualifiedName::new("crm", "accounts");
        assert_eq!(schema.column(&accounts, "id"), Some(&ColumnType::BigInt));
        assert_eq!(schema.column(&accounts, "owner_id"), Some(&ColumnType::BigInt));
        let users = QualifiedName::new("crm", "app_users");
        assert_eq!(schema.column(&users, "active"), Some(&ColumnType::Boolean));
        assert_eq!(schema.column(&users, "db_login"), Some(&ColumnType::Text));
        assert_eq!(schema.tables.len(), 6);
    }

    #[test]
    fn quoted_identifiers_keep_their_case() {
        let schema = Schema::parse(r#"CREATE TABLE "Sales"."Deals" ("Id" bigint, owner int);"#).unwrap();
        let t = QualifiedName::new("Sales", "Deals");
        assert_eq!(schema.column(&t, "Id"), Some(&ColumnType::BigInt));
        assert_eq!(schema.column(&t, "owner"), Some(&ColumnType::Integer));
    }

    #[test]
    fn syntax_errors_carry_a_location() {
        let err = Schema::parse("CREATE TABLE t (\n  id bigint,,\n);").unwrap_err();
        assert_eq!(err.span.line, 2);
    }
}

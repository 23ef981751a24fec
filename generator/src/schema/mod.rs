//! The tables and columns of a DDL file (`--schema`): plain DDL or `pg_dump --schema-only`
//! output.
//!
//! The file is split into statements as psql would run it ([`split`]); CREATE TABLE and the
//! ALTER TABLE and DROP TABLE statements that change columns are read with sqlparser's
//! PostgreSQL dialect; every other statement (SET, sequences, indexes, constraints, owners,
//! functions, grants, psql's `\restrict` ...) is skipped and counted by kind ([`kind`]), so that
//! `check` can say what it did not read.

mod kind;
mod split;

use std::collections::BTreeMap;

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ColumnDef, ObjectName, RenameTableNameKind, Statement,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::diagnostic::{Code, Diagnostic, Span};
use crate::model::QualifiedName;
use kind::Kind;
use split::Piece;

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
        if t.ends_with(']') || t.ends_with(" array") {
            return ColumnType::Other(t);
        }
        let base = t.split('(').next().unwrap_or("").trim();
        // pg_dump qualifies types from extensions and pg_catalog: `public.citext`.
        let base = base.rsplit('.').next().unwrap_or(base).trim_matches('"');
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
    /// Statements not read, by kind (`CREATE INDEX`, `ALTER TABLE ... OWNER TO`, ...).
    pub skipped: BTreeMap<String, usize>,
}

impl Schema {
    /// Reads the tables and columns a DDL script creates. Statements that do not shape tables
    /// are skipped and counted in `skipped`; a CREATE or ALTER TABLE that cannot be read is an
    /// error at its place.
    pub fn parse(ddl: &str) -> Result<Schema, Diagnostic> {
        let pieces = split::split(ddl).map_err(|u| {
            Diagnostic::new(Code::SchemaSyntax, position(ddl, u.start), format!("this {} is never closed", u.what))
                .with_hint("close it, or check the quotes on the lines before")
        })?;
        let mut reader = Reader { ddl, schema: Schema::default(), creation_schema: None };
        for piece in pieces {
            match piece {
                Piece::Meta { text } => {
                    let command = text.split_whitespace().next().unwrap_or(text);
                    reader.skip(command.to_owned());
                }
                Piece::Sql { text, start, tokens } => match kind::classify(&tokens) {
                    Kind::CreateTable => reader.create_table(text, start)?,
                    Kind::AlterTableColumns => reader.alter_table(text, start)?,
                    Kind::DropTable => reader.drop_table(text, start)?,
                    Kind::MoveTable(name, schema) => reader.move_table(&name, schema, start)?,
                    Kind::SearchPath(schema) => reader.creation_schema = schema,
                    Kind::Skip(label) => reader.skip(label),
                },
            }
        }
        Ok(reader.schema)
    }

    pub fn column(&self, table: &QualifiedName, column: &str) -> Option<&ColumnType> {
        self.tables.get(table)?.iter().find(|(c, _)| c == column).map(|(_, t)| t)
    }

    pub fn columns(&self, table: &QualifiedName) -> Option<impl Iterator<Item = &str>> {
        Some(self.tables.get(table)?.iter().map(|(c, _)| c.as_str()))
    }

    /// `6 tables read; skipped 65 statements (ALTER TABLE ... ADD CONSTRAINT 17, SET 11, ...)`:
    /// the most frequent kinds first, the rest summed up.
    pub fn describe(&self) -> String {
        const SHOWN: usize = 4;
        let n = self.tables.len();
        let mut out = format!("{n} table{} read", if n == 1 { "" } else { "s" });
        let total: usize = self.skipped.values().sum();
        if total == 0 {
            out.push_str("; no statement skipped");
            return out;
        }
        let mut kinds: Vec<(&String, &usize)> = self.skipped.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        // Summing up a single kind would not be shorter than naming it.
        let shown = if kinds.len() <= SHOWN + 1 { kinds.len() } else { SHOWN };
        let mut parts: Vec<String> = kinds[..shown].iter().map(|(k, c)| format!("{k} {c}")).collect();
        if kinds.len() > shown {
            let rest: usize = kinds[shown..].iter().map(|(_, c)| **c).sum();
            parts.push(format!("and {rest} more of {} other kinds", kinds.len() - shown));
        }
        let s = if total == 1 { "" } else { "s" };
        out.push_str(&format!("; skipped {total} statement{s} ({})", parts.join(", ")));
        out
    }
}

/// Reads the statements of one file in order.
struct Reader<'a> {
    ddl: &'a str,
    schema: Schema,
    /// The first schema of the search_path: where unqualified tables are created.
    creation_schema: Option<String>,
}

impl Reader<'_> {
    fn skip(&mut self, label: String) {
        *self.schema.skipped.entry(label).or_default() += 1;
    }

    /// One statement through sqlparser; its errors point into the file.
    fn parse_one(&self, text: &str, start: usize) -> Result<Statement, Diagnostic> {
        let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, text).map_err(|e| {
            let message = e.to_string();
            let place = match sqlparser_location(&message) {
                Some((line, col)) => position_within(self.ddl, start, line, col),
                None => position(self.ddl, start),
            };
            Diagnostic::new(Code::SchemaSyntax, place, format!("cannot read this statement: {}", strip_location(&message)))
                .with_hint("--schema reads CREATE TABLE and ALTER TABLE as PostgreSQL 15 writes them (plain DDL or pg_dump --schema-only)")
        })?;
        match statements.len() {
            1 => Ok(statements.remove(0)),
            _ => Err(unsupported(self.ddl, start, "this is not one statement")),
        }
    }

    fn name(&self, name: &ObjectName) -> QualifiedName {
        let parts: Vec<String> = name.0.iter().filter_map(|p| p.as_ident()).map(ident_value).collect();
        self.qualify(&parts)
    }

    /// `[schema, table]` or `[table]` (in the search_path's first schema); a database name
    /// before them is ignored.
    fn qualify(&self, parts: &[String]) -> QualifiedName {
        match parts {
            [.., schema, table] => QualifiedName::new(schema, table),
            [table] => QualifiedName::new(self.creation_schema.as_deref().unwrap_or("public"), table),
            [] => QualifiedName::new("public", ""),
        }
    }

    fn create_table(&mut self, text: &str, start: usize) -> Result<(), Diagnostic> {
        let Statement::CreateTable(table) = self.parse_one(text, start)? else {
            return Err(unsupported(self.ddl, start, "this CREATE TABLE could not be read"));
        };
        let cannot =
            |what: &str| unsupported(self.ddl, start, format!("cannot know the columns of a table created {what}"));
        if table.query.is_some() {
            return Err(cannot("AS SELECT"));
        }
        // sqlparser reads `(LIKE other)` as a column named `like`, which PostgreSQL would
        // only accept quoted.
        let like_column =
            table.columns.iter().any(|c| c.name.quote_style.is_none() && c.name.value.eq_ignore_ascii_case("like"));
        if table.like.is_some() || like_column {
            return Err(cannot("LIKE another"));
        }
        let name = self.name(&table.name);
        if table.if_not_exists && self.schema.tables.contains_key(&name) {
            return Ok(());
        }
        // Inherited columns come first, as PostgreSQL orders them.
        let mut columns: Vec<(String, ColumnType)> = Vec::new();
        let parents = table.inherits.iter().flatten().chain(table.partition_of.as_ref());
        for parent in parents {
            let parent = self.name(parent);
            let Some(inherited) = self.schema.tables.get(&parent) else {
                return Err(cannot(&format!("from `{}`, which this file does not create before it", parent.dotted())));
            };
            for column in inherited {
                if !columns.iter().any(|(c, _)| *c == column.0) {
                    columns.push(column.clone());
                }
            }
        }
        for c in &table.columns {
            let column = column(c);
            if !columns.iter().any(|(existing, _)| *existing == column.0) {
                columns.push(column);
            }
        }
        self.schema.tables.insert(name, columns);
        Ok(())
    }

    fn alter_table(&mut self, text: &str, start: usize) -> Result<(), Diagnostic> {
        let Statement::AlterTable(alter) = self.parse_one(text, start)? else {
            return Err(unsupported(self.ddl, start, "this ALTER TABLE could not be read"));
        };
        let name = self.name(&alter.name);
        let Some(mut columns) = self.schema.tables.remove(&name) else {
            if alter.if_exists {
                self.skip("ALTER TABLE IF EXISTS (of a table not created here)".to_owned());
                return Ok(());
            }
            let message = format!("ALTER TABLE of `{}`, which this file does not create before it", name.dotted());
            return Err(unsupported(self.ddl, start, message));
        };
        let mut name = name;
        for op in &alter.operations {
            match op {
                AlterTableOperation::AddColumn { column_def, .. } => {
                    let (c, t) = column(column_def);
                    if !columns.iter().any(|(existing, _)| *existing == c) {
                        columns.push((c, t));
                    }
                }
                AlterTableOperation::DropColumn { column_names, .. } => {
                    let dropped: Vec<String> = column_names.iter().map(ident_value).collect();
                    columns.retain(|(c, _)| !dropped.contains(c));
                }
                AlterTableOperation::RenameColumn { old_column_name, new_column_name } => {
                    let old = ident_value(old_column_name);
                    if let Some(c) = columns.iter_mut().find(|(c, _)| *c == old) {
                        c.0 = ident_value(new_column_name);
                    }
                }
                AlterTableOperation::RenameTable {
                    table_name: RenameTableNameKind::To(new) | RenameTableNameKind::As(new),
                } => {
                    // RENAME TO takes a bare name: the table stays in its schema.
                    let table = self.name(new).name;
                    name = QualifiedName::new(&name.schema, &table);
                }
                AlterTableOperation::AlterColumn {
                    column_name,
                    op: AlterColumnOperation::SetDataType { data_type, .. },
                } => {
                    let changed = ident_value(column_name);
                    if let Some(c) = columns.iter_mut().find(|(c, _)| *c == changed) {
                        c.1 = ColumnType::from_sql(&data_type.to_string());
                    }
                }
                // Constraints, defaults, owners and the like do not change the columns.
                _ => {}
            }
        }
        self.schema.tables.insert(name, columns);
        Ok(())
    }

    fn move_table(&mut self, name: &[String], schema: String, start: usize) -> Result<(), Diagnostic> {
        let name = self.qualify(name);
        let Some(columns) = self.schema.tables.remove(&name) else {
            let message = format!("ALTER TABLE of `{}`, which this file does not create before it", name.dotted());
            return Err(unsupported(self.ddl, start, message));
        };
        self.schema.tables.insert(QualifiedName::new(&schema, &name.name), columns);
        Ok(())
    }

    fn drop_table(&mut self, text: &str, start: usize) -> Result<(), Diagnostic> {
        let Statement::Drop { names, .. } = self.parse_one(text, start)? else {
            return Err(unsupported(self.ddl, start, "this DROP TABLE could not be read"));
        };
        for name in &names {
            let name = self.name(name);
            self.schema.tables.remove(&name);
        }
        Ok(())
    }
}

fn column(c: &ColumnDef) -> (String, ColumnType) {
    (ident_value(&c.name), ColumnType::from_sql(&c.data_type.to_string()))
}

fn unsupported(ddl: &str, start: usize, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(Code::SchemaUnsupported, position(ddl, start), message).with_hint(
        "give --schema the tables as CREATE TABLE (...) with their columns, e.g. the output of pg_dump --schema-only",
    )
}

/// Unquoted identifiers fold to lower case, as PostgreSQL does.
fn ident_value(ident: &sqlparser::ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// The place of a byte offset.
fn position(ddl: &str, offset: usize) -> Span {
    let before = &ddl[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count();
    Span::point(ddl, line, col)
}

/// The place of sqlparser's (1-based) line and column within a statement starting at `start`.
fn position_within(ddl: &str, start: usize, line: usize, col: usize) -> Span {
    let first = position(ddl, start);
    let col = col.saturating_sub(1);
    if line <= 1 {
        Span::point(ddl, first.line, first.col + col)
    } else {
        Span::point(ddl, first.line + line - 1, col)
    }
}

/// sqlparser reports positions as text ("... at Line: 3, Column: 7").
fn sqlparser_location(message: &str) -> Option<(usize, usize)> {
    let rest = &message[message.rfind("Line: ")? + 6..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, col.parse().ok()?))
}

/// The message without sqlparser's own position, which is relative to the statement.
fn strip_location(message: &str) -> &str {
    message.rfind(" at Line: ").map_or(message, |i| &message[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRM: &str = include_str!("../../../examples/crm-schema.sql");
    const CRM_DUMP: &str = include_str!("../../tests/fixtures/crm-schema.pg_dump.sql");
    const VARIED: &str = include_str!("../../tests/fixtures/varied-schema.sql");
    const VARIED_DUMP: &str = include_str!("../../tests/fixtures/varied-schema.pg_dump.sql");

    fn t(schema: &str, name: &str) -> QualifiedName {
        QualifiedName::new(schema, name)
    }

    /// Table -> column names, and the types rowsec tells apart (`Other` types are spelt
    /// differently by people and by pg_dump: `timestamptz`, `timestamp with time zone`).
    fn shape(schema: &Schema) -> BTreeMap<String, Vec<(String, Option<ColumnType>)>> {
        let known = |t: &ColumnType| (!matches!(t, ColumnType::Other(_))).then(|| t.clone());
        schema
            .tables
            .iter()
            .map(|(q, cols)| (q.dotted().to_string(), cols.iter().map(|(c, t)| (c.clone(), known(t))).collect()))
            .collect()
    }

    fn names(schema: &Schema, table: &QualifiedName) -> Vec<String> {
        schema.columns(table).unwrap_or_else(|| panic!("no table {}", table.dotted())).map(str::to_owned).collect()
    }

    #[test]
    fn reads_the_reference_schema() {
        let schema = Schema::parse(CRM).unwrap();
        let accounts = t("crm", "accounts");
        assert_eq!(schema.column(&accounts, "id"), Some(&ColumnType::BigInt));
        assert_eq!(schema.column(&accounts, "owner_id"), Some(&ColumnType::BigInt));
        let users = t("crm", "app_users");
        assert_eq!(schema.column(&users, "active"), Some(&ColumnType::Boolean));
        assert_eq!(schema.column(&users, "db_login"), Some(&ColumnType::Text));
        assert_eq!(schema.tables.len(), 6);
        assert_eq!(schema.describe(), "6 tables read; skipped 8 statements (CREATE INDEX 7, CREATE SCHEMA 1)");
    }

    #[test]
    fn a_pg_dump_of_the_reference_schema_has_the_same_tables_and_columns() {
        let dump = Schema::parse(CRM_DUMP).unwrap();
        assert_eq!(shape(&dump), shape(&Schema::parse(CRM).unwrap()));
        assert_eq!(dump.column(&t("crm", "accounts"), "id"), Some(&ColumnType::BigInt));
    }

    #[test]
    fn what_a_pg_dump_has_besides_tables_is_skipped_and_counted_by_kind() {
        let dump = Schema::parse(CRM_DUMP).unwrap();
        let count = |kind: &str| dump.skipped.get(kind).copied().unwrap_or(0);
        assert_eq!(count("\\restrict"), 1);
        assert_eq!(count("\\unrestrict"), 1);
        assert_eq!(count("SET"), 11);
        assert_eq!(count("CREATE SEQUENCE"), 5);
        assert_eq!(count("ALTER TABLE ... OWNER TO"), 11);
        assert_eq!(count("ALTER SEQUENCE ... OWNED BY"), 5);
        assert_eq!(count("ALTER TABLE ... ALTER COLUMN ... SET DEFAULT"), 5);
        assert_eq!(count("ALTER TABLE ... ADD CONSTRAINT"), 17);
        assert_eq!(count("CREATE INDEX"), 7);
        assert_eq!(
            dump.describe(),
            "6 tables read; skipped 65 statements (ALTER TABLE ... ADD CONSTRAINT 17, ALTER TABLE ... OWNER TO 11, \
             SET 11, CREATE INDEX 7, and 19 more of 7 other kinds)"
        );
    }

    #[test]
    fn the_summary_of_what_was_skipped_names_each_kind_when_it_is_short() {
        let five = Schema::parse(
            "SET a = 1; SET b = 2; GRANT x TO y; COMMENT ON TABLE t IS 'c'; CREATE VIEW v AS SELECT 1; DO $$ $$;",
        )
        .unwrap();
        assert_eq!(
            five.describe(),
            "0 tables read; skipped 6 statements (SET 2, COMMENT ON 1, CREATE VIEW 1, DO 1, GRANT 1)"
        );
        assert_eq!(Schema::parse("CREATE TABLE t (id int)").unwrap().describe(), "1 table read; no statement skipped");
    }

    #[test]
    fn a_varied_pg_dump_reads_like_the_ddl_it_was_made_from() {
        let dump = Schema::parse(VARIED_DUMP).unwrap();
        assert_eq!(shape(&dump), shape(&Schema::parse(VARIED).unwrap()));
        let deals = t("Sales", "Deals");
        assert_eq!(names(&dump, &deals), ["Id", "owner", "Title; x", "stage", "value", "tags", "flags", "closed_at"]);
        assert_eq!(dump.column(&deals, "Id"), Some(&ColumnType::BigInt));
        assert_eq!(dump.column(&deals, "Title; x"), Some(&ColumnType::Text));
        // An array of booleans is not a boolean.
        assert!(matches!(dump.column(&deals, "flags"), Some(ColumnType::Other(_))));
        // Inherited columns first, then the table's own.
        assert_eq!(names(&dump, &t("Sales", "big_deals")).last().unwrap(), "approved_by");
        assert_eq!(names(&dump, &t("Sales", "big_deals")).len(), 9);
        assert_eq!(names(&dump, &t("Sales", "events_eu")), ["id", "owner", "region", "payload"]);
        assert_eq!(names(&dump, &t("Sales", "notes")), ["id", "owner_id", "text_body", "created"]);
        assert_eq!(dump.column(&t("Sales", "notes"), "id"), Some(&ColumnType::BigInt));
        // Views are not tables.
        assert!(!dump.tables.contains_key(&t("Sales", "open_deals")));
        assert!(!dump.tables.contains_key(&t("Sales", "deal_totals")));
        for kind in
            ["CREATE FUNCTION", "CREATE VIEW", "CREATE MATERIALIZED VIEW", "COMMENT ON", "GRANT", "CREATE POLICY"]
        {
            assert!(dump.skipped.contains_key(kind), "{kind} not counted: {:?}", dump.skipped);
        }
    }

    #[test]
    fn ddl_that_adds_drops_renames_and_retypes_columns_is_followed() {
        let schema = Schema::parse(VARIED).unwrap();
        assert_eq!(names(&schema, &t("Sales", "notes")), ["id", "owner_id", "text_body", "created"]);
        assert_eq!(schema.column(&t("Sales", "notes"), "id"), Some(&ColumnType::BigInt));
        let moved = Schema::parse(
            "CREATE TABLE a (id bigint); ALTER TABLE a RENAME TO b; ALTER TABLE b SET SCHEMA crm;\
             CREATE TABLE gone (id int); DROP TABLE IF EXISTS gone, never;",
        )
        .unwrap();
        assert_eq!(moved.tables.keys().cloned().collect::<Vec<_>>(), [t("crm", "b")]);
    }

    #[test]
    fn unqualified_tables_go_to_the_first_schema_of_the_search_path() {
        let schema =
            Schema::parse("CREATE TABLE a (id int);\nSET search_path TO \"$user\", crm;\nCREATE TABLE b (id int);")
                .unwrap();
        assert!(schema.tables.contains_key(&t("public", "a")));
        assert!(schema.tables.contains_key(&t("crm", "b")));
        assert!(schema.skipped.is_empty(), "a search_path is read, not skipped");
    }

    #[test]
    fn quoted_identifiers_keep_their_case() {
        let schema = Schema::parse(r#"CREATE TABLE "Sales"."Deals" ("Id" bigint, owner int);"#).unwrap();
        let t = t("Sales", "Deals");
        assert_eq!(schema.column(&t, "Id"), Some(&ColumnType::BigInt));
        assert_eq!(schema.column(&t, "owner"), Some(&ColumnType::Integer));
    }

    #[test]
    fn syntax_errors_carry_a_location() {
        let err = Schema::parse("CREATE TABLE t (\n  id bigint,,\n);").unwrap_err();
        assert_eq!((err.code, err.span.line, err.span.col), (Code::SchemaSyntax, 2, 12));
    }

    #[test]
    fn a_syntax_error_deep_in_a_dump_points_at_its_line_in_the_file() {
        let broken = CRM_DUMP.replace("    kind text NOT NULL,", "    kind text NOT NULL,,");
        let line = broken.lines().position(|l| l.ends_with("NOT NULL,,")).unwrap() + 1;
        let err = Schema::parse(&broken).unwrap_err();
        assert_eq!((err.code, err.span.line), (Code::SchemaSyntax, line), "{err:?}");
    }

    #[test]
    fn an_unclosed_quote_is_reported_where_it_opens() {
        let err = Schema::parse("CREATE TABLE t (id int);\nCOMMENT ON TABLE t IS 'it's';\n").unwrap_err();
        assert_eq!((err.code, err.span.line, err.span.col), (Code::SchemaSyntax, 2, 27));
        assert!(err.message.contains("string is never closed"), "{}", err.message);
    }

    #[test]
    fn tables_whose_columns_cannot_be_known_are_errors() {
        for ddl in [
            "CREATE TABLE crm.a AS SELECT 1 AS id",
            "CREATE TABLE b (LIKE a)",
            "CREATE TABLE c () INHERITS (nowhere)",
            "\n  ALTER TABLE nowhere ADD COLUMN x int",
        ] {
            let err = Schema::parse(ddl).unwrap_err();
            assert_eq!(err.code, Code::SchemaUnsupported, "{ddl}: {err:?}");
        }
        let err = Schema::parse("\n  ALTER TABLE nowhere ADD COLUMN x int").unwrap_err();
        assert_eq!((err.span.line, err.span.col), (2, 2));
    }
}

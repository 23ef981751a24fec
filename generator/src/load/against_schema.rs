//! Checks of what the spec says about the database: with `--schema`, every table and column
//! it names exists with a type rowsec can use; and each `always` rule is a boolean expression
//! over its table's columns (checked as far as possible without `--schema` too).

use super::reader::Reader;
use super::{Parts, Places};
use crate::always;
use crate::diagnostic::{suggestion, Code, Span};
use crate::model::{Directory, QualifiedName};
use crate::schema::{ColumnType, Schema};

/// Whether a column type is acceptable for a given use.
type TypeCheck = fn(&ColumnType) -> bool;

pub(super) fn check(r: &mut Reader, parts: &Parts, places: &Places, schema: Option<&Schema>) {
    let mut check = Check { r, schema, table_names: None };
    if let (Some(d), Some(p)) = (&parts.directory, &places.directory) {
        check.directory(d, p);
    }
    for (name, table) in &parts.tables {
        let place = &places.tables[name];
        if let (Some(sql), Some(span)) = (&table.always, place.always) {
            let known = schema.and_then(|s| s.tables.get(name)).map(Vec::as_slice);
            for p in always::check(sql, known) {
                check.r.error(p.code, span, p.message, p.hint);
            }
        }
        // A table missing from the schema has no columns to check: saying so of each would
        // repeat one mistake.
        if !check.table_exists(name, place.name, &format!("table `{}`", place.written), &place.written) {
            continue;
        }
        for column in table.columns.keys() {
            check.column(name, column, place.columns[column], |_| true, "", "`columns`");
        }
        // Compared with the referenced table's key, which is bigint.
        for column in table.references.keys() {
            let span = place.references[column].0;
            check.column(name, column, span, |t| *t == ColumnType::BigInt, "bigint", "`references`");
        }
        // The extension keys shares and its registry by bigint (protect_table checks it too).
        if let (Some(key), Some(span)) = (&table.key, place.key) {
            check.column(name, key, span, |t| *t == ColumnType::BigInt, "bigint", "`key`");
        }
        if let (Some(owner), Some(span)) = (&table.owner, place.owner) {
            let bigint = |t: &ColumnType| *t == ColumnType::BigInt;
            check.column(name, owner, span, bigint, "bigint (the directory id's type)", "`owner`");
        }
    }
}

struct Check<'r, 's> {
    r: &'r mut Reader,
    schema: Option<&'s Schema>,
    /// The schema's tables as `schema.name`, for suggestions; built on first use.
    table_names: Option<Vec<String>>,
}

impl Check<'_, '_> {
    fn directory(&mut self, d: &Directory, place: &super::directory::DirectoryPlaces) {
        let what = format!("the directory table `{}`", d.table.dotted());
        if !self.table_exists(&d.table, place.table, &what, &d.table.dotted().to_string()) {
            return;
        }
        let want: [(&str, Option<&String>, TypeCheck, &str); 5] = [
            ("id", Some(&d.id), |t| *t == ColumnType::BigInt, "bigint"),
            ("manager", Some(&d.manager), |t| *t == ColumnType::BigInt, "bigint (the same type as id)"),
            ("team", d.team.as_ref(), |_| true, "any type"),
            ("login", d.login.as_ref(), |t| *t == ColumnType::Text, "text"),
            ("active", d.active.as_ref(), |t| *t == ColumnType::Boolean, "boolean"),
        ];
        for (key, column, ok, wanted) in want {
            let (Some(column), Some(span)) = (column, place.columns.get(key)) else { continue };
            self.column(&d.table, column, *span, ok, wanted, &format!("`directory.{key}`"));
        }
    }

    /// Reports a table missing from the schema; `written` is its name as the spec gives it.
    fn table_exists(&mut self, table: &QualifiedName, span: Span, what: &str, written: &str) -> bool {
        let Some(schema) = self.schema else { return true };
        if schema.tables.contains_key(table) {
            return true;
        }
        let names =
            self.table_names.get_or_insert_with(|| schema.tables.keys().map(|q| q.dotted().to_string()).collect());
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.r.error(
            Code::TableNotInSchema,
            span,
            format!("{what} is not in the schema"),
            suggestion(written, &names, "table"),
        );
        false
    }

    /// Reports a column missing from the schema or of the wrong type.
    fn column(&mut self, table: &QualifiedName, column: &str, span: Span, ok: TypeCheck, wanted: &str, what: &str) {
        let Some(schema) = self.schema else { return };
        match schema.column(table, column) {
            None => {
                let names: Vec<&str> = schema.columns(table).map(|c| c.collect()).unwrap_or_default();
                self.r.error(
                    Code::ColumnNotInSchema,
                    span,
                    format!("{what}: table `{}` has no column `{column}`", table.dotted()),
                    suggestion(column, &names, "column"),
                );
            }
            Some(t) if !ok(t) => {
                self.r.error(
                    Code::ColumnType,
                    span,
                    format!(
                        "{what}: column `{column}` of `{}` is {}, rowsec needs {wanted}",
                        table.dotted(),
                        t.describe()
                    ),
                    format!("point it at a column of type {wanted}, or change the column's type"),
                );
            }
            Some(_) => {}
        }
    }
}

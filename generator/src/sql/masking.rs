//! Masked columns (`classes:`): for each protected table with a column of a masked class, a view
//! `<schema>_app.<table>` with every column of the table, where a classed column the reader's
//! roles do not grant (or grant only in a scope the row is not in) reads as its mask, so that
//! `SELECT *` works for everyone.
//!
//! Why the view is not `security_invoker`: the reader has no privilege on a column they lack
//! (SPEC item 7), so a view running with the reader's rights could not read the column to
//! show it to those who hold the class. The view reads the table with its owner's rights (a
//! superuser's: the script's) and keeps the table's row rules by filtering every row with
//! `rowsec_sees_<table>(key)`, a SECURITY INVOKER function that asks the table itself, under
//! the reader's own row-level security, whether the reader sees that key. `security_barrier`
//! keeps the reader's own conditions (a leaky function) from seeing a row before that filter.
//! Writes go through an INSTEAD OF trigger that runs the reader's statement on the table as
//! the reader, so row-level security and column privileges decide as they do on the table.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::model::{Command, Mask, QualifiedName, Spec, Table};
use crate::resolve::{class_access, Grant, Resolver};
use crate::sql::extension_api as api;
use crate::sql::ident::{Ident, Literal};
use crate::sql::template::{self, Value};

/// Masked views of tables in schema `crm` live in `crm_app`.
pub const VIEW_SCHEMA_SUFFIX: &str = "_app";
/// The comment of a schema rowsec made for masked views: only such schemas are cleaned up.
pub const SCHEMA_MARK: &str = "rowsec: schema of masked views (spec: classes)";
/// How the comments of rowsec's masked views and their helpers start.
pub const OBJECT_MARK: &str = "rowsec: masked view of ";
/// The mask's text in front of what `partial` and `email` keep.
pub const HIDDEN: &str = "****";

pub fn view_schema(table: &QualifiedName) -> String {
    format!("{}{VIEW_SCHEMA_SUFFIX}", table.schema)
}

/// `crm_app.contacts` for `crm.contacts`.
pub fn view_name(table: &QualifiedName) -> QualifiedName {
    QualifiedName::new(&view_schema(table), &table.name)
}

/// The row filter of a table's view.
pub fn visible_function(table: &str) -> String {
    format!("rowsec_sees_{table}")
}

/// The INSTEAD OF trigger function of a table's view.
pub fn write_function(table: &str) -> String {
    format!("rowsec_write_{table}")
}

/// Tables with a column whose class `classes` masks, in the spec's order.
pub fn masked_tables(spec: &Spec) -> Vec<&Table> {
    spec.tables.values().filter(|t| t.classes().any(|c| spec.classes.contains_key(c))).collect()
}

/// When the reader sees `class` in clear on a row of `table`: a role with `read` or `write` on
/// it (asked once per statement: an InitPlan), or a role with a scoped read and the row's owner
/// in that scope. `false` when no role may.
pub fn clear_condition(spec: &Spec, table: &Table, class: &str, backend: api::Backend) -> String {
    let has_role = |r: &str| format!("pg_catalog.pg_has_role({}, 'USAGE')", Literal(r));
    let full: Vec<String> =
        spec.roles.values().filter(|r| class_access(r, class).can_read()).map(|r| has_role(&r.name)).collect();
    let mut parts = Vec::new();
    if !full.is_empty() {
        parts.push(format!("(SELECT {})", full.join(" OR ")));
    }
    for role in spec.roles.values() {
        if let Some(scope) = role.scoped_reads.get(class) {
            parts.push(format!(
                "((SELECT {}) AND {})",
                has_role(&role.name),
                api::scope_condition_for(
                    backend,
                    api::Clause::Using,
                    api::Plans::of(&spec.identity),
                    &table.name,
                    *scope,
                    &table.owner
                )
            ));
        }
    }
    if parts.is_empty() {
        "false".to_owned()
    } else {
        parts.join(" OR ")
    }
}

/// What the view shows for a classed column: the value where [`clear_condition`] holds, the
/// class's mask elsewhere (a class `classes` does not name reads as NULL). Functions are
/// schema-qualified and operators avoided: the expression is fixed when the view is created
/// and nobody can put a same-named object in its way.
pub fn column_expression(spec: &Spec, table: &Table, column: &str, class: &str, backend: api::Backend) -> String {
    let clear = clear_condition(spec, table, class, backend);
    let c = Ident(column);
    let mask = spec.classes.get(class).map_or(Mask::Null, |k| k.mask);
    let hidden = Literal(HIDDEN);
    match mask {
        Mask::Null => format!("CASE WHEN {clear} THEN {c} END"),
        Mask::Partial => format!(
            "CASE WHEN {clear} THEN {c}::text WHEN {c} IS NULL THEN NULL \
             WHEN pg_catalog.int4gt(pg_catalog.length({c}::text), 4) THEN pg_catalog.concat({hidden}, pg_catalog.\"right\"({c}::text, 4)) \
             ELSE {hidden} END"
        ),
        Mask::Email => format!(
            "CASE WHEN {clear} THEN {c}::text WHEN {c} IS NULL THEN NULL \
             WHEN pg_catalog.int4gt(pg_catalog.strpos({c}::text, '@'), 0) THEN pg_catalog.concat({hidden}, '@', pg_catalog.split_part({c}::text, '@', -1)) \
             ELSE {hidden} END"
        ),
    }
}

/// The script's masked-view section: always the cleanup (so that a spec dropping `classes:`
/// removes the views), then one block per masked table and a notice.
pub fn section<'s>(s: &mut String, spec: &'s Spec, resolver: &Resolver<'s>, backend: api::Backend) {
    let tables = masked_tables(spec);
    let views: Vec<String> = tables.iter().map(|t| view_name(&t.name).to_string()).collect();
    let schemas: BTreeSet<String> = tables.iter().map(|t| view_schema(&t.name)).collect();
    let pattern = format!("{OBJECT_MARK}%");
    s.push('\n');
    template::MASKED_CLEANUP.render(
        s,
        &[
            ("schema_mark", Value::Literal(SCHEMA_MARK)),
            ("object_mark", Value::Literal(&pattern)),
            ("view_schemas", Value::TextArray(schemas.iter().map(String::as_str).collect())),
            ("views", Value::TextArray(views.iter().map(String::as_str).collect())),
        ],
    );
    let mut grants = Vec::new();
    for table in &tables {
        grants.clear();
        resolver.table_grants(table, &mut grants);
        view(s, spec, table, &grants, backend);
    }
    if !tables.is_empty() {
        s.push('\n');
        template::MASKED_SUMMARY.render(s, &[("views", Value::TextArray(views.iter().map(String::as_str).collect()))]);
    }
}

fn view(s: &mut String, spec: &Spec, table: &Table, grants: &[Grant<'_>], backend: api::Backend) {
    let t = &table.name;
    let _ = writeln!(s, "\n-- Masked view {} of {} (spec: classes)", view_name(t).dotted(), t.dotted());
    let classed: Vec<&str> = table.columns.keys().map(String::as_str).collect();
    let exprs: Vec<String> =
        table.columns.iter().map(|(column, class)| column_expression(spec, table, column, class, backend)).collect();
    let roles_for = |command: Command| -> Vec<&str> {
        let set: BTreeSet<&str> = grants.iter().filter(|g| g.command == command).map(|g| g.role).collect();
        set.into_iter().collect()
    };
    let idents = |roles: Vec<&str>| roles.iter().map(|r| Ident(r).to_string()).collect::<Vec<_>>().join(", ");
    let writers: Vec<String> = [Command::Insert, Command::Update, Command::Delete].map(|c| idents(roles_for(c))).into();
    let (vs, visible, write) = (view_schema(t), visible_function(&t.name), write_function(&t.name));
    let comment = format!("{OBJECT_MARK}{} (spec: classes)", t.dotted());
    template::MASKED_VIEW.render(
        s,
        &[
            ("table", Value::Regclass(t)),
            ("view_schema", Value::Literal(&vs)),
            ("view", Value::Literal(&t.name)),
            ("key", Value::Literal(&table.key)),
            ("classed", Value::Literals(classed)),
            ("exprs", Value::Literals(exprs.iter().map(String::as_str).collect())),
            ("visible_fn", Value::Literal(&visible)),
            ("write_fn", Value::Literal(&write)),
            ("schema_mark", Value::Literal(SCHEMA_MARK)),
            ("comment", Value::Literal(&comment)),
            ("readers", Value::IdentListLiteral(roles_for(Command::Select))),
            ("writers", Value::Literals(writers.iter().map(String::as_str).collect())),
        ],
    );
}

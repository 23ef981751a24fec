//! SQL kept as SQL: the PL/pgSQL blocks of the script live in `sql/compile/*.sql` at the top of
//! the repository, readable and lintable, with named placeholders (`{{spec_roles}}`) filled by
//! typed [`Value`]s that print through the one quoting routine (`ident.rs`).
//!
//! Template syntax: `{{name}}` (lower case letters, digits, `_`) is replaced by the value of
//! that name; a line starting with `--!` documents the template and is left out of the script.
//! A placeholder without a value, or a value the template does not use, is an error
//! ([`TemplateError`]): a bug that every test compiling a spec would catch.

use std::borrow::Cow;
use std::fmt::{self, Write};
use std::sync::OnceLock;

use crate::model::QualifiedName;
use crate::names::DO_BLOCK_TAG;
use crate::sql::ident::{Ident, Literal};
use crate::sql::statement::Quoted;

/// Creates the spec's group roles, or fixes their attributes and comments.
pub static ROLES: Template = Template::new("compile/roles.sql", include_str!("../../../sql/compile/roles.sql"));
/// Compare before touch: the functions each table's block uses to skip, release and seal it.
pub static TABLE_FUNCTIONS: Template =
    Template::new("compile/table_functions.sql", include_str!("../../../sql/compile/table_functions.sql"));
/// Removes what rowsec created for tables the spec no longer has, and schema access it no longer gives.
pub static CONVERGE: Template =
    Template::new("compile/converge.sql", include_str!("../../../sql/compile/converge.sql"));
/// Drops (or gives back) the roles rowsec owns that the spec no longer has.
pub static DROP_ROLES: Template =
    Template::new("compile/drop_roles.sql", include_str!("../../../sql/compile/drop_roles.sql"));
/// Refuses to go on while PUBLIC holds privileges on a table with classed columns.
pub static PUBLIC_CHECK: Template =
    Template::new("compile/public_check.sql", include_str!("../../../sql/compile/public_check.sql"));
/// Stops the script when a classed column does not exist (no `--schema`).
pub static CLASSED_COLUMNS: Template =
    Template::new("compile/classed_columns.sql", include_str!("../../../sql/compile/classed_columns.sql"));
/// Column-level grants whose column list is read from the catalog (no `--schema`).
pub static COLUMN_GRANTS: Template =
    Template::new("compile/column_grants.sql", include_str!("../../../sql/compile/column_grants.sql"));
/// USAGE on the sequences behind a table's serial columns, for the roles that insert.
pub static SEQUENCE_GRANTS: Template =
    Template::new("compile/sequence_grants.sql", include_str!("../../../sql/compile/sequence_grants.sql"));

/// Masked views (spec: classes): removes rowsec's earlier ones and their helpers.
pub static MASKED_CLEANUP: Template =
    Template::new("compile/masked_cleanup.sql", include_str!("../../../sql/compile/masked_cleanup.sql"));
/// Masked views (spec: classes): one table's view, row filter and INSTEAD OF trigger.
pub static MASKED_VIEW: Template =
    Template::new("compile/masked_view.sql", include_str!("../../../sql/compile/masked_view.sql"));
/// Masked views (spec: classes): what was created and changed.
pub static MASKED_SUMMARY: Template =
    Template::new("compile/masked_summary.sql", include_str!("../../../sql/compile/masked_summary.sql"));

/// Takes the state the summary compares, before the script changes anything.
pub static STATE: Template = Template::new("compile/state.sql", include_str!("../../../sql/compile/state.sql"));
/// Says what the script created, changed and removed.
pub static SUMMARY: Template = Template::new("compile/summary.sql", include_str!("../../../sql/compile/summary.sql"));

/// The `rowsec` schema in SQL and PL/pgSQL (`--backend sql`), instead of `CREATE EXTENSION`.
pub static SQL_BACKEND: Template = Template::new("backend/rowsec.sql", include_str!("../../../sql/backend/rowsec.sql"));

/// Every template, for tests.
pub static ALL: [&Template; 14] = [
    &SQL_BACKEND,
    &ROLES,
    &TABLE_FUNCTIONS,
    &CONVERGE,
    &DROP_ROLES,
    &PUBLIC_CHECK,
    &CLASSED_COLUMNS,
    &COLUMN_GRANTS,
    &SEQUENCE_GRANTS,
    &MASKED_CLEANUP,
    &MASKED_VIEW,
    &MASKED_SUMMARY,
    &STATE,
    &SUMMARY,
];

/// Appends `DO $rowsec$ BEGIN <body> END $rowsec$;`, with another tag should `body` contain
/// that one (a spec name or an `always` rule may), so nothing in the body can end the block.
/// Statements in a DO block print no command tag: a table's dozens of statements are one `DO`.
pub fn do_block(out: &mut String, body: &str) {
    let mut tag = Cow::Borrowed(DO_BLOCK_TAG);
    let mut attempt = 0;
    while body.contains(&*tag) {
        attempt += 1;
        tag = Cow::Owned(format!("${}{attempt}$", DO_BLOCK_TAG.trim_matches('$')));
    }
    for part in ["DO ", &tag, "\nBEGIN\n", body, "END\n", &tag, ";\n"] {
        out.push_str(part);
    }
}

/// A value for a placeholder. Each prints as SQL through [`Ident`] or [`Literal`].
#[derive(Debug, Clone)]
pub enum Value<'a> {
    /// `schema.name`, both quoted as identifiers: a table or function.
    Name(&'a QualifiedName),
    /// `'text'`
    Literal(&'a str),
    /// `'crm.accounts'::regclass`
    Regclass(&'a QualifiedName),
    /// `'a', 'b'`: the items of an `ARRAY[...]` the template writes.
    Literals(Vec<&'a str>),
    /// `ARRAY['a', 'b']::text[]`
    TextArray(Vec<&'a str>),
    /// `true` or `false`
    Bool(bool),
    /// `ARRAY['crm.a', 'crm.b']::regclass[]`
    RegclassArray(Vec<&'a QualifiedName>),
    /// One literal holding quoted identifiers, comma-separated: `'a, "B"'`, for `format('%s')`.
    IdentListLiteral(Vec<&'a str>),
    /// The same from identifiers quoted already (a large script names each role many times).
    QuotedListLiteral(Vec<&'a Quoted>),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T>(f: &mut fmt::Formatter<'_>, items: &[T], item: impl Fn(&T) -> String) -> fmt::Result {
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                f.write_str(&item(x))?;
            }
            Ok(())
        }
        let regclass = |q: &&QualifiedName| format!("{}::regclass", Literal(&q.to_string()));
        match self {
            Value::Name(q) => write!(f, "{q}"),
            Value::Literal(s) => write!(f, "{}", Literal(s)),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Regclass(q) => f.write_str(&regclass(q)),
            Value::Literals(items) => list(f, items, |s| Literal(s).to_string()),
            Value::TextArray(items) => {
                f.write_str("ARRAY[")?;
                list(f, items, |s| Literal(s).to_string())?;
                f.write_str("]::text[]")
            }
            Value::RegclassArray(items) => {
                f.write_str("ARRAY[")?;
                list(f, items, |q| Literal(&q.to_string()).to_string())?;
                f.write_str("]::regclass[]")
            }
            Value::IdentListLiteral(items) => {
                let mut idents = String::new();
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        idents.push_str(", ");
                    }
                    let _ = write!(idents, "{}", Ident(s));
                }
                write!(f, "{}", Literal(&idents))
            }
            Value::QuotedListLiteral(items) => {
                let mut idents = String::new();
                for (i, q) in items.iter().enumerate() {
                    if i > 0 {
                        idents.push_str(", ");
                    }
                    let _ = write!(idents, "{q}");
                }
                write!(f, "{}", Literal(&idents))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("sql/{template}: `{{{{` at byte {at} is not closed by `}}}}`")]
    Unclosed { template: &'static str, at: usize },
    #[error("sql/{template}: `{{{{{name}}}}}` is not a placeholder name (lower case letters, digits, _)")]
    BadName { template: &'static str, name: &'static str },
    #[error("sql/{template}: no value for `{{{{{name}}}}}`")]
    Missing { template: &'static str, name: &'static str },
    #[error("sql/{template}: a value for `{name}`, which the template does not use")]
    Unknown { template: &'static str, name: String },
}

#[derive(Debug)]
enum Part {
    Text(&'static str),
    Placeholder(&'static str),
}

pub struct Template {
    /// The file, under `sql/`.
    name: &'static str,
    text: &'static str,
    parts: OnceLock<Result<Vec<Part>, TemplateError>>,
    /// Whether the text has dollar-quoted DO blocks.
    has_blocks: OnceLock<bool>,
}

impl Template {
    pub const fn new(name: &'static str, text: &'static str) -> Template {
        Template { name, text, parts: OnceLock::new(), has_blocks: OnceLock::new() }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Parsed once, on first use.
    fn parts(&self) -> Result<&[Part], TemplateError> {
        self.parts.get_or_init(|| parse(self.name, self.text)).as_deref().map_err(Clone::clone)
    }

    /// The placeholder names the template uses, in order of first use.
    pub fn placeholders(&self) -> Result<Vec<&'static str>, TemplateError> {
        let mut names = Vec::new();
        for part in self.parts()? {
            if let Part::Placeholder(name) = part {
                if !names.contains(name) {
                    names.push(*name);
                }
            }
        }
        Ok(names)
    }

    /// Appends the template with its placeholders filled.
    ///
    /// # Panics
    /// When the template and `values` disagree (see [`Self::try_render`]): a bug in rowsec.
    pub fn render(&self, out: &mut String, values: &[(&str, Value<'_>)]) {
        if let Err(e) = self.try_render(out, values) {
            panic!("{e}");
        }
    }

    /// Appends the template with its placeholders filled; on an error, appends nothing.
    ///
    /// The template's DO blocks are dollar-quoted with [`DO_BLOCK_TAG`]; should a value contain
    /// that tag (a spec name may), the blocks get another tag, so no value can end them.
    pub fn try_render(&self, out: &mut String, values: &[(&str, Value<'_>)]) -> Result<(), TemplateError> {
        let parts = self.parts()?;
        assert!(values.len() <= 64, "more values than this renderer tracks");
        let start = out.len();
        let quoted_blocks = self.has_blocks.get_or_init(|| self.text.contains(DO_BLOCK_TAG));
        let mut tag = Cow::Borrowed(DO_BLOCK_TAG);
        let mut attempt = 0;
        loop {
            match self.write(out, parts, values, quoted_blocks.then_some(&*tag)) {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    out.truncate(start);
                    // The next tag that the template's own text does not contain either.
                    loop {
                        attempt += 1;
                        tag = Cow::Owned(format!("${}{attempt}$", DO_BLOCK_TAG.trim_matches('$')));
                        if !self.text.contains(&*tag) {
                            break;
                        }
                    }
                }
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            }
        }
    }

    /// `Ok(false)` when a value contains `tag`.
    fn write(
        &self,
        out: &mut String,
        parts: &[Part],
        values: &[(&str, Value<'_>)],
        tag: Option<&str>,
    ) -> Result<bool, TemplateError> {
        let mut used: u64 = 0;
        for part in parts {
            match (part, tag) {
                (Part::Text(text), Some(tag)) if tag != DO_BLOCK_TAG => out.push_str(&text.replace(DO_BLOCK_TAG, tag)),
                (Part::Text(text), _) => out.push_str(text),
                (Part::Placeholder(name), _) => {
                    let Some(i) = values.iter().position(|(n, _)| n == name) else {
                        return Err(TemplateError::Missing { template: self.name, name });
                    };
                    used |= 1 << i;
                    let before = out.len();
                    let _ = write!(out, "{}", values[i].1);
                    // A cheap look for `$` first: values are short and rarely hold one.
                    let value = &out[before..];
                    if tag.is_some_and(|tag| value.contains('$') && value.contains(tag)) {
                        return Ok(false);
                    }
                }
            }
        }
        if let Some((name, _)) = values.iter().enumerate().find(|(i, _)| used & (1 << i) == 0).map(|(_, v)| v) {
            return Err(TemplateError::Unknown { template: self.name, name: (*name).to_owned() });
        }
        Ok(true)
    }
}

fn parse(template: &'static str, text: &'static str) -> Result<Vec<Part>, TemplateError> {
    let mut parts = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let line_start = offset;
        offset += line.len();
        if line.starts_with("--!") {
            continue;
        }
        let mut rest = line;
        let mut at = line_start;
        while let Some(open) = rest.find("{{") {
            let Some(close) = rest[open..].find("}}") else {
                return Err(TemplateError::Unclosed { template, at: at + open });
            };
            let name = &rest[open + 2..open + close];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                return Err(TemplateError::BadName { template, name });
            }
            if open > 0 {
                parts.push(Part::Text(&rest[..open]));
            }
            parts.push(Part::Placeholder(name));
            rest = &rest[open + close + 2..];
            at += open + close + 2;
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest));
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &'static str, values: &[(&str, Value<'_>)]) -> Result<String, TemplateError> {
        let mut out = String::from("before;");
        let result = Template::new("test.sql", text).try_render(&mut out, values);
        match result {
            Ok(()) => Ok(out.strip_prefix("before;").unwrap().to_owned()),
            Err(e) => {
                assert_eq!(out, "before;", "an error appends nothing");
                Err(e)
            }
        }
    }

    #[test]
    fn placeholders_are_filled_and_template_comments_dropped() {
        let t = "--! a comment for readers of the file\nSELECT {{a}} FROM {{b}}; -- {{a}}\n";
        let b = QualifiedName::new("My Schema", "t");
        let out = render(t, &[("a", Value::Literal("it's")), ("b", Value::Name(&b))]).unwrap();
        assert_eq!(out, "SELECT 'it''s' FROM \"My Schema\".t; -- 'it''s'\n");
    }

    #[test]
    fn a_missing_value_is_an_error() {
        let e = render("SELECT {{a}}, {{b}};", &[("a", Value::Literal("x"))]).unwrap_err();
        assert_eq!(e, TemplateError::Missing { template: "test.sql", name: "b" });
        assert_eq!(e.to_string(), "sql/test.sql: no value for `{{b}}`");
    }

    #[test]
    fn a_value_the_template_does_not_use_is_an_error() {
        let e = render("SELECT {{a}};", &[("a", Value::Literal("x")), ("c", Value::Literal("y"))]).unwrap_err();
        assert_eq!(e, TemplateError::Unknown { template: "test.sql", name: "c".into() });
    }

    #[test]
    fn malformed_placeholders_are_errors() {
        let e = render("SELECT 1;\nSELECT {{a;", &[]).unwrap_err();
        assert_eq!(e, TemplateError::Unclosed { template: "test.sql", at: 17 });
        let e = render("SELECT {{Bad Name}};", &[]).unwrap_err();
        assert!(matches!(e, TemplateError::BadName { name: "Bad Name", .. }), "{e}");
        // Single braces are SQL (an empty array literal), not placeholders.
        assert_eq!(render("SELECT '{}'::text[];", &[]).unwrap(), "SELECT '{}'::text[];");
    }

    #[test]
    fn values_print_through_the_quoting_routine() {
        let t = QualifiedName::new("crm", "Deals");
        let show = |v: Value<'_>| v.to_string();
        assert_eq!(show(Value::Regclass(&t)), "'crm.\"Deals\"'::regclass");
        assert_eq!(show(Value::Literals(vec!["a", "b'c"])), "'a', 'b''c'");
        assert_eq!(show(Value::TextArray(vec!["a", "B"])), "ARRAY['a', 'B']::text[]");
        assert_eq!(show(Value::TextArray(vec![])), "ARRAY[]::text[]");
        assert_eq!(show(Value::RegclassArray(vec![&t, &t])), "ARRAY['crm.\"Deals\"', 'crm.\"Deals\"']::regclass[]");
        assert_eq!(show(Value::IdentListLiteral(vec!["a", "Sales Rep", "it's"])), "'a, \"Sales Rep\", \"it''s\"'");
    }

    #[test]
    fn a_value_containing_the_block_tag_cannot_end_the_block() {
        let t = "DO $rowsec$ BEGIN PERFORM {{a}}; END $rowsec$;";
        let out = render(t, &[("a", Value::Literal("x$rowsec$; DROP TABLE t; --"))]).unwrap();
        assert_eq!(out, "DO $rowsec1$ BEGIN PERFORM 'x$rowsec$; DROP TABLE t; --'; END $rowsec1$;");
        let out = render(t, &[("a", Value::Literal("$rowsec$ $rowsec1$"))]).unwrap();
        assert_eq!(out, "DO $rowsec2$ BEGIN PERFORM '$rowsec$ $rowsec1$'; END $rowsec2$;");
        // Without a block, nothing to protect.
        assert_eq!(render("SELECT {{a}};", &[("a", Value::Literal("$rowsec$"))]).unwrap(), "SELECT '$rowsec$';");
    }

    #[test]
    fn every_template_parses_and_quotes_its_blocks_with_the_tag() {
        for t in ALL {
            let names = t.placeholders().unwrap_or_else(|e| panic!("{e}"));
            assert!(!names.is_empty(), "{}", t.name());
            let opened = t.text.matches("DO $rowsec$\n").count();
            assert_eq!(opened, t.text.matches("\n$rowsec$;\n").count(), "{}", t.name());
            // A template without a block of its own is a block inside one `do_block` makes.
            let fragment = opened == 0;
            let fragments: [&Template; 2] = [&SEQUENCE_GRANTS, &COLUMN_GRANTS];
            assert_eq!(fragment, fragments.iter().any(|f| std::ptr::eq(t, *f)), "{}", t.name());
        }
    }
}

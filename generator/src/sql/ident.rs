//! The one quoting routine for everything rowsec writes into SQL.
//!
//! Identifiers are quoted exactly when PostgreSQL's own `quote_ident` would quote them, so the
//! output reads like hand-written SQL and is still safe for any name.

use std::fmt::{self, Write};

/// PostgreSQL 15 keywords that are not UNRESERVED (from src/include/parser/kwlist.h); these
/// must be quoted to be used as identifiers. Sorted for binary search.
const KEYWORDS_NEEDING_QUOTES: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

/// An SQL identifier, displayed quoted when needed.
#[derive(Debug, Clone, Copy)]
pub struct Ident<'a>(pub &'a str);

impl fmt::Display for Ident<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_plain_identifier(self.0) {
            f.write_str(self.0)
        } else {
            f.write_char('"')?;
            write_doubled(f, self.0, '"')?;
            f.write_char('"')
        }
    }
}

/// Writes `s` with every `quote` doubled, without allocating (this runs millions of times for
/// large specs).
fn write_doubled(f: &mut fmt::Formatter<'_>, s: &str, quote: char) -> fmt::Result {
    for (i, part) in s.split(quote).enumerate() {
        if i > 0 {
            f.write_char(quote)?;
            f.write_char(quote)?;
        }
        f.write_str(part)?;
    }
    Ok(())
}

fn is_plain_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && KEYWORDS_NEEDING_QUOTES.binary_search(&s).is_err()
}

/// A string literal: `'it''s'`, or `E'...'` when it holds a backslash so the meaning does not
/// depend on `standard_conforming_strings`.
#[derive(Debug, Clone, Copy)]
pub struct Literal<'a>(pub &'a str);

impl fmt::Display for Literal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.contains('\\') {
            f.write_str("E'")?;
            for c in self.0.chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '\'' => f.write_str("''")?,
                    c => f.write_char(c)?,
                }
            }
            f.write_char('\'')
        } else {
            f.write_char('\'')?;
            write_doubled(f, self.0, '\'')?;
            f.write_char('\'')
        }
    }
}

/// Text inside a `--` comment: a line break would end the comment and let the rest of a name
/// run as SQL, so line breaks print as spaces.
#[derive(Debug, Clone, Copy)]
pub struct Comment<T>(pub T);

impl<T: fmt::Display> fmt::Display for Comment<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct OneLine<'a, 'b>(&'a mut fmt::Formatter<'b>);
        impl Write for OneLine<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                // PostgreSQL ends a `--` comment at either.
                for (i, part) in s.split(['\n', '\r']).enumerate() {
                    if i > 0 {
                        self.0.write_char(' ')?;
                    }
                    self.0.write_str(part)?;
                }
                Ok(())
            }
        }
        write!(OneLine(f), "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_list_is_sorted_for_binary_search() {
        assert!(KEYWORDS_NEEDING_QUOTES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn plain_names_stay_unquoted() {
        assert_eq!(Ident("sales_rep").to_string(), "sales_rep");
        assert_eq!(Ident("owner_id2").to_string(), "owner_id2");
    }

    #[test]
    fn keywords_upper_case_and_odd_characters_are_quoted() {
        assert_eq!(Ident("user").to_string(), "\"user\"");
        assert_eq!(Ident("Sales").to_string(), "\"Sales\"");
        assert_eq!(Ident("a b").to_string(), "\"a b\"");
        assert_eq!(Ident("1st").to_string(), "\"1st\"");
        assert_eq!(Ident("x\"; DROP TABLE t; --").to_string(), "\"x\"\"; DROP TABLE t; --\"");
    }

    #[test]
    fn comments_stay_on_one_line() {
        assert_eq!(Comment("a\nDROP TABLE t;\r\nb").to_string(), "a DROP TABLE t;  b");
        assert_eq!(Comment(Ident("x\ny")).to_string(), "\"x y\"");
    }

    #[test]
    fn literals_double_quotes_and_escape_backslashes() {
        assert_eq!(Literal("it's").to_string(), "'it''s'");
        assert_eq!(Literal("a\\b'").to_string(), "E'a\\\\b'''");
    }
}

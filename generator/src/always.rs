//! Checks a table's `always` rule: a boolean SQL expression over the table's own columns that
//! PostgreSQL can evaluate for every row and command, with no subquery and no function whose
//! result could change between two evaluations.

use std::ops::ControlFlow;

use sqlparser::ast::{BinaryOperator, DataType, Expr, UnaryOperator};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::codes::Code;
use crate::schema::ColumnType;

/// Functions that are IMMUTABLE in PostgreSQL 15 and useful in a row rule.
const IMMUTABLE_FUNCTIONS: &[&str] = &[
    "abs",
    "btrim",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "coalesce",
    "floor",
    "greatest",
    "least",
    "left",
    "length",
    "lower",
    "ltrim",
    "mod",
    "nullif",
    "octet_length",
    "right",
    "round",
    "rtrim",
    "sign",
    "starts_with",
    "trunc",
    "upper",
];
const BOOLEAN_FUNCTIONS: &[&str] = &["starts_with"];

/// Words PostgreSQL parses as functions of the session, not as columns.
const SESSION_VALUES: &[&str] = &[
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "localtime",
    "localtimestamp",
    "session_user",
    "user",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: Code,
    pub message: String,
    pub hint: String,
}

fn problem(code: Code, message: impl Into<String>, hint: impl Into<String>) -> Problem {
    Problem { code, message: message.into(), hint: hint.into() }
}

/// What we know of the table's columns: `None` when no `--schema` was given.
pub type Columns<'a> = Option<&'a [(String, ColumnType)]>;

/// Returns every problem with the expression; an empty list means it is acceptable.
/// How deeply `always` may nest parentheses and brackets. sqlparser backtracks inside nested
/// calls, doubling its work at each level: 16 nested calls took 2 s and a 111-byte input found by
/// fuzzing over a minute, so deeper expressions are refused before they are parsed.
pub const MAX_NESTING: usize = 10;
/// How many dots a qualified name in `always` may have (`schema.table.column`): sqlparser's
/// work likewise grows exponentially with the length of a dotted chain ending in `*` (20 dots
/// took 3 s, 35 over two minutes: fuzzing found it).
pub const MAX_DOTS: usize = 2;

pub fn check(sql: &str, columns: Columns<'_>) -> Vec<Problem> {
    let dialect = PostgreSqlDialect {};
    // Tokenizing is linear; the depth is counted on tokens so that quoted parentheses do not count.
    if let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() {
        let (mut depth, mut deepest) = (0usize, 0usize);
        let (mut dots, mut longest) = (0usize, 0usize);
        for t in tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))) {
            // A dotted chain is names and `*` joined by dots; anything else ends it.
            match t {
                Token::Period => {
                    dots += 1;
                    longest = longest.max(dots);
                }
                Token::Word(_) | Token::Mul => {}
                _ => dots = 0,
            }
            match t {
                Token::LParen | Token::LBracket => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                Token::RParen | Token::RBracket => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if longest > MAX_DOTS {
            return vec![problem(
                Code::AlwaysSyntax,
                format!(
                    "`always` has a name with {longest} dots; rowsec accepts at most {MAX_DOTS} (schema.table.column)"
                ),
                "name a column by itself, or as table.column",
            )];
        }
        if deepest > MAX_NESTING {
            return vec![problem(
                Code::AlwaysSyntax,
                format!("`always` nests parentheses {deepest} deep; rowsec accepts at most {MAX_NESTING}"),
                "write a flatter condition (AND / OR of simple tests), or move the logic into an IMMUTABLE function",
            )];
        }
    }
    let mut parser = match Parser::new(&dialect).try_with_sql(sql) {
        Ok(p) => p,
        Err(e) => {
            return vec![problem(
                Code::AlwaysSyntax,
                format!("`always` is not valid SQL: {e}"),
                "write a boolean expression such as `NOT voided`",
            )]
        }
    };
    let expr = match parser.parse_expr() {
        Ok(e) => e,
        Err(e) => {
            return vec![problem(
                Code::AlwaysSyntax,
                format!("`always` is not valid SQL: {e}"),
                "write a boolean expression such as `NOT voided`",
            )]
        }
    };
    if parser.peek_token().token != Token::EOF {
        return vec![problem(
            Code::AlwaysNotOneExpression,
            format!("`always` must be one expression, found more after `{expr}`"),
            "combine conditions with AND / OR; statements and `;` are not allowed",
        )];
    }

    let mut problems = Vec::new();
    let _ = sqlparser::ast::visit_expressions(&expr, |e| {
        inspect(e, columns, &mut problems);
        ControlFlow::<()>::Continue(())
    });
    if problems.is_empty() && !is_boolean(&expr, columns) {
        problems.push(problem(
            Code::AlwaysNotBoolean,
            format!("`always` must be a boolean condition, `{expr}` is not"),
            "compare or test a column, e.g. `NOT voided` or `status <> 'archived'`",
        ));
    }
    problems
}

fn inspect(e: &Expr, columns: Columns<'_>, problems: &mut Vec<Problem>) {
    match e {
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
            problems.push(problem(
                Code::AlwaysSubquery,
                "`always` may not contain a subquery",
                "a row rule sees only the row's own columns; move cross-table logic into the table (a column kept by a trigger)",
            ));
        }
        Expr::Function(f) => {
            let name = f.name.to_string().to_lowercase();
            if SESSION_VALUES.contains(&name.as_str()) {
                problems.push(session_value(&name));
            } else if !IMMUTABLE_FUNCTIONS.contains(&name.as_str()) || f.over.is_some() || f.filter.is_some() {
                problems.push(problem(
                    Code::AlwaysFunction,
                    format!("`always` calls `{name}`, which is not known to be immutable"),
                    format!("use only columns, operators and these functions: {}", IMMUTABLE_FUNCTIONS.join(", ")),
                ));
            }
        }
        Expr::CompoundIdentifier(parts) => {
            let text: Vec<_> = parts.iter().map(|p| p.value.as_str()).collect();
            problems.push(problem(
                Code::AlwaysQualifiedColumn,
                format!("`always` names `{}`; only the table's own columns are allowed", text.join(".")),
                format!("write the bare column name `{}`", parts.last().map_or("", |p| p.value.as_str())),
            ));
        }
        Expr::Identifier(ident) => {
            let name = column_name(ident);
            if ident.quote_style.is_none() && SESSION_VALUES.contains(&name.as_str()) {
                problems.push(session_value(&name));
            } else if let Some(cols) = columns {
                if !cols.iter().any(|(c, _)| *c == name) {
                    let names: Vec<&str> = cols.iter().map(|(c, _)| c.as_str()).collect();
                    problems.push(problem(
                        Code::AlwaysUnknownColumn,
                        format!("`always` names column `{name}`, which the table does not have"),
                        crate::diagnostic::suggestion(&name, &names, "column"),
                    ));
                }
            }
        }
        _ => {}
    }
}

fn session_value(name: &str) -> Problem {
    problem(
        Code::AlwaysSessionValue,
        format!("`always` uses `{name}`, which depends on the session, not the row"),
        "`always` is the same rule for everyone; who may see what belongs in roles and scopes",
    )
}

fn column_name(ident: &sqlparser::ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// Whether the expression yields a boolean. A bare column counts when its type is unknown.
fn is_boolean(e: &Expr, columns: Columns<'_>) -> bool {
    use BinaryOperator as B;
    match e {
        Expr::Nested(inner) => is_boolean(inner, columns),
        Expr::BinaryOp { op, .. } => matches!(
            op,
            B::Eq
                | B::NotEq
                | B::Lt
                | B::LtEq
                | B::Gt
                | B::GtEq
                | B::And
                | B::Or
                | B::Xor
                | B::PGRegexMatch
                | B::PGRegexIMatch
                | B::PGRegexNotMatch
                | B::PGRegexNotIMatch
                | B::PGLikeMatch
                | B::PGILikeMatch
                | B::PGNotLikeMatch
                | B::PGNotILikeMatch
                | B::Spaceship
                | B::AtArrow
                | B::ArrowAt
                | B::Question
                | B::QuestionAnd
                | B::QuestionPipe
        ),
        Expr::UnaryOp { op, .. } => matches!(op, UnaryOperator::Not),
        Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsNotTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotFalse(_)
        | Expr::IsUnknown(_)
        | Expr::IsNotUnknown(_)
        | Expr::IsDistinctFrom(..)
        | Expr::IsNotDistinctFrom(..)
        | Expr::InList { .. }
        | Expr::InSubquery { .. }
        | Expr::InUnnest { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::SimilarTo { .. }
        | Expr::AnyOp { .. }
        | Expr::AllOp { .. } => true,
        Expr::Value(v) => matches!(v.value, sqlparser::ast::Value::Boolean(_)),
        Expr::Cast { data_type, .. } => matches!(data_type, DataType::Boolean | DataType::Bool),
        Expr::Function(f) => BOOLEAN_FUNCTIONS.contains(&f.name.to_string().to_lowercase().as_str()),
        Expr::Identifier(ident) => match columns {
            None => true,
            Some(cols) => {
                let name = column_name(ident);
                cols.iter().any(|(c, t)| *c == name && *t == ColumnType::Boolean)
            }
        },
        Expr::Case { conditions, else_result, .. } => {
            conditions.iter().all(|c| is_boolean(&c.result, columns))
                && else_result.as_deref().is_none_or(|e| is_boolean(e, columns))
        }
        _ => false,
    }
}

/// The expression as sqlparser prints it back: what rowsec writes into the policy is exactly
/// what it validated. Only called on expressions [`check`] accepted.
pub fn normalize(sql: &str) -> String {
    let dialect = PostgreSqlDialect {};
    Parser::new(&dialect)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map(|e| e.to_string())
        .unwrap_or_else(|_| sql.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice_columns() -> Vec<(String, ColumnType)> {
        vec![
            ("id".into(), ColumnType::BigInt),
            ("total".into(), ColumnType::Other("numeric(14,2)".into())),
            ("voided".into(), ColumnType::Boolean),
        ]
    }

    #[test]
    fn accepts_the_reference_rule() {
        assert!(check("NOT voided", None).is_empty());
        assert!(check("NOT voided", Some(&invoice_columns())).is_empty());
    }

    #[test]
    fn accepts_comparisons_and_immutable_functions() {
        assert!(check("total >= 0 AND lower(coalesce(NULL, 'x')) <> 'y'", Some(&invoice_columns())).is_empty());
    }

    #[test]
    fn rejects_non_boolean_expressions() {
        let codes = |sql, columns| check(sql, columns).iter().map(|p| p.code).collect::<Vec<_>>();
        assert_eq!(codes("total + 1", None), [Code::AlwaysNotBoolean]);
        assert_eq!(codes("'yes'", None), [Code::AlwaysNotBoolean]);
        assert_eq!(codes("total", Some(&invoice_columns())), [Code::AlwaysNotBoolean]);
    }

    #[test]
    fn rejects_subqueries_volatile_functions_and_session_values() {
        assert_eq!(check("EXISTS (SELECT 1)", None)[0].code, Code::AlwaysSubquery);
        assert_eq!(check("id IN (SELECT 1)", None)[0].code, Code::AlwaysSubquery);
        assert_eq!(check("issued_at < now()", None)[0].code, Code::AlwaysFunction);
        assert_eq!(check("current_user = 'x'", None)[0].code, Code::AlwaysSessionValue);
        assert_eq!(check("crm.invoices.voided", None)[0].code, Code::AlwaysQualifiedColumn);
    }

    #[test]
    fn rejects_unknown_columns_when_the_schema_is_known() {
        let p = check("NOT voidd", Some(&invoice_columns()));
        assert_eq!(p[0].code, Code::AlwaysUnknownColumn);
        assert_eq!(p[0].hint, "did you mean `voided`?");
    }

    #[test]
    fn rejects_trailing_statements_and_garbage() {
        assert_eq!(check("NOT voided; DROP TABLE x", None)[0].code, Code::AlwaysNotOneExpression);
        assert_eq!(check("NOT (", None)[0].code, Code::AlwaysSyntax);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing_and_quoted_parentheses_do_not_count() {
        let nested = |n: usize| format!("{}x{}", "r(nf ~ ".repeat(n), ")".repeat(n));
        // At the limit: parsed (and refused for what it is, not for its depth).
        let at = check(&format!("{} IS NULL", nested(MAX_NESTING)), None);
        assert!(at.iter().all(|p| !p.message.contains("deep")), "{at:?}");
        // Beyond: refused before parsing, naming the depth (parsing 40 levels would not end in
        // the lifetime of this test run).
        let deep = check(&nested(40), None);
        assert_eq!(deep.len(), 1);
        assert_eq!(deep[0].code, Code::AlwaysSyntax);
        assert!(deep[0].message.contains("40 deep"), "{}", deep[0].message);
        // Dotted names: up to schema.table.column; a long chain is refused before parsing.
        assert!(check("crm.invoices.voided", None).iter().all(|p| !p.message.contains("dots")));
        let chain = check(&format!("{}*.", "a.".repeat(35)), None);
        assert_eq!(chain.len(), 1);
        assert!(chain[0].message.contains("36 dots"), "{}", chain[0].message);
        assert!(check("note <> 'a.b.c.d.e'", None).is_empty());
        let quoted = format!("note <> '{}'", "(".repeat(40));
        assert!(check(&quoted, None).is_empty(), "{:?}", check(&quoted, None));
    }
}

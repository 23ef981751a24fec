//! `rowsec preview`: run one query as a person (their login role, and the identity setting when
//! the spec uses one) in a read-only transaction that is rolled back, and print the result as
//! psql's aligned format does.
//!
//! Refused before anything runs: anything but a single query (SELECT, WITH, VALUES, TABLE), and
//! any call of set_config: the connection is a superuser's, and `set_config('role', 'none')`
//! would end the person's role in the middle of the query. The read-only transaction is the
//! second guard against writes.

use postgres::{Client, SimpleQueryMessage};
use rowsec_generator::model::Spec;
use serde::Serialize;
use sqlparser::ast::{visit_expressions, Expr, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::catalog;
use crate::error::{describe, Error, Result};
use crate::people::Directory;

#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub person: i64,
    pub login: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// PostgreSQL's error when it refused the query (the person may not do it).
    pub error: Option<String>,
}

/// Fails unless `sql` is one read-only query without set_config.
pub fn check_read_only(sql: &str) -> Result<()> {
    let refuse = |why: String| Error::BadInput {
        what: format!("preview runs only read-only queries: {why}"),
        fix: "pass one SELECT (or WITH ... SELECT, VALUES, TABLE) in -c".to_owned(),
    };
    let statements =
        Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|e| refuse(format!("cannot parse it ({e})")))?;
    let [statement] = statements.as_slice() else {
        return Err(refuse(format!("{} statements given", statements.len())));
    };
    let Statement::Query(query) = statement else {
        return Err(refuse(format!("`{}` is not a query", first_words(&statement.to_string()))));
    };
    let text = query.to_string().to_ascii_uppercase();
    // Data-modifying WITH (WITH x AS (DELETE ...)) and SELECT ... FOR UPDATE take locks or write.
    for word in
        ["INSERT INTO", "UPDATE ", "DELETE FROM", "FOR UPDATE", "FOR SHARE", "FOR NO KEY", "FOR KEY SHARE", "INTO "]
    {
        if text.contains(word) && !matches!(word, "UPDATE " if !text.contains(" SET ")) {
            return Err(refuse(format!("it contains {}", word.trim())));
        }
    }
    let mut calls_set_config = false;
    let _ = visit_expressions(statement, |e| {
        if let Expr::Function(f) = e {
            if f.name.0.last().is_some_and(|p| p.to_string().trim_matches('"').eq_ignore_ascii_case("set_config")) {
                calls_set_config = true;
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    if calls_set_config {
        return Err(refuse("it calls set_config".to_owned()));
    }
    Ok(())
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

pub fn run(client: &mut Client, spec: &Spec, person: &str, sql: &str) -> Result<Preview> {
    check_read_only(sql)?;
    catalog::require_superuser(client, "act as the person")?;
    let directory = Directory::read(client, spec)?;
    let m = directory.find(person)?.clone();
    let login = m.login.clone().ok_or_else(|| Error::BadInput {
        what: format!("person {} has no login in the directory", m.id),
        fix: "preview someone with a login".to_owned(),
    })?;
    let exists: bool = client
        .query_one("SELECT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = $1)", &[&login])
        .map_err(Error::query("preview: roles"))?
        .get(0);
    if !exists {
        return Err(Error::BadInput {
            what: format!("person {}'s login {login} is not a role of this server", m.id),
            fix: "create the login role, or fix the directory".to_owned(),
        });
    }
    let acting = crate::people::Impersonation::new(client, spec)?;
    let mut tx = client.build_transaction().read_only(true).start().map_err(Error::query("preview: begin"))?;
    acting.enter(&mut tx, m.id, &login, "preview")?;
    let mut preview = Preview { person: m.id, login, columns: Vec::new(), rows: Vec::new(), error: None };
    match tx.simple_query(sql) {
        Ok(messages) => {
            for msg in messages {
                match msg {
                    SimpleQueryMessage::RowDescription(cols) => {
                        preview.columns = cols.iter().map(|c| c.name().to_owned()).collect();
                    }
                    SimpleQueryMessage::Row(row) => {
                        if preview.columns.is_empty() {
                            preview.columns = row.columns().iter().map(|c| c.name().to_owned()).collect();
                        }
                        preview.rows.push((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect());
                    }
                    _ => {}
                }
            }
        }
        Err(e) if e.as_db_error().is_some() => preview.error = Some(describe(&e)),
        Err(e) => return Err(Error::Query { context: "preview: the query".to_owned(), source: e }),
    }
    let _ = tx.rollback();
    Ok(preview)
}

impl Preview {
    /// psql's aligned format: a header, a rule, the rows, "(N rows)".
    pub fn render(&self) -> String {
        if let Some(e) = &self.error {
            return format!("ERROR:  {e}\n");
        }
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                self.rows
                    .iter()
                    .map(|r| r[i].as_deref().unwrap_or("").chars().count())
                    .chain([c.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let numeric: Vec<bool> = (0..self.columns.len())
            .map(|i| {
                !self.rows.is_empty()
                    && self.rows.iter().all(|r| r[i].as_deref().is_none_or(|v| v.parse::<f64>().is_ok()))
            })
            .collect();
        let mut s = String::new();
        let header: Vec<String> = self.columns.iter().zip(&widths).map(|(c, w)| format!("{:^w$}", c, w = *w)).collect();
        // psql pads the header (centred) to the end, but not a last left-aligned value.
        s.push(' ');
        s.push_str(&header.join(" | "));
        s.push_str(" \n");
        s.push_str(&widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("+"));
        s.push('\n');
        for r in &self.rows {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let v = v.as_deref().unwrap_or("");
                    if numeric[i] {
                        format!("{:>w$}", v, w = widths[i])
                    } else if i + 1 == r.len() {
                        // psql does not pad a last left-aligned value (the separator's space stays).
                        v.to_owned()
                    } else {
                        format!("{:<w$}", v, w = widths[i])
                    }
                })
                .collect();
            s.push(' ');
            s.push_str(&cells.join(" | "));
            s.push('\n');
        }
        let n = self.rows.len();
        s.push_str(&format!("({n} row{})\n", if n == 1 { "" } else { "s" }));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_plain_query_is_read_only() {
        for sql in [
            "SELECT name FROM crm.accounts",
            "WITH a AS (SELECT 1 AS x) SELECT x FROM a",
            "VALUES (1)",
            "SELECT current_setting('app.person_id', true)",
        ] {
            assert!(check_read_only(sql).is_ok(), "{sql}");
        }
    }

    #[test]
    fn writes_several_statements_locks_and_set_config_are_refused() {
        for sql in [
            "UPDATE crm.accounts SET name = 'x'",
            "SELECT 1; SELECT 2",
            "WITH d AS (DELETE FROM crm.accounts RETURNING id) SELECT * FROM d",
            "SELECT * FROM crm.accounts FOR UPDATE",
            "SELECT * INTO copy FROM crm.accounts",
            "SELECT pg_catalog.set_config('role', 'none', true)",
            "SET ROLE postgres",
            "not sql at all (",
        ] {
            let e = check_read_only(sql).expect_err(sql).to_string();
            assert!(e.starts_with("preview runs only read-only queries"), "{sql}: {e}");
        }
    }

    #[test]
    fn rows_print_as_psqls_aligned_format() {
        let p = Preview {
            person: 1,
            login: "bob".into(),
            columns: vec!["id".into(), "name".into()],
            rows: vec![vec![Some("7".into()), Some("Globex".into())], vec![Some("12".into()), None]],
            error: None,
        };
        // As psql 15 prints it, down to the space after the last separator.
        assert_eq!(p.render(), " id |  name  \n----+--------\n  7 | Globex\n 12 | \n(2 rows)\n");
    }
}

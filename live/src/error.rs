//! What can go wrong against a live database. Every variant says where and how to fix it; the
//! CLI maps [`Error::is_bad_input`] to exit status 2 and the rest to 3. A query that fails is
//! always an error, never an empty answer.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec file (or its schema) is unreadable or invalid.
    #[error("{0}")]
    Spec(#[from] rowsec_generator::Error),
    /// `--db` (or the PG* environment) is not a connection string.
    #[error("--db {given}: not a PostgreSQL URL or connection string: {reason}\n  fix: pass --db postgresql://USER@HOST:PORT/DATABASE, or set PGHOST, PGPORT, PGUSER and PGDATABASE")]
    BadUrl { given: String, reason: String },
    /// The server cannot be reached or refuses the login.
    #[error("cannot connect to {target}: {reason}\n  fix: {fix}")]
    Connect { target: String, reason: String, fix: String },
    /// The database does not match the spec in a way that makes the command meaningless (no
    /// extension, a spec table missing, a spec role missing, ...).
    #[error("the database does not match the spec: {what}\n  fix: {fix}")]
    Mismatch { what: String, fix: String },
    /// Anything else the user asked for that cannot be (unknown person, a statement that
    /// would write, a missing key, ...).
    #[error("{what}\n  fix: {fix}")]
    BadInput { what: String, fix: String },
    /// Every attempt to take the tables' locks timed out.
    #[error("gave up after {attempts} attempts: {detail}\n  fix: find the long transaction holding a lock on a protected table (pg_stat_activity, pg_locks) or retry with a larger --lock-timeout")]
    LockTimeout { attempts: u32, detail: String },
    /// Another `rowsec apply` holds the advisory lock.
    #[error("another rowsec apply is running on this database (advisory lock {key} is held by process {holder})\n  fix: wait for it to finish, then plan again")]
    Busy { key: i64, holder: String },
    /// A query failed while the command ran.
    #[error("{context}: {}", describe(.source))]
    Query { context: String, source: postgres::Error },
    /// Writing a file the user asked for.
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

impl Error {
    /// Whether the user's input is at fault (exit 2) rather than the run (exit 3).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Error::LockTimeout { .. } | Error::Busy { .. } | Error::Query { .. } | Error::Write { .. })
    }

    pub fn query(context: impl fmt::Display) -> impl FnOnce(postgres::Error) -> Error {
        let context = context.to_string();
        move |source| Error::Query { context, source }
    }
}

/// A database error with its SQLSTATE, detail and hint; otherwise the client's message.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => {
            let mut s = format!("{} (SQLSTATE {})", d.message(), d.code().code());
            if let Some(detail) = d.detail() {
                s.push_str(&format!("\n  detail: {detail}"));
            }
            if let Some(hint) = d.hint() {
                s.push_str(&format!("\n  hint: {hint}"));
            }
            s
        }
        None => {
            // The client's own error hides its cause behind "error connecting to server".
            let mut s = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                s.push_str(&format!(": {c}"));
                cause = c.source();
            }
            s
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

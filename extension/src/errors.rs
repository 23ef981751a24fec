//! Every error rowsec raises carries a SQLSTATE, a message, a detail and a hint, in SQL's words:
//! no Rust `Debug` text and no Rust backtrace ever reaches a client (see
//! [`keep_backtraces_out_of_errors`]).

use pgrx::pg_sys::panic::{CaughtError, ErrorReport, ErrorReportWithLevel};
use pgrx::pg_sys::PgTryBuilder;
use pgrx::prelude::*;
use pgrx::spi::SpiError;
use pgrx::PgSqlErrorCode;
use rowsec_core::diagnostic::Diagnostic;
pub use rowsec_core::diagnostic::HINT_COMPILE;
use std::panic::UnwindSafe;

#[derive(Debug, Clone)]
pub struct RowsecError {
    pub code: PgSqlErrorCode,
    pub message: String,
    pub detail: String,
    pub hint: String,
}

impl RowsecError {
    pub fn new(
        code: PgSqlErrorCode,
        message: impl Into<String>,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        RowsecError { code, message: message.into(), detail: detail.into(), hint: hint.into() }
    }

    pub fn not_configured(detail: impl Into<String>) -> Self {
        RowsecError::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "rowsec is not configured",
            detail,
            HINT_COMPILE,
        )
    }

    pub fn invalid_parameter(message: impl Into<String>, detail: impl Into<String>, hint: impl Into<String>) -> Self {
        RowsecError::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message, detail, hint)
    }

    /// A function argument the core refused (`rowsec.configure`'s identity, `rowsec.share`'s
    /// grantee, access or expiry, a policy function's access): invalid_parameter_value.
    pub fn invalid_argument(e: &impl Diagnostic) -> Self {
        RowsecError::invalid_parameter(e.to_string(), e.detail(), e.hint())
    }

    /// A request the core refused for lack of a right (e.g. more access than the share it derives
    /// from): insufficient_privilege.
    pub fn denied(e: &impl Diagnostic) -> Self {
        RowsecError::insufficient_privilege(e.to_string(), e.detail(), e.hint())
    }

    pub fn insufficient_privilege(
        message: impl Into<String>,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        RowsecError::new(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, message, detail, hint)
    }

    /// A lookup or statement of rowsec's own (`what`) failed without PostgreSQL raising an error:
    /// pgrx's SPI refused a value, a NOT NULL column was NULL, one of rowsec's tables no longer
    /// has the shape rowsec created. Errors PostgreSQL raises itself (a missing relation or
    /// column, a permission error) propagate with their own SQLSTATE and never get here.
    pub fn internal(what: impl Into<String>, cause: impl Cause) -> Self {
        RowsecError::new(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("rowsec: {} failed", what.into()),
            cause.describe(),
            "Check that the rowsec extension's tables are as it created them (\\d rowsec.*); if not, drop and recreate the extension and run the generated script again.",
        )
    }

    fn report(self, level: PgLogLevel) {
        ErrorReport::new(self.code, self.message, "rowsec").set_detail(self.detail).set_hint(self.hint).report(level);
    }

    /// Raises the error as a PostgreSQL ERROR (unwinds; the transaction aborts).
    pub fn raise(self) -> ! {
        self.report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }

    /// Tells the caller (a NOTICE: shown by default, never an error).
    pub fn notice(self) {
        self.report(PgLogLevel::NOTICE);
    }

    /// Writes to the server log only (LOG_SERVER_ONLY): never sent to a client, whatever its
    /// client_min_messages, so one person's query does not show everybody the directory's data
    /// problems.
    pub fn log_server_only(self) {
        self.report(PgLogLevel::LOG_SERVER_ONLY);
    }
}

/// What made a lookup of rowsec's own fail, in words a DBA reads (no Rust types, no `Debug`).
pub trait Cause {
    fn describe(self) -> String;
}

impl Cause for String {
    fn describe(self) -> String {
        self
    }
}

impl Cause for &str {
    fn describe(self) -> String {
        self.to_owned()
    }
}

impl Cause for std::ffi::NulError {
    fn describe(self) -> String {
        format!("the text contains a NUL byte at position {}", self.nul_position())
    }
}

impl Cause for SpiError {
    fn describe(self) -> String {
        use pgrx::datum::TryFromDatumError as D;
        use pgrx::spi::SpiErrorCodes as C;
        match self {
            SpiError::SpiError(code) => {
                let name = match code {
                    C::Connect => "SPI_ERROR_CONNECT",
                    C::Copy => "SPI_ERROR_COPY",
                    C::OpUnknown => "SPI_ERROR_OPUNKNOWN",
                    C::Unconnected => "SPI_ERROR_UNCONNECTED",
                    C::Cursor => "SPI_ERROR_CURSOR",
                    C::Argument => "SPI_ERROR_ARGUMENT",
                    C::Param => "SPI_ERROR_PARAM",
                    C::Transaction => "SPI_ERROR_TRANSACTION",
                    C::NoAttribute => "SPI_ERROR_NOATTRIBUTE",
                    C::NoOutFunc => "SPI_ERROR_NOOUTFUNC",
                    C::TypUnknown => "SPI_ERROR_TYPUNKNOWN",
                    C::RelDuplicate => "SPI_ERROR_REL_DUPLICATE",
                    C::RelNotFound => "SPI_ERROR_REL_NOT_FOUND",
                };
                format!("the SPI call returned {name}")
            }
            SpiError::DatumError(D::IncompatibleTypes { datum_type, rust_oid, .. }) => {
                format!("the value has type {datum_type} where rowsec reads {}", crate::types::type_name(rust_oid))
            }
            SpiError::DatumError(D::NoSuchAttributeNumber(n)) => format!("the result has no column {n}"),
            SpiError::DatumError(D::NoSuchAttributeName(n)) => format!("the result has no column \"{n}\""),
            SpiError::PreparedStatementArgumentMismatch { expected, got } => {
                format!("the statement takes {expected} parameters and rowsec passed {got}")
            }
            SpiError::InvalidPosition => "the result has no such row".into(),
            SpiError::CursorNotFound(name) => format!("there is no cursor \"{name}\""),
            SpiError::NoTupleTable => "the statement returned no rows to read".into(),
        }
    }
}

/// Runs statements of rowsec's own (`f`) and raises a PostgreSQL error they hit again with its
/// SQLSTATE, message and hint, and a detail saying what rowsec was `doing` (e.g. "creating the
/// trigger ... on crm.people"): the client learns which step of a rowsec function failed, not
/// only PostgreSQL's words for it.
pub fn while_doing<R>(doing: &str, f: impl FnOnce() -> R + UnwindSafe) -> R {
    PgTryBuilder::new(f)
        .catch_others(|caught| match caught {
            CaughtError::PostgresError(e) => {
                let detail = match e.detail() {
                    Some(d) => format!("rowsec was {doing}. {d}"),
                    None => format!("rowsec was {doing}."),
                };
                let hint = e.hint().map_or_else(
                    || "Fix the cause above (privileges, the table's kind, event triggers), then run the script generated by `rowsec compile` again.".to_owned(),
                    str::to_owned,
                );
                RowsecError::new(e.sql_error_code(), e.message(), detail, hint).raise()
            }
            other => other.rethrow(),
        })
        .execute()
}

/// Replaces pgrx's panic hook (registered when PostgreSQL loads the library, before `_PG_init`).
///
/// pgrx 0.18 turns a PostgreSQL ERROR met inside Rust (through SPI or any `pg_sys` call) into a
/// Rust panic, and its hook captures a `std::backtrace::Backtrace` for every panic, which pgrx
/// then appends to the DETAIL the client receives. Whether a backtrace is captured depends only on
/// the server's environment (`RUST_BACKTRACE` / `RUST_LIB_BACKTRACE`), so a server started from a
/// developer's shell sent stack frames and source paths to every client whose statement failed
/// inside rowsec. This hook captures nothing for those errors (they carry their own SQLSTATE,
/// message, detail and hint). A real Rust panic, which is a bug, still reaches the client as
/// XX000 with its message, and its location and (when the environment asks for one) backtrace go
/// to the server's stderr, which is the server log.
pub fn keep_backtraces_out_of_errors() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        if payload.is::<CaughtError>() || payload.is::<ErrorReportWithLevel>() || payload.is::<ErrorReport>() {
            return;
        }
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            eprintln!("rowsec: Rust panic{at}: {message}\n{backtrace}");
        } else {
            eprintln!("rowsec: Rust panic{at}: {message}");
        }
    }));
}

/// A value read back through SPI from a table whose column is NOT NULL: an SPI error or a NULL is
/// a failed lookup (`what`), never an answer.
pub fn required<T>(value: pgrx::spi::SpiResult<Option<T>>, what: &str, column: &str) -> Result<T, RowsecError> {
    value
        .map_err(|e| RowsecError::internal(what, format!("column {column}: {}", e.describe())))?
        .ok_or_else(|| RowsecError::internal(what, format!("column {column} is NULL where rowsec never writes a NULL")))
}

/// A nullable column read back through SPI: only the SPI error is a failure.
pub fn nullable<T>(value: pgrx::spi::SpiResult<Option<T>>, what: &str, column: &str) -> Result<Option<T>, RowsecError> {
    value.map_err(|e| RowsecError::internal(what, format!("column {column}: {}", e.describe())))
}

pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, RowsecError> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| e.raise())
    }
}

/// A required argument of a non-STRICT function: NULL raises null_value_not_allowed.
pub fn require<T>(v: Option<T>, what: &str) -> T {
    v.unwrap_or_else(|| {
        RowsecError::new(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{what} must not be NULL"),
            format!("rowsec was called with a NULL {what}."),
            "Pass a value.",
        )
        .raise()
    })
}

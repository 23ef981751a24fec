//! Every error rowsec raises carries a SQLSTATE, a message, a detail and a hint.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use rowsec_core::diagnostic::Diagnostic;
pub use rowsec_core::diagnostic::HINT_COMPILE;

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
    pub fn internal(what: impl Into<String>, cause: impl std::fmt::Display) -> Self {
        RowsecError::new(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("rowsec: {} failed", what.into()),
            cause.to_string(),
            "Check that the rowsec extension's tables are as it created them (\\d rowsec.*); if not, drop and recreate the extension and run the generated script again.",
        )
    }

    /// Raises the error as a PostgreSQL ERROR (unwinds; the transaction aborts).
    pub fn raise(self) -> ! {
        ErrorReport::new(self.code, self.message, "rowsec")
            .set_detail(self.detail)
            .set_hint(self.hint)
            .report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }

    pub fn warn(self) {
        ErrorReport::new(self.code, self.message, "rowsec")
            .set_detail(self.detail)
            .set_hint(self.hint)
            .report(PgLogLevel::WARNING);
    }
}

/// A value read back through SPI from a table whose column is NOT NULL: an SPI error or a NULL is
/// a failed lookup (`what`), never an answer.
pub fn required<T>(value: pgrx::spi::SpiResult<Option<T>>, what: &str, column: &str) -> Result<T, RowsecError> {
    value
        .map_err(|e| RowsecError::internal(what, format!("column {column}: {e}")))?
        .ok_or_else(|| RowsecError::internal(what, format!("column {column} is NULL where rowsec never writes a NULL")))
}

/// A nullable column read back through SPI: only the SPI error is a failure.
pub fn nullable<T>(value: pgrx::spi::SpiResult<Option<T>>, what: &str, column: &str) -> Result<Option<T>, RowsecError> {
    value.map_err(|e| RowsecError::internal(what, format!("column {column}: {e}")))
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

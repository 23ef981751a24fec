//! The protected table registry, `rowsec.protected_tables`: which tables the spec protects, their
//! key and owner columns and whether they may be shared (written by `rowsec.protect_table`), and
//! the owner of a row of such a table.

use crate::catalog;
use crate::errors::{required, OrRaise, RowsecError};
use crate::owner::{extension_owner, AsRole};
use crate::types::{RegClass, Text};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use rowsec_core::config::ColumnRole;

/// Registers (or updates) `tbl`, whose key and owner columns must be bigint.
pub fn register(tbl: pg_sys::Oid, key_column: &str, owner_column: &str, sharing: bool) -> Result<(), RowsecError> {
    bigint_column(tbl, key_column, ColumnRole::Key)?;
    bigint_column(tbl, owner_column, ColumnRole::Owner)?;
    Spi::run_with_args(
        "INSERT INTO rowsec.protected_tables AS p (tbl, key_column, owner_column, sharing) VALUES ($1, $2::pg_catalog.name, $3::pg_catalog.name, $4) \
         ON CONFLICT (tbl) DO UPDATE SET key_column = EXCLUDED.key_column, owner_column = EXCLUDED.owner_column, sharing = EXCLUDED.sharing \
         WHERE (p.key_column, p.owner_column, p.sharing) IS DISTINCT FROM (EXCLUDED.key_column, EXCLUDED.owner_column, EXCLUDED.sharing)",
        &[RegClass(tbl).into(), key_column.into(), owner_column.into(), sharing.into()],
    )
    .map_err(|e| RowsecError::internal("registering the table", e))
}

/// Forgets `tbl` (its shares stay, for the record, but grant nothing without policies).
pub fn forget(tbl: pg_sys::Oid) -> Result<(), RowsecError> {
    Spi::run_with_args(
        "DELETE FROM rowsec.protected_tables WHERE tbl OPERATOR(pg_catalog.=) $1",
        &[RegClass(tbl).into()],
    )
    .map_err(|e| RowsecError::internal("unregistering the table", e))
}

fn bigint_column(tbl: pg_sys::Oid, column: &str, role: ColumnRole) -> Result<(), RowsecError> {
    if catalog::resolve_column(tbl, column, role)?.fits(role) {
        return Ok(());
    }
    Err(RowsecError::new(
        PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
        format!("the {} column \"{column}\" of {} is not bigint", role.as_str(), catalog::relation_name(tbl)),
        "rowsec compares keys and owners as bigint.",
        "Change the column to bigint or choose another column in the spec.",
    ))
}

/// A table registered with `rowsec.protect_table`.
pub struct Protected {
    pub key_column: String,
    pub owner_column: String,
    pub sharing: bool,
}

/// The registry row of `tbl`; `Ok(None)` only when there is none.
pub fn protected(tbl: pg_sys::Oid) -> Result<Option<Protected>, RowsecError> {
    let _owner = AsRole::switch(extension_owner());
    Spi::connect(|c| {
        let what = "looking up the table in rowsec.protected_tables";
        let rows = c
            .select(
                "SELECT key_column::pg_catalog.text, owner_column::pg_catalog.text, sharing FROM rowsec.protected_tables WHERE tbl OPERATOR(pg_catalog.=) $1",
                Some(1),
                &[RegClass(tbl).into()],
            )
            .map_err(|e| RowsecError::internal(what, e))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let row = rows.first();
        Ok(Some(Protected {
            key_column: required(row.get::<Text>(1), what, "key_column")?.0,
            owner_column: required(row.get::<Text>(2), what, "owner_column")?.0,
            sharing: required(row.get::<bool>(3), what, "sharing")?,
        }))
    })
}

/// The owner of row `key` of `tbl` under the statement's snapshot, read with the extension's
/// rights (no recursion into the caller's policies). `Ok(None)`: the table is not registered,
/// the row does not exist or its owner is NULL.
pub fn row_owner(tbl: pg_sys::Oid, key: i64) -> Result<Option<i64>, RowsecError> {
    let Some(p) = protected(tbl)? else { return Ok(None) };
    // Registered columns may have been renamed or dropped since protect_table: say so plainly.
    catalog::resolve_column(tbl, &p.key_column, ColumnRole::Key)?;
    catalog::resolve_column(tbl, &p.owner_column, ColumnRole::Owner)?;
    let q = format!(
        "SELECT {}::pg_catalog.int8 FROM {} WHERE {} OPERATOR(pg_catalog.=) $1",
        pgrx::spi::quote_identifier(&p.owner_column),
        catalog::relation_name(tbl),
        pgrx::spi::quote_identifier(&p.key_column),
    );
    let _owner = AsRole::switch(extension_owner());
    select_int8_read_only(&q, key)
}

/// Runs a one-parameter query returning one int8 in SPI read-only mode, i.e. under the current
/// statement's snapshot without advancing the command counter (pgrx's `select` goes read-write
/// once anything in the transaction wrote through SPI, which would be wrong inside WITH CHECK).
/// `Ok(None)`: no row, or NULL.
pub(crate) fn select_int8_read_only(query: &str, param: i64) -> Result<Option<i64>, RowsecError> {
    let what = "reading the row's owner";
    let query = std::ffi::CString::new(query).map_err(|e| RowsecError::internal(what, e))?;
    Spi::connect(|_client| unsafe {
        let mut argtypes = [pg_sys::INT8OID];
        let mut values = [pg_sys::Datum::from(param)];
        // An ERROR inside (e.g. a permission error) propagates with its own SQLSTATE.
        let status = pg_sys::SPI_execute_with_args(
            query.as_ptr(),
            1,
            argtypes.as_mut_ptr(),
            values.as_mut_ptr(),
            std::ptr::null(),
            true,
            1,
        );
        let table = pg_sys::SPI_tuptable;
        if status != pg_sys::SPI_OK_SELECT as i32 || table.is_null() {
            return Err(RowsecError::internal(what, format!("SPI_execute_with_args returned {status}")));
        }
        if (*table).numvals == 0 {
            return Ok(None);
        }
        let mut isnull = false;
        let d = pg_sys::SPI_getbinval(*(*table).vals, (*table).tupdesc, 1, &mut isnull);
        Ok((!isnull).then(|| d.value() as i64))
    })
}

/// The registry row of a table that allows sharing, or object_not_in_prerequisite_state.
pub fn sharing_table(tbl: pg_sys::Oid) -> Protected {
    match protected(tbl).or_raise() {
        Some(p) if p.sharing => p,
        _ => not_sharing(tbl),
    }
}

pub fn not_sharing(tbl: pg_sys::Oid) -> ! {
    RowsecError::new(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("{} does not allow sharing", catalog::relation_name(tbl)),
        "The table is not registered in rowsec.protected_tables with sharing = true.",
        "Set `sharing: true` for the table in the spec and run the script generated by `rowsec compile`.",
    )
    .raise()
}

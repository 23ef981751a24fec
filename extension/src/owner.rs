//! Statements rowsec runs as the extension's owner, who alone may read and write rowsec's tables:
//! the writes of `share`/`unshare` and the reads of the protected table registry.

use crate::errors::{required, OrRaise, RowsecError};
use pgrx::prelude::*;

/// Runs a block as another role with `search_path = pg_catalog, pg_temp`, as a SECURITY DEFINER
/// function would: the caller's search path must not steer what the owner's statements resolve.
/// The previous user, security context and settings come back on drop (and PostgreSQL's own
/// (sub)transaction abort restores them on error).
pub struct AsRole {
    user: pg_sys::Oid,
    context: i32,
    guc_nest_level: i32,
}

impl AsRole {
    pub fn switch(to: pg_sys::Oid) -> AsRole {
        let (mut user, mut context) = (pg_sys::InvalidOid, 0);
        unsafe {
            pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
            pg_sys::SetUserIdAndSecContext(to, context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32);
            let guc_nest_level = pg_sys::NewGUCNestLevel();
            pg_sys::set_config_option(
                c"search_path".as_ptr(),
                c"pg_catalog, pg_temp".as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
            AsRole { user, context, guc_nest_level }
        }
    }
}

impl Drop for AsRole {
    fn drop(&mut self) {
        unsafe {
            // While unwinding from an ERROR, abort processing restores the settings.
            if !std::thread::panicking() {
                pg_sys::AtEOXact_GUC(true, self.guc_nest_level);
            }
            pg_sys::SetUserIdAndSecContext(self.user, self.context);
        }
    }
}

/// The role that owns the extension (and so its tables).
pub fn extension_owner() -> pg_sys::Oid {
    // Read-only SPI: this also runs inside UPDATE ... WITH CHECK, where a command counter
    // increment would be wrong.
    let owner = Spi::connect(|c| {
        let what = "looking up the extension's owner";
        let rows = c
            .select(
                "SELECT extowner FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'rowsec'",
                Some(1),
                &[],
            )
            .map_err(|e| RowsecError::internal(what, e))?;
        if rows.is_empty() {
            return Ok(None);
        }
        required(rows.first().get::<pg_sys::Oid>(1), what, "extowner").map(Some)
    });
    match owner.or_raise() {
        Some(owner) => owner,
        None => RowsecError::not_configured("The rowsec extension is not installed in this database.").raise(),
    }
}

thread_local! {
    /// The extension owner for one local transaction (`MyProc->lxid`): row triggers ask for it
    /// once per row, and it only changes with DROP/CREATE EXTENSION or ALTER EXTENSION OWNER.
    static OWNER_IN_TRANSACTION: std::cell::Cell<(u32, pg_sys::Oid)> = const { std::cell::Cell::new((0, pg_sys::InvalidOid)) };
}

/// The local transaction's id (unique per backend and transaction; 0 outside one).
pub fn local_transaction() -> u32 {
    unsafe {
        if pg_sys::MyProc.is_null() {
            0
        } else {
            crate::compat::local_transaction_id(pg_sys::MyProc)
        }
    }
}

/// [`extension_owner`], looked up once per transaction.
pub fn extension_owner_cached() -> pg_sys::Oid {
    let lxid = local_transaction();
    let (seen, owner) = OWNER_IN_TRANSACTION.with(std::cell::Cell::get);
    if seen == lxid && lxid != 0 && owner != pg_sys::InvalidOid {
        return owner;
    }
    let owner = extension_owner();
    OWNER_IN_TRANSACTION.with(|c| c.set((lxid, owner)));
    owner
}

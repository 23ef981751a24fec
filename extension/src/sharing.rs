//! `rowsec.share` / `rowsec.unshare`: the permission check runs as the caller (their privileges
//! and row-level security decide whether they may update the row); the writes to
//! `rowsec.shares` and `rowsec.share_audit` run as the extension owner, who alone may write them.

use crate::cache;
use crate::catalog;
use crate::errors::{nullable, require, required, OrRaise, RowsecError};
use crate::identity::Caller;
use crate::types::RegClass;
use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use rowsec_core::access::ShareAccess;
use rowsec_core::config::ColumnRole;
use rowsec_core::shares::{Grantee, ShareRequest};
use std::ffi::CStr;

/// Runs a block as another role with `search_path = pg_catalog, pg_temp`, as a SECURITY DEFINER
/// function would: the caller's search path must not steer what the owner's statements resolve.
/// The previous user, security context and settings come back on drop (and PostgreSQL's own
/// (sub)transaction abort restores them on error).
struct AsRole {
    user: pg_sys::Oid,
    context: i32,
    guc_nest_level: i32,
}

impl AsRole {
    fn switch(to: pg_sys::Oid) -> AsRole {
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

fn role_name(role: pg_sys::Oid) -> String {
    unsafe { CStr::from_ptr(pg_sys::GetUserNameFromId(role, false)) }.to_string_lossy().into_owned()
}

/// A table registered with `rowsec.protect_table`.
struct Protected {
    key_column: String,
    owner_column: String,
    sharing: bool,
}

/// The registry row of `tbl`; `Ok(None)` only when there is none.
fn protected(tbl: pg_sys::Oid) -> Result<Option<Protected>, RowsecError> {
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
            key_column: required(row.get::<String>(1), what, "key_column")?,
            owner_column: required(row.get::<String>(2), what, "owner_column")?,
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
fn select_int8_read_only(query: &str, param: i64) -> Result<Option<i64>, RowsecError> {
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

/// Raises insufficient_privilege unless the caller may update row `key` of `tbl`: table or
/// column UPDATE privilege, and `SELECT ... FOR UPDATE` through their own policies finds the row.
fn check_caller_may_update(tbl: pg_sys::Oid, key_column: &str, key: i64, person: i64) {
    let user = unsafe { pg_sys::GetUserId() };
    let table = catalog::relation_name(tbl);
    let privileged = unsafe {
        pg_sys::pg_class_aclcheck(tbl, user, pg_sys::ACL_UPDATE as pg_sys::AclMode) == pg_sys::AclResult::ACLCHECK_OK
            || pg_sys::pg_attribute_aclcheck_all(
                tbl,
                user,
                pg_sys::ACL_UPDATE as pg_sys::AclMode,
                pg_sys::AclMaskHow::ACLMASK_ANY,
            ) == pg_sys::AclResult::ACLCHECK_OK
    };
    let refuse = |detail: String| -> ! {
        RowsecError::insufficient_privilege(
            format!("permission denied to share row {key} of {table}"),
            detail,
            "Only someone who may update a row may share or unshare it; ask the row's owner or their manager.",
        )
        .raise()
    };
    if !privileged {
        refuse(format!("Role \"{}\" (person {person}) has no UPDATE privilege on {table}.", role_name(user)));
    }
    let q = format!(
        "SELECT 1 FROM {table} WHERE {} OPERATOR(pg_catalog.=) $1 FOR UPDATE",
        pgrx::spi::quote_identifier(key_column)
    );
    let found = Spi::connect_mut(|c| c.update(q.as_str(), Some(1), &[key.into()]).map(|t| !t.is_empty()))
        .unwrap_or_else(|e| RowsecError::internal(format!("checking row {key} of {table}"), e).raise());
    if !found {
        refuse(format!(
            "Row {key} of {table} does not exist or role \"{}\" (person {person}) may not update it under its row-level security policies.",
            role_name(user)
        ));
    }
}

/// The caller as an active person, or insufficient_privilege.
fn acting_person() -> i64 {
    let dir = cache::directory();
    let caller = Caller::current(&dir.config.identity);
    match caller.person(&dir) {
        Some(p) => dir.directory().id(p),
        None => RowsecError::insufficient_privilege(
            "only an active person in the directory may share or unshare rows",
            format!("Role \"{}\" does not resolve to an active person.", role_name(unsafe { pg_sys::GetUserId() })),
            "Check the directory row (login, active) or the identity setting for this session.",
        )
        .raise(),
    }
}

fn sharing_table(tbl: pg_sys::Oid) -> Protected {
    match protected(tbl).or_raise() {
        Some(p) if p.sharing => p,
        _ => not_sharing(tbl),
    }
}

fn not_sharing(tbl: pg_sys::Oid) -> ! {
    RowsecError::new(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("{} does not allow sharing", catalog::relation_name(tbl)),
        "The table is not registered in rowsec.protected_tables with sharing = true.",
        "Set `sharing: true` for the table in the spec and run the script generated by `rowsec compile`.",
    )
    .raise()
}

struct ShareRecord {
    id: i64,
    tbl: pg_sys::Oid,
    key: i64,
    person: Option<i64>,
    team: Option<String>,
    access: ShareAccess,
    expires: Option<TimestampWithTimeZone>,
}

fn audit(action: &str, s: &ShareRecord, actor: i64, actor_role: &str, reason: Option<&str>) {
    let args: [DatumWithOid; 11] = [
        action.into(),
        s.id.into(),
        RegClass(s.tbl).into(),
        s.key.into(),
        s.person.into(),
        s.team.clone().into(),
        s.access.as_str().into(),
        s.expires.into(),
        actor.into(),
        actor_role.into(),
        reason.into(),
    ];
    Spi::run_with_args(
        "INSERT INTO rowsec.share_audit (action, share_id, tbl, row_key, grantee_person, grantee_team, access, expires_at, actor_person, actor_role, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::pg_catalog.name, $11)",
        &args,
    )
    .unwrap_or_else(|e| RowsecError::internal("writing the share audit", e).raise());
}

/// Shares row `key` of `tbl` with a person or a team; returns the share id.
#[pg_extern(volatile, parallel_unsafe)]
#[allow(clippy::too_many_arguments)]
fn share(
    tbl: Option<RegClass>,
    key: Option<i64>,
    to_person: default!(Option<i64>, "NULL"),
    to_team: default!(Option<&str>, "NULL"),
    access: default!(Option<&str>, "'read'"),
    expires_at: default!(Option<TimestampWithTimeZone>, "NULL"),
    reason: default!(Option<&str>, "NULL"),
) -> i64 {
    let tbl = require(tbl, "table").0;
    let key = require(key, "key");
    let access = require(access, "access");
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    let request = ShareRequest::new(access, to_person, to_team, expires_at.map(pg_sys::TimestampTz::from), now)
        .unwrap_or_else(|e| RowsecError::invalid_argument(&e).raise());
    let protected = sharing_table(tbl);
    let actor = acting_person();
    if let Grantee::Person(p) = request.grantee {
        let dir = cache::directory();
        if dir.directory().person(p).is_none() {
            RowsecError::invalid_parameter(
                format!("person {p} is not in the directory"),
                "Shares go to people of the directory or to teams.",
                "Check the person id.",
            )
            .raise();
        }
    }
    check_caller_may_update(tbl, &protected.key_column, key, actor);
    let actor_role = role_name(unsafe { pg_sys::GetUserId() });

    let _owner = AsRole::switch(extension_owner());
    let args: [DatumWithOid; 8] = [
        RegClass(tbl).into(),
        key.into(),
        to_person.into(),
        to_team.into(),
        request.access.as_str().into(),
        expires_at.into(),
        actor.into(),
        reason.into(),
    ];
    // No row limit: with a limit the executor stops ModifyTable early and the AFTER STATEMENT
    // trigger that invalidates every backend's shares cache would never fire.
    let id = Spi::connect_mut(|c| {
        c.update(
            "INSERT INTO rowsec.shares (tbl, row_key, grantee_person, grantee_team, access, expires_at, granted_by, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            None,
            &args,
        )?
        .first()
        .get_one::<i64>()
    });
    let id = required(id, "inserting the share", "id").or_raise();
    let record = ShareRecord {
        id,
        tbl,
        key,
        person: to_person,
        team: to_team.map(str::to_owned),
        access: request.access,
        expires: expires_at,
    };
    audit("share", &record, actor, &actor_role, reason);
    id
}

/// Removes a share; the caller must be allowed to update the shared row.
#[pg_extern(volatile, parallel_unsafe)]
fn unshare(share_id: Option<i64>, reason: default!(Option<&str>, "NULL")) {
    let id = require(share_id, "share_id");
    let record = {
        let _owner = AsRole::switch(extension_owner());
        Spi::connect(|c| -> Result<Option<ShareRecord>, RowsecError> {
            let what = "reading the share from rowsec.shares";
            let rows = c
                .select(
                    "SELECT tbl::pg_catalog.oid, row_key, grantee_person, grantee_team, access, expires_at FROM rowsec.shares WHERE id OPERATOR(pg_catalog.=) $1",
                    Some(1),
                    &[id.into()],
                )
                .map_err(|e| RowsecError::internal(what, e))?;
            if rows.is_empty() {
                return Ok(None);
            }
            let r = rows.first();
            Ok(Some(ShareRecord {
                id,
                tbl: required(r.get::<pg_sys::Oid>(1), what, "tbl")?,
                key: required(r.get::<i64>(2), what, "row_key")?,
                person: nullable(r.get::<i64>(3), what, "grantee_person")?,
                team: nullable(r.get::<String>(4), what, "grantee_team")?,
                access: ShareAccess::parse(&required(r.get::<String>(5), what, "access")?)
                    .map_err(|e| RowsecError::internal(what, e))?,
                expires: nullable(r.get::<TimestampWithTimeZone>(6), what, "expires_at")?,
            }))
        })
        .or_raise()
    };
    let Some(record) = record else {
        RowsecError::invalid_parameter(
            format!("share {id} does not exist"),
            "No row of rowsec.shares has this id (it may have been removed already).",
            "List shares with the function that returned the id, or check rowsec.share_audit.",
        )
        .raise();
    };
    // Unsharing stays possible after sharing was turned off for the table.
    let protected = protected(record.tbl).or_raise().unwrap_or_else(|| not_sharing(record.tbl));
    let actor = acting_person();
    check_caller_may_update(record.tbl, &protected.key_column, record.key, actor);
    let actor_role = role_name(unsafe { pg_sys::GetUserId() });
    let _owner = AsRole::switch(extension_owner());
    Spi::run_with_args("DELETE FROM rowsec.shares WHERE id OPERATOR(pg_catalog.=) $1", &[id.into()])
        .unwrap_or_else(|e| RowsecError::internal("deleting the share", e).raise());
    audit("unshare", &record, actor, &actor_role, reason);
}

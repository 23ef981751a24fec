//! `rowsec.share` / `rowsec.unshare`: the permission check runs as the caller (their privileges
//! and row-level security decide whether they may update the row); the writes to
//! `rowsec.shares` and `rowsec.share_audit` run as the extension owner, who alone may write them.

use crate::cache;
use crate::catalog;
use crate::errors::{nullable, require, required, OrRaise, RowsecError};
use crate::identity::Caller;
use crate::owner::{extension_owner, AsRole};
use crate::registry::{self, not_sharing, sharing_table};
use crate::types::RegClass;
use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::prelude::*;
use rowsec_core::access::ShareAccess;
use rowsec_core::shares::{Grantee, ShareRequest};
use std::ffi::CStr;

fn role_name(role: pg_sys::Oid) -> String {
    unsafe { CStr::from_ptr(pg_sys::GetUserNameFromId(role, false)) }.to_string_lossy().into_owned()
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
    let protected = registry::protected(record.tbl).or_raise().unwrap_or_else(|| not_sharing(record.tbl));
    let actor = acting_person();
    check_caller_may_update(record.tbl, &protected.key_column, record.key, actor);
    let actor_role = role_name(unsafe { pg_sys::GetUserId() });
    let _owner = AsRole::switch(extension_owner());
    Spi::run_with_args("DELETE FROM rowsec.shares WHERE id OPERATOR(pg_catalog.=) $1", &[id.into()])
        .unwrap_or_else(|e| RowsecError::internal("deleting the share", e).raise());
    audit("unshare", &record, actor, &actor_role, reason);
}

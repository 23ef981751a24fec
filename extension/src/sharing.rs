//! `rowsec.share` / `rowsec.unshare` / `rowsec.cleanup_expired_shares`: the permission check runs
//! as the caller (their privileges and row-level security decide whether they may update the
//! row); the writes to `rowsec.shares` and `rowsec.audit_log` run as the extension owner, who
//! alone may write them.
//!
//! A share made by someone whose right to update the row comes only from a share is derived from
//! that share (the rules are `rowsec_core::shares::{choose_parent, derive}`): it expires no later
//! than its parent, grants no more, records `derived_from`, and ends with it.

use crate::audit::Kind;
use crate::cache;
use crate::catalog;
use crate::errors::{nullable, require, required, OrRaise, RowsecError};
use crate::identity::Caller;
use crate::owner::{extension_owner, AsRole};
use crate::policy::IgnoringShares;
use crate::registry::{self, not_sharing, sharing_table};
use crate::types::{RegClass, Text};
use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use rowsec_core::access::ShareAccess;
use rowsec_core::audit::iso_utc;
use rowsec_core::shares::{check_grantee, choose_parent, derive, ParentShare, ShareRequest, Timestamp};
use serde_json::json;
use std::ffi::CStr;

pub fn role_name(role: pg_sys::Oid) -> String {
    unsafe { CStr::from_ptr(pg_sys::GetUserNameFromId(role, false)) }.to_string_lossy().into_owned()
}

/// A timestamptz as the session's DateStyle and TimeZone print it.
fn timestamp_text(ts: Timestamp) -> String {
    unsafe { CStr::from_ptr(pg_sys::timestamptz_to_str(ts)) }.to_string_lossy().into_owned()
}

fn timestamptz(ts: Timestamp, what: &str) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(ts)
        .unwrap_or_else(|_| RowsecError::internal(what, format!("{ts} is not a timestamp PostgreSQL accepts")).raise())
}

/// Where the caller's right to update a row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdateRight {
    /// Their role's update scope (or any policy other than a share).
    Own,
    /// Only a write share to them or their team.
    ThroughShare,
}

/// Whether the calling role holds UPDATE on `tbl` or on any of its columns.
pub(crate) fn has_update_privilege(tbl: pg_sys::Oid, user: pg_sys::Oid) -> bool {
    unsafe {
        pg_sys::pg_class_aclcheck(tbl, user, pg_sys::ACL_UPDATE as pg_sys::AclMode) == pg_sys::AclResult::ACLCHECK_OK
            || pg_sys::pg_attribute_aclcheck_all(
                tbl,
                user,
                pg_sys::ACL_UPDATE as pg_sys::AclMode,
                pg_sys::AclMaskHow::ACLMASK_ANY,
            ) == pg_sys::AclResult::ACLCHECK_OK
    }
}

/// Where the caller's right to update row `key` of `tbl` comes from, or `None` when they have
/// none: table or column UPDATE privilege, and `SELECT ... FOR UPDATE` through their own policies
/// finds the row. The query runs first with shares ignored by the policy functions: a row found
/// then is the caller's own to update, a row found only with shares is theirs through a share.
///
/// On Citus the policies run on the workers, which do not see this backend's [`IgnoringShares`]:
/// there a row found while the caller holds an unexpired write share of it counts as theirs
/// through that share (so what they share of it derives from the share: capped and ended with
/// it, never more than on a single node).
pub(crate) fn update_right(tbl: pg_sys::Oid, key_column: &str, key: i64) -> Option<UpdateRight> {
    if !has_update_privilege(tbl, unsafe { pg_sys::GetUserId() }) {
        return None;
    }
    let table = catalog::relation_name(tbl);
    if let Some(distribution) = crate::citus::distribution_column(tbl).or_raise() {
        if !found_on_citus(tbl, key_column, key, distribution.as_deref()) {
            return None;
        }
        let dir = cache::directory();
        let me = Caller::current(&dir.config.identity).person(&dir)?;
        let (person, team) = (dir.directory().id(me), dir.directory().team_name(me).map(str::to_owned));
        let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
        let _owner = AsRole::switch(extension_owner());
        let shares = shares_of_row_to(tbl, key, person, team.as_deref());
        return Some(if choose_parent(&shares, now).is_some() { UpdateRight::ThroughShare } else { UpdateRight::Own });
    }
    let q = format!(
        "SELECT 1 FROM {table} WHERE {} OPERATOR(pg_catalog.=) $1 FOR UPDATE",
        pgrx::spi::quote_identifier(key_column)
    );
    let found = || {
        Spi::connect_mut(|c| c.update(q.as_str(), Some(1), &[key.into()]).map(|t| !t.is_empty()))
            .unwrap_or_else(|e| RowsecError::internal(format!("checking row {key} of {table}"), e).raise())
    };
    let own = {
        let _ignoring = IgnoringShares::start();
        found()
    };
    if own {
        Some(UpdateRight::Own)
    } else if found() {
        Some(UpdateRight::ThroughShare)
    } else {
        None
    }
}

/// Whether the caller's policies let them lock row `key` of the Citus table `tbl` for update.
/// Citus locks rows only in a query it sends to one shard, which needs the distribution column:
/// when that is not the key, its value is read first (through the same policies), then the row
/// is locked by key and that value.
fn found_on_citus(tbl: pg_sys::Oid, key_column: &str, key: i64, distribution: Option<&str>) -> bool {
    let table = catalog::relation_name(tbl);
    let fail =
        |e: pgrx::spi::SpiError| -> ! { RowsecError::internal(format!("checking row {key} of {table}"), e).raise() };
    let key_ident = pgrx::spi::quote_identifier(key_column);
    let mut q = format!("SELECT 1 FROM {table} WHERE {key_ident} OPERATOR(pg_catalog.=) $1");
    if let Some(column) = distribution.filter(|c| *c != key_column) {
        let column = pgrx::spi::quote_identifier(column);
        let value = Spi::get_one_with_args::<String>(
            &format!(
                "SELECT {column}::pg_catalog.text FROM {table} WHERE {key_ident} OPERATOR(pg_catalog.=) $1 LIMIT 1"
            ),
            &[key.into()],
        );
        let value = match value {
            Ok(Some(v)) => v,
            Ok(None) | Err(pgrx::spi::SpiError::InvalidPosition) => return false,
            Err(e) => fail(e),
        };
        // A literal of the column's own type: Citus sends the query to one shard only when the
        // distribution column is compared with a constant of its type.
        q.push_str(&format!(" AND {column} OPERATOR(pg_catalog.=) {}", pgrx::spi::quote_literal(&value)));
    }
    q.push_str(" FOR UPDATE");
    Spi::connect_mut(|c| c.update(q.as_str(), Some(1), &[key.into()]).map(|t| !t.is_empty()))
        .unwrap_or_else(|e| fail(e))
}

/// Raises insufficient_privilege unless the caller may update row `key` of `tbl` (see
/// [`update_right`]).
fn check_caller_may_update(tbl: pg_sys::Oid, key_column: &str, key: i64, person: i64) -> UpdateRight {
    let user = unsafe { pg_sys::GetUserId() };
    let table = catalog::relation_name(tbl);
    let refuse = |detail: String| -> ! {
        RowsecError::insufficient_privilege(
            format!("permission denied to share row {key} of {table}"),
            detail,
            "Only someone who may update a row may share or unshare it; ask the row's owner or their manager.",
        )
        .raise()
    };
    if !has_update_privilege(tbl, user) {
        refuse(format!("Role \"{}\" (person {person}) has no UPDATE privilege on {table}.", role_name(user)));
    }
    update_right(tbl, key_column, key).unwrap_or_else(|| {
        refuse(format!(
            "Row {key} of {table} does not exist or role \"{}\" (person {person}) may not update it under its row-level security policies.",
            role_name(user)
        ))
    })
}

/// The caller as an active person: their id and team; or insufficient_privilege.
fn acting_person() -> (i64, Option<String>) {
    let dir = cache::directory();
    let caller = Caller::current(&dir.config.identity);
    match caller.person(&dir) {
        Some(p) => (dir.directory().id(p), dir.directory().team_name(p).map(str::to_owned)),
        None => RowsecError::insufficient_privilege(
            "only an active person in the directory may share or unshare rows",
            format!("Role \"{}\" does not resolve to an active person.", role_name(unsafe { pg_sys::GetUserId() })),
            "Check the directory row (login, active) or the identity setting for this session.",
        )
        .raise(),
    }
}

/// A row of `rowsec.shares` as the audit trail records it.
struct ShareRecord {
    id: i64,
    tbl: pg_sys::Oid,
    key: i64,
    person: Option<i64>,
    team: Option<String>,
    access: ShareAccess,
    expires: Option<TimestampWithTimeZone>,
    derived_from: Option<i64>,
    expiry_capped: bool,
}

/// Appends a `share` or `unshare` row to `rowsec.audit_log` (as the extension owner).
/// `requested_expires` is what a share asked for before any cap.
fn audit(
    kind: Kind,
    s: &ShareRecord,
    actor: Option<i64>,
    actor_role: &str,
    reason: Option<&str>,
    requested_expires: Option<TimestampWithTimeZone>,
) {
    let time = |t: Option<TimestampWithTimeZone>| t.map(|t| iso_utc(pg_sys::TimestampTz::from(t)));
    let mut detail = json!({
        "share_id": s.id,
        "key": s.key,
        "grantee_person": s.person,
        "grantee_team": s.team,
        "access": s.access.as_str(),
        "expires_at": time(s.expires),
        "role": actor_role,
        "reason": reason,
        "derived_from": s.derived_from,
        "expiry_capped": s.expiry_capped,
    });
    if kind == Kind::Share {
        detail["requested_expires_at"] = json!(time(requested_expires));
    }
    crate::audit::append(kind, Some(&catalog::relation_name(s.tbl)), &detail, actor);
}

/// The shares of row `key` of `tbl` to `person` or to `team` (as the extension owner).
fn shares_of_row_to(tbl: pg_sys::Oid, key: i64, person: i64, team: Option<&str>) -> Vec<ParentShare> {
    let what = "reading the caller's shares of the row from rowsec.shares";
    Spi::connect(|c| -> Result<Vec<ParentShare>, RowsecError> {
        let rows = c
            .select(
                "SELECT id, access, expires_at FROM rowsec.shares \
                 WHERE tbl OPERATOR(pg_catalog.=) $1 AND row_key OPERATOR(pg_catalog.=) $2 \
                   AND (grantee_person OPERATOR(pg_catalog.=) $3 OR grantee_team OPERATOR(pg_catalog.=) $4)",
                None,
                &[RegClass(tbl).into(), key.into(), person.into(), team.into()],
            )
            .map_err(|e| RowsecError::internal(what, e))?;
        rows.map(|r| {
            let access = required(r.get::<Text>(2), what, "access")?.0;
            Ok(ParentShare {
                id: required(r.get::<i64>(1), what, "id")?,
                access: ShareAccess::parse(&access)
                    .map_err(|e| RowsecError::internal(what, format!("column access: {e}")))?,
                expires: nullable(r.get::<TimestampWithTimeZone>(3), what, "expires_at")?
                    .map(pg_sys::TimestampTz::from),
            })
        })
        .collect()
    })
    .or_raise()
}

/// Shares row `key` of `tbl` with a person or a team; returns the share id.
#[pg_extern(volatile, parallel_unsafe)]
#[allow(clippy::too_many_arguments)]
fn share(
    tbl: Option<RegClass>,
    key: Option<i64>,
    to_person: default!(Option<i64>, "NULL"),
    to_team: default!(Option<Text>, "NULL"),
    access: default!(Option<Text>, "'read'"),
    expires_at: default!(Option<TimestampWithTimeZone>, "NULL"),
    reason: default!(Option<Text>, "NULL"),
) -> i64 {
    let tbl = require(tbl, "table").0;
    let key = require(key, "key");
    let access = require(access, "access");
    let access = access.as_str();
    let (to_team, reason) = (to_team.as_ref().map(Text::as_str), reason.as_ref().map(Text::as_str));
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    let request = ShareRequest::new(access, to_person, to_team, expires_at.map(pg_sys::TimestampTz::from), now)
        .unwrap_or_else(|e| RowsecError::invalid_argument(&e).raise());
    let protected = sharing_table(tbl);
    let (actor, actor_team) = acting_person();
    let right = check_caller_may_update(tbl, &protected.key_column, key, actor);
    // After the right to share: who is in the directory is no business of those without it.
    {
        let dir = cache::directory();
        check_grantee(dir.directory(), request.grantee, dir.config.team_column.is_some())
            .unwrap_or_else(|e| RowsecError::invalid_argument(&e).raise());
    }
    let actor_role = role_name(unsafe { pg_sys::GetUserId() });

    let _owner = AsRole::switch(extension_owner());
    let derived = match right {
        UpdateRight::Own => None,
        UpdateRight::ThroughShare => {
            let candidates = shares_of_row_to(tbl, key, actor, actor_team.as_deref());
            let Some(parent) = choose_parent(&candidates, now) else {
                RowsecError::insufficient_privilege(
                    format!("permission denied to share row {key} of {}", catalog::relation_name(tbl)),
                    format!("Person {actor} may update the row only through a share, and rowsec found no unexpired write share of it to them or their team."),
                    "Ask the row's owner or their manager to share it.",
                )
                .raise()
            };
            let d =
                derive(&parent, request.access, request.expires).unwrap_or_else(|e| RowsecError::denied(&e).raise());
            Some(d)
        }
    };
    let expires = match derived {
        Some(d) => d.expires.map(|e| timestamptz(e, "capping the share's expiry")),
        None => expires_at,
    };
    let mut record = ShareRecord {
        id: 0,
        tbl,
        key,
        person: to_person,
        team: to_team.map(str::to_owned),
        access: request.access,
        expires,
        derived_from: derived.map(|d| d.parent),
        expiry_capped: derived.is_some_and(|d| d.capped),
    };
    record.id = insert_share(&record, actor, reason);
    let id = record.id;
    audit(Kind::Share, &record, Some(actor), &actor_role, reason, expires_at);
    if let Some(d) = derived.filter(|d| d.capped) {
        let until = d.expires.map_or_else(|| "never".to_owned(), timestamp_text);
        RowsecError::new(
            PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
            format!("share {id} expires at {until}, when share {} it derives from expires", d.parent),
            format!(
                "You may update row {key} of {} only through share {}; a share made from it cannot outlast it (you asked for {}).",
                catalog::relation_name(tbl),
                d.parent,
                request.expires.map_or_else(|| "no expiry".to_owned(), timestamp_text)
            ),
            "rowsec.my_shares lists the share and its derived_from; unsharing the parent ends this share too.",
        )
        .notice();
    }
    id
}

/// Inserts the share `record` describes (its `id` is ignored) granted by person `granter`,
/// as the extension owner (the caller holds an [`AsRole`]); returns the new id. One INSERT for
/// `rowsec.share` and for approved requests, so both fill every column the same way.
fn insert_share(record: &ShareRecord, granter: i64, reason: Option<&str>) -> i64 {
    let tbl_name = catalog::relation_name(record.tbl);
    let args: [DatumWithOid; 11] = [
        RegClass(record.tbl).into(),
        record.key.into(),
        record.person.into(),
        record.team.as_deref().into(),
        record.access.as_str().into(),
        record.expires.into(),
        granter.into(),
        reason.into(),
        record.derived_from.into(),
        record.expiry_capped.into(),
        tbl_name.as_str().into(),
    ];
    // No row limit: with a limit the executor stops ModifyTable early and the AFTER STATEMENT
    // trigger that invalidates every backend's shares cache would never fire.
    let id = Spi::connect_mut(|c| {
        c.update(
            "INSERT INTO rowsec.shares (tbl, row_key, grantee_person, grantee_team, access, expires_at, granted_by, reason, derived_from, expiry_capped, tbl_name) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            None,
            &args,
        )?
        .first()
        .get_one::<i64>()
    });
    required(id, "inserting the share", "id").or_raise()
}

/// Shares row `key` of `tbl` with `person` until `until` on behalf of `granter`, who approved
/// request `request` (`rowsec.decide`, which checked the granter's right): inserts the share and
/// records it, as the extension owner. Returns the share id.
pub(crate) fn share_for_request(
    tbl: pg_sys::Oid,
    key: i64,
    person: i64,
    access: ShareAccess,
    until: TimestampWithTimeZone,
    granter: i64,
    request: i64,
) -> i64 {
    let actor_role = role_name(unsafe { pg_sys::GetUserId() });
    let reason = format!("request {request}");
    let _owner = AsRole::switch(extension_owner());
    let mut record = ShareRecord {
        id: 0,
        tbl,
        key,
        person: Some(person),
        team: None,
        access,
        expires: Some(until),
        derived_from: None,
        expiry_capped: false,
    };
    record.id = insert_share(&record, granter, Some(&reason));
    let id = record.id;
    audit(Kind::Share, &record, Some(granter), &actor_role, Some(&reason), Some(until));
    id
}

/// What [`remove_with_derived`] starts from.
enum Roots {
    /// One share (`rowsec.unshare`).
    Share(i64),
    /// Every share expired at the given time (`rowsec.cleanup_expired_shares`).
    ExpiredAt(Timestamp),
    /// The shares derived from shares just removed that the removal's snapshot missed (made by
    /// a transaction that committed while it waited): rowsec.shares has no foreign key to stop it.
    ChildrenOf(Vec<i64>),
}

/// Deletes the root shares and every share derived from them, transitively, in one statement,
/// and records each removal in the audit trail: a root with `reason`, a derived share with the
/// share it derived from. Runs as the extension owner (the caller holds an [`AsRole`]). Returns
/// how many shares were removed.
fn remove_with_derived(roots: Roots, actor: Option<i64>, actor_role: &str, reason: Option<&str>) -> usize {
    let mut removed = remove_once(roots, actor, actor_role, reason);
    let mut total = removed.len();
    // Each statement reads a new snapshot (READ COMMITTED): until no derived share is left.
    while !removed.is_empty() {
        removed = remove_once(Roots::ChildrenOf(removed), actor, actor_role, reason);
        total += removed.len();
    }
    total
}

/// One statement of [`remove_with_derived`]; returns the ids it removed.
fn remove_once(roots: Roots, actor: Option<i64>, actor_role: &str, reason: Option<&str>) -> Vec<i64> {
    let what = "removing shares and the shares derived from them";
    let (root_condition, is_root, arg): (&str, &str, DatumWithOid) = match roots {
        Roots::Share(id) => ("s.id OPERATOR(pg_catalog.=) $1", "s.id OPERATOR(pg_catalog.=) $1", id.into()),
        Roots::ExpiredAt(now) => (
            "s.expires_at OPERATOR(pg_catalog.<=) $1",
            "s.expires_at OPERATOR(pg_catalog.<=) $1",
            timestamptz(now, what).into(),
        ),
        Roots::ChildrenOf(ids) => ("s.derived_from OPERATOR(pg_catalog.=) ANY ($1)", "false", ids.into()),
    };
    let q = format!(
        "WITH RECURSIVE doomed(id) AS ( \
             SELECT s.id FROM rowsec.shares s WHERE {root_condition} \
           UNION \
             SELECT s.id FROM rowsec.shares s JOIN doomed d ON s.derived_from OPERATOR(pg_catalog.=) d.id) \
         DELETE FROM rowsec.shares s USING doomed d WHERE s.id OPERATOR(pg_catalog.=) d.id \
         RETURNING s.id, s.tbl::pg_catalog.oid, s.row_key, s.grantee_person, s.grantee_team, s.access, s.expires_at, \
                   s.derived_from, s.expiry_capped, ({is_root}) AS is_root"
    );
    // No row limit, as in `share`: the statement trigger must fire.
    let mut removed = Spi::connect_mut(|c| -> Result<Vec<(bool, ShareRecord)>, RowsecError> {
        let rows = c.update(q.as_str(), None, &[arg]).map_err(|e| RowsecError::internal(what, e))?;
        rows.map(|r| {
            let access = required(r.get::<Text>(6), what, "access")?.0;
            let record = ShareRecord {
                id: required(r.get::<i64>(1), what, "id")?,
                tbl: required(r.get::<pg_sys::Oid>(2), what, "tbl")?,
                key: required(r.get::<i64>(3), what, "row_key")?,
                person: nullable(r.get::<i64>(4), what, "grantee_person")?,
                team: nullable(r.get::<Text>(5), what, "grantee_team")?.map(|t| t.0),
                access: ShareAccess::parse(&access)
                    .map_err(|e| RowsecError::internal(what, format!("column access: {e}")))?,
                expires: nullable(r.get::<TimestampWithTimeZone>(7), what, "expires_at")?,
                derived_from: nullable(r.get::<i64>(8), what, "derived_from")?,
                expiry_capped: required(r.get::<bool>(9), what, "expiry_capped")?,
            };
            Ok((required(r.get::<bool>(10), what, "is_root")?, record))
        })
        .collect()
    })
    .or_raise();
    // Roots first, then what derived from them, each in id order: the trail reads as it happened.
    removed.sort_by_key(|(is_root, r)| (!is_root, r.id));
    for (is_root, record) in &removed {
        let cascade;
        let why = match (is_root, record.derived_from) {
            (false, Some(parent)) => {
                cascade = format!("derived from share {parent}, which was removed");
                Some(cascade.as_str())
            }
            _ => reason,
        };
        audit(Kind::Unshare, record, actor, actor_role, why, None);
    }
    removed.into_iter().map(|(_, r)| r.id).collect()
}

/// Removes a share, and every share derived from it; the caller must be allowed to update the
/// shared row.
#[pg_extern(volatile, parallel_unsafe)]
fn unshare(share_id: Option<i64>, reason: default!(Option<Text>, "NULL")) {
    let id = require(share_id, "share_id");
    let reason = reason.as_ref().map(Text::as_str);
    let found = {
        let _owner = AsRole::switch(extension_owner());
        Spi::connect(|c| -> Result<Option<(pg_sys::Oid, i64)>, RowsecError> {
            let what = "reading the share from rowsec.shares";
            let rows = c
                .select(
                    "SELECT tbl::pg_catalog.oid, row_key FROM rowsec.shares WHERE id OPERATOR(pg_catalog.=) $1",
                    Some(1),
                    &[id.into()],
                )
                .map_err(|e| RowsecError::internal(what, e))?;
            if rows.is_empty() {
                return Ok(None);
            }
            let r = rows.first();
            Ok(Some((required(r.get::<pg_sys::Oid>(1), what, "tbl")?, required(r.get::<i64>(2), what, "row_key")?)))
        })
        .or_raise()
    };
    let Some((tbl, key)) = found else {
        RowsecError::invalid_parameter(
            format!("share {id} does not exist"),
            "No row of rowsec.shares has this id (it may have been removed already, or have expired and been cleaned up).",
            "SELECT * FROM rowsec.my_shares lists the shares you made, the shares you received and the shares of your subtree's records, with their ids.",
        )
        .raise();
    };
    // Unsharing stays possible after sharing was turned off for the table.
    let protected = registry::protected(tbl).or_raise().unwrap_or_else(|| not_sharing(tbl));
    let (actor, _) = acting_person();
    check_caller_may_update(tbl, &protected.key_column, key, actor);
    let actor_role = role_name(unsafe { pg_sys::GetUserId() });
    let _owner = AsRole::switch(extension_owner());
    remove_with_derived(Roots::Share(id), Some(actor), &actor_role, reason);
}

/// Deletes every share expired as of now() (the transaction's start, as policies compare), and
/// every share derived from one, recording each removal in the audit trail with reason
/// 'expired'. Owner only (EXECUTE is revoked from PUBLIC); meant to run on a schedule. Returns how
/// many shares were removed.
#[pg_extern(volatile, parallel_unsafe)]
fn cleanup_expired_shares() -> i64 {
    let actor_role = role_name(unsafe { pg_sys::GetUserId() });
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    let _owner = AsRole::switch(extension_owner());
    remove_with_derived(Roots::ExpiredAt(now), None, &actor_role, Some("expired")) as i64
}

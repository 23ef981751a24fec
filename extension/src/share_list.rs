//! `rowsec.my_shares()` (and the view `rowsec.my_shares` over it): the shares a person may know
//! about, so that they can find a share's id to unshare it. People have no privilege on
//! `rowsec.shares`; this reads it as the extension owner and keeps, by the rule in
//! `rowsec_core::shares::Viewer`, the shares the caller made, received (in person or through
//! their team), or that share a row owned by them or by someone in their subtree. Only share
//! metadata is returned, never the shared row's contents.

use crate::cache;
use crate::catalog;
use crate::errors::{nullable, required, OrRaise, RowsecError};
use crate::identity::Caller;
use crate::owner::{extension_owner, AsRole};
use crate::registry;
use crate::types::{RegClass, Text};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use rowsec_core::config::ColumnRole;
use rowsec_core::shares::{SeenAs, ShareParties, Viewer};
use std::collections::{BTreeMap, HashMap};

struct Listed {
    id: i64,
    tbl: pg_sys::Oid,
    key: i64,
    person: Option<i64>,
    team: Option<String>,
    access: String,
    expires: Option<TimestampWithTimeZone>,
    granted_by: i64,
    granted_at: TimestampWithTimeZone,
    reason: Option<String>,
    derived_from: Option<i64>,
    expiry_capped: bool,
}

fn read_all_shares() -> Vec<Listed> {
    let what = "listing rowsec.shares";
    Spi::connect(|c| -> Result<Vec<Listed>, RowsecError> {
        let rows = c
            .select(
                "SELECT id, tbl::pg_catalog.oid, row_key, grantee_person, grantee_team, access, expires_at, granted_by, \
                        granted_at, reason, derived_from, expiry_capped \
                 FROM rowsec.shares ORDER BY id",
                None,
                &[],
            )
            .map_err(|e| RowsecError::internal(what, e))?;
        rows.map(|r| {
            Ok(Listed {
                id: required(r.get::<i64>(1), what, "id")?,
                tbl: required(r.get::<pg_sys::Oid>(2), what, "tbl")?,
                key: required(r.get::<i64>(3), what, "row_key")?,
                person: nullable(r.get::<i64>(4), what, "grantee_person")?,
                team: nullable(r.get::<Text>(5), what, "grantee_team")?.map(|t| t.0),
                access: required(r.get::<Text>(6), what, "access")?.0,
                expires: nullable(r.get::<TimestampWithTimeZone>(7), what, "expires_at")?,
                granted_by: required(r.get::<i64>(8), what, "granted_by")?,
                granted_at: required(r.get::<TimestampWithTimeZone>(9), what, "granted_at")?,
                reason: nullable(r.get::<Text>(10), what, "reason")?.map(|t| t.0),
                derived_from: nullable(r.get::<i64>(11), what, "derived_from")?,
                expiry_capped: required(r.get::<bool>(12), what, "expiry_capped")?,
            })
        })
        .collect()
    })
    .or_raise()
}

/// The owners of rows `keys` of `tbl` (as the extension owner, who reads past the policies);
/// empty when the table was dropped or unregistered since the shares were made.
fn owners(tbl: pg_sys::Oid, keys: &[i64]) -> BTreeMap<i64, i64> {
    if !catalog::relation_exists(tbl) {
        return BTreeMap::new();
    }
    let Some(p) = registry::protected(tbl).or_raise() else { return BTreeMap::new() };
    // Registered columns may have been renamed or dropped since protect_table: say so plainly.
    catalog::resolve_column(tbl, &p.key_column, ColumnRole::Key).or_raise();
    catalog::resolve_column(tbl, &p.owner_column, ColumnRole::Owner).or_raise();
    let q = format!(
        "SELECT {k}::pg_catalog.int8, {o}::pg_catalog.int8 FROM {t} WHERE {k} OPERATOR(pg_catalog.=) ANY ($1) AND {o} IS NOT NULL",
        k = pgrx::spi::quote_identifier(&p.key_column),
        o = pgrx::spi::quote_identifier(&p.owner_column),
        t = catalog::relation_name(tbl),
    );
    let what = format!("reading the owners of shared rows of {}", catalog::relation_name(tbl));
    Spi::connect(|c| -> Result<BTreeMap<i64, i64>, RowsecError> {
        let rows = c.select(&q, None, &[keys.to_vec().into()]).map_err(|e| RowsecError::internal(what.as_str(), e))?;
        rows.map(|r| Ok((required(r.get::<i64>(1), &what, "key")?, required(r.get::<i64>(2), &what, "owner")?)))
            .collect()
    })
    .or_raise()
}

/// The shares the caller may know about (see the module comment), with how they relate to each
/// (`seen_as`: 'granter', 'grantee', 'owner' or 'manager'). Nobody (an unknown login, an
/// inactive person, no identity setting) sees no share. Expired shares stay listed until
/// `rowsec.cleanup_expired_shares()` removes them (compare `expires_at` with now()).
#[pg_extern(stable, parallel_restricted)]
// pgrx reads the column names from the signature, so the tuple type cannot be an alias.
#[allow(clippy::type_complexity)]
fn my_shares() -> TableIterator<
    'static,
    (
        name!(share_id, i64),
        name!(tbl, RegClass),
        name!(row_key, i64),
        name!(grantee_person, Option<i64>),
        name!(grantee_team, Option<String>),
        name!(access, String),
        name!(expires_at, Option<TimestampWithTimeZone>),
        name!(granted_by, i64),
        name!(granted_at, TimestampWithTimeZone),
        name!(reason, Option<String>),
        name!(derived_from, Option<i64>),
        name!(expiry_capped, bool),
        name!(seen_as, String),
    ),
> {
    let dir = cache::directory();
    let Some(me) = Caller::current(&dir.config.identity).person(&dir) else {
        return TableIterator::new(Vec::new());
    };
    let d = dir.directory();
    let subtree = dir.subtree(me);
    let viewer = Viewer { person: d.id(me), team: d.team_name(me), subtree: &subtree };

    let _owner = AsRole::switch(extension_owner());
    let shares = read_all_shares();
    fn parties(s: &Listed) -> ShareParties<'_> {
        ShareParties { granted_by: s.granted_by, person: s.person, team: s.team.as_deref() }
    }
    let mut seen: Vec<Option<SeenAs>> = shares.iter().map(|s| viewer.party(&parties(s))).collect();
    // Owners are read only for shares the caller is no party to, one query per table.
    let mut pending: HashMap<pg_sys::Oid, Vec<i64>> = HashMap::new();
    for (s, seen) in shares.iter().zip(&seen) {
        if seen.is_none() {
            pending.entry(s.tbl).or_default().push(s.key);
        }
    }
    let owners: HashMap<pg_sys::Oid, BTreeMap<i64, i64>> =
        pending.into_iter().map(|(tbl, keys)| (tbl, owners(tbl, &keys))).collect();
    for (s, seen) in shares.iter().zip(seen.iter_mut()) {
        if seen.is_none() {
            let owner = owners.get(&s.tbl).and_then(|o| o.get(&s.key)).copied();
            *seen = viewer.sees(&parties(s), owner);
        }
    }
    let rows: Vec<_> = shares
        .into_iter()
        .zip(seen)
        .filter_map(|(s, seen)| {
            let seen = seen?;
            Some((
                s.id,
                RegClass(s.tbl),
                s.key,
                s.person,
                s.team,
                s.access,
                s.expires,
                s.granted_by,
                s.granted_at,
                s.reason,
                s.derived_from,
                s.expiry_capped,
                seen.as_str().to_owned(),
            ))
        })
        .collect();
    TableIterator::new(rows)
}

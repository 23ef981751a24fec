//! Reading rowsec's own tables and the directory with the extension's rights: a plain heap scan
//! under a snapshot we choose. A scan checks no privileges and applies no row-level security, so
//! people need no privilege on the directory or the shares, and the caller's identity is untouched.

use crate::errors::{RowsecError, HINT_COMPILE};
use crate::types::{text_bytes, type_name, utf8};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use rowsec_core::access::ShareAccess;
use rowsec_core::config::{ColumnRole, ColumnType, Identity};
use rowsec_core::diagnostic::{quoted, sql_text};
use rowsec_core::directory::PersonRow;
use rowsec_core::shares::ShareRow;
use std::ffi::{CStr, CString};

pub const SCHEMA: &CStr = c"rowsec";

/// A column of one of rowsec's own tables as `sql/schema.sql` creates it. Those tables are read
/// by position, so a scan first checks that the table still has this shape.
pub struct OwnColumn {
    name: &'static str,
    typid: pg_sys::Oid,
    /// NOT NULL in the schema: a NULL read here is damage, never a value.
    required: bool,
}

const fn col(name: &'static str, typid: pg_sys::Oid) -> OwnColumn {
    OwnColumn { name, typid, required: true }
}

const fn nullable(name: &'static str, typid: pg_sys::Oid) -> OwnColumn {
    OwnColumn { name, typid, required: false }
}

/// Columns of `rowsec.config`.
mod config_att {
    use super::{col, nullable, OwnColumn};
    use pgrx::pg_sys::{BOOLOID, NAMEOID, REGCLASSOID, TEXTOID};
    pub const DIRECTORY: usize = 1;
    pub const ID: usize = 2;
    pub const MANAGER: usize = 3;
    pub const TEAM: usize = 4;
    pub const LOGIN: usize = 5;
    pub const ACTIVE: usize = 6;
    pub const IDENTITY: usize = 7;
    pub const SETTING: usize = 8;
    pub const DIRECTORY_NAME: usize = 9;
    pub const LAYOUT: &[OwnColumn] = &[
        col("singleton", BOOLOID),
        col("directory", REGCLASSOID),
        col("id_column", NAMEOID),
        col("manager_column", NAMEOID),
        nullable("team_column", NAMEOID),
        nullable("login_column", NAMEOID),
        nullable("active_column", NAMEOID),
        col("identity", TEXTOID),
        nullable("identity_setting", TEXTOID),
        nullable("directory_name", TEXTOID),
    ];
}

/// Columns of `rowsec.identity_keys` (the leading ones the cache reads).
mod keys_att {
    use super::{col, OwnColumn};
    use pgrx::pg_sys::{BYTEAOID, TEXTOID};
    pub const KEY_ID: usize = 0;
    pub const SECRET: usize = 1;
    pub const LAYOUT: &[OwnColumn] = &[col("key_id", TEXTOID), col("secret", BYTEAOID)];
}

/// Columns of `rowsec.shares`.
mod shares_att {
    use super::{col, nullable, OwnColumn};
    use pgrx::pg_sys::{BOOLOID, INT8OID, REGCLASSOID, TEXTOID, TIMESTAMPTZOID};
    pub const ID: usize = 0;
    pub const TBL: usize = 1;
    pub const ROW_KEY: usize = 2;
    pub const PERSON: usize = 3;
    pub const TEAM: usize = 4;
    pub const ACCESS: usize = 5;
    pub const EXPIRES: usize = 6;
    pub const DERIVED_FROM: usize = 10;
    pub const TBL_NAME: usize = 12;
    pub const LAYOUT: &[OwnColumn] = &[
        col("id", INT8OID),
        col("tbl", REGCLASSOID),
        col("row_key", INT8OID),
        nullable("grantee_person", INT8OID),
        nullable("grantee_team", TEXTOID),
        col("access", TEXTOID),
        nullable("expires_at", TIMESTAMPTZOID),
        col("granted_by", INT8OID),
        col("granted_at", TIMESTAMPTZOID),
        nullable("reason", TEXTOID),
        nullable("derived_from", INT8OID),
        col("expiry_capped", BOOLOID),
        nullable("tbl_name", TEXTOID),
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub directory: pg_sys::Oid,
    pub id_column: String,
    pub manager_column: String,
    pub team_column: Option<String>,
    pub login_column: Option<String>,
    pub active_column: Option<String>,
    pub identity: Identity,
}

/// A snapshot for reading the directory. Outside parallel mode it is the latest snapshot, taken
/// after the invalidations we consumed, so a cache built from it can be trusted until the next
/// invalidation. In parallel mode PostgreSQL forbids new snapshots; we read under the active
/// (query) snapshot and the cache built from it is only used while parallel mode lasts.
pub struct ScanSnapshot {
    snap: pg_sys::Snapshot,
    pub fresh: bool,
}

impl ScanSnapshot {
    pub fn take() -> ScanSnapshot {
        unsafe {
            let (snap, fresh) = if pg_sys::IsInParallelMode() {
                (pg_sys::GetActiveSnapshot(), false)
            } else {
                (pg_sys::GetLatestSnapshot(), true)
            };
            if snap.is_null() {
                RowsecError::new(
                    PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                    "rowsec found no snapshot to read the directory with",
                    "the function was called outside a query",
                    "call rowsec functions from SQL statements",
                )
                .raise();
            }
            ScanSnapshot { snap: pg_sys::RegisterSnapshot(snap), fresh }
        }
    }
}

impl Drop for ScanSnapshot {
    fn drop(&mut self) {
        unsafe { pg_sys::UnregisterSnapshot(self.snap) }
    }
}

/// OID of a relation in the rowsec schema, if it exists.
pub fn extension_relation(name: &CStr) -> Option<pg_sys::Oid> {
    unsafe {
        let nsp = pg_sys::get_namespace_oid(SCHEMA.as_ptr(), true);
        if nsp == pg_sys::InvalidOid {
            return None;
        }
        let oid = pg_sys::get_relname_relid(name.as_ptr(), nsp);
        (oid != pg_sys::InvalidOid).then_some(oid)
    }
}

/// Raises unless the first columns of rowsec's own table `rel` are `layout`: reading a reshaped
/// table by position would turn other data (or pointers) into keys and ids.
unsafe fn check_layout(rel: pg_sys::Relation, layout: &[OwnColumn]) -> Result<(), RowsecError> {
    unsafe {
        let attrs = crate::compat::attributes((*rel).rd_att);
        for (i, want) in layout.iter().enumerate() {
            let found = match attrs.get(i) {
                None => "nothing".to_owned(),
                Some(a) if a.attisdropped => "a dropped column".to_owned(),
                Some(a) if a.atttypid == want.typid => continue,
                Some(a) => format!("a column of type {}", type_name(a.atttypid)),
            };
            return Err(RowsecError::internal(
                format!("reading {}", relation_name((*rel).rd_id)),
                format!(
                    "column {} should be \"{}\" of type {}, found {found}",
                    i + 1,
                    want.name,
                    type_name(want.typid)
                ),
            ));
        }
        Ok(())
    }
}

/// Sequentially scans `relid`, handing each row's first `natts` columns to `each` until it fails.
/// With a `layout` (rowsec's own tables), the table's shape is checked first and `natts` is the
/// layout's length.
fn scan(
    relid: pg_sys::Oid,
    snapshot: &ScanSnapshot,
    natts: i32,
    layout: Option<&[OwnColumn]>,
    mut each: impl FnMut(&[pg_sys::Datum], &[bool]) -> Result<(), RowsecError>,
) -> Result<(), RowsecError> {
    unsafe {
        let rel = pg_sys::table_open(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        // A view, a partitioned or a foreign table has no table access method to scan (a
        // directory can become one after `configure`, e.g. dropped and recreated under its name).
        let am = (*rel).rd_tableam;
        let callbacks =
            if am.is_null() { None } else { Some(((*am).scan_begin, (*am).scan_getnextslot, (*am).scan_end)) };
        let Some((Some(scan_begin), Some(next), Some(scan_end))) = callbacks else {
            let e = not_a_table(relid, (*(*rel).rd_rel).relkind as u8);
            pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            return Err(e);
        };
        if let Some(layout) = layout {
            if let Err(e) = check_layout(rel, layout) {
                pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
                return Err(e);
            }
        }
        let slot = pg_sys::table_slot_create(rel, std::ptr::null_mut());
        let flags = pg_sys::ScanOptions::SO_TYPE_SEQSCAN
            | pg_sys::ScanOptions::SO_ALLOW_STRAT
            | pg_sys::ScanOptions::SO_ALLOW_SYNC
            | pg_sys::ScanOptions::SO_ALLOW_PAGEMODE;
        let sscan = scan_begin(rel, snapshot.snap, 0, std::ptr::null_mut(), std::ptr::null_mut(), flags);
        let natts = natts.min((*(*rel).rd_att).natts);
        let mut result = Ok(());
        while next(sscan, pg_sys::ScanDirection::ForwardScanDirection, slot) {
            if i32::from((*slot).tts_nvalid) < natts {
                pg_sys::slot_getsomeattrs_int(slot, natts);
            }
            let values = std::slice::from_raw_parts((*slot).tts_values, natts as usize);
            let nulls = std::slice::from_raw_parts((*slot).tts_isnull, natts as usize);
            let null_required = layout.and_then(|l| l.iter().zip(nulls).find(|(c, null)| c.required && **null));
            result = match null_required {
                Some((c, _)) => Err(RowsecError::internal(
                    format!("reading {}", relation_name(relid)),
                    format!("column \"{}\" is NULL in a row, and rowsec never writes a NULL there", c.name),
                )),
                None => each(values, nulls),
            };
            if result.is_err() {
                break;
            }
        }
        scan_end(sscan);
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        result
    }
}

/// What kind of relation `relkind` is, as PostgreSQL's messages name it.
pub fn relkind_name(relkind: u8) -> &'static str {
    match relkind {
        b'r' => "table",
        b'p' => "partitioned table",
        b'v' => "view",
        b'm' => "materialized view",
        b'f' => "foreign table",
        b'i' | b'I' => "index",
        b'S' => "sequence",
        b't' => "TOAST table",
        b'c' => "composite type",
        _ => "relation",
    }
}

/// The relation's kind (`pg_class.relkind`); `None` when it does not exist.
pub fn relkind(relid: pg_sys::Oid) -> Option<u8> {
    let kind = unsafe { pg_sys::get_rel_relkind(relid) } as u8;
    (kind != 0).then_some(kind)
}

/// wrong_object_type: rowsec reads the directory (and keeps its cache current with a statement
/// trigger) as an ordinary table.
pub fn not_a_table(relid: pg_sys::Oid, relkind: u8) -> RowsecError {
    RowsecError::new(
        PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
        format!("the rowsec directory {} is a {}", relation_name(relid), relkind_name(relkind)),
        "rowsec reads the directory with a table scan and keeps its cache current with a statement trigger \
         on it; both need an ordinary (not partitioned) table.",
        "Point the spec's directory at an ordinary table (for a view, the table behind it), then run the script generated by `rowsec compile` again.",
    )
}

/// A `name` datum as UTF-8 (see [`utf8`]).
unsafe fn name_datum(d: pg_sys::Datum, what: &str) -> Result<String, RowsecError> {
    let bytes = unsafe { CStr::from_ptr(d.cast_mut_ptr::<std::ffi::c_char>()) }.to_bytes();
    utf8(bytes, what).map(str::to_owned)
}

/// A `text` datum as UTF-8 (see [`utf8`]).
unsafe fn text_datum(d: pg_sys::Datum, what: &str) -> Result<String, RowsecError> {
    utf8(unsafe { text_bytes(d) }, what).map(str::to_owned)
}

/// Reads the single configuration row; `Ok(None)` when rowsec has not been configured.
pub fn read_config(config_oid: pg_sys::Oid, snapshot: &ScanSnapshot) -> Result<Option<Config>, RowsecError> {
    use config_att::*;
    let mut found = None;
    let mut directory_name = None;
    scan(config_oid, snapshot, LAYOUT.len() as i32, Some(LAYOUT), |v, n| unsafe {
        let what = "rowsec.config";
        let opt_name = |i: usize| (!n[i]).then(|| name_datum(v[i], what)).transpose();
        let mode = text_datum(v[IDENTITY], what)?;
        let setting = (!n[SETTING]).then(|| text_datum(v[SETTING], what)).transpose()?;
        let Some(identity) = Identity::from_stored(&mode, setting.clone()) else {
            return Err(RowsecError::internal(
                "reading rowsec.config",
                format!(
                    "identity {} with identity_setting {} is not a configuration rowsec writes",
                    sql_text(Some(&mode)),
                    sql_text(setting.as_deref())
                ),
            ));
        };
        directory_name = (!n[DIRECTORY_NAME]).then(|| text_datum(v[DIRECTORY_NAME], what)).transpose()?;
        found = Some(Config {
            directory: pg_sys::Oid::from(v[DIRECTORY].value() as u32),
            id_column: name_datum(v[ID], what)?,
            manager_column: name_datum(v[MANAGER], what)?,
            team_column: opt_name(TEAM)?,
            login_column: opt_name(LOGIN)?,
            active_column: opt_name(ACTIVE)?,
            identity,
        });
        Ok(())
    })?;
    // After the scan: on Citus the directory is looked up by its name (crate::citus).
    if let Some(config) = found.as_mut() {
        config.directory = crate::citus::directory_here(config.directory, directory_name.as_deref())?;
    }
    Ok(found)
}

/// How one directory column is turned into Rust.
#[derive(Debug, Clone, Copy)]
enum ColumnKind {
    Int8,
    Int4,
    Int2,
    Bool,
    Text,
    Name,
    /// Any other type: its output function (team columns may be of any type).
    Output(pg_sys::Oid),
}

impl ColumnKind {
    fn of(typid: pg_sys::Oid) -> ColumnKind {
        match typid {
            pg_sys::INT8OID => ColumnKind::Int8,
            pg_sys::INT4OID => ColumnKind::Int4,
            pg_sys::INT2OID => ColumnKind::Int2,
            pg_sys::BOOLOID => ColumnKind::Bool,
            pg_sys::TEXTOID | pg_sys::VARCHAROID => ColumnKind::Text,
            pg_sys::NAMEOID => ColumnKind::Name,
            other => unsafe {
                let mut func = pg_sys::InvalidOid;
                let mut varlena = false;
                pg_sys::getTypeOutputInfo(other, &mut func, &mut varlena);
                ColumnKind::Output(func)
            },
        }
    }

    fn column_type(self) -> ColumnType {
        match self {
            ColumnKind::Int8 => ColumnType::Int8,
            ColumnKind::Int4 => ColumnType::Int4,
            ColumnKind::Int2 => ColumnType::Int2,
            ColumnKind::Bool => ColumnType::Bool,
            ColumnKind::Text => ColumnType::Text,
            ColumnKind::Name => ColumnType::Name,
            ColumnKind::Output(_) => ColumnType::Other,
        }
    }

    unsafe fn int(self, d: pg_sys::Datum) -> i64 {
        match self {
            ColumnKind::Int8 => d.value() as i64,
            ColumnKind::Int4 => i64::from(d.value() as i32),
            ColumnKind::Int2 => i64::from(d.value() as i16),
            _ => 0,
        }
    }

    /// The value as text (a team or a login), as UTF-8 (see [`utf8`]); `what` names it.
    unsafe fn text(self, d: pg_sys::Datum, what: &str) -> Result<String, RowsecError> {
        unsafe {
            match self {
                ColumnKind::Text => text_datum(d, what),
                ColumnKind::Name => name_datum(d, what),
                ColumnKind::Int8 | ColumnKind::Int4 | ColumnKind::Int2 => Ok(self.int(d).to_string()),
                ColumnKind::Bool => Ok((d.value() != 0).to_string()),
                ColumnKind::Output(f) => {
                    let s = pg_sys::OidOutputFunctionCall(f, d);
                    let out = utf8(CStr::from_ptr(s).to_bytes(), what).map(str::to_owned);
                    pg_sys::pfree(s.cast());
                    out
                }
            }
        }
    }
}

/// A column resolved against its table: attribute number and type.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedColumn {
    attnum: usize,
    kind: ColumnKind,
    pub typid: pg_sys::Oid,
}

impl ResolvedColumn {
    /// Whether rowsec can read this column in `role`.
    pub fn fits(&self, role: ColumnRole) -> bool {
        role.accepts(self.kind.column_type())
    }
}

/// Looks a column up; errors name the table, the column, the function it was given to and the fix.
pub fn resolve_column(relid: pg_sys::Oid, column: &str, role: ColumnRole) -> Result<ResolvedColumn, RowsecError> {
    let (given_to, role) = (role.given_to(), role.as_str());
    let cname = CString::new(column).map_err(|_| {
        RowsecError::invalid_parameter(
            format!("invalid column name {}", quoted(&column.replace('\0', "\\0"))),
            "Column names cannot contain a NUL byte.",
            HINT_COMPILE,
        )
    })?;
    unsafe {
        let attnum = pg_sys::get_attnum(relid, cname.as_ptr());
        if attnum <= 0 {
            return Err(RowsecError::new(
                PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
                format!("the {role} column \"{column}\" does not exist in {}", relation_name(relid)),
                format!("{given_to} was given the {role} column \"{column}\"."),
                "Fix the spec or the table, then run the script generated by `rowsec compile` again.",
            ));
        }
        let typid = pg_sys::get_atttype(relid, attnum);
        Ok(ResolvedColumn { attnum: attnum as usize, kind: ColumnKind::of(typid), typid })
    }
}

pub fn relation_name(relid: pg_sys::Oid) -> String {
    unsafe {
        let name = pg_sys::get_rel_name(relid);
        if name.is_null() {
            return format!("relation with OID {}", relid.to_u32());
        }
        let nsp = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(relid));
        let rel = CStr::from_ptr(name).to_string_lossy();
        if nsp.is_null() {
            pgrx::spi::quote_identifier(rel)
        } else {
            pgrx::spi::quote_qualified_identifier(CStr::from_ptr(nsp).to_string_lossy(), rel)
        }
    }
}

pub fn relation_exists(relid: pg_sys::Oid) -> bool {
    unsafe { !pg_sys::get_rel_name(relid).is_null() }
}

fn mismatch(config: &Config, role: ColumnRole, column: &str, typid: pg_sys::Oid) -> RowsecError {
    let (wanted, role) = (role.wanted(), role.as_str());
    RowsecError::new(
        PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
        format!("the {role} column \"{column}\" of {} has type {}", relation_name(config.directory), type_name(typid)),
        format!("rowsec needs {wanted} for the {role} column."),
        "Change the column type or point the spec's directory section at another column, then run the generated script again.",
    )
}

/// The directory's columns, checked for shape.
pub struct DirectoryShape {
    /// The relation the rows are read from: the directory, or on Citus its placement on this
    /// node (citus.rs), whose column numbers may differ from the coordinator's table.
    pub rel: pg_sys::Oid,
    id: ResolvedColumn,
    manager: ResolvedColumn,
    team: Option<ResolvedColumn>,
    login: Option<ResolvedColumn>,
    active: Option<ResolvedColumn>,
}

/// Resolves a directory column and checks that rowsec can read it in `role`.
fn directory_column(
    config: &Config,
    rel: pg_sys::Oid,
    column: &str,
    role: ColumnRole,
) -> Result<ResolvedColumn, RowsecError> {
    let col = resolve_column(rel, column, role)?;
    if col.fits(role) {
        Ok(col)
    } else {
        Err(mismatch(config, role, column, col.typid))
    }
}

pub fn directory_shape(config: &Config) -> Result<DirectoryShape, RowsecError> {
    match relkind(config.directory) {
        Some(b'r') => {}
        Some(other) => return Err(not_a_table(config.directory, other)),
        None => {
            return Err(RowsecError::new(
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                format!("the rowsec directory table (OID {}) does not exist", config.directory.to_u32()),
                "rowsec.config names a directory table that has been dropped.",
                HINT_COMPILE,
            ))
        }
    }
    let rel = crate::citus::local_placement(config.directory, "the rowsec directory")?;
    let optional =
        |column: &Option<String>, role| column.as_deref().map(|c| directory_column(config, rel, c, role)).transpose();
    Ok(DirectoryShape {
        rel,
        id: directory_column(config, rel, &config.id_column, ColumnRole::Id)?,
        manager: directory_column(config, rel, &config.manager_column, ColumnRole::Manager)?,
        team: optional(&config.team_column, ColumnRole::Team)?,
        login: optional(&config.login_column, ColumnRole::Login)?,
        active: optional(&config.active_column, ColumnRole::Active)?,
    })
}

/// Reads every person. Rows with a NULL id are skipped (they cannot be anyone's owner).
pub fn read_directory(shape: &DirectoryShape, snapshot: &ScanSnapshot) -> Result<Vec<PersonRow>, RowsecError> {
    let natts = [Some(shape.id), Some(shape.manager), shape.team, shape.login, shape.active]
        .iter()
        .flatten()
        .map(|c| c.attnum)
        .max()
        .unwrap_or(1) as i32;
    let mut rows = Vec::new();
    let read = scan(shape.rel, snapshot, natts, None, |v, n| unsafe {
        let at = |c: &ResolvedColumn| (!n[c.attnum - 1]).then(|| v[c.attnum - 1]);
        let Some(id) = at(&shape.id) else { return Ok(()) };
        rows.push(PersonRow {
            id: shape.id.kind.int(id),
            manager: at(&shape.manager).map(|d| shape.manager.kind.int(d)),
            team: shape
                .team
                .as_ref()
                .and_then(|c| at(c).map(|d| c.kind.text(d, "a team of the directory")))
                .transpose()?,
            login: shape
                .login
                .as_ref()
                .and_then(|c| at(c).map(|d| c.kind.text(d, "a login of the directory")))
                .transpose()?,
            // No active column: everyone is active. NULL counts as inactive.
            active: shape.active.as_ref().is_none_or(|c| at(c).is_some_and(|d| d.value() != 0)),
        });
        Ok(())
    });
    read.map(|()| rows)
}

/// Who a share read is for: `rowsec.shares` rows whose `grantee_person` is `person` or whose
/// `grantee_team` is `team`, each read through its index.
pub struct Grantee<'a> {
    pub person: i64,
    pub team: Option<&'a str>,
}

/// A row of `rowsec.shares` as read, before the checks that need other rows.
struct ReadShare {
    row: ShareRow,
    id: i64,
    derived_from: Option<i64>,
    tbl_name: Option<String>,
}

/// The indexes of `shares` (rowsec.shares, or on Citus its placement on this node) that the
/// reads use: on the person, on the team, on the id.
struct ShareIndexes {
    person: pg_sys::Oid,
    team: pg_sys::Oid,
    id: pg_sys::Oid,
}

impl ShareIndexes {
    fn of(shares_oid: pg_sys::Oid) -> Result<Option<ShareIndexes>, RowsecError> {
        if Some(shares_oid) == extension_relation(c"shares") {
            return Ok(
                match (
                    extension_relation(c"shares_to_person"),
                    extension_relation(c"shares_to_team"),
                    extension_relation(c"shares_pkey"),
                ) {
                    (Some(person), Some(team), Some(id)) => Some(ShareIndexes { person, team, id }),
                    _ => None,
                },
            );
        }
        // A Citus placement: its indexes carry the shard id in their names, so find them by column.
        let on = |att: usize| index_on(shares_oid, (att + 1) as i16);
        Ok(match (on(shares_att::PERSON)?, on(shares_att::TEAM)?, on(shares_att::ID)?) {
            (Some(person), Some(team), Some(id)) => Some(ShareIndexes { person, team, id }),
            _ => None,
        })
    }
}

/// A valid btree index of `relid` on column `attnum` alone, without a predicate or expression.
/// From the relcache: Citus hides shards (and their indexes) from queries of pg_class.
fn index_on(relid: pg_sys::Oid, attnum: i16) -> Result<Option<pg_sys::Oid>, RowsecError> {
    unsafe {
        let rel = pg_sys::table_open(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let list = pg_sys::RelationGetIndexList(rel);
        let mut found = None;
        let len = if list.is_null() { 0 } else { (*list).length };
        for i in 0..len {
            let index = pg_sys::list_nth_oid(list, i);
            let idx = pg_sys::index_open(index, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            let form = (*idx).rd_index;
            let fits = (*(*idx).rd_rel).relam == pg_sys::BTREE_AM_OID
                && (*form).indisvalid
                && (*form).indnatts == 1
                && *(*form).indkey.values.as_slice(1).first().unwrap_or(&0) == attnum
                && pg_sys::heap_attisnull(
                    (*idx).rd_indextuple,
                    pg_sys::Anum_pg_index_indpred as i32,
                    std::ptr::null_mut(),
                )
                && pg_sys::heap_attisnull(
                    (*idx).rd_indextuple,
                    pg_sys::Anum_pg_index_indexprs as i32,
                    std::ptr::null_mut(),
                );
            pg_sys::index_close(idx, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            if fits {
                found = Some(index);
                break;
            }
        }
        pg_sys::list_free(list);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        Ok(found)
    }
}

/// The shares to one person and to their team (read by the indexes on `grantee_person` and
/// `grantee_team`; without them, which only an extension older than its SQL could lack, the
/// whole table is read and filtered). A derived share counts only while every share it derives
/// from is there (rowsec.shares has no foreign key, see sql/schema.sql). On Citus each share's
/// table is the one its `tbl_name` names on this node.
pub fn read_shares_to(
    shares_oid: pg_sys::Oid,
    grantee: &Grantee<'_>,
    snapshot: &ScanSnapshot,
) -> Result<Vec<ShareRow>, RowsecError> {
    let indexes = ShareIndexes::of(shares_oid)?;
    let mut rows = Vec::new();
    match &indexes {
        None => {
            scan(shares_oid, snapshot, shares_att::LAYOUT.len() as i32, Some(shares_att::LAYOUT), |v, n| {
                push_share(&mut rows, v, n)
            })?;
            rows.retain(|r: &ReadShare| {
                r.row.person == Some(grantee.person) || (r.row.team.is_some() && r.row.team.as_deref() == grantee.team)
            });
        }
        Some(ix) => unsafe {
            let mut key = int8_key(shares_att::PERSON, grantee.person);
            index_scan(shares_oid, ix.person, snapshot, &mut key, |v, n| push_share(&mut rows, v, n))?;
            if let Some(team) = grantee.team {
                let text = pg_sys::cstring_to_text_with_len(team.as_ptr().cast(), team.len() as i32);
                pg_sys::ScanKeyEntryInitialize(
                    &mut key,
                    0,
                    (shares_att::TEAM + 1) as pg_sys::AttrNumber,
                    pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
                    pg_sys::InvalidOid,
                    pg_sys::DEFAULT_COLLATION_OID,
                    pg_sys::F_TEXTEQ.into(),
                    pg_sys::Datum::from(text),
                );
                let result = index_scan(shares_oid, ix.team, snapshot, &mut key, |v, n| push_share(&mut rows, v, n));
                pg_sys::pfree(text.cast());
                result?;
            }
        },
    }
    let mut intact = std::collections::HashMap::new();
    let mut kept = Vec::with_capacity(rows.len());
    for r in rows {
        if r.derived_from.is_some() && !ancestors_present(shares_oid, indexes.as_ref(), snapshot, &r, &mut intact)? {
            continue;
        }
        kept.push(r);
    }
    if crate::citus::installed() {
        kept = on_this_node(kept)?;
    }
    Ok(kept.into_iter().map(|r| r.row).collect())
}

/// An equality scan key on an int8 column of rowsec.shares.
unsafe fn int8_key(att: usize, value: i64) -> pg_sys::ScanKeyData {
    unsafe {
        let mut key = std::mem::zeroed::<pg_sys::ScanKeyData>();
        pg_sys::ScanKeyInit(
            &mut key,
            (att + 1) as pg_sys::AttrNumber,
            pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
            pg_sys::F_INT8EQ.into(),
            pg_sys::Datum::from(value),
        );
        key
    }
}

/// Whether every share `share` derives from, up to a share made by right of one's own, is in
/// `shares` (memoized in `intact`). A parent removed without its derived shares (a concurrent
/// `unshare`, a DBA's DELETE) ends them here: they grant nothing, as if removed with it.
fn ancestors_present(
    shares_oid: pg_sys::Oid,
    indexes: Option<&ShareIndexes>,
    snapshot: &ScanSnapshot,
    share: &ReadShare,
    intact: &mut std::collections::HashMap<i64, bool>,
) -> Result<bool, RowsecError> {
    let mut chain = vec![share.id];
    let mut next = share.derived_from;
    let answer = loop {
        let Some(parent) = next else { break true };
        if let Some(known) = intact.get(&parent) {
            break *known;
        }
        // A cycle (only a hand-made one can exist) is no chain back to an own right.
        if chain.contains(&parent) {
            break false;
        }
        chain.push(parent);
        let mut found: Option<Option<i64>> = None;
        let mut record = |v: &[pg_sys::Datum], n: &[bool]| {
            found = Some((!n[shares_att::DERIVED_FROM]).then(|| v[shares_att::DERIVED_FROM].value() as i64));
            Ok(())
        };
        match indexes {
            Some(ix) => unsafe {
                let mut key = int8_key(shares_att::ID, parent);
                index_scan(shares_oid, ix.id, snapshot, &mut key, &mut record)?;
            },
            None => scan(shares_oid, snapshot, shares_att::LAYOUT.len() as i32, Some(shares_att::LAYOUT), |v, n| {
                if v[shares_att::ID].value() as i64 == parent {
                    record(v, n)?;
                }
                Ok(())
            })?,
        }
        match found {
            None => break false,
            Some(grandparent) => next = grandparent,
        }
    };
    for id in chain {
        intact.insert(id, answer);
    }
    Ok(answer)
}

/// On a Citus node: each share's table as its `tbl_name` names it here (a share whose table has
/// no such name here grants nothing). A share without a name (written by hand) keeps its OID.
fn on_this_node(rows: Vec<ReadShare>) -> Result<Vec<ReadShare>, RowsecError> {
    let mut here: std::collections::HashMap<String, Option<pg_sys::Oid>> = std::collections::HashMap::new();
    let mut kept = Vec::with_capacity(rows.len());
    for mut r in rows {
        if let Some(name) = r.tbl_name.as_deref() {
            let oid = match here.get(name) {
                Some(o) => *o,
                None => *here.entry(name.to_owned()).or_insert(crate::citus::relation_named(name)?),
            };
            let Some(oid) = oid else { continue };
            r.row.table = oid.to_u32();
        }
        kept.push(r);
    }
    Ok(kept)
}

/// Rows of `relid` matching one equality `key` on index `index`, as [`scan`] hands them.
unsafe fn index_scan(
    relid: pg_sys::Oid,
    index: pg_sys::Oid,
    snapshot: &ScanSnapshot,
    key: &mut pg_sys::ScanKeyData,
    mut each: impl FnMut(&[pg_sys::Datum], &[bool]) -> Result<(), RowsecError>,
) -> Result<(), RowsecError> {
    use shares_att::LAYOUT;
    unsafe {
        let rel = pg_sys::table_open(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        if let Err(e) = check_layout(rel, LAYOUT) {
            pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            return Err(e);
        }
        let natts = (LAYOUT.len() as i32).min((*(*rel).rd_att).natts) as usize;
        let scan = pg_sys::systable_beginscan(rel, index, true, snapshot.snap, 1, key);
        let mut values = vec![pg_sys::Datum::from(0); (*(*rel).rd_att).natts as usize];
        let mut nulls = vec![true; values.len()];
        let mut result = Ok(());
        loop {
            let tuple = pg_sys::systable_getnext(scan);
            if tuple.is_null() {
                break;
            }
            pg_sys::heap_deform_tuple(tuple, (*rel).rd_att, values.as_mut_ptr(), nulls.as_mut_ptr());
            let null_required = LAYOUT.iter().zip(&nulls).find(|(c, null)| c.required && **null);
            result = match null_required {
                Some((c, _)) => Err(RowsecError::internal(
                    format!("reading {}", relation_name(relid)),
                    format!("column \"{}\" is NULL in a row, and rowsec never writes a NULL there", c.name),
                )),
                None => each(&values[..natts], &nulls[..natts]),
            };
            if result.is_err() {
                break;
            }
        }
        pg_sys::systable_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        result
    }
}

fn push_share(rows: &mut Vec<ReadShare>, v: &[pg_sys::Datum], n: &[bool]) -> Result<(), RowsecError> {
    use shares_att::*;
    let what = "rowsec.shares";
    unsafe {
        let id = v[ID].value() as i64;
        let access = ShareAccess::parse(&text_datum(v[ACCESS], what)?)
            .map_err(|e| RowsecError::internal("reading rowsec.shares", format!("share {id}: {e}")))?;
        rows.push(ReadShare {
            row: ShareRow {
                table: v[TBL].value() as u32,
                key: v[ROW_KEY].value() as i64,
                person: (!n[PERSON]).then(|| v[PERSON].value() as i64),
                team: (!n[TEAM]).then(|| text_datum(v[TEAM], what)).transpose()?,
                access,
                expires: (!n[EXPIRES]).then(|| v[EXPIRES].value() as i64),
            },
            id,
            derived_from: (!n[DERIVED_FROM]).then(|| v[DERIVED_FROM].value() as i64),
            tbl_name: (!n[TBL_NAME]).then(|| text_datum(v[TBL_NAME], what)).transpose()?,
        });
    }
    Ok(())
}

/// The signing keys of signed identity: (key id, secret).
pub fn read_identity_keys(
    keys_oid: pg_sys::Oid,
    snapshot: &ScanSnapshot,
) -> Result<Vec<(String, Vec<u8>)>, RowsecError> {
    use keys_att::*;
    let mut keys = Vec::new();
    scan(keys_oid, snapshot, LAYOUT.len() as i32, Some(LAYOUT), |v, _| unsafe {
        keys.push((text_datum(v[KEY_ID], "rowsec.identity_keys")?, crate::types::text_bytes(v[SECRET]).to_vec()));
        Ok(())
    })?;
    Ok(keys)
}

//! The audit trail `rowsec.audit_log` (SPEC item 15): appending rows (as the extension owner, who
//! alone may write it), sealing the hash chain at COMMIT, verifying it, who reads it, and the
//! row triggers that record changes of the directory and of the tables under `audit.data`.
//!
//! The chain's rules (what is hashed, how a walk finds the first broken link, what a move does to
//! access, what a data change records) are plain Rust in `rowsec_core::audit`.

use crate::cache;
use crate::catalog;
use crate::errors::{nullable, required, OrRaise, RowsecError};
use crate::identity::Caller;
use crate::owner::{extension_owner_cached, local_transaction, AsRole};
use crate::types::Text;
use pgrx::datum::{DatumWithOid, JsonB, TimestampWithTimeZone};
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::PgSqlErrorCode;
use rowsec_core::audit::{self as rules, ColumnChange, Entry, Head, Verifier};
use serde_json::{json, Map, Value};
use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};

/// The kinds of `rowsec.audit_log.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Share,
    Unshare,
    Directory,
    Membership,
    Apply,
    Request,
    Decision,
    Attest,
    Data,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Share => "share",
            Kind::Unshare => "unshare",
            Kind::Directory => "directory",
            Kind::Membership => "membership",
            Kind::Apply => "apply",
            Kind::Request => "request",
            Kind::Decision => "decision",
            Kind::Attest => "attest",
            Kind::Data => "data",
        }
    }
}

thread_local! {
    /// The INSERT into rowsec.audit_log, prepared once per backend (row triggers append per row).
    static INSERT: RefCell<Option<OwnedPreparedStatement>> = const { RefCell::new(None) };
    /// (local transaction, highest id sealed in it): later seal events of rows already sealed
    /// return at once.
    static SEALED: Cell<(u32, i64)> = const { Cell::new((0, 0)) };
}

/// The current person as policies resolve them, or `None` (nobody, or rowsec not configured:
/// auditing never fails for want of a directory).
pub fn actor() -> Option<i64> {
    let dir = cache::directory_if_configured()?;
    let p = Caller::current(&dir.config.identity).person(&dir)?;
    Some(dir.directory().id(p))
}

/// Appends a row to the trail as the extension owner; `login` is the session user. Returns its id.
pub fn append(kind: Kind, object: Option<&str>, detail: &Value, actor: Option<i64>) -> i64 {
    let _owner = AsRole::switch(extension_owner_cached());
    let detail = detail.to_string();
    let what = "appending to rowsec.audit_log";
    let args: [DatumWithOid; 4] = [actor.into(), kind.as_str().into(), object.into(), detail.as_str().into()];
    INSERT.with(|slot| {
        Spi::connect_mut(|c| -> Result<i64, RowsecError> {
            let mut slot = slot.borrow_mut();
            if slot.is_none() {
                let stmt = c
                    .prepare_mut(
                        "INSERT INTO rowsec.audit_log (actor, kind, object, detail) VALUES ($1, $2, $3, $4::pg_catalog.jsonb) RETURNING id",
                        &[pg_sys::INT8OID.into(), pg_sys::TEXTOID.into(), pg_sys::TEXTOID.into(), pg_sys::TEXTOID.into()],
                    )
                    .map_err(|e| RowsecError::internal(what, e))?;
                *slot = Some(stmt.keep());
            }
            let stmt = slot.as_ref().expect("prepared above");
            // No row limit: a limit stops ModifyTable early, before the seal event is queued.
            let rows = c.update(stmt, None, &args).map_err(|e| RowsecError::internal(what, e))?;
            required(rows.first().get::<i64>(1), what, "id")
        })
    })
    .or_raise()
}

/// The hint of rowsec's own triggers called directly.
const INSTALLED_BY_ROWSEC: &str = "rowsec installs it as a trigger";

/// The trigger data of a C trigger function, or 0A000 when it was called directly (pgrx's
/// `#[pg_trigger]` wrapper would panic with XX000 instead).
/// `installed_by` says who installs the trigger, for the hint.
pub(crate) unsafe fn trigger_data(
    fcinfo: pg_sys::FunctionCallInfo,
    function: &str,
    installed_by: &str,
) -> *mut pg_sys::TriggerData {
    unsafe {
        let data = if !fcinfo.is_null() && pgrx::trigger_support::called_as_trigger(fcinfo) {
            (*fcinfo).context.cast::<pg_sys::TriggerData>()
        } else {
            std::ptr::null_mut()
        };
        if data.is_null() || (*data).tg_relation.is_null() {
            RowsecError::new(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "trigger functions can only be called as triggers",
                format!("{function} was called directly."),
                format!("{installed_by}; nothing else needs to call it."),
            )
            .raise();
        }
        data
    }
}

/// The trigger's arguments (`tgargs`).
unsafe fn trigger_args(data: *mut pg_sys::TriggerData) -> Vec<String> {
    unsafe {
        let t = (*data).tg_trigger;
        (0..(*t).tgnargs as usize).map(|i| CStr::from_ptr(*(*t).tgargs.add(i)).to_string_lossy().into_owned()).collect()
    }
}

/// Text of attribute `attnum` (1-based) of `tuple`, as its type's output function writes it.
unsafe fn text_of(tuple: pg_sys::HeapTuple, desc: pg_sys::TupleDesc, attnum: i32) -> Option<String> {
    if tuple.is_null() || attnum <= 0 {
        return None;
    }
    unsafe {
        let v = pg_sys::SPI_getvalue(tuple, desc, attnum);
        (!v.is_null()).then(|| CStr::from_ptr(v).to_string_lossy().into_owned())
    }
}

unsafe fn attnum_of(desc: pg_sys::TupleDesc, column: &str) -> i32 {
    let Ok(name) = CString::new(column) else { return 0 };
    let n = unsafe { pg_sys::SPI_fnumber(desc, name.as_ptr()) };
    n.max(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    fn of(event: u32) -> Option<Op> {
        match event & pg_sys::TRIGGER_EVENT_OPMASK {
            pg_sys::TRIGGER_EVENT_INSERT => Some(Op::Insert),
            pg_sys::TRIGGER_EVENT_UPDATE => Some(Op::Update),
            pg_sys::TRIGGER_EVENT_DELETE => Some(Op::Delete),
            _ => None,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// The old and new row of a row trigger event (NULL where there is none).
unsafe fn rows_of(data: *mut pg_sys::TriggerData, op: Op) -> (pg_sys::HeapTuple, pg_sys::HeapTuple) {
    unsafe {
        match op {
            Op::Insert => (std::ptr::null_mut(), (*data).tg_trigtuple),
            Op::Update => ((*data).tg_trigtuple, (*data).tg_newtuple),
            Op::Delete => ((*data).tg_trigtuple, std::ptr::null_mut()),
        }
    }
}

fn not_a_row_trigger(function: &str) -> ! {
    RowsecError::new(
        PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
        format!("{function} must be fired AFTER INSERT, UPDATE or DELETE FOR EACH ROW"),
        "It was fired for another event.",
        "Let rowsec install the trigger (the script generated by `rowsec compile`).",
    )
    .raise()
}

// ---------------------------------------------------------------------------------------------
// Sealing: a deferred constraint trigger on rowsec.audit_log (finalize.sql), one event per row.

/// `rowsec.audit_seal()`: at COMMIT (or SET CONSTRAINTS ... IMMEDIATE), chains every row this
/// transaction appended and has not sealed yet, in id order, after the last sealed row of the
/// whole trail, under a lock held until the transaction ends: chain order is commit order.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn rowsec_audit_seal(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let id = unsafe {
        let data = trigger_data(fcinfo, "rowsec.audit_seal()", INSTALLED_BY_ROWSEC);
        let desc = (*(*data).tg_relation).rd_att;
        let mut isnull = false;
        let d = pg_sys::SPI_getbinval((*data).tg_trigtuple, desc, 1, &mut isnull);
        if isnull {
            0
        } else {
            d.value() as i64
        }
    };
    let lxid = local_transaction();
    let (sealed_in, sealed_up_to) = SEALED.with(Cell::get);
    if sealed_in == lxid && id <= sealed_up_to {
        return pg_sys::Datum::from(0);
    }
    let up_to = seal().max(id);
    SEALED.with(|s| s.set((lxid, up_to)));
    pg_sys::Datum::from(0)
}

#[no_mangle]
#[doc(hidden)]
pub extern "C" fn pg_finfo_rowsec_audit_seal() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// Seals this transaction's unsealed rows; returns the highest id sealed (0: none).
fn seal() -> i64 {
    let _owner = AsRole::switch(extension_owner_cached());
    let extension = unsafe { pg_sys::get_extension_oid(c"rowsec".as_ptr(), false) };
    // One sealer at a time, until commit: the next one reads this one's head after it commits.
    // An object lock on the extension (sub-id 1) that nothing else takes.
    unsafe { pg_sys::LockDatabaseObject(pg_sys::ExtensionRelationId, extension, 1, pg_sys::ExclusiveLock as i32) };
    let mut head = read_head();
    let what = "sealing rowsec.audit_log";
    let rows = Spi::connect_mut(|c| -> Result<Vec<Entry>, RowsecError> {
        let rows = c
            .update(
                "SELECT id, at, actor, login::pg_catalog.text, kind, object, detail::pg_catalog.text FROM rowsec.audit_log \
                 WHERE seq IS NULL ORDER BY id",
                None,
                &[],
            )
            .map_err(|e| RowsecError::internal(what, e))?;
        rows.map(|r| entry_of(&r, 0, what)).collect()
    })
    .or_raise();
    if rows.is_empty() {
        return 0;
    }
    let (mut ids, mut seqs, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    for mut e in rows {
        let h = head.append(&mut e);
        ids.push(e.id);
        seqs.push(e.seq);
        hashes.push(h.to_vec());
    }
    let last = *ids.last().expect("not empty");
    Spi::connect_mut(|c| {
        c.update(
            "UPDATE rowsec.audit_log a SET seq = u.seq, hash = u.hash \
             FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.int8[]), pg_catalog.unnest($3::pg_catalog.bytea[])) AS u(id, seq, hash) \
             WHERE a.id OPERATOR(pg_catalog.=) u.id",
            None,
            &[ids.into(), seqs.into(), hashes.into()],
        )
        .map(|_| ())
    })
    .unwrap_or_else(|e| RowsecError::internal(what, e).raise());
    last
}

/// A row of the trail read as `id, at, actor, login, kind, object, detail[, seq]`.
fn entry_of(r: &pgrx::spi::SpiHeapTupleData, seq: i64, what: &str) -> Result<Entry, RowsecError> {
    Ok(Entry {
        seq,
        id: required(r.get::<i64>(1), what, "id")?,
        at: pg_sys::TimestampTz::from(required(r.get::<TimestampWithTimeZone>(2), what, "at")?),
        actor: nullable(r.get::<i64>(3), what, "actor")?,
        login: required(r.get::<Text>(4), what, "login")?.0,
        kind: required(r.get::<Text>(5), what, "kind")?.0,
        object: nullable(r.get::<Text>(6), what, "object")?.map(|t| t.0),
        detail: required(r.get::<Text>(7), what, "detail")?.0,
    })
}

/// The last sealed row's seq and hash, read under a snapshot taken now (not the transaction's:
/// in REPEATABLE READ it would miss what committed since it began and fork the chain).
fn read_head() -> Head {
    let what = "reading the head of the audit chain";
    unsafe {
        pg_sys::CommandCounterIncrement();
        pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot());
    }
    let head = Spi::connect(|_c| unsafe {
        let q = c"SELECT seq, hash FROM rowsec.audit_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1";
        // read_only: runs under the active snapshot pushed above.
        let status = pg_sys::SPI_execute(q.as_ptr(), true, 1);
        let table = pg_sys::SPI_tuptable;
        if status != pg_sys::SPI_OK_SELECT as i32 || table.is_null() {
            return Err(RowsecError::internal(what, format!("SPI_execute returned {status}")));
        }
        if (*table).numvals == 0 {
            return Ok(Head::EMPTY);
        }
        let tuple = *(*table).vals;
        let desc = (*table).tupdesc;
        let (mut null_seq, mut null_hash) = (false, false);
        let seq = pg_sys::SPI_getbinval(tuple, desc, 1, &mut null_seq);
        let hash = pg_sys::SPI_getbinval(tuple, desc, 2, &mut null_hash);
        if null_seq || null_hash {
            return Err(RowsecError::internal(what, "the last sealed row has no hash"));
        }
        let bytes = pgrx::varlena::varlena_to_byte_slice(pg_sys::pg_detoast_datum_packed(hash.cast_mut_ptr()));
        let hash: [u8; 32] =
            bytes.try_into().map_err(|_| RowsecError::internal(what, "the last sealed row's hash is not 32 bytes"))?;
        Ok(Head { seq: seq.value() as i64, hash })
    });
    unsafe { pg_sys::PopActiveSnapshot() };
    head.or_raise()
}

pgrx::extension_sql!(
    "CREATE FUNCTION rowsec.audit_seal() RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', 'rowsec_audit_seal';\n\
     REVOKE EXECUTE ON FUNCTION rowsec.audit_seal() FROM PUBLIC;",
    name = "audit_seal"
);

/// Whether the caller may read the trail: a superuser or a member of an `audit.readers` role.
fn may_read() -> bool {
    (unsafe { pg_sys::superuser() })
        || Spi::get_one::<bool>("SELECT rowsec.is_audit_reader()")
            .unwrap_or_else(|e| RowsecError::internal("checking the audit readers", e).raise())
            .unwrap_or(false)
}

fn refuse_non_reader(function: &str) -> ! {
    RowsecError::insufficient_privilege(
        format!("permission denied for function {function}"),
        "Only superusers and members of the spec's audit.readers roles read the audit trail.",
        "Ask for a role listed in audit.readers.",
    )
    .raise()
}

/// Recomputes the chain in `seq` order and returns the id of the first row whose link is broken
/// (edited, a row before it deleted, reordered), then of the first committed row without a seal
/// (sealing bypassed), or NULL when the whole trail verifies.
#[pg_extern(volatile, parallel_unsafe)]
fn verify_audit() -> Option<i64> {
    if !may_read() {
        refuse_non_reader("rowsec.verify_audit");
    }
    let _owner = AsRole::switch(extension_owner_cached());
    let what = "verifying rowsec.audit_log";
    Spi::connect(|c| -> Result<Option<i64>, RowsecError> {
        let mut cursor = c.open_cursor(
            "SELECT id, at, actor, login::pg_catalog.text, kind, object, detail::pg_catalog.text, seq, hash \
             FROM rowsec.audit_log WHERE seq IS NOT NULL ORDER BY seq",
            &[],
        );
        let mut verifier = Verifier::default();
        loop {
            let batch = cursor.fetch(10_000).map_err(|e| RowsecError::internal(what, e))?;
            if batch.is_empty() {
                break;
            }
            for r in batch {
                let seq = required(r.get::<i64>(8), what, "seq")?;
                let entry = entry_of(&r, seq, what)?;
                let hash = nullable(r.get::<Vec<u8>>(9), what, "hash")?.unwrap_or_default();
                if !verifier.check(&entry, &hash) {
                    return Ok(Some(entry.id));
                }
            }
        }
        // Rows of this transaction (or its subtransactions) are sealed at its commit; any other
        // row without a seal was committed with the seal trigger disabled.
        let unsealed = c
            .select(
                "SELECT id, xmin::pg_catalog.text::pg_catalog.int8 FROM rowsec.audit_log WHERE seq IS NULL ORDER BY id",
                None,
                &[],
            )
            .map_err(|e| RowsecError::internal(what, e))?;
        for r in unsealed {
            let xmin = required(r.get::<i64>(2), what, "xmin")?;
            let mine = unsafe { pg_sys::TransactionIdIsCurrentTransactionId(pg_sys::TransactionId::from(xmin as u32)) };
            if !mine {
                return Ok(Some(required(r.get::<i64>(1), what, "id")?));
            }
        }
        Ok(None)
    })
    .or_raise()
}

/// `rowsec.audit_data(key_column, redacted column, ...)`: on a table under `audit.data`, AFTER
/// INSERT (REFERENCING NEW TABLE), AFTER UPDATE (OLD and NEW TABLE), AFTER DELETE (OLD TABLE) and
/// AFTER TRUNCATE, each FOR EACH STATEMENT (`rowsec.audit_table` creates the four). One `data`
/// row per changed row, all written by one INSERT at the end of the statement: a per-row
/// trigger paid an SPI call for every row. An UPDATE's old and new transition tables hold the
/// rows in the same order (PostgreSQL appends each pair together), so they are read in step.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn rowsec_audit_data(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    const NAME: &str = "rowsec.audit_data()";
    let (relid, details) = unsafe {
        let data = trigger_data(fcinfo, NAME, INSTALLED_BY_ROWSEC);
        let event = (*data).tg_event;
        let rel = (*data).tg_relation;
        if event & pg_sys::TRIGGER_EVENT_OPMASK == pg_sys::TRIGGER_EVENT_TRUNCATE {
            ((*rel).rd_id, vec![json!({ "op": "truncate", "key": null, "columns": {} }).to_string()])
        } else {
            let Some(op) = Op::of(event).filter(|_| event & pg_sys::TRIGGER_EVENT_ROW == 0) else {
                not_a_statement_trigger(NAME)
            };
            let args = trigger_args(data);
            let Some((key_column, redacted)) = args.split_first() else {
                RowsecError::new(
                    PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                    format!("{NAME} needs the key column as its first argument"),
                    "The trigger was created without arguments.",
                    crate::errors::HINT_COMPILE,
                )
                .raise()
            };
            let (old_rows, new_rows) = match op {
                Op::Insert => (std::ptr::null_mut(), (*data).tg_newtable),
                Op::Update => ((*data).tg_oldtable, (*data).tg_newtable),
                Op::Delete => ((*data).tg_oldtable, std::ptr::null_mut()),
            };
            if (op != Op::Insert && old_rows.is_null()) || (op != Op::Delete && new_rows.is_null()) {
                not_a_statement_trigger(NAME)
            }
            ((*rel).rd_id, data_changes((*rel).rd_att, op, old_rows, new_rows, key_column, redacted))
        }
    };
    if details.is_empty() {
        return pg_sys::Datum::from(0);
    }
    let object = catalog::relation_name(relid);
    let actor = actor();
    let _owner = AsRole::switch(extension_owner_cached());
    Spi::run_with_args(
        "INSERT INTO rowsec.audit_log (actor, kind, object, detail) \
         SELECT $1, $2, $3, d::pg_catalog.jsonb FROM pg_catalog.unnest($4::pg_catalog.text[]) AS d",
        &[actor.into(), Kind::Data.as_str().into(), object.as_str().into(), details.into()],
    )
    .unwrap_or_else(|e| RowsecError::internal("appending data rows to rowsec.audit_log", e).raise());
    pg_sys::Datum::from(0)
}

fn not_a_statement_trigger(function: &str) -> ! {
    RowsecError::new(
        PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
        format!("{function} must be fired AFTER INSERT, UPDATE, DELETE or TRUNCATE FOR EACH STATEMENT with its transition tables"),
        "It was fired for another event, or without the transition tables it reads.",
        "Let rowsec install the triggers (rowsec.audit_table, called by the script generated by `rowsec compile`).",
    )
    .raise()
}

/// A column of an audited table as the data trigger reads it: its position, name, output
/// function (looked up once per statement) and whether its values are redacted.
struct AuditedColumn {
    index: usize,
    name: String,
    output: pg_sys::FmgrInfo,
    redacted: bool,
}

/// The `detail` of each changed row of a statement, from its transition tables, in order.
unsafe fn data_changes(
    desc: pg_sys::TupleDesc,
    op: Op,
    old_rows: *mut pg_sys::Tuplestorestate,
    new_rows: *mut pg_sys::Tuplestorestate,
    key_column: &str,
    redacted: &[String],
) -> Vec<String> {
    unsafe {
        let natts = (*desc).natts;
        let key_index = usize::try_from(attnum_of(desc, key_column) - 1).ok();
        let mut columns: Vec<AuditedColumn> = pgrx::PgTupleDesc::from_pg_unchecked(desc)
            .iter()
            .enumerate()
            .filter(|(_, att)| !att.attisdropped)
            .map(|(index, att)| {
                let (mut output, mut varlena) = (pg_sys::InvalidOid, false);
                pg_sys::getTypeOutputInfo(att.atttypid, &mut output, &mut varlena);
                let mut column = AuditedColumn {
                    index,
                    name: att.name().to_owned(),
                    output: pg_sys::FmgrInfo::default(),
                    redacted: false,
                };
                column.redacted = redacted.contains(&column.name);
                pg_sys::fmgr_info(output, &mut column.output);
                column
            })
            .collect();
        let reader = |store: *mut pg_sys::Tuplestorestate| {
            (!store.is_null()).then(|| {
                pg_sys::tuplestore_rescan(store);
                (store, pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsMinimalTuple))
            })
        };
        let (old_reader, new_reader) = (reader(old_rows), reader(new_rows));
        // The next row of a transition table, deformed (NULL: none left, or no table).
        let next = |r: Option<(*mut pg_sys::Tuplestorestate, *mut pg_sys::TupleTableSlot)>| {
            let (store, slot) = r?;
            if !pg_sys::tuplestore_gettupleslot(store, true, false, slot) {
                return None;
            }
            pg_sys::slot_getsomeattrs_int(slot, natts);
            Some(slot)
        };
        // A column's value as text (its type's output function), or NULL.
        let text = |slot: *mut pg_sys::TupleTableSlot, index: usize, output: *mut pg_sys::FmgrInfo| -> Option<String> {
            if slot.is_null() || *(*slot).tts_isnull.add(index) {
                return None;
            }
            let p = pg_sys::OutputFunctionCall(output, *(*slot).tts_values.add(index));
            let s = CStr::from_ptr(p).to_string_lossy().into_owned();
            pg_sys::pfree(p.cast());
            Some(s)
        };
        let mut details = Vec::new();
        let mut values: Vec<(Option<String>, Option<String>)> = Vec::with_capacity(columns.len());
        loop {
            let (old, new) = match (op, next(old_reader), next(new_reader)) {
                (Op::Insert, _, Some(n)) => (std::ptr::null_mut(), n),
                (Op::Delete, Some(o), _) => (o, std::ptr::null_mut()),
                (Op::Update, Some(o), Some(n)) => (o, n),
                _ => break,
            };
            values.clear();
            for c in &mut columns {
                values.push((text(old, c.index, &mut c.output), text(new, c.index, &mut c.output)));
            }
            let key = key_index
                .and_then(|k| columns.iter().position(|c| c.index == k))
                .and_then(|i| values[i].1.as_deref().or(values[i].0.as_deref()))
                .and_then(|k| k.parse::<i64>().ok());
            let changes: Vec<ColumnChange> = columns
                .iter()
                .zip(&values)
                .map(|(c, (o, n))| ColumnChange {
                    name: &c.name,
                    old: o.as_deref(),
                    new: n.as_deref(),
                    redacted: c.redacted,
                })
                .collect();
            details.push(rules::data_change(op.as_str(), key, &changes));
        }
        for (_, slot) in [old_reader, new_reader].into_iter().flatten() {
            pg_sys::ExecDropSingleTupleTableSlot(slot);
        }
        details
    }
}

#[no_mangle]
#[doc(hidden)]
pub extern "C" fn pg_finfo_rowsec_audit_data() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

pgrx::extension_sql!(
    "CREATE FUNCTION rowsec.audit_data() RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', 'rowsec_audit_data';",
    name = "audit_data"
);

/// `rowsec.audit_directory()`: AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW on the directory
/// (installed by `rowsec.configure` as `rowsec_directory_audit`). Records a person added or
/// removed, and a change of their manager, team, login or active (old and new), with what a
/// change of manager or team did to access, computed on the directory as it was before the
/// statement.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn rowsec_audit_directory(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    const NAME: &str = "rowsec.audit_directory()";
    let dir = cache::directory();
    let config = &dir.config;
    let (relid, op, old, new) = unsafe {
        let data = trigger_data(fcinfo, NAME, INSTALLED_BY_ROWSEC);
        let event = (*data).tg_event;
        let Some(op) = Op::of(event).filter(|_| event & pg_sys::TRIGGER_EVENT_ROW != 0) else {
            not_a_row_trigger(NAME)
        };
        let rel = (*data).tg_relation;
        let desc = (*rel).rd_att;
        let (old, new) = rows_of(data, op);
        let read = |tuple: pg_sys::HeapTuple| -> Option<PersonFields> {
            if tuple.is_null() {
                return None;
            }
            let col = |c: &Option<String>| c.as_deref().and_then(|c| text_of(tuple, desc, attnum_of(desc, c)));
            Some(PersonFields {
                id: text_of(tuple, desc, attnum_of(desc, &config.id_column)).and_then(|v| v.parse().ok()),
                manager: text_of(tuple, desc, attnum_of(desc, &config.manager_column)).and_then(|v| v.parse().ok()),
                team: col(&config.team_column),
                login: col(&config.login_column),
                active: col(&config.active_column).map(|v| v == "t"),
            })
        };
        ((*rel).rd_id, op, read(old), read(new))
    };
    let Some(detail) = directory_detail(&dir, op, old.as_ref(), new.as_ref()) else {
        return pg_sys::Datum::from(0);
    };
    let object = catalog::relation_name(relid);
    append(Kind::Directory, Some(&object), &detail, actor());
    pg_sys::Datum::from(0)
}

#[no_mangle]
#[doc(hidden)]
pub extern "C" fn pg_finfo_rowsec_audit_directory() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

pgrx::extension_sql!(
    "CREATE FUNCTION rowsec.audit_directory() RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', 'rowsec_audit_directory';",
    name = "audit_directory"
);

/// The columns of a directory row that decide access.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PersonFields {
    id: Option<i64>,
    manager: Option<i64>,
    team: Option<String>,
    login: Option<String>,
    active: Option<bool>,
}

/// `{"op", "id", "changes": {field: {old, new}}, "access": {...}}`, or `None` for an update that
/// changed none of id, manager, team, login, active.
fn directory_detail(
    dir: &cache::DirectoryCache,
    op: Op,
    old: Option<&PersonFields>,
    new: Option<&PersonFields>,
) -> Option<Value> {
    let d = dir.directory();
    let field = |f: fn(&PersonFields) -> Value| (old.map_or(Value::Null, f), new.map_or(Value::Null, f));
    let fields: [(&str, (Value, Value)); 5] = [
        ("id", field(|p| json!(p.id))),
        ("manager", field(|p| json!(p.manager))),
        ("team", field(|p| json!(p.team))),
        ("login", field(|p| json!(p.login))),
        ("active", field(|p| json!(p.active))),
    ];
    let mut changes = Map::new();
    for (name, (o, n)) in fields {
        if o != n {
            changes.insert(name.to_owned(), json!({ "old": o, "new": n }));
        }
    }
    if changes.is_empty() {
        return None;
    }
    let id = new.or(old).and_then(|p| p.id);
    let mut access = Map::new();
    if let Some(person) = id {
        let (om, nm) = (old.and_then(|p| p.manager), new.and_then(|p| p.manager));
        if om != nm {
            access.insert("manager".into(), rules::manager_move(d, person, om, nm).to_json());
        }
        let (ot, nt) = (old.and_then(|p| p.team.as_deref()), new.and_then(|p| p.team.as_deref()));
        if dir.config.team_column.is_some() && ot != nt {
            access.insert("team".into(), rules::team_move(d, person, ot, nt));
        }
    }
    Some(json!({ "op": op.as_str(), "id": id, "changes": changes, "access": access }))
}

// ---------------------------------------------------------------------------------------------
// apply: the generated script records itself, in its own transaction.

/// Records that a compiled script was applied: its spec's SHA-256, the rowsec version that
/// compiled it, and what it changed (`changes`, as the script counts it). Owner only; called at
/// the end of the generated script, so a rolled-back apply leaves no row.
#[pg_extern(volatile, parallel_unsafe)]
fn record_apply(spec_sha256: Text, rowsec_version: Text, changes: default!(Option<JsonB>, "'{}'")) -> i64 {
    let changes = changes.map_or_else(|| json!({}), |j| j.0);
    let detail = json!({ "spec_sha256": spec_sha256.0, "rowsec_version": rowsec_version.0, "changes": changes });
    append(Kind::Apply, Some(&spec_sha256.0), &detail, actor())
}

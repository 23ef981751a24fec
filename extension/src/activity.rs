//! Activity (SPEC item 13) and the alerts evaluated over it (item 14).
//!
//! Rows are counted once, by the limits' scan counters (`limits.rs`): per statement, each
//! protected table and command. When `monitoring.reads` is on, every protected scan is counted
//! (with no limit, a limit of `u64::MAX`), the statement is stamped at its start with the time,
//! the person (as policies resolve them) and the session user, and at its end (or when its
//! transaction aborts: a limit failure, a rollback) one record per table goes into the shared
//! ring (`ring.rs`). A per-database background worker (`worker.rs`) stores the records into the
//! partitioned `rowsec.activity` and evaluates the alert rules there (`rowsec.activity_store`,
//! sql/finalize.sql), so no statement waits for the log.
//!
//! `rowsec.clock` (superuser only) replaces the time a statement is stamped with: a testing aid
//! that lets a test run "at 23:00 in Shanghai" without special cases in the code it tests.

pub mod ring;
pub mod worker;

use crate::cache;
use crate::errors::{OrRaise, RowsecError};
use crate::identity::Caller;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use ring::{Record, LOGIN_BYTES, NOBODY};
use rowsec_core::limits::Command;
use rowsec_core::monitoring::parse_rules;
use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::time::{Duration, Instant};

/// Who ran a statement and when, taken when it starts.
#[derive(Clone, Copy)]
pub struct Stamp {
    at: i64,
    person: i64,
    login: [u8; LOGIN_BYTES],
    login_len: u8,
}

static mut CLOCK: *mut c_char = std::ptr::null_mut();

/// The settings: `rowsec.clock` in every backend, `rowsec.activity_buffer` when preloading.
pub fn define_settings(preloading: bool) {
    unsafe {
        pg_sys::DefineCustomStringVariable(
            c"rowsec.clock".as_ptr(),
            c"Testing aid: the time rowsec stamps activity with instead of the statement's start.".as_ptr(),
            c"Empty: the real time. Superusers only.".as_ptr(),
            &raw mut CLOCK,
            c"".as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            0,
            None,
            None,
            None,
        );
        if preloading {
            pg_sys::DefineCustomIntVariable(
                c"rowsec.activity_buffer".as_ptr(),
                c"Activity records the shared buffer holds before the writer stores them.".as_ptr(),
                c"When it is full, records are dropped and counted (rowsec.activity_status()).".as_ptr(),
                &raw mut ring::CAPACITY,
                16384,
                64,
                4_194_304,
                pg_sys::GucContext::PGC_POSTMASTER,
                0,
                None,
                None,
                None,
            );
        }
    }
}

thread_local! {
    static LOGIN: RefCell<Option<(pg_sys::Oid, [u8; LOGIN_BYTES], u8)>> = const { RefCell::new(None) };
    static CLOCK_PARSED: RefCell<Option<(String, i64)>> = const { RefCell::new(None) };
}

fn now() -> i64 {
    let text = unsafe { CLOCK.as_ref().map(|p| CStr::from_ptr(p)) }.map(|c| c.to_string_lossy().into_owned());
    match text.filter(|t| !t.trim().is_empty()) {
        None => unsafe { pg_sys::GetCurrentStatementStartTimestamp() },
        Some(text) => {
            if let Some(at) = CLOCK_PARSED.with(|c| c.borrow().as_ref().filter(|(t, _)| *t == text).map(|(_, at)| *at))
            {
                return at;
            }
            let at: TimestampWithTimeZone = text.parse().unwrap_or_else(|_| {
                RowsecError::invalid_parameter(
                    format!("rowsec.clock is not a time: \"{text}\""),
                    "rowsec.clock, a testing aid, sets the time activity is stamped with.",
                    "Set it to a timestamptz such as '2026-12-07 23:00:00+08', or RESET rowsec.clock.",
                )
                .raise()
            });
            let at = at.into_datum().map_or(0, |d| d.value() as i64);
            CLOCK_PARSED.with(|c| *c.borrow_mut() = Some((text, at)));
            at
        }
    }
}

fn login() -> ([u8; LOGIN_BYTES], u8) {
    let oid = unsafe { pg_sys::GetSessionUserId() };
    if let Some((_, name, len)) = LOGIN.with(|l| *l.borrow()).filter(|(o, _, _)| *o == oid) {
        return (name, len);
    }
    let mut name = [0u8; LOGIN_BYTES];
    let p = unsafe { pg_sys::GetUserNameFromId(oid, true) };
    let bytes = if p.is_null() { &[][..] } else { unsafe { CStr::from_ptr(p) }.to_bytes() };
    let len = bytes.len().min(LOGIN_BYTES);
    name[..len].copy_from_slice(&bytes[..len]);
    LOGIN.with(|l| *l.borrow_mut() = Some((oid, name, len as u8)));
    (name, len as u8)
}

/// The stamp of a statement that starts now.
pub fn stamp() -> Stamp {
    let person = cache::directory_if_configured()
        .and_then(|dir| Caller::current(&dir.config.identity).person(&dir).map(|p| dir.directory().id(p)))
        .unwrap_or(NOBODY);
    let (login, login_len) = login();
    Stamp { at: now(), person, login, login_len }
}

/// A statement ended (or its transaction aborted, `failed`): one record per table and command.
/// Never raises: it runs in abort processing too.
pub fn record(counts: &[(pg_sys::Oid, Command, u64)], stamp: &Stamp, failed: bool) {
    if counts.is_empty() || !ring::available() {
        return;
    }
    let db = unsafe { pg_sys::MyDatabaseId }.to_u32();
    let records: Vec<Record> = counts
        .iter()
        .map(|(relid, command, rows)| Record {
            db,
            relid: relid.to_u32(),
            at: stamp.at,
            person: stamp.person,
            rows: *rows,
            command: command.index() as u8,
            failed: u8::from(failed),
            login_len: stamp.login_len,
            login: stamp.login,
        })
        .collect();
    ring::push(&records);
    ensure_writer(db);
}

/// Starts the database's writer when none runs.
fn ensure_writer(db: u32) {
    if let Some(slot) = ring::claim_for_start(db) {
        if !worker::start(db) {
            // No background worker slot now (max_worker_processes): the next statement retries.
            ring::release(slot);
        }
    }
}

fn not_preloaded(what: &str) -> RowsecError {
    RowsecError::new(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("{what} needs the rowsec library in shared_preload_libraries"),
        "Activity is buffered in shared memory and stored by a background worker, which exist only when PostgreSQL loads rowsec at server start.",
        "Add rowsec to shared_preload_libraries in postgresql.conf, restart the server, and run the script again.",
    )
}

/// `rowsec.flush_activity()`: returns once the activity recorded in this database before the
/// call is stored in rowsec.activity (and its alerts evaluated), and old partitions dropped.
#[pg_extern(volatile, parallel_unsafe)]
fn flush_activity() {
    if !ring::available() {
        not_preloaded("rowsec.flush_activity").raise();
    }
    let db = unsafe { pg_sys::MyDatabaseId }.to_u32();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut asked: Option<(usize, u64)> = None;
    loop {
        ensure_writer(db);
        if let Some(slot) = ring::slot_of(db) {
            let address = slot as *const ring::DbSlot as usize;
            let request = match asked {
                Some((a, r)) if a == address => r,
                _ => {
                    let r = slot.requested.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1;
                    asked = Some((address, r));
                    r
                }
            };
            if slot.done.load(std::sync::atomic::Ordering::Acquire) >= request {
                return;
            }
        }
        if Instant::now() > deadline {
            RowsecError::new(
                PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
                "rowsec.flush_activity: the activity writer did not finish within 30 seconds",
                "The writer is a background worker of this database; it may be waiting for a lock on rowsec.activity or for a free worker slot.",
                "Look at the server log for rowsec's warnings, and raise max_worker_processes if it is exhausted.",
            )
            .raise();
        }
        unsafe { pg_sys::pg_usleep(10_000) };
        pgrx::check_for_interrupts!();
    }
}

/// `rowsec.activity_status()`: the shared buffer's capacity, records waiting to be stored,
/// records dropped because it was full (since server start), and its size in bytes. Readers of
/// the activity only.
#[pg_extern(volatile, parallel_unsafe)]
fn activity_status() -> TableIterator<
    'static,
    (name!(buffer_records, i64), name!(waiting, i64), name!(dropped, i64), name!(shared_memory_bytes, i64)),
> {
    let reader = unsafe { pg_sys::superuser() }
        || Spi::get_one::<bool>("SELECT rowsec.is_audit_reader()").ok().flatten().unwrap_or(false);
    if !reader {
        RowsecError::insufficient_privilege(
            "only superusers and members of audit.readers may read rowsec.activity_status()",
            "The activity and what happens to it are for auditors.",
            "Ask for a role listed under audit.readers in the spec.",
        )
        .raise();
    }
    let (capacity, waiting, dropped) = ring::status();
    let bytes = if ring::available() { ring::size() as i64 } else { 0 };
    TableIterator::once((capacity as i64, waiting as i64, dropped as i64, bytes))
}

/// `rowsec.configure_monitoring(reads boolean, alerts jsonb)`: `monitoring:` of the spec,
/// replacing what an earlier spec configured (no reads and no alerts: monitoring off). Owner only.
#[pg_extern(volatile, parallel_unsafe)]
fn configure_monitoring(reads: bool, alerts: pgrx::JsonB) {
    let rules = parse_rules(&alerts.0, reads).unwrap_or_else(|e| RowsecError::invalid_argument(&e).raise());
    if reads && !crate::limits::preloaded() {
        not_preloaded("monitoring (monitoring.reads)").raise();
    }
    for rule in &rules {
        if let rowsec_core::monitoring::Rule::OffHours { timezone, .. } = rule {
            let known = Spi::get_one_with_args::<bool>(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_timezone_names WHERE name OPERATOR(pg_catalog.=) $1)",
                &[timezone.as_str().into()],
            )
            .ok()
            .flatten()
            .unwrap_or(false);
            if !known {
                RowsecError::invalid_parameter(
                    format!("unknown time zone \"{timezone}\" in alert rule \"off_hours\""),
                    "The time zone names PostgreSQL knows are in pg_timezone_names.",
                    "Use a name such as Asia/Shanghai or UTC in monitoring.alerts.",
                )
                .raise();
            }
        }
    }
    let what = "storing rowsec.monitoring";
    let alerts_text = alerts.0.to_string();
    Spi::connect_mut(|c| -> Result<(), RowsecError> {
        c.update("DELETE FROM rowsec.monitoring", None, &[]).map_err(|e| RowsecError::internal(what, e))?;
        if reads {
            c.update(
                "INSERT INTO rowsec.monitoring (reads, alerts) VALUES (true, $1::jsonb)",
                None,
                &[alerts_text.as_str().into()],
            )
            .map_err(|e| RowsecError::internal(what, e))?;
        }
        Ok(())
    })
    .or_raise();
}

//! The activity writer: one dynamic background worker per database with activity to store,
//! started by the first backend that records some (`super::ensure_writer`), leaving when idle.
//!
//! Why per database and short-lived: a background worker connects to one database for its life,
//! and a process connected to a database makes `CREATE DATABASE ... TEMPLATE` and `DROP
//! DATABASE` of it wait (they give other sessions 5 seconds). A writer leaves after
//! [`IDLE_EXIT`] without records, and only databases where `monitoring.reads` is on produce any.
//!
//! Each round: take the database's records from the ring, store them and evaluate the alerts in
//! one transaction (`rowsec.activity_store`), and every minute or when asked
//! (`rowsec.flush_activity()`) create partitions ahead and drop those past the retention
//! (`rowsec.activity_maintain`). A round that fails (a lock timeout, a dropped table) is logged
//! and retried with the same records; nothing is lost silently.

use super::ring::{self, Record, NOBODY};
use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::pg_sys::panic::CaughtError;
use pgrx::pg_sys::PgTryBuilder;
use pgrx::prelude::*;
use std::time::{Duration, Instant};

const ROUND: Duration = Duration::from_millis(200);
const IDLE_EXIT: Duration = Duration::from_secs(1);
const MAINTAIN_EVERY: Duration = Duration::from_secs(60);
/// Records stored per transaction.
const BATCH: usize = 5000;
/// Records kept in memory while the store keeps failing; beyond, the oldest are dropped (counted).
const MAX_PENDING: usize = 100_000;

/// Registers the writer of `db` (from a backend). False: no background worker slot was free.
pub fn start(db: u32) -> bool {
    unsafe {
        let mut w: pg_sys::BackgroundWorker = std::mem::zeroed();
        copy_c(&mut w.bgw_name, &format!("rowsec activity writer for database {db}"));
        copy_c(&mut w.bgw_type, "rowsec activity writer");
        copy_c(&mut w.bgw_library_name, "rowsec");
        copy_c(&mut w.bgw_function_name, "rowsec_activity_worker");
        w.bgw_flags = (pg_sys::BGWORKER_SHMEM_ACCESS | pg_sys::BGWORKER_BACKEND_DATABASE_CONNECTION) as i32;
        w.bgw_start_time = pg_sys::BgWorkerStartTime::BgWorkerStart_RecoveryFinished;
        w.bgw_restart_time = pg_sys::BGW_NEVER_RESTART;
        w.bgw_main_arg = pg_sys::Datum::from(db);
        w.bgw_notify_pid = 0;
        let mut handle: *mut pg_sys::BackgroundWorkerHandle = std::ptr::null_mut();
        pg_sys::RegisterDynamicBackgroundWorker(&mut w, &mut handle)
    }
}

fn copy_c<const N: usize>(dst: &mut [std::ffi::c_char; N], s: &str) {
    for (d, b) in dst.iter_mut().zip(s.bytes().take(N - 1)) {
        *d = b as std::ffi::c_char;
    }
}

static mut MY_DB: u32 = 0;
/// Set once the writer gave its slot back itself (a later writer of the database may hold one).
static mut LEFT: bool = false;

unsafe extern "C-unwind" fn on_exit(_code: i32, _arg: pg_sys::Datum) {
    // Whatever ended the writer (an error, SIGTERM), its slot is free for the next one.
    if unsafe { LEFT } {
        return;
    }
    if let Some(s) = ring::slot_of(unsafe { MY_DB }) {
        ring::release(s);
    }
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn rowsec_activity_worker(arg: pg_sys::Datum) {
    let db = arg.value() as u32;
    unsafe {
        MY_DB = db;
        pg_sys::before_shmem_exit(Some(on_exit), pg_sys::Datum::from(0));
    }
    let Some(slot) = ring::mark_running(db) else { return };
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    unsafe {
        pg_sys::BackgroundWorkerInitializeConnectionByOid(pg_sys::Oid::from(db), pg_sys::InvalidOid, 0);
        // A reader holding a lock the writer needs (a new partition) delays it, never stalls it.
        pg_sys::SetConfigOption(
            c"lock_timeout".as_ptr(),
            c"5s".as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_SESSION,
        );
    }

    let mut pending: Vec<Record> = Vec::new();
    let mut last_work = Instant::now();
    let mut last_maintained: Option<Instant> = None;
    let mut dropped_logged = ring::dropped();
    let mut first = true;
    loop {
        if !first && !BackgroundWorker::wait_latch(Some(ROUND)) {
            break;
        }
        first = false;
        let asked = slot.requested.load(std::sync::atomic::Ordering::Acquire);
        let max = BATCH.saturating_sub(pending.len()).max(1);
        let (_, mut taken) = ring::drain(db, max);
        // Fewer than asked for: every record of the database that was in the ring is taken.
        let took_all = taken.len() < max;
        pending.append(&mut taken);
        let dropped = ring::dropped();
        if dropped > dropped_logged {
            warning!(
                "rowsec: {} activity records were dropped since the last report: the buffer (rowsec.activity_buffer) was full",
                dropped - dropped_logged
            );
            dropped_logged = dropped;
        }
        let maintain = asked != slot.done.load(std::sync::atomic::Ordering::Acquire)
            || last_maintained.is_none_or(|t| t.elapsed() >= MAINTAIN_EVERY);
        if !pending.is_empty() || maintain {
            let batch = std::mem::take(&mut pending);
            match round(&batch, maintain) {
                Ok(()) => {
                    last_work = Instant::now();
                    if maintain {
                        last_maintained = Some(Instant::now());
                    }
                }
                Err(message) => {
                    warning!("rowsec: storing {} activity records failed, retrying: {message}", batch.len());
                    pending = batch;
                    if pending.len() > MAX_PENDING {
                        let lost = pending.len() - MAX_PENDING;
                        pending.drain(..lost);
                        warning!("rowsec: {lost} activity records were dropped: storing them kept failing");
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
        }
        // A flush asked before this round started is complete once what it drained is stored.
        if pending.is_empty() && took_all {
            slot.done.fetch_max(asked, std::sync::atomic::Ordering::AcqRel);
        }
        if pending.is_empty() && last_work.elapsed() >= IDLE_EXIT && ring::leave_if_idle(db, slot) {
            unsafe { LEFT = true };
            break;
        }
    }
}

/// One transaction: the records, the alerts they fire, and maintenance when due.
fn round(batch: &[Record], maintain: bool) -> Result<(), String> {
    let result = PgTryBuilder::new(|| {
        BackgroundWorker::transaction(|| store(batch, maintain));
        Ok(())
    })
    .catch_others(|e| {
        Err(match e {
            CaughtError::PostgresError(r) => r.message().to_owned(),
            CaughtError::ErrorReport(r) => r.message().to_owned(),
            CaughtError::RustPanic { ereport, .. } => ereport.message().to_owned(),
        })
    })
    .execute();
    if result.is_err() {
        unsafe { pg_sys::AbortCurrentTransaction() };
    }
    result
}

fn store(batch: &[Record], maintain: bool) {
    // Nothing to store into when rowsec was dropped from the database meanwhile.
    let installed = Spi::get_one::<bool>("SELECT pg_catalog.to_regclass('rowsec.activity') IS NOT NULL")
        .ok()
        .flatten()
        .unwrap_or(false);
    if !installed {
        return;
    }
    if !batch.is_empty() {
        let at: Vec<i64> = batch.iter().map(|r| r.at).collect();
        let person: Vec<Option<i64>> = batch.iter().map(|r| (r.person != NOBODY).then_some(r.person)).collect();
        let login: Vec<String> = batch
            .iter()
            .map(|r| String::from_utf8_lossy(&r.login[..usize::from(r.login_len).min(ring::LOGIN_BYTES)]).into_owned())
            .collect();
        let relid: Vec<i64> = batch.iter().map(|r| i64::from(r.relid)).collect();
        let command: Vec<String> = batch
            .iter()
            .map(|r| rowsec_core::limits::Command::RECORDED[usize::from(r.command) % 4].name().to_owned())
            .collect();
        let rows: Vec<i64> = batch.iter().map(|r| i64::try_from(r.rows).unwrap_or(i64::MAX)).collect();
        let failed: Vec<bool> = batch.iter().map(|r| r.failed != 0).collect();
        Spi::run_with_args(
            "SELECT rowsec.activity_store($1, $2, $3, $4, $5, $6, $7)",
            &[at.into(), person.into(), login.into(), relid.into(), command.into(), rows.into(), failed.into()],
        )
        .unwrap_or_else(|e| panic!("rowsec.activity_store: {e}"));
    }
    if maintain {
        Spi::run("SELECT rowsec.activity_maintain()").unwrap_or_else(|e| panic!("rowsec.activity_maintain: {e}"));
    }
}

//! The shared memory a parallel query's workers count into: one slot per backend, indexed by
//! its backend number, holding the counters of the parallel query that backend leads. The
//! leader fills its slot at ExecutorStart (before any worker starts) and reads it back at
//! ExecutorEnd (after every worker stopped); workers only add to the counters. Size: about 400
//! bytes per possible backend (`max_connections` + background processes), allocated at server
//! start, whatever the number of people.

use crate::compat;
use crate::errors::RowsecError;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use rowsec_core::limits::Command;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Protected tables one parallel query can count (a statement scanning more fails, 54000).
pub const ENTRIES: usize = 16;

#[repr(C)]
pub struct Entry {
    relid: AtomicU32,
    command: AtomicU32,
    limit: AtomicU64,
    count: AtomicU64,
}

impl Entry {
    /// Adds one row; returns the rows counted so far, by the leader and every worker.
    pub fn add_one(&self) -> u64 {
        self.count.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub fn undo_one(&self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Acquire)
    }
}

#[repr(C)]
struct Slot {
    used: AtomicU32,
    entries: [Entry; ENTRIES],
}

static mut SLOTS: *mut Slot = std::ptr::null_mut();
static mut NSLOTS: usize = 0;

fn slots_wanted() -> usize {
    // Backend numbers run from 0 (18) or 1 (15) up to MaxBackends.
    unsafe { pg_sys::MaxBackends as usize + 1 }
}

/// Size of the shared memory rowsec asks for, in bytes.
pub fn size() -> usize {
    slots_wanted() * std::mem::size_of::<Slot>()
}

/// Creates or finds the slots (crate::shmem's startup hook).
///
/// # Safety
/// Only from the shared memory startup hook.
pub unsafe fn attach() {
    unsafe {
        SLOTS = crate::shmem::region(c"rowsec limits", size(), |_| {}).cast();
        NSLOTS = slots_wanted();
    }
}

fn slot(index: usize) -> Option<&'static Slot> {
    unsafe {
        if SLOTS.is_null() || index >= NSLOTS {
            return None;
        }
        Some(&*SLOTS.add(index))
    }
}

fn own() -> &'static Slot {
    slot(compat::own_backend_number()).unwrap_or_else(|| {
        RowsecError::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "rowsec's shared memory for limits is missing",
            "A parallel query with limits needs the slots rowsec allocates at server start.",
            "Add rowsec to shared_preload_libraries in postgresql.conf and restart the server.",
        )
        .raise()
    })
}

/// Empties this backend's slot (a new parallel query starts).
pub fn reset_own() {
    own().used.store(0, Ordering::Release);
}

/// Empties this backend's slot when the shared memory exists (nothing to empty otherwise).
pub fn reset_own_if_allocated() {
    if let Some(s) = slot(compat::own_backend_number()) {
        s.used.store(0, Ordering::Release);
    }
}

/// The entry of this backend's slot for (table, command), added with `count` rows if new.
pub fn publish(relid: pg_sys::Oid, command: Command, limit: u64, count: u64) -> Result<&'static Entry, RowsecError> {
    let s = own();
    let used = s.used.load(Ordering::Acquire) as usize;
    if let Some(e) = find(s, used, relid, command) {
        return Ok(e);
    }
    if used == ENTRIES {
        return Err(RowsecError::new(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("a parallel query may count the rows of at most {ENTRIES} protected tables with limits"),
            "rowsec counts rows of each table with a limit in shared memory while parallel workers run.",
            "Run the statement with max_parallel_workers_per_gather = 0.",
        ));
    }
    let e = &s.entries[used];
    e.relid.store(relid.to_u32(), Ordering::Relaxed);
    e.command.store(command.index() as u32, Ordering::Relaxed);
    e.limit.store(limit, Ordering::Relaxed);
    e.count.store(count, Ordering::Relaxed);
    s.used.store(used as u32 + 1, Ordering::Release);
    Ok(e)
}

fn find(s: &'static Slot, used: usize, relid: pg_sys::Oid, command: Command) -> Option<&'static Entry> {
    s.entries[..used.min(ENTRIES)].iter().find(|e| {
        e.relid.load(Ordering::Relaxed) == relid.to_u32() && e.command.load(Ordering::Relaxed) == command.index() as u32
    })
}

/// In a parallel worker: the leader's entry for (table, command); `None`: no limit applies.
pub fn leader_entry(relid: pg_sys::Oid, command: Command) -> Option<&'static Entry> {
    let s = slot(compat::leader_backend_number())?;
    find(s, s.used.load(Ordering::Acquire) as usize, relid, command)
}

/// What this backend's slot counted, to hand back to the statement's counters.
pub fn own_counts() -> Vec<(pg_sys::Oid, Command, u64)> {
    let s = own();
    let used = (s.used.load(Ordering::Acquire) as usize).min(ENTRIES);
    s.entries[..used]
        .iter()
        .map(|e| {
            (
                pg_sys::Oid::from(e.relid.load(Ordering::Relaxed)),
                Command::ALL[e.command.load(Ordering::Relaxed) as usize % 3],
                e.count.load(Ordering::Acquire),
            )
        })
        .collect()
}

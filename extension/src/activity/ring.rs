//! The shared-memory buffer between the backends that record activity and the writers that
//! store it (SPEC item 13): a ring of fixed-size records, one per statement and protected table,
//! and one slot per database with a writer (a dynamic background worker, `worker.rs`).
//!
//! A backend appends at statement end (or when its transaction aborts) under a spinlock held for
//! a few copies: never a wait on I/O, a lock of the database or the writer. When the ring is
//! full the record is dropped and counted (`dropped`; the writer logs a WARNING, readers see the
//! count in `rowsec.activity_status()`): a user's statement never waits for the log.
//!
//! Size: `rowsec.activity_buffer` records of [`RECORD_SIZE`] bytes plus [`DATABASES`] slots,
//! allocated at server start, whatever the number of people.

use pgrx::pg_sys;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

/// Databases whose writers may run at once (one slot each, freed when the writer exits idle).
pub const DATABASES: usize = 32;
pub const LOGIN_BYTES: usize = 64;

/// One statement's rows of one protected table.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Record {
    /// The database; 0: an empty or consumed place.
    pub db: u32,
    pub relid: u32,
    /// Microseconds since 2000-01-01 UTC (PostgreSQL's TimestampTz).
    pub at: i64,
    /// The person, `i64::MIN`: nobody.
    pub person: i64,
    pub rows: u64,
    /// 0 select, 1 update, 2 delete, 3 insert (`rowsec_core::limits::Command::index`).
    pub command: u8,
    pub failed: u8,
    pub login_len: u8,
    pub login: [u8; LOGIN_BYTES],
}

pub const RECORD_SIZE: usize = std::mem::size_of::<Record>();
pub const NOBODY: i64 = i64::MIN;

pub const IDLE: u64 = 0;
pub const STARTING: u64 = 1;
pub const RUNNING: u64 = 2;

/// A database's writer: `state` packs the database (high 32 bits) and IDLE/STARTING/RUNNING.
#[repr(C)]
pub struct DbSlot {
    state: AtomicU64,
    /// When STARTING was set (ms since 2000): a writer that never came is replaced after a while.
    since_ms: AtomicI64,
    /// Flush requests (`rowsec.flush_activity`) made, and the last one the writer completed.
    pub requested: AtomicU64,
    pub done: AtomicU64,
}

#[repr(C)]
struct Header {
    lock: AtomicU32,
    capacity: u64,
    /// Positions: records [tail, head) are in the ring (some consumed, db = 0).
    head: AtomicU64,
    tail: AtomicU64,
    dropped: AtomicU64,
    dbs: [DbSlot; DATABASES],
}

static mut HEADER: *mut Header = std::ptr::null_mut();
static mut RECORDS: *mut Record = std::ptr::null_mut();

/// `rowsec.activity_buffer`: records the ring holds (set at server start).
pub static mut CAPACITY: i32 = 16384;

pub fn size() -> usize {
    std::mem::size_of::<Header>() + unsafe { CAPACITY.max(1) as usize } * RECORD_SIZE
}

/// Creates or finds the ring (crate::shmem's startup hook).
///
/// # Safety
/// Only from the shared memory startup hook.
pub unsafe fn attach() {
    unsafe {
        let p = crate::shmem::region(c"rowsec activity", size(), |p| {
            (*p.cast::<Header>()).capacity = CAPACITY.max(1) as u64;
        });
        HEADER = p.cast();
        RECORDS = p.add(std::mem::size_of::<Header>()).cast();
    }
}

fn header() -> Option<&'static Header> {
    unsafe { HEADER.as_ref() }
}

/// The ring's spinlock: held for copies only, so spinning is cheaper than sleeping.
struct Locked<'a>(&'a Header);

impl<'a> Locked<'a> {
    fn take(h: &'a Header) -> Locked<'a> {
        let mut spins = 0u32;
        while h.lock.compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {
            spins += 1;
            if spins % 1000 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        Locked(h)
    }

    fn record(&self, position: u64) -> *mut Record {
        unsafe { RECORDS.add((position % self.0.capacity) as usize) }
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.0.lock.store(0, Ordering::Release);
    }
}

/// Whether the ring exists (the library was preloaded).
pub fn available() -> bool {
    header().is_some()
}

/// Appends records; those that do not fit are dropped and counted. Never blocks, never raises.
pub fn push(records: &[Record]) {
    let Some(h) = header() else { return };
    let l = Locked::take(h);
    let mut head = h.head.load(Ordering::Relaxed);
    let tail = h.tail.load(Ordering::Relaxed);
    let mut dropped = 0;
    for r in records {
        if head - tail >= h.capacity {
            dropped += 1;
            continue;
        }
        unsafe { l.record(head).write(*r) };
        head += 1;
    }
    h.head.store(head, Ordering::Release);
    drop(l);
    if dropped > 0 {
        h.dropped.fetch_add(dropped, Ordering::Relaxed);
    }
}

/// Takes every record of `db` out of the ring (at most `max`), a chunk per lock, and returns
/// them with the head position they were taken up to.
pub fn drain(db: u32, max: usize) -> (u64, Vec<Record>) {
    let Some(h) = header() else { return (0, Vec::new()) };
    let mut out = Vec::new();
    let end = h.head.load(Ordering::Acquire);
    let mut position = h.tail.load(Ordering::Acquire);
    const CHUNK: u64 = 512;
    while position < end && out.len() < max {
        let l = Locked::take(h);
        // The tail may have moved past `position` (another writer consumed and advanced).
        position = position.max(h.tail.load(Ordering::Relaxed));
        let stop = (position + CHUNK).min(end);
        while position < stop && out.len() < max {
            let r = l.record(position);
            unsafe {
                if (*r).db == db {
                    out.push(*r);
                    (*r).db = 0;
                }
            }
            position += 1;
        }
        // Consumed records at the tail free their places.
        let mut tail = h.tail.load(Ordering::Relaxed);
        let head = h.head.load(Ordering::Relaxed);
        while tail < head && unsafe { (*l.record(tail)).db } == 0 {
            tail += 1;
        }
        h.tail.store(tail, Ordering::Release);
    }
    (position.min(end), out)
}

/// (capacity, records waiting, records dropped since server start).
pub fn status() -> (u64, u64, u64) {
    let Some(h) = header() else { return (0, 0, 0) };
    let _l = Locked::take(h);
    let waiting = h.head.load(Ordering::Relaxed) - h.tail.load(Ordering::Relaxed);
    (h.capacity, waiting, h.dropped.load(Ordering::Relaxed))
}

pub fn dropped() -> u64 {
    header().map_or(0, |h| h.dropped.load(Ordering::Relaxed))
}

fn now_ms() -> i64 {
    unsafe { pg_sys::GetCurrentTimestamp() / 1000 }
}

/// A writer that was asked for and has not started within this long is asked for again.
const START_TIMEOUT_MS: i64 = 10_000;

/// The slot of `db`'s writer, if one is running or starting.
pub fn slot_of(db: u32) -> Option<&'static DbSlot> {
    let h = header()?;
    h.dbs.iter().find(|s| {
        let v = s.state.load(Ordering::Acquire);
        v >> 32 == u64::from(db) && (v & 0xff) != IDLE
    })
}

/// Makes sure `db` has a writer: when none runs, claims a slot and returns it, and the caller
/// starts the worker (`Some`). `None`: one runs or is starting, or no slot is free.
pub fn claim_for_start(db: u32) -> Option<&'static DbSlot> {
    let h = header()?;
    if let Some(s) = slot_of(db) {
        let v = s.state.load(Ordering::Acquire);
        let stale = (v & 0xff) == STARTING && now_ms() - s.since_ms.load(Ordering::Relaxed) > START_TIMEOUT_MS;
        if !stale {
            return None;
        }
        // Claimed under the lock below, like a free slot.
        let _l = Locked::take(h);
        if s.state.load(Ordering::Acquire) != v {
            return None;
        }
        s.since_ms.store(now_ms(), Ordering::Relaxed);
        return Some(s);
    }
    // Under the ring's lock: two backends must not claim two slots for one database.
    let _l = Locked::take(h);
    if slot_of(db).is_some() {
        return None;
    }
    let s = h.dbs.iter().find(|s| s.state.load(Ordering::Acquire) == 0)?;
    s.since_ms.store(now_ms(), Ordering::Relaxed);
    s.state.store((u64::from(db) << 32) | STARTING, Ordering::Release);
    Some(s)
}

/// The worker could not be registered: the slot is free again.
pub fn release(s: &DbSlot) {
    s.state.store(0, Ordering::Release);
}

/// The writer of `db` has started.
pub fn mark_running(db: u32) -> Option<&'static DbSlot> {
    let s = slot_of(db)?;
    s.state.store((u64::from(db) << 32) | RUNNING, Ordering::Release);
    Some(s)
}

/// An idle writer leaves: frees its slot unless records of its database arrived meanwhile
/// (then it keeps the slot and goes on). Returns whether it may exit.
pub fn leave_if_idle(db: u32, s: &DbSlot) -> bool {
    let Some(h) = header() else { return true };
    let l = Locked::take(h);
    let (tail, head) = (h.tail.load(Ordering::Relaxed), h.head.load(Ordering::Relaxed));
    let waiting = (tail..head).any(|p| unsafe { (*l.record(p)).db } == db);
    let asked = s.requested.load(Ordering::Acquire) != s.done.load(Ordering::Acquire);
    if waiting || asked {
        return false;
    }
    s.state.store(0, Ordering::Release);
    true
}

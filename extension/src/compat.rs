//! What differs between the PostgreSQL versions rowsec builds for (features `pg15`, `pg18`), in
//! one place: the rest of the extension is the same source for every version.

use pgrx::pg_sys;

/// The setting that makes the planner use parallel workers even for cheap plans (tests use it to
/// run policy functions inside workers): `force_parallel_mode` until 15, then renamed.
#[cfg(all(any(test, feature = "pg_test"), feature = "pg15"))]
pub const FORCE_PARALLEL_SETTING: &str = "force_parallel_mode";
#[cfg(all(any(test, feature = "pg_test"), not(feature = "pg15")))]
pub const FORCE_PARALLEL_SETTING: &str = "debug_parallel_query";

/// The attributes of a tuple descriptor. From 18 on, PostgreSQL keeps a compact array first and
/// the full `pg_attribute` rows after it, so `attrs` is gone.
///
/// # Safety
/// `desc` must point to a valid tuple descriptor that outlives the returned slice.
pub unsafe fn attributes<'a>(desc: *const pg_sys::TupleDescData) -> &'a [pg_sys::FormData_pg_attribute] {
    unsafe {
        let natts = (*desc).natts as usize;
        #[cfg(feature = "pg15")]
        {
            (*desc).attrs.as_slice(natts)
        }
        #[cfg(not(feature = "pg15"))]
        {
            let full = (*desc).compact_attrs.as_ptr().add(natts).cast::<pg_sys::FormData_pg_attribute>();
            std::slice::from_raw_parts(full, natts)
        }
    }
}

/// This backend's number, the index of its slot in rowsec's shared memory.
pub fn own_backend_number() -> usize {
    #[cfg(feature = "pg15")]
    let n = unsafe { pg_sys::MyBackendId };
    #[cfg(not(feature = "pg15"))]
    let n = unsafe { pg_sys::MyProcNumber };
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// In a parallel worker, the number of the backend that leads it.
pub fn leader_backend_number() -> usize {
    #[cfg(feature = "pg15")]
    let n = unsafe { pg_sys::ParallelLeaderBackendId };
    #[cfg(not(feature = "pg15"))]
    let n = unsafe { pg_sys::ParallelLeaderProcNumber };
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The ExecutorRun hook (limits: nested executors join the running statement's counters; not
/// `#[pg_guard]`, see `crate::boundary`). 18 dropped the `execute_once` argument.
#[cfg(feature = "pg15")]
pub unsafe extern "C-unwind" fn executor_run(
    qd: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
    execute_once: bool,
) {
    unsafe {
        crate::limits::running(qd, || match crate::limits::previous_run() {
            Some(prev) => prev(qd, direction, count, execute_once),
            None => crate::boundary::raw::standard_ExecutorRun(qd, direction, count, execute_once),
        })
    }
}

#[cfg(not(feature = "pg15"))]
pub unsafe extern "C-unwind" fn executor_run(
    qd: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
) {
    unsafe {
        crate::limits::running(qd, || match crate::limits::previous_run() {
            Some(prev) => prev(qd, direction, count),
            None => crate::boundary::raw::standard_ExecutorRun(qd, direction, count),
        })
    }
}

/// A backend's local transaction id: `PGPROC.lxid` until 16, inside `vxid` from 17 on.
///
/// # Safety
/// `proc_` must point to a valid `PGPROC`.
pub unsafe fn local_transaction_id(proc_: *const pg_sys::PGPROC) -> u32 {
    unsafe {
        #[cfg(feature = "pg15")]
        {
            (*proc_).lxid
        }
        #[cfg(not(feature = "pg15"))]
        {
            (*proc_).vxid.lxid
        }
    }
}

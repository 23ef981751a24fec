//! The first cache level: a slot in `flinfo->fn_extra`, one per call site of a policy function,
//! freed with the query's memory (a reset callback drops the Rust value). It holds the answer for
//! the current caller so that a per-row call is a pointer chase, a caller check and a probe.

use pgrx::prelude::*;

unsafe extern "C-unwind" fn drop_slot<T>(arg: *mut std::ffi::c_void) {
    // SAFETY: `arg` is the Box leaked in `slot::<T>` and this callback runs once.
    drop(unsafe { Box::from_raw(arg.cast::<Option<T>>()) });
}

/// The call site's slot, created empty on first use. `None` when called without flinfo
/// (e.g. DirectFunctionCall), in which case callers skip this level.
///
/// # Safety
/// `fcinfo` must be the current call's; every call of one SQL function must use the same `T`.
pub unsafe fn slot<'a, T: 'static>(fcinfo: pg_sys::FunctionCallInfo) -> Option<&'a mut Option<T>> {
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        if flinfo.is_null() {
            return None;
        }
        if (*flinfo).fn_extra.is_null() {
            let boxed: *mut Option<T> = Box::into_raw(Box::new(None));
            let cb =
                pg_sys::MemoryContextAllocZero((*flinfo).fn_mcxt, std::mem::size_of::<pg_sys::MemoryContextCallback>())
                    .cast::<pg_sys::MemoryContextCallback>();
            (*cb).func = Some(drop_slot::<T>);
            (*cb).arg = boxed.cast();
            pg_sys::MemoryContextRegisterResetCallback((*flinfo).fn_mcxt, cb);
            (*flinfo).fn_extra = boxed.cast();
        }
        Some(&mut *(*flinfo).fn_extra.cast::<Option<T>>())
    }
}

//! Calls from rowsec's hooks into PostgreSQL that let PostgreSQL's errors through as they are.
//!
//! pgrx's guard (`pg_guard_ffi_boundary`, and every `pg_sys` function) catches an ERROR, keeps
//! its code, message, detail and hint, and raises a new one at the hook's edge: the schema,
//! table, column and constraint names, the context lines and the internal query of the error are
//! lost. Through rowsec's executor, utility and planner hooks that meant every error of every
//! statement once the library was preloaded: a unique violation without its constraint name,
//! which applications map to a field. Here the hook's call into PostgreSQL sets a jump point of
//! its own (what `PG_TRY` does), runs rowsec's cleanup when an error lands there, and has
//! PostgreSQL raise the very same error again (`PG_RE_THROW`).
//!
//! The hooks that use this are not `#[pg_guard]`: the error jumps over their frames, so a hook
//! keeps nothing with a destructor alive across the call, and runs its own Rust work (which
//! may fail) in separate `#[pg_guard]` functions before and after.

use pgrx::pg_sys;
use std::mem::MaybeUninit;

/// PostgreSQL's own functions, unwrapped: an ERROR they raise jumps straight to the jump point
/// that is current (pgrx's wrappers of the same names would catch it).
pub mod raw {
    use pgrx::pg_sys;
    use std::ffi::{c_char, c_int};

    extern "C-unwind" {
        /// Raises the error being handled again, with all its fields (`PG_RE_THROW`).
        pub fn pg_re_throw() -> !;
        pub fn standard_planner(
            parse: *mut pg_sys::Query,
            query: *const c_char,
            options: c_int,
            params: pg_sys::ParamListInfo,
        ) -> *mut pg_sys::PlannedStmt;
        pub fn standard_ExecutorStart(qd: *mut pg_sys::QueryDesc, eflags: c_int);
        #[cfg(feature = "pg15")]
        pub fn standard_ExecutorRun(qd: *mut pg_sys::QueryDesc, d: pg_sys::ScanDirection::Type, n: u64, once: bool);
        /// 18 dropped `execute_once`.
        #[cfg(not(feature = "pg15"))]
        pub fn standard_ExecutorRun(qd: *mut pg_sys::QueryDesc, d: pg_sys::ScanDirection::Type, n: u64);
        pub fn standard_ExecutorFinish(qd: *mut pg_sys::QueryDesc);
        pub fn standard_ExecutorEnd(qd: *mut pg_sys::QueryDesc);
        #[allow(clippy::too_many_arguments)]
        pub fn standard_ProcessUtility(
            pstmt: *mut pg_sys::PlannedStmt,
            query: *const c_char,
            read_only_tree: bool,
            context: pg_sys::ProcessUtilityContext::Type,
            params: pg_sys::ParamListInfo,
            env: *mut pg_sys::QueryEnvironment,
            dest: *mut pg_sys::DestReceiver,
            qc: *mut pg_sys::QueryCompletion,
        );
    }
}

/// Runs `call` (a previous hook or a standard function, through a raw pointer or [`raw`]); if it
/// raises an ERROR, runs `on_error` and raises the same error again.
///
/// # Safety
/// `call` must only call into PostgreSQL (it must not panic); `on_error` runs while PostgreSQL
/// handles an error: it must neither panic nor call PostgreSQL. The caller must hold nothing
/// with a destructor across this call, and must not be inside a pgrx guard of its own.
pub unsafe fn passing_errors<T, C: FnOnce() -> T, E: FnOnce()>(call: C, on_error: E) -> T {
    // What an error jumps over must have nothing to drop: a capture with a destructor is a
    // compile error here rather than a skipped destructor.
    const {
        assert!(!std::mem::needs_drop::<C>() && !std::mem::needs_drop::<E>() && !std::mem::needs_drop::<T>());
    }
    unsafe {
        let stack = pg_sys::PG_exception_stack;
        let context = pg_sys::error_context_stack;
        let mut result = MaybeUninit::<T>::uninit();
        let jumped = cee_scape::call_with_sigsetjmp(false, |buffer| {
            pg_sys::PG_exception_stack = (buffer as *const cee_scape::SigJmpBufFields).cast_mut().cast();
            result.write(call());
            0
        });
        pg_sys::PG_exception_stack = stack;
        pg_sys::error_context_stack = context;
        if jumped == 0 {
            return result.assume_init();
        }
        // As in PG_CATCH: the error's state stays as it is for the next handler.
        on_error();
        raw::pg_re_throw()
    }
}

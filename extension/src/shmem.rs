//! rowsec's shared memory, asked for and laid out once for all its users: the limits' parallel
//! slots (`limits/shared.rs`) and the activity ring (`activity/ring.rs`). One request hook adds
//! up their sizes; one startup hook creates or finds each region.

use pgrx::pg_sys;
use std::ffi::CStr;

static mut PREV_REQUEST: pg_sys::shmem_request_hook_type = None;
static mut PREV_STARTUP: pg_sys::shmem_startup_hook_type = None;

/// From `_PG_init` while shared_preload_libraries is processed.
pub fn request() {
    unsafe {
        PREV_REQUEST = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(on_request);
        PREV_STARTUP = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(on_startup);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_request() {
    unsafe {
        if let Some(prev) = PREV_REQUEST {
            pg_sys::ffi::pg_guard_ffi_boundary(|| prev());
        }
        pg_sys::RequestAddinShmemSpace(crate::limits::shared::size() + crate::activity::ring::size());
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_startup() {
    unsafe {
        if let Some(prev) = PREV_STARTUP {
            pg_sys::ffi::pg_guard_ffi_boundary(|| prev());
        }
        crate::limits::shared::attach();
        crate::activity::ring::attach();
    }
}

/// The region `name` of `size` bytes: the first process to ask (the postmaster) creates it
/// zeroed and runs `init` on it; later ones find it.
///
/// # Safety
/// Only from a shared memory startup hook, with `size` what the request hook asked for.
pub unsafe fn region(name: &CStr, size: usize, init: impl FnOnce(*mut u8)) -> *mut u8 {
    unsafe {
        let lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock; // AddinShmemInitLock
        pg_sys::LWLockAcquire(lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let p = pg_sys::ShmemInitStruct(name.as_ptr(), size, &mut found).cast::<u8>();
        if !found {
            std::ptr::write_bytes(p, 0, size);
            init(p);
        }
        pg_sys::LWLockRelease(lock);
        p
    }
}

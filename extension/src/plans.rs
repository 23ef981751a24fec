//! A fit plan for every person on a pooled connection.
//!
//! Policies never put a person into a plan: `in_subtree`, its index condition
//! `owner = ANY(rowsec.subtree())` and the others are evaluated when the plan runs, so any cached
//! plan gives every person exactly their rows. What a plan does carry is its *shape*, chosen for
//! the person it was planned for (the support functions estimate from their set sizes): the CEO's
//! plan scans everything, a rep's probes an index. PostgreSQL's plan cache already replans a
//! statement whose row-level security was planned for another role (`dependsOnRole`), which
//! covers `identity: login`; nothing tells it that the identity *setting* changed.
//!
//! So rowsec turns the identity setting into a real custom variable of its own (once per backend,
//! when the directory is loaded) whose assign hook sees every change: `SET`, `SET LOCAL`,
//! `set_config`, and the undoing at COMMIT or ROLLBACK. When the new person's *class* (the binary
//! orders of magnitude of their subtree's and team's shares of the directory,
//! `rowsec_core::plans`) differs from the class the backend's plans were made for, it
//! invalidates the generic plans that were shaped for a class, and only those: rowsec's planner
//! hook adds an invalidation item of its own to every plan during whose planning a support
//! function estimated for a person (`PlanInvalItem` in the plan, not in the analysed query), and
//! the hook of the setting fires that item in this backend alone (`CallSyscacheCallbacks`:
//! nothing is broadcast, nothing is freed while in use). PostgreSQL then plans such a statement
//! again at its next execution, from the query it analysed and rewrote before: a class change
//! costs one planning per statement, not parsing, analysis and rewriting as well (which
//! `ResetPlanCache()`, used before, forced on every cached statement of the backend). People of
//! one class, such as the many reps of a pool, keep sharing the plans.

use crate::cache;
use rowsec_core::config::{person_id_from_setting, Identity};
use rowsec_core::directory::Person;
use rowsec_core::plans::{claimed_person, valid_custom_setting_name, PlanClass};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::ffi::{c_char, c_void, CStr, CString};

use pgrx::pg_guard;
use pgrx::pg_sys;

pub fn class_of(dir: &cache::DirectoryCache, person: Option<Person>) -> PlanClass {
    match person {
        None => PlanClass::Nobody,
        Some(p) => PlanClass::person(dir.subtree(p).len(), dir.team(p).len(), dir.directory().len()),
    }
}

thread_local! {
    /// The class this backend's person-dependent plans were made for (`None`: not known).
    static PLANNED_FOR: Cell<Option<PlanClass>> = const { Cell::new(None) };
    /// Bumped by every assignment of a hooked identity setting.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    /// Identity settings this backend defined (their hook is installed).
    static HOOKED: RefCell<HashSet<CString>> = RefCell::new(HashSet::new());
    /// Plannings under way through rowsec's planner hook, and whether the innermost one was
    /// shaped for a person.
    static PLANNING: Cell<(u32, bool)> = const { Cell::new((0, false)) };
    /// A plan was shaped for a person outside the hook (the library was loaded by that very
    /// planning, after `planner()` had chosen its hook): it carries no item, so the next class
    /// change falls back to `ResetPlanCache()`.
    static UNMARKED_PLAN: Cell<bool> = const { Cell::new(false) };
    /// Whether this database has the `citus` extension, as of the last directory load (the
    /// assign hook may not read the catalog).
    static CITUS: Cell<bool> = const { Cell::new(false) };
}

/// The item rowsec adds to person-shaped plans: a `pg_proc` cache entry's hash. PostgreSQL
/// compares such items by value only; a real function whose entry hashes the same (a change to
/// it would then replan these statements too) costs a replan, never a wrong row.
const SHAPED_PLAN_HASH: u32 = 0x726f_7773; // "rows"

/// Called by the support functions while planning: the plan being made is shaped for `class`.
pub fn planning_for(class: PlanClass) {
    PLANNED_FOR.with(|c| c.set(Some(class)));
    PLANNING.with(|p| {
        let (depth, _) = p.get();
        if depth == 0 {
            UNMARKED_PLAN.with(|u| u.set(true));
        } else {
            p.set((depth, true));
        }
    });
}

static mut PREVIOUS_PLANNER: pg_sys::planner_hook_type = None;

/// Installs the planner hook (once per backend, from `_PG_init`).
pub fn install_planner_hook() {
    unsafe {
        PREVIOUS_PLANNER = pg_sys::planner_hook;
        pg_sys::planner_hook = Some(planner);
    }
}

/// Not `#[pg_guard]`: a planning error passes through unchanged (`boundary`), after the outer
/// planning's state is put back.
unsafe extern "C-unwind" fn planner(
    parse: *mut pg_sys::Query,
    query: *const c_char,
    options: std::ffi::c_int,
    params: pg_sys::ParamListInfo,
) -> *mut pg_sys::PlannedStmt {
    let outer = PLANNING.with(|p| p.replace((p.get().0.wrapping_add(1), false)));
    let stmt = unsafe {
        crate::boundary::passing_errors(
            || match PREVIOUS_PLANNER {
                Some(previous) => previous(parse, query, options, params),
                None => crate::boundary::raw::standard_planner(parse, query, options, params),
            },
            || PLANNING.with(|p| p.set(outer)),
        )
    };
    let (_, shaped) = PLANNING.with(|p| p.replace(outer));
    if shaped && !stmt.is_null() {
        unsafe { mark_shaped(stmt) };
    }
    stmt
}

/// Appends rowsec's invalidation item to a plan shaped for a person.
#[pg_guard]
unsafe extern "C-unwind" fn mark_shaped(stmt: *mut pg_sys::PlannedStmt) {
    unsafe {
        let item = pg_sys::palloc0(std::mem::size_of::<pg_sys::PlanInvalItem>()).cast::<pg_sys::PlanInvalItem>();
        (*item).type_ = pg_sys::NodeTag::T_PlanInvalItem;
        (*item).cacheId = pg_sys::SysCacheIdentifier::PROCOID as std::ffi::c_int;
        (*item).hashValue = SHAPED_PLAN_HASH;
        (*stmt).invalItems = pg_sys::lappend((*stmt).invalItems, item.cast());
    }
}

/// Makes the cached generic plans shaped for a person be planned again at their next execution.
/// Called from the setting's assign hook: no allocation, no catalog access. The whole plan cache
/// instead when a shaped plan carries no item (made outside the hook), outside a transaction or
/// while one aborts (where other modules' pg_proc callbacks, which `CallSyscacheCallbacks` would
/// run too, expect none), and under Citus, which keeps the plans of shard queries it makes while
/// a statement runs inside that statement's plan, where PostgreSQL looks for no item.
fn replan_shaped_plans() {
    let everything =
        UNMARKED_PLAN.with(|u| u.replace(false)) || !unsafe { pg_sys::IsTransactionState() } || CITUS.with(Cell::get);
    if everything {
        unsafe { pg_sys::ResetPlanCache() };
    } else {
        unsafe {
            pg_sys::CallSyscacheCallbacks(pg_sys::SysCacheIdentifier::PROCOID as std::ffi::c_int, SHAPED_PLAN_HASH)
        };
    }
}

/// The number of identity setting changes so far, when `name` is hooked: a caller read under one
/// generation is unchanged while the generation is (no per-row lookup of the setting).
pub fn generation_if_hooked(name: &CStr) -> Option<u64> {
    HOOKED.with(|h| h.borrow().contains(name)).then(|| GENERATION.with(Cell::get))
}

#[inline]
pub fn generation() -> u64 {
    GENERATION.with(Cell::get)
}

/// The assign hook. PostgreSQL calls it for every change of the value, including while undoing
/// SET LOCAL at the end of a (possibly failed) transaction: it must not fail, allocate through
/// PostgreSQL or read catalogs, so it works from the directory already in memory only.
unsafe extern "C-unwind" fn on_identity_assigned(newval: *const c_char, _extra: *mut c_void) {
    GENERATION.with(|g| g.set(g.get().wrapping_add(1)));
    let value = (!newval.is_null()).then(|| unsafe { CStr::from_ptr(newval) }.to_bytes());
    // A panic must not cross into PostgreSQL here; the worst outcome of ignoring one is a plan
    // shaped for someone else, which still returns the right rows.
    let class = std::panic::catch_unwind(|| class_of_value(value)).ok().flatten();
    // Nobody (the value undone at COMMIT, an empty setting) runs no person's statements: keeping
    // the plans avoids replanning twice for a pool that sets the same kind of person again.
    if let Some(class @ PlanClass::Person { .. }) = class {
        if PLANNED_FOR.with(Cell::get) != Some(class) {
            replan_shaped_plans();
            PLANNED_FOR.with(|c| c.set(Some(class)));
        }
    }
}

/// The class of the person a setting value names, by the directory in memory (a hint for plans:
/// a signed token's person is read without checking its signature, which the policies do).
fn class_of_value(value: Option<&[u8]>) -> Option<PlanClass> {
    let dir = cache::loaded_directory()?;
    let id = match &dir.config.identity {
        Identity::Setting(_) => person_id_from_setting(value),
        Identity::SignedSetting(_) => claimed_person(value?),
        Identity::Login => return None,
    };
    let person = id.and_then(|id| dir.directory().person(id)).filter(|&p| dir.directory().is_active(p));
    Some(class_of(&dir, person))
}

/// Makes the identity setting a custom variable with the assign hook, unless this backend did
/// already or the name belongs to someone else (a real variable of PostgreSQL or of another
/// module: then rowsec leaves it alone and plans are not reset on its changes). A placeholder
/// (the value a pool set before rowsec was loaded) becomes the variable, keeping its value.
pub fn hook_identity_setting(identity: &Identity) {
    let name = match identity {
        Identity::Setting(name) | Identity::SignedSetting(name) => name,
        Identity::Login => return,
    };
    // Read at every load, in a transaction: the assign hook decides by it without the catalog.
    CITUS.with(|c| c.set(crate::citus::installed()));
    // Workers restore the leader's settings and run no cached plans; GUCs cannot be defined in
    // parallel mode.
    if unsafe { pg_sys::IsInParallelMode() } || HOOKED.with(|h| h.borrow().contains(name.as_c_str())) {
        return;
    }
    if !valid_custom_setting_name(name.to_bytes()) {
        return;
    }
    unsafe {
        let exists = !pg_sys::GetConfigOption(name.as_ptr(), true, false).is_null();
        if exists && pg_sys::GetConfigOptionFlags(name.as_ptr(), true) & pg_sys::GUC_CUSTOM_PLACEHOLDER as i32 == 0 {
            return;
        }
        // PostgreSQL keeps these pointers for the life of the backend.
        let stored_name: &'static CStr = Box::leak(name.clone().into_boxed_c_str());
        let value: &'static mut *mut c_char = Box::leak(Box::new(std::ptr::null_mut()));
        pg_sys::DefineCustomStringVariable(
            stored_name.as_ptr(),
            c"rowsec: who the current person is (identity: { setting: ... })".as_ptr(),
            c"Set per transaction by a pooled application; rowsec replans cached statements when it names a person of another size.".as_ptr(),
            value,
            c"".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GUC_NOT_IN_SAMPLE as i32,
            None,
            Some(on_identity_assigned),
            None,
        );
    }
    HOOKED.with(|h| h.borrow_mut().insert(name.clone()));
}

//! Bulk-operation limits (SPEC item 12): a statement that reads or changes more rows of one
//! protected table than the person's roles allow fails at the row that passes the limit.
//!
//! Where rows are counted: at the output of every scan node over a protected table. A scan
//! node returns the rows that passed the table's row-level security (its security quals are
//! evaluated in the scan, before the user's non-leakproof conditions) and the conditions pushed
//! into the scan; everything above it (joins, aggregates, `LIMIT`, the client, a cursor, `COPY
//! ... TO`, a function's caller) only ever sees rows that went through that count. The
//! ExecutorStart hook finds those nodes after `standard_ExecutorStart` and replaces their
//! `ExecProcNodeReal` with [`counted_scan`], which counts and raises 42501 before handing over
//! the row past the limit. A restrictive policy calling a counting function was the other
//! design; PostgreSQL evaluates restrictive quals *before* the permissive ones (lower security
//! level), so it would count rows that RLS then rejects, and a non-leakproof user condition
//! after it would count rows the query never used.
//!
//! Per statement: one counter per (table, command), shared by every executor started while the
//! statement runs (functions, triggers), so a function reading a table in many small queries
//! counts once per statement. A cursor is one statement across its fetches. Parallel workers
//! count into their leader's slot in shared memory ([`shared`]), set up by the leader at
//! ExecutorStart; the leader and its workers add to the same atomic counter.
//!
//! Which limit: `rowsec.role_limits` (written by `rowsec.configure_limits` from the spec) lists
//! every spec role with its limit per command (NULL: none); the current user holds a role when
//! it has its privileges (`has_privs_of_role`), and the union rule is
//! `rowsec_core::limits::person_limit`.

use crate::activity;
use crate::catalog;
use crate::errors::{nullable, required, OrRaise, RowsecError};
use crate::owner::{extension_owner_cached, AsRole};
use crate::types::Text;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use rowsec_core::limits::{person_limit, Command, LimitExceeded, RoleLimits};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::rc::Rc;

pub mod shared;

/// Whether the hooks are installed: only when the library is in `shared_preload_libraries`
/// (the shared memory parallel workers count into exists only then).
static mut PRELOADED: bool = false;

pub fn preloaded() -> bool {
    unsafe { PRELOADED }
}

static mut PREV_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREV_RUN: pg_sys::ExecutorRun_hook_type = None;
static mut PREV_FINISH: pg_sys::ExecutorFinish_hook_type = None;
static mut PREV_END: pg_sys::ExecutorEnd_hook_type = None;

/// From `_PG_init` while shared_preload_libraries is processed.
pub fn install_hooks() {
    unsafe {
        if !pg_sys::process_shared_preload_libraries_in_progress {
            return;
        }
        PRELOADED = true;
        crate::shmem::request();
        PREV_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
        PREV_RUN = pg_sys::ExecutorRun_hook;
        pg_sys::ExecutorRun_hook = Some(crate::compat::executor_run);
        PREV_FINISH = pg_sys::ExecutorFinish_hook;
        pg_sys::ExecutorFinish_hook = Some(executor_finish);
        PREV_END = pg_sys::ExecutorEnd_hook;
        pg_sys::ExecutorEnd_hook = Some(executor_end);
        pg_sys::RegisterXactCallback(Some(at_transaction_end), std::ptr::null_mut());
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_invalidation), pg_sys::Datum::from(0));
        for cache in [pg_sys::SysCacheIdentifier::AUTHOID, pg_sys::SysCacheIdentifier::AUTHMEMMEMROLE] {
            pg_sys::CacheRegisterSyscacheCallback(cache as i32, Some(on_role_invalidation), pg_sys::Datum::from(0));
        }
    }
}

/// Rows counted so far of one table for one command.
type Count = (pg_sys::Oid, Command, Rc<Cell<u64>>);

/// The counters of one statement, and for activity (SPEC item 13) who ran it and when, taken
/// when its first protected scan started, and whether it was recorded.
#[derive(Default)]
struct Counters {
    counts: RefCell<Vec<Count>>,
    stamp: Cell<Option<activity::Stamp>>,
    recorded: Cell<bool>,
}

impl Counters {
    fn counter(&self, relid: pg_sys::Oid, command: Command) -> Rc<Cell<u64>> {
        let mut v = self.counts.borrow_mut();
        if let Some((_, _, c)) = v.iter().find(|(r, k, _)| *r == relid && *k == command) {
            return c.clone();
        }
        let c = Rc::new(Cell::new(0));
        v.push((relid, command, c.clone()));
        c
    }

    /// Appends the statement's activity once (at its end, or when its transaction aborted).
    fn record(&self, failed: bool) {
        let Some(stamp) = self.stamp.get() else { return };
        if self.recorded.replace(true) {
            return;
        }
        let counts: Vec<(pg_sys::Oid, Command, u64)> =
            self.counts.borrow().iter().map(|(r, c, n)| (*r, *c, n.get())).collect();
        activity::record(&counts, &stamp, failed);
    }
}

#[derive(Clone)]
enum Counter {
    Local(Rc<Cell<u64>>),
    /// An entry of the leader's slot in shared memory (parallel query).
    Shared(&'static shared::Entry),
}

impl Counter {
    /// Adds one row; returns the rows counted so far.
    fn add_one(&self) -> u64 {
        match self {
            Counter::Local(c) => {
                let n = c.get() + 1;
                c.set(n);
                n
            }
            Counter::Shared(e) => e.add_one(),
        }
    }

    /// Takes back the row that passed the limit: it never reached the query (activity records
    /// the rows that did).
    fn undo_one(&self) {
        match self {
            Counter::Local(c) => c.set(c.get().saturating_sub(1)),
            Counter::Shared(e) => e.undo_one(),
        }
    }
}

type ScanFunction = unsafe extern "C-unwind" fn(*mut pg_sys::PlanState) -> *mut pg_sys::TupleTableSlot;

#[derive(Clone)]
struct Wrapped {
    query: usize,
    real_scan: ScanFunction,
    relid: pg_sys::Oid,
    command: Command,
    limit: u64,
    counter: Counter,
}

thread_local! {
    /// Scan nodes being counted, by address: a short list (the scans of the running queries),
    /// searched once per row, so a linear probe beats hashing. Boxed: a row's count reads its
    /// entry while the list may grow (a function in the scan's quals starting a query).
    static WRAPPED: RefCell<Vec<(usize, Box<Wrapped>)>> = const { RefCell::new(Vec::new()) };
    /// The counters of each started query (by QueryDesc address).
    static STATEMENTS: RefCell<HashMap<usize, Rc<Counters>>> = RefCell::new(HashMap::new());
    /// The counters of the executors running now, innermost last: an executor started while
    /// one runs belongs to its statement.
    static RUNNING: RefCell<Vec<Rc<Counters>>> = const { RefCell::new(Vec::new()) };
    /// The insert counters of running INSERT statements (activity), by query: the rows are the
    /// executor's own count, taken at its end.
    static INSERTED: RefCell<Vec<(usize, Rc<Cell<u64>>)>> = const { RefCell::new(Vec::new()) };
    /// Parallel queries of this backend set up and not yet ended; their counters live in this
    /// backend's slot of shared memory meanwhile.
    static PARALLEL: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    static PUBLISHED: RefCell<Option<Rc<Counters>>> = const { RefCell::new(None) };
    static CONFIG: RefCell<Option<(u64, Option<Rc<Config>>)>> = const { RefCell::new(None) };
    static INVALIDATIONS: Cell<u64> = const { Cell::new(1) };
    static WATCHED: Cell<[pg_sys::Oid; 3]> = const { Cell::new([pg_sys::InvalidOid; 3]) };
    static LOADING: Cell<bool> = const { Cell::new(false) };
}

/// What limits are configured in this database.
struct Config {
    protected: HashSet<pg_sys::Oid>,
    roles: Vec<(CString, RoleLimits)>,
    /// `monitoring.reads`: every protected scan is counted, for activity.
    reads: bool,
    /// (user, command) -> limit, for the current configuration and memberships.
    memo: RefCell<HashMap<(pg_sys::Oid, Command), Option<u64>>>,
}

impl Config {
    fn limit(&self, user: pg_sys::Oid, command: Command) -> Option<u64> {
        if let Some(l) = self.memo.borrow().get(&(user, command)) {
            return *l;
        }
        let limit = if unsafe { pg_sys::superuser_arg(user) } {
            None
        } else {
            let held: Vec<&RoleLimits> = self
                .roles
                .iter()
                .filter(|(name, _)| {
                    let role = unsafe { pg_sys::get_role_oid(name.as_ptr(), true) };
                    role != pg_sys::InvalidOid && unsafe { pg_sys::has_privs_of_role(user, role) }
                })
                .map(|(_, l)| l)
                .collect();
            person_limit(held, command)
        };
        self.memo.borrow_mut().insert((user, command), limit);
        limit
    }
}

unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let watched = WATCHED.with(Cell::get);
    // Not installed (nothing watched): any new relation may be rowsec's, so look again.
    if relid == pg_sys::InvalidOid || watched.contains(&relid) || watched[0] == pg_sys::InvalidOid {
        INVALIDATIONS.with(|c| c.set(c.get().wrapping_add(1)));
    }
}

unsafe extern "C-unwind" fn on_role_invalidation(_arg: pg_sys::Datum, _cacheid: i32, _hash: u32) {
    INVALIDATIONS.with(|c| c.set(c.get().wrapping_add(1)));
}

/// The configuration, reloaded when an invalidation arrived; `None`: rowsec is not installed
/// here or no role has a limit.
fn config() -> Option<Rc<Config>> {
    let now = INVALIDATIONS.with(Cell::get);
    if let Some((seen, c)) = CONFIG.with(|c| c.borrow().clone()) {
        if seen == now {
            return c;
        }
    }
    LOADING.with(|l| l.set(true));
    let _done = scopeguard(|| LOADING.with(|l| l.set(false)));
    let loaded = load_config();
    CONFIG.with(|c| *c.borrow_mut() = Some((now, loaded.clone())));
    loaded
}

struct Guard<F: FnMut()>(F);
impl<F: FnMut()> Drop for Guard<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}
fn scopeguard<F: FnMut()>(f: F) -> Guard<F> {
    Guard(f)
}

fn load_config() -> Option<Rc<Config>> {
    let installed = unsafe { pg_sys::get_extension_oid(c"rowsec".as_ptr(), true) } != pg_sys::InvalidOid;
    let tables = installed
        .then(|| catalog::extension_relation(c"role_limits").zip(catalog::extension_relation(c"protected_tables")))
        .flatten();
    let Some((limits_oid, protected_oid)) = tables else {
        WATCHED.with(|w| w.set([pg_sys::InvalidOid; 3]));
        return None;
    };
    let monitoring_oid = catalog::extension_relation(c"monitoring");
    WATCHED.with(|w| w.set([limits_oid, protected_oid, monitoring_oid.unwrap_or(pg_sys::InvalidOid)]));
    let _owner = AsRole::switch(extension_owner_cached());
    let what = "reading rowsec.role_limits";
    let (roles, protected, reads) = Spi::connect(|c| -> Result<_, RowsecError> {
        let mut roles: Vec<(CString, RoleLimits)> = Vec::new();
        let rows = c
            .select("SELECT role::pg_catalog.text, command, max_rows FROM rowsec.role_limits ORDER BY role", None, &[])
            .map_err(|e| RowsecError::internal(what, e))?;
        for r in rows {
            let role = required(r.get::<Text>(1), what, "role")?.0;
            let command = required(r.get::<Text>(2), what, "command")?.0;
            let max = nullable(r.get::<i64>(3), what, "max_rows")?;
            let Some(command) = Command::parse(&command) else {
                return Err(RowsecError::internal(what, format!("unknown command {command:?}")));
            };
            let name = CString::new(role).map_err(|_| RowsecError::internal(what, "a role name with a NUL byte"))?;
            if roles.last().is_none_or(|(n, _)| *n != name) {
                roles.push((name, [None; 3]));
            }
            if let Some((_, limits)) = roles.last_mut() {
                limits[command.index()] = max.map(|m| m.max(0) as u64);
            }
        }
        let mut protected = HashSet::new();
        let rows = c
            .select("SELECT tbl::pg_catalog.oid FROM rowsec.protected_tables", None, &[])
            .map_err(|e| RowsecError::internal("reading rowsec.protected_tables", e))?;
        for r in rows {
            protected.insert(required(r.get::<pg_sys::Oid>(1), "reading rowsec.protected_tables", "tbl")?);
        }
        let reads = match monitoring_oid {
            None => false,
            Some(_) => {
                let rows = c
                    .select("SELECT reads FROM rowsec.monitoring", None, &[])
                    .map_err(|e| RowsecError::internal("reading rowsec.monitoring", e))?;
                let mut reads = false;
                for r in rows {
                    reads |= required(r.get::<bool>(1), "reading rowsec.monitoring", "reads")?;
                }
                reads
            }
        };
        Ok((roles, protected, reads))
    })
    .or_raise();
    // Activity counts without the hooks' shared memory would miss parallel workers' rows.
    let reads = reads && preloaded();
    let any_limit = roles.iter().any(|(_, l)| l.iter().any(Option::is_some));
    (any_limit || reads).then(|| Rc::new(Config { protected, roles, reads, memo: RefCell::new(HashMap::new()) }))
}

/// A scan node over a table, with the range table index it scans.
struct Scan {
    node: *mut pg_sys::PlanState,
    relid: pg_sys::Oid,
    rti: u32,
}

unsafe fn list_ptrs(list: *mut pg_sys::List) -> Vec<*mut std::ffi::c_void> {
    unsafe {
        if list.is_null() {
            return Vec::new();
        }
        (0..(*list).length as usize).map(|i| (*(*list).elements.add(i)).ptr_value).collect()
    }
}

unsafe fn list_ints(list: *mut pg_sys::List) -> Vec<i32> {
    unsafe {
        if list.is_null() {
            return Vec::new();
        }
        (0..(*list).length as usize).map(|i| (*(*list).elements.add(i)).int_value).collect()
    }
}

/// Every heap scan node under `ps` (subqueries, appends and subplans included).
unsafe fn collect_scans(ps: *mut pg_sys::PlanState, out: &mut Vec<Scan>) {
    use pg_sys::NodeTag as T;
    unsafe {
        if ps.is_null() {
            return;
        }
        match (*ps).type_ {
            T::T_SeqScanState
            | T::T_SampleScanState
            | T::T_IndexScanState
            | T::T_IndexOnlyScanState
            | T::T_BitmapHeapScanState
            | T::T_TidScanState
            | T::T_TidRangeScanState => {
                let ss = ps.cast::<pg_sys::ScanState>();
                let rel = (*ss).ss_currentRelation;
                // The script forces row-level security on every table it protects: a scan of
                // any other table needs no look at the configuration (nor its tables' locks).
                let forced = !rel.is_null()
                    && !(*rel).rd_rel.is_null()
                    && (*(*rel).rd_rel).relrowsecurity
                    && (*(*rel).rd_rel).relforcerowsecurity;
                if forced {
                    let rti = (*(*ps).plan.cast::<pg_sys::Scan>()).scanrelid;
                    out.push(Scan { node: ps, relid: (*rel).rd_id, rti });
                }
            }
            T::T_AppendState => {
                let a = ps.cast::<pg_sys::AppendState>();
                for i in 0..(*a).as_nplans as usize {
                    collect_scans(*(*a).appendplans.add(i), out);
                }
            }
            T::T_MergeAppendState => {
                let a = ps.cast::<pg_sys::MergeAppendState>();
                for i in 0..(*a).ms_nplans as usize {
                    collect_scans(*(*a).mergeplans.add(i), out);
                }
            }
            T::T_SubqueryScanState => collect_scans((*ps.cast::<pg_sys::SubqueryScanState>()).subplan, out),
            _ => {}
        }
        collect_scans((*ps).lefttree, out);
        collect_scans((*ps).righttree, out);
    }
}

/// The hooks below are not `#[pg_guard]`: the statement's own errors pass through them
/// unchanged (`crate::boundary`), and rowsec's work runs in guarded functions around the call.
unsafe extern "C-unwind" fn executor_start(qd: *mut pg_sys::QueryDesc, eflags: i32) {
    unsafe {
        crate::boundary::passing_errors(
            || match PREV_START {
                Some(prev) => prev(qd, eflags),
                None => crate::boundary::raw::standard_ExecutorStart(qd, eflags),
            },
            || {},
        );
        after_start(qd, eflags);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn after_start(qd: *mut pg_sys::QueryDesc, eflags: i32) {
    unsafe {
        if eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0 || LOADING.with(Cell::get) {
            return;
        }
        // A new parallel query starts with an empty slot: its workers must never count into
        // what an earlier query (perhaps of another user, with other limits) left there.
        let parallel = !(*qd).plannedstmt.is_null() && (*(*qd).plannedstmt).parallelModeNeeded;
        if parallel && pg_sys::ParallelWorkerNumber < 0 && PARALLEL.with(|p| p.borrow().is_empty()) {
            shared::reset_own_if_allocated();
        }
        arm(qd);
    }
}

/// Finds the protected scans of a started query and wraps those that have a limit.
unsafe fn arm(qd: *mut pg_sys::QueryDesc) {
    unsafe {
        let estate = (*qd).estate;
        if estate.is_null() {
            return;
        }
        let mut scans = Vec::new();
        collect_scans((*qd).planstate, &mut scans);
        for sub in list_ptrs((*estate).es_subplanstates) {
            collect_scans(sub.cast(), &mut scans);
        }
        // An INSERT scans no protected table, yet activity records it (SPEC item 13: every
        // statement that touches one).
        let inserting = (*qd).operation == pg_sys::CmdType::CMD_INSERT;
        if scans.is_empty() && !inserting {
            return;
        }
        if pg_sys::ParallelWorkerNumber >= 0 {
            if !scans.is_empty() {
                arm_worker(qd, &scans);
            }
            return;
        }
        let Some(config) = config() else { return };
        let stmt = (*qd).plannedstmt;
        let results = list_ints((*stmt).resultRelations);
        let changing = match (*qd).operation {
            pg_sys::CmdType::CMD_UPDATE | pg_sys::CmdType::CMD_MERGE => Some(Command::Update),
            pg_sys::CmdType::CMD_DELETE => Some(Command::Delete),
            _ => None,
        };
        let user = pg_sys::GetUserId();
        let counters = RUNNING.with(|r| r.borrow().last().cloned()).unwrap_or_default();
        let parallel = (*stmt).parallelModeNeeded || PARALLEL.with(|p| !p.borrow().is_empty());
        let mut armed = false;
        if inserting && config.reads {
            let rtable = list_ptrs((*stmt).rtable);
            for rti in &results {
                let Some(rte) = usize::try_from(*rti - 1).ok().and_then(|i| rtable.get(i)) else { continue };
                let relid = (*rte.cast::<pg_sys::RangeTblEntry>()).relid;
                if !config.protected.contains(&relid) {
                    continue;
                }
                if counters.stamp.get().is_none() {
                    counters.stamp.set(Some(activity::stamp()));
                }
                let counter = counters.counter(relid, Command::Insert);
                INSERTED.with(|m| m.borrow_mut().push((qd as usize, counter)));
            }
        }
        for scan in scans {
            if !config.protected.contains(&scan.relid) {
                continue;
            }
            let command = match changing {
                Some(c) if results.contains(&(scan.rti as i32)) => c,
                _ => Command::Select,
            };
            // Activity counts every protected scan; without it, only those with a limit.
            let limit = match config.limit(user, command) {
                Some(limit) => limit,
                None if config.reads => u64::MAX,
                None => continue,
            };
            if config.reads && counters.stamp.get().is_none() {
                counters.stamp.set(Some(activity::stamp()));
            }
            let local = counters.counter(scan.relid, command);
            let counter = if parallel {
                if PARALLEL.with(|p| p.borrow().is_empty()) && !armed {
                    shared::reset_own();
                    PUBLISHED.with(|p| *p.borrow_mut() = Some(counters.clone()));
                }
                Counter::Shared(shared::publish(scan.relid, command, limit, local.get()).or_raise())
            } else {
                Counter::Local(local)
            };
            wrap(qd, scan, command, limit, counter);
            armed = true;
        }
        if parallel && armed {
            PARALLEL.with(|p| p.borrow_mut().push(qd as usize));
        }
        STATEMENTS.with(|s| s.borrow_mut().insert(qd as usize, counters));
    }
}

/// In a parallel worker: count into the leader's entries (the leader decided the limits).
unsafe fn arm_worker(qd: *mut pg_sys::QueryDesc, scans: &[Scan]) {
    for scan in scans {
        if let Some(entry) = shared::leader_entry(scan.relid, Command::Select) {
            let limit = entry.limit();
            unsafe {
                wrap(
                    qd,
                    Scan { node: scan.node, relid: scan.relid, rti: scan.rti },
                    Command::Select,
                    limit,
                    Counter::Shared(entry),
                )
            };
        }
    }
}

unsafe fn wrap(qd: *mut pg_sys::QueryDesc, scan: Scan, command: Command, limit: u64, counter: Counter) {
    unsafe {
        // A node without its function would fail in PostgreSQL anyway: left as it is.
        let Some(real_scan) = (*scan.node).ExecProcNodeReal else { return };
        (*scan.node).ExecProcNodeReal = Some(counted_scan);
        let w = Wrapped { query: qd as usize, real_scan, relid: scan.relid, command, limit, counter };
        WRAPPED.with(|m| {
            let mut m = m.borrow_mut();
            m.retain(|(n, _)| *n != scan.node as usize);
            m.push((scan.node as usize, Box::new(w)));
        });
    }
}

/// A counted scan node: the real node's next row, counted; past the limit, an error instead.
unsafe extern "C-unwind" fn counted_scan(node: *mut pg_sys::PlanState) -> *mut pg_sys::TupleTableSlot {
    unsafe {
        let w = wrapped(node);
        // SAFETY: an entry is removed only when its own query ends (or its transaction does),
        // never while its scan node runs; the Box keeps its address when the list changes.
        let real = (*w).real_scan;
        let slot = crate::boundary::passing_errors(|| real(node), || {});
        count_row(w, slot)
    }
}

/// The wrapped entry of a counted scan node (looked up once per row).
#[pg_guard]
unsafe extern "C-unwind" fn wrapped(node: *mut pg_sys::PlanState) -> *const Wrapped {
    let entry =
        WRAPPED.with(|m| m.borrow().iter().find(|(n, _)| *n == node as usize).map(|(_, w)| &**w as *const Wrapped));
    let Some(entry) = entry else {
        RowsecError::internal("counting rows for limits", "a scan node rowsec did not wrap").raise()
    };
    entry
}

#[pg_guard]
unsafe extern "C-unwind" fn count_row(
    w: *const Wrapped,
    slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    if slot.is_null() || unsafe { (*slot).tts_flags } & pg_sys::TTS_FLAG_EMPTY as u16 != 0 {
        return slot;
    }
    let w = unsafe { &*w };
    if w.counter.add_one() > w.limit {
        w.counter.undo_one();
        let table = catalog::relation_name(w.relid);
        let e = LimitExceeded { table: &table, command: w.command, limit: w.limit };
        RowsecError::new(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, e.message(), e.detail(), e.hint()).raise();
    }
    slot
}

/// Keeps the statement's counters current while an executor runs (nested executors join them):
/// runs `call` (into PostgreSQL, see `crate::boundary::passing_errors`) between `enter` and
/// `leave`, leaving also when an error passes.
///
/// # Safety
/// As `crate::boundary::passing_errors`.
pub unsafe fn running(qd: *mut pg_sys::QueryDesc, call: impl FnOnce()) {
    unsafe {
        let entered = enter(qd);
        crate::boundary::passing_errors(call, || {
            if entered {
                leave()
            }
        });
        if entered {
            leave();
        }
    }
}

/// The executor of `qd` starts running: its statement's counters become the running ones.
/// Whether it pushed them (nested executors without counters of their own join the running ones).
#[pg_guard]
unsafe extern "C-unwind" fn enter(qd: *mut pg_sys::QueryDesc) -> bool {
    let no_limits =
        CONFIG.with(|c| matches!(&*c.borrow(), Some((seen, None)) if *seen == INVALIDATIONS.with(Cell::get)));
    if no_limits {
        return false;
    }
    let counters = STATEMENTS.with(|s| s.borrow().get(&(qd as usize)).cloned()).or_else(|| {
        // A top-level statement without counted scans of its own still owns the count of
        // the executors it starts (a function reading row by row counts as its caller).
        RUNNING.with(|r| r.borrow().is_empty()).then(|| {
            let c = Rc::new(Counters::default());
            STATEMENTS.with(|s| s.borrow_mut().insert(qd as usize, c.clone()));
            c
        })
    });
    let Some(counters) = counters else { return false };
    RUNNING.with(|r| r.borrow_mut().push(counters));
    true
}

/// The executor `enter` pushed for stops running (also when an error passes: no panic, no call
/// into PostgreSQL).
fn leave() {
    RUNNING.with(|r| {
        r.borrow_mut().pop();
    })
}

pub fn previous_run() -> pg_sys::ExecutorRun_hook_type {
    unsafe { PREV_RUN }
}

unsafe extern "C-unwind" fn executor_finish(qd: *mut pg_sys::QueryDesc) {
    unsafe {
        running(qd, || match PREV_FINISH {
            Some(prev) => prev(qd),
            None => crate::boundary::raw::standard_ExecutorFinish(qd),
        })
    }
}

thread_local! {
    /// The counters of the statements whose outermost executor is ending (by nesting), kept
    /// here rather than on the hook's frame, which an error jumps over.
    static ENDING: RefCell<Vec<Option<Rc<Counters>>>> = const { RefCell::new(Vec::new()) };
}

unsafe extern "C-unwind" fn executor_end(qd: *mut pg_sys::QueryDesc) {
    unsafe {
        before_end(qd);
        crate::boundary::passing_errors(
            || match PREV_END {
                Some(prev) => prev(qd),
                None => crate::boundary::raw::standard_ExecutorEnd(qd),
            },
            || {
                ENDING.with(|e| e.borrow_mut().pop());
            },
        );
        after_end();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn before_end(qd: *mut pg_sys::QueryDesc) {
    // The statement ends with its outermost executor (nested ones share its counters).
    let outermost = RUNNING.with(|r| r.borrow().is_empty());
    let ended = outermost.then(|| STATEMENTS.with(|s| s.borrow().get(&(qd as usize)).cloned())).flatten();
    // The rows an INSERT wrote: the executor's count, before standard_ExecutorEnd frees it.
    let estate = unsafe { (*qd).estate };
    if !estate.is_null() {
        let processed = unsafe { (*estate).es_processed };
        INSERTED.with(|m| {
            for (q, counter) in m.borrow().iter() {
                if *q == qd as usize {
                    counter.set(counter.get() + processed);
                }
            }
        });
    }
    forget(qd as usize);
    ENDING.with(|e| e.borrow_mut().push(ended));
}

#[pg_guard]
unsafe extern "C-unwind" fn after_end() {
    if let Some(counters) = ENDING.with(|e| e.borrow_mut().pop()).flatten() {
        counters.record(false);
    }
}

fn forget(qd: usize) {
    WRAPPED.with(|m| m.borrow_mut().retain(|(_, w)| w.query != qd));
    INSERTED.with(|m| m.borrow_mut().retain(|(q, _)| *q != qd));
    STATEMENTS.with(|s| s.borrow_mut().remove(&qd));
    let last_parallel = PARALLEL.with(|p| {
        let mut p = p.borrow_mut();
        let before = p.len();
        p.retain(|q| *q != qd);
        before > 0 && p.is_empty()
    });
    if last_parallel {
        // The workers are gone: the shared counts go back to the statement's counters.
        if let Some(counters) = PUBLISHED.with(|p| p.borrow_mut().take()) {
            for (relid, command, count) in shared::own_counts() {
                counters.counter(relid, command).set(count);
            }
        }
    }
}

unsafe extern "C-unwind" fn at_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent as E;
    if matches!(
        event,
        E::XACT_EVENT_COMMIT
            | E::XACT_EVENT_ABORT
            | E::XACT_EVENT_PREPARE
            | E::XACT_EVENT_PARALLEL_ABORT
            | E::XACT_EVENT_PARALLEL_COMMIT
    ) {
        // Every executor of the transaction has ended (or was abandoned by an error): the
        // statements not recorded at their end failed (here, or in a subtransaction).
        if PARALLEL.with(|p| !p.borrow().is_empty()) {
            if let Some(counters) = PUBLISHED.with(|p| p.borrow().clone()) {
                for (relid, command, count) in shared::own_counts() {
                    counters.counter(relid, command).set(count);
                }
            }
        }
        let pending: Vec<Rc<Counters>> = STATEMENTS.with(|s| s.borrow().values().cloned().collect());
        for counters in pending {
            counters.record(true);
        }
        WRAPPED.with(|m| m.borrow_mut().clear());
        INSERTED.with(|m| m.borrow_mut().clear());
        STATEMENTS.with(|s| s.borrow_mut().clear());
        RUNNING.with(|r| r.borrow_mut().clear());
        PARALLEL.with(|p| p.borrow_mut().clear());
        PUBLISHED.with(|p| *p.borrow_mut() = None);
    }
}

/// `rowsec.configure_limits(limits jsonb)`: the spec's roles, each with its limit per command
/// (`{"sales_rep": {"select": 500, "update": 50}, "crm_admin": {}}`: a role without a command
/// has no limit for it). Replaces what an earlier spec configured. Owner only.
#[pg_extern(volatile, parallel_unsafe)]
fn configure_limits(limits: pgrx::JsonB) {
    let serde_json::Value::Object(roles) = limits.0 else {
        bad_limits(
            "limits must be a JSON object of role names",
            "rowsec.configure_limits was called with a JSON value that is not an object.",
        )
    };
    let mut rows: Vec<(String, Command, Option<i64>)> = Vec::new();
    for (role, commands) in &roles {
        let serde_json::Value::Object(commands) = commands else {
            bad_limits(
                format!("the limits of role \"{role}\" must be a JSON object"),
                "Each role maps commands (select, update, delete) to a number of rows.",
            )
        };
        for (command, n) in commands {
            let Some(c) = Command::parse(command) else {
                bad_limits(
                    format!("unknown command \"{command}\" in the limits of role \"{role}\""),
                    "Limits exist for select, update and delete.",
                )
            };
            let Some(n) = n.as_i64().filter(|n| *n >= 0) else {
                bad_limits(
                    format!("the {command} limit of role \"{role}\" must be a number of rows of zero or more, not {n}"),
                    "A limit is the most rows of one table one statement may read or change.",
                )
            };
            rows.push((role.clone(), c, Some(n)));
        }
        for c in Command::ALL {
            if !commands.contains_key(c.name()) {
                rows.push((role.clone(), c, None));
            }
        }
    }
    let any = rows.iter().any(|(_, _, n)| n.is_some());
    if any && !preloaded() {
        RowsecError::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "limits need the rowsec library in shared_preload_libraries",
            "The spec gives roles limits: (SPEC item 12); rowsec counts rows in every session, parallel workers included, only when PostgreSQL loads it at server start.",
            "Add rowsec to shared_preload_libraries in postgresql.conf, restart the server, and run the script again.",
        )
        .raise();
    }
    let what = "storing rowsec.role_limits";
    let roles: Vec<&str> = rows.iter().map(|(r, _, _)| r.as_str()).collect();
    let commands: Vec<&str> = rows.iter().map(|(_, c, _)| c.name()).collect();
    let limits: Vec<Option<i64>> = rows.iter().map(|(_, _, n)| *n).collect();
    // Written only when they differ, in one statement each: every write invalidates every
    // backend's caches, and a re-run of an unchanged spec should change nothing.
    Spi::connect_mut(|c| -> Result<(), RowsecError> {
        let args = [roles.into(), commands.into(), limits.into()];
        let same = c
            .select(
                "WITH wanted AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.name[]), pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.int8[])) AS w(role, command, max_rows)) \
                 SELECT NOT EXISTS ( \
                     (SELECT role, command, max_rows FROM wanted EXCEPT SELECT role, command, max_rows FROM rowsec.role_limits) \
                     UNION ALL \
                     (SELECT role, command, max_rows FROM rowsec.role_limits EXCEPT SELECT role, command, max_rows FROM wanted))",
                None,
                &args,
            )
            .map_err(|e| RowsecError::internal(what, e))?
            .first()
            .get_one::<bool>()
            .map_err(|e| RowsecError::internal(what, e))?;
        if same != Some(true) {
            c.update("DELETE FROM rowsec.role_limits", None, &[]).map_err(|e| RowsecError::internal(what, e))?;
            c.update(
                "INSERT INTO rowsec.role_limits (role, command, max_rows) \
                 SELECT * FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.name[]), pg_catalog.unnest($2::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.int8[]))",
                None,
                &args,
            )
            .map_err(|e| RowsecError::internal(what, e))?;
        }
        Ok(())
    })
    .or_raise();
}

fn bad_limits(message: impl Into<String>, detail: impl Into<String>) -> ! {
    RowsecError::invalid_parameter(
        message,
        detail,
        "rowsec.configure_limits is called by the script rowsec compile writes from roles.<name>.limits.",
    )
    .raise()
}

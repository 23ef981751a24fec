//! The functions row-level security policies call. All STABLE and PARALLEL SAFE: they read the
//! directory through the per-backend cache, which a parallel worker loads under its active
//! (query) snapshot; they write nothing.

use crate::cache::{self, DirectoryCache};
use crate::callsite;
use crate::errors::OrRaise;
use crate::identity::Caller;
use crate::registry;
use rowsec_core::access::ShareAccess;
use rowsec_core::directory::Person;
use rowsec_core::idset::IdSet;
use rowsec_core::sets::empty_set;
// pgrx finds `SUPPORT` functions by name (and `requires` of the SQL below by path).
#[allow(unused_imports)]
use crate::support::{in_all_support, in_subtree_support, in_team_support, is_shared_support};
use crate::types::{AccessArg, RegClass};
use pgrx::prelude::*;
use std::cell::Cell;
use std::rc::Rc;

/// What a call site remembers: valid while the caller and the directory version are unchanged.
struct Answer<T> {
    caller: Caller,
    invalidations: u64,
    value: T,
}

impl<T> Answer<T> {
    #[inline]
    fn current(&self) -> bool {
        self.invalidations == cache::directory_invalidations() && self.caller.unchanged()
    }
}

fn resolve() -> (Rc<DirectoryCache>, Caller, Option<Person>) {
    let dir = cache::directory();
    let caller = Caller::current(&dir.config.identity);
    let person = caller.person(&dir);
    (dir, caller, person)
}

/// Answers through the call site's slot, computing with `compute` on a miss.
unsafe fn through_site<T: Clone + 'static>(
    fcinfo: pg_sys::FunctionCallInfo,
    compute: impl FnOnce(&DirectoryCache, Option<Person>) -> T,
) -> T {
    let slot = unsafe { callsite::slot::<Answer<T>>(fcinfo) };
    if let Some(Some(a)) = slot.as_ref() {
        if a.current() {
            return a.value.clone();
        }
    }
    // The counter seen before loading: if loading consumed an invalidation, the next call
    // re-checks rather than trusting this answer.
    let invalidations = cache::directory_invalidations();
    let (dir, caller, person) = resolve();
    let value = compute(&dir, person);
    if let Some(slot) = slot {
        *slot = Some(Answer { caller, invalidations, value: value.clone() });
    }
    value
}

/// The current person's id; NULL for nobody (no match, inactive, missing/empty/malformed setting).
#[pg_extern(stable, parallel_safe)]
fn current_person(fcinfo: pg_sys::FunctionCallInfo) -> Option<i64> {
    unsafe { through_site(fcinfo, |dir, p| p.map(|p| dir.directory().id(p))) }
}

fn subtree_set(fcinfo: pg_sys::FunctionCallInfo) -> Rc<IdSet> {
    unsafe { through_site(fcinfo, |dir, p| p.map_or_else(empty_set, |p| dir.subtree(p))) }
}

fn team_set(fcinfo: pg_sys::FunctionCallInfo) -> Rc<IdSet> {
    unsafe { through_site(fcinfo, |dir, p| p.map_or_else(empty_set, |p| dir.team(p))) }
}

/// The current person plus everyone reporting to them transitively; `{}` for nobody.
#[pg_extern(stable, parallel_safe)]
fn subtree(fcinfo: pg_sys::FunctionCallInfo) -> Vec<i64> {
    subtree_set(fcinfo).as_slice().to_vec()
}

/// The current person plus everyone with the same non-null team; `{}` for nobody.
#[pg_extern(stable, parallel_safe)]
fn team(fcinfo: pg_sys::FunctionCallInfo) -> Vec<i64> {
    team_set(fcinfo).as_slice().to_vec()
}

/// `subtree()` for an explicit person (ignores `active`); `{}` for an unknown id.
#[pg_extern(stable, parallel_safe)]
fn subtree_of(person: i64) -> Vec<i64> {
    let dir = cache::directory();
    dir.directory().person(person).map_or_else(Vec::new, |p| dir.subtree(p).as_slice().to_vec())
}

/// `team()` for an explicit person (ignores `active`); `{}` for an unknown id.
#[pg_extern(stable, parallel_safe)]
fn team_of(person: i64) -> Vec<i64> {
    let dir = cache::directory();
    dir.directory().person(person).map_or_else(Vec::new, |p| dir.team(p).as_slice().to_vec())
}

// `rowsec.in_subtree(owner)`: `owner = ANY(rowsec.subtree())` as an O(1) probe, and
// `rowsec.in_team(owner)`: `owner = ANY(rowsec.team())`; see `support.rs` for their index
// conditions. A policy calls them once per row a scan reads, so their entry points are written
// by hand rather than through pgrx's generic wrapper: when the call site's answer is current
// (the same directory version and caller), a call is a pointer chase, two counter compares and
// a bitset or hash probe, with no call into PostgreSQL (each of which pgrx guards with a
// sigsetjmp). Anything else takes the guarded path, which may load the directory or raise.

type SetAnswer = Answer<Rc<IdSet>>;

/// The probe through the call site's current answer; `None` when the answer must be computed.
///
/// # Safety
/// `fcinfo` must be a call of `in_subtree` or `in_team` (one non-null bigint argument), whose
/// `fn_extra` only `through_site::<Rc<IdSet>>` sets.
#[inline(always)]
unsafe fn probe_current(fcinfo: pg_sys::FunctionCallInfo) -> Option<bool> {
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        if flinfo.is_null() || (*flinfo).fn_extra.is_null() {
            return None;
        }
        let answer = (*(*flinfo).fn_extra.cast::<Option<SetAnswer>>()).as_ref()?;
        if answer.invalidations != cache::directory_invalidations()
            || answer.caller.unchanged_without_postgres() != Some(true)
        {
            return None;
        }
        let owner = (*fcinfo).args.as_slice(1)[0].value.value() as i64;
        Some(answer.value.contains(owner))
    }
}

/// The `pg_finfo_*` record PostgreSQL looks up for each hand-written C entry point: it marks the
/// function as using the version-1 calling convention (what `#[pg_extern]` would emit).
macro_rules! v1_function_info {
    ($($name:ident),+) => {$(
        #[no_mangle]
        #[doc(hidden)]
        pub extern "C" fn $name() -> &'static pg_sys::Pg_finfo_record {
            const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    )+};
}

unsafe fn owner_arg(fcinfo: pg_sys::FunctionCallInfo) -> i64 {
    unsafe { (*fcinfo).args.as_slice(1)[0].value.value() as i64 }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn rowsec_in_subtree(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    match unsafe { probe_current(fcinfo) } {
        Some(found) => pg_sys::Datum::from(found),
        None => in_subtree_guarded(fcinfo),
    }
}

#[pg_guard]
extern "C-unwind" fn in_subtree_guarded(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let owner = unsafe { owner_arg(fcinfo) };
    pg_sys::Datum::from(subtree_set(fcinfo).contains(owner))
}

#[no_mangle]
pub unsafe extern "C-unwind" fn rowsec_in_team(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    match unsafe { probe_current(fcinfo) } {
        Some(found) => pg_sys::Datum::from(found),
        None => in_team_guarded(fcinfo),
    }
}

#[pg_guard]
extern "C-unwind" fn in_team_guarded(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let owner = unsafe { owner_arg(fcinfo) };
    pg_sys::Datum::from(team_set(fcinfo).contains(owner))
}

v1_function_info!(pg_finfo_rowsec_in_subtree, pg_finfo_rowsec_in_team);

pgrx::extension_sql!(
    "CREATE FUNCTION rowsec.in_subtree(owner bigint) RETURNS boolean \
     STRICT STABLE PARALLEL SAFE SUPPORT rowsec.in_subtree_support \
     LANGUAGE c AS 'MODULE_PATHNAME', 'rowsec_in_subtree';\n\
     CREATE FUNCTION rowsec.in_team(owner bigint) RETURNS boolean \
     STRICT STABLE PARALLEL SAFE SUPPORT rowsec.in_team_support \
     LANGUAGE c AS 'MODULE_PATHNAME', 'rowsec_in_team';",
    name = "in_subtree_and_in_team",
    requires = [in_subtree_support, in_team_support]
);

// `rowsec.in_all(owner)`: the `all` scope, true for every row (whatever its owner, NULL
// included: not STRICT) while the caller is a person. Not `rowsec.current_person() IS NOT NULL`,
// which has no column: Citus plans a query over shards only when its clauses refer to the table
// (docs/distributed.md), so every scope's condition names the owner column. Per row it is the
// call site's answer, as for `in_subtree`.
#[no_mangle]
pub unsafe extern "C-unwind" fn rowsec_in_all(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        if !flinfo.is_null() && !(*flinfo).fn_extra.is_null() {
            if let Some(a) = (*(*flinfo).fn_extra.cast::<Option<Answer<bool>>>()).as_ref() {
                if a.invalidations == cache::directory_invalidations()
                    && a.caller.unchanged_without_postgres() == Some(true)
                {
                    return pg_sys::Datum::from(a.value);
                }
            }
        }
    }
    in_all_guarded(fcinfo)
}

#[pg_guard]
extern "C-unwind" fn in_all_guarded(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    pg_sys::Datum::from(unsafe { through_site(fcinfo, |_, p| p.is_some()) })
}

v1_function_info!(pg_finfo_rowsec_in_all);

pgrx::extension_sql!(
    "CREATE FUNCTION rowsec.in_all(owner bigint) RETURNS boolean \
     STABLE PARALLEL SAFE SUPPORT rowsec.in_all_support \
     LANGUAGE c AS 'MODULE_PATHNAME', 'rowsec_in_all';",
    name = "in_all",
    requires = [in_all_support]
);

/// What an `is_shared`/`shared_keys` call site remembers.
struct SharedAnswer {
    caller: Caller,
    tbl: pg_sys::Oid,
    access: ShareAccess,
    directory_invalidations: u64,
    shares_invalidations: u64,
    now: pg_sys::TimestampTz,
    valid_until: pg_sys::TimestampTz,
    keys: Rc<IdSet>,
}

thread_local! {
    static SHARES_IGNORED: Cell<bool> = const { Cell::new(false) };
}

/// While alive, the policy functions answer as if nothing were shared (`is_shared` false,
/// `shared_keys` empty): `rowsec.share` asks the caller's policies once this way to learn whether
/// their right to update a row is their own or comes only from a share. Dropped on return and
/// while unwinding from an ERROR, so policies never stay blind to shares (and if they did, they
/// would grant less, never more).
pub struct IgnoringShares(bool);

impl IgnoringShares {
    pub fn start() -> IgnoringShares {
        IgnoringShares(SHARES_IGNORED.with(|c| c.replace(true)))
    }
}

impl Drop for IgnoringShares {
    fn drop(&mut self) {
        SHARES_IGNORED.with(|c| c.set(self.0));
    }
}

/// Keys of `tbl` shared (unexpired as of now()) to the current person or their team.
pub fn shared_set(tbl: pg_sys::Oid, access: ShareAccess, fcinfo: Option<pg_sys::FunctionCallInfo>) -> Rc<IdSet> {
    // Checked before the call site's answer, which is kept for when shares count again.
    if SHARES_IGNORED.with(Cell::get) {
        return empty_set();
    }
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    let slot = fcinfo.and_then(|f| unsafe { callsite::slot::<SharedAnswer>(f) });
    if let Some(Some(a)) = slot.as_ref() {
        if a.tbl == tbl
            && a.access == access
            && a.now == now
            && now < a.valid_until
            && a.directory_invalidations == cache::directory_invalidations()
            && a.shares_invalidations == cache::shares_invalidations()
            && a.caller.unchanged()
        {
            return a.keys.clone();
        }
    }
    let (di, si) = (cache::directory_invalidations(), cache::shares_invalidations());
    let (dir, caller, person) = resolve();
    let (keys, valid_until) = match person {
        Some(p) => {
            let s = cache::shared(&dir, tbl, access, p, now);
            (s.keys.clone(), s.valid_until)
        }
        None => (empty_set(), pg_sys::TimestampTz::MAX),
    };
    if let Some(slot) = slot {
        *slot = Some(SharedAnswer {
            caller,
            tbl,
            access,
            directory_invalidations: di,
            shares_invalidations: si,
            now,
            valid_until,
            keys: keys.clone(),
        });
    }
    keys
}

/// Keys of rows of `tbl` shared, unexpired, to the current person or their team. `access`
/// 'read' counts read and write shares; 'write' only write shares.
#[pg_extern(stable, parallel_safe)]
fn shared_keys(tbl: RegClass, access: AccessArg, fcinfo: pg_sys::FunctionCallInfo) -> Vec<i64> {
    shared_set(tbl.0, access.0, Some(fcinfo)).as_slice().to_vec()
}

/// `key = ANY(rowsec.shared_keys(tbl, access))` as an O(1) probe, with an index condition.
#[pg_extern(stable, parallel_safe, support = is_shared_support)]
fn is_shared(tbl: RegClass, key: i64, access: AccessArg, fcinfo: pg_sys::FunctionCallInfo) -> bool {
    shared_set(tbl.0, access.0, Some(fcinfo)).contains(key)
}

/// True when row `key` of `tbl` is shared for write to the current person and `new_owner` is the
/// row's owner as the statement's snapshot sees it: a write share never hands a record away.
#[pg_extern(stable, parallel_safe)]
fn shared_write_keeps_owner(tbl: RegClass, key: i64, new_owner: i64, fcinfo: pg_sys::FunctionCallInfo) -> bool {
    if !shared_set(tbl.0, ShareAccess::Write, Some(fcinfo)).contains(key) {
        return false;
    }
    // On a Citus worker the row is in a shard here, and the registry on the coordinator.
    if crate::citus::node().or_raise() == crate::citus::Node::Worker {
        let Some((key_att, owner_att)) = (unsafe { column_args(fcinfo) }) else { return false };
        return crate::citus::row_owner_here(tbl.0, key, key_att, owner_att).or_raise() == Some(new_owner);
    }
    registry::row_owner(tbl.0, key).or_raise() == Some(new_owner)
}

/// The column numbers of the second and third arguments of the call `fcinfo`, when both are
/// columns (as in the compiled policies: `(tbl, key column, owner column)`).
unsafe fn column_args(fcinfo: pg_sys::FunctionCallInfo) -> Option<(i16, i16)> {
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        if flinfo.is_null()
            || (*flinfo).fn_expr.is_null()
            || !pgrx::is_a((*flinfo).fn_expr, pg_sys::NodeTag::T_FuncExpr)
        {
            return None;
        }
        let args = (*(*flinfo).fn_expr.cast::<pg_sys::FuncExpr>()).args;
        if args.is_null() || (*args).length < 3 {
            return None;
        }
        let column = |i: i32| {
            let n = pg_sys::list_nth(args, i).cast::<pg_sys::Node>();
            pgrx::is_a(n, pg_sys::NodeTag::T_Var).then(|| (*n.cast::<pg_sys::Var>()).varattno)
        };
        column(1).zip(column(2))
    }
}

//! The per-backend cache (`thread_local!`: a backend is one thread, so no locks).
//!
//! Invalidation is PostgreSQL's own, so it is transactional: statement triggers on the directory
//! and on `rowsec.shares` call `CacheInvalidateRelcacheByRelid`, which reaches this backend at its
//! next command (same session) or after commit (other sessions; on rollback only the local
//! backend replays it). The relcache callback only bumps counters; a cache remembers the counter
//! it was loaded under and is stale once the counter moves. The counter is read *before* taking
//! the snapshot the data is read with, so a change whose invalidation arrives later is never
//! mistaken for one the cache already contains.

use crate::catalog::{self, Config, ScanSnapshot};
use crate::errors::{OrRaise, RowsecError};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use rowsec_core::access::ShareAccess;
use rowsec_core::diagnostic::quoted;
use rowsec_core::directory::{describe_cycles, Directory, Person};
use rowsec_core::idset::IdSet;
use rowsec_core::sets::PersonSets;
use rowsec_core::shares::{ShareIndex, SharedKeys};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

#[derive(Clone, Copy, Default)]
struct Watched {
    config: pg_sys::Oid,
    /// On Citus, where rowsec.config and rowsec.shares (reference tables) are read from:
    /// their placements on this node (citus.rs), which their triggers invalidate.
    config_placement: pg_sys::Oid,
    shares_placement: pg_sys::Oid,
    directory: pg_sys::Oid,
    /// On Citus, the directory's placement on this node: what is read, and what the directory's
    /// trigger (propagated there by Citus) invalidates.
    placement: pg_sys::Oid,
    shares: pg_sys::Oid,
    identity_keys: pg_sys::Oid,
}

thread_local! {
    static DIRECTORY_INVALIDATIONS: Cell<u64> = const { Cell::new(1) };
    static SHARES_INVALIDATIONS: Cell<u64> = const { Cell::new(1) };
    static WATCHED: Cell<Watched> = Cell::new(Watched::default());
    static LOADS: Cell<u64> = const { Cell::new(0) };
    static ROLE_CHANGES: Cell<u64> = const { Cell::new(0) };
    static DIRECTORY: RefCell<Option<Rc<DirectoryCache>>> = const { RefCell::new(None) };
}

/// Registered once per backend from `_PG_init`. Runs inside invalidation processing: it must not
/// touch catalogs, allocate through PostgreSQL or fail, so it only bumps counters.
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let w = WATCHED.with(Cell::get);
    let all = relid == pg_sys::InvalidOid;
    let config = relid == w.config || relid == w.config_placement;
    if all || config || relid == w.directory || relid == w.placement || relid == w.identity_keys {
        DIRECTORY_INVALIDATIONS.with(|c| c.set(c.get().wrapping_add(1)));
    }
    if all || config || relid == w.shares || relid == w.shares_placement {
        SHARES_INVALIDATIONS.with(|c| c.set(c.get().wrapping_add(1)));
    }
}

/// A role was created, renamed or dropped: the login -> person memo may be wrong.
unsafe extern "C-unwind" fn on_role_invalidation(_arg: pg_sys::Datum, _cacheid: i32, _hash: u32) {
    ROLE_CHANGES.with(|c| c.set(c.get().wrapping_add(1)));
}

pub fn register_invalidation_callback() {
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_invalidation), pg_sys::Datum::from(0));
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::AUTHOID as i32,
            Some(on_role_invalidation),
            pg_sys::Datum::from(0),
        );
    }
}

/// The trigger function of the statement triggers on the directory (`rowsec_directory_changed`,
/// installed by `rowsec.configure`) and on `rowsec.shares` (`rowsec_shares_changed`): every
/// backend's cache of the changed table becomes stale, transactionally (the changing session at
/// its next command, others after commit, nobody on rollback).
///
/// Written by hand rather than with `#[pg_trigger]`: pgrx's wrapper panics (XX000, with its
/// `Debug` text) when the function is called other than as a trigger; this one raises 0A000 as
/// PL/pgSQL's trigger functions do.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn rowsec_invalidate_caches(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let relid = unsafe {
        let data = crate::audit::trigger_data(
            fcinfo,
            "rowsec.invalidate_caches()",
            "rowsec.configure installs it as a statement trigger on the directory",
        );
        (*(*data).tg_relation).rd_id
    };
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) };
    // A statement trigger returns NULL.
    pg_sys::Datum::from(0)
}

#[no_mangle]
#[doc(hidden)]
pub extern "C" fn pg_finfo_rowsec_invalidate_caches() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

pgrx::extension_sql!(
    "CREATE FUNCTION rowsec.invalidate_caches() RETURNS trigger LANGUAGE c \
     AS 'MODULE_PATHNAME', 'rowsec_invalidate_caches';",
    name = "invalidate_caches"
);

/// The directory invalidation counter; call sites compare it to decide whether their copy is current.
#[inline]
pub fn directory_invalidations() -> u64 {
    DIRECTORY_INVALIDATIONS.with(Cell::get)
}

#[inline]
pub fn shares_invalidations() -> u64 {
    SHARES_INVALIDATIONS.with(Cell::get)
}

/// Makes this backend reload at its next use (used right after `rowsec.configure`).
pub fn invalidate_local() {
    DIRECTORY_INVALIDATIONS.with(|c| c.set(c.get().wrapping_add(1)));
    SHARES_INVALIDATIONS.with(|c| c.set(c.get().wrapping_add(1)));
}

fn watch(f: impl FnOnce(&mut Watched)) {
    WATCHED.with(|w| {
        let mut v = w.get();
        f(&mut v);
        w.set(v);
    });
}

/// Whether a cache read under `fresh`/`counter` may still be used.
fn still_valid(loaded_under: u64, current: u64, fresh: bool) -> bool {
    // A cache read under the query snapshot (parallel mode) is good only while parallel mode lasts.
    loaded_under == current && (fresh || unsafe { pg_sys::IsInParallelMode() })
}

/// One loaded version of the directory, with each person's sets memoized for that version.
pub struct DirectoryCache {
    pub config: Config,
    sets: PersonSets,
    /// Per-backend load number: the directory version that `directory_status()` reports.
    pub version: u64,
    pub loaded_at: pg_sys::TimestampTz,
    pub load_ms: f64,
    pub fresh: bool,
    invalidations: u64,
    /// Signed identity's keys and memo; `None` for the other identities.
    pub signing: Option<crate::identity::Signing>,
    logins: RefCell<HashMap<pg_sys::Oid, Option<Person>>>,
    logins_role_changes: Cell<u64>,
}

impl DirectoryCache {
    pub fn is_current(&self) -> bool {
        still_valid(self.invalidations, directory_invalidations(), self.fresh)
    }

    pub fn directory(&self) -> &Directory {
        self.sets.directory()
    }

    pub fn subtree(&self, p: Person) -> Rc<IdSet> {
        self.sets.subtree(p)
    }

    pub fn team(&self, p: Person) -> Rc<IdSet> {
        self.sets.team(p)
    }

    /// The person whose login is the role `role`, memoized per version.
    pub fn person_for_role(&self, role: pg_sys::Oid) -> Option<Person> {
        let role_changes = ROLE_CHANGES.with(Cell::get);
        if self.logins_role_changes.replace(role_changes) != role_changes {
            self.logins.borrow_mut().clear();
        }
        if let Some(p) = self.logins.borrow().get(&role) {
            return *p;
        }
        let name = unsafe { pg_sys::GetUserNameFromId(role, true) };
        // A role name that is not UTF-8 is nobody: directory logins are UTF-8 (the load refuses
        // others), and a lossy conversion could make two different names equal.
        let name = (!name.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(name) }.to_str().ok()).flatten();
        let p = name.and_then(|name| self.directory().person_by_login(name));
        self.logins.borrow_mut().insert(role, p);
        p
    }
}

/// The current directory, loading it when stale. Raises when rowsec is not configured.
pub fn directory() -> Rc<DirectoryCache> {
    if let Some(c) = DIRECTORY.with(|d| d.borrow().clone()) {
        if c.is_current() {
            return c;
        }
    }
    // Drop the old version first: a reload of 100k people should not hold two copies.
    DIRECTORY.with(|d| d.borrow_mut().take());
    let c = Rc::new(load_directory().or_raise());
    DIRECTORY.with(|d| *d.borrow_mut() = Some(c.clone()));
    // After storing it: defining the variable runs its assign hook, which reads this directory.
    crate::plans::hook_identity_setting(&c.config.identity);
    c
}

/// The directory in memory, current or not, without loading or reading anything: for the
/// identity setting's assign hook, which may not touch catalogs (a plan's shape, never access).
pub fn loaded_directory() -> Option<Rc<DirectoryCache>> {
    DIRECTORY.with(|d| d.try_borrow().ok().and_then(|d| d.clone()))
}

/// Like [`directory`] but `None` instead of an error when not configured (planner estimates).
pub fn directory_if_configured() -> Option<Rc<DirectoryCache>> {
    // A current cache is proof enough (emptying rowsec.config invalidates it): planning calls
    // this several times per statement, and reading rowsec.config is a scan.
    if let Some(c) = DIRECTORY.with(|d| d.borrow().clone()) {
        if c.is_current() {
            return Some(c);
        }
    }
    let config = catalog::extension_relation(c"config")?;
    let config = crate::citus::local_placement(config, "rowsec.config").or_raise();
    let snap = ScanSnapshot::take();
    catalog::read_config(config, &snap).or_raise()?;
    Some(directory())
}

fn load_directory() -> Result<DirectoryCache, RowsecError> {
    let started = Instant::now();
    let config_oid = catalog::extension_relation(c"config")
        .ok_or_else(|| RowsecError::not_configured("The table rowsec.config does not exist."))?;
    watch(|w| w.config = config_oid);
    let config_oid = crate::citus::local_placement(config_oid, "rowsec.config")?;
    watch(|w| w.config_placement = config_oid);
    let invalidations = directory_invalidations();
    let config = {
        let snap = ScanSnapshot::take();
        catalog::read_config(config_oid, &snap)?
            .ok_or_else(|| RowsecError::not_configured("rowsec.config is empty: no directory table is known."))?
    };
    watch(|w| w.directory = config.directory);
    let shape = catalog::directory_shape(&config)?;
    watch(|w| w.placement = shape.rel);
    let snap = ScanSnapshot::take();
    let signing = match &config.identity {
        rowsec_core::config::Identity::SignedSetting(_) => {
            let keys_oid = catalog::extension_relation(c"identity_keys").ok_or_else(|| {
                RowsecError::internal("reading rowsec.identity_keys", "the table rowsec.identity_keys does not exist")
            })?;
            watch(|w| w.identity_keys = keys_oid);
            Some(crate::identity::Signing::new(catalog::read_identity_keys(keys_oid, &snap)?))
        }
        _ => None,
    };
    let rows = catalog::read_directory(&shape, &snap)?;
    let sets = PersonSets::new(Directory::build(rows));
    let version = LOADS.with(|l| {
        l.set(l.get() + 1);
        l.get()
    });
    let cache = DirectoryCache {
        config,
        sets,
        version,
        loaded_at: unsafe { pg_sys::GetCurrentTimestamp() },
        load_ms: started.elapsed().as_secs_f64() * 1000.0,
        fresh: snap.fresh,
        invalidations,
        signing,
        logins: RefCell::default(),
        logins_role_changes: Cell::new(ROLE_CHANGES.with(Cell::get)),
    };
    report_anomalies(&cache);
    Ok(cache)
}

/// Cycles (and duplicate ids) are reported once per loaded version, never raised: a policy must
/// keep working while someone fixes the data. They go to the server log only: the session that
/// happens to load the directory belongs to any person, who can do nothing about it (and should
/// not learn the org chart from it); `rowsec.directory_status()` lists them for the DBA.
fn report_anomalies(cache: &DirectoryCache) {
    // Parallel workers load their own copy; the leader already reported.
    if unsafe { pg_sys::ParallelWorkerNumber } >= 0 {
        return;
    }
    let cycles = cache.directory().cycles();
    if !cycles.is_empty() {
        RowsecError::new(
            PgSqlErrorCode::ERRCODE_WARNING,
            format!("rowsec found {} manager cycle(s) in {}", cycles.len(), catalog::relation_name(cache.config.directory)),
            format!("cycles: {}", describe_cycles(cycles).join("; ")),
            format!(
                "Subtrees stay finite (each person counts once). Fix the {} column; rowsec.directory_status() lists the cycles.",
                quoted(&cache.config.manager_column)
            ),
        )
        .log_server_only();
    }
    let dups = cache.directory().duplicate_ids();
    if !dups.is_empty() {
        let first: Vec<String> = dups.iter().take(10).map(i64::to_string).collect();
        RowsecError::new(
            PgSqlErrorCode::ERRCODE_WARNING,
            format!(
                "rowsec found {} duplicate id(s) in {}",
                dups.len(),
                catalog::relation_name(cache.config.directory)
            ),
            format!("Duplicated ids (first 10): {}; rowsec used the first row of each.", first.join(", ")),
            "Add a PRIMARY KEY or UNIQUE constraint on the id column; rowsec.directory_status() lists the duplicates.",
        )
        .log_server_only();
    }
}

/// The shares to one grantee (a person and their team), as read under one invalidation count.
/// A backend keeps those of the few people it served lately, never the whole `rowsec.shares`:
/// a share or unshare makes each backend read again only its current person's shares, by index,
/// when it next needs them.
struct GranteeShares {
    invalidations: u64,
    fresh: bool,
    index: ShareIndex,
}

/// The grantees whose shares a backend keeps: a pooled connection serves one person after
/// another; past this many, the oldest answers are dropped all at once.
const GRANTEES_KEPT: usize = 64;

/// A person's id and their team's name.
type GranteeKey = (i64, Option<String>);

thread_local! {
    static SHARES: RefCell<HashMap<GranteeKey, Rc<GranteeShares>>> = RefCell::new(HashMap::new());
}

/// Keys of `tbl` shared to `person` (of `dir`) or to their team by a share allowing `wanted`,
/// unexpired at `now`; see [`ShareIndex::shared`].
pub fn shared(
    dir: &DirectoryCache,
    tbl: pg_sys::Oid,
    wanted: ShareAccess,
    person: Person,
    now: pg_sys::TimestampTz,
) -> Rc<SharedKeys> {
    let d = dir.directory();
    let (id, team) = (d.id(person), d.team_name(person));
    let entry = grantee_shares(id, team);
    entry.index.shared(tbl.to_u32(), wanted, id, team, dir.version, now)
}

fn grantee_shares(person: i64, team: Option<&str>) -> Rc<GranteeShares> {
    let key = (person, team.map(str::to_owned));
    if let Some(c) = SHARES.with(|s| s.borrow().get(&key).cloned()) {
        if still_valid(c.invalidations, shares_invalidations(), c.fresh) {
            return c;
        }
    }
    let c = Rc::new(load_shares(person, team).or_raise());
    SHARES.with(|s| {
        let mut s = s.borrow_mut();
        // Stale answers go first; a full map is emptied (cheap to read again, by index).
        let current = shares_invalidations();
        s.retain(|_, c| c.invalidations == current);
        if s.len() >= GRANTEES_KEPT {
            s.clear();
        }
        s.insert(key, c.clone());
    });
    c
}

fn load_shares(person: i64, team: Option<&str>) -> Result<GranteeShares, RowsecError> {
    let oid = catalog::extension_relation(c"shares")
        .ok_or_else(|| RowsecError::not_configured("The table rowsec.shares does not exist."))?;
    watch(|w| w.shares = oid);
    let oid = crate::citus::local_placement(oid, "rowsec.shares")?;
    watch(|w| w.shares_placement = oid);
    let invalidations = shares_invalidations();
    let snap = ScanSnapshot::take();
    let rows = catalog::read_shares_to(oid, &catalog::Grantee { person, team }, &snap)?;
    Ok(GranteeShares { invalidations, fresh: snap.fresh, index: ShareIndex::build(rows) })
}

//! Who is asking: the caller's role (`login`) or a setting (`setting`), never a definer's rights
//! of rowsec itself (no rowsec policy function is SECURITY DEFINER).

use crate::cache::DirectoryCache;
use crate::errors::RowsecError;
use crate::plans;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use rowsec_core::config::{person_id_from_setting, Identity};
use rowsec_core::directory::Person;
use rowsec_core::token::{self, Claims, Rejection};
use std::cell::RefCell;
use std::ffi::{CStr, CString};

/// What identifies the caller, cheap to read and compare on every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Role(pg_sys::Oid),
    /// The setting's raw value (`None`: not set), and the generation of the setting's assign
    /// hook it was read under when rowsec hooked the setting (`crate::plans`).
    Setting {
        name: CString,
        value: Option<Vec<u8>>,
        generation: Option<u64>,
    },
    /// A signed token in the setting, and the current role (which the token must name).
    Signed {
        name: CString,
        value: Option<Vec<u8>>,
        role: pg_sys::Oid,
        generation: Option<u64>,
    },
}

impl Caller {
    pub fn current(identity: &Identity) -> Caller {
        match identity {
            Identity::Login => Caller::Role(unsafe { pg_sys::GetUserId() }),
            Identity::Setting(name) => Caller::Setting {
                name: name.clone(),
                generation: plans::generation_if_hooked(name),
                value: read_setting(name),
            },
            Identity::SignedSetting(name) => Caller::Signed {
                name: name.clone(),
                generation: plans::generation_if_hooked(name),
                value: read_setting(name),
                role: unsafe { pg_sys::GetUserId() },
            },
        }
    }

    /// Whether the caller is still the one this value was read for (per-call check of a call
    /// site, so once per row: a hooked setting is compared by its hook's generation, a counter,
    /// instead of looking the setting up by name).
    #[inline]
    pub fn unchanged(&self) -> bool {
        match self {
            Caller::Role(oid) => current_user_unguarded() == *oid,
            Caller::Setting { generation: Some(g), .. } => *g == plans::generation(),
            Caller::Setting { name, value, generation: None } => setting_bytes(name) == value.as_deref(),
            Caller::Signed { role, generation: Some(g), .. } => {
                *g == plans::generation() && (unsafe { pg_sys::GetUserId() }) == *role
            }
            Caller::Signed { name, value, role, generation: None } => {
                (unsafe { pg_sys::GetUserId() }) == *role && setting_bytes(name) == value.as_deref()
            }
        }
    }

    /// [`Caller::unchanged`] when it can be answered without calling PostgreSQL (so without
    /// pgrx's guard): the role through the unguarded `GetUserId`, a hooked setting by its
    /// generation. `None` for an unhooked setting, which must be looked up by name.
    #[inline(always)]
    pub fn unchanged_without_postgres(&self) -> Option<bool> {
        match self {
            Caller::Role(oid) => Some(current_user_unguarded() == *oid),
            Caller::Setting { generation: Some(g), .. } => Some(*g == plans::generation()),
            Caller::Signed { role, generation: Some(g), .. } => {
                Some(*g == plans::generation() && current_user_unguarded() == *role)
            }
            Caller::Setting { generation: None, .. } | Caller::Signed { generation: None, .. } => None,
        }
    }

    /// The active person this caller is, if any. Missing, empty or malformed settings, unknown
    /// logins and inactive people resolve to nobody; none of these is an error.
    pub fn person(&self, dir: &DirectoryCache) -> Option<Person> {
        let p = match self {
            Caller::Role(oid) => dir.person_for_role(*oid),
            Caller::Setting { value, .. } => dir.directory().person(person_id_from_setting(value.as_deref())?),
            Caller::Signed { value, role, .. } => {
                let signing = dir.signing.as_ref()?;
                dir.directory().person(signing.person(value.as_deref()?, *role)?)
            }
        }?;
        dir.directory().is_active(p).then_some(p)
    }
}

extern "C-unwind" {
    /// PostgreSQL's `GetUserId()`, declared here without pgrx's guard: it returns a
    /// backend-local variable and cannot raise, and the per-row check should not pay a sigsetjmp.
    #[link_name = "GetUserId"]
    fn get_user_id() -> pg_sys::Oid;
}

#[inline(always)]
fn current_user_unguarded() -> pg_sys::Oid {
    unsafe { get_user_id() }
}

fn setting_bytes(name: &CStr) -> Option<&'static [u8]> {
    // current_setting(name, true): NULL when the placeholder does not exist.
    let v = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) };
    (!v.is_null()).then(|| unsafe { CStr::from_ptr(v) }.to_bytes())
}

fn read_setting(name: &CStr) -> Option<Vec<u8>> {
    setting_bytes(name).map(<[u8]>::to_vec)
}

/// Signed identity's side of a loaded directory: the keys, and the last token checked (a pool
/// sets one token per transaction, so one entry answers every call of a statement after the
/// first). Rebuilt with the directory cache, so a key added or removed takes effect as a
/// directory change does.
pub struct Signing {
    keys: Vec<(String, Vec<u8>)>,
    database: String,
    last: RefCell<Option<Checked>>,
    /// What was last told to the log, so a bad token is logged once, not once per row.
    logged: RefCell<Option<(Vec<u8>, Rejection, pg_sys::Oid)>>,
    role_names: RefCell<Option<(pg_sys::Oid, String)>>,
}

/// A token and what its signature check found.
type Checked = (Vec<u8>, Result<Claims, Rejection>);

/// PostgreSQL timestamps count microseconds from 2000-01-01; tokens count seconds from 1970.
const UNIX_EPOCH_IN_PG_SECONDS: i64 = 946_684_800;

impl Signing {
    pub fn new(keys: Vec<(String, Vec<u8>)>) -> Signing {
        let database = unsafe {
            let name = pg_sys::get_database_name(pg_sys::MyDatabaseId);
            if name.is_null() {
                String::new()
            } else {
                CStr::from_ptr(name).to_string_lossy().into_owned()
            }
        };
        Signing { keys, database, last: RefCell::default(), logged: RefCell::default(), role_names: RefCell::default() }
    }

    /// The person a token names for the current role, now; nobody (and one line in the server
    /// log, never a message to the session) for a token that is forged, expired, malformed, made
    /// for another database or for other roles. An empty or missing setting is nobody, silently:
    /// the application has not set it yet.
    pub fn person(&self, value: &[u8], role: pg_sys::Oid) -> Option<i64> {
        if value.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let verified = {
            let mut last = self.last.borrow_mut();
            match last.as_ref() {
                Some((t, r)) if t == value => r.clone(),
                _ => {
                    let r =
                        token::verify(value, |id| self.keys.iter().find(|(k, _)| k == id).map(|(_, s)| s.as_slice()));
                    *last = Some((value.to_vec(), r.clone()));
                    r
                }
            }
        };
        let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() } / 1_000_000 + UNIX_EPOCH_IN_PG_SECONDS;
        match verified.and_then(|c| c.check(now, &self.database, &self.role_name(role))) {
            Ok(person) => Some(person),
            Err(why) => {
                self.log(value, why, role);
                None
            }
        }
    }

    fn role_name(&self, role: pg_sys::Oid) -> String {
        let mut memo = self.role_names.borrow_mut();
        if let Some((oid, name)) = memo.as_ref() {
            if *oid == role {
                return name.clone();
            }
        }
        let name = unsafe {
            let n = pg_sys::GetUserNameFromId(role, true);
            if n.is_null() {
                String::new()
            } else {
                CStr::from_ptr(n).to_string_lossy().into_owned()
            }
        };
        *memo = Some((role, name.clone()));
        name
    }

    fn log(&self, value: &[u8], why: Rejection, role: pg_sys::Oid) {
        // Workers share the leader's token: the leader reports.
        if unsafe { pg_sys::ParallelWorkerNumber } >= 0 {
            return;
        }
        let mut logged = self.logged.borrow_mut();
        if logged.as_ref().is_some_and(|(t, w, r)| t == value && *w == why && *r == role) {
            return;
        }
        *logged = Some((value.to_vec(), why, role));
        RowsecError::new(
            PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            format!("rowsec: a signed identity token names nobody: {why}"),
            format!("role {}, database {}", self.role_name(role), self.database),
            "The session sees no rows. Sign tokens with a key in rowsec.identity_keys, for this database and the role the session uses (rowsec_core::token::sign).",
        )
        .log_server_only();
    }
}

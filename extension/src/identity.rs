//! Who is asking: the caller's role (`login`) or a setting (`setting`), never a definer's rights
//! of rowsec itself (no rowsec policy function is SECURITY DEFINER).

use crate::cache::DirectoryCache;
use pgrx::prelude::*;
use rowsec_core::config::{person_id_from_setting, Identity};
use rowsec_core::directory::Person;
use std::ffi::{CStr, CString};

/// What identifies the caller, cheap to read and compare on every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Role(pg_sys::Oid),
    /// The setting's raw value (`None`: not set).
    Setting {
        name: CString,
        value: Option<Vec<u8>>,
    },
}

impl Caller {
    pub fn current(identity: &Identity) -> Caller {
        match identity {
            Identity::Login => Caller::Role(unsafe { pg_sys::GetUserId() }),
            Identity::Setting(name) => Caller::Setting { name: name.clone(), value: read_setting(name) },
        }
    }

    /// Whether the caller is still the one this value was read for (per-call check of a call site).
    #[inline]
    pub fn unchanged(&self) -> bool {
        match self {
            Caller::Role(oid) => (unsafe { pg_sys::GetUserId() }) == *oid,
            Caller::Setting { name, value } => {
                let now = setting_bytes(name);
                now == value.as_deref()
            }
        }
    }

    /// The active person this caller is, if any. Missing, empty or malformed settings, unknown
    /// logins and inactive people resolve to nobody; none of these is an error.
    pub fn person(&self, dir: &DirectoryCache) -> Option<Person> {
        let p = match self {
            Caller::Role(oid) => dir.person_for_role(*oid),
            Caller::Setting { value, .. } => dir.directory().person(person_id_from_setting(value.as_deref())?),
        }?;
        dir.directory().is_active(p).then_some(p)
    }
}

fn setting_bytes(name: &CStr) -> Option<&'static [u8]> {
    // current_setting(name, true): NULL when the placeholder does not exist.
    let v = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) };
    (!v.is_null()).then(|| unsafe { CStr::from_ptr(v) }.to_bytes())
}

fn read_setting(name: &CStr) -> Option<Vec<u8>> {
    setting_bytes(name).map(<[u8]>::to_vec)
}

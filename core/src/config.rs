//! rowsec's configuration rules that need no database: how the caller is identified, and which
//! column types rowsec can read for each column it is told about.

use crate::diagnostic::{quoted, Diagnostic, HINT_COMPILE};
use std::ffi::CString;

/// How policy functions find out who the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The current role's name is a login in the directory.
    Login,
    /// The named setting (e.g. `app.person_id`) holds the person's id.
    Setting(CString),
    /// The named setting holds a signed token ([`crate::token`]): id, expiry, database, roles.
    SignedSetting(CString),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("identity 'login' needs a login column")]
    LoginWithoutColumn,
    #[error("identity 'setting' needs a setting name")]
    SettingWithoutName,
    #[error("invalid identity setting name")]
    SettingNameWithNul,
    #[error("unknown identity mode {}", quoted(.0))]
    UnknownIdentity(String),
}

impl Diagnostic for ConfigError {
    fn detail(&self) -> String {
        match self {
            ConfigError::LoginWithoutColumn => {
                "rowsec.configure was called with identity => 'login' and no login_column.".into()
            }
            ConfigError::SettingWithoutName => {
                "rowsec.configure was called with identity => 'setting' and no identity_setting.".into()
            }
            ConfigError::SettingNameWithNul => "It contains a NUL byte.".into(),
            ConfigError::UnknownIdentity(_) => "identity must be 'login', 'setting' or 'signed_setting'.".into(),
        }
    }
    fn hint(&self) -> String {
        match self {
            ConfigError::LoginWithoutColumn => {
                "Name the directory's login column in the spec, or use identity: { setting: NAME }.".into()
            }
            ConfigError::SettingWithoutName => {
                "Pass identity_setting => 'app.person_id' (any custom setting name).".into()
            }
            ConfigError::SettingNameWithNul | ConfigError::UnknownIdentity(_) => HINT_COMPILE.into(),
        }
    }
}

impl Identity {
    /// From `rowsec.configure`'s `identity` and `identity_setting` arguments; `has_login_column`
    /// says whether a login column was named.
    pub fn from_arguments(mode: &str, setting: Option<&str>, has_login_column: bool) -> Result<Identity, ConfigError> {
        match mode {
            "login" if !has_login_column => Err(ConfigError::LoginWithoutColumn),
            "login" => Ok(Identity::Login),
            "setting" | "signed_setting" => match setting.map(str::trim) {
                Some(s) if !s.is_empty() => {
                    let name = CString::new(s).map_err(|_| ConfigError::SettingNameWithNul)?;
                    Ok(if mode == "setting" { Identity::Setting(name) } else { Identity::SignedSetting(name) })
                }
                _ => Err(ConfigError::SettingWithoutName),
            },
            other => Err(ConfigError::UnknownIdentity(other.to_owned())),
        }
    }

    /// As `rowsec.config` stores it: `(identity, identity_setting)`.
    pub fn to_stored(&self) -> (&'static str, Option<String>) {
        match self {
            Identity::Login => ("login", None),
            Identity::Setting(s) => ("setting", Some(s.to_string_lossy().into_owned())),
            Identity::SignedSetting(s) => ("signed_setting", Some(s.to_string_lossy().into_owned())),
        }
    }

    /// Back from `rowsec.config`; `None` for a pair `to_stored` never writes.
    pub fn from_stored(mode: &str, setting: Option<String>) -> Option<Identity> {
        match (mode, setting) {
            ("login", _) => Some(Identity::Login),
            ("setting", Some(name)) => CString::new(name).ok().map(Identity::Setting),
            ("signed_setting", Some(name)) => CString::new(name).ok().map(Identity::SignedSetting),
            _ => None,
        }
    }
}

/// The person id a setting's raw value names. Missing, empty, non-UTF-8 or non-integer values
/// name nobody: none of these is an error (an application may not have set it yet).
pub fn person_id_from_setting(raw: Option<&[u8]>) -> Option<i64> {
    std::str::from_utf8(raw?).ok()?.trim().parse().ok()
}

/// A column rowsec is told about, in a table it did not create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnRole {
    /// Directory columns, given to `rowsec.configure`.
    Id,
    Manager,
    Team,
    Login,
    Active,
    /// Protected table columns, given to `rowsec.protect_table`.
    Key,
    Owner,
}

/// What rowsec can tell about a column's type without asking more of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Int8,
    Int4,
    Int2,
    Bool,
    /// `text` or `varchar`.
    Text,
    Name,
    Other,
}

impl ColumnRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnRole::Id => "id",
            ColumnRole::Manager => "manager",
            ColumnRole::Team => "team",
            ColumnRole::Login => "login",
            ColumnRole::Active => "active",
            ColumnRole::Key => "key",
            ColumnRole::Owner => "owner",
        }
    }

    /// The function whose argument named the column.
    pub fn given_to(self) -> &'static str {
        match self {
            ColumnRole::Key | ColumnRole::Owner => "rowsec.protect_table",
            _ => "rowsec.configure",
        }
    }

    /// Whether rowsec can read a column of type `t` in this role. Ids and managers are read as
    /// integers of any width; keys and owners are compared as bigint in the policies; a team is
    /// compared by its text.
    pub fn accepts(self, t: ColumnType) -> bool {
        use ColumnType::*;
        match self {
            ColumnRole::Id | ColumnRole::Manager => matches!(t, Int8 | Int4 | Int2),
            ColumnRole::Key | ColumnRole::Owner => t == Int8,
            ColumnRole::Login => matches!(t, Text | Name),
            ColumnRole::Active => t == Bool,
            ColumnRole::Team => true,
        }
    }

    /// The types `accepts` takes, as an error message says them.
    pub fn wanted(self) -> &'static str {
        match self {
            ColumnRole::Id | ColumnRole::Manager | ColumnRole::Key | ColumnRole::Owner => "bigint",
            ColumnRole::Login => "text, varchar or name",
            ColumnRole::Active => "boolean",
            ColumnRole::Team => "any type",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_identity_needs_a_login_column() {
        assert_eq!(Identity::from_arguments("login", None, true), Ok(Identity::Login));
        assert_eq!(Identity::from_arguments("login", None, false), Err(ConfigError::LoginWithoutColumn));
    }

    #[test]
    fn setting_identity_needs_a_non_blank_name_without_nul() {
        let app = Identity::Setting(CString::new("app.person").unwrap());
        assert_eq!(Identity::from_arguments("setting", Some(" app.person "), false), Ok(app));
        for missing in [None, Some(""), Some("  ")] {
            assert_eq!(Identity::from_arguments("setting", missing, true), Err(ConfigError::SettingWithoutName));
        }
        assert_eq!(Identity::from_arguments("setting", Some("a\0b"), true), Err(ConfigError::SettingNameWithNul));
    }

    #[test]
    fn an_unknown_identity_mode_is_named_in_the_error() {
        let e = Identity::from_arguments("Login", None, true).unwrap_err();
        assert_eq!(e.to_string(), "unknown identity mode \"Login\"");
        assert_eq!(e.detail(), "identity must be 'login', 'setting' or 'signed_setting'.");
        let e = Identity::from_arguments("log\\in", None, true).unwrap_err();
        assert_eq!(e.to_string(), "unknown identity mode \"log\\in\"", "no Rust escaping");
    }

    #[test]
    fn identities_round_trip_through_their_stored_form() {
        for identity in [
            Identity::Login,
            Identity::Setting(CString::new("app.person_id").unwrap()),
            Identity::SignedSetting(CString::new("app.person_id").unwrap()),
        ] {
            let (mode, setting) = identity.to_stored();
            assert_eq!(Identity::from_stored(mode, setting), Some(identity));
        }
        assert_eq!(Identity::from_stored("setting", None), None);
        assert_eq!(Identity::from_stored("magic", Some("x".into())), None);
    }

    #[test]
    fn a_setting_names_a_person_only_when_it_holds_an_integer() {
        assert_eq!(person_id_from_setting(Some(b" 42 ")), Some(42));
        assert_eq!(person_id_from_setting(Some(b"-7")), Some(-7));
        for nobody in [None, Some(&b""[..]), Some(b"two"), Some(b"4.0"), Some(b"99999999999999999999"), Some(b"\xff1")]
        {
            assert_eq!(person_id_from_setting(nobody), None, "{nobody:?}");
        }
    }

    #[test]
    fn column_roles_accept_the_types_rowsec_reads() {
        use ColumnRole::*;
        use ColumnType::*;
        let all = [Int8, Int4, Int2, Bool, Text, Name, Other];
        let accepted = |role: ColumnRole| all.iter().copied().filter(|t| role.accepts(*t)).collect::<Vec<_>>();
        assert_eq!(accepted(Id), vec![Int8, Int4, Int2]);
        assert_eq!(accepted(Manager), vec![Int8, Int4, Int2]);
        assert_eq!(accepted(Key), vec![Int8]);
        assert_eq!(accepted(Owner), vec![Int8]);
        assert_eq!(accepted(Login), vec![Text, Name]);
        assert_eq!(accepted(Active), vec![Bool]);
        assert_eq!(accepted(Team), all.to_vec());
        assert_eq!((Key.given_to(), Active.given_to()), ("rowsec.protect_table", "rowsec.configure"));
    }
}

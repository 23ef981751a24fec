//! What a share allows, and what a policy asks for.

use crate::diagnostic::Diagnostic;

/// A share's access, and the access a policy asks about: a `Write` share also lets the row be
/// read, a `Read` share only read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShareAccess {
    Read,
    Write,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid share access {0:?}")]
pub struct UnknownAccess(pub String);

impl UnknownAccess {
    // Out of line: policy functions parse their access argument once per row, and the
    // allocation of the error must not cost the valid case a function prologue.
    #[cold]
    #[inline(never)]
    fn of(text: &str) -> UnknownAccess {
        UnknownAccess(text.to_owned())
    }
}

impl Diagnostic for UnknownAccess {
    fn detail(&self) -> String {
        "access must be 'read' or 'write'.".into()
    }
    fn hint(&self) -> String {
        "Use 'read' (read or write shares) or 'write' (write shares only).".into()
    }
}

impl ShareAccess {
    /// The SQL spelling (`'read'`, `'write'`), as `rowsec.shares.access` stores it and policy
    /// functions take it.
    #[inline]
    pub fn parse(text: &str) -> Result<ShareAccess, UnknownAccess> {
        match text {
            "read" => Ok(ShareAccess::Read),
            "write" => Ok(ShareAccess::Write),
            other => Err(UnknownAccess::of(other)),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ShareAccess::Read => "read",
            ShareAccess::Write => "write",
        }
    }

    /// Whether a share with this access answers a question asking for `wanted`.
    #[inline]
    pub fn allows(self, wanted: ShareAccess) -> bool {
        self == ShareAccess::Write || wanted == ShareAccess::Read
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_as_str_round_trip() {
        for access in [ShareAccess::Read, ShareAccess::Write] {
            assert_eq!(ShareAccess::parse(access.as_str()), Ok(access));
        }
    }

    #[test]
    fn parse_refuses_anything_else_with_the_value_in_the_message() {
        for text in ["", "READ", "Write", " read", "admin"] {
            let e = ShareAccess::parse(text).unwrap_err();
            assert_eq!(e.to_string(), format!("invalid share access {text:?}"));
        }
    }

    #[test]
    fn a_write_share_allows_reading_and_a_read_share_does_not_allow_writing() {
        use ShareAccess::*;
        assert!(Read.allows(Read));
        assert!(Write.allows(Read));
        assert!(Write.allows(Write));
        assert!(!Read.allows(Write));
    }
}

//! Access requests (`rowsec.request_access`): which arguments make a request, before anything
//! is looked up. Whether the row exists is never checked: a request for a key that matches no
//! row is accepted like any other, so a request reveals nothing about the table's rows.

use crate::access::{ShareAccess, UnknownAccess};
use crate::diagnostic::Diagnostic;
use crate::shares::Timestamp;

/// Microseconds in a day (timestamptz's unit).
pub const DAY: Timestamp = 86_400_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Access(#[from] UnknownAccess),
    #[error("until is not in the future")]
    UntilPassed,
    #[error("until is more than {max_days} days ahead")]
    UntilTooFar { max_days: i32 },
}

impl Diagnostic for RequestError {
    fn detail(&self) -> String {
        match self {
            RequestError::Access(e) => e.detail(),
            RequestError::UntilPassed => "A request asks for access until a time after now().".into(),
            RequestError::UntilTooFar { max_days } => {
                format!("requests.max_days of the spec is {max_days}: an approver may give access for at most {max_days} days.")
            }
        }
    }
    fn hint(&self) -> String {
        match self {
            RequestError::Access(e) => e.hint(),
            RequestError::UntilPassed => "Pass e.g. now() + interval '3 days'.".into(),
            RequestError::UntilTooFar { max_days } => {
                format!("Ask for an until at most now() + interval '{max_days} days'.")
            }
        }
    }
}

/// A request's access and expiry, valid at `now` under `max_days`.
pub fn check_request(
    access: &str,
    until: Timestamp,
    now: Timestamp,
    max_days: i32,
) -> Result<ShareAccess, RequestError> {
    let access = ShareAccess::parse(access)?;
    if until <= now {
        return Err(RequestError::UntilPassed);
    }
    if until - now > Timestamp::from(max_days) * DAY {
        return Err(RequestError::UntilTooFar { max_days });
    }
    Ok(access)
}

/// The state of a request (`rowsec.requests.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Approved,
    Rejected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
        }
    }

    pub fn decided(approve: bool) -> Status {
        if approve {
            Status::Approved
        } else {
            Status::Rejected
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = 1_000 * DAY;

    #[test]
    fn a_request_within_max_days_is_valid() {
        assert_eq!(check_request("write", NOW + 14 * DAY, NOW, 14), Ok(ShareAccess::Write));
        assert_eq!(check_request("read", NOW + 1, NOW, 14), Ok(ShareAccess::Read));
    }

    #[test]
    fn a_request_in_the_past_too_far_ahead_or_with_an_unknown_access_is_refused() {
        assert_eq!(check_request("read", NOW, NOW, 14), Err(RequestError::UntilPassed));
        assert_eq!(check_request("read", NOW + 14 * DAY + 1, NOW, 14), Err(RequestError::UntilTooFar { max_days: 14 }));
        assert!(matches!(check_request("admin", NOW + DAY, NOW, 14), Err(RequestError::Access(_))));
        let e = RequestError::UntilTooFar { max_days: 14 };
        assert_eq!(e.to_string(), "until is more than 14 days ahead");
        assert!(e.detail().contains("requests.max_days"));
    }
}

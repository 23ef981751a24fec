//! Shares as the policy functions see them: which keys of a table are shared, unexpired, to a
//! person or to their team, and until when that answer holds; and what makes a share request
//! valid before anything is looked up.

use crate::access::{ShareAccess, UnknownAccess};
use crate::diagnostic::Diagnostic;
use crate::idset::IdSet;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A protected table, by its OID.
pub type TableId = u32;
/// PostgreSQL's `timestamptz`: microseconds since 2000-01-01 UTC.
pub type Timestamp = i64;

/// One row of `rowsec.shares`, as the extension reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRow {
    pub table: TableId,
    pub key: i64,
    pub person: Option<i64>,
    pub team: Option<String>,
    pub access: ShareAccess,
    pub expires: Option<Timestamp>,
}

/// One share as the index files it under its grantee.
#[derive(Debug, Clone, Copy)]
struct Share {
    key: i64,
    access: ShareAccess,
    expires: Option<Timestamp>,
}

/// The keys shared to one person on one table, and until when that holds (the earliest expiry
/// among them; `Timestamp::MAX` when none expires).
#[derive(Debug, PartialEq, Eq)]
pub struct SharedKeys {
    pub keys: Rc<IdSet>,
    pub valid_until: Timestamp,
}

type MemoKey = (TableId, ShareAccess, i64, u64);

/// Every share, by table and grantee, with answers memoized until they expire.
#[derive(Debug, Default)]
pub struct ShareIndex {
    by_person: HashMap<(TableId, i64), Vec<Share>>,
    by_team: HashMap<TableId, HashMap<String, Vec<Share>>>,
    memo: RefCell<HashMap<MemoKey, Rc<SharedKeys>>>,
}

impl ShareIndex {
    pub fn build(rows: impl IntoIterator<Item = ShareRow>) -> ShareIndex {
        let mut index = ShareIndex::default();
        for row in rows {
            let share = Share { key: row.key, access: row.access, expires: row.expires };
            if let Some(p) = row.person {
                index.by_person.entry((row.table, p)).or_default().push(share);
            }
            if let Some(t) = row.team {
                index.by_team.entry(row.table).or_default().entry(t).or_default().push(share);
            }
        }
        index
    }

    /// Keys of `table` shared to `person` or to `team` by a share allowing `wanted`, unexpired at
    /// `now`. Memoized per directory version (team membership may change with it) until the
    /// earliest expiry among the keys.
    pub fn shared(
        &self,
        table: TableId,
        wanted: ShareAccess,
        person: i64,
        team: Option<&str>,
        directory_version: u64,
        now: Timestamp,
    ) -> Rc<SharedKeys> {
        let memo_key = (table, wanted, person, directory_version);
        if let Some(s) = self.memo.borrow().get(&memo_key) {
            if now < s.valid_until {
                return s.clone();
            }
        }
        let mut keys = Vec::new();
        let mut valid_until = Timestamp::MAX;
        let to_person = self.by_person.get(&(table, person));
        let to_team = team.and_then(|t| self.by_team.get(&table)?.get(t));
        for share in to_person.into_iter().chain(to_team).flatten() {
            if !share.access.allows(wanted) {
                continue;
            }
            match share.expires {
                Some(e) if e <= now => continue,
                Some(e) => valid_until = valid_until.min(e),
                None => {}
            }
            keys.push(share.key);
        }
        let set = Rc::new(SharedKeys { keys: Rc::new(IdSet::new(keys)), valid_until });
        self.memo.borrow_mut().insert(memo_key, set.clone());
        set
    }
}

/// Who a share goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grantee<'a> {
    Person(i64),
    Team(&'a str),
}

/// A `rowsec.share` call whose arguments make sense on their own (the table, the row and the
/// caller's right to share it are checked against the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareRequest<'a> {
    pub access: ShareAccess,
    pub grantee: Grantee<'a>,
    pub expires: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareRequestError {
    #[error(transparent)]
    Access(#[from] UnknownAccess),
    #[error("a share needs exactly one grantee")]
    NotOneGrantee { person: Option<i64>, team: Option<String> },
    #[error("to_team must not be empty")]
    EmptyTeam,
    #[error("expires_at is not in the future")]
    AlreadyExpired,
}

impl Diagnostic for ShareRequestError {
    fn detail(&self) -> String {
        match self {
            ShareRequestError::Access(e) => e.detail(),
            ShareRequestError::NotOneGrantee { person, team } => {
                format!("to_person is {person:?}, to_team is {team:?}.")
            }
            ShareRequestError::EmptyTeam => "An empty team matches nobody.".into(),
            ShareRequestError::AlreadyExpired => "A share that has already expired would grant nothing.".into(),
        }
    }
    fn hint(&self) -> String {
        match self {
            ShareRequestError::Access(e) => e.hint(),
            ShareRequestError::NotOneGrantee { .. } => {
                "Pass either to_person => <person id> or to_team => '<team>'.".into()
            }
            ShareRequestError::EmptyTeam => "Pass a team name.".into(),
            ShareRequestError::AlreadyExpired => "Pass a later expires_at, or NULL for no expiry.".into(),
        }
    }
}

impl<'a> ShareRequest<'a> {
    /// Checks `rowsec.share`'s arguments in the order a caller would fix them; `now` is the
    /// transaction's start, which expiry is compared with everywhere.
    pub fn new(
        access: &str,
        to_person: Option<i64>,
        to_team: Option<&'a str>,
        expires: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<ShareRequest<'a>, ShareRequestError> {
        let access = ShareAccess::parse(access)?;
        let grantee = match (to_person, to_team) {
            (Some(p), None) => Grantee::Person(p),
            (None, Some("")) => return Err(ShareRequestError::EmptyTeam),
            (None, Some(t)) => Grantee::Team(t),
            (person, team) => return Err(ShareRequestError::NotOneGrantee { person, team: team.map(str::to_owned) }),
        };
        if expires.is_some_and(|e| e <= now) {
            return Err(ShareRequestError::AlreadyExpired);
        }
        Ok(ShareRequest { access, grantee, expires })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ShareAccess::{Read, Write};

    const T: TableId = 16384;
    const OTHER: TableId = 16385;

    fn row(key: i64, person: Option<i64>, team: Option<&str>, access: ShareAccess, expires: Option<i64>) -> ShareRow {
        ShareRow { table: T, key, person, team: team.map(str::to_owned), access, expires }
    }

    fn keys(index: &ShareIndex, wanted: ShareAccess, person: i64, team: Option<&str>, now: i64) -> Vec<i64> {
        index.shared(T, wanted, person, team, 1, now).keys.as_slice().to_vec()
    }

    #[test]
    fn shares_to_the_person_and_to_their_team_both_count() {
        let index = ShareIndex::build([
            row(10, Some(1), None, Read, None),
            row(20, None, Some("sales"), Read, None),
            row(30, Some(2), None, Read, None),
            row(40, None, Some("support"), Read, None),
        ]);
        assert_eq!(keys(&index, Read, 1, Some("sales"), 0), vec![10, 20]);
        assert_eq!(keys(&index, Read, 2, None, 0), vec![30]);
        assert_eq!(keys(&index, Read, 3, Some("support"), 0), vec![40]);
        assert_eq!(keys(&index, Read, 4, Some("nobody shares with"), 0), Vec::<i64>::new());
    }

    #[test]
    fn a_read_question_counts_write_shares_and_a_write_question_only_write_shares() {
        let index = ShareIndex::build([row(10, Some(1), None, Read, None), row(20, Some(1), None, Write, None)]);
        assert_eq!(keys(&index, Read, 1, None, 0), vec![10, 20]);
        assert_eq!(keys(&index, Write, 1, None, 0), vec![20]);
    }

    #[test]
    fn shares_of_other_tables_do_not_count() {
        let mut other = row(10, Some(1), Some("sales"), Read, None);
        other.table = OTHER;
        let index = ShareIndex::build([other]);
        assert_eq!(keys(&index, Read, 1, Some("sales"), 0), Vec::<i64>::new());
    }

    #[test]
    fn expired_shares_grant_nothing_and_the_answer_holds_until_the_earliest_expiry() {
        let index = ShareIndex::build([
            row(10, Some(1), None, Read, Some(100)),
            row(20, Some(1), None, Read, Some(200)),
            row(30, Some(1), None, Read, None),
        ]);
        let at_50 = index.shared(T, Read, 1, None, 1, 50);
        assert_eq!((at_50.keys.as_slice(), at_50.valid_until), (&[10, 20, 30][..], 100));
        // Expiry is exclusive: at 100 the first share has expired.
        let at_100 = index.shared(T, Read, 1, None, 1, 100);
        assert_eq!((at_100.keys.as_slice(), at_100.valid_until), (&[20, 30][..], 200));
        let at_300 = index.shared(T, Read, 1, None, 1, 300);
        assert_eq!((at_300.keys.as_slice(), at_300.valid_until), (&[30][..], Timestamp::MAX));
    }

    #[test]
    fn answers_are_memoized_per_directory_version_until_they_expire() {
        let index = ShareIndex::build([row(10, Some(1), None, Read, Some(100))]);
        let first = index.shared(T, Read, 1, None, 1, 10);
        assert!(Rc::ptr_eq(&first, &index.shared(T, Read, 1, None, 1, 99)));
        assert!(!Rc::ptr_eq(&first, &index.shared(T, Read, 1, None, 2, 99)), "a new directory version");
        assert!(!Rc::ptr_eq(&first, &index.shared(T, Read, 1, None, 1, 100)), "past the expiry");
        assert!(!Rc::ptr_eq(&first, &index.shared(T, Write, 1, None, 1, 10)), "another access");
    }

    #[test]
    fn a_key_shared_twice_is_listed_once() {
        let index = ShareIndex::build([row(10, Some(1), None, Read, None), row(10, None, Some("sales"), Write, None)]);
        assert_eq!(keys(&index, Read, 1, Some("sales"), 0), vec![10]);
    }

    #[test]
    fn a_share_request_needs_a_valid_access_one_grantee_and_a_future_expiry() {
        let ok = ShareRequest::new("write", None, Some("sales"), Some(11), 10).unwrap();
        assert_eq!(ok, ShareRequest { access: Write, grantee: Grantee::Team("sales"), expires: Some(11) });
        let ok = ShareRequest::new("read", Some(7), None, None, 10).unwrap();
        assert_eq!(ok.grantee, Grantee::Person(7));

        let e = ShareRequest::new("admin", Some(7), None, None, 10).unwrap_err();
        assert_eq!(e.to_string(), "invalid share access \"admin\"");
        let e = ShareRequest::new("read", None, None, None, 10).unwrap_err();
        assert_eq!(
            (e.to_string(), e.detail()),
            ("a share needs exactly one grantee".into(), "to_person is None, to_team is None.".into())
        );
        let e = ShareRequest::new("read", Some(7), Some("sales"), None, 10).unwrap_err();
        assert_eq!(e.detail(), "to_person is Some(7), to_team is Some(\"sales\").");
        let e = ShareRequest::new("read", None, Some(""), None, 10).unwrap_err();
        assert_eq!(e, ShareRequestError::EmptyTeam);
        let e = ShareRequest::new("read", Some(7), None, Some(10), 10).unwrap_err();
        assert_eq!(e, ShareRequestError::AlreadyExpired);
    }
}

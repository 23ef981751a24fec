//! Shares as the policy functions see them: which keys of a table are shared, unexpired, to a
//! person or to their team, and until when that answer holds; what makes a share request valid
//! before anything is looked up, and who it may go to; how a share made by someone whose right
//! to the row is itself a share derives from that share; and which shares a person may list.

use crate::access::{ShareAccess, UnknownAccess};
use crate::diagnostic::{quoted, sql_number, sql_text, Diagnostic};
use crate::directory::Directory;
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
                format!(
                    "rowsec.share was called with to_person => {}, to_team => {}.",
                    sql_number(*person),
                    sql_text(team.as_deref())
                )
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

/// Why `rowsec.share` refuses a grantee.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GranteeError {
    #[error("person {0} is not in the directory")]
    UnknownPerson(i64),
    #[error("person {0} is inactive")]
    InactivePerson(i64),
    #[error("no person of the directory has the team {}", quoted(.0))]
    UnknownTeam(String),
    #[error("rowsec is configured without a team column")]
    NoTeams,
}

impl Diagnostic for GranteeError {
    fn detail(&self) -> String {
        match self {
            GranteeError::UnknownPerson(_) => "Shares go to people of the directory or to teams.".into(),
            GranteeError::InactivePerson(_) => "A share to an inactive person grants nothing now and would start \
                granting the moment they are reactivated."
                .into(),
            GranteeError::UnknownTeam(_) => "A share to a team nobody has would grant nothing now and would start \
                granting to whoever is later given that team. Teams are compared as text, exactly."
                .into(),
            GranteeError::NoTeams => "rowsec.configure was called without a team column, so nobody has a team.".into(),
        }
    }
    fn hint(&self) -> String {
        match self {
            GranteeError::UnknownPerson(_) => "Check the person id.".into(),
            GranteeError::InactivePerson(_) => {
                "Share with an active person or a team; reactivate the person first if the share is meant for them."
                    .into()
            }
            GranteeError::UnknownTeam(_) => {
                "Check the spelling against the team column of the directory table (SELECT DISTINCT on it lists the teams)."
                    .into()
            }
            GranteeError::NoTeams => {
                "Share with a person (to_person => id), or add `team:` to the spec's directory section.".into()
            }
        }
    }
}

/// Refuses a grantee that a share could not reach today: a person who is not in the directory or
/// is inactive, a team nobody has (`teams_configured`: the directory has a team column).
pub fn check_grantee(directory: &Directory, grantee: Grantee<'_>, teams_configured: bool) -> Result<(), GranteeError> {
    match grantee {
        Grantee::Person(id) => match directory.person(id) {
            None => Err(GranteeError::UnknownPerson(id)),
            Some(p) if !directory.is_active(p) => Err(GranteeError::InactivePerson(id)),
            Some(_) => Ok(()),
        },
        Grantee::Team(_) if !teams_configured => Err(GranteeError::NoTeams),
        Grantee::Team(t) if !directory.has_team(t) => Err(GranteeError::UnknownTeam(t.to_owned())),
        Grantee::Team(_) => Ok(()),
    }
}

/// A share through which someone may update a row: a candidate parent of a share they make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentShare {
    pub id: i64,
    pub access: ShareAccess,
    pub expires: Option<Timestamp>,
}

/// The share a derived share hangs on, among the shares of one row to a person and to their
/// team: a write share unexpired at `now` (only a write share lets anyone update, hence share),
/// the one lasting longest (no expiry first, then the latest expiry, then the lowest id), so that
/// the derived share may live as long as the sharer's own right does.
pub fn choose_parent(candidates: &[ParentShare], now: Timestamp) -> Option<ParentShare> {
    candidates
        .iter()
        .filter(|c| c.access == ShareAccess::Write && c.expires.is_none_or(|e| e > now))
        .min_by_key(|c| (std::cmp::Reverse(c.expires.unwrap_or(Timestamp::MAX)), c.id))
        .copied()
}

/// A share made by someone whose right to update the row comes only from `parent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DerivedShare {
    pub parent: i64,
    /// The requested expiry, capped at the parent's.
    pub expires: Option<Timestamp>,
    /// Whether the cap shortened the requested expiry (no expiry counts as the longest).
    pub capped: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeriveError {
    #[error("a share made through share {parent} cannot grant {} access", .requested.as_str())]
    AccessAboveParent { parent: i64, parent_access: ShareAccess, requested: ShareAccess },
}

impl Diagnostic for DeriveError {
    fn detail(&self) -> String {
        match self {
            DeriveError::AccessAboveParent { parent, parent_access, .. } => format!(
                "Your right to this row comes from share {parent}, which grants {} access; a share you make from it grants at most that.",
                parent_access.as_str()
            ),
        }
    }
    fn hint(&self) -> String {
        match self {
            DeriveError::AccessAboveParent { parent_access, .. } => format!(
                "Pass access => '{}', or ask the row's owner or their manager to share it.",
                parent_access.as_str()
            ),
        }
    }
}

/// The rule for a share made through `parent`: its access may not exceed the parent's, and it
/// expires no later than the parent (a share without expiry gets the parent's expiry).
pub fn derive(
    parent: &ParentShare,
    access: ShareAccess,
    expires: Option<Timestamp>,
) -> Result<DerivedShare, DeriveError> {
    if !parent.access.allows(access) {
        return Err(DeriveError::AccessAboveParent {
            parent: parent.id,
            parent_access: parent.access,
            requested: access,
        });
    }
    let (expires, capped) = match (expires, parent.expires) {
        (_, None) => (expires, false),
        (Some(e), Some(p)) if e <= p => (Some(e), false),
        (_, Some(p)) => (Some(p), true),
    };
    Ok(DerivedShare { parent: parent.id, expires, capped })
}

/// How a person is related to a share they may list (`rowsec.my_shares.seen_as`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenAs {
    /// They made it.
    Granter,
    /// It goes to them or to their team.
    Grantee,
    /// It shares a row they own.
    Owner,
    /// It shares a row owned by someone in their subtree.
    Manager,
}

impl SeenAs {
    pub fn as_str(self) -> &'static str {
        match self {
            SeenAs::Granter => "granter",
            SeenAs::Grantee => "grantee",
            SeenAs::Owner => "owner",
            SeenAs::Manager => "manager",
        }
    }
}

/// Who made a share and who it goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareParties<'a> {
    pub granted_by: i64,
    pub person: Option<i64>,
    pub team: Option<&'a str>,
}

/// A person listing shares: their id, team and subtree (themselves included).
pub struct Viewer<'a> {
    pub person: i64,
    pub team: Option<&'a str>,
    pub subtree: &'a IdSet,
}

impl Viewer<'_> {
    /// As a party to the share: its granter, or its grantee (in person or through their team).
    pub fn party(&self, share: &ShareParties<'_>) -> Option<SeenAs> {
        if share.granted_by == self.person {
            Some(SeenAs::Granter)
        } else if share.person == Some(self.person) || (share.team.is_some() && share.team == self.team) {
            Some(SeenAs::Grantee)
        } else {
            None
        }
    }

    /// Through the shared row's owner: the owner themselves, or their manager at any level.
    pub fn over_owner(&self, owner: i64) -> Option<SeenAs> {
        if owner == self.person {
            Some(SeenAs::Owner)
        } else {
            self.subtree.contains(owner).then_some(SeenAs::Manager)
        }
    }

    /// Whether this person may list the share, and as what. `owner` is the shared row's owner
    /// (`None` when unknown: the row is gone or its table is no longer registered). A share is
    /// listed to nobody else: it names a row and a grantee, which is no one else's business.
    pub fn sees(&self, share: &ShareParties<'_>, owner: Option<i64>) -> Option<SeenAs> {
        self.party(share).or_else(|| owner.and_then(|o| self.over_owner(o)))
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
            (
                "a share needs exactly one grantee".into(),
                "rowsec.share was called with to_person => NULL, to_team => NULL.".into()
            )
        );
        let e = ShareRequest::new("read", Some(7), Some("it's"), None, 10).unwrap_err();
        assert_eq!(e.detail(), "rowsec.share was called with to_person => 7, to_team => 'it''s'.");
        let e = ShareRequest::new("read", None, Some(""), None, 10).unwrap_err();
        assert_eq!(e, ShareRequestError::EmptyTeam);
        let e = ShareRequest::new("read", Some(7), None, Some(10), 10).unwrap_err();
        assert_eq!(e, ShareRequestError::AlreadyExpired);
    }
    fn directory() -> Directory {
        use crate::directory::PersonRow;
        let person = |id, team: Option<&str>, active| PersonRow {
            team: team.map(str::to_owned),
            active,
            ..PersonRow::new(id, None)
        };
        Directory::build(vec![person(1, Some("sales"), true), person(2, None, false), person(3, Some("gone"), false)])
    }

    #[test]
    fn a_share_goes_only_to_an_active_person_or_a_team_someone_has() {
        let d = directory();
        assert_eq!(check_grantee(&d, Grantee::Person(1), true), Ok(()));
        assert_eq!(check_grantee(&d, Grantee::Person(9), true), Err(GranteeError::UnknownPerson(9)));
        assert_eq!(check_grantee(&d, Grantee::Person(2), true), Err(GranteeError::InactivePerson(2)));
        assert_eq!(check_grantee(&d, Grantee::Team("sales"), true), Ok(()));
        // A team whose only members are inactive still exists: reactivating them restores it.
        assert_eq!(check_grantee(&d, Grantee::Team("gone"), true), Ok(()));
        let e = check_grantee(&d, Grantee::Team("no-such-team"), true).unwrap_err();
        assert_eq!(e.to_string(), "no person of the directory has the team \"no-such-team\"");
        assert_eq!(check_grantee(&d, Grantee::Team("Sales"), true), Err(GranteeError::UnknownTeam("Sales".into())));
        assert_eq!(check_grantee(&d, Grantee::Team("sales"), false), Err(GranteeError::NoTeams));
        for e in [GranteeError::UnknownPerson(9), GranteeError::InactivePerson(2), GranteeError::NoTeams, e] {
            assert!(!e.detail().is_empty() && !e.hint().is_empty(), "{e}");
        }
    }

    fn parent(id: i64, access: ShareAccess, expires: Option<i64>) -> ParentShare {
        ParentShare { id, access, expires }
    }

    #[test]
    fn the_parent_is_the_unexpired_write_share_that_lasts_longest() {
        let p = [
            parent(1, Write, Some(100)),
            parent(2, Write, Some(300)),
            parent(3, Read, None),
            parent(4, Write, Some(300)),
        ];
        assert_eq!(choose_parent(&p, 50).map(|p| p.id), Some(2), "latest expiry, then lowest id; read shares never");
        assert_eq!(choose_parent(&[parent(5, Write, Some(100)), parent(6, Write, None)], 50).map(|p| p.id), Some(6));
        assert_eq!(choose_parent(&[parent(1, Write, Some(100))], 100), None, "expired at its expiry");
        assert_eq!(choose_parent(&[parent(3, Read, None)], 0), None);
        assert_eq!(choose_parent(&[], 0), None);
    }

    #[test]
    fn a_derived_share_expires_no_later_than_its_parent() {
        let day = parent(7, Write, Some(1_000));
        assert_eq!(derive(&day, Write, None), Ok(DerivedShare { parent: 7, expires: Some(1_000), capped: true }));
        assert_eq!(derive(&day, Read, Some(5_000)), Ok(DerivedShare { parent: 7, expires: Some(1_000), capped: true }));
        assert_eq!(
            derive(&day, Read, Some(1_000)),
            Ok(DerivedShare { parent: 7, expires: Some(1_000), capped: false })
        );
        assert_eq!(derive(&day, Write, Some(500)), Ok(DerivedShare { parent: 7, expires: Some(500), capped: false }));
        let forever = parent(8, Write, None);
        assert_eq!(derive(&forever, Write, None), Ok(DerivedShare { parent: 8, expires: None, capped: false }));
        assert_eq!(derive(&forever, Read, Some(9)), Ok(DerivedShare { parent: 8, expires: Some(9), capped: false }));
    }

    #[test]
    fn a_derived_share_grants_no_more_access_than_its_parent() {
        let read = parent(7, Read, None);
        assert_eq!(derive(&read, Read, None).map(|d| d.parent), Ok(7));
        let e = derive(&read, Write, None).unwrap_err();
        assert_eq!(e, DeriveError::AccessAboveParent { parent: 7, parent_access: Read, requested: Write });
        assert_eq!(e.to_string(), "a share made through share 7 cannot grant write access");
        assert!(e.detail().contains("share 7, which grants read access") && e.hint().contains("access => 'read'"));
    }

    #[test]
    fn a_person_lists_shares_they_made_received_or_that_concern_rows_of_their_subtree() {
        let subtree = IdSet::new(vec![10, 20, 30]);
        let me = Viewer { person: 10, team: Some("east"), subtree: &subtree };
        let share = |granted_by, person, team| ShareParties { granted_by, person, team };
        assert_eq!(me.sees(&share(10, Some(99), None), Some(99)), Some(SeenAs::Granter));
        assert_eq!(me.sees(&share(99, Some(10), None), None), Some(SeenAs::Grantee));
        assert_eq!(me.sees(&share(99, None, Some("east")), None), Some(SeenAs::Grantee));
        assert_eq!(me.sees(&share(99, Some(98), None), Some(10)), Some(SeenAs::Owner));
        assert_eq!(me.sees(&share(99, Some(98), None), Some(30)), Some(SeenAs::Manager));
        // Someone else's row, made and received by others: not listed, whatever the team.
        assert_eq!(me.sees(&share(99, Some(98), None), Some(40)), None);
        assert_eq!(me.sees(&share(99, None, Some("west")), Some(40)), None);
        assert_eq!(me.sees(&share(99, Some(98), None), None), None, "unknown owner");
        // Without a team, team shares never match (no NULL = NULL).
        let loner = Viewer { person: 50, team: None, subtree: &IdSet::new(vec![50]) };
        assert_eq!(loner.sees(&share(99, None, Some("east")), Some(10)), None);
        assert_eq!(SeenAs::Manager.as_str(), "manager");
    }
}

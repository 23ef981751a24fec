//! The audit trail's rules that need no database: how each row of `rowsec.audit_log` is chained
//! to the one before it (and how a walk over the trail finds the first broken link), what a
//! change of manager or team does to who sees whose records, and what a data change records.

use crate::directory::Directory;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The hash the first row of the trail is chained to.
pub const GENESIS: [u8; 32] = [0; 32];

/// One row of `rowsec.audit_log` as the chain covers it: every column but the hash itself.
/// `at` is PostgreSQL's timestamptz (microseconds since 2000-01-01 UTC); `detail` is the jsonb's
/// text output, which PostgreSQL prints the same way for the same value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub id: i64,
    pub at: i64,
    pub actor: Option<i64>,
    pub login: String,
    pub kind: String,
    pub object: Option<String>,
    pub detail: String,
}

/// SHA-256 over the previous row's hash and this row's columns, each length-prefixed (so that
/// moving bytes from one column to the next changes the hash) and NULL distinct from empty.
pub fn chain_hash(prev: &[u8; 32], e: &Entry) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"rowsec audit chain v1\0");
    h.update(prev);
    h.update(e.seq.to_be_bytes());
    h.update(e.id.to_be_bytes());
    h.update(e.at.to_be_bytes());
    match e.actor {
        Some(a) => {
            h.update([1]);
            h.update(a.to_be_bytes());
        }
        None => h.update([0]),
    }
    for field in [Some(e.login.as_str()), Some(e.kind.as_str()), e.object.as_deref(), Some(e.detail.as_str())] {
        match field {
            Some(s) => {
                h.update([1]);
                h.update((s.len() as u64).to_be_bytes());
                h.update(s.as_bytes());
            }
            None => h.update([0]),
        }
    }
    h.finalize().into()
}

/// The end of the sealed chain: the last sequence number and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: [u8; 32],
}

impl Head {
    pub const EMPTY: Head = Head { seq: 0, hash: GENESIS };

    /// Chains `entry` (whose `seq` is ignored) after this head: its sequence number and hash.
    pub fn append(&mut self, entry: &mut Entry) -> [u8; 32] {
        self.seq += 1;
        entry.seq = self.seq;
        self.hash = chain_hash(&self.hash, entry);
        self.hash
    }
}

/// Walks the sealed rows in `seq` order and finds the first whose link is broken: its sequence
/// number is not the next one (a row before it was deleted, or rows were reordered), or its
/// stored hash is not the hash of the previous row's stored hash and its own columns (it, or the
/// hash, was edited).
#[derive(Debug)]
pub struct Verifier {
    prev: [u8; 32],
    next_seq: i64,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier { prev: GENESIS, next_seq: 1 }
    }
}

impl Verifier {
    /// Whether `entry` with its stored `hash` continues the chain. After a break the walk goes on
    /// from the stored hash, so each break is reported once.
    pub fn check(&mut self, entry: &Entry, hash: &[u8]) -> bool {
        let ok = entry.seq == self.next_seq && chain_hash(&self.prev, entry).as_slice() == hash;
        self.next_seq = entry.seq.saturating_add(1);
        self.prev = hash.try_into().unwrap_or([0xff; 32]);
        ok
    }
}

/// What a change of manager does to the subtrees that give managers their access: the person
/// moves with everyone reporting to them, out of the subtrees of the managers above the old
/// manager (the old manager included) that are not also above the new one, into the others'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerMove {
    /// The person and everyone reporting to them, directly or not.
    pub people_moved: usize,
    /// Managers whose subtree the moved people left (nearest first).
    pub left_subtree_of: Vec<i64>,
    /// Managers whose subtree the moved people entered (nearest first).
    pub entered_subtree_of: Vec<i64>,
}

/// `directory` is the directory before the change; managers not in it have no chain above them.
pub fn manager_move(directory: &Directory, person: i64, old: Option<i64>, new: Option<i64>) -> ManagerMove {
    let chain = |m: Option<i64>| -> Vec<i64> {
        let Some(m) = m else { return Vec::new() };
        let mut out = vec![m];
        if let Some(p) = directory.person(m) {
            out.extend(directory.managers_above(p));
        }
        // The mover and their reports never gain or lose themselves.
        if let Some(at) = out.iter().position(|&id| id == person) {
            out.truncate(at);
        }
        out
    };
    let (before, after) = (chain(old), chain(new));
    ManagerMove {
        people_moved: directory.person(person).map_or(1, |p| directory.subtree(p).len()),
        left_subtree_of: before.iter().copied().filter(|m| !after.contains(m)).collect(),
        entered_subtree_of: after.iter().copied().filter(|m| !before.contains(m)).collect(),
    }
}

impl ManagerMove {
    pub fn to_json(&self) -> Value {
        json!({
            "people_moved": self.people_moved,
            "left_subtree_of": self.left_subtree_of,
            "entered_subtree_of": self.entered_subtree_of,
        })
    }
}

/// What a change of team does: the other members of the old team stop being the person's
/// teammates (each side loses the other's `team`-scoped records), the new team's start.
pub fn team_move(directory: &Directory, person: i64, old: Option<&str>, new: Option<&str>) -> Value {
    let others = |team: Option<&str>| {
        team.map_or(0, |t| {
            let in_team = directory.person(person).is_some_and(|p| directory.team_name(p) == Some(t));
            directory.team_size(t) - usize::from(in_team)
        })
    };
    json!({ "teammates_lost": others(old), "teammates_gained": others(new) })
}

/// One column of a changed row: its name and its values' text (NULL: `None`; the row that does
/// not exist, before an insert or after a delete, has every column NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnChange<'a> {
    pub name: &'a str,
    pub old: Option<&'a str>,
    pub new: Option<&'a str>,
    /// A classed column: recorded as `"redacted"`, whatever its values.
    pub redacted: bool,
}

/// The `detail` of a `data` row, as JSON text: `{"op": "update", "key": 7, "columns": {"name":
/// {"old": "a", "new": "b"}}}`, listing only the columns whose value changed (for an insert,
/// those set; for a delete, those that were set). A classed column that changed is listed with
/// both values `"redacted"`. Written directly, not through `serde_json::Value`: the data
/// trigger builds one per changed row.
pub fn data_change(op: &str, key: Option<i64>, columns: &[ColumnChange<'_>]) -> String {
    let mut out = String::with_capacity(64 + 32 * columns.len());
    out.push_str("{\"op\": ");
    push_json_str(&mut out, op);
    out.push_str(", \"key\": ");
    match key {
        Some(k) => out.push_str(&k.to_string()),
        None => out.push_str("null"),
    }
    out.push_str(", \"columns\": {");
    let mut first = true;
    for c in columns.iter().filter(|c| c.old != c.new) {
        if !std::mem::take(&mut first) {
            out.push_str(", ");
        }
        push_json_str(&mut out, c.name);
        for (label, v) in [(": {\"old\": ", c.old), (", \"new\": ", c.new)] {
            out.push_str(label);
            match v {
                _ if c.redacted => out.push_str("\"redacted\""),
                Some(v) => push_json_str(&mut out, v),
                None => out.push_str("null"),
            }
        }
        out.push('}');
    }
    out.push_str("}}");
    out
}

/// `s` as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "null".to_owned()));
}

/// A timestamptz (microseconds since 2000-01-01 UTC) as ISO 8601 in UTC, the way the trail's
/// `detail` spells times whatever the session's DateStyle and TimeZone:
/// `2026-11-24T08:30:00.000000Z`.
pub fn iso_utc(ts: i64) -> String {
    const DAY_US: i64 = 86_400_000_000;
    let (days, us) = (ts.div_euclid(DAY_US), ts.rem_euclid(DAY_US));
    // Days from 1970-01-01 (2000-01-01 is day 10957), then Howard Hinnant's civil_from_days.
    let z = days + 10_957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let secs = us / 1_000_000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60,
        us % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::PersonRow;

    fn entry(id: i64, detail: &str) -> Entry {
        Entry {
            seq: 0,
            id,
            at: 1_000 + id,
            actor: Some(7),
            login: "alice".into(),
            kind: "share".into(),
            object: Some("crm.accounts".into()),
            detail: detail.into(),
        }
    }

    fn sealed(n: i64) -> Vec<(Entry, [u8; 32])> {
        let mut head = Head::EMPTY;
        (1..=n)
            .map(|id| {
                let mut e = entry(id, &format!("{{\"n\": {id}}}"));
                let h = head.append(&mut e);
                (e, h)
            })
            .collect()
    }

    fn first_broken(rows: &[(Entry, [u8; 32])]) -> Option<i64> {
        let mut v = Verifier::default();
        rows.iter().find(|(e, h)| !v.check(e, h)).map(|(e, _)| e.id)
    }

    #[test]
    fn an_untouched_chain_verifies() {
        assert_eq!(first_broken(&sealed(5)), None);
    }

    #[test]
    fn an_edited_row_is_reported_at_that_row() {
        let mut rows = sealed(5);
        rows[2].0.detail = "{\"n\": 99}".into();
        assert_eq!(first_broken(&rows), Some(3));
    }

    #[test]
    fn a_deleted_row_is_reported_at_the_row_after_it() {
        let mut rows = sealed(5);
        rows.remove(1);
        assert_eq!(first_broken(&rows), Some(3));
    }

    #[test]
    fn swapped_rows_are_reported_at_the_first_of_them() {
        let mut rows = sealed(5);
        // Reordering: the rows keep their columns but trade places in the sequence.
        let (s1, s3) = (rows[1].0.seq, rows[3].0.seq);
        rows[1].0.seq = s3;
        rows[3].0.seq = s1;
        rows.sort_by_key(|(e, _)| e.seq);
        assert_eq!(first_broken(&rows), Some(4));
    }

    #[test]
    fn null_and_empty_and_shifted_columns_hash_differently() {
        let mut a = entry(1, "{}");
        let mut b = a.clone();
        b.object = Some(String::new());
        a.object = None;
        assert_ne!(chain_hash(&GENESIS, &a), chain_hash(&GENESIS, &b));
        let (mut c, mut d) = (entry(1, "{}"), entry(1, "{}"));
        c.login = "ab".into();
        c.kind = "c".into();
        d.login = "a".into();
        d.kind = "bc".into();
        assert_ne!(chain_hash(&GENESIS, &c), chain_hash(&GENESIS, &d));
    }

    #[test]
    fn times_are_iso_8601_in_utc() {
        assert_eq!(iso_utc(0), "2000-01-01T00:00:00.000000Z");
        assert_eq!(iso_utc(-1), "1999-12-31T23:59:59.999999Z");
        // 2026-11-24 08:30:00.5 UTC
        let days = 9_824; // 2000-01-01 .. 2026-11-24
        assert_eq!(iso_utc(days * 86_400_000_000 + 30_600_500_000), "2026-11-24T08:30:00.500000Z");
        assert_eq!(iso_utc(60 * 86_400_000_000), "2000-03-01T00:00:00.000000Z");
    }

    fn org() -> Directory {
        // 1 <- 2 <- 3 <- 4 ; 1 <- 5 ; teams: 3 and 5 in "east", 4 in "west"
        let row = |id, m, team: Option<&str>| PersonRow { team: team.map(str::to_owned), ..PersonRow::new(id, m) };
        Directory::build(vec![
            row(1, None, None),
            row(2, Some(1), None),
            row(3, Some(2), Some("east")),
            row(4, Some(3), Some("west")),
            row(5, Some(1), Some("east")),
        ])
    }

    #[test]
    fn a_manager_move_counts_the_subtree_and_names_the_managers_who_lose_and_gain_it() {
        let d = org();
        let m = manager_move(&d, 3, Some(2), Some(5));
        assert_eq!(m, ManagerMove { people_moved: 2, left_subtree_of: vec![2], entered_subtree_of: vec![5] });
        let first_manager = manager_move(&d, 4, None, Some(5));
        assert_eq!(first_manager.entered_subtree_of, vec![5, 1]);
        assert!(first_manager.left_subtree_of.is_empty());
        // Moving under one's own report stops at the mover: nobody gains themselves.
        let into_own_subtree = manager_move(&d, 2, Some(1), Some(4));
        assert_eq!(into_own_subtree.entered_subtree_of, vec![4, 3]);
        assert_eq!(into_own_subtree.left_subtree_of, vec![1]);
    }

    #[test]
    fn a_team_move_counts_the_other_members() {
        let d = org();
        assert_eq!(team_move(&d, 3, Some("east"), Some("west")), json!({"teammates_lost": 1, "teammates_gained": 1}));
        assert_eq!(team_move(&d, 1, None, Some("east")), json!({"teammates_lost": 0, "teammates_gained": 2}));
    }

    #[test]
    fn a_data_change_lists_changed_columns_and_redacts_classed_ones() {
        let c = |name, old, new, redacted| ColumnChange { name, old, new, redacted };
        let parse = |s: String| serde_json::from_str::<Value>(&s).unwrap();
        let update = parse(data_change(
            "update",
            Some(7),
            &[
                c("id", Some("7"), Some("7"), false),
                c("name", Some("a"), Some("b"), false),
                c("revenue", Some("1"), Some("2"), true),
            ],
        ));
        assert_eq!(
            update,
            json!({"op": "update", "key": 7, "columns": {
                "name": {"old": "a", "new": "b"},
                "revenue": {"old": "redacted", "new": "redacted"}}})
        );
        let insert =
            parse(data_change("insert", Some(8), &[c("id", None, Some("8"), false), c("note", None, None, false)]));
        assert_eq!(insert, json!({"op": "insert", "key": 8, "columns": {"id": {"old": null, "new": "8"}}}));
        // Quotes, backslashes and control characters are escaped.
        let odd = parse(data_change("delete", None, &[c("n\"a", Some("x\\\n\u{1}"), None, false)]));
        assert_eq!(odd, json!({"op": "delete", "key": null, "columns": {"n\"a": {"old": "x\\\n\u{1}", "new": null}}}));
    }
}

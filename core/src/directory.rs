//! The directory of people as a graph: who manages whom, who shares a team, who logs in as whom.
//! Built from the rows the extension reads from the directory table (`extension/src/catalog.rs`),
//! once per directory version, and queried through its per-backend cache.

use crate::idset::{IdHashMap, IdSet};
use std::collections::HashMap;

/// One row of the directory table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    pub id: i64,
    pub manager: Option<i64>,
    pub team: Option<String>,
    pub login: Option<String>,
    pub active: bool,
}

impl PersonRow {
    pub fn new(id: i64, manager: Option<i64>) -> Self {
        PersonRow { id, manager, team: None, login: None, active: true }
    }
}

/// Index of a person inside a [`Directory`] (dense, 0-based).
pub type Person = u32;

#[derive(Debug, Default)]
pub struct Directory {
    ids: Vec<i64>,
    index: IdHashMap<Person>,
    active: Vec<bool>,
    /// Children of person `p` are `children[child_start[p]..child_start[p + 1]]`.
    child_start: Vec<u32>,
    children: Vec<Person>,
    manager_of: Vec<Option<Person>>,
    team_of: Vec<Option<u32>>,
    team_members: Vec<Vec<Person>>,
    team_index: HashMap<String, u32>,
    team_names: Vec<String>,
    by_login: HashMap<String, Person>,
    login_of: Vec<Option<String>>,
    cycles: Vec<Vec<i64>>,
    duplicate_ids: Vec<i64>,
}

impl Directory {
    /// Builds the graph. Rows repeating an id keep the first occurrence (the loader validates a
    /// unique id column, so this only guards against a constraint dropped later); managers that
    /// are not in the directory are treated as absent.
    pub fn build(rows: Vec<PersonRow>) -> Directory {
        let mut d = Directory::default();
        let mut managers: Vec<Option<i64>> = Vec::with_capacity(rows.len());
        d.index.reserve(rows.len());
        for row in rows {
            if d.index.contains_key(&row.id) {
                d.duplicate_ids.push(row.id);
                continue;
            }
            let p = d.ids.len() as Person;
            d.index.insert(row.id, p);
            d.ids.push(row.id);
            d.active.push(row.active);
            managers.push(row.manager);
            let team = row.team.map(|name| {
                let t = match d.team_index.get(&name) {
                    Some(&t) => t,
                    None => {
                        let t = d.team_names.len() as u32;
                        d.team_index.insert(name.clone(), t);
                        d.team_names.push(name);
                        d.team_members.push(Vec::new());
                        t
                    }
                };
                d.team_members[t as usize].push(p);
                t
            });
            d.team_of.push(team);
            if let Some(login) = &row.login {
                d.by_login.entry(login.clone()).or_insert(p);
            }
            d.login_of.push(row.login);
        }
        let n = d.ids.len();
        let manager_of: Vec<Option<Person>> =
            managers.iter().map(|m| m.and_then(|m| d.index.get(&m).copied())).collect();
        // Compressed adjacency: count, prefix-sum, fill.
        let mut counts = vec![0u32; n + 1];
        for m in manager_of.iter().flatten() {
            counts[*m as usize + 1] += 1;
        }
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        d.child_start = counts.clone();
        d.children = vec![0; manager_of.iter().flatten().count()];
        let mut fill = counts;
        for (child, m) in manager_of.iter().enumerate() {
            if let Some(m) = m {
                d.children[fill[*m as usize] as usize] = child as Person;
                fill[*m as usize] += 1;
            }
        }
        d.cycles = find_cycles(&manager_of, &d.ids);
        d.manager_of = manager_of;
        d
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn person(&self, id: i64) -> Option<Person> {
        self.index.get(&id).copied()
    }

    pub fn person_by_login(&self, login: &str) -> Option<Person> {
        self.by_login.get(login).copied()
    }

    pub fn id(&self, p: Person) -> i64 {
        self.ids[p as usize]
    }

    /// The PostgreSQL role `p` logs in as, if any.
    pub fn login(&self, p: Person) -> Option<&str> {
        self.login_of[p as usize].as_deref()
    }

    pub fn is_active(&self, p: Person) -> bool {
        self.active[p as usize]
    }

    pub fn team_name(&self, p: Person) -> Option<&str> {
        let t = self.team_of[p as usize]?;
        Some(self.team_names[t as usize].as_str())
    }

    /// Whether any person (active or not) has the team `name`.
    pub fn has_team(&self, name: &str) -> bool {
        self.team_index.contains_key(name)
    }

    /// The manager cycles, each as the ids on it starting from the smallest.
    pub fn cycles(&self) -> &[Vec<i64>] {
        &self.cycles
    }

    pub fn duplicate_ids(&self) -> &[i64] {
        &self.duplicate_ids
    }

    /// `p` and everyone reporting to `p` directly or transitively. Finite on cycles: each person
    /// is visited once.
    pub fn subtree(&self, p: Person) -> IdSet {
        let mut seen = vec![false; self.ids.len()];
        let mut stack = vec![p];
        let mut out = Vec::new();
        seen[p as usize] = true;
        while let Some(q) = stack.pop() {
            out.push(self.ids[q as usize]);
            let (a, b) = (self.child_start[q as usize], self.child_start[q as usize + 1]);
            for &c in &self.children[a as usize..b as usize] {
                if !seen[c as usize] {
                    seen[c as usize] = true;
                    stack.push(c);
                }
            }
        }
        IdSet::new(out)
    }

    /// `p` and everyone with the same non-null team.
    pub fn team(&self, p: Person) -> IdSet {
        match self.team_of[p as usize] {
            Some(t) => IdSet::new(self.team_members[t as usize].iter().map(|&q| self.ids[q as usize]).collect()),
            None => IdSet::new(vec![self.ids[p as usize]]),
        }
    }

    /// The managers above `p`: its manager, their manager, and so on (each once: finite on
    /// cycles, where the walk stops before coming back to someone already listed).
    pub fn managers_above(&self, p: Person) -> Vec<i64> {
        let mut seen = vec![false; self.ids.len()];
        seen[p as usize] = true;
        let mut out = Vec::new();
        let mut at = self.manager_of[p as usize];
        while let Some(m) = at {
            if std::mem::replace(&mut seen[m as usize], true) {
                break;
            }
            out.push(self.ids[m as usize]);
            at = self.manager_of[m as usize];
        }
        out
    }

    /// How many people (active or not) have the team `name`.
    pub fn team_size(&self, name: &str) -> usize {
        self.team_index.get(name).map_or(0, |&t| self.team_members[t as usize].len())
    }

    /// Team key used to memoize team sets: every member of a team shares one set.
    pub fn team_key(&self, p: Person) -> Option<u32> {
        self.team_of[p as usize]
    }
}

/// Each cycle as `"2 -> 5 -> 4 -> 2"` (from its smallest id along managers, back to it), as
/// `rowsec.directory_status()` lists them and the load warning shows them.
pub fn describe_cycles(cycles: &[Vec<i64>]) -> Vec<String> {
    cycles
        .iter()
        .map(|c| {
            let mut s: Vec<String> = c.iter().map(i64::to_string).collect();
            s.extend(c.first().map(i64::to_string));
            s.join(" -> ")
        })
        .collect()
}

/// Finds every cycle of the manager function (each person has at most one manager, so the graph
/// is a functional graph and each component has at most one cycle). Iterative three-colour walk.
fn find_cycles(manager_of: &[Option<Person>], ids: &[i64]) -> Vec<Vec<i64>> {
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; manager_of.len()];
    let mut cycles = Vec::new();
    let mut path = Vec::new();
    for start in 0..manager_of.len() {
        if state[start] != NEW {
            continue;
        }
        path.clear();
        let mut cur = Some(start as Person);
        while let Some(p) = cur {
            match state[p as usize] {
                NEW => {
                    state[p as usize] = ON_PATH;
                    path.push(p);
                    cur = manager_of[p as usize];
                }
                ON_PATH => {
                    let pos = path.iter().position(|&q| q == p).unwrap_or(0);
                    let mut cycle: Vec<i64> = path[pos..].iter().map(|&q| ids[q as usize]).collect();
                    let min_at = cycle.iter().enumerate().min_by_key(|(_, id)| **id).map_or(0, |(i, _)| i);
                    cycle.rotate_left(min_at);
                    cycles.push(cycle);
                    break;
                }
                _ => break,
            }
        }
        for &p in &path {
            state[p as usize] = DONE;
        }
    }
    cycles.sort();
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, manager: Option<i64>, team: Option<&str>) -> PersonRow {
        PersonRow { team: team.map(str::to_owned), ..PersonRow::new(id, manager) }
    }

    fn org() -> Directory {
        // 1 -> {2, 3}; 2 -> {4}; 4 -> {5}; 6 alone.
        Directory::build(vec![
            row(1, None, Some("a")),
            row(2, Some(1), Some("a")),
            row(3, Some(1), Some("b")),
            row(4, Some(2), None),
            row(5, Some(4), Some("b")),
            row(6, None, None),
        ])
    }

    #[test]
    fn subtree_is_self_plus_transitive_reports() {
        let d = org();
        assert_eq!(d.subtree(d.person(1).unwrap()).as_slice(), &[1, 2, 3, 4, 5]);
        assert_eq!(d.subtree(d.person(2).unwrap()).as_slice(), &[2, 4, 5]);
        assert_eq!(d.subtree(d.person(6).unwrap()).as_slice(), &[6]);
    }

    #[test]
    fn inactive_subordinates_stay_in_the_subtree() {
        let mut rows = vec![row(1, None, None), row(2, Some(1), None), row(3, Some(2), None)];
        rows[1].active = false;
        let d = Directory::build(rows);
        assert_eq!(d.subtree(0).as_slice(), &[1, 2, 3]);
        assert!(!d.is_active(1));
    }

    #[test]
    fn team_is_self_plus_same_non_null_team() {
        let d = org();
        assert_eq!(d.team(d.person(1).unwrap()).as_slice(), &[1, 2]);
        assert_eq!(d.team(d.person(5).unwrap()).as_slice(), &[3, 5]);
        assert_eq!(d.team(d.person(4).unwrap()).as_slice(), &[4]);
        assert_eq!(d.team(d.person(6).unwrap()).as_slice(), &[6]);
        assert!(d.has_team("a") && d.has_team("b"));
        assert!(!d.has_team("c") && !d.has_team(""));
    }

    #[test]
    fn a_manager_cycle_gives_a_finite_subtree_and_is_reported_once() {
        let d = Directory::build(vec![
            row(1, Some(3), None),
            row(2, Some(1), None),
            row(3, Some(2), None),
            row(4, Some(3), None),
            row(5, None, None),
        ]);
        assert_eq!(d.subtree(d.person(2).unwrap()).as_slice(), &[1, 2, 3, 4]);
        assert_eq!(d.cycles(), &[vec![1, 3, 2]]);
    }

    #[test]
    fn cycles_are_described_from_their_smallest_id_along_managers_back_to_it() {
        let d = Directory::build(vec![
            row(2, Some(5), None),
            row(5, Some(4), None),
            row(4, Some(2), None),
            row(7, Some(7), None),
        ]);
        assert_eq!(describe_cycles(d.cycles()), vec!["2 -> 5 -> 4 -> 2".to_string(), "7 -> 7".to_string()]);
    }

    #[test]
    fn a_self_managed_person_is_a_cycle_of_one() {
        let d = Directory::build(vec![row(7, Some(7), None)]);
        assert_eq!(d.subtree(0).as_slice(), &[7]);
        assert_eq!(d.cycles(), &[vec![7]]);
    }

    #[test]
    fn unknown_managers_are_ignored_and_duplicates_keep_the_first_row() {
        let d = Directory::build(vec![row(1, Some(99), None), row(1, None, Some("x"))]);
        assert_eq!(d.len(), 1);
        assert_eq!(d.duplicate_ids(), &[1]);
        assert_eq!(d.team(0).as_slice(), &[1]);
        assert!(d.cycles().is_empty());
    }

    #[test]
    fn logins_map_to_people() {
        let mut r = row(3, None, None);
        r.login = Some("carol".into());
        let d = Directory::build(vec![row(1, None, None), r]);
        assert_eq!(d.person_by_login("carol").map(|p| d.id(p)), Some(3));
        assert_eq!(d.person_by_login("nobody"), None);
    }

    #[test]
    fn a_deep_chain_does_not_recurse() {
        let rows = (0..200_000).map(|i| row(i, if i == 0 { None } else { Some(i - 1) }, None));
        let d = Directory::build(rows.collect());
        assert_eq!(d.subtree(0).len(), 200_000);
        assert!(d.cycles().is_empty());
    }

    /// Reference subtree: everyone whose manager chain reaches `root` (chains cut at a repeat).
    fn reference_subtree(managers: &[Option<i64>], root: i64) -> Vec<i64> {
        let mut out = Vec::new();
        for start in 0..managers.len() as i64 {
            let mut seen = std::collections::HashSet::new();
            let mut cur = Some(start);
            while let Some(p) = cur {
                if p == root {
                    out.push(start);
                    break;
                }
                if !seen.insert(p) {
                    break;
                }
                cur = managers.get(p as usize).copied().flatten();
            }
        }
        out
    }

    #[test]
    fn subtrees_match_a_reference_on_random_graphs_with_cycles() {
        let mut seed = 11u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        };
        for _ in 0..50 {
            let n = 1 + next() % 60;
            let managers: Vec<Option<i64>> =
                (0..n).map(|_| if next() % 5 == 0 { None } else { Some((next() % (n + 3)) as i64) }).collect();
            let d = Directory::build(managers.iter().enumerate().map(|(i, m)| PersonRow::new(i as i64, *m)).collect());
            // Unknown managers (>= n) count as none, exactly like the directory treats them.
            let known: Vec<Option<i64>> = managers.iter().map(|m| m.filter(|m| *m < n as i64)).collect();
            for root in 0..n as i64 {
                let got = d.subtree(d.person(root).unwrap());
                assert_eq!(
                    got.as_slice(),
                    reference_subtree(&known, root).as_slice(),
                    "root {root}, managers {known:?}"
                );
            }
            for cycle in d.cycles() {
                // Each reported cycle really is one: following managers returns to its start.
                let mut cur = cycle[0];
                for _ in 0..cycle.len() {
                    cur = known[cur as usize].expect("a cycle member has a manager");
                }
                assert_eq!(cur, cycle[0]);
            }
        }
    }
}

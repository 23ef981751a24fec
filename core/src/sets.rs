//! The sets policies ask about, per person, for one version of the directory: computed on first
//! use and shared afterwards (`Rc`, no locks: a PostgreSQL backend is one thread).

use crate::directory::{Directory, Person};
use crate::idset::IdSet;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// One version of the directory with its subtree and team sets memoized. Every member of a team
/// shares one set; each person's subtree is walked once per version.
#[derive(Debug)]
pub struct PersonSets {
    directory: Directory,
    subtrees: RefCell<HashMap<Person, Rc<IdSet>>>,
    teams: RefCell<HashMap<u32, Rc<IdSet>>>,
}

impl PersonSets {
    pub fn new(directory: Directory) -> PersonSets {
        PersonSets { directory, subtrees: RefCell::default(), teams: RefCell::default() }
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// [`Directory::subtree`], memoized.
    pub fn subtree(&self, p: Person) -> Rc<IdSet> {
        if let Some(s) = self.subtrees.borrow().get(&p) {
            return s.clone();
        }
        let s = Rc::new(self.directory.subtree(p));
        self.subtrees.borrow_mut().insert(p, s.clone());
        s
    }

    /// [`Directory::team`], memoized per team (a person without a team gets a fresh `{self}`).
    pub fn team(&self, p: Person) -> Rc<IdSet> {
        let Some(key) = self.directory.team_key(p) else {
            return Rc::new(IdSet::new(vec![self.directory.id(p)]));
        };
        if let Some(s) = self.teams.borrow().get(&key) {
            return s.clone();
        }
        let s = Rc::new(self.directory.team(p));
        self.teams.borrow_mut().insert(key, s.clone());
        s
    }
}

/// The set of nobody, shared (what a caller who resolves to no person gets).
pub fn empty_set() -> Rc<IdSet> {
    thread_local!(static EMPTY: Rc<IdSet> = Rc::new(IdSet::empty()));
    EMPTY.with(Rc::clone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::PersonRow;

    fn sets() -> PersonSets {
        let row = |id, manager, team: Option<&str>| PersonRow {
            team: team.map(str::to_owned),
            ..PersonRow::new(id, manager)
        };
        PersonSets::new(Directory::build(vec![
            row(1, None, Some("a")),
            row(2, Some(1), Some("a")),
            row(3, Some(2), None),
        ]))
    }

    #[test]
    fn members_of_a_team_share_one_set() {
        let s = sets();
        let d = s.directory();
        let (one, two) = (s.team(d.person(1).unwrap()), s.team(d.person(2).unwrap()));
        assert_eq!(one.as_slice(), &[1, 2]);
        assert!(Rc::ptr_eq(&one, &two));
    }

    #[test]
    fn a_person_without_a_team_is_a_team_of_one() {
        let s = sets();
        assert_eq!(s.team(s.directory().person(3).unwrap()).as_slice(), &[3]);
    }

    #[test]
    fn a_subtree_is_computed_once_and_matches_the_directory() {
        let s = sets();
        let p = s.directory().person(2).unwrap();
        let first = s.subtree(p);
        assert_eq!(first.as_slice(), s.directory().subtree(p).as_slice());
        assert!(Rc::ptr_eq(&first, &s.subtree(p)));
    }

    #[test]
    fn the_empty_set_is_shared_and_empty() {
        assert!(empty_set().is_empty());
        assert!(Rc::ptr_eq(&empty_set(), &empty_set()));
    }
}

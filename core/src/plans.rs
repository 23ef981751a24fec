//! What a cached plan's shape depends on, for the extension's plan cache reset (see
//! `extension/src/plans.rs`): the shares of the directory that rowsec's planner support
//! estimates from, in binary orders of magnitude, so that people of similar reach share plans and
//! a rep never runs the CEO's.

/// The class of person a plan was shaped for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PlanClass {
    /// No active person: every policy function answers false.
    Nobody,
    /// [`share_class`] of the person's subtree and of their team.
    Person { subtree: u32, team: u32 },
}

impl PlanClass {
    pub fn person(subtree_len: usize, team_len: usize, directory_len: usize) -> PlanClass {
        PlanClass::Person {
            subtree: share_class(subtree_len, directory_len),
            team: share_class(team_len, directory_len),
        }
    }
}

/// The binary order of magnitude of `n` in 1024ths of the directory: every set under 1/1024 of
/// the people is class 0 (plans that find the few rows through an index: a rep's and a small
/// team manager's are alike), then one class per doubling up to 10 (everyone).
pub fn share_class(n: usize, directory_len: usize) -> u32 {
    magnitude(n.saturating_mul(1024) / directory_len.max(1))
}

/// 0 -> 0, 1 -> 1, 2..3 -> 2, 4..7 -> 3, ...
pub fn magnitude(n: usize) -> u32 {
    usize::BITS - n.leading_zeros()
}

/// The person id a signed token claims, read without checking the signature: only for choosing
/// a plan's shape, never for access (the policies verify the token).
pub fn claimed_person(token: &[u8]) -> Option<i64> {
    std::str::from_utf8(token).ok()?.split('.').nth(2)?.parse().ok()
}

/// PostgreSQL's rule for custom variable names (`valid_custom_variable_name`): two or more
/// dot-separated identifiers (letters, digits, `_`, `$`, non-ASCII; not starting with a digit
/// or `$`). Only such a name can be defined as a variable.
pub fn valid_custom_setting_name(name: &[u8]) -> bool {
    let parts: Vec<&[u8]> = name.split(|&b| b == b'.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            p.first().is_some_and(|&b| !b.is_ascii_digit() && b != b'$')
                && p.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitudes_are_binary_orders() {
        assert_eq!([0, 1, 2, 3, 4, 7, 8, 100_000].map(magnitude), [0, 1, 2, 2, 3, 3, 4, 17]);
    }

    #[test]
    fn a_rep_and_the_ceo_are_of_different_classes_and_small_reaches_of_one() {
        let n = 100_000;
        assert_ne!(PlanClass::person(1, 10, n), PlanClass::person(n, 10, n));
        // 1, 9 and 73 people of 100,000 are all under 1/1024: plans through an index alike.
        assert_eq!(PlanClass::person(1, 10, n), PlanClass::person(73, 12, n));
        assert_ne!(PlanClass::person(73, 10, n), PlanClass::person(4681, 10, n));
        assert_ne!(PlanClass::person(1, 10, n), PlanClass::Nobody);
        assert_eq!(share_class(n, n), 11);
        // In a small directory every size counts.
        assert_ne!(share_class(1, 40), share_class(2, 40));
    }

    #[test]
    fn a_token_claims_its_third_field() {
        assert_eq!(claimed_person(b"v1.k1.42.1700000000.ab.cd.ef"), Some(42));
        assert_eq!(claimed_person(b"v1.k1.x.1"), None);
        assert_eq!(claimed_person(b"42"), None);
    }

    #[test]
    fn custom_names_follow_postgresql() {
        assert!(valid_custom_setting_name(b"app.person_id"));
        assert!(valid_custom_setting_name(b"a.b.c"));
        for bad in [&b"person_id"[..], b"app.", b".x", b"app.1x", b"app.x y", b"app..x", b"app.$x"] {
            assert!(!valid_custom_setting_name(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}

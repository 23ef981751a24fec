//! Membership sets probed once per row by the policy functions.
//!
//! `owner = ANY(array)` scans the array for every row when the array is not a constant, so the
//! policy functions probe one of these instead: a bitset over `[min, max]` when the ids are dense
//! enough for it to be small, otherwise a hash set. Both answer in O(1).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiplicative hash for `i64` keys: ids are not attacker-chosen hash-flooding input and
/// SipHash would dominate the per-row probe.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_i64(&mut self, i: i64) {
        self.0 = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_i64(i64::from(i));
    }
}

pub type IdBuildHasher = BuildHasherDefault<IdHasher>;
pub type IdHashSet = HashSet<i64, IdBuildHasher>;
pub type IdHashMap<V> = std::collections::HashMap<i64, V, IdBuildHasher>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Probe {
    Empty,
    Bits { min: i64, words: Vec<u64> },
    Hash(IdHashSet),
}

/// An immutable set of ids with its members kept sorted (for arrays handed to SQL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdSet {
    sorted: Vec<i64>,
    probe: Probe,
}

impl IdSet {
    /// Builds the set; duplicates are dropped.
    pub fn new(mut ids: Vec<i64>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        let probe = match (ids.first(), ids.last()) {
            (Some(&min), Some(&max)) => {
                let span = (max as i128 - min as i128 + 1) as u128;
                // Dense enough: the bitset costs at most ~64 bits per member plus a little.
                if span <= (ids.len() as u128) * 64 + 4096 {
                    let mut words = vec![0u64; span.div_ceil(64) as usize];
                    for &id in &ids {
                        let off = (id - min) as u64;
                        words[(off / 64) as usize] |= 1 << (off % 64);
                    }
                    Probe::Bits { min, words }
                } else {
                    Probe::Hash(ids.iter().copied().collect())
                }
            }
            _ => Probe::Empty,
        };
        IdSet { sorted: ids, probe }
    }

    pub fn empty() -> Self {
        IdSet::new(Vec::new())
    }

    #[inline]
    pub fn contains(&self, id: i64) -> bool {
        match &self.probe {
            Probe::Empty => false,
            Probe::Bits { min, words } => {
                let off = id.wrapping_sub(*min) as u64;
                // Ids below `min` wrap to huge offsets and fall out of range.
                id >= *min && words.get((off / 64) as usize).is_some_and(|w| w & (1 << (off % 64)) != 0)
            }
            Probe::Hash(set) => set.contains(&id),
        }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    pub fn as_slice(&self) -> &[i64] {
        &self.sorted
    }

    pub fn is_bitset(&self) -> bool {
        matches!(self.probe, Probe::Bits { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_ids_use_a_bitset_and_answer_membership() {
        let s = IdSet::new(vec![5, 3, 4, 10, 3]);
        assert!(s.is_bitset());
        assert_eq!(s.as_slice(), &[3, 4, 5, 10]);
        for id in [3, 4, 5, 10] {
            assert!(s.contains(id));
        }
        for id in [i64::MIN, -1, 0, 2, 6, 9, 11, 64, 1000, i64::MAX] {
            assert!(!s.contains(id), "{id}");
        }
    }

    #[test]
    fn sparse_ids_use_a_hash_set_and_answer_membership() {
        let s = IdSet::new(vec![1, 1_000_000_000_000, -7]);
        assert!(!s.is_bitset());
        assert!(s.contains(-7) && s.contains(1) && s.contains(1_000_000_000_000));
        assert!(!s.contains(2) && !s.contains(0));
    }

    #[test]
    fn extreme_ids_do_not_overflow() {
        let s = IdSet::new(vec![i64::MIN, i64::MAX]);
        assert!(s.contains(i64::MIN) && s.contains(i64::MAX) && !s.contains(0));
        let s = IdSet::new(vec![i64::MAX - 1, i64::MAX]);
        assert!(s.is_bitset());
        assert!(s.contains(i64::MAX) && !s.contains(i64::MIN));
    }

    #[test]
    fn an_empty_set_contains_nothing() {
        let s = IdSet::empty();
        assert!(s.is_empty() && !s.contains(0));
    }

    /// A small deterministic generator: no dependency, reproducible failures.
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[test]
    fn membership_matches_a_reference_set_for_random_dense_and_sparse_ids() {
        let mut seed = 7;
        for round in 0..200 {
            let spread = if round % 2 == 0 { 1_000 } else { 1_000_000_000 };
            let n = (lcg(&mut seed) % 300) as usize;
            let ids: Vec<i64> = (0..n).map(|_| (lcg(&mut seed) % spread) as i64 - spread as i64 / 2).collect();
            let set = IdSet::new(ids.clone());
            let reference: std::collections::HashSet<i64> = ids.iter().copied().collect();
            assert_eq!(set.len(), reference.len());
            for _ in 0..500 {
                let probe = (lcg(&mut seed) % (spread + 10)) as i64 - spread as i64 / 2 - 5;
                assert_eq!(set.contains(probe), reference.contains(&probe), "round {round}, probe {probe}");
            }
            for id in &ids {
                assert!(set.contains(*id));
            }
        }
    }
}

//! A scrape loop's series cache: the raw series text of each exposition line (as exposed, the
//! key, like Prometheus' scrape cache keyed by the metric string) to what the loop knows of it.
//!
//! Targets expose their series in the same order scrape after scrape, so the cache keeps the
//! keys of the last scrape back to back in one buffer, in that order, and a scrape walks them
//! with a cursor: an unchanged line costs one comparison with bytes the previous line's
//! comparison has just brought into cache, no hashing and no allocation. A line that is not
//! the next one is looked up by its hash (seeded xxh3); the layout is rebuilt in the new order
//! after a scrape whose order or set of series changed.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes a `u64` that is already a hash: itself.
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

const NONE: usize = usize::MAX;

#[derive(Debug)]
struct Slot<T> {
    key_start: usize,
    key_len: usize,
    hash: u64,
    /// The next slot with the same hash ([`NONE`] at the end of the chain).
    next: usize,
    value: T,
}

/// Keys in the order of the last scrape, looked up by cursor first and by hash second.
#[derive(Debug)]
pub(crate) struct SeriesCache<T> {
    seed: u64,
    keys: Vec<u8>,
    slots: Vec<Slot<T>>,
    /// Key hash to the first slot with that hash.
    index: HashMap<u64, usize, BuildHasherDefault<IdentityHasher>>,
    /// Slot expected next (the one after the last found).
    cursor: usize,
    /// Slots in the order the current scrape exposed them (repeats included).
    order: Vec<usize>,
    /// The current scrape left the stored order (or added keys).
    diverged: bool,
}

impl<T: Clone> SeriesCache<T> {
    pub(crate) fn new(seed: u64) -> SeriesCache<T> {
        SeriesCache {
            seed,
            keys: Vec::new(),
            slots: Vec::new(),
            index: HashMap::default(),
            cursor: 0,
            order: Vec::new(),
            diverged: false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    fn key(&self, slot: &Slot<T>) -> &[u8] {
        &self.keys[slot.key_start..slot.key_start + slot.key_len]
    }

    /// Starts a scrape: the cursor goes back to the first key.
    pub(crate) fn begin(&mut self) {
        self.cursor = 0;
        self.order.clear();
        self.diverged = false;
    }

    /// The value of `key`, if cached.
    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut T> {
        let at = self.find(key)?;
        self.order.push(at);
        self.cursor = at + 1;
        Some(&mut self.slots[at].value)
    }

    fn find(&mut self, key: &[u8]) -> Option<usize> {
        if let Some(slot) = self.slots.get(self.cursor) {
            if self.key(slot) == key {
                return Some(self.cursor);
            }
        }
        self.diverged = true;
        self.lookup(key, xxhash_rust::xxh3::xxh3_64_with_seed(key, self.seed))
    }

    /// The slot of `key` by its hash.
    fn lookup(&self, key: &[u8], hash: u64) -> Option<usize> {
        let mut at = *self.index.get(&hash)?;
        while at != NONE {
            let slot = &self.slots[at];
            if self.key(slot) == key {
                return Some(at);
            }
            at = slot.next;
        }
        None
    }

    /// Adds `key` (not cached) with `value`.
    pub(crate) fn insert(&mut self, key: &[u8], value: T) -> &mut T {
        let hash = xxhash_rust::xxh3::xxh3_64_with_seed(key, self.seed);
        let at = self.push_slot(key, hash, value);
        self.order.push(at);
        self.diverged = true;
        &mut self.slots[at].value
    }

    fn push_slot(&mut self, key: &[u8], hash: u64, value: T) -> usize {
        let at = self.slots.len();
        let next = self.index.insert(hash, at).unwrap_or(NONE);
        self.slots.push(Slot { key_start: self.keys.len(), key_len: key.len(), hash, next, value });
        self.keys.extend_from_slice(key);
        at
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().map(|s| &s.value)
    }

    /// Ends a scrape: keeps the values `keep` selects. Unless the scrape kept the stored order
    /// and dropped nothing, the keys are laid out again in the order the scrape exposed them.
    pub(crate) fn finish(&mut self, keep: impl Fn(&T) -> bool) {
        let all_kept = self.slots.iter().all(|s| keep(&s.value));
        if !self.diverged && all_kept && self.order.len() == self.slots.len() {
            return;
        }
        let mut placed = vec![false; self.slots.len()];
        let mut keys = Vec::with_capacity(self.keys.len());
        let old_keys = std::mem::take(&mut self.keys);
        let old_slots = std::mem::take(&mut self.slots);
        self.index.clear();
        let order = std::mem::take(&mut self.order);
        // Kept values the scrape did not expose (none with the loop's `keep`) go last.
        let rest = 0..old_slots.len();
        for at in order.iter().copied().chain(rest) {
            if placed[at] || !keep(&old_slots[at].value) {
                continue;
            }
            placed[at] = true;
            let slot = &old_slots[at];
            let key = &old_keys[slot.key_start..slot.key_start + slot.key_len];
            let key_start = keys.len();
            keys.extend_from_slice(key);
            let new_at = self.slots.len();
            let next = self.index.insert(slot.hash, new_at).unwrap_or(NONE);
            self.slots.push(Slot { key_start, key_len: key.len(), hash: slot.hash, next, value: slot.value.clone() });
        }
        self.keys = keys;
        self.order = order;
        self.order.clear();
        self.diverged = false;
    }

    pub(crate) fn clear(&mut self) {
        self.keys.clear();
        self.slots.clear();
        self.index.clear();
        self.begin();
    }
}

#[cfg(test)]
mod tests {
    use super::SeriesCache;

    /// Runs scrapes of keys through a cache of "scrape number that added the key" and returns,
    /// per scrape, the keys found (with that number) or added (`+key`).
    fn run(scrapes: &[&[&str]]) -> Vec<String> {
        let mut cache = SeriesCache::new(7);
        let mut out = Vec::new();
        for (n, keys) in scrapes.iter().enumerate() {
            cache.begin();
            let mut seen = Vec::new();
            let mut line = Vec::new();
            for key in keys.iter() {
                match cache.get_mut(key.as_bytes()) {
                    Some((added, last)) => {
                        *last = n;
                        line.push(format!("{key}@{added}"));
                    }
                    None => {
                        cache.insert(key.as_bytes(), (n, n));
                        line.push(format!("+{key}"));
                    }
                }
                seen.push(*key);
            }
            cache.finish(|&(_, last)| last == n);
            assert_eq!(cache.len(), seen.iter().collect::<std::collections::HashSet<_>>().len());
            out.push(line.join(" "));
        }
        out
    }

    #[test]
    fn keys_are_found_in_any_order() {
        let cases: [(&[&[&str]], &[&str]); 5] = [
            (&[&["a", "b"], &["a", "b"]], &["+a +b", "a@0 b@0"]),
            (&[&["a", "b", "c"], &["c", "a"], &["a", "c", "b"]], &["+a +b +c", "c@0 a@0", "a@0 c@0 +b"]),
            (&[&["a", "a", "b"], &["b", "a", "a"]], &["+a a@0 +b", "b@0 a@0 a@0"]),
            (&[&["x"], &[], &["x"]], &["+x", "", "+x"]),
            (&[&["a{x=\"1\"}", "a"], &["a", "a{x=\"1\"}", "b"]], &["+a{x=\"1\"} +a", "a@0 a{x=\"1\"}@0 +b"]),
        ];
        for (scrapes, expected) in cases {
            assert_eq!(run(scrapes), expected, "{scrapes:?}");
        }
    }

    #[test]
    fn colliding_hashes_are_told_apart() {
        let mut cache: SeriesCache<u32> = SeriesCache::new(1);
        // Three keys under one hash.
        for (i, key) in [b"a", b"b", b"c"].into_iter().enumerate() {
            cache.push_slot(key, 42, i as u32);
        }
        let found: Vec<Option<usize>> = [&b"a"[..], b"b", b"c", b"d"].iter().map(|k| cache.lookup(k, 42)).collect();
        assert_eq!(found, [Some(0), Some(1), Some(2), None]);
        assert_eq!(cache.lookup(b"a", 43), None);
    }
}

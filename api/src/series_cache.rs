//! The remote-write receiver's series cache: the storage's reference of each label set, keyed
//! by the label bytes as they are on the wire (the same bytes always decode to the same labels),
//! so a known series costs no UTF-8 check, no `Labels` and no label lookup in the head.
//!
//! Entries hold the wire bytes and are compared in full on every hit: a hash collision is a
//! miss, never a wrong series. The bytes live in fixed-size pages, sharded by hash under one
//! lock each; a shard over its byte budget is emptied and fills again from the next requests.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

/// Shards (locks); a power of two.
const SHARDS: usize = 16;
/// Bytes per page of wire bytes.
const PAGE_BYTES: usize = 64 << 10;
/// Label sets with more wire bytes than this are not cached.
pub(crate) const MAX_ENTRY_BYTES: usize = 4 << 10;

/// Series references by the wire bytes of their labels.
#[derive(Debug)]
pub(crate) struct SeriesCache {
    shards: Box<[Mutex<Shard>]>,
    max_shard_bytes: usize,
}

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<u64, Entry, BuildHasherDefault<KeyHasher>>,
    pages: Vec<Vec<u8>>,
    bytes: usize,
}

/// Where an entry's record is: `[len u32][slot u64][wire bytes]` in a page, little-endian, so
/// the map stays small (16 bytes a bucket) and a hit reads one place.
#[derive(Debug, Clone, Copy)]
struct Entry {
    page: u32,
    offset: u32,
}

const RECORD_HEADER: usize = 12;

/// The keys are xxh3 hashes already.
#[derive(Debug, Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The hash a cache key is looked up by.
pub(crate) fn key_hash(wire: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(wire)
}

impl SeriesCache {
    /// A cache holding at most about `max_bytes` of label bytes (0 disables it).
    pub(crate) fn new(max_bytes: usize) -> SeriesCache {
        SeriesCache { shards: (0..SHARDS).map(|_| Mutex::default()).collect(), max_shard_bytes: max_bytes / SHARDS }
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Shard> {
        // Middle bits: the map in the shard takes its bucket from the low bits and its tag
        // from the top seven, which must vary within a shard.
        let shard = &self.shards[(hash >> 32) as usize % SHARDS];
        shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The slot (as `Appender::append_cached` fills it) of these label bytes, 0 if unknown.
    pub(crate) fn get(&self, hash: u64, wire: &[u8]) -> u64 {
        let shard = self.shard(hash);
        match shard.entries.get(&hash).and_then(|e| shard.record(e)) {
            Some((slot, bytes)) if bytes == wire => slot,
            _ => 0,
        }
    }

    /// Remembers `slot` for these label bytes.
    pub(crate) fn insert(&self, hash: u64, wire: &[u8], slot: u64) {
        if wire.len() > MAX_ENTRY_BYTES || self.max_shard_bytes == 0 {
            return;
        }
        let mut shard = self.shard(hash);
        if let Some(e) = shard.entries.get(&hash).copied() {
            if shard.record(&e).is_some_and(|(_, bytes)| bytes == wire) {
                let at = e.offset as usize + 4;
                shard.pages[e.page as usize][at..at + 8].copy_from_slice(&slot.to_le_bytes());
                return;
            }
        }
        let size = RECORD_HEADER + wire.len();
        if shard.bytes + size > self.max_shard_bytes {
            *shard = Shard::default();
        }
        let fits = shard.pages.last().is_some_and(|p| p.capacity() - p.len() >= size);
        if !fits {
            shard.pages.push(Vec::with_capacity(PAGE_BYTES));
        }
        let page = shard.pages.len() - 1;
        let bytes = &mut shard.pages[page];
        let offset = bytes.len();
        bytes.extend_from_slice(&(wire.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&slot.to_le_bytes());
        bytes.extend_from_slice(wire);
        shard.bytes += size;
        shard.entries.insert(hash, Entry { page: page as u32, offset: offset as u32 });
    }

    /// Entries held, over all shards.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap().entries.len()).sum()
    }
}

impl Shard {
    /// The slot and wire bytes of an entry.
    fn record(&self, e: &Entry) -> Option<(u64, &[u8])> {
        let page = self.pages.get(e.page as usize)?;
        let record = page.get(e.offset as usize..)?;
        let len = u32::from_le_bytes(record.get(..4)?.try_into().ok()?) as usize;
        let slot = u64::from_le_bytes(record.get(4..RECORD_HEADER)?.try_into().ok()?);
        Some((slot, record.get(RECORD_HEADER..RECORD_HEADER + len)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_need_the_same_bytes() {
        let cache = SeriesCache::new(1 << 20);
        let (a, b) = (b"\x0a\x03abc".as_slice(), b"\x0a\x03abd".as_slice());
        assert_eq!(cache.get(key_hash(a), a), 0);
        cache.insert(key_hash(a), a, 7);
        assert_eq!(cache.get(key_hash(a), a), 7);
        // Same hash, other bytes (a collision): a miss, and an insert replaces the entry.
        assert_eq!(cache.get(key_hash(a), b), 0);
        cache.insert(key_hash(a), b, 9);
        assert_eq!((cache.get(key_hash(a), b), cache.get(key_hash(a), a)), (9, 0));
        // A new slot for known bytes replaces the old one.
        cache.insert(key_hash(a), b, 11);
        assert_eq!(cache.get(key_hash(a), b), 11);
        let long = vec![1u8; MAX_ENTRY_BYTES + 1];
        cache.insert(key_hash(&long), &long, 3);
        assert_eq!(cache.get(key_hash(&long), &long), 0);
    }

    #[test]
    fn a_full_shard_starts_over() {
        let cache = SeriesCache::new(SHARDS * 1000);
        let keys: Vec<Vec<u8>> = (0..2000u32).map(|i| format!("series-{i:04}").into_bytes()).collect();
        for (i, k) in keys.iter().enumerate() {
            cache.insert(key_hash(k), k, i as u64 + 1);
        }
        // 23 bytes a record, 1000 bytes a shard: at most 43 keys a shard survive.
        assert!(cache.len() <= SHARDS * 43, "{}", cache.len());
        let last = keys.last().unwrap();
        assert_eq!(cache.get(key_hash(last), last), 2000);
        assert_eq!(SeriesCache::new(0).get(key_hash(last), last), 0);
    }
}

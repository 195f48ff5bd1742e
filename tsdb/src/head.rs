//! The head: in-memory series in Gorilla XOR chunks, a symbol table, roaring postings.
//!
//! Locks, always taken in this order and never the other way: a hash stripe (label-set
//! lookup), a series stripe (one series' samples), the symbol table, the postings. Appends to
//! series in different stripes run in parallel; a querier reads the postings, lets go, and then
//! locks one series stripe at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;
use sextant_model::{
    Appender, Label, Labels, Matcher, Querier, SampleIterator, SelectHints, Series, SeriesSet, StorageError, ValueType,
};

use crate::chunk::{XorChunk, SAMPLES_PER_CHUNK};
use crate::chunks_head::{ChunkDisk, ChunkRecord};
use crate::packed::{self, StoredIterator};
use crate::Error;

/// The reference of a series in the head (and in the WAL): stable for the life of the series.
pub type SeriesRef = u32;

const STRIPE_BITS: u32 = 12;
/// Bytes reserved for a series' first chunk (later chunks reserve what the previous one used).
const FIRST_CHUNK_CAPACITY: usize = 32;
const STRIPES: usize = 1 << STRIPE_BITS;
const STRIPE_MASK: u32 = (STRIPES as u32) - 1;
/// Runs of 2^GROUP_BITS consecutive refs share a stripe and sit next to each other in it, so a
/// batch over consecutive series takes one lock per run and walks memory in order.
const GROUP_BITS: u32 = 4;
const GROUP_MASK: u32 = (1 << GROUP_BITS) - 1;

/// The stripe holding series `r`.
fn stripe_no(r: SeriesRef) -> u32 {
    (r >> GROUP_BITS) & STRIPE_MASK
}

/// The index of series `r` within its stripe.
fn local_idx(r: SeriesRef) -> usize {
    (((r >> (GROUP_BITS + STRIPE_BITS)) << GROUP_BITS) | (r & GROUP_MASK)) as usize
}

/// The ref of the series at `idx` in stripe `stripe`.
fn make_ref(stripe: u32, idx: usize) -> SeriesRef {
    let idx = idx as u32;
    ((idx >> GROUP_BITS) << (GROUP_BITS + STRIPE_BITS)) | (stripe << GROUP_BITS) | (idx & GROUP_MASK)
}

/// Asks the CPU to bring the cache line holding `p` closer (a hint: never faults, never
/// changes memory). Used to overlap the cache misses of the next series with the current one.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads no memory architecturally and cannot fault, whatever the address;
    // SSE is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Settings of the head.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadOptions {
    /// Chunks never span a boundary of this range (the block range), in ms. Default 2 h.
    pub chunk_range_ms: i64,
    /// Samples per chunk before a new one is cut. Default 120.
    pub samples_per_chunk: usize,
    /// A full chunk is kept packed (decimal values, see `tsdb/FORMAT.md`) when that is smaller;
    /// one that stays XOR is re-encoded with the value windows that take the fewest bits when
    /// this is set (still Prometheus' XOR layout; see `XorChunk::optimized`). Default false.
    pub optimize_closed_chunks: bool,
    /// Accept samples up to this many ms older than the newest sample of their series
    /// (Prometheus' `out_of_order_time_window`). Default 0: out-of-order samples are rejected.
    pub out_of_order_window_ms: i64,
}

impl Default for HeadOptions {
    fn default() -> HeadOptions {
        HeadOptions {
            chunk_range_ms: 2 * 3600 * 1000,
            samples_per_chunk: SAMPLES_PER_CHUNK,
            optimize_closed_chunks: false,
            out_of_order_window_ms: 0,
        }
    }
}

/// Counters of the head (exported as `sextant_tsdb_head_*` metrics by the server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadStats {
    pub series: u64,
    pub samples_appended: u64,
    pub chunks_created: u64,
    /// Samples dropped at commit because another appender committed a newer one first.
    pub out_of_order_dropped: u64,
    /// Failed writes to `chunks_head/` (the WAL still holds those samples).
    pub chunk_write_errors: u64,
}

#[derive(Debug, Default)]
struct Symbols {
    ids: HashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
}

impl Symbols {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strings.len() as u32;
        let s: Arc<str> = s.into();
        self.strings.push(s.clone());
        self.ids.insert(s, id);
        id
    }

    fn get(&self, id: u32) -> &str {
        self.strings.get(id as usize).map_or("", |s| s)
    }
}

#[derive(Debug, Default)]
struct Postings {
    /// name symbol -> value symbol -> series.
    by_name: HashMap<u32, HashMap<u32, RoaringBitmap>>,
    all: RoaringBitmap,
}

#[derive(Debug)]
struct ClosedChunk {
    mint: i64,
    maxt: i64,
    data: Arc<[u8]>,
}

#[derive(Debug)]
struct MemSeries {
    /// Interned label pairs: name, value, name, value… sorted by name.
    labels: Box<[u32]>,
    /// `Labels::stable_hash` of the label set.
    hash: u64,
    closed: Vec<ClosedChunk>,
    head: XorChunk,
    head_mint: i64,
    /// The head chunk is cut before a sample at or after this time (the next boundary of the
    /// chunk range).
    head_end: i64,
    /// Newest sample appended but not committed (`i64::MIN` when none).
    pending_t: i64,
    pending_v: u64,
    /// Out-of-order samples, sorted by time (only with an out-of-order window).
    #[allow(clippy::box_collection)] // 8 bytes in every series instead of 24 for a rare feature
    ooo: Option<Box<Vec<(i64, f64)>>>,
}

impl MemSeries {
    fn new(labels: Box<[u32]>, hash: u64) -> MemSeries {
        MemSeries {
            labels,
            hash,
            closed: Vec::new(),
            head: XorChunk::new(),
            head_mint: i64::MAX,
            head_end: i64::MIN,
            pending_t: i64::MIN,
            pending_v: 0,
            ooo: None,
        }
    }

    /// The newest in-order sample (timestamp, value bits).
    #[inline]
    fn last(&self) -> Option<(i64, u64)> {
        match self.head.last() {
            Some(last) => Some(last),
            // Only after chunks were loaded from disk and before the next sample.
            None => {
                self.closed.last().and_then(|c| StoredIterator::new(&c.data[..]).last()).map(|(t, v)| (t, v.to_bits()))
            }
        }
    }

    fn mint(&self) -> i64 {
        let in_order = self.closed.first().map_or(self.head_mint, |c| c.mint);
        let ooo = self.ooo.as_ref().and_then(|o| o.first()).map_or(i64::MAX, |s| s.0);
        in_order.min(ooo)
    }

    fn maxt(&self) -> i64 {
        let in_order = self.last().map_or(i64::MIN, |l| l.0);
        let ooo = self.ooo.as_ref().and_then(|o| o.last()).map_or(i64::MIN, |s| s.0);
        in_order.max(ooo)
    }

    /// Appends a committed in-order sample, cutting a chunk when full or at a range boundary.
    /// Returns true if a chunk was started, and the chunk closed if one was: (`maxt` of the
    /// chunk before it, the closed chunk).
    #[inline]
    fn append_in_order(&mut self, t: i64, v: f64, opts: &HeadOptions) -> (bool, Option<(i64, &ClosedChunk)>) {
        let mut cut = false;
        let mut closed = None;
        let full = self.head.num_samples() >= opts.samples_per_chunk || t >= self.head_end || self.head.is_full();
        if self.head.num_samples() > 0 && full {
            closed = Some(self.close_head(opts));
            cut = true;
        }
        if self.head.num_samples() == 0 {
            if self.head.heap_size() < FIRST_CHUNK_CAPACITY {
                self.head = XorChunk::with_capacity(FIRST_CHUNK_CAPACITY);
            }
            self.head_mint = t;
            self.head_end = (t.div_euclid(opts.chunk_range_ms) + 1).saturating_mul(opts.chunk_range_ms);
            cut = true;
        }
        self.head.reserve_for(opts.samples_per_chunk);
        self.head.append(t, v);
        (cut, closed.and_then(|prev| Some((prev, self.closed.last()?))))
    }

    /// Moves the full head chunk to the closed ones (packed when smaller) and starts an empty
    /// one; returns the `maxt` of the closed chunk before it (`i64::MIN` if none). Once per
    /// chunk: kept out of the per-sample path.
    #[inline(never)]
    fn close_head(&mut self, opts: &HeadOptions) -> i64 {
        let estimate = self.head.bytes().len() + self.head.bytes().len() / 8 + 8;
        let old = std::mem::replace(&mut self.head, XorChunk::with_capacity(estimate));
        let maxt = old.last().map_or(self.head_mint, |l| l.0);
        let mut stored = packed::store(old.bytes());
        if stored[0] == packed::ENC_XOR && opts.optimize_closed_chunks {
            if let Some(optimized) = old.optimized() {
                stored = packed::store_xor(optimized.bytes());
            }
        }
        let prev_maxt = self.closed.last().map_or(i64::MIN, |c| c.maxt);
        self.closed.push(ClosedChunk { mint: self.head_mint, maxt, data: stored.into() });
        prev_maxt
    }

    /// The value bits of the committed in-order sample at exactly `t`, if there is one.
    fn in_order_value_at(&self, t: i64) -> Option<u64> {
        if self.head.num_samples() > 0 && t >= self.head_mint {
            let mut it = self.head.iter();
            if it.seek(t) {
                let (at, v) = it.at();
                return (at == t).then_some(v.to_bits());
            }
            return None;
        }
        let i = self.closed.partition_point(|c| c.maxt < t);
        let c = self.closed.get(i).filter(|c| c.mint <= t)?;
        StoredIterator::new(&c.data[..]).find(|s| s.0 >= t).filter(|s| s.0 == t).map(|s| s.1.to_bits())
    }

    fn ooo_find(&self, t: i64) -> Option<f64> {
        let ooo = self.ooo.as_ref()?;
        ooo.binary_search_by_key(&t, |s| s.0).ok().map(|i| ooo[i].1)
    }

    fn ooo_insert(&mut self, t: i64, v: f64) -> bool {
        let ooo = self.ooo.get_or_insert_with(Default::default);
        match ooo.binary_search_by_key(&t, |s| s.0) {
            Ok(_) => false,
            Err(i) => {
                ooo.insert(i, (t, v));
                true
            }
        }
    }

    /// Every sample, in order (in-order chunks merged with out-of-order ones).
    fn all_samples(&self) -> Vec<(i64, f64)> {
        let mut out: Vec<(i64, f64)> = Vec::new();
        for c in &self.closed {
            out.extend(StoredIterator::new(&c.data[..]));
        }
        out.extend(self.head.iter());
        if let Some(ooo) = &self.ooo {
            out.extend(ooo.iter().copied());
            out.sort_by_key(|s| s.0);
            out.dedup_by_key(|s| s.0);
        }
        out
    }

    /// Re-encodes the series without its samples in `[mint, maxt]`.
    fn remove_range(&mut self, mint: i64, maxt: i64, opts: &HeadOptions) {
        let kept: Vec<(i64, f64)> = self.all_samples().into_iter().filter(|x| x.0 < mint || x.0 > maxt).collect();
        let mut fresh = MemSeries::new(std::mem::take(&mut self.labels), self.hash);
        fresh.pending_t = self.pending_t;
        fresh.pending_v = self.pending_v;
        for (t, v) in kept {
            fresh.append_in_order(t, v, opts);
        }
        *self = fresh;
    }

    fn heap_size(&self) -> usize {
        self.labels.len() * 4
            + self.closed.capacity() * std::mem::size_of::<ClosedChunk>()
            + self.closed.iter().map(|c| c.data.len() + 16).sum::<usize>()
            + self.head.heap_size()
            + self.ooo.as_ref().map_or(0, |o| 24 + o.capacity() * 16)
    }
}

#[derive(Debug, Default)]
struct SeriesStripe {
    /// Indexed by [`local_idx`].
    series: Vec<Option<MemSeries>>,
}

impl SeriesStripe {
    fn get(&self, r: SeriesRef) -> Option<&MemSeries> {
        self.series.get(local_idx(r))?.as_ref()
    }
    fn get_mut(&mut self, r: SeriesRef) -> Option<&mut MemSeries> {
        self.series.get_mut(local_idx(r))?.as_mut()
    }
}

#[derive(Debug, Default)]
struct HashStripe {
    /// Label-set hash -> series; collisions are rare and kept in a list.
    refs: HashMap<u64, SeriesRef>,
    collisions: HashMap<u64, Vec<SeriesRef>>,
}

/// The in-memory part of the database: every series with its recent samples.
#[derive(Debug)]
pub struct Head {
    opts: HeadOptions,
    hashes: Box<[Mutex<HashStripe>]>,
    stripes: Box<[Mutex<SeriesStripe>]>,
    symbols: RwLock<Symbols>,
    postings: RwLock<Postings>,
    next_ref: AtomicU32,
    n_series: AtomicU64,
    samples_appended: AtomicU64,
    chunks_created: AtomicU64,
    ooo_dropped: AtomicU64,
    min_valid_t: AtomicI64,
    min_t: AtomicI64,
    max_t: AtomicI64,
    /// Series created but not yet written to the WAL (a failed commit leaves them here).
    unlogged: Mutex<Vec<SeriesRef>>,
    /// Buffers of finished appenders, reused by the next ones.
    buffers: Mutex<Vec<(Vec<PendingSample>, Vec<u8>)>>,
    /// Where full chunks are written as they are cut (set by `Db`).
    chunk_disk: std::sync::OnceLock<ChunkDisk>,
}

/// Where a checked sample goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    InOrder,
    OutOfOrder,
    /// An identical sample is already there: accepted, nothing to do.
    Duplicate,
}

impl Default for Head {
    fn default() -> Head {
        Head::new(HeadOptions::default())
    }
}

impl Head {
    pub fn new(opts: HeadOptions) -> Head {
        let mut opts = opts;
        opts.chunk_range_ms = opts.chunk_range_ms.max(1);
        opts.samples_per_chunk = opts.samples_per_chunk.clamp(1, usize::from(u16::MAX));
        Head {
            opts,
            hashes: (0..STRIPES).map(|_| Mutex::default()).collect(),
            stripes: (0..STRIPES).map(|_| Mutex::default()).collect(),
            symbols: RwLock::default(),
            postings: RwLock::default(),
            next_ref: AtomicU32::new(1),
            n_series: AtomicU64::new(0),
            samples_appended: AtomicU64::new(0),
            chunks_created: AtomicU64::new(0),
            ooo_dropped: AtomicU64::new(0),
            min_valid_t: AtomicI64::new(i64::MIN),
            min_t: AtomicI64::new(i64::MAX),
            max_t: AtomicI64::new(i64::MIN),
            unlogged: Mutex::default(),
            buffers: Mutex::default(),
            chunk_disk: std::sync::OnceLock::new(),
        }
    }

    pub fn options(&self) -> &HeadOptions {
        &self.opts
    }

    /// A batch writer without a WAL.
    pub fn appender(&self) -> HeadAppender<'_> {
        HeadAppender::new(self, None)
    }

    /// A reader of samples in `[mint, maxt]`.
    pub fn querier(&self, mint: i64, maxt: i64) -> HeadQuerier<'_> {
        HeadQuerier { head: self, mint, maxt }
    }

    pub fn num_series(&self) -> u64 {
        self.n_series.load(Ordering::Relaxed)
    }

    /// Oldest and newest sample timestamps ever committed (`None` when empty).
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let (min, max) = (self.min_t.load(Ordering::Relaxed), self.max_t.load(Ordering::Relaxed));
        (min <= max).then_some((min, max))
    }

    pub fn stats(&self) -> HeadStats {
        HeadStats {
            series: self.num_series(),
            samples_appended: self.samples_appended.load(Ordering::Relaxed),
            chunks_created: self.chunks_created.load(Ordering::Relaxed),
            out_of_order_dropped: self.ooo_dropped.load(Ordering::Relaxed),
            chunk_write_errors: self.chunk_disk.get().map_or(0, ChunkDisk::errors),
        }
    }

    /// Bytes of encoded chunk data (head and closed chunks) and samples in them: the
    /// bytes/sample figure of the head chunks.
    pub fn chunk_bytes_and_samples(&self) -> (u64, u64) {
        let (mut bytes, mut samples) = (0u64, 0u64);
        for stripe in self.stripes.iter() {
            let stripe = stripe.lock();
            for s in stripe.series.iter().flatten() {
                for c in &s.closed {
                    bytes += c.data.len() as u64;
                    samples += packed::num_samples(&c.data) as u64;
                }
                bytes += s.head.bytes().len() as u64;
                samples += s.head.num_samples() as u64;
            }
        }
        (bytes, samples)
    }

    /// Heap bytes of series structures and chunks as counted by the head itself (an estimate
    /// without allocator overhead, maps or postings).
    pub fn series_heap_estimate(&self) -> usize {
        let mut total = 0;
        for stripe in self.stripes.iter() {
            let stripe = stripe.lock();
            total += stripe.series.capacity() * std::mem::size_of::<Option<MemSeries>>();
            total += stripe.series.iter().flatten().map(MemSeries::heap_size).sum::<usize>();
        }
        total
    }

    fn stripe(&self, r: SeriesRef) -> &Mutex<SeriesStripe> {
        &self.stripes[stripe_no(r) as usize]
    }

    /// The labels of a series.
    pub fn series_labels(&self, r: SeriesRef) -> Option<Labels> {
        let stripe = self.stripe(r).lock();
        let s = stripe.get(r)?;
        Some(self.resolve(&s.labels))
    }

    fn resolve(&self, ids: &[u32]) -> Labels {
        let symbols = self.symbols.read();
        Labels::from_sorted(ids.chunks_exact(2).map(|p| Label::new(symbols.get(p[0]), symbols.get(p[1]))).collect())
    }

    fn same_labels(&self, ids: &[u32], labels: &Labels) -> bool {
        if ids.len() != labels.len() * 2 {
            return false;
        }
        let symbols = self.symbols.read();
        ids.chunks_exact(2)
            .zip(labels.iter())
            .all(|(p, l)| symbols.get(p[0]) == &*l.name && symbols.get(p[1]) == &*l.value)
    }

    /// The series with these labels, if it exists.
    pub fn lookup(&self, labels: &Labels) -> Option<SeriesRef> {
        let hash = labels.stable_hash();
        let hashes = self.hashes[(hash as usize) & (STRIPES - 1)].lock();
        self.lookup_locked(&hashes, hash, labels)
    }

    fn lookup_locked(&self, hashes: &HashStripe, hash: u64, labels: &Labels) -> Option<SeriesRef> {
        let candidates = hashes.refs.get(&hash).into_iter().chain(hashes.collisions.get(&hash).into_iter().flatten());
        for &r in candidates {
            let stripe = self.stripe(r).lock();
            if stripe.get(r).is_some_and(|s| self.same_labels(&s.labels, labels)) {
                return Some(r);
            }
        }
        None
    }

    /// The series with these labels, created if new. The bool is true when it was created.
    pub fn get_or_create(&self, labels: &Labels) -> Result<(SeriesRef, bool), Error> {
        self.get_or_create_with_ref(labels, None)
    }

    /// Like [`Head::get_or_create`], with the reference given (WAL replay). A series that already
    /// exists under another reference keeps it.
    pub(crate) fn get_or_create_with_ref(
        &self,
        labels: &Labels,
        want: Option<SeriesRef>,
    ) -> Result<(SeriesRef, bool), Error> {
        if labels.is_empty() {
            return Err(Error::InvalidLabels { labels: labels.clone() });
        }
        let hash = labels.stable_hash();
        let mut hashes = self.hashes[(hash as usize) & (STRIPES - 1)].lock();
        if let Some(r) = self.lookup_locked(&hashes, hash, labels) {
            return Ok((r, false));
        }
        let r = match want {
            Some(r) => {
                self.next_ref.fetch_max(r.saturating_add(1), Ordering::Relaxed);
                r
            }
            None => {
                let r = self.next_ref.fetch_add(1, Ordering::Relaxed);
                if r == u32::MAX {
                    return Err(Error::TooManySeries);
                }
                r
            }
        };
        let ids: Box<[u32]> = {
            let mut symbols = self.symbols.write();
            labels.iter().flat_map(|l| [symbols.intern(&l.name), symbols.intern(&l.value)]).collect()
        };
        {
            let mut stripe = self.stripe(r).lock();
            let idx = local_idx(r);
            if stripe.series.len() <= idx {
                stripe.series.resize_with(idx + 1, || None);
            }
            if stripe.series[idx].is_some() {
                // A replayed reference already in use by other labels: take a fresh one.
                drop(stripe);
                drop(hashes);
                return self.get_or_create_with_ref(labels, None);
            }
            stripe.series[idx] = Some(MemSeries::new(ids.clone(), hash));
        }
        {
            let mut postings = self.postings.write();
            for pair in ids.chunks_exact(2) {
                postings.by_name.entry(pair[0]).or_default().entry(pair[1]).or_default().insert(r);
            }
            postings.all.insert(r);
        }
        match hashes.refs.entry(hash) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(r);
            }
            std::collections::hash_map::Entry::Occupied(_) => hashes.collisions.entry(hash).or_default().push(r),
        }
        self.n_series.fetch_add(1, Ordering::Relaxed);
        Ok((r, true))
    }

    /// Checks a sample against the series' committed and pending samples and, when accepted in
    /// order, records it as pending.
    #[inline]
    fn check_and_reserve(&self, r: SeriesRef, t: i64, v: f64) -> Result<Placement, Error> {
        let min_valid = self.min_valid_t.load(Ordering::Relaxed);
        let mut stripe = self.stripe(r).lock();
        self.check_and_reserve_locked(&mut stripe, min_valid, r, t, v)
    }

    /// [`Head::check_and_reserve`] with the series' stripe locked by the caller (a batch takes
    /// it once for a run of samples). The symbol table may be locked meanwhile (lock order).
    #[inline(always)]
    fn check_and_reserve_locked(
        &self,
        stripe: &mut SeriesStripe,
        min_valid: i64,
        r: SeriesRef,
        t: i64,
        v: f64,
    ) -> Result<Placement, Error> {
        let Some(s) = stripe.get_mut(r) else { return Err(Error::UnknownSeriesRef(r)) };
        let newest = match s.last() {
            Some((lt, lv)) if lt >= s.pending_t => Some((lt, lv)),
            _ if s.pending_t != i64::MIN => Some((s.pending_t, s.pending_v)),
            other => other,
        };
        if t < min_valid {
            return Err(Error::OutOfBounds { labels: self.resolve(&s.labels), t, min_t: min_valid });
        }
        let placement = match newest {
            None => Placement::InOrder,
            Some((lt, _)) if t > lt => Placement::InOrder,
            Some((lt, lv)) if t == lt => {
                if lv == v.to_bits() {
                    Placement::Duplicate
                } else {
                    return Err(Error::DuplicateSampleForTimestamp { labels: self.resolve(&s.labels), t });
                }
            }
            Some((lt, _)) => {
                let window = self.opts.out_of_order_window_ms;
                if window > 0 && t >= lt.saturating_sub(window) {
                    match s.ooo_find(t).or_else(|| s.in_order_value_at(t).map(f64::from_bits)) {
                        Some(old) if old.to_bits() == v.to_bits() => Placement::Duplicate,
                        Some(_) => {
                            return Err(Error::DuplicateSampleForTimestamp { labels: self.resolve(&s.labels), t });
                        }
                        None => Placement::OutOfOrder,
                    }
                } else if s.in_order_value_at(t) == Some(v.to_bits()) {
                    // A resend of a sample already stored (a remote-write retry whose answer
                    // was lost): accepted silently, like a duplicate of the newest sample.
                    Placement::Duplicate
                } else {
                    return Err(Error::OutOfOrderSample { labels: self.resolve(&s.labels), t });
                }
            }
        };
        if placement == Placement::InOrder {
            s.pending_t = t;
            s.pending_v = v.to_bits();
            // The commit appends at the chunk's end, a line nothing else touches until then.
            prefetch(s.head.bytes().as_ptr_range().end.wrapping_sub(1));
        }
        Ok(placement)
    }

    /// Applies committed samples (already validated, already in the WAL). Returns the number
    /// of samples whose series does not exist.
    fn apply(&self, samples: &[PendingSample]) -> u64 {
        let mut missing = 0u64;
        let mut appended = 0u64;
        let mut cut = 0u64;
        let mut dropped = 0u64;
        let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
        let disk = self.chunk_disk.get();
        let mut records = Vec::new();
        let mut i = 0;
        while i < samples.len() {
            let stripe_idx = stripe_no(samples[i].r);
            let mut stripe = self.stripes[stripe_idx as usize].lock();
            while i < samples.len() && stripe_no(samples[i].r) == stripe_idx {
                let p = &samples[i];
                i += 1;
                if let Some(next) = samples.get(i).filter(|n| stripe_no(n.r) == stripe_idx) {
                    if let Some(slot) = stripe.series.get(local_idx(next.r)) {
                        prefetch(slot);
                    }
                }
                let Some(s) = stripe.get_mut(p.r) else {
                    missing += 1;
                    continue;
                };
                if s.pending_t <= p.t {
                    s.pending_t = i64::MIN;
                }
                match s.last() {
                    Some((lt, _)) if p.t <= lt => {
                        let window = self.opts.out_of_order_window_ms;
                        if window > 0 && p.t >= lt.saturating_sub(window) && p.t != lt {
                            if s.ooo_insert(p.t, p.v) {
                                appended += 1;
                            }
                        } else if !(p.t == lt && s.last().is_some_and(|l| l.1 == p.v.to_bits())) {
                            dropped += 1;
                        }
                        continue;
                    }
                    _ => {}
                }
                let hash = s.hash;
                let (started, closed) = s.append_in_order(p.t, p.v, &self.opts);
                cut += u64::from(started);
                if let (Some(_), Some((prev_maxt, c))) = (disk, closed) {
                    records.push(ChunkRecord {
                        r: p.r,
                        hash,
                        prev_maxt,
                        mint: c.mint,
                        maxt: c.maxt,
                        data: c.data.clone(),
                    });
                }
                appended += 1;
                min_t = min_t.min(p.t);
                max_t = max_t.max(p.t);
            }
        }
        if let Some(disk) = disk.filter(|_| !records.is_empty()) {
            disk.write(&records);
        }
        self.samples_appended.fetch_add(appended, Ordering::Relaxed);
        self.chunks_created.fetch_add(cut, Ordering::Relaxed);
        if dropped > 0 {
            self.ooo_dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        if min_t <= max_t {
            self.min_t.fetch_min(min_t, Ordering::Relaxed);
            self.max_t.fetch_max(max_t, Ordering::Relaxed);
        }
        missing
    }

    fn release_pending(&self, samples: &[PendingSample]) {
        for p in samples {
            let mut stripe = self.stripe(p.r).lock();
            if let Some(s) = stripe.get_mut(p.r) {
                s.pending_t = i64::MIN;
            }
        }
    }

    /// Applies replayed samples: no pending state, order and duplicates as at commit.
    pub(crate) fn apply_replayed(&self, samples: &[PendingSample]) -> u64 {
        self.apply(samples)
    }

    /// Full chunks are written to `disk` from now on.
    pub(crate) fn set_chunk_disk(&self, disk: ChunkDisk) {
        let _ = self.chunk_disk.set(disk);
    }

    pub(crate) fn chunk_disk(&self) -> Option<&ChunkDisk> {
        self.chunk_disk.get()
    }

    /// Gives a series created by replay its full chunks loaded from disk (oldest first, each
    /// starting after the previous one ended); returns the newest time they hold and their
    /// number of samples.
    pub(crate) fn attach_chunks(&self, r: SeriesRef, chain: Vec<ChunkRecord>) -> Option<(i64, u64)> {
        let first = chain.first()?.mint;
        let last = chain.last()?.maxt;
        let mut samples = 0u64;
        {
            let mut stripe = self.stripe(r).lock();
            let s = stripe.get_mut(r)?;
            if !s.closed.is_empty() || s.head.num_samples() > 0 {
                return None;
            }
            for c in chain {
                samples += packed::num_samples(&c.data) as u64;
                s.closed.push(ClosedChunk { mint: c.mint, maxt: c.maxt, data: c.data });
            }
        }
        self.samples_appended.fetch_add(samples, Ordering::Relaxed);
        self.min_t.fetch_min(first, Ordering::Relaxed);
        self.max_t.fetch_max(last, Ordering::Relaxed);
        Some((last, samples))
    }

    pub(crate) fn stripe_of(&self, r: SeriesRef) -> u32 {
        stripe_no(r)
    }

    pub(crate) fn take_unlogged(&self) -> Vec<SeriesRef> {
        std::mem::take(&mut *self.unlogged.lock())
    }

    pub(crate) fn return_unlogged(&self, refs: Vec<SeriesRef>) {
        self.unlogged.lock().extend(refs);
    }

    /// Deletes the samples of series matching `matchers` in `[mint, maxt]`; returns the
    /// affected series (for the WAL's tombstone record).
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesRef> {
        let refs: Vec<SeriesRef> = self.postings_for_matchers(matchers).iter().collect();
        for &r in &refs {
            self.delete_range(r, mint, maxt);
        }
        refs
    }

    pub(crate) fn delete_range(&self, r: SeriesRef, mint: i64, maxt: i64) {
        let mut stripe = self.stripe(r).lock();
        let Some(s) = stripe.get_mut(r) else { return };
        if s.maxt() < mint || s.mint() > maxt {
            return;
        }
        s.remove_range(mint, maxt, &self.opts);
    }

    /// Drops in-memory data older than `mint` (the blocks persisted it) and series left empty;
    /// samples older than `mint` are rejected from now on. Returns the number of series removed.
    pub fn truncate(&self, mint: i64) -> usize {
        self.min_valid_t.fetch_max(mint, Ordering::Relaxed);
        let mut candidates = Vec::new();
        for (stripe, lock) in self.stripes.iter().enumerate() {
            let mut series = lock.lock();
            for (idx, slot) in series.series.iter_mut().enumerate() {
                let Some(s) = slot else { continue };
                s.closed.retain(|c| c.maxt >= mint);
                if let Some(ooo) = &mut s.ooo {
                    ooo.retain(|x| x.0 >= mint);
                }
                if s.mint() < mint && mint != i64::MIN {
                    // A chunk straddles `mint`: keep only its newer samples.
                    s.remove_range(i64::MIN, mint - 1, &self.opts);
                }
                if s.is_dead(mint) {
                    candidates.push((make_ref(stripe as u32, idx), s.labels.clone()));
                }
            }
        }
        candidates.into_iter().filter(|(r, ids)| self.remove_if_dead(*r, ids, mint)).count()
    }

    /// Removes a series that has no data at or after `mint` and nothing pending; true if it
    /// did.
    fn remove_if_dead(&self, r: SeriesRef, ids: &[u32], mint: i64) -> bool {
        let labels = self.resolve(ids);
        let hash = labels.stable_hash();
        let mut hashes = self.hashes[(hash as usize) & (STRIPES - 1)].lock();
        {
            let mut stripe = self.stripe(r).lock();
            let idx = local_idx(r);
            if !stripe.series.get(idx).and_then(Option::as_ref).is_some_and(|s| s.is_dead(mint)) {
                return false;
            }
            stripe.series[idx] = None;
        }
        let hashes = &mut *hashes;
        if hashes.refs.get(&hash) == Some(&r) {
            hashes.refs.remove(&hash);
            if let Some(list) = hashes.collisions.get_mut(&hash) {
                if let Some(next) = list.pop() {
                    hashes.refs.insert(hash, next);
                }
                if list.is_empty() {
                    hashes.collisions.remove(&hash);
                }
            }
        } else if let Some(list) = hashes.collisions.get_mut(&hash) {
            list.retain(|&x| x != r);
            if list.is_empty() {
                hashes.collisions.remove(&hash);
            }
        }
        let mut postings = self.postings.write();
        for pair in ids.chunks_exact(2) {
            if let Some(values) = postings.by_name.get_mut(&pair[0]) {
                if let Some(bitmap) = values.get_mut(&pair[1]) {
                    bitmap.remove(r);
                    if bitmap.is_empty() {
                        values.remove(&pair[1]);
                    }
                }
                if values.is_empty() {
                    postings.by_name.remove(&pair[0]);
                }
            }
        }
        postings.all.remove(r);
        self.n_series.fetch_sub(1, Ordering::Relaxed);
        true
    }

    /// Removes series created by a batch that ended up without any sample.
    fn remove_if_empty(&self, refs: &[SeriesRef]) {
        for &r in refs {
            let ids = {
                let stripe = self.stripe(r).lock();
                match stripe.get(r) {
                    Some(s) if s.is_dead(i64::MIN) => s.labels.clone(),
                    _ => continue,
                }
            };
            self.remove_if_dead(r, &ids, i64::MIN);
        }
    }

    /// Refs and labels of every series (for a WAL checkpoint).
    pub(crate) fn all_series(&self) -> Vec<(SeriesRef, Labels)> {
        let refs: Vec<SeriesRef> = self.postings.read().all.iter().collect();
        refs.into_iter().filter_map(|r| Some((r, self.series_labels(r)?))).collect()
    }

    /// The series matching all matchers, as a bitmap of refs.
    pub(crate) fn postings_for_matchers(&self, matchers: &[Matcher]) -> RoaringBitmap {
        let symbols = self.symbols.read();
        let postings = self.postings.read();
        // Matchers that do not match the empty string select from their own postings; do
        // those first, they shrink the set fastest.
        let mut order: Vec<&Matcher> = matchers.iter().collect();
        order.sort_by_key(|m| m.matches_empty());
        let mut result: Option<RoaringBitmap> = None;
        for m in order {
            if result.as_ref().is_some_and(|r| r.is_empty()) {
                break;
            }
            let values = symbols.ids.get(m.name.as_str()).and_then(|name| postings.by_name.get(name));
            let matching_union = |want: bool| -> RoaringBitmap {
                let mut union = RoaringBitmap::new();
                let Some(values) = values else { return union };
                if want {
                    if let Some(set) = m.set_matches() {
                        if m.op == sextant_model::MatchOp::RegexMatch {
                            for literal in set {
                                if let Some(b) = symbols.ids.get(literal.as_str()).and_then(|id| values.get(id)) {
                                    union |= b;
                                }
                            }
                            return union;
                        }
                    }
                    if m.op == sextant_model::MatchOp::Equal {
                        if let Some(b) = symbols.ids.get(m.value.as_str()).and_then(|id| values.get(id)) {
                            union |= b;
                        }
                        return union;
                    }
                }
                for (value, bitmap) in values {
                    if m.matches(symbols.get(*value)) == want {
                        union |= bitmap;
                    }
                }
                union
            };
            let selected = if m.matches_empty() {
                let mut all = match &result {
                    Some(r) => r.clone(),
                    None => postings.all.clone(),
                };
                all -= matching_union(false);
                all
            } else {
                let mut union = matching_union(true);
                if let Some(r) = &result {
                    union &= r;
                }
                union
            };
            result = Some(selected);
        }
        result.unwrap_or_else(|| postings.all.clone())
    }

    /// Calls `f` with encoded snapshot records of every series, a stripe at a time (the
    /// stripe's lock is not held during `f`).
    pub(crate) fn for_each_series_data(&self, mut f: impl FnMut(&[u8])) {
        let mut buf = Vec::new();
        for (stripe, lock) in self.stripes.iter().enumerate() {
            buf.clear();
            {
                let series = lock.lock();
                for (idx, s) in series.series.iter().enumerate() {
                    let Some(s) = s else { continue };
                    let labels = self.resolve(&s.labels);
                    let chunks: Vec<(i64, i64, &[u8])> =
                        s.closed.iter().map(|c| (c.mint, c.maxt, &c.data[..])).collect();
                    let head = (s.head.num_samples() > 0).then(|| (s.head_mint, s.head.bytes()));
                    let ooo = s.ooo.as_deref().map_or(&[][..], |o| &o[..]);
                    crate::wal::encode_snapshot_series(
                        &mut buf,
                        make_ref(stripe as u32, idx),
                        &labels,
                        &chunks,
                        head,
                        ooo,
                    );
                }
            }
            if !buf.is_empty() {
                f(&buf);
            }
        }
    }

    /// Recreates a series from a snapshot; returns its number of samples, `None` if its
    /// chunks are not well-formed.
    pub(crate) fn restore(&self, snap: crate::wal::SnapshotSeries) -> Option<u64> {
        let head_chunk = match snap.head {
            Some((mint, bytes)) => Some((mint, XorChunk::from_bytes(bytes)?)),
            None => None,
        };
        let (r, _) = self.get_or_create_with_ref(&snap.labels, Some(snap.r)).ok()?;
        let mut samples = snap.ooo.len() as u64;
        let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
        let mut stripe = self.stripe(r).lock();
        let s = stripe.get_mut(r)?;
        for (mint, maxt, data) in snap.chunks {
            samples += packed::num_samples(&data) as u64;
            min_t = min_t.min(mint);
            max_t = max_t.max(maxt);
            s.closed.push(ClosedChunk { mint, maxt, data: data.into() });
        }
        if let Some((mint, chunk)) = head_chunk {
            samples += chunk.num_samples() as u64;
            s.head_mint = mint;
            s.head_end = (mint.div_euclid(self.opts.chunk_range_ms) + 1).saturating_mul(self.opts.chunk_range_ms);
            min_t = min_t.min(mint);
            max_t = max_t.max(chunk.last().map_or(mint, |l| l.0));
            s.head = chunk;
        }
        if !snap.ooo.is_empty() {
            s.ooo = Some(Box::new(snap.ooo));
        }
        drop(stripe);
        if min_t <= max_t {
            self.min_t.fetch_min(min_t, Ordering::Relaxed);
            self.max_t.fetch_max(max_t, Ordering::Relaxed);
        }
        self.samples_appended.fetch_add(samples, Ordering::Relaxed);
        Some(samples)
    }

    fn has_data_in(&self, r: SeriesRef, mint: i64, maxt: i64) -> bool {
        let stripe = self.stripe(r).lock();
        let Some(s) = stripe.get(r) else { return false };
        if s.maxt() < mint || s.mint() > maxt {
            return false;
        }
        let in_chunks = s.closed.iter().any(|c| {
            c.maxt >= mint && c.mint <= maxt && StoredIterator::new(&c.data[..]).any(|x| x.0 >= mint && x.0 <= maxt)
        }) || s.head.iter().any(|x| x.0 >= mint && x.0 <= maxt);
        in_chunks || s.ooo.as_ref().is_some_and(|o| o.iter().any(|x| x.0 >= mint && x.0 <= maxt))
    }

    /// Snapshot of a series' data overlapping `[mint, maxt]`, or `None` if it has none.
    fn snapshot(&self, r: SeriesRef, mint: i64, maxt: i64) -> Option<(Box<[u32]>, SeriesData)> {
        let stripe = self.stripe(r).lock();
        let s = stripe.get(r)?;
        if s.maxt() < mint || s.mint() > maxt {
            return None;
        }
        let mut chunks = Vec::new();
        for c in &s.closed {
            if c.maxt >= mint && c.mint <= maxt {
                chunks.push((c.maxt, c.data.clone()));
            }
        }
        if let Some((last_t, _)) = s.last() {
            if last_t >= mint && s.head_mint <= maxt {
                let mut stored = Vec::with_capacity(s.head.bytes().len() + 1);
                stored.push(packed::ENC_XOR);
                stored.extend_from_slice(s.head.bytes());
                chunks.push((last_t, stored.into()));
            }
        }
        let ooo: Vec<(i64, f64)> = s
            .ooo
            .as_ref()
            .map(|o| o.iter().copied().filter(|x| x.0 >= mint && x.0 <= maxt).collect())
            .unwrap_or_default();
        if chunks.is_empty() && ooo.is_empty() {
            return None;
        }
        Some((s.labels.clone(), SeriesData { chunks, ooo }))
    }
}

impl MemSeries {
    fn is_dead(&self, mint: i64) -> bool {
        self.last().is_none_or(|l| l.0 < mint)
            && self.closed.is_empty()
            && self.ooo.as_ref().is_none_or(|o| o.is_empty())
            && self.pending_t == i64::MIN
    }
}

#[derive(Debug)]
struct SeriesData {
    /// (maxt, chunk bytes) in time order.
    chunks: Vec<(i64, Arc<[u8]>)>,
    ooo: Vec<(i64, f64)>,
}

/// A sample waiting for commit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingSample {
    pub(crate) r: SeriesRef,
    pub(crate) t: i64,
    pub(crate) v: f64,
}
/// A batch of writes to the head (and its WAL, when opened through a [`crate::Db`]).
///
/// Samples are checked at `append` (typed errors for out-of-order and conflicting samples) and
/// become visible at `commit`, after the batch is in the WAL.
#[derive(Debug)]
pub struct HeadAppender<'a> {
    head: &'a Head,
    wal: Option<&'a crate::wal::Wal>,
    pending: Vec<PendingSample>,
    new_series: Vec<SeriesRef>,
    buf: Vec<u8>,
}

impl<'a> HeadAppender<'a> {
    pub(crate) fn new(head: &'a Head, wal: Option<&'a crate::wal::Wal>) -> HeadAppender<'a> {
        let (pending, buf) = head.buffers.lock().pop().unwrap_or_default();
        HeadAppender { head, wal, pending, new_series: Vec::new(), buf }
    }

    /// Appends a sample. With `r` from an earlier call for the same labels, the label lookup is
    /// skipped (as Prometheus' `Append(ref, ...)`); the series' ref is returned for next time.
    pub fn append_ref(&mut self, r: Option<SeriesRef>, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, Error> {
        let r = match r {
            Some(r) => r,
            None => self.series_ref(labels)?,
        };
        let placement = match self.head.check_and_reserve(r, t, v) {
            Err(Error::UnknownSeriesRef(_)) => {
                // A stale ref (the series was truncated away): find or create it again.
                let r = self.series_ref(labels)?;
                return self.append_ref(Some(r), labels, t, v);
            }
            other => other?,
        };
        if placement != Placement::Duplicate {
            self.pending.push(PendingSample { r, t, v });
        }
        Ok(r)
    }

    /// Appends a batch of samples (a scrape) as consecutive [`HeadAppender::append_ref`] calls
    /// would, each series stripe locked once per run of samples in it rather than once per
    /// sample. `refs[i]` is the cached ref of `samples[i]`'s labels (`None`: looked up) and is
    /// set to the series' ref; a sample that is rejected leaves the rest going on and comes back
    /// with its index and error (empty: all accepted). `refs` must be as long as `samples`.
    pub fn append_batch(
        &mut self,
        samples: &[(&Labels, i64, f64)],
        refs: &mut [Option<SeriesRef>],
    ) -> Vec<(usize, Error)> {
        let mut errors = Vec::new();
        // Series first (creating them takes other locks), then the checks, in order.
        for (i, ((labels, _, _), r)) in samples.iter().zip(refs.iter_mut()).enumerate() {
            if r.is_none() {
                match self.series_ref(labels) {
                    Ok(found) => *r = Some(found),
                    Err(e) => errors.push((i, e)),
                }
            }
        }
        let min_valid = self.head.min_valid_t.load(Ordering::Relaxed);
        let mut i = 0;
        while i < samples.len().min(refs.len()) {
            let Some(first) = refs[i] else {
                i += 1;
                continue;
            };
            let stripe_idx = stripe_no(first);
            let mut stripe = self.head.stripes[stripe_idx as usize].lock();
            while let Some(&Some(r)) = refs.get(i).filter(|r| r.is_some_and(|r| stripe_no(r) == stripe_idx)) {
                let (_, t, v) = samples[i];
                match self.head.check_and_reserve_locked(&mut stripe, min_valid, r, t, v) {
                    Ok(Placement::Duplicate) => {}
                    Ok(_) => self.pending.push(PendingSample { r, t, v }),
                    Err(Error::UnknownSeriesRef(_)) => {
                        // A stale ref: the one-sample path finds or creates the series again.
                        drop(stripe);
                        match self.append_ref(None, samples[i].0, t, v) {
                            Ok(found) => refs[i] = Some(found),
                            Err(e) => errors.push((i, e)),
                        }
                        i += 1;
                        break;
                    }
                    Err(e) => errors.push((i, e)),
                }
                i += 1;
            }
        }
        errors.sort_by_key(|e| e.0);
        errors
    }

    fn series_ref(&mut self, labels: &Labels) -> Result<SeriesRef, Error> {
        let (r, created) = self.head.get_or_create(labels)?;
        if created {
            self.new_series.push(r);
        }
        Ok(r)
    }

    /// Number of samples waiting for commit.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Writes the batch to the WAL (if any) and makes it visible. On a WAL error nothing of
    /// the batch is applied and the appender is empty.
    pub fn commit_batch(&mut self) -> Result<(), Error> {
        if let Some(wal) = self.wal {
            let mut series = self.head.take_unlogged();
            series.extend_from_slice(&self.new_series);
            if !series.is_empty() || !self.pending.is_empty() {
                self.buf.clear();
                let labeled: Vec<(SeriesRef, Labels)> =
                    series.iter().filter_map(|&r| Some((r, self.head.series_labels(r)?))).collect();
                crate::wal::encode_series(&mut self.buf, &labeled);
                crate::wal::encode_samples(&mut self.buf, &self.pending);
                if let Err(e) = wal.log(&self.buf) {
                    self.head.release_pending(&self.pending);
                    self.pending.clear();
                    self.head.remove_if_empty(&series);
                    self.head.return_unlogged(series);
                    return Err(Error::WalWrite(e));
                }
            }
        }
        self.head.apply(&self.pending);
        self.pending.clear();
        self.head.remove_if_empty(&self.new_series);
        self.new_series.clear();
        Ok(())
    }

    /// Drops the batch.
    pub fn rollback_batch(&mut self) {
        self.head.release_pending(&self.pending);
        self.pending.clear();
        self.head.remove_if_empty(&self.new_series);
        self.new_series.clear();
    }
}

impl Drop for HeadAppender<'_> {
    fn drop(&mut self) {
        if !self.pending.is_empty() || !self.new_series.is_empty() {
            self.rollback_batch();
        }
        let (mut pending, mut buf) = (std::mem::take(&mut self.pending), std::mem::take(&mut self.buf));
        if buf.capacity() <= 4 << 20 {
            pending.clear();
            buf.clear();
            let mut buffers = self.head.buffers.lock();
            if buffers.len() < 64 {
                buffers.push((pending, buf));
            }
        }
    }
}

impl Appender for HeadAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), StorageError> {
        self.append_ref(None, labels, t, v).map(|_| ()).map_err(StorageError::from)
    }

    fn append_cached(&mut self, series_ref: &mut u64, labels: &Labels, t: i64, v: f64) -> Result<(), StorageError> {
        // The slot holds ref + 1 (0 = none yet; ref 0 is a valid series).
        let given = series_ref.checked_sub(1).and_then(|r| SeriesRef::try_from(r).ok());
        let r = self.append_ref(given, labels, t, v).map_err(StorageError::from)?;
        *series_ref = u64::from(r) + 1;
        Ok(())
    }

    fn append_by_ref(&mut self, series_ref: u64, t: i64, v: f64) -> Result<bool, StorageError> {
        let Some(r) = series_ref.checked_sub(1).and_then(|r| SeriesRef::try_from(r).ok()) else { return Ok(false) };
        match self.head.check_and_reserve(r, t, v) {
            Ok(placement) => {
                if placement != Placement::Duplicate {
                    self.pending.push(PendingSample { r, t, v });
                }
                Ok(true)
            }
            Err(Error::UnknownSeriesRef(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        self.commit_batch().map_err(StorageError::from)
    }

    fn rollback(&mut self) {
        self.rollback_batch();
    }
}

impl sextant_model::Appendable for Head {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(Head::appender(self))
    }
}

impl sextant_model::Queryable for Head {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        Ok(Box::new(Head::querier(self, mint, maxt)))
    }
}

/// A reader of the head over `[mint, maxt]`.
#[derive(Debug)]
pub struct HeadQuerier<'a> {
    head: &'a Head,
    mint: i64,
    maxt: i64,
}

impl<'a> HeadQuerier<'a> {
    fn series(&self, r: SeriesRef, labels: Option<Labels>) -> Option<Series<'a>> {
        let (ids, data) = self.head.snapshot(r, self.mint, self.maxt)?;
        let labels = labels.unwrap_or_else(|| self.head.resolve(&ids));
        let mut samples = HeadSeriesIter::new(data, self.mint, self.maxt);
        // A chunk can overlap the range without a sample in it: such series are not selected.
        if samples.next() == ValueType::Exhausted {
            return None;
        }
        samples.primed = true;
        Some(Series { labels, samples: Box::new(samples) })
    }
}

impl HeadQuerier<'_> {
    /// The series label queries look at: `None` for all of them (no matchers and the whole
    /// head inside the range), else those matching with samples in the range.
    fn filter(&self, matchers: &[Matcher]) -> Option<RoaringBitmap> {
        let covered = self.head.time_range().is_some_and(|(min, max)| self.mint <= min && max <= self.maxt);
        if matchers.is_empty() && covered {
            return None;
        }
        let mut bitmap = self.head.postings_for_matchers(matchers);
        if !covered {
            bitmap = bitmap.into_iter().filter(|&r| self.head.has_data_in(r, self.mint, self.maxt)).collect();
        }
        Some(bitmap)
    }
}

impl Querier for HeadQuerier<'_> {
    fn select(
        &self,
        sorted: bool,
        _hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet<'_>, StorageError> {
        let bitmap = self.head.postings_for_matchers(matchers);
        if sorted {
            let mut labeled: Vec<(Labels, SeriesRef)> =
                bitmap.iter().filter_map(|r| Some((self.head.series_labels(r)?, r))).collect();
            labeled.sort_unstable();
            Ok(Box::new(labeled.into_iter().filter_map(move |(labels, r)| self.series(r, Some(labels)).map(Ok))))
        } else {
            Ok(Box::new(bitmap.into_iter().filter_map(move |r| self.series(r, None).map(Ok))))
        }
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let filter = self.filter(matchers);
        let symbols = self.head.symbols.read();
        let postings = self.head.postings.read();
        let mut values: Vec<String> = symbols
            .ids
            .get(name)
            .and_then(|id| postings.by_name.get(id))
            .into_iter()
            .flatten()
            .filter(|(_, b)| filter.as_ref().is_none_or(|f| !f.is_disjoint(b)))
            .map(|(v, _)| symbols.get(*v).to_string())
            .collect();
        values.sort_unstable();
        Ok(values)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let filter = self.filter(matchers);
        let symbols = self.head.symbols.read();
        let postings = self.head.postings.read();
        let mut names: Vec<String> = postings
            .by_name
            .iter()
            .filter(|(_, values)| filter.as_ref().is_none_or(|f| values.values().any(|b| !f.is_disjoint(b))))
            .map(|(n, _)| symbols.get(*n).to_string())
            .collect();
        names.sort_unstable();
        Ok(names)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IterState {
    Fresh,
    FromInOrder,
    FromOutOfOrder,
    Done,
}

/// Iterates a snapshot of one series: its in-order chunks merged with out-of-order samples,
/// clipped to the querier's range.
struct HeadSeriesIter {
    chunks: Vec<(i64, Arc<[u8]>)>,
    next_chunk: usize,
    cur: Option<(i64, StoredIterator<Arc<[u8]>>)>,
    peek: Option<(i64, f64)>,
    ooo: Vec<(i64, f64)>,
    ooo_pos: usize,
    mint: i64,
    maxt: i64,
    at: (i64, f64),
    state: IterState,
    /// `next` was called once already to see whether the series has samples in range.
    primed: bool,
}

impl HeadSeriesIter {
    fn new(data: SeriesData, mint: i64, maxt: i64) -> HeadSeriesIter {
        HeadSeriesIter {
            chunks: data.chunks,
            next_chunk: 0,
            cur: None,
            peek: None,
            ooo: data.ooo,
            ooo_pos: 0,
            mint,
            maxt,
            at: (0, 0.0),
            state: IterState::Fresh,
            primed: false,
        }
    }

    /// The next in-order sample with `t >= min`.
    fn pull(&mut self, min: i64) -> Option<(i64, f64)> {
        loop {
            if let Some((chunk_maxt, it)) = &mut self.cur {
                if *chunk_maxt >= min {
                    while it.next_sample() {
                        let (t, v) = it.at();
                        if t > self.maxt {
                            self.cur = None;
                            self.next_chunk = self.chunks.len();
                            return None;
                        }
                        if t >= min {
                            return Some((t, v));
                        }
                    }
                }
                self.cur = None;
            }
            let (chunk_maxt, data) = self.chunks.get(self.next_chunk)?;
            self.cur = Some((*chunk_maxt, StoredIterator::new(data.clone())));
            self.next_chunk += 1;
        }
    }

    fn pick(&mut self) -> ValueType {
        let ooo = self.ooo.get(self.ooo_pos).copied();
        match (self.peek, ooo) {
            (Some(a), Some(b)) if b.0 < a.0 => {
                self.at = b;
                self.state = IterState::FromOutOfOrder;
            }
            (Some(a), b) => {
                if b.is_some_and(|b| b.0 == a.0) {
                    self.ooo_pos += 1;
                }
                self.at = a;
                self.state = IterState::FromInOrder;
            }
            (None, Some(b)) => {
                self.at = b;
                self.state = IterState::FromOutOfOrder;
            }
            (None, None) => {
                self.state = IterState::Done;
                return ValueType::Exhausted;
            }
        }
        ValueType::Float
    }
}

impl SampleIterator for HeadSeriesIter {
    fn next(&mut self) -> ValueType {
        if self.primed {
            self.primed = false;
            return ValueType::Float;
        }
        match self.state {
            IterState::Done => return ValueType::Exhausted,
            IterState::Fresh | IterState::FromInOrder => self.peek = self.pull(self.mint),
            IterState::FromOutOfOrder => self.ooo_pos += 1,
        }
        self.pick()
    }

    fn seek(&mut self, t: i64) -> ValueType {
        self.primed = false;
        match self.state {
            IterState::Done => return ValueType::Exhausted,
            IterState::Fresh => {}
            _ if self.at.0 >= t => return ValueType::Float,
            _ => {}
        }
        let t = t.max(self.mint);
        if self.state == IterState::Fresh || self.peek.is_some_and(|p| p.0 < t) {
            self.peek = self.pull(t);
        }
        while self.ooo.get(self.ooo_pos).is_some_and(|s| s.0 < t) {
            self.ooo_pos += 1;
        }
        self.pick()
    }

    fn at(&self) -> (i64, f64) {
        self.at
    }
}

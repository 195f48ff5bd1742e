//! The storage seams, named as in Prometheus' `storage/interface.go`, and an in-memory
//! implementation of them for tests.
//!
//! Writers take an [`Appender`] from an [`Appendable`], add samples and `commit` (or
//! `rollback`) the batch. Readers open a [`Querier`] over a time range from a [`Queryable`] and
//! `select` series with matchers; each [`Series`] iterates its samples with `next` and `seek`,
//! so a reader never materialises what it does not need.

use std::collections::BTreeMap;
use std::sync::RwLock;

use crate::labels::Labels;
use crate::matcher::{matches_all, Matcher};

/// Errors of the storage seams.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("out of order sample for series {labels} at {t}")]
    OutOfOrderSample { labels: Labels, t: i64 },
    #[error("duplicate sample for timestamp {t} with a different value for series {labels}")]
    DuplicateSampleForTimestamp { labels: Labels, t: i64 },
    #[error("out of bounds: sample at {t} for series {labels} is outside the writable time range")]
    OutOfBounds { labels: Labels, t: i64 },
    #[error("series has no metric name or invalid labels: {labels}")]
    InvalidLabels { labels: Labels },
    #[error("storage is closed")]
    Closed,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An error of a particular storage implementation, for errors the seam has no name for.
    #[error("{0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// Something samples can be written to.
pub trait Appendable: Send + Sync {
    /// A new, empty batch.
    fn appender(&self) -> Box<dyn Appender + '_>;
}

/// One batch of writes. Samples become visible to readers at `commit`. Within a series order is
/// kept: an older timestamp than the newest committed one is rejected (unless the storage has
/// an out-of-order window), an identical sample again is accepted silently, and another value
/// at the same timestamp is rejected.
pub trait Appender {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), StorageError>;
    /// [`Appender::append`] with a caller-kept slot for the storage's reference to the series
    /// (Prometheus' `Append(ref, …)`): a storage with references leaves one in `*series_ref`
    /// (0 = none yet) and, given it back with the same labels, skips the label lookup. A
    /// slot belongs to one label set and one storage. By default, a plain `append`.
    fn append_cached(&mut self, series_ref: &mut u64, labels: &Labels, t: i64, v: f64) -> Result<(), StorageError> {
        let _ = series_ref;
        self.append(labels, t, v)
    }
    /// Appends to the series a slot filled by [`Appender::append_cached`] refers to, without
    /// its labels. `Ok(false)` when the storage cannot (the slot is 0, the series is gone, or
    /// the storage keeps no references; the default): the caller then appends with the labels.
    fn append_by_ref(&mut self, series_ref: u64, t: i64, v: f64) -> Result<bool, StorageError> {
        let _ = (series_ref, t, v);
        Ok(false)
    }
    /// Makes the batch visible and durable (per the storage's sync policy). The appender is
    /// empty afterwards and may be reused.
    fn commit(&mut self) -> Result<(), StorageError>;
    /// Drops the batch. The appender is empty afterwards and may be reused.
    fn rollback(&mut self);
}

/// Something that can be read over time ranges.
pub trait Queryable: Send + Sync {
    /// A reader of samples with timestamps in `[mint, maxt]`, inclusive.
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError>;
}

/// What a query engine tells storage about a `select`, so it can skip work.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectHints {
    /// Start and end of the samples needed, in ms.
    pub start: i64,
    pub end: i64,
    /// Query step in ms, 0 for instant queries.
    pub step: i64,
    /// The function around the selector (`rate`, `series` for metadata-only calls…).
    pub func: Option<String>,
    /// The range of a range selector in ms.
    pub range: i64,
}

/// A reader over a fixed time range.
pub trait Querier {
    /// The series matching all `matchers`, sorted by labels when `sorted` is true.
    fn select(
        &self,
        sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet<'_>, StorageError>;

    /// Sorted unique values of label `name` among series matching `matchers` (all series when
    /// empty).
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;

    /// Sorted unique label names among series matching `matchers` (all series when empty).
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;
}

/// The result of a `select`: series one at a time.
pub type SeriesSet<'a> = Box<dyn Iterator<Item = Result<Series<'a>, StorageError>> + 'a>;

/// One selected series: its labels and an iterator over its samples.
pub struct Series<'a> {
    pub labels: Labels,
    pub samples: Box<dyn SampleIterator + 'a>,
}

impl std::fmt::Debug for Series<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series").field("labels", &self.labels).finish_non_exhaustive()
    }
}

/// What an iterator stands on after `next` or `seek`. Native histograms will add variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueType {
    /// The iterator is exhausted (or failed: see [`SampleIterator::err`]).
    Exhausted,
    Float,
}

/// Iterates the samples of one series in timestamp order, like Prometheus' `chunkenc.Iterator`.
pub trait SampleIterator {
    /// Moves to the next sample.
    fn next(&mut self) -> ValueType;
    /// Moves to the first sample with timestamp `>= t`. Does not move if the current sample
    /// already qualifies; never moves backwards.
    fn seek(&mut self, t: i64) -> ValueType;
    /// The current sample; only valid after `next` or `seek` returned `Float`.
    fn at(&self) -> (i64, f64);
    /// The error that ended the iteration, if any.
    fn err(&self) -> Option<&StorageError> {
        None
    }
    /// The current sample and all after it (every sample when neither `next` nor `seek` was
    /// called), handed over at once by an iterator that already holds them in a buffer, so a
    /// reader that wants them all does not copy them one `next`/`at` at a time. The iterator
    /// is exhausted afterwards. `None` (the default) when the iterator has no such buffer; it is
    /// then unchanged and is read with `next`/`at`.
    fn take_buffered(&mut self) -> Option<Vec<(i64, f64)>> {
        None
    }
}

/// A [`SampleIterator`] over `(t, v)` pairs sorted by `t`, borrowed (`&[(i64, f64)]`) or owned
/// (`Vec<(i64, f64)>`, see [`VecIterator`]).
#[derive(Debug)]
pub struct SliceIterator<S = Vec<(i64, f64)>> {
    samples: S,
    /// Index of the current sample plus one; 0 before the first `next`.
    pos: usize,
}

/// A [`SampleIterator`] that owns its samples.
pub type VecIterator = SliceIterator<Vec<(i64, f64)>>;

impl<S: AsRef<[(i64, f64)]>> SliceIterator<S> {
    pub fn new(samples: S) -> SliceIterator<S> {
        SliceIterator { samples, pos: 0 }
    }
}

impl<S: AsRef<[(i64, f64)]> + Default + Into<Vec<(i64, f64)>>> SampleIterator for SliceIterator<S> {
    fn next(&mut self) -> ValueType {
        let samples = self.samples.as_ref();
        if self.pos < samples.len() {
            self.pos += 1;
            ValueType::Float
        } else {
            self.pos = samples.len() + 1;
            ValueType::Exhausted
        }
    }

    fn seek(&mut self, t: i64) -> ValueType {
        let samples = self.samples.as_ref();
        if self.pos > samples.len() {
            return ValueType::Exhausted;
        }
        let from = self.pos.saturating_sub(1);
        let idx = from + samples[from..].partition_point(|s| s.0 < t);
        self.pos = idx + 1;
        if idx < samples.len() {
            ValueType::Float
        } else {
            ValueType::Exhausted
        }
    }

    fn at(&self) -> (i64, f64) {
        self.samples.as_ref()[self.pos - 1]
    }

    fn take_buffered(&mut self) -> Option<Vec<(i64, f64)>> {
        let len = self.samples.as_ref().len();
        let from = self.pos.saturating_sub(1).min(len);
        // Owned samples move out without a copy; borrowed ones are copied once.
        let mut samples: Vec<(i64, f64)> = std::mem::take(&mut self.samples).into();
        samples.drain(..from);
        self.pos = 1; // beyond the (now empty) samples: exhausted
        Some(samples)
    }
}

/// A complete in-memory storage: for tests of everything that reads or writes through the
/// seams. Not built for speed.
#[derive(Debug, Default)]
pub struct MemStorage {
    series: RwLock<BTreeMap<Labels, Vec<(i64, f64)>>>,
}

impl MemStorage {
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// Number of series stored.
    pub fn n_series(&self) -> usize {
        self.series.read().expect("lock poisoned").len()
    }
}

impl Appendable for MemStorage {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(MemAppender { storage: self, pending: Vec::new() })
    }
}

#[derive(Debug)]
struct MemAppender<'a> {
    storage: &'a MemStorage,
    pending: Vec<(Labels, i64, f64)>,
}

impl Appender for MemAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), StorageError> {
        if labels.metric_name().is_none() && labels.is_empty() {
            return Err(StorageError::InvalidLabels { labels: labels.clone() });
        }
        let series = self.storage.series.read().expect("lock poisoned");
        let newest_pending = self.pending.iter().rev().find(|p| &p.0 == labels).map(|p| (p.1, p.2));
        let newest = newest_pending.or_else(|| series.get(labels).and_then(|s| s.last().copied()));
        if let Some((last_t, last_v)) = newest {
            if t < last_t {
                // A resend of a committed sample (a retry whose answer was lost) is accepted
                // and changes nothing; anything else older than the newest is out of order.
                let stored =
                    series.get(labels).and_then(|s| s.binary_search_by_key(&t, |p| p.0).ok().map(|i| s[i].1.to_bits()));
                if stored == Some(v.to_bits()) {
                    return Ok(());
                }
                return Err(StorageError::OutOfOrderSample { labels: labels.clone(), t });
            }
            if t == last_t {
                if last_v.to_bits() == v.to_bits() {
                    return Ok(());
                }
                return Err(StorageError::DuplicateSampleForTimestamp { labels: labels.clone(), t });
            }
        }
        self.pending.push((labels.clone(), t, v));
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        let mut series = self.storage.series.write().expect("lock poisoned");
        for (labels, t, v) in self.pending.drain(..) {
            series.entry(labels).or_default().push((t, v));
        }
        Ok(())
    }

    fn rollback(&mut self) {
        self.pending.clear();
    }
}

impl Queryable for MemStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        let series = self.series.read().expect("lock poisoned");
        // Copy the range out: a querier is a consistent view even while writers go on.
        let view = series
            .iter()
            .map(|(labels, samples)| {
                let lo = samples.partition_point(|s| s.0 < mint);
                let hi = samples.partition_point(|s| s.0 <= maxt);
                (labels.clone(), samples[lo..hi].to_vec())
            })
            .filter(|(_, samples)| !samples.is_empty())
            .collect();
        Ok(Box::new(MemQuerier { series: view }))
    }
}

#[derive(Debug)]
struct MemQuerier {
    series: Vec<(Labels, Vec<(i64, f64)>)>,
}

impl MemQuerier {
    fn matching<'a>(&'a self, matchers: &'a [Matcher]) -> impl Iterator<Item = &'a (Labels, Vec<(i64, f64)>)> + 'a {
        self.series.iter().filter(move |(labels, _)| matches_all(matchers, labels))
    }
}

impl Querier for MemQuerier {
    fn select(
        &self,
        _sorted: bool,
        _hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet<'_>, StorageError> {
        // Always sorted: the view comes from a BTreeMap.
        let selected: Vec<Series<'_>> = self
            .series
            .iter()
            .filter(|(labels, _)| matches_all(matchers, labels))
            .map(|(labels, samples)| Series {
                labels: labels.clone(),
                samples: Box::new(SliceIterator::new(samples.as_slice())),
            })
            .collect();
        Ok(Box::new(selected.into_iter().map(Ok)))
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut values: Vec<String> =
            self.matching(matchers).filter_map(|(labels, _)| labels.get(name).map(str::to_string)).collect();
        values.sort_unstable();
        values.dedup();
        Ok(values)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut names: Vec<String> =
            self.matching(matchers).flat_map(|(labels, _)| labels.iter().map(|l| l.name.to_string())).collect();
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MatchOp;

    fn up(job: &str) -> Labels {
        Labels::from_pairs([("__name__", "up"), ("job", job)])
    }

    fn collect(iter: &mut dyn SampleIterator) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        while iter.next() == ValueType::Float {
            out.push(iter.at());
        }
        out
    }

    #[test]
    fn slice_iterator_seek_semantics() {
        let data = [(10, 1.0), (20, 2.0), (30, 3.0)];
        let mut it = SliceIterator::new(&data[..]);
        assert_eq!(it.seek(15), ValueType::Float);
        assert_eq!(it.at(), (20, 2.0));
        // Seeking backwards stays put.
        assert_eq!(it.seek(5), ValueType::Float);
        assert_eq!(it.at(), (20, 2.0));
        assert_eq!(it.next(), ValueType::Float);
        assert_eq!(it.at(), (30, 3.0));
        assert_eq!(it.seek(31), ValueType::Exhausted);
        assert_eq!(it.next(), ValueType::Exhausted);
        let mut it = SliceIterator::new(&data[..]);
        assert_eq!(collect(&mut it), data);
    }

    #[test]
    fn take_buffered_hands_over_the_rest() {
        let data = vec![(10, 1.0), (20, 2.0), (30, 3.0)];
        let check = |moves: &[Option<i64>], expected: &[(i64, f64)]| {
            for owned in [false, true] {
                let mut it: Box<dyn SampleIterator> = if owned {
                    Box::new(VecIterator::new(data.clone()))
                } else {
                    Box::new(SliceIterator::new(&data[..]))
                };
                for m in moves {
                    match m {
                        Some(t) => it.seek(*t),
                        None => it.next(),
                    };
                }
                assert_eq!(it.take_buffered().as_deref(), Some(expected), "{moves:?} owned {owned}");
                assert_eq!(it.next(), ValueType::Exhausted);
                assert_eq!(it.take_buffered(), Some(Vec::new()));
            }
        };
        check(&[], &data);
        check(&[None], &data);
        check(&[None, None], &data[1..]);
        check(&[Some(15)], &data[1..]);
        check(&[Some(30)], &data[2..]);
        check(&[Some(31)], &[]);
        check(&[None, None, None, None], &[]);
    }

    #[test]
    fn append_rules_and_commit_visibility() {
        let db = MemStorage::new();
        let mut app = db.appender();
        app.append(&up("a"), 10, 1.0).unwrap();
        app.append(&up("a"), 10, 1.0).unwrap(); // identical duplicate: accepted
        assert!(matches!(app.append(&up("a"), 10, 2.0), Err(StorageError::DuplicateSampleForTimestamp { .. })));
        assert!(matches!(app.append(&up("a"), 5, 2.0), Err(StorageError::OutOfOrderSample { .. })));
        assert_eq!(db.n_series(), 0, "nothing visible before commit");
        app.commit().unwrap();
        assert_eq!(db.n_series(), 1);
        // A resend of a committed older sample is accepted without change; another value or
        // time is out of order.
        app.append(&up("a"), 20, 2.0).unwrap();
        app.commit().unwrap();
        app.append(&up("a"), 10, 1.0).unwrap();
        assert!(matches!(app.append(&up("a"), 10, 3.0), Err(StorageError::OutOfOrderSample { .. })));
        assert!(matches!(app.append(&up("a"), 15, 1.0), Err(StorageError::OutOfOrderSample { .. })));
        app.commit().unwrap();
        let q = db.querier(0, 100).unwrap();
        let all: Vec<_> = q.select(true, None, &[]).unwrap().collect();
        assert_eq!(all.len(), 1);
        app.append(&up("b"), 1, 1.0).unwrap();
        app.rollback();
        app.commit().unwrap();
        assert_eq!(db.n_series(), 1);
    }

    #[test]
    fn select_with_matchers_and_time_range() {
        let db = MemStorage::new();
        let mut app = db.appender();
        for t in 0..10 {
            app.append(&up("a"), t * 10, t as f64).unwrap();
            app.append(&up("b"), t * 10, -(t as f64)).unwrap();
        }
        app.commit().unwrap();
        let q = db.querier(20, 40).unwrap();
        let matchers = [Matcher::new(MatchOp::RegexMatch, "job", "a|c").unwrap()];
        let mut set = q.select(true, None, &matchers).unwrap();
        let mut series = set.next().unwrap().unwrap();
        assert_eq!(series.labels, up("a"));
        assert_eq!(collect(&mut *series.samples), [(20, 2.0), (30, 3.0), (40, 4.0)]);
        assert!(set.next().is_none());
        assert_eq!(q.label_values("job", &[]).unwrap(), ["a", "b"]);
        assert_eq!(q.label_names(&matchers).unwrap(), ["__name__", "job"]);
    }
}

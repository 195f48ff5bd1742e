//! The vocabulary every Sextant crate speaks.
//!
//! - [`Labels`] (sorted, unique names, cheap clones, [`Labels::stable_hash`]) and
//!   [`LabelsBuilder`];
//! - [`Matcher`] with [`MatchOp`]: `=`, `!=`, `=~`, `!~` with Prometheus' semantics;
//! - time as `i64` milliseconds, [`Sample`], the stale marker ([`stale_nan`], [`is_stale`]);
//! - the seams between crates: [`Appendable`]/[`Appender`] for writers,
//!   [`Queryable`]/[`Querier`]/[`SeriesSet`]/[`SampleIterator`] for readers, and [`Clock`],
//!   with in-memory implementations ([`MemStorage`], [`ManualClock`]) for tests;
//! - the wire codecs: [`exposition`] (text format 0.0.4 and OpenMetrics 1.0: streaming
//!   [`exposition::Parser`], [`exposition::encode`], content negotiation) and [`remote`]
//!   (remote write 1.0/2.0 and remote read messages, snappy and streamed framing).
//!
//! This crate does no IO and uses no async runtime.
//!
//! ```
//! use sextant_model::{Appendable, Labels, MatchOp, Matcher, MemStorage, Queryable, ValueType};
//!
//! let db = MemStorage::new();
//! let mut app = db.appender();
//! let series = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
//! app.append(&series, 1_000, 1.0)?;
//! app.commit()?;
//!
//! let querier = db.querier(0, 2_000)?;
//! let job = Matcher::new(MatchOp::RegexMatch, "job", "node|db")?;
//! let mut found = querier.select(true, None, &[job])?.next().unwrap()?;
//! assert_eq!(found.labels.metric_name(), Some("up"));
//! assert_eq!(found.samples.next(), ValueType::Float);
//! assert_eq!(found.samples.at(), (1_000, 1.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod clock;
mod duration;
mod error;
pub mod exposition;
mod gostr;
mod labels;
mod matcher;
pub mod remote;
mod sample;
mod storage;

pub use clock::{Clock, ManualClock, SystemClock};
pub use duration::{parse_duration_ms, DisplayDuration, DurationError};
pub use error::Error;
pub use gostr::{go_quote, go_unquote, write_go_quoted};
pub use labels::{
    is_valid_legacy_label_name, is_valid_legacy_metric_name, Label, Labels, LabelsBuilder, NameValidation, METRIC_NAME,
};
pub use matcher::{matches_all, MatchOp, Matcher};
pub use sample::{is_stale, stale_nan, timestamp_ms, Sample, STALE_NAN_BITS};
pub use storage::{
    Appendable, Appender, MemStorage, Querier, Queryable, SampleIterator, SelectHints, Series, SeriesSet,
    SliceIterator, StorageError, ValueType, VecIterator,
};

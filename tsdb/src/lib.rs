//! Sextant's time-series database: the head, its chunks, its write-ahead log and persisted
//! blocks.
//!
//! - [`XorChunk`] / [`XorIterator`]: Gorilla chunks in Prometheus' XOR byte layout (so chunks
//!   go to remote-read clients untouched);
//! - [`Head`]: in-memory series keyed by label set over a symbol table (full chunks held
//!   packed — decimal deltas at a fixed bit width — when smaller than XOR), roaring-bitmap
//!   postings per label pair, [`HeadAppender`] (commit/rollback, typed errors for
//!   out-of-order and conflicting samples, optional out-of-order window) and [`HeadQuerier`];
//! - [`Db`]: a head with its WAL ([`WalOptions`], [`SyncPolicy`]) in a locked directory,
//!   replayed in parallel at open ([`ReplayStats`]); full chunks are also written to
//!   `chunks_head/` as they are cut, so a replay after a crash loads them and skips their WAL
//!   samples; a clean `close` writes a chunk snapshot
//!   that the next open loads instead of replaying samples; [`Db::truncate`] is the hook that
//!   checkpoints the WAL once blocks hold the old data; implements `sextant_model`'s
//!   `Appendable` and `Queryable`;
//! - [`FileSystem`]: the file layer under the WAL, with [`FaultyFileSystem`] for tests;
//! - [`Block`] ([`write_block`], [`open_blocks`], [`BlockMeta`]): immutable directories of
//!   compressed series (zstd column frames, decimal/constant/delta-of-delta value codecs), an
//!   index with roaring postings, tombstones and `meta.json`, read through mmap;
//!   [`Db::compact`] cuts the head into blocks, merges overlapping and levelled blocks (streaming,
//!   series by series, through [`BlockWriter`]) and applies retention; [`Db::spawn_compactor`]
//!   runs it in the background ([`Compactor`]); [`DbQuerier`] merges head and blocks; [`Db::delete`], [`Db::clean_tombstones`],
//!   [`Db::snapshot`].
//!
//! `tsdb/FORMAT.md` documents the bytes of chunks, WAL segments and blocks.
//!
//! ```
//! use sextant_model::{Labels, MatchOp, Matcher, Querier, ValueType};
//! use sextant_tsdb::{Db, Options};
//!
//! let dir = tempfile::tempdir()?;
//! let series = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
//! {
//!     let db = Db::open(dir.path(), Options::default())?;
//!     let mut app = db.appender();
//!     app.append_ref(None, &series, 1_000, 1.0)?;
//!     app.commit_batch()?;
//!     drop(app);
//!     db.close()?;
//! }
//! let db = Db::open(dir.path(), Options::default())?; // replays the WAL
//! let querier = db.querier(0, 2_000);
//! let job = Matcher::new(MatchOp::RegexMatch, "job", "node|db")?;
//! let mut found = querier.select(true, None, &[job])?.next().unwrap()?;
//! assert_eq!(found.labels, series);
//! assert_eq!(found.samples.next(), ValueType::Float);
//! assert_eq!(found.samples.at(), (1_000, 1.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod block;
mod chunk;
mod chunks_head;
mod compact;
mod db;
mod error;
mod fs;
mod head;
mod packed;
mod wal;

pub use block::{
    new_ulid, open_blocks, write_block, Block, BlockMeta, BlockSeriesIter, BlockStats, BlockWriter, ColumnStats,
    EncodingStats, FailedBlock, IndexBytes, SeriesData, BLOCK_FORMAT_VERSION, VALUE_ENCODINGS,
};
pub use chunk::{XorChunk, XorIterator, SAMPLES_PER_CHUNK};
pub use db::{CompactStats, Compactor, CompactorState, Db, DbQuerier, Options};
pub use error::Error;
pub use fs::{AppendFile, FaultyFileSystem, FileBytes, FileSystem, StdFileSystem, SyncHandle};
pub use head::{Head, HeadAppender, HeadOptions, HeadQuerier, HeadStats, SeriesRef};
pub use wal::{ReplayStats, SyncPolicy, Wal, WalOptions};

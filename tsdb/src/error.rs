use std::path::PathBuf;

use sextant_model::{Labels, StorageError};

/// Errors of the TSDB, by operation: append, open, WAL IO.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("out of order sample for series {labels} at {t}")]
    OutOfOrderSample { labels: Labels, t: i64 },
    #[error("duplicate sample for timestamp {t} with a different value for series {labels}")]
    DuplicateSampleForTimestamp { labels: Labels, t: i64 },
    #[error("out of bounds: sample at {t} for series {labels} is older than the head's minimum time {min_t}")]
    OutOfBounds { labels: Labels, t: i64, min_t: i64 },
    #[error("invalid series labels: {labels}")]
    InvalidLabels { labels: Labels },
    #[error("unknown series reference {0}")]
    UnknownSeriesRef(u32),
    #[error("the head is full: no more series references")]
    TooManySeries,
    #[error("{path}: database directory is locked by another process")]
    Locked { path: PathBuf },
    #[error("opening {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("writing the WAL: {0}")]
    WalWrite(std::io::Error),
    #[error("checkpointing the WAL: {0}")]
    Checkpoint(std::io::Error),
    #[error("writing the chunk snapshot: {0}")]
    Snapshot(std::io::Error),
    #[error("block {path}: {message}")]
    Block { path: PathBuf, message: String },
    #[error("the database is closed")]
    Closed,
}

impl From<Error> for StorageError {
    fn from(e: Error) -> StorageError {
        match e {
            Error::OutOfOrderSample { labels, t } => StorageError::OutOfOrderSample { labels, t },
            Error::DuplicateSampleForTimestamp { labels, t } => StorageError::DuplicateSampleForTimestamp { labels, t },
            Error::OutOfBounds { labels, t, .. } => StorageError::OutOfBounds { labels, t },
            Error::InvalidLabels { labels } => StorageError::InvalidLabels { labels },
            Error::Closed => StorageError::Closed,
            other => StorageError::Backend(Box::new(other)),
        }
    }
}

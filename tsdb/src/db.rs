//! A database directory: the head, its WAL and the lock file.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sextant_model::{Appendable, Appender, Matcher, Querier, Queryable, StorageError};

use crate::fs::{FileSystem, StdFileSystem};
use crate::head::{Head, HeadAppender, HeadOptions, HeadQuerier};
use crate::wal::{self, ReplayStats, Wal, WalOptions};
use crate::Error;

/// Settings of a [`Db`].
#[derive(Debug, Clone)]
pub struct Options {
    pub head: HeadOptions,
    /// `None`: no WAL (nothing survives a restart).
    pub wal: Option<WalOptions>,
    /// The file layer under the WAL (a [`crate::FaultyFileSystem`] in tests).
    pub fs: Arc<dyn FileSystem>,
}

impl Default for Options {
    fn default() -> Options {
        Options { head: HeadOptions::default(), wal: Some(WalOptions::default()), fs: Arc::new(StdFileSystem) }
    }
}

/// A database opened on a directory: `DIR/lock` (held with `flock` while open), `DIR/wal/`.
#[derive(Debug)]
pub struct Db {
    dir: PathBuf,
    head: Head,
    wal: Option<Wal>,
    replay: ReplayStats,
    _lock: File,
}

impl Db {
    /// Opens (creating if needed) the database in `dir` and replays its WAL. Damaged WAL
    /// records are skipped and counted in [`Db::replay_stats`]; they never fail the open.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Db, Error> {
        let dir = dir.as_ref().to_path_buf();
        let open_err = |path: &Path, source| Error::Open { path: path.to_path_buf(), source };
        std::fs::create_dir_all(&dir).map_err(|e| open_err(&dir, e))?;
        let lock_path = dir.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| open_err(&lock_path, e))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(Error::Locked { path: dir });
        }
        let head = Head::new(opts.head.clone());
        let wal_dir = dir.join("wal");
        let (wal, replay) = match opts.wal {
            Some(wal_opts) => {
                let stats = wal::replay(&*opts.fs, &wal_dir, &head, wal_opts.replay_threads)
                    .map_err(|e| open_err(&wal_dir, e))?;
                // Series whose samples were all lost or never came (their batch failed).
                head.truncate(i64::MIN);
                let wal = Wal::open(opts.fs.clone(), &wal_dir, wal_opts).map_err(|e| open_err(&wal_dir, e))?;
                (Some(wal), stats)
            }
            None => (None, ReplayStats::default()),
        };
        Ok(Db { dir, head, wal, replay, _lock: lock })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    /// What the WAL replay at open found.
    pub fn replay_stats(&self) -> &ReplayStats {
        &self.replay
    }

    /// A batch writer; `commit` writes the batch to the WAL, then makes it visible.
    pub fn appender(&self) -> HeadAppender<'_> {
        HeadAppender::new(&self.head, self.wal.as_ref())
    }

    /// A reader of samples in `[mint, maxt]`.
    pub fn querier(&self, mint: i64, maxt: i64) -> HeadQuerier<'_> {
        self.head.querier(mint, maxt)
    }

    /// Deletes samples in `[mint, maxt]` of the series matching `matchers` (logged as
    /// tombstones).
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<(), Error> {
        let refs = self.head.delete(matchers, mint, maxt);
        if let Some(wal) = &self.wal {
            let tombstones: Vec<_> = refs.into_iter().map(|r| (r, mint, maxt)).collect();
            let mut buf = Vec::new();
            wal::encode_tombstones(&mut buf, &tombstones);
            wal.log(&buf).map_err(Error::WalWrite)?;
        }
        Ok(())
    }

    /// The hook for the block writer: once everything before `mint` is persisted, drops it from
    /// the head and checkpoints the WAL (complete segments are folded into
    /// `wal/checkpoint.N` keeping only live series and samples at or after `mint`).
    pub fn truncate(&self, mint: i64) -> Result<(), Error> {
        self.head.truncate(mint);
        if let Some(wal) = &self.wal {
            wal.checkpoint(&self.head, mint).map_err(Error::Checkpoint)?;
        }
        Ok(())
    }

    /// fsyncs the WAL now, whatever the sync policy.
    pub fn sync(&self) -> Result<(), Error> {
        match &self.wal {
            Some(wal) => wal.sync().map_err(Error::WalWrite),
            None => Ok(()),
        }
    }

    /// The WAL, if the database has one.
    pub fn wal(&self) -> Option<&Wal> {
        self.wal.as_ref()
    }

    /// Clean shutdown: writes the chunk snapshot (unless disabled), stops the WAL syncer,
    /// syncs, releases the lock.
    pub fn close(mut self) -> Result<(), Error> {
        if let Some(wal) = &mut self.wal {
            if wal.snapshot_on_close() {
                wal.snapshot(&self.head).map_err(Error::Snapshot)?;
            }
            wal.close().map_err(Error::WalWrite)?;
        }
        Ok(())
    }
}

impl Appendable for Db {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(Db::appender(self))
    }
}

impl Queryable for Db {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        Ok(Box::new(Db::querier(self, mint, maxt)))
    }
}

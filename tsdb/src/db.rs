//! A database directory: the head, its WAL, the persisted blocks and the lock file.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use sextant_model::{
    Appendable, Appender, MatchOp, Matcher, Querier, Queryable, SampleIterator, SelectHints, Series, SeriesSet,
    StorageError, ValueType, VecIterator,
};

use crate::block::{open_blocks, Block, BlockWriter, FailedBlock, SeriesData};
use crate::chunks_head::{self, ChunkDisk};
use crate::compact;

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
    /// Time range of a block cut from the head, ms (default 2 h). The head is cut once it spans
    /// more than 1.5 times this.
    pub block_range_ms: i64,
    /// Blocks whose newest sample is older than this (relative to the newest sample of the
    /// database) are deleted at compaction; `None` keeps everything.
    pub retention_ms: Option<i64>,
    /// Oldest blocks are deleted at compaction while all blocks together exceed this many bytes.
    pub retention_bytes: Option<u64>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            head: HeadOptions::default(),
            wal: Some(WalOptions::default()),
            fs: Arc::new(StdFileSystem),
            block_range_ms: 2 * 3_600_000,
            retention_ms: None,
            retention_bytes: None,
        }
    }
}

/// A database opened on a directory: `DIR/lock` (held with `flock` while open), `DIR/wal/`,
/// one directory per block (`DIR/<ulid>/`).
#[derive(Debug)]
pub struct Db {
    dir: PathBuf,
    head: Head,
    wal: Option<Wal>,
    replay: ReplayStats,
    blocks: RwLock<Vec<Arc<Block>>>,
    failed_blocks: Vec<FailedBlock>,
    /// Head data before this is persisted in blocks.
    persisted_until: AtomicI64,
    compaction: Mutex<()>,
    block_range: i64,
    retention_ms: Option<i64>,
    retention_bytes: Option<u64>,
    _lock: File,
}

/// What one [`Db::compact`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Blocks cut from the head.
    pub head_blocks: usize,
    /// Merges of existing blocks.
    pub merges: usize,
    /// Blocks deleted by retention.
    pub deleted: usize,
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
        let (blocks, failed_blocks) = open_blocks(&dir)?;
        let persisted = blocks.iter().map(|b| b.meta().max_time.saturating_add(1)).max().unwrap_or(i64::MIN);
        let wal_dir = dir.join("wal");
        let (wal, replay) = match opts.wal {
            Some(wal_opts) => {
                let chunks_dir = dir.join("chunks_head");
                let mut loaded = chunks_head::load(&*opts.fs, &chunks_dir);
                let stats =
                    wal::replay(&*opts.fs, &wal_dir, &head, wal_opts.replay_threads, Some(&mut loaded), persisted)
                        .map_err(|e| open_err(&wal_dir, e))?;
                // Series whose samples were all lost or never came (their batch failed).
                head.truncate(i64::MIN);
                let disk =
                    ChunkDisk::open(opts.fs.clone(), &chunks_dir, &loaded).map_err(|e| open_err(&chunks_dir, e))?;
                drop(loaded);
                head.set_chunk_disk(disk);
                let wal = Wal::open(opts.fs.clone(), &wal_dir, wal_opts).map_err(|e| open_err(&wal_dir, e))?;
                (Some(wal), stats)
            }
            None => (None, ReplayStats::default()),
        };
        Ok(Db {
            dir,
            head,
            wal,
            replay,
            blocks: RwLock::new(blocks.into_iter().map(Arc::new).collect()),
            failed_blocks,
            persisted_until: AtomicI64::new(persisted),
            compaction: Mutex::new(()),
            block_range: opts.block_range_ms.max(1),
            retention_ms: opts.retention_ms,
            retention_bytes: opts.retention_bytes,
            _lock: lock,
        })
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

    /// A reader of samples in `[mint, maxt]` over the head and the blocks overlapping the range.
    pub fn querier(&self, mint: i64, maxt: i64) -> DbQuerier<'_> {
        let blocks = self
            .blocks
            .read()
            .iter()
            .filter(|b| b.meta().stats.samples > 0 && b.meta().max_time >= mint && b.meta().min_time <= maxt)
            .cloned()
            .collect();
        DbQuerier { head: self.head.querier(mint, maxt), blocks, mint, maxt }
    }

    /// The blocks currently served, oldest first.
    pub fn blocks(&self) -> Vec<Arc<Block>> {
        self.blocks.read().clone()
    }

    /// Block directories that failed to open (bad checksum, truncated file…), with the reason;
    /// they are skipped, the rest is served.
    pub fn failed_blocks(&self) -> &[FailedBlock] {
        &self.failed_blocks
    }

    /// Deletes samples in `[mint, maxt]` of the series matching `matchers` (logged as
    /// tombstones in the WAL for the head, in each block's `tombstones` file for blocks; the
    /// data goes at the next compaction or [`Db::clean_tombstones`]).
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<(), Error> {
        for b in self.blocks.read().iter() {
            if b.meta().max_time >= mint && b.meta().min_time <= maxt {
                b.delete(matchers, mint, maxt)?;
            }
        }
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
        if let Some(disk) = self.head.chunk_disk() {
            disk.truncate(mint);
        }
        if let Some(wal) = &self.wal {
            wal.checkpoint(&self.head, mint).map_err(Error::Checkpoint)?;
        }
        Ok(())
    }

    /// Persists the head into blocks while it spans more than 1.5 block ranges (then truncates
    /// the head and checkpoints the WAL), merges blocks (overlapping ones, then levelled:
    /// 3, 9, 27… block ranges up to 10% of the retention or 31 days) and applies retention.
    /// Appends and queries go on meanwhile; one compaction runs at a time.
    pub fn compact(&self) -> Result<CompactStats, Error> {
        self.compact_inner(false)
    }

    /// As [`Db::compact`], but also merges blocks of time windows that are not complete yet (for
    /// imports, where no more data will come).
    pub fn compact_all(&self) -> Result<CompactStats, Error> {
        self.compact_inner(true)
    }

    fn compact_inner(&self, all: bool) -> Result<CompactStats, Error> {
        let _guard = self.compaction.lock();
        let mut stats = CompactStats::default();
        let range = self.block_range;
        while let Some((hmin, hmax)) = self.head.time_range() {
            let from = hmin.max(self.persisted_until.load(Ordering::Relaxed));
            if hmax.saturating_sub(from) <= range / 2 * 3 {
                break;
            }
            let start = from.div_euclid(range) * range;
            let end = start + range;
            if let Some(meta) = write_head_block(&self.dir, &self.head.querier(start, end - 1))? {
                let block = Block::open(&self.dir.join(&meta.ulid))?;
                let mut blocks = self.blocks.write();
                blocks.push(Arc::new(block));
                blocks.sort_by_key(|b| (b.meta().min_time, b.meta().ulid.clone()));
                stats.head_blocks += 1;
            }
            self.persisted_until.store(end, Ordering::Relaxed);
            self.truncate(end)?;
        }
        let max_range = match self.retention_ms {
            Some(r) => (r / 10).clamp(range, 31 * 86_400_000),
            None => 31 * 86_400_000,
        };
        loop {
            let metas: Vec<(String, i64, i64)> = self
                .blocks
                .read()
                .iter()
                .map(|b| (b.meta().ulid.clone(), b.meta().min_time, b.meta().max_time))
                .collect();
            let Some(ids) = compact::plan(&metas, range, max_range, all) else { break };
            self.merge(&ids)?;
            stats.merges += 1;
        }
        stats.deleted = self.apply_retention()?;
        Ok(stats)
    }

    /// Replaces the blocks `ids` with one block holding their merged data (tombstones applied),
    /// streaming series by series: memory holds one decompressed frame per parent block, the
    /// series being merged and the labels of the new block's series.
    fn merge(&self, ids: &[String]) -> Result<(), Error> {
        let parents: Vec<Arc<Block>> =
            self.blocks.read().iter().filter(|b| ids.contains(&b.meta().ulid)).cloned().collect();
        let level = parents.iter().map(|b| b.meta().level).max().unwrap_or(0) + 1;
        let mut writer = BlockWriter::new(&self.dir, level, ids.to_vec())?;
        let sources: Vec<SeriesSource<'_>> =
            parents.iter().map(|b| Box::new(b.series_iter(&[], i64::MIN, i64::MAX)) as SeriesSource<'_>).collect();
        for series in MergeSeries::new(sources) {
            let (labels, samples) = series?;
            writer.add(&labels, &samples)?;
        }
        let new_block = if writer.num_series() == 0 {
            None
        } else {
            let meta = writer.finish()?;
            Some(Arc::new(Block::open(&self.dir.join(&meta.ulid))?))
        };
        {
            let mut blocks = self.blocks.write();
            blocks.retain(|b| !ids.contains(&b.meta().ulid));
            blocks.extend(new_block);
            blocks.sort_by_key(|b| (b.meta().min_time, b.meta().ulid.clone()));
        }
        for b in parents {
            std::fs::remove_dir_all(b.dir())
                .map_err(|e| Error::Block { path: b.dir().to_path_buf(), message: e.to_string() })?;
        }
        Ok(())
    }

    /// Rewrites every block that has tombstones without the deleted data.
    pub fn clean_tombstones(&self) -> Result<usize, Error> {
        let _guard = self.compaction.lock();
        let ids: Vec<String> =
            self.blocks.read().iter().filter(|b| b.num_tombstones() > 0).map(|b| b.meta().ulid.clone()).collect();
        for id in &ids {
            self.merge(std::slice::from_ref(id))?;
        }
        Ok(ids.len())
    }

    /// Deletes blocks wholly older than the retention time, then the oldest blocks while the
    /// total size is over the size limit. Returns how many went.
    fn apply_retention(&self) -> Result<usize, Error> {
        let mut doomed: Vec<Arc<Block>> = Vec::new();
        {
            let mut blocks = self.blocks.write();
            if let Some(ret) = self.retention_ms {
                let newest = blocks
                    .iter()
                    .map(|b| b.meta().max_time)
                    .chain(self.head.time_range().map(|r| r.1))
                    .max()
                    .unwrap_or(i64::MIN);
                let cutoff = newest.saturating_sub(ret);
                let (old, keep): (Vec<_>, Vec<_>) = blocks.drain(..).partition(|b| b.meta().max_time < cutoff);
                *blocks = keep;
                doomed.extend(old);
            }
            if let Some(limit) = self.retention_bytes {
                let mut total: u64 = blocks.iter().map(|b| b.size_bytes()).sum();
                while total > limit && !blocks.is_empty() {
                    let b = blocks.remove(0);
                    total -= b.size_bytes().min(total);
                    doomed.push(b);
                }
            }
        }
        for b in &doomed {
            std::fs::remove_dir_all(b.dir())
                .map_err(|e| Error::Block { path: b.dir().to_path_buf(), message: e.to_string() })?;
        }
        Ok(doomed.len())
    }

    /// Writes a consistent copy of the database into `dst` (created; must not hold blocks):
    /// hard links of every block's files, plus the head persisted as one more block. `dst` can be
    /// opened as a data directory.
    pub fn snapshot(&self, dst: &Path) -> Result<(), Error> {
        let io = |p: &Path, e: std::io::Error| Error::Block { path: p.to_path_buf(), message: e.to_string() };
        let _guard = self.compaction.lock();
        std::fs::create_dir_all(dst).map_err(|e| io(dst, e))?;
        for b in self.blocks.read().iter() {
            let target = dst.join(format!("{}.tmp", b.meta().ulid));
            std::fs::create_dir_all(&target).map_err(|e| io(&target, e))?;
            for name in ["chunks", "index", "tombstones", "meta.json"] {
                std::fs::hard_link(b.dir().join(name), target.join(name)).map_err(|e| io(&target, e))?;
            }
            std::fs::rename(&target, dst.join(&b.meta().ulid)).map_err(|e| io(&target, e))?;
        }
        let from = self.persisted_until.load(Ordering::Relaxed);
        write_head_block(dst, &self.head.querier(from, i64::MAX))?;
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
                // The snapshot holds every chunk.
                if let Some(disk) = self.head.chunk_disk() {
                    disk.remove_all();
                }
            } else if let Some(disk) = self.head.chunk_disk() {
                disk.flush();
            }
            wal.close().map_err(Error::WalWrite)?;
        }
        Ok(())
    }
}

/// A background thread that runs [`Db::compact`] every interval (started by
/// [`Db::spawn_compactor`]); it holds only a weak reference to the database and stops when
/// dropped or when the database is gone. Appends and queries go on while it compacts.
#[derive(Debug)]
pub struct Compactor {
    requests: Option<std::sync::mpsc::Sender<CompactRequest>>,
    thread: Option<std::thread::JoinHandle<()>>,
    state: Arc<Mutex<CompactorState>>,
}

type CompactRequest = std::sync::mpsc::Sender<Result<CompactStats, String>>;

/// What the background compactor has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactorState {
    /// Completed runs (successful or not).
    pub runs: u64,
    /// The error of the last failed run, cleared by a successful one.
    pub last_error: Option<String>,
}

impl Compactor {
    /// Runs a compaction now on the background thread and waits for it.
    pub fn run_now(&self) -> Result<CompactStats, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.requests.as_ref().ok_or("compactor stopped")?.send(tx).map_err(|_| "compactor stopped".to_string())?;
        rx.recv().map_err(|_| "compactor stopped".to_string())?
    }

    /// Runs so far and the last error.
    pub fn state(&self) -> CompactorState {
        self.state.lock().clone()
    }

    /// A function returning [`Compactor::state`] that outlives a borrow of the compactor (for
    /// a task that reports on it).
    pub fn state_handle(&self) -> impl Fn() -> CompactorState + Send + Sync + 'static {
        let state = self.state.clone();
        move || state.lock().clone()
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Db {
    /// Starts a thread that compacts `db` every `interval` (head cut into blocks, merges,
    /// retention), as Prometheus does once a minute.
    pub fn spawn_compactor(db: &Arc<Db>, interval: std::time::Duration) -> Result<Compactor, Error> {
        let weak = Arc::downgrade(db);
        let (tx, rx) = std::sync::mpsc::channel::<CompactRequest>();
        let state = Arc::new(Mutex::new(CompactorState::default()));
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("sextant-compactor".into())
            .spawn(move || loop {
                let reply = match rx.recv_timeout(interval) {
                    Ok(reply) => Some(reply),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                };
                let Some(db) = weak.upgrade() else { return };
                let result = db.compact().map_err(|e| e.to_string());
                drop(db);
                {
                    let mut st = st.lock();
                    st.runs += 1;
                    st.last_error = result.as_ref().err().cloned();
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            })
            .map_err(|e| Error::Open { path: PathBuf::from("compactor thread"), source: e })?;
        Ok(Compactor { requests: Some(tx), thread: Some(thread), state })
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

fn all_series_matcher() -> Matcher {
    Matcher::new(MatchOp::RegexMatch, "__name__", ".*").expect("valid regex")
}

fn storage_err(e: StorageError) -> Error {
    Error::Block { path: PathBuf::new(), message: e.to_string() }
}

/// Writes every series `querier` selects into a new level-1 block in `dir`, series by series;
/// `None` when there is nothing to write.
fn write_head_block(dir: &Path, querier: &dyn Querier) -> Result<Option<crate::BlockMeta>, Error> {
    let mut writer = BlockWriter::new(dir, 1, Vec::new())?;
    for series in querier.select(true, None, &[all_series_matcher()]).map_err(storage_err)? {
        let mut series = series.map_err(storage_err)?;
        let mut samples = Vec::new();
        while series.samples.next() == ValueType::Float {
            samples.push(series.samples.at());
        }
        writer.add(&series.labels, &samples)?;
    }
    if writer.num_series() == 0 {
        return Ok(None);
    }
    writer.finish().map(Some)
}

/// A source of series in increasing label order.
type SeriesSource<'a> = Box<dyn Iterator<Item = Result<SeriesData, Error>> + 'a>;

/// Merges sources of series sorted by labels into one sorted stream: series present in several
/// sources get their samples merged by time, one sample per timestamp (the earliest source's).
struct MergeSeries<'a> {
    sources: Vec<SeriesSource<'a>>,
    peeked: Vec<Option<SeriesData>>,
    done: Vec<bool>,
}

impl<'a> MergeSeries<'a> {
    fn new(sources: Vec<SeriesSource<'a>>) -> MergeSeries<'a> {
        let n = sources.len();
        MergeSeries { sources, peeked: (0..n).map(|_| None).collect(), done: vec![false; n] }
    }
}

impl Iterator for MergeSeries<'_> {
    type Item = Result<SeriesData, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        for i in 0..self.sources.len() {
            if self.peeked[i].is_none() && !self.done[i] {
                match self.sources[i].next() {
                    Some(Ok(s)) => self.peeked[i] = Some(s),
                    Some(Err(e)) => {
                        self.done[i] = true;
                        return Some(Err(e));
                    }
                    None => self.done[i] = true,
                }
            }
        }
        let min = self.peeked.iter().flatten().map(|s| &s.0).min()?.clone();
        let mut out: Option<SeriesData> = None;
        let mut merged = false;
        for p in &mut self.peeked {
            if p.as_ref().is_some_and(|s| s.0 == min) {
                let (labels, samples) = p.take().expect("checked");
                match &mut out {
                    None => out = Some((labels, samples)),
                    Some(o) => {
                        // Sources over later time ranges append in order: no sort needed.
                        let in_order = matches!((o.1.last(), samples.first()), (Some(l), Some(f)) if l.0 < f.0);
                        merged |= !in_order;
                        o.1.extend(samples);
                    }
                }
            }
        }
        let mut out = out.expect("the minimum is present");
        if merged {
            out.1.sort_by_key(|x| x.0);
            out.1.dedup_by_key(|x| x.0);
        }
        Some(Ok(out))
    }
}

/// A reader over the head and the blocks of a [`Db`]; overlapping data is merged (one sample per
/// timestamp, the block's first), tombstones honoured, blocks pruned by time range and postings.
#[derive(Debug)]
pub struct DbQuerier<'a> {
    head: HeadQuerier<'a>,
    blocks: Vec<Arc<Block>>,
    mint: i64,
    maxt: i64,
}

impl Querier for DbQuerier<'_> {
    fn select(
        &self,
        sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet<'_>, StorageError> {
        if self.blocks.is_empty() {
            return self.head.select(sorted, hints, matchers);
        }
        let mut sources: Vec<SeriesSource<'_>> = self
            .blocks
            .iter()
            .map(|b| match crate::block::parallel_series(b, matchers, self.mint, self.maxt) {
                Some(parallel) => Box::new(parallel) as SeriesSource<'_>,
                None => Box::new(b.series_iter(matchers, self.mint, self.maxt)) as SeriesSource<'_>,
            })
            .collect();
        let head = self.head.select(true, hints, matchers)?.map(|series| {
            let mut series = series.map_err(storage_err)?;
            let mut samples = Vec::new();
            while series.samples.next() == ValueType::Float {
                samples.push(series.samples.at());
            }
            if let Some(e) = series.samples.err() {
                return Err(Error::Block { path: PathBuf::new(), message: e.to_string() });
            }
            Ok((series.labels, samples))
        });
        sources.push(Box::new(head));
        Ok(Box::new(MergeSeries::new(sources).filter(|s| !s.as_ref().is_ok_and(|s| s.1.is_empty())).map(|s| {
            let (labels, samples) = s.map_err(StorageError::from)?;
            Ok(Series { labels, samples: Box::new(VecIterator::new(samples)) as Box<dyn SampleIterator> })
        })))
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut values = self.head.label_values(name, matchers)?;
        for b in &self.blocks {
            for labels in b.matching_labels(matchers, self.mint, self.maxt) {
                values.extend(labels.get(name).map(str::to_string));
            }
        }
        values.sort_unstable();
        values.dedup();
        Ok(values)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut names = self.head.label_names(matchers)?;
        for b in &self.blocks {
            for labels in b.matching_labels(matchers, self.mint, self.maxt) {
                names.extend(labels.iter().map(|l| l.name.to_string()));
            }
        }
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }
}

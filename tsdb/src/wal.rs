//! The write-ahead log: numbered segment files of CRC-checked records (series, samples,
//! tombstones), a configurable sync policy, parallel replay and checkpoints.
//!
//! `tsdb/FORMAT.md` documents the bytes.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use sextant_model::{Label, Labels};

use crate::chunks_head::Loaded;
use crate::fs::{AppendFile, FileSystem};
use crate::head::{Head, PendingSample, SeriesRef};

pub(crate) const REC_SERIES: u8 = 1;
/// Samples with every value's 8 bytes (written before type 6; still read).
pub(crate) const REC_SAMPLES: u8 = 2;
pub(crate) const REC_TOMBSTONES: u8 = 3;
/// A series with its chunks, in a snapshot written at clean shutdown, closed chunks as plain
/// XOR chunks (written before stored chunks had an encoding byte; still read).
pub(crate) const REC_SNAPSHOT_SERIES_XOR: u8 = 4;
/// A series with its chunks, in a snapshot written at clean shutdown, closed chunks as stored
/// chunks (encoding byte first).
pub(crate) const REC_SNAPSHOT_SERIES: u8 = 5;
/// Samples, refs as deltas from the previous sample's and integer values as varints.
pub(crate) const REC_SAMPLES_COMPACT: u8 = 6;
/// `type u8 | len u32 | payload crc32 u32 | header crc32 u32`.
pub(crate) const HEADER_LEN: usize = 13;
/// Samples per record at most (keeps records far below any segment size).
const SAMPLES_PER_RECORD: usize = 8192;
const SERIES_PER_RECORD: usize = 1024;
/// Refs below this get a slot in replay's table of chunk-covered times.
const MAX_COVERED_REF: usize = 1 << 26;
/// Largest payload a reader accepts.
const MAX_PAYLOAD: usize = 64 << 20;

/// When the WAL calls `fsync`. Every commit is written to the operating system before
/// `commit` returns whatever the policy, so a crash of the process loses nothing committed;
/// the policy decides what a crash of the machine may lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync before every commit returns: nothing committed is ever lost, slowest.
    EveryCommit,
    /// fsync in the background at this interval when something was written (the default,
    /// every second): a machine crash loses at most the last interval.
    Interval(Duration),
    /// fsync only when a segment is complete and at close (Prometheus' behaviour).
    Never,
    // With `Interval` and `Never`, a completed segment is synced on a thread of its own while
    // commits go on in the next one (as Prometheus does); `Wal::sync` and close wait for it.
}

impl Default for SyncPolicy {
    fn default() -> SyncPolicy {
        SyncPolicy::Interval(Duration::from_secs(1))
    }
}

/// Settings of the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// A segment is closed and a new one started beyond this size. Default 128 MiB.
    pub segment_size: u64,
    pub sync: SyncPolicy,
    /// Threads applying samples during replay (the reader is one more). Default: the number
    /// of cores.
    pub replay_threads: usize,
    /// At clean shutdown, write the head's chunks to a snapshot that replaces the WAL, so the
    /// next open loads chunks instead of replaying samples. Default true.
    pub snapshot_on_close: bool,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            segment_size: 128 << 20,
            sync: SyncPolicy::default(),
            replay_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            snapshot_on_close: true,
        }
    }
}

/// What a replay found (exported as `sextant_tsdb_wal_*` metrics by the server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Checkpoint replayed first, if any (its segment number).
    pub checkpoint: Option<u32>,
    /// Chunk snapshot (written at the last clean shutdown) loaded first, if any.
    pub snapshot: Option<u32>,
    pub segments: u32,
    pub records: u64,
    pub series: u64,
    pub samples: u64,
    pub tombstones: u64,
    /// Records whose checksum or contents were wrong, skipped.
    pub damaged_records: u64,
    /// Segments that ended in the middle of a record.
    pub torn_tails: u64,
    /// Gaps in the segment numbers.
    pub missing_segments: u64,
    /// Segments that could not be read at all.
    pub unreadable_segments: u64,
    /// Samples of series whose series record was lost.
    pub unknown_series_samples: u64,
    /// Full chunks loaded from `chunks_head/` (written as they were cut before the restart).
    pub head_chunks: u64,
    /// Samples in those chunks.
    pub head_chunk_samples: u64,
    /// WAL samples not replayed because a loaded chunk holds them.
    pub samples_in_chunks: u64,
    /// Damaged records in `chunks_head/` (their samples come from the WAL).
    pub damaged_chunk_records: u64,
    pub duration: Duration,
}

/// The WAL of one database directory, open for writing.
#[derive(Debug)]
pub struct Wal {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    opts: WalOptions,
    writer: Arc<Mutex<Writer>>,
    syncer: Option<(Arc<SyncSignal>, JoinHandle<()>)>,
}

#[derive(Debug, Default)]
struct SyncSignal {
    stop: Mutex<bool>,
    cv: Condvar,
}

#[derive(Debug)]
struct Writer {
    file: Option<Box<dyn AppendFile>>,
    segment: u32,
    size: u64,
    dirty: bool,
    sync_errors: u64,
    /// The fsync of the segment completed last, running in the background (joined by the next
    /// cut, `sync` and `close`, and when the WAL is dropped).
    completed_sync: Option<JoinHandle<io::Result<()>>>,
}

impl Writer {
    /// Waits for the background fsync of the last completed segment, if one is running.
    fn join_completed_sync(&mut self) -> io::Result<()> {
        let Some(handle) = self.completed_sync.take() else { return Ok(()) };
        let result = handle.join().unwrap_or_else(|_| Err(io::Error::other("WAL segment sync panicked")));
        if result.is_err() {
            self.sync_errors += 1;
        }
        result
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.join_completed_sync();
    }
}

pub(crate) fn segment_name(n: u32) -> String {
    format!("{n:08}")
}

fn checkpoint_name(n: u32) -> String {
    format!("checkpoint.{n:08}")
}

fn snapshot_name(n: u32) -> String {
    format!("snapshot.{n:08}")
}

/// What a WAL directory holds.
#[derive(Debug, Default)]
struct Listing {
    segments: Vec<u32>,
    /// The newest complete checkpoint.
    checkpoint: Option<u32>,
    /// The newest complete chunk snapshot.
    snapshot: Option<u32>,
}

fn list(fs: &dyn FileSystem, dir: &Path) -> io::Result<Listing> {
    let mut listing = Listing::default();
    for name in fs.list_dir(dir)? {
        if let Some(n) = name.strip_prefix("checkpoint.").and_then(|n| n.parse::<u32>().ok()) {
            listing.checkpoint = listing.checkpoint.max(Some(n));
        } else if let Some(n) = name.strip_prefix("snapshot.").and_then(|n| n.parse::<u32>().ok()) {
            listing.snapshot = listing.snapshot.max(Some(n));
        } else if name.len() == 8 {
            if let Ok(n) = name.parse::<u32>() {
                listing.segments.push(n);
            }
        }
    }
    listing.segments.sort_unstable();
    Ok(listing)
}

impl Wal {
    /// Opens the WAL in `dir` for writing, starting a fresh segment after the existing ones
    /// (replay them first with [`replay`]).
    pub(crate) fn open(fs: Arc<dyn FileSystem>, dir: &Path, opts: WalOptions) -> io::Result<Wal> {
        fs.create_dir_all(dir)?;
        let listing = list(&*fs, dir)?;
        let next = listing.segments.last().copied().max(listing.checkpoint).max(listing.snapshot).map_or(0, |n| n + 1);
        let file = fs.open_append(&dir.join(segment_name(next)))?;
        fs.sync_dir(dir)?;
        let writer = Arc::new(Mutex::new(Writer {
            file: Some(file),
            segment: next,
            size: 0,
            dirty: false,
            sync_errors: 0,
            completed_sync: None,
        }));
        let syncer = match opts.sync {
            SyncPolicy::Interval(every) => {
                let signal = Arc::new(SyncSignal::default());
                let (signal2, writer2) = (signal.clone(), writer.clone());
                let handle = std::thread::Builder::new()
                    .name("sextant-wal-sync".into())
                    .spawn(move || sync_loop(&signal2, &writer2, every))?;
                Some((signal, handle))
            }
            SyncPolicy::EveryCommit | SyncPolicy::Never => None,
        };
        Ok(Wal { fs, dir: dir.to_path_buf(), opts, writer, syncer })
    }

    /// Appends encoded records (one commit) as one write.
    pub(crate) fn log(&self, records: &[u8]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut w = self.writer.lock();
        if w.file.is_none() {
            let next = w.segment + 1;
            w.file = Some(self.fs.open_append(&self.dir.join(segment_name(next)))?);
            w.segment = next;
            w.size = 0;
        }
        if w.size > 0 && w.size + records.len() as u64 > self.opts.segment_size {
            self.cut(&mut w, true)?;
        }
        let size = w.size;
        let file = w.file.as_mut().ok_or_else(|| io::Error::other("no WAL segment"))?;
        if let Err(e) = file.append(records) {
            // Drop the partial record; if even that fails, continue in a new segment (the
            // reader skips a torn tail).
            if file.truncate(size).is_err() {
                w.file = None;
            }
            return Err(e);
        }
        w.size += records.len() as u64;
        w.dirty = true;
        if self.opts.sync == SyncPolicy::EveryCommit {
            if let Some(file) = w.file.as_mut() {
                file.sync()?;
            }
            w.dirty = false;
        }
        Ok(())
    }

    /// Closes the current segment (synced) and starts the next. With `background`, the
    /// segment is synced on a thread of its own when the file layer allows it, so commits go
    /// on meanwhile (as Prometheus does); the next cut, `sync` and `close` wait for it.
    fn cut(&self, w: &mut Writer, background: bool) -> io::Result<()> {
        w.join_completed_sync()?;
        if let Some(file) = w.file.as_mut() {
            match file.sync_handle().filter(|_| background) {
                Some(handle) => {
                    let spawned = std::thread::Builder::new()
                        .name("sextant-wal-segment-sync".into())
                        .spawn(move || handle.sync());
                    match spawned {
                        Ok(thread) => w.completed_sync = Some(thread),
                        Err(_) => file.sync()?,
                    }
                }
                None => file.sync()?,
            }
        }
        let next = w.segment + 1;
        let file = self.fs.open_append(&self.dir.join(segment_name(next)))?;
        w.file = Some(file);
        w.segment = next;
        w.size = 0;
        w.dirty = false;
        self.fs.sync_dir(&self.dir)
    }

    /// fsyncs the current segment now (and waits for the completed one's sync, if running).
    pub fn sync(&self) -> io::Result<()> {
        let mut w = self.writer.lock();
        w.join_completed_sync()?;
        if let Some(file) = w.file.as_mut() {
            file.sync()?;
        }
        w.dirty = false;
        Ok(())
    }

    /// Number of the segment being written.
    pub fn current_segment(&self) -> u32 {
        self.writer.lock().segment
    }

    pub(crate) fn snapshot_on_close(&self) -> bool {
        self.opts.snapshot_on_close
    }

    /// fsync failures of the background syncer so far.
    pub fn sync_errors(&self) -> u64 {
        self.writer.lock().sync_errors
    }

    /// Stops the syncer and syncs.
    pub(crate) fn close(&mut self) -> io::Result<()> {
        if let Some((signal, handle)) = self.syncer.take() {
            *signal.stop.lock() = true;
            signal.cv.notify_all();
            let _ = handle.join();
        }
        self.sync()
    }

    /// Writes a checkpoint of every complete segment, keeping the series alive in `head` and
    /// their samples at or after `mint`, then deletes those segments and older checkpoints.
    /// This is the hook the block writer calls once the head before `mint` is persisted.
    pub(crate) fn checkpoint(&self, head: &Head, mint: i64) -> io::Result<u32> {
        let last = {
            let mut w = self.writer.lock();
            self.cut(&mut w, false)?;
            w.segment - 1
        };
        let Listing { segments, checkpoint: old_checkpoint, snapshot: old_snapshot } = list(&*self.fs, &self.dir)?;
        let tmp = self.dir.join(format!("{}.tmp", checkpoint_name(last)));
        let _ = self.fs.remove_file(&tmp);
        let mut out = self.fs.open_append(&tmp)?;
        let mut buf = Vec::new();
        encode_series(&mut buf, &head.all_series());
        out.append(&buf)?;
        let mut inputs: Vec<PathBuf> = match (old_snapshot, old_checkpoint) {
            (Some(snap), c) if c.is_none_or(|c| snap > c) => vec![self.dir.join(snapshot_name(snap))],
            (_, Some(c)) => vec![self.dir.join(checkpoint_name(c))],
            _ => Vec::new(),
        };
        inputs.extend(segments.iter().filter(|&&s| s <= last).map(|&s| self.dir.join(segment_name(s))));
        // WAL ref -> current ref, from the series records (refs may have been remapped).
        let mut refs: HashMap<u32, Option<SeriesRef>> = HashMap::new();
        for path in &inputs {
            let Ok(data) = self.fs.read(path) else { continue };
            let mut reader = FrameReader::new(&data);
            let mut samples = Vec::new();
            let mut tombstones = Vec::new();
            while let Some((kind, payload)) = reader.next_frame() {
                match kind {
                    REC_SERIES => {
                        for (r, labels) in decode_series(payload).unwrap_or_default() {
                            refs.insert(r, head.lookup(&labels));
                        }
                    }
                    REC_SNAPSHOT_SERIES_XOR | REC_SNAPSHOT_SERIES => {
                        let Some(snap) = decode_snapshot_series(kind, payload) else { continue };
                        let Some(r) = head.lookup(&snap.labels) else { continue };
                        for chunk in &snap.chunks {
                            samples.extend(
                                crate::packed::StoredIterator::new(&chunk.2[..])
                                    .filter(|s| s.0 >= mint)
                                    .map(|(t, v)| PendingSample { r, t, v }),
                            );
                        }
                        if let Some((_, chunk)) = &snap.head {
                            samples.extend(
                                crate::chunk::XorIterator::new(&chunk[..])
                                    .filter(|s| s.0 >= mint)
                                    .map(|(t, v)| PendingSample { r, t, v }),
                            );
                        }
                        samples.extend(snap.ooo.iter().filter(|s| s.0 >= mint).map(|&(t, v)| PendingSample {
                            r,
                            t,
                            v,
                        }));
                    }
                    REC_SAMPLES | REC_SAMPLES_COMPACT => {
                        let Some(decoded) = decode_samples(kind, payload) else { continue };
                        samples.extend(decoded.into_iter().filter(|s| s.t >= mint).filter_map(|mut s| {
                            s.r = (*refs.get(&s.r)?)?;
                            Some(s)
                        }));
                    }
                    REC_TOMBSTONES => {
                        let Some(decoded) = decode_tombstones(payload) else { continue };
                        tombstones.extend(decoded.into_iter().filter(|t| t.2 >= mint).filter_map(|mut t| {
                            t.0 = (*refs.get(&t.0)?)?;
                            Some(t)
                        }));
                    }
                    _ => {}
                }
                if samples.len() >= SAMPLES_PER_RECORD * 8 || !tombstones.is_empty() {
                    buf.clear();
                    encode_samples(&mut buf, &samples);
                    encode_tombstones(&mut buf, &tombstones);
                    out.append(&buf)?;
                    samples.clear();
                    tombstones.clear();
                }
            }
            buf.clear();
            encode_samples(&mut buf, &samples);
            out.append(&buf)?;
        }
        out.sync()?;
        drop(out);
        self.fs.rename(&tmp, &self.dir.join(checkpoint_name(last)))?;
        self.fs.sync_dir(&self.dir)?;
        for s in segments.into_iter().filter(|&s| s <= last) {
            self.fs.remove_file(&self.dir.join(segment_name(s)))?;
        }
        if let Some(c) = old_checkpoint.filter(|&c| c < last) {
            self.fs.remove_file(&self.dir.join(checkpoint_name(c)))?;
        }
        if let Some(snap) = old_snapshot.filter(|&s| s < last) {
            self.fs.remove_file(&self.dir.join(snapshot_name(snap)))?;
        }
        self.fs.sync_dir(&self.dir)?;
        Ok(last)
    }
}

impl Wal {
    /// Writes every series of `head` with its chunks to `snapshot.<last segment>` and deletes
    /// the segments, checkpoint and snapshot it supersedes: the next open loads chunks instead
    /// of replaying samples. Only at clean shutdown (no appender may be running).
    pub(crate) fn snapshot(&self, head: &Head) -> io::Result<u32> {
        let last = {
            let mut w = self.writer.lock();
            self.cut(&mut w, false)?;
            w.segment - 1
        };
        let listing = list(&*self.fs, &self.dir)?;
        let tmp = self.dir.join(format!("{}.tmp", snapshot_name(last)));
        let _ = self.fs.remove_file(&tmp);
        let mut out = self.fs.open_append(&tmp)?;
        let mut write_err = None;
        head.for_each_series_data(|buf| {
            if write_err.is_none() {
                if let Err(e) = out.append(buf) {
                    write_err = Some(e);
                }
            }
        });
        if let Some(e) = write_err {
            return Err(e);
        }
        out.sync()?;
        drop(out);
        self.fs.rename(&tmp, &self.dir.join(snapshot_name(last)))?;
        self.fs.sync_dir(&self.dir)?;
        for s in listing.segments.into_iter().filter(|&s| s <= last) {
            self.fs.remove_file(&self.dir.join(segment_name(s)))?;
        }
        if let Some(c) = listing.checkpoint.filter(|&c| c <= last) {
            self.fs.remove_file(&self.dir.join(checkpoint_name(c)))?;
        }
        if let Some(snap) = listing.snapshot.filter(|&s| s < last) {
            self.fs.remove_file(&self.dir.join(snapshot_name(snap)))?;
        }
        self.fs.sync_dir(&self.dir)?;
        Ok(last)
    }
}

/// One series of a snapshot.
#[derive(Debug)]
pub(crate) struct SnapshotSeries {
    pub(crate) r: SeriesRef,
    pub(crate) labels: Labels,
    /// Closed chunks: mint, maxt, bytes.
    pub(crate) chunks: Vec<(i64, i64, Vec<u8>)>,
    /// The open head chunk: mint, bytes.
    pub(crate) head: Option<(i64, Vec<u8>)>,
    pub(crate) ooo: Vec<(i64, f64)>,
}

/// Snapshot series payload: `ref u32 | labels as in a series record | n closed chunks
/// uvarint | (mint i64, maxt i64, len uvarint, bytes) * n | head flag u8 | [mint i64, len
/// uvarint, bytes] | n ooo uvarint | (t i64, v u64) * n`.
pub(crate) fn encode_snapshot_series(
    buf: &mut Vec<u8>,
    r: SeriesRef,
    labels: &Labels,
    chunks: &[(i64, i64, &[u8])],
    head_chunk: Option<(i64, &[u8])>,
    ooo: &[(i64, f64)],
) {
    let start = begin_frame(buf);
    buf.extend_from_slice(&r.to_le_bytes());
    put_uvarint(buf, labels.len() as u64);
    for l in labels {
        put_uvarint(buf, l.name.len() as u64);
        buf.extend_from_slice(l.name.as_bytes());
        put_uvarint(buf, l.value.len() as u64);
        buf.extend_from_slice(l.value.as_bytes());
    }
    put_uvarint(buf, chunks.len() as u64);
    for (mint, maxt, data) in chunks {
        buf.extend_from_slice(&mint.to_le_bytes());
        buf.extend_from_slice(&maxt.to_le_bytes());
        put_uvarint(buf, data.len() as u64);
        buf.extend_from_slice(data);
    }
    match head_chunk {
        Some((mint, data)) => {
            buf.push(1);
            buf.extend_from_slice(&mint.to_le_bytes());
            put_uvarint(buf, data.len() as u64);
            buf.extend_from_slice(data);
        }
        None => buf.push(0),
    }
    put_uvarint(buf, ooo.len() as u64);
    for (t, v) in ooo {
        buf.extend_from_slice(&t.to_le_bytes());
        buf.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    finish_frame(buf, start, REC_SNAPSHOT_SERIES);
}

/// Decodes a snapshot record of type `kind` ([`REC_SNAPSHOT_SERIES`], or the older
/// [`REC_SNAPSHOT_SERIES_XOR`] whose closed chunks get the XOR encoding byte prepended).
pub(crate) fn decode_snapshot_series(kind: u8, payload: &[u8]) -> Option<SnapshotSeries> {
    let legacy_xor = kind == REC_SNAPSHOT_SERIES_XOR;
    let mut c = Cursor { data: payload, pos: 0 };
    let r = c.u32()?;
    let n = usize::try_from(c.uvarint()?).ok()?;
    let mut labels = Vec::with_capacity(n.min(payload.len() / 2));
    for _ in 0..n {
        let name = c.string()?;
        let value = c.string()?;
        labels.push(Label::new(name, value));
    }
    if labels.is_empty()
        || !labels.windows(2).all(|w| w[0].name < w[1].name)
        || labels.iter().any(|l| l.value.is_empty())
    {
        return None;
    }
    let n_chunks = usize::try_from(c.uvarint()?).ok()?;
    let mut chunks = Vec::with_capacity(n_chunks.min(payload.len() / 17));
    for _ in 0..n_chunks {
        let mint = c.u64()? as i64;
        let maxt = c.u64()? as i64;
        let len = usize::try_from(c.uvarint()?).ok()?;
        let bytes = c.bytes(len)?;
        let stored = if legacy_xor {
            let mut stored = Vec::with_capacity(len + 1);
            stored.push(crate::packed::ENC_XOR);
            stored.extend_from_slice(bytes);
            stored
        } else {
            bytes.to_vec()
        };
        chunks.push((mint, maxt, stored));
    }
    let head = match c.bytes(1)?[0] {
        0 => None,
        _ => {
            let mint = c.u64()? as i64;
            let len = usize::try_from(c.uvarint()?).ok()?;
            Some((mint, c.bytes(len)?.to_vec()))
        }
    };
    let n_ooo = usize::try_from(c.uvarint()?).ok()?;
    let mut ooo = Vec::with_capacity(n_ooo.min(payload.len() / 16));
    for _ in 0..n_ooo {
        ooo.push((c.u64()? as i64, f64::from_bits(c.u64()?)));
    }
    c.done().then_some(SnapshotSeries { r, labels: Labels::from_sorted(labels), chunks, head, ooo })
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn sync_loop(signal: &SyncSignal, writer: &Mutex<Writer>, every: Duration) {
    let mut stop = signal.stop.lock();
    loop {
        if *stop {
            return;
        }
        let deadline = Instant::now() + every;
        while !*stop && !signal.cv.wait_until(&mut stop, deadline).timed_out() {}
        if *stop {
            return;
        }
        let mut w = writer.lock();
        if !w.dirty {
            continue;
        }
        w.dirty = false;
        let Some(file) = w.file.as_mut() else { continue };
        let failed = match file.sync_handle() {
            // Synced without the writer: commits go on meanwhile (what they write after the
            // flag was cleared marks the WAL dirty again for the next round).
            Some(handle) => {
                drop(w);
                let failed = handle.sync().is_err();
                w = writer.lock();
                failed
            }
            None => file.sync().is_err(),
        };
        if failed {
            w.sync_errors += 1;
            w.dirty = true;
        }
    }
}

// ---- encoding ----

#[inline]
fn put_uvarint(buf: &mut Vec<u8>, mut x: u64) {
    if x < 0x80 {
        buf.push(x as u8);
        return;
    }
    while x >= 0x80 {
        buf.push(x as u8 | 0x80);
        x >>= 7;
    }
    buf.push(x as u8);
}

/// The reference encoder of a zigzag varint (the samples record writes its own in place).
#[cfg(test)]
fn put_varint(buf: &mut Vec<u8>, x: i64) {
    put_uvarint(buf, ((x << 1) ^ (x >> 63)) as u64);
}

fn begin_frame(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_LEN]);
    start
}

fn finish_frame(buf: &mut [u8], start: usize, kind: u8) {
    let payload_len = (buf.len() - start - HEADER_LEN) as u32;
    let payload_crc = crc32fast::hash(&buf[start + HEADER_LEN..]);
    buf[start] = kind;
    buf[start + 1..start + 5].copy_from_slice(&payload_len.to_le_bytes());
    buf[start + 5..start + 9].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&buf[start..start + 9]);
    buf[start + 9..start + 13].copy_from_slice(&header_crc.to_le_bytes());
}

/// Series records: `ref u32 | n uvarint | (len uvarint, name, len uvarint, value) * n`.
pub(crate) fn encode_series(buf: &mut Vec<u8>, series: &[(SeriesRef, Labels)]) {
    for group in series.chunks(SERIES_PER_RECORD) {
        let start = begin_frame(buf);
        for (r, labels) in group {
            buf.extend_from_slice(&r.to_le_bytes());
            put_uvarint(buf, labels.len() as u64);
            for l in labels {
                put_uvarint(buf, l.name.len() as u64);
                buf.extend_from_slice(l.name.as_bytes());
                put_uvarint(buf, l.value.len() as u64);
                buf.extend_from_slice(l.value.as_bytes());
            }
        }
        finish_frame(buf, start, REC_SERIES);
    }
}

/// Sample records (type 6): `base ref u32 | base t i64`, then per sample a uvarint holding the
/// zigzag delta of the ref from the previous sample's (the first: from the base) shifted left
/// by 4 bits, the low 4 bits `k`; the zigzag varint `t - base t`; the value: with `k` = 0 its
/// bits as u64 LE, else an integer whose zigzag encoding takes the `k` bytes LE that follow.
pub(crate) fn encode_samples(buf: &mut Vec<u8>, samples: &[PendingSample]) {
    buf.reserve(samples.len() * MAX_SAMPLE_LEN + samples.len().div_ceil(SAMPLES_PER_RECORD) * (HEADER_LEN + 12));
    for group in samples.chunks(SAMPLES_PER_RECORD) {
        let start = begin_frame(buf);
        let (base_r, base_t) = (group[0].r, group[0].t);
        buf.extend_from_slice(&base_r.to_le_bytes());
        buf.extend_from_slice(&base_t.to_le_bytes());
        // Written into room made up front (no capacity check per byte), then cut to size.
        let mut pos = buf.len();
        buf.resize(pos + group.len() * MAX_SAMPLE_LEN, 0);
        let mut prev_r = i64::from(base_r);
        for s in group {
            let Some(out) = buf.get_mut(pos..pos + MAX_SAMPLE_LEN) else { break };
            let r = i64::from(s.r);
            let (k, value) = match integer(s.v) {
                Some(x) => {
                    let z = zigzag(x);
                    ((64 - z.leading_zeros()).div_ceil(8).max(1), z)
                }
                None => (0, s.v.to_bits()),
            };
            let head = (zigzag(r - prev_r) << 4) | u64::from(k);
            prev_r = r;
            let mut n = write_uvarint(out, 0, head);
            n = write_uvarint(out, n, zigzag(s.t.wrapping_sub(base_t)));
            out[n..n + 8].copy_from_slice(&value.to_le_bytes());
            pos += n + if k == 0 { 8 } else { k as usize };
        }
        buf.truncate(pos);
        finish_frame(buf, start, REC_SAMPLES_COMPACT);
    }
}

/// `v` as an integer when it is one exactly (below 2^53 in magnitude; not -0.0, NaN or
/// infinite): such values take only their significant bytes in a samples record.
#[inline]
fn integer(v: f64) -> Option<i64> {
    let x = v as i64;
    (v.abs() < 9_007_199_254_740_992.0 && (x as f64).to_bits() == v.to_bits()).then_some(x)
}

#[inline]
fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

/// Room for one sample in a samples record: the ref and length (6 bytes), the time (10) and an
/// 8-byte store of the value.
const MAX_SAMPLE_LEN: usize = 24;

/// Writes `u` as a uvarint at `out[pos..]`; returns the position after it. `out` is
/// `MAX_SAMPLE_LEN` long, room for every field of a sample.
#[inline(always)]
fn write_uvarint(out: &mut [u8], mut pos: usize, mut u: u64) -> usize {
    let last = out.len() - 1;
    while u >= 0x80 && pos < last {
        out[pos] = u as u8 | 0x80;
        u >>= 7;
        pos += 1;
    }
    out[pos.min(last)] = u as u8;
    pos.min(last) + 1
}

/// Tombstone records: `ref u32 | mint i64 | maxt i64` per entry.
pub(crate) fn encode_tombstones(buf: &mut Vec<u8>, tombstones: &[(SeriesRef, i64, i64)]) {
    for group in tombstones.chunks(SAMPLES_PER_RECORD) {
        let start = begin_frame(buf);
        for (r, mint, maxt) in group {
            buf.extend_from_slice(&r.to_le_bytes());
            buf.extend_from_slice(&mint.to_le_bytes());
            buf.extend_from_slice(&maxt.to_le_bytes());
        }
        finish_frame(buf, start, REC_TOMBSTONES);
    }
}

// ---- decoding ----

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.data.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(out)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    #[inline]
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
    /// An unsigned integer in the next `k` (1 to 8) bytes, little-endian.
    #[inline]
    fn uint_le(&mut self, k: usize) -> Option<u64> {
        let rest = self.data.get(self.pos..)?;
        let word = match rest.get(..8) {
            Some(w) => u64::from_le_bytes(w.try_into().ok()?),
            None => {
                let mut le = [0u8; 8];
                le[..k.min(rest.len())].copy_from_slice(&rest[..k.min(rest.len())]);
                u64::from_le_bytes(le)
            }
        };
        if k > rest.len() || k == 0 || k > 8 {
            return None;
        }
        self.pos += k;
        Some(if k == 8 { word } else { word & ((1u64 << (8 * k)) - 1) })
    }

    #[inline]
    fn uvarint(&mut self) -> Option<u64> {
        if let Some(&b) = self.data.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Some(u64::from(b));
            }
        }
        let mut x = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.data.get(self.pos)?;
            self.pos += 1;
            x |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(x);
            }
        }
        None
    }
    #[inline]
    fn varint(&mut self) -> Option<i64> {
        let u = self.uvarint()?;
        Some(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    fn string(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.uvarint()?).ok()?;
        std::str::from_utf8(self.bytes(len)?).ok()
    }
}

pub(crate) fn decode_series(payload: &[u8]) -> Option<Vec<(SeriesRef, Labels)>> {
    let mut c = Cursor { data: payload, pos: 0 };
    let mut out = Vec::new();
    while !c.done() {
        let r = c.u32()?;
        let n = usize::try_from(c.uvarint()?).ok()?;
        let mut labels = Vec::with_capacity(n.min(payload.len() / 2));
        for _ in 0..n {
            let name = c.string()?;
            let value = c.string()?;
            labels.push(Label::new(name, value));
        }
        let ok = labels.windows(2).all(|w| w[0].name < w[1].name) && labels.iter().all(|l| !l.value.is_empty());
        if !ok || labels.is_empty() {
            return None;
        }
        out.push((r, Labels::from_sorted(labels)));
    }
    Some(out)
}

pub(crate) fn decode_samples(kind: u8, payload: &[u8]) -> Option<Vec<PendingSample>> {
    let mut out = Vec::with_capacity(payload.len() / 10);
    for_each_sample(kind, payload, |r, t, v| out.push(PendingSample { r, t, v })).then_some(out)
}

/// Calls `f(ref, t, value)` for each sample of a samples record of type `kind` (2 or 6), in
/// order; false if the payload is malformed (`f` may have seen a prefix of it then).
#[inline]
pub(crate) fn for_each_sample(kind: u8, payload: &[u8], mut f: impl FnMut(SeriesRef, i64, f64)) -> bool {
    let mut c = Cursor { data: payload, pos: 0 };
    let (Some(base_r), Some(base_t)) = (c.u32(), c.u64()) else { return false };
    let (base_r, base_t) = (i64::from(base_r), base_t as i64);
    let mut prev_r = base_r;
    let compact = match kind {
        REC_SAMPLES => false,
        REC_SAMPLES_COMPACT => true,
        _ => return false,
    };
    while !c.done() {
        let sample = if compact {
            (|| {
                let head = c.uvarint()?;
                let r = prev_r.checked_add(unzigzag(head >> 4))?;
                let t = base_t.wrapping_add(c.varint()?);
                let v = match (head & 15) as usize {
                    0 => f64::from_bits(c.u64()?),
                    k @ 1..=8 => unzigzag(c.uint_le(k)?) as f64,
                    _ => return None,
                };
                Some((r, t, v))
            })()
        } else {
            (|| Some((base_r.checked_add(c.varint()?)?, base_t.wrapping_add(c.varint()?), f64::from_bits(c.u64()?))))()
        };
        let Some((r, t, v)) = sample else { return false };
        let Ok(r32) = SeriesRef::try_from(r) else { return false };
        prev_r = r;
        f(r32, t, v);
    }
    true
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

pub(crate) fn decode_tombstones(payload: &[u8]) -> Option<Vec<(SeriesRef, i64, i64)>> {
    let mut c = Cursor { data: payload, pos: 0 };
    let mut out = Vec::new();
    while !c.done() {
        out.push((c.u32()?, c.u64()? as i64, c.u64()? as i64));
    }
    Some(out)
}

/// Walks the frames of one segment, skipping damaged ones.
pub(crate) struct FrameReader<'a> {
    data: &'a [u8],
    pos: usize,
    pub(crate) damaged: u64,
    pub(crate) torn: bool,
}

fn header_at(data: &[u8], pos: usize) -> Option<(u8, usize, u32)> {
    let h = data.get(pos..pos + HEADER_LEN)?;
    let kind = h[0];
    if !(REC_SERIES..=REC_SAMPLES_COMPACT).contains(&kind) {
        return None;
    }
    let header_crc = u32::from_le_bytes(h[9..13].try_into().ok()?);
    if crc32fast::hash(&h[..9]) != header_crc {
        return None;
    }
    let len = u32::from_le_bytes(h[1..5].try_into().ok()?) as usize;
    if len > MAX_PAYLOAD {
        return None;
    }
    Some((kind, len, u32::from_le_bytes(h[5..9].try_into().ok()?)))
}

impl<'a> FrameReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> FrameReader<'a> {
        FrameReader { data, pos: 0, damaged: 0, torn: false }
    }

    pub(crate) fn next_frame(&mut self) -> Option<(u8, &'a [u8])> {
        while self.pos < self.data.len() {
            match header_at(self.data, self.pos) {
                Some((kind, len, crc)) => {
                    let start = self.pos + HEADER_LEN;
                    let Some(payload) = self.data.get(start..start + len) else {
                        // Cut off in the middle: the tail of a crashed write.
                        self.torn = true;
                        self.pos = self.data.len();
                        return None;
                    };
                    self.pos = start + len;
                    if crc32fast::hash(payload) == crc {
                        return Some((kind, payload));
                    }
                    self.damaged += 1;
                }
                None => {
                    // A damaged header: look for the next valid one.
                    let resync = (self.pos + 1..self.data.len()).find(|&p| header_at(self.data, p).is_some());
                    match resync {
                        Some(p) => {
                            self.damaged += 1;
                            self.pos = p;
                        }
                        None => {
                            self.torn = true;
                            self.pos = self.data.len();
                        }
                    }
                }
            }
        }
        None
    }
}

/// What the replay reader hands on, in WAL order.
enum Routed {
    Sample(PendingSample),
    Tombstone(SeriesRef, i64, i64),
    /// Send what is batched.
    Finish,
}

enum ReplayMsg {
    Samples(Vec<PendingSample>),
    Tombstone(SeriesRef, i64, i64),
}

/// Decodes the sample records in `payloads` (emptied) on up to `threads` threads, drops the
/// samples that loaded chunks hold, and hands the rest to `route` in WAL order.
fn decode_deferred(
    payloads: &mut Vec<(u8, &[u8])>,
    threads: usize,
    remap: &HashMap<u32, SeriesRef>,
    covered: &[i64],
    stats: &mut ReplayStats,
    route: &mut impl FnMut(PendingSample),
) {
    /// Kept samples, samples decoded, samples in chunks, damaged records.
    type Part = (Vec<PendingSample>, u64, u64, u64);
    let decode = |part: &[(u8, &[u8])]| -> Part {
        let mut out: Part = (Vec::new(), 0, 0, 0);
        for &(kind, payload) in part {
            // Decoding fused with the filter: most samples are only looked at.
            let kept_before = out.0.len();
            let (mut n, mut in_chunks) = (0u64, 0u64);
            let ok = for_each_sample(kind, payload, |r, t, v| {
                n += 1;
                let r = if remap.is_empty() { r } else { remap.get(&r).copied().unwrap_or(r) };
                if covered.get(r as usize).is_some_and(|&maxt| t <= maxt) {
                    in_chunks += 1;
                } else {
                    out.0.push(PendingSample { r, t, v });
                }
            });
            if ok {
                out.1 += n;
                out.2 += in_chunks;
            } else {
                out.0.truncate(kept_before);
                out.3 += 1;
            }
        }
        out
    };
    let per_thread = payloads.len().div_ceil(threads.max(1)).max(1);
    let parts: Vec<Part> = if payloads.len() < 2 || threads < 2 {
        vec![decode(payloads)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = payloads.chunks(per_thread).map(|part| scope.spawn(move || decode(part))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
        })
    };
    payloads.clear();
    for (kept, samples, in_chunks, damaged) in parts {
        stats.samples += samples;
        stats.samples_in_chunks += in_chunks;
        stats.damaged_records += damaged;
        kept.into_iter().for_each(&mut *route);
    }
}

/// Loads a chunk snapshot into `head`.
fn load_snapshot(fs: &dyn FileSystem, path: &Path, head: &Head, stats: &mut ReplayStats) {
    let Ok(data) = fs.read_whole(path) else {
        stats.unreadable_segments += 1;
        return;
    };
    let mut reader = FrameReader::new((*data).as_ref());
    while let Some((kind, payload)) = reader.next_frame() {
        stats.records += 1;
        if kind != REC_SNAPSHOT_SERIES && kind != REC_SNAPSHOT_SERIES_XOR {
            continue;
        }
        match decode_snapshot_series(kind, payload).and_then(|snap| head.restore(snap)) {
            Some(samples) => {
                stats.series += 1;
                stats.samples += samples;
            }
            None => stats.damaged_records += 1,
        }
    }
    stats.damaged_records += reader.damaged;
    stats.torn_tails += u64::from(reader.torn);
}

/// Replays the checkpoint and segments in `dir` into `head`: one thread reads and decodes,
/// `threads` apply samples, each owning a disjoint set of series stripes. A series created
/// from a series record takes its chain of full chunks from `chunks` (loaded from
/// `chunks_head/`; `min_time`: everything older is persisted in blocks), and its WAL samples
/// up to the end of that chain are skipped.
pub(crate) fn replay(
    fs: &dyn FileSystem,
    dir: &Path,
    head: &Head,
    threads: usize,
    mut chunks: Option<&mut Loaded>,
    min_time: i64,
) -> io::Result<ReplayStats> {
    let started = Instant::now();
    let mut stats = ReplayStats::default();
    if let Some(loaded) = &chunks {
        stats.damaged_chunk_records = loaded.damaged;
    }
    // With an out-of-order window a sample older than a chunk's end may be an out-of-order
    // one, not one of the chunk's: then nothing is skipped (the head ignores duplicates).
    let may_skip = head.options().out_of_order_window_ms == 0;
    // Per series ref: WAL samples at or before this time are in loaded chunks.
    let mut covered: Vec<i64> = Vec::new();
    if fs.list_dir(dir).is_err() {
        return Ok(stats);
    }
    let listing = list(fs, dir)?;
    let mut inputs: Vec<PathBuf> = Vec::new();
    let base = match (listing.snapshot, listing.checkpoint) {
        (Some(snap), c) if c.is_none_or(|c| snap > c) => {
            stats.snapshot = Some(snap);
            load_snapshot(fs, &dir.join(snapshot_name(snap)), head, &mut stats);
            Some(snap)
        }
        (_, Some(c)) => {
            stats.checkpoint = Some(c);
            inputs.push(dir.join(checkpoint_name(c)));
            Some(c)
        }
        _ => None,
    };
    let mut expected = base.map(|c| c + 1);
    for &s in listing.segments.iter().filter(|&&s| base.is_none_or(|c| s > c)) {
        if let Some(e) = expected {
            stats.missing_segments += u64::from(s.saturating_sub(e));
        }
        expected = Some(s + 1);
        inputs.push(dir.join(segment_name(s)));
        stats.segments += 1;
    }
    let threads = threads.max(1);
    let unknown = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| -> io::Result<()> {
        let mut senders = Vec::new();
        for _ in 0..threads {
            let (tx, rx) = mpsc::sync_channel::<ReplayMsg>(8);
            senders.push(tx);
            let unknown = &unknown;
            scope.spawn(move || {
                for msg in rx {
                    match msg {
                        ReplayMsg::Samples(batch) => {
                            let missing = head.apply_replayed(&batch);
                            if missing > 0 {
                                unknown.fetch_add(missing, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                        ReplayMsg::Tombstone(r, mint, maxt) => head.delete_range(r, mint, maxt),
                    }
                }
            });
        }
        let worker_of = |r: SeriesRef| (head.stripe_of(r) as usize) % threads;
        let mut batches: Vec<Vec<PendingSample>> = (0..threads).map(|_| Vec::with_capacity(4096)).collect();
        let mut remap: HashMap<u32, SeriesRef> = HashMap::new();
        let mut route = |item: Routed| match item {
            Routed::Sample(s) => {
                let w = worker_of(s.r);
                batches[w].push(s);
                if batches[w].len() >= 4096 {
                    let full = std::mem::replace(&mut batches[w], Vec::with_capacity(4096));
                    let _ = senders[w].send(ReplayMsg::Samples(full));
                }
            }
            Routed::Tombstone(r, mint, maxt) => {
                let w = worker_of(r);
                let pending = std::mem::take(&mut batches[w]);
                let _ = senders[w].send(ReplayMsg::Samples(pending));
                let _ = senders[w].send(ReplayMsg::Tombstone(r, mint, maxt));
            }
            Routed::Finish => {
                for (w, batch) in batches.iter_mut().enumerate() {
                    let _ = senders[w].send(ReplayMsg::Samples(std::mem::take(batch)));
                }
            }
        };
        for path in &inputs {
            let data = match fs.read_whole(path) {
                Ok(d) => d,
                Err(_) => {
                    stats.unreadable_segments += 1;
                    continue;
                }
            };
            let mut reader = FrameReader::new((*data).as_ref());
            // Sample records are decoded after the series records before them were handled,
            // several at a time.
            let mut deferred: Vec<(u8, &[u8])> = Vec::new();
            while let Some((kind, payload)) = reader.next_frame() {
                stats.records += 1;
                match kind {
                    REC_SERIES => {
                        let Some(series) = decode_series(payload) else {
                            stats.damaged_records += 1;
                            continue;
                        };
                        for (r, labels) in series {
                            match head.get_or_create_with_ref(&labels, Some(r)) {
                                Ok((got, _)) if got != r => {
                                    remap.insert(r, got);
                                }
                                Ok((_, created)) => {
                                    remap.remove(&r);
                                    if let Some(loaded) = chunks.as_deref_mut().filter(|_| created) {
                                        let chain = loaded.take_chain(r, labels.stable_hash(), min_time);
                                        let n_chunks = chain.len() as u64;
                                        if let Some((maxt, samples)) = head.attach_chunks(r, chain) {
                                            stats.head_chunks += n_chunks;
                                            stats.head_chunk_samples += samples;
                                            let idx = r as usize;
                                            // Refs are dense; a wild one just is not skipped.
                                            if may_skip && idx < MAX_COVERED_REF {
                                                if covered.len() <= idx {
                                                    covered.resize(idx + 1, i64::MIN);
                                                }
                                                covered[idx] = maxt;
                                            }
                                        }
                                    }
                                }
                                Err(_) => stats.damaged_records += 1,
                            }
                            stats.series += 1;
                        }
                    }
                    REC_SAMPLES | REC_SAMPLES_COMPACT => deferred.push((kind, payload)),
                    REC_TOMBSTONES => {
                        let Some(tombstones) = decode_tombstones(payload) else {
                            stats.damaged_records += 1;
                            continue;
                        };
                        let mut route_sample = |s| route(Routed::Sample(s));
                        decode_deferred(&mut deferred, threads, &remap, &covered, &mut stats, &mut route_sample);
                        for (r, mint, maxt) in tombstones {
                            let r = remap.get(&r).copied().unwrap_or(r);
                            route(Routed::Tombstone(r, mint, maxt));
                            stats.tombstones += 1;
                        }
                    }
                    _ => {}
                }
            }
            let mut route_sample = |s| route(Routed::Sample(s));
            decode_deferred(&mut deferred, threads, &remap, &covered, &mut stats, &mut route_sample);
            stats.damaged_records += reader.damaged;
            stats.torn_tails += u64::from(reader.torn);
        }
        route(Routed::Finish);
        drop(senders);
        Ok(())
    })?;
    stats.unknown_series_samples = unknown.into_inner();
    stats.duration = started.elapsed();
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The samples records as `FORMAT.md` gives them, written with the reference varint
    /// encoder: type 6 (`compact`), or type 2 as written before it.
    fn reference_samples_record(samples: &[PendingSample], compact: bool) -> Vec<u8> {
        let mut buf = Vec::new();
        for group in samples.chunks(SAMPLES_PER_RECORD) {
            let start = begin_frame(&mut buf);
            let (base_r, base_t) = (group[0].r, group[0].t);
            buf.extend_from_slice(&base_r.to_le_bytes());
            buf.extend_from_slice(&base_t.to_le_bytes());
            let mut prev_r = i64::from(base_r);
            for s in group {
                if compact {
                    let exact =
                        s.v.abs() < 2f64.powi(53) && (s.v as i64) as f64 == s.v && s.v.to_bits() != (-0.0f64).to_bits();
                    let z = zigzag(s.v as i64);
                    let k = if exact { (1..=8).find(|&k| k == 8 || z >> (8 * k) == 0).unwrap() } else { 0 };
                    put_uvarint(&mut buf, (zigzag(i64::from(s.r) - prev_r) << 4) | k as u64);
                    prev_r = i64::from(s.r);
                    put_varint(&mut buf, s.t.wrapping_sub(base_t));
                    if exact {
                        buf.extend_from_slice(&z.to_le_bytes()[..k]);
                    } else {
                        buf.extend_from_slice(&s.v.to_bits().to_le_bytes());
                    }
                } else {
                    put_varint(&mut buf, i64::from(s.r) - i64::from(base_r));
                    put_varint(&mut buf, s.t.wrapping_sub(base_t));
                    buf.extend_from_slice(&s.v.to_bits().to_le_bytes());
                }
            }
            finish_frame(&mut buf, start, if compact { REC_SAMPLES_COMPACT } else { REC_SAMPLES });
        }
        buf
    }

    fn decode_all_samples(frames: &[u8], want_kind: u8) -> Vec<(SeriesRef, i64, u64)> {
        let mut reader = FrameReader::new(frames);
        let mut decoded = Vec::new();
        while let Some((kind, payload)) = reader.next_frame() {
            assert_eq!(kind, want_kind);
            decoded.extend(decode_samples(kind, payload).expect("decodes"));
        }
        assert_eq!((reader.damaged, reader.torn), (0, false));
        decoded.iter().map(|s| (s.r, s.t, s.v.to_bits())).collect()
    }

    #[test]
    fn samples_records_are_the_documented_bytes_and_decode_back() {
        let p = |r: u32, t: i64, v: f64| PendingSample { r, t, v };
        let check = |samples: Vec<PendingSample>| {
            let mut buf = vec![0xaa];
            encode_samples(&mut buf, &samples);
            assert_eq!(buf[1..], reference_samples_record(&samples, true)[..], "{samples:?}");
            let want: Vec<(SeriesRef, i64, u64)> = samples.iter().map(|s| (s.r, s.t, s.v.to_bits())).collect();
            assert_eq!(decode_all_samples(&buf[1..], REC_SAMPLES_COMPACT), want);
            // Records of type 2 (written by earlier versions) decode to the same samples.
            assert_eq!(decode_all_samples(&reference_samples_record(&samples, false), REC_SAMPLES), want);
        };
        check(vec![p(0, 0, 0.0)]);
        check(vec![p(5, 1000, 1.5), p(6, 1000, 2.5), p(4, 999, f64::NAN), p(70_000, 1001, -0.0)]);
        // Integers at the edges of exactness, signs, infinities, the stale marker.
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let big = 2f64.powi(53);
        check(
            [0.0, -1.0, 1.0, 123_456_789.0, -big + 1.0, big - 1.0, big, -big, 1e300, f64::NEG_INFINITY, stale, 0.5]
                .iter()
                .enumerate()
                .map(|(i, &v)| p(i as u32 * 7, 30_000, v))
                .collect(),
        );
        // Widest deltas: refs across the whole u32 range, times across the whole i64 range.
        check(vec![p(u32::MAX, i64::MIN, f64::INFINITY), p(0, i64::MAX, 1.0), p(u32::MAX, i64::MIN, 2.0)]);
        check(vec![p(0, i64::MAX, 1.0), p(u32::MAX, i64::MIN, 2.0), p(1 << 31, 0, 3.0)]);
        // More than one record.
        check((0..(SAMPLES_PER_RECORD as u32 * 2 + 7)).map(|i| p(i * 3 % 1000, i64::from(i) * 15_000, 0.1)).collect());
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { failure_persistence: None, ..Default::default() })]

        #[test]
        fn random_samples_payloads_never_panic(
            kind in proptest::sample::select(vec![REC_SAMPLES, REC_SAMPLES_COMPACT]),
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let mut n = 0usize;
            for_each_sample(kind, &bytes, |_, _, _| n += 1);
            proptest::prop_assert!(n <= bytes.len());
        }

        #[test]
        fn random_samples_roundtrip(
            samples in proptest::collection::vec((proptest::num::u32::ANY, proptest::num::i64::ANY, proptest::num::f64::ANY, proptest::bool::ANY), 1..200),
        ) {
            let samples: Vec<PendingSample> = samples
                .into_iter()
                .map(|(r, t, v, round)| PendingSample { r, t, v: if round { (v % 1e15).trunc() } else { v } })
                .collect();
            let mut buf = Vec::new();
            encode_samples(&mut buf, &samples);
            let want: Vec<(SeriesRef, i64, u64)> = samples.iter().map(|s| (s.r, s.t, s.v.to_bits())).collect();
            proptest::prop_assert_eq!(decode_all_samples(&buf, REC_SAMPLES_COMPACT), want);
        }
    }

    /// A WAL written before the compact samples record (type 2 records only) replays into a
    /// database with the same samples, and new commits go on after them.
    #[test]
    fn segments_with_type_2_samples_records_replay() {
        use sextant_model::{Querier, ValueType};
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        std::fs::create_dir_all(&wal_dir).unwrap();
        let labels = |i: u32| Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]);
        let series: Vec<(SeriesRef, Labels)> = (0..3).map(|i| (i + 1, labels(i))).collect();
        let samples: Vec<PendingSample> = (0..50i64)
            .flat_map(|k| {
                (0..3u32).map(move |i| PendingSample { r: i + 1, t: k * 15_000, v: k as f64 * 1.5 + f64::from(i) })
            })
            .collect();
        let mut segment = Vec::new();
        encode_series(&mut segment, &series);
        segment.extend_from_slice(&reference_samples_record(&samples, false));
        std::fs::write(wal_dir.join(segment_name(0)), &segment).unwrap();

        let db = crate::Db::open(dir.path(), crate::Options::default()).unwrap();
        assert_eq!(db.replay_stats().samples, samples.len() as u64);
        assert_eq!(db.replay_stats().damaged_records, 0);
        let mut app = db.appender();
        app.append_ref(None, &labels(0), 50 * 15_000, 7.0).unwrap();
        app.commit_batch().unwrap();
        drop(app);
        db.close().unwrap();
        let db = crate::Db::open(dir.path(), crate::Options::default()).unwrap();
        let querier = db.querier(i64::MIN, i64::MAX);
        let mut set = querier.select(true, None, &[]).unwrap();
        for i in 0..3u32 {
            let mut found = set.next().unwrap().unwrap();
            assert_eq!(found.labels, labels(i));
            let mut got = Vec::new();
            while found.samples.next() == ValueType::Float {
                got.push(found.samples.at());
            }
            let mut want: Vec<(i64, f64)> = samples.iter().filter(|s| s.r == i + 1).map(|s| (s.t, s.v)).collect();
            if i == 0 {
                want.push((50 * 15_000, 7.0));
            }
            assert_eq!(got, want);
        }
        assert!(set.next().is_none());
    }

    /// A snapshot record written before stored chunks had an encoding byte (type 4, closed
    /// chunks as plain XOR) still loads, with the same samples.
    #[test]
    fn legacy_xor_snapshot_records_still_decode() {
        let mut chunk = crate::chunk::XorChunk::new();
        let samples: Vec<(i64, f64)> = (0..10).map(|i| (1000 * i, i as f64 * 1.5)).collect();
        for &(t, v) in &samples {
            chunk.append(t, v);
        }
        let mut payload = Vec::new();
        payload.extend_from_slice(&7u32.to_le_bytes());
        put_uvarint(&mut payload, 1);
        for s in ["job", "a"] {
            put_uvarint(&mut payload, s.len() as u64);
            payload.extend_from_slice(s.as_bytes());
        }
        put_uvarint(&mut payload, 1);
        payload.extend_from_slice(&0i64.to_le_bytes());
        payload.extend_from_slice(&9000i64.to_le_bytes());
        put_uvarint(&mut payload, chunk.bytes().len() as u64);
        payload.extend_from_slice(chunk.bytes());
        payload.push(0);
        put_uvarint(&mut payload, 0);

        let snap = decode_snapshot_series(REC_SNAPSHOT_SERIES_XOR, &payload).expect("legacy record decodes");
        assert_eq!(snap.r, 7);
        assert_eq!(snap.chunks.len(), 1);
        let got: Vec<(i64, f64)> = crate::packed::StoredIterator::new(&snap.chunks[0].2[..]).collect();
        assert_eq!(got, samples);
        // The same bytes read as a current record are not a valid stored chunk sequence of
        // this length: the record type is what tells them apart.
        let current = decode_snapshot_series(REC_SNAPSHOT_SERIES, &payload);
        assert!(current.is_none_or(|s| s.chunks[0].2 != snap.chunks[0].2));
    }
}

//! Persisted blocks: an immutable directory per time range holding compressed series data
//! (`chunks`), an `index` (symbols, series, postings), `tombstones` and `meta.json`. Layout in
//! `tsdb/FORMAT.md`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use memmap2::Mmap;
use parking_lot::RwLock;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use sextant_model::{matches_all, Label, Labels, Matcher};

use crate::Error;

const INDEX_MAGIC: &[u8; 4] = b"SXBI";
const CHUNKS_MAGIC: &[u8; 4] = b"SXBC";
const TOMBSTONES_MAGIC: &[u8; 4] = b"SXBT";
/// Version of the block format written by this code.
pub const BLOCK_FORMAT_VERSION: u8 = 1;
/// Target size of the uncompressed payload of one chunks frame.
const FRAME_TARGET: usize = 4 << 20;
/// zstd level of chunks frames: 19 measured 0.530 bytes/sample against 0.545 at level 9 on
/// `gen_dataset.py` data (4 MiB frames).
const ZSTD_LEVEL: i32 = 19;

/// The statistics in `meta.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockStats {
    #[serde(rename = "numSeries")]
    pub series: u64,
    #[serde(rename = "numSamples")]
    pub samples: u64,
    #[serde(rename = "numChunks")]
    pub chunks: u64,
}

/// `meta.json` of a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    pub ulid: String,
    /// First timestamp held, ms (inclusive).
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// Last timestamp held, ms (inclusive).
    #[serde(rename = "maxTime")]
    pub max_time: i64,
    pub stats: BlockStats,
    /// 1 for a block cut from the head, parents' maximum + 1 after a merge.
    pub level: u32,
    /// Ids of the blocks this one replaces (a reopen deletes them if they are still there).
    #[serde(default)]
    pub parents: Vec<String>,
    pub version: u8,
}

static ULID_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A ULID-like id: 48 bits of milliseconds since the epoch, 80 bits of per-process entropy,
/// in Crockford base32 (26 characters); ids made later sort later.
pub fn new_ulid() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let count = ULID_COUNTER.fetch_add(1, Ordering::Relaxed);
    let entropy = (u128::from(std::process::id()) << 56) ^ (u128::from(nanos) << 24) ^ u128::from(count);
    let value: u128 = ((ms & 0xFFFF_FFFF_FFFF) << 80) | (entropy & ((1 << 80) - 1));
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    (0..26).map(|i| ALPHABET[((value >> (125 - i * 5)) & 31) as usize] as char).collect()
}

// ---------------------------------------------------------------------------------------------
// Varints

pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

pub(crate) fn put_varint(out: &mut Vec<u8>, x: i64) {
    put_uvarint(out, ((x << 1) ^ (x >> 63)) as u64);
}

/// A bounds-checked reader over a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    fn corrupt(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }
    pub(crate) fn uvarint(&mut self) -> Result<u64, String> {
        let mut x = 0u64;
        let mut shift = 0;
        loop {
            let Some(&b) = self.buf.get(self.pos) else { return Err(self.corrupt("truncated varint")) };
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(self.corrupt("varint overflow"));
            }
            x |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(x);
            }
            shift += 7;
            if shift > 63 {
                return Err(self.corrupt("varint overflow"));
            }
        }
    }
    pub(crate) fn varint(&mut self) -> Result<i64, String> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() - self.pos < n {
            return Err(self.corrupt("truncated"));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.bytes(1)?[0])
    }
    fn u64_le(&mut self) -> Result<u64, String> {
        let b = self.bytes(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn len_prefixed(&mut self) -> Result<&'a [u8], String> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| self.corrupt("length"))?;
        self.bytes(n)
    }
}

// ---------------------------------------------------------------------------------------------
// Series codec

const POW10: [f64; 10] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// The smallest `e` such that every value is `integer / 10^e` exactly, with the integers below 2^53.
fn decimal_exponent(values: &[f64]) -> Option<usize> {
    'exp: for (e, &p) in POW10.iter().enumerate() {
        for &v in values {
            let x = v * p;
            let r = x.round();
            if r.is_nan() || r.abs() >= 9.0e15 || ((r as i64) as f64 / p).to_bits() != v.to_bits() {
                continue 'exp;
            }
        }
        return Some(e);
    }
    None
}

/// Encodes timestamps (strictly increasing) into `ts` and values into `vals`.
pub(crate) fn encode_series(samples: &[(i64, f64)], ts: &mut Vec<u8>, vals: &mut Vec<u8>) {
    put_uvarint(ts, samples.len() as u64);
    let mut prev_t = 0i64;
    let mut prev_d = 0i64;
    for (i, &(t, _)) in samples.iter().enumerate() {
        match i {
            0 => put_varint(ts, t),
            1 => {
                prev_d = t.wrapping_sub(prev_t);
                put_varint(ts, prev_d);
            }
            _ => {
                let d = t.wrapping_sub(prev_t);
                put_varint(ts, d.wrapping_sub(prev_d));
                prev_d = d;
            }
        }
        prev_t = t;
    }
    let Some(&(_, first)) = samples.first() else { return };
    let values: Vec<f64> = samples.iter().map(|s| s.1).collect();
    if values.iter().all(|v| v.to_bits() == first.to_bits()) {
        vals.push(0);
        vals.extend_from_slice(&first.to_bits().to_le_bytes());
    } else if let Some(e) = decimal_exponent(&values) {
        // Delta coding (gauges: small steps either way) or delta-of-delta (counters growing at
        // a steady rate), whichever is shorter.
        let ints: Vec<i64> = values.iter().map(|v| (v * POW10[e]).round() as i64).collect();
        let (mut delta, mut dod) = (vec![1, e as u8], vec![3, e as u8]);
        let (mut prev, mut prev_d) = (0i64, 0i64);
        for &x in &ints {
            let d = x.wrapping_sub(prev);
            put_varint(&mut delta, d);
            put_varint(&mut dod, d.wrapping_sub(prev_d));
            prev = x;
            prev_d = d;
        }
        vals.extend_from_slice(if dod.len() < delta.len() { &dod } else { &delta });
    } else {
        vals.push(2);
        let mut prev = 0u64;
        for v in values {
            vals.extend_from_slice(&(v.to_bits() ^ prev).to_le_bytes());
            prev = v.to_bits();
        }
    }
}

/// Decodes what [`encode_series`] wrote; `limit` bounds the sample count (the caller's budget).
pub(crate) fn decode_series(ts: &[u8], vals: &[u8], limit: usize) -> Result<Vec<(i64, f64)>, String> {
    let mut r = Reader::new(ts);
    let n = r.uvarint()? as usize;
    if n > limit || n > ts.len() {
        return Err(format!("sample count {n} exceeds its bytes"));
    }
    let mut out = Vec::with_capacity(n);
    let (mut t, mut d) = (0i64, 0i64);
    for i in 0..n {
        match i {
            0 => t = r.varint()?,
            1 => {
                d = r.varint()?;
                t = t.wrapping_add(d);
            }
            _ => {
                d = d.wrapping_add(r.varint()?);
                t = t.wrapping_add(d);
            }
        }
        out.push((t, 0.0));
    }
    if n == 0 {
        return Ok(out);
    }
    let mut r = Reader::new(vals);
    match r.u8()? {
        0 => {
            let v = f64::from_bits(r.u64_le()?);
            out.iter_mut().for_each(|s| s.1 = v);
        }
        1 => {
            let e = r.u8()? as usize;
            let p = *POW10.get(e).ok_or_else(|| format!("bad decimal exponent {e}"))?;
            let mut x = 0i64;
            for s in out.iter_mut() {
                x = x.wrapping_add(r.varint()?);
                s.1 = x as f64 / p;
            }
        }
        3 => {
            let e = r.u8()? as usize;
            let p = *POW10.get(e).ok_or_else(|| format!("bad decimal exponent {e}"))?;
            let (mut x, mut d) = (0i64, 0i64);
            for s in out.iter_mut() {
                d = d.wrapping_add(r.varint()?);
                x = x.wrapping_add(d);
                s.1 = x as f64 / p;
            }
        }
        2 => {
            let mut prev = 0u64;
            for s in out.iter_mut() {
                prev ^= r.u64_le()?;
                s.1 = f64::from_bits(prev);
            }
        }
        k => return Err(format!("unknown value encoding {k}")),
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Sections

fn put_section(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
}

fn read_section<'a>(buf: &'a [u8], pos: &mut usize, what: &str) -> Result<&'a [u8], String> {
    let err = |m: &str| format!("{what}: {m} at byte {pos}", pos = *pos);
    let len_bytes = buf.get(*pos..*pos + 4).ok_or_else(|| err("truncated section header"))?;
    let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
    let payload = buf.get(*pos + 4..*pos + 4 + len).ok_or_else(|| err("truncated section"))?;
    let crc = buf.get(*pos + 4 + len..*pos + 8 + len).ok_or_else(|| err("truncated checksum"))?;
    if crc32fast::hash(payload) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(err("checksum mismatch"));
    }
    *pos += 8 + len;
    Ok(payload)
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

fn block_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Block { path: path.to_path_buf(), message: message.into() }
}

// ---------------------------------------------------------------------------------------------
// Writer

/// Writes a block of `series` (sorted by labels, samples sorted by time, none empty) into
/// `parent/<ulid>`: files go to `parent/<ulid>.tmp`, are fsynced, and the directory is renamed,
/// so a crash leaves either no block or a complete one. Returns the new block's metadata.
pub fn write_block(parent: &Path, series: &[SeriesData], level: u32, parents: Vec<String>) -> Result<BlockMeta, Error> {
    let ulid = new_ulid();
    let tmp = parent.join(format!("{ulid}.tmp"));
    let final_dir = parent.join(&ulid);
    let io = |e: std::io::Error| block_err(&tmp, e.to_string());
    std::fs::create_dir_all(&tmp).map_err(io)?;

    // Symbols.
    let mut symbols: BTreeMap<&str, u32> = BTreeMap::new();
    for (labels, _) in series {
        for l in labels.iter() {
            symbols.insert(&l.name, 0);
            symbols.insert(&l.value, 0);
        }
    }
    for (i, v) in symbols.values_mut().enumerate() {
        *v = i as u32;
    }

    // Chunks: frames of column blocks (all timestamps, then all values), zstd-compressed.
    let mut chunks = Vec::new();
    chunks.extend_from_slice(CHUNKS_MAGIC);
    chunks.extend_from_slice(&[BLOCK_FORMAT_VERSION, 0, 0, 0]);
    let mut entries: Vec<(u64, u32)> = Vec::with_capacity(series.len());
    let (mut ts, mut vals, mut lens) = (Vec::new(), Vec::new(), Vec::new());
    let mut in_frame = 0u32;
    let mut stats = BlockStats::default();
    let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
    let flush = |chunks: &mut Vec<u8>, ts: &mut Vec<u8>, vals: &mut Vec<u8>, lens: &mut Vec<u8>, n: &mut u32| {
        if *n == 0 {
            return Ok(());
        }
        let mut raw = Vec::with_capacity(lens.len() + ts.len() + vals.len() + 8);
        put_uvarint(&mut raw, u64::from(*n));
        raw.extend_from_slice(lens);
        raw.extend_from_slice(ts);
        raw.extend_from_slice(vals);
        let compressed = zstd::bulk::compress(&raw, ZSTD_LEVEL)?;
        put_section(chunks, &compressed);
        ts.clear();
        vals.clear();
        lens.clear();
        *n = 0;
        Ok::<(), std::io::Error>(())
    };
    for (_, samples) in series {
        if in_frame == 0 {
            entries.push((chunks.len() as u64, 0));
        } else {
            entries.push((entries.last().expect("frame started").0, in_frame));
        }
        let (t0, v0) = (ts.len(), vals.len());
        encode_series(samples, &mut ts, &mut vals);
        put_uvarint(&mut lens, (ts.len() - t0) as u64);
        put_uvarint(&mut lens, (vals.len() - v0) as u64);
        in_frame += 1;
        stats.series += 1;
        stats.samples += samples.len() as u64;
        stats.chunks += 1;
        if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
            min_time = min_time.min(first.0);
            max_time = max_time.max(last.0);
        }
        if ts.len() + vals.len() >= FRAME_TARGET {
            flush(&mut chunks, &mut ts, &mut vals, &mut lens, &mut in_frame).map_err(io)?;
        }
    }
    flush(&mut chunks, &mut ts, &mut vals, &mut lens, &mut in_frame).map_err(io)?;

    // Index.
    let mut index = Vec::new();
    index.extend_from_slice(INDEX_MAGIC);
    index.extend_from_slice(&[BLOCK_FORMAT_VERSION, 0, 0, 0]);
    let mut sec = Vec::new();
    put_uvarint(&mut sec, symbols.len() as u64);
    for s in symbols.keys() {
        put_uvarint(&mut sec, s.len() as u64);
        sec.extend_from_slice(s.as_bytes());
    }
    put_section(&mut index, &sec);
    sec.clear();
    put_uvarint(&mut sec, series.len() as u64);
    let mut postings: BTreeMap<(u32, u32), RoaringBitmap> = BTreeMap::new();
    for (id, ((labels, samples), (frame, idx))) in series.iter().zip(&entries).enumerate() {
        put_uvarint(&mut sec, labels.len() as u64);
        for l in labels.iter() {
            let (n, v) = (symbols[&*l.name], symbols[&*l.value]);
            put_uvarint(&mut sec, u64::from(n));
            put_uvarint(&mut sec, u64::from(v));
            postings.entry((n, v)).or_default().insert(id as u32);
        }
        put_varint(&mut sec, samples.first().map_or(0, |s| s.0));
        put_varint(&mut sec, samples.last().map_or(0, |s| s.0));
        put_uvarint(&mut sec, *frame);
        put_uvarint(&mut sec, u64::from(*idx));
    }
    put_section(&mut index, &sec);
    sec.clear();
    put_uvarint(&mut sec, postings.len() as u64);
    let mut bitmap = Vec::new();
    for ((n, v), ids) in &postings {
        put_uvarint(&mut sec, u64::from(*n));
        put_uvarint(&mut sec, u64::from(*v));
        bitmap.clear();
        ids.serialize_into(&mut bitmap).map_err(io)?;
        put_uvarint(&mut sec, bitmap.len() as u64);
        sec.extend_from_slice(&bitmap);
    }
    put_section(&mut index, &sec);

    let meta = BlockMeta {
        ulid: ulid.clone(),
        min_time: if stats.samples == 0 { 0 } else { min_time },
        max_time: if stats.samples == 0 { 0 } else { max_time },
        stats,
        level,
        parents,
        version: BLOCK_FORMAT_VERSION,
    };
    write_file(&tmp.join("chunks"), &chunks).map_err(io)?;
    write_file(&tmp.join("index"), &index).map_err(io)?;
    write_file(&tmp.join("tombstones"), &encode_tombstones(&[])).map_err(io)?;
    let json = serde_json::to_vec_pretty(&meta).map_err(|e| block_err(&tmp, e.to_string()))?;
    write_file(&tmp.join("meta.json"), &json).map_err(io)?;
    sync_dir(&tmp).map_err(io)?;
    std::fs::rename(&tmp, &final_dir).map_err(io)?;
    sync_dir(parent).map_err(io)?;
    Ok(meta)
}

/// One series with its samples, sorted by time.
pub type SeriesData = (Labels, Vec<(i64, f64)>);

/// A block directory that failed to open, with the reason.
pub type FailedBlock = (PathBuf, String);

/// A deleted range of one series of a block.
pub(crate) type Tombstone = (u32, i64, i64);

fn encode_tombstones(t: &[Tombstone]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(TOMBSTONES_MAGIC);
    out.extend_from_slice(&[BLOCK_FORMAT_VERSION, 0, 0, 0]);
    let mut sec = Vec::new();
    put_uvarint(&mut sec, t.len() as u64);
    for &(id, mint, maxt) in t {
        put_uvarint(&mut sec, u64::from(id));
        put_varint(&mut sec, mint);
        put_varint(&mut sec, maxt);
    }
    put_section(&mut out, &sec);
    out
}

fn decode_tombstones(buf: &[u8]) -> Result<Vec<Tombstone>, String> {
    check_header(buf, TOMBSTONES_MAGIC, "tombstones")?;
    let mut pos = 8;
    let sec = read_section(buf, &mut pos, "tombstones")?;
    let mut r = Reader::new(sec);
    let n = r.uvarint()? as usize;
    let mut out = Vec::with_capacity(n.min(sec.len()));
    for _ in 0..n {
        out.push((r.uvarint()? as u32, r.varint()?, r.varint()?));
    }
    Ok(out)
}

fn check_header(buf: &[u8], magic: &[u8; 4], what: &str) -> Result<(), String> {
    if buf.len() < 8 || &buf[..4] != magic {
        return Err(format!("{what}: bad magic"));
    }
    if buf[4] != BLOCK_FORMAT_VERSION {
        return Err(format!("{what}: unsupported version {}", buf[4]));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reader

#[derive(Debug)]
struct SeriesEntry {
    labels: Labels,
    mint: i64,
    maxt: i64,
    frame: u64,
    idx: u32,
}

/// An open, immutable block: index held in memory, chunks read through `mmap`.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    chunks: Mmap,
    series: Vec<SeriesEntry>,
    postings: BTreeMap<String, BTreeMap<String, RoaringBitmap>>,
    tombstones: RwLock<Vec<Tombstone>>,
    index_bytes: u64,
    /// Decompressed chunks frames, most recently used last.
    frames: parking_lot::Mutex<Vec<(u64, Arc<Frame>)>>,
}

/// Bytes of decompressed frames all blocks of the process may keep (queries re-read the same
/// frames; decompressing a 4 MiB zstd frame costs milliseconds).
const FRAME_CACHE_BYTES: usize = 256 << 20;
static FRAME_CACHE_USED: AtomicUsize = AtomicUsize::new(0);

/// One decompressed chunks frame with the byte ranges of each series' columns.
#[derive(Debug)]
struct Frame {
    raw: Vec<u8>,
    /// Per series of the frame: (timestamps start, timestamps end, values start, values end).
    columns: Vec<(usize, usize, usize, usize)>,
}

impl Frame {
    fn parse(raw: Vec<u8>) -> Result<Frame, String> {
        let mut r = Reader::new(&raw);
        let n = r.uvarint()? as usize;
        let mut lens = Vec::with_capacity(n.min(raw.len()));
        for _ in 0..n {
            lens.push((r.uvarint()? as usize, r.uvarint()? as usize));
        }
        let base = r.pos;
        let total_ts = lens.iter().try_fold(0usize, |a, l| a.checked_add(l.0)).ok_or("bad frame lengths")?;
        let (mut ts, mut val) = (base, base.checked_add(total_ts).ok_or("bad frame lengths")?);
        let mut columns = Vec::with_capacity(lens.len());
        for (t, v) in lens {
            let (ts_end, val_end) =
                (ts.checked_add(t).ok_or("bad frame lengths")?, val.checked_add(v).ok_or("bad frame lengths")?);
            if ts_end > raw.len() || val_end > raw.len() {
                return Err("truncated frame".into());
            }
            columns.push((ts, ts_end, val, val_end));
            (ts, val) = (ts_end, val_end);
        }
        Ok(Frame { raw, columns })
    }

    fn bytes(&self) -> usize {
        self.raw.len() + self.columns.len() * 32
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        let frames = self.frames.get_mut();
        let freed: usize = frames.iter().map(|(_, f)| f.bytes()).sum();
        FRAME_CACHE_USED.fetch_sub(freed, Ordering::Relaxed);
    }
}

impl Block {
    /// Opens the block in `dir`, verifying the checksums of every section and frame.
    pub fn open(dir: &Path) -> Result<Block, Error> {
        let err = |m: String| block_err(dir, m);
        let meta_bytes = std::fs::read(dir.join("meta.json")).map_err(|e| err(format!("meta.json: {e}")))?;
        let meta: BlockMeta = serde_json::from_slice(&meta_bytes).map_err(|e| err(format!("meta.json: {e}")))?;
        if meta.version != BLOCK_FORMAT_VERSION {
            return Err(err(format!("unsupported block version {}", meta.version)));
        }
        let map = |name: &str| -> Result<Mmap, Error> {
            let f = File::open(dir.join(name)).map_err(|e| err(format!("{name}: {e}")))?;
            // SAFETY: block files are immutable once renamed into place; nothing truncates them
            // while open (deletion only unlinks).
            unsafe { Mmap::map(&f) }.map_err(|e| err(format!("{name}: {e}")))
        };
        let index = map("index")?;
        let chunks = map("chunks")?;
        check_header(&index, INDEX_MAGIC, "index").map_err(err)?;
        check_header(&chunks, CHUNKS_MAGIC, "chunks").map_err(err)?;
        // Every frame's checksum.
        let mut pos = 8;
        while pos < chunks.len() {
            read_section(&chunks, &mut pos, "chunks").map_err(err)?;
        }
        let mut pos = 8;
        let sym_sec = read_section(&index, &mut pos, "index symbols").map_err(err)?;
        let series_sec = read_section(&index, &mut pos, "index series").map_err(err)?;
        let post_sec = read_section(&index, &mut pos, "index postings").map_err(err)?;
        let parse = || -> Result<_, String> {
            let mut r = Reader::new(sym_sec);
            let n = r.uvarint()? as usize;
            let mut symbols = Vec::with_capacity(n.min(sym_sec.len()));
            for _ in 0..n {
                let s = std::str::from_utf8(r.len_prefixed()?).map_err(|e| format!("symbol: {e}"))?;
                symbols.push(s.to_string());
            }
            let sym = |i: u64| symbols.get(i as usize).ok_or_else(|| format!("bad symbol reference {i}"));
            let mut r = Reader::new(series_sec);
            let n = r.uvarint()? as usize;
            let mut series = Vec::with_capacity(n.min(series_sec.len()));
            for _ in 0..n {
                let k = r.uvarint()? as usize;
                let mut labels = Vec::with_capacity(k.min(64));
                for _ in 0..k {
                    let name = sym(r.uvarint()?)?;
                    let value = sym(r.uvarint()?)?;
                    labels.push(Label::new(name.as_str(), value.as_str()));
                }
                let (mint, maxt) = (r.varint()?, r.varint()?);
                let frame = r.uvarint()?;
                let idx = r.uvarint()? as u32;
                if frame as usize >= chunks.len() {
                    return Err(format!("series frame offset {frame} beyond the chunks file"));
                }
                series.push(SeriesEntry { labels: Labels::from_sorted(labels), mint, maxt, frame, idx });
            }
            let mut r = Reader::new(post_sec);
            let n = r.uvarint()?;
            let mut postings: BTreeMap<String, BTreeMap<String, RoaringBitmap>> = BTreeMap::new();
            for _ in 0..n {
                let name = sym(r.uvarint()?)?;
                let value = sym(r.uvarint()?)?;
                let bytes = r.len_prefixed()?;
                let bm = RoaringBitmap::deserialize_from(bytes).map_err(|e| format!("postings: {e}"))?;
                postings.entry(name.clone()).or_default().insert(value.clone(), bm);
            }
            Ok((series, postings))
        };
        let (series, postings) = parse().map_err(err)?;
        let tomb_bytes = std::fs::read(dir.join("tombstones")).map_err(|e| err(format!("tombstones: {e}")))?;
        let tombstones = decode_tombstones(&tomb_bytes).map_err(err)?;
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            chunks,
            series,
            postings,
            tombstones: RwLock::new(tombstones),
            index_bytes: index.len() as u64,
            frames: parking_lot::Mutex::new(Vec::new()),
        })
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of the chunks file.
    pub fn chunk_bytes(&self) -> u64 {
        self.chunks.len() as u64
    }

    /// Bytes of the index file.
    pub fn index_bytes(&self) -> u64 {
        self.index_bytes
    }

    /// Bytes of every file of the block.
    pub fn size_bytes(&self) -> u64 {
        let mut total = 0;
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                total += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        total
    }

    /// Number of tombstones (deleted series ranges) of this block.
    pub fn num_tombstones(&self) -> usize {
        self.tombstones.read().len()
    }

    /// Labels of every series, in index order (sorted).
    pub fn series_labels(&self) -> impl Iterator<Item = &Labels> {
        self.series.iter().map(|s| &s.labels)
    }

    fn postings_for(&self, matchers: &[Matcher]) -> RoaringBitmap {
        let mut all = RoaringBitmap::new();
        all.insert_range(0..self.series.len() as u32);
        let mut result = all.clone();
        for m in matchers {
            if m.matches_empty() {
                // Series without the label match too: subtract those whose value fails.
                if let Some(values) = self.postings.get(&m.name) {
                    for (v, bm) in values {
                        if !m.matches(v) {
                            result -= bm;
                        }
                    }
                }
            } else {
                let mut set = RoaringBitmap::new();
                if let Some(values) = self.postings.get(&m.name) {
                    for (v, bm) in values {
                        if m.matches(v) {
                            set |= bm;
                        }
                    }
                }
                result &= set;
            }
        }
        result
    }

    /// Series matching `matchers` with samples in `[mint, maxt]`, tombstones applied.
    pub(crate) fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<SeriesData>, Error> {
        if self.meta.stats.samples == 0 || self.meta.max_time < mint || self.meta.min_time > maxt {
            return Ok(Vec::new());
        }
        let tombstones = self.tombstones.read().clone();
        let mut out = Vec::new();
        let mut cache: Option<(u64, Arc<Frame>)> = None;
        for id in self.postings_for(matchers) {
            let entry = &self.series[id as usize];
            if entry.maxt < mint || entry.mint > maxt || !matches_all(matchers, &entry.labels) {
                continue;
            }
            let mut samples = self.read_series(entry, &mut cache)?;
            samples.retain(|s| s.0 >= mint && s.0 <= maxt);
            for &(tid, a, b) in &tombstones {
                if tid == id {
                    samples.retain(|s| s.0 < a || s.0 > b);
                }
            }
            if !samples.is_empty() {
                out.push((entry.labels.clone(), samples));
            }
        }
        Ok(out)
    }

    fn read_series(
        &self,
        entry: &SeriesEntry,
        cache: &mut Option<(u64, Arc<Frame>)>,
    ) -> Result<Vec<(i64, f64)>, Error> {
        let err = |m: String| block_err(&self.dir, m);
        if cache.as_ref().map(|c| c.0) != Some(entry.frame) {
            *cache = Some((entry.frame, self.frame(entry.frame)?));
        }
        let frame = &cache.as_ref().expect("filled").1;
        let &(ts_start, ts_end, val_start, val_end) =
            frame.columns.get(entry.idx as usize).ok_or_else(|| err("series index beyond its frame".into()))?;
        let (ts, vals) = (&frame.raw[ts_start..ts_end], &frame.raw[val_start..val_end]);
        decode_series(ts, vals, ts.len() + 1).map_err(err)
    }

    /// The decompressed frame at byte `offset` of the chunks file, from the cache or read now.
    fn frame(&self, offset: u64) -> Result<Arc<Frame>, Error> {
        let err = |m: String| block_err(&self.dir, m);
        {
            let mut frames = self.frames.lock();
            if let Some(i) = frames.iter().position(|(o, _)| *o == offset) {
                let hit = frames.remove(i);
                let frame = hit.1.clone();
                frames.push(hit);
                return Ok(frame);
            }
        }
        let mut pos = offset as usize;
        let compressed = read_section(&self.chunks, &mut pos, "chunks").map_err(err)?;
        let raw = zstd::bulk::decompress(compressed, 64 << 20).map_err(|e| err(format!("chunks: {e}")))?;
        let frame = Arc::new(Frame::parse(raw).map_err(err)?);
        let size = frame.bytes();
        let mut frames = self.frames.lock();
        // Make room: this block's least recently used frames go first.
        while FRAME_CACHE_USED.load(Ordering::Relaxed) + size > FRAME_CACHE_BYTES && !frames.is_empty() {
            let (_, old) = frames.remove(0);
            FRAME_CACHE_USED.fetch_sub(old.bytes(), Ordering::Relaxed);
        }
        if FRAME_CACHE_USED.load(Ordering::Relaxed) + size <= FRAME_CACHE_BYTES
            && !frames.iter().any(|(o, _)| *o == offset)
        {
            FRAME_CACHE_USED.fetch_add(size, Ordering::Relaxed);
            frames.push((offset, frame.clone()));
        }
        Ok(frame)
    }

    /// Adds tombstones for the series matching `matchers` over `[mint, maxt]`, rewriting the
    /// `tombstones` file atomically.
    pub(crate) fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<(), Error> {
        let mut tombstones = self.tombstones.write();
        let before = tombstones.len();
        for id in self.postings_for(matchers) {
            let e = &self.series[id as usize];
            if matches_all(matchers, &e.labels) && e.maxt >= mint && e.mint <= maxt {
                tombstones.push((id, mint, maxt));
            }
        }
        if tombstones.len() == before {
            return Ok(());
        }
        let tmp = self.dir.join("tombstones.tmp");
        let io = |e: std::io::Error| block_err(&self.dir, e.to_string());
        write_file(&tmp, &encode_tombstones(&tombstones)).map_err(io)?;
        std::fs::rename(&tmp, self.dir.join("tombstones")).map_err(io)?;
        Ok(())
    }

    /// Every series of the block with tombstones applied (for compaction).
    pub(crate) fn all_series(&self) -> Result<Vec<SeriesData>, Error> {
        self.select(&[], i64::MIN, i64::MAX)
    }
}

/// Opens every block directory under `dir`. Leftover `*.tmp` directories (an interrupted write)
/// are removed; blocks replaced by a finished merge (listed as `parents` of a present block) are
/// deleted; blocks that fail to open are skipped and returned with the reason.
pub fn open_blocks(dir: &Path) -> Result<(Vec<Block>, Vec<FailedBlock>), Error> {
    let io = |e: std::io::Error| Error::Open { path: dir.to_path_buf(), source: e };
    let mut blocks = Vec::new();
    let mut failed = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return Ok((blocks, failed)) };
    let mut paths: Vec<PathBuf> = Vec::new();
    for e in rd {
        let e = e.map_err(io)?;
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if !e.file_type().map_err(io)?.is_dir() || name == "wal" {
            continue;
        }
        if name.ends_with(".tmp") {
            let _ = std::fs::remove_dir_all(&path);
            continue;
        }
        if name.len() == 26 && path.join("meta.json").exists() {
            paths.push(path);
        }
    }
    paths.sort();
    for p in paths {
        match Block::open(&p) {
            Ok(b) => blocks.push(b),
            Err(e) => failed.push((p, e.to_string())),
        }
    }
    let replaced: std::collections::HashSet<String> = blocks.iter().flat_map(|b| b.meta.parents.clone()).collect();
    let (gone, kept): (Vec<Block>, Vec<Block>) = blocks.into_iter().partition(|b| replaced.contains(&b.meta.ulid));
    for b in gone {
        let _ = std::fs::remove_dir_all(&b.dir);
    }
    let mut kept = kept;
    kept.sort_by_key(|b| (b.meta.min_time, b.meta.ulid.clone()));
    Ok((kept, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(samples: &[(i64, f64)]) -> usize {
        let (mut ts, mut vals) = (Vec::new(), Vec::new());
        encode_series(samples, &mut ts, &mut vals);
        let back = decode_series(&ts, &vals, usize::MAX).unwrap();
        assert_eq!(back.len(), samples.len());
        for (a, b) in back.iter().zip(samples) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits());
        }
        vals.first().copied().map_or(99, usize::from)
    }

    #[test]
    fn series_codec_picks_the_encoding() {
        let t = |i: i64| 1_000 + i * 15_000;
        // (samples, expected value encoding)
        let cases: Vec<(Vec<(i64, f64)>, usize)> = vec![
            (vec![], 99),
            (vec![(5, 1.0)], 0),
            ((0..100).map(|i| (t(i), 3.25)).collect(), 0),
            ((0..100).map(|i| (t(i), i as f64 / 100.0)).collect(), 1),
            ((0..100).map(|i| (t(i), (i * 4096) as f64)).collect(), 3),
            ((0..100).map(|i| (t(i), (i * i % 7) as f64)).collect(), 1),
            ((1..100).map(|i| (t(i), -(i as f64) * 1.5)).collect(), 1),
            ((0..100).map(|i| (t(i), (i as f64).sqrt())).collect(), 2),
            (vec![(1, 1.0), (2, f64::from_bits(0x7ff0000000000002)), (3, 2.0)], 2),
            (vec![(1, f64::INFINITY), (2, 2.0)], 2),
            (vec![(1, -0.0), (2, 0.0)], 2),
            (vec![(i64::MIN, 1.0), (i64::MAX, 1e300)], 2),
        ];
        for (samples, enc) in cases {
            assert_eq!(roundtrip(&samples), enc, "{samples:?}");
        }
    }

    #[test]
    fn decoder_rejects_garbage_without_panicking() {
        for input in [&[][..], &[0xff; 12], &[5, 0, 2, 2, 2, 2], &[200, 1]] {
            let _ = decode_series(input, &[1, 9, 0], 1 << 20);
            let _ = decode_series(input, input, 1 << 20);
        }
    }

    proptest::proptest! {
        #[test]
        fn codec_roundtrips(deltas in proptest::collection::vec(1i64..100_000, 0..300),
                            vals in proptest::collection::vec(proptest::num::f64::ANY, 300)) {
            let mut t = 0;
            let samples: Vec<(i64, f64)> = deltas.iter().zip(&vals).map(|(d, v)| { t += d; (t, *v) }).collect();
            roundtrip(&samples);
        }

        #[test]
        fn decoder_never_panics(ts in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
                                vals in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = decode_series(&ts, &vals, 1 << 16);
        }
    }
}

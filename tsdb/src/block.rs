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
pub const BLOCK_FORMAT_VERSION: u8 = 2;
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

/// Value stream encodings (the first byte of a value stream).
const VAL_CONSTANT: u8 = 0;
const VAL_DECIMAL_DELTA: u8 = 1;
const VAL_RAW: u8 = 2;
const VAL_DECIMAL_DOD: u8 = 3;
const VAL_DECIMAL_PACKED: u8 = 4;
/// Timestamp stream kinds of format version 2 (the first byte of a timestamp stream).
const TS_REGULAR: u8 = 0;
const TS_DOD: u8 = 1;

/// Names of the value encodings, indexed by their byte (for `analyze`).
pub const VALUE_ENCODINGS: [&str; 5] = ["constant", "decimal-delta", "raw-xor", "decimal-dod", "decimal-packed"];

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

/// Bits an adaptive order-0 coder (Krichevsky–Trofimov estimator over bytes) spends on `bytes`:
/// about what zstd's Huffman stage makes of a varint stream, including the cost of learning its
/// distribution, which the plain empirical entropy of a short stream leaves out.
fn adaptive_code_bits(bytes: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    let mut bits = 0.0;
    for (i, &b) in bytes.iter().enumerate() {
        let c = &mut counts[b as usize];
        bits -= ((f64::from(*c) + 0.5) / (i as f64 + 128.0)).log2();
        *c += 1;
    }
    bits
}

/// Appends `diffs` as: varint base (their minimum), u8 width w, then every `d − base` in w bits,
/// least significant bit first, packed across byte boundaries (the last byte zero-padded).
fn put_packed(out: &mut Vec<u8>, diffs: &[i64]) {
    let base = diffs.iter().copied().min().unwrap_or(0);
    let max = diffs.iter().map(|d| d.wrapping_sub(base) as u64).max().unwrap_or(0);
    let w = 64 - max.leading_zeros();
    put_varint(out, base);
    out.push(w as u8);
    let (mut acc, mut bits) = (0u128, 0u32);
    for &d in diffs {
        acc |= u128::from(d.wrapping_sub(base) as u64) << bits;
        bits += w;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

/// Encodes timestamps (strictly increasing) into `ts` and values into `vals` (format version 2).
pub(crate) fn encode_series(samples: &[(i64, f64)], ts: &mut Vec<u8>, vals: &mut Vec<u8>) {
    encode_timestamps(samples, ts);
    encode_values(samples, vals);
}

fn encode_timestamps(samples: &[(i64, f64)], ts: &mut Vec<u8>) {
    let step = match samples {
        [a, b, ..] => b.0.wrapping_sub(a.0),
        _ => 0,
    };
    let regular = samples.windows(2).all(|w| w[1].0.wrapping_sub(w[0].0) == step);
    ts.push(if regular { TS_REGULAR } else { TS_DOD });
    put_uvarint(ts, samples.len() as u64);
    let Some(&(t0, _)) = samples.first() else { return };
    put_varint(ts, t0);
    if regular {
        put_varint(ts, step);
        return;
    }
    let (mut prev_t, mut prev_d) = (t0, 0i64);
    for (i, &(t, _)) in samples.iter().enumerate().skip(1) {
        let d = t.wrapping_sub(prev_t);
        put_varint(ts, if i == 1 { d } else { d.wrapping_sub(prev_d) });
        prev_d = d;
        prev_t = t;
    }
}

fn encode_values(samples: &[(i64, f64)], vals: &mut Vec<u8>) {
    let Some(&(_, first)) = samples.first() else { return };
    let values: Vec<f64> = samples.iter().map(|s| s.1).collect();
    if values.iter().all(|v| v.to_bits() == first.to_bits()) {
        vals.push(VAL_CONSTANT);
        vals.extend_from_slice(&first.to_bits().to_le_bytes());
        return;
    }
    let Some(e) = decimal_exponent(&values) else {
        vals.push(VAL_RAW);
        let mut prev = 0u64;
        for v in values {
            vals.extend_from_slice(&(v.to_bits() ^ prev).to_le_bytes());
            prev = v.to_bits();
        }
        return;
    };
    // Integers x_i = v_i · 10^e, their deltas and delta-of-deltas (earlier terms 0).
    let ints: Vec<i64> = values.iter().map(|v| (v * POW10[e]).round() as i64).collect();
    let mut deltas = Vec::with_capacity(ints.len());
    let mut dods = Vec::with_capacity(ints.len());
    let (mut prev, mut prev_d) = (0i64, 0i64);
    for &x in &ints {
        let d = x.wrapping_sub(prev);
        deltas.push(d);
        dods.push(d.wrapping_sub(prev_d));
        prev = x;
        prev_d = d;
    }
    let mut best: Vec<u8> = Vec::new();
    let mut best_bits = f64::INFINITY;
    // Varint streams (zstd's entropy stage squeezes them: gauges with small steps either way).
    for (kind, diffs) in [(VAL_DECIMAL_DELTA, &deltas), (VAL_DECIMAL_DOD, &dods)] {
        let mut out = vec![kind, e as u8];
        for &d in diffs.iter() {
            put_varint(&mut out, d);
        }
        let bits = adaptive_code_bits(&out[2..]) + 16.0;
        if bits < best_bits {
            best_bits = bits;
            best = out;
        }
    }
    // Bit-packed differences above their minimum (counters with noisy increments: close to
    // their entropy, which zstd cannot reach on varints).
    for order in [1u8, 2] {
        let mut out = vec![VAL_DECIMAL_PACKED, e as u8, order];
        let head = usize::from(order).min(ints.len());
        let rest: &[i64] = if order == 1 { &deltas[head..] } else { &dods[head..] };
        put_varint(&mut out, ints[0]);
        if order == 2 && ints.len() > 1 {
            put_varint(&mut out, deltas[1]);
        }
        put_packed(&mut out, rest);
        let bits = (out.len() * 8) as f64;
        if bits < best_bits {
            best_bits = bits;
            best = out;
        }
    }
    vals.extend_from_slice(&best);
}

/// Decodes what [`encode_series`] wrote in block format `version`; `limit` bounds the sample
/// count (the caller's budget).
pub(crate) fn decode_series(version: u8, ts: &[u8], vals: &[u8], limit: usize) -> Result<Vec<(i64, f64)>, String> {
    let mut r = Reader::new(ts);
    let kind = if version >= 2 { r.u8()? } else { TS_DOD };
    let n = r.uvarint()? as usize;
    if n > limit || (kind == TS_DOD && n > ts.len()) {
        return Err(format!("sample count {n} exceeds its bytes"));
    }
    let mut out = Vec::with_capacity(n);
    match kind {
        TS_REGULAR if n > 0 => {
            let t0 = r.varint()?;
            let step = r.varint()?;
            let mut t = t0;
            for _ in 0..n {
                out.push((t, 0.0));
                t = t.wrapping_add(step);
            }
        }
        TS_REGULAR => {}
        TS_DOD => {
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
        }
        k => return Err(format!("unknown timestamp encoding {k}")),
    }
    if n == 0 {
        return Ok(out);
    }
    let mut r = Reader::new(vals);
    let exponent = |r: &mut Reader<'_>| -> Result<f64, String> {
        let e = r.u8()? as usize;
        POW10.get(e).copied().ok_or_else(|| format!("bad decimal exponent {e}"))
    };
    match r.u8()? {
        VAL_CONSTANT => {
            let v = f64::from_bits(r.u64_le()?);
            out.iter_mut().for_each(|s| s.1 = v);
        }
        VAL_DECIMAL_DELTA => {
            let p = exponent(&mut r)?;
            let mut x = 0i64;
            for s in out.iter_mut() {
                x = x.wrapping_add(r.varint()?);
                s.1 = scale(x, p);
            }
        }
        VAL_DECIMAL_DOD => {
            let p = exponent(&mut r)?;
            let (mut x, mut d) = (0i64, 0i64);
            for s in out.iter_mut() {
                d = d.wrapping_add(r.varint()?);
                x = x.wrapping_add(d);
                s.1 = scale(x, p);
            }
        }
        VAL_DECIMAL_PACKED => {
            let p = exponent(&mut r)?;
            let order = r.u8()?;
            if order != 1 && order != 2 {
                return Err(format!("bad packed order {order}"));
            }
            let mut x = r.varint()?;
            let mut d = if order == 2 && n > 1 { r.varint()? } else { 0 };
            let base = r.varint()?;
            let w = u32::from(r.u8()?);
            if w > 64 {
                return Err(format!("bad packed width {w}"));
            }
            let head = usize::from(order).min(n);
            let m = n - head;
            let need = (m as u128 * u128::from(w)).div_ceil(8);
            if need > (r.buf.len() - r.pos) as u128 {
                return Err("truncated packed values".into());
            }
            let packed = r.bytes(need as usize)?;
            out[0].1 = scale(x, p);
            if head == 2 {
                x = x.wrapping_add(d);
                out[1].1 = scale(x, p);
            }
            let mask = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
            let (mut acc, mut bits, mut next) = (0u128, 0u32, 0usize);
            for s in out[head..].iter_mut() {
                while bits < w {
                    acc |= u128::from(packed[next]) << bits;
                    next += 1;
                    bits += 8;
                }
                let v = (acc as u64 & mask) as i64;
                acc = if w == 64 { acc >> 64 } else { acc >> w };
                bits -= w;
                let diff = v.wrapping_add(base);
                if order == 1 {
                    x = x.wrapping_add(diff);
                } else {
                    d = d.wrapping_add(diff);
                    x = x.wrapping_add(d);
                }
                s.1 = scale(x, p);
            }
        }
        VAL_RAW => {
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

/// A decimal value `x / p` (`p` a power of ten). Whole numbers (`p == 1`), the common case
/// for counters and byte gauges, skip the division: the same value, several times cheaper.
#[inline(always)]
fn scale(x: i64, p: f64) -> f64 {
    if p == 1.0 {
        x as f64
    } else {
        x as f64 / p
    }
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
/// `parent/<ulid>` with a [`BlockWriter`]. Returns the new block's metadata.
pub fn write_block(parent: &Path, series: &[SeriesData], level: u32, parents: Vec<String>) -> Result<BlockMeta, Error> {
    let mut w = BlockWriter::new(parent, level, parents)?;
    for (labels, samples) in series {
        w.add(labels, samples)?;
    }
    w.finish()
}

/// Index data kept per series while a block is written.
struct WrittenSeries {
    labels: Labels,
    mint: i64,
    maxt: i64,
    frame: u64,
    idx: u32,
}

/// Streams series into a new block: samples are encoded and compressed frame by frame into
/// `parent/<ulid>.tmp/chunks` as they come, so memory holds one frame plus the labels of the
/// series written; [`BlockWriter::finish`] writes the index, tombstones and `meta.json`, fsyncs
/// and renames the directory into place (a crash leaves either no block or a complete one).
/// Dropped unfinished, it removes its temporary directory.
pub struct BlockWriter {
    parent: PathBuf,
    ulid: String,
    tmp: PathBuf,
    chunks: std::io::BufWriter<File>,
    chunks_len: u64,
    series: Vec<WrittenSeries>,
    ts: Vec<u8>,
    vals: Vec<u8>,
    lens: Vec<u8>,
    in_frame: u32,
    frame_start: u64,
    stats: BlockStats,
    min_time: i64,
    max_time: i64,
    level: u32,
    parents: Vec<String>,
    zstd_level: i32,
    done: bool,
}

impl std::fmt::Debug for BlockWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockWriter").field("tmp", &self.tmp).field("stats", &self.stats).finish_non_exhaustive()
    }
}

impl BlockWriter {
    /// Starts a block in `parent/<new ulid>.tmp`; `level` and `parents` go to `meta.json`.
    pub fn new(parent: &Path, level: u32, parents: Vec<String>) -> Result<BlockWriter, Error> {
        let ulid = new_ulid();
        let tmp = parent.join(format!("{ulid}.tmp"));
        let io = |e: std::io::Error| block_err(&tmp, e.to_string());
        std::fs::create_dir_all(&tmp).map_err(io)?;
        let mut chunks = std::io::BufWriter::with_capacity(1 << 20, File::create(tmp.join("chunks")).map_err(io)?);
        chunks.write_all(CHUNKS_MAGIC).map_err(io)?;
        chunks.write_all(&[BLOCK_FORMAT_VERSION, 0, 0, 0]).map_err(io)?;
        Ok(BlockWriter {
            parent: parent.to_path_buf(),
            ulid,
            tmp,
            chunks,
            chunks_len: 8,
            series: Vec::new(),
            ts: Vec::new(),
            vals: Vec::new(),
            lens: Vec::new(),
            in_frame: 0,
            frame_start: 8,
            stats: BlockStats::default(),
            min_time: i64::MAX,
            max_time: i64::MIN,
            level,
            parents,
            zstd_level: ZSTD_LEVEL,
            done: false,
        })
    }

    /// Sets the zstd level of the chunks frames (default 19). Imports write their intermediate
    /// blocks fast (level 1) and let the final merge compress them well; the format is the same.
    pub fn set_zstd_level(&mut self, level: i32) {
        self.zstd_level = level;
    }

    /// Number of series added so far.
    pub fn num_series(&self) -> u64 {
        self.stats.series
    }

    /// Adds one series. Series must come in increasing label order, samples in increasing time
    /// order; a series without samples is skipped.
    pub fn add(&mut self, labels: &Labels, samples: &[(i64, f64)]) -> Result<(), Error> {
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else { return Ok(()) };
        if self.series.last().is_some_and(|s| s.labels >= *labels) {
            return Err(block_err(&self.tmp, format!("series {labels} out of order")));
        }
        if samples.len() as u64 > MAX_SERIES_SAMPLES {
            return Err(block_err(&self.tmp, format!("series {labels} has more than {MAX_SERIES_SAMPLES} samples")));
        }
        if samples.windows(2).any(|w| w[1].0 <= w[0].0) {
            return Err(block_err(&self.tmp, format!("samples of {labels} not in increasing time order")));
        }
        if self.in_frame == 0 {
            self.frame_start = self.chunks_len;
        }
        self.series.push(WrittenSeries {
            labels: labels.clone(),
            mint: first.0,
            maxt: last.0,
            frame: self.frame_start,
            idx: self.in_frame,
        });
        let (t0, v0) = (self.ts.len(), self.vals.len());
        encode_series(samples, &mut self.ts, &mut self.vals);
        put_uvarint(&mut self.lens, (self.ts.len() - t0) as u64);
        put_uvarint(&mut self.lens, (self.vals.len() - v0) as u64);
        self.in_frame += 1;
        self.stats.series += 1;
        self.stats.samples += samples.len() as u64;
        self.stats.chunks += 1;
        self.min_time = self.min_time.min(first.0);
        self.max_time = self.max_time.max(last.0);
        if self.ts.len() + self.vals.len() >= FRAME_TARGET {
            self.flush_frame()?;
        }
        Ok(())
    }

    fn flush_frame(&mut self) -> Result<(), Error> {
        if self.in_frame == 0 {
            return Ok(());
        }
        let io = |e: std::io::Error| block_err(&self.tmp, e.to_string());
        let mut raw = Vec::with_capacity(self.lens.len() + self.ts.len() + self.vals.len() + 8);
        put_uvarint(&mut raw, u64::from(self.in_frame));
        raw.extend_from_slice(&self.lens);
        raw.extend_from_slice(&self.ts);
        raw.extend_from_slice(&self.vals);
        let compressed = zstd::bulk::compress(&raw, self.zstd_level).map_err(io)?;
        let mut section = Vec::with_capacity(compressed.len() + 8);
        put_section(&mut section, &compressed);
        self.chunks.write_all(&section).map_err(io)?;
        self.chunks_len += section.len() as u64;
        self.ts.clear();
        self.vals.clear();
        self.lens.clear();
        self.in_frame = 0;
        Ok(())
    }

    /// Writes the index, tombstones and `meta.json`, fsyncs, renames the block into place and
    /// returns its metadata.
    pub fn finish(mut self) -> Result<BlockMeta, Error> {
        self.flush_frame()?;
        let tmp = self.tmp.clone();
        let io = |e: std::io::Error| block_err(&tmp, e.to_string());
        self.chunks.flush().map_err(io)?;
        self.chunks.get_ref().sync_all().map_err(io)?;
        let index = encode_index(&self.series).map_err(io)?;
        write_file(&tmp.join("index"), &index).map_err(io)?;
        write_file(&tmp.join("tombstones"), &encode_tombstones(&[])).map_err(io)?;
        let empty = self.stats.samples == 0;
        let meta = BlockMeta {
            ulid: self.ulid.clone(),
            min_time: if empty { 0 } else { self.min_time },
            max_time: if empty { 0 } else { self.max_time },
            stats: self.stats.clone(),
            level: self.level,
            parents: std::mem::take(&mut self.parents),
            version: BLOCK_FORMAT_VERSION,
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| block_err(&tmp, e.to_string()))?;
        write_file(&tmp.join("meta.json"), &json).map_err(io)?;
        sync_dir(&tmp).map_err(io)?;
        std::fs::rename(&tmp, self.parent.join(&self.ulid)).map_err(io)?;
        self.done = true;
        sync_dir(&self.parent).map_err(io)?;
        Ok(meta)
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// The index file: symbols, series, postings (FORMAT.md).
fn encode_index(series: &[WrittenSeries]) -> std::io::Result<Vec<u8>> {
    let mut symbols: BTreeMap<&str, u32> = BTreeMap::new();
    for s in series {
        for l in s.labels.iter() {
            symbols.insert(&l.name, 0);
            symbols.insert(&l.value, 0);
        }
    }
    for (i, v) in symbols.values_mut().enumerate() {
        *v = i as u32;
    }
    let mut index = Vec::new();
    index.extend_from_slice(INDEX_MAGIC);
    index.extend_from_slice(&[BLOCK_FORMAT_VERSION, 0, 0, 0]);
    let mut sec = Vec::new();
    put_uvarint(&mut sec, symbols.len() as u64);
    for s in symbols.keys() {
        put_uvarint(&mut sec, s.len() as u64);
        sec.extend_from_slice(s.as_bytes());
    }
    put_index_section(&mut index, &sec)?;
    sec.clear();
    put_uvarint(&mut sec, series.len() as u64);
    let mut postings: BTreeMap<(u32, u32), RoaringBitmap> = BTreeMap::new();
    for (id, s) in series.iter().enumerate() {
        put_uvarint(&mut sec, s.labels.len() as u64);
        for l in s.labels.iter() {
            let (n, v) = (symbols[&*l.name], symbols[&*l.value]);
            put_uvarint(&mut sec, u64::from(n));
            put_uvarint(&mut sec, u64::from(v));
            postings.entry((n, v)).or_default().insert(id as u32);
        }
        put_varint(&mut sec, s.mint);
        put_varint(&mut sec, s.maxt);
        put_uvarint(&mut sec, s.frame);
        put_uvarint(&mut sec, u64::from(s.idx));
    }
    put_index_section(&mut index, &sec)?;
    sec.clear();
    put_uvarint(&mut sec, postings.len() as u64);
    let mut bitmap = Vec::new();
    for ((n, v), ids) in &postings {
        put_uvarint(&mut sec, u64::from(*n));
        put_uvarint(&mut sec, u64::from(*v));
        bitmap.clear();
        ids.serialize_into(&mut bitmap)?;
        put_uvarint(&mut sec, bitmap.len() as u64);
        sec.extend_from_slice(&bitmap);
    }
    put_index_section(&mut index, &sec)?;
    Ok(index)
}

/// An index section of format version 2: the payload is a zstd frame.
fn put_index_section(out: &mut Vec<u8>, payload: &[u8]) -> std::io::Result<()> {
    put_section(out, &zstd::bulk::compress(payload, ZSTD_LEVEL)?);
    Ok(())
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

/// Checks the magic and returns the format version (1 or 2).
fn check_header(buf: &[u8], magic: &[u8; 4], what: &str) -> Result<u8, String> {
    if buf.len() < 8 || &buf[..4] != magic {
        return Err(format!("{what}: bad magic"));
    }
    if !(1..=BLOCK_FORMAT_VERSION).contains(&buf[4]) {
        return Err(format!("{what}: unsupported version {}", buf[4]));
    }
    Ok(buf[4])
}

/// Decompresses a zstd frame whose content size is recorded, at most `limit` bytes.
fn unzstd(frame: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .map_err(|_| "bad zstd frame".to_string())?
        .ok_or("zstd frame without a content size")?;
    if size > limit as u64 {
        return Err(format!("zstd frame of {size} bytes exceeds the limit"));
    }
    zstd::bulk::decompress(frame, size as usize).map_err(|e| e.to_string())
}

/// Most samples one series of a block may hold (a bound for decoding damaged data).
const MAX_SERIES_SAMPLES: u64 = 1 << 24;

/// Largest decompressed chunks frame or index section accepted.
const MAX_SECTION: usize = 1 << 30;

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

/// A decompressed chunks frame with the position of every series' streams.
#[derive(Debug)]
struct Frame {
    offset: u64,
    raw: Vec<u8>,
    /// Per series of the frame: (timestamp stream range, value stream range) in `raw`.
    streams: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
}

impl Frame {
    /// Memory held, as counted against [`FRAME_CACHE_BYTES`].
    fn bytes(&self) -> usize {
        self.raw.len() + self.streams.len() * 32
    }
}

/// Bytes of a block by part, for `analyze`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexBytes {
    pub symbols: u64,
    pub series: u64,
    pub postings: u64,
}

/// Where the bytes of a block's chunks go, by column and value encoding (see
/// [`Block::column_stats`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnStats {
    pub frames: u64,
    /// Compressed bytes of the frames as stored.
    pub stored_bytes: u64,
    /// Timestamp streams: uncompressed bytes, bytes after compressing them alone, series with
    /// regular timestamps.
    pub ts_raw: u64,
    pub ts_compressed: u64,
    pub ts_regular_series: u64,
    /// Per value encoding ([`VALUE_ENCODINGS`]): series, samples, uncompressed bytes, bytes after
    /// compressing the streams of that encoding alone (frame by frame).
    pub values: [EncodingStats; 5],
    /// The series-length table of the frames, compressed alone.
    pub lens_compressed: u64,
}

/// One value encoding's share of a block (in [`ColumnStats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodingStats {
    pub series: u64,
    pub samples: u64,
    pub raw: u64,
    pub compressed: u64,
}

/// An open, immutable block: index held in memory, chunks read through `mmap`.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    version: u8,
    chunks: Mmap,
    series: Vec<SeriesEntry>,
    postings: BTreeMap<String, BTreeMap<String, RoaringBitmap>>,
    tombstones: RwLock<Vec<Tombstone>>,
    index_bytes: u64,
    index_parts: IndexBytes,
    /// Decompressed chunks frames, most recently used last.
    frames: parking_lot::Mutex<Vec<(u64, Arc<Frame>)>>,
}

/// Bytes of decompressed frames all blocks of the process may keep (queries re-read the same
/// frames; decompressing a 4 MiB zstd frame costs milliseconds).
const FRAME_CACHE_BYTES: usize = 256 << 20;
static FRAME_CACHE_USED: AtomicUsize = AtomicUsize::new(0);

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
        if !(1..=BLOCK_FORMAT_VERSION).contains(&meta.version) {
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
        let version = check_header(&index, INDEX_MAGIC, "index").map_err(err)?;
        if check_header(&chunks, CHUNKS_MAGIC, "chunks").map_err(err)? != version || version != meta.version {
            return Err(err("index, chunks and meta.json disagree on the format version".into()));
        }
        // Every frame's checksum.
        let mut pos = 8;
        while pos < chunks.len() {
            read_section(&chunks, &mut pos, "chunks").map_err(err)?;
        }
        let mut pos = 8;
        let mut sections = Vec::with_capacity(3);
        let mut parts = [0u64; 3];
        for (i, what) in ["index symbols", "index series", "index postings"].into_iter().enumerate() {
            let start = pos;
            let sec = read_section(&index, &mut pos, what).map_err(err)?;
            parts[i] = (pos - start) as u64;
            sections.push(if version >= 2 {
                std::borrow::Cow::Owned(unzstd(sec, MAX_SECTION).map_err(|e| err(format!("{what}: {e}")))?)
            } else {
                std::borrow::Cow::Borrowed(sec)
            });
        }
        let (sym_sec, series_sec, post_sec) = (&sections[0][..], &sections[1][..], &sections[2][..]);
        let parse = || -> Result<_, String> {
            let mut r = Reader::new(sym_sec);
            let n = r.uvarint()? as usize;
            let mut symbols: Vec<std::sync::Arc<str>> = Vec::with_capacity(n.min(sym_sec.len()));
            for _ in 0..n {
                let s = std::str::from_utf8(r.len_prefixed()?).map_err(|e| format!("symbol: {e}"))?;
                symbols.push(s.into());
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
                    labels.push(Label::new(&**name, &**value));
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
                postings.entry(name.to_string()).or_default().insert(value.to_string(), bm);
            }
            Ok((series, postings))
        };
        let (series, postings) = parse().map_err(err)?;
        let tomb_bytes = std::fs::read(dir.join("tombstones")).map_err(|e| err(format!("tombstones: {e}")))?;
        let tombstones = decode_tombstones(&tomb_bytes).map_err(err)?;
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            version,
            chunks,
            series,
            postings,
            tombstones: RwLock::new(tombstones),
            index_bytes: index.len() as u64,
            index_parts: IndexBytes { symbols: parts[0], series: parts[1], postings: parts[2] },
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

    /// Bytes of the index sections as stored (each with its length and checksum).
    pub fn index_parts(&self) -> &IndexBytes {
        &self.index_parts
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

    /// Labels of the series matching `matchers` whose time range meets `[mint, maxt]`, sorted,
    /// without decoding samples.
    pub(crate) fn matching_labels(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<&Labels> {
        if self.meta.stats.samples == 0 || self.meta.max_time < mint || self.meta.min_time > maxt {
            return Vec::new();
        }
        self.postings_for(matchers)
            .into_iter()
            .map(|id| &self.series[id as usize])
            .filter(|e| e.maxt >= mint && e.mint <= maxt && matches_all(matchers, &e.labels))
            .map(|e| &e.labels)
            .collect()
    }

    /// Series matching `matchers` with samples in `[mint, maxt]`, tombstones applied, decoded
    /// one at a time in label order (one decompressed frame held at a time).
    pub fn series_iter(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> BlockSeriesIter<'_> {
        let ids = self.candidate_ids(matchers, mint, maxt);
        self.iter_ids(ids, matchers, mint, maxt)
    }

    /// The ids `series_iter` starts from: postings of the matchers, none when the block is
    /// outside `[mint, maxt]`.
    fn candidate_ids(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> RoaringBitmap {
        if self.meta.stats.samples == 0 || self.meta.max_time < mint || self.meta.min_time > maxt {
            RoaringBitmap::new()
        } else {
            self.postings_for(matchers)
        }
    }

    fn iter_ids(&self, ids: RoaringBitmap, matchers: &[Matcher], mint: i64, maxt: i64) -> BlockSeriesIter<'_> {
        BlockSeriesIter {
            block: self,
            ids: ids.into_iter(),
            matchers: matchers.to_vec(),
            mint,
            maxt,
            tombstones: self.tombstones.read().clone(),
            frame: None,
        }
    }

    /// The decompressed frame at byte `offset` of the chunks file, from the process-wide cache
    /// (queries re-read the same frames; decompressing a 4 MiB zstd frame costs milliseconds)
    /// or decoded now and cached while the cache has room.
    fn load_frame(&self, offset: u64) -> Result<Arc<Frame>, String> {
        {
            let mut frames = self.frames.lock();
            if let Some(i) = frames.iter().position(|(o, _)| *o == offset) {
                let hit = frames.remove(i);
                let frame = hit.1.clone();
                frames.push(hit);
                return Ok(frame);
            }
        }
        let frame = Arc::new(self.decode_frame(offset)?);
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

    fn decode_frame(&self, offset: u64) -> Result<Frame, String> {
        let mut pos = usize::try_from(offset).map_err(|_| "frame offset".to_string())?;
        let compressed = read_section(&self.chunks, &mut pos, "chunks")?;
        let raw = unzstd(compressed, MAX_SECTION)?;
        let mut r = Reader::new(&raw);
        let n = r.uvarint()? as usize;
        let mut lens = Vec::with_capacity(n.min(raw.len()));
        for _ in 0..n {
            lens.push((r.uvarint()? as usize, r.uvarint()? as usize));
        }
        let base = r.pos;
        let total_ts = lens.iter().try_fold(0usize, |a, l| a.checked_add(l.0)).ok_or("bad frame lengths")?;
        let (mut ts_off, mut val_off) = (base, base.checked_add(total_ts).ok_or("bad frame lengths")?);
        let mut streams = Vec::with_capacity(lens.len());
        for (t, v) in lens {
            let (ts_end, val_end) = (ts_off.checked_add(t), val_off.checked_add(v));
            let (Some(ts_end), Some(val_end)) = (ts_end, val_end) else { return Err("bad frame lengths".into()) };
            if ts_end > raw.len() || val_end > raw.len() {
                return Err("truncated frame".into());
            }
            streams.push((ts_off..ts_end, val_off..val_end));
            ts_off = ts_end;
            val_off = val_end;
        }
        Ok(Frame { offset, raw, streams })
    }

    /// Decodes one series, using (and replacing) the frame in `frame`.
    fn read_series(&self, entry: &SeriesEntry, frame: &mut Option<Arc<Frame>>) -> Result<Vec<(i64, f64)>, String> {
        if frame.as_ref().map(|f| f.offset) != Some(entry.frame) {
            *frame = Some(self.load_frame(entry.frame)?);
        }
        let f = frame.as_ref().expect("loaded");
        let (ts, vals) = f.streams.get(entry.idx as usize).ok_or("series index beyond its frame")?;
        // Regular timestamps and constant values take a few bytes for any count: the count is
        // bounded by the block's sample total (and 2^24 per series) instead.
        let limit = self.meta.stats.samples.min(MAX_SERIES_SAMPLES) as usize;
        decode_series(self.version, &f.raw[ts.clone()], &f.raw[vals.clone()], limit)
    }

    /// Where the chunk bytes go: every frame is decompressed, and each column (timestamps,
    /// values by encoding, the length table) compressed alone as the writer would. Slow: for
    /// `analyze`.
    pub fn column_stats(&self) -> Result<ColumnStats, Error> {
        let err = |m: String| block_err(&self.dir, m);
        let mut st = ColumnStats::default();
        let mut pos = 8;
        let z = |b: &[u8]| -> Result<u64, Error> {
            if b.is_empty() {
                return Ok(0);
            }
            zstd::bulk::compress(b, ZSTD_LEVEL).map(|c| c.len() as u64).map_err(|e| err(e.to_string()))
        };
        while pos < self.chunks.len() {
            let offset = pos as u64;
            let stored = read_section(&self.chunks, &mut pos, "chunks").map_err(err)?;
            st.frames += 1;
            st.stored_bytes += stored.len() as u64;
            let frame = self.decode_frame(offset).map_err(err)?;
            let first = frame.streams.first().map_or(0, |s| s.0.start);
            st.lens_compressed += z(&frame.raw[..first])?;
            let mut ts = Vec::new();
            let mut by_enc: [Vec<u8>; 5] = Default::default();
            for (t, v) in &frame.streams {
                let tb = &frame.raw[t.clone()];
                ts.extend_from_slice(tb);
                if self.version >= 2 && tb.first() == Some(&TS_REGULAR) {
                    st.ts_regular_series += 1;
                }
                let vb = &frame.raw[v.clone()];
                let Some(&enc) = vb.first() else { continue };
                let Some(e) = st.values.get_mut(enc as usize) else { continue };
                e.series += 1;
                e.raw += vb.len() as u64;
                let mut r = Reader::new(tb);
                if self.version >= 2 {
                    let _ = r.u8();
                }
                e.samples += r.uvarint().unwrap_or(0);
                by_enc[enc as usize].extend_from_slice(vb);
            }
            st.ts_raw += ts.len() as u64;
            st.ts_compressed += z(&ts)?;
            for (e, bytes) in st.values.iter_mut().zip(&by_enc) {
                e.compressed += z(bytes)?;
            }
        }
        Ok(st)
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
}

/// The series of a block one at a time (see [`Block::series_iter`]).
pub struct BlockSeriesIter<'a> {
    block: &'a Block,
    ids: roaring::bitmap::IntoIter,
    matchers: Vec<Matcher>,
    mint: i64,
    maxt: i64,
    tombstones: Vec<Tombstone>,
    frame: Option<Arc<Frame>>,
}

impl std::fmt::Debug for BlockSeriesIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockSeriesIter").field("block", &self.block.dir).finish_non_exhaustive()
    }
}

impl Iterator for BlockSeriesIter<'_> {
    type Item = Result<SeriesData, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        for id in self.ids.by_ref() {
            let entry = &self.block.series[id as usize];
            if entry.maxt < self.mint || entry.mint > self.maxt || !matches_all(&self.matchers, &entry.labels) {
                continue;
            }
            let mut samples = match self.block.read_series(entry, &mut self.frame) {
                Ok(s) => s,
                Err(m) => return Some(Err(block_err(&self.block.dir, m))),
            };
            // Samples are in time order: cut the ends instead of testing every sample.
            let (mint, maxt) = (self.mint, self.maxt);
            let end = samples.partition_point(|s| s.0 <= maxt);
            samples.truncate(end);
            let start = samples.partition_point(|s| s.0 < mint);
            if start > 0 {
                samples.drain(..start);
            }
            for &(tid, a, b) in &self.tombstones {
                if tid == id {
                    samples.retain(|s| s.0 < a || s.0 > b);
                }
            }
            if !samples.is_empty() {
                return Some(Ok((entry.labels.clone(), samples)));
            }
        }
        None
    }
}

/// Series per batch handed from a decoding thread to the reader.
const PARALLEL_BATCH: usize = 32;
/// Selections with fewer candidate series, or fewer samples, are decoded on the caller's
/// thread: starting threads costs more than it saves.
const PARALLEL_MIN_SERIES: u64 = 96;
const PARALLEL_MIN_SAMPLES: u64 = 200_000;

/// [`Block::series_iter`] decoded ahead on helper threads when the selection is large, so a
/// query's storage reads use the idle cores while the reader works on earlier series. Batches
/// of [`PARALLEL_BATCH`] series go round-robin to the threads and come back in order through
/// bounded channels (at most two batches ahead per thread): the same series in the same order
/// as `series_iter`, with bounded memory. `None` when the selection is small or the machine
/// has one core.
pub(crate) fn parallel_series(
    block: &Arc<Block>,
    matchers: &[Matcher],
    mint: i64,
    maxt: i64,
) -> Option<ParallelSeries> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(2);
    let ids = block.candidate_ids(matchers, mint, maxt);
    let per_series = block.meta.stats.samples / block.meta.stats.series.max(1);
    if threads < 2 || ids.len() < PARALLEL_MIN_SERIES || ids.len().saturating_mul(per_series) < PARALLEL_MIN_SAMPLES {
        return None;
    }
    let ids: Vec<u32> = ids.into_iter().collect();
    let n_batches = ids.len().div_ceil(PARALLEL_BATCH);
    let ids = Arc::new(ids);
    let mut receivers = Vec::with_capacity(threads);
    let mut workers = Vec::with_capacity(threads);
    for w in 0..threads {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Result<SeriesData, Error>>>(2);
        let (block, ids, matchers) = (block.clone(), ids.clone(), matchers.to_vec());
        let spawned = std::thread::Builder::new().name("sextant-block-read".into()).spawn(move || {
            for b in (w..n_batches).step_by(threads) {
                let batch: RoaringBitmap =
                    ids[b * PARALLEL_BATCH..((b + 1) * PARALLEL_BATCH).min(ids.len())].iter().copied().collect();
                let series: Vec<_> = block.iter_ids(batch, &matchers, mint, maxt).collect();
                if tx.send(series).is_err() {
                    return; // the reader is gone
                }
            }
        });
        match spawned {
            Ok(handle) => {
                receivers.push(rx);
                workers.push(handle);
            }
            // No thread to be had: read on the caller's thread instead.
            Err(_) => {
                drop(receivers);
                workers.into_iter().for_each(|h| {
                    let _ = h.join();
                });
                return None;
            }
        }
    }
    Some(ParallelSeries {
        dir: block.dir.clone(),
        receivers,
        workers,
        next_batch: 0,
        n_batches,
        current: Vec::new().into_iter(),
    })
}

/// The series of a block decoded on helper threads (see [`parallel_series`]). Dropping it
/// stops the threads (each ends after its batch in progress) and joins them.
pub(crate) struct ParallelSeries {
    dir: PathBuf,
    receivers: Vec<std::sync::mpsc::Receiver<Vec<Result<SeriesData, Error>>>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    next_batch: usize,
    n_batches: usize,
    current: std::vec::IntoIter<Result<SeriesData, Error>>,
}

impl Iterator for ParallelSeries {
    type Item = Result<SeriesData, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.current.next() {
                return Some(item);
            }
            if self.next_batch >= self.n_batches || self.receivers.is_empty() {
                return None;
            }
            let rx = &self.receivers[self.next_batch % self.receivers.len()];
            self.next_batch += 1;
            match rx.recv() {
                Ok(batch) => self.current = batch.into_iter(),
                Err(_) => {
                    // A decoding thread ended early: only a panic does that.
                    self.n_batches = self.next_batch;
                    return Some(Err(block_err(&self.dir, "a block reading thread failed")));
                }
            }
        }
    }
}

impl Drop for ParallelSeries {
    fn drop(&mut self) {
        self.receivers.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
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

    /// Pseudo-random noise in 0..997 (splitmix64 of `i`).
    fn noise(i: i64) -> i64 {
        let mut x = (i as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 32;
        (x % 997) as i64
    }

    #[test]
    fn parallel_reads_give_the_sequential_series() {
        let dir = tempfile::tempdir().unwrap();
        let series: Vec<SeriesData> = (0..300)
            .map(|s| {
                let labels = Labels::from_pairs([("__name__", "m".to_string()), ("s", format!("{s:04}"))]);
                let samples =
                    (0..1_000).map(|i| (i * 15_000, (noise(s * 1_000 + i) * (s % 3)) as f64 / 10.0)).collect();
                (labels, samples)
            })
            .collect();
        let meta = write_block(dir.path(), &series, 1, Vec::new()).unwrap();
        let block = Arc::new(Block::open(&dir.path().join(&meta.ulid)).unwrap());
        let all = [Matcher::new(sextant_model::MatchOp::Equal, "__name__", "m").unwrap()];
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let check = |matchers: &[Matcher], mint: i64, maxt: i64, parallel_expected: bool| {
            let want: Vec<SeriesData> = block.series_iter(matchers, mint, maxt).map(Result::unwrap).collect();
            match parallel_series(&block, matchers, mint, maxt) {
                Some(p) => {
                    assert!(parallel_expected, "small selections stay on the caller's thread");
                    let got: Vec<SeriesData> = p.map(Result::unwrap).collect();
                    assert_eq!(got, want, "[{mint}, {maxt}]");
                }
                None => assert!(!parallel_expected || cores < 2, "large selections go to threads"),
            }
        };
        check(&all, 0, i64::MAX, true);
        check(&all, 3_000_000, 9_000_000, true);
        // Few series: read on the caller's thread.
        check(&[Matcher::new(sextant_model::MatchOp::RegexMatch, "s", "00.*").unwrap()], 0, i64::MAX, false);
        // A reader that stops early lets the threads go.
        if let Some(p) = parallel_series(&block, &all, 0, i64::MAX) {
            assert_eq!(p.take(40).count(), 40);
        }
    }

    fn roundtrip(samples: &[(i64, f64)]) -> usize {
        let (mut ts, mut vals) = (Vec::new(), Vec::new());
        encode_series(samples, &mut ts, &mut vals);
        let back = decode_series(BLOCK_FORMAT_VERSION, &ts, &vals, usize::MAX).unwrap();
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
            // Steady steps: bit-packed with width 0.
            ((0..100).map(|i| (t(i), i as f64 / 100.0)).collect(), 4),
            ((0..100).map(|i| (t(i), (i * 4096) as f64)).collect(), 4),
            ((1..100).map(|i| (t(i), -(i as f64) * 1.5)).collect(), 4),
            // A periodic gauge: its delta-of-delta varints repeat (zstd's entropy stage wins).
            ((0..100).map(|i| (t(i), (i * i % 7) as f64)).collect(), 3),
            // A counter with noisy increments: bit-packed deltas.
            ((0..100).map(|i| (t(i), (i * 1000 + noise(i)) as f64)).collect(), 4),
            ((0..100).map(|i| (t(i), (i * 1000 + noise(i)) as f64 / 100.0)).collect(), 4),
            // A random-walk gauge with mostly small steps and an occasional jump: varint deltas.
            (
                (0..1440)
                    .scan(0i64, |x, i| {
                        *x += match noise(i) % 10 {
                            0..=4 => 0,
                            5 | 6 => 1,
                            7 | 8 => -1,
                            _ => noise(i + 7) * 50,
                        };
                        Some((t(i), *x as f64))
                    })
                    .collect(),
                1,
            ),
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
            for version in [1, 2] {
                let _ = decode_series(version, input, &[1, 9, 0], 1 << 20);
                let _ = decode_series(version, input, input, 1 << 20);
                let _ = decode_series(version, input, &[4, 2, 2, 0, 0, 0, 64, 1], 1 << 20);
            }
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
            let _ = decode_series(1, &ts, &vals, 1 << 16);
            let _ = decode_series(2, &ts, &vals, 1 << 16);
        }
    }
}

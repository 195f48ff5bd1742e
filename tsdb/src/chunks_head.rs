//! `DIR/chunks_head/`: full head chunks written to disk as they are cut (like Prometheus'
//! m-mapped `chunks_head`), so that an open after a crash loads them instead of replaying their
//! samples from the WAL. The files only speed up a replay: the WAL holds every sample they
//! hold, so a lost or damaged record costs time, never data. `tsdb/FORMAT.md` has the bytes.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::fs::{AppendFile, FileSystem};
use crate::head::SeriesRef;

/// `SXHC`, format version 1, three zero bytes.
const FILE_HEADER: [u8; 8] = *b"SXHC\x01\x00\x00\x00";
/// ref u32, hash u64, prev_maxt i64, mint i64, maxt i64.
const FIXED_LEN: usize = 4 + 8 + 8 + 8 + 8;
/// A file is closed and the next one started beyond this size.
const FILE_SIZE: u64 = 128 << 20;
/// Records are gathered in memory and written in pieces of about this size (small: what a
/// crash loses here is replayed from the WAL instead).
const BUFFER_SIZE: usize = 64 << 10;
/// Largest stored chunk a reader accepts.
const MAX_CHUNK: usize = 1 << 20;

/// A full chunk of one series, as written to and read from `chunks_head/`.
#[derive(Debug, Clone)]
pub(crate) struct ChunkRecord {
    pub(crate) r: SeriesRef,
    /// `Labels::stable_hash` of the series: a reused ref never picks up another series' chunks.
    pub(crate) hash: u64,
    /// `maxt` of the series' chunk before this one (`i64::MIN` if none was left in the head).
    pub(crate) prev_maxt: i64,
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
    /// A stored chunk (encoding byte first).
    pub(crate) data: Arc<[u8]>,
}

fn file_name(seq: u32) -> String {
    format!("{seq:08}")
}

/// What loading `chunks_head/` found.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// Records by series ref, in no particular order.
    pub(crate) by_ref: HashMap<SeriesRef, Vec<ChunkRecord>>,
    /// Records whose checksum or contents were wrong (a torn tail counts one).
    pub(crate) damaged: u64,
    /// Every file with the newest chunk end in it.
    files: Vec<(u32, i64)>,
}

impl Loaded {
    /// The chain of `r`'s chunks that can replace its samples in the WAL: from the oldest chunk
    /// ending at or after `min_time` whose predecessor is older than `min_time` (persisted in
    /// blocks or never there), each next one starting right after the previous one ended. A
    /// gap ends the chain (the WAL replays the rest). `hash` must match.
    pub(crate) fn take_chain(&mut self, r: SeriesRef, hash: u64, min_time: i64) -> Vec<ChunkRecord> {
        let Some(mut records) = self.by_ref.remove(&r) else { return Vec::new() };
        records.retain(|c| c.hash == hash && c.maxt >= min_time && c.mint <= c.maxt);
        records.sort_by_key(|c| c.mint);
        let mut chain: Vec<ChunkRecord> = Vec::with_capacity(records.len());
        for c in records {
            let links = match chain.last() {
                None => c.prev_maxt < min_time || c.prev_maxt == i64::MIN,
                Some(last) => c.prev_maxt == last.maxt && c.mint > last.maxt,
            };
            if !links {
                if chain.last().is_some_and(|last| last.mint == c.mint && last.maxt == c.maxt) {
                    continue; // the same chunk written twice
                }
                break;
            }
            chain.push(c);
        }
        chain
    }
}

/// Reads every file of `dir` (missing directory: nothing).
pub(crate) fn load(fs: &dyn FileSystem, dir: &Path) -> Loaded {
    let mut loaded = Loaded::default();
    let Ok(names) = fs.list_dir(dir) else { return loaded };
    let mut seqs: Vec<u32> = names.iter().filter(|n| n.len() == 8).filter_map(|n| n.parse().ok()).collect();
    seqs.sort_unstable();
    for seq in seqs {
        let Ok(data) = fs.read_whole(&dir.join(file_name(seq))) else {
            loaded.damaged += 1;
            continue;
        };
        let data: &[u8] = (*data).as_ref();
        let mut file_maxt = i64::MIN;
        if data.get(..FILE_HEADER.len()) != Some(&FILE_HEADER[..]) {
            loaded.damaged += u64::from(!data.is_empty());
            loaded.files.push((seq, file_maxt));
            continue;
        }
        let mut pos = FILE_HEADER.len();
        while pos < data.len() {
            match decode_record(data, pos) {
                Some((record, next)) => {
                    file_maxt = file_maxt.max(record.maxt);
                    loaded.by_ref.entry(record.r).or_default().push(record);
                    pos = next;
                }
                None => {
                    // Damaged or torn: the rest of this file is not trusted (records have no
                    // resync marker; the WAL has the samples).
                    loaded.damaged += 1;
                    break;
                }
            }
        }
        loaded.files.push((seq, file_maxt));
    }
    loaded
}

fn uvarint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut x = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *data.get(*pos)?;
        *pos += 1;
        x |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(x);
        }
    }
    None
}

fn decode_record(data: &[u8], start: usize) -> Option<(ChunkRecord, usize)> {
    let fixed = data.get(start..start.checked_add(FIXED_LEN)?)?;
    let mut pos = start + FIXED_LEN;
    let len = usize::try_from(uvarint(data, &mut pos)?).ok().filter(|&l| l > 0 && l <= MAX_CHUNK)?;
    let chunk = data.get(pos..pos.checked_add(len)?)?;
    let end = pos + len;
    let crc = u32::from_le_bytes(data.get(end..end + 4)?.try_into().ok()?);
    if crc32fast::hash(&data[start..end]) != crc {
        return None;
    }
    let u64_at = |i: usize| u64::from_le_bytes(fixed[i..i + 8].try_into().unwrap_or([0; 8]));
    let record = ChunkRecord {
        r: u32::from_le_bytes(fixed[..4].try_into().ok()?),
        hash: u64_at(4),
        prev_maxt: u64_at(12) as i64,
        mint: u64_at(20) as i64,
        maxt: u64_at(28) as i64,
        data: chunk.into(),
    };
    Some((record, end + 4))
}

fn encode_record(buf: &mut Vec<u8>, c: &ChunkRecord) {
    let start = buf.len();
    buf.extend_from_slice(&c.r.to_le_bytes());
    buf.extend_from_slice(&c.hash.to_le_bytes());
    buf.extend_from_slice(&c.prev_maxt.to_le_bytes());
    buf.extend_from_slice(&c.mint.to_le_bytes());
    buf.extend_from_slice(&c.maxt.to_le_bytes());
    let mut len = c.data.len() as u64;
    while len >= 0x80 {
        buf.push(len as u8 | 0x80);
        len >>= 7;
    }
    buf.push(len as u8);
    buf.extend_from_slice(&c.data);
    let crc = crc32fast::hash(&buf[start..]);
    buf.extend_from_slice(&crc.to_le_bytes());
}

/// The writer of `chunks_head/`. Best effort: a failed write is counted and the next write
/// starts a new file.
#[derive(Debug)]
pub(crate) struct ChunkDisk {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: Option<Box<dyn AppendFile>>,
    seq: u32,
    size: u64,
    buf: Vec<u8>,
    /// Finished files with the newest chunk end in each; the current file's is `cur_maxt`.
    files: Vec<(u32, i64)>,
    cur_maxt: i64,
    errors: u64,
}

impl ChunkDisk {
    /// Opens the writer after `loaded`'s files (which stay until [`ChunkDisk::truncate`]).
    pub(crate) fn open(fs: Arc<dyn FileSystem>, dir: &Path, loaded: &Loaded) -> io::Result<ChunkDisk> {
        fs.create_dir_all(dir)?;
        let files = loaded.files.clone();
        let seq = files.iter().map(|f| f.0 + 1).max().unwrap_or(1);
        let inner = Inner { file: None, seq, size: 0, buf: Vec::new(), files, cur_maxt: i64::MIN, errors: 0 };
        Ok(ChunkDisk { fs, dir: dir.to_path_buf(), inner: Mutex::new(inner) })
    }

    /// Queues records; writes once about a megabyte is gathered.
    pub(crate) fn write(&self, records: &[ChunkRecord]) {
        let mut inner = self.inner.lock();
        for c in records {
            encode_record(&mut inner.buf, c);
            inner.cur_maxt = inner.cur_maxt.max(c.maxt);
        }
        if inner.buf.len() >= BUFFER_SIZE {
            self.flush_locked(&mut inner);
        }
    }

    /// Writes what is queued.
    pub(crate) fn flush(&self) {
        let mut inner = self.inner.lock();
        self.flush_locked(&mut inner);
    }

    fn flush_locked(&self, inner: &mut Inner) {
        if inner.buf.is_empty() {
            return;
        }
        if inner.file.is_some() && inner.size + inner.buf.len() as u64 > FILE_SIZE {
            self.finish_file(inner);
        }
        if inner.file.is_none() {
            let path = self.dir.join(file_name(inner.seq));
            match self.fs.open_append(&path).and_then(|mut f| f.append(&FILE_HEADER).map(|_| f)) {
                Ok(f) => {
                    inner.file = Some(f);
                    inner.size = FILE_HEADER.len() as u64;
                }
                Err(_) => {
                    inner.errors += 1;
                    inner.buf.clear();
                    inner.seq += 1;
                    return;
                }
            }
        }
        let Inner { file, buf, size, .. } = &mut *inner;
        let ok = file.as_mut().is_some_and(|f| f.append(buf).is_ok());
        if ok {
            *size += buf.len() as u64;
        } else {
            // The file may end in a partial record: continue in a new one.
            inner.errors += 1;
            self.finish_file(inner);
        }
        inner.buf.clear();
    }

    fn finish_file(&self, inner: &mut Inner) {
        if inner.file.take().is_some() {
            let entry = (inner.seq, inner.cur_maxt);
            inner.files.push(entry);
        }
        inner.seq += 1;
        inner.size = 0;
        inner.cur_maxt = i64::MIN;
    }

    /// Deletes the files holding only chunks that end before `mint` (persisted in blocks).
    pub(crate) fn truncate(&self, mint: i64) {
        let mut inner = self.inner.lock();
        self.flush_locked(&mut inner);
        if inner.cur_maxt < mint {
            self.finish_file(&mut inner);
        }
        let (old, keep): (Vec<_>, Vec<_>) = inner.files.iter().partition(|f| f.1 < mint);
        inner.files = keep;
        for (seq, _) in old {
            if self.fs.remove_file(&self.dir.join(file_name(seq))).is_err() {
                inner.errors += 1;
            }
        }
    }

    /// Deletes every file (a snapshot written at clean shutdown holds all the chunks).
    pub(crate) fn remove_all(&self) {
        let mut inner = self.inner.lock();
        inner.buf.clear();
        self.finish_file(&mut inner);
        for (seq, _) in std::mem::take(&mut inner.files) {
            let _ = self.fs.remove_file(&self.dir.join(file_name(seq)));
        }
    }

    /// Failed writes and deletions so far.
    pub(crate) fn errors(&self) -> u64 {
        self.inner.lock().errors
    }
}

impl Drop for ChunkDisk {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::StdFileSystem;

    fn record(r: SeriesRef, prev_maxt: i64, mint: i64, maxt: i64) -> ChunkRecord {
        ChunkRecord { r, hash: 7, prev_maxt, mint, maxt, data: vec![1, 0, 0].into() }
    }

    fn spans(chain: &[ChunkRecord]) -> Vec<(i64, i64)> {
        chain.iter().map(|c| (c.mint, c.maxt)).collect()
    }

    #[test]
    fn chains() {
        let check = |records: Vec<ChunkRecord>, min_time: i64, want: &[(i64, i64)]| {
            let mut loaded = Loaded::default();
            loaded.by_ref.insert(1, records);
            assert_eq!(spans(&loaded.take_chain(1, 7, min_time)), want);
        };
        let min = i64::MIN;
        check(
            vec![record(1, 20, 21, 30), record(1, min, 0, 10), record(1, 10, 11, 20)],
            min,
            &[(0, 10), (11, 20), (21, 30)],
        );
        // A lost middle chunk ends the chain.
        check(vec![record(1, min, 0, 10), record(1, 20, 21, 30)], min, &[(0, 10)]);
        // The first chunk's predecessor must be gone (persisted) or absent.
        check(vec![record(1, 10, 11, 20)], min, &[]);
        check(vec![record(1, 10, 11, 20), record(1, 20, 21, 30)], 15, &[(11, 20), (21, 30)]);
        // Chunks ending before the persisted time are dropped.
        check(vec![record(1, min, 0, 10), record(1, 10, 11, 20)], 11, &[(11, 20)]);
        // Written twice.
        check(vec![record(1, min, 0, 10), record(1, min, 0, 10), record(1, 10, 11, 20)], min, &[(0, 10), (11, 20)]);
        // Another series' hash.
        let mut other = record(1, min, 0, 10);
        other.hash = 8;
        check(vec![other], min, &[]);
    }

    #[test]
    fn written_records_load_and_damage_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let fs: Arc<dyn FileSystem> = Arc::new(StdFileSystem);
        let path = dir.path().join("chunks_head");
        {
            let disk = ChunkDisk::open(fs.clone(), &path, &Loaded::default()).unwrap();
            disk.write(&[record(1, i64::MIN, 0, 10), record(2, i64::MIN, 5, 9)]);
            disk.flush();
            disk.write(&[record(1, 10, 11, 20)]);
        }
        let mut loaded = load(&*fs, &path);
        assert_eq!(loaded.damaged, 0);
        assert_eq!(spans(&loaded.take_chain(1, 7, i64::MIN)), [(0, 10), (11, 20)]);
        assert_eq!(spans(&loaded.take_chain(2, 7, i64::MIN)), [(5, 9)]);
        // Flip a byte in the second record of the file: the first still loads.
        let file = path.join(file_name(1));
        let mut bytes = std::fs::read(&file).unwrap();
        let n = bytes.len();
        bytes[n - 10] ^= 0x40;
        std::fs::write(&file, &bytes).unwrap();
        let mut loaded = load(&*fs, &path);
        assert_eq!(loaded.damaged, 1);
        assert_eq!(spans(&loaded.take_chain(1, 7, i64::MIN)), [(0, 10)]);
        // Truncation deletes files whose chunks all ended before the time.
        let disk = ChunkDisk::open(fs.clone(), &path, &loaded).unwrap();
        disk.write(&[record(3, i64::MIN, 100, 200)]);
        disk.truncate(50);
        assert!(!file.exists());
        assert!(path.join(file_name(2)).exists());
        disk.remove_all();
        assert!(!path.join(file_name(2)).exists());
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { failure_persistence: None, ..Default::default() })]
        #[test]
        fn random_files_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let dir = tempfile::tempdir().unwrap();
            let mut data = FILE_HEADER.to_vec();
            data.extend_from_slice(&bytes);
            std::fs::write(dir.path().join(file_name(1)), &data).unwrap();
            let loaded = load(&StdFileSystem, dir.path());
            proptest::prop_assert!(loaded.by_ref.len() <= 400 / FIXED_LEN);
        }
    }
}

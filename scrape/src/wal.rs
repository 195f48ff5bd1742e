//! The agent's write-ahead log: numbered segment files of checksummed records, each record
//! one committed batch encoded as a remote-write `WriteRequest` (protobuf, uncompressed).
//!
//! Record layout, little-endian: `u32 payload length`, `u32 crc32 (IEEE) of the payload`,
//! payload. A segment is final once a later segment exists; a record that is cut short or
//! fails its checksum ends the reading of its segment (the rest of it is counted as lost).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sextant_model::remote::{labels_to_proto, Message, Sample, TimeSeries, WriteRequest};
use sextant_model::Labels;

use crate::Error;

const HEADER: usize = 8;
/// Records larger than this are treated as corruption.
const MAX_RECORD: u32 = 256 << 20;

/// A position in the log: segment number and byte offset within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Position {
    pub(crate) segment: u64,
    pub(crate) offset: u64,
}

pub(crate) fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:08}"))
}

/// Segment numbers present in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
    let mut out: Vec<u64> =
        entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok())).collect();
    out.sort_unstable();
    Ok(out)
}

fn buffer_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Buffer { file: path.display().to_string(), message: message.into() }
}

/// Appends records; rolls to a new segment past `segment_size`.
#[derive(Debug)]
pub(crate) struct WalWriter {
    dir: PathBuf,
    segment: u64,
    file: File,
    size: u64,
    segment_size: u64,
}

impl WalWriter {
    /// Opens the log in `dir`, starting a fresh segment after the existing ones (a torn
    /// tail of the previous run stays where readers will skip it).
    pub(crate) fn open(dir: &Path, segment_size: u64) -> Result<WalWriter, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        let next = list_segments(dir)?.last().map_or(0, |s| s + 1);
        let path = segment_path(dir, next);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        Ok(WalWriter { dir: dir.to_path_buf(), segment: next, file, size: 0, segment_size })
    }

    pub(crate) fn segment(&self) -> u64 {
        self.segment
    }

    /// Where the next record goes.
    pub(crate) fn end(&self) -> Position {
        Position { segment: self.segment, offset: self.size }
    }

    /// Writes one record of `samples` (grouped per series in first-seen order). Returns true
    /// when the write rolled to a new segment.
    pub(crate) fn append(&mut self, samples: &[(Labels, i64, f64)]) -> Result<bool, Error> {
        let mut request = WriteRequest::default();
        let mut index: std::collections::HashMap<&Labels, usize> = std::collections::HashMap::new();
        for (labels, t, v) in samples {
            let i = *index.entry(labels).or_insert_with(|| {
                request.timeseries.push(TimeSeries { labels: labels_to_proto(labels), ..TimeSeries::default() });
                request.timeseries.len() - 1
            });
            request.timeseries[i].samples.push(Sample { value: *v, timestamp: *t });
        }
        let payload = request.encode_to_vec();
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        record.extend_from_slice(&payload);
        let mut rolled = false;
        if self.size > 0 && self.size + record.len() as u64 > self.segment_size {
            self.roll()?;
            rolled = true;
        }
        let path = segment_path(&self.dir, self.segment);
        self.file.write_all(&record).map_err(|e| Error::io(path.display().to_string(), e))?;
        self.size += record.len() as u64;
        Ok(rolled)
    }

    fn roll(&mut self) -> Result<(), Error> {
        let path = segment_path(&self.dir, self.segment);
        self.file.sync_data().map_err(|e| Error::io(path.display().to_string(), e))?;
        self.segment += 1;
        let path = segment_path(&self.dir, self.segment);
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        self.size = 0;
        Ok(())
    }

    pub(crate) fn sync(&mut self) -> Result<(), Error> {
        let path = segment_path(&self.dir, self.segment);
        self.file.sync_data().map_err(|e| Error::io(path.display().to_string(), e))
    }
}

/// What [`WalReader::next_record`] found.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    /// A record and the position just after it.
    Record(WriteRequest, Position),
    /// Nothing more for now.
    End,
}

/// Reads records from a position on, following into later segments.
#[derive(Debug)]
pub(crate) struct WalReader {
    dir: PathBuf,
    position: Position,
    file: Option<File>,
    /// Bytes skipped as damaged, for the metrics.
    pub(crate) corrupted_records: u64,
}

impl WalReader {
    pub(crate) fn new(dir: &Path, position: Position) -> WalReader {
        WalReader { dir: dir.to_path_buf(), position, file: None, corrupted_records: 0 }
    }

    pub(crate) fn position(&self) -> Position {
        self.position
    }

    /// Moves to the start of `segment` if the reader is before it (its segments were deleted).
    pub(crate) fn skip_to_segment(&mut self, segment: u64) {
        if self.position.segment < segment {
            self.position = Position { segment, offset: 0 };
            self.file = None;
        }
    }

    fn later_segment_exists(&self) -> Result<Option<u64>, Error> {
        Ok(list_segments(&self.dir)?.into_iter().find(|s| *s > self.position.segment))
    }

    fn advance_segment(&mut self) -> Result<bool, Error> {
        match self.later_segment_exists()? {
            Some(next) => {
                self.position = Position { segment: next, offset: 0 };
                self.file = None;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub(crate) fn next_record(&mut self) -> Result<ReadOutcome, Error> {
        loop {
            if self.file.is_none() {
                let path = segment_path(&self.dir, self.position.segment);
                match File::open(&path) {
                    Ok(mut f) => {
                        f.seek(SeekFrom::Start(self.position.offset))
                            .map_err(|e| Error::io(path.display().to_string(), e))?;
                        self.file = Some(f);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        if self.advance_segment()? {
                            continue;
                        }
                        return Ok(ReadOutcome::End);
                    }
                    Err(e) => return Err(Error::io(path.display().to_string(), e)),
                }
            }
            let path = segment_path(&self.dir, self.position.segment);
            let file = self.file.as_mut().ok_or_else(|| buffer_error(&path, "no open segment"))?;
            let mut header = [0u8; HEADER];
            let got = read_full(file, &mut header).map_err(|e| Error::io(path.display().to_string(), e))?;
            if got < HEADER {
                // Partial or no header: the writer may still be writing; or the segment is done.
                if self.advance_segment()? {
                    continue;
                }
                self.file = None;
                return Ok(ReadOutcome::End);
            }
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            if len > MAX_RECORD {
                self.corrupted_records += 1;
                if self.advance_segment()? {
                    continue;
                }
                self.file = None;
                return Ok(ReadOutcome::End);
            }
            // Never allocate more than the segment still holds (a damaged length).
            let file_len = file.metadata().map_err(|e| Error::io(path.display().to_string(), e))?.len();
            if u64::from(len) > file_len.saturating_sub(self.position.offset + HEADER as u64) {
                file.seek(SeekFrom::Start(self.position.offset))
                    .map_err(|e| Error::io(path.display().to_string(), e))?;
                if self.advance_segment()? {
                    self.corrupted_records += 1;
                    continue;
                }
                self.file = None;
                return Ok(ReadOutcome::End);
            }
            let mut payload = vec![0u8; len as usize];
            let got = read_full(file, &mut payload).map_err(|e| Error::io(path.display().to_string(), e))?;
            if got < payload.len() {
                if self.advance_segment()? {
                    self.corrupted_records += 1;
                    continue;
                }
                self.file = None;
                return Ok(ReadOutcome::End);
            }
            let decoded =
                if crc32fast::hash(&payload) == crc { WriteRequest::decode(payload.as_slice()).ok() } else { None };
            let Some(request) = decoded else {
                self.corrupted_records += 1;
                if self.advance_segment()? {
                    continue;
                }
                self.file = None;
                return Ok(ReadOutcome::End);
            };
            self.position.offset += (HEADER + payload.len()) as u64;
            return Ok(ReadOutcome::Record(request, self.position));
        }
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    if got < buf.len() && got > 0 {
        // Leave the file where the record started so a later read sees it whole.
        file.seek(SeekFrom::Current(-(got as i64)))?;
    }
    Ok(got)
}

/// Reads a persisted position; a missing file means "from the start of the oldest segment".
pub(crate) fn load_position(path: &Path) -> Result<Option<Position>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path.display().to_string(), e)),
    };
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next()) {
        (Some(Ok(segment)), Some(Ok(offset))) => Ok(Some(Position { segment, offset })),
        _ => Err(buffer_error(path, format!("cannot parse send position {text:?}"))),
    }
}

/// Writes a position atomically (temporary file, fsync, rename).
pub(crate) fn store_position(path: &Path, position: Position) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let io = |e| Error::io(tmp.display().to_string(), e);
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(format!("{} {}\n", position.segment, position.offset).as_bytes()).map_err(io)?;
    f.sync_data().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path.display().to_string(), e))
}

/// Number of samples in the records of `segment` from `offset` on (for drop counters).
pub(crate) fn count_samples(dir: &Path, segment: u64, offset: u64) -> u64 {
    let mut reader = WalReader::new(dir, Position { segment, offset });
    let mut n = 0;
    // Stop at the segment's end: `next_record` would move on to later segments.
    while let Ok(ReadOutcome::Record(request, position)) = reader.next_record() {
        if position.segment != segment {
            break;
        }
        n += request.timeseries.iter().map(|s| s.samples.len() as u64).sum::<u64>();
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn series(i: usize) -> Labels {
        Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())])
    }

    /// Reads every record from the start; panics only on a bug.
    fn read_all(dir: &Path) -> (Vec<usize>, u64) {
        let mut reader = WalReader::new(dir, Position::default());
        let mut sizes = Vec::new();
        while let Ok(ReadOutcome::Record(request, _)) = reader.next_record() {
            sizes.push(request.timeseries.iter().map(|s| s.samples.len()).sum());
        }
        (sizes, reader.corrupted_records)
    }

    #[test]
    fn records_round_trip_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = WalWriter::open(dir.path(), 200).unwrap();
        for n in 1..=6 {
            let batch: Vec<(Labels, i64, f64)> = (0..n).map(|i| (series(i % 2), i as i64, 1.0)).collect();
            writer.append(&batch).unwrap();
        }
        assert!(list_segments(dir.path()).unwrap().len() > 1);
        assert_eq!(read_all(dir.path()), (vec![1, 2, 3, 4, 5, 6], 0));
        // Segment 0 (200 bytes) holds the first two records: 1 + 2 samples.
        assert_eq!(count_samples(dir.path(), 0, 0), 3);
        assert_eq!(count_samples(dir.path(), 1, 0), 3);
    }

    #[test]
    fn positions_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.position");
        assert_eq!(load_position(&path).unwrap(), None);
        store_position(&path, Position { segment: 3, offset: 77 }).unwrap();
        assert_eq!(load_position(&path).unwrap(), Some(Position { segment: 3, offset: 77 }));
        std::fs::write(&path, "x").unwrap();
        assert!(load_position(&path).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// A damaged first segment (bytes flipped, cut short) never panics the reader, and
        /// the records of the intact second segment are all read.
        #[test]
        fn damaged_segments_are_skipped(flips in proptest::collection::vec((0usize..2000, any::<u8>()), 0..8), cut in 0usize..2000) {
            let dir = tempfile::tempdir().unwrap();
            let mut writer = WalWriter::open(dir.path(), 1 << 20).unwrap();
            for n in 1..=5 {
                let batch: Vec<(Labels, i64, f64)> = (0..n).map(|i| (series(i), i as i64, 1.0)).collect();
                writer.append(&batch).unwrap();
            }
            writer.roll().unwrap();
            writer.append(&[(series(0), 9, 9.0)]).unwrap();
            let first = segment_path(dir.path(), 0);
            let mut bytes = std::fs::read(&first).unwrap();
            for (at, value) in flips {
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] ^= value;
                }
            }
            bytes.truncate(cut.min(bytes.len()));
            std::fs::write(&first, &bytes).unwrap();
            let (sizes, _) = read_all(dir.path());
            prop_assert_eq!(sizes.last().copied(), Some(1));
            prop_assert!(sizes.len() <= 6);
        }
    }
}

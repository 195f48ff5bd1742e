//! Log lines counted from files on disk: plain log files and Docker's `json-file` logs.
//!
//! Each file has a position (inode and byte offset). Only complete lines are counted; a
//! partial last line waits for its newline. When the inode changes the file was rotated: the
//! rest of the old file is read from `<path>.1` when that is the old inode, then the new file
//! from its start. A file shorter than the position was truncated (copytruncate) and is read
//! from the start. Positions and totals are saved to the state file after every pass, so
//! counters continue across restarts.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use regex::Regex;
use serde_json::{json, Value};

use crate::Error;
use sextant_model::exposition::{MetricFamily, MetricType};

/// The most bytes read from one file per pass; the rest is read on the next pass.
const MAX_READ_PER_PASS: u64 = 64 << 20;

#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct FileState {
    pub(crate) inode: u64,
    pub(crate) offset: u64,
    /// Lines per stream (`stdout`/`stderr` for Docker logs, `file` for plain files).
    pub(crate) lines: BTreeMap<String, u64>,
    /// Lines per pattern name.
    pub(crate) matched: BTreeMap<String, u64>,
}

pub(crate) struct FileCounter {
    files: Vec<PathBuf>,
    docker_dir: Option<PathBuf>,
    state_file: Option<PathBuf>,
    patterns: Arc<Vec<(String, Regex)>>,
    states: BTreeMap<PathBuf, FileState>,
    loaded: bool,
}

impl FileCounter {
    pub(crate) fn new(
        files: Vec<PathBuf>,
        docker_dir: Option<PathBuf>,
        state_file: Option<PathBuf>,
        patterns: Arc<Vec<(String, Regex)>>,
    ) -> FileCounter {
        FileCounter { files, docker_dir, state_file, patterns, states: BTreeMap::new(), loaded: false }
    }

    /// The files to count: the configured ones (plain) and each `<dir>/<id>/<id>-json.log`.
    fn targets(&self) -> Vec<(PathBuf, bool)> {
        let mut out: Vec<(PathBuf, bool)> = self.files.iter().map(|p| (p.clone(), false)).collect();
        if let Some(dir) = &self.docker_dir {
            if let Ok(entries) = std::fs::read_dir(dir) {
                let mut found = Vec::new();
                for entry in entries.flatten() {
                    let id = entry.file_name().to_string_lossy().into_owned();
                    let log = entry.path().join(format!("{id}-json.log"));
                    if log.is_file() {
                        found.push((log, true));
                    }
                }
                found.sort();
                out.extend(found);
            }
        }
        out
    }

    /// One pass over every file, then the families.
    pub(crate) fn collect(&mut self) -> Result<Vec<MetricFamily>, Error> {
        if !self.loaded {
            self.loaded = true;
            if let Some(path) = &self.state_file {
                self.states = load_state(path)?;
            }
        }
        for (path, json) in self.targets() {
            let state = self.states.entry(path.clone()).or_default();
            advance(&path, json, state, &self.patterns)?;
        }
        if let Some(path) = &self.state_file {
            save_state(path, &self.states)?;
        }
        let mut lines = MetricFamily::new(
            "sextant_log_file_lines_total",
            "Lines read from a log file, per stream.",
            MetricType::Counter,
        );
        let mut matched = MetricFamily::new(
            "sextant_log_file_pattern_lines_total",
            "Lines of a log file matching each configured pattern.",
            MetricType::Counter,
        );
        for (path, state) in &self.states {
            let path_text = path.to_string_lossy();
            for (stream, count) in &state.lines {
                lines.push(&[("path", &path_text), ("stream", stream)], *count as f64);
            }
            for (name, _) in self.patterns.iter() {
                let count = state.matched.get(name).copied().unwrap_or(0);
                matched.push(&[("path", &path_text), ("pattern", name)], count as f64);
            }
        }
        Ok(vec![lines, matched])
    }
}

/// Reads what is new in `path` (following a rotation) into `state`.
pub(crate) fn advance(
    path: &Path,
    json: bool,
    state: &mut FileState,
    patterns: &[(String, Regex)],
) -> Result<(), Error> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        // Between rotation and re-creation the file may be missing for a moment.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(Error::io(path, err)),
    };
    if state.inode == 0 {
        state.inode = meta.ino();
    }
    if state.inode != meta.ino() {
        let mut rotated = path.as_os_str().to_owned();
        rotated.push(".1");
        let rotated = PathBuf::from(rotated);
        if std::fs::metadata(&rotated).map(|m| m.ino() == state.inode).unwrap_or(false) {
            read_new(&rotated, json, state, patterns)?;
        }
        state.inode = meta.ino();
        state.offset = 0;
    } else if meta.len() < state.offset {
        state.offset = 0;
    }
    read_new(path, json, state, patterns)
}

fn read_new(path: &Path, json: bool, state: &mut FileState, patterns: &[(String, Regex)]) -> Result<(), Error> {
    let mut file = std::fs::File::open(path).map_err(|err| Error::io(path, err))?;
    file.seek(SeekFrom::Start(state.offset)).map_err(|err| Error::io(path, err))?;
    let mut buffer = Vec::new();
    file.take(MAX_READ_PER_PASS).read_to_end(&mut buffer).map_err(|err| Error::io(path, err))?;
    let complete = match buffer.iter().rposition(|b| *b == b'\n') {
        Some(last) => last + 1,
        // A single line longer than a whole pass is skipped rather than stalling the file.
        None if buffer.len() as u64 == MAX_READ_PER_PASS => {
            state.offset += buffer.len() as u64;
            return Ok(());
        }
        None => return Ok(()),
    };
    for raw in buffer[..complete].split(|b| *b == b'\n') {
        if raw.is_empty() {
            continue;
        }
        let line = String::from_utf8_lossy(raw);
        let (stream, message) = if json {
            let Ok(entry) = serde_json::from_str::<Value>(&line) else { continue };
            let log = entry.get("log").and_then(|l| l.as_str()).unwrap_or("");
            // Docker splits long messages into entries without the trailing newline; the
            // entry that ends the line counts it.
            if !log.ends_with('\n') {
                continue;
            }
            let stream = entry.get("stream").and_then(|s| s.as_str()).unwrap_or("stdout").to_string();
            (stream, log.trim_end_matches('\n').to_string())
        } else {
            ("file".to_string(), line.into_owned())
        };
        *state.lines.entry(stream).or_default() += 1;
        for (name, regex) in patterns {
            if regex.is_match(&message) {
                *state.matched.entry(name.clone()).or_default() += 1;
            }
        }
    }
    state.offset += complete as u64;
    Ok(())
}

fn load_state(path: &Path) -> Result<BTreeMap<PathBuf, FileState>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(err) => return Err(Error::io(path, err)),
    };
    let value: Value = serde_json::from_str(&text).map_err(|err| Error::parse(path, err.line(), err.to_string()))?;
    let counts = |v: Option<&Value>| -> BTreeMap<String, u64> {
        v.and_then(|v| v.as_object())
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_u64()?))).collect())
            .unwrap_or_default()
    };
    let mut out = BTreeMap::new();
    for (file, entry) in value.get("files").and_then(|f| f.as_object()).into_iter().flatten() {
        out.insert(
            PathBuf::from(file),
            FileState {
                inode: entry.get("inode").and_then(|v| v.as_u64()).unwrap_or(0),
                offset: entry.get("offset").and_then(|v| v.as_u64()).unwrap_or(0),
                lines: counts(entry.get("lines")),
                matched: counts(entry.get("matched")),
            },
        );
    }
    Ok(out)
}

fn save_state(path: &Path, states: &BTreeMap<PathBuf, FileState>) -> Result<(), Error> {
    let files: serde_json::Map<String, Value> = states
        .iter()
        .map(|(file, s)| {
            let entry = json!({"inode": s.inode, "offset": s.offset, "lines": s.lines, "matched": s.matched});
            (file.to_string_lossy().into_owned(), entry)
        })
        .collect();
    let text = json!({ "files": files }).to_string();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text).map_err(|err| Error::io(&tmp, err))?;
    std::fs::rename(&tmp, path).map_err(|err| Error::io(path, err))
}

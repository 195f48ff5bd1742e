//! The notification log (`nflog/nflog.go`): per aggregation group and integration, what was
//! last notified successfully, so a flush sends only what changed (the dedup stage) and a
//! restart sends no duplicate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::snapshot;
use crate::Error;

/// Which integration of which receiver, for which aggregation group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LogKey {
    pub group_key: String,
    pub receiver: String,
    /// `webhook`, `email`, ...
    pub integration: String,
    /// Position among the receiver's integrations of that type.
    pub index: usize,
}

/// The last successful notification of one [`LogKey`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub timestamp_ms: i64,
    /// Fingerprints of the alerts notified as firing.
    pub firing: BTreeSet<u64>,
    /// Fingerprints of the alerts notified as resolved.
    pub resolved: BTreeSet<u64>,
    pub expires_at_ms: i64,
}

impl LogEntry {
    /// The dedup stage's decision (`DedupStage.needsUpdate`) for a batch with these firing
    /// and resolved alerts, against this entry (`None`: never notified).
    pub fn needs_update(
        entry: Option<&LogEntry>,
        firing: &BTreeSet<u64>,
        resolved: &BTreeSet<u64>,
        send_resolved: bool,
        repeat_interval_ms: i64,
        now_ms: i64,
    ) -> bool {
        let Some(entry) = entry else { return !firing.is_empty() };
        if !firing.is_subset(&entry.firing) {
            return true;
        }
        if firing.is_empty() {
            return !entry.firing.is_empty();
        }
        if send_resolved && !resolved.is_subset(&entry.resolved) {
            return true;
        }
        entry.timestamp_ms < now_ms - repeat_interval_ms
    }
}

/// The log, optionally persisted to a snapshot file rewritten after each change.
#[derive(Debug, Default)]
pub struct NotificationLog {
    entries: BTreeMap<LogKey, LogEntry>,
    path: Option<PathBuf>,
}

impl NotificationLog {
    /// In memory only.
    pub fn new() -> NotificationLog {
        NotificationLog::default()
    }

    /// Persisted in `path`, loading what a previous run left there.
    pub fn open(path: &Path) -> Result<NotificationLog, Error> {
        let entries: Vec<(LogKey, LogEntry)> = snapshot::read(path)?.unwrap_or_default();
        Ok(NotificationLog { entries: entries.into_iter().collect(), path: Some(path.to_path_buf()) })
    }

    /// The entry for `key`, unless expired at `now_ms`.
    pub fn get(&self, key: &LogKey, now_ms: i64) -> Option<&LogEntry> {
        self.entries.get(key).filter(|e| e.expires_at_ms > now_ms)
    }

    /// Records a successful notification (the set-notifies stage).
    pub fn log(&mut self, key: LogKey, entry: LogEntry) -> Result<(), Error> {
        self.entries.insert(key, entry);
        self.persist()
    }

    /// Drops expired entries; returns how many.
    pub fn gc(&mut self, now_ms: i64) -> Result<usize, Error> {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires_at_ms > now_ms);
        let dropped = before - self.entries.len();
        if dropped > 0 {
            self.persist()?;
        }
        Ok(dropped)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn persist(&self) -> Result<(), Error> {
        let Some(path) = &self.path else { return Ok(()) };
        let entries: Vec<(&LogKey, &LogEntry)> = self.entries.iter().collect();
        snapshot::write(path, &entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[u64]) -> BTreeSet<u64> {
        items.iter().copied().collect()
    }

    #[test]
    fn dedup_decisions() {
        let entry = LogEntry { timestamp_ms: 100, firing: set(&[1, 2]), resolved: set(&[3]), expires_at_ms: i64::MAX };
        let check = |entry: Option<&LogEntry>, firing: &[u64], resolved: &[u64], sr: bool, now: i64, want: bool| {
            let got = LogEntry::needs_update(entry, &set(firing), &set(resolved), sr, 50, now);
            assert_eq!(got, want, "{firing:?} {resolved:?} {sr} {now}");
        };
        check(None, &[1], &[], true, 0, true);
        check(None, &[], &[1], true, 0, false);
        check(Some(&entry), &[1, 2, 4], &[], true, 110, true);
        check(Some(&entry), &[1], &[2, 3], true, 110, true);
        check(Some(&entry), &[1], &[2, 3], false, 110, false);
        check(Some(&entry), &[1], &[2, 3], false, 151, true);
        check(Some(&entry), &[], &[1, 2], false, 110, true);
        check(Some(&LogEntry { firing: set(&[]), ..entry.clone() }), &[], &[1], true, 110, false);
        check(Some(&entry), &[1, 2], &[3], true, 150, false);
    }

    #[test]
    fn persists_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nflog");
        let key = LogKey { group_key: "{}:{}".into(), receiver: "r".into(), integration: "webhook".into(), index: 0 };
        let entry = LogEntry { timestamp_ms: 5, firing: set(&[1]), resolved: set(&[]), expires_at_ms: 100 };
        NotificationLog::open(&path).unwrap().log(key.clone(), entry.clone()).unwrap();
        let mut log = NotificationLog::open(&path).unwrap();
        assert_eq!(log.get(&key, 50), Some(&entry));
        assert_eq!(log.get(&key, 100), None);
        assert_eq!(log.gc(100).unwrap(), 1);
        assert!(NotificationLog::open(&path).unwrap().is_empty());
    }
}

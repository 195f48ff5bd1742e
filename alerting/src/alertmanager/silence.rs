//! Silences (`silence/silence.go`): matchers over a time window, created, updated and expired
//! through the API, persisted as a snapshot under `--storage.path`.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sextant_model::Labels;

use super::matcher::{MatchType, Matcher, Matchers};
use super::snapshot;
use crate::Error;

/// One silence. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    /// Empty in a request that creates a silence; a UUID once stored.
    pub id: String,
    pub matchers: Matchers,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub updated_at_ms: i64,
    pub created_by: String,
    pub comment: String,
}

/// Where a silence is in its life at some time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    /// `pending` before the start, `expired` from the end on, `active` in between. (Go
    /// counts the end instant itself as active; at millisecond resolution that would leave a
    /// silence expired "now" active for the rest of the millisecond.)
    pub fn state(&self, now_ms: i64) -> SilenceState {
        if now_ms < self.starts_at_ms {
            SilenceState::Pending
        } else if now_ms >= self.ends_at_ms {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }

    /// True if the silence is active and all its matchers accept `labels`.
    pub fn mutes(&self, labels: &Labels, now_ms: i64) -> bool {
        self.state(now_ms) == SilenceState::Active && self.matchers.matches(labels)
    }

    fn validate(&self) -> Result<(), Error> {
        if self.matchers.is_empty() {
            return Err(Error::invalid("at least one matcher required"));
        }
        for m in self.matchers.iter() {
            if !sextant_model::is_valid_legacy_label_name(&m.name) {
                return Err(Error::invalid(format!("invalid label matcher: invalid label name {:?}", m.name)));
            }
        }
        if self.matchers.iter().all(|m| m.matches("")) {
            return Err(Error::invalid("at least one matcher must not match the empty string"));
        }
        if self.ends_at_ms < self.starts_at_ms {
            return Err(Error::invalid("end time must not be before start time"));
        }
        Ok(())
    }
}

/// The stored silences, optionally persisted to a snapshot file (written after every change,
/// atomically, so a `kill -9` loses none).
#[derive(Debug)]
pub struct Silences {
    by_id: BTreeMap<String, Silence>,
    /// How long expired silences are kept (`--data.retention`, 120h).
    retention_ms: i64,
    path: Option<PathBuf>,
}

impl Default for Silences {
    fn default() -> Silences {
        Silences { by_id: BTreeMap::new(), retention_ms: 120 * 3600 * 1000, path: None }
    }
}

impl Silences {
    /// In memory only.
    pub fn new() -> Silences {
        Silences::default()
    }

    /// Persisted in `path`, loading what a previous run left there.
    pub fn open(path: &Path) -> Result<Silences, Error> {
        let mut silences = Silences { path: Some(path.to_path_buf()), ..Silences::default() };
        if let Some(stored) = snapshot::read::<Vec<StoredSilence>>(path)? {
            for s in stored {
                let silence = s.into_silence().map_err(|e| Error::storage(path, e))?;
                silences.by_id.insert(silence.id.clone(), silence);
            }
        }
        Ok(silences)
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id)
    }

    /// Every stored silence (expired ones until garbage-collected), by id.
    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values()
    }

    /// The ids of active silences muting `labels`.
    pub fn silenced_by(&self, labels: &Labels, now_ms: i64) -> Vec<String> {
        self.by_id.values().filter(|s| s.mutes(labels, now_ms)).map(|s| s.id.clone()).collect()
    }

    /// Creates a silence (empty id) or updates one (`POST /api/v2/silences`); returns its id.
    /// An update changes the silence in place only when matchers are unchanged and the
    /// change does not rewrite the past; otherwise the old one is expired and a new id made.
    pub fn set(&mut self, mut silence: Silence, now_ms: i64) -> Result<String, Error> {
        silence.validate()?;
        if !silence.id.is_empty() {
            let Some(old) = self.by_id.get(&silence.id) else {
                return Err(Error::SilenceNotFound { id: silence.id });
            };
            if can_update(old, &silence, now_ms) {
                silence.updated_at_ms = now_ms;
                self.by_id.insert(silence.id.clone(), silence.clone());
                self.persist()?;
                return Ok(silence.id);
            }
            let old_id = silence.id.clone();
            self.expire_in_memory(&old_id, now_ms);
        }
        if silence.ends_at_ms < now_ms {
            return Err(Error::invalid("end time can't be in the past"));
        }
        if silence.starts_at_ms < now_ms {
            silence.starts_at_ms = now_ms;
        }
        silence.id = new_uuid();
        silence.updated_at_ms = now_ms;
        self.by_id.insert(silence.id.clone(), silence.clone());
        self.persist()?;
        Ok(silence.id)
    }

    /// Expires a silence (`DELETE /api/v2/silence/{id}`): an active one ends now, a pending
    /// one starts and ends now; an expired one is left alone.
    pub fn expire(&mut self, id: &str, now_ms: i64) -> Result<(), Error> {
        if !self.by_id.contains_key(id) {
            return Err(Error::SilenceNotFound { id: id.to_string() });
        }
        if self.by_id[id].state(now_ms) == SilenceState::Expired {
            return Err(Error::invalid("silence already expired"));
        }
        self.expire_in_memory(id, now_ms);
        self.persist()
    }

    fn expire_in_memory(&mut self, id: &str, now_ms: i64) {
        if let Some(s) = self.by_id.get_mut(id) {
            match s.state(now_ms) {
                SilenceState::Active => s.ends_at_ms = now_ms,
                SilenceState::Pending => {
                    s.starts_at_ms = now_ms;
                    s.ends_at_ms = now_ms;
                }
                SilenceState::Expired => return,
            }
            s.updated_at_ms = now_ms;
        }
    }

    /// Drops silences expired for longer than the retention; returns how many.
    pub fn gc(&mut self, now_ms: i64) -> Result<usize, Error> {
        let before = self.by_id.len();
        let retention = self.retention_ms;
        self.by_id.retain(|_, s| s.ends_at_ms + retention >= now_ms);
        let dropped = before - self.by_id.len();
        if dropped > 0 {
            self.persist()?;
        }
        Ok(dropped)
    }

    fn persist(&self) -> Result<(), Error> {
        let Some(path) = &self.path else { return Ok(()) };
        let stored: Vec<StoredSilence> = self.by_id.values().map(StoredSilence::from).collect();
        snapshot::write(path, &stored)
    }
}

fn can_update(old: &Silence, new: &Silence, now_ms: i64) -> bool {
    let same_matchers = old.matchers.0.len() == new.matchers.0.len()
        && old
            .matchers
            .iter()
            .zip(new.matchers.iter())
            .all(|(a, b)| a.kind == b.kind && a.name == b.name && a.value == b.value);
    if !same_matchers {
        return false;
    }
    match old.state(now_ms) {
        SilenceState::Active => new.starts_at_ms == old.starts_at_ms && new.ends_at_ms >= now_ms,
        SilenceState::Pending => new.starts_at_ms >= now_ms,
        SilenceState::Expired => false,
    }
}

/// A random (version 4) UUID, from the standard library's randomly keyed hasher.
fn new_uuid() -> String {
    let random = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        h.finish()
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random().to_le_bytes());
    bytes[8..].copy_from_slice(&random().to_le_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// The snapshot form of a silence.
#[derive(Serialize, Deserialize)]
struct StoredSilence {
    id: String,
    matchers: Vec<(String, String, String)>,
    starts_at_ms: i64,
    ends_at_ms: i64,
    updated_at_ms: i64,
    created_by: String,
    comment: String,
}

impl From<&Silence> for StoredSilence {
    fn from(s: &Silence) -> StoredSilence {
        StoredSilence {
            id: s.id.clone(),
            matchers: s
                .matchers
                .iter()
                .map(|m| (m.name.clone(), m.kind.as_str().to_string(), m.value.clone()))
                .collect(),
            starts_at_ms: s.starts_at_ms,
            ends_at_ms: s.ends_at_ms,
            updated_at_ms: s.updated_at_ms,
            created_by: s.created_by.clone(),
            comment: s.comment.clone(),
        }
    }
}

impl StoredSilence {
    fn into_silence(self) -> Result<Silence, Error> {
        let matchers = self
            .matchers
            .into_iter()
            .map(|(name, op, value)| {
                let kind = match op.as_str() {
                    "=" => MatchType::Equal,
                    "!=" => MatchType::NotEqual,
                    "=~" => MatchType::Regexp,
                    "!~" => MatchType::NotRegexp,
                    _ => return Err(Error::invalid(format!("bad matcher operator {op:?}"))),
                };
                Matcher::new(kind, name, value)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Silence {
            id: self.id,
            matchers: Matchers(matchers),
            starts_at_ms: self.starts_at_ms,
            ends_at_ms: self.ends_at_ms,
            updated_at_ms: self.updated_at_ms,
            created_by: self.created_by,
            comment: self.comment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alertmanager::{parse_matchers, ParseMode};

    fn silence(matchers: &str, start: i64, end: i64) -> Silence {
        Silence {
            id: String::new(),
            matchers: Matchers(parse_matchers(matchers, ParseMode::Fallback).unwrap()),
            starts_at_ms: start,
            ends_at_ms: end,
            updated_at_ms: 0,
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    #[test]
    fn validation() {
        let mut s = Silences::new();
        let check = |s: &mut Silences, matchers: &str, start, end, ok: bool| {
            assert_eq!(s.set(silence(matchers, start, end), 100).is_ok(), ok, "{matchers} {start} {end}")
        };
        check(&mut s, "a=1", 0, 200, true);
        check(&mut s, r#"a="""#, 0, 200, false);
        check(&mut s, "a=~.*", 0, 200, false);
        check(&mut s, r#"a=~.*,b="x""#, 0, 200, true);
        check(&mut s, "a=1", 300, 200, false);
        check(&mut s, "a=1", 0, 50, false);
        check(&mut s, "", 0, 200, false);
    }

    #[test]
    fn lifecycle() {
        let mut s = Silences::new();
        let alert = Labels::from_pairs([("a", "1"), ("b", "2")]);
        let id = s.set(silence("a=1", 0, 1000), 100).unwrap();
        assert_eq!(s.get(&id).unwrap().starts_at_ms, 100, "start in the past moves to now");
        assert_eq!(s.silenced_by(&alert, 500), vec![id.clone()]);
        assert!(s.silenced_by(&alert, 1001).is_empty());
        // Extending an active silence keeps its id.
        let mut longer = s.get(&id).unwrap().clone();
        longer.ends_at_ms = 2000;
        assert_eq!(s.set(longer, 200).unwrap(), id);
        // Changing matchers makes a new one and expires the old.
        let mut other = s.get(&id).unwrap().clone();
        other.matchers = silence("b=2", 0, 0).matchers;
        let new_id = s.set(other, 300).unwrap();
        assert_ne!(new_id, id);
        assert_eq!(s.get(&id).unwrap().state(301), SilenceState::Expired);
        s.expire(&new_id, 400).unwrap();
        assert!(s.silenced_by(&alert, 401).is_empty());
        assert!(matches!(s.expire("nope", 1), Err(Error::SilenceNotFound { .. })));
        // A pending silence expired now starts and ends now.
        let pending = s.set(silence("a=1", 5000, 6000), 500).unwrap();
        s.expire(&pending, 600).unwrap();
        assert_eq!((s.get(&pending).unwrap().starts_at_ms, s.get(&pending).unwrap().ends_at_ms), (600, 600));
        assert_eq!(s.gc(500 + 120 * 3600 * 1000).unwrap(), 2, "the pending one expired at 600 is kept");
    }

    #[test]
    fn persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silences");
        let id = {
            let mut s = Silences::open(&path).unwrap();
            s.set(silence(r#"a=~"x|y",b!=2"#, 0, 1000), 100).unwrap()
        };
        let s = Silences::open(&path).unwrap();
        let got = s.get(&id).unwrap();
        assert_eq!((got.starts_at_ms, got.ends_at_ms, got.matchers.0.len()), (100, 1000, 2));
        assert!(got.mutes(&Labels::from_pairs([("a", "y")]), 500));
    }
}

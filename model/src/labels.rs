//! Label sets: sorted by name, names unique, cheap to clone, with a stable hash.

use std::fmt;
use std::sync::Arc;

use crate::Error;

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: Box<str>,
    pub value: Box<str>,
}

impl Label {
    pub fn new(name: impl Into<Box<str>>, value: impl Into<Box<str>>) -> Label {
        Label { name: name.into(), value: value.into() }
    }
}

/// A set of labels, sorted by name with unique names. Cloning is a reference-count increment.
///
/// Empty values are dropped on construction: in Prometheus a label with an empty value is the
/// same as no label at all.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Labels {
    labels: Arc<[Label]>,
}

impl Labels {
    /// The empty label set.
    pub fn empty() -> Labels {
        Labels::default()
    }

    /// Builds a label set from pairs in any order. Empty values are dropped; a name given twice
    /// is an error.
    pub fn try_from_pairs<N, V, I>(pairs: I) -> Result<Labels, Error>
    where
        N: Into<Box<str>>,
        V: Into<Box<str>>,
        I: IntoIterator<Item = (N, V)>,
    {
        let mut labels: Vec<Label> =
            pairs.into_iter().map(|(n, v)| Label::new(n, v)).filter(|l| !l.value.is_empty()).collect();
        labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = labels.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(Error::DuplicateLabelName { name: w[0].name.to_string() });
        }
        Ok(Labels { labels: labels.into() })
    }

    /// Like [`Labels::try_from_pairs`], for pairs known to have unique names (literals in code
    /// and tests). A repeated name keeps the last value.
    pub fn from_pairs<N, V, I>(pairs: I) -> Labels
    where
        N: Into<Box<str>>,
        V: Into<Box<str>>,
        I: IntoIterator<Item = (N, V)>,
    {
        let mut builder = LabelsBuilder::new(&Labels::empty());
        for (n, v) in pairs {
            let (n, v): (Box<str>, Box<str>) = (n.into(), v.into());
            builder.set(&n, &v);
        }
        builder.labels()
    }

    /// Builds from labels already sorted by name, unique and without empty values. Checked
    /// (and repaired by sorting) only in debug builds' assertions; used on hot decode paths.
    pub fn from_sorted(labels: Vec<Label>) -> Labels {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name), "labels not sorted/unique");
        Labels { labels: labels.into() }
    }

    /// Like [`Labels::from_sorted`], collecting straight into the shared allocation (one
    /// allocation when the iterator knows its exact length, as a mapped slice iterator does).
    pub fn from_sorted_iter(labels: impl IntoIterator<Item = Label>) -> Labels {
        let labels: Arc<[Label]> = labels.into_iter().collect();
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name), "labels not sorted/unique");
        Labels { labels }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.labels.iter()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.labels
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels.binary_search_by(|l| (*l.name).cmp(name)).ok().map(|i| &*self.labels[i].value)
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// This set without `__name__`.
    pub fn without_metric_name(&self) -> Labels {
        if self.metric_name().is_none() {
            return self.clone();
        }
        self.filter(|l| &*l.name != METRIC_NAME)
    }

    /// The labels for which `keep` is true.
    pub fn filter(&self, mut keep: impl FnMut(&Label) -> bool) -> Labels {
        Labels { labels: self.labels.iter().filter(|l| keep(l)).cloned().collect() }
    }

    /// A 64-bit hash that is stable across runs, versions and machines (xxh3 over
    /// `name 0xff value 0xff ...`), used for sharding and fingerprints.
    pub fn stable_hash(&self) -> u64 {
        // The bytes hashed: name 0xff value 0xff per label. Gathered on the stack and hashed in
        // one call when they fit (many small streaming updates cost more than the copy); the
        // streaming hash of the same bytes gives the same value.
        const STACK: usize = 1024;
        let len: usize = self.labels.iter().map(|l| l.name.len() + l.value.len() + 2).sum();
        if len <= STACK {
            let mut buf = [0u8; STACK];
            let mut pos = 0;
            for l in self.labels.iter() {
                for part in [l.name.as_bytes(), l.value.as_bytes()] {
                    buf[pos..pos + part.len()].copy_from_slice(part);
                    buf[pos + part.len()] = 0xff;
                    pos += part.len() + 1;
                }
            }
            return xxhash_rust::xxh3::xxh3_64(&buf[..pos]);
        }
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for l in self.labels.iter() {
            hasher.update(l.name.as_bytes());
            hasher.update(&[0xff]);
            hasher.update(l.value.as_bytes());
            hasher.update(&[0xff]);
        }
        hasher.digest()
    }

    /// Stable hash over only the named labels (`on(...)` in PromQL); `names` must be sorted.
    pub fn stable_hash_for(&self, names: &[&str]) -> u64 {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for l in self.labels.iter().filter(|l| names.binary_search(&&*l.name).is_ok()) {
            hasher.update(l.name.as_bytes());
            hasher.update(&[0xff]);
            hasher.update(l.value.as_bytes());
            hasher.update(&[0xff]);
        }
        hasher.digest()
    }

    /// Checks every name and value: names must be valid (legacy or UTF-8 per `scheme`), values
    /// valid UTF-8 (guaranteed by `str`), the metric name valid for `scheme`.
    pub fn validate(&self, scheme: NameValidation) -> Result<(), Error> {
        for l in self.labels.iter() {
            let ok = match scheme {
                NameValidation::Legacy if &*l.name == METRIC_NAME => is_valid_legacy_metric_name(&l.value),
                NameValidation::Legacy => is_valid_legacy_label_name(&l.name),
                NameValidation::Utf8 => !l.name.is_empty(),
            };
            if !ok {
                return Err(if &*l.name == METRIC_NAME {
                    Error::InvalidMetricName { name: l.value.to_string() }
                } else {
                    Error::InvalidLabelName { name: l.name.to_string() }
                });
            }
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Which names are allowed: Prometheus' classic `[a-zA-Z_][a-zA-Z0-9_]*` or any UTF-8 (3.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameValidation {
    Legacy,
    #[default]
    Utf8,
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
pub fn is_valid_legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_valid_legacy_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Builds a new label set from an existing one by setting and deleting labels.
#[derive(Debug, Clone)]
pub struct LabelsBuilder {
    base: Labels,
    set: Vec<Label>,
    del: Vec<Box<str>>,
}

impl LabelsBuilder {
    pub fn new(base: &Labels) -> LabelsBuilder {
        LabelsBuilder { base: base.clone(), set: Vec::new(), del: Vec::new() }
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: &str, value: &str) -> &mut LabelsBuilder {
        if value.is_empty() {
            return self.del(name);
        }
        self.del.retain(|n| &**n != name);
        match self.set.iter_mut().find(|l| &*l.name == name) {
            Some(l) => l.value = value.into(),
            None => self.set.push(Label::new(name, value)),
        }
        self
    }

    pub fn del(&mut self, name: &str) -> &mut LabelsBuilder {
        self.set.retain(|l| &*l.name != name);
        if !self.del.iter().any(|n| &**n == name) {
            self.del.push(name.into());
        }
        self
    }

    /// The current value of `name` in the builder.
    pub fn get(&self, name: &str) -> Option<&str> {
        if let Some(l) = self.set.iter().find(|l| &*l.name == name) {
            return Some(&l.value);
        }
        if self.del.iter().any(|n| &**n == name) {
            return None;
        }
        self.base.get(name)
    }

    /// Keeps only the labels for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) -> &mut LabelsBuilder {
        let current = self.labels();
        for l in current.iter() {
            if !keep(&l.name, &l.value) {
                self.del(&l.name);
            }
        }
        self
    }

    pub fn labels(&self) -> Labels {
        if self.set.is_empty() && self.del.is_empty() {
            return self.base.clone();
        }
        let mut out: Vec<Label> = self
            .base
            .iter()
            .filter(|l| !self.del.contains(&l.name) && !self.set.iter().any(|s| s.name == l.name))
            .cloned()
            .collect();
        out.extend(self.set.iter().cloned());
        out.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Labels { labels: out.into() }
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Prints `{a="b", c="d"}` with values escaped as in PromQL strings, like Prometheus'
/// `labels.String()`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if is_valid_legacy_label_name(&l.name) {
                f.write_str(&l.name)?;
            } else {
                write_quoted(f, &l.name)?;
            }
            f.write_str("=")?;
            write_quoted(f, &l.value)?;
        }
        f.write_str("}")
    }
}

/// Writes `s` as a double-quoted string with Go's `strconv.Quote` escapes for `\`, `"` and
/// control characters.
pub fn write_quoted(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(out, "\\x{:02x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_and_empty_values_dropped() {
        let ls = Labels::try_from_pairs([("b", "2"), ("a", "1"), ("c", "")]).unwrap();
        let names: Vec<&str> = ls.iter().map(|l| &*l.name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(ls.get("b"), Some("2"));
        assert_eq!(ls.get("c"), None);
        let err = Labels::try_from_pairs([("a", "1"), ("a", "2")]).unwrap_err();
        assert_eq!(err.to_string(), "label name \"a\" is given twice");
    }

    #[test]
    fn hash_is_stable_and_separates_boundaries() {
        let a = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
        let b = Labels::from_pairs([("job", "node"), ("__name__", "up")]);
        assert_eq!(a.stable_hash(), b.stable_hash());
        // Fixed value: changing it breaks sharding of every stored remote-write queue.
        assert_eq!(a.stable_hash(), 0x85d6_66c2_8b44_5bb9, "{:#x}", a.stable_hash());
        let c = Labels::from_pairs([("a", "bc")]);
        let d = Labels::from_pairs([("ab", "c")]);
        assert_ne!(c.stable_hash(), d.stable_hash());
        assert_eq!(a.stable_hash_for(&["job"]), Labels::from_pairs([("job", "node")]).stable_hash());
    }

    #[test]
    fn one_shot_hash_equals_streaming_hash() {
        // Sizes around the stack buffer and xxh3's own size classes (16, 128, 240 bytes).
        for value_len in [0, 1, 5, 12, 60, 117, 230, 500, 1014, 1015, 1016, 1020, 3000] {
            let labels = Labels::from_pairs([("a", "x".repeat(value_len + 1)), ("b", "yz".to_string())]);
            let mut streaming = xxhash_rust::xxh3::Xxh3::new();
            for l in labels.iter() {
                streaming.update(l.name.as_bytes());
                streaming.update(&[0xff]);
                streaming.update(l.value.as_bytes());
                streaming.update(&[0xff]);
            }
            assert_eq!(labels.stable_hash(), streaming.digest(), "value length {value_len}");
        }
    }

    #[test]
    fn builder_sets_and_deletes() {
        let base = Labels::from_pairs([("__name__", "up"), ("job", "x"), ("instance", "i")]);
        let mut b = LabelsBuilder::new(&base);
        b.set("job", "y").del("instance").set("zone", "z").set("__name__", "");
        assert_eq!(b.get("job"), Some("y"));
        assert_eq!(b.get("instance"), None);
        assert_eq!(b.labels().to_string(), r#"{job="y", zone="z"}"#);
        assert_eq!(base.without_metric_name().to_string(), r#"{instance="i", job="x"}"#);
    }

    #[test]
    fn name_validation() {
        for (name, legacy_label, legacy_metric) in [
            ("abc_1", true, true),
            ("_x", true, true),
            ("a:b", false, true),
            ("1a", false, false),
            ("", false, false),
            ("ä", false, false),
        ] {
            assert_eq!(is_valid_legacy_label_name(name), legacy_label, "{name}");
            assert_eq!(is_valid_legacy_metric_name(name), legacy_metric, "{name}");
        }
        let utf8 = Labels::from_pairs([("__name__", "my.metric"), ("a.b", "c")]);
        assert!(utf8.validate(NameValidation::Utf8).is_ok());
        assert_eq!(utf8.validate(NameValidation::Legacy).unwrap_err().to_string(), "invalid metric name \"my.metric\"");
        assert_eq!(
            Labels::from_pairs([("a.b", "c")]).validate(NameValidation::Legacy).unwrap_err().to_string(),
            "invalid label name \"a.b\""
        );
    }

    #[test]
    fn display_quotes_and_escapes() {
        let ls = Labels::from_pairs([("a", "x\"y\n"), ("b.c", "\\")]);
        assert_eq!(ls.to_string(), r#"{a="x\"y\n", "b.c"="\\"}"#);
    }
}

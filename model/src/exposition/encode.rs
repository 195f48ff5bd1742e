//! Owned metric families and their encoding to the text format and OpenMetrics.

use super::error::ParseError;
use super::format::{Format, MetricType};
use super::number::{push_decimal, write_go_float, write_om_float, write_om_timestamp};
use super::parser::{Entry, Parser};
use crate::{is_valid_legacy_label_name, is_valid_legacy_metric_name, Label, Labels};

/// A metric family: name, metadata and samples. What exporters build and federation serves;
/// [`encode`] writes it, [`parse_families`] reads it back.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricFamily {
    pub name: String,
    pub help: Option<String>,
    pub metric_type: MetricType,
    /// OpenMetrics `# UNIT`; the text format has no units and drops it.
    pub unit: Option<String>,
    pub samples: Vec<FamilySample>,
}

impl MetricFamily {
    /// A family with a help text and no samples yet: what an exporter builds per scrape.
    pub fn new(name: impl Into<String>, help: impl Into<String>, metric_type: MetricType) -> MetricFamily {
        MetricFamily { name: name.into(), help: Some(help.into()), metric_type, unit: None, samples: Vec::new() }
    }

    /// A family of one unlabelled sample named like the family.
    pub fn single(
        name: impl Into<String>,
        help: impl Into<String>,
        metric_type: MetricType,
        value: f64,
    ) -> MetricFamily {
        let mut family = MetricFamily::new(name, help, metric_type);
        family.push(&[], value);
        family
    }

    /// Adds a sample named like the family, with these labels (in any order; a repeated name
    /// keeps its first value) and no timestamp.
    pub fn push(&mut self, labels: &[(&str, &str)], value: f64) {
        self.push_suffixed("", labels, value);
    }

    /// Adds a sample named `<family name><suffix>` (`_bucket`, `_sum`, `_count`, ...).
    pub fn push_suffixed(&mut self, suffix: &str, labels: &[(&str, &str)], value: f64) {
        let mut name = String::with_capacity(self.name.len() + suffix.len());
        name.push_str(&self.name);
        name.push_str(suffix);
        let labels = sorted_labels(labels);
        self.samples.push(FamilySample { name, labels, value, timestamp: None, exemplar: None });
    }
}

/// The label set of `pairs`: sorted by name like Go clients write them, a repeated name keeping
/// its first value, empty values kept (written as `name=""`). Up to [`INLINE_LABELS`] pairs
/// are sorted on the stack and the set is built in one allocation (plus its strings).
fn sorted_labels(pairs: &[(&str, &str)]) -> Labels {
    if pairs.is_empty() {
        return Labels::empty();
    }
    if pairs.len() > INLINE_LABELS {
        let mut sorted: Vec<(&str, &str)> = pairs.to_vec();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        sorted.dedup_by(|later, earlier| later.0 == earlier.0);
        return Labels::from_sorted_iter(sorted.iter().map(|(n, v)| Label::new(*n, *v)));
    }
    let mut buf: [(&str, &str); INLINE_LABELS] = [("", ""); INLINE_LABELS];
    let sorted = &mut buf[..pairs.len()];
    sorted.copy_from_slice(pairs);
    // Stable, so among equal names the first given comes first and is the one kept.
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut kept = 0;
    for idx in 0..sorted.len() {
        if kept == 0 || sorted[kept - 1].0 != sorted[idx].0 {
            sorted[kept] = sorted[idx];
            kept += 1;
        }
    }
    Labels::from_sorted_iter(sorted[..kept].iter().map(|(n, v)| Label::new(*n, *v)))
}

/// Label pairs per sample that [`MetricFamily::push`] sorts without a heap buffer.
const INLINE_LABELS: usize = 16;

/// One sample of a [`MetricFamily`].
#[derive(Debug, Clone, PartialEq)]
pub struct FamilySample {
    /// The full sample name: `requests_total`, `latency_seconds_bucket`, ...
    pub name: String,
    /// Labels without `__name__`. Built by [`MetricFamily::push`], they may hold empty values,
    /// which are written as `name=""` like Go clients do.
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    pub exemplar: Option<FamilyExemplar>,
}

/// An exemplar of a [`FamilySample`] (written in OpenMetrics only).
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyExemplar {
    pub labels: Labels,
    pub value: f64,
    pub timestamp: Option<i64>,
}

/// Encodes `families` in `format` (OpenMetrics ends with `# EOF`).
pub fn encode(families: &[MetricFamily], format: Format) -> String {
    let mut out = String::with_capacity(encoded_size_hint(families));
    encode_into(&mut out, families, format);
    out
}

/// A guess of the encoded size of `families`, for sizing the output buffer up front.
pub fn encoded_size_hint(families: &[MetricFamily]) -> usize {
    families.iter().map(|f| 64 + f.help.as_ref().map_or(0, String::len) + f.samples.len() * 64).sum()
}

/// Like [`encode`], appending to `out`.
///
/// Everything is written straight into `out`: no per-sample allocation (names, escaped label
/// values and numbers are written in place), so a caller that keeps `out` between scrapes
/// allocates nothing here once it has grown.
pub fn encode_into(out: &mut String, families: &[MetricFamily], format: Format) {
    let om = format == Format::OpenMetrics;
    for family in families {
        // OpenMetrics names a counter family without its `_total`.
        let family_name = match (om, family.metric_type) {
            (true, MetricType::Counter) => family.name.strip_suffix("_total").unwrap_or(&family.name),
            _ => &family.name,
        };
        let typed = family.metric_type != MetricType::Unknown || family.help.is_some();
        if om && typed {
            write_meta_name(out, "# TYPE ", family_name);
            out.push_str(family.metric_type.as_str(format));
            out.push('\n');
        }
        if let (true, Some(unit)) = (om, &family.unit) {
            write_meta_name(out, "# UNIT ", family_name);
            out.push_str(unit);
            out.push('\n');
        }
        if let Some(help) = &family.help {
            write_meta_name(out, "# HELP ", family_name);
            write_escaped(out, help, om);
            out.push('\n');
        }
        if !om && typed {
            write_meta_name(out, "# TYPE ", family_name);
            out.push_str(family.metric_type.as_str(format));
            out.push('\n');
        }
        let counter_total = om && family.metric_type == MetricType::Counter;
        for sample in &family.samples {
            let suffix = if counter_total && sample.name == family_name { "_total" } else { "" };
            write_series(out, &sample.name, suffix, &sample.labels);
            out.push(' ');
            if om {
                write_om_float(out, sample.value);
            } else {
                write_go_float(out, sample.value);
            }
            if let Some(ts) = sample.timestamp {
                out.push(' ');
                if om {
                    write_om_timestamp(out, ts);
                } else {
                    if ts < 0 {
                        out.push('-');
                    }
                    push_decimal(out, ts.unsigned_abs());
                }
            }
            if let (true, Some(exemplar)) = (om, &sample.exemplar) {
                out.push_str(" # ");
                write_label_set(out, None, &exemplar.labels);
                out.push(' ');
                write_om_float(out, exemplar.value);
                if let Some(ts) = exemplar.timestamp {
                    out.push(' ');
                    write_om_timestamp(out, ts);
                }
            }
            out.push('\n');
        }
    }
    if om {
        out.push_str("# EOF\n");
    }
}

fn write_meta_name(out: &mut String, prefix: &str, name: &str) {
    out.push_str(prefix);
    if is_valid_legacy_metric_name(name) {
        out.push_str(name);
    } else {
        write_label_value(out, name);
    }
    out.push(' ');
}

/// `name` + `suffix` with its label set (inside the braces, quoted, when the name is not a
/// legacy metric name).
fn write_series(out: &mut String, name: &str, suffix: &str, labels: &Labels) {
    if is_valid_legacy_metric_name(name) {
        out.push_str(name);
        out.push_str(suffix);
        if !labels.is_empty() {
            write_label_set(out, None, labels);
        }
    } else if suffix.is_empty() {
        write_label_set(out, Some(name), labels);
    } else {
        write_label_set(out, Some(&format!("{name}{suffix}")), labels);
    }
}

fn write_label_set(out: &mut String, quoted_name: Option<&str>, labels: &Labels) {
    out.push('{');
    let mut first = true;
    if let Some(name) = quoted_name {
        write_label_value(out, name);
        first = false;
    }
    for label in labels {
        if !first {
            out.push(',');
        }
        first = false;
        if is_valid_legacy_label_name(&label.name) {
            out.push_str(&label.name);
        } else {
            write_label_value(out, &label.name);
        }
        out.push('=');
        write_label_value(out, &label.value);
    }
    out.push('}');
}

/// `"..."` with the exposition escapes `\\`, `\"` and `\n` (other bytes as they are),
/// escaped in place: the runs between escapes are copied as they are.
fn write_label_value(out: &mut String, value: &str) {
    out.push('"');
    write_escaped(out, value, true);
    out.push('"');
}

/// `text` with `\\` and newline escaped, and `"` too when `quotes`.
fn write_escaped(out: &mut String, text: &str, quotes: bool) {
    let mut start = 0;
    for (idx, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'"' if quotes => "\\\"",
            _ => continue,
        };
        // The escaped bytes are ASCII, so `idx` is a char boundary.
        out.push_str(&text[start..idx]);
        out.push_str(escape);
        start = idx + 1;
    }
    out.push_str(&text[start..]);
}

/// Parses a whole exposition (with Prometheus' rules) into families: metadata starts or
/// updates the family of its name; a sample joins the current family if its name is one of
/// the family's sample names for its type, else starts an untyped family of its own.
/// Comments are dropped.
pub fn parse_families(input: &[u8], format: Format) -> Result<Vec<MetricFamily>, ParseError> {
    let mut families: Vec<MetricFamily> = Vec::new();
    let mut parser = Parser::new(input, format);
    while let Some(entry) = parser.next() {
        let entry = entry?;
        let at = parser.entry_start();
        let (name, sample) = match &entry {
            Entry::Help { name, .. } | Entry::Type { name, .. } | Entry::Unit { name, .. } => (name.as_ref(), false),
            Entry::Series(s) => (s.name(), true),
            Entry::Comment(_) => continue,
        };
        let current = families.last().filter(|f| {
            if sample {
                f.metric_type.is_sample_of(&f.name, name)
            } else {
                f.name == name && f.samples.is_empty()
            }
        });
        if current.is_none() {
            families.push(MetricFamily { name: name.to_string(), ..MetricFamily::default() });
        }
        let Some(family) = families.last_mut() else { continue };
        match entry {
            Entry::Help { help, .. } => family.help = Some(help.into_owned()),
            Entry::Type { metric_type, .. } => family.metric_type = metric_type,
            Entry::Unit { unit, .. } => family.unit = Some(unit.to_string()),
            Entry::Comment(_) => {}
            Entry::Series(s) => {
                let labels = s.to_labels().map_err(|e| ParseError::at(input, at, e.to_string()))?;
                let exemplar = match s.exemplar() {
                    Some(e) => Some(FamilyExemplar {
                        labels: e.to_labels().map_err(|e| ParseError::at(input, at, e.to_string()))?,
                        value: e.value(),
                        timestamp: e.timestamp(),
                    }),
                    None => None,
                };
                family.samples.push(FamilySample {
                    name: s.name().to_string(),
                    labels: labels.without_metric_name(),
                    value: s.value(),
                    timestamp: s.timestamp(),
                    exemplar,
                });
            }
        }
    }
    Ok(families)
}

/// The allocation-free encoder paths against the straightforward ones they replaced.
#[cfg(test)]
mod fast_path_tests {
    use proptest::prelude::*;

    use super::super::number::write_go_float_reference;
    use super::*;

    fn float_text(v: f64) -> String {
        let mut out = String::new();
        write_go_float(&mut out, v);
        out
    }

    fn reference_text(v: f64) -> String {
        let mut out = String::new();
        write_go_float_reference(&mut out, v);
        out
    }

    /// Char-by-char escaping, as the encoder did before it copied runs.
    fn reference_escaped(text: &str, quotes: bool) -> String {
        let mut out = String::new();
        for c in text.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '"' if quotes => out.push_str("\\\""),
                c => out.push(c),
            }
        }
        out
    }

    /// Sort and keep the first of each name, through a `Vec` as before.
    fn reference_labels(pairs: &[(&str, &str)]) -> Labels {
        let mut labels: Vec<Label> = pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect();
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        labels.dedup_by(|later, earlier| later.name == earlier.name);
        Labels::from_sorted(labels)
    }

    /// Ours against the old formatter (Rust's `{:e}` digits). They may differ only where two
    /// shortest digit strings are equally near `v`: Go takes the one with the even last
    /// digit, Rust's formatting the upper one.
    fn check_against_reference(v: f64) -> Result<(), TestCaseError> {
        let (ours, reference) = (float_text(v), reference_text(v));
        if ours != reference {
            prop_assert_eq!(ours.len(), reference.len(), "{} vs {}", ours, reference);
            prop_assert_eq!(ours.parse::<f64>().ok(), Some(v), "{} does not read back", ours);
            let mantissa = ours.split('e').next().unwrap_or_default();
            let last = mantissa.bytes().last().unwrap_or(b'0');
            prop_assert!((last - b'0') % 2 == 0, "{} vs {}: not the even tie", ours, reference);
        }
        Ok(())
    }

    #[test]
    fn floats_like_go() {
        // Two shortest digit strings equally near: Go's strconv takes the even one.
        let tie = 679_741_792_358_060.0 + 0.25;
        assert_eq!(float_text(tie), "6.797417923580602e+14");
        assert_eq!(float_text(-tie), "-6.797417923580602e+14");
        let check = |v: f64, want: &str| assert_eq!(float_text(v), want, "{v:e}");
        check(0.0, "0");
        check(-0.0, "-0");
        check(1.0, "1");
        check(-42.0, "-42");
        check(999_999.0, "999999");
        check(1e6, "1e+06");
        check(-1e6, "-1e+06");
        check(17_518_624.0, "1.7518624e+07");
        check(0.5, "0.5");
        check(0.0001, "0.0001");
        check(0.00001, "1e-05");
        check(123456.5, "123456.5");
        check(1.5e300, "1.5e+300");
        check(5e-324, "5e-324");
        check(f64::MAX, "1.7976931348623157e+308");
        check(f64::INFINITY, "+Inf");
        check(f64::NEG_INFINITY, "-Inf");
        check(f64::NAN, "NaN");
        check(0.1 + 0.2, "0.30000000000000004");
    }

    #[test]
    fn escapes_like_go() {
        let check = |text: &str, quotes: bool, want: &str| {
            let mut out = String::new();
            write_escaped(&mut out, text, quotes);
            assert_eq!(out, want, "{text:?}");
        };
        check("", true, "");
        check("plain", true, "plain");
        check("a\"b", true, "a\\\"b");
        check("a\"b", false, "a\"b");
        check("back\\slash\nnew", false, "back\\\\slash\\nnew");
        check("ünï\"\\", true, "ünï\\\"\\\\");
    }

    #[test]
    fn push_sorts_and_keeps_first() {
        let check = |pairs: &[(&str, &str)], want: &[(&str, &str)]| {
            let mut family = MetricFamily::new("m", "h", MetricType::Gauge);
            family.push(pairs, 1.0);
            let got: Vec<(&str, &str)> = family.samples[0].labels.iter().map(|l| (&*l.name, &*l.value)).collect();
            assert_eq!(got, want, "{pairs:?}");
        };
        check(&[], &[]);
        check(&[("b", "2"), ("a", "1")], &[("a", "1"), ("b", "2")]);
        check(&[("a", "first"), ("b", ""), ("a", "second")], &[("a", "first"), ("b", "")]);
        let many: Vec<(String, String)> = (0..20).rev().map(|i| (format!("l{i:02}"), i.to_string())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let mut want = many.clone();
        want.sort();
        check(&many, &want);
    }

    proptest! {
        #[test]
        fn float_formatter_matches_reference_on_any_bits(bits in any::<u64>()) {
            let v = f64::from_bits(bits);
            check_against_reference(v)?;
        }

        #[test]
        fn float_formatter_matches_reference_on_common_values(
            int in -2_000_000i64..2_000_000,
            scale in -12i32..12,
        ) {
            let v = int as f64 * 10f64.powi(scale);
            check_against_reference(v)?;
            let w = int as f64 / 7.0;
            check_against_reference(w)?;
        }

        #[test]
        fn escaping_matches_reference(text in "[a-z\"\\\\\nü ]{0,40}", quotes in any::<bool>()) {
            let mut out = String::new();
            write_escaped(&mut out, &text, quotes);
            prop_assert_eq!(out, reference_escaped(&text, quotes));
        }

        #[test]
        fn label_sorting_matches_reference(
            pairs in proptest::collection::vec(("[a-e]{1,2}", "[a-z]{0,3}"), 0..24),
        ) {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            prop_assert_eq!(sorted_labels(&pairs), reference_labels(&pairs));
        }

        #[test]
        fn encoding_is_unchanged_for_random_families(
            values in proptest::collection::vec(any::<f64>(), 1..8),
            label in "[a-z\"\\\\\n]{0,6}",
            om in any::<bool>(),
        ) {
            let mut family = MetricFamily::new("requests_total", "Requests \"served\"\\\n.", MetricType::Counter);
            for (idx, value) in values.iter().enumerate() {
                family.push(&[("path", label.as_str()), ("idx", &idx.to_string())], *value);
            }
            let format = if om { Format::OpenMetrics } else { Format::Text };
            let text = encode(std::slice::from_ref(&family), format);
            // Read back: the same samples, by value (NaN compared by bits of the canonical NaN).
            let back = parse_families(text.as_bytes(), format).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back.len(), 1);
            for (got, want) in back[0].samples.iter().zip(&family.samples) {
                prop_assert!(got.value == want.value || (got.value.is_nan() && want.value.is_nan()));
                prop_assert_eq!(got.labels.get("idx"), want.labels.get("idx"));
            }
        }
    }
}

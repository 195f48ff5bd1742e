//! Owned metric families and their encoding to the text format and OpenMetrics.

use std::fmt::Write as _;

use super::error::ParseError;
use super::format::{Format, MetricType};
use super::number::{write_go_float, write_om_float, write_om_timestamp};
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
        // Sorted like Go clients write them; empty values are kept (written as `name=""`).
        let mut pairs: Vec<Label> = labels.iter().map(|(n, v)| Label::new(*n, *v)).collect();
        pairs.sort_by(|a, b| a.name.cmp(&b.name));
        pairs.dedup_by(|later, earlier| later.name == earlier.name);
        let labels = Labels::from_sorted(pairs);
        self.samples.push(FamilySample { name, labels, value, timestamp: None, exemplar: None });
    }
}

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
    let mut out = String::with_capacity(families.iter().map(|f| 64 + f.samples.len() * 64).sum());
    encode_into(&mut out, families, format);
    out
}

/// Like [`encode`], appending to `out`.
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
            for c in help.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '"' if om => out.push_str("\\\""),
                    c => out.push(c),
                }
            }
            out.push('\n');
        }
        if !om && typed {
            write_meta_name(out, "# TYPE ", family_name);
            out.push_str(family.metric_type.as_str(format));
            out.push('\n');
        }
        for sample in &family.samples {
            let total;
            let name = if om && family.metric_type == MetricType::Counter && sample.name == family_name {
                total = format!("{}_total", sample.name);
                &total
            } else {
                &sample.name
            };
            write_series(out, name, &sample.labels);
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
                    let _ = write!(out, "{ts}");
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
        let _ = write_label_value(out, name);
    }
    out.push(' ');
}

fn write_series(out: &mut String, name: &str, labels: &Labels) {
    if is_valid_legacy_metric_name(name) {
        out.push_str(name);
        if !labels.is_empty() {
            write_label_set(out, None, labels);
        }
    } else {
        write_label_set(out, Some(name), labels);
    }
}

fn write_label_set(out: &mut String, quoted_name: Option<&str>, labels: &Labels) {
    out.push('{');
    let mut first = true;
    if let Some(name) = quoted_name {
        let _ = write_label_value(out, name);
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
            let _ = write_label_value(out, &label.name);
        }
        out.push('=');
        let _ = write_label_value(out, &label.value);
    }
    out.push('}');
}

/// `"..."` with the exposition escapes `\\`, `\"` and `\n` (other bytes as they are).
fn write_label_value(out: &mut String, value: &str) -> std::fmt::Result {
    if !value.contains(['\\', '"', '\n']) {
        out.push('"');
        out.push_str(value);
        out.push('"');
        return Ok(());
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(())
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

//! Metric families and their text encodings: Prometheus text 0.0.4 and OpenMetrics 1.0.
//!
//! Self-contained on purpose: when `sextant-model` gains its exposition encoder, this file is
//! the one place to switch over.

use std::fmt::Write as _;

/// The type of a metric family, as written on its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricType {
    /// A monotonically increasing value; OpenMetrics names its samples `<family>_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// No type given (`untyped` in text 0.0.4, `unknown` in OpenMetrics).
    Untyped,
    /// Samples `_bucket`, `_sum`, `_count` (only passed through from text files).
    Histogram,
    /// Samples with a `quantile` label, `_sum`, `_count` (only passed through from text files).
    Summary,
}

impl MetricType {
    fn text_name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Untyped => "untyped",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
        }
    }

    fn openmetrics_name(self) -> &'static str {
        match self {
            MetricType::Untyped => "unknown",
            other => other.text_name(),
        }
    }

    /// The type named on a text 0.0.4 `# TYPE` line (`unknown` is accepted too).
    #[cfg_attr(not(feature = "node"), allow(dead_code))]
    pub(crate) fn from_text(name: &str) -> Option<MetricType> {
        Some(match name {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "untyped" | "unknown" => MetricType::Untyped,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            _ => return None,
        })
    }
}

/// One sample of a family: a name suffix (`""`, `"_bucket"`, ...), labels and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Appended to the family name; empty for counters, gauges and untyped samples.
    pub suffix: String,
    /// Label pairs in output order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// A metric family: name, help, type and samples.
///
/// ```
/// use sextant_exporters::{MetricFamily, MetricType};
/// let mut fam = MetricFamily::new("node_load1", "1m load average.", MetricType::Gauge);
/// fam.push(&[], 0.5);
/// assert_eq!(fam.samples().len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    name: String,
    help: String,
    kind: MetricType,
    samples: Vec<Sample>,
}

impl MetricFamily {
    /// An empty family.
    pub fn new(name: impl Into<String>, help: impl Into<String>, kind: MetricType) -> MetricFamily {
        MetricFamily { name: name.into(), help: help.into(), kind, samples: Vec::new() }
    }

    /// A family holding one unlabelled sample.
    pub fn single(name: impl Into<String>, help: impl Into<String>, kind: MetricType, value: f64) -> MetricFamily {
        let mut fam = MetricFamily::new(name, help, kind);
        fam.push(&[], value);
        fam
    }

    /// Adds a sample with these labels.
    pub fn push(&mut self, labels: &[(&str, &str)], value: f64) {
        let labels = labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        self.samples.push(Sample { suffix: String::new(), labels, value });
    }

    /// Adds a fully built sample.
    pub fn push_sample(&mut self, sample: Sample) {
        self.samples.push(sample);
    }

    /// The family name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The help text.
    pub fn help(&self) -> &str {
        &self.help
    }

    /// The type.
    pub fn kind(&self) -> MetricType {
        self.kind
    }

    /// The samples in insertion order.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }
}

/// An exposition format chosen by content negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Text004,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` header value for this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text004 => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// Picks the format for an `Accept` header: OpenMetrics when it is accepted with a higher
    /// (or equal) weight than plain text, text 0.0.4 otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else { return Format::Text004 };
        let mut openmetrics_q = 0.0f32;
        let mut text_q = 0.0f32;
        for part in accept.split(',') {
            let mut params = part.split(';');
            let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = 1.0f32;
            for param in params {
                if let Some((key, value)) = param.split_once('=') {
                    if key.trim().eq_ignore_ascii_case("q") {
                        q = value.trim().parse().unwrap_or(0.0);
                    }
                }
            }
            match media.as_str() {
                "application/openmetrics-text" => openmetrics_q = openmetrics_q.max(q),
                "text/plain" | "text/*" | "*/*" => text_q = text_q.max(q),
                _ => {}
            }
        }
        if openmetrics_q > 0.0 && openmetrics_q >= text_q {
            Format::OpenMetrics
        } else {
            Format::Text004
        }
    }
}

/// Writes `value` the way Go's `strconv.FormatFloat(v, 'g', -1, 64)` does (as Prometheus
/// clients do): shortest round-trip digits, exponent form below 1e-4 and from 1e6.
pub(crate) fn write_float(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value == value.trunc() && value.abs() < 1e6 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let formatted = format!("{value:e}");
        let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        if !(-4..6).contains(&exponent) {
            let sign = if exponent < 0 { '-' } else { '+' };
            let _ = write!(out, "{mantissa}e{sign}{:02}", exponent.abs());
        } else {
            let _ = write!(out, "{value}");
        }
    }
}

fn write_escaped(out: &mut String, text: &str, quote: bool) {
    if !text.bytes().any(|b| b == b'\\' || b == b'\n' || (quote && b == b'"')) {
        out.push_str(text);
        return;
    }
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            other => out.push(other),
        }
    }
}

fn write_labels(out: &mut String, labels: &[(String, String)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (idx, (name, value)) in labels.iter().enumerate() {
        if idx > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        write_escaped(out, value, true);
        out.push('"');
    }
    out.push('}');
}

/// Sorts families by name and merges families that share a name and type, keeping the first
/// help text; a later family with the same name but another type is dropped.
pub(crate) fn normalize(families: &mut Vec<MetricFamily>) {
    families.sort_by(|a, b| a.name.cmp(&b.name));
    let mut merged: Vec<MetricFamily> = Vec::with_capacity(families.len());
    for fam in families.drain(..) {
        match merged.last_mut() {
            Some(last) if last.name == fam.name => {
                if last.kind == fam.kind {
                    last.samples.extend(fam.samples);
                }
            }
            _ => merged.push(fam),
        }
    }
    *families = merged;
}

/// Appends `families` in text format 0.0.4.
pub(crate) fn write_text(out: &mut String, families: &[MetricFamily]) {
    for fam in families {
        if fam.samples.is_empty() {
            continue;
        }
        out.push_str("# HELP ");
        out.push_str(&fam.name);
        out.push(' ');
        write_escaped(out, &fam.help, false);
        out.push_str("\n# TYPE ");
        out.push_str(&fam.name);
        out.push(' ');
        out.push_str(fam.kind.text_name());
        out.push('\n');
        for sample in &fam.samples {
            out.push_str(&fam.name);
            out.push_str(&sample.suffix);
            write_labels(out, &sample.labels);
            out.push(' ');
            write_float(out, sample.value);
            out.push('\n');
        }
    }
}

/// Appends `families` in OpenMetrics 1.0 format, without the closing `# EOF`.
pub(crate) fn write_openmetrics(out: &mut String, families: &[MetricFamily]) {
    for fam in families {
        if fam.samples.is_empty() {
            continue;
        }
        let family_name = match fam.kind {
            MetricType::Counter => fam.name.strip_suffix("_total").unwrap_or(&fam.name),
            _ => &fam.name,
        };
        out.push_str("# HELP ");
        out.push_str(family_name);
        out.push(' ');
        write_escaped(out, &fam.help, true);
        out.push_str("\n# TYPE ");
        out.push_str(family_name);
        out.push(' ');
        out.push_str(fam.kind.openmetrics_name());
        out.push('\n');
        for sample in &fam.samples {
            out.push_str(family_name);
            if fam.kind == MetricType::Counter {
                out.push_str("_total");
            } else {
                out.push_str(&sample.suffix);
            }
            write_labels(out, &sample.labels);
            out.push(' ');
            write_float(out, sample.value);
            out.push('\n');
        }
    }
}

/// Rewrites OpenMetrics text (as `prometheus-client` produces it) into text 0.0.4: counter
/// families are named after their `_total` samples, `_created` samples, `# UNIT` lines,
/// exemplars and `# EOF` are dropped, `unknown` becomes `untyped` and `info` a gauge.
pub(crate) fn openmetrics_to_text(out: &mut String, openmetrics: &str) {
    let mut counters: Vec<&str> = Vec::new();
    let mut infos: Vec<&str> = Vec::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                match kind.trim() {
                    "counter" => counters.push(name),
                    "info" => infos.push(name),
                    _ => {}
                }
            }
        }
    }
    let renamed = |name: &str, suffix: &str| -> Option<String> {
        if counters.contains(&name) || infos.contains(&name) {
            Some(format!("{name}{suffix}"))
        } else {
            None
        }
    };
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let kind = match kind.trim() {
                "unknown" => "untyped",
                "info" => "gauge",
                other => other,
            };
            let suffix = if counters.contains(&name) { "_total" } else { "_info" };
            let name = renamed(name, suffix).unwrap_or_else(|| name.to_string());
            let _ = writeln!(out, "# TYPE {name} {kind}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let suffix = if counters.contains(&name) { "_total" } else { "_info" };
            let name = renamed(name, suffix).unwrap_or_else(|| name.to_string());
            let _ = writeln!(out, "# HELP {name} {}", help.replace("\\\"", "\""));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        if line[..name_end].ends_with("_created") {
            continue;
        }
        // Drop an exemplar (` # {...} v`) after the value.
        let sample = match line.find(" # ") {
            Some(idx) => &line[..idx],
            None => line,
        };
        out.push_str(sample);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(value: f64) -> String {
        let mut out = String::new();
        write_float(&mut out, value);
        out
    }

    #[test]
    fn floats_print_like_go() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (262144.0, "262144"),
            (318.47, "318.47"),
            (270553174016.0, "2.70553174016e+11"),
            (1.795318305583081e9, "1.795318305583081e+09"),
            (1e6, "1e+06"),
            (999999.5, "999999.5"),
            (1234567.5, "1.2345675e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (-2.5, "-2.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (value, expected) in cases {
            assert_eq!(float(*value), *expected, "{value}");
        }
    }

    fn sample_families() -> Vec<MetricFamily> {
        let mut cpu = MetricFamily::new("node_cpu_seconds_total", "Seconds.", MetricType::Counter);
        cpu.push(&[("cpu", "0"), ("mode", "idle")], 12.5);
        let mut info = MetricFamily::new("node_uname_info", "Uname \"x\"\nline.", MetricType::Gauge);
        info.push(&[("nodename", "a\"b\\c\nd")], 1.0);
        let empty = MetricFamily::new("node_empty", "Nothing.", MetricType::Gauge);
        let untyped = MetricFamily::single("node_netstat_Tcp_InSegs", "Statistic.", MetricType::Untyped, 3.0);
        vec![cpu, info, empty, untyped]
    }

    #[test]
    fn text_format() {
        let mut out = String::new();
        write_text(&mut out, &sample_families());
        let expected = "# HELP node_cpu_seconds_total Seconds.\n# TYPE node_cpu_seconds_total counter\n\
node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 12.5\n\
# HELP node_uname_info Uname \"x\"\\nline.\n# TYPE node_uname_info gauge\n\
node_uname_info{nodename=\"a\\\"b\\\\c\\nd\"} 1\n\
# HELP node_netstat_Tcp_InSegs Statistic.\n# TYPE node_netstat_Tcp_InSegs untyped\nnode_netstat_Tcp_InSegs 3\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn openmetrics_format() {
        let mut out = String::new();
        write_openmetrics(&mut out, &sample_families());
        let expected = "# HELP node_cpu_seconds Seconds.\n# TYPE node_cpu_seconds counter\n\
node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 12.5\n\
# HELP node_uname_info Uname \\\"x\\\"\\nline.\n# TYPE node_uname_info gauge\n\
node_uname_info{nodename=\"a\\\"b\\\\c\\nd\"} 1\n\
# HELP node_netstat_Tcp_InSegs Statistic.\n# TYPE node_netstat_Tcp_InSegs unknown\nnode_netstat_Tcp_InSegs 3\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn normalize_sorts_and_merges() {
        let mut families = vec![
            MetricFamily::single("b", "first", MetricType::Gauge, 1.0),
            MetricFamily::single("a", "", MetricType::Gauge, 2.0),
            MetricFamily::single("b", "second", MetricType::Gauge, 3.0),
            MetricFamily::single("b", "other type", MetricType::Counter, 4.0),
        ];
        normalize(&mut families);
        let names: Vec<_> = families.iter().map(|f| (f.name(), f.help(), f.samples().len())).collect();
        assert_eq!(names, vec![("a", "", 1), ("b", "first", 2)]);
    }

    #[test]
    fn negotiation() {
        let cases: &[(Option<&str>, Format)] = &[
            (None, Format::Text004),
            (Some("*/*"), Format::Text004),
            (Some("text/plain;version=0.0.4"), Format::Text004),
            (Some("application/openmetrics-text;version=1.0.0"), Format::OpenMetrics),
            (
                Some("application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
                Format::OpenMetrics,
            ),
            (Some("application/openmetrics-text;q=0.2,text/plain;q=0.5"), Format::Text004),
            (Some("application/openmetrics-text;q=0"), Format::Text004),
        ];
        for (accept, expected) in cases {
            assert_eq!(Format::negotiate(*accept), *expected, "{accept:?}");
        }
    }

    #[test]
    fn openmetrics_to_text_rewrites_counters_and_info() {
        let input = "# HELP requests Requests.\n# TYPE requests counter\n# UNIT requests requests\n\
requests_total{path=\"/\"} 3 # {trace=\"x\"} 1\nrequests_created{path=\"/\"} 1.7e9\n\
# HELP build Build.\n# TYPE build info\nbuild_info{version=\"1\"} 1\n\
# HELP temp Temperature.\n# TYPE temp unknown\ntemp 20\n# EOF\n";
        let mut out = String::new();
        openmetrics_to_text(&mut out, input);
        let expected = "# HELP requests_total Requests.\n# TYPE requests_total counter\nrequests_total{path=\"/\"} 3\n\
# HELP build_info Build.\n# TYPE build_info gauge\nbuild_info{version=\"1\"} 1\n\
# HELP temp Temperature.\n# TYPE temp untyped\ntemp 20\n";
        assert_eq!(out, expected);
    }
}

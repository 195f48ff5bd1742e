//! Which exposition format: content types, `Accept` negotiation, and metric types.

use std::fmt;

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    #[default]
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

/// `Content-Type` of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// `Content-Type` of OpenMetrics 1.0.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The `Accept` header Prometheus 2.x sends when scraping (OpenMetrics preferred, text as
/// fallback).
pub const SCRAPE_ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

impl Format {
    /// The exact `Content-Type` to send with a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// The parser to use for a response with this `Content-Type`. OpenMetrics for
    /// `application/openmetrics-text`; everything else, including a missing or unknown type,
    /// falls back to the text format as Prometheus does.
    pub fn from_content_type(content_type: &str) -> Format {
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if media_type.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// The format to serve for a request's `Accept` header: the acceptable media range with the
    /// highest q-value (ties go to the one listed first); text when nothing matches or the
    /// header is empty. `application/openmetrics-text` counts with version `1.0.0`, `0.0.1` or
    /// none; `text/plain` with version `0.0.4` or none; `*/*` and `text/*` mean text.
    pub fn negotiate(accept: &str) -> Format {
        let mut best: Option<(f32, Format)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media_type = parts.next().unwrap_or("").trim();
            let mut q = 1.0_f32;
            let mut version: Option<&str> = None;
            for param in parts {
                let Some((key, value)) = param.split_once('=') else { continue };
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "q" => q = value.parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0),
                    "version" => version = Some(value),
                    _ => {}
                }
            }
            if q <= 0.0 {
                continue;
            }
            let format = match media_type.to_ascii_lowercase().as_str() {
                "application/openmetrics-text" if matches!(version, None | Some("1.0.0") | Some("0.0.1")) => {
                    Format::OpenMetrics
                }
                "text/plain" if matches!(version, None | Some("0.0.4")) => Format::Text,
                "*/*" | "text/*" => Format::Text,
                _ => continue,
            };
            if best.is_none_or(|(best_q, _)| q > best_q) {
                best = Some((q, format));
            }
        }
        best.map_or(Format::Text, |(_, f)| f)
    }
}

/// The type of a metric family, as declared by `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    /// `untyped` in the text format, `unknown` in OpenMetrics, and no `# TYPE` at all.
    #[default]
    Unknown,
}

impl MetricType {
    /// The keyword after `# TYPE name` in `format`. Types the text format lacks are written as
    /// `untyped` there.
    pub fn as_str(self, format: Format) -> &'static str {
        match (self, format) {
            (MetricType::Counter, _) => "counter",
            (MetricType::Gauge, _) => "gauge",
            (MetricType::Histogram, _) => "histogram",
            (MetricType::Summary, _) => "summary",
            (MetricType::GaugeHistogram, Format::OpenMetrics) => "gaugehistogram",
            (MetricType::Info, Format::OpenMetrics) => "info",
            (MetricType::StateSet, Format::OpenMetrics) => "stateset",
            (MetricType::Unknown, Format::OpenMetrics) => "unknown",
            (_, Format::Text) => "untyped",
        }
    }

    /// Parses the keyword after `# TYPE name` in `format`.
    pub fn parse(keyword: &str, format: Format) -> Option<MetricType> {
        Some(match (keyword, format) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("untyped", Format::Text) | ("unknown", Format::OpenMetrics) => MetricType::Unknown,
            ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            ("info", Format::OpenMetrics) => MetricType::Info,
            ("stateset", Format::OpenMetrics) => MetricType::StateSet,
            _ => return None,
        })
    }

    /// The suffixes a sample name may add to the family name for this type (the empty suffix
    /// is listed when the bare family name is a sample name).
    pub fn sample_suffixes(self) -> &'static [&'static str] {
        match self {
            MetricType::Counter => &["_total", "_created"],
            MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => &[""],
            MetricType::Histogram => &["_bucket", "_count", "_sum", "_created"],
            MetricType::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
            MetricType::Summary => &["", "_count", "_sum", "_created"],
            MetricType::Info => &["_info"],
        }
    }

    /// True if a sample called `sample_name` belongs to the family `family` of this type.
    pub fn is_sample_of(self, family: &str, sample_name: &str) -> bool {
        if sample_name == family {
            return true;
        }
        match sample_name.strip_prefix(family) {
            Some(suffix) => self.sample_suffixes().contains(&suffix),
            None => false,
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str(Format::OpenMetrics))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_accept_headers() {
        for (accept, want) in [
            ("", Format::Text),
            ("text/plain", Format::Text),
            (SCRAPE_ACCEPT_HEADER, Format::OpenMetrics),
            ("application/openmetrics-text", Format::OpenMetrics),
            ("application/openmetrics-text; version=1.0.0; charset=utf-8", Format::OpenMetrics),
            ("application/openmetrics-text;version=2.0.0", Format::Text),
            ("text/plain;q=0.9, application/openmetrics-text;q=0.5", Format::Text),
            ("text/plain;q=0.5, application/openmetrics-text;q=0.9", Format::OpenMetrics),
            ("application/openmetrics-text;q=0, text/plain;q=0.1", Format::Text),
            ("application/json", Format::Text),
            (
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
                Format::Text,
            ),
            ("*/*", Format::Text),
        ] {
            assert_eq!(Format::negotiate(accept), want, "{accept}");
        }
    }

    #[test]
    fn picks_parser_from_content_type() {
        for (ct, want) in [
            (OPENMETRICS_CONTENT_TYPE, Format::OpenMetrics),
            ("application/openmetrics-text", Format::OpenMetrics),
            ("Application/OpenMetrics-Text; version=0.0.1", Format::OpenMetrics),
            (TEXT_CONTENT_TYPE, Format::Text),
            ("", Format::Text),
            ("application/json", Format::Text),
        ] {
            assert_eq!(Format::from_content_type(ct), want, "{ct}");
        }
        assert_eq!(Format::Text.content_type(), "text/plain; version=0.0.4; charset=utf-8");
        assert_eq!(Format::OpenMetrics.content_type(), "application/openmetrics-text; version=1.0.0; charset=utf-8");
    }

    #[test]
    fn type_keywords_and_sample_names() {
        assert_eq!(MetricType::parse("untyped", Format::Text), Some(MetricType::Unknown));
        assert_eq!(MetricType::parse("untyped", Format::OpenMetrics), None);
        assert_eq!(MetricType::parse("info", Format::Text), None);
        assert_eq!(MetricType::StateSet.as_str(Format::Text), "untyped");
        assert!(MetricType::Histogram.is_sample_of("a", "a_bucket"));
        assert!(!MetricType::Histogram.is_sample_of("a", "a_total"));
        assert!(MetricType::Counter.is_sample_of("a_total", "a_total"));
        assert!(!MetricType::Gauge.is_sample_of("a", "a_sum"));
    }
}

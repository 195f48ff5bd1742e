//! The values a query returns: scalars, instant vectors, range vectors (matrices), strings,
//! and the warnings and infos that come with them.

use std::fmt;

use sextant_model::Labels;

/// One point of a float series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FPoint {
    pub t: i64,
    pub f: f64,
}

/// One element of an instant vector: a labelled float at a time. Native histograms will add
/// an optional histogram value beside `f` (as Prometheus' `Sample.H`).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub t: i64,
    pub f: f64,
    /// Delayed `__name__` removal: the name is dropped when the query ends.
    pub(crate) drop_name: bool,
}

impl Sample {
    pub fn new(labels: Labels, t: i64, f: f64) -> Sample {
        Sample { labels, t, f, drop_name: false }
    }
}

/// One series of a range vector, points in time order. Native histograms will add a
/// `histograms` point list beside `floats` (as Prometheus' `Series.Histograms`).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub floats: Vec<FPoint>,
    pub(crate) drop_name: bool,
}

impl Series {
    pub fn new(labels: Labels, floats: Vec<FPoint>) -> Series {
        Series { labels, floats, drop_name: false }
    }
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    Scalar {
        t: i64,
        v: f64,
    },
    /// An instant vector.
    Vector(Vec<Sample>),
    /// A range vector, series sorted by labels for range queries.
    Matrix(Vec<Series>),
    String {
        t: i64,
        s: String,
    },
}

impl Value {
    /// `scalar`, `vector`, `matrix` or `string`, as in the HTTP API.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
            Value::String { .. } => "string",
        }
    }
}

/// Warnings and infos of one query, as Prometheus' annotations: deduplicated, in the order
/// first seen, each text starting with `PromQL warning: ` or `PromQL info: `.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl Annotations {
    pub(crate) fn warn(&mut self, msg: impl fmt::Display) {
        let text = format!("PromQL warning: {msg}");
        if !self.warnings.contains(&text) {
            self.warnings.push(text);
        }
    }

    pub(crate) fn info(&mut self, msg: impl fmt::Display) {
        let text = format!("PromQL info: {msg}");
        if !self.infos.contains(&text) {
            self.infos.push(text);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.warnings.is_empty() && self.infos.is_empty()
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`-like shortest text, as `count_values` and
/// `label` values use (`+Inf`, `-Inf`, `NaN`).
pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f == f64::INFINITY {
        "+Inf".to_string()
    } else if f == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{f}")
    }
}

/// Labels as Prometheus prints them: `name{a="b", c="d"}`, or `{}` when empty.
pub(crate) fn labels_string(labels: &sextant_model::Labels) -> String {
    let mut out = String::new();
    if let Some(name) = labels.metric_name() {
        out.push_str(name);
    }
    out.push('{');
    let mut first = true;
    for l in labels.iter().filter(|l| &*l.name != "__name__") {
        if !first {
            out.push_str(", ");
        }
        first = false;
        out.push_str(&l.name);
        out.push('=');
        out.push_str(&format!("{:?}", &*l.value));
    }
    out.push('}');
    if labels.metric_name().is_some() && out.ends_with("{}") {
        out.truncate(out.len() - 2);
    }
    out
}

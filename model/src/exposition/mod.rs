//! Text exposition formats: Prometheus text 0.0.4 and OpenMetrics 1.0.
//!
//! - [`Parser`] reads an exposition entry by entry ([`Entry`]: help, type, unit, comment,
//!   [`SeriesEntry`]), borrowing names, labels and help text from the input; it follows
//!   Prometheus' `textparse` rules, and [`Parser::openmetrics_strict`] adds the whole
//!   OpenMetrics 1.0 specification. Errors ([`ParseError`]) carry line and column.
//! - [`MetricFamily`] is the owned form; [`encode`] writes families in either [`Format`],
//!   [`parse_families`] reads them.
//! - [`Format::negotiate`] picks the format for an `Accept` header, [`Format::content_type`]
//!   gives the exact `Content-Type`, [`Format::from_content_type`] picks the parser for a
//!   response.
//!
//! ```
//! use sextant_model::exposition::{Entry, Format, Parser};
//!
//! let body = b"# TYPE http_requests counter\nhttp_requests_total{code=\"200\"} 1027 1395066363000\n";
//! let mut samples = 0;
//! for entry in Parser::new(body, Format::Text) {
//!     if let Entry::Series(series) = entry? {
//!         assert_eq!(series.series(), b"http_requests_total{code=\"200\"}");
//!         assert_eq!((series.value(), series.timestamp()), (1027.0, Some(1395066363000)));
//!         assert_eq!(series.to_labels()?.get("code"), Some("200"));
//!         samples += 1;
//!     }
//! }
//! assert_eq!(samples, 1);
//!
//! let err = Parser::new(b"a{b x", Format::Text).find_map(Result::err).unwrap();
//! assert_eq!((err.line, err.column), (1, 5));
//! assert_eq!(err.message, r#"expected equal, got "x" while parsing: "a{b x""#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod encode;
mod error;
mod format;
mod number;
mod parser;
mod strict;

pub use encode::{encode, encode_into, encoded_size_hint, parse_families, FamilyExemplar, FamilySample, MetricFamily};
pub use error::ParseError;
pub use format::{Format, MetricType, OPENMETRICS_CONTENT_TYPE, SCRAPE_ACCEPT_HEADER, TEXT_CONTENT_TYPE};
pub use number::{write_go_float, ShortestDigits};
pub use parser::{Entry, Exemplar, LabelPairs, Parser, SeriesEntry, EXEMPLAR_MAX_LABEL_CHARS};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

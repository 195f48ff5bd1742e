//! The streaming parser: one entry per call, borrowing from the input.
//!
//! The grammar is nom-style functions over bytes (`IResult`, nom's `tag`/`take_while`
//! combinators) with hand-written scanners for the hot tokens (character-class tables, eight
//! bytes per step for quoted strings, values read in the pass that finds their end). nom's
//! error type stays in this file (`Fail`) and becomes a [`ParseError`] with line and column
//! at the iterator.

use std::borrow::Cow;

use nom::bytes::complete::{tag, take_while, take_while1};
use nom::IResult;

use super::error::ParseError;
use super::format::{Format, MetricType};
use super::number::{normalize_float_label, parse_float, parse_om_timestamp, parse_short_decimal_prefix};
use super::strict::Validator;
use crate::{Error, Label, Labels, METRIC_NAME};

/// Longest label set of an exemplar, in characters of names and values (OpenMetrics 1.0).
pub const EXEMPLAR_MAX_LABEL_CHARS: usize = 128;

/// One line (or `# EOF`-terminated construct) of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// `# HELP name text`, with escapes resolved.
    Help { name: Cow<'a, str>, help: Cow<'a, str> },
    /// `# TYPE name type`.
    Type { name: Cow<'a, str>, metric_type: MetricType },
    /// `# UNIT name unit` (OpenMetrics only).
    Unit { name: Cow<'a, str>, unit: &'a str },
    /// Any other `#` line of the text format, whole (`# some remark`).
    Comment(Cow<'a, str>),
    /// A sample line.
    Series(SeriesEntry<'a>),
}

/// Which lexical rules the label sets of an entry follow (whitespace is allowed in the text
/// format only); remembered so label pairs can be re-read lazily.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Text,
    OpenMetrics,
}

/// A sample line: the series (metric name and label pairs, borrowed), the value, an optional
/// timestamp in milliseconds and, in OpenMetrics, an optional exemplar.
///
/// The label pairs are not materialised while parsing: [`SeriesEntry::series`] is the raw
/// text of name and labels, a cheap cache key for a scrape loop, and [`SeriesEntry::labels`]
/// or [`SeriesEntry::to_labels`] read the pairs only when asked.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesEntry<'a> {
    series: &'a [u8],
    name: Cow<'a, str>,
    labels: &'a [u8],
    syntax: Syntax,
    value: f64,
    timestamp: Option<i64>,
    exemplar: Option<Exemplar<'a>>,
    metric_type: MetricType,
}

impl<'a> SeriesEntry<'a> {
    /// The raw bytes of metric name and label set as they appear in the input (like
    /// Prometheus' `p.Series()`): equal bytes mean the same series.
    pub fn series(&self) -> &'a [u8] {
        self.series
    }

    /// The metric name, unescaped.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The label pairs in input order, unescaped, without the metric name. Values are as
    /// written (no `le`/`quantile` normalisation; see [`SeriesEntry::to_labels`]).
    pub fn labels(&self) -> LabelPairs<'a> {
        LabelPairs { rest: self.labels, syntax: self.syntax }
    }

    pub fn value(&self) -> f64 {
        self.value
    }

    /// The timestamp in milliseconds since the epoch (OpenMetrics seconds are converted).
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    pub fn exemplar(&self) -> Option<&Exemplar<'a>> {
        self.exemplar.as_ref()
    }

    /// The type of the family this sample belongs to: the last `# TYPE` if the sample's name
    /// is one of that family's sample names, else [`MetricType::Unknown`].
    pub fn metric_type(&self) -> MetricType {
        self.metric_type
    }

    /// For the `<family>_created` sample of an OpenMetrics counter, histogram or summary: the
    /// creation time it carries, in milliseconds (the value is in seconds). Prometheus ingests
    /// these samples as ordinary series unless created-timestamp ingestion is on; the caller
    /// chooses.
    pub fn created_timestamp(&self) -> Option<i64> {
        let typed = matches!(self.metric_type, MetricType::Counter | MetricType::Histogram | MetricType::Summary);
        if self.syntax != Syntax::OpenMetrics || !typed || !self.name.ends_with("_created") || !self.value.is_finite() {
            return None;
        }
        Some((self.value * 1000.0) as i64)
    }

    /// The series as [`Labels`] with `__name__`. As in Prometheus 3, `le` of histograms and
    /// `quantile` of summaries are normalised to OpenMetrics float spelling (`le="1"` →
    /// `"1.0"`). Empty values are dropped; a label given twice is an error.
    pub fn to_labels(&self) -> Result<Labels, Error> {
        let mut out: Vec<Label> = Vec::with_capacity(8);
        out.push(Label::new(METRIC_NAME, &*self.name));
        for (name, value) in self.labels() {
            if value.is_empty() {
                continue;
            }
            let normalise =
                matches!((self.metric_type, &*name), (MetricType::Histogram, "le") | (MetricType::Summary, "quantile"));
            let value = match normalise.then(|| normalize_float_label(&value)).flatten() {
                Some(normalised) => Cow::Owned(normalised),
                None => value,
            };
            out.push(Label::new(name, value));
        }
        sorted_unique(out)
    }
}

fn sorted_unique(mut labels: Vec<Label>) -> Result<Labels, Error> {
    labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = labels.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::DuplicateLabelName { name: w[0].name.to_string() });
    }
    Ok(Labels::from_sorted(labels))
}

/// An OpenMetrics exemplar: ` # {labels} value [timestamp]` after a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar<'a> {
    labels: &'a [u8],
    value: f64,
    timestamp: Option<i64>,
}

impl<'a> Exemplar<'a> {
    pub fn labels(&self) -> LabelPairs<'a> {
        LabelPairs { rest: self.labels, syntax: Syntax::OpenMetrics }
    }

    pub fn value(&self) -> f64 {
        self.value
    }

    /// Milliseconds since the epoch.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// The exemplar's labels; a label given twice is an error.
    pub fn to_labels(&self) -> Result<Labels, Error> {
        sorted_unique(self.labels().filter(|(_, v)| !v.is_empty()).map(|(n, v)| Label::new(n, v)).collect())
    }
}

/// The label pairs of a series or exemplar, read lazily from the already validated input.
#[derive(Debug, Clone)]
pub struct LabelPairs<'a> {
    rest: &'a [u8],
    syntax: Syntax,
}

impl<'a> Iterator for LabelPairs<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let text = self.syntax == Syntax::Text;
        loop {
            let r = skip_while(self.rest, |b| b == b',' || (text && is_blank(b)));
            if r.is_empty() {
                self.rest = r;
                return None;
            }
            let Ok((r, name)) = label_name(r) else {
                self.rest = &[];
                return None;
            };
            let r = if text { skip_while(r, is_blank) } else { r };
            let Some(r) = r.strip_prefix(b"=") else {
                // A quoted metric name inside the braces, not a label.
                self.rest = r;
                continue;
            };
            let r = if text { skip_while(r, is_blank) } else { r };
            let Ok((r, value)) = quoted(r, text) else {
                self.rest = &[];
                return None;
            };
            self.rest = r;
            return Some((unescape(name.raw, name.escaped, false)?, unescape(value.raw, value.escaped, false)?));
        }
    }
}

/// Parses an exposition entry by entry. An error ends the iteration.
///
/// The default rules are Prometheus' (`textparse`): what Prometheus scrapes, this parses.
/// [`Parser::openmetrics_strict`] adds every rule of the OpenMetrics 1.0 specification on
/// top (metric family grouping, per-type sample names and values, histogram buckets, ...).
#[derive(Debug)]
pub struct Parser<'a> {
    input: &'a [u8],
    /// The input as `str` when it is all UTF-8 (the usual case): tokens are sliced from it
    /// without validating each one again.
    utf8: Option<&'a str>,
    pos: usize,
    format: Format,
    validator: Option<Box<Validator>>,
    family: Cow<'a, str>,
    family_type: MetricType,
    entry_start: usize,
    done: bool,
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a [u8], format: Format) -> Parser<'a> {
        Parser {
            input,
            utf8: std::str::from_utf8(input).ok(),
            pos: 0,
            format,
            validator: None,
            family: Cow::Borrowed(""),
            family_type: MetricType::Unknown,
            entry_start: 0,
            done: false,
        }
    }

    /// An OpenMetrics parser that enforces the whole OpenMetrics 1.0 specification (used to
    /// validate exporters; stricter than Prometheus' scraping).
    pub fn openmetrics_strict(input: &'a [u8]) -> Parser<'a> {
        Parser { validator: Some(Box::default()), ..Parser::new(input, Format::OpenMetrics) }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Byte offset in the input where the entry last returned starts.
    pub fn entry_start(&self) -> usize {
        self.entry_start
    }

    /// `bytes` (a slice of the input) as `str`, if it is UTF-8.
    fn as_str(&self, bytes: &'a [u8]) -> Option<&'a str> {
        if let Some(text) = self.utf8 {
            let start = (bytes.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
            if let Some(s) = start.checked_add(bytes.len()).and_then(|end| text.get(start..end)) {
                return Some(s);
            }
        }
        std::str::from_utf8(bytes).ok()
    }

    fn strict(&self) -> bool {
        self.validator.is_some()
    }

    fn offset(&self, rest: &[u8]) -> usize {
        self.input.len() - rest.len()
    }

    fn error(&self, entry_start: usize, fail: Fail<'_>) -> ParseError {
        let at = self.offset(fail.at);
        let message = match fail.kind {
            FailKind::Expected(what) => {
                format!(
                    "expected {what}, got {} while parsing: {}",
                    got(fail.at),
                    quote(&self.input[entry_start..token_end(self.input, at)])
                )
            }
            FailKind::InvalidValue(token) => {
                format!(
                    "invalid value {} while parsing: {}",
                    quote(token),
                    quote(&self.input[entry_start..at + token.len()])
                )
            }
            FailKind::InvalidTimestamp(token) => {
                format!(
                    "invalid timestamp {} while parsing: {}",
                    quote(token),
                    quote(&self.input[entry_start..at + token.len()])
                )
            }
            FailKind::InvalidExemplarTimestamp(token) => format!("invalid exemplar timestamp {}", quote(token)),
            FailKind::InvalidUtf8(what) => format!("{what} is not valid UTF-8"),
            FailKind::InvalidType(token) => format!("invalid metric type {}", quote(token)),
            FailKind::MetricNameAlreadySet => {
                format!("metric name already set while parsing: {}", quote(&self.input[entry_start..at]))
            }
            FailKind::MetricNameNotSet => {
                format!("metric name not set while parsing: {}", quote(&self.input[entry_start..at]))
            }
            FailKind::UnitNotSuffix => "unit is not a suffix of the metric name".to_string(),
            FailKind::ExemplarTooLong(n) => {
                format!("exemplar labels have {n} characters, exceeding the limit of {EXEMPLAR_MAX_LABEL_CHARS}")
            }
            FailKind::DataAfterEof => "unexpected data after # EOF".to_string(),
            FailKind::NoEof => "data does not end with # EOF".to_string(),
        };
        ParseError::at(self.input, at, message)
    }

    // ---- text format 0.0.4 ----

    fn next_text(&mut self, mut rest: &'a [u8]) -> Step<'a> {
        loop {
            rest = skip_while(rest, is_blank);
            match rest.first() {
                None => return Ok(None),
                Some(b'\n') => rest = &rest[1..],
                Some(b'#') => return self.text_hash_line(rest).map(Some),
                Some(_) => {
                    let (r, series) = self.series_line(rest)?;
                    return Ok(Some((Entry::Series(series), r)));
                }
            }
        }
    }

    fn text_hash_line(&mut self, line: &'a [u8]) -> Result<(Entry<'a>, &'a [u8]), Fail<'a>> {
        let after = &line[1..];
        let r = skip_while(after, is_blank);
        if r.len() < after.len() {
            for (keyword, kind) in [("HELP", MetaKind::Help), ("TYPE", MetaKind::Type)] {
                if let Ok((r2, _)) = tag::<_, _, Fail<'a>>(keyword)(r) {
                    let r3 = skip_while(r2, is_blank);
                    if r3.len() < r2.len() {
                        return self.metadata(kind, r3);
                    }
                }
            }
        }
        let (rest, text) = rest_of_line(line);
        Ok((Entry::Comment(String::from_utf8_lossy(text)), rest))
    }

    // ---- OpenMetrics 1.0 ----

    fn next_om(&mut self, rest: &'a [u8]) -> Step<'a> {
        match rest.first() {
            None => Err(Fail { at: rest, kind: FailKind::NoEof }),
            Some(b'#') => {
                for (keyword, kind) in
                    [("# HELP ", MetaKind::Help), ("# TYPE ", MetaKind::Type), ("# UNIT ", MetaKind::Unit)]
                {
                    if let Ok((r, _)) = tag::<_, _, Fail<'a>>(keyword)(rest) {
                        return self.metadata(kind, r).map(Some);
                    }
                }
                if let Ok((r, _)) = tag::<_, _, Fail<'a>>("# EOF")(rest) {
                    let r = r.strip_prefix(b"\n").unwrap_or(r);
                    if !r.is_empty() {
                        return Err(Fail { at: r, kind: FailKind::DataAfterEof });
                    }
                    return Ok(None);
                }
                Err(Fail { at: rest, kind: FailKind::Expected("a valid start token") })
            }
            Some(_) => {
                let (r, series) = self.series_line(rest)?;
                Ok(Some((Entry::Series(series), r)))
            }
        }
    }

    // ---- shared grammar ----

    /// `# HELP|TYPE|UNIT` after the keyword and its separator: name, text, end of line.
    fn metadata(&mut self, kind: MetaKind, rest: &'a [u8]) -> Result<(Entry<'a>, &'a [u8]), Fail<'a>> {
        let om = self.format == Format::OpenMetrics;
        let (r, name) = if rest.first() == Some(&b'"') && !self.strict() {
            let (r, q) = quoted(rest, !om).map_err(|_| expected(rest, kind.expected_name()))?;
            (
                r,
                unescape(q.raw, q.escaped, false)
                    .ok_or(Fail { at: rest, kind: FailKind::InvalidUtf8("metric name") })?,
            )
        } else {
            let (r, name) = metric_name(rest).map_err(|_| expected(rest, kind.expected_name()))?;
            (r, Cow::Borrowed(self.as_str(name).unwrap_or("")))
        };
        let (rest, text) = if om {
            // Exactly one space, then the text up to a newline that must be there.
            let Some(after_space) = r.strip_prefix(b" ") else { return Err(expected(r, kind.expected_text())) };
            match memchr::memchr(b'\n', after_space) {
                Some(i) => (&after_space[i + 1..], &after_space[..i]),
                None => return Err(Fail { at: &after_space[after_space.len()..], kind: FailKind::NoEof }),
            }
        } else {
            // Prometheus drops the one separator character after the name.
            let (rest, text) = rest_of_line(r);
            (rest, text.get(1..).unwrap_or(&[]))
        };
        let entry = match kind {
            MetaKind::Help => {
                let escaped = memchr::memchr(b'\\', text).is_some();
                let help = self
                    .as_str(text)
                    .map(|t| unescape_str(t, escaped, !om))
                    .ok_or(Fail { at: r, kind: FailKind::InvalidUtf8("help text") })?;
                Entry::Help { name, help }
            }
            MetaKind::Type => {
                let keyword = self.as_str(text).unwrap_or("");
                let metric_type =
                    MetricType::parse(keyword, self.format).ok_or(Fail { at: r, kind: FailKind::InvalidType(text) })?;
                self.family = name.clone();
                self.family_type = metric_type;
                Entry::Type { name, metric_type }
            }
            MetaKind::Unit => {
                let unit = self.as_str(text).ok_or(Fail { at: r, kind: FailKind::InvalidUtf8("unit") })?;
                if !unit.is_empty() {
                    let ok = name.strip_suffix(unit).is_some_and(|stem| stem.len() > 1 && stem.ends_with('_'));
                    if !ok {
                        return Err(Fail { at: r, kind: FailKind::UnitNotSuffix });
                    }
                }
                Entry::Unit { name, unit }
            }
        };
        Ok((entry, rest))
    }

    /// A sample line, from its first byte through its newline.
    fn series_line(&mut self, line: &'a [u8]) -> Res<'a, SeriesEntry<'a>> {
        let om = self.format == Format::OpenMetrics;
        let syntax = if om { Syntax::OpenMetrics } else { Syntax::Text };
        let (mut r, mut name) = if line.first() == Some(&b'{') {
            (line, None)
        } else {
            let (r, name) = metric_name(line).map_err(|_| failure(line, "a valid start token"))?;
            (r, Some(Cow::Borrowed(self.as_str(name).unwrap_or(""))))
        };
        let mut series_end = line.len() - r.len();
        if !om {
            r = skip_while(r, is_blank);
        }
        let mut labels: &'a [u8] = &[];
        if let Some(after_brace) = r.strip_prefix(b"{") {
            let (r2, (content, quoted_name)) = self.label_set(after_brace, syntax, false)?;
            if let Some(quoted_name) = quoted_name {
                if name.is_some() {
                    return Err(nom::Err::Failure(Fail { at: r2, kind: FailKind::MetricNameAlreadySet }));
                }
                name = Some(quoted_name);
            }
            labels = content;
            r = r2;
            series_end = line.len() - r.len();
        } else if name.is_none() {
            return Err(nom::Err::Failure(expected(r, "a valid start token")));
        }
        let Some(name) = name else { return Err(nom::Err::Failure(Fail { at: r, kind: FailKind::MetricNameNotSet })) };
        let metric_type =
            if self.family_type.is_sample_of(&self.family, &name) { self.family_type } else { MetricType::Unknown };
        let mut series = SeriesEntry {
            series: &line[..series_end],
            name,
            labels,
            syntax,
            value: 0.0,
            timestamp: None,
            exemplar: None,
            metric_type,
        };
        let r = if om { self.om_sample_rest(r, &mut series)? } else { self.text_sample_rest(r, &mut series)? };
        Ok((r, series))
    }

    /// A label set after its `{`, through its `}`: the content between the braces and, if the
    /// set names the metric (`{"my.metric", a="b"}`), that name.
    fn label_set(&self, rest: &'a [u8], syntax: Syntax, exemplar: bool) -> Res<'a, (&'a [u8], Option<Cow<'a, str>>)> {
        let text = syntax == Syntax::Text;
        let strict = self.strict();
        let blanks = |r: &'a [u8]| if text { skip_while(r, is_blank) } else { r };
        let mut quoted_name = None;
        let mut r = rest;
        let mut after_comma = false;
        loop {
            r = blanks(r);
            let Some(&first) = r.first() else { return Err(failure(r, "label name")) };
            if first == b'}' {
                if after_comma && strict {
                    return Err(failure(r, "label name"));
                }
                let content = &rest[..rest.len() - r.len()];
                return Ok((&r[1..], (content, quoted_name)));
            }
            let name_at = r;
            let (r2, name) = if first == b'"' && !strict {
                quoted(r, text).map_err(|_| failure(r, "label name"))?
            } else {
                let (r2, name) =
                    take_while1(is_label_char)(r).map_err(|_: nom::Err<Fail<'a>>| failure(r, "label name"))?;
                if name[0].is_ascii_digit() {
                    return Err(failure(r, "label name"));
                }
                (r2, Quoted { raw: name, escaped: false })
            };
            r = blanks(r2);
            if first == b'"' && matches!(r.first(), Some(b',') | Some(b'}')) {
                if exemplar {
                    return Err(failure(r, "label name"));
                }
                if quoted_name.is_some() {
                    return Err(nom::Err::Failure(Fail { at: r, kind: FailKind::MetricNameAlreadySet }));
                }
                let name = unescape(name.raw, name.escaped, false)
                    .ok_or(nom::Err::Failure(Fail { at: name_at, kind: FailKind::InvalidUtf8("metric name") }))?;
                quoted_name = Some(name);
                after_comma = r.first() == Some(&b',');
                if after_comma {
                    r = &r[1..];
                }
                continue;
            }
            if first == b'"' && std::str::from_utf8(name.raw).is_err() {
                return Err(nom::Err::Failure(Fail { at: name_at, kind: FailKind::InvalidUtf8("label name") }));
            }
            let Some(r2) = r.strip_prefix(b"=") else { return Err(failure(r, "equal")) };
            r = blanks(r2);
            let value_at = r;
            let (r2, value) = quoted(r, text).map_err(|_| failure(r, "label value"))?;
            if self.utf8.is_none() && std::str::from_utf8(value.raw).is_err() {
                return Err(nom::Err::Failure(Fail { at: value_at, kind: FailKind::InvalidUtf8("label value") }));
            }
            r = blanks(r2);
            after_comma = false;
            match r.first() {
                Some(b',') => {
                    r = &r[1..];
                    after_comma = true;
                }
                Some(b'}') => {}
                _ if text => {}
                _ => return Err(failure(r, "comma or brace close")),
            }
        }
    }

    /// Text format after the series: `[ \t]*value([ \t]+timestamp)?[ \t]*(\n|end)`.
    fn text_sample_rest(&self, r: &'a [u8], series: &mut SeriesEntry<'a>) -> Result<&'a [u8], nom::Err<Fail<'a>>> {
        let r = skip_while(r, is_blank);
        // Fast path: a plain decimal read in the pass that finds its end.
        if let Some((value, n)) = parse_short_decimal_prefix(r) {
            if r.get(n).is_none_or(|&b| CLASSES[usize::from(b)] & VALUE_END != 0) {
                series.value = value;
                return self.text_timestamp(&r[n..], series);
            }
        }
        let value_at = r;
        let (r, value) = take_while1(|b: u8| CLASSES[usize::from(b)] & VALUE_END == 0)(r)
            .map_err(|_: nom::Err<Fail<'a>>| failure(r, "value after metric"))?;
        series.value = self
            .as_str(value)
            .and_then(parse_float)
            .ok_or(nom::Err::Failure(Fail { at: value_at, kind: FailKind::InvalidValue(value) }))?;
        self.text_timestamp(r, series)
    }

    /// Text format after the value: `([ \t]+timestamp)?[ \t]*(\n|end)`.
    fn text_timestamp(&self, r: &'a [u8], series: &mut SeriesEntry<'a>) -> Result<&'a [u8], nom::Err<Fail<'a>>> {
        let r = skip_while(r, is_blank);
        let r = match r.first() {
            None => return Ok(r),
            Some(b'\n') => return Ok(&r[1..]),
            Some(b) if b.is_ascii_digit() => {
                let (r2, digits) = take_while(|b: u8| b.is_ascii_digit())(r)?;
                let ts = digits.iter().try_fold(0_i64, |n, &d| n.checked_mul(10)?.checked_add(i64::from(d - b'0')));
                series.timestamp =
                    Some(ts.ok_or(nom::Err::Failure(Fail { at: r, kind: FailKind::InvalidTimestamp(digits) }))?);
                skip_while(r2, is_blank)
            }
            Some(_) => return Err(failure(r, "timestamp or new record")),
        };
        match r.first() {
            None => Ok(r),
            Some(b'\n') => Ok(&r[1..]),
            Some(_) => Err(failure(r, "next entry after timestamp")),
        }
    }

    /// OpenMetrics after the series: ` value[ timestamp][ # {exemplar} value[ timestamp]]\n`.
    fn om_sample_rest(&self, r: &'a [u8], series: &mut SeriesEntry<'a>) -> Result<&'a [u8], nom::Err<Fail<'a>>> {
        // Fast path: a plain decimal read in the pass that finds its end.
        let fast = r
            .strip_prefix(b" ")
            .and_then(parse_short_decimal_prefix)
            .filter(|&(_, n)| n > 0 && matches!(r.get(n + 1), None | Some(b' ' | b'\n')));
        let r2 = match fast {
            Some((value, n)) => {
                series.value = value;
                &r[n + 1..]
            }
            None => {
                let (r2, value) = space_token(r).ok_or_else(|| failure(r, "value after metric"))?;
                series.value = self
                    .as_str(value)
                    .and_then(parse_float)
                    .ok_or(nom::Err::Failure(Fail { at: &r[1..], kind: FailKind::InvalidValue(value) }))?;
                r2
            }
        };
        let mut r = r2;
        if let Some(r2) = r.strip_prefix(b" ").filter(|r2| !r2.starts_with(b"# {")) {
            let (r3, token) = space_token(r).ok_or_else(|| failure(r2, "timestamp"))?;
            series.timestamp = Some(
                self.as_str(token)
                    .and_then(parse_om_timestamp)
                    .ok_or(nom::Err::Failure(Fail { at: r2, kind: FailKind::InvalidTimestamp(token) }))?,
            );
            r = r3;
        }
        match r.first() {
            Some(b'\n') => return Ok(&r[1..]),
            None => return Err(nom::Err::Failure(Fail { at: r, kind: FailKind::NoEof })),
            _ => {}
        }
        let Some(after) = r.strip_prefix(b" # {") else {
            let what = if series.timestamp.is_some() { "next entry after timestamp" } else { "timestamp or exemplar" };
            return Err(failure(r, what));
        };
        let (r, (labels, _)) = self.label_set(after, Syntax::OpenMetrics, true)?;
        let mut exemplar = Exemplar { labels, value: 0.0, timestamp: None };
        let n_chars: usize = exemplar.labels().map(|(n, v)| n.chars().count() + v.chars().count()).sum();
        if n_chars > EXEMPLAR_MAX_LABEL_CHARS {
            return Err(nom::Err::Failure(Fail { at: after, kind: FailKind::ExemplarTooLong(n_chars) }));
        }
        let (r2, value) = space_token(r).ok_or_else(|| failure(r, "value after exemplar labels"))?;
        exemplar.value = self
            .as_str(value)
            .and_then(parse_float)
            .ok_or(nom::Err::Failure(Fail { at: &r[1..], kind: FailKind::InvalidValue(value) }))?;
        let mut r = r2;
        if r.first() == Some(&b' ') {
            let (r2, token) = space_token(r).ok_or_else(|| failure(&r[1..], "exemplar timestamp"))?;
            exemplar.timestamp = Some(
                self.as_str(token)
                    .and_then(parse_om_timestamp)
                    .ok_or(nom::Err::Failure(Fail { at: &r[1..], kind: FailKind::InvalidExemplarTimestamp(token) }))?,
            );
            r = r2;
        }
        series.exemplar = Some(exemplar);
        match r.first() {
            Some(b'\n') => Ok(&r[1..]),
            None => Err(nom::Err::Failure(Fail { at: r, kind: FailKind::NoEof })),
            _ => Err(failure(r, "next entry after exemplar")),
        }
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = &self.input[self.pos..];
        let step = match self.format {
            Format::Text => self.next_text(rest),
            Format::OpenMetrics => self.next_om(rest),
        };
        match step {
            Ok(Some((entry, remaining))) => {
                let entry_start = self.pos;
                self.entry_start = entry_start;
                self.pos = self.offset(remaining);
                if let Some(validator) = self.validator.as_mut() {
                    if let Err(message) = validator.entry(&entry) {
                        self.done = true;
                        return Some(Err(ParseError::at(self.input, entry_start, message)));
                    }
                }
                Some(Ok(entry))
            }
            Ok(None) => {
                self.done = true;
                let end_start = self.pos;
                self.pos = self.input.len();
                let finish = self.validator.as_mut().map_or(Ok(()), |v| v.finish());
                finish.err().map(|message| Err(ParseError::at(self.input, end_start, message)))
            }
            Err(fail) => {
                self.done = true;
                let entry_start = self.pos;
                Some(Err(self.error(entry_start, fail)))
            }
        }
    }
}

// ---- nom plumbing ----

type Res<'a, T> = IResult<&'a [u8], T, Fail<'a>>;
type Step<'a> = Result<Option<(Entry<'a>, &'a [u8])>, Fail<'a>>;

/// nom's error inside this module: where (a suffix of the input) and what went wrong.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fail<'a> {
    at: &'a [u8],
    kind: FailKind<'a>,
}

#[derive(Debug, Clone, Copy)]
enum FailKind<'a> {
    Expected(&'static str),
    InvalidValue(&'a [u8]),
    InvalidTimestamp(&'a [u8]),
    InvalidExemplarTimestamp(&'a [u8]),
    InvalidUtf8(&'static str),
    InvalidType(&'a [u8]),
    MetricNameAlreadySet,
    MetricNameNotSet,
    UnitNotSuffix,
    ExemplarTooLong(usize),
    DataAfterEof,
    NoEof,
}

impl<'a> nom::error::ParseError<&'a [u8]> for Fail<'a> {
    fn from_error_kind(input: &'a [u8], _kind: nom::error::ErrorKind) -> Self {
        Fail { at: input, kind: FailKind::Expected("a valid token") }
    }

    fn append(_input: &'a [u8], _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

impl<'a> From<nom::Err<Fail<'a>>> for Fail<'a> {
    fn from(e: nom::Err<Fail<'a>>) -> Self {
        match e {
            nom::Err::Error(f) | nom::Err::Failure(f) => f,
            nom::Err::Incomplete(_) => Fail { at: &[], kind: FailKind::NoEof },
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum MetaKind {
    Help,
    Type,
    Unit,
}

impl MetaKind {
    fn expected_name(self) -> &'static str {
        match self {
            MetaKind::Help => "metric name after HELP",
            MetaKind::Type => "metric name after TYPE",
            MetaKind::Unit => "metric name after UNIT",
        }
    }

    fn expected_text(self) -> &'static str {
        match self {
            MetaKind::Help => "text in HELP",
            MetaKind::Type => "text in TYPE",
            MetaKind::Unit => "text in UNIT",
        }
    }
}

fn expected<'a>(at: &'a [u8], what: &'static str) -> Fail<'a> {
    Fail { at, kind: FailKind::Expected(what) }
}

fn failure<'a>(at: &'a [u8], what: &'static str) -> nom::Err<Fail<'a>> {
    nom::Err::Failure(expected(at, what))
}

/// A quoted string's content (between the quotes) and whether it has backslash escapes.
#[derive(Debug, Clone, Copy)]
struct Quoted<'a> {
    raw: &'a [u8],
    escaped: bool,
}

/// `"..."` with `\` escaping the next byte; raw newlines only in the text format.
fn quoted(input: &[u8], allow_newline: bool) -> Res<'_, Quoted<'_>> {
    let Some(body) = input.strip_prefix(b"\"") else {
        return Err(nom::Err::Error(expected(input, "quoted string")));
    };
    let mut i = 0;
    let mut escaped = false;
    loop {
        match find2(&body[i..], b'"', b'\\') {
            None => return Err(nom::Err::Error(expected(input, "quoted string"))),
            Some(j) if body[i + j] == b'\\' => {
                escaped = true;
                i += j + 2;
                if i > body.len() {
                    return Err(nom::Err::Error(expected(input, "quoted string")));
                }
            }
            Some(j) => {
                let raw = &body[..i + j];
                if !allow_newline && memchr::memchr(b'\n', raw).is_some() {
                    return Err(nom::Err::Error(expected(input, "quoted string")));
                }
                return Ok((&body[i + j + 1..], Quoted { raw, escaped }));
            }
        }
    }
}

/// A label name: `[a-zA-Z_][a-zA-Z0-9_]*` or a quoted string.
fn label_name(input: &[u8]) -> Res<'_, Quoted<'_>> {
    if input.first() == Some(&b'"') {
        return quoted(input, true);
    }
    let (r, name) = take_while1(is_label_char)(input)?;
    Ok((r, Quoted { raw: name, escaped: false }))
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn metric_name(input: &[u8]) -> Res<'_, &[u8]> {
    match input.first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' || *b == b':' => {
            let n = class_span(input, METRIC_CHAR);
            Ok((&input[n..], &input[..n]))
        }
        _ => Err(nom::Err::Error(expected(input, "metric name"))),
    }
}

/// ` token` where token is `[^ \n]+` (OpenMetrics' single-space separated fields).
fn space_token(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let body = input.strip_prefix(b" ")?;
    let end = find2(body, b' ', b'\n').unwrap_or(body.len());
    (end > 0).then(|| (&body[end..], &body[..end]))
}

/// The first `a` or `b` in `haystack`, eight bytes at a time (label values and numbers are
/// short: memchr's setup costs more than it saves there), memchr for long ones.
#[inline]
fn find2(haystack: &[u8], a: u8, b: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let (pattern_a, pattern_b) = (LO * u64::from(a), LO * u64::from(b));
    let mut i = 0;
    while let Some(chunk) = haystack.get(i..i + 8) {
        if i >= 64 {
            return memchr::memchr2(a, b, &haystack[i..]).map(|j| i + j);
        }
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else { break };
        let word = u64::from_le_bytes(bytes);
        let (xa, xb) = (word ^ pattern_a, word ^ pattern_b);
        // A zero byte in xa or xb is a match; the lowest flagged byte is exact.
        let found = ((xa.wrapping_sub(LO) & !xa) | (xb.wrapping_sub(LO) & !xb)) & HI;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    haystack[i..].iter().position(|&c| c == a || c == b).map(|j| i + j)
}

/// Character classes of the grammar, one table lookup per byte.
const LABEL_CHAR: u8 = 1;
const METRIC_CHAR: u8 = 2;
const VALUE_END: u8 = 4;

static CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'_' {
            table[b] |= LABEL_CHAR | METRIC_CHAR;
        }
        if c == b':' {
            table[b] |= METRIC_CHAR;
        }
        if matches!(c, b'{' | b' ' | b'\t' | b'\n') {
            table[b] |= VALUE_END;
        }
        b += 1;
    }
    table
};

/// Length of the run of bytes at the start of `input` whose class has `mask`: eight bytes per
/// step (all eight looked up, then one test), byte by byte for the rest.
#[inline]
fn class_span(input: &[u8], mask: u8) -> usize {
    let mut n = 0;
    for chunk in input.chunks_exact(8) {
        if chunk.iter().fold(mask, |acc, &b| acc & CLASSES[usize::from(b)]) == 0 {
            break;
        }
        n += 8;
    }
    let rest = &input[n..];
    n + rest.iter().position(|&b| CLASSES[usize::from(b)] & mask == 0).unwrap_or(rest.len())
}

#[inline]
fn is_label_char(b: u8) -> bool {
    CLASSES[usize::from(b)] & LABEL_CHAR != 0
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_while(input: &[u8], pred: impl Fn(u8) -> bool) -> &[u8] {
    let n = input.iter().position(|&b| !pred(b)).unwrap_or(input.len());
    &input[n..]
}

/// The rest of the line (without its newline) and what follows the newline.
fn rest_of_line(input: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b'\n', input) {
        Some(i) => (&input[i + 1..], &input[..i]),
        None => (&input[input.len()..], input),
    }
}

/// Resolves `\\`, `\"` and `\n` (only `\\` and `\n` in text-format help, `help_only`); other
/// escapes stay as written, as in Prometheus. `None` if not UTF-8.
fn unescape(raw: &[u8], escaped: bool, help_only: bool) -> Option<Cow<'_, str>> {
    Some(unescape_str(std::str::from_utf8(raw).ok()?, escaped, help_only))
}

/// [`unescape`] of text already known to be UTF-8.
fn unescape_str(text: &str, escaped: bool, help_only: bool) -> Cow<'_, str> {
    if !escaped {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if !help_only => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Where the token starting at `at` ends, for "while parsing" excerpts.
fn token_end(input: &[u8], at: usize) -> usize {
    let rest = &input[at.min(input.len())..];
    let n = rest.iter().take(64).position(|&b| matches!(b, b' ' | b'\t' | b'\n' | b'{' | b'}' | b'=' | b',' | b'"'));
    at + n.unwrap_or(rest.len().min(64)).max(1).min(rest.len())
}

fn got(at: &[u8]) -> String {
    if at.is_empty() {
        return "end of input".to_string();
    }
    let n = at.iter().take(64).position(|&b| matches!(b, b' ' | b'\t' | b'\n' | b'{' | b'}' | b'=' | b',' | b'"'));
    quote(&at[..n.unwrap_or(at.len().min(64)).max(1)])
}

/// `"text"` with Rust's escapes, cut at 120 bytes.
fn quote(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(120)];
    format!("{:?}", String::from_utf8_lossy(cut))
}

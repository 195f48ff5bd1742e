//! Parse errors with Prometheus' wording and positions.

use std::fmt;

/// A byte range `start..end` in the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    pub(crate) fn to(self, other: Span) -> Span {
        Span { start: self.start, end: other.end }
    }
}

/// A syntax or type error in a PromQL expression.
///
/// `Display` reads like Prometheus: `1:5: parse error: unclosed left parenthesis`, where
/// `1:5` is the line and the 1-based byte column of [`ParseError::span`]'s start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Where the error is, as a byte range of the query.
    pub span: Span,
    /// Line (1-based) of `span.start`.
    pub line: usize,
    /// Column (1-based, in bytes) of `span.start`.
    pub column: usize,
    /// The message without the position, e.g. `unclosed left parenthesis`.
    pub message: String,
    query: String,
}

impl ParseError {
    pub(crate) fn new(query: &str, span: Span, message: impl Into<String>) -> ParseError {
        let start = span.start.min(query.len());
        let before = &query.as_bytes()[..start];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        ParseError { span, line, column: start - line_start + 1, message: message.into(), query: query.to_string() }
    }

    /// The offending line of the query with a caret line under the error, for humans:
    ///
    /// ```text
    /// sum(rate(x[5m])
    ///                ^ unclosed left parenthesis
    /// ```
    pub fn render_caret(&self) -> String {
        let start = self.span.start.min(self.query.len());
        let line_start = self.query[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.query[start..].find('\n').map_or(self.query.len(), |i| start + i);
        let line = &self.query[line_start..line_end];
        let pad = self.query[line_start..start].chars().count();
        let end = self.span.end.clamp(start, line_end);
        let width = self.query[start..end].chars().count().max(1);
        format!("{line}\n{}{} {}", " ".repeat(pad), "^".repeat(width), self.message)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.query.is_empty() {
            return write!(f, "unknown position: parse error: {}", self.message);
        }
        write!(f, "{}:{}: parse error: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// The error type of this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The expression does not parse or does not type-check.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The query failed while it ran (limits, cancellation, storage, bad data).
    #[error(transparent)]
    Query(#[from] crate::engine::QueryError),
}

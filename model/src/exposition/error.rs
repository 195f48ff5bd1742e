//! The public parse error: a position and a message that reads like Prometheus'.

use std::fmt;

/// An exposition that could not be parsed: where (1-based line and column, columns counted in
/// characters, plus the byte offset) and what, worded like Prometheus' `textparse` errors
/// (`expected equal, got "x" while parsing: "a{b x"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
    pub message: String,
}

impl ParseError {
    /// Builds the error for byte `offset` of `input`, computing line and column.
    pub(super) fn at(input: &[u8], offset: usize, message: String) -> ParseError {
        let offset = offset.min(input.len());
        let before = &input[..offset];
        let line = memchr::memchr_iter(b'\n', before).count() + 1;
        let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        ParseError { line, column, offset, message }
    }

    /// The offending line of `input` with a caret under the error's column, for terminals.
    pub fn render(&self, input: &[u8]) -> String {
        let offset = self.offset.min(input.len());
        let start = memchr::memrchr(b'\n', &input[..offset]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &input[offset..]).map_or(input.len(), |i| offset + i);
        let text = String::from_utf8_lossy(&input[start..end]);
        format!("{self}\n{text}\n{}^", " ".repeat(self.column.saturating_sub(1)))
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

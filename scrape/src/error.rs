//! The crate's one error type.

use std::fmt;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration file that does not parse or does not validate. `line` and `column` are
    /// 1-based; 0 means the position is not known. `message` names the field
    /// (`scrape_configs[2].scrape_interval: ...`) where one is at fault.
    #[error("{}", ConfigPosition { file, line: *line, column: *column, message })]
    Config { file: String, line: usize, column: usize, message: String },
    /// A configuration file that cannot be read.
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A value that does not parse or validate on its own: a duration, a size, a relabel regex
    /// or rule built in code. The message reads like Prometheus'.
    #[error("{message}")]
    Value { message: String },
    /// A discovered target that cannot be scraped after relabeling (Prometheus'
    /// `PopulateLabels` errors, e.g. `no address`).
    #[error("{message}")]
    Target { message: String },
}

impl Error {
    pub(crate) fn value(message: impl Into<String>) -> Error {
        Error::Value { message: message.into() }
    }

    pub(crate) fn target(message: impl Into<String>) -> Error {
        Error::Target { message: message.into() }
    }
}

struct ConfigPosition<'a> {
    file: &'a str,
    line: usize,
    column: usize,
    message: &'a str,
}

impl fmt::Display for ConfigPosition<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.is_empty() {
            write!(f, "{}:", self.file)?;
        }
        if self.line > 0 {
            write!(f, "{}:{}:", self.line, self.column)?;
        }
        if !self.file.is_empty() || self.line > 0 {
            f.write_str(" ")?;
        }
        f.write_str(self.message)
    }
}

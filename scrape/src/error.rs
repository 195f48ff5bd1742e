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
    /// A failed scrape, HTTP request or discovery refresh; the message is what the targets
    /// API shows as `lastError`.
    #[error("{message}")]
    Scrape { message: String },
    /// The storage behind the `Appendable` seam refused a write.
    #[error(transparent)]
    Storage(#[from] sextant_model::StorageError),
    /// The remote-write buffer (WAL, send positions) is damaged or cannot be written.
    #[error("remote write buffer {file}: {message}")]
    Buffer { file: String, message: String },
}

impl Error {
    pub(crate) fn value(message: impl Into<String>) -> Error {
        Error::Value { message: message.into() }
    }

    pub(crate) fn scrape(message: impl Into<String>) -> Error {
        Error::Scrape { message: message.into() }
    }

    pub(crate) fn io(file: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { file: file.into(), source }
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

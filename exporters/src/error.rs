use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read (a missing `/proc` file is one).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file did not have the expected format.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 when not line-oriented).
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// The data a collector reads is not present on this host.
    #[error("no data: {0}")]
    NoData(String),
    /// A collector did not finish within its timeout.
    #[error("collector {collector} timed out after {seconds}s")]
    Timeout {
        /// The collector's name.
        collector: String,
        /// The timeout.
        seconds: f64,
    },
    /// A collector's previous run has not finished yet (it is stuck, e.g. on a hung mount).
    #[error("collector {0} is still running from an earlier scrape")]
    StillRunning(String),
    /// A command-line flag was unknown or had a bad value.
    #[error("flag {flag}: {message}")]
    Flag {
        /// The flag as given.
        flag: String,
        /// What was wrong.
        message: String,
    },
    /// The HTTP server failed (binding, accepting, TLS setup).
    #[error("http server: {0}")]
    Serve(#[from] sextant_web::Error),
    /// A collector task panicked or was cancelled.
    #[error("collector {0} failed to run")]
    Join(String),
}

#[cfg_attr(not(feature = "node"), allow(dead_code))]
impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn parse(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Error {
        Error::Parse { path: path.into(), line, message: message.into() }
    }
}

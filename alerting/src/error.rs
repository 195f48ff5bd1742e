//! The crate's one error type.

use std::fmt;

/// Everything that can go wrong in `sextant-alerting`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A label matcher did not parse (`0:8: end of input: expected close brace`, `bad matcher
    /// format: foo`) or its regex did not compile. Positions are inside the message, as
    /// Alertmanager prints them.
    #[error("{message}")]
    Matcher { message: String },
    /// An `alertmanager.yml` was rejected; the message is Alertmanager's where it has one.
    #[error("{0}")]
    Config(ConfigError),
    /// An alert or silence was rejected (`start time must be before end time`, ...).
    #[error("{message}")]
    Invalid { message: String },
    /// A silence id that is not stored.
    #[error("silence {id} not found")]
    SilenceNotFound { id: String },
    /// Sending a notification failed; `retryable` says whether trying again may help.
    #[error("{integration}: {message}")]
    Notify { integration: String, message: String, retryable: bool },
    /// Reading or writing the state under `--storage.path` failed.
    #[error("{path}: {message}")]
    Storage { path: String, message: String },
    /// A rule file was rejected: every problem found, each worded as Prometheus words it.
    #[error("{}", errors.join("\n"))]
    RuleFile { errors: Vec<String> },
}

impl Error {
    pub(crate) fn matcher(message: impl Into<String>) -> Error {
        Error::Matcher { message: message.into() }
    }

    pub(crate) fn config(message: impl Into<String>) -> Error {
        Error::Config(ConfigError { message: message.into(), line: None, column: None })
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::Invalid { message: message.into() }
    }

    pub(crate) fn notify(integration: &str, message: impl Into<String>, retryable: bool) -> Error {
        Error::Notify { integration: integration.to_string(), message: message.into(), retryable }
    }

    pub(crate) fn storage(path: &std::path::Path, message: impl fmt::Display) -> Error {
        Error::Storage { path: path.display().to_string(), message: message.to_string() }
    }

    /// The message without any position, as Alertmanager words it (what `amtool check-config`
    /// prints after `FAILED: `).
    pub fn message(&self) -> &str {
        match self {
            Error::Matcher { message } => message,
            Error::Config(c) => &c.message,
            Error::Invalid { message } | Error::Storage { message, .. } | Error::Notify { message, .. } => message,
            Error::SilenceNotFound { .. } => "silence not found",
            Error::RuleFile { errors } => errors.first().map_or("", String::as_str),
        }
    }
}

/// A rejected configuration: the message and, for YAML syntax and type errors, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub message: String,
    /// 1-based line of the offending YAML node, when known.
    pub line: Option<usize>,
    /// 1-based column of the offending YAML node, when known.
    pub column: Option<usize>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{line}:{column}: {}", self.message),
            (Some(line), None) => write!(f, "line {line}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl From<serde_yaml_ng::Error> for Error {
    fn from(err: serde_yaml_ng::Error) -> Error {
        let location = err.location();
        let mut message = err.to_string();
        // serde_yaml_ng appends " at line L column C"; the position is kept separately.
        if let Some(loc) = &location {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        Error::Config(ConfigError {
            message,
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
        })
    }
}

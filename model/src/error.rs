use thiserror::Error;

/// Errors of the model crate's constructors and codecs.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    #[error("label name \"{name}\" is given twice")]
    DuplicateLabelName { name: String },
    #[error("invalid label name \"{name}\"")]
    InvalidLabelName { name: String },
    #[error("invalid metric name \"{name}\"")]
    InvalidMetricName { name: String },
    #[error("invalid regular expression \"{pattern}\": {message}")]
    InvalidRegex { pattern: String, message: String },
    #[error(transparent)]
    Remote(#[from] crate::remote::DecodeError),
    #[error("exposition: {0}")]
    Exposition(#[from] crate::exposition::ParseError),
}

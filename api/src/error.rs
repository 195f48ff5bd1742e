//! The crate's error type and the API's error envelope.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::json::{json_response, JsonWriter};

/// Errors of this crate's public functions (serving, configuration).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Binding or serving the listener failed.
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
    /// Saved Pushgateway state could not be read.
    #[error("pushgateway state: {0}")]
    PushgatewayState(String),
}

/// One of Prometheus' `errorType`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorType {
    BadData,
    Execution,
    Timeout,
    Canceled,
    Internal,
    Unavailable,
}

impl ErrorType {
    fn name(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Canceled => "canceled",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            ErrorType::Internal | ErrorType::Unavailable => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An API error: rendered as `{"status":"error","errorType":…,"error":…}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub(crate) kind: ErrorType,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(kind: ErrorType, message: impl Into<String>) -> ApiError {
        ApiError { kind, message: message.into() }
    }

    pub(crate) fn bad_data(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::BadData, message)
    }

    /// `invalid parameter "name": message`.
    pub(crate) fn invalid_param(name: &str, message: impl std::fmt::Display) -> ApiError {
        ApiError::bad_data(format!("invalid parameter {name:?}: {message}"))
    }

    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::Internal, message)
    }

    /// Maps an engine error as Prometheus' `returnAPIError` does.
    pub(crate) fn from_query(err: sextant_promql::Error) -> ApiError {
        use sextant_promql::{Error as E, QueryError as Q};
        match err {
            E::Parse(e) => ApiError::invalid_param("query", e),
            E::Query(q) => {
                let kind = match &q {
                    Q::Timeout(_) => ErrorType::Timeout,
                    Q::Canceled(_) => ErrorType::Canceled,
                    Q::Storage(_) => ErrorType::Internal,
                    _ => ErrorType::Execution,
                };
                ApiError::new(kind, q.to_string())
            }
            other => ApiError::new(ErrorType::Execution, other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut w = JsonWriter::new();
        w.raw(r#"{"status":"error","errorType":"#);
        w.string(self.kind.name());
        w.raw(r#","error":"#);
        w.string(&self.message);
        w.raw("}");
        json_response(self.kind.status(), w.finish())
    }
}

//! The evaluator: instant and range queries over a [`Queryable`], with Prometheus 3.x
//! semantics.

mod aggregate;
mod binop;
mod eval;
mod functions;
mod hash;
mod info;
mod quantile;
mod range;
mod value;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sextant_model::Queryable;

use crate::ast::Expr;
use crate::error::Error;

pub use value::{Annotations, FPoint, Sample, Series, Value};

pub(crate) use functions::almost_equal;
pub(crate) use value::{format_float as format_value, labels_string};

/// Engine settings, named after Prometheus' flags.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// `--query.lookback-delta`: how far back an instant selector looks for a sample (ms).
    pub lookback_delta_ms: i64,
    /// `--query.max-samples`: the most samples one query may hold in memory at once.
    pub max_samples: usize,
    /// `--query.timeout`.
    pub timeout: Option<Duration>,
    /// Step of subqueries written without one (`[5m:]`): the global evaluation interval (ms).
    pub default_subquery_step_ms: i64,
    /// `--enable-feature=promql-delayed-name-removal`: `__name__` is dropped when the query
    /// ends rather than by each operation, so `label_replace` can still read it.
    pub delayed_name_removal: bool,
    /// Which Prometheus release's semantics to follow where they differ.
    pub semantics: Semantics,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Some(Duration::from_secs(120)),
            default_subquery_step_ms: 60 * 1000,
            delayed_name_removal: false,
            semantics: Semantics::Prometheus3,
        }
    }
}

/// The Prometheus release whose evaluation rules apply where releases differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Semantics {
    /// Prometheus 3.x: left-open windows `(t - range, t]`, UTF-8 label names.
    #[default]
    Prometheus3,
    /// Prometheus 2.x (as 2.42): closed windows `[t - range, t]` for range selectors, the
    /// lookback and subqueries; `rate`'s zero-point cut-off applied before the extrapolation
    /// threshold; legacy label-name checks in `label_replace`/`label_join`; `atan2` keeps the
    /// metric name.
    Prometheus2,
}

/// Cancels a running query from another thread: clone it, pass it to
/// [`Engine::instant_query_with`] / [`Engine::range_query_with`], call [`CancelToken::cancel`].
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_canceled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a query failed while it ran (texts as Prometheus').
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// More than [`EngineOptions::max_samples`] samples would be held at once.
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    #[error("query was canceled in {0}")]
    Canceled(&'static str),
    /// The storage failed.
    #[error("{0}")]
    Storage(String),
    /// The query is valid PromQL but cannot be evaluated on this data (duplicate series in a
    /// match group, a bad label name…).
    #[error("{0}")]
    Eval(String),
}

/// The value of a query with its warnings and infos.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    pub annotations: Annotations,
}

/// Evaluates parsed expressions. Cheap to share; every query is independent.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    options: EngineOptions,
}

impl Engine {
    pub fn new(options: EngineOptions) -> Engine {
        Engine { options }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Evaluates `expr` at time `t` (ms).
    pub fn instant_query(&self, storage: &dyn Queryable, expr: &Expr, t: i64) -> Result<QueryResult, Error> {
        self.instant_query_with(storage, expr, t, &CancelToken::new())
    }

    /// Like [`Engine::instant_query`], stoppable through `cancel`.
    pub fn instant_query_with(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        t: i64,
        cancel: &CancelToken,
    ) -> Result<QueryResult, Error> {
        eval::run(&self.options, storage, expr, t, t, 0, cancel).map_err(Error::from)
    }

    /// Evaluates `expr` at `start`, `start + step`, … up to `end` (ms). The result is a
    /// matrix sorted by labels.
    pub fn range_query(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, Error> {
        self.range_query_with(storage, expr, start, end, step, &CancelToken::new())
    }

    /// Like [`Engine::range_query`], stoppable through `cancel`.
    pub fn range_query_with(
        &self,
        storage: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        cancel: &CancelToken,
    ) -> Result<QueryResult, Error> {
        if step <= 0 {
            return Err(
                QueryError::Eval("zero or negative query resolution step widths are not accepted".into()).into()
            );
        }
        if end < start {
            return Err(QueryError::Eval("end timestamp must not be before start time".into()).into());
        }
        eval::run(&self.options, storage, expr, start, end, step, cancel).map_err(Error::from)
    }
}

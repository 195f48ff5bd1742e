//! Sextant's PromQL: parser, type checker, formatter, evaluator and test-script runner.
//!
//! - [`parse`] / [`parse_with`] turn a query into an [`Expr`] tree (every node has a
//!   [`Span`]) and type-check it like Prometheus' `checkAST`; [`ParseOptions`] are the
//!   parser's feature flags (experimental functions, duration expressions, `anchored` /
//!   `smoothed`, `fill()` modifiers).
//! - [`ParseError`] reads like Prometheus (`1:5: parse error: unclosed left parenthesis`) and
//!   renders a caret line with [`ParseError::render_caret`].
//! - [`format()`] (or `Expr`'s `Display`) prints canonical PromQL, as
//!   `/api/v1/format_query` does; `parse(format(e))` gives `e` back.
//! - [`parse_metric_selector`] reads a lone selector (`match[]` of the HTTP API).
//! - [`Function`] / [`FUNCTIONS`] is the function table, [`ExprType`] the value types.
//!
//! Input is never trusted: bad queries are errors, nesting deeper than [`MAX_DEPTH`] is an
//! error rather than a stack overflow.
//!
//! ```
//! use sextant_promql::{format, parse, Expr, ExprType};
//!
//! let e = parse("sum by(job) (rate(http_requests_total{code=~\"5..\"}[5m]))")?;
//! assert_eq!(e.expr_type(), ExprType::Vector);
//! assert_eq!(format(&e), "sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m]))");
//! assert!(matches!(e, Expr::Aggregate(_)));
//!
//! let err = parse("sum(rate(x[5m])").unwrap_err();
//! assert_eq!(err.to_string(), "1:16: parse error: unclosed left parenthesis");
//! # Ok::<(), sextant_promql::ParseError>(())
//! ```
//!
//! The evaluator: an [`Engine`] (settings in [`EngineOptions`]: lookback delta, `max_samples`,
//! timeout, default subquery step, delayed name removal, [`Semantics`] of Prometheus 3 or 2)
//! runs an [`Expr`] as an instant or range query over any [`sextant_model::Queryable`] and
//! returns a [`QueryResult`]: a [`Value`] (scalar, vector of [`Sample`]s, matrix of
//! [`Series`], string) with its [`Annotations`] (warnings and infos as data). Limits,
//! timeouts and a [`CancelToken`] end a query with a [`QueryError`]. [`promqltest`] runs
//! Prometheus' `.test` scripts against the engine.
//!
//! ```
//! use sextant_model::{Appendable, Labels, MemStorage};
//! use sextant_promql::{parse, Engine, Value};
//!
//! let db = MemStorage::new();
//! let mut app = db.appender();
//! for (i, v) in [0.0, 60.0, 120.0].into_iter().enumerate() {
//!     app.append(&Labels::from_pairs([("__name__", "requests_total"), ("job", "api")]), i as i64 * 60_000, v)?;
//! }
//! app.commit()?;
//!
//! let engine = Engine::default();
//! let result = engine.instant_query(&db, &parse("sum by (job) (rate(requests_total[2m]))")?, 120_000)?;
//! let Value::Vector(samples) = result.value else { panic!("a vector") };
//! assert_eq!(samples[0].labels, Labels::from_pairs([("job", "api")]));
//! assert_eq!(samples[0].f, 1.0);
//!
//! let range = engine.range_query(&db, &parse("requests_total / 60")?, 0, 120_000, 60_000)?;
//! let Value::Matrix(series) = range.value else { panic!("a matrix") };
//! assert_eq!(series[0].floats.len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ast;
mod check;
mod engine;
mod error;
mod format;
mod functions;
mod lexer;
mod parser;
pub mod promqltest;

pub use ast::{
    Aggregate, AggregateOp, At, Binary, BinaryOp, Call, Cardinality, Duration, DurationExpr, DurationOp, Expr,
    ExprType, FillValues, MatrixSelector, NumberLiteral, Paren, StringLiteral, Subquery, Unary, UnaryOp,
    VectorMatching, VectorSelector,
};
pub use engine::{
    Annotations, CancelToken, Engine, EngineOptions, FPoint, QueryError, QueryResult, Sample, Semantics, Series, Value,
};
pub use error::{Error, ParseError, Span};
pub use functions::{function, Function, FUNCTIONS};
pub use parser::{ParseOptions, MAX_DEPTH};

/// Parses and type-checks `query` with Prometheus 3.14's default options.
pub fn parse(query: &str) -> Result<Expr, ParseError> {
    parse_with(query, ParseOptions::default())
}

/// Parses and type-checks `query` with the given feature flags.
pub fn parse_with(query: &str, options: ParseOptions) -> Result<Expr, ParseError> {
    let mut expr = parser::Parser::new(query, options).parse()?;
    check::Checker::new(query).check(&mut expr)?;
    Ok(expr)
}

/// Parses a lone vector selector such as `up{job="node"}` or `{__name__=~"node_.*"}` (the
/// `match[]` parameter of Prometheus' HTTP API) into its matchers, the metric name included.
/// Like Prometheus, it does not require a non-empty matcher; callers that need one check.
pub fn parse_metric_selector(input: &str) -> Result<Vec<sextant_model::Matcher>, ParseError> {
    let vs = parser::Parser::new(input, ParseOptions::default()).parse_selector()?;
    Ok(vs.matchers)
}

/// Canonical PromQL text of `expr`.
pub fn format(expr: &Expr) -> String {
    let mut out = String::new();
    format::write_expr(&mut out, expr);
    out
}

//! Sextant's PromQL front end: parser, type checker and formatter.
//!
//! - [`parse`] / [`parse_with`] turn a query into an [`Expr`] tree (every node has a
//!   [`Span`]) and type-check it like Prometheus' `checkAST`; [`ParseOptions`] are the
//!   parser's feature flags (experimental functions, duration expressions, `anchored` /
//!   `smoothed`, `fill()` modifiers).
//! - [`ParseError`] reads like Prometheus (`1:5: parse error: unclosed left parenthesis`) and
//!   renders a caret line with [`ParseError::render_caret`].
//! - [`format`] (or `Expr`'s `Display`) prints canonical PromQL, as
//!   `/api/v1/format_query` does; `parse(format(e))` gives `e` back.
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

/// Canonical PromQL text of `expr`.
pub fn format(expr: &Expr) -> String {
    let mut out = String::new();
    format::write_expr(&mut out, expr);
    out
}

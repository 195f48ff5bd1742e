//! Sextant's PromQL front end and engine (not started yet).
//!
//! This crate will hold the nom parser, the type checker, the formatter, the evaluator over
//! `&dyn sextant_model::Queryable` and the promqltest script runner. Nothing here works yet.

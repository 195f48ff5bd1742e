//! Sextant's exporters (not started yet).
//!
//! This crate will hold the `Collector` trait, the registry and `/metrics` serving, and one
//! Cargo feature per exporter: node, container, log, MySQL, Redis, PostgreSQL and blackbox.
//! Nothing here works yet.

//! Sextant's HTTP API (not started yet).
//!
//! This crate will serve the Prometheus HTTP API v1, the remote-write receiver and remote read,
//! federation, the Pushgateway API and the Alertmanager API v2. Nothing here works yet.

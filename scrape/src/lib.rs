//! Sextant's scrape side (not started yet).
//!
//! This crate will read `prometheus.yml`, run service discovery and relabeling, drive scrape
//! loops that write through `sextant_model::Appendable`, and send remote write as an agent.
//! Nothing here works yet.

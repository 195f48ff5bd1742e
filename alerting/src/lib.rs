//! Sextant's alerting (not started yet).
//!
//! This crate will hold recording and alerting rules, alert templates and the notifier, and an
//! Alertmanager: routing tree, grouping, inhibition, silences and receivers. Nothing here
//! works yet.

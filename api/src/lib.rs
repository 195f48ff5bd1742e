//! Sextant's HTTP API.
//!
//! Today this crate serves the Alertmanager: [`alertmanager::router`] gives the axum routes of
//! API v2 (`/api/v2/alerts`, `/alerts/groups`, `/silences`, `/silence/{id}`, `/status`,
//! `/receivers`), `/-/healthy`, `/-/ready`, `/-/reload` and `/metrics` over an
//! [`alertmanager::Alertmanager`], whose [`alertmanager::Alertmanager::run`] task drives the
//! dispatcher's timers and sends notifications. The Prometheus API v1, remote write/read,
//! federation and the Pushgateway API are not here yet.
//!
//! ```
//! use std::sync::Arc;
//! use sextant_alerting::alertmanager::{Config, Dispatcher};
//! use sextant_model::SystemClock;
//!
//! let config = Config::parse("route: {receiver: x}\nreceivers: [{name: x}]")?;
//! let am = sextant_api::alertmanager::Alertmanager::with_http(
//!     Dispatcher::new(config), Arc::new(SystemClock), "http://127.0.0.1:9093", None);
//! let _app: axum::Router = sextant_api::alertmanager::router(am);
//! # Ok::<(), sextant_alerting::Error>(())
//! ```

pub mod alertmanager;

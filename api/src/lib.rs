//! Sextant's HTTP API: what Grafana, promtool and Prometheus talk to.
//!
//! [`Api`] holds a [`Storage`] (anything `Queryable + Appendable`: the TSDB's `Db`, or
//! `MemStorage` in tests), the PromQL engine settings ([`ApiOptions`]) and the providers of
//! scrape targets ([`TargetsProvider`]) and rules ([`RulesProvider`]); [`Api::router`] is an
//! axum `Router` serving:
//!
//! - the Prometheus HTTP API v1 (`/api/v1/query`, `query_range`, `series`, `labels`,
//!   `label/<name>/values`, `metadata`, `targets`, `rules`, `alerts`, `status/*`, …) with
//!   Prometheus' envelope, error types, HTTP codes and number formatting;
//! - the remote-write receiver (`/api/v1/write`, 1.0 and 2.0) and remote read (`/api/v1/read`,
//!   `SAMPLES` and `STREAMED_XOR_CHUNKS`);
//! - federation (`/federate`), the Pushgateway API (`/metrics/job/…`), and `/-/healthy`,
//!   `/-/ready`, `/-/reload`, `/metrics`.
//!
//! The Alertmanager side lives in [`alertmanager`]: [`alertmanager::router`] serves API v2
//! (`/api/v2/alerts`, `/alerts/groups`, `/silences`, `/silence/{id}`, `/status`, `/receivers`)
//! over an [`alertmanager::Alertmanager`], whose [`alertmanager::Alertmanager::run`] task drives
//! the dispatcher's timers and sends notifications.
//!
//! ```
//! use std::sync::Arc;
//! use sextant_api::{Api, ApiOptions};
//! use sextant_model::MemStorage;
//!
//! let api = Api::new(Arc::new(MemStorage::new()), ApiOptions::default());
//! let router: axum::Router = api.router();
//! # let _ = router;
//! ```

pub mod alertmanager;
mod ast_json;
mod error;
mod federate;
mod json;
mod ops;
mod params;
mod providers;
mod pushgateway;
mod remote;
mod series_cache;
mod server;
mod v1;

pub use error::Error;
pub use providers::{
    ActiveTarget, AdminStorage, Alert, AlertingRuleStatus, DroppedTarget, NoRules, NoTargets, RuleGroup, RuleStatus,
    RulesProvider, TargetMetadata, TargetsProvider,
};
pub use server::{Api, ApiOptions, BuildInfo, ReloadHook, Storage};

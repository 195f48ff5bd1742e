//! Sextant's alerting.
//!
//! Today this crate holds the pure (no IO, no async) core of an Alertmanager, in
//! [`alertmanager`]:
//!
//! - [`alertmanager::Config`]: `alertmanager.yml` decoded strictly (unknown fields rejected)
//!   and validated with Alertmanager's messages; global defaults applied to receivers;
//! - [`alertmanager::Matcher`]: label matchers with Go-compatible anchored regexes, and both
//!   matcher parsers (classic 0.25, UTF-8 0.27+) with the fallback between them
//!   ([`alertmanager::parse_matchers`]);
//! - [`alertmanager::Route`]: the routing tree; [`alertmanager::Route::matches`] gives the
//!   routes an alert goes to, each with its effective [`alertmanager::RouteOpts`], route key
//!   and group key;
//! - [`alertmanager::inhibited_by`]: whether a set of firing alerts inhibits an alert;
//! - [`alertmanager::TimeInterval`]: time intervals, validated and evaluated (in UTC, or at a
//!   zone offset the caller resolves: there is no time zone database here).
//!
//! Not here yet: rule evaluation, templates and the notifier (Prometheus side), and the
//! Alertmanager's dispatcher, silences, notification log, receivers' sending and API.
//!
//! ```
//! use sextant_alerting::alertmanager::Config;
//! use sextant_model::Labels;
//!
//! let config = Config::parse(r#"
//! route:
//!   receiver: default
//!   group_by: [alertname]
//!   routes:
//!   - matchers: ['severity="page"']
//!     receiver: pager
//! receivers: [{name: default}, {name: pager}]
//! "#)?;
//! let alert = Labels::from_pairs([("alertname", "DiskFull"), ("severity", "page")]);
//! let routes = config.route.matches(&alert);
//! assert_eq!(routes[0].opts.receiver, "pager");
//! assert_eq!(routes[0].group_key(&alert), r#"{}/{severity="page"}:{alertname="DiskFull"}"#);
//! # Ok::<(), sextant_alerting::Error>(())
//! ```

pub mod alertmanager;
mod error;
pub mod rules;
pub mod template;

pub use error::{ConfigError, Error};

//! Sextant's alerting.
//!
//! Today this crate holds an Alertmanager, in [`alertmanager`]. Its core is synchronous and
//! driven by the caller's clock:
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
//! - [`alertmanager::Dispatcher`]: the alert store, aggregation groups with `group_wait` /
//!   `group_interval` / `repeat_interval` timers, and the notification pipeline (inhibition,
//!   time intervals, silences, dedup against the [`alertmanager::NotificationLog`]);
//!   [`alertmanager::Dispatcher::tick`] returns the [`alertmanager::Notification`]s due at a
//!   time and [`alertmanager::Dispatcher::next_deadline`] says when to call it again;
//! - [`alertmanager::Silences`] and the [`alertmanager::NotificationLog`], persisted as atomic
//!   snapshots under `--storage.path`, so a restart loses no silence and repeats nothing;
//! - notification bodies: [`alertmanager::webhook_body`] (version 4),
//!   [`alertmanager::slack_body`], [`alertmanager::pagerduty_body`] with the default templates.
//!
//! At the edge (tokio): the [`alertmanager::Notifier`] seam, [`alertmanager::HttpNotifier`],
//! and [`alertmanager::send_with_retries`] with per-integration [`alertmanager::NotifyMetrics`].
//!
//! Not here yet: rule evaluation and the Prometheus-side notifier; a Go template engine (user
//! templates, templated integration fields), e-mail, Microsoft Teams and the other
//! integrations' sending.
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
//!
//! // Grouping and timers in virtual time: the group waits group_wait (30s) before notifying.
//! use sextant_alerting::alertmanager::{Dispatcher, PostableAlert};
//! let mut dispatcher = Dispatcher::new(config);
//! let labels = vec![("alertname".to_string(), "DiskFull".to_string())];
//! dispatcher.put_alerts(vec![PostableAlert { labels, ..PostableAlert::default() }], 0)?;
//! assert_eq!(dispatcher.next_deadline(), Some(30_000));
//! assert!(dispatcher.tick(29_999).is_empty());
//! // The default receiver has no integrations: the flush runs, nothing is sent.
//! assert!(dispatcher.tick(30_000).is_empty());
//! # Ok::<(), sextant_alerting::Error>(())
//! ```

pub mod alertmanager;
mod error;

pub use error::{ConfigError, Error};

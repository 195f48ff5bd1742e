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
//!   [`alertmanager::slack_body`], [`alertmanager::pagerduty_body`],
//!   [`alertmanager::msteams_body`] and the e-mail's [`alertmanager::email_html`], every field a
//!   template run over [`alertmanager::template_data`] with a [`template::TemplateSet`]
//!   (Sextant's defaults under Alertmanager's names plus the `templates:` files,
//!   [`alertmanager::Config::load_templates`]).
//!
//! At the edge (tokio): the [`alertmanager::Notifier`] seam, [`alertmanager::HttpNotifier`],
//! and [`alertmanager::send_with_retries`] with per-integration [`alertmanager::NotifyMetrics`].
//!
//!
//! The Prometheus rule side, in [`rules`] and [`template`]:
//!
//! - [`rules::parse_rule_file`]: rule files (groups with `interval`, `limit`, `query_offset`,
//!   `labels`; recording and alerting rules) validated with Prometheus' messages;
//! - [`rules::Group`]: a group evaluated at one timestamp per interval
//!   ([`rules::Group::eval`], synchronous, over `Queryable`/`Appendable` and a
//!   [`rules::QueryEngine`] that `sextant_promql::Engine` implements): recording rules,
//!   the alert state machine with `for`/`keep_firing_for`, `ALERTS`/`ALERTS_FOR_STATE`,
//!   staleness, `limit`, `for` state restoration, rule health and self-metrics;
//! - [`template::Template`]: the Go `text/template` subset of alert templates, with
//!   Prometheus' functions and Go's number formatting; the same engine runs Alertmanager's
//!   notification templates ([`template::TemplateSet`], `{{ define }}`/`{{ template }}`);
//! - [`rules::run_rule_tests`]: promtool's rule unit tests;
//! - [`rules::Group::alerts_to_send`] and [`rules::encode_alerts_v2`]: the alerts due for
//!   Alertmanager (resend delay, `endsAt` lease) and their API v2 JSON body.
//!
//! Not here yet: the rule manager (the `sextant` binary drives groups on their interval and
//! sends with its notifier), and sending for integrations other than webhook, e-mail, Slack,
//! PagerDuty and Microsoft Teams.
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
//!
//! Rules:
//!
//! ```
//! use sextant_alerting::rules::{parse_rule_file, Group, GroupOptions, RuleFileOptions, AlertState};
//! use sextant_model::{Appendable, Labels, MemStorage};
//!
//! let file = parse_rule_file(r#"
//! groups:
//! - name: node
//!   rules:
//!   - alert: Down
//!     expr: up == 0
//!     for: 1m
//!     annotations: {summary: '{{ $labels.job }} is down ({{ $value }})'}
//! "#, &RuleFileOptions::default())?;
//! let db = MemStorage::new();
//! let mut app = db.appender();
//! for t in [0, 60_000] {
//!     app.append(&Labels::from_pairs([("__name__", "up"), ("job", "node")]), t, 0.0).unwrap();
//! }
//! app.commit().unwrap();
//! let engine = sextant_promql::Engine::default();
//! let mut group = Group::new("rules.yml", &file.groups[0], GroupOptions::default());
//! group.eval(0, &db, &db, &engine);
//! group.eval(60_000, &db, &db, &engine);
//! let alert = group.rules()[0].alerts()[0];
//! assert_eq!(alert.state, AlertState::Firing);
//! assert_eq!(alert.annotations.get("summary"), Some("node is down (0)"));
//! # Ok::<(), sextant_alerting::Error>(())
//! ```

pub mod alertmanager;
mod error;
pub mod rules;
pub mod template;

pub use error::{ConfigError, Error};

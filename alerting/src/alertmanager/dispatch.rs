//! The dispatcher (`dispatch/dispatch.go`) and the notification pipeline up to sending
//! (`notify/notify.go`): alerts are grouped per route and group key; each group is flushed
//! after `group_wait` and then every `group_interval`; a flush runs inhibition, time
//! intervals, silences and the dedup stage against the notification log, and yields one
//! [`Notification`] per integration that has something to say.
//!
//! Everything here is synchronous and driven by the caller's clock: [`Dispatcher::tick`]
//! does the work due at a time and [`Dispatcher::next_deadline`] says when to call it next.
//! Sending is the caller's business; it reports back with [`Dispatcher::notified`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use sextant_model::Labels;

use super::alert::{Alert, PostableAlert};
use super::config::Config;
use super::inhibit::inhibited_by;
use super::nflog::{LogEntry, LogKey, NotificationLog};
use super::receivers::Receiver;
use super::route::{Route, RouteOpts};
use super::silence::Silences;
use crate::Error;

/// One integration of a receiver: its type and position among the receiver's integrations
/// of that type (`webhook` 0, `webhook` 1, `email` 0, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub kind: &'static str,
    pub index: usize,
    pub send_resolved: bool,
}

/// The integrations of a receiver, in Alertmanager's order.
pub fn integrations(receiver: &Receiver) -> Vec<Integration> {
    fn add<T>(out: &mut Vec<Integration>, kind: &'static str, list: &[Option<T>], sr: impl Fn(&T) -> bool) {
        for (index, config) in list.iter().enumerate() {
            let send_resolved = config.as_ref().is_some_and(&sr);
            out.push(Integration { kind, index, send_resolved });
        }
    }
    let r = receiver;
    let mut out = Vec::new();
    add(&mut out, "email", &r.email_configs, |c| c.send_resolved());
    add(&mut out, "pagerduty", &r.pagerduty_configs, |c| c.send_resolved());
    add(&mut out, "webhook", &r.webhook_configs, |c| c.send_resolved());
    add(&mut out, "opsgenie", &r.opsgenie_configs, |c| c.send_resolved());
    add(&mut out, "wechat", &r.wechat_configs, |c| c.send_resolved());
    add(&mut out, "slack", &r.slack_configs, |c| c.send_resolved());
    add(&mut out, "victorops", &r.victorops_configs, |c| c.send_resolved());
    add(&mut out, "pushover", &r.pushover_configs, |c| c.send_resolved());
    add(&mut out, "sns", &r.sns_configs, |c| c.send_resolved());
    add(&mut out, "telegram", &r.telegram_configs, |c| c.send_resolved());
    add(&mut out, "discord", &r.discord_configs, |c| c.send_resolved());
    add(&mut out, "webex", &r.webex_configs, |c| c.send_resolved());
    add(&mut out, "msteams", &r.msteams_configs, |c| c.send_resolved());
    add(&mut out, "msteamsv2", &r.msteamsv2_configs, |c| c.send_resolved());
    add(&mut out, "jira", &r.jira_configs, |c| c.send_resolved());
    add(&mut out, "rocketchat", &r.rocketchat_configs, |c| c.send_resolved());
    add(&mut out, "mattermost", &r.mattermost_configs, |c| c.send_resolved());
    add(&mut out, "incidentio", &r.incidentio_configs, |c| c.send_resolved());
    out
}

/// An alert as it goes out in a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifiedAlert {
    pub alert: Alert,
    /// Resolved at the flush; a firing alert's end is not shown (Go's zero time).
    pub resolved: bool,
}

/// What one integration must send for one flush of one aggregation group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Identifies the flush, for [`Dispatcher::notified`].
    pub flush_id: u64,
    pub receiver: String,
    pub integration: Integration,
    pub group_key: String,
    pub group_labels: Labels,
    /// Sorted by `job`, `instance`, then label set; resolved alerts already removed when the
    /// integration does not send them. Never empty.
    pub alerts: Vec<NotifiedAlert>,
    /// The flush time.
    pub now_ms: i64,
    /// How long sending may take, retries included: `max(group_interval, 10s)`.
    pub timeout_ms: i64,
    /// Written to the notification log when the send succeeds.
    pub log_key: LogKey,
    pub log_entry: LogEntry,
}

impl Notification {
    /// `firing` if any alert fires, else `resolved`.
    pub fn status(&self) -> &'static str {
        if self.alerts.iter().any(|a| !a.resolved) {
            "firing"
        } else {
            "resolved"
        }
    }
}

/// The state the API shows for an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertStatus {
    pub silenced_by: Vec<String>,
    pub inhibited_by: Vec<String>,
    /// The receivers of the routes the alert goes to.
    pub receivers: Vec<String>,
}

/// A group as the API shows it (`GET /api/v2/alerts/groups`).
#[derive(Debug, Clone)]
pub struct GroupView<'a> {
    pub receiver: &'a str,
    pub labels: &'a Labels,
    pub alerts: Vec<&'a Alert>,
}

#[derive(Debug)]
struct InFlight {
    id: u64,
    remaining: usize,
    failed: bool,
    /// The alerts' `updated_at` at the flush.
    snapshot: Vec<(u64, i64)>,
}

#[derive(Debug)]
struct AggrGroup {
    opts: RouteOpts,
    key: String,
    labels: Labels,
    alerts: BTreeMap<u64, Alert>,
    next_flush_ms: i64,
    has_flushed: bool,
    in_flight: Option<InFlight>,
}

/// Retention of notification log entries, capped as by `--data.retention` (120h).
const DATA_RETENTION_MS: i64 = 120 * 3600 * 1000;

/// The Alertmanager's alert store, aggregation groups, silences and notification log.
#[derive(Debug)]
pub struct Dispatcher {
    config: Config,
    alerts: HashMap<u64, Alert>,
    /// By (route id, group key).
    groups: BTreeMap<(String, String), AggrGroup>,
    silences: Silences,
    nflog: NotificationLog,
    next_flush_id: u64,
}

impl Dispatcher {
    /// How many group flushes have run (each ran the pipeline, whether or not it sent).
    pub fn flushes(&self) -> u64 {
        self.next_flush_id - 1
    }

    /// A dispatcher keeping silences and the notification log in memory.
    pub fn new(config: Config) -> Dispatcher {
        Dispatcher::with_state(config, Silences::new(), NotificationLog::new())
    }

    /// A dispatcher keeping silences and the notification log under `dir`
    /// (`--storage.path`), picking up what a previous run left there.
    pub fn open(config: Config, dir: &Path) -> Result<Dispatcher, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::storage(dir, e))?;
        let silences = Silences::open(&dir.join("silences"))?;
        let nflog = NotificationLog::open(&dir.join("nflog"))?;
        Ok(Dispatcher::with_state(config, silences, nflog))
    }

    fn with_state(config: Config, silences: Silences, nflog: NotificationLog) -> Dispatcher {
        Dispatcher { config, alerts: HashMap::new(), groups: BTreeMap::new(), silences, nflog, next_flush_id: 1 }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn silences(&self) -> &Silences {
        &self.silences
    }

    pub fn silences_mut(&mut self) -> &mut Silences {
        &mut self.silences
    }

    pub fn nflog(&self) -> &NotificationLog {
        &self.nflog
    }

    /// Replaces the configuration (`/-/reload`): groups are rebuilt from the stored alerts;
    /// the notification log keeps already-notified groups from notifying again.
    pub fn reload(&mut self, config: Config, now_ms: i64) {
        self.config = config;
        self.groups.clear();
        let alerts: Vec<Alert> = self.alerts.values().cloned().collect();
        for alert in alerts {
            self.route(alert, now_ms);
        }
    }

    /// Receives alerts (`POST /api/v2/alerts`). Valid alerts are stored and grouped even
    /// when others are rejected; the error joins the rejections' messages.
    pub fn put_alerts(&mut self, alerts: Vec<PostableAlert>, now_ms: i64) -> Result<(), Error> {
        let resolve_timeout = self.config.global.resolve_timeout().as_millis() as i64;
        let mut errors = Vec::new();
        for postable in alerts {
            match Alert::from_postable(postable, now_ms, resolve_timeout) {
                Ok(alert) => self.put(alert, now_ms),
                Err(e) => errors.push(e.message().to_string()),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(errors.join("; ")))
        }
    }

    /// Stores one validated alert, merged with an overlapping stored copy.
    pub fn put(&mut self, alert: Alert, now_ms: i64) {
        let fp = alert.fingerprint();
        let merged = match self.alerts.get(&fp) {
            Some(old) if old.overlaps(&alert) => old.merge(&alert),
            _ => alert,
        };
        self.alerts.insert(fp, merged.clone());
        self.route(merged, now_ms);
    }

    fn route(&mut self, alert: Alert, now_ms: i64) {
        let fp = alert.fingerprint();
        for route in self.config.route.matches(&alert.labels) {
            let key = route.group_key(&alert.labels);
            let group = self.groups.entry((route.id().to_string(), key.clone())).or_insert_with(|| AggrGroup {
                opts: route.opts.clone(),
                key,
                labels: route.group_labels(&alert.labels),
                alerts: BTreeMap::new(),
                next_flush_ms: now_ms + route.opts.group_wait.as_millis() as i64,
                has_flushed: false,
                in_flight: None,
            });
            // An alert older than group_wait (an Alertmanager restart): flush at once.
            if !group.has_flushed && alert.starts_at_ms + (group.opts.group_wait.as_millis() as i64) < now_ms {
                group.next_flush_ms = group.next_flush_ms.min(now_ms);
            }
            group.alerts.insert(fp, alert.clone());
        }
    }

    /// The earliest time [`Dispatcher::tick`] has work to do.
    pub fn next_deadline(&self) -> Option<i64> {
        self.groups.values().filter(|g| g.in_flight.is_none()).map(|g| g.next_flush_ms).min()
    }

    /// Flushes every group due at `now_ms` and returns what must be sent. Integrations that
    /// need no send (nothing changed; or only resolved alerts with `send_resolved: false`,
    /// which counts as a success) produce nothing.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Notification> {
        let mut out = Vec::new();
        let due: Vec<(String, String)> = self
            .groups
            .iter()
            .filter(|(_, g)| g.in_flight.is_none() && g.next_flush_ms <= now_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for id in due {
            let flush_id = self.next_flush_id;
            self.next_flush_id += 1;
            let Some(group) = self.groups.get_mut(&id) else { continue };
            let interval = group.opts.group_interval.as_millis() as i64;
            group.next_flush_ms = (group.next_flush_ms + interval).max(now_ms + 1);
            group.has_flushed = true;
            let snapshot: Vec<(u64, i64)> = group.alerts.iter().map(|(fp, a)| (*fp, a.updated_at_ms)).collect();
            let alerts: Vec<Alert> = group.alerts.values().cloned().collect();
            let (opts, key, labels) = (group.opts.clone(), group.key.clone(), group.labels.clone());
            let notifications = self.flush(flush_id, &opts, &key, &labels, alerts, now_ms);
            let Some(group) = self.groups.get_mut(&id) else { continue };
            if notifications.is_empty() {
                delete_resolved_unmodified(group, &snapshot, now_ms);
            } else {
                group.in_flight =
                    Some(InFlight { id: flush_id, remaining: notifications.len(), failed: false, snapshot });
            }
            out.extend(notifications);
        }
        self.groups.retain(|_, g| !g.alerts.is_empty() || g.in_flight.is_some());
        out
    }

    /// The pipeline of one flush: inhibit → time intervals → silence → per integration dedup
    /// and the `send_resolved` filter.
    fn flush(
        &mut self,
        flush_id: u64,
        opts: &RouteOpts,
        group_key: &str,
        group_labels: &Labels,
        alerts: Vec<Alert>,
        now_ms: i64,
    ) -> Vec<Notification> {
        let firing_sources: Vec<&Labels> =
            self.alerts.values().filter(|a| !a.resolved_at(now_ms)).map(|a| &a.labels).collect();
        let mut alerts: Vec<Alert> = alerts
            .into_iter()
            .filter(|a| inhibited_by(&self.config.inhibit_rules, firing_sources.iter().copied(), &a.labels).is_none())
            .collect();
        if self.time_muted(opts, now_ms) {
            return Vec::new();
        }
        alerts.retain(|a| self.silences.silenced_by(&a.labels, now_ms).is_empty());
        if alerts.is_empty() {
            return Vec::new();
        }
        sort_alerts(&mut alerts);
        let firing: BTreeSet<u64> = alerts.iter().filter(|a| !a.resolved_at(now_ms)).map(Alert::fingerprint).collect();
        let resolved: BTreeSet<u64> = alerts.iter().filter(|a| a.resolved_at(now_ms)).map(Alert::fingerprint).collect();
        let Some(receiver) = self.config.receivers.iter().find(|r| r.name == opts.receiver) else { return Vec::new() };
        let repeat = opts.repeat_interval.as_millis() as i64;
        let mut out = Vec::new();
        for integration in integrations(receiver) {
            let log_key = LogKey {
                group_key: group_key.to_string(),
                receiver: receiver.name.clone(),
                integration: integration.kind.to_string(),
                index: integration.index,
            };
            let entry = self.nflog.get(&log_key, now_ms);
            if !LogEntry::needs_update(entry, &firing, &resolved, integration.send_resolved, repeat, now_ms) {
                continue;
            }
            let log_entry = LogEntry {
                timestamp_ms: now_ms,
                firing: firing.clone(),
                resolved: resolved.clone(),
                expires_at_ms: now_ms + (2 * repeat).min(DATA_RETENTION_MS),
            };
            let notified: Vec<NotifiedAlert> = alerts
                .iter()
                .map(|a| NotifiedAlert { alert: a.clone(), resolved: a.resolved_at(now_ms) })
                .filter(|a| integration.send_resolved || !a.resolved)
                .collect();
            if notified.is_empty() {
                // Nothing to send counts as a success (`RetryStage`).
                let _ = self.nflog.log(log_key, log_entry);
                continue;
            }
            out.push(Notification {
                flush_id,
                receiver: receiver.name.clone(),
                integration,
                group_key: group_key.to_string(),
                group_labels: group_labels.clone(),
                alerts: notified,
                now_ms,
                timeout_ms: (opts.group_interval.as_millis() as i64).max(10_000),
                log_key,
                log_entry,
            });
        }
        out
    }

    fn time_muted(&self, opts: &RouteOpts, now_ms: i64) -> bool {
        let named = |name: &String| {
            self.config.time_intervals.iter().chain(&self.config.mute_time_intervals).find(|t| &t.name == name)
        };
        let inside = |name: &String| named(name).is_some_and(|t| t.contains(now_ms));
        if opts.mute_time_intervals.iter().any(inside) {
            return true;
        }
        !opts.active_time_intervals.is_empty() && !opts.active_time_intervals.iter().any(inside)
    }

    /// Reports the outcome of sending `notification`: a success is written to the
    /// notification log (an error writing it is returned); once every notification of a
    /// flush succeeded, resolved alerts not updated since are dropped from the group.
    pub fn notified(&mut self, notification: &Notification, success: bool, now_ms: i64) -> Result<(), Error> {
        let logged =
            if success { self.nflog.log(notification.log_key.clone(), notification.log_entry.clone()) } else { Ok(()) };
        for group in self.groups.values_mut() {
            let Some(flight) = group.in_flight.as_mut().filter(|f| f.id == notification.flush_id) else { continue };
            flight.remaining = flight.remaining.saturating_sub(1);
            flight.failed |= !success;
            if flight.remaining == 0 {
                let flight = group.in_flight.take();
                if let Some(flight) = flight.filter(|f| !f.failed) {
                    delete_resolved_unmodified(group, &flight.snapshot, now_ms);
                }
            }
        }
        self.groups.retain(|_, g| !g.alerts.is_empty() || g.in_flight.is_some());
        logged
    }

    /// Housekeeping (`--alerts.gc-interval`, maintenance): drops resolved alerts from the
    /// store, expired silences and log entries.
    pub fn gc(&mut self, now_ms: i64) -> Result<(), Error> {
        self.alerts.retain(|_, a| !a.resolved_at(now_ms));
        self.silences.gc(now_ms)?;
        self.nflog.gc(now_ms)?;
        Ok(())
    }

    /// Every stored alert, in no particular order.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    /// The API's view of an alert at `now_ms`: silences, inhibiting alerts, receivers.
    pub fn status(&self, alert: &Alert, now_ms: i64) -> AlertStatus {
        let firing: Vec<&Labels> = self.alerts.values().filter(|a| !a.resolved_at(now_ms)).map(|a| &a.labels).collect();
        let inhibited_by = inhibited_by(&self.config.inhibit_rules, firing.iter().copied(), &alert.labels)
            .map(|src| vec![format!("{:016x}", super::alert::fingerprint(src))])
            .unwrap_or_default();
        let mut receivers: Vec<String> = Vec::new();
        for route in self.config.route.matches(&alert.labels) {
            let route: &Route = route;
            if !receivers.contains(&route.opts.receiver) {
                receivers.push(route.opts.receiver.clone());
            }
        }
        AlertStatus { silenced_by: self.silences.silenced_by(&alert.labels, now_ms), inhibited_by, receivers }
    }

    /// The aggregation groups, by route and group key.
    pub fn groups(&self) -> Vec<GroupView<'_>> {
        self.groups
            .values()
            .map(|g| GroupView { receiver: &g.opts.receiver, labels: &g.labels, alerts: g.alerts.values().collect() })
            .collect()
    }
}

fn delete_resolved_unmodified(group: &mut AggrGroup, snapshot: &[(u64, i64)], now_ms: i64) {
    for (fp, updated_at) in snapshot {
        if group.alerts.get(fp).is_some_and(|a| a.updated_at_ms == *updated_at && a.resolved_at(now_ms)) {
            group.alerts.remove(fp);
        }
    }
}

/// `types.AlertSlice` order: by `job`, then `instance` (alerts having the label first), then
/// by label set (`LabelSet.Before`).
pub fn sort_alerts(alerts: &mut [Alert]) {
    alerts.sort_by(|a, b| alert_order(&a.labels, &b.labels));
}

fn alert_order(a: &Labels, b: &Labels) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for key in ["job", "instance"] {
        match (a.get(key), b.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    let names: BTreeSet<&str> = a.iter().chain(b.iter()).map(|l| &*l.name).collect();
    for name in names {
        match (a.get(name), b.get(name)) {
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    Ordering::Equal
}

//! Sending notifications (`notify/notify.go` retry stage, `notify/webhook`): the
//! [`Notifier`] seam, its HTTP implementation, retries with exponential backoff bounded by
//! a deadline, and per-integration metrics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;

use super::config::Config;
use super::dispatch::Notification;
use super::email::send_email;
use super::integrations::{msteams_body, pagerduty_body, slack_body};
use super::webhook::webhook_body;
use crate::template::TemplateSet;
use crate::Error;

/// Sends one notification once. Errors say whether trying again may help.
#[async_trait]
pub trait Notifier: Send + Sync + std::fmt::Debug {
    async fn notify(&self, notification: &Notification) -> Result<(), Error>;
}

/// The integrations that send: webhook, Slack, PagerDuty v2, Microsoft Teams over HTTP, and
/// e-mail over SMTP (others report an unsupported-integration error).
#[derive(Debug, Clone)]
pub struct HttpNotifier {
    client: reqwest::Client,
    config: Arc<std::sync::RwLock<(Arc<Config>, Arc<TemplateSet>)>>,
    external_url: String,
}

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("Sextant-Alertmanager/", env!("CARGO_PKG_VERSION"));

impl HttpNotifier {
    /// A notifier with the default templates; [`HttpNotifier::set_config`] gives it user
    /// templates.
    pub fn new(config: Arc<Config>, external_url: impl Into<String>) -> HttpNotifier {
        let client = reqwest::Client::builder().user_agent(USER_AGENT).build().unwrap_or_default();
        let templates = Arc::new(TemplateSet::with_defaults());
        HttpNotifier {
            client,
            config: Arc::new(std::sync::RwLock::new((config, templates))),
            external_url: external_url.into(),
        }
    }

    /// Uses `config` and `templates` (from [`Config::load_templates`]) for the notifications
    /// sent from now on (a reload).
    pub fn set_config(&self, config: Arc<Config>, templates: Arc<TemplateSet>) {
        if let Ok(mut current) = self.config.write() {
            *current = (config, templates);
        }
    }

    async fn post(&self, url: &str, body: Vec<u8>, extra_retry: &[u16]) -> Result<(), Error> {
        let integration = "http";
        let response = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| Error::notify(integration, e.without_url().to_string(), true))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let retryable = status >= 500 || extra_retry.contains(&status);
        Err(Error::notify(integration, format!("unexpected status code {status}"), retryable))
    }
}

#[async_trait]
impl Notifier for HttpNotifier {
    async fn notify(&self, n: &Notification) -> Result<(), Error> {
        let (config, templates) = self
            .config
            .read()
            .map(|c| (Arc::clone(&c.0), Arc::clone(&c.1)))
            .map_err(|_| Error::notify("http", "poisoned", false))?;
        let receiver = config.receivers.iter().find(|r| r.name == n.receiver);
        let unsupported = || Error::notify(n.integration.kind, "integration not supported for sending", false);
        match n.integration.kind {
            "webhook" => {
                let config = receiver
                    .and_then(|r| r.webhook_configs.get(n.integration.index))
                    .and_then(|c| c.as_ref())
                    .ok_or_else(unsupported)?;
                let url = match (&config.url, &config.url_file) {
                    (Some(url), _) => url.to_string(),
                    (None, Some(file)) => std::fs::read_to_string(&**file)
                        .map_err(|e| Error::notify("webhook", format!("reading url_file: {e}"), false))?
                        .trim()
                        .to_string(),
                    (None, None) => return Err(unsupported()),
                };
                let body = webhook_body(n, &self.external_url, config.max_alerts.unwrap_or(0) as usize);
                self.post(&url, body, &[]).await
            }
            "email" => {
                let config = receiver
                    .and_then(|r| r.email_configs.get(n.integration.index))
                    .and_then(|c| c.as_ref())
                    .ok_or_else(unsupported)?;
                send_email(n, config, &self.external_url, &templates).await
            }
            "slack" => {
                let config = receiver
                    .and_then(|r| r.slack_configs.get(n.integration.index))
                    .and_then(|c| c.as_ref())
                    .ok_or_else(unsupported)?;
                let url = match (&config.api_url, &config.api_url_file) {
                    (Some(url), _) => url.to_string(),
                    (None, Some(file)) => std::fs::read_to_string(&**file)
                        .map_err(|e| Error::notify("slack", format!("reading api_url_file: {e}"), false))?
                        .trim()
                        .to_string(),
                    (None, None) => return Err(unsupported()),
                };
                let body = slack_body(n, config, &self.external_url, &templates)?;
                self.post(&url, body, &[]).await
            }
            "pagerduty" => {
                let config = receiver
                    .and_then(|r| r.pagerduty_configs.get(n.integration.index))
                    .and_then(|c| c.as_ref())
                    .ok_or_else(unsupported)?;
                let url = config.url.as_ref().map(|u| u.to_string()).ok_or_else(unsupported)?;
                let body = pagerduty_body(n, config, &self.external_url, &templates)?;
                self.post(&url, body, &[429]).await
            }
            "msteams" => {
                let config = receiver
                    .and_then(|r| r.msteams_configs.get(n.integration.index))
                    .and_then(|c| c.as_ref())
                    .ok_or_else(unsupported)?;
                let url = match (&config.webhook_url, &config.webhook_url_file) {
                    (Some(url), _) => url.to_string(),
                    (None, Some(file)) => std::fs::read_to_string(&**file)
                        .map_err(|e| Error::notify("msteams", format!("read webhook_url_file: {e}"), false))?
                        .trim()
                        .to_string(),
                    (None, None) => return Err(unsupported()),
                };
                let body = msteams_body(n, config, &self.external_url, &templates)?;
                self.post(&url, body, &[]).await
            }
            _ => Err(unsupported()),
        }
    }
}

/// Sends with retries (`RetryStage`): exponential backoff from 500 ms (×1.5, at most 60 s)
/// until success, a non-retryable error, or `deadline` has passed; every attempt is counted
/// in `metrics`.
pub async fn send_with_retries(
    notifier: &dyn Notifier,
    notification: &Notification,
    deadline: Duration,
    metrics: &NotifyMetrics,
) -> Result<(), Error> {
    let kind = notification.integration.kind;
    let started = Instant::now();
    let mut backoff = Duration::from_millis(500);
    metrics.count(kind, |c| c.notifications += 1);
    loop {
        let attempt = Instant::now();
        metrics.count(kind, |c| c.requests += 1);
        let result = notifier.notify(notification).await;
        metrics.observe_latency(kind, attempt.elapsed());
        let err = match result {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        metrics.count(kind, |c| c.requests_failed += 1);
        let retryable = matches!(err, Error::Notify { retryable: true, .. });
        if !retryable || started.elapsed() + backoff > deadline {
            metrics.count(kind, |c| c.notifications_failed += 1);
            return Err(err);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 3 / 2).min(Duration::from_secs(60));
    }
}

/// Alertmanager's latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 5] = [1.0, 5.0, 10.0, 15.0, 20.0];

#[derive(Debug, Default, Clone)]
struct Counters {
    notifications: u64,
    notifications_failed: u64,
    requests: u64,
    requests_failed: u64,
    latency_buckets: [u64; 5],
    latency_sum: f64,
    latency_count: u64,
}

/// Per-integration counters under Alertmanager's names (`alertmanager_notifications_total`,
/// `alertmanager_notifications_failed_total`, `alertmanager_notification_requests_total`,
/// `alertmanager_notification_requests_failed_total`,
/// `alertmanager_notification_latency_seconds`).
#[derive(Debug, Default)]
pub struct NotifyMetrics {
    by_integration: Mutex<BTreeMap<&'static str, Counters>>,
}

impl NotifyMetrics {
    pub fn new() -> NotifyMetrics {
        NotifyMetrics::default()
    }

    fn count(&self, kind: &'static str, f: impl FnOnce(&mut Counters)) {
        if let Ok(mut map) = self.by_integration.lock() {
            f(map.entry(kind).or_default());
        }
    }

    fn observe_latency(&self, kind: &'static str, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        self.count(kind, |c| {
            for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
                if secs <= *le {
                    c.latency_buckets[i] += 1;
                }
            }
            c.latency_sum += secs;
            c.latency_count += 1;
        });
    }

    /// `(notifications, failed)` for an integration type.
    pub fn totals(&self, kind: &str) -> (u64, u64) {
        let map = self.by_integration.lock().map(|m| m.clone()).unwrap_or_default();
        map.get(kind).map_or((0, 0), |c| (c.notifications, c.notifications_failed))
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let map = self.by_integration.lock().map(|m| m.clone()).unwrap_or_default();
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, get: &dyn Fn(&Counters) -> u64| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for (kind, c) in &map {
                out.push_str(&format!("{name}{{integration=\"{kind}\"}} {}\n", get(c)));
            }
        };
        counter(&mut out, "alertmanager_notifications_total", "The total number of attempted notifications.", &|c| {
            c.notifications
        });
        counter(
            &mut out,
            "alertmanager_notifications_failed_total",
            "The total number of failed notifications.",
            &|c| c.notifications_failed,
        );
        counter(
            &mut out,
            "alertmanager_notification_requests_total",
            "The total number of attempted notification requests.",
            &|c| c.requests,
        );
        counter(
            &mut out,
            "alertmanager_notification_requests_failed_total",
            "The total number of failed notification requests.",
            &|c| c.requests_failed,
        );
        let name = "alertmanager_notification_latency_seconds";
        out.push_str(&format!("# HELP {name} The latency of notifications in seconds.\n# TYPE {name} histogram\n"));
        for (kind, c) in &map {
            for (le, n) in LATENCY_BUCKETS.iter().zip(c.latency_buckets) {
                out.push_str(&format!("{name}_bucket{{integration=\"{kind}\",le=\"{le}\"}} {n}\n"));
            }
            out.push_str(&format!("{name}_bucket{{integration=\"{kind}\",le=\"+Inf\"}} {}\n", c.latency_count));
            out.push_str(&format!("{name}_sum{{integration=\"{kind}\"}} {}\n", c.latency_sum));
            out.push_str(&format!("{name}_count{{integration=\"{kind}\"}} {}\n", c.latency_count));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::alertmanager::{Dispatcher, PostableAlert};

    #[derive(Debug)]
    struct Flaky {
        failures: usize,
        retryable: bool,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl Notifier for Flaky {
        async fn notify(&self, _: &Notification) -> Result<(), Error> {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
                Err(Error::notify("webhook", "boom", self.retryable))
            } else {
                Ok(())
            }
        }
    }

    fn notification() -> Notification {
        let config = Config::parse("route: {receiver: r, group_wait: 0s}\nreceivers: [{name: r, webhook_configs: [{url: 'http://127.0.0.1:1/'}]}]").unwrap();
        let mut d = Dispatcher::new(config);
        let alert = PostableAlert { labels: vec![("a".into(), "b".into())], ..PostableAlert::default() };
        d.put_alerts(vec![alert], 0).unwrap();
        d.tick(0).pop().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_success_or_deadline() {
        let check = |failures, retryable, deadline_s, ok: bool, calls: usize| async move {
            let notifier = Flaky { failures, retryable, calls: AtomicUsize::new(0) };
            let metrics = NotifyMetrics::new();
            let n = notification();
            let got = send_with_retries(&notifier, &n, Duration::from_secs(deadline_s), &metrics).await;
            assert_eq!(got.is_ok(), ok, "{failures} {retryable} {deadline_s}");
            assert_eq!(notifier.calls.load(Ordering::SeqCst), calls);
            assert_eq!(metrics.totals("webhook"), (1, u64::from(!ok)));
        };
        check(0, true, 10, true, 1).await;
        check(3, true, 10, true, 4).await;
        check(3, false, 10, false, 1).await;
        check(100, true, 5, false, 5).await;
        let metrics = NotifyMetrics::new();
        let notifier = Flaky { failures: 1, retryable: true, calls: AtomicUsize::new(0) };
        send_with_retries(&notifier, &notification(), Duration::from_secs(5), &metrics).await.unwrap();
        let text = metrics.render();
        assert!(text.contains("alertmanager_notifications_total{integration=\"webhook\"} 1\n"), "{text}");
        assert!(text.contains("alertmanager_notification_requests_failed_total{integration=\"webhook\"} 1\n"));
    }
}

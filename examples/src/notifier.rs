//! Prometheus' notifier: alerts of the rule groups go to every Alertmanager discovered from
//! `alerting.alertmanagers` (static and file/HTTP/Docker discovery, `relabel_configs` on the
//! targets, `scheme`, `path_prefix`, `timeout`, the HTTP client options: TLS, basic auth,
//! authorization), after external labels and `alerting.alert_relabel_configs`.
//!
//! Alerts wait in one bounded queue (the oldest are dropped when it is full) and a sender task
//! posts them in batches of 64 to all Alertmanagers in parallel, so a dead Alertmanager never
//! delays rule evaluation.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sextant_alerting::rules::{encode_alerts_v2, Notification};
use sextant_model::{Labels, LabelsBuilder};
use sextant_scrape::{
    alertmanager_discoverers, relabel, AlertmanagerConfig, Config, Discoverer, HttpClient, TargetGroup, ADDRESS_LABEL,
    SCHEME_LABEL,
};
use tokio::task::JoinHandle;

/// Prometheus' `--alertmanager.notification-queue-capacity` default.
const QUEUE_CAPACITY: usize = 10_000;
/// Prometheus 2.42's batch size.
const MAX_BATCH: usize = 64;
/// The label holding the path alerts are posted to.
const ALERTS_PATH_LABEL: &str = "__alerts_path__";
/// How often discoverers are asked whether their source changed.
const DISCOVERY_POLL: Duration = Duration::from_secs(1);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The API v2 URLs of the Alertmanagers in `groups` for one `alerting.alertmanagers` entry, as
/// Prometheus builds them: each target's labels with `__scheme__` and `__alerts_path__`
/// (`path_prefix` joined with `/api/v2/alerts`) set from the configuration and the group's
/// labels, then `relabel_configs`; a dropped target is skipped. Duplicates are removed.
pub fn alertmanager_urls(config: &AlertmanagerConfig, groups: &[TargetGroup]) -> Vec<String> {
    let path = format!("/{}/api/{}/alerts", config.path_prefix.trim_matches('/'), config.api_version);
    let path = path.replace("//", "/");
    let mut urls = Vec::new();
    for group in groups {
        for target in &group.targets {
            let mut b = LabelsBuilder::new(&Labels::empty());
            for (name, value) in &group.labels {
                b.set(name, value);
            }
            b.set(ADDRESS_LABEL, target);
            b.set(SCHEME_LABEL, &config.scheme);
            b.set(ALERTS_PATH_LABEL, &path);
            let Some(labels) = relabel(&b.labels(), &config.relabel_configs) else { continue };
            let address = labels.get(ADDRESS_LABEL).unwrap_or("");
            if address.is_empty() || address.contains('/') {
                continue;
            }
            let url = format!(
                "{}://{address}{}",
                labels.get(SCHEME_LABEL).unwrap_or("http"),
                labels.get(ALERTS_PATH_LABEL).unwrap_or("")
            );
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
    }
    urls
}

/// One `alerting.alertmanagers` entry: its client and the URLs discovery found.
struct AlertmanagerSet {
    config: AlertmanagerConfig,
    client: HttpClient,
    urls: Arc<Mutex<Vec<String>>>,
    discovery: JoinHandle<()>,
}

/// What a configuration decides: the Alertmanager sets, external labels and alert relabeling.
struct Setup {
    sets: Vec<AlertmanagerSet>,
    external_labels: Labels,
    alert_relabel_configs: Vec<sextant_scrape::RelabelConfig>,
}

/// Counters of the notifier (Prometheus' `prometheus_notifications_*`).
#[derive(Debug, Default)]
pub struct NotifierCounters {
    pub sent: AtomicU64,
    pub errors: AtomicU64,
    pub dropped: AtomicU64,
}

/// The notifier: [`Notifier::send`] queues alerts, a task delivers them.
pub struct Notifier {
    setup: Mutex<Setup>,
    queue: Mutex<VecDeque<Notification>>,
    wake: tokio::sync::Notify,
    pub counters: NotifierCounters,
    sender: Mutex<Option<JoinHandle<()>>>,
}

async fn discover(config: AlertmanagerConfig, urls: Arc<Mutex<Vec<String>>>) {
    let discoverers: Vec<Box<dyn Discoverer>> = match alertmanager_discoverers(&config) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("sextant: alertmanager discovery: {e}");
            return;
        }
    };
    let mut groups: Vec<Vec<TargetGroup>> = vec![Vec::new(); discoverers.len()];
    let mut refreshed: Vec<Option<Instant>> = vec![None; discoverers.len()];
    loop {
        let mut any = false;
        for (i, d) in discoverers.iter().enumerate() {
            let due = match refreshed[i] {
                None => true,
                Some(at) => d.changed() || d.refresh_interval().is_some_and(|every| at.elapsed() >= every),
            };
            if !due {
                continue;
            }
            refreshed[i] = Some(Instant::now());
            match d.refresh().await {
                Ok(g) => {
                    groups[i] = g;
                    any = true;
                }
                Err(e) => eprintln!("sextant: alertmanager discovery: {e}"),
            }
        }
        if any {
            let all: Vec<TargetGroup> = groups.iter().flatten().cloned().collect();
            *lock(&urls) = alertmanager_urls(&config, &all);
        }
        tokio::time::sleep(DISCOVERY_POLL).await;
    }
}

impl Notifier {
    /// A notifier without Alertmanagers; [`Notifier::apply`] gives it some. Must run inside
    /// the tokio runtime (it spawns the sender).
    pub fn new() -> Arc<Notifier> {
        let notifier = Arc::new(Notifier {
            setup: Mutex::new(Setup {
                sets: Vec::new(),
                external_labels: Labels::empty(),
                alert_relabel_configs: Vec::new(),
            }),
            queue: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            counters: NotifierCounters::default(),
            sender: Mutex::new(None),
        });
        let task = tokio::spawn(Arc::clone(&notifier).deliver());
        *lock(&notifier.sender) = Some(task);
        notifier
    }

    /// Takes the `alerting` section and external labels of `config`, restarting discovery.
    pub fn apply(&self, config: &Config) -> anyhow::Result<()> {
        let mut sets = Vec::new();
        for am in &config.alerting.alertmanagers {
            let client = HttpClient::new(&am.http, false)?;
            let urls = Arc::new(Mutex::new(Vec::new()));
            let discovery = tokio::spawn(discover(am.clone(), Arc::clone(&urls)));
            sets.push(AlertmanagerSet { config: am.clone(), client, urls, discovery });
        }
        let external_labels =
            Labels::from_pairs(config.global.external_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let old = std::mem::replace(
            &mut *lock(&self.setup),
            Setup { sets, external_labels, alert_relabel_configs: config.alerting.alert_relabel_configs.clone() },
        );
        for set in old.sets {
            set.discovery.abort();
        }
        Ok(())
    }

    /// The Alertmanager URLs currently discovered.
    /// Alerts waiting to be sent.
    pub fn queue_length(&self) -> usize {
        lock(&self.queue).len()
    }

    /// Prometheus' notifier metrics in the text format (totals over all Alertmanagers).
    pub fn metrics_text(&self) -> String {
        let c = &self.counters;
        let mut out = String::new();
        for (name, kind, help, value) in [
            (
                "prometheus_notifications_sent_total",
                "counter",
                "Total number of alerts sent.",
                c.sent.load(Ordering::Relaxed),
            ),
            (
                "prometheus_notifications_errors_total",
                "counter",
                "Total number of errors sending alert notifications.",
                c.errors.load(Ordering::Relaxed),
            ),
            (
                "prometheus_notifications_dropped_total",
                "counter",
                "Total number of alerts dropped due to errors when sending to Alertmanager.",
                c.dropped.load(Ordering::Relaxed),
            ),
            (
                "prometheus_notifications_queue_length",
                "gauge",
                "The number of alert notifications in the queue.",
                self.queue_length() as u64,
            ),
            (
                "prometheus_notifications_queue_capacity",
                "gauge",
                "The capacity of the alert notifications queue.",
                QUEUE_CAPACITY as u64,
            ),
            (
                "prometheus_notifications_alertmanagers_discovered",
                "gauge",
                "The number of alertmanagers discovered and active.",
                self.alertmanagers().len() as u64,
            ),
        ] {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
        }
        out
    }

    pub fn alertmanagers(&self) -> Vec<String> {
        lock(&self.setup).sets.iter().flat_map(|s| lock(&s.urls).clone()).collect()
    }

    /// Queues `alerts` after adding the external labels they lack and applying
    /// `alert_relabel_configs` (which may drop some).
    pub fn send(&self, alerts: Vec<Notification>) {
        if alerts.is_empty() {
            return;
        }
        let (external, relabel_configs) = {
            let setup = lock(&self.setup);
            if setup.sets.is_empty() {
                return;
            }
            (setup.external_labels.clone(), setup.alert_relabel_configs.clone())
        };
        let mut queue = lock(&self.queue);
        for mut alert in alerts {
            if !external.is_empty() {
                let mut b = LabelsBuilder::new(&alert.labels);
                for l in external.iter() {
                    if alert.labels.get(&l.name).is_none_or(str::is_empty) {
                        b.set(&l.name, &l.value);
                    }
                }
                alert.labels = b.labels();
            }
            let Some(labels) = relabel(&alert.labels, &relabel_configs) else { continue };
            alert.labels = labels;
            queue.push_back(alert);
        }
        while queue.len() > QUEUE_CAPACITY {
            queue.pop_front();
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        drop(queue);
        self.wake.notify_one();
    }

    async fn deliver(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            loop {
                let batch: Vec<Notification> = {
                    let mut queue = lock(&self.queue);
                    let n = queue.len().min(MAX_BATCH);
                    queue.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                self.post(batch).await;
            }
        }
    }

    /// Posts one batch to every Alertmanager in parallel; success anywhere counts as sent.
    async fn post(&self, batch: Vec<Notification>) {
        let mut requests = tokio::task::JoinSet::new();
        {
            let setup = lock(&self.setup);
            for set in &setup.sets {
                let alerts: Vec<Notification> = if set.config.alert_relabel_configs.is_empty() {
                    batch.clone()
                } else {
                    batch
                        .iter()
                        .filter_map(|a| {
                            let labels = relabel(&a.labels, &set.config.alert_relabel_configs)?;
                            Some(Notification { labels, ..a.clone() })
                        })
                        .collect()
                };
                if alerts.is_empty() {
                    continue;
                }
                let body = encode_alerts_v2(&alerts, &Labels::empty());
                let timeout = Duration::from_millis(set.config.timeout.as_millis());
                for url in lock(&set.urls).iter() {
                    let request = set
                        .client
                        .client()
                        .post(url)
                        .header("content-type", "application/json")
                        .header("user-agent", concat!("Sextant/", env!("CARGO_PKG_VERSION")))
                        .timeout(timeout)
                        .body(body.clone());
                    let client = set.client.clone();
                    let url = url.clone();
                    requests.spawn(async move {
                        let outcome = match client.decorate(request).await {
                            Ok(r) => match r.send().await {
                                Ok(resp) if resp.status().is_success() => Ok(()),
                                Ok(resp) => Err(format!("HTTP {}", resp.status())),
                                Err(e) => Err(e.to_string()),
                            },
                            Err(e) => Err(e.to_string()),
                        };
                        (url, outcome)
                    });
                }
            }
        }
        let n = batch.len() as u64;
        while let Some(done) = requests.join_next().await {
            match done {
                Ok((_, Ok(()))) => {
                    self.counters.sent.fetch_add(n, Ordering::Relaxed);
                }
                Ok((url, Err(e))) => {
                    self.counters.errors.fetch_add(n, Ordering::Relaxed);
                    eprintln!("sextant: sending alerts to {url}: {e}");
                }
                Err(_) => {}
            }
        }
    }

    /// Stops discovery and delivery.
    pub fn stop(&self) {
        for set in lock(&self.setup).sets.drain(..) {
            set.discovery.abort();
        }
        if let Some(task) = lock(&self.sender).take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Targets and group labels of one discovered group.
    type Group<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

    fn check(yaml: &str, groups: &[Group<'_>], want: &[&str]) {
        let config: AlertmanagerConfig = serde_yaml_ng::from_str(yaml).unwrap();
        let groups: Vec<TargetGroup> = groups
            .iter()
            .map(|(targets, labels)| TargetGroup {
                targets: targets.iter().map(|t| t.to_string()).collect(),
                labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                source: String::new(),
            })
            .collect();
        assert_eq!(alertmanager_urls(&config, &groups), want, "{yaml}");
    }

    #[test]
    fn urls_like_prometheus() {
        check("{}", &[(&["a:9093", "b:9093"], &[])], &["http://a:9093/api/v2/alerts", "http://b:9093/api/v2/alerts"]);
        check("path_prefix: /am/\nscheme: https", &[(&["a:9093"], &[])], &["https://a:9093/am/api/v2/alerts"]);
        check("path_prefix: am", &[(&["a:9093", "a:9093"], &[])], &["http://a:9093/am/api/v2/alerts"]);
        // relabel_configs see the group's labels and may drop, rewrite the address or the path.
        check(
            "relabel_configs:\n- source_labels: [dc]\n  regex: east\n  action: keep\n",
            &[(&["a:1"], &[("dc", "east")]), (&["b:1"], &[("dc", "west")])],
            &["http://a:1/api/v2/alerts"],
        );
        check(
            "relabel_configs:\n- source_labels: [__address__]\n  regex: (.*):1\n  target_label: __address__\n  replacement: $1:2\n\
             - target_label: __alerts_path__\n  replacement: /x/api/v2/alerts\n- target_label: __scheme__\n  replacement: https\n",
            &[(&["a:1"], &[])],
            &["https://a:2/x/api/v2/alerts"],
        );
    }
}

//! Glue between the server's parts: the scrape manager and the rule groups behind the API's
//! [`TargetsProvider`] and [`RulesProvider`], and reloading both from the configuration file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use sextant_alerting::rules::{parse_rule_file, Group, GroupOptions, RuleFileOptions, RuleKind};
use sextant_api::{
    ActiveTarget, Alert, AlertingRuleStatus, DroppedTarget, RuleGroup, RuleStatus, RulesProvider, TargetMetadata,
    TargetsProvider,
};
use sextant_model::exposition::{Format, MetricType};
use sextant_model::{Appendable, Labels, SystemClock};
use sextant_scrape::{Config, RemoteWriteStorage, ScrapeManager};
use sextant_tsdb::Db;
use tokio::task::JoinHandle;

use crate::notifier::Notifier;

/// Prometheus' `--rules.alert.*` flags and `--web.external-url`.
#[derive(Debug, Clone)]
pub struct RuleOptions {
    /// How often firing alerts are re-sent (`--rules.alert.resend-delay`).
    pub resend_delay_ms: i64,
    /// `--rules.alert.for-outage-tolerance`.
    pub for_outage_tolerance_ms: i64,
    /// `--rules.alert.for-grace-period`.
    pub for_grace_period_ms: i64,
    /// `--web.external-url`, for `generatorURL` and `$externalURL`.
    pub external_url: String,
}

impl Default for RuleOptions {
    fn default() -> RuleOptions {
        RuleOptions {
            resend_delay_ms: 60_000,
            for_outage_tolerance_ms: 3_600_000,
            for_grace_period_ms: 600_000,
            external_url: String::new(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn duration_text(d: std::time::Duration) -> String {
    sextant_scrape::Duration::from_millis(d.as_millis() as u64).to_string()
}

/// The scrape manager as the API sees it. Reloads take the manager out for the time of
/// `apply_config` (the lists are empty meanwhile). `/metrics` also shows the remote-write
/// queues' metrics when there are any.
pub struct ScrapeTargets {
    manager: Mutex<Option<ScrapeManager>>,
    remote: Option<Arc<RemoteWriteStorage>>,
}

impl ScrapeTargets {
    /// Scrapes into `storage` (the TSDB, or the TSDB and the remote-write buffer).
    pub fn new(storage: Arc<dyn Appendable>) -> ScrapeTargets {
        ScrapeTargets { manager: Mutex::new(Some(ScrapeManager::new(storage, Arc::new(SystemClock)))), remote: None }
    }

    /// Adds `remote`'s metrics (`prometheus_remote_storage_*`) to `/metrics`.
    pub fn with_remote_write(mut self, remote: Arc<RemoteWriteStorage>) -> ScrapeTargets {
        self.remote = Some(remote);
        self
    }

    async fn apply(&self, config: &Config) -> anyhow::Result<()> {
        let Some(mut manager) = lock(&self.manager).take() else { anyhow::bail!("a reload is already running") };
        let result = manager.apply_config(config).await;
        *lock(&self.manager) = Some(manager);
        Ok(result?)
    }

    /// Stops every scrape loop (writing staleness markers).
    pub async fn stop(&self) {
        let manager = lock(&self.manager).take();
        if let Some(manager) = manager {
            manager.stop().await;
        }
    }

    fn handles(&self) -> Vec<(String, Vec<sextant_scrape::TargetHandle>)> {
        let mut v: Vec<_> = lock(&self.manager).as_ref().map(|m| m.targets().into_iter().collect()).unwrap_or_default();
        v.sort_by(|a: &(String, _), b| a.0.cmp(&b.0));
        v
    }
}

impl TargetsProvider for ScrapeTargets {
    fn metrics_text(&self) -> String {
        let mut out = lock(&self.manager).as_ref().map(ScrapeManager::metrics_text).unwrap_or_default();
        if let Some(remote) = &self.remote {
            out.push_str(&remote.metrics_text());
        }
        out
    }

    fn scrape_pools(&self) -> Vec<String> {
        self.handles().into_iter().map(|(name, _)| name).collect()
    }

    fn active_targets(&self) -> Vec<ActiveTarget> {
        let mut out = Vec::new();
        for (_, list) in self.handles() {
            for t in list {
                let s = t.state();
                out.push(ActiveTarget {
                    discovered_labels: s.discovered_labels,
                    labels: s.labels,
                    scrape_pool: s.scrape_pool,
                    global_url: s.scrape_url.clone(),
                    scrape_url: s.scrape_url,
                    last_error: s.last_error,
                    last_scrape_ms: (s.last_scrape_ms != 0).then_some(s.last_scrape_ms),
                    last_scrape_duration_seconds: s.last_scrape_duration.as_secs_f64(),
                    health: s.health.as_str().to_string(),
                    scrape_interval: duration_text(s.scrape_interval),
                    scrape_timeout: duration_text(s.scrape_timeout),
                });
            }
        }
        out
    }

    fn dropped_targets(&self) -> Vec<DroppedTarget> {
        let mut pools: Vec<(String, Vec<Labels>)> =
            lock(&self.manager).as_ref().map(|m| m.dropped_targets().into_iter().collect()).unwrap_or_default();
        pools.sort_by(|a, b| a.0.cmp(&b.0));
        pools
            .into_iter()
            .flat_map(|(pool, list)| {
                list.into_iter().map(move |l| DroppedTarget { discovered_labels: l, scrape_pool: pool.clone() })
            })
            .collect()
    }

    fn metadata(&self) -> Vec<TargetMetadata> {
        let mut out = Vec::new();
        for (_, list) in self.handles() {
            for t in list {
                let labels = t.state().labels;
                let mut families: Vec<_> = t.metadata().into_iter().collect();
                families.sort_by(|a, b| a.0.cmp(&b.0));
                for (metric, m) in families {
                    out.push(TargetMetadata {
                        target: labels.clone(),
                        metric,
                        metric_type: m
                            .metric_type
                            .unwrap_or(MetricType::Unknown)
                            .as_str(Format::OpenMetrics)
                            .to_string(),
                        help: m.help,
                        unit: m.unit,
                    });
                }
            }
        }
        out
    }
}

/// The rule files of `config`: paths, with `*` and `?` in the file name expanded.
fn rule_file_paths(config: &Config) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for pattern in &config.rule_files {
        let path = Path::new(pattern);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.contains(['*', '?']) {
            out.push(path.to_path_buf());
            continue;
        }
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut found: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_str().is_some_and(|f| wildcard(name.as_bytes(), f.as_bytes())))
                .map(|e| e.path())
                .collect(),
            Err(_) => Vec::new(),
        };
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// Shell-style match of `*` and `?`.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&pattern[1..], name) || (!name.is_empty() && wildcard(pattern, &name[1..])),
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => wildcard(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// Parses every rule file of `config` into groups (no evaluation state).
pub fn load_groups(config: &Config) -> anyhow::Result<Vec<Group>> {
    load_groups_with(config, &RuleOptions::default(), false)
}

/// [`load_groups`] with the rule flags; `restore` makes the groups restore `for` state from
/// `ALERTS_FOR_STATE` (on start-up).
fn load_groups_with(config: &Config, rule_options: &RuleOptions, restore: bool) -> anyhow::Result<Vec<Group>> {
    let options = GroupOptions {
        default_interval_ms: config.global.evaluation_interval.as_millis() as i64,
        external_labels: Labels::from_pairs(
            config.global.external_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ),
        external_url: rule_options.external_url.clone(),
        restore,
        for_outage_tolerance_ms: rule_options.for_outage_tolerance_ms,
        for_grace_period_ms: rule_options.for_grace_period_ms,
        ..GroupOptions::default()
    };
    let mut groups = Vec::new();
    for path in rule_file_paths(config)? {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading rule file {}", path.display()))?;
        let file = parse_rule_file(&text, &RuleFileOptions::default())
            .with_context(|| format!("loading rule file {}", path.display()))?;
        let name = path.display().to_string();
        for def in &file.groups {
            groups.push(Group::new(&name, def, options.clone()));
        }
    }
    Ok(groups)
}

/// Checks everything a reload would load: the configuration and its rule files.
pub fn check_config(path: &Path) -> anyhow::Result<Config> {
    let config = Config::load_file(path).with_context(|| format!("loading {}", path.display()))?;
    load_groups(&config)?;
    Ok(config)
}

/// A group and the task evaluating it.
type RunningGroup = (Arc<Mutex<Group>>, JoinHandle<()>);

/// The running rule groups: one tokio task each, evaluating on the group's interval,
/// querying the [`Db`] and writing through `appendable` (the TSDB, or the TSDB and the
/// remote-write buffer).
pub struct RuleGroups {
    db: Arc<Db>,
    appendable: Arc<dyn Appendable>,
    engine: sextant_promql::Engine,
    groups: Mutex<Vec<RunningGroup>>,
    options: RuleOptions,
    /// Set once the first configuration was applied: later groups do not restore state.
    started: std::sync::atomic::AtomicBool,
    notifier: Mutex<Option<Arc<Notifier>>>,
}

impl RuleGroups {
    pub fn with_options(
        db: Arc<Db>,
        appendable: Arc<dyn Appendable>,
        engine: sextant_promql::Engine,
        options: RuleOptions,
    ) -> RuleGroups {
        RuleGroups {
            db,
            appendable,
            engine,
            groups: Mutex::new(Vec::new()),
            options,
            started: std::sync::atomic::AtomicBool::new(false),
            notifier: Mutex::new(None),
        }
    }

    /// The notifier, created on first use (inside the runtime).
    fn notifier(&self) -> Arc<Notifier> {
        Arc::clone(lock(&self.notifier).get_or_insert_with(Notifier::new))
    }

    /// Replaces the running groups with `config`'s, keeping the alert state of groups with
    /// the same file and name. Must run inside the tokio runtime.
    pub fn apply(self: &Arc<Self>, config: &Config) -> anyhow::Result<()> {
        let restore = !self.started.swap(true, std::sync::atomic::Ordering::SeqCst);
        let new_groups = load_groups_with(config, &self.options, restore)?;
        let notifier = self.notifier();
        notifier.apply(config)?;
        let mut running = lock(&self.groups);
        let old: Vec<RunningGroup> = std::mem::take(&mut *running);
        let mut old_by_key: HashMap<(String, String), Arc<Mutex<Group>>> = HashMap::new();
        for (group, task) in old {
            task.abort();
            let key = {
                let g = lock(&group);
                (g.file().to_string(), g.name().to_string())
            };
            old_by_key.insert(key, group);
        }
        for mut group in new_groups {
            if let Some(old) = old_by_key.get(&(group.file().to_string(), group.name().to_string())) {
                group.copy_state(&lock(old));
            }
            let group = Arc::new(Mutex::new(group));
            let task = tokio::spawn(run_group(Arc::clone(self), Arc::clone(&group), Arc::clone(&notifier)));
            running.push((group, task));
        }
        Ok(())
    }

    /// Stops every group's task.
    pub fn stop(&self) {
        for (_, task) in lock(&self.groups).drain(..) {
            task.abort();
        }
        if let Some(notifier) = lock(&self.notifier).take() {
            notifier.stop();
        }
    }

    fn snapshot(&self) -> Vec<Arc<Mutex<Group>>> {
        lock(&self.groups).iter().map(|(g, _)| Arc::clone(g)).collect()
    }
}

async fn run_group(rules: Arc<RuleGroups>, group: Arc<Mutex<Group>>, notifier: Arc<Notifier>) {
    let interval_ms = lock(&group).interval_ms();
    let resend_delay_ms = rules.options.resend_delay_ms;
    let mut next = lock(&group).eval_timestamp(now_ms()) + interval_ms;
    loop {
        let wait = (next - now_ms()).max(0) as u64;
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        let ts = next;
        let task_rules = Arc::clone(&rules);
        let task_group = Arc::clone(&group);
        let notifications = tokio::task::spawn_blocking(move || {
            let mut g = lock(&task_group);
            g.eval(ts, &*task_rules.db, &*task_rules.appendable, &task_rules.engine);
            g.alerts_to_send(ts, resend_delay_ms)
        })
        .await
        .unwrap_or_default();
        notifier.send(notifications);
        // Skip missed intervals rather than evaluating them in a burst.
        next += interval_ms;
        let now = now_ms();
        if next <= now {
            next = lock(&group).eval_timestamp(now) + interval_ms;
        }
    }
}

fn api_alert(a: &sextant_alerting::rules::Alert) -> Alert {
    Alert {
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        state: a.state.as_str().to_string(),
        active_at_ms: a.active_at_ms,
        value: a.value,
    }
}

impl RulesProvider for RuleGroups {
    fn rule_groups(&self) -> Vec<RuleGroup> {
        self.snapshot()
            .iter()
            .map(|g| {
                let g = lock(g);
                let metrics = g.metrics();
                RuleGroup {
                    name: g.name().to_string(),
                    file: g.file().to_string(),
                    interval_seconds: g.interval_ms() as f64 / 1000.0,
                    rules: g
                        .rules()
                        .iter()
                        .map(|r| RuleStatus {
                            name: r.name().to_string(),
                            query: r.def.expr.clone(),
                            labels: Labels::from_pairs(r.labels().iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                            alerting: match &r.def.kind {
                                RuleKind::Alerting { for_ms, annotations, .. } => Some(AlertingRuleStatus {
                                    state: r.state().as_str().to_string(),
                                    duration_seconds: *for_ms as f64 / 1000.0,
                                    annotations: Labels::from_pairs(
                                        annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                                    ),
                                    alerts: r.alerts().into_iter().map(api_alert).collect(),
                                }),
                                _ => None,
                            },
                            health: r.health().as_str().to_string(),
                            last_error: r.last_error().unwrap_or("").to_string(),
                            evaluation_seconds: r.evaluation_duration_s(),
                            last_evaluation_ms: r.last_evaluation_ms(),
                        })
                        .collect(),
                    evaluation_seconds: metrics.last_duration_s,
                    last_evaluation_ms: metrics.last_evaluation_ms,
                }
            })
            .collect()
    }

    fn alertmanagers(&self) -> Vec<String> {
        lock(&self.notifier).as_ref().map(|n| n.alertmanagers()).unwrap_or_default()
    }

    fn metrics_text(&self) -> String {
        let groups = self.snapshot();
        let mut families: [(&str, &str, &str, String); 5] = [
            ("prometheus_rule_evaluations_total", "counter", "The total number of rule evaluations.", String::new()),
            (
                "prometheus_rule_evaluation_failures_total",
                "counter",
                "The total number of rule evaluation failures.",
                String::new(),
            ),
            (
                "prometheus_rule_group_last_duration_seconds",
                "gauge",
                "The duration of the last rule group evaluation.",
                String::new(),
            ),
            (
                "prometheus_rule_group_last_evaluation_timestamp_seconds",
                "gauge",
                "The timestamp of the last rule group evaluation in seconds.",
                String::new(),
            ),
            ("prometheus_rule_group_rules", "gauge", "The number of rules.", String::new()),
        ];
        for g in &groups {
            let g = lock(g);
            let m = g.metrics();
            let key = format!("{};{}", g.file(), g.name()).replace('\\', "\\\\").replace('"', "\\\"");
            let values = [
                m.evaluations_total.to_string(),
                m.evaluation_failures_total.to_string(),
                format!("{}", m.last_duration_s),
                m.last_evaluation_ms.map_or("0".to_string(), |ms| format!("{}", ms as f64 / 1000.0)),
                g.rules().len().to_string(),
            ];
            for ((name, _, _, body), value) in families.iter_mut().zip(values) {
                body.push_str(&format!("{name}{{rule_group=\"{key}\"}} {value}\n"));
            }
        }
        let mut out = String::new();
        for (name, kind, help, body) in families {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{body}"));
        }
        if let Some(notifier) = lock(&self.notifier).as_ref() {
            out.push_str(&notifier.metrics_text());
        }
        out
    }

    fn alerts(&self) -> Vec<Alert> {
        let mut out = Vec::new();
        for g in self.snapshot() {
            let g = lock(&g);
            for r in g.rules() {
                out.extend(
                    r.alerts()
                        .into_iter()
                        .filter(|a| a.state != sextant_alerting::rules::AlertState::Inactive)
                        .map(api_alert),
                );
            }
        }
        out
    }
}

/// Something else a reload applies the configuration to (e.g. the query log).
type ApplyHook = Box<dyn Fn(&Config) -> anyhow::Result<()> + Send + Sync>;

/// Scraping and rule evaluation of one configuration file, reloadable.
pub struct Reloader {
    pub config_file: PathBuf,
    pub targets: Arc<ScrapeTargets>,
    pub rules: Arc<RuleGroups>,
    remote: Option<Arc<RemoteWriteStorage>>,
    hooks: Vec<ApplyHook>,
    reloading: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(config_file: PathBuf, targets: Arc<ScrapeTargets>, rules: Arc<RuleGroups>) -> Reloader {
        Reloader {
            config_file,
            targets,
            rules,
            remote: None,
            hooks: Vec::new(),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// Also applies `remote_write` (endpoints, relabeling, queues, external labels) to `remote`.
    pub fn with_remote_write(mut self, remote: Arc<RemoteWriteStorage>) -> Reloader {
        self.remote = Some(remote);
        self
    }

    /// Also calls `hook` with every configuration applied.
    pub fn on_apply(mut self, hook: impl Fn(&Config) -> anyhow::Result<()> + Send + Sync + 'static) -> Reloader {
        self.hooks.push(Box::new(hook));
        self
    }

    /// Applies `config` (already checked) to scraping, rules and the hooks.
    pub async fn apply(&self, config: &Config) -> anyhow::Result<()> {
        let _guard = self.reloading.lock().await;
        for hook in &self.hooks {
            hook(config)?;
        }
        // Remote write first: what scrapes and rules write after the reload goes to the new
        // endpoints with the new external labels.
        if let Some(remote) = &self.remote {
            remote.apply_config(config).await?;
        }
        self.rules.apply(config)?;
        self.targets.apply(config).await
    }

    /// Re-reads the configuration file; an invalid one leaves everything as it was.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let config = check_config(&self.config_file)?;
        self.apply(&config).await
    }

    /// Reloads on SIGHUP and on every message of `requests` (from `/-/reload`), forever.
    pub async fn serve(self: Arc<Self>, mut requests: tokio::sync::mpsc::UnboundedReceiver<()>) {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("sextant: cannot listen for SIGHUP: {e}");
                None
            }
        };
        loop {
            let hup = async {
                match hangup.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = hup => {}
                got = requests.recv() => if got.is_none() { std::future::pending::<()>().await },
            }
            match self.reload().await {
                Ok(()) => eprintln!("sextant: configuration reloaded from {}", self.config_file.display()),
                Err(e) => eprintln!("sextant: reload failed, keeping the old configuration: {e:#}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wildcard() {
        let cases = [
            ("*.yml", "rules.yml", true),
            ("*.yml", "rules.yaml", false),
            ("r?les.yml", "rules.yml", true),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(super::wildcard(pattern.as_bytes(), name.as_bytes()), want, "{pattern} {name}");
        }
    }
}

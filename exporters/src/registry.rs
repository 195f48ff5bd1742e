//! The `Collector` trait and the `Registry` that runs collectors concurrently, each under a
//! timeout, and reports `<namespace>_scrape_collector_{success,duration_seconds}` per collector
//! like the Go exporters do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::encode::{self, Format, MetricFamily, MetricType};
use crate::Error;

/// A source of metric families, asked once per scrape.
///
/// Implement it directly for collectors that do async IO (database clients); wrap plain
/// functions that read files with [`blocking`], which runs them on tokio's blocking pool.
#[async_trait::async_trait]
pub trait Collector: Send + Sync + 'static {
    /// The value of the `collector` label, e.g. `cpu`.
    fn name(&self) -> &str;

    /// Collects the current values. An error makes this collector report failure for this
    /// scrape; it never fails the scrape as a whole.
    async fn collect(&self) -> Result<Vec<MetricFamily>, Error>;
}

/// A collector made of a synchronous function, run with `tokio::task::spawn_blocking`.
///
/// At most one run is in flight: when an earlier run is still stuck (a hung mount, say), the
/// next scrape reports failure at once instead of piling up threads.
pub struct BlockingCollector<F> {
    name: String,
    collect_fn: Arc<F>,
    running: Arc<AtomicBool>,
}

impl<F> std::fmt::Debug for BlockingCollector<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingCollector").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Wraps a synchronous collect function as a [`Collector`] named `name`.
pub fn blocking<F>(name: impl Into<String>, collect_fn: F) -> BlockingCollector<F>
where
    F: Fn() -> Result<Vec<MetricFamily>, Error> + Send + Sync + 'static,
{
    BlockingCollector { name: name.into(), collect_fn: Arc::new(collect_fn), running: Arc::new(AtomicBool::new(false)) }
}

struct RunningGuard(Arc<AtomicBool>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[async_trait::async_trait]
impl<F> Collector for BlockingCollector<F>
where
    F: Fn() -> Result<Vec<MetricFamily>, Error> + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn collect(&self) -> Result<Vec<MetricFamily>, Error> {
        if self.running.swap(true, Ordering::AcqRel) {
            return Err(Error::StillRunning(self.name.clone()));
        }
        let guard = RunningGuard(self.running.clone());
        let collect_fn = self.collect_fn.clone();
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            collect_fn()
        })
        .await
        .map_err(|_| Error::Join(self.name.clone()))?
    }
}

/// How a [`Registry`] runs its collectors.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Prefix of the per-collector metrics, e.g. `node` for `node_scrape_collector_success`.
    pub namespace: String,
    /// How long one collector may take before it is reported as failed for this scrape.
    pub collector_timeout: Duration,
    /// Whether to add `process_*` metrics about this process (CPU, memory, file descriptors).
    pub process_metrics: bool,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig { namespace: String::new(), collector_timeout: Duration::from_secs(10), process_metrics: true }
    }
}

/// A set of collectors (and `prometheus-client` registries) gathered together per scrape.
pub struct Registry {
    config: RegistryConfig,
    collectors: Vec<Arc<dyn Collector>>,
    client_registries: Vec<Arc<prometheus_client::registry::Registry>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.collectors.iter().map(|c| c.name()).collect();
        f.debug_struct("Registry").field("config", &self.config).field("collectors", &names).finish_non_exhaustive()
    }
}

/// The outcome of one collector in one scrape.
struct Outcome {
    name: String,
    seconds: f64,
    result: Result<Vec<MetricFamily>, Error>,
}

impl Registry {
    /// An empty registry.
    pub fn new(config: RegistryConfig) -> Registry {
        Registry { config, collectors: Vec::new(), client_registries: Vec::new() }
    }

    /// Adds a collector; its families appear in every scrape from now on.
    pub fn register(&mut self, collector: impl Collector) {
        self.collectors.push(Arc::new(collector));
    }

    /// Serves a `prometheus-client` registry next to the collectors, so a Rust service can
    /// expose its own metrics through the same endpoint.
    pub fn register_prometheus_client(&mut self, registry: Arc<prometheus_client::registry::Registry>) {
        self.client_registries.push(registry);
    }

    /// The names of the registered collectors, in registration order.
    pub fn collector_names(&self) -> Vec<&str> {
        self.collectors.iter().map(|c| c.name()).collect()
    }

    async fn run_collectors(&self) -> Vec<Outcome> {
        let timeout = self.config.collector_timeout;
        let mut tasks = tokio::task::JoinSet::new();
        for (idx, collector) in self.collectors.iter().enumerate() {
            let collector = collector.clone();
            tasks.spawn(async move {
                let start = Instant::now();
                let result = match tokio::time::timeout(timeout, collector.collect()).await {
                    Ok(result) => result,
                    Err(_) => {
                        Err(Error::Timeout { collector: collector.name().to_string(), seconds: timeout.as_secs_f64() })
                    }
                };
                let seconds = start.elapsed().as_secs_f64();
                (idx, Outcome { name: collector.name().to_string(), seconds, result })
            });
        }
        let mut outcomes: Vec<Option<Outcome>> = (0..self.collectors.len()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((idx, outcome)) = joined {
                outcomes[idx] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .zip(&self.collectors)
            .map(|(outcome, collector)| {
                outcome.unwrap_or_else(|| Outcome {
                    name: collector.name().to_string(),
                    seconds: 0.0,
                    result: Err(Error::Join(collector.name().to_string())),
                })
            })
            .collect()
    }

    /// Runs every collector once, concurrently, and returns all families sorted by name,
    /// including the per-collector success and duration gauges. A failed collector shows
    /// only as `success 0`; [`Registry::gather_with_errors`] also says why.
    pub async fn gather(&self) -> Vec<MetricFamily> {
        self.gather_with_errors().await.0
    }

    /// Like [`Registry::gather`], also returning each failed collector's error.
    pub async fn gather_with_errors(&self) -> (Vec<MetricFamily>, Vec<(String, Error)>) {
        let outcomes = self.run_collectors().await;
        let prefix =
            if self.config.namespace.is_empty() { String::new() } else { format!("{}_", self.config.namespace) };
        let mut duration = MetricFamily::new(
            format!("{prefix}scrape_collector_duration_seconds"),
            format!("{}: Duration of a collector scrape.", self.config.namespace),
            MetricType::Gauge,
        );
        let mut success = MetricFamily::new(
            format!("{prefix}scrape_collector_success"),
            format!("{}: Whether a collector succeeded.", self.config.namespace),
            MetricType::Gauge,
        );
        let mut families = Vec::new();
        let mut errors = Vec::new();
        for outcome in outcomes {
            duration.push(&[("collector", &outcome.name)], outcome.seconds);
            let ok = match outcome.result {
                Ok(found) => {
                    families.extend(found);
                    1.0
                }
                Err(err) => {
                    errors.push((outcome.name.clone(), err));
                    0.0
                }
            };
            success.push(&[("collector", &outcome.name)], ok);
        }
        if !self.collectors.is_empty() {
            families.push(duration);
            families.push(success);
        }
        if self.config.process_metrics {
            families.extend(crate::process::collect());
        }
        encode::normalize(&mut families);
        (families, errors)
    }

    /// Gathers and encodes one scrape in `format`.
    pub async fn encode(&self, format: Format) -> String {
        let families = self.gather().await;
        let mut out = String::with_capacity(64 * 1024);
        match format {
            Format::Text004 => encode::write_text(&mut out, &families),
            Format::OpenMetrics => encode::write_openmetrics(&mut out, &families),
        }
        for registry in &self.client_registries {
            let mut client_text = String::new();
            if prometheus_client::encoding::text::encode(&mut client_text, registry).is_err() {
                continue;
            }
            match format {
                Format::Text004 => encode::openmetrics_to_text(&mut out, &client_text),
                Format::OpenMetrics => {
                    for line in client_text.lines().filter(|line| *line != "# EOF") {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
            }
        }
        if format == Format::OpenMetrics {
            out.push_str("# EOF\n");
        }
        out
    }
}

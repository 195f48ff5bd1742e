//! The `Collector` trait and the `Registry` that runs collectors concurrently, each under a
//! timeout, and reports `<namespace>_scrape_collector_{success,duration_seconds}` per collector
//! like the Go exporters do.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Error;
use sextant_model::exposition::{self, Format, MetricFamily, MetricType};

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

/// A set of collectors (and `prometheus-client` or `prometheus` crate registries) gathered
/// together per scrape.
pub struct Registry {
    config: RegistryConfig,
    collectors: Vec<Arc<dyn Collector>>,
    client_registries: Vec<Arc<prometheus_client::registry::Registry>>,
    #[cfg(feature = "prometheus")]
    rust_prometheus_registries: Vec<prometheus::Registry>,
    /// Size of the last encoded scrape: the next one's output buffer is allocated once at
    /// about this size instead of growing (and copying) as it is written.
    last_encoded_len: AtomicUsize,
    /// The output buffer of the last served scrape, handed back when its response body is
    /// dropped, so serving allocates (and frees) no scrape-sized buffer per request.
    spare_output: Arc<Mutex<Option<String>>>,
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
        Registry {
            config,
            collectors: Vec::new(),
            client_registries: Vec::new(),
            #[cfg(feature = "prometheus")]
            rust_prometheus_registries: Vec::new(),
            last_encoded_len: AtomicUsize::new(0),
            spare_output: Arc::default(),
        }
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

    /// Serves a `prometheus` crate (rust-prometheus) registry next to the collectors (feature
    /// `prometheus`). Its families are gathered with [`prometheus::Registry::gather`] at every
    /// scrape and encoded by the same encoder as ours.
    #[cfg(feature = "prometheus")]
    pub fn register_prometheus(&mut self, registry: prometheus::Registry) {
        self.rust_prometheus_registries.push(registry);
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
        for registry in &self.client_registries {
            let mut text = String::new();
            if prometheus_client::encoding::text::encode(&mut text, registry).is_ok() {
                if let Ok(found) = exposition::parse_families(text.as_bytes(), Format::OpenMetrics) {
                    families.extend(found);
                }
            }
        }
        #[cfg(feature = "prometheus")]
        for registry in &self.rust_prometheus_registries {
            families.extend(registry.gather().iter().map(from_rust_prometheus));
        }
        normalize(&mut families);
        (families, errors)
    }

    /// Gathers and encodes one scrape in `format`.
    pub async fn encode(&self, format: Format) -> String {
        let mut out = String::new();
        self.encode_into(&mut out, format).await;
        out
    }

    /// Gathers and encodes one scrape into the buffer the previous response handed back (see
    /// [`ScrapeText`]); what `/metrics` serves.
    pub(crate) async fn encode_reusing(&self, format: Format) -> ScrapeText {
        let spare = self.spare_output.lock().ok().and_then(|mut slot| slot.take());
        let mut text = spare.unwrap_or_default();
        text.clear();
        self.encode_into(&mut text, format).await;
        ScrapeText { text, home: self.spare_output.clone() }
    }

    async fn encode_into(&self, out: &mut String, format: Format) {
        let mut families = self.gather().await;
        if format == Format::Text {
            for family in &mut families {
                openmetrics_family_to_text(family);
            }
        }
        let hint = exposition::encoded_size_hint(&families).max(self.last_encoded_len.load(Ordering::Relaxed));
        out.reserve(hint + hint / 16);
        exposition::encode_into(out, &families, format);
        self.last_encoded_len.store(out.len(), Ordering::Relaxed);
    }
}

/// One scrape's text that goes back to its [`Registry`] as the next scrape's buffer when
/// dropped (when the response body has been sent).
pub(crate) struct ScrapeText {
    text: String,
    home: Arc<Mutex<Option<String>>>,
}

impl AsRef<[u8]> for ScrapeText {
    fn as_ref(&self) -> &[u8] {
        self.text.as_bytes()
    }
}

impl Drop for ScrapeText {
    fn drop(&mut self) {
        let text = std::mem::take(&mut self.text);
        if let Ok(mut slot) = self.home.lock() {
            if slot.is_none() {
                *slot = Some(text);
            }
        }
    }
}

/// Sorts families by name, drops empty ones and merges families that share a name and type,
/// keeping the first help text; a later family with the same name but another type is dropped.
pub(crate) fn normalize(families: &mut Vec<MetricFamily>) {
    families.retain(|family| !family.samples.is_empty());
    families.sort_by(|a, b| a.name.cmp(&b.name));
    let mut merged: Vec<MetricFamily> = Vec::with_capacity(families.len());
    for family in families.drain(..) {
        match merged.last_mut() {
            Some(last) if last.name == family.name => {
                if last.metric_type == family.metric_type {
                    last.samples.extend(family.samples);
                }
            }
            _ => merged.push(family),
        }
    }
    *families = merged;
}

/// Renames a family read from OpenMetrics (as `prometheus-client` writes it) the way the text
/// format names it: a counter family after its `_total` samples, without `_created` samples;
/// an info family as a gauge named `<name>_info`; a state set as a gauge. Families already in
/// text form are left alone.
pub(crate) fn openmetrics_family_to_text(family: &mut MetricFamily) {
    let suffix = match family.metric_type {
        MetricType::Counter => "_total",
        MetricType::Info => "_info",
        MetricType::StateSet => "",
        _ => return,
    };
    if family.metric_type == MetricType::Counter {
        let created = format!("{}_created", family.name);
        family.samples.retain(|sample| sample.name != created);
    } else {
        family.metric_type = MetricType::Gauge;
    }
    if !suffix.is_empty() && !family.name.ends_with(suffix) {
        let renamed = format!("{}{suffix}", family.name);
        if family.samples.iter().all(|sample| sample.name == renamed) {
            family.name = renamed;
        }
    }
}

/// A rust-prometheus family as ours: histograms get their `+Inf` bucket when it is implicit.
#[cfg(feature = "prometheus")]
fn from_rust_prometheus(family: &prometheus::proto::MetricFamily) -> MetricFamily {
    use prometheus::proto::MetricType as Theirs;
    let metric_type = match family.get_field_type() {
        Theirs::COUNTER => MetricType::Counter,
        Theirs::GAUGE => MetricType::Gauge,
        Theirs::SUMMARY => MetricType::Summary,
        Theirs::HISTOGRAM => MetricType::Histogram,
        Theirs::UNTYPED => MetricType::Unknown,
    };
    let mut out = MetricFamily::new(family.name(), family.help(), metric_type);
    for metric in family.get_metric() {
        let mut labels: Vec<(&str, &str)> = metric.get_label().iter().map(|pair| (pair.name(), pair.value())).collect();
        let first_new = out.samples.len();
        match metric_type {
            MetricType::Counter => out.push(&labels, metric.get_counter().get_value()),
            MetricType::Gauge => out.push(&labels, metric.get_gauge().get_value()),
            MetricType::Histogram => {
                let histogram = metric.get_histogram();
                let mut inf_seen = false;
                for bucket in histogram.get_bucket() {
                    inf_seen |= bucket.upper_bound() == f64::INFINITY;
                    let mut bound = String::new();
                    exposition::write_go_float(&mut bound, bucket.upper_bound());
                    let mut with_le = labels.clone();
                    with_le.push(("le", &bound));
                    out.push_suffixed("_bucket", &with_le, bucket.cumulative_count() as f64);
                }
                if !inf_seen {
                    labels.push(("le", "+Inf"));
                    out.push_suffixed("_bucket", &labels, histogram.get_sample_count() as f64);
                    labels.pop();
                }
                out.push_suffixed("_sum", &labels, histogram.get_sample_sum());
                out.push_suffixed("_count", &labels, histogram.get_sample_count() as f64);
            }
            MetricType::Summary => {
                let summary = metric.get_summary();
                for quantile in summary.get_quantile() {
                    let mut bound = String::new();
                    exposition::write_go_float(&mut bound, quantile.quantile());
                    let mut with_quantile = labels.clone();
                    with_quantile.push(("quantile", &bound));
                    out.push(&with_quantile, quantile.value());
                }
                out.push_suffixed("_sum", &labels, summary.sample_sum());
                out.push_suffixed("_count", &labels, summary.sample_count() as f64);
            }
            // rust-prometheus has no untyped metric type of its own; kept for completeness.
            #[allow(deprecated)]
            _ => out.push(&labels, metric.get_untyped().get_value()),
        }
        if metric.timestamp_ms() != 0 {
            for sample in &mut out.samples[first_new..] {
                sample.timestamp = Some(metric.timestamp_ms());
            }
        }
    }
    out
}

/// Test helper: `families` in text format 0.0.4, skipping empty families like a scrape does.
#[cfg(test)]
pub(crate) fn write_text(out: &mut String, families: &[MetricFamily]) {
    let non_empty: Vec<MetricFamily> = families.iter().filter(|f| !f.samples.is_empty()).cloned().collect();
    exposition::encode_into(out, &non_empty, Format::Text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        let mut registry = Registry::new(RegistryConfig { process_metrics: false, ..Default::default() });
        registry.register(blocking("one", || Ok(vec![MetricFamily::single("up", "Up.", MetricType::Gauge, 1.0)])));
        registry
    }

    /// The scrape without its (varying) collector durations.
    fn stable(text: &str) -> String {
        text.lines().filter(|line| !line.starts_with("scrape_collector_duration_seconds{")).collect()
    }

    #[test]
    fn served_scrapes_reuse_the_previous_buffer_once_it_is_sent() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let registry = registry();
        let expected = stable(&runtime.block_on(registry.encode(Format::Text)));
        assert!(expected.contains("up 1"), "{expected}");

        let first = runtime.block_on(registry.encode_reusing(Format::Text));
        assert_eq!(stable(&first.text), expected);
        // While the first body is still being sent, the next scrape gets a buffer of its own.
        let second = runtime.block_on(registry.encode_reusing(Format::Text));
        assert_eq!(stable(&second.text), expected);
        assert_ne!(first.text.as_ptr(), second.text.as_ptr());
        let first_buffer = first.text.as_ptr();
        drop(first);
        drop(second);
        // The first one handed back is reused, cleared, for the next scrape.
        let third = runtime.block_on(registry.encode_reusing(Format::OpenMetrics));
        assert_eq!(third.text.as_ptr(), first_buffer);
        assert!(third.text.starts_with("# TYPE") && third.text.ends_with("# EOF\n"), "{}", third.text);
    }
}

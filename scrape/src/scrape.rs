//! One scrape loop per target: fetch over HTTP(S), parse, label, limit, append through the
//! `Appendable` seam, report the synthetic series, and write staleness markers.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sextant_model::exposition::{Entry, Format, MetricType, Parser};
use sextant_model::{stale_nan, Appendable, Appender, Clock, Labels, LabelsBuilder, StorageError, METRIC_NAME};
use tokio::sync::watch;

use crate::cache::SeriesCache;
use crate::client::{describe_reqwest, read_body_into, HttpClient};
use crate::config::ScrapeConfig;
use crate::relabel::relabel_builder;
use crate::target::Target;
use crate::Error;

/// The body size limit applied when a job sets none (`body_size_limit: 0`): Prometheus reads
/// without bound; Sextant keeps a scrape's memory bounded.
pub const DEFAULT_BODY_SIZE_LIMIT: u64 = 256 << 20;

/// Health of a target as the targets API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetHealth {
    Unknown,
    Up,
    Down,
}

impl TargetHealth {
    /// `"up"`, `"down"` or `"unknown"`, as in Prometheus' API.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetHealth::Unknown => "unknown",
            TargetHealth::Up => "up",
            TargetHealth::Down => "down",
        }
    }
}

/// What the targets API shows about one target.
#[derive(Debug, Clone)]
pub struct TargetState {
    pub scrape_pool: String,
    pub scrape_url: String,
    /// Labels after relabeling, without `__`-prefixed ones.
    pub labels: Labels,
    /// Labels as discovered, before relabeling.
    pub discovered_labels: Labels,
    pub health: TargetHealth,
    /// Empty after a successful scrape.
    pub last_error: String,
    /// Start of the last scrape, ms since the epoch; 0 before the first.
    pub last_scrape_ms: i64,
    pub last_scrape_duration: std::time::Duration,
    pub scrape_interval: std::time::Duration,
    pub scrape_timeout: std::time::Duration,
}

/// A metric family's metadata as last exposed by a target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    pub metric_type: Option<MetricType>,
    pub help: String,
    pub unit: String,
}

/// The state a scrape manager and the API share with a running loop.
#[derive(Debug, Clone)]
pub struct TargetHandle {
    state: Arc<Mutex<TargetState>>,
    metadata: Arc<Mutex<HashMap<String, Metadata>>>,
}

impl TargetHandle {
    pub fn state(&self) -> TargetState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Metadata of every family of the last successful scrape, by family name.
    pub fn metadata(&self) -> HashMap<String, Metadata> {
        self.metadata.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Counters shared by the loops of a scrape manager, exposed under Prometheus' names by
/// [`crate::ScrapeManager::metrics_text`].
#[derive(Debug, Default)]
pub struct ScrapeCounters {
    pub exceeded_sample_limit: AtomicU64,
    pub exceeded_body_size_limit: AtomicU64,
    pub exceeded_label_limits: AtomicU64,
    pub sample_out_of_order: AtomicU64,
    pub sample_duplicate_timestamp: AtomicU64,
    pub sample_out_of_bounds: AtomicU64,
    pub scrapes: AtomicU64,
    pub failed_scrapes: AtomicU64,
}

/// Counts of one scrape, as the synthetic series report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeReport {
    pub up: bool,
    pub samples_scraped: u64,
    pub samples_post_metric_relabeling: u64,
    pub series_added: u64,
}

/// How a loop ends: a target that went away gets staleness markers; one that is only being
/// replaced by the same target under a new configuration does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    Stale,
    Quiet,
}

#[derive(Debug, Clone)]
struct CachedSeries {
    /// `None` when metric relabeling dropped the series.
    labels: Option<Labels>,
    hash: u64,
    /// Generation of the last scrape that exposed this series.
    seen: u64,
    /// Generation of the scrape that added the entry.
    added: u64,
    /// Whether its last sample took the scrape timestamp (so staleness applies).
    tracked: bool,
    /// The storage's reference to the series ([`Appender::append_cached`]).
    series_ref: u64,
}

/// Hashes the series text of exposition lines (and family names) with xxh3 under a
/// per-loop random seed: one pass over the bytes, and no collisions an exposition can
/// arrange in advance.
#[derive(Clone, Copy)]
struct SeriesHashState(u64);

impl SeriesHashState {
    fn new() -> SeriesHashState {
        SeriesHashState(std::collections::hash_map::RandomState::new().build_hasher().finish())
    }
}

impl BuildHasher for SeriesHashState {
    type Hasher = SeriesHasher;
    fn build_hasher(&self) -> SeriesHasher {
        SeriesHasher(self.0)
    }
}

struct SeriesHasher(u64);

impl Hasher for SeriesHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }
    fn write_u8(&mut self, i: u8) {
        self.0 = self.0.rotate_left(8) ^ u64::from(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.0 = self.0.rotate_left(16) ^ i as u64;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A family's metadata as the loop keeps it between scrapes: updated in place, so an
/// unchanged `# HELP`/`# TYPE`/`# UNIT` line costs a lookup and a comparison, no allocation.
#[derive(Debug, Default)]
struct CachedMetadata {
    metadata: Metadata,
    /// The metadata generation ([`ScrapeLoop::metadata_generation`]) that last exposed it.
    seen: u64,
    /// Which of help (1), type (2) and unit (4) that scrape exposed.
    fields: u8,
}

/// Feeds one metadata line (kind, family name, text) into `digest`, unambiguously.
fn digest_metadata(digest: &mut xxhash_rust::xxh3::Xxh3, kind: u8, name: &str, text: &str) {
    digest.update(&[kind]);
    digest.update(&(name.len() as u64).to_le_bytes());
    digest.update(name.as_bytes());
    digest.update(&(text.len() as u64).to_le_bytes());
    digest.update(text.as_bytes());
}

/// A scrape loop for one target. [`ScrapeLoop::scrape_once`] runs one scrape at a given
/// time (tests drive it directly); [`ScrapeLoop::run`] scrapes on the target's interval
/// until told to stop.
pub struct ScrapeLoop {
    target: Target,
    config: Arc<ScrapeConfig>,
    client: HttpClient,
    storage: Arc<dyn Appendable>,
    clock: Arc<dyn Clock>,
    url: String,
    /// `url` parsed once (`None` if it does not parse: each fetch then reports why).
    parsed_url: Option<reqwest::Url>,
    /// `Accept`, worked out once.
    accept: reqwest::header::HeaderValue,
    interval: std::time::Duration,
    timeout: std::time::Duration,
    /// Raw series text (as exposed) to its final labels, for the series of the last scrape.
    /// Entries not exposed by the last successful scrape are removed after it.
    cache: SeriesCache<CachedSeries>,
    /// Generation of the last successful scrape (0 before the first).
    generation: u64,
    /// Metadata of the families exposed, updated in place; published to the handle after a
    /// successful scrape that changed it.
    metadata: HashMap<Box<str>, CachedMetadata, SeriesHashState>,
    /// Counts every parse (successful or not), so a failed scrape's marks are not mistaken
    /// for the next one's.
    metadata_generation: u64,
    /// The loop's metadata differs from what the handle shows.
    metadata_dirty: bool,
    /// Digest of the metadata lines last applied, and of the last scrape's.
    metadata_digest: u128,
    metadata_digest_scraped: u128,
    /// Seed of the loop's hashes.
    hash_seed: u64,
    /// The body buffer, kept between scrapes (its capacity follows the body size).
    body: Vec<u8>,
    /// The synthetic series with their storage references.
    report_series: [(Labels, u64); 5],
    /// `X-Prometheus-Scrape-Timeout-Seconds`.
    timeout_header: reqwest::header::HeaderValue,
    handle: TargetHandle,
    counters: Arc<ScrapeCounters>,
}

impl std::fmt::Debug for ScrapeLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeLoop").field("url", &self.url).field("series", &self.cache.len()).finish()
    }
}

const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

fn parse_duration_label(target: &Target, name: &str, default: crate::Duration) -> std::time::Duration {
    target.all_labels().get(name).and_then(|v| v.parse::<crate::Duration>().ok()).unwrap_or(default).as_std()
}

impl ScrapeLoop {
    pub fn new(
        target: Target,
        config: Arc<ScrapeConfig>,
        storage: Arc<dyn Appendable>,
        clock: Arc<dyn Clock>,
    ) -> Result<ScrapeLoop, Error> {
        let client = HttpClient::new(&config.http, config.enable_compression)?;
        Ok(ScrapeLoop::with_client(target, config, client, storage, clock))
    }

    pub(crate) fn with_client(
        target: Target,
        config: Arc<ScrapeConfig>,
        client: HttpClient,
        storage: Arc<dyn Appendable>,
        clock: Arc<dyn Clock>,
    ) -> ScrapeLoop {
        let interval = parse_duration_label(&target, crate::SCRAPE_INTERVAL_LABEL, config.scrape_interval);
        let timeout = parse_duration_label(&target, crate::SCRAPE_TIMEOUT_LABEL, config.scrape_timeout);
        let url = target.url();
        let state = TargetState {
            scrape_pool: config.job_name.clone(),
            scrape_url: url.clone(),
            labels: target.labels(),
            discovered_labels: target.discovered_labels().clone(),
            health: TargetHealth::Unknown,
            last_error: String::new(),
            last_scrape_ms: 0,
            last_scrape_duration: std::time::Duration::ZERO,
            scrape_interval: interval,
            scrape_timeout: timeout,
        };
        let handle = TargetHandle { state: Arc::new(Mutex::new(state)), metadata: Arc::default() };
        let report_series = REPORT_NAMES.map(|name| {
            let mut builder = LabelsBuilder::new(&target.labels());
            builder.set(METRIC_NAME, name);
            (builder.labels(), 0)
        });
        let timeout_header = reqwest::header::HeaderValue::from_str(&format!("{}", timeout.as_secs_f64()))
            .unwrap_or(reqwest::header::HeaderValue::from_static("10"));
        let hash_state = SeriesHashState::new();
        ScrapeLoop {
            accept: reqwest::header::HeaderValue::from_str(&config.accept_header())
                .unwrap_or(reqwest::header::HeaderValue::from_static("text/plain;version=0.0.4")),
            target,
            config,
            client,
            storage,
            clock,
            parsed_url: reqwest::Url::parse(&url).ok(),
            url,
            interval,
            timeout,
            cache: SeriesCache::new(hash_state.0),
            generation: 0,
            metadata: HashMap::with_hasher(hash_state),
            metadata_generation: 0,
            metadata_dirty: false,
            metadata_digest: 0,
            metadata_digest_scraped: 0,
            hash_seed: hash_state.0,
            body: Vec::new(),
            report_series,
            timeout_header,
            handle,
            counters: Arc::default(),
        }
    }

    /// Counts this loop's events into `counters` (shared with other loops).
    pub fn with_counters(mut self, counters: Arc<ScrapeCounters>) -> ScrapeLoop {
        self.counters = counters;
        self
    }

    /// The shared view of this target's state and metadata.
    pub fn handle(&self) -> TargetHandle {
        self.handle.clone()
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// This target's stable offset within the interval: scrapes of many targets spread over
    /// the interval, and a target keeps its phase across restarts and reloads.
    pub fn offset(&self) -> std::time::Duration {
        let interval_ms = self.interval.as_millis().max(1) as u64;
        let hash = self.target.all_labels().stable_hash();
        std::time::Duration::from_millis(hash % interval_ms)
    }

    /// Fetches the body into `body` (cleared first).
    async fn fetch(&self, body: &mut Vec<u8>) -> Result<Format, Error> {
        let request = match &self.parsed_url {
            Some(url) => self.client.client.get(url.clone()),
            None => self.client.client.get(&self.url),
        };
        let request = request
            .header(reqwest::header::ACCEPT, self.accept.clone())
            .header(
                reqwest::header::ACCEPT_ENCODING,
                reqwest::header::HeaderValue::from_static(self.config.accept_encoding_header()),
            )
            .header(
                reqwest::header::USER_AGENT,
                reqwest::header::HeaderValue::from_static(concat!("Sextant/", env!("CARGO_PKG_VERSION"))),
            )
            .header("X-Prometheus-Scrape-Timeout-Seconds", self.timeout_header.clone());
        let limit = match self.config.body_size_limit.as_bytes() {
            0 => DEFAULT_BODY_SIZE_LIMIT,
            n => n,
        };
        let work = async {
            let request = self.client.decorate(request).await?;
            let mut response = request.send().await.map_err(|e| Error::scrape(describe_reqwest(&e)))?;
            if response.status() != reqwest::StatusCode::OK {
                return Err(Error::scrape(format!("server returned HTTP status {}", response.status())));
            }
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            read_body_into(&mut response, limit, body).await?;
            Ok(Format::from_content_type(&content_type))
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(Error::scrape(format!("context deadline exceeded: scrape timeout of {:?}", self.timeout))),
        }
    }

    /// Scrapes once with `t_ms` as the scrape timestamp, appends and commits, and updates
    /// the target state. The returned report is what the synthetic series say.
    pub async fn scrape_once(&mut self, t_ms: i64) -> ScrapeReport {
        let started = Instant::now();
        let mut body = std::mem::take(&mut self.body);
        let report = match self.fetch(&mut body).await {
            Ok(format) => self.ingest(Ok((&body, format)), t_ms, started),
            Err(e) => self.ingest(Err(e), t_ms, started),
        };
        // Keep the buffer for the next scrape, unless it is far larger than this body (a
        // target that once sent a huge body does not pin that memory).
        let len = body.len();
        body.clear();
        if body.capacity() > (4 * len).max(1 << 20) {
            body.shrink_to(len);
        }
        self.body = body;
        report
    }

    /// Ingests a body as if a scrape at `t_ms` had returned it: the same limits, labels,
    /// staleness, synthetic series and target state as [`ScrapeLoop::scrape_once`], without
    /// HTTP (for pushed or replayed expositions, and benches).
    pub fn ingest_body(&mut self, body: &[u8], format: Format, t_ms: i64) -> ScrapeReport {
        self.ingest(Ok((body, format)), t_ms, Instant::now())
    }

    fn ingest(&mut self, fetched: Result<(&[u8], Format), Error>, t_ms: i64, started: Instant) -> ScrapeReport {
        let mut report = ScrapeReport::default();
        let storage = Arc::clone(&self.storage);
        let mut app = storage.appender();
        let mut exposed = None;
        let result = match fetched {
            Ok((body, format)) => {
                exposed = Some((body, format));
                self.append_body(&mut *app, body, format, t_ms, &mut report)
            }
            Err(e) => Err(e),
        };
        let error = match result {
            Ok(()) => None,
            Err(e) => {
                // As Prometheus: drop what was appended and treat the scrape as empty, so
                // every series of the previous scrape goes stale.
                app.rollback();
                report.series_added = 0;
                report.samples_post_metric_relabeling = 0;
                let previous = self.generation;
                self.append_staleness(&mut *app, t_ms, |c| {
                    c.seen == previous || (c.seen == previous + 1 && c.added <= previous)
                });
                self.cache.clear();
                Some(e)
            }
        };
        report.up = error.is_none();
        self.counters.scrapes.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = &error {
            self.counters.failed_scrapes.fetch_add(1, Ordering::Relaxed);
            if e.to_string().starts_with("body size limit exceeded") {
                self.counters.exceeded_body_size_limit.fetch_add(1, Ordering::Relaxed);
            }
        }
        let duration = started.elapsed();
        self.append_report(&mut *app, t_ms, &report, duration.as_secs_f64());
        let commit_error = app.commit().err();
        let error_text = match (&error, commit_error) {
            (Some(e), _) => e.to_string(),
            (None, Some(e)) => e.to_string(),
            (None, None) => String::new(),
        };
        {
            let mut state = self.handle.state.lock().unwrap_or_else(|e| e.into_inner());
            state.health = if error_text.is_empty() { TargetHealth::Up } else { TargetHealth::Down };
            state.last_error = error_text;
            state.last_scrape_ms = t_ms;
            state.last_scrape_duration = duration;
        }
        if let (None, Some((body, format))) = (&error, exposed) {
            if self.metadata_digest_scraped != self.metadata_digest {
                self.apply_metadata(body, format);
                self.metadata_digest = self.metadata_digest_scraped;
            }
        }
        report
    }

    /// Reads the metadata lines of `body` (which parsed) into the loop's metadata and shows it
    /// on the handle if it changed.
    fn apply_metadata(&mut self, body: &[u8], format: Format) {
        self.metadata_generation += 1;
        for entry in Parser::new(body, format) {
            match entry {
                Ok(Entry::Help { name, help }) => self.set_help(&name, &help),
                Ok(Entry::Type { name, metric_type }) => self.set_type(&name, metric_type),
                Ok(Entry::Unit { name, unit }) => self.set_unit(&name, unit),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        self.publish_metadata();
    }

    /// Updates family `name`'s metadata with `update` (which says whether it changed
    /// anything) and marks `field` (help 1, type 2, unit 4) as exposed by the current parse.
    fn touch_metadata(&mut self, name: &str, field: u8, update: impl FnOnce(&mut Metadata) -> bool) {
        let generation = self.metadata_generation;
        let entry = match self.metadata.get_mut(name) {
            Some(entry) => entry,
            None => {
                self.metadata_dirty = true;
                self.metadata.entry(name.into()).or_default()
            }
        };
        if entry.seen != generation {
            entry.seen = generation;
            entry.fields = 0;
        }
        entry.fields |= field;
        self.metadata_dirty |= update(&mut entry.metadata);
    }

    fn set_help(&mut self, name: &str, help: &str) {
        self.touch_metadata(name, 1, |m| {
            let changed = m.help != help;
            if changed {
                m.help.clear();
                m.help.push_str(help);
            }
            changed
        });
    }

    fn set_type(&mut self, name: &str, metric_type: MetricType) {
        self.touch_metadata(name, 2, |m| m.metric_type.replace(metric_type) != Some(metric_type));
    }

    fn set_unit(&mut self, name: &str, unit: &str) {
        self.touch_metadata(name, 4, |m| {
            let changed = m.unit != unit;
            if changed {
                m.unit.clear();
                m.unit.push_str(unit);
            }
            changed
        });
    }

    /// After a successful scrape: forgets families and fields it did not expose, and shows
    /// the result on the handle if anything changed.
    fn publish_metadata(&mut self) {
        let generation = self.metadata_generation;
        let before = self.metadata.len();
        self.metadata.retain(|_, e| e.seen == generation);
        let mut dirty = self.metadata_dirty || self.metadata.len() != before;
        for e in self.metadata.values_mut() {
            let m = &mut e.metadata;
            if e.fields & 1 == 0 && !m.help.is_empty() {
                m.help.clear();
                dirty = true;
            }
            if e.fields & 2 == 0 && m.metric_type.is_some() {
                m.metric_type = None;
                dirty = true;
            }
            if e.fields & 4 == 0 && !m.unit.is_empty() {
                m.unit.clear();
                dirty = true;
            }
        }
        if dirty {
            let published: HashMap<String, Metadata> =
                self.metadata.iter().map(|(name, e)| (name.to_string(), e.metadata.clone())).collect();
            *self.handle.metadata.lock().unwrap_or_else(|e| e.into_inner()) = published;
        }
        self.metadata_dirty = false;
    }

    fn append_body(
        &mut self,
        app: &mut dyn Appender,
        body: &[u8],
        format: Format,
        t_ms: i64,
        report: &mut ScrapeReport,
    ) -> Result<(), Error> {
        let config = Arc::clone(&self.config);
        let generation = self.generation + 1;
        self.cache.begin();
        // The metadata lines are only hashed here; they are read into the loop's metadata
        // after the scrape succeeded, and only when they differ from the last applied.
        let mut digest = xxhash_rust::xxh3::Xxh3::with_seed(self.hash_seed);
        let mut limit_error = None;
        for entry in Parser::new(body, format) {
            let entry =
                entry.map_err(|e| Error::scrape(format!("parse error at {}:{}: {}", e.line, e.column, e.message)))?;
            let series = match entry {
                Entry::Help { name, help } => {
                    digest_metadata(&mut digest, 1, &name, &help);
                    continue;
                }
                Entry::Type { name, metric_type } => {
                    digest_metadata(&mut digest, 2, &name, metric_type.as_str(Format::OpenMetrics));
                    continue;
                }
                Entry::Unit { name, unit } => {
                    digest_metadata(&mut digest, 4, &name, unit);
                    continue;
                }
                Entry::Comment(_) => continue,
                Entry::Series(series) => series,
            };
            report.samples_scraped += 1;
            if limit_error.is_some() {
                continue;
            }
            let key = series.series();
            let explicit_ts = config.honor_timestamps && series.timestamp().is_some();
            let tracked = !explicit_ts || config.track_timestamps_staleness;
            // A known line costs one comparison (or one lookup) of its raw series text;
            // labels are built (and the text copied into the cache) only for a new one.
            let cached = match self.cache.get_mut(key) {
                Some(cached) => cached,
                None => {
                    let raw = series.to_labels().map_err(|e| Error::scrape(e.to_string()))?;
                    let labels = self.finish_labels(&raw, &config).inspect_err(|_| {
                        self.counters.exceeded_label_limits.fetch_add(1, Ordering::Relaxed);
                    })?;
                    let hash = labels.as_ref().map_or(0, |l| l.stable_hash());
                    if labels.is_some() {
                        report.series_added += 1;
                    }
                    let entry =
                        CachedSeries { labels, hash, seen: generation, added: generation, tracked, series_ref: 0 };
                    self.cache.insert(key, entry)
                }
            };
            cached.seen = generation;
            cached.tracked = tracked;
            let Some(labels) = &cached.labels else { continue };
            report.samples_post_metric_relabeling += 1;
            if config.sample_limit > 0 && report.samples_post_metric_relabeling > config.sample_limit {
                self.counters.exceeded_sample_limit.fetch_add(1, Ordering::Relaxed);
                limit_error = Some(Error::scrape(format!(
                    "sample limit exceeded: more than {} samples after metric relabeling",
                    config.sample_limit
                )));
                continue;
            }
            let t = if explicit_ts { series.timestamp().unwrap_or(t_ms) } else { t_ms };
            match app.append_cached(&mut cached.series_ref, labels, t, series.value()) {
                Ok(()) => {}
                Err(StorageError::OutOfOrderSample { .. }) => {
                    self.counters.sample_out_of_order.fetch_add(1, Ordering::Relaxed);
                }
                Err(StorageError::DuplicateSampleForTimestamp { .. }) => {
                    self.counters.sample_duplicate_timestamp.fetch_add(1, Ordering::Relaxed);
                }
                Err(StorageError::OutOfBounds { .. }) => {
                    self.counters.sample_out_of_bounds.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(e) = limit_error {
            return Err(e);
        }
        self.metadata_digest_scraped = digest.digest128();
        let previous = self.generation;
        self.append_staleness(app, t_ms, |c| c.seen == previous);
        self.cache.finish(|c| c.seen == generation);
        self.generation = generation;
        Ok(())
    }

    /// Stale markers for the tracked series `gone` selects, unless a series with the same
    /// labels was exposed by this scrape under another spelling.
    fn append_staleness(&mut self, app: &mut dyn Appender, t_ms: i64, gone: impl Fn(&CachedSeries) -> bool) {
        let stale: Vec<&CachedSeries> =
            self.cache.values().filter(|c| c.labels.is_some() && c.tracked && gone(c)).collect();
        if stale.is_empty() {
            return;
        }
        let current: HashSet<u64> = self.cache.values().filter(|c| !gone(c)).map(|c| c.hash).collect();
        let mut done = HashSet::new();
        for c in stale {
            if let Some(labels) = &c.labels {
                if !current.contains(&c.hash) && done.insert(c.hash) {
                    let _ = app.append(labels, t_ms, stale_nan());
                }
            }
        }
    }

    /// Target labels (with `honor_labels`), metric relabeling and label limits; `None` when
    /// relabeling drops the series.
    fn finish_labels(&self, scraped: &Labels, config: &ScrapeConfig) -> Result<Option<Labels>, Error> {
        let mut builder = LabelsBuilder::new(scraped);
        let target_labels = self.target.labels();
        if config.honor_labels {
            for l in target_labels.iter() {
                if scraped.get(&l.name).unwrap_or("").is_empty() {
                    builder.set(&l.name, &l.value);
                }
            }
        } else {
            for l in target_labels.iter() {
                if let Some(existing) = scraped.get(&l.name).filter(|v| !v.is_empty()) {
                    let mut name = format!("exported_{}", l.name);
                    while scraped.get(&name).is_some_and(|v| !v.is_empty()) {
                        name = format!("exported_{name}");
                    }
                    builder.set(&name, existing);
                }
                builder.set(&l.name, &l.value);
            }
        }
        if !relabel_builder(&mut builder, &config.metric_relabel_configs) {
            return Ok(None);
        }
        let labels = builder.labels();
        if labels.get(METRIC_NAME).unwrap_or("").is_empty() {
            return Ok(None);
        }
        if config.label_limit > 0 && labels.len() as u64 > config.label_limit {
            return Err(Error::scrape(format!(
                "label_limit exceeded (metric: {}, number of labels: {}, limit: {})",
                labels.metric_name().unwrap_or(""),
                labels.len(),
                config.label_limit
            )));
        }
        for l in labels.iter() {
            if config.label_name_length_limit > 0 && l.name.len() as u64 > config.label_name_length_limit {
                return Err(Error::scrape(format!(
                    "label_name_length_limit exceeded (metric: {}, label name: {}, limit: {})",
                    labels.metric_name().unwrap_or(""),
                    l.name,
                    config.label_name_length_limit
                )));
            }
            if config.label_value_length_limit > 0 && l.value.len() as u64 > config.label_value_length_limit {
                return Err(Error::scrape(format!(
                    "label_value_length_limit exceeded (metric: {}, label name: {}, value: {:?}, limit: {})",
                    labels.metric_name().unwrap_or(""),
                    l.name,
                    &*l.value,
                    config.label_value_length_limit
                )));
            }
        }
        Ok(Some(labels))
    }

    fn append_report(&mut self, app: &mut dyn Appender, t_ms: i64, report: &ScrapeReport, duration_seconds: f64) {
        let values = [
            if report.up { 1.0 } else { 0.0 },
            duration_seconds,
            report.samples_scraped as f64,
            report.samples_post_metric_relabeling as f64,
            report.series_added as f64,
        ];
        for ((labels, series_ref), value) in self.report_series.iter_mut().zip(values) {
            let _ = app.append_cached(series_ref, labels, t_ms, value);
        }
    }

    /// Ends the loop's series: with [`StopMode::Stale`], every series of the last scrape and
    /// the synthetic series get a staleness marker at `t_ms`.
    pub fn stop(&mut self, mode: StopMode, t_ms: i64) {
        if mode == StopMode::Quiet {
            return;
        }
        let storage = Arc::clone(&self.storage);
        let mut app = storage.appender();
        let last = self.generation;
        self.append_staleness(&mut *app, t_ms, |c| c.seen == last);
        self.cache.clear();
        for (labels, series_ref) in self.report_series.iter_mut() {
            let _ = app.append_cached(series_ref, labels, t_ms, stale_nan());
        }
        let _ = app.commit();
    }

    /// Scrapes every interval, at this target's offset, until `stop` says otherwise; then
    /// ends as [`ScrapeLoop::stop`] does.
    pub async fn run(mut self, mut stop: watch::Receiver<Option<StopMode>>) {
        let interval_ms = self.interval.as_millis().max(1) as i64;
        let now = self.clock.now_ms();
        let offset = self.offset().as_millis() as i64;
        let mut next = now - now.rem_euclid(interval_ms) + offset;
        if next < now {
            next += interval_ms;
        }
        let start = tokio::time::Instant::now() + std::time::Duration::from_millis((next - now).max(0) as u64);
        let mut ticks = tokio::time::interval_at(start, self.interval.max(std::time::Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                changed = stop.changed() => {
                    let mode = if changed.is_ok() { (*stop.borrow()).unwrap_or(StopMode::Stale) } else { StopMode::Stale };
                    let t = self.clock.now_ms();
                    self.stop(mode, t);
                    return;
                }
            }
            let t = self.clock.now_ms();
            self.scrape_once(t).await;
        }
    }
}

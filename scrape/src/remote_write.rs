//! The remote-write sender with a durable buffer: [`RemoteWriteStorage`] takes samples
//! through the `Appendable` seam into a WAL; one queue per `remote_write` endpoint reads the
//! WAL from its persisted send position, shards by series, batches, sends and retries, and
//! persists the position after every delivered batch.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use sextant_model::remote::{
    encode_write_request, encode_write_request_v2, labels_from_proto, labels_to_proto, v2, TimeSeries, WriteRequest,
};
use sextant_model::{timestamp_ms, Appendable, Appender, Clock, Labels, LabelsBuilder, StorageError};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::client::{describe_reqwest, HttpClient};
use crate::config::{Config, RemoteWriteConfig};
use crate::relabel::relabel_builder;
use crate::wal::{
    count_samples, list_segments, load_position, segment_path, store_position, Position, ReadOutcome, WalReader,
    WalWriter,
};
use crate::Error;

/// Limits of the agent's buffer (the WAL). Segments every endpoint has sent are deleted at
/// once; beyond that, the oldest segments go when the buffer is larger than `max_bytes` or
/// older than `max_age`, and what they held for an endpoint is counted as dropped.
///
/// By default the WAL is synced to disk when a segment is full and at shutdown (a machine
/// crash can lose the last unsynced commits, a process crash loses nothing); `fsync_commits`
/// syncs it on every commit instead, so that a committed scrape survives a power loss.
#[derive(Debug, Clone, Copy)]
pub struct BufferOptions {
    pub segment_size: u64,
    pub max_bytes: u64,
    pub max_age: StdDuration,
    pub fsync_commits: bool,
    /// How often each queue recomputes its number of shards from the observed rates
    /// (Prometheus: 10 s).
    pub shard_update_period: StdDuration,
}

impl Default for BufferOptions {
    fn default() -> BufferOptions {
        BufferOptions {
            segment_size: 16 << 20,
            max_bytes: 4 << 30,
            max_age: StdDuration::from_secs(24 * 3600),
            fsync_commits: false,
            shard_update_period: StdDuration::from_secs(10),
        }
    }
}

/// Name, type, extra labels and getter of one self-metric.
type MetricFamily = (&'static str, &'static str, &'static str, fn(&QueueMetrics) -> u64);

/// Counters of one endpoint's queue, named as Prometheus names them where it has them.
#[derive(Debug, Default)]
struct QueueMetrics {
    samples_sent: AtomicU64,
    samples_failed: AtomicU64,
    samples_retried: AtomicU64,
    samples_dropped_relabel: AtomicU64,
    samples_dropped_too_old: AtomicU64,
    samples_dropped_buffer_size: AtomicU64,
    samples_dropped_buffer_age: AtomicU64,
    bytes_sent: AtomicU64,
    highest_sent_ms: AtomicU64,
    shards: AtomicU64,
    shards_desired: AtomicU64,
    shards_min: AtomicU64,
    shards_max: AtomicU64,
    /// Nanoseconds spent in requests (summed over concurrent shards), for the sharding.
    send_nanos: AtomicU64,
}

#[derive(Debug)]
struct QueueShared {
    name: String,
    url: String,
    metrics: QueueMetrics,
    /// Where this queue's reader stands (segment), for buffer truncation.
    read_segment: AtomicU64,
    /// Segment of the persisted send position: segments before it are delivered.
    committed_segment: AtomicU64,
    /// Set by truncation: the reader must not be before this segment.
    first_segment: AtomicU64,
    /// Sending remote write 2.0 (`protobuf_message: io.prometheus.write.v2.Request`) until
    /// the receiver answers 415.
    send_v2: AtomicBool,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    wal_dir: PathBuf,
    writer: Mutex<WalWriter>,
    notify: Notify,
    options: BufferOptions,
    queues: Mutex<Vec<Arc<QueueShared>>>,
    samples_in: AtomicU64,
    highest_in_ms: AtomicU64,
    /// WAL syncs done by commits (`fsync_commits`).
    fsyncs: AtomicU64,
    clock: Arc<dyn Clock>,
}

/// The agent's storage: an `Appendable` whose commits go to the WAL, and the queues that
/// send it to every `remote_write` endpoint.
pub struct RemoteWriteStorage {
    shared: Arc<Shared>,
    running: Mutex<Vec<Running>>,
    /// Whether the configuration has `remote_write` endpoints ([`RemoteWriteStorage::is_active`]).
    active: AtomicBool,
}

/// A queue's task and what it was started with (a reload restarts it when that changes).
struct Running {
    name: String,
    config: RemoteWriteConfig,
    external: Labels,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops the task (an in-flight request finishes first; its state is persisted).
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for RemoteWriteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWriteStorage").field("wal", &self.shared.wal_dir).finish()
    }
}

/// The queue name of an endpoint: its `name`, else a hash of its URL (stable across restarts,
/// so its send position is found again).
fn queue_name(config: &RemoteWriteConfig) -> String {
    if !config.name.is_empty() {
        return config.name.clone();
    }
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(config.url.as_bytes()))[..6].to_string()
}

/// A queue's persisted state: everything before `committed` is delivered; `pending` is a
/// batch interrupted by a shutdown.
#[derive(Debug, Clone, Default, PartialEq)]
struct QueueState {
    committed: Position,
    pending: Option<Pending>,
}

/// A batch ending at `end`, cut into requests with `shards` shards of at most `max_per_send`
/// samples, of which the requests `done` were delivered: after a restart the same batch is
/// cut the same way and only the others are sent.
#[derive(Debug, Clone, Default, PartialEq)]
struct Pending {
    end: Position,
    shards: usize,
    max_per_send: usize,
    done: Vec<usize>,
}

fn load_state(path: &Path) -> Result<Option<QueueState>, Error> {
    let Some(committed) = load_position(path)? else { return Ok(None) };
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let pending = text.lines().nth(1).and_then(|line| {
        let mut parts = line.split_whitespace();
        let segment = parts.next()?.parse().ok()?;
        let offset = parts.next()?.parse().ok()?;
        let shards = parts.next()?.parse().ok().filter(|n| *n > 0)?;
        let max_per_send = parts.next()?.parse().ok().filter(|n| *n > 0)?;
        let done = parts.next().unwrap_or("").split(',').filter_map(|i| i.parse().ok()).collect();
        Some(Pending { end: Position { segment, offset }, shards, max_per_send, done })
    });
    Ok(Some(QueueState { committed, pending }))
}

fn store_state(path: &Path, state: &QueueState) -> Result<(), Error> {
    store_position(path, state.committed)?;
    if let Some(p) = &state.pending {
        let done: Vec<String> = p.done.iter().map(|i| i.to_string()).collect();
        let done = if done.is_empty() { "-".to_string() } else { done.join(",") };
        let text = format!(
            "{} {}\n{} {} {} {} {done}\n",
            state.committed.segment, state.committed.offset, p.end.segment, p.end.offset, p.shards, p.max_per_send
        );
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| Error::io(tmp.display().to_string(), e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path.display().to_string(), e))?;
    }
    Ok(())
}

fn position_path(dir: &Path, name: &str) -> PathBuf {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    dir.join("queues").join(format!("{safe}.position"))
}

/// Starts the queue of one endpoint, resuming from its persisted position (a new endpoint
/// starts at the current end of the buffer: it gets what is written from now on).
fn start_queue(
    shared: &Arc<Shared>,
    rw: &RemoteWriteConfig,
    client: HttpClient,
    external: &Labels,
) -> Result<Running, Error> {
    let name = queue_name(rw);
    let path = position_path(&shared.dir, &name);
    let first = list_segments(&shared.wal_dir)?.first().copied().unwrap_or(0);
    let state = match load_state(&path)? {
        Some(state) => state,
        None => {
            let state = QueueState { committed: lock(&shared.writer).end(), pending: None };
            store_state(&path, &state)?;
            state
        }
    };
    let position = state.committed.max(Position { segment: first, offset: 0 });
    let pending = state.pending.filter(|_| position == state.committed);
    let metrics = QueueMetrics::default();
    let qc = &rw.queue_config;
    metrics.shards.store(qc.min_shards.max(1) as u64, Ordering::Relaxed);
    metrics.shards_desired.store(qc.min_shards.max(1) as u64, Ordering::Relaxed);
    metrics.shards_min.store(qc.min_shards.max(1) as u64, Ordering::Relaxed);
    metrics.shards_max.store(qc.max_shards.max(qc.min_shards).max(1) as u64, Ordering::Relaxed);
    let q = Arc::new(QueueShared {
        name: name.clone(),
        url: rw.url.clone(),
        metrics,
        read_segment: AtomicU64::new(position.segment),
        committed_segment: AtomicU64::new(position.segment),
        first_segment: AtomicU64::new(first),
        send_v2: AtomicBool::new(rw.protobuf_message == "io.prometheus.write.v2.Request"),
    });
    lock(&shared.queues).push(Arc::clone(&q));
    let (stop, stop_rx) = watch::channel(false);
    let queue = Queue {
        shared: Arc::clone(shared),
        q,
        config: rw.clone(),
        client,
        external: external.clone(),
        position_path: path,
        reader: WalReader::new(&shared.wal_dir, position),
        stop: stop_rx,
        pending,
        sharding: Sharding {
            last_update: tokio::time::Instant::now(),
            last_counts: [shared.samples_in.load(Ordering::Relaxed), 0, 0, 0],
            in_rate: Ewma::default(),
            out_rate: Ewma::default(),
            dropped_rate: Ewma::default(),
            out_duration: Ewma::default(),
        },
    };
    let task = tokio::spawn(queue.run());
    Ok(Running { name, config: rw.clone(), external: external.clone(), stop, task })
}

impl RemoteWriteStorage {
    /// Opens the buffer in `dir` (created if missing) and starts one queue per
    /// `config.remote_write` entry, each resuming from its persisted position.
    pub fn open(
        dir: &Path,
        config: &Config,
        options: BufferOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<RemoteWriteStorage, Error> {
        let wal_dir = dir.join("wal");
        let writer = WalWriter::open(&wal_dir, options.segment_size)?;
        std::fs::create_dir_all(dir.join("queues")).map_err(|e| Error::io(dir.display().to_string(), e))?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            wal_dir,
            writer: Mutex::new(writer),
            notify: Notify::new(),
            options,
            queues: Mutex::new(Vec::new()),
            samples_in: AtomicU64::new(0),
            highest_in_ms: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            clock,
        });
        let external = config.global.external_labels();
        let clients =
            config.remote_write.iter().map(|rw| HttpClient::new(&rw.http, false)).collect::<Result<_, _>>()?;
        let mut running = Vec::new();
        for (rw, client) in config.remote_write.iter().zip::<Vec<HttpClient>>(clients) {
            running.push(start_queue(&shared, rw, client, &external)?);
        }
        shared.truncate();
        let active = AtomicBool::new(!config.remote_write.is_empty());
        Ok(RemoteWriteStorage { shared, running: Mutex::new(running), active })
    }

    /// Applies a new configuration's `remote_write` and external labels: queues whose
    /// endpoint configuration is unchanged keep running; changed ones are stopped (their
    /// send position persisted) and restarted from where they stood, with nothing lost or
    /// sent twice; removed ones stop; new ones start at the current end of the buffer. An
    /// invalid configuration (e.g. an unreadable CA file) changes nothing.
    pub async fn apply_config(&self, config: &Config) -> Result<(), Error> {
        let external = config.global.external_labels();
        let clients: Vec<HttpClient> =
            config.remote_write.iter().map(|rw| HttpClient::new(&rw.http, false)).collect::<Result<_, _>>()?;
        if !config.remote_write.is_empty() {
            // Before any queue restarts, so that no commit in between is left out.
            self.active.store(true, Ordering::SeqCst);
        }
        let old: Vec<Running> = lock(&self.running).drain(..).collect();
        let mut kept = Vec::new();
        for r in old {
            let unchanged = config.remote_write.iter().any(|rw| queue_name(rw) == r.name && *rw == r.config)
                && r.external == external;
            if unchanged {
                kept.push(r);
                continue;
            }
            let name = r.name.clone();
            r.stop().await;
            lock(&self.shared.queues).retain(|q| q.name != name);
        }
        let mut error = None;
        for (rw, client) in config.remote_write.iter().zip(clients) {
            let name = queue_name(rw);
            if kept.iter().any(|r| r.name == name) {
                continue;
            }
            match start_queue(&self.shared, rw, client, &external) {
                Ok(r) => kept.push(r),
                Err(e) => error = Some(e),
            }
        }
        lock(&self.running).extend(kept);
        self.active.store(!config.remote_write.is_empty(), Ordering::SeqCst);
        self.shared.truncate();
        error.map_or(Ok(()), Err)
    }

    /// Whether the applied configuration has `remote_write` endpoints. A storage that writes
    /// to several places (a server's TSDB and this buffer) can skip the buffer while it has
    /// none: a queue added later starts at the end of the buffer anyway.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// Self-metrics in the text exposition format.
    pub fn metrics_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let s = &self.shared;
        let _ = writeln!(out, "# TYPE prometheus_remote_storage_samples_in_total counter");
        let _ = writeln!(out, "prometheus_remote_storage_samples_in_total {}", s.samples_in.load(Ordering::Relaxed));
        let _ = writeln!(out, "# TYPE sextant_remote_storage_wal_commit_fsyncs_total counter");
        let _ = writeln!(out, "sextant_remote_storage_wal_commit_fsyncs_total {}", s.fsyncs.load(Ordering::Relaxed));
        let _ = writeln!(out, "# TYPE prometheus_remote_storage_highest_timestamp_in_seconds gauge");
        let _ = writeln!(
            out,
            "prometheus_remote_storage_highest_timestamp_in_seconds {}",
            s.highest_in_ms.load(Ordering::Relaxed) / 1000
        );
        let families: [MetricFamily; 13] = [
            ("prometheus_remote_storage_samples_total", "counter", "", |m| m.samples_sent.load(Ordering::Relaxed)),
            ("prometheus_remote_storage_samples_failed_total", "counter", "", |m| {
                m.samples_failed.load(Ordering::Relaxed)
            }),
            ("prometheus_remote_storage_samples_retried_total", "counter", "", |m| {
                m.samples_retried.load(Ordering::Relaxed)
            }),
            ("prometheus_remote_storage_samples_dropped_total", "counter", "", |m| {
                m.samples_dropped_relabel.load(Ordering::Relaxed)
            }),
            ("sextant_remote_storage_samples_too_old_total", "counter", "", |m| {
                m.samples_dropped_too_old.load(Ordering::Relaxed)
            }),
            ("prometheus_remote_storage_bytes_total", "counter", "", |m| m.bytes_sent.load(Ordering::Relaxed)),
            ("prometheus_remote_storage_queue_highest_sent_timestamp_seconds", "gauge", "", |m| {
                m.highest_sent_ms.load(Ordering::Relaxed) / 1000
            }),
            ("prometheus_remote_storage_shards", "gauge", "", |m| m.shards.load(Ordering::Relaxed)),
            ("prometheus_remote_storage_shards_desired", "gauge", "", |m| m.shards_desired.load(Ordering::Relaxed)),
            ("prometheus_remote_storage_shards_min", "gauge", "", |m| m.shards_min.load(Ordering::Relaxed)),
            ("prometheus_remote_storage_shards_max", "gauge", "", |m| m.shards_max.load(Ordering::Relaxed)),
            ("sextant_remote_storage_buffer_dropped_samples_total", "counter", ",reason=\"size\"", |m| {
                m.samples_dropped_buffer_size.load(Ordering::Relaxed)
            }),
            ("sextant_remote_storage_buffer_dropped_samples_total", "counter", ",reason=\"age\"", |m| {
                m.samples_dropped_buffer_age.load(Ordering::Relaxed)
            }),
        ];
        let mut last_family = "";
        for (family, kind, extra, get) in families {
            if family != last_family {
                let _ = writeln!(out, "# TYPE {family} {kind}");
                last_family = family;
            }
            for q in lock(&s.queues).iter() {
                let _ = writeln!(
                    out,
                    "{family}{{remote_name=\"{}\",url=\"{}\"{extra}}} {}",
                    q.name,
                    q.url,
                    get(&q.metrics)
                );
            }
        }
        out
    }

    /// Samples delivered to each endpoint so far, by queue name.
    pub fn samples_sent(&self) -> HashMap<String, u64> {
        lock(&self.shared.queues)
            .iter()
            .map(|q| (q.name.clone(), q.metrics.samples_sent.load(Ordering::Relaxed)))
            .collect()
    }

    /// Samples dropped from the buffer (size or age limit) before delivery, by queue name.
    pub fn samples_dropped_from_buffer(&self) -> HashMap<String, u64> {
        lock(&self.shared.queues)
            .iter()
            .map(|q| {
                let m = &q.metrics;
                (
                    q.name.clone(),
                    m.samples_dropped_buffer_size.load(Ordering::Relaxed)
                        + m.samples_dropped_buffer_age.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// Stops the queues (an in-flight request finishes first), syncs the WAL and waits for
    /// the tasks. What was not sent stays buffered for the next start.
    pub async fn shutdown(&self) -> Result<(), Error> {
        let running: Vec<Running> = lock(&self.running).drain(..).collect();
        for r in &running {
            let _ = r.stop.send(true);
        }
        for r in running {
            r.stop().await;
        }
        lock(&self.shared.writer).sync()
    }
}

impl Drop for RemoteWriteStorage {
    fn drop(&mut self) {
        for r in lock(&self.running).iter() {
            r.task.abort();
        }
    }
}

impl Shared {
    /// Deletes segments no queue needs, then enforces the size and age limits.
    fn truncate(&self) {
        let Ok(segments) = list_segments(&self.wal_dir) else { return };
        let current = self.writer.lock().unwrap_or_else(|e| e.into_inner()).segment();
        let queues: Vec<Arc<QueueShared>> = lock(&self.queues).clone();
        let needed = queues.iter().map(|q| q.committed_segment.load(Ordering::SeqCst)).min().unwrap_or(current);
        let mut sizes: Vec<(u64, u64, Option<std::time::SystemTime>)> = Vec::new();
        for s in segments {
            let path = segment_path(&self.wal_dir, s);
            if s < needed.min(current) {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let meta = std::fs::metadata(&path).ok();
            sizes.push((s, meta.as_ref().map_or(0, |m| m.len()), meta.and_then(|m| m.modified().ok())));
        }
        let mut total: u64 = sizes.iter().map(|s| s.1).sum();
        let now_ms = self.clock.now_ms();
        let max_age_ms = self.options.max_age.as_millis().min(i64::MAX as u128) as i64;
        for (segment, size, modified) in sizes {
            if segment >= current {
                break;
            }
            let too_big = total > self.options.max_bytes;
            let too_old = modified.is_some_and(|m| now_ms.saturating_sub(timestamp_ms(m)) > max_age_ms);
            if !too_big && !too_old {
                break;
            }
            for q in &queues {
                let at = q.read_segment.load(Ordering::SeqCst);
                if at <= segment {
                    // What this queue had not sent of the segment is lost to it (counted from
                    // the segment start: a partly read segment is counted whole).
                    let n = count_samples(&self.wal_dir, segment, 0);
                    let counter = if too_big {
                        &q.metrics.samples_dropped_buffer_size
                    } else {
                        &q.metrics.samples_dropped_buffer_age
                    };
                    counter.fetch_add(n, Ordering::Relaxed);
                }
                q.first_segment.fetch_max(segment + 1, Ordering::SeqCst);
            }
            let _ = std::fs::remove_file(segment_path(&self.wal_dir, segment));
            total = total.saturating_sub(size);
        }
    }
}

impl Appendable for RemoteWriteStorage {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(BufferAppender { shared: &self.shared, samples: Vec::new() })
    }
}

struct BufferAppender<'a> {
    shared: &'a Shared,
    samples: Vec<(Labels, i64, f64)>,
}

impl Appender for BufferAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), StorageError> {
        if labels.metric_name().unwrap_or("").is_empty() {
            return Err(StorageError::InvalidLabels { labels: labels.clone() });
        }
        self.samples.push((labels.clone(), t, v));
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        if self.samples.is_empty() {
            return Ok(());
        }
        let rolled = {
            let mut writer = self.shared.writer.lock().unwrap_or_else(|e| e.into_inner());
            let rolled = writer.append(&self.samples).map_err(|e| StorageError::Backend(Box::new(e)))?;
            if self.shared.options.fsync_commits {
                writer.sync().map_err(|e| StorageError::Backend(Box::new(e)))?;
                self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
            }
            rolled
        };
        self.shared.samples_in.fetch_add(self.samples.len() as u64, Ordering::Relaxed);
        let highest = self.samples.iter().map(|s| s.1).max().unwrap_or(0).max(0) as u64;
        self.shared.highest_in_ms.fetch_max(highest, Ordering::Relaxed);
        self.samples.clear();
        if rolled {
            self.shared.truncate();
        }
        self.shared.notify.notify_waiters();
        Ok(())
    }

    fn rollback(&mut self) {
        self.samples.clear();
    }
}

struct Queue {
    shared: Arc<Shared>,
    q: Arc<QueueShared>,
    config: RemoteWriteConfig,
    client: HttpClient,
    external: Labels,
    position_path: PathBuf,
    reader: WalReader,
    stop: watch::Receiver<bool>,
    /// A batch interrupted by the last shutdown.
    pending: Option<Pending>,
    sharding: Sharding,
}

/// An exponentially weighted moving average, as Prometheus' queue manager keeps its rates.
#[derive(Debug, Default)]
struct Ewma {
    value: f64,
    init: bool,
}

impl Ewma {
    const WEIGHT: f64 = 0.2;

    fn add(&mut self, x: f64) {
        if self.init {
            self.value += Self::WEIGHT * (x - self.value);
        } else {
            self.value = x;
            self.init = true;
        }
    }
}

/// The moving averages one queue's sharding decisions use.
#[derive(Debug)]
struct Sharding {
    last_update: tokio::time::Instant,
    /// Samples written to the buffer, sent (or failed), dropped, and nanoseconds sending, at
    /// the last update.
    last_counts: [u64; 4],
    in_rate: Ewma,
    out_rate: Ewma,
    dropped_rate: Ewma,
    out_duration: Ewma,
}

/// What the number of shards is computed from: rates per second over recent periods.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ShardInputs {
    /// Samples entering the buffer.
    in_rate: f64,
    /// Samples sent (delivered or given up).
    out_rate: f64,
    /// Samples dropped by relabeling or the age limit.
    dropped_rate: f64,
    /// Seconds spent sending per second (summed over concurrent requests).
    out_duration: f64,
    /// How far the newest sent sample is behind the newest buffered one.
    delay_seconds: f64,
    update_period_seconds: f64,
    current: usize,
    min: usize,
    max: usize,
}

/// Prometheus' rule for the number of shards: enough shards for the time one sample takes
/// to send times the rate of samples to send, plus a share of the backlog; no change within
/// 30 % of the current number; no scaling down while more than 10 s behind; within
/// `min..=max`. Returns the desired number and the one to use.
fn desired_shards(i: &ShardInputs) -> (usize, usize) {
    const TOLERANCE: f64 = 0.3;
    let clamp = |n: usize| n.clamp(i.min, i.max.max(i.min));
    if i.out_rate.is_nan() || i.out_rate <= 0.0 || !i.in_rate.is_finite() || !i.out_duration.is_finite() {
        return (i.current, clamp(i.current));
    }
    let kept_ratio = i.out_rate / (i.out_rate + i.dropped_rate.max(0.0));
    let time_per_sample = i.out_duration / i.out_rate;
    // The backlog is worked off over about ten update periods.
    let integral_gain = 0.1 / i.update_period_seconds;
    let pending = i.delay_seconds * i.in_rate * kept_ratio;
    let desired = time_per_sample * (i.in_rate * kept_ratio + integral_gain * pending);
    let desired = if desired.is_finite() { desired.ceil().clamp(0.0, 1e6) as usize } else { i.current };
    let lower = i.current as f64 * (1.0 - TOLERANCE);
    let upper = i.current as f64 * (1.0 + TOLERANCE);
    let within_tolerance = (lower..=upper).contains(&(desired as f64));
    let behind = desired < i.current && i.delay_seconds > 10.0;
    let next = if within_tolerance || behind { i.current } else { desired };
    (desired, clamp(next))
}

enum SendOutcome {
    Sent,
    Dropped,
    Stopped,
}

impl Queue {
    fn n_shards(&self) -> usize {
        self.q.metrics.shards.load(Ordering::Relaxed).max(1) as usize
    }

    /// Every `shard_update_period`, folds the rates of the last period into the moving
    /// averages and sets the number of shards the next batches use.
    fn update_shards(&mut self) {
        let now = tokio::time::Instant::now();
        let elapsed = now.duration_since(self.sharding.last_update).as_secs_f64();
        if elapsed < self.shared.options.shard_update_period.as_secs_f64() {
            return;
        }
        let m = &self.q.metrics;
        let counts = [
            self.shared.samples_in.load(Ordering::Relaxed),
            m.samples_sent.load(Ordering::Relaxed) + m.samples_failed.load(Ordering::Relaxed),
            m.samples_dropped_relabel.load(Ordering::Relaxed) + m.samples_dropped_too_old.load(Ordering::Relaxed),
            m.send_nanos.load(Ordering::Relaxed),
        ];
        let st = &mut self.sharding;
        let delta = |i: usize| counts[i].saturating_sub(st.last_counts[i]) as f64 / elapsed;
        let (in_rate, out_rate, dropped_rate, out_duration) = (delta(0), delta(1), delta(2), delta(3) / 1e9);
        st.in_rate.add(in_rate);
        st.out_rate.add(out_rate);
        st.dropped_rate.add(dropped_rate);
        st.out_duration.add(out_duration);
        st.last_counts = counts;
        st.last_update = now;
        let highest_in = self.shared.highest_in_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let highest_sent = m.highest_sent_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let qc = &self.config.queue_config;
        let inputs = ShardInputs {
            in_rate: st.in_rate.value,
            out_rate: st.out_rate.value,
            dropped_rate: st.dropped_rate.value,
            out_duration: st.out_duration.value,
            delay_seconds: (highest_in - highest_sent).max(0.0),
            update_period_seconds: self.shared.options.shard_update_period.as_secs_f64().max(0.001),
            current: self.n_shards(),
            min: qc.min_shards.max(1) as usize,
            max: qc.max_shards.max(qc.min_shards).max(1) as usize,
        };
        let (desired, next) = desired_shards(&inputs);
        m.shards_desired.store(desired as u64, Ordering::Relaxed);
        m.shards.store(next as u64, Ordering::Relaxed);
    }

    /// Applies external labels and write relabeling; `None` drops the series.
    fn series_labels(&self, series: &TimeSeries) -> Option<Labels> {
        let labels = labels_from_proto(&series.labels).ok()?;
        let mut builder = LabelsBuilder::new(&labels);
        for l in self.external.iter() {
            if labels.get(&l.name).is_none() {
                builder.set(&l.name, &l.value);
            }
        }
        relabel_builder(&mut builder, &self.config.write_relabel_configs).then(|| builder.labels())
    }

    /// Reads whole records until `max_samples_per_send` samples or the batch deadline;
    /// returns the series (relabeled) and the position after the last record read.
    async fn next_batch(&mut self) -> Option<(Vec<(Labels, TimeSeries)>, Position)> {
        // One request's worth per shard: more shards move more samples per round.
        let max = self.config.queue_config.max_samples_per_send.max(1) as usize * self.n_shards();
        let deadline_after = self.config.queue_config.batch_send_deadline.as_std();
        let mut batch: Vec<(Labels, TimeSeries)> = Vec::new();
        let mut n_samples = 0;
        let mut deadline = None;
        let mut end = self.reader.position();
        let until = self.pending.as_ref().map(|p| p.end);
        loop {
            if *self.stop.borrow() {
                return None;
            }
            if until.is_some_and(|u| end >= u) {
                return Some((batch, end));
            }
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.reader.skip_to_segment(self.q.first_segment.load(Ordering::SeqCst));
            match self.reader.next_record() {
                Ok(ReadOutcome::Record(request, position)) => {
                    end = position;
                    self.q.read_segment.store(position.segment, Ordering::SeqCst);
                    let age_limit = self.config.queue_config.sample_age_limit.as_std().as_millis() as i64;
                    let oldest_allowed = if age_limit > 0 { self.shared.clock.now_ms() - age_limit } else { i64::MIN };
                    for mut series in request.timeseries {
                        let before = series.samples.len();
                        series.samples.retain(|s| s.timestamp >= oldest_allowed);
                        let too_old = (before - series.samples.len()) as u64;
                        self.q.metrics.samples_dropped_too_old.fetch_add(too_old, Ordering::Relaxed);
                        let n = series.samples.len();
                        if n == 0 {
                            continue;
                        }
                        match self.series_labels(&series) {
                            Some(labels) => {
                                n_samples += n;
                                batch.push((labels, series));
                            }
                            None => {
                                self.q.metrics.samples_dropped_relabel.fetch_add(n as u64, Ordering::Relaxed);
                            }
                        }
                    }
                    deadline.get_or_insert_with(|| tokio::time::Instant::now() + deadline_after);
                    if until.is_some() {
                        continue;
                    }
                    if n_samples >= max {
                        return Some((batch, end));
                    }
                    continue;
                }
                Ok(ReadOutcome::End) => {
                    self.q.read_segment.store(self.reader.position().segment, Ordering::SeqCst);
                }
                Err(e) => {
                    eprintln!("remote_write {}: reading the buffer: {e}", self.q.name);
                }
            }
            let wait_until = match deadline {
                Some(d) if tokio::time::Instant::now() >= d => return Some((batch, end)),
                Some(d) => d,
                None => tokio::time::Instant::now() + deadline_after,
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(wait_until) => {}
                _ = self.stop.changed() => {}
            }
        }
    }

    async fn run(mut self) {
        let mut committed = self.reader.position();
        loop {
            let Some((batch, end)) = self.next_batch().await else { return };
            self.update_shards();
            let max_per_send = self.config.queue_config.max_samples_per_send.max(1) as usize;
            let split = match self.pending.take() {
                Some(p) => Pending { end, ..p },
                None => Pending { end, shards: self.n_shards(), max_per_send, done: Vec::new() },
            };
            let state = match self.send_batch(batch, &split).await {
                Ok(()) => QueueState { committed: end, pending: None },
                Err(done) => QueueState { committed, pending: Some(Pending { done, ..split }) },
            };
            if let Err(e) = store_state(&self.position_path, &state) {
                eprintln!("remote_write {}: persisting the send position: {e}", self.q.name);
            }
            if state.pending.is_some() {
                return;
            }
            committed = end;
            self.q.committed_segment.store(end.segment, Ordering::SeqCst);
        }
    }

    /// Splits by series hash into shards, sends the shards concurrently and each shard's
    /// requests in order (order per series kept: a series is always in the same shard, a
    /// shard's requests go one after the other, and batches go one after the other).
    /// The cut into requests is `split`'s; its `done` requests were delivered before a
    /// restart and are skipped. When stopped before everything was delivered or dropped,
    /// the error lists what was.
    async fn send_batch(&mut self, batch: Vec<(Labels, TimeSeries)>, split: &Pending) -> Result<(), Vec<usize>> {
        let (n_shards, max, already) = (split.shards.max(1), split.max_per_send.max(1), &split.done);
        let mut shards: Vec<Vec<TimeSeries>> = vec![Vec::new(); n_shards];
        for (labels, mut series) in batch {
            let shard = (labels.stable_hash() % n_shards as u64) as usize;
            series.labels = labels_to_proto(&labels);
            shards[shard].push(series);
        }
        // Requests are numbered across shards (the numbers `done` refers to); each shard's
        // requests go one after the other, so a series' samples arrive in order even when a
        // backlog makes a shard need several requests; the shards go concurrently.
        let mut per_shard: Vec<Vec<(usize, WriteRequest)>> = Vec::with_capacity(n_shards);
        let mut next_index = 0;
        for shard in shards {
            // Cut each shard into requests of at most max_samples_per_send samples.
            let mut requests = Vec::new();
            let mut current = WriteRequest::default();
            let mut n = 0;
            for series in shard {
                if n > 0 && n + series.samples.len() > max {
                    requests.push((next_index, std::mem::take(&mut current)));
                    next_index += 1;
                    n = 0;
                }
                n += series.samples.len();
                current.timeseries.push(series);
            }
            if n > 0 {
                requests.push((next_index, current));
                next_index += 1;
            }
            per_shard.push(requests);
        }
        let sends = per_shard.into_iter().map(|requests| {
            let mut stop = self.stop.clone();
            let this = &*self;
            async move {
                let mut outcomes = Vec::new();
                for (i, r) in requests.into_iter().filter(|(i, _)| !already.contains(i)) {
                    let outcome = this.send_with_retries(r, &mut stop).await;
                    let stopped = matches!(outcome, SendOutcome::Stopped);
                    outcomes.push((i, outcome));
                    if stopped {
                        break;
                    }
                }
                outcomes
            }
        });
        let outcomes: Vec<(usize, SendOutcome)> = join_all(sends).await.into_iter().flatten().collect();
        if !outcomes.iter().any(|(_, o)| matches!(o, SendOutcome::Stopped)) {
            return Ok(());
        }
        let mut delivered: Vec<usize> = already.to_vec();
        delivered.extend(outcomes.iter().filter(|(_, o)| !matches!(o, SendOutcome::Stopped)).map(|(i, _)| *i));
        delivered.sort_unstable();
        Err(delivered)
    }

    async fn send_with_retries(&self, request: WriteRequest, stop: &mut watch::Receiver<bool>) -> SendOutcome {
        let n_samples: u64 = request.timeseries.iter().map(|s| s.samples.len() as u64).sum();
        let highest = request.timeseries.iter().flat_map(|s| s.samples.iter().map(|x| x.timestamp)).max().unwrap_or(0);
        // Bodies are encoded when first needed: a 2.0 queue falls back to 1.0 mid-request.
        let mut bodies: [Option<Vec<u8>>; 2] = [None, None];
        let qc = &self.config.queue_config;
        let mut backoff = qc.min_backoff.as_std().max(StdDuration::from_millis(1));
        let max_backoff = qc.max_backoff.as_std().max(backoff);
        // Retried failures are logged when the reason changes, and at most once a minute
        // otherwise, so an unreachable receiver is visible without flooding the log.
        let mut last_logged: Option<(String, std::time::Instant)> = None;
        let mut log_retry = |reason: String| {
            let due = match &last_logged {
                Some((last, at)) => *last != reason || at.elapsed() >= StdDuration::from_secs(60),
                None => true,
            };
            if due {
                eprintln!(
                    "remote_write {}: sending {n_samples} samples failed, retrying with backoff: {reason} (check that the receiver at the configured url is up and accepts these credentials)",
                    self.q.name
                );
                last_logged = Some((reason, std::time::Instant::now()));
            }
        };
        loop {
            let v2 = self.q.send_v2.load(Ordering::Relaxed);
            let slot = &mut bodies[usize::from(v2)];
            if slot.is_none() {
                let encoded =
                    if v2 { encode_write_request_v2(&to_v2(&request)) } else { encode_write_request(&request) };
                match encoded {
                    Ok(b) => *slot = Some(b),
                    Err(e) => {
                        eprintln!("remote_write {}: encoding: {e}", self.q.name);
                        self.q.metrics.samples_failed.fetch_add(n_samples, Ordering::Relaxed);
                        return SendOutcome::Dropped;
                    }
                }
            }
            let body = slot.clone().unwrap_or_default();
            let (content_type, version) = if v2 {
                ("application/x-protobuf;proto=io.prometheus.write.v2.Request", "2.0.0")
            } else {
                ("application/x-protobuf", "0.1.0")
            };
            let mut request = self
                .client
                .client
                .post(&self.config.url)
                .header(reqwest::header::CONTENT_ENCODING, "snappy")
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .header(reqwest::header::USER_AGENT, concat!("Sextant/", env!("CARGO_PKG_VERSION")))
                .header("X-Prometheus-Remote-Write-Version", version)
                .timeout(self.config.remote_timeout.as_std())
                .body(body.clone());
            for (k, v) in &self.config.headers {
                request = request.header(k.as_str(), v.as_str());
            }
            let started = std::time::Instant::now();
            let result = match self.client.decorate(request).await {
                Ok(r) => r.send().await.map_err(|e| describe_reqwest(&e)),
                Err(e) => Err(e.to_string()),
            };
            let nanos = started.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
            self.q.metrics.send_nanos.fetch_add(nanos, Ordering::Relaxed);
            let mut wait = backoff;
            match result {
                Ok(response) if v2 && response.status() == reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                    // The receiver does not take 2.0: this request and the following ones
                    // go as 1.0 (the spec's content negotiation by 415), at once.
                    if self.q.send_v2.swap(false, Ordering::Relaxed) {
                        eprintln!(
                            "remote_write {}: the receiver answered 415 to remote write 2.0, falling back to 1.0",
                            self.q.name
                        );
                    }
                    continue;
                }
                Ok(response)
                    if v2
                        && n_samples > 0
                        && response.status().is_success()
                        && !response.headers().contains_key("x-prometheus-remote-write-samples-written") =>
                {
                    // A 2.0 receiver confirms what it wrote; a 1.0 one (Prometheus before
                    // 3.0) decodes a 2.0 body as an empty 1.0 request and answers 2xx having
                    // written nothing. Resend as 1.0, and keep to 1.0.
                    if self.q.send_v2.swap(false, Ordering::Relaxed) {
                        eprintln!(
                            "remote_write {}: the receiver did not confirm a remote write 2.0 request (no X-Prometheus-Remote-Write-Samples-Written), falling back to 1.0",
                            self.q.name
                        );
                    }
                    continue;
                }
                Ok(response) if response.status().is_success() => {
                    let m = &self.q.metrics;
                    m.samples_sent.fetch_add(n_samples, Ordering::Relaxed);
                    m.bytes_sent.fetch_add(body.len() as u64, Ordering::Relaxed);
                    m.highest_sent_ms.fetch_max(highest.max(0) as u64, Ordering::Relaxed);
                    return SendOutcome::Sent;
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(StdDuration::from_secs);
                    if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
                        let text = response.text().await.unwrap_or_default();
                        let text: String = text.chars().take(256).collect();
                        eprintln!(
                            "remote_write {}: dropping {n_samples} samples: server returned HTTP status {status}: {}",
                            self.q.name,
                            text.trim()
                        );
                        self.q.metrics.samples_failed.fetch_add(n_samples, Ordering::Relaxed);
                        return SendOutcome::Dropped;
                    }
                    if let Some(after) = retry_after {
                        wait = after;
                    }
                    log_retry(format!("server returned HTTP status {status}"));
                }
                Err(reason) => log_retry(reason),
            }
            self.q.metrics.samples_retried.fetch_add(n_samples, Ordering::Relaxed);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return SendOutcome::Stopped,
            }
            if *stop.borrow() {
                return SendOutcome::Stopped;
            }
            backoff = (backoff * 2).min(max_backoff);
        }
    }
}

/// The same series as a remote-write 2.0 request: label names and values go to the symbol
/// table (`""` first), series refer to them by index.
fn to_v2(request: &WriteRequest) -> v2::Request {
    let mut symbols = vec![String::new()];
    let mut index: HashMap<&[u8], u32> = HashMap::from([(&b""[..], 0)]);
    let mut timeseries = Vec::with_capacity(request.timeseries.len());
    for series in &request.timeseries {
        let mut labels_refs = Vec::with_capacity(series.labels.len() * 2);
        for label in &series.labels {
            for text in [&label.name[..], &label.value[..]] {
                let next = symbols.len() as u32;
                let r = *index.entry(text).or_insert_with(|| {
                    symbols.push(String::from_utf8_lossy(text).into_owned());
                    next
                });
                labels_refs.push(r);
            }
        }
        timeseries.push(v2::TimeSeries {
            labels_refs,
            samples: series
                .samples
                .iter()
                .map(|s| v2::Sample { value: s.value, timestamp: s.timestamp, start_timestamp: 0 })
                .collect(),
            histograms: Vec::new(),
            exemplars: Vec::new(),
            metadata: None,
        });
    }
    v2::Request { symbols, timeseries }
}

/// Runs futures concurrently on the current task and collects their outputs in order.
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::{desired_shards, ShardInputs};

    fn inputs(in_rate: f64, out_rate: f64, out_duration: f64, delay_seconds: f64, current: usize) -> ShardInputs {
        ShardInputs {
            in_rate,
            out_rate,
            dropped_rate: 0.0,
            out_duration,
            delay_seconds,
            update_period_seconds: 10.0,
            current,
            min: 1,
            max: 50,
        }
    }

    #[test]
    fn shards_follow_the_rates() {
        let cases = [
            // Nothing sent yet: keep the current number.
            (inputs(1000.0, 0.0, 0.0, 0.0, 3), (3, 3)),
            // 1 ms per sample, 1000 samples/s in: one shard is busy all the time.
            (inputs(1000.0, 1000.0, 1.0, 0.0, 1), (1, 1)),
            // Ten times more in than one shard sends: 10 shards.
            (inputs(10_000.0, 1000.0, 1.0, 0.0, 1), (10, 10)),
            // Within 30 % of the current number: unchanged.
            (inputs(12_000.0, 1000.0, 1.0, 0.0, 10), (12, 10)),
            // A backlog of 100 s adds a tenth of it per period.
            (inputs(1000.0, 1000.0, 1.0, 100.0, 1), (2, 2)),
            // Far less needed, but 20 s behind: no scaling down.
            (inputs(100.0, 1000.0, 1.0, 20.0, 10), (1, 10)),
            // Far less needed and caught up: down to the minimum.
            (inputs(100.0, 1000.0, 1.0, 0.0, 10), (1, 1)),
            // Never above max_shards.
            (inputs(1e6, 1000.0, 1.0, 0.0, 1), (1000, 50)),
        ];
        for (input, expected) in cases {
            assert_eq!(desired_shards(&input), expected, "{input:?}");
        }
    }

    #[test]
    fn dropped_samples_lower_the_need() {
        let mut i = inputs(10_000.0, 1000.0, 1.0, 0.0, 1);
        i.dropped_rate = 1000.0;
        // Half of what comes in is dropped: 5 shards suffice.
        assert_eq!(desired_shards(&i), (5, 5));
        i.min = 8;
        assert_eq!(desired_shards(&i), (5, 8));
    }
}

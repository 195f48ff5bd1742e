//! The durable remote-write sender against a receiver the test runs on 127.0.0.1.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use sextant_model::remote::decode_write_request;
use sextant_model::{Appendable, Labels, SystemClock};
use sextant_scrape::{BufferOptions, Config, RemoteWriteStorage};

#[derive(Default)]
struct Received {
    /// (series, t) → value and how often it arrived.
    samples: BTreeMap<(String, i64), (f64, u32)>,
    headers: Vec<HeaderMap>,
    requests: usize,
}

struct Receiver {
    port: u16,
    status: Arc<AtomicU16>,
    /// Requests holding a series whose labels contain this text are answered 503.
    reject: Arc<Mutex<Option<String>>>,
    received: Arc<Mutex<Received>>,
    /// Milliseconds every request takes.
    delay_ms: Arc<AtomicU64>,
}

impl Receiver {
    async fn start(status: u16) -> Receiver {
        let status = Arc::new(AtomicU16::new(status));
        let received = Arc::new(Mutex::new(Received::default()));
        let reject: Arc<Mutex<Option<String>>> = Arc::default();
        let delay_ms: Arc<AtomicU64> = Arc::default();
        let (s, r, j, d) = (status.clone(), received.clone(), reject.clone(), delay_ms.clone());
        let router = axum::Router::new().route(
            "/api/v1/write",
            post(move |headers: HeaderMap, body: Bytes| {
                let (s, r, j, d) = (s.clone(), r.clone(), j.clone(), d.clone());
                async move {
                    tokio::time::sleep(Duration::from_millis(d.load(Ordering::SeqCst))).await;
                    let mut code = s.load(Ordering::SeqCst);
                    if let Some(text) = j.lock().unwrap().clone() {
                        let request = decode_write_request(&body).expect("valid request");
                        let labels = |ts: &sextant_model::remote::TimeSeries| {
                            sextant_model::remote::labels_from_proto(&ts.labels).unwrap().to_string()
                        };
                        if request.timeseries.iter().any(|ts| labels(ts).contains(&text)) {
                            code = 503;
                        }
                    }
                    let mut received = r.lock().unwrap();
                    received.requests += 1;
                    received.headers.push(headers);
                    if code != 200 {
                        let mut h = HeaderMap::new();
                        if code == 429 {
                            h.insert("retry-after", "0".parse().unwrap());
                        }
                        return (StatusCode::from_u16(code).unwrap(), h, "no");
                    }
                    let request = decode_write_request(&body).expect("valid request");
                    for series in request.timeseries {
                        let labels = sextant_model::remote::labels_from_proto(&series.labels).unwrap().to_string();
                        for s in series.samples {
                            let entry = received.samples.entry((labels.clone(), s.timestamp)).or_insert((s.value, 0));
                            entry.1 += 1;
                        }
                    }
                    (StatusCode::NO_CONTENT, HeaderMap::new(), "")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Receiver { port, status, reject, received, delay_ms }
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().samples.len()
    }

    fn duplicates(&self) -> usize {
        self.received.lock().unwrap().samples.values().filter(|(_, n)| *n > 1).count()
    }
}

fn config(port: u16, extra: &str) -> Config {
    Config::load_str(&format!(
        "global: {{external_labels: {{cluster: edge}}}}\nremote_write:\n- url: http://127.0.0.1:{port}/api/v1/write\n  queue_config: {{max_samples_per_send: 50, batch_send_deadline: 20ms, min_backoff: 5ms, max_backoff: 40ms, min_shards: 2, max_shards: 2}}\n{extra}"
    ))
    .unwrap()
}

/// Appends `n` samples over 10 series, 25 per commit, timestamps from `t0`.
fn write(storage: &RemoteWriteStorage, t0: i64, n: i64) {
    let mut app = storage.appender();
    for i in 0..n {
        let series = Labels::from_pairs([("__name__", "m"), ("s", &format!("{}", i % 10))]);
        app.append(&series, t0 + i / 10, i as f64).unwrap();
        if i % 25 == 24 {
            app.commit().unwrap();
        }
    }
    app.commit().unwrap();
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn small_segments() -> BufferOptions {
    BufferOptions { segment_size: 4096, ..BufferOptions::default() }
}

#[tokio::test]
async fn sends_with_external_labels_relabeling_and_headers() {
    let receiver = Receiver::start(200).await;
    let dir = tempfile::tempdir().unwrap();
    let extra =
        "  write_relabel_configs: [{source_labels: [s], regex: '9', action: drop}]\n  headers: {X-Scope-OrgID: team}\n";
    let storage =
        RemoteWriteStorage::open(dir.path(), &config(receiver.port, extra), small_segments(), Arc::new(SystemClock))
            .unwrap();
    write(&storage, 1_000, 200);
    wait_for("180 samples", || receiver.count() == 180).await;
    {
        let received = receiver.received.lock().unwrap();
        let first = received.samples.keys().next().unwrap();
        assert_eq!(first.0, r#"{__name__="m", cluster="edge", s="0"}"#);
        let h = &received.headers[0];
        assert_eq!(h["content-encoding"], "snappy");
        assert_eq!(h["content-type"], "application/x-protobuf");
        assert_eq!(h["x-prometheus-remote-write-version"], "0.1.0");
        assert_eq!(h["x-scope-orgid"], "team");
    }
    let metrics = storage.metrics_text();
    assert!(metrics.contains("prometheus_remote_storage_samples_dropped_total{remote_name="), "{metrics}");
    assert!(metrics.contains("} 20\n"), "{metrics}");
    storage.shutdown().await.unwrap();
    assert_eq!(receiver.duplicates(), 0);
}

#[tokio::test]
async fn client_errors_are_dropped_and_429_retried() {
    let receiver = Receiver::start(400).await;
    let dir = tempfile::tempdir().unwrap();
    let storage =
        RemoteWriteStorage::open(dir.path(), &config(receiver.port, ""), small_segments(), Arc::new(SystemClock))
            .unwrap();
    write(&storage, 1_000, 100);
    let failed = || {
        storage
            .metrics_text()
            .lines()
            .filter(|l| l.starts_with("prometheus_remote_storage_samples_failed_total"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum::<u64>()
    };
    wait_for("100 failed samples", || failed() == 100).await;
    receiver.status.store(429, Ordering::SeqCst);
    write(&storage, 2_000, 100);
    wait_for("a 429 answered", || receiver.received.lock().unwrap().requests > 4).await;
    receiver.status.store(200, Ordering::SeqCst);
    wait_for("100 samples after 429s", || receiver.count() == 100).await;
    storage.shutdown().await.unwrap();
}

#[tokio::test]
async fn outage_with_restart_delivers_every_sample_once() {
    let receiver = Receiver::start(503).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(receiver.port, "");
    let storage = RemoteWriteStorage::open(dir.path(), &cfg, small_segments(), Arc::new(SystemClock)).unwrap();
    write(&storage, 1_000, 1_000);
    wait_for("retries during the outage", || receiver.received.lock().unwrap().requests >= 4).await;
    // Let one shard's request succeed while the other keeps failing, then restart.
    storage.shutdown().await.unwrap();
    assert_eq!(receiver.count(), 0);

    let storage = RemoteWriteStorage::open(dir.path(), &cfg, small_segments(), Arc::new(SystemClock)).unwrap();
    write(&storage, 100_000, 500);
    wait_for("retries after the restart", || receiver.received.lock().unwrap().requests >= 8).await;
    receiver.status.store(200, Ordering::SeqCst);
    wait_for("1500 samples", || receiver.count() == 1_500).await;
    storage.shutdown().await.unwrap();
    assert_eq!(receiver.duplicates(), 0);

    // A third start sends nothing again.
    let storage = RemoteWriteStorage::open(dir.path(), &cfg, small_segments(), Arc::new(SystemClock)).unwrap();
    write(&storage, 200_000, 10);
    wait_for("10 more", || receiver.count() == 1_510).await;
    storage.shutdown().await.unwrap();
    assert_eq!(receiver.duplicates(), 0);
    assert_eq!(receiver.count(), 1_510);
}

#[tokio::test]
async fn buffer_is_bounded_by_size_with_a_drop_counter() {
    let receiver = Receiver::start(503).await;
    let dir = tempfile::tempdir().unwrap();
    let options = BufferOptions {
        segment_size: 2048,
        max_bytes: 8192,
        max_age: Duration::from_secs(3600),
        ..BufferOptions::default()
    };
    let storage =
        RemoteWriteStorage::open(dir.path(), &config(receiver.port, ""), options, Arc::new(SystemClock)).unwrap();
    write(&storage, 1_000, 5_000);
    let wal_bytes: u64 =
        std::fs::read_dir(dir.path().join("wal")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(wal_bytes <= 8192 + 2 * 2048, "buffer holds {wal_bytes} bytes");
    let dropped: u64 = storage.samples_dropped_from_buffer().values().sum();
    assert!(dropped > 0);
    receiver.status.store(200, Ordering::SeqCst);
    wait_for("the rest", || receiver.count() as u64 + dropped >= 5_000).await;
    storage.shutdown().await.unwrap();
    assert!((receiver.count() as u64) < 5_000);
    assert_eq!(receiver.duplicates(), 0);
}

#[tokio::test]
async fn restart_with_a_partly_delivered_batch_sends_the_rest_once() {
    // Shard of series s="3" fails; the other shard's requests of the same batch succeed.
    let receiver = Receiver::start(200).await;
    *receiver.reject.lock().unwrap() = Some("s=\"3\"".into());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(receiver.port, "");
    let storage = RemoteWriteStorage::open(dir.path(), &cfg, small_segments(), Arc::new(SystemClock)).unwrap();
    write(&storage, 1_000, 200);
    wait_for("the healthy shard delivered", || receiver.count() > 0).await;
    wait_for("retries of the failing shard", || receiver.received.lock().unwrap().requests >= 6).await;
    storage.shutdown().await.unwrap();
    let before = receiver.count();
    assert!(before < 200, "{before}");
    let position = std::fs::read_dir(dir.path().join("queues")).unwrap().next().unwrap().unwrap().path();
    let state = std::fs::read_to_string(position).unwrap();
    assert_eq!(state.lines().count(), 2, "an interrupted batch is recorded: {state:?}");

    *receiver.reject.lock().unwrap() = None;
    let storage = RemoteWriteStorage::open(dir.path(), &cfg, small_segments(), Arc::new(SystemClock)).unwrap();
    wait_for("all 200", || receiver.count() == 200).await;
    storage.shutdown().await.unwrap();
    assert_eq!(receiver.duplicates(), 0);
}

#[tokio::test]
async fn samples_older_than_sample_age_limit_are_not_sent() {
    let receiver = Receiver::start(200).await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(sextant_model::ManualClock::new(1_000_000));
    let cfg = config(receiver.port, "")
        .to_yaml()
        .replace("batch_send_deadline: 20ms", "batch_send_deadline: 20ms\n    sample_age_limit: 10s");
    let cfg = Config::load_str(&cfg).unwrap();
    assert_eq!(cfg.remote_write[0].queue_config.sample_age_limit.to_string(), "10s");
    let storage = RemoteWriteStorage::open(dir.path(), &cfg, small_segments(), clock.clone()).unwrap();
    write(&storage, 1_000, 50);
    write(&storage, 995_000, 30);
    wait_for("the 30 recent samples", || receiver.count() == 30).await;
    wait_for("50 counted as too old", || {
        storage.metrics_text().contains("sextant_remote_storage_samples_too_old_total{remote_name=")
            && storage
                .metrics_text()
                .lines()
                .any(|l| l.starts_with("sextant_remote_storage_samples_too_old_total") && l.ends_with(" 50"))
    })
    .await;
    storage.shutdown().await.unwrap();
}

#[tokio::test]
async fn fsync_commits_syncs_every_commit_and_nothing_else() {
    let receiver = Receiver::start(200).await;
    for (fsync_commits, expected) in [(true, 8), (false, 0)] {
        let dir = tempfile::tempdir().unwrap();
        let options = BufferOptions { fsync_commits, ..small_segments() };
        let storage =
            RemoteWriteStorage::open(dir.path(), &config(receiver.port, ""), options, Arc::new(SystemClock)).unwrap();
        // 200 samples, 25 per commit: 8 commits (the last, empty one writes nothing).
        write(&storage, 1_000, 200);
        let line = format!("sextant_remote_storage_wal_commit_fsyncs_total {expected}\n");
        assert!(storage.metrics_text().contains(&line), "{fsync_commits}: {}", storage.metrics_text());
        storage.shutdown().await.unwrap();
    }
}

/// How the test receiver treats remote write 2.0.
#[derive(Clone, Copy, Debug, PartialEq)]
enum V2Receiver {
    /// Writes it and confirms with the written-count headers.
    Accepts,
    /// Answers 415, as a 1.0-only receiver that checks the content type does.
    Refuses,
    /// Answers 204 without writing or confirming, as Prometheus 2.42 does (it decodes the
    /// body as an empty 1.0 request).
    IgnoresSilently,
}

/// A receiver that decodes 1.0 and, as `mode` says, 2.0 (by content type).
async fn start_v2_receiver(mode: V2Receiver) -> (u16, Arc<Mutex<Received>>, Arc<Mutex<Vec<String>>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let protocols: Arc<Mutex<Vec<String>>> = Arc::default();
    let (r, p) = (received.clone(), protocols.clone());
    let router = axum::Router::new().route(
        "/api/v1/write",
        post(move |headers: HeaderMap, body: Bytes| {
            let (r, p) = (r.clone(), p.clone());
            async move {
                let content_type = headers["content-type"].to_str().unwrap().to_string();
                let version = headers["x-prometheus-remote-write-version"].to_str().unwrap().to_string();
                p.lock().unwrap().push(format!("{content_type} {version}"));
                let v2 = content_type.ends_with("proto=io.prometheus.write.v2.Request");
                match mode {
                    V2Receiver::Refuses if v2 => return (StatusCode::UNSUPPORTED_MEDIA_TYPE, HeaderMap::new()),
                    V2Receiver::IgnoresSilently if v2 => return (StatusCode::NO_CONTENT, HeaderMap::new()),
                    _ => {}
                }
                let mut series: Vec<(String, Vec<(i64, f64)>)> = Vec::new();
                if v2 {
                    let request = sextant_model::remote::decode_write_request_v2(&body).expect("valid 2.0 request");
                    assert_eq!(request.symbols[0], "");
                    for ts in request.timeseries {
                        let pairs: Vec<(&str, &str)> = ts
                            .labels_refs
                            .chunks(2)
                            .map(|p| (request.symbols[p[0] as usize].as_str(), request.symbols[p[1] as usize].as_str()))
                            .collect();
                        let labels = Labels::from_pairs(pairs).to_string();
                        series.push((labels, ts.samples.iter().map(|s| (s.timestamp, s.value)).collect()));
                    }
                } else {
                    let request = decode_write_request(&body).expect("valid 1.0 request");
                    for ts in request.timeseries {
                        let labels = sextant_model::remote::labels_from_proto(&ts.labels).unwrap().to_string();
                        series.push((labels, ts.samples.iter().map(|s| (s.timestamp, s.value)).collect()));
                    }
                }
                let mut received = r.lock().unwrap();
                let mut written = 0;
                for (labels, samples) in series {
                    for (t, v) in samples {
                        received.samples.entry((labels.clone(), t)).or_insert((v, 0)).1 += 1;
                        written += 1;
                    }
                }
                let mut h = HeaderMap::new();
                if v2 {
                    h.insert("x-prometheus-remote-write-samples-written", written.into());
                }
                (StatusCode::NO_CONTENT, h)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (port, received, protocols)
}

#[tokio::test]
async fn remote_write_2_0_is_sent_and_falls_back_to_1_0() {
    const V1: &str = "application/x-protobuf 0.1.0";
    const V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request 2.0.0";
    for mode in [V2Receiver::Accepts, V2Receiver::Refuses, V2Receiver::IgnoresSilently] {
        let (port, received, protocols) = start_v2_receiver(mode).await;
        let dir = tempfile::tempdir().unwrap();
        let config = config(port, "  protobuf_message: io.prometheus.write.v2.Request\n");
        let storage = RemoteWriteStorage::open(dir.path(), &config, small_segments(), Arc::new(SystemClock)).unwrap();
        write(&storage, 1_000, 200);
        wait_for("200 samples", || received.lock().unwrap().samples.len() == 200).await;
        storage.shutdown().await.unwrap();
        let received = received.lock().unwrap();
        assert!(received.samples.values().all(|(_, n)| *n == 1), "{mode:?}: duplicates");
        let first = received.samples.keys().next().unwrap();
        assert_eq!(first.0, r#"{__name__="m", cluster="edge", s="0"}"#);
        let protocols = protocols.lock().unwrap().clone();
        if mode == V2Receiver::Accepts {
            assert!(protocols.iter().all(|p| p == V2), "{protocols:?}");
        } else {
            // One 2.0 attempt per concurrent shard (2) at most, all among the first requests.
            let n_v2 = protocols.iter().filter(|p| *p == V2).count();
            assert!((1..=2).contains(&n_v2), "{mode:?}: {protocols:?}");
            assert!(protocols.iter().skip(4).all(|p| p == V1), "{mode:?}: {protocols:?}");
        }
    }
}

fn two_endpoints(a: u16, b: Option<u16>, header: &str) -> Config {
    let mut yaml = format!(
        "remote_write:\n- url: http://127.0.0.1:{a}/api/v1/write\n  headers: {{X-Config: {header}}}\n  queue_config: {{max_samples_per_send: 50, batch_send_deadline: 20ms, min_backoff: 5ms, max_backoff: 40ms}}\n"
    );
    if let Some(b) = b {
        yaml.push_str(&format!(
            "- url: http://127.0.0.1:{b}/api/v1/write\n  name: second\n  queue_config: {{batch_send_deadline: 20ms}}\n"
        ));
    }
    Config::load_str(&yaml).unwrap()
}

#[tokio::test]
async fn reloads_apply_remote_write_changes_keeping_the_buffer() {
    let (a, b) = (Receiver::start(200).await, Receiver::start(200).await);
    let dir = tempfile::tempdir().unwrap();
    let storage = RemoteWriteStorage::open(
        dir.path(),
        &two_endpoints(a.port, None, "one"),
        small_segments(),
        Arc::new(SystemClock),
    )
    .unwrap();
    write(&storage, 1_000, 100);
    wait_for("100 at a", || a.count() == 100).await;

    // a is down while its configuration changes and b is added: what was buffered for a
    // arrives once it is back, with the new headers; b gets only what is written after.
    a.status.store(503, Ordering::SeqCst);
    write(&storage, 2_000, 100);
    storage.apply_config(&two_endpoints(a.port, Some(b.port), "two")).await.unwrap();
    write(&storage, 3_000, 100);
    wait_for("100 at b", || b.count() == 100).await;
    a.status.store(200, Ordering::SeqCst);
    wait_for("300 at a", || a.count() == 300).await;
    {
        let received = a.received.lock().unwrap();
        let last = received.headers.last().unwrap();
        assert_eq!(last["x-config"], "two");
    }
    assert!(storage.samples_sent().contains_key("second"));

    // An unchanged configuration keeps the queues as they are; an invalid one changes nothing.
    storage.apply_config(&two_endpoints(a.port, Some(b.port), "two")).await.unwrap();
    let mut broken = two_endpoints(a.port, None, "three");
    broken.remote_write[0].http.tls_config.ca_file = dir.path().join("missing.pem").display().to_string();
    assert!(storage.apply_config(&broken).await.is_err());
    write(&storage, 4_000, 100);
    wait_for("400 at a, 200 at b", || a.count() == 400 && b.count() == 200).await;

    // a removed: it gets nothing more.
    storage.apply_config(&two_endpoints(b.port, None, "four")).await.unwrap_or_else(|e| panic!("{e}"));
    write(&storage, 5_000, 100);
    wait_for("300 at b", || b.count() == 300).await;
    storage.shutdown().await.unwrap();
    assert_eq!(a.count(), 400);
    assert_eq!((a.duplicates(), b.duplicates()), (0, 0));
}

/// The value of `prometheus_remote_storage_<name>` in the storage's metrics.
fn queue_gauge(storage: &RemoteWriteStorage, name: &str) -> u64 {
    let text = storage.metrics_text();
    let prefix = format!("prometheus_remote_storage_{name}{{");
    let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{name} in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_grow_when_the_receiver_is_slow_and_nothing_is_lost() {
    let receiver = Receiver::start(200).await;
    receiver.delay_ms.store(20, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load_str(&format!(
        "remote_write:\n- url: http://127.0.0.1:{}/api/v1/write\n  queue_config: {{max_samples_per_send: 10, batch_send_deadline: 5ms, min_shards: 1, max_shards: 8}}\n",
        receiver.port
    ))
    .unwrap();
    let options = BufferOptions { shard_update_period: Duration::from_millis(100), ..BufferOptions::default() };
    let storage = RemoteWriteStorage::open(dir.path(), &config, options, Arc::new(SystemClock)).unwrap();
    assert_eq!((queue_gauge(&storage, "shards"), queue_gauge(&storage, "shards_max")), (1, 8));
    // About 2000 samples/s for 2 s; one shard sends 10 samples per 20 ms: 500/s.
    let mut max_shards = 1;
    for round in 0..40 {
        write(&storage, 1_000 + round * 1_000, 100);
        max_shards = max_shards.max(queue_gauge(&storage, "shards"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(max_shards > 1, "shards stayed at {max_shards}");
    wait_for("4000 samples", || receiver.count() == 4000).await;
    storage.shutdown().await.unwrap();
    assert_eq!(receiver.duplicates(), 0);
}

//! `sextant agent` end to end: scrapes a target the test serves and remote-writes to a
//! receiver the test runs, and to real Prometheus and VictoriaMetrics servers from Debian's
//! packages when they are installed (skipped with a message otherwise). The sample counts the
//! peers report must match what our own receiver got.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::{get, post};
use sextant_model::is_stale;

mod procs;
use procs::{free_port, Proc};

fn find_binary(names: &[&str]) -> Option<String> {
    for name in names {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
            let path = format!("{dir}/{name}");
            if std::path::Path::new(&path).exists() {
                return Some(path);
            }
        }
    }
    None
}

/// A peer: its name, the remote-write URL and the query URL.
struct Peer {
    name: &'static str,
    write_url: String,
    query_url: String,
    _process: Proc,
}

fn start_prometheus(dir: &std::path::Path) -> Option<Peer> {
    let Some(bin) = find_binary(&["prometheus"]) else {
        println!("skipping Prometheus: no prometheus binary (Debian package prometheus)");
        return None;
    };
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global: {}\n").unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("prom-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    Some(Peer {
        name: "Prometheus",
        write_url: format!("http://127.0.0.1:{port}/api/v1/write"),
        query_url: format!("http://127.0.0.1:{port}/api/v1/query"),
        _process: Proc(child),
    })
}

fn start_victoria_metrics(dir: &std::path::Path) -> Option<Peer> {
    let Some(bin) = find_binary(&["victoria-metrics", "victoriametrics", "victoria-metrics-prod"]) else {
        println!("skipping VictoriaMetrics: no victoria-metrics binary (Debian package victoria-metrics)");
        return None;
    };
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg(format!("-storageDataPath={}", dir.join("vm-data").display()))
        .arg("-search.latencyOffset=0s")
        .arg("-search.disableCache")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    Some(Peer {
        name: "VictoriaMetrics",
        write_url: format!("http://127.0.0.1:{port}/api/v1/write"),
        query_url: format!("http://127.0.0.1:{port}/api/v1/query"),
        _process: Proc(child),
    })
}

type Samples = Arc<Mutex<BTreeMap<(String, i64), f64>>>;

async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, secs: u64, mut done: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn peer_count(client: &reqwest::Client, peer: &Peer, at_ms: i64) -> Option<u64> {
    peer_count_of(client, peer, "app", at_ms).await
}

async fn peer_count_of(client: &reqwest::Client, peer: &Peer, job: &str, at_ms: i64) -> Option<u64> {
    // Raw samples of a range selector, counted here (stale markers are not returned).
    let query = format!("{{job=\"{job}\"}}[10m]");
    let query = query.as_str();
    let time = format!("{:.3}", at_ms as f64 / 1000.0);
    let response = client.get(&peer.query_url).query(&[("query", query), ("time", &time)]).send().await.ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    let result = body["data"]["result"].as_array()?;
    Some(result.iter().map(|series| series["values"].as_array().map_or(0, |v| v.len() as u64)).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_scrapes_and_remote_writes_to_peers() {
    let dir = tempfile::tempdir().unwrap();
    // The scrape target.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_port = target.local_addr().unwrap().port();
    let body: String = (0..10).map(|i| format!("m{{i=\"{i}\"}} {i}\n")).collect();
    tokio::spawn(async move {
        axum::serve(target, axum::Router::new().route("/metrics", get(move || async move { body }))).await.unwrap()
    });
    // Our receiver.
    let received: Samples = Arc::default();
    let r = received.clone();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_port = receiver.local_addr().unwrap().port();
    let router = axum::Router::new().route(
        "/api/v1/write",
        post(move |body: Bytes| {
            let r = r.clone();
            async move {
                let request = sextant_model::remote::decode_write_request(&body).unwrap();
                let mut map = r.lock().unwrap();
                for series in request.timeseries {
                    let labels = sextant_model::remote::labels_from_proto(&series.labels).unwrap().to_string();
                    for s in series.samples {
                        map.insert((labels.clone(), s.timestamp), s.value);
                    }
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(receiver, router).await.unwrap() });

    let peers: Vec<Peer> =
        [start_prometheus(dir.path()), start_victoria_metrics(dir.path())].into_iter().flatten().collect();
    let mut remote_write = format!("- url: http://127.0.0.1:{receiver_port}/api/v1/write\n  queue_config: {{batch_send_deadline: 100ms, min_backoff: 50ms, max_backoff: 500ms}}\n");
    for p in &peers {
        remote_write.push_str(&format!(
            "- url: {}\n  name: {}\n  queue_config: {{batch_send_deadline: 100ms, min_backoff: 50ms, max_backoff: 500ms}}\n",
            p.write_url, p.name
        ));
    }
    let config = dir.path().join("agent.yml");
    std::fs::write(
        &config,
        format!(
            "scrape_configs:\n- job_name: app\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\nremote_write:\n{remote_write}"
        ),
    )
    .unwrap();
    let web_port = free_port();
    let agent = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .arg("agent")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.agent.path={}", dir.path().join("agent").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _agent = Proc(agent);

    let up_count = || {
        let map = received.lock().unwrap();
        map.iter().filter(|((l, _), v)| l.starts_with("{__name__=\"up\"") && **v == 1.0).count()
    };
    wait_for("3 successful scrapes at our receiver", 30, || {
        let n = up_count();
        async move { n >= 3 }
    })
    .await;
    let client = reqwest::Client::new();
    let targets: serde_json::Value =
        client.get(format!("http://127.0.0.1:{web_port}/api/v1/targets")).send().await.unwrap().json().await.unwrap();
    assert_eq!(targets["data"]["activeTargets"][0]["health"], "up");
    let metrics =
        client.get(format!("http://127.0.0.1:{web_port}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("prometheus_remote_storage_samples_total{remote_name="), "{metrics}");

    // Counts up to a fixed time T that our receiver has fully seen.
    let (t, ours) = {
        let map = received.lock().unwrap();
        let t = map.keys().filter(|(l, _)| l.starts_with("{__name__=\"up\"")).map(|(_, t)| *t).max().unwrap();
        let n = map.iter().filter(|((l, ts), v)| *ts <= t && !is_stale(**v) && l.contains("job=\"app\"")).count();
        (t, n as u64)
    };
    assert_eq!(ours % 15, 0, "10 series + 5 synthetic per scrape");
    for peer in &peers {
        let mut last = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            last = peer_count(&client, peer, t).await.or(last);
            if last == Some(ours) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{}: {last:?} samples up to {t}, ours {ours}", peer.name);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        println!("agent e2e: {} has {ours} samples up to {t}, as our receiver", peer.name);
    }
}

/// Hub down, agent restarted during the outage (scaled down to seconds): once the hub is
/// back, every scrape the target served has arrived, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_restart_during_an_outage_loses_nothing() {
    use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let served = Arc::new(AtomicU64::new(0));
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_port = target.local_addr().unwrap().port();
    let s = served.clone();
    tokio::spawn(async move {
        let router = axum::Router::new().route(
            "/metrics",
            get(move || {
                let s = s.clone();
                async move {
                    s.fetch_add(1, Ordering::SeqCst);
                    (0..10).map(|i| format!("m{{i=\"{i}\"}} {i}\n")).collect::<String>()
                }
            }),
        );
        axum::serve(target, router).await.unwrap()
    });
    let status = Arc::new(AtomicU16::new(503));
    let arrivals: Arc<Mutex<BTreeMap<(String, i64), u32>>> = Arc::default();
    let (st, ar) = (status.clone(), arrivals.clone());
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_port = receiver.local_addr().unwrap().port();
    let router = axum::Router::new().route(
        "/api/v1/write",
        post(move |body: Bytes| {
            let (st, ar) = (st.clone(), ar.clone());
            async move {
                let code = st.load(Ordering::SeqCst);
                if code != 200 {
                    return axum::http::StatusCode::from_u16(code).unwrap();
                }
                let request = sextant_model::remote::decode_write_request(&body).unwrap();
                let mut map = ar.lock().unwrap();
                for series in request.timeseries {
                    let labels = sextant_model::remote::labels_from_proto(&series.labels).unwrap().to_string();
                    for s in series.samples {
                        if !is_stale(s.value) {
                            *map.entry((labels.clone(), s.timestamp)).or_insert(0) += 1;
                        }
                    }
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(receiver, router).await.unwrap() });
    let config = dir.path().join("agent.yml");
    std::fs::write(
        &config,
        format!(
            "scrape_configs:\n- job_name: app\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\nremote_write:\n- url: http://127.0.0.1:{receiver_port}/api/v1/write\n  queue_config: {{batch_send_deadline: 100ms, min_backoff: 50ms, max_backoff: 200ms, max_samples_per_send: 20, min_shards: 2, max_shards: 2}}\n"
        ),
    )
    .unwrap();
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_sextant"))
            .arg("agent")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.agent.path={}", dir.path().join("agent").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait_served = |n: u64| {
        let served = served.clone();
        async move {
            wait_for("scrapes", 30, || {
                let done = served.load(Ordering::SeqCst) >= n;
                async move { done }
            })
            .await
        }
    };
    let mut first = start();
    wait_served(3).await;
    // Graceful stop (SIGTERM) in the middle of the outage.
    let killed = Command::new("kill").arg("-TERM").arg(first.id().to_string()).status().unwrap();
    assert!(killed.success());
    assert!(first.wait().unwrap().success());
    let before_restart = served.load(Ordering::SeqCst);
    let second = Proc(start());
    wait_served(before_restart + 2).await;
    status.store(200, Ordering::SeqCst);
    let up_count = || arrivals.lock().unwrap().keys().filter(|(l, _)| l.starts_with("{__name__=\"up\"")).count() as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (received, served_now) = (up_count(), served.load(Ordering::SeqCst));
        if received == served_now {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{received} scrapes arrived of {served_now} served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(second);
    let map = arrivals.lock().unwrap();
    assert_eq!(map.values().filter(|n| **n > 1).count(), 0, "samples delivered twice");
    let m_samples = map.keys().filter(|(l, _)| l.starts_with("{__name__=\"m\"")).count() as u64;
    let scrapes = map.keys().filter(|(l, _)| l.starts_with("{__name__=\"up\"")).count() as u64;
    assert_eq!(m_samples, 10 * scrapes);
    println!("agent outage e2e: {scrapes} scrapes, all delivered once across a restart");
}

/// Every (series, timestamp) of `db` whose labels contain `needle`, with its value.
fn stored_samples(db: &sextant_model::MemStorage, needle: &str) -> BTreeMap<(String, i64), f64> {
    use sextant_model::Queryable as _;
    let querier = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    let all = sextant_model::Matcher::new(sextant_model::MatchOp::RegexMatch, "__name__", ".+").unwrap();
    let mut out = BTreeMap::new();
    for series in querier.select(false, None, &[all]).unwrap() {
        let mut series = series.unwrap();
        let labels = series.labels.to_string();
        if !labels.contains(needle) {
            continue;
        }
        while series.samples.next() == sextant_model::ValueType::Float {
            let (t, v) = series.samples.at();
            out.insert((labels.clone(), t), v);
        }
    }
    out
}

/// Remote write 2.0 from the agent into our own receiver (`sextant_api`), then a SIGHUP that
/// changes the remote_write block (external labels, back to 1.0): applied without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_sends_remote_write_2_0_to_our_receiver_and_reloads_remote_write() {
    let dir = tempfile::tempdir().unwrap();
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_port = target.local_addr().unwrap().port();
    let body: String = (0..10).map(|i| format!("m{{i=\"{i}\"}} {i}\n")).collect();
    tokio::spawn(async move {
        axum::serve(target, axum::Router::new().route("/metrics", get(move || async move { body }))).await.unwrap()
    });
    let db = Arc::new(sextant_model::MemStorage::new());
    let api = sextant_api::Api::new(db.clone(), sextant_api::ApiOptions::default());
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_port = receiver.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(receiver, api.router()).await.unwrap() });

    let config = dir.path().join("agent.yml");
    let write_config = |external: &str, protocol: &str| {
        std::fs::write(
            &config,
            format!(
                "global: {{external_labels: {{phase: {external}}}}}\nscrape_configs:\n- job_name: app\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\nremote_write:\n- url: http://127.0.0.1:{receiver_port}/api/v1/write\n  protobuf_message: {protocol}\n  queue_config: {{batch_send_deadline: 100ms, min_backoff: 50ms, max_backoff: 500ms}}\n"
            ),
        )
        .unwrap();
    };
    write_config("one", "io.prometheus.write.v2.Request");
    let web_port = free_port();
    let agent = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .arg("agent")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.agent.path={}", dir.path().join("agent").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let agent = Proc(agent);
    let ups = |phase: &str| {
        let needle = format!("phase=\"{phase}\"");
        stored_samples(&db, &needle).keys().filter(|(l, _)| l.starts_with("{__name__=\"up\"")).count()
    };
    wait_for("3 scrapes sent as 2.0", 30, || {
        let n = ups("one");
        async move { n >= 3 }
    })
    .await;
    // Everything of each scrape arrived: 10 series and 5 synthetic ones per `up` sample.
    let one = stored_samples(&db, "phase=\"one\"");
    let last_up = one.keys().filter(|(l, _)| l.starts_with("{__name__=\"up\"")).map(|(_, t)| *t).max().unwrap();
    let n_up = one.keys().filter(|(l, t)| l.starts_with("{__name__=\"up\"") && *t <= last_up).count();
    let n = one.keys().filter(|(_, t)| *t <= last_up).count();
    assert_eq!(n, 15 * n_up, "{one:?}");
    let metrics = reqwest::get(format!("http://127.0.0.1:{web_port}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("prometheus_remote_storage_shards{remote_name="), "{metrics}");

    write_config("two", "prometheus.WriteRequest");
    assert!(Command::new("kill").args(["-HUP", &agent.0.id().to_string()]).status().unwrap().success());
    wait_for("scrapes with the reloaded external labels", 30, || {
        let n = ups("two");
        async move { n >= 2 }
    })
    .await;
}

/// The check: a real `prometheus-node-exporter` scraped by the agent, which writes to
/// a real Prometheus 2.42; Prometheus ends up with exactly the samples our own receiver got
/// (both configured for remote write 2.0, which Prometheus 2.42 does not speak).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_scrapes_the_real_node_exporter_into_prometheus() {
    let Some(node_exporter) = find_binary(&["prometheus-node-exporter", "node_exporter"]) else {
        println!("skipping: no prometheus-node-exporter (Debian package prometheus-node-exporter)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(prometheus) = start_prometheus(dir.path()) else { return };
    let node_port = free_port();
    let node = Command::new(node_exporter)
        .arg(format!("--web.listen-address=127.0.0.1:{node_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _node = Proc(node);
    let db = Arc::new(sextant_model::MemStorage::new());
    let api = sextant_api::Api::new(db.clone(), sextant_api::ApiOptions::default());
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_port = receiver.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(receiver, api.router()).await.unwrap() });
    let config = dir.path().join("agent.yml");
    // Remote write 2.0 to both: our receiver takes it, Prometheus 2.42 does not (it answers
    // 204 having written nothing), so the agent must fall back to 1.0 without losing a sample.
    let queue = "protobuf_message: io.prometheus.write.v2.Request\n  queue_config: {batch_send_deadline: 100ms, min_backoff: 50ms, max_backoff: 500ms}";
    std::fs::write(
        &config,
        format!(
            "scrape_configs:\n- job_name: node\n  scrape_interval: 2s\n  scrape_timeout: 2s\n  static_configs: [{{targets: ['127.0.0.1:{node_port}']}}]\nremote_write:\n- url: http://127.0.0.1:{receiver_port}/api/v1/write\n  {queue}\n- url: {}\n  name: prometheus\n  {queue}\n",
            prometheus.write_url
        ),
    )
    .unwrap();
    let agent = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .arg("agent")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.agent.path={}", dir.path().join("agent").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _agent = Proc(agent);
    let is_up = |(l, _): &(String, i64), v: &f64| l.starts_with("{__name__=\"up\"") && *v == 1.0;
    wait_for("3 successful scrapes of the node exporter", 60, || {
        let n = stored_samples(&db, "job=\"node\"").iter().filter(|(k, v)| is_up(k, v)).count();
        async move { n >= 3 }
    })
    .await;
    let (t, ours) = {
        let samples = stored_samples(&db, "job=\"node\"");
        let t = samples.iter().filter(|(k, v)| is_up(k, v)).map(|((_, t), _)| *t).max().unwrap();
        (t, samples.iter().filter(|((_, ts), v)| *ts <= t && !is_stale(**v)).count() as u64)
    };
    assert!(ours > 3 * 100, "the node exporter serves hundreds of series: {ours}");
    let client = reqwest::Client::new();
    let mut last = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while last != Some(ours) {
        assert!(tokio::time::Instant::now() < deadline, "Prometheus: {last:?} samples up to {t}, ours {ours}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        last = peer_count_of(&client, &prometheus, "node", t).await.or(last);
    }
    println!("agent e2e node exporter: Prometheus has {ours} samples up to {t}, as our receiver");
}

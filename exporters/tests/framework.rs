//! The collector framework through its public API: timeouts, failures, formats, gzip and
//! `prometheus-client` interop over real HTTP on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use sextant_exporters::{blocking, Collector, Error, Format, MetricFamily, MetricType, Registry, RegistryConfig};

fn config(timeout_ms: u64) -> RegistryConfig {
    RegistryConfig {
        namespace: "test".into(),
        collector_timeout: Duration::from_millis(timeout_ms),
        process_metrics: false,
    }
}

fn gauge(name: &str, value: f64) -> Vec<MetricFamily> {
    vec![MetricFamily::single(name, "Help.", MetricType::Gauge, value)]
}

struct Pending;

#[async_trait::async_trait]
impl Collector for Pending {
    fn name(&self) -> &str {
        "pending"
    }

    async fn collect(&self) -> Result<Vec<MetricFamily>, Error> {
        std::future::pending().await
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn a_slow_collector_is_cut_off_by_its_timeout() {
    let mut registry = Registry::new(config(100));
    registry.register(Pending);
    registry.register(blocking("fast", || Ok(gauge("test_fast", 1.0))));
    let text = runtime().block_on(registry.encode(Format::Text));
    assert!(text.contains("test_fast 1\n"), "{text}");
    assert!(text.contains("test_scrape_collector_success{collector=\"pending\"} 0\n"), "{text}");
    assert!(text.contains("test_scrape_collector_success{collector=\"fast\"} 1\n"), "{text}");
}

#[test]
fn a_stuck_blocking_collector_is_not_run_twice() {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let wait = std::sync::Mutex::new(wait);
    let (started_tx, started) = std::sync::mpsc::channel::<()>();
    let started_tx = std::sync::Mutex::new(started_tx);
    let mut registry = Registry::new(config(100));
    registry.register(blocking("stuck", move || {
        let _ = started_tx.lock().unwrap().send(());
        let _ = wait.lock().unwrap().recv();
        Ok(gauge("test_stuck", 1.0))
    }));
    let rt = runtime();
    let (_, errors) = rt.block_on(registry.gather_with_errors());
    assert!(matches!(errors.as_slice(), [(name, Error::Timeout { .. })] if name == "stuck"), "{errors:?}");
    started.recv().unwrap();
    // Still blocked: the next scrape fails at once instead of starting a second thread.
    let (_, errors) = rt.block_on(registry.gather_with_errors());
    assert!(matches!(errors.as_slice(), [(_, Error::StillRunning(_))]), "{errors:?}");
    assert!(started.try_recv().is_err(), "a second run started");
    release.send(()).unwrap();
    // Once released, it runs again; wait for the run to finish on the event, not on a timer.
    drop(rt);
    let rt = runtime();
    let families = loop {
        let (families, errors) = rt.block_on(registry.gather_with_errors());
        if errors.is_empty() {
            break families;
        }
        let _ = release.send(());
    };
    assert!(families.iter().any(|f| f.name == "test_stuck"));
}

#[test]
fn a_failing_collector_does_not_fail_the_scrape() {
    let mut registry = Registry::new(config(1000));
    registry.register(blocking("broken", || Err(Error::NoData("nothing here".into()))));
    registry.register(blocking("fine", || Ok(gauge("test_fine", 2.0))));
    let (families, errors) = runtime().block_on(registry.gather_with_errors());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].1.to_string(), "no data: nothing here");
    let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, vec!["test_fine", "test_scrape_collector_duration_seconds", "test_scrape_collector_success"]);
}

/// GET `path` with extra request headers; returns (head, body bytes).
fn get(addr: SocketAddr, path: &str, headers: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{headers}\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (String::from_utf8_lossy(&response[..split]).to_lowercase(), response[split + 4..].to_vec())
}

#[test]
fn metrics_endpoint_negotiates_format_and_gzip_and_serves_prometheus_client() {
    use prometheus_client::metrics::counter::Counter;
    let mut client_registry = prometheus_client::registry::Registry::default();
    let requests: Counter = Counter::default();
    client_registry.register("app_requests", "Requests handled", requests.clone());
    requests.inc_by(7);

    let mut registry = Registry::new(config(1000));
    registry.register(blocking("answer", || Ok(gauge("test_answer", 42.0))));
    registry.register_prometheus_client(Arc::new(client_registry));
    let registry = Arc::new(registry);

    let rt = runtime();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(sextant_exporters::serve(
        listener,
        sextant_exporters::router(registry, "/metrics"),
        &Default::default(),
        async {
            let _ = stopped.await;
        },
    ));

    let (head, body) = get(addr, "/metrics", "");
    let body = String::from_utf8(body).unwrap();
    assert!(head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"), "{head}");
    assert!(body.contains("test_answer 42\n"), "{body}");
    assert!(body.contains("# TYPE app_requests_total counter\napp_requests_total 7\n"), "{body}");
    assert!(!body.contains("# EOF"), "{body}");

    let (head, body) = get(addr, "/metrics", "Accept: application/openmetrics-text; version=1.0.0\r\n");
    let body = String::from_utf8(body).unwrap();
    assert!(head.contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"), "{head}");
    assert!(
        body.contains("# TYPE app_requests counter\n# HELP app_requests Requests handled.\napp_requests_total 7.0\n"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert_eq!(body.matches("# EOF").count(), 1, "{body}");

    let (head, body) = get(addr, "/metrics", "Accept-Encoding: gzip\r\n");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(body.as_slice()).read_to_string(&mut text).unwrap();
    assert!(text.contains("test_answer 42\n"), "{text}");

    let (head, _) = get(addr, "/", "");
    assert!(head.starts_with("http/1.0 200") || head.starts_with("http/1.1 200"), "{head}");
    let (head, _) = get(addr, "/nope", "");
    assert!(head.contains(" 404"), "{head}");

    stop.send(()).unwrap();
    rt.block_on(server).unwrap().unwrap();
}

/// A `prometheus` crate (rust-prometheus) registry served next to a collector and a
/// `prometheus_client` registry: every kind of family comes out through our one encoder, in
/// both formats.
#[cfg(feature = "prometheus")]
#[test]
fn rust_prometheus_and_prometheus_client_registries_share_the_endpoint() {
    use prometheus::{Counter, Histogram, HistogramOpts, IntGaugeVec, Opts};
    let rust_prometheus = prometheus::Registry::new();
    let jobs = Counter::new("app_jobs_total", "Jobs done.").unwrap();
    jobs.inc_by(3.0);
    let queue = IntGaugeVec::new(Opts::new("app_queue_length", "Queued items."), &["queue"]).unwrap();
    queue.with_label_values(&["mail"]).set(4);
    let latency =
        Histogram::with_opts(HistogramOpts::new("app_latency_seconds", "Latency.").buckets(vec![0.1, 1.0])).unwrap();
    latency.observe(0.5);
    rust_prometheus.register(Box::new(jobs)).unwrap();
    rust_prometheus.register(Box::new(queue)).unwrap();
    rust_prometheus.register(Box::new(latency)).unwrap();

    let mut client_registry = prometheus_client::registry::Registry::default();
    let requests: prometheus_client::metrics::counter::Counter = Default::default();
    client_registry.register("svc_requests", "Requests handled", requests.clone());
    requests.inc_by(7);

    let mut registry = Registry::new(config(1000));
    registry.register(blocking("answer", || Ok(gauge("test_answer", 42.0))));
    registry.register_prometheus(rust_prometheus);
    registry.register_prometheus_client(Arc::new(client_registry));
    let rt = runtime();

    let text = rt.block_on(registry.encode(Format::Text));
    for expected in [
        "# HELP app_jobs_total Jobs done.\n# TYPE app_jobs_total counter\napp_jobs_total 3\n",
        "# TYPE app_queue_length gauge\napp_queue_length{queue=\"mail\"} 4\n",
        "# TYPE app_latency_seconds histogram\napp_latency_seconds_bucket{le=\"0.1\"} 0\n\
         app_latency_seconds_bucket{le=\"1\"} 1\napp_latency_seconds_bucket{le=\"+Inf\"} 1\n\
         app_latency_seconds_sum 0.5\napp_latency_seconds_count 1\n",
        "# TYPE svc_requests_total counter\nsvc_requests_total 7\n",
        "test_answer 42\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    // Each family once, sorted by name, as one exposition.
    let families = sextant_model::exposition::parse_families(text.as_bytes(), Format::Text).unwrap();
    let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted);

    let openmetrics = rt.block_on(registry.encode(Format::OpenMetrics));
    for expected in [
        "# TYPE app_jobs counter\n# HELP app_jobs Jobs done.\napp_jobs_total 3.0\n",
        "app_latency_seconds_bucket{le=\"1\"} 1.0\n",
        "# TYPE svc_requests counter\n",
    ] {
        assert!(openmetrics.contains(expected), "missing {expected:?} in\n{openmetrics}");
    }
    assert!(openmetrics.ends_with("# EOF\n"));
    sextant_model::exposition::parse_families(openmetrics.as_bytes(), Format::OpenMetrics).unwrap();
}

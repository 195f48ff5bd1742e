//! Small instrumented services for the microservices stack, written with `prometheus-client`
//! as an application team would write them.
//!
//! Each service serves `/metrics` (OpenMetrics), `/health` (200, or 503 while failing),
//! `/work` (the instrumented business endpoint: 200, or 500 while failing) and `POST /fail`,
//! `POST /recover` to induce and end a failure. A task sends each service a few requests per
//! second to its own `/work`, and `frontend` also calls every other service, so the request
//! counters and latency histograms move. `notifier` is also the stack's notification service:
//! `POST /notify` takes Alertmanager webhook bodies, counts them
//! (`notifications_received_total{receiver,status}`) and `GET /notifications` lists them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Requests a service sends itself per second.
const SELF_TRAFFIC_PER_SECOND: u64 = 4;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    path: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    receiver: String,
    status: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 12))
}

/// One service's state and metrics.
#[derive(Debug)]
struct Service {
    name: String,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<PathLabels, Histogram>,
    healthy: Gauge<i64, AtomicI64>,
    failing: AtomicBool,
    notifications: Family<NotificationLabels, Counter>,
    received: Mutex<Vec<serde_json::Value>>,
}

impl Service {
    fn new(name: &str) -> Service {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests handled, by method, path and status code", requests.clone());
        let duration = Family::<PathLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register("http_request_duration_seconds", "Time spent handling HTTP requests", duration.clone());
        let healthy = Gauge::<i64, AtomicI64>::default();
        registry.register("service_healthy", "1 when the service's health check passes", healthy.clone());
        healthy.set(1);
        let notifications = Family::<NotificationLabels, Counter>::default();
        if name == "notifier" {
            registry.register(
                "notifications_received",
                "Alertmanager webhook notifications received, by receiver and status",
                notifications.clone(),
            );
        }
        Service {
            name: name.to_string(),
            registry,
            requests,
            duration,
            healthy,
            failing: AtomicBool::new(false),
            notifications,
            received: Mutex::new(Vec::new()),
        }
    }

    fn observe(&self, method: &str, path: &str, code: StatusCode, started: Instant) {
        let labels = RequestLabels { method: method.into(), path: path.into(), code: code.as_u16().to_string() };
        self.requests.get_or_create(&labels).inc();
        self.duration.get_or_create(&PathLabels { path: path.into() }).observe(started.elapsed().as_secs_f64());
    }
}

type Shared = Arc<Service>;

async fn metrics(State(service): State<Shared>) -> impl IntoResponse {
    let mut body = String::new();
    let status = match prometheus_client::encoding::text::encode(&mut body, &service.registry) {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, [("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
}

async fn health(State(service): State<Shared>) -> impl IntoResponse {
    let started = Instant::now();
    let (code, text) = if service.failing.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{} is failing\n", service.name))
    } else {
        (StatusCode::OK, format!("{} is healthy\n", service.name))
    };
    service.observe("GET", "/health", code, started);
    (code, text)
}

async fn work(State(service): State<Shared>) -> impl IntoResponse {
    let started = Instant::now();
    // A little real work so the latency histogram has something to show.
    let mut acc = 0u64;
    for i in 0..(20_000 + started.elapsed().subsec_nanos() as u64 % 20_000) {
        acc = acc.wrapping_mul(31).wrapping_add(i);
    }
    let code = if service.failing.load(Ordering::Relaxed) { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
    service.observe("GET", "/work", code, started);
    (code, format!("{} {acc}\n", service.name))
}

async fn fail(State(service): State<Shared>) -> &'static str {
    service.failing.store(true, Ordering::Relaxed);
    service.healthy.set(0);
    "failing\n"
}

async fn recover(State(service): State<Shared>) -> &'static str {
    service.failing.store(false, Ordering::Relaxed);
    service.healthy.set(1);
    "recovered\n"
}

async fn notify(State(service): State<Shared>, body: axum::body::Bytes) -> StatusCode {
    let started = Instant::now();
    let code = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(json) => {
            let labels = NotificationLabels {
                receiver: json["receiver"].as_str().unwrap_or("").to_string(),
                status: json["status"].as_str().unwrap_or("").to_string(),
            };
            service.notifications.get_or_create(&labels).inc();
            let mut received = service.received.lock().unwrap_or_else(|e| e.into_inner());
            received.push(json);
            // Keep the newest hundred.
            if received.len() > 100 {
                received.remove(0);
            }
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    };
    service.observe("POST", "/notify", code, started);
    code
}

async fn notifications(State(service): State<Shared>) -> impl IntoResponse {
    let received = service.received.lock().unwrap_or_else(|e| e.into_inner()).clone();
    ([("content-type", "application/json")], serde_json::Value::Array(received).to_string())
}

/// Serves service `name` on `listener` until SIGTERM/SIGINT and starts its traffic; `peers`
/// maps every service name to its address (frontend calls them all).
pub fn spawn(
    name: &str,
    listener: tokio::net::TcpListener,
    peers: Arc<BTreeMap<String, String>>,
) -> anyhow::Result<()> {
    let service = Arc::new(Service::new(name));
    let router = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/work", get(work))
        .route("/fail", post(fail))
        .route("/recover", post(recover))
        .route("/notify", post(notify))
        .route("/notifications", get(notifications))
        .with_state(Arc::clone(&service));
    let own = listener.local_addr()?.to_string();
    let what = format!("service {name}");
    tokio::spawn(async move {
        let served = axum::serve(listener, router).with_graceful_shutdown(crate::server::shutdown_signal()).await;
        if let Err(e) = served {
            eprintln!("sextant stack: {what}: {e}");
        }
    });
    let mut targets = vec![format!("http://{own}/work")];
    if name == "frontend" {
        targets.extend(peers.iter().filter(|(peer, _)| peer.as_str() != name).map(|(_, a)| format!("http://{a}/work")));
    }
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut tick = tokio::time::interval(Duration::from_millis(1000 / SELF_TRAFFIC_PER_SECOND));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            for url in &targets {
                // A failing peer is part of the demo; errors show in the peer's own metrics.
                let _ = client.get(url).timeout(Duration::from_secs(2)).send().await;
            }
        }
    });
    Ok(())
}

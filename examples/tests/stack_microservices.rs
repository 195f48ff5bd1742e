//! `sextant stack microservices` end to end with a real Redis: five instrumented services,
//! the node, Redis and container exporters are up, the recording rules and dashboards' key
//! queries answer, and a failing service fires `ServiceUnhealthy`, which the Alertmanager
//! routes to the notifier service's webhook.

mod stacksupport;

use std::time::{Duration, Instant};

use stacksupport::{curl, free_port, redis, scaled_stack, skip, Stack, PATIENCE};

const SERVICES: [&str; 5] = ["frontend", "orders", "payments", "inventory", "notifier"];

#[test]
fn microservices_stack() {
    if skip("stack microservices", &["redis-server", "curl"], false) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (_redis, redis_port) = redis(work.path());
    let dir = scaled_stack("microservices", work.path(), &[]);
    let mut addresses = vec![
        ("server", free_port()),
        ("alertmanager", free_port()),
        ("node", free_port()),
        ("redis", free_port()),
        ("redis-server", redis_port),
        ("container", free_port()),
    ];
    for name in SERVICES {
        addresses.push((name, free_port()));
    }
    let port = |name: &str| addresses.iter().find(|(n, _)| *n == name).unwrap().1;
    let mut stack = Stack::start(&dir, &work.path().join("data"), &addresses, &[]);
    assert!(stack.first_url().contains(&format!("127.0.0.1:{}/api/v1/query", port("server"))), "{:?}", stack.printed);
    for name in SERVICES {
        let (status, body) = curl(&[&format!("http://127.0.0.1:{}/health", port(name))]);
        assert_eq!(status, 200, "{name}: {body}");
    }
    stack.wait_up(&[("sextant", 1), ("alertmanager", 1), ("node", 1), ("redis", 1), ("container", 1), ("services", 5)]);
    for expr in [
        // Redis (763).
        "redis_up == 1",
        "redis_connected_clients",
        "redis_memory_used_bytes",
        "sum(rate(redis_commands_total[1m])) by (cmd)",
        // cAdvisor (193): the exporter itself answers; container series need cgroups.
        "up{job=\"container\"} == 1",
        // Node (1860).
        "node_load1",
        // The services and their recording rules.
        "service:http_requests:rate1m{service=\"payments\"} > 0",
        "service:http_request_duration_seconds:p99_1m{service=\"orders\"}",
        "sum by (service) (rate(http_requests_total{path=\"/work\"}[1m])) > 0",
    ] {
        stack.wait_for_data(expr);
    }
    assert_eq!(stack.wait_for_data("service:up:count").len(), 5);

    // Induce: payments fails.
    let payments = port("payments");
    let (status, _) = curl(&["-X", "POST", &format!("http://127.0.0.1:{payments}/fail")]);
    assert_eq!(status, 200);
    let (status, _) = curl(&[&format!("http://127.0.0.1:{payments}/health")]);
    assert_eq!(status, 503);
    let notifications = format!("http://127.0.0.1:{}/notifications", port("notifier"));
    let start = Instant::now();
    loop {
        let (_, body) = curl(&[&notifications]);
        let received: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
        let hit = received.iter().find(|n| {
            n["receiver"] == "notifier-critical"
                && n["alerts"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|a| a["labels"]["alertname"] == "ServiceUnhealthy" && a["labels"]["service"] == "payments")
                })
        });
        if hit.is_some() {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "no ServiceUnhealthy notification for payments: {body}");
        std::thread::sleep(Duration::from_millis(250));
    }
    stack.wait_for_data("notifications_received_total{receiver=\"notifier-critical\",status=\"firing\"} > 0");

    stack.stop();
}

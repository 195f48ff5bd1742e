//! `sextant stack enterprise` end to end with a real Redis: a regional server scrapes the node
//! and Redis exporters and the global server federates from it, blackbox probes succeed, the
//! 5-minute rollups (scaled down) are recorded, and a batch job's failed run pushed to the
//! Pushgateway API fires `BatchJobFailed`, which reaches a webhook.

mod stacksupport;

use stacksupport::{curl, free_port, redis, scaled_stack, skip, wait_message, webhook_sink, Stack};

#[test]
fn enterprise_stack() {
    if skip("stack enterprise", &["redis-server", "curl"], false) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (_redis, redis_port) = redis(work.path());
    let (hook, alerts) = webhook_sink();
    let dir = scaled_stack("enterprise", work.path(), &[]);
    let addresses = [
        ("server", free_port()),
        ("regional", free_port()),
        ("alertmanager", free_port()),
        ("node", free_port()),
        ("redis", free_port()),
        ("redis-server", redis_port),
        ("blackbox", free_port()),
        ("webhook", hook),
    ];
    let mut stack = Stack::start(&dir, &work.path().join("data"), &addresses, &[]);
    assert!(stack.first_url().contains(&format!("127.0.0.1:{}/api/v1/query", addresses[0].1)), "{:?}", stack.printed);
    stack.wait_up(&[
        ("sextant", 1),
        ("alertmanager", 1),
        ("federate", 1),
        ("blackbox", 1),
        ("blackbox-http", 2),
        ("blackbox-tcp", 1),
        // Federated from the regional server, with its labels.
        ("node", 1),
        ("redis", 1),
        ("regional", 1),
    ]);
    for expr in [
        "node_cpu_seconds_total{region=\"region-1\"}",
        "redis_connected_clients{region=\"region-1\"}",
        "probe_success{job=\"blackbox-http\"} == 1",
        "probe_success{job=\"blackbox-tcp\"} == 1",
        "probe_duration_seconds",
        "probe_http_status_code == 200",
        // The 5-minute rollups.
        "instance:node_cpu_busy:avg_rate5m",
        "instance:probe_success:avg5m",
        "instance:redis_commands:rate5m",
    ] {
        stack.wait_for_data(expr);
    }
    assert_eq!(stack.wait_for_data("probe_success == 1").len(), 3);

    // Induce: a batch job reports a failed run through the Pushgateway API.
    let url = format!("{}/metrics/job/nightly-backup", stack.base);
    let body =
        "batch_job_last_success_timestamp_seconds 1700000000\nbatch_job_last_failure_timestamp_seconds 1700086400\n";
    let (status, text) = curl(&["-X", "PUT", "--data-binary", body, &url]);
    assert!(status == 200 || status == 202, "{status} {text}");
    let body = wait_message(&alerts, "webhook for BatchJobFailed", |b| b.contains("\"BatchJobFailed\""));
    assert!(body.contains("nightly-backup"), "{body}");

    stack.stop();
    assert!(work.path().join("data/pushgateway.txt").is_file());
}

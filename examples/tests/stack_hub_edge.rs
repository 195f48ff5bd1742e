//! `sextant stack hub` and `sextant stack edge` end to end with a real PostgreSQL: the edge's
//! agent remote-writes node, container and postgres metrics to the hub over TLS with bcrypt
//! basic auth; the PostgreSQL (9628) and node (1860) key queries answer on the hub; the hub is
//! stopped, the edge restarted meanwhile, and after the hub returns every sample of the outage
//! is there and none was sent twice; stopping PostgreSQL fires `PostgresDown` on the hub, which
//! reaches a webhook.

mod stacksupport;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stacksupport::{
    curl, free_port, postgres, postgres_installed, scaled_stack, skip, wait_message, webhook_sink, Stack,
};

/// Scrape interval of the scaled stacks, ms.
const INTERVAL_MS: f64 = 1000.0;

/// A test CA and a certificate it signed for 127.0.0.1 (rustls, unlike curl, refuses a
/// self-signed CA certificate as a server's own): (CA file, certificate, key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key, cert, key, csr, ext) = (
        dir.join("ca.pem"),
        dir.join("ca.key"),
        dir.join("hub.pem"),
        dir.join("hub.key"),
        dir.join("hub.csr"),
        dir.join("hub.ext"),
    );
    let openssl = |args: &[&str], paths: &[(&str, &Path)]| {
        let mut command = Command::new("openssl");
        command.args(args);
        for (flag, path) in paths {
            command.arg(flag).arg(path);
        }
        assert!(command.stderr(Stdio::null()).status().unwrap().success(), "openssl {args:?}");
    };
    openssl(
        &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=sextant-test-ca"],
        &[("-keyout", &ca_key), ("-out", &ca)],
    );
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"], &[("-keyout", &key), ("-out", &csr)]);
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    openssl(
        &["x509", "-req", "-days", "1", "-CAcreateserial"],
        &[("-in", &csr), ("-CA", &ca), ("-CAkey", &ca_key), ("-extfile", &ext), ("-out", &cert)],
    );
    (ca, cert, key)
}

fn now_s() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn hub_and_edge_stacks() {
    if skip("stack hub/edge", &["psql", "runuser", "openssl", "curl"], true) {
        return;
    }
    if !postgres_installed() {
        println!("stack hub/edge: skipped, postgresql is not installed (scripts/test.sh installs it)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let pg_dir = work.path().join("pg");
    std::fs::create_dir(&pg_dir).unwrap();
    let pg = postgres(&pg_dir);
    let (ca, cert, key) = certificates(work.path());
    let password = "edge-password-for-the-test";
    let password_file = work.path().join("hub-password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let (hook, alerts) = webhook_sink();

    let hub_dir = scaled_stack("hub", work.path(), &[]);
    let hub_env = [
        ("HUB_TLS_CERT", cert.display().to_string()),
        ("HUB_TLS_KEY", key.display().to_string()),
        ("HUB_PASSWORD_BCRYPT", bcrypt::hash(password, 4).unwrap()),
    ];
    let hub_addresses = [("server", free_port()), ("alertmanager", free_port()), ("webhook", hook)];
    let hub_data = work.path().join("hub-data");
    let start_hub = || {
        let mut hub = Stack::start(&hub_dir, &hub_data, &hub_addresses, &hub_env);
        hub.base = hub.base.replace("http://", "https://");
        hub.curl_args = vec!["--cacert".into(), ca.display().to_string(), "-u".into(), format!("edge:{password}")];
        hub
    };
    let mut hub = start_hub();
    assert!(
        hub.first_url().starts_with(&format!("  query API     https://127.0.0.1:{}", hub_addresses[0].1)),
        "{:?}",
        hub.printed
    );
    // Nothing without the password.
    let (status, _) = curl(&["--cacert", &ca.display().to_string(), &format!("{}/api/v1/query?query=up", hub.base)]);
    assert_eq!(status, 401);

    let edge_dir = scaled_stack("edge", work.path(), &[]);
    let edge_env = [
        ("HUB_CA_FILE", ca.display().to_string()),
        ("HUB_PASSWORD_FILE", password_file.display().to_string()),
        ("PG_DSN", format!("postgresql://postgres@127.0.0.1:{}/postgres?sslmode=disable", pg.port)),
    ];
    let edge_addresses = [
        ("agent", free_port()),
        ("hub", hub_addresses[0].1),
        ("node", free_port()),
        ("container", free_port()),
        ("postgres", free_port()),
        ("postgresql", pg.port),
    ];
    let edge_data = work.path().join("edge-data");
    let mut edge = Stack::start(&edge_dir, &edge_data, &edge_addresses, &edge_env);

    hub.wait_up(&[("agent", 1), ("node", 1), ("container", 1), ("postgres", 1)]);
    for expr in [
        "pg_up{edge=\"edge-1\"} == 1",
        "pg_settings_max_connections",
        "sum(pg_stat_database_tup_fetched)",
        "sum by (datname) (pg_stat_activity_count)",
        "pg_locks_count",
        "rate(pg_stat_database_xact_commit[1m])",
        "node_memory_MemTotal_bytes{edge=\"edge-1\"}",
        "rate(node_cpu_seconds_total{mode=\"idle\"}[1m])",
        "edge:node_cpu_busy:ratio_rate5m",
    ] {
        hub.wait_for_data(expr);
    }

    // The outage: the hub stops; while it is down the edge restarts; then the hub returns.
    let outage_start = now_s();
    hub.stop();
    std::thread::sleep(Duration::from_secs(3));
    let edge_stop = now_s();
    edge.stop();
    edge = Stack::start(&edge_dir, &edge_data, &edge_addresses, &edge_env);
    let edge_start = now_s();
    std::thread::sleep(Duration::from_secs(3));
    let hub_back = now_s();
    hub = start_hub();

    // Wait until the backlog is delivered: the newest sample is newer than the hub's return.
    let start = Instant::now();
    loop {
        let newest = hub.query("timestamp(up{job=\"node\"})");
        if newest
            .first()
            .and_then(|s| s["value"][1].as_str())
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|t| t > hub_back + 2.0)
        {
            break;
        }
        assert!(start.elapsed() < stacksupport::PATIENCE, "the backlog did not arrive: {newest:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    let range = (now_s() - outage_start + 5.0).ceil() as u64;
    let samples = hub.wait_for_data(&format!("up{{job=\"node\"}}[{range}s]"));
    let times: Vec<f64> = samples[0]["values"].as_array().unwrap().iter().map(|v| v[0].as_f64().unwrap()).collect();
    let in_outage = |from: f64, to: f64| times.iter().filter(|t| **t > from && **t < to).count();
    // Scraped while the hub was down, before and after the edge's restart.
    assert!(in_outage(outage_start + 0.5, edge_stop) >= 2, "{times:?}");
    assert!(in_outage(edge_start + 1.0, hub_back) >= 2, "{times:?}");
    // No hole longer than a few intervals, except while the edge itself was not running.
    for pair in times.windows(2) {
        let gap_ms = (pair[1] - pair[0]) * 1000.0;
        let edge_down = pair[0] < edge_start + 2.0 && pair[1] > edge_stop - 2.0;
        assert!(gap_ms <= 3.0 * INTERVAL_MS || edge_down, "a gap {:?} during the outage: {times:?}", pair);
    }
    // None twice: a resent sample would be rejected as out of order or duplicate.
    let (_, metrics) = hub.get("/metrics");
    let rejected = metrics
        .lines()
        .find(|l| l.starts_with("sextant_api_remote_write_rejected_samples_total"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("missing")
        .to_string();
    assert_eq!(rejected, "0", "samples rejected by the hub after the outage");

    // Induce: PostgreSQL stops; the edge reports pg_up 0 and the hub alerts.
    pg.stop();
    let body = wait_message(&alerts, "webhook for PostgresDown", |b| b.contains("\"PostgresDown\""));
    assert!(body.contains("edge-1"), "{body}");

    edge.stop();
    hub.stop();
}

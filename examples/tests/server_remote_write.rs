//! `sextant server` with `remote_write:` sends what it scrapes and what its recording rules
//! produce to a real Prometheus 2.42 (`--web.enable-remote-write-receiver`, Debian package
//! `prometheus`) on loopback, with `write_relabel_configs` and external labels, exposes
//! `prometheus_remote_storage_*` on `/metrics`, delivers what was scraped while the receiver
//! was down once it is back, and applies a changed `remote_write` on `/-/reload`. Skips with a message when the binary is absent.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod procs;
use procs::{free_port, present, serve_target, wait_for, Proc};

/// One HTTP/1.0 request on loopback; the body of a 200, else `None`.
fn request(port: u16, method: &str, path_and_query: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "{method} {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n").ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.lines().next()?.contains(" 200 ").then(|| body.to_string())
}

fn get(port: u16, path_and_query: &str) -> Option<String> {
    request(port, "GET", path_and_query)
}

/// `/api/v1/query` with `query` URL-encoded, at `time` (seconds) when given.
fn query(port: u16, expr: &str, time: Option<f64>) -> Option<String> {
    let mut encoded = String::new();
    for b in expr.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let time = time.map(|t| format!("&time={t:.3}")).unwrap_or_default();
    get(port, &format!("/api/v1/query?query={encoded}{time}"))
}

/// The values of a vector result, each with its labels as text (`{a="b", ...}` in the JSON's
/// order), sorted.
fn vector(body: &str) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    let mut out: Vec<String> = json["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let labels: Vec<String> =
                r["metric"].as_object().unwrap().iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap())).collect();
            format!("{{{}}} {}", labels.join(","), r["value"][1].as_str().unwrap())
        })
        .collect();
    out.sort();
    out
}

fn server_config(target_port: u16, prom_port: u16, site: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels:\n    site: {site}\n\
         rule_files: [rules.yml]\n\
         scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n\
         remote_write:\n  - url: http://127.0.0.1:{prom_port}/api/v1/write\n    name: prom\n\
         \x20   queue_config:\n      batch_send_deadline: 1s\n      max_samples_per_send: 100\n\
         \x20   write_relabel_configs:\n      - source_labels: [__name__]\n        regex: demo_dropped\n        action: drop\n"
    )
}

fn start_prometheus(dir: &Path, port: u16) -> Proc {
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global: {}\n").unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    Proc(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("prom-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

#[test]
fn server_remote_writes_scrapes_and_rules_to_prometheus() {
    if !present("prometheus") {
        println!("server remote write: skipped, prometheus not installed (Debian package `prometheus`)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target_port = serve_target("# TYPE demo_value gauge\ndemo_value{k=\"v\"} 42\ndemo_dropped 1\n");
    let (sextant_port, prom_port) = (free_port(), free_port());
    let prometheus = start_prometheus(dir.path(), prom_port);
    wait_for("Prometheus to be ready", Duration::from_secs(60), || get(prom_port, "/-/ready").is_some());

    let config = dir.path().join("sextant.yml");
    std::fs::write(&config, server_config(target_port, prom_port, "one")).unwrap();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: demo\n    rules:\n      - record: job:demo_value:sum\n        expr: sum by (job) (demo_value)\n",
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("sextant.log")).unwrap();
    let _sextant = Proc(
        Command::new(env!("CARGO_BIN_EXE_sextant"))
            .arg("server")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("sextant-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{sextant_port}"))
            .arg("--web.enable-lifecycle")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );

    // Scraped samples arrive with the external label; write relabeling drops demo_dropped;
    // the recording rule's results arrive too.
    let arrived = |expr: &str, expected: &[&str]| {
        wait_for(&format!("{expr} in Prometheus"), Duration::from_secs(60), || {
            query(prom_port, expr, None).is_some_and(|b| vector(&b) == expected)
        })
    };
    let expected = format!("{{__name__=demo_value,instance=127.0.0.1:{target_port},job=app,k=v,site=one}} 42");
    arrived("demo_value", &[expected.as_str()]);
    arrived("job:demo_value:sum", &["{__name__=job:demo_value:sum,job=app,site=one} 42"]);
    assert_eq!(vector(&get(prom_port, "/api/v1/query?query=up").unwrap()).len(), 1, "the synthetic up arrives");
    assert!(
        vector(&query(prom_port, "demo_dropped", None).unwrap()).is_empty(),
        "write_relabel_configs drops demo_dropped"
    );
    // Locally, demo_dropped is stored (write relabeling applies to remote write only).
    assert_eq!(vector(&query(sextant_port, "demo_dropped", None).unwrap()).len(), 1);

    // Complete: at a fixed time, Prometheus ends up with as many demo_value samples as Sextant
    // stored.
    let count = |port: u16, at: f64| {
        query(port, "count_over_time(demo_value[10m])", Some(at))
            .and_then(|b| vector(&b).first().and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok()))
    };
    let newest = || {
        vector(&query(sextant_port, "timestamp(demo_value)", None).unwrap())[0]
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    wait_for("five scrapes", Duration::from_secs(60), || count(sextant_port, newest()).is_some_and(|n| n >= 5));
    let at = newest();
    let ours = count(sextant_port, at).unwrap();
    wait_for("every sample in Prometheus", Duration::from_secs(60), || count(prom_port, at) == Some(ours));

    // An outage of the receiver: Prometheus is stopped for a few scrapes and started again
    // on the same port and data; what was scraped meanwhile arrives.
    drop(prometheus);
    wait_for("scrapes during the outage", Duration::from_secs(60), || {
        count(sextant_port, newest()).is_some_and(|n| n >= ours + 3)
    });
    let prometheus = start_prometheus(dir.path(), prom_port);
    wait_for("Prometheus to be ready again", Duration::from_secs(60), || get(prom_port, "/-/ready").is_some());
    let at = newest();
    let ours = count(sextant_port, at).unwrap();
    wait_for("every sample after the outage", Duration::from_secs(90), || count(prom_port, at) == Some(ours));

    // Self-metrics under Prometheus' names.
    let metrics = get(sextant_port, "/metrics").unwrap();
    let sent: u64 = metrics
        .lines()
        .find(|l| l.starts_with("prometheus_remote_storage_samples_total{remote_name=\"prom\""))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no prometheus_remote_storage_samples_total in /metrics:\n{metrics}"));
    assert!(sent > 0, "{sent}");
    assert!(metrics.contains("prometheus_remote_storage_samples_dropped_total{remote_name=\"prom\""), "{metrics}");

    // Reload with new external labels: later samples carry them.
    std::fs::write(&config, server_config(target_port, prom_port, "two")).unwrap();
    assert!(request(sextant_port, "POST", "/-/reload").is_some(), "reload failed");
    arrived("job:demo_value:sum{site=\"two\"}", &["{__name__=job:demo_value:sum,job=app,site=two} 42"]);
    drop(prometheus);
    println!("server remote write: {ours} samples of demo_value complete in Prometheus 2.42 across an outage, {sent} sent in all");
}

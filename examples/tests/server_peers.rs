//! `sextant server` with real peers from Debian's `prometheus` package (2.42), on loopback:
//! Prometheus remote-writes its self-scrape into Sextant; `promtool query` gives the same
//! answers against both; a second Prometheus federates from Sextant. Skips with a message when
//! the binaries are absent.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod procs;
use procs::{free_port, present, wait_for, Proc};

/// GET over HTTP/1.0 on loopback; the body of a 200, else `None`.
fn get(port: u16, path_and_query: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.lines().next()?.contains(" 200 ").then(|| body.to_string())
}

/// The value of the first sample of a vector result.
fn first_value(body: &str) -> Option<f64> {
    let rest = body.split("\"value\":[").nth(1)?;
    rest.split(',').nth(1)?.split(']').next()?.trim_matches('"').parse().ok()
}

fn promtool(args: &[String]) -> String {
    let out = Command::new("promtool").args(args).output().unwrap();
    assert!(out.status.success(), "promtool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    lines.sort();
    lines.join("\n")
}

fn start_prometheus(dir: &Path, name: &str, port: u16, config: &str) -> Proc {
    let config_path = dir.join(format!("{name}.yml"));
    std::fs::write(&config_path, config).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Proc(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join(format!("{name}-data")).display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

#[test]
fn prometheus_remote_write_promtool_and_federation() {
    if !present("prometheus") || !present("promtool") {
        println!("server peers: skipped, prometheus/promtool not installed (Debian package `prometheus`)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (sextant_port, prom_port, fed_port) = (free_port(), free_port(), free_port());
    let sextant_config = dir.path().join("sextant.yml");
    std::fs::write(&sextant_config, "global:\n  scrape_interval: 1s\n").unwrap();
    let _sextant = Proc(
        Command::new(env!("CARGO_BIN_EXE_sextant"))
            .arg("server")
            .arg(format!("--config.file={}", sextant_config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("sextant-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{sextant_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let _prometheus = start_prometheus(
        dir.path(),
        "prom",
        prom_port,
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{prom_port}']\n\
             remote_write:\n  - url: http://127.0.0.1:{sextant_port}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n"
        ),
    );
    // Samples arrive: Sextant has `up` and at least three scrapes of it.
    let count_query = "/api/v1/query?query=count_over_time(up%5B1m%5D)";
    wait_for("remote-written samples in Sextant", Duration::from_secs(60), || {
        get(sextant_port, count_query).and_then(|b| first_value(&b)).is_some_and(|n| n >= 3.0)
    });
    // A time both hold: the newest `up` sample Sextant has.
    let body = get(sextant_port, "/api/v1/query?query=timestamp(up)").unwrap();
    let t = first_value(&body).unwrap();
    let (t, start) = (format!("{t}"), format!("{}", t - 3.0));
    let sextant_url = format!("http://127.0.0.1:{sextant_port}");
    let prom_url = format!("http://127.0.0.1:{prom_port}");
    let mut compared = 0;
    for args in [
        vec!["query", "instant", "--time", &t, "URL", "up"],
        vec!["query", "instant", "--time", &t, "URL", "sum by (job) (scrape_samples_scraped)"],
        vec!["query", "range", "--start", &start, "--end", &t, "--step", "1s", "URL", "up"],
        vec!["query", "series", "--match", "up", "URL"],
        vec!["query", "labels", "URL", "job"],
    ] {
        let with = |url: &str| -> Vec<String> {
            args.iter().map(|a| if *a == "URL" { url.to_string() } else { a.to_string() }).collect()
        };
        let ours = promtool(&with(&sextant_url));
        let theirs = promtool(&with(&prom_url));
        assert_eq!(ours, theirs, "promtool {args:?}");
        assert!(!ours.is_empty(), "promtool {args:?} printed nothing");
        compared += 1;
    }

    // A second Prometheus federating `{job="prometheus"}` from Sextant gets the same series.
    let _federator = start_prometheus(
        dir.path(),
        "fed",
        fed_port,
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    params:\n      'match[]': ['{{job=\"prometheus\"}}']\n    static_configs:\n      - targets: ['127.0.0.1:{sextant_port}']\n"
        ),
    );
    let names_query = "/api/v1/label/__name__/values?match%5B%5D=%7Bjob%3D%22prometheus%22%7D";
    let federated_names = get(sextant_port, "/federate?match%5B%5D=%7Bjob%3D%22prometheus%22%7D").unwrap();
    let names: std::collections::BTreeSet<&str> = federated_names
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();
    assert!(names.contains("up"), "{names:?}");
    wait_for("federated series in the second Prometheus", Duration::from_secs(60), || {
        get(fed_port, names_query).is_some_and(|b| names.iter().all(|n| b.contains(&format!("\"{n}\""))))
    });
    println!("server peers: remote write from Prometheus 2.42 complete, {compared} promtool queries equal, {} series names federated", names.len());
}

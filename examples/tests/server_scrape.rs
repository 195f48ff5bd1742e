//! `sextant server` scrapes its `scrape_configs` into the TSDB, evaluates its `rule_files`,
//! shows both through the API, and reloads on SIGHUP and `/-/reload` (keeping the old
//! configuration when the new one is invalid).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod procs;
use procs::{free_port, serve_target, wait_for, Proc};

/// Bound on every wait for the server to reach a state.
const PATIENCE: Duration = Duration::from_secs(60);

/// One HTTP/1.0 request; the status line and body.
fn request(port: u16, method: &str, path: &str) -> Option<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(format!("{method} {path} HTTP/1.0\r\nContent-Length: 0\r\n\r\n").as_bytes()).ok()?;
    let mut response = Vec::new();
    s.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

fn get_json(port: u16, path: &str) -> Option<serde_json::Value> {
    let (status, body) = request(port, "GET", path)?;
    if !status.contains(" 200 ") {
        return None;
    }
    serde_json::from_str(&body).ok()
}

/// The samples of an instant query as (labels, value).
fn query(port: u16, expr: &str) -> Vec<(serde_json::Value, String)> {
    let path = format!("/api/v1/query?query={}", expr.replace(' ', "%20").replace('"', "%22"));
    let Some(json) = get_json(port, &path) else { return Vec::new() };
    json["data"]["result"]
        .as_array()
        .map(|r| r.iter().map(|s| (s["metric"].clone(), s["value"][1].as_str().unwrap_or("").to_string())).collect())
        .unwrap_or_default()
}

fn write_config(dir: &Path, jobs: &[(&str, u16)]) {
    write_config_logging_to(dir, jobs, "queries.log");
}

fn write_config_logging_to(dir: &Path, jobs: &[(&str, u16)], query_log: &str) {
    let mut text = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  query_log_file: {query_log}\nrule_files:\n  - rules.yml\nscrape_configs:\n",
    );
    for (job, port) in jobs {
        text.push_str(&format!("  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"));
    }
    std::fs::write(dir.join("prometheus.yml"), text).unwrap();
}

fn start_server(dir: &Path, port: u16) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .arg("server")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-lifecycle")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

#[test]
fn server_scrapes_evaluates_rules_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let target = serve_target(
        "# HELP tiny_value A value.\n# TYPE tiny_value gauge\ntiny_value{kind=\"a\"} 2\ntiny_value{kind=\"b\"} 3\n",
    );
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: tiny\n    rules:\n      - record: job:tiny_value:sum\n        expr: sum by (job) (tiny_value)\n      - alert: TinyHigh\n        expr: tiny_value > 2\n        labels:\n          severity: page\n",
    )
    .unwrap();
    write_config(dir.path(), &[("tiny", target)]);
    let port = free_port();
    let server = start_server(dir.path(), port);

    wait_for("up{job=\"tiny\"} == 1", PATIENCE, || query(port, "up{job=\"tiny\"}").iter().any(|(_, v)| v == "1"));
    wait_for("the recording rule's output", PATIENCE, || {
        query(port, "job:tiny_value:sum").iter().any(|(m, v)| m["job"] == "tiny" && v == "5")
    });

    let targets = get_json(port, "/api/v1/targets").unwrap();
    let active = targets["data"]["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), 1, "{targets}");
    assert_eq!(active[0]["labels"]["job"], "tiny");
    assert_eq!(active[0]["health"], "up");
    assert_eq!(active[0]["scrapeUrl"], format!("http://127.0.0.1:{target}/metrics"));

    // The scrape manager's self-metrics, in Prometheus' names.
    let (_, metrics) = request(port, "GET", "/metrics").unwrap();
    for line in [
        "prometheus_target_scrape_pool_targets{scrape_job=\"tiny\"} 1\n",
        "prometheus_sd_discovered_targets{config=\"tiny\",name=\"scrape\"} 1\n",
        "prometheus_target_scrape_pools_total 1\n",
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }

    // query_log_file (relative to the working directory, as Prometheus opens it).
    let log = std::fs::read_to_string(dir.path().join("queries.log")).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["params"]["query"], "up{job=\"tiny\"}", "{log}");
    assert_eq!(first["httpRequest"]["path"], "/api/v1/query", "{log}");

    let metadata = get_json(port, "/api/v1/targets/metadata?metric=tiny_value").unwrap();
    let entries = metadata["data"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["type"] == "gauge" && e["help"] == "A value."), "{metadata}");

    wait_for("the firing alert", PATIENCE, || {
        get_json(port, "/api/v1/alerts").is_some_and(|a| {
            a["data"]["alerts"]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x["labels"]["alertname"] == "TinyHigh" && x["state"] == "firing"))
        })
    });
    let rules = get_json(port, "/api/v1/rules").unwrap();
    let group = &rules["data"]["groups"][0];
    assert_eq!(group["name"], "tiny", "{rules}");
    assert_eq!(group["rules"][0]["name"], "job:tiny_value:sum");
    assert_eq!(group["rules"][1]["name"], "TinyHigh");

    // An invalid configuration is refused and the old one keeps running.
    std::fs::write(dir.path().join("prometheus.yml"), "scrape_configs: [{job_name: }]\n").unwrap();
    let (status, _) = request(port, "POST", "/-/reload").unwrap();
    assert!(!status.contains(" 200 "), "{status}");
    let (status, _) = request(port, "GET", "/api/v1/targets").unwrap();
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(get_json(port, "/api/v1/targets").unwrap()["data"]["activeTargets"].as_array().unwrap().len(), 1);

    // `/-/reload` applies a valid one: a second job, scraping the server itself.
    write_config(dir.path(), &[("tiny", target), ("self", port)]);
    let (status, body) = request(port, "POST", "/-/reload").unwrap();
    assert!(status.contains(" 200 "), "{status} {body}");
    wait_for("up{job=\"self\"} == 1", PATIENCE, || query(port, "up{job=\"self\"}").iter().any(|(_, v)| v == "1"));

    // SIGHUP reloads too: back to one job, and the query log moves to another file.
    write_config_logging_to(dir.path(), &[("self", port)], "queries-2.log");
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    wait_for("the tiny job to go away", PATIENCE, || {
        get_json(port, "/api/v1/targets").is_some_and(|t| {
            t["data"]["activeTargets"].as_array().is_some_and(|a| a.len() == 1 && a[0]["labels"]["job"] == "self")
        })
    });

    query(port, "vector(42)");
    let moved = std::fs::read_to_string(dir.path().join("queries-2.log")).unwrap();
    assert!(moved.contains(r#""query":"vector(42)""#), "{moved}");
    let old_log = std::fs::read_to_string(dir.path().join("queries.log")).unwrap();
    assert!(!old_log.contains("vector(42)"), "{old_log}");

    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut server = server;
    let exit = server.0.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");

    // Shutdown order: scraping stopped first (every series of the job ends with a staleness
    // marker written by the stopping loop), then the TSDB was flushed and closed: it opens
    // again with nothing failed and the markers in it.
    let db = sextant_tsdb::Db::open(dir.path().join("data"), sextant_tsdb::Options::default()).unwrap();
    assert!(db.failed_blocks().is_empty());
    let querier = sextant_model::Queryable::querier(&db, 0, i64::MAX).unwrap();
    let job = sextant_model::Matcher::new(sextant_model::MatchOp::Equal, "job", "self").unwrap();
    let mut n_series = 0;
    for series in querier.select(true, None, &[job]).unwrap() {
        let mut series = series.unwrap();
        let mut last = None;
        while series.samples.next() == sextant_model::ValueType::Float {
            last = Some(series.samples.at().1);
        }
        assert!(last.is_some_and(sextant_model::is_stale), "{} ends with {last:?}", series.labels);
        n_series += 1;
    }
    assert!(n_series > 5, "the self job's series: {n_series}");
}

/// Accepts HTTP requests on a free port and passes each body to the returned channel.
fn alertmanager_stand_in() -> (u16, std::sync::mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            let (head, body) = loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break (String::new(), String::new()),
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                }
                let text = String::from_utf8_lossy(&data).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        break (head.lines().next().unwrap_or("").to_string(), body.to_string());
                    }
                }
            };
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = tx.send((head, body));
        }
    });
    (port, rx)
}

#[test]
fn firing_alerts_are_posted_to_alertmanager_v2() {
    let dir = tempfile::tempdir().unwrap();
    let (am, received) = alertmanager_stand_in();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: always\n    rules:\n      - alert: Always\n        expr: vector(1)\n        annotations:\n          summary: always firing\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  evaluation_interval: 1s\n  external_labels:\n    site: test\nrule_files: [rules.yml]\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let _server = start_server(dir.path(), port);
    let (head, body) = received.recv_timeout(PATIENCE).expect("no alert was posted");
    assert_eq!(head, "POST /api/v2/alerts HTTP/1.1");
    let alerts: serde_json::Value = serde_json::from_str(&body).unwrap();
    let alert = &alerts[0];
    assert_eq!(alert["labels"]["alertname"], "Always", "{body}");
    assert_eq!(alert["labels"]["site"], "test", "{body}");
    assert_eq!(alert["annotations"]["summary"], "always firing", "{body}");
}

//! `sextant server` stops cleanly on SIGTERM and serves what it was sent after a restart:
//! remote-written samples (TSDB) and pushed groups (`--persistence.file`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sextant_model::remote::{self, Label, TimeSeries, WriteRequest};

fn start(dir: &Path, port: u16) -> Child {
    start_with(dir, port, &[])
}

fn start_with(dir: &Path, port: u16, extra: &[&str]) -> Child {
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global: {}\n").unwrap();
    Command::new(env!("CARGO_BIN_EXE_sextant"))
        .arg("server")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--persistence.file={}", dir.join("push.state").display()))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// One HTTP/1.0 request; the status line and body.
fn request(port: u16, head: &str, body: &[u8]) -> Option<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut response = Vec::new();
    s.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// Waits until the server answers `/-/ready` (its only readiness signal).
fn wait_ready(port: u16) {
    let start = Instant::now();
    while request(port, "GET /-/ready HTTP/1.0\r\n\r\n", b"").is_none_or(|(status, _)| !status.contains(" 200 ")) {
        assert!(start.elapsed() < Duration::from_secs(20), "server did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_closes_the_tsdb_and_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = start(dir.path(), port);
    wait_ready(port);
    let body = remote::encode_write_request(&WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![Label::new("__name__", "kept"), Label::new("job", "x")],
            samples: vec![remote::Sample { value: 42.0, timestamp: 1_000_000 }],
            ..Default::default()
        }],
        ..Default::default()
    })
    .unwrap();
    let head = format!(
        "POST /api/v1/write HTTP/1.0\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (status, _) = request(port, &head, &body).unwrap();
    assert!(status.contains(" 204 "), "{status}");

    let push = b"pushed_metric 7\n";
    let head = format!("PUT /metrics/job/batch HTTP/1.0\r\nContent-Length: {}\r\n\r\n", push.len());
    let (status, _) = request(port, &head, push).unwrap();
    assert!(status.contains(" 200 "), "{status}");

    let killed = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let exit = server.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");

    let mut server = start(dir.path(), port);
    wait_ready(port);
    let (status, body) = request(port, "GET /api/v1/query?query=kept&time=1000 HTTP/1.0\r\n\r\n", b"").unwrap();
    let (_, metrics) = request(port, "GET /metrics HTTP/1.0\r\n\r\n", b"").unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(status.contains(" 200 "), "{status}");
    assert!(body.contains(r#""value":[1000,"42"]"#), "{body}");
    assert!(metrics.contains("pushed_metric{job=\"batch\"} 7\n"), "{metrics}");
}

fn write_series(port: u16, names: &[&str]) {
    let body = remote::encode_write_request(&WriteRequest {
        timeseries: names
            .iter()
            .map(|name| TimeSeries {
                labels: vec![Label::new("__name__", *name), Label::new("job", "x")],
                samples: vec![remote::Sample { value: 1.0, timestamp: 1_000_000 }],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
    .unwrap();
    let head = format!(
        "POST /api/v1/write HTTP/1.0\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (status, _) = request(port, &head, &body).unwrap();
    assert!(status.contains(" 204 "), "{status}");
}

fn post(port: u16, path: &str) -> (String, String) {
    request(port, &format!("POST {path} HTTP/1.0\r\nContent-Length: 0\r\n\r\n"), b"").unwrap()
}

/// The admin API answers only with `--web.enable-admin-api`, and then each call works on the
/// real TSDB: delete_series, clean_tombstones, snapshot (a directory that opens as a TSDB).
#[test]
fn admin_api_works_only_with_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = start(dir.path(), port);
    wait_ready(port);
    let disabled = [
        post(port, "/api/v1/admin/tsdb/snapshot"),
        post(port, "/api/v1/admin/tsdb/delete_series?match[]=a"),
        post(port, "/api/v1/admin/tsdb/clean_tombstones"),
    ];
    let _ = server.kill();
    let _ = server.wait();
    for (status, body) in disabled {
        assert!(status.contains(" 500 "), "{status}");
        assert_eq!(body, r#"{"status":"error","errorType":"unavailable","error":"admin APIs disabled"}"#);
    }

    let mut server = start_with(dir.path(), port, &["--web.enable-admin-api"]);
    wait_ready(port);
    write_series(port, &["a", "b"]);
    let deleted = post(port, "/api/v1/admin/tsdb/delete_series?match[]=a");
    let cleaned = post(port, "/api/v1/admin/tsdb/clean_tombstones");
    let (_, a) = request(port, "GET /api/v1/query?query=a&time=1000 HTTP/1.0\r\n\r\n", b"").unwrap();
    let snapshot = post(port, "/api/v1/admin/tsdb/snapshot");
    let _ = server.kill();
    let _ = server.wait();
    assert!(deleted.0.contains(" 204 ") && cleaned.0.contains(" 204 "), "{deleted:?} {cleaned:?}");
    assert!(a.contains(r#""result":[]"#), "{a}");
    assert!(snapshot.0.contains(" 200 "), "{snapshot:?}");
    let body: serde_json::Value = serde_json::from_str(&snapshot.1).unwrap();
    let name = body["data"]["name"].as_str().unwrap();
    let copy =
        sextant_tsdb::Db::open(dir.path().join("data/snapshots").join(name), sextant_tsdb::Options::default()).unwrap();
    let querier = sextant_model::Queryable::querier(&copy, 0, i64::MAX).unwrap();
    let all = sextant_model::Matcher::new(sextant_model::MatchOp::Equal, "job", "x").unwrap();
    let names: Vec<String> = querier
        .select(true, None, &[all])
        .unwrap()
        .map(|s| s.unwrap().labels.get("__name__").unwrap_or("").to_string())
        .collect();
    assert_eq!(names, ["b"]);
}

/// Block directories (ULID names) in a data directory.
fn blocks(data: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.len() == 26 && n.bytes().all(|b| b.is_ascii_alphanumeric()))
        .collect();
    names.sort();
    names
}

#[test]
fn the_server_compacts_in_the_background_and_applies_retention() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Two blocks 40 days apart (too far apart to be merged into one).
    for (name, start) in [("old", 1_700_000_000i64), ("new", 1_700_000_000 + 40 * 86_400)] {
        let mut om = String::from("# TYPE kept gauge\n");
        for i in 0..100 {
            om.push_str(&format!("kept{{age=\"{name}\"}} {i} {}.000\n", start + i * 15));
        }
        om.push_str("# EOF\n");
        let file = dir.path().join(format!("{name}.om"));
        std::fs::write(&file, om).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
            .args(["tsdb", "import", "openmetrics", file.to_str().unwrap(), data.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let before = blocks(&data);
    assert_eq!(before.len(), 2, "{before:?}");

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server =
        start_with(dir.path(), port, &["--storage.tsdb.retention.time=7d", "--storage.tsdb.compaction-interval=200ms"]);
    wait_ready(port);
    let started = Instant::now();
    while blocks(&data).len() != 1 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "retention did not delete the old block: {:?}",
            blocks(&data)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The newer block is the one kept, and its data is served.
    assert_eq!(blocks(&data), before[1..].to_vec());
    let query =
        format!("GET /api/v1/query?query=count(kept)&time={} HTTP/1.0\r\n\r\n", 1_700_000_000 + 40 * 86_400 + 60);
    let (status, body) = request(port, &query, b"").unwrap();
    assert!(status.contains(" 200 ") && body.contains(r#""value":[1703456060,"1"]"#), "{status} {body}");
    let killed = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(killed.success());
    assert!(server.wait().unwrap().success());

    // A bad retention value is an error naming the flag.
    let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .arg("server")
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg("--storage.tsdb.retention.time=15 days")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--storage.tsdb.retention.time=15 days"));
}

/// `--query.semantics=prometheus2` closes range windows at their start, as Prometheus 2.x;
/// the default follows Prometheus 3 (left-open windows).
#[test]
fn query_semantics_flag_selects_the_window_rule() {
    let check = |extra: &[&str], expected: &str| {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = start_with(dir.path(), port, extra);
        wait_ready(port);
        let samples = (0..5).map(|i| remote::Sample { value: i as f64, timestamp: 1_000_000 + i * 15_000 }).collect();
        let body = remote::encode_write_request(&WriteRequest {
            timeseries: vec![TimeSeries { labels: vec![Label::new("__name__", "m")], samples, ..Default::default() }],
            ..Default::default()
        })
        .unwrap();
        let head = format!(
            "POST /api/v1/write HTTP/1.0\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let (status, _) = request(port, &head, &body).unwrap();
        assert!(status.contains(" 204 "), "{status}");
        let (status, body) =
            request(port, "GET /api/v1/query?query=count_over_time(m%5B1m%5D)&time=1060 HTTP/1.0\r\n\r\n", b"")
                .unwrap();
        assert!(
            status.contains(" 200 ") && body.contains(&format!(r#""value":[1060,"{expected}"]"#)),
            "{extra:?}: {body}"
        );
        assert!(Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap().success());
        assert!(server.wait().unwrap().success());
    };
    check(&[], "4");
    check(&["--query.semantics=prometheus3"], "4");
    check(&["--query.semantics=prometheus2"], "5");
}

//! `sextant server` stops cleanly on SIGTERM and serves what it was sent after a restart:
//! remote-written samples (TSDB) and pushed groups (`--persistence.file`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sextant_model::remote::{self, Label, TimeSeries, WriteRequest};

fn start(dir: &Path, port: u16) -> Child {
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global: {}\n").unwrap();
    Command::new(env!("CARGO_BIN_EXE_sextant"))
        .arg("server")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--persistence.file={}", dir.join("push.state").display()))
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

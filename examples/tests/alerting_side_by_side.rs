//! Side by side on loopback: a real Prometheus 2.42 and `sextant server` evaluate the same
//! rule file over the same scraped data; each sends to its own real Alertmanager 0.25 (same
//! configuration), and both Alertmanagers post to one webhook sink. The notifications must
//! agree: grouping, labels, annotations, generatorURL, fingerprints, status, and the
//! startsAt/endsAt behaviour (firing: zero endsAt; resolved: endsAt after startsAt), with the
//! times within a few evaluation intervals of each other.
//!
//! Needs the Debian packages `prometheus` and `prometheus-alertmanager`; skipped without them.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

mod procs;
use procs::{free_port, present, Proc};

const PATIENCE: Duration = Duration::from_secs(90);
/// How far apart the two evaluators' times may be (evaluation offsets, scrape timing).
const TIME_SLACK_MS: i64 = 6_000;

fn spawn(program: &str, args: &[String]) -> Proc {
    Proc(Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap())
}

/// Reads one HTTP request: (request line, body).
fn read_request(stream: &mut std::net::TcpStream) -> Option<(String, String)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
        let len = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        if body.len() >= len {
            return Some((head.lines().next().unwrap_or("").to_string(), body.to_string()));
        }
    }
}

/// The webhook sink: every POST's path and JSON body.
fn sink() -> (u16, mpsc::Receiver<(String, serde_json::Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let request = read_request(&mut stream);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let Some((line, body)) = request else { continue };
            let path = line.split(' ').nth(1).unwrap_or("").to_string();
            if let Ok(json) = serde_json::from_str(&body) {
                let _ = tx.send((path, json));
            }
        }
    });
    (port, rx)
}

/// A scrape target whose `demo_value` the test sets.
fn target(value: Arc<AtomicI64>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = read_request(&mut stream);
            let body =
                format!("# TYPE demo_value gauge\ndemo_value{{disk=\"sda\"}} {}\n", value.load(Ordering::SeqCst));
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    });
    port
}

const RULES: &str = r#"groups:
  - name: demo
    rules:
      - record: demo:value:sum
        expr: sum(demo_value)
      - alert: DemoHigh
        expr: demo_value > 0
        for: 2s
        labels:
          severity: page
          disk_label: 'disk-{{ $labels.disk }}'
        annotations:
          summary: '{{ $labels.instance }} disk {{ $labels.disk }} is at {{ $value }}'
          human: '{{ humanize 1234567.0 }} {{ printf "%.2f" $value }}'
      - alert: Always
        expr: demo:value:sum >= 0
        labels: {severity: info}
        annotations: {summary: 'always ({{ $externalLabels.replica }})'}
"#;

fn prometheus_yml(target_port: u16, am_port: u16) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels: {{replica: r1}}\n\
         rule_files: [rules.yml]\n\
         scrape_configs:\n  - job_name: demo\n    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n\
         alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]\n"
    )
}

fn alertmanager_yml(sink_port: u16, path: &str) -> String {
    format!(
        "route: {{receiver: sink, group_by: [alertname], group_wait: 1s, group_interval: 2s, repeat_interval: 1h}}\n\
         receivers:\n  - name: sink\n    webhook_configs: [{{url: 'http://127.0.0.1:{sink_port}/{path}', send_resolved: true}}]\n"
    )
}

fn start_alertmanager(dir: &Path, name: &str, port: u16, config: &str) -> Proc {
    let config_file = dir.join(format!("{name}.yml"));
    std::fs::write(&config_file, config).unwrap();
    spawn(
        "prometheus-alertmanager",
        &[
            format!("--config.file={}", config_file.display()),
            format!("--storage.path={}", dir.join(name).display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=".to_string(),
            "--web.external-url=http://am.test".to_string(),
        ],
    )
}

fn time_ms(v: &serde_json::Value) -> i64 {
    let text = v.as_str().unwrap();
    sextant_alerting::alertmanager::parse_rfc3339(text).unwrap().unwrap_or(i64::MIN)
}

/// A notification without the fields that legitimately differ (times), which are checked
/// apart.
fn comparable(n: &serde_json::Value) -> serde_json::Value {
    let mut n = n.clone();
    for a in n["alerts"].as_array_mut().unwrap() {
        let a = a.as_object_mut().unwrap();
        a.remove("startsAt");
        a.remove("endsAt");
    }
    n
}

#[test]
fn prometheus_and_sextant_alerts_reach_alertmanager_alike() {
    if !present("prometheus") || !present("prometheus-alertmanager") {
        println!(
            "conformance alerting side-by-side: skipped, needs Debian packages prometheus and prometheus-alertmanager"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (sink_port, received) = sink();
    let value = Arc::new(AtomicI64::new(3));
    let target_port = target(Arc::clone(&value));
    let (am_prom, am_ours) = (free_port(), free_port());
    let _am1 = start_alertmanager(dir.path(), "am-prom", am_prom, &alertmanager_yml(sink_port, "prometheus"));
    let _am2 = start_alertmanager(dir.path(), "am-sextant", am_ours, &alertmanager_yml(sink_port, "sextant"));

    for name in ["prom", "sextant"] {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("rules.yml"), RULES).unwrap();
        let am = if name == "prom" { am_prom } else { am_ours };
        std::fs::write(sub.join("prometheus.yml"), prometheus_yml(target_port, am)).unwrap();
    }
    let common = |name: &str, port: u16| {
        let sub = dir.path().join(name);
        vec![
            format!("--config.file={}", sub.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", sub.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--web.external-url=http://generator.test".to_string(),
            "--rules.alert.resend-delay=2s".to_string(),
        ]
    };
    let _prometheus = spawn("prometheus", &common("prom", free_port()));
    let mut sextant_args = vec!["server".to_string()];
    sextant_args.extend(common("sextant", free_port()));
    let _sextant = spawn(env!("CARGO_BIN_EXE_sextant"), &sextant_args);

    // Firing, then resolved once the value drops to 0: collect until both sinks saw
    // DemoHigh resolved.
    let mut by_sender: std::collections::BTreeMap<String, Vec<serde_json::Value>> = Default::default();
    let start = Instant::now();
    let mut lowered = false;
    let resolved = |list: &[serde_json::Value]| {
        list.iter().any(|n| n["groupLabels"]["alertname"] == "DemoHigh" && n["status"] == "resolved")
    };
    let firing = |list: &[serde_json::Value], name: &str| {
        list.iter().any(|n| n["groupLabels"]["alertname"] == name && n["status"] == "firing")
    };
    loop {
        assert!(start.elapsed() < PATIENCE, "timed out; received {by_sender:#?}");
        if let Ok((path, body)) = received.recv_timeout(Duration::from_millis(200)) {
            by_sender.entry(path).or_default().push(body);
        }
        let p = by_sender.get("/prometheus").map(Vec::as_slice).unwrap_or(&[]);
        let s = by_sender.get("/sextant").map(Vec::as_slice).unwrap_or(&[]);
        if !lowered && firing(p, "DemoHigh") && firing(s, "DemoHigh") && firing(p, "Always") && firing(s, "Always") {
            value.store(0, Ordering::SeqCst);
            lowered = true;
        }
        if lowered && resolved(p) && resolved(s) {
            break;
        }
    }

    let mut checked = 0;
    let first = |sender: &str, alertname: &str, status: &str| -> serde_json::Value {
        by_sender[sender]
            .iter()
            .find(|n| n["groupLabels"]["alertname"] == alertname && n["status"] == status)
            .cloned()
            .unwrap()
    };
    for (alertname, status) in [("DemoHigh", "firing"), ("Always", "firing"), ("DemoHigh", "resolved")] {
        let theirs = first("/prometheus", alertname, status);
        let ours = first("/sextant", alertname, status);
        assert_eq!(comparable(&ours), comparable(&theirs), "{alertname} {status}");
        for (a, b) in ours["alerts"].as_array().unwrap().iter().zip(theirs["alerts"].as_array().unwrap()) {
            let (start_ours, start_theirs) = (time_ms(&a["startsAt"]), time_ms(&b["startsAt"]));
            assert!((start_ours - start_theirs).abs() <= TIME_SLACK_MS, "startsAt {a} vs {b}");
            if status == "firing" {
                assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
                assert_eq!(b["endsAt"], "0001-01-01T00:00:00Z");
            } else {
                let (end_ours, end_theirs) = (time_ms(&a["endsAt"]), time_ms(&b["endsAt"]));
                assert!(end_ours > start_ours && end_theirs > start_theirs, "{a} / {b}");
                assert!((end_ours - end_theirs).abs() <= TIME_SLACK_MS, "endsAt {a} vs {b}");
            }
        }
        checked += 1;
    }
    println!("conformance alerting side-by-side: {checked} of 3 notifications equal (Prometheus 2.42 vs sextant, both through Alertmanager 0.25)");
}

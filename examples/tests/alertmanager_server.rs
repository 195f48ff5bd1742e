//! `sextant alertmanager` as a server, over real sockets on 127.0.0.1: notifications to a
//! webhook sink, a receiver that is down, `kill -9` and restart (silences kept, no duplicate
//! notification), `amtool` 0.25 against it, and a real Prometheus 2.42 feeding it and
//! Alertmanager 0.25 side by side (Debian packages `prometheus-alertmanager`, `prometheus`;
//! the tests needing them say so and skip when they are absent).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod procs;
use procs::{free_port, wait_until, Proc};

/// A webhook sink: every request's path and body, over a channel.
struct Sink {
    port: u16,
    rx: mpsc::Receiver<(String, serde_json::Value)>,
}

impl Sink {
    fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let tx = tx.clone();
                std::thread::spawn(move || serve_connection(stream, tx));
            }
        });
        Sink { port, rx }
    }

    fn next(&self, timeout: Duration) -> Option<(String, serde_json::Value)> {
        self.rx.recv_timeout(timeout).ok()
    }
}

fn serve_connection(stream: TcpStream, tx: mpsc::Sender<(String, serde_json::Value)>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let _ = tx.send((path, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)));
    }
}

/// One HTTP/1.1 request with `Connection: close`; (status, body).
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(config: &Path, storage: &Path, port: u16) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_sextant"))
            .arg("alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.external-url=http://127.0.0.1:9093")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("the server to be ready", Duration::from_secs(30), || {
            http(port, "GET", "/-/ready", "").filter(|r| r.0 == 200)
        });
        Server { child, port }
    }

    fn metric(&self, line_prefix: &str) -> f64 {
        let (_, text) = http(self.port, "GET", "/metrics", "").unwrap();
        text.lines().find_map(|l| l.strip_prefix(line_prefix).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, sink_port: u16, down_port: u16) -> std::path::PathBuf {
    let path = dir.join("alertmanager.yml");
    let config = format!(
        r#"
route:
  receiver: sink
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
  - matchers: [down="yes"]
    receiver: down
    continue: true
  - matchers: [chat="yes"]
    receiver: chat
  - receiver: sink
receivers:
- name: sink
  webhook_configs: [{{url: 'http://127.0.0.1:{sink_port}/sink'}}]
- name: chat
  slack_configs: [{{api_url: 'http://127.0.0.1:{sink_port}/slack', channel: '#ops', send_resolved: true}}]
  pagerduty_configs: [{{url: 'http://127.0.0.1:{sink_port}/pagerduty', routing_key: k}}]
- name: down
  webhook_configs: [{{url: 'http://127.0.0.1:{down_port}/down'}}]
"#
    );
    std::fs::write(&path, config).unwrap();
    path
}

fn alert_json(name: &str, down: bool, starts_at: &str) -> String {
    let down = if down { r#","down":"yes""# } else { "" };
    format!(
        r#"[{{"labels":{{"alertname":"{name}","instance":"i"{down}}},"annotations":{{"summary":"s"}},"startsAt":"{starts_at}"}}]"#
    )
}

fn alert_names(body: &serde_json::Value) -> Vec<String> {
    body["alerts"].as_array().unwrap().iter().map(|a| a["labels"]["alertname"].as_str().unwrap().to_string()).collect()
}

#[test]
fn notifies_survives_kill_9_and_isolates_a_down_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let config = write_config(dir.path(), sink.port, free_port());
    let storage = dir.path().join("data");
    let port = free_port();
    let server = Server::start(&config, &storage, port);

    // A goes to the sink; D goes to the sink and to a receiver that is down.
    let (status, _) = http(port, "POST", "/api/v2/alerts", &alert_json("A", false, "2026-01-01T00:00:00Z")).unwrap();
    assert_eq!(status, 200);
    assert_eq!(http(port, "POST", "/api/v2/alerts", &alert_json("D", true, "2026-01-01T00:00:00Z")).unwrap().0, 200);
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (path, body) = sink.next(Duration::from_secs(20)).expect("a notification");
        assert_eq!(path, "/sink");
        assert_eq!(body["version"], "4");
        assert_eq!(body["externalURL"], "http://127.0.0.1:9093");
        seen.extend(alert_names(&body));
    }
    seen.sort();
    assert_eq!(seen, ["A", "D"], "the down receiver blocks nobody");
    // Bad input is a 400 with a reason.
    let (status, body) = http(port, "POST", "/api/v2/alerts", r#"[{"labels":{}}]"#).unwrap();
    assert_eq!((status, body.contains("at least one label")), (400, true));

    // A silence, then kill -9.
    let silence = r#"{"matchers":[{"name":"alertname","value":"S","isRegex":false}],"startsAt":"2026-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"t","comment":"c"}"#;
    let (status, body) = http(port, "POST", "/api/v2/silences", silence).unwrap();
    assert_eq!(status, 200, "{body}");
    let id: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = id["silenceID"].as_str().unwrap().to_string();
    wait_until("the down receiver's failure to be counted", Duration::from_secs(30), || {
        (server.metric(r#"alertmanager_notifications_failed_total{integration="webhook"}"#) >= 1.0).then_some(())
    });
    drop(server);

    let server = Server::start(&config, &storage, port);
    let (_, silences) = http(port, "GET", "/api/v2/silences", "").unwrap();
    assert!(silences.contains(&id), "silence kept across kill -9: {silences}");
    // Prometheus re-sends A: the group flushes at once (old alert) but sends nothing new.
    http(port, "POST", "/api/v2/alerts", &alert_json("A", false, "2026-01-01T00:00:00Z")).unwrap();
    wait_until("a flush", Duration::from_secs(30), || {
        (server.metric("sextant_alertmanager_group_flushes_total") >= 1.0).then_some(())
    });
    // A new alert in the same group: the next notification has both, and nothing came before.
    http(port, "POST", "/api/v2/alerts", &alert_json("A", false, "2026-01-01T00:00:00Z").replace("\"i\"", "\"j\""))
        .unwrap();
    let (_, body) = sink.next(Duration::from_secs(20)).expect("a notification after restart");
    assert_eq!(body["alerts"].as_array().unwrap().len(), 2, "no duplicate of the already-notified group: {body}");
}

fn amtool_available() -> bool {
    let ok = Command::new("amtool").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        println!("amtool test: skipped, amtool not installed (Debian package prometheus-alertmanager)");
    }
    ok
}

#[test]
fn amtool_lists_alerts_and_manages_silences() {
    if !amtool_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let config = write_config(dir.path(), sink.port, free_port());
    let port = free_port();
    let _server = Server::start(&config, &dir.path().join("data"), port);
    let url = format!("--alertmanager.url=http://127.0.0.1:{port}");
    let amtool = |args: &[&str]| {
        let out = Command::new("amtool").arg(&url).args(args).output().unwrap();
        assert!(out.status.success(), "amtool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    amtool(&["alert", "add", "DiskFull", "instance=db1", "--annotation=summary=full"]);
    let listed = amtool(&["alert", "query"]);
    assert!(listed.contains("DiskFull") && listed.contains("full"), "{listed}");
    let id = amtool(&["silence", "add", "alertname=DiskFull", "-c", "maintenance", "-a", "me"]).trim().to_string();
    assert_eq!(id.len(), 36, "{id}");
    let silences = amtool(&["silence", "query"]);
    assert!(silences.contains(&id) && silences.contains("maintenance"), "{silences}");
    let listed = amtool(&["alert", "query", "--silenced"]);
    assert!(listed.contains("suppressed"), "{listed}");
    amtool(&["silence", "expire", &id]);
    assert!(!amtool(&["silence", "query", "-q"]).contains(&id));
    assert!(amtool(&["silence", "query", "--expired", "-q"]).contains(&id));
    // Slack and PagerDuty over HTTP.
    amtool(&["alert", "add", "Chat", "chat=yes"]);
    let mut paths = Vec::new();
    while paths.len() < 2 {
        let (path, body) = sink.next(Duration::from_secs(20)).expect("slack and pagerduty notifications");
        match path.as_str() {
            "/slack" => assert_eq!(body["attachments"][0]["title"], "[FIRING:1] Chat (yes)"),
            "/pagerduty" => assert_eq!(body["event_action"], "trigger"),
            _ => continue,
        }
        paths.push(path);
    }
    paths.sort();
    assert_eq!(paths, ["/pagerduty", "/slack"]);
    let shown = amtool(&["config", "show"]);
    assert!(shown.contains("receiver: sink"), "{shown}");
}

fn installed(program: &str, package: &str) -> bool {
    let ok = Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        println!("prometheus differential test: skipped, {program} not installed (Debian package {package})");
    }
    ok
}

/// The notification as compared: everything but the receiver-side fields that differ by
/// construction (none: both get the same external URL and receiver name).
fn comparable(body: &serde_json::Value) -> String {
    body.to_string()
}

#[test]
fn prometheus_feeds_sextant_and_alertmanager_the_same_way() {
    if !installed("prometheus", "prometheus") || !installed("prometheus-alertmanager", "prometheus-alertmanager") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let (ours, theirs, prom_port) = (free_port(), free_port(), free_port());
    let am_config = |path: &str| {
        format!(
            "route:\n  receiver: sink\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\n\
             receivers:\n- name: sink\n  webhook_configs: [{{url: 'http://127.0.0.1:{}/{path}'}}]\n",
            sink.port
        )
    };
    std::fs::write(dir.path().join("ours.yml"), am_config("ours")).unwrap();
    std::fs::write(dir.path().join("theirs.yml"), am_config("theirs")).unwrap();
    let rules = [
        "groups:",
        "- name: t",
        "  interval: 1s",
        "  rules:",
        "  - alert: AlwaysFiring",
        "    expr: vector(1)",
        "    labels: {severity: page}",
        "    annotations: {summary: 'value {{ $value }}'}",
        "  - alert: Flapping",
        "    expr: vector(time() % 12) < 6",
        "",
    ]
    .join("\n");
    std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
    let prom_config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [rules.yml]\n\
         alerting:\n  alertmanagers:\n  - api_version: v2\n    static_configs: [{{targets: ['127.0.0.1:{ours}', '127.0.0.1:{theirs}']}}]\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), prom_config).unwrap();
    let _ours = Server::start(&dir.path().join("ours.yml"), &dir.path().join("ours-data"), ours);
    let _theirs = Proc(
        Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", dir.path().join("theirs.yml").display()))
            .arg(format!("--storage.path={}", dir.path().join("theirs-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{theirs}"))
            .arg("--cluster.listen-address=")
            .arg("--web.external-url=http://127.0.0.1:9093")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("alertmanager 0.25", Duration::from_secs(30), || {
        http(theirs, "GET", "/-/ready", "").filter(|r| r.0 == 200)
    });
    let _prometheus = Proc(
        Command::new("prometheus")
            .current_dir(dir.path())
            .arg("--config.file=prometheus.yml")
            .arg(format!("--storage.tsdb.path={}", dir.path().join("prom-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--rules.alert.resend-delay=2s")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Collect until both have notified Flapping resolved.
    let mut got: std::collections::BTreeMap<(String, String), Vec<String>> = Default::default();
    let resolved_both = |got: &std::collections::BTreeMap<(String, String), Vec<String>>| {
        ["/ours", "/theirs"].iter().all(|p| {
            got.get(&(p.to_string(), "Flapping".to_string()))
                .is_some_and(|v| v.iter().any(|b| b.contains("\"status\":\"resolved\"")))
        })
    };
    let start = Instant::now();
    while !resolved_both(&got) {
        assert!(start.elapsed() < Duration::from_secs(60), "no resolved notification from both: {got:#?}");
        let Some((path, body)) = sink.next(Duration::from_secs(60)) else { continue };
        let group = body["groupLabels"]["alertname"].as_str().unwrap_or("").to_string();
        got.entry((path, group)).or_default().push(comparable(&body));
    }
    // Up to the first resolved notification, each group's sequence of bodies is the same.
    let upto_resolved = |v: &Vec<String>| -> Vec<String> {
        let end = v.iter().position(|b| b.contains("\"status\":\"resolved\"")).map_or(v.len(), |i| i + 1);
        v[..end].to_vec()
    };
    for group in ["AlwaysFiring", "Flapping"] {
        let ours = upto_resolved(&got[&("/ours".to_string(), group.to_string())]);
        let theirs = upto_resolved(&got[&("/theirs".to_string(), group.to_string())]);
        assert_eq!(ours, theirs, "{group}");
    }
    println!("prometheus differential test: {} notification sequences identical", got.len() / 2);
}

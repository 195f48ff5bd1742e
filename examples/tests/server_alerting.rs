//! `sextant server`'s alert sending: Alertmanagers found by file discovery and relabeled,
//! `path_prefix` and basic auth, `alert_relabel_configs`; and `for` state restored from
//! `ALERTS_FOR_STATE` after a restart.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod procs;
use procs::{free_port, wait_until, Proc};

/// Bound on every wait for the server to reach a state.
const PATIENCE: Duration = Duration::from_secs(60);

fn start_server(dir: &Path, port: u16, extra: &[&str]) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .arg("server")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

fn get_json(port: u16, path: &str) -> Option<serde_json::Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).ok()?;
    let mut response = Vec::new();
    s.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.contains(" 200 ") {
        return None;
    }
    serde_json::from_str(body).ok()
}

fn get_text(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).ok()?;
    let mut response = Vec::new();
    s.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.contains(" 200 ").then(|| body.to_string())
}

/// A request as the stand-in saw it.
#[derive(Debug)]
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// Accepts HTTP requests on a free port and passes each to the returned channel.
fn alertmanager_stand_in() -> (u16, std::sync::mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            let received = loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                }
                let text = String::from_utf8_lossy(&data).to_string();
                let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
                let mut lines = head.lines();
                let request_line = lines.next().unwrap_or("").to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let len = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= len {
                    break Some(Received { request_line, headers, body: body.to_string() });
                }
            };
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if let Some(r) = received {
                let _ = tx.send(r);
            }
        }
    });
    (port, rx)
}

#[test]
fn alertmanagers_from_file_discovery_with_relabeling_and_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let (am, received) = alertmanager_stand_in();
    let (other, other_received) = alertmanager_stand_in();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: g\n    rules:\n      - alert: Kept\n        expr: vector(1)\n        labels: {severity: page}\n\
         \x20     - alert: Dropped\n        expr: vector(1)\n        labels: {severity: debug}\n",
    )
    .unwrap();
    // Two discovered Alertmanagers; relabel_configs keep only the one in dc east.
    std::fs::write(
        dir.path().join("ams.yml"),
        format!(
            "- targets: ['127.0.0.1:{am}']\n  labels: {{dc: east}}\n- targets: ['127.0.0.1:{other}']\n  labels: {{dc: west}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  evaluation_interval: 1s\n  external_labels: {{site: test, severity: none}}\nrule_files: [rules.yml]\n\
             alerting:\n  alert_relabel_configs:\n    - source_labels: [severity]\n      regex: debug\n      action: drop\n\
             \x20   - target_label: relabeled\n      replacement: 'yes'\n\
             \x20 alertmanagers:\n    - path_prefix: /am/\n      timeout: 5s\n      basic_auth: {{username: prom, password: secret}}\n\
             \x20     file_sd_configs: [{{files: ['{}']}}]\n\
             \x20     relabel_configs:\n        - source_labels: [dc]\n          regex: east\n          action: keep\n",
            dir.path().join("ams.yml").display()
        ),
    )
    .unwrap();
    let port = free_port();
    let server = start_server(dir.path(), port, &[]);
    let r = received.recv_timeout(PATIENCE).expect("no alert was posted");
    assert_eq!(r.request_line, "POST /am/api/v2/alerts HTTP/1.1");
    let auth = r.headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.as_str());
    // base64("prom:secret")
    assert_eq!(auth, Some("Basic cHJvbTpzZWNyZXQ="));
    let alerts: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{}", r.body);
    let labels = &alerts[0]["labels"];
    assert_eq!(labels["alertname"], "Kept", "{}", r.body);
    assert_eq!(labels["site"], "test", "external label added: {}", r.body);
    assert_eq!(labels["severity"], "page", "the alert's own label wins: {}", r.body);
    assert_eq!(labels["relabeled"], "yes", "{}", r.body);
    let listed = get_json(port, "/api/v1/alertmanagers").unwrap();
    assert_eq!(
        listed["data"]["activeAlertmanagers"],
        serde_json::json!([{"url": format!("http://127.0.0.1:{am}/am/api/v2/alerts")}])
    );
    assert!(other_received.try_recv().is_err(), "the relabeled-away Alertmanager got alerts");
    // The rule manager's and notifier's self-metrics are on /metrics.
    wait_until("rule and notifier metrics on /metrics", PATIENCE, || {
        let text = get_text(port, "/metrics")?;
        let value = |prefix: &str| -> Option<f64> {
            text.lines().find(|l| l.starts_with(prefix))?.rsplit(' ').next()?.parse().ok()
        };
        let evaluations = value("prometheus_rule_evaluations_total{rule_group=\"")?;
        let sent = value("prometheus_notifications_sent_total ")?;
        let discovered = value("prometheus_notifications_alertmanagers_discovered ")?;
        (evaluations >= 1.0 && sent >= 1.0 && discovered == 1.0).then_some(())
    });

    // Discovery follows the file: now only the west one, with the keep rule still in place,
    // gives no Alertmanager at all.
    std::fs::write(dir.path().join("ams.yml"), format!("- targets: ['127.0.0.1:{other}']\n  labels: {{dc: west}}\n"))
        .unwrap();
    wait_until("the discovered list to change", PATIENCE, || {
        let listed = get_json(port, "/api/v1/alertmanagers")?;
        (listed["data"]["activeAlertmanagers"] == serde_json::json!([])).then_some(())
    });
    server.terminate();
}

/// `activeAt` of the alert named `name` in `/api/v1/alerts`, with its state.
fn alert_state(port: u16, name: &str) -> Option<(String, String)> {
    let json = get_json(port, "/api/v1/alerts")?;
    let alerts = json["data"]["alerts"].as_array()?;
    let a = alerts.iter().find(|a| a["labels"]["alertname"] == name)?;
    Some((a["state"].as_str()?.to_string(), a["activeAt"].as_str()?.to_string()))
}

fn series_count(port: u16, expr: &str) -> usize {
    let path = format!("/api/v1/query?query={}", expr.replace('{', "%7B").replace('}', "%7D").replace('"', "%22"));
    get_json(port, &path).and_then(|j| j["data"]["result"].as_array().map(Vec::len)).unwrap_or(0)
}

#[test]
fn parses_times() {
    assert_eq!(parse_time_ms("1970-01-01T00:00:00Z"), 0);
    assert_eq!(parse_time_ms("2026-11-22T03:38:52.887Z"), 1_795_318_732_887);
    assert_eq!(parse_time_ms("2000-03-01T00:00:01.5Z"), 951_868_801_500);
}

#[test]
fn for_state_is_restored_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: g\n    rules:\n      - alert: Short\n        expr: vector(1)\n        for: 3s\n\
         \x20     - alert: Long\n        expr: vector(1)\n        for: 1h\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n")
        .unwrap();
    let flags = ["--rules.alert.for-grace-period=1s"];
    let port = free_port();
    let server = start_server(dir.path(), port, &flags);
    let (_, short_active_at) =
        wait_until("Short to fire", PATIENCE, || alert_state(port, "Short").filter(|(state, _)| state == "firing"));
    let (state, long_active_at) = alert_state(port, "Long").unwrap();
    assert_eq!(state, "pending");
    // ALERTS_FOR_STATE is written once state restoration (two evaluations after start) ran.
    wait_until("ALERTS_FOR_STATE", PATIENCE, || (series_count(port, "ALERTS_FOR_STATE") == 2).then_some(()));
    server.terminate();

    let restarted_at = now_ms();
    let port = free_port();
    let server = start_server(dir.path(), port, &flags);
    // Restoration runs after the second evaluation; until then the alerts are new.
    let (state, restored) = wait_until("Short to fire again with its old activeAt", PATIENCE, || {
        alert_state(port, "Short").filter(|(state, active_at)| state == "firing" && *active_at == short_active_at)
    });
    assert_eq!(state, "firing");
    assert_eq!(restored, short_active_at);
    // Long was pending: the time the server was down is not counted, so its activeAt moved
    // forward, but it keeps the time it had already spent pending (before the restart).
    let (state, long_restored) = alert_state(port, "Long").unwrap();
    assert_eq!(state, "pending");
    let (long_restored, long_active_at) = (parse_time_ms(&long_restored), parse_time_ms(&long_active_at));
    assert!(long_restored > long_active_at, "{long_restored} vs {long_active_at}");
    assert!(long_restored < restarted_at, "{long_restored} vs restart at {restarted_at}");
    server.terminate();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Milliseconds since the epoch of an RFC 3339 UTC time (`2026-11-22T06:58:03.5Z`).
fn parse_time_ms(text: &str) -> i64 {
    let num = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap();
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    let (hour, minute, second) = (num(11..13), num(14..16), num(17..19));
    let frac = text[19..].trim_end_matches('Z').trim_start_matches('.');
    let millis = format!("{frac:0<3}")[..3].parse::<i64>().unwrap();
    // Days since the epoch of a civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis
}

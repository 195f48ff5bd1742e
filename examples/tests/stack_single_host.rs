//! `sextant stack single-host` runs the server, the node exporter and the log exporter in one
//! process, and its server scrapes all three.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The stack scrapes every 15s; the first scrape of a target may come a whole interval late.
const PATIENCE: Duration = Duration::from_secs(90);

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).ok()?;
    let mut response = Vec::new();
    s.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}

/// `up` by job, from the query API.
fn up(port: u16) -> Vec<(String, String)> {
    let Some(body) = get(port, "/api/v1/query?query=up") else { return Vec::new() };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) else { return Vec::new() };
    let mut out: Vec<(String, String)> = json["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|s| {
                    (s["metric"]["job"].as_str().unwrap_or("").to_string(), s["value"][1].as_str().unwrap_or("").into())
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn single_host_stack_scrapes_its_three_targets() {
    let dir = tempfile::tempdir().unwrap();
    let (api, node, log) = (free_port(), free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["stack", "single-host"])
        .arg(format!("--data.dir={}", dir.path().join("stack").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{api}"))
        .arg(format!("--node.listen-address=127.0.0.1:{node}"))
        .arg(format!("--log.listen-address=127.0.0.1:{log}"))
        // Docker is absent in CI: the log exporter must fail gracefully, not stop the stack.
        .env("DOCKER_HOST", format!("unix://{}", dir.path().join("no-docker.sock").display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stack = Running(child);

    let want: Vec<(String, String)> =
        ["log", "node", "sextant"].iter().map(|j| (j.to_string(), "1".to_string())).collect();
    let start = Instant::now();
    let mut last = Vec::new();
    while last != want {
        assert!(start.elapsed() < PATIENCE, "up by job is {last:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(250));
        last = up(api);
    }
    // The rules file is loaded.
    let rules = get(api, "/api/v1/rules").unwrap();
    for name in ["TargetDown", "DiskAlmostFull", "HighCpu"] {
        assert!(rules.contains(name), "{name} missing from {rules}");
    }

    assert!(Command::new("kill").args(["-TERM", &stack.0.id().to_string()]).status().unwrap().success());
    let exit = stack.0.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let mut out = String::new();
    stack.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let first_url = out.lines().find(|l| l.contains("http://")).unwrap_or("");
    assert!(first_url.contains(&format!("http://127.0.0.1:{api}/api/v1/query")), "{out}");
    assert!(dir.path().join("stack/tsdb").is_dir());
}

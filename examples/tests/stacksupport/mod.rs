//! Helpers of the stack end-to-end tests: a stack directory copied with scaled-down intervals,
//! `sextant stack DIR` on free loopback ports, queries through curl, a webhook sink, an SMTP
//! sink, and the Debian database servers (started as the exporters' tests start them).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "../../../exporters/tests/dbsupport/mod.rs"]
pub mod dbsupport;

pub use dbsupport::{free_port, missing, run, start_until, Killed};

/// How long any one condition may take to come true (the stacks scrape every second here).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Replacements that scale a stack's intervals down from seconds and minutes to about a second.
pub const SCALE: &[(&str, &str)] = &[
    ("scrape_interval: 15s", "scrape_interval: 1s"),
    ("evaluation_interval: 15s", "evaluation_interval: 1s"),
    ("group_wait: 30s", "group_wait: 1s"),
    ("group_wait: 10s", "group_wait: 1s"),
    ("group_interval: 5m", "group_interval: 2s"),
    ("    interval: 5m", "    interval: 2s"),
    ("for: 1m", "for: 2s"),
    ("for: 2m", "for: 2s"),
    ("batch_send_deadline: 5s", "batch_send_deadline: 1s"),
    ("max_backoff: 30s", "max_backoff: 1s"),
];

/// True (with a printed reason) when the test cannot run here.
pub fn skip(test: &str, programs: &[&str], needs_root: bool) -> bool {
    if let Some(program) = missing(programs) {
        println!("{test}: skipped, {program} is not installed (scripts/test.sh installs it)");
        return true;
    }
    if needs_root && run(Command::new("id").arg("-u")).trim() != "0" {
        println!("{test}: skipped, needs root to run the database server as its own user");
        return true;
    }
    false
}

/// Copies `examples/stacks/NAME`'s top-level files into `dest` with `SCALE` and `extra` applied.
pub fn scaled_stack(name: &str, dest: &Path, extra: &[(&str, &str)]) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks").join(name);
    let dir = dest.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_file() {
            continue;
        }
        let mut text = std::fs::read_to_string(entry.path()).unwrap();
        for (from, to) in SCALE.iter().chain(extra) {
            text = text.replace(from, to);
        }
        std::fs::write(dir.join(entry.file_name()), text).unwrap();
    }
    dir
}

/// `curl` with `args`, returning the HTTP status and body.
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl").args(["-s", "-S", "-m", "10", "-w", "\n%{http_code}"]).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A running `sextant stack`, stopped (SIGKILL) when dropped.
pub struct Stack {
    pub child: Option<Child>,
    /// Base URL of the query API, e.g. `http://127.0.0.1:PORT`.
    pub base: String,
    /// Extra curl arguments (TLS trust, basic auth).
    pub curl_args: Vec<String>,
    stdout: mpsc::Receiver<String>,
    pub printed: Vec<String>,
}

impl Stack {
    /// Starts `sextant stack DIR --data.dir=DATA` with `--address` for each of `addresses`.
    pub fn start(dir: &Path, data: &Path, addresses: &[(&str, u16)], env: &[(&str, String)]) -> Stack {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sextant"));
        command.arg("stack").arg(dir).arg(format!("--data.dir={}", data.display()));
        for (name, port) in addresses {
            command.arg(format!("--address={name}=127.0.0.1:{port}"));
        }
        // Docker is absent in CI: the Docker collectors must fail gracefully, not the stack.
        command.env("DOCKER_HOST", format!("unix://{}", data.with_extension("no-docker.sock").display()));
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let port = addresses.iter().find(|(n, _)| *n == "server" || *n == "agent").map(|(_, p)| *p).unwrap_or(0);
        let mut stack = Stack {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            curl_args: Vec::new(),
            stdout: rx,
            printed: Vec::new(),
        };
        // The URLs are printed once every component listens.
        let start = Instant::now();
        while !stack.printed.iter().any(|l| l.starts_with("Stop with")) {
            assert!(start.elapsed() < PATIENCE, "the stack printed {:?}", stack.printed);
            match stack.stdout.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => stack.printed.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the stack exited: {:?}", stack.printed),
            }
        }
        stack
    }

    /// The first URL the stack printed.
    pub fn first_url(&self) -> String {
        self.printed.iter().find(|l| l.contains("://")).cloned().unwrap_or_default()
    }

    /// GET `path` on the server with the stack's curl arguments.
    pub fn get(&self, path: &str) -> (u16, String) {
        let url = format!("{}{path}", self.base);
        let mut args: Vec<&str> = self.curl_args.iter().map(String::as_str).collect();
        args.push(&url);
        curl(&args)
    }

    /// The result vector of an instant query (empty on any error).
    pub fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        let url = format!("{}/api/v1/query", self.base);
        let mut args: Vec<&str> = self.curl_args.iter().map(String::as_str).collect();
        let data = format!("query={}", encode(expr));
        args.extend(["--data", &data, &url]);
        let (status, body) = curl(&args);
        if status != 200 {
            return Vec::new();
        }
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        json["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `expr` returns at least one series.
    pub fn wait_for_data(&self, expr: &str) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let result = self.query(expr);
            if !result.is_empty() {
                return result;
            }
            assert!(start.elapsed() < PATIENCE, "{expr} returned no data");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until `up` is 1 for every job of `jobs` (as many series as given per job).
    pub fn wait_up(&self, jobs: &[(&str, usize)]) {
        let start = Instant::now();
        loop {
            let up = self.query("up == 1");
            let count = |job: &str| up.iter().filter(|s| s["metric"]["job"] == job).count();
            if jobs.iter().all(|(job, n)| count(job) >= *n) {
                return;
            }
            let seen: Vec<String> =
                self.query("up").iter().map(|s| format!("{}={}", s["metric"]["job"], s["value"][1])).collect();
            assert!(start.elapsed() < PATIENCE, "up is {seen:?}, want 1 for {jobs:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// SIGTERM; the stack must exit 0 within the patience.
    pub fn stop(&mut self) {
        let mut child = self.child.take().unwrap();
        assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "exit status {status:?}");
                return;
            }
            assert!(start.elapsed() < PATIENCE, "the stack did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Percent-encodes a query parameter value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Waits up to `PATIENCE` for a message on `rx` satisfying `pred`; returns it.
pub fn wait_message(rx: &mpsc::Receiver<String>, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let left = PATIENCE.checked_sub(start.elapsed()).unwrap_or_else(|| panic!("no {what}; got {seen:?}"));
        match rx.recv_timeout(left) {
            Ok(message) if pred(&message) => return message,
            Ok(message) => seen.push(message),
            Err(_) => panic!("no {what}; got {seen:?}"),
        }
    }
}

/// An HTTP server on a free port that answers 200 to everything and sends each request body.
pub fn webhook_sink() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let mut w = stream;
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if tx.send(String::from_utf8_lossy(&body).to_string()).is_err() {
                break;
            }
        }
    });
    (port, rx)
}

/// An SMTP server on a free port (plain, AUTH PLAIN/LOGIN accepted) that sends each session's
/// commands and message text, joined.
pub fn smtp_sink() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut w = stream;
                let mut session = String::new();
                let _ = w.write_all(b"220 sink ESMTP\r\n");
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    session.push_str(&line);
                    let upper = line.trim_end().to_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-sink\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("AUTH") {
                        b"235 ok\r\n"
                    } else if upper == "DATA" {
                        let _ = w.write_all(b"354 go on\r\n");
                        loop {
                            let mut l = String::new();
                            if reader.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" {
                                break;
                            }
                            session.push_str(&l);
                        }
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        let _ = w.write_all(b"221 bye\r\n");
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = w.write_all(reply);
                }
                let _ = tx.send(session);
            });
        }
    });
    (port, rx)
}

/// A throwaway redis-server on a free port.
pub fn redis(dir: &Path) -> (Killed, u16) {
    let port = free_port();
    let mut server = Command::new("redis-server");
    server.args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"]);
    server.args(["--maxmemory", "64mb", "--daemonize", "no", "--dir"]).arg(dir);
    (start_until(server, "Ready to accept connections", true), port)
}

/// A throwaway MariaDB on a free port with a monitoring user `exporter`/`exporterpw`; needs root.
pub fn mariadb(dir: &Path) -> (Killed, u16) {
    let data = dir.join("data");
    let socket = dir.join("mysqld.sock");
    std::fs::create_dir_all(&data).unwrap();
    run(Command::new("chown").args(["-R", "mysql:mysql"]).arg(dir));
    run(Command::new("mariadb-install-db")
        .args(["--user=mysql", "--auth-root-authentication-method=socket", "--skip-test-db"])
        .arg(format!("--datadir={}", data.display())));
    let port = free_port();
    let mut server = Command::new("mariadbd");
    server
        .args(["--user=mysql", "--bind-address=127.0.0.1", "--skip-name-resolve"])
        .args(["--innodb-buffer-pool-size=32M", "--skip-log-bin"])
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .arg(format!("--port={port}"));
    let guard = start_until(server, "ready for connections", false);
    let sql = "CREATE USER 'exporter'@'127.0.0.1' IDENTIFIED BY 'exporterpw' WITH MAX_USER_CONNECTIONS 3;\
               GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO 'exporter'@'127.0.0.1';";
    run(Command::new("mariadb").arg(format!("--socket={}", socket.display())).args(["-uroot", "-e", sql]));
    (guard, port)
}

fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> =
        std::fs::read_dir("/usr/lib/postgresql").ok()?.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect();
    versions.sort();
    versions.into_iter().rev().find(|bin| bin.join("initdb").is_file())
}

/// A PostgreSQL cluster stopped (immediately) when dropped.
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    pub port: u16,
}

impl Postgres {
    /// Stops the cluster now (fast shutdown).
    pub fn stop(&self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "immediate"])
            .output();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether PostgreSQL's server binaries are installed.
pub fn postgres_installed() -> bool {
    pg_bin().is_some()
}

/// A throwaway PostgreSQL cluster on a free port, trust authentication for `postgres`; needs root.
pub fn postgres(dir: &Path) -> Postgres {
    let bin = pg_bin().expect("postgresql is installed");
    run(Command::new("chown").arg("postgres:postgres").arg(dir));
    let data = dir.join("data");
    run(Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres"]));
    let port = free_port();
    run(Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join("pg_ctl"))
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(dir.join("pg.log"))
        .arg("-w")
        .arg("-o")
        .arg(format!("-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={}", dir.display()))
        .arg("start"));
    Postgres { bin, data, port }
}

//! Differential test of the Redis exporter against Debian's `prometheus-redis-exporter` 1.45:
//! a throwaway `redis-server` on a free loopback port with a temporary directory (as
//! `../shared/exporters/recipes/redis.sh` does), both exporters scraping it, compared by
//! `../shared/exporters/tools/compare_scrapes.py` in sandwich mode.
//!
//! Skips (with a printed reason) without `redis-server`, `redis-cli`,
//! `prometheus-redis-exporter` or `python3`.

#[path = "../../testsupport/shared.rs"]
mod shared;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use regex::Regex;
use sextant_exporters::{RedisConfig, RedisExporter};

/// Metric names present on one side only, with the reason.
const EXPECTED_NAME_DIFFERENCES: &[(&str, &str)] = &[];

/// Series-level differences that are expected (regexes over compare_scrapes.py's lines).
const EXPECTED_SERIES_DIFFERENCES: &[(&str, &str)] = &[
    (
        r"^(VALUE   |MISSING series |EXTRA   series )redis_(commands_total|commands_duration_seconds_total|commands_rejected_calls_total|commands_failed_calls_total|latency_percentiles_usec(_sum|_count)?)\{'cmd': '(info|config\|get|slowlog\|len|slowlog\|get|latency\|latest|client\|setname|ping|select|auth)'",
        "the exporters' own commands, counted by Redis between and during the scrapes",
    ),
    (r"^VALUE   redis_latency_percentiles_usec\{", "latency percentiles move with every command"),
    (
        r"^VALUE   redis_exporter_(last_scrape_connect_time_seconds|last_scrape_duration_seconds|scrape_duration_seconds_sum)\{",
        "timing of each exporter's own work",
    ),
    (
        r"^VALUE   redis_(net_input_bytes_total|net_output_bytes_total|commands_processed_total|connections_received_total|total_reads_processed|total_writes_processed|cpu_\w+_seconds_total|mem_fragmentation_\w+|allocator_\w+|memory_used_\w+|mem_clients_normal|client_recent_max_\w+|connected_clients|total_error_replies)\{",
        "server counters and memory move with each exporter's own connection and commands",
    ),
    (r"^VALUE   redis_exporter_build_info\{", "build labels differ by design"),
    (r"^(MISSING|EXTRA  ) series redis_exporter_build_info\{", "build labels differ by design"),
];

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A plain HTTP/1.0 GET; returns the body.
fn http_get(addr: SocketAddr, path: &str) -> String {
    // redis_exporter logs "Providing metrics" just before it binds, so the first connect may
    // be refused; retry for a bounded time (there is no event to wait for).
    let mut attempts = 0;
    let mut stream = loop {
        match TcpStream::connect(addr) {
            Ok(stream) => break stream,
            Err(_) if attempts < 100 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(err) => panic!("connect {addr}: {err}"),
        }
    };
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n").expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.") && head.contains(" 200 "), "{head}");
    body.to_string()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` and waits until a line of its stderr or stdout contains `ready`.
fn start_until(mut command: Command, ready: &str, from_stdout: bool) -> Killed {
    if from_stdout {
        command.stdout(Stdio::piped()).stderr(Stdio::null());
    } else {
        command.stdout(Stdio::null()).stderr(Stdio::piped());
    }
    let mut child = command.spawn().expect("spawn");
    let pipe: Box<dyn Read + Send> =
        if from_stdout { Box::new(child.stdout.take().unwrap()) } else { Box::new(child.stderr.take().unwrap()) };
    let mut lines = BufReader::new(pipe).lines();
    let guard = Killed(child);
    loop {
        let line = lines.next().expect("process exited before it was ready").expect("read log");
        if line.contains(ready) {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    guard
}

fn redis_cli(port: u16, args: &[&str]) {
    let status = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli");
    assert!(status.success(), "redis-cli {args:?}");
}

fn compare(tool: &Path, dir: &Path, reference: SocketAddr, ours: SocketAddr, args: &[&str]) -> String {
    let ref1 = http_get(reference, "/metrics");
    let cand = http_get(ours, "/metrics");
    let ref2 = http_get(reference, "/metrics");
    for (name, text) in [("ref1.prom", &ref1), ("cand.prom", &cand), ("ref2.prom", &ref2)] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let output = Command::new("python3")
        .arg(tool)
        .arg(dir.join("ref1.prom"))
        .arg(dir.join("cand.prom"))
        .arg("--ref2")
        .arg(dir.join("ref2.prom"))
        .args(args)
        .output()
        .expect("run compare_scrapes.py");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn redis_exporter_matches_debian_1_45() {
    let Some(shared) = shared::shared_dir("redis") else { return };
    for program in ["redis-server", "redis-cli", "prometheus-redis-exporter", "python3"] {
        if which(program).is_none() {
            println!(
                "conformance redis: skipped, {program} is not installed \
                 (apt-get install redis-server prometheus-redis-exporter python3)"
            );
            return;
        }
    }
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = Command::new("redis-server");
    server.args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"]);
    server.args(["--maxmemory", "64mb", "--daemonize", "no", "--dir"]).arg(work.path());
    let _server = start_until(server, "Ready to accept connections", true);
    redis_cli(port, &["-n", "0", "mset", "a", "1", "b", "2", "c", "3"]);
    redis_cli(port, &["-n", "0", "set", "e", "1", "EX", "3600"]);
    redis_cli(port, &["-n", "1", "set", "x", "1"]);
    redis_cli(port, &["get", "a"]);
    redis_cli(port, &["get", "nope"]);

    let address = format!("redis://127.0.0.1:{port}");
    let reference_port = free_port();
    let mut reference = Command::new("prometheus-redis-exporter");
    reference.arg(format!("--redis.addr={address}")).arg(format!("--web.listen-address=127.0.0.1:{reference_port}"));
    let _reference = start_until(reference, "Providing metrics at", false);
    let reference: SocketAddr = format!("127.0.0.1:{reference_port}").parse().unwrap();

    let config = RedisConfig::from_args([format!("--redis.addr={address}")]).unwrap();
    let exporter = RedisExporter::new(config);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let ours = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    runtime.spawn(sextant_exporters::serve(listener, exporter.router(), async move {
        let _ = stopped.await;
    }));

    let required = shared.join("exporters/redis-763-metrics.txt");
    let required_arg = required.to_string_lossy().into_owned();
    let tool = shared.join("exporters/tools/compare_scrapes.py");
    let report =
        compare(&tool, work.path(), reference, ours, &["--ignore", "^(go_|process_)", "--required", &required_arg]);

    // The multi-target endpoint answers for the same server, and a dead one is up 0.
    let target = http_get(ours, &format!("/scrape?target={address}"));
    assert!(target.contains("\nredis_up 1\n"), "{target}");
    let dead = http_get(ours, &format!("/scrape?target=redis://127.0.0.1:{}", free_port()));
    assert!(dead.contains("\nredis_up 0\n"), "{dead}");
    let _ = stop.send(());
    drop(runtime);

    let family_line = Regex::new(r"^(MISSING|EXTRA  ) family (\S+) ").unwrap();
    let summary_line = Regex::new(r"^families ref=(\d+) cand=(\d+) common=(\d+)").unwrap();
    let expected: Vec<Regex> = EXPECTED_SERIES_DIFFERENCES.iter().map(|(p, _)| Regex::new(p).unwrap()).collect();
    let mut names = Vec::new();
    let mut unexpected = Vec::new();
    let (mut ref_names, mut common) = (0usize, 0usize);
    for line in report.lines() {
        if let Some(caps) = family_line.captures(line) {
            let name = caps.get(2).unwrap().as_str();
            match EXPECTED_NAME_DIFFERENCES.iter().find(|(n, _)| *n == name) {
                Some((_, reason)) => names.push(format!("{name} ({reason})")),
                None => unexpected.push(line.to_string()),
            }
        } else if line.starts_with("TYPE") || line.starts_with("LABELS") || line.starts_with("REQUIRED-MISSING") {
            unexpected.push(line.to_string());
        } else if let Some(caps) = summary_line.captures(line) {
            ref_names = caps[1].parse().unwrap();
            common = caps[3].parse().unwrap();
        } else if (line.starts_with("MISSING") || line.starts_with("EXTRA") || line.starts_with("VALUE"))
            && !expected.iter().any(|re| re.is_match(line))
        {
            unexpected.push(line.to_string());
        }
    }
    let differences = if names.is_empty() { "none".to_string() } else { names.join("; ") };
    println!("conformance redis: {common} of {ref_names} metric names match (go_/process_ ignored); differences: {differences}");
    for (pattern, reason) in EXPECTED_SERIES_DIFFERENCES {
        println!("conformance redis: allowed: {pattern}: {reason}");
    }
    assert!(ref_names > 100, "too few families compared:\n{report}");
    assert!(unexpected.is_empty(), "unexpected differences:\n{}\n\nfull report:\n{report}", unexpected.join("\n"));
}

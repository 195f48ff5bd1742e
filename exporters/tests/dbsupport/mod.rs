//! Helpers of the database exporters' differential tests: start a server and Debian's
//! exporter on free loopback ports, scrape both, run `compare_scrapes.py`, and sort its
//! findings into expected (with a reason) and unexpected.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use regex::Regex;

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

/// The first of `programs` that is not installed.
pub fn missing(programs: &[&str]) -> Option<String> {
    programs.iter().find(|p| which(p).is_none() && !Path::new(p).is_file()).map(|p| p.to_string())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A plain HTTP/1.0 GET; returns the status code and body.
pub fn http_get_status(addr: SocketAddr, path: &str) -> (u16, String) {
    // The Go exporters log that they listen just before they bind, so the first connect may
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
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n").expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

/// A GET that must answer 200.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    let (status, body) = http_get_status(addr, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// A child process killed when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` and waits until a line of its stderr (or stdout) contains `ready`.
pub fn start_until(mut command: Command, ready: &str, from_stdout: bool) -> Killed {
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

/// Runs a command that must succeed.
pub fn run(command: &mut Command) -> String {
    let output = command.output().expect("spawn");
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Scrapes reference, ours, reference (sandwich) at `path` and compares with the tool.
pub fn compare(tool: &Path, dir: &Path, reference: SocketAddr, ours: SocketAddr, path: &str, args: &[&str]) -> String {
    let ref1 = http_get(reference, path);
    let cand = http_get(ours, path);
    let ref2 = http_get(reference, path);
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

/// What a comparison found.
pub struct Verdict {
    pub ref_names: usize,
    pub common: usize,
    /// Name differences that are expected, with their reasons.
    pub names: Vec<String>,
    /// Lines that are not expected.
    pub unexpected: Vec<String>,
}

/// Sorts compare_scrapes.py's lines: family differences against `names` (name, reason),
/// series and value differences against `series` (regex, reason); type, label-name and
/// required-name differences are always unexpected.
pub fn judge(report: &str, names: &[(&str, &str)], series: &[(&str, &str)]) -> Verdict {
    let family_line = Regex::new(r"^(MISSING|EXTRA  ) family (\S+) ").unwrap();
    let summary_line = Regex::new(r"^families ref=(\d+) cand=(\d+) common=(\d+)").unwrap();
    let expected: Vec<Regex> = series.iter().map(|(p, _)| Regex::new(p).unwrap()).collect();
    let mut verdict = Verdict { ref_names: 0, common: 0, names: Vec::new(), unexpected: Vec::new() };
    for line in report.lines() {
        if let Some(caps) = family_line.captures(line) {
            let name = caps.get(2).unwrap().as_str();
            match names.iter().find(|(n, _)| *n == name) {
                Some((_, reason)) => verdict.names.push(format!("{name} ({reason})")),
                None => verdict.unexpected.push(line.to_string()),
            }
        } else if line.starts_with("TYPE") || line.starts_with("LABELS") || line.starts_with("REQUIRED-MISSING") {
            verdict.unexpected.push(line.to_string());
        } else if let Some(caps) = summary_line.captures(line) {
            verdict.ref_names = caps[1].parse().unwrap();
            verdict.common = caps[3].parse().unwrap();
        } else if (line.starts_with("MISSING") || line.starts_with("EXTRA") || line.starts_with("VALUE"))
            && !expected.iter().any(|re| re.is_match(line))
        {
            verdict.unexpected.push(line.to_string());
        }
    }
    verdict
}

/// How many names of a dashboard list the reference emits, and how many of those ours does.
pub fn dashboard_coverage(list: &Path, reference: &str, ours: &str) -> (usize, usize) {
    let has = |text: &str, name: &str| {
        text.lines().any(|l| l.strip_prefix("# TYPE ").is_some_and(|r| r.split(' ').next() == Some(name)))
    };
    let names: Vec<String> = std::fs::read_to_string(list)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let in_ref = names.iter().filter(|n| has(reference, n)).count();
    let in_both = names.iter().filter(|n| has(reference, n) && has(ours, n)).count();
    (in_both, in_ref)
}

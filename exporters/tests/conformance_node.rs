//! Differential test of the node exporter against Debian's `prometheus-node-exporter` 1.5.0
//! on this host, through `../shared/exporters/tools/compare_scrapes.py` in sandwich mode:
//! scrape the reference, then ours, then the reference again.
//!
//! Skips (with a printed reason) without `prometheus-node-exporter` or `python3`.

#[path = "../../testsupport/shared.rs"]
mod shared;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use sextant_exporters::NodeConfig;

/// Metric names present on one side only, with the reason. Empty today: every family the
/// reference emits on this host is emitted by ours too.
const EXPECTED_NAME_DIFFERENCES: &[(&str, &str)] = &[];

/// Series-level differences that are expected, as regexes over compare_scrapes.py's output
/// lines, with the reason.
const EXPECTED_SERIES_DIFFERENCES: &[(&str, &str)] = &[
    (
        r"^MISSING series node_scrape_collector_(success|duration_seconds)\{'collector': '(bcache|btrfs|dmi|fibrechannel|infiniband|ipvs|mdadm|nfs|nfsd|nvme|tapestats|xfs|zfs)'\}$",
        "collector not implemented in sextant; node_exporter 1.5.0 finds no data for it on this host either",
    ),
    (
        r"^MISSING series node_scrape_collector_(success|duration_seconds)\{'collector': 'systemd'\}$",
        "systemd collector (D-Bus) not implemented; it is on only in Debian's build and fails without systemd here",
    ),
    (r"^VALUE   node_scrape_collector_duration_seconds\{", "timing of each exporter's own work"),
    (
        r"^VALUE   node_procs_(running|blocked)\{\}",
        "instantaneous count that includes each exporter's own threads while it scrapes",
    ),
    (
        r"^(VALUE   |MISSING series |EXTRA   series )node_processes_(state|threads_state|pids|threads)\{",
        "instantaneous process and thread counts, including each exporter's own threads",
    ),
    (
        r"^(VALUE   |MISSING series |EXTRA   series )node_tcp_connection_states\{",
        "socket states change with every scrape's own connection (each leaves a time_wait socket)",
    ),
    (
        r"^VALUE   node_(sockstat_TCP_(inuse|alloc|tw|orphan|mem|mem_bytes)|sockstat_sockets_used|netstat_Tcp_CurrEstab)\{\}",
        "socket counts change with every scrape's own connection",
    ),
];

const UPSTREAM_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";

/// Families of the off-by-default collectors enabled on both sides.
const EXTRA_COLLECTOR_PREFIXES: &[&str] = &["node_processes_", "node_tcp_", "node_interrupts_"];

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

/// A plain HTTP/1.0 GET; returns the body.
fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n").expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.") && head.contains(" 200 "), "{head}");
    body.to_string()
}

struct Reference(Child);

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the Debian exporter on a free port and waits for its "Listening on" log line.
fn start_reference(binary: &Path, flags: &[String]) -> (Reference, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Command::new(binary)
        .arg(format!("--web.listen-address={addr}"))
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start prometheus-node-exporter");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let reference = Reference(child);
    loop {
        let line = lines.next().expect("prometheus-node-exporter exited").expect("read log");
        if line.contains("Listening on") {
            break;
        }
    }
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (reference, addr)
}

fn compare(tool: &Path, dir: &Path, reference: SocketAddr, ours: SocketAddr, extra_args: &[&str]) -> String {
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
        .args(extra_args)
        .output()
        .expect("run compare_scrapes.py");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Starts our exporter in-process on a free port; returns the runtime, address and stopper.
fn start_ours(flags: &[String]) -> (tokio::runtime::Runtime, SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let config = NodeConfig::from_args(flags.iter().cloned()).unwrap();
    let registry = Arc::new(config.registry().unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let ours = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    runtime.spawn(sextant_exporters::serve(
        listener,
        sextant_exporters::router(registry, "/metrics"),
        &Default::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    (runtime, ours, stop)
}

/// The recipe of `../shared/exporters/recipes/node-fixture.sh`: a frozen copy of a few /proc
/// files of this host, read by both exporters through `--path.procfs`; values must be equal.
#[test]
fn node_exporter_matches_debian_1_5_0_on_frozen_proc() {
    let Some(shared) = shared::shared_dir("node-fixture") else { return };
    let Some(reference_binary) = which("prometheus-node-exporter") else {
        println!("conformance node-fixture: skipped, prometheus-node-exporter is not installed");
        return;
    };
    if which("python3").is_none() {
        println!("conformance node-fixture: skipped, python3 is not installed");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    for dir in ["sys", "proc/net", "proc/sys/fs", "proc/sys/kernel/random", "proc/pressure"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    let copy = |file: &str| {
        if let Ok(bytes) = std::fs::read(Path::new("/proc").join(file)) {
            std::fs::write(root.join("proc").join(file), bytes).unwrap();
        }
    };
    for file in ["loadavg", "stat", "meminfo", "vmstat", "diskstats"] {
        copy(file);
    }
    for file in ["dev", "netstat", "snmp", "snmp6", "sockstat", "sockstat6", "softnet_stat", "arp"] {
        copy(&format!("net/{file}"));
    }
    copy("sys/fs/file-nr");
    copy("sys/kernel/random/entropy_avail");
    copy("sys/kernel/random/poolsize");
    for file in ["cpu", "io", "memory"] {
        copy(&format!("pressure/{file}"));
    }
    let mut flags: Vec<String> = vec![
        format!("--path.procfs={}", root.join("proc").display()),
        format!("--path.sysfs={}", root.join("sys").display()),
        "--collector.disable-defaults".into(),
        "--collector.netdev".into(),
        "--no-collector.netdev.netlink".into(),
        "--collector.netdev.device-exclude=^$".into(),
    ];
    for collector in [
        "loadavg",
        "stat",
        "meminfo",
        "vmstat",
        "diskstats",
        "netstat",
        "sockstat",
        "softnet",
        "filefd",
        "entropy",
        "pressure",
        "arp",
    ] {
        flags.push(format!("--collector.{collector}"));
    }
    let (runtime, ours, stop) = start_ours(&flags);
    let (_reference, reference) = start_reference(&reference_binary, &flags);
    let tool = shared.join("exporters/tools/compare_scrapes.py");
    let report =
        compare(&tool, root, reference, ours, &["--rel-tol", "0", "--ignore", "^node_scrape_collector_duration"]);
    let _ = stop.send(());
    drop(runtime);
    let differences: Vec<&str> = report
        .lines()
        .filter(|l| ["MISSING", "EXTRA", "VALUE", "TYPE", "LABELS"].iter().any(|p| l.starts_with(p)))
        .collect();
    let summary = report.lines().find(|l| l.starts_with("families")).unwrap_or("no summary");
    let n_series = std::fs::read_to_string(root.join("ref1.prom"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("node_") && !l.starts_with("node_scrape_collector_duration"))
        .count();
    println!(
        "conformance node-fixture: {} of {n_series} series equal on a frozen /proc ({summary})",
        n_series.saturating_sub(differences.len())
    );
    assert!(differences.is_empty(), "differences on a frozen /proc:\n{}", differences.join("\n"));
}

#[test]
fn node_exporter_matches_debian_1_5_0() {
    let Some(shared) = shared::shared_dir("node") else { return };
    let Some(reference_binary) = which("prometheus-node-exporter") else {
        println!("conformance node: skipped, prometheus-node-exporter is not installed (apt-get install prometheus-node-exporter)");
        return;
    };
    if which("python3").is_none() {
        println!("conformance node: skipped, python3 is not installed");
        return;
    }
    let tool = shared.join("exporters/tools/compare_scrapes.py");
    let work = tempfile::tempdir().unwrap();
    let textfiles = work.path().join("textfile");
    std::fs::create_dir(&textfiles).unwrap();
    std::fs::write(
        textfiles.join("batch.prom"),
        "# HELP batch_last_success_seconds Last success.\n# TYPE batch_last_success_seconds gauge\n\
         batch_last_success_seconds{job=\"backup\"} 1700000000\nbatch_untyped 3\n",
    )
    .unwrap();
    // Both exporters get the same explicit flags, so Debian's changed defaults do not matter.
    let flags: Vec<String> = vec![
        "--collector.netdev.device-exclude=^$".into(),
        format!("--collector.textfile.directory={}", textfiles.display()),
        format!("--collector.filesystem.mount-points-exclude={UPSTREAM_MOUNT_POINTS_EXCLUDE}"),
        "--collector.processes".into(),
        "--collector.tcpstat".into(),
        "--collector.interrupts".into(),
    ];

    let (runtime, ours, stop) = start_ours(&flags);
    let (_reference, reference) = start_reference(&reference_binary, &flags);

    let family_line = Regex::new(r"^(MISSING|EXTRA  ) family (\S+) ").unwrap();
    let summary_line = Regex::new(r"^families ref=(\d+) cand=(\d+) common=(\d+)").unwrap();
    let expected: Vec<(Regex, &str)> =
        EXPECTED_SERIES_DIFFERENCES.iter().map(|(pattern, reason)| (Regex::new(pattern).unwrap(), *reason)).collect();

    // Live values move (a burst of disk writeback between the scrapes, say); names, types and
    // labels must match on every attempt, and a series fails only if it is off in every
    // attempt: a wrong value is wrong each time.
    let mut persistent: Option<Vec<String>> = None;
    let mut name_report = String::new();
    for attempt in 0..4 {
        let required = shared.join("exporters/node-full-1860-metrics.txt");
        let required_arg = required.to_string_lossy().into_owned();
        let report = compare(&tool, work.path(), reference, ours, &["--required", &required_arg]);
        let mut name_differences = Vec::new();
        let mut unexpected = Vec::new();
        let mut ref_names = 0usize;
        let mut common = 0usize;
        for line in report.lines() {
            if let Some(caps) = family_line.captures(line) {
                let name = caps.get(2).unwrap().as_str();
                let reason = EXPECTED_NAME_DIFFERENCES.iter().find(|(n, _)| *n == name).map(|(_, r)| *r);
                match reason {
                    Some(reason) => name_differences.push(format!("{name} ({reason})")),
                    None => panic!("unexpected metric name difference: {line}\n{report}"),
                }
            } else if line.starts_with("TYPE") || line.starts_with("LABELS") || line.starts_with("REQUIRED-MISSING") {
                panic!("type or label names differ: {line}\n{report}");
            } else if let Some(caps) = summary_line.captures(line) {
                ref_names = caps[1].parse().unwrap();
                common = caps[3].parse().unwrap();
            } else if (line.starts_with("MISSING") || line.starts_with("EXTRA") || line.starts_with("VALUE"))
                && !expected.iter().any(|(re, _)| re.is_match(line))
            {
                unexpected.push(line.to_string());
            }
        }
        assert!(ref_names > 0, "no families compared:\n{report}");
        if attempt == 0 {
            let extra_names = |text: &str| {
                text.lines()
                    .filter_map(|l| l.strip_prefix("# TYPE "))
                    .filter(|l| EXTRA_COLLECTOR_PREFIXES.iter().any(|p| l.starts_with(p)))
                    .count()
            };
            let ref_text = std::fs::read_to_string(work.path().join("ref1.prom")).unwrap();
            let n_extra = extra_names(&ref_text);
            let differences =
                if name_differences.is_empty() { "none".to_string() } else { name_differences.join("; ") };
            let series_reasons: Vec<String> =
                EXPECTED_SERIES_DIFFERENCES.iter().map(|(pattern, reason)| format!("{pattern}: {reason}")).collect();
            let dashboard: Vec<String> = std::fs::read_to_string(&required)
                .unwrap()
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            let cand_text = std::fs::read_to_string(work.path().join("cand.prom")).unwrap();
            let has = |text: &str, name: &str| {
                text.lines().any(|l| l.strip_prefix("# TYPE ").is_some_and(|r| r.split(' ').next() == Some(name)))
            };
            let in_ref = dashboard.iter().filter(|n| has(&ref_text, n)).count();
            let in_both = dashboard.iter().filter(|n| has(&ref_text, n) && has(&cand_text, n)).count();
            let ours_only = dashboard.iter().filter(|n| !has(&ref_text, n) && has(&cand_text, n)).count();
            println!(
                "conformance node: dashboard 1860: {in_both} of {in_ref} names that node_exporter emits here are emitted by ours \
                 ({ours_only} more only by ours; {} of {} in neither)",
                dashboard.iter().filter(|n| !has(&ref_text, n) && !has(&cand_text, n)).count(),
                dashboard.len()
            );
            name_report = format!(
                "conformance node: {} of {} default-collector metric names match; differences: {differences}\n\
                 conformance node: {n_extra} of {n_extra} names of processes/tcpstat/interrupts match\n\
                 conformance node: allowed series differences:\n  {}",
                common - n_extra,
                ref_names - n_extra,
                series_reasons.join("\n  ")
            );
        }
        // The series a line is about: the text before the values.
        let series_of = |line: &str| line.split(": ref=").next().unwrap_or(line).to_string();
        let keys: Vec<String> = unexpected.iter().map(|l| series_of(l)).collect();
        persistent = Some(match persistent.take() {
            None => unexpected,
            Some(previous) => previous.into_iter().filter(|l| keys.contains(&series_of(l))).collect(),
        });
        if persistent.as_ref().is_some_and(Vec::is_empty) {
            break;
        }
    }
    println!("{name_report}");
    let unexpected = persistent.unwrap_or_default();
    let _ = stop.send(());
    drop(runtime);
    assert!(unexpected.is_empty(), "unexpected series or value differences:\n{}", unexpected.join("\n"));
    println!("conformance node: values within tolerance (sandwich mode, rel-tol 0.05)");
}

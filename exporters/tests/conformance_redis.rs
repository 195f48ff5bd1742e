//! Differential test of the Redis exporter against Debian's `prometheus-redis-exporter` 1.45:
//! a throwaway `redis-server` on a free loopback port with a temporary directory (as
//! `../shared/exporters/recipes/redis.sh` does), both exporters scraping it, compared by
//! `../shared/exporters/tools/compare_scrapes.py` in sandwich mode.
//!
//! Skips (with a printed reason) without `redis-server`, `redis-cli`,
//! `prometheus-redis-exporter` or `python3`.

#[path = "../../testsupport/shared.rs"]
mod shared;

mod dbsupport;

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use dbsupport::{free_port, http_get, start_until, which};

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

fn redis_cli(port: u16, args: &[&str]) {
    let status = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli");
    assert!(status.success(), "redis-cli {args:?}");
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
    runtime.spawn(sextant_exporters::serve(listener, exporter.router(), &Default::default(), async move {
        let _ = stopped.await;
    }));

    let required = shared.join("exporters/redis-763-metrics.txt");
    let required_arg = required.to_string_lossy().into_owned();
    let tool = shared.join("exporters/tools/compare_scrapes.py");
    let report = dbsupport::compare(
        &tool,
        work.path(),
        reference,
        ours,
        "/metrics",
        &["--ignore", "^(go_|process_)", "--required", &required_arg],
    );

    // The multi-target endpoint answers for the same server, and a dead one is up 0.
    let target = http_get(ours, &format!("/scrape?target={address}"));
    assert!(target.contains("\nredis_up 1\n"), "{target}");
    let dead = http_get(ours, &format!("/scrape?target=redis://127.0.0.1:{}", free_port()));
    assert!(dead.contains("\nredis_up 0\n"), "{dead}");
    let _ = stop.send(());
    drop(runtime);

    let verdict = dbsupport::judge(&report, EXPECTED_NAME_DIFFERENCES, EXPECTED_SERIES_DIFFERENCES);
    let (names, unexpected, common, ref_names) = (verdict.names, verdict.unexpected, verdict.common, verdict.ref_names);
    let ref_text = std::fs::read_to_string(work.path().join("ref1.prom")).unwrap();
    let cand_text = std::fs::read_to_string(work.path().join("cand.prom")).unwrap();
    let (both, in_ref) = dbsupport::dashboard_coverage(&required, &ref_text, &cand_text);
    println!(
        "conformance redis: dashboard 763: {both} of {in_ref} names the Debian exporter emits are emitted by ours"
    );
    let differences = if names.is_empty() { "none".to_string() } else { names.join("; ") };
    println!("conformance redis: {common} of {ref_names} metric names match (go_/process_ ignored); differences: {differences}");
    for (pattern, reason) in EXPECTED_SERIES_DIFFERENCES {
        println!("conformance redis: allowed: {pattern}: {reason}");
    }
    assert!(ref_names > 100, "too few families compared:\n{report}");
    assert!(unexpected.is_empty(), "unexpected differences:\n{}\n\nfull report:\n{report}", unexpected.join("\n"));
}

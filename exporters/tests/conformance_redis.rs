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

/// Redis over TLS (a self-signed certificate for `localhost`, trusted with
/// `--tls-ca-cert-file`) with an ACL user: ours and Debian's exporter both log in as that user
/// and report `redis_up 1` with the same metric names; a wrong password, the default user
/// without a password and plain TCP to the TLS port are `redis_up 0`.
#[test]
fn redis_tls_and_acl_user() {
    for program in ["redis-server", "prometheus-redis-exporter", "openssl"] {
        if which(program).is_none() {
            println!("conformance redis: TLS and ACL test skipped, {program} is not installed");
            return;
        }
    }
    let work = tempfile::tempdir().unwrap();
    let (cert, key) = (work.path().join("cert.pem"), work.path().join("key.pem"));
    dbsupport::run(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    let port = free_port();
    let mut server = Command::new("redis-server");
    server.args(["--bind", "127.0.0.1", "--port", "0", "--tls-port", &port.to_string(), "--tls-auth-clients", "no"]);
    server.arg("--tls-cert-file").arg(&cert).arg("--tls-key-file").arg(&key).arg("--tls-ca-cert-file").arg(&cert);
    server.args(["--save", "", "--appendonly", "no", "--requirepass", "default-secret"]);
    server.args(["--user", "exporter", "on", ">exporter-secret", "~*", "&*", "+@all"]);
    server.arg("--dir").arg(work.path());
    let _server = start_until(server, "Ready to accept connections", true);

    let address = format!("rediss://localhost:{port}");
    let ca_flag = format!("--tls-ca-cert-file={}", cert.display());
    let reference_port = free_port();
    let mut reference = Command::new("prometheus-redis-exporter");
    reference.args([&format!("--redis.addr={address}"), "--redis.user=exporter", "--redis.password=exporter-secret"]);
    reference.arg(&ca_flag).arg(format!("--web.listen-address=127.0.0.1:{reference_port}"));
    let _reference = start_until(reference, "Providing metrics at", false);
    let reference: SocketAddr = format!("127.0.0.1:{reference_port}").parse().unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let scrape = |args: &[String]| -> String {
        let config = RedisConfig::from_args(args.iter().cloned()).unwrap();
        let families = runtime.block_on(RedisExporter::new(config).scrape(None));
        sextant_model::exposition::encode(&families, sextant_exporters::Format::Text)
    };
    let names = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .map(String::from)
            .collect()
    };
    let ours = scrape(&[
        format!("--redis.addr={address}"),
        "--redis.user=exporter".into(),
        "--redis.password=exporter-secret".into(),
        ca_flag.clone(),
    ]);
    let theirs = http_get(reference, "/metrics");
    assert!(theirs.contains("\nredis_up 1\n"), "{theirs}");
    assert!(ours.contains("\nredis_up 1\n"), "{ours}");
    let ignored = |name: &String| name.starts_with("go_") || name.starts_with("process_");
    let their_names: Vec<String> = names(&theirs).into_iter().filter(|n| !ignored(n)).collect();
    let our_names = names(&ours);
    let missing: Vec<&String> = their_names.iter().filter(|n| !our_names.contains(*n)).collect();
    assert!(missing.is_empty(), "names the Go exporter emits over TLS and ours does not: {missing:?}");

    let wrong_password = scrape(&[
        format!("--redis.addr={address}"),
        "--redis.user=exporter".into(),
        "--redis.password=nope".into(),
        ca_flag.clone(),
    ]);
    let no_password = scrape(&[format!("--redis.addr={address}"), ca_flag.clone()]);
    let plain_tcp = scrape(&[format!("--redis.addr=redis://localhost:{port}"), "--connection-timeout=2s".into()]);
    let untrusted = scrape(&[format!("--redis.addr={address}"), "--redis.password=default-secret".into()]);
    let skip_verify = scrape(&[
        format!("--redis.addr={address}"),
        "--redis.password=default-secret".into(),
        "--skip-tls-verification".into(),
    ]);
    for (what, text, up) in [
        ("wrong password", &wrong_password, 0),
        ("no password", &no_password, 0),
        ("plain TCP to the TLS port", &plain_tcp, 0),
        ("certificate not trusted", &untrusted, 0),
        ("--skip-tls-verification, default user", &skip_verify, 1),
    ] {
        assert!(text.contains(&format!("\nredis_up {up}\n")), "{what}: {text}");
    }
    println!(
        "conformance redis: TLS + ACL user: both exporters up, {} of {} names of the Go exporter emitted; \
         wrong password, no password, plain TCP and an untrusted certificate give redis_up 0",
        their_names.len() - missing.len(),
        their_names.len()
    );
}

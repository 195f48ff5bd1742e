//! Differential test of the PostgreSQL exporter against Debian's `prometheus-postgres-exporter`
//! 0.11.1: a throwaway PostgreSQL cluster on a free loopback port in a temporary directory (as
//! `../shared/exporters/recipes/postgres.sh` does), both exporters on the same DSN, compared by
//! `../shared/exporters/tools/compare_scrapes.py` in sandwich mode, once with the default
//! metrics and once with Debian's example `queries.yaml`.
//!
//! Skips (with a printed reason) without `postgresql`, `prometheus-postgres-exporter`,
//! `python3`, or when not run as root (the cluster runs as the `postgres` user).

#[path = "../../testsupport/shared.rs"]
mod shared;

mod dbsupport;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use dbsupport::{compare, free_port, judge, missing, run, start_until};
use sextant_exporters::{PostgresConfig, PostgresExporter};

/// Metric names present on one side only, with the reason.
const EXPECTED_NAME_DIFFERENCES: &[(&str, &str)] = &[];

/// Series-level differences that are expected (regexes over compare_scrapes.py's lines).
const EXPECTED_SERIES_DIFFERENCES: &[(&str, &str)] = &[
    (
        r"^VALUE   pg_(exporter_last_scrape_duration_seconds|scrape_collector_duration_seconds)\{",
        "timing of each exporter's own work",
    ),
    (r"^VALUE   pg_exporter_scrapes_total\{", "each exporter counts its own scrapes"),
    (
        r"^(VALUE   |MISSING series |EXTRA   series )pg_stat_activity_(count|max_tx_duration)\{",
        "the exporters' own connections are active or idle depending on who is scraping",
    ),
    (
        r"^VALUE   pg_stat_database_\w+\{'datid': '\d+', 'datname': '(postgres|)'",
        "statistics of the database both exporters query move with their own queries",
    ),
    (r"^VALUE   pg_locks_count\{", "the locks taken by each exporter's own queries"),
    (
        r"^(VALUE   |MISSING series |EXTRA   series )pg_process_idle_seconds_(bucket|sum|count)\{",
        "idle time of the exporters' own connections (queries.yaml)",
    ),
    (r"^VALUE   pg_stat_bgwriter_buffers_alloc_total\{", "buffers allocated for the exporters' own queries"),
    (r"^(VALUE   |MISSING series |EXTRA   series )postgres_exporter_build_info\{", "build labels differ by design"),
    (
        r"^(MISSING series |EXTRA   series )pg_exporter_user_queries_load_error\{",
        "the file name label is the path each exporter was given",
    ),
];

fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> =
        std::fs::read_dir("/usr/lib/postgresql").ok()?.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect();
    versions.sort();
    versions.into_iter().rev().find(|bin| bin.join("initdb").is_file())
}

/// A cluster stopped (fast) when dropped.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "immediate"])
            .output();
    }
}

fn start_ours(config: PostgresConfig) -> (tokio::runtime::Runtime, SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let exporter = PostgresExporter::new(config);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let ours = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    runtime.spawn(sextant_exporters::serve(listener, exporter.router(), &Default::default(), async move {
        let _ = stopped.await;
    }));
    (runtime, ours, stop)
}

fn check(shared: &Path, work: &Path, dsn: &str, queries: Option<&Path>, label: &str) {
    let mut flags = Vec::new();
    if let Some(path) = queries {
        flags.push(format!("--extend.query-path={}", path.display()));
    }
    let reference_port = free_port();
    let mut reference = Command::new("prometheus-postgres-exporter");
    reference.env("DATA_SOURCE_NAME", dsn).arg(format!("--web.listen-address=127.0.0.1:{reference_port}")).args(&flags);
    let _reference = start_until(reference, "Listening on", false);
    let reference: SocketAddr = format!("127.0.0.1:{reference_port}").parse().unwrap();
    let config = PostgresConfig::from_args(flags.clone()).unwrap().with_dsn(dsn);
    let (runtime, ours, stop) = start_ours(config);

    let tool = shared.join("exporters/tools/compare_scrapes.py");
    let required = shared.join("exporters/postgres-9628-metrics.txt");
    let required_arg = required.to_string_lossy().into_owned();
    let args = ["--ignore", "^(go_|process_|promhttp_)", "--required", &required_arg, "--rel-tol", "0.05"];
    // Both keep a connection open between scrapes; one scrape each first makes the
    // sandwich fair (the first scrape of each opens its connection).
    dbsupport::http_get(reference, "/metrics");
    dbsupport::http_get(ours, "/metrics");
    let report = compare(&tool, work, reference, ours, "/metrics", &args);
    let _ = stop.send(());
    drop(runtime);
    let verdict = judge(&report, EXPECTED_NAME_DIFFERENCES, EXPECTED_SERIES_DIFFERENCES);
    let differences = if verdict.names.is_empty() { "none".to_string() } else { verdict.names.join("; ") };
    let ref_text = std::fs::read_to_string(work.join("ref1.prom")).unwrap();
    let cand_text = std::fs::read_to_string(work.join("cand.prom")).unwrap();
    let (both, in_ref) = dbsupport::dashboard_coverage(&required, &ref_text, &cand_text);
    println!(
        "conformance postgres{label}: {} of {} metric names match (go_/process_/promhttp_ ignored); differences: {differences}; \
         dashboard 9628: {both} of {in_ref} names the Debian exporter emits are emitted by ours",
        verdict.common, verdict.ref_names
    );
    assert!(verdict.ref_names > 250, "too few families compared:\n{report}");
    assert!(
        verdict.unexpected.is_empty(),
        "unexpected differences:\n{}\n\nfull report:\n{report}",
        verdict.unexpected.join("\n")
    );
}

#[test]
fn postgres_exporter_matches_debian_0_11_1() {
    let Some(shared) = shared::shared_dir("postgres") else { return };
    let Some(bin) = pg_bin() else {
        println!("conformance postgres: skipped, postgresql is not installed (apt-get install postgresql prometheus-postgres-exporter)");
        return;
    };
    if let Some(program) = missing(&["prometheus-postgres-exporter", "python3", "psql", "runuser", "openssl"]) {
        println!("conformance postgres: skipped, {program} is not installed (apt-get install postgresql prometheus-postgres-exporter)");
        return;
    }
    if run(Command::new("id").arg("-u")).trim() != "0" {
        println!("conformance postgres: skipped, needs root to run the cluster as the postgres user");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    run(Command::new("chown").arg("postgres:postgres").arg(dir));
    let data = dir.join("data");
    run(Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres"]));
    // TLS: a self-signed certificate for localhost; the user `tlsuser` may only log in over
    // TLS (hostssl), so its scrapes prove the exporters' TLS.
    let (cert, key) = (data.join("server.crt"), data.join("server.key"));
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    run(Command::new("chown").arg("postgres:postgres").arg(&cert).arg(&key));
    run(Command::new("chmod").arg("600").arg(&key));
    let hba = data.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("hostnossl all tlsuser 0.0.0.0/0 reject\nhostssl all tlsuser 127.0.0.1/32 scram-sha-256\n{rules}"),
    )
    .unwrap();
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
        .arg(format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={} -c ssl=on",
            dir.display()
        ))
        .arg("start"));
    let _cluster = Cluster { bin: bin.clone(), data };
    let psql = |db: &str, sql: &str| {
        run(Command::new("psql").args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            db,
            "-c",
            sql,
        ]));
    };
    psql("postgres", "CREATE USER exporter WITH PASSWORD 'exporterpw'");
    psql("postgres", "GRANT pg_monitor TO exporter");
    psql("postgres", "CREATE USER tlsuser WITH PASSWORD 'tlspw'");
    psql("postgres", "GRANT pg_monitor TO tlsuser");
    psql("postgres", "CREATE DATABASE difftest");
    psql(
        "difftest",
        "CREATE TABLE t(id serial primary key, v text); INSERT INTO t(v) SELECT 'x'||g FROM generate_series(1,100) g",
    );

    let dsn = format!("postgresql://exporter:exporterpw@127.0.0.1:{port}/postgres?sslmode=disable");
    let scratch = dir.join("scrapes");
    std::fs::create_dir(&scratch).unwrap();
    check(&shared, &scratch, &dsn, None, "");

    let example = Path::new("/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml");
    if example.is_file() {
        let copy = dir.join("queries.yaml");
        std::fs::copy(example, &copy).unwrap();
        check(&shared, &scratch, &dsn, Some(&copy), " (Debian's example queries.yaml)");
    } else {
        println!("conformance postgres (queries.yaml): skipped, {} not found", example.display());
    }

    // Over TLS, verified (sslmode=verify-full with sslrootcert), compared with Go's lib/pq.
    let tls_dsn = format!(
        "postgresql://tlsuser:tlspw@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={}",
        cert.display()
    );
    check(&shared, &scratch, &tls_dsn, None, " (TLS, sslmode=verify-full)");
    // Encrypted without verification (lib/pq's require), and no TLS at all for a hostssl user.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (dsn, up) in [
        (format!("postgresql://tlsuser:tlspw@127.0.0.1:{port}/postgres?sslmode=require"), 1.0),
        (format!("postgresql://tlsuser:tlspw@127.0.0.1:{port}/postgres?sslmode=disable"), 0.0),
        (format!("postgresql://tlsuser:tlspw@127.0.0.1:{port}/postgres?sslmode=verify-full"), 0.0),
    ] {
        let families = runtime.block_on(PostgresExporter::new(PostgresConfig::default().with_dsn(&dsn)).scrape());
        let pg_up = families.iter().find(|f| f.name == "pg_up").map(|f| f.samples[0].value);
        assert_eq!(pg_up, Some(up), "{dsn}");
    }
    println!(
        "conformance postgres: TLS: verify-full (sslrootcert) compared above; require up; disable and verify-full \
         without the CA down"
    );

    // A server that is gone: up 0 and a 200 response, not an error or a hang.
    let dead = PostgresConfig::default()
        .with_dsn(format!("postgresql://exporter@127.0.0.1:{}/x?sslmode=disable", free_port()));
    let families = runtime.block_on(PostgresExporter::new(dead).scrape());
    assert!(families.iter().any(|f| f.name == "pg_up" && f.samples[0].value == 0.0));
}

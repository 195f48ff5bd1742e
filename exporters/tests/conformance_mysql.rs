//! Differential test of the MySQL exporter against Debian's `prometheus-mysqld-exporter` 0.14
//! on MariaDB: a throwaway server on a free loopback port with a temporary data directory (as
//! `../shared/exporters/recipes/mysql.sh` does), both exporters on the same DSN, compared by
//! `../shared/exporters/tools/compare_scrapes.py` in sandwich mode.
//!
//! Skips (with a printed reason) without `mariadb-server`, `prometheus-mysqld-exporter`,
//! `python3`, or when not root (the server runs as the `mysql` user).

#[path = "../../testsupport/shared.rs"]
mod shared;

mod dbsupport;

use std::net::SocketAddr;
use std::process::Command;

use dbsupport::{compare, free_port, judge, missing, run, start_until};
use sextant_exporters::{MysqlConfig, MysqlExporter};

/// Metric names present on one side only, with the reason.
const EXPECTED_NAME_DIFFERENCES: &[(&str, &str)] = &[];

/// Series-level differences that are expected (regexes over compare_scrapes.py's lines).
const EXPECTED_SERIES_DIFFERENCES: &[(&str, &str)] = &[
    (r"^VALUE   mysql_exporter_collector_duration_seconds\{", "timing of each exporter's own work"),
    (r"^VALUE   mysql_exporter_scrapes_total\{", "each exporter counts its own scrapes"),
    (r"^(VALUE   |MISSING series |EXTRA   series )mysqld_exporter_build_info\{", "build labels differ by design"),
    (
        r"^(VALUE   |MISSING series |EXTRA   series )mysql_global_status_(commands_total|handlers_total)\{",
        "the exporters' own queries, counted by the server between the scrapes",
    ),
    (
        r"^VALUE   mysql_global_status_(bytes_received|bytes_sent|questions|queries|com_\w+|select_scan|created_tmp_\w+|table_open_cache_\w+|opened_\w+|open_\w+|threads_\w+|max_used_connections\w*|connections|aborted_\w+|memory_used\w*|innodb_\w+|key_\w+|busy_time|cpu_time|rows_\w+|access_denied_errors|handler_\w+|feature_\w+|last_query_cost|sort_\w+|table_locks_\w+|uptime|uptime_since_flush_status|syncs|buffer_pool_\w+|malloc_calls|column_compressions|subquery_cache_\w+|empty_queries|tc_log_\w+|resultset_metadata_skipped|qcache_\w+|update_scan|delete_scan|binlog_\w+|transactions_\w+|max_statement_time_exceeded|slow_queries)\{",
        "server counters and gauges move with each exporter's own connection and queries",
    ),
    (
        r"^VALUE   mysql_global_status_(buffer_pool_pages|buffer_pool_page_changes_total|innodb_row_ops_total)\{",
        "InnoDB buffer pool activity of the exporters' own queries",
    ),
];

#[test]
fn mysqld_exporter_matches_debian_0_14() {
    let Some(shared) = shared::shared_dir("mysql") else { return };
    if let Some(program) =
        missing(&["mariadbd", "mariadb-install-db", "mariadb", "prometheus-mysqld-exporter", "python3"])
    {
        println!("conformance mysql: skipped, {program} is not installed (apt-get install mariadb-server prometheus-mysqld-exporter)");
        return;
    }
    if run(Command::new("id").arg("-u")).trim() != "0" {
        println!("conformance mysql: skipped, needs root to run mariadbd as the mysql user");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let data = dir.join("data");
    let socket = dir.join("mysqld.sock");
    std::fs::create_dir(&data).unwrap();
    run(Command::new("chown").args(["-R", "mysql:mysql"]).arg(dir));
    run(Command::new("mariadb-install-db")
        .args(["--user=mysql", "--auth-root-authentication-method=socket", "--skip-test-db"])
        .arg(format!("--datadir={}", data.display())));
    let port = free_port();
    let mut server = Command::new("mariadbd");
    server
        .args(["--user=mysql", "--bind-address=127.0.0.1", "--skip-name-resolve", "--performance-schema=ON"])
        .args(["--innodb-buffer-pool-size=64M", "--skip-log-bin"])
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .arg(format!("--port={port}"));
    let _server = start_until(server, "ready for connections", false);
    let sql = "CREATE USER 'exporter'@'127.0.0.1' IDENTIFIED BY 'exporterpw' WITH MAX_USER_CONNECTIONS 3;\
               GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO 'exporter'@'127.0.0.1';\
               CREATE DATABASE difftest;\
               CREATE TABLE difftest.t (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(32)) ENGINE=InnoDB;\
               INSERT INTO difftest.t (v) VALUES ('a'),('b'),('c');";
    run(Command::new("mariadb").arg(format!("--socket={}", socket.display())).args(["-uroot", "-e", sql]));

    let dsn = format!("exporter:exporterpw@(127.0.0.1:{port})/");
    let reference_port = free_port();
    let mut reference = Command::new("prometheus-mysqld-exporter");
    reference.env("DATA_SOURCE_NAME", &dsn).arg(format!("--web.listen-address=127.0.0.1:{reference_port}"));
    let _reference = start_until(reference, "Listening on", false);
    let reference: SocketAddr = format!("127.0.0.1:{reference_port}").parse().unwrap();

    let config = MysqlConfig::from_args(["--config.my-cnf=/nonexistent"]).unwrap().with_dsn(&dsn).unwrap();
    let exporter = MysqlExporter::new(config);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let ours = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    runtime.spawn(sextant_exporters::serve(listener, exporter.router(), &Default::default(), async move {
        let _ = stopped.await;
    }));

    let scratch = dir.join("scrapes");
    std::fs::create_dir(&scratch).unwrap();
    let tool = shared.join("exporters/tools/compare_scrapes.py");
    let required = shared.join("exporters/mysql-overview-7362-metrics.txt");
    let required_arg = required.to_string_lossy().into_owned();
    let args = ["--ignore", "^(go_|process_|promhttp_)", "--required", &required_arg];
    let report = compare(&tool, &scratch, reference, ours, "/metrics", &args);
    let _ = stop.send(());
    drop(runtime);

    let verdict = judge(&report, EXPECTED_NAME_DIFFERENCES, EXPECTED_SERIES_DIFFERENCES);
    let differences = if verdict.names.is_empty() { "none".to_string() } else { verdict.names.join("; ") };
    let ref_text = std::fs::read_to_string(scratch.join("ref1.prom")).unwrap();
    let cand_text = std::fs::read_to_string(scratch.join("cand.prom")).unwrap();
    let (both, in_ref) = dbsupport::dashboard_coverage(&required, &ref_text, &cand_text);
    println!(
        "conformance mysql: {} of {} metric names match (go_/process_/promhttp_ ignored); differences: {differences}; \
         dashboard 7362: {both} of {in_ref} names the Debian exporter emits are emitted by ours",
        verdict.common, verdict.ref_names
    );
    assert!(verdict.ref_names > 500, "too few families compared:\n{report}");
    assert!(
        verdict.unexpected.is_empty(),
        "unexpected differences:\n{}\n\nfull report:\n{report}",
        verdict.unexpected.join("\n")
    );
}

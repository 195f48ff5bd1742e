//! `sextant stack single-host` end to end: the server scrapes itself, its Alertmanager and the
//! node and log exporters; the dashboards' key queries answer; error lines written to a log
//! file fire `LogErrors`, which reaches an SMTP server by e-mail with the SMTP settings from
//! the environment; SIGTERM stops everything cleanly.

mod stacksupport;

use std::io::Write;

use stacksupport::{free_port, scaled_stack, smtp_sink, wait_message, Stack};

#[test]
fn single_host_stack() {
    let work = tempfile::tempdir().unwrap();
    let dir = scaled_stack("single-host", work.path(), &[]);
    let log_file = work.path().join("app.log");
    std::fs::write(&log_file, "service started\n").unwrap();
    let password_file = work.path().join("smtp-password");
    std::fs::write(&password_file, "s3cret\n").unwrap();
    let (smtp, mails) = smtp_sink();
    let (api, am, node, log) = (free_port(), free_port(), free_port(), free_port());
    let env = [
        ("SMTP_SMARTHOST", format!("127.0.0.1:{smtp}")),
        ("SMTP_USER", "alerts".to_string()),
        ("SMTP_PASSWORD_FILE", password_file.display().to_string()),
        ("SMTP_REQUIRE_TLS", "false".to_string()),
        ("ALERT_EMAIL_TO", "ops@example.org".to_string()),
        ("LOG_FILES", log_file.display().to_string()),
    ];
    let mut stack = Stack::start(
        &dir,
        &work.path().join("data"),
        &[("server", api), ("alertmanager", am), ("node", node), ("log", log)],
        &env,
    );
    assert!(stack.first_url().contains(&format!("http://127.0.0.1:{api}/api/v1/query")), "{:?}", stack.printed);

    stack.wait_up(&[("sextant", 1), ("alertmanager", 1), ("node", 1), ("log", 1)]);
    // Node Exporter Full (1860) and Logporter (23848, file counters without Docker).
    for expr in [
        "100 * (1 - avg(rate(node_cpu_seconds_total{mode=\"idle\",job=\"node\"}[1m])))",
        "node_memory_MemTotal_bytes{job=\"node\"} - node_memory_MemAvailable_bytes{job=\"node\"}",
        "node_filesystem_size_bytes{job=\"node\"}",
        "rate(node_network_receive_bytes_total{job=\"node\"}[1m])",
        "node_time_seconds{job=\"node\"} - node_boot_time_seconds{job=\"node\"}",
        "instance:node_cpu_busy:ratio_rate1m",
        "sextant_log_file_lines_total{job=\"log\"}",
    ] {
        stack.wait_for_data(expr);
    }
    let (status, rules) = stack.get("/api/v1/rules");
    assert_eq!(status, 200);
    for name in ["TargetDown", "DiskAlmostFull", "HighCpu", "ContainerLogErrors", "LogErrors"] {
        assert!(rules.contains(name), "{name} missing from {rules}");
    }

    // Induce: the application logs errors.
    let mut file = std::fs::OpenOptions::new().append(true).open(&log_file).unwrap();
    for i in 0..5 {
        writeln!(file, "ERROR request {i} failed").unwrap();
    }
    drop(file);
    let mail = wait_message(&mails, "e-mail about LogErrors", |m| m.contains("LogErrors"));
    // AUTH PLAIN base64("\0alerts\0s3cret"): user from SMTP_USER, password from the file.
    assert!(mail.contains("AUTH PLAIN AGFsZXJ0cwBzM2NyZXQ="), "{mail}");
    assert!(mail.contains("RCPT TO:<ops@example.org>"), "{mail}");
    assert!(mail.contains("[FIRING:1] LogErrors"), "{mail}");

    stack.stop();
    assert!(work.path().join("data/tsdb").is_dir());
    assert!(work.path().join("data/alertmanager").is_dir());
}

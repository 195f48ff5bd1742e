//! `sextant stack app` end to end against a real MariaDB: the node and MySQL exporters and an
//! application `/metrics` endpoint are up, the MySQL Overview (7362) key queries answer, and
//! stopping MariaDB fires `MysqlDown`, which reaches a webhook.

mod stacksupport;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use stacksupport::{free_port, mariadb, scaled_stack, skip, wait_message, webhook_sink, Stack};

/// A stand-in application: `/metrics` with a request counter and a latency histogram.
fn app() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let body = format!(
                "# TYPE http_requests_total counter\nhttp_requests_total{{code=\"200\"}} {}\nhttp_requests_total{{code=\"500\"}} 0\n\
                 # TYPE http_request_duration_seconds histogram\nhttp_request_duration_seconds_bucket{{le=\"0.1\"}} {n}\n\
                 http_request_duration_seconds_bucket{{le=\"+Inf\"}} {n}\nhttp_request_duration_seconds_sum {}\n\
                 http_request_duration_seconds_count {n}\n",
                n * 10,
                n as f64 * 0.05
            );
            let mut w = stream;
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn app_stack() {
    if skip("stack app", &["mariadbd", "mariadb-install-db", "mariadb", "curl"], true) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let db_dir = work.path().join("mariadb");
    std::fs::create_dir(&db_dir).unwrap();
    let (db, db_port) = mariadb(&db_dir);
    let (hook, alerts) = webhook_sink();
    let app = app();
    let dir = scaled_stack("app", work.path(), &[]);
    let (api, am, node, mysql) = (free_port(), free_port(), free_port(), free_port());
    let env = [("MYSQL_DSN", format!("exporter:exporterpw@(127.0.0.1:{db_port})/"))];
    let mut stack = Stack::start(
        &dir,
        &work.path().join("data"),
        &[("server", api), ("alertmanager", am), ("node", node), ("mysql", mysql), ("app", app), ("webhook", hook)],
        &env,
    );
    assert!(stack.first_url().contains(&format!("http://127.0.0.1:{api}/api/v1/query")), "{:?}", stack.printed);
    stack.wait_up(&[("sextant", 1), ("node", 1), ("mysql", 1), ("app", 1)]);
    for expr in [
        "mysql_up == 1",
        "mysql_global_status_uptime",
        "rate(mysql_global_status_queries[1m])",
        "mysql_global_variables_innodb_buffer_pool_size",
        "max_over_time(mysql_global_status_threads_connected[1m])",
        "mysql_global_variables_max_connections",
        "rate(mysql_global_status_questions[1m])",
        "node_memory_MemTotal_bytes",
        "job:http_requests:rate5m{job=\"app\"}",
    ] {
        stack.wait_for_data(expr);
    }

    // Induce: the database goes away.
    drop(db);
    let body = wait_message(&alerts, "webhook for MysqlDown", |b| b.contains("\"MysqlDown\""));
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "firing", "{body}");
    assert_eq!(json["receiver"], "app-webhook", "{body}");

    stack.stop();
}

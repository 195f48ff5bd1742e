//! Scrape loops against small HTTP servers run by the test on 127.0.0.1.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use sextant_model::{is_stale, Matcher, MemStorage, Queryable, SystemClock, ValueType};
use sextant_scrape::{targets_from_group, Config, ScrapeLoop, ScrapeReport, StopMode, TargetHealth};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone)]
enum Reply {
    Body { status: u16, content_type: &'static str, body: Vec<u8>, gzip: bool },
    Hang,
    Reset,
    Garbage,
}

fn text(body: &str) -> Reply {
    Reply::Body { status: 200, content_type: "text/plain; version=0.0.4", body: body.as_bytes().to_vec(), gzip: false }
}

struct Server {
    port: u16,
    reply: Arc<Mutex<Reply>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start(reply: Reply) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let reply = Arc::new(Mutex::new(reply));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (r, q) = (reply.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                let (r, q) = (r.clone(), q.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    q.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
                    let reply = r.lock().unwrap().clone();
                    match reply {
                        Reply::Body { status, content_type, body, gzip } => {
                            let body = if gzip {
                                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                                e.write_all(&body).unwrap();
                                e.finish().unwrap()
                            } else {
                                body
                            };
                            let enc = if gzip { "Content-Encoding: gzip\r\n" } else { "" };
                            let head = format!(
                                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n{enc}Content-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            );
                            let _ = stream.write_all(head.as_bytes()).await;
                            let _ = stream.write_all(&body).await;
                        }
                        Reply::Hang => {
                            let _ = stream.read(&mut buf).await;
                            std::future::pending::<()>().await;
                        }
                        Reply::Reset => {
                            // A zero linger does not block: the kernel sends RST at once.
                            #[allow(deprecated)]
                            let _ = stream.set_linger(Some(std::time::Duration::ZERO));
                            drop(stream);
                        }
                        Reply::Garbage => {
                            let _ = stream.write_all(b"\x00\x01garbage that is not HTTP\r\n\r\n").await;
                        }
                    }
                });
            }
        });
        Server { port, reply, requests }
    }

    fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }
}

fn scrape_loop(port: u16, extra: &str, db: &Arc<MemStorage>) -> ScrapeLoop {
    let yaml = format!(
        "scrape_configs:\n- job_name: app\n  scrape_interval: 1s\n  scrape_timeout: 500ms\n  static_configs: [{{targets: ['127.0.0.1:{port}'], labels: {{env: test}}}}]\n{extra}"
    );
    let config = Config::load_str(&yaml).unwrap();
    let job = Arc::new(config.scrape_configs[0].clone());
    let (targets, errors) = targets_from_group(&job.static_configs[0], &job);
    assert!(errors.is_empty(), "{errors:?}");
    ScrapeLoop::new(targets[0].clone(), job, db.clone(), Arc::new(SystemClock)).unwrap()
}

/// Every series of `db` with its samples, as text lines `labels t v`, sorted.
fn dump(db: &MemStorage) -> Vec<String> {
    let querier = db.querier(i64::MIN, i64::MAX).unwrap();
    let all = Matcher::new(sextant_model::MatchOp::RegexMatch, "__name__", ".+").unwrap();
    let mut out = Vec::new();
    for series in querier.select(true, None, &[all]).unwrap() {
        let mut series = series.unwrap();
        while series.samples.next() == ValueType::Float {
            let (t, v) = series.samples.at();
            let v = if is_stale(v) { "stale".to_string() } else { v.to_string() };
            out.push(format!("{} {t} {v}", series.labels));
        }
    }
    out
}

fn values_of(db: &MemStorage, name: &str) -> Vec<String> {
    dump(db).into_iter().filter(|l| l.starts_with(&format!("{{__name__=\"{name}\""))).collect()
}

fn check_report(report: ScrapeReport, up: bool, scraped: u64, post: u64, added: u64) {
    assert_eq!(
        (report.up, report.samples_scraped, report.samples_post_metric_relabeling, report.series_added),
        (up, scraped, post, added)
    );
}

#[tokio::test]
async fn scrape_appends_with_target_labels_and_reports() {
    let server =
        Server::start(text("# HELP a_total Things.\n# TYPE a_total counter\na_total{x=\"1\"} 5\nb 2.5\n")).await;
    let db = Arc::new(MemStorage::new());
    let mut sl = scrape_loop(server.port, "", &db);
    let report = sl.scrape_once(1_000).await;
    check_report(report, true, 2, 2, 2);
    let instance = format!("127.0.0.1:{}", server.port);
    let lines = dump(&db);
    assert!(lines.contains(&format!(
        "{{__name__=\"a_total\", env=\"test\", instance=\"{instance}\", job=\"app\", x=\"1\"}} 1000 5"
    )));
    assert!(lines.contains(&format!("{{__name__=\"b\", env=\"test\", instance=\"{instance}\", job=\"app\"}} 1000 2.5")));
    assert_eq!(values_of(&db, "up").len(), 1);
    assert!(values_of(&db, "up")[0].ends_with(" 1000 1"));
    assert!(values_of(&db, "scrape_samples_scraped")[0].ends_with(" 1000 2"));
    assert!(values_of(&db, "scrape_series_added")[0].ends_with(" 1000 2"));
    assert_eq!(values_of(&db, "scrape_duration_seconds").len(), 1);
    let state = sl.handle().state();
    assert_eq!((state.health, state.last_error.as_str(), state.last_scrape_ms), (TargetHealth::Up, "", 1_000));
    assert_eq!(state.labels.get("env"), Some("test"));
    assert_eq!(state.discovered_labels.get("__address__"), Some(instance.as_str()));
    let meta = sl.handle().metadata();
    assert_eq!(meta["a_total"].help, "Things.");
    assert_eq!(meta["a_total"].metric_type, Some(sextant_model::exposition::MetricType::Counter));
    // Request headers: Accept negotiation, compression, timeout.
    let request = server.requests.lock().unwrap()[0].to_ascii_lowercase();
    assert!(request.starts_with("get /metrics http/1.1"), "{request}");
    assert!(request.contains("accept: application/openmetrics-text;"), "{request}");
    assert!(request.contains("accept-encoding: gzip"), "{request}");
    assert!(request.contains("x-prometheus-scrape-timeout-seconds: 0.5"), "{request}");

    // Second scrape: same series, none added.
    let report = sl.scrape_once(2_000).await;
    check_report(report, true, 2, 2, 0);
}

#[tokio::test]
async fn disappearing_series_and_failed_scrapes_go_stale() {
    let server = Server::start(text("a 1\nb 2\n")).await;
    let db = Arc::new(MemStorage::new());
    let mut sl = scrape_loop(server.port, "", &db);
    sl.scrape_once(1_000).await;
    server.set(text("a 1\n"));
    sl.scrape_once(2_000).await;
    let b = values_of(&db, "b");
    assert_eq!(b.iter().map(|l| l.rsplit_once("} ").unwrap().1).collect::<Vec<_>>(), ["1000 2", "2000 stale"]);
    server.set(Reply::Body { status: 500, content_type: "text/plain", body: b"oops".to_vec(), gzip: false });
    let report = sl.scrape_once(3_000).await;
    check_report(report, false, 0, 0, 0);
    let a = values_of(&db, "a");
    assert_eq!(
        a.iter().map(|l| l.rsplit_once("} ").unwrap().1).collect::<Vec<_>>(),
        ["1000 1", "2000 1", "3000 stale"]
    );
    assert!(values_of(&db, "up").last().unwrap().ends_with(" 3000 0"));
    let state = sl.handle().state();
    assert_eq!(state.health, TargetHealth::Down);
    assert_eq!(state.last_error, "server returned HTTP status 500 Internal Server Error");
    // Recovery; then the loop ends because the target went away.
    server.set(text("a 1\n"));
    check_report(sl.scrape_once(4_000).await, true, 1, 1, 1);
    sl.stop(StopMode::Stale, 5_000);
    assert!(values_of(&db, "a").last().unwrap().ends_with(" 5000 stale"));
    assert!(values_of(&db, "up").last().unwrap().ends_with(" 5000 stale"));
}

#[tokio::test]
async fn honor_labels_and_timestamps() {
    let body = "m{job=\"other\",exported_job=\"x\"} 1 500\n";
    let server = Server::start(text(body)).await;
    let cases = [
        ("", "{__name__=\"m\", env=\"test\", exported_exported_job=\"other\", exported_job=\"x\", instance=\"I\", job=\"app\"} 500 1"),
        ("  honor_labels: true\n", "{__name__=\"m\", env=\"test\", exported_job=\"x\", instance=\"I\", job=\"other\"} 500 1"),
        ("  honor_timestamps: false\n", "{__name__=\"m\", env=\"test\", exported_exported_job=\"other\", exported_job=\"x\", instance=\"I\", job=\"app\"} 1000 1"),
    ];
    for (extra, expected) in cases {
        let db = Arc::new(MemStorage::new());
        let mut sl = scrape_loop(server.port, extra, &db);
        assert!(sl.scrape_once(1_000).await.up);
        let expected = expected.replace('I', &format!("127.0.0.1:{}", server.port));
        assert_eq!(values_of(&db, "m"), [expected], "{extra}");
    }
}

#[tokio::test]
async fn metric_relabeling_and_limits() {
    let body = "keep{a=\"1\"} 1\nkeep{a=\"2\"} 2\ndrop_me 3\n";
    let server = Server::start(text(body)).await;
    let relabel = "  metric_relabel_configs: [{source_labels: [__name__], regex: drop_.*, action: drop}]\n";
    // A label limit stops the scrape at the first offending series; a sample limit counts on.
    let cases: [(String, bool, u64, u64, &str); 5] = [
        (relabel.to_string(), true, 3, 2, ""),
        (format!("{relabel}  sample_limit: 2\n"), true, 3, 2, ""),
        (
            format!("{relabel}  sample_limit: 1\n"),
            false,
            3,
            0,
            "sample limit exceeded: more than 1 samples after metric relabeling",
        ),
        (
            "  label_limit: 4\n".to_string(),
            false,
            1,
            0,
            "label_limit exceeded (metric: keep, number of labels: 5, limit: 4)",
        ),
        ("  label_value_length_limit: 3\n".to_string(), false, 1, 0, "label_value_length_limit exceeded"),
    ];
    for (extra, up, scraped, post, error) in cases {
        let db = Arc::new(MemStorage::new());
        let mut sl = scrape_loop(server.port, &extra, &db);
        let report = sl.scrape_once(1_000).await;
        assert_eq!(
            (report.up, report.samples_scraped, report.samples_post_metric_relabeling),
            (up, scraped, post),
            "{extra}"
        );
        let state = sl.handle().state();
        assert!(state.last_error.starts_with(error), "{extra}: {}", state.last_error);
        // A failed scrape leaves only the synthetic series behind.
        assert_eq!(values_of(&db, "keep").len(), if up { 2 } else { 0 }, "{extra}");
        assert!(values_of(&db, "drop_me").is_empty());
    }
}

#[tokio::test]
async fn broken_targets_are_down_with_a_reason() {
    let many: String = (0..100_000).map(|i| format!("m{{i=\"{i}\"}} 1\n")).collect();
    let cases: Vec<(Reply, &str, &str)> = vec![
        (Reply::Hang, "", "context deadline exceeded"),
        (Reply::Reset, "", "error sending request"),
        (Reply::Garbage, "", "error sending request"),
        (text("a{ 1\n"), "", "parse error at 1:"),
        (text(&"a 1\n".repeat(1000)), "  body_size_limit: 1KB\n", "body size limit exceeded"),
        (text(&many), "  sample_limit: 1000\n", "sample limit exceeded"),
        (
            Reply::Body {
                status: 200,
                content_type: "text/plain",
                body: "a 1\n".repeat(1000).into_bytes(),
                gzip: true,
            },
            "  body_size_limit: 1KB\n",
            "body size limit exceeded",
        ),
    ];
    for (reply, extra, error) in cases {
        let server = Server::start(reply).await;
        let db = Arc::new(MemStorage::new());
        let mut sl = scrape_loop(server.port, extra, &db);
        let report = sl.scrape_once(1_000).await;
        assert!(!report.up, "{error}");
        let state = sl.handle().state();
        assert_eq!(state.health, TargetHealth::Down);
        assert!(state.last_error.contains(error), "{error}: {}", state.last_error);
        assert!(values_of(&db, "up")[0].ends_with(" 1000 0"));
        assert_eq!(db.n_series(), 5, "{error}: only the synthetic series");
    }
}

#[tokio::test]
async fn gzip_and_openmetrics_bodies() {
    let om = "# TYPE c counter\nc_total 3 1.5\n# EOF\n";
    let server = Server::start(Reply::Body {
        status: 200,
        content_type: "application/openmetrics-text; version=1.0.0",
        body: om.as_bytes().to_vec(),
        gzip: true,
    })
    .await;
    let db = Arc::new(MemStorage::new());
    let mut sl = scrape_loop(server.port, "", &db);
    let report = sl.scrape_once(2_000).await;
    assert!(report.up, "{}", sl.handle().state().last_error);
    assert!(values_of(&db, "c_total")[0].ends_with(" 1500 3"));
}

#[tokio::test]
async fn run_scrapes_until_stopped_then_marks_stale() {
    let server = Server::start(text("a 1\n")).await;
    let db = Arc::new(MemStorage::new());
    let sl = scrape_loop(server.port, "", &db);
    assert!(sl.offset() < std::time::Duration::from_secs(1));
    let handle = sl.handle();
    let (stop, stop_rx) = tokio::sync::watch::channel(None);
    let task = tokio::spawn(sl.run(stop_rx));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while handle.state().health == TargetHealth::Unknown {
        assert!(tokio::time::Instant::now() < deadline, "no scrape within 10s");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.send(Some(StopMode::Stale)).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), task).await.unwrap().unwrap();
    assert!(values_of(&db, "a").last().unwrap().ends_with(" stale"));
}

#[tokio::test]
async fn authentication_params_and_path_reach_the_target() {
    let server = Server::start(text("a 1\n")).await;
    let cases = [
        ("  basic_auth: {username: u, password: p}\n", "authorization: basic dtpw"),
        ("  authorization: {credentials: tok}\n", "authorization: bearer tok"),
        ("  metrics_path: /m\n  params: {module: [x y]}\n", "get /m?module=x+y http/1.1"),
        ("  enable_compression: false\n", "accept-encoding: identity"),
    ];
    for (extra, expected) in cases {
        let db = Arc::new(MemStorage::new());
        let mut sl = scrape_loop(server.port, extra, &db);
        assert!(sl.scrape_once(1_000).await.up, "{extra}");
        let request = server.requests.lock().unwrap().last().unwrap().to_ascii_lowercase();
        assert!(request.contains(expected), "{extra}: {request}");
    }
}

#[tokio::test]
async fn series_with_explicit_timestamps_get_no_staleness_markers() {
    let server = Server::start(text("a 1 500\nb 2\n")).await;
    let cases = [("", 1), ("  track_timestamps_staleness: true\n", 2)];
    for (extra, a_samples) in cases {
        let db = Arc::new(MemStorage::new());
        let mut sl = scrape_loop(server.port, extra, &db);
        server.set(text("a 1 500\nb 2\n"));
        sl.scrape_once(1_000).await;
        server.set(text("b 2\n"));
        sl.scrape_once(2_000).await;
        assert_eq!(values_of(&db, "a").len(), a_samples, "{extra}");
        assert_eq!(values_of(&db, "b").len(), 2, "{extra}");
    }
}

/// The metadata API's view of one target, one `name type "help" "unit"` line per family.
fn metadata_lines(sl: &ScrapeLoop) -> Vec<String> {
    let mut lines: Vec<String> = sl
        .handle()
        .metadata()
        .into_iter()
        .map(|(name, m)| {
            let kind = m.metric_type.map_or("-", |t| t.as_str(sextant_model::exposition::Format::OpenMetrics));
            format!("{name} {kind} {:?} {:?}", m.help, m.unit)
        })
        .collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn metadata_follows_the_last_successful_scrape() {
    use sextant_model::exposition::Format;
    let db = Arc::new(MemStorage::new());
    let mut sl = scrape_loop(1, "", &db);
    // (body, format, expected metadata after ingesting it)
    let steps: [(&str, Format, &[&str]); 6] = [
        (
            "# HELP a Help of a.\n# TYPE a counter\na 1\n# HELP b B.\n# TYPE b gauge\nb 2\n",
            Format::Text,
            &["a counter \"Help of a.\" \"\"", "b gauge \"B.\" \"\""],
        ),
        // Unchanged: the same view.
        (
            "# HELP a Help of a.\n# TYPE a counter\na 3\n# HELP b B.\n# TYPE b gauge\nb 4\n",
            Format::Text,
            &["a counter \"Help of a.\" \"\"", "b gauge \"B.\" \"\""],
        ),
        // Help changed, b's TYPE line gone, family c new, family a gone.
        (
            "# HELP b Other help.\nb 5\n# TYPE c gauge\nc 1\n",
            Format::Text,
            &["b - \"Other help.\" \"\"", "c gauge \"\" \"\""],
        ),
        // A failed scrape (parse error) leaves the last successful scrape's view.
        (
            "# HELP d D.\n# TYPE d gauge\nd 1\nthis is { not exposition\n",
            Format::Text,
            &["b - \"Other help.\" \"\"", "c gauge \"\" \"\""],
        ),
        // After the failure, d (seen only by the failed scrape) does not appear.
        ("# HELP b Other help.\nb 6\n", Format::Text, &["b - \"Other help.\" \"\""]),
        // OpenMetrics units.
        (
            "# TYPE e_seconds gauge\n# UNIT e_seconds seconds\n# HELP e_seconds E.\ne_seconds 1\n# EOF\n",
            Format::OpenMetrics,
            &["e_seconds gauge \"E.\" \"seconds\""],
        ),
    ];
    for (i, (body, format, expected)) in steps.into_iter().enumerate() {
        sl.ingest_body(body.as_bytes(), format, 1_000 * (i as i64 + 1));
        assert_eq!(metadata_lines(&sl), expected, "step {i}: {body:?}");
    }
}

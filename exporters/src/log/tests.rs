//! The log exporter against a fake Docker Engine API on a unix socket served by the test, and
//! against real log files with rotation.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::files::{advance, FileState};
use super::{parse_rfc3339, LogConfig};
use sextant_model::exposition::Format;

const WEB: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DB: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const OLD: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

/// One log line held by the fake daemon: timestamp, stream (1 stdout, 2 stderr), text.
type Line = (String, u8, String);

#[derive(Default)]
struct FakeDocker {
    logs: Mutex<HashMap<String, Vec<Line>>>,
    requests: Mutex<Vec<String>>,
}

impl FakeDocker {
    fn log(&self, id: &str, timestamp: &str, stream: u8, text: &str) {
        self.logs.lock().unwrap().entry(id.into()).or_default().push((timestamp.into(), stream, text.into()));
    }

    /// The answer to one request path, as the Engine API gives it.
    fn answer(&self, path: &str) -> (u16, Vec<u8>, bool) {
        self.requests.lock().unwrap().push(path.to_string());
        let (route, query) = path.split_once('?').unwrap_or((path, ""));
        let json = |text: &str| (200, text.as_bytes().to_vec(), false);
        match route {
            "/info" => json(r#"{"Name":"docker-host-1","Containers":3}"#),
            "/containers/json" => {
                let all = query.contains("all=1");
                let mut items = vec![
                    format!(
                        r#"{{"Id":"{WEB}","Names":["/web"],"Image":"nginx:1.25","State":"running","Labels":{{"com.docker.compose.project":"shop","com.docker.compose.service":"web","com.docker.compose.project.working_dir":""}}}}"#
                    ),
                    format!(r#"{{"Id":"{DB}","Names":["/db"],"Image":"postgres:16","State":"running","Labels":{{}}}}"#),
                ];
                if all {
                    items.push(format!(r#"{{"Id":"{OLD}","Names":["/old"],"Image":"busybox","State":"exited"}}"#));
                }
                // Chunked, as the daemon sends larger answers.
                (200, format!("[{}]", items.join(",")).into_bytes(), true)
            }
            "/images/json" => json(
                r#"[{"RepoTags":["nginx:1.25"],"Size":190000000,"SharedSize":70000000},{"RepoTags":[],"Size":5000,"SharedSize":-1}]"#,
            ),
            "/system/df" => json(
                r#"{"Volumes":[{"Name":"pgdata","Driver":"local","UsageData":{"Size":123456,"RefCount":1}}],"Images":[],"Containers":[]}"#,
            ),
            "/_ping" => (200, b"OK".to_vec(), false),
            _ => {
                let parts: Vec<&str> = route.split('/').collect();
                match parts[..] {
                    ["", "containers", id, "stats"] if id == WEB || id == DB => {
                        let (cpu, rx) = if id == WEB { (2_500_000_000u64, 1000) } else { (500_000_000, 10) };
                        json(&format!(
                            r#"{{"read":"2024-01-01T00:00:00Z","pids_stats":{{"current":5}},
                            "cpu_stats":{{"cpu_usage":{{"total_usage":{cpu},"usage_in_usermode":2000000000,"usage_in_kernelmode":500000000}},"system_cpu_usage":1,"online_cpus":2}},
                            "memory_stats":{{"usage":1048576,"limit":2097152,"stats":{{}}}},
                            "blkio_stats":{{"io_service_bytes_recursive":[{{"major":8,"minor":0,"op":"read","value":4096}},{{"major":8,"minor":0,"op":"write","value":100}},{{"major":8,"minor":16,"op":"Write","value":28}}]}},
                            "networks":{{"eth0":{{"rx_bytes":{rx},"rx_packets":10,"tx_bytes":300,"tx_packets":3}},"eth1":{{"rx_bytes":1,"rx_packets":1,"tx_bytes":1,"tx_packets":1}}}}}}"#
                        ))
                    }
                    ["", "containers", id, "json"] if id == WEB || id == DB => {
                        json(r#"{"State":{"Status":"running","StartedAt":"2024-01-02T03:04:05.5Z"}}"#)
                    }
                    ["", "containers", id, "logs"] => {
                        let since = query
                            .split('&')
                            .find_map(|kv| kv.strip_prefix("since="))
                            .and_then(|s| s.parse::<f64>().ok())
                            .unwrap_or(0.0);
                        let mut body = Vec::new();
                        for (timestamp, stream, text) in self.logs.lock().unwrap().get(id).into_iter().flatten() {
                            let (secs, nanos) = parse_rfc3339(timestamp).unwrap();
                            // Docker's since is inclusive.
                            if (secs as f64 + nanos as f64 / 1e9) < since {
                                continue;
                            }
                            let payload = format!("{timestamp} {text}\n");
                            body.extend_from_slice(&[*stream, 0, 0, 0]);
                            body.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                            body.extend_from_slice(payload.as_bytes());
                        }
                        (200, body, false)
                    }
                    _ => (404, br#"{"message":"page not found"}"#.to_vec(), false),
                }
            }
        }
    }
}

/// Serves `fake` on a unix socket in `dir`; the task ends with the runtime.
async fn serve(fake: Arc<FakeDocker>, dir: &Path) -> String {
    let socket = dir.join("docker.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let fake = fake.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                let path = text.split(' ').nth(1).unwrap_or("/").to_string();
                let (status, body, chunked) = fake.answer(&path);
                let mut response = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n").into_bytes();
                if chunked {
                    response.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                    for piece in body.chunks(7) {
                        response.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                        response.extend_from_slice(piece);
                        response.extend_from_slice(b"\r\n");
                    }
                    response.extend_from_slice(b"0\r\n\r\n");
                } else {
                    response.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                    response.extend_from_slice(&body);
                }
                let _ = stream.write_all(&response).await;
            });
        }
    });
    format!("unix://{}", socket.display())
}

fn check(text: &str, expected: &[&str]) {
    for line in expected {
        let line = sorted_labels(line);
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
}

/// A sample line with its labels sorted by name (the encoder writes them sorted, as Go clients do).
fn sorted_labels(line: &str) -> String {
    let (Some(open), Some(close)) = (line.find('{'), line.rfind('}')) else { return line.to_string() };
    let pair = regex::Regex::new(r#"([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)""#).unwrap();
    let mut pairs: Vec<&str> = pair.find_iter(&line[open + 1..close]).map(|m| m.as_str()).collect();
    pairs.sort();
    format!("{}{{{}}}{}", &line[..open], pairs.join(","), &line[close + 1..])
}

fn web(extra: &str) -> String {
    format!(
        "containerId=\"{WEB}\",containerName=\"web\",composeProject=\"shop\",composeService=\"web\",hostname=\"docker-host-1\"{extra}"
    )
}

fn db(extra: &str) -> String {
    format!("containerId=\"{DB}\",containerName=\"db\",hostname=\"docker-host-1\"{extra}")
}

#[tokio::test]
async fn logporter_metrics_from_fake_docker() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(FakeDocker::default());
    fake.log(WEB, "2024-01-01T00:00:01.000000000Z", 1, "GET / 200");
    fake.log(WEB, "2024-01-01T00:00:02.000000000Z", 2, r#"{"level":"error","msg":"upstream timed out"}"#);
    fake.log(WEB, "2024-01-01T00:00:03.000000000Z", 1, "GET /favicon.ico 404");
    fake.log(DB, "2024-01-01T00:00:01.000000000Z", 2, "FATAL: password authentication failed");
    let host = serve(fake.clone(), dir.path()).await;
    let config = LogConfig::from_env_and_args(
        [("DOCKER_HOST", host.as_str())],
        ["--log.pattern=error=(?i)\\berror\\b|FATAL", "--log.pattern=timeout=timed out"],
    )
    .unwrap();
    let registry = config.registry().unwrap();
    let text = registry.encode(Format::Text).await;
    check(
        &text,
        &[
            &format!("docker_cpu_usage_total{{{}}} 2.5", web("")),
            &format!("docker_cpu_usage_user{{{}}} 2", web("")),
            &format!("docker_cpu_usage_kernel{{{}}} 0.5", web("")),
            &format!("docker_memory_usage{{{}}} 1.048576e+06", web("")),
            &format!("docker_memory_total{{{}}} 2.097152e+06", web("")),
            &format!("docker_network_received_bytes{{{}}} 1001", web("")),
            &format!("docker_network_received_packages{{{}}} 11", web("")),
            &format!("docker_network_transmit_bytes{{{}}} 301", web("")),
            &format!("docker_io_read_bytes{{{}}} 4096", web("")),
            &format!("docker_io_write_bytes{{{}}} 128", web("")),
            &format!("docker_process_pids_count{{{}}} 5", web("")),
            &format!("docker_started_time{{{}}} 1.7041646455e+09", web("")),
            &format!("docker_cpu_usage_total{{{}}} 0.5", db("")),
            &format!("docker_container_status{{{}}} 1", web("")),
            &format!("docker_container_status{{containerId=\"{OLD}\",containerName=\"old\",hostname=\"docker-host-1\"}} 0"),
            "docker_containers_up_count{hostname=\"docker-host-1\"} 2",
            "docker_containers_down_count{hostname=\"docker-host-1\"} 1",
            "docker_image_size{imageTag=\"nginx:1.25\",hostname=\"docker-host-1\"} 1.2e+08",
            "docker_image_size{imageTag=\"none\",hostname=\"docker-host-1\"} 5000",
            "docker_volume_size{volumeName=\"pgdata\",volumeDriver=\"local\",volumeUsage=\"1\",hostname=\"docker-host-1\"} 123456",
            &format!("docker_logs_stdout_count{{{}}} 2", web("")),
            &format!("docker_logs_stderr_count{{{}}} 1", web("")),
            &format!("docker_logs_all_count{{{}}} 3", web("")),
            &format!("docker_logs_custom_count{{{}}} 1", web("")),
            &format!("sextant_log_pattern_lines_total{{{}}} 1", web(",pattern=\"error\"")),
            &format!("sextant_log_pattern_lines_total{{{}}} 1", web(",pattern=\"timeout\"")),
            &format!("docker_logs_stderr_count{{{}}} 1", db("")),
            &format!("docker_logs_custom_count{{{}}} 1", db("")),
            "log_scrape_collector_success{collector=\"docker\"} 1",
            "log_scrape_collector_success{collector=\"docker_logs\"} 1",
        ],
    );
    // Incremental counting: new lines (one at the same second as the last counted one) are
    // added once; lines already counted are not counted again.
    fake.log(WEB, "2024-01-01T00:00:03.500000000Z", 2, "ERROR: disk full");
    fake.log(WEB, "2024-01-01T00:00:04.000000000Z", 1, "GET / 200");
    let text = registry.encode(Format::Text).await;
    check(
        &text,
        &[
            &format!("docker_logs_stdout_count{{{}}} 3", web("")),
            &format!("docker_logs_stderr_count{{{}}} 2", web("")),
            &format!("docker_logs_custom_count{{{}}} 2", web("")),
            &format!("sextant_log_pattern_lines_total{{{}}} 2", web(",pattern=\"error\"")),
            &format!("docker_logs_stderr_count{{{}}} 1", db("")),
        ],
    );
    let requests = fake.requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .any(|r| r.contains(&format!("/containers/{WEB}/logs")) && r.ends_with("since=1704067203.000000000")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn dead_docker_fails_the_collector_not_the_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "ok\nerror: boom\n").unwrap();
    let socket = format!("unix://{}", dir.path().join("missing.sock").display());
    let config =
        LogConfig::from_env_and_args([("DOCKER_HOST", socket.as_str())], [format!("--log.file={}", log.display())])
            .unwrap();
    let text = config.registry().unwrap().encode(Format::Text).await;
    let path = log.display();
    check(
        &text,
        &[
            "log_scrape_collector_success{collector=\"docker\"} 0",
            "log_scrape_collector_success{collector=\"docker_logs\"} 0",
            "log_scrape_collector_success{collector=\"files\"} 1",
            &format!("sextant_log_file_lines_total{{path=\"{path}\",stream=\"file\"}} 2"),
            &format!("sextant_log_file_pattern_lines_total{{path=\"{path}\",pattern=\"error\"}} 1"),
        ],
    );
}

#[test]
fn rfc3339() {
    fn check(text: &str, expected: Option<(i64, u32)>) {
        assert_eq!(parse_rfc3339(text), expected, "{text}");
    }
    check("1970-01-01T00:00:00Z", Some((0, 0)));
    check("2024-01-02T03:04:05.5Z", Some((1704164645, 500_000_000)));
    check("2024-01-01T00:00:03.000000001Z", Some((1704067203, 1)));
    check("2024-01-01T01:00:00+01:00", Some((1704067200, 0)));
    check("2000-02-29T00:00:00Z", Some((951782400, 0)));
    check("2024-13-01T00:00:00Z", None);
    check("2024-01-01 00:00:00Z", None);
    check("2024-01-01T00:00:00.Z", None);
    check("garbage", None);
}

#[test]
fn config_from_env_and_flags() {
    let config = LogConfig::from_env_and_args(
        [
            ("DOCKER_METRICS_PORT", "9999"),
            ("DOCKER_LOG_METRICS", "false"),
            ("DOCKER_LOG_CUSTOM_QUERY", "panic"),
            ("DOCKER_METRICS_VOLUME", "False"),
            ("LOG_FILES", "/a.log,/b.log"),
        ],
        ["--docker.host=", "--log.state-file", "/tmp/state.json"],
    )
    .unwrap();
    assert_eq!(config.listen_address, ":9999");
    assert!(!config.container_logs);
    assert!(!config.volumes);
    assert_eq!(config.docker_host, None);
    assert_eq!(config.patterns.len(), 1);
    assert_eq!(config.patterns[0].0, "custom");
    assert_eq!(config.files.len(), 2);
    assert!(LogConfig::from_env_and_args([("DOCKER_LOG_METRICS", "maybe")], Vec::<String>::new()).is_err());
    assert!(LogConfig::from_env_and_args(Vec::<(String, String)>::new(), ["--log.pattern=bad"]).is_err());
    assert!(LogConfig::from_env_and_args(Vec::<(String, String)>::new(), ["--log.pattern=x=("]).is_err());
    assert!(LogConfig::from_env_and_args(Vec::<(String, String)>::new(), ["--nope"]).is_err());
    let off = LogConfig::from_env_and_args([("DOCKER_LOG_CUSTOM_METRICS", "false")], Vec::<String>::new()).unwrap();
    assert!(off.patterns.is_empty());
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

#[test]
fn files_with_rotation_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let patterns = vec![("error".to_string(), regex::Regex::new(super::DEFAULT_ERROR_PATTERN).unwrap())];
    let log = dir.path().join("app.log");
    let mut state = FileState::default();
    let count = |state: &FileState| {
        (state.lines.get("file").copied().unwrap_or(0), state.matched.get("error").copied().unwrap_or(0))
    };

    append(&log, "start\nERROR: one\npartial");
    advance(&log, false, &mut state, &patterns).unwrap();
    assert_eq!(count(&state), (2, 1), "the partial line waits for its newline");
    append(&log, " line\n");
    advance(&log, false, &mut state, &patterns).unwrap();
    assert_eq!(count(&state), (3, 1));
    // Rotation: lines written before the rename are read from app.log.1.
    append(&log, "error before rotate\n");
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, "new file\n");
    advance(&log, false, &mut state, &patterns).unwrap();
    assert_eq!(count(&state), (5, 2));
    // Truncation (copytruncate) starts over.
    std::fs::write(&log, "x\n").unwrap();
    advance(&log, false, &mut state, &patterns).unwrap();
    assert_eq!(count(&state), (6, 2));
    advance(&log, false, &mut state, &patterns).unwrap();
    assert_eq!(count(&state), (6, 2), "nothing new, nothing counted");
}

#[tokio::test]
async fn docker_json_files_and_state_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let containers = dir.path().join("containers");
    let log = containers.join(WEB).join(format!("{WEB}-json.log"));
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    append(
        &log,
        concat!(
            r#"{"log":"hello\n","stream":"stdout","time":"2024-01-01T00:00:00.1Z"}"#,
            "\n",
            r#"{"log":"part of a long ","stream":"stderr","time":"2024-01-01T00:00:00.2Z"}"#,
            "\n",
            r#"{"log":"error line\n","stream":"stderr","time":"2024-01-01T00:00:00.3Z"}"#,
            "\n",
        ),
    );
    let state_file = dir.path().join("state.json");
    let args = [
        format!("--log.docker-dir={}", containers.display()),
        format!("--log.state-file={}", state_file.display()),
        "--docker.host=".to_string(),
    ];
    let path = log.display().to_string();
    let expect = |stdout: u32, stderr: u32, errors: u32| {
        vec![
            format!("sextant_log_file_lines_total{{path=\"{path}\",stream=\"stdout\"}} {stdout}"),
            format!("sextant_log_file_lines_total{{path=\"{path}\",stream=\"stderr\"}} {stderr}"),
            format!("sextant_log_file_pattern_lines_total{{path=\"{path}\",pattern=\"error\"}} {errors}"),
        ]
    };
    let config = LogConfig::from_env_and_args(Vec::<(String, String)>::new(), args.clone()).unwrap();
    let text = config.registry().unwrap().encode(Format::Text).await;
    let lines = expect(1, 1, 1);
    check(&text, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    // A new process with the same state file continues the counters and the position.
    append(&log, concat!(r#"{"log":"bye\n","stream":"stdout","time":"2024-01-01T00:00:01Z"}"#, "\n"));
    let config = LogConfig::from_env_and_args(Vec::<(String, String)>::new(), args).unwrap();
    let text = config.registry().unwrap().encode(Format::Text).await;
    let lines = expect(2, 1, 1);
    check(&text, &lines.iter().map(String::as_str).collect::<Vec<_>>());
}

/// What Loki's push handler (`POST /loki/api/v1/push`, JSON) checks before it answers 204:
/// the content type, the `{"streams":[{"stream":{...},"values":[["<ns>","<line>"],...]}]}`
/// shape, label names, timestamps as decimal nanosecond strings, and (as Loki before 2.4 and
/// with `unordered_writes: false`) entries of a stream in time order. `Err` is the 400 body.
fn loki_accepts(head: &str, body: &str) -> Result<(), String> {
    let content_type = head.lines().find_map(|l| l.strip_prefix("Content-Type: ")).unwrap_or("");
    if content_type.trim() != "application/json" {
        return Err(format!("unsupported content type {content_type:?}"));
    }
    let value: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("loghttp: {e}"))?;
    let streams = value["streams"].as_array().ok_or("no streams")?;
    let label_name = regex::Regex::new("^[a-zA-Z_][a-zA-Z0-9_]*$").unwrap();
    for stream in streams {
        let labels = stream["stream"].as_object().ok_or("stream labels must be an object")?;
        if labels.is_empty() {
            return Err("error parsing labels: empty label set".into());
        }
        for (name, value) in labels {
            if !label_name.is_match(name) || !value.is_string() {
                return Err(format!("invalid label {name}={value}"));
            }
        }
        let mut last = 0u128;
        for entry in stream["values"].as_array().ok_or("values must be an array")? {
            let pair = entry.as_array().filter(|p| p.len() == 2).ok_or("an entry is [timestamp, line]")?;
            let ns: u128 = pair[0].as_str().and_then(|t| t.parse().ok()).ok_or("timestamp must be a string of ns")?;
            pair[1].as_str().ok_or("line must be a string")?;
            if ns < last {
                return Err("entry out of order".into());
            }
            last = ns;
        }
    }
    Ok(())
}

/// A stand-in for Loki's push endpoint on 127.0.0.1 (Debian's `loki` package is an unrelated
/// genetics program, and Grafana Loki is not packaged): checks each request as Loki does
/// ([`loki_accepts`]), records it and answers 204, or 400 with the reason.
async fn fake_loki() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
                let text = String::from_utf8_lossy(&request);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&request).into_owned();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let answer = match loki_accepts(head, body) {
                Ok(()) => "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n".to_string(),
                Err(reason) => format!("HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\n\r\n{reason}", reason.len()),
            };
            sink.lock().unwrap().push(text);
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (format!("http://{address}"), received)
}

#[tokio::test]
async fn ships_new_lines_to_loki() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(FakeDocker::default());
    fake.log(DB, "2024-01-01T00:00:01.000000000Z", 2, "FATAL: boom");
    let host = serve(fake.clone(), dir.path()).await;
    let (loki_url, received) = fake_loki().await;
    let config = LogConfig::from_env_and_args(
        [("DOCKER_HOST", host.as_str()), ("LOKI_URL", loki_url.as_str()), ("LOKI_TENANT_ID", "team-a")],
        ["--loki.username=u", "--loki.password=p", "--no-docker.volumes"],
    )
    .unwrap();
    let registry = config.registry().unwrap();
    let text = registry.encode(Format::Text).await;
    check(&text, &["sextant_log_loki_pushed_lines_total 1", "sextant_log_loki_push_failures_total 0"]);
    fake.log(DB, "2024-01-01T00:00:02.000000000Z", 1, "ready");
    let text = registry.encode(Format::Text).await;
    check(&text, &["sextant_log_loki_pushed_lines_total 2"]);
    let requests = received.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let (head, body) = requests[0].split_once("\r\n\r\n").unwrap();
    let head = format!("{head}\r\n");
    assert!(head.starts_with("POST /loki/api/v1/push HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("X-Scope-OrgID: team-a\r\n") && head.contains("Authorization: Basic dTpw\r\n"), "{head}");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    let expected = serde_json::json!({"streams": [{
        "stream": {"containerId": DB, "containerName": "db", "hostname": "docker-host-1", "service_name": "db", "stream": "stderr"},
        "values": [["1704067201000000000", "FATAL: boom"]],
    }]});
    assert_eq!(body, expected);
    let second: serde_json::Value = serde_json::from_str(requests[1].split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(second["streams"][0]["values"], serde_json::json!([["1704067202000000000", "ready"]]));
    assert_eq!(second["streams"][0]["stream"]["stream"], "stdout");
}

#[test]
fn the_fake_loki_rejects_what_loki_rejects() {
    let head = "POST /loki/api/v1/push HTTP/1.1\r\nContent-Type: application/json";
    let ok = r#"{"streams":[{"stream":{"job":"x"},"values":[["1","a"],["2","b"]]}]}"#;
    assert_eq!(loki_accepts(head, ok), Ok(()));
    for bad in [
        r#"{"streams":[{"stream":{},"values":[["1","a"]]}]}"#,
        r#"{"streams":[{"stream":{"1x":"y"},"values":[["1","a"]]}]}"#,
        r#"{"streams":[{"stream":{"job":"x"},"values":[[1,"a"]]}]}"#,
        r#"{"streams":[{"stream":{"job":"x"},"values":[["2","a"],["1","b"]]}]}"#,
        r#"{"streams":[{"stream":{"job":"x"},"values":[["1"]]}]}"#,
        r#"{"stream":[]}"#,
        "not json",
    ] {
        assert!(loki_accepts(head, bad).is_err(), "{bad}");
    }
    assert!(loki_accepts("POST / HTTP/1.1\r\nContent-Type: text/plain", ok).is_err());
}

proptest::proptest! {
    #[test]
    fn log_bodies_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..400), text in ".{0,40}") {
        let patterns = vec![("error".to_string(), regex::Regex::new(super::DEFAULT_ERROR_PATTERN).unwrap())];
        let mut totals = super::logs::LogTotals::default();
        let mut lines = Vec::new();
        totals.add(&body, &patterns, Some(&mut lines));
        proptest::prop_assert!(totals.stdout + totals.stderr <= body.len() as u64);
        proptest::prop_assert_eq!(lines.len() as u64, totals.stdout + totals.stderr);
        let _ = parse_rfc3339(&text);
        let _ = totals.since();
    }
}

#[tokio::test]
async fn openmetrics_keeps_logporter_names() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(FakeDocker::default());
    fake.log(DB, "2024-01-01T00:00:01.000000000Z", 2, "x");
    let host = serve(fake, dir.path()).await;
    let config = LogConfig::from_env_and_args([("DOCKER_HOST", host.as_str())], Vec::<String>::new()).unwrap();
    let text = config.registry().unwrap().encode(Format::OpenMetrics).await;
    check(
        &text,
        &[
            // OpenMetrics writes integral values with `.0`, as client_golang does.
            &format!("docker_logs_stderr_count{{{}}} 1.0", db("")),
            &format!("docker_cpu_usage_user{{{}}} 2.0", db("")),
            &format!("docker_cpu_usage_total{{{}}} 0.5", db("")),
            &format!("sextant_log_pattern_lines_total{{{}}} 0.0", db(",pattern=\"error\"")),
        ],
    );
}

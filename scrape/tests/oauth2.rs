//! `oauth2` client credentials in scrape and remote-write configurations, against a token
//! server and targets run by the test on 127.0.0.1.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use sextant_model::{Appendable, Labels, MemStorage, SystemClock};
use sextant_scrape::{targets_from_group, BufferOptions, Config, RemoteWriteStorage, ScrapeLoop};

/// What the token server saw and how it answers.
#[derive(Default)]
struct TokenLog {
    /// Form fields of every token request, sorted `k=v` joined by `&`, after the
    /// `authorization` header.
    requests: Vec<String>,
    /// `expires_in` of the next tokens.
    expires_in: u64,
}

struct Servers {
    token_port: u16,
    target_port: u16,
    log: Arc<Mutex<TokenLog>>,
    /// `Authorization` headers the target and the receiver saw.
    seen: Arc<Mutex<Vec<String>>>,
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

async fn start() -> Servers {
    let log = Arc::new(Mutex::new(TokenLog { expires_in: 3600, ..TokenLog::default() }));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let l = log.clone();
    let token_router = axum::Router::new().route(
        "/token",
        post(move |headers: HeaderMap, body: String| {
            let l = l.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let mut fields: Vec<&str> = body.split('&').collect();
                fields.sort_unstable();
                let mut log = l.lock().unwrap();
                log.requests.push(format!("{auth} {}", fields.join("&")));
                if auth != basic("client%2B1", "s3cret") && auth != basic("client%2B1", "rotated") {
                    return (
                        StatusCode::UNAUTHORIZED,
                        r#"{"error":"invalid_client","error_description":"bad secret"}"#.to_string(),
                    );
                }
                let n = log.requests.len();
                let body =
                    format!(r#"{{"access_token":"tok-{n}","token_type":"bearer","expires_in":{}}}"#, log.expires_in);
                (StatusCode::OK, body)
            }
        }),
    );
    let s = seen.clone();
    let target_router = axum::Router::new()
        .route(
            "/metrics",
            get(move |headers: HeaderMap| {
                let s = s.clone();
                async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    let ok = auth.starts_with("Bearer tok-");
                    s.lock().unwrap().push(auth);
                    if ok {
                        (StatusCode::OK, "a 1\n")
                    } else {
                        (StatusCode::UNAUTHORIZED, "")
                    }
                }
            }),
        )
        .route(
            "/api/v1/write",
            post({
                let s = seen.clone();
                move |headers: HeaderMap, _body: Bytes| {
                    let s = s.clone();
                    async move {
                        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                        s.lock().unwrap().push(auth.to_string());
                        if auth.starts_with("Bearer tok-") {
                            StatusCode::NO_CONTENT
                        } else {
                            StatusCode::UNAUTHORIZED
                        }
                    }
                }
            }),
        );
    let token = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (token_port, target_port) = (token.local_addr().unwrap().port(), target.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(token, token_router).await.unwrap() });
    tokio::spawn(async move { axum::serve(target, target_router).await.unwrap() });
    Servers { token_port, target_port, log, seen }
}

fn oauth2_block(token_port: u16, secret: &str, indent: &str) -> String {
    format!(
        "{indent}oauth2:\n{indent}  client_id: client+1\n{indent}  {secret}\n{indent}  token_url: http://127.0.0.1:{token_port}/token\n{indent}  scopes: [read, write]\n{indent}  endpoint_params: {{audience: metrics}}\n"
    )
}

fn scrape_loop(servers: &Servers, secret: &str) -> ScrapeLoop {
    let yaml = format!(
        "scrape_configs:\n- job_name: app\n  scrape_timeout: 5s\n  static_configs: [{{targets: ['127.0.0.1:{}']}}]\n{}",
        servers.target_port,
        oauth2_block(servers.token_port, secret, "  ")
    );
    let config = Config::load_str(&yaml).unwrap();
    let job = Arc::new(config.scrape_configs[0].clone());
    let (targets, errors) = targets_from_group(&job.static_configs[0], &job);
    assert!(errors.is_empty(), "{errors:?}");
    ScrapeLoop::new(targets[0].clone(), job, Arc::new(MemStorage::new()), Arc::new(SystemClock)).unwrap()
}

const EXPECTED_FORM: &str = "audience=metrics&grant_type=client_credentials&scope=read+write";

#[tokio::test]
async fn scrapes_with_a_cached_token() {
    let servers = start().await;
    let mut sl = scrape_loop(&servers, "client_secret: s3cret");
    for t in [1_000, 2_000, 3_000] {
        assert!(sl.scrape_once(t).await.up, "{}", sl.handle().state().last_error);
    }
    let requests = servers.log.lock().unwrap().requests.clone();
    assert_eq!(requests, vec![format!("{} {EXPECTED_FORM}", basic("client%2B1", "s3cret"))]);
    assert_eq!(*servers.seen.lock().unwrap(), vec!["Bearer tok-1"; 3]);
}

#[tokio::test]
async fn expiring_tokens_and_rotated_secret_files_fetch_new_tokens() {
    let servers = start().await;
    // Tokens valid for less than the renewal margin are fetched again on every request.
    servers.log.lock().unwrap().expires_in = 5;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, "s3cret\n").unwrap();
    let mut sl = scrape_loop(&servers, &format!("client_secret_file: {}", file.display()));
    assert!(sl.scrape_once(1_000).await.up);
    assert!(sl.scrape_once(2_000).await.up);
    servers.log.lock().unwrap().expires_in = 3600;
    assert!(sl.scrape_once(3_000).await.up);
    assert!(sl.scrape_once(4_000).await.up);
    std::fs::write(&file, "rotated").unwrap();
    assert!(sl.scrape_once(5_000).await.up);
    let seen = servers.seen.lock().unwrap().clone();
    assert_eq!(seen, ["Bearer tok-1", "Bearer tok-2", "Bearer tok-3", "Bearer tok-3", "Bearer tok-4"]);
    let last = servers.log.lock().unwrap().requests.last().unwrap().clone();
    assert_eq!(last, format!("{} {EXPECTED_FORM}", basic("client%2B1", "rotated")));
}

#[tokio::test]
async fn a_refused_token_request_marks_the_target_down() {
    let servers = start().await;
    let mut sl = scrape_loop(&servers, "client_secret: wrong");
    assert!(!sl.scrape_once(1_000).await.up);
    let error = sl.handle().state().last_error;
    let expected = format!(
        "oauth2: cannot fetch token from http://127.0.0.1:{}/token: server returned HTTP status 401 Unauthorized: invalid_client bad secret",
        servers.token_port
    );
    assert_eq!(error, expected);
    assert!(servers.seen.lock().unwrap().is_empty(), "the target was not asked without a token");
}

#[tokio::test]
async fn remote_write_sends_with_a_token() {
    let servers = start().await;
    let yaml = format!(
        "remote_write:\n- url: http://127.0.0.1:{}/api/v1/write\n  queue_config: {{batch_send_deadline: 10ms}}\n{}",
        servers.target_port,
        oauth2_block(servers.token_port, "client_secret: s3cret", "  ")
    );
    let config = Config::load_str(&yaml).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage =
        RemoteWriteStorage::open(dir.path(), &config, BufferOptions::default(), Arc::new(SystemClock)).unwrap();
    for t in 0..3 {
        let mut app = storage.appender();
        app.append(&Labels::from_pairs([("__name__", "m")]), 1_000 + t, 1.0).unwrap();
        app.commit().unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while storage.samples_sent().values().sum::<u64>() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {:?}", servers.seen.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    storage.shutdown().await.unwrap();
    let seen = servers.seen.lock().unwrap().clone();
    assert!(!seen.is_empty() && seen.iter().all(|a| a == "Bearer tok-1"), "{seen:?}");
    let by_auth: HashMap<String, usize> =
        servers.log.lock().unwrap().requests.iter().fold(HashMap::new(), |mut m, r| {
            *m.entry(r.clone()).or_default() += 1;
            m
        });
    assert_eq!(by_auth.len(), 1);
}

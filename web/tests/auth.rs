//! Basic authentication in front of a router, and plain serving with graceful shutdown.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn app() -> Router {
    Router::new().route("/", get(|| async { "hello" }))
}

async fn status(router: &Router, auth: Option<&str>) -> StatusCode {
    use tower::ServiceExt;
    let mut req = Request::builder().uri("/");
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap().status()
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

#[tokio::test]
async fn basic_auth_checks_bcrypt_hashes() {
    let mut users = BTreeMap::new();
    users.insert("alice".to_string(), bcrypt::hash("s3cret", 4).unwrap());
    let router = sextant_web::require_basic_auth(app(), &users);
    let check = |auth: Option<String>, expected: StatusCode| {
        let router = router.clone();
        async move { assert_eq!(status(&router, auth.as_deref()).await, expected, "{auth:?}") }
    };
    check(None, StatusCode::UNAUTHORIZED).await;
    check(Some(basic("alice", "s3cret")), StatusCode::OK).await;
    check(Some(basic("alice", "wrong")), StatusCode::UNAUTHORIZED).await;
    check(Some(basic("bob", "s3cret")), StatusCode::UNAUTHORIZED).await;
    check(Some("Bearer x".to_string()), StatusCode::UNAUTHORIZED).await;
    check(Some("Basic !!!".to_string()), StatusCode::UNAUTHORIZED).await;
    // No users: nothing required.
    assert_eq!(status(&sextant_web::require_basic_auth(app(), &BTreeMap::new()), None).await, StatusCode::OK);
}

#[tokio::test]
async fn serves_plain_http_until_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = sextant_web::WebConfig::default();
    let server = tokio::spawn(async move {
        sextant_web::serve(listener, app(), &config, async {
            let _ = stopped.await;
        })
        .await
    });
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("hello"), "{response}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

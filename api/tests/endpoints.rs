//! Endpoint behaviour through the router, without `../shared`: each case is a request and the
//! expected status and body.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request};
use sextant_api::{Api, ApiOptions};
use sextant_model::{stale_nan, Appendable, Labels, ManualClock, MemStorage};
use tower::ServiceExt;

const NOW: i64 = 1_000_000;

fn api(options: ApiOptions) -> Api {
    let db = MemStorage::new();
    {
        let mut app = db.appender();
        let up = |job: &str| Labels::from_pairs([("__name__", "up"), ("job", job)]);
        for t in [NOW - 20_000, NOW - 10_000] {
            app.append(&up("a"), t, 1.0).unwrap();
            app.append(&up("b"), t, 0.0).unwrap();
            app.append(&Labels::from_pairs([("__name__", "gone"), ("job", "a")]), t, 5.0).unwrap();
            app.append(&Labels::from_pairs([("__name__", "dotted"), ("http.status", "200")]), t, 1.0).unwrap();
        }
        app.append(&Labels::from_pairs([("__name__", "gone"), ("job", "a")]), NOW - 5_000, stale_nan()).unwrap();
        app.commit().unwrap();
    }
    Api::with_clock(Arc::new(db), options, Arc::new(ManualClock::new(NOW)))
}

async fn send(api: &Api, method: Method, uri: &str, body: &str) -> (u16, String, String) {
    let resp = api
        .router()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, ct, String::from_utf8_lossy(&body).to_string())
}

async fn check(api: &Api, method: Method, uri: &str, form: &str, status: u16, body: &str) {
    let (got_status, _, got_body) = send(api, method, uri, form).await;
    assert_eq!((got_status, got_body.as_str()), (status, body), "{uri}");
}

#[tokio::test]
async fn v1_endpoints() {
    let api = api(ApiOptions::default());
    let get = Method::GET;
    check(
        &api,
        get.clone(),
        "/api/v1/query?query=sum(up)&time=1000",
        "",
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1000,"1"]}]}}"#,
    )
    .await;
    check(&api, Method::POST, "/api/v1/query", "query=up%7Bjob%3D%22b%22%7D&time=1000", 200,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"b"},"value":[1000,"0"]}]}}"#).await;
    check(&api, get.clone(), "/api/v1/query?query=up&time=1000&limit=1", "", 200,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1000,"1"]}]},"warnings":["results truncated due to limit"]}"#).await;
    check(
        &api,
        get.clone(),
        "/api/v1/query?query=up&time=1000&lookback_delta=1s",
        "",
        200,
        r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
    )
    .await;
    check(
        &api,
        get.clone(),
        "/api/v1/labels",
        "",
        200,
        r#"{"status":"success","data":["__name__","http.status","job"]}"#,
    )
    .await;
    check(
        &api,
        get.clone(),
        "/api/v1/label/U__http_2e_status/values",
        "",
        200,
        r#"{"status":"success","data":["200"]}"#,
    )
    .await;
    check(
        &api,
        get.clone(),
        "/api/v1/label/job/values?match[]=up&limit=1",
        "",
        200,
        r#"{"status":"success","data":["a"],"warnings":["results truncated due to limit"]}"#,
    )
    .await;
    check(
        &api,
        get.clone(),
        "/api/v1/series?match[]=up%7Bjob%3D%22a%22%7D",
        "",
        200,
        r#"{"status":"success","data":[{"__name__":"up","job":"a"}]}"#,
    )
    .await;
    check(&api, get.clone(), "/api/v1/series?match[]=sum(up)", "", 400,
        r#"{"status":"error","errorType":"bad_data","error":"1:1: parse error: only series selectors are accepted, got \"sum(up)\""}"#).await;
    check(
        &api,
        get.clone(),
        "/api/v1/format_query?query=sum(up)by(job)",
        "",
        200,
        r#"{"status":"success","data":"sum by (job) (up)"}"#,
    )
    .await;
    check(&api, get.clone(), "/api/v1/parse_query?query=-up", "", 200,
        r#"{"status":"success","data":{"type":"unaryExpr","op":"-","expr":{"type":"vectorSelector","name":"up","offset":0,"matchers":[{"type":"=","name":"__name__","value":"up"}],"timestamp":null,"startOrEnd":null}}}"#).await;
    check(&api, get.clone(), "/api/v1/rules", "", 200, r#"{"status":"success","data":{"groups":[]}}"#).await;
    check(&api, get.clone(), "/api/v1/alerts", "", 200, r#"{"status":"success","data":{"alerts":[]}}"#).await;
    check(
        &api,
        get.clone(),
        "/api/v1/targets",
        "",
        200,
        r#"{"status":"success","data":{"activeTargets":[],"droppedTargets":[]}}"#,
    )
    .await;
    check(
        &api,
        Method::POST,
        "/api/v1/admin/tsdb/clean_tombstones",
        "",
        500,
        r#"{"status":"error","errorType":"unavailable","error":"admin APIs disabled"}"#,
    )
    .await;
    check(&api, Method::DELETE, "/api/v1/query", "", 405, "").await;
    check(&api, get.clone(), "/nope", "", 404, "404 page not found\n").await;
}

#[tokio::test]
async fn federation_drops_stale_and_adds_external_labels() {
    let options = ApiOptions { external_labels: Labels::from_pairs([("cluster", "x")]), ..ApiOptions::default() };
    let api = api(options);
    let (status, ct, body) = send(&api, Method::GET, "/federate?match[]=%7Bjob%3D%22a%22%7D", "").await;
    assert_eq!((status, ct.as_str()), (200, "text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(body, "# TYPE up untyped\nup{job=\"a\",cluster=\"x\",instance=\"\"} 1 990000\n");
    check(
        &api,
        Method::GET,
        "/federate?match[]=%7B",
        "",
        400,
        &send(&api, Method::GET, "/federate?match[]=%7B", "").await.2,
    )
    .await;
}

#[tokio::test]
async fn pushgateway_groups() {
    let api = api(ApiOptions::default());
    check(&api, Method::PUT, "/metrics/job/batch/instance/i1", "# TYPE jobs_done counter\njobs_done 3\n", 200, "")
        .await;
    check(&api, Method::POST, "/metrics/job@base64/YS9i", "last_run 7\n", 200, "").await;
    check(
        &api,
        Method::PUT,
        "/metrics/job/batch",
        "x 1 1000\n",
        400,
        "pushed metrics are invalid or inconsistent with existing metrics: pushed metrics must not have timestamps\n",
    )
    .await;
    let (_, _, metrics) = send(&api, Method::GET, "/metrics", "").await;
    assert!(metrics.contains("jobs_done{instance=\"i1\",job=\"batch\"} 3\n"), "{metrics}");
    assert!(metrics.contains("last_run{job=\"a/b\"} 7\n"), "{metrics}");
    assert!(metrics.contains("push_time_seconds{instance=\"i1\",job=\"batch\"} 1000\n"), "{metrics}");
    check(&api, Method::DELETE, "/metrics/job/batch/instance/i1", "", 202, "").await;
    let (_, _, metrics) = send(&api, Method::GET, "/metrics", "").await;
    assert!(!metrics.contains("jobs_done"), "{metrics}");
    assert!(metrics.contains("sextant_api_http_requests_total"), "{metrics}");
}

#[tokio::test]
async fn health_ready_reload() {
    let api = api(ApiOptions::default());
    check(&api, Method::GET, "/-/healthy", "", 200, "Sextant Server is Healthy.\n").await;
    check(&api, Method::GET, "/", "", 200, "Sextant Server: the Prometheus HTTP API is under /api/v1/.\n").await;
    api.set_ready(false);
    check(&api, Method::GET, "/-/ready", "", 503, "Service Unavailable\n").await;
    api.set_ready(true);
    check(&api, Method::GET, "/-/ready", "", 200, "Sextant Server is Ready.\n").await;
    check(&api, Method::POST, "/-/reload", "", 403, "Lifecycle API is not enabled.\n").await;
    api.set_reload_hook(Arc::new(|| Err("bad config".to_string())));
    check(&api, Method::POST, "/-/reload", "", 500, "failed to reload config: bad config\n").await;
    let (status, _, _) = send(&api, Method::OPTIONS, "/api/v1/query_range", "").await;
    assert_eq!(status, 204);
}

/// A query-log sink the test can read.
#[derive(Clone, Default)]
struct SharedLog(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn query_log_lines_are_prometheus_json() {
    let api = api(ApiOptions::default());
    let log = SharedLog::default();
    api.set_query_log(Box::new(log.clone()));
    send(&api, Method::GET, "/api/v1/query?query=up&time=1000", "").await;
    send(&api, Method::POST, "/api/v1/query_range", "query=sum(up)&start=900&end=1000&step=15").await;
    send(&api, Method::GET, "/api/v1/query?query=1%2B&time=1000", "").await;
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "parse errors are not logged: {text}");
    let cases = [
        (&lines[0], "GET", "/api/v1/query", "up", "1970-01-01T00:16:40Z", "1970-01-01T00:16:40Z", 0.0),
        (&lines[1], "POST", "/api/v1/query_range", "sum(up)", "1970-01-01T00:15:00Z", "1970-01-01T00:16:40Z", 15.0),
    ];
    for (line, method, path, query, start, end, step) in cases {
        assert_eq!(line["httpRequest"]["method"], method, "{line}");
        assert_eq!(line["httpRequest"]["path"], path, "{line}");
        assert_eq!(line["params"]["query"], query, "{line}");
        assert_eq!(line["params"]["start"], start, "{line}");
        assert_eq!(line["params"]["end"], end, "{line}");
        assert_eq!(line["params"]["step"], step, "{line}");
        assert!(line["stats"]["timings"]["execTotalTime"].as_f64().is_some(), "{line}");
        assert_eq!(line["ts"], "1970-01-01T00:16:40Z", "{line}");
        assert_eq!(line.as_object().unwrap().len(), 4, "{line}");
    }
    // Keys in Go's order (sorted), as the JSON logger writes them.
    assert!(text.lines().all(|l| l.starts_with(r#"{"httpRequest":{"method":"#)), "{text}");
}

#[tokio::test]
async fn request_bodies_are_limited() {
    let api = api(ApiOptions { max_body_bytes: 64, ..ApiOptions::default() });
    let small = "query=up&time=1000";
    let large = format!("query=up&time=1000&pad={}", "x".repeat(100));
    let cases = [
        (Method::POST, "/api/v1/query", small.to_string(), 200),
        (Method::POST, "/api/v1/query", large.clone(), 413),
        (Method::POST, "/api/v1/write", large.clone(), 413),
        (Method::POST, "/api/v1/read", large.clone(), 413),
        (Method::PUT, "/metrics/job/j", large, 413),
    ];
    for (method, uri, body, status) in cases {
        let (got, _, text) = send(&api, method, uri, &body).await;
        assert_eq!(got, status, "{uri}: {text}");
        if status == 413 {
            assert_eq!(text, "request body larger than 64 bytes", "{uri}");
        }
    }
}

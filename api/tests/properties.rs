//! Property tests: random and mutated HTTP parameters and remote-write bodies never crash the
//! router; malformed input gets a 4xx with a message.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request};
use proptest::prelude::*;
use sextant_api::{Api, ApiOptions};
use sextant_model::remote::{self, Label, TimeSeries, WriteRequest};
use sextant_model::{Appendable, Labels, MemStorage};
use tower::ServiceExt;

fn api() -> Api {
    let db = MemStorage::new();
    {
        let mut app = db.appender();
        for i in 0..10 {
            app.append(&Labels::from_pairs([("__name__", "up"), ("job", "a")]), i * 1000, 1.0).unwrap();
        }
        app.commit().unwrap();
    }
    Api::new(Arc::new(db), ApiOptions::default())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Sends a request; returns the status and body.
fn send(rt: &tokio::runtime::Runtime, api: &Api, request: Request<Body>) -> (u16, String) {
    rt.block_on(async {
        let resp = api.router().oneshot(request).await.unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8_lossy(&body).to_string())
    })
}

fn encode_component(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

const ENDPOINTS: &[&str] = &[
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/label/job/values",
    "/api/v1/format_query",
    "/api/v1/parse_query",
    "/api/v1/query_exemplars",
    "/api/v1/metadata",
    "/api/v1/targets/metadata",
    "/api/v1/status/tsdb",
    "/federate",
];

const NAMES: &[&str] =
    &["query", "time", "start", "end", "step", "timeout", "match[]", "limit", "lookback_delta", "stats", "metric"];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,20}",
        "[0-9.eE+-]{0,25}",
        Just("up".to_string()),
        Just("1e308".to_string()),
        Just("-1e308".to_string()),
        Just("NaN".to_string()),
        Just("2026-11-22T03:36:12.123Z".to_string()),
        Just("sum(rate(up[5m]))".to_string()),
        Just("{job=~\"a|b\"}".to_string()),
        "[0-9]{1,3}[smhdwy]",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_parameters_get_an_answer(
        endpoint in prop::sample::select(ENDPOINTS),
        params in prop::collection::vec((prop::sample::select(NAMES), value()), 0..6),
    ) {
        let rt = runtime();
        let api = api();
        let query: Vec<String> =
            params.iter().map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v))).collect();
        let uri = format!("{endpoint}?{}", query.join("&"));
        let (status, body) = send(&rt, &api, Request::builder().uri(&uri).body(Body::empty()).unwrap());
        prop_assert!(status < 500 || status == 503, "{uri}: {status} {body}");
        if status >= 400 {
            prop_assert!(body.contains("\"error\""), "{uri}: {status} without a message: {body}");
        }
    }

    #[test]
    fn mutated_remote_write_bodies_never_crash(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        truncate in any::<prop::sample::Index>(),
    ) {
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label::new("__name__", "m"), Label::new("job", "x")],
                samples: vec![remote::Sample { value: 1.0, timestamp: 5000 }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut body = remote::encode_write_request(&request).unwrap();
        for (at, byte) in &flips {
            let i = at.index(body.len());
            body[i] ^= byte;
        }
        body.truncate(truncate.index(body.len() + 1));
        let rt = runtime();
        let api = api();
        let req = Request::builder()
            .method("POST")
            .uri("/api/v1/write")
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::CONTENT_ENCODING, "snappy")
            .body(Body::from(body))
            .unwrap();
        let (status, body) = send(&rt, &api, req);
        prop_assert!(status == 204 || status == 400, "{status} {body}");
        if status == 400 {
            prop_assert!(!body.trim().is_empty());
        }
    }

    #[test]
    fn random_remote_read_bodies_are_bad_requests(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let rt = runtime();
        let api = api();
        let req = Request::builder().method("POST").uri("/api/v1/read").body(Body::from(body)).unwrap();
        let (status, _) = send(&rt, &api, req);
        prop_assert!(status == 200 || status == 400, "{status}");
    }
}

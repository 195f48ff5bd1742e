//! Property tests: random and mutated HTTP parameters and remote-write bodies never crash the
//! router; malformed input gets a 4xx with a message.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request};
use proptest::prelude::*;
use sextant_api::{Api, ApiOptions};
use sextant_model::remote::{self, Label, TimeSeries, WriteRequest};
use sextant_model::{Appendable, Labels, MatchOp, Matcher, MemStorage, Queryable, ValueType};
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

/// A remote-write POST of a snappy-compressed body.
fn remote_write(body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri("/api/v1/write")
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .header(header::CONTENT_ENCODING, "snappy")
        .body(Body::from(body))
        .unwrap()
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
        let (status, body) = send(&rt, &api, remote_write(body));
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

// The receiver (series read in place, series references cached by label bytes, appends by
// reference into the TSDB) against the owned decoding it replaced (prost, `Labels` for every
// series, appends by labels into `MemStorage`): same status for every request, same data after.

/// Label sets to draw from: valid ones in wire order and not, with empty values, and broken
/// ones (a name twice, an empty name, bytes that are not UTF-8, no labels at all).
fn label_set(idx: usize) -> Vec<Label> {
    let l = |n: &str, v: &str| Label::new(n, v);
    match idx {
        0 => vec![l("__name__", "a"), l("job", "x")],
        1 => vec![l("__name__", "b"), l("job", "x")],
        2 => vec![l("job", "x"), l("__name__", "a")],
        3 => vec![l("__name__", "a"), l("env", ""), l("job", "x")],
        4 => vec![l("__name__", "c")],
        5 => vec![l("__name__", "a"), l("job", "x"), l("job", "y")],
        6 => vec![l("", "v"), l("__name__", "a")],
        7 => vec![Label { name: "__name__".into(), value: bytes::Bytes::from_static(b"\xff") }],
        8 => vec![l("env", "")],
        _ => vec![],
    }
}

fn rw_request() -> impl Strategy<Value = WriteRequest> {
    let series = (
        prop::sample::select(vec![0usize, 0, 1, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9]),
        prop::collection::vec((0i64..6, prop::sample::select(vec![1.0, 2.0])), 0..4),
    )
        .prop_map(|(idx, samples)| TimeSeries {
            labels: label_set(idx),
            samples: samples.into_iter().map(|(t, value)| remote::Sample { value, timestamp: t * 1000 }).collect(),
            ..Default::default()
        });
    prop::collection::vec(series, 0..5).prop_map(|timeseries| WriteRequest { timeseries, ..Default::default() })
}

/// What the receiver answered before it read requests in place: the status for `body`, with
/// its samples appended to `db`.
fn owned_receiver(db: &MemStorage, body: &[u8]) -> u16 {
    let Ok(request) = remote::decode_write_request(body) else { return 400 };
    let mut batch = Vec::new();
    for ts in &request.timeseries {
        let mut pairs = Vec::new();
        for label in &ts.labels {
            let (Ok(name), Ok(value)) = (std::str::from_utf8(&label.name), std::str::from_utf8(&label.value)) else {
                return 400;
            };
            if name.is_empty() {
                return 400;
            }
            pairs.push((name.to_string(), value.to_string()));
        }
        match Labels::try_from_pairs(pairs) {
            Ok(labels) if !labels.is_empty() => batch.push((labels, &ts.samples)),
            _ => return 400,
        }
    }
    let mut app = db.appender();
    let mut status = 204;
    for (labels, samples) in batch {
        for s in samples.iter() {
            if app.append(&labels, s.timestamp, s.value).is_err() {
                status = 400;
            }
        }
    }
    app.commit().unwrap();
    status
}

fn everything(db: &dyn Queryable) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    let all = Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap();
    let mut out = Vec::new();
    for s in q.select(true, None, &[all]).unwrap() {
        let mut s = s.unwrap();
        let mut samples = Vec::new();
        while s.samples.next() != ValueType::Exhausted {
            samples.push(s.samples.at());
        }
        out.push((s.labels, samples));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn receiver_answers_and_stores_as_owned_decoding(
        requests in prop::collection::vec(
            (rw_request(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..2)),
            1..8,
        ),
    ) {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let tsdb = Arc::new(sextant_tsdb::Db::open(dir.path(), sextant_tsdb::Options::default()).unwrap());
        let api = Api::new(tsdb.clone(), ApiOptions::default());
        let reference = MemStorage::new();
        for (request, flips) in &requests {
            // Some requests get bytes of their protobuf flipped (under a valid snappy block).
            let mut pb = remote::Message::encode_to_vec(request);
            for (at, byte) in flips {
                if !pb.is_empty() {
                    let i = at.index(pb.len());
                    pb[i] ^= byte;
                }
            }
            let body = remote::snappy_compress(&pb).unwrap();
            let expected = owned_receiver(&reference, &body);
            let (status, text) = send(&rt, &api, remote_write(body));
            prop_assert_eq!(status, expected, "{:?}: {}", request, text);
        }
        prop_assert_eq!(everything(&*tsdb), everything(&reference));
    }
}

//! The remote-write receiver and remote read through the router, in process.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use sextant_api::{Api, ApiOptions};
use sextant_model::remote::{self, DecodeLimits, Label, Query, ReadRequest, ResponseType, TimeSeries, WriteRequest};
use sextant_model::{Labels, MemStorage, Queryable, ValueType};
use sextant_tsdb::XorChunk;
use tower::ServiceExt;

fn series(name: &str, samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: vec![Label::new("__name__", name), Label::new("job", "edge")],
        samples: samples.iter().map(|&(t, v)| remote::Sample { value: v, timestamp: t }).collect(),
        ..Default::default()
    }
}

fn write_body(ts: Vec<TimeSeries>) -> Vec<u8> {
    remote::encode_write_request(&WriteRequest { timeseries: ts, ..Default::default() }).unwrap()
}

struct Sent {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

async fn send(api: &Api, method: &str, uri: &str, content_type: Option<&str>, body: Vec<u8>) -> Sent {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    if uri.ends_with("/write") {
        req = req.header(header::CONTENT_ENCODING, "snappy");
    }
    let resp = api.router().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap().to_vec();
    Sent { status, headers, body }
}

fn stored(db: &dyn Queryable, name: &str) -> Vec<(i64, f64)> {
    let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    let m = sextant_model::Matcher::new(sextant_model::MatchOp::Equal, "__name__", name).unwrap();
    let mut out = Vec::new();
    for s in q.select(true, None, &[m]).unwrap() {
        let mut s = s.unwrap();
        while s.samples.next() != ValueType::Exhausted {
            out.push(s.samples.at());
        }
    }
    out
}

const PB: Option<&str> = Some("application/x-protobuf");

#[tokio::test]
async fn write_status_codes_as_prometheus() {
    write_status_codes(Arc::new(MemStorage::new())).await;
}

#[tokio::test]
async fn write_status_codes_with_the_tsdb() {
    let dir = tempfile::tempdir().unwrap();
    let db = sextant_tsdb::Db::open(dir.path(), sextant_tsdb::Options::default()).unwrap();
    write_status_codes(Arc::new(db)).await;
}

async fn write_status_codes<S: sextant_api::Storage + 'static>(db: Arc<S>) {
    let api = Api::new(db.clone(), ApiOptions::default());
    let db: &dyn Queryable = &*db;
    let check = |sent: &Sent, code: u16, text: &str| {
        assert_eq!(sent.status.as_u16(), code, "{}", String::from_utf8_lossy(&sent.body));
        assert!(String::from_utf8_lossy(&sent.body).contains(text), "{:?}", String::from_utf8_lossy(&sent.body));
    };
    let first = write_body(vec![series("m", &[(1000, 1.0), (2000, 2.0)])]);
    check(&send(&api, "POST", "/api/v1/write", PB, first).await, 204, "");
    // The newest sample again, identical: idempotent (a retried batch).
    let again = write_body(vec![series("m", &[(2000, 2.0)])]);
    check(&send(&api, "POST", "/api/v1/write", PB, again).await, 204, "");
    let conflicting = write_body(vec![series("m", &[(2000, 5.0)])]);
    check(&send(&api, "POST", "/api/v1/write", PB, conflicting).await, 400, "duplicate sample");
    let old = write_body(vec![series("m", &[(500, 1.0)])]);
    check(&send(&api, "POST", "/api/v1/write", PB, old).await, 400, "out of order");
    // The good samples of a batch with a bad one are kept.
    let mixed = write_body(vec![series("m", &[(100, 1.0)]), series("n", &[(3000, 3.0)])]);
    check(&send(&api, "POST", "/api/v1/write", PB, mixed).await, 400, "out of order");
    assert_eq!(stored(db, "n"), vec![(3000, 3.0)]);
    assert_eq!(stored(db, "m"), vec![(1000, 1.0), (2000, 2.0)]);
    check(&send(&api, "POST", "/api/v1/write", PB, b"garbage".to_vec()).await, 400, "");
    check(&send(&api, "POST", "/api/v1/write", Some("application/json"), vec![]).await, 415, "");
    check(
        &send(&api, "POST", "/api/v1/write", Some("application/x-protobuf;proto=foo.Bar"), vec![]).await,
        415,
        "foo.Bar",
    );
    let dup_names = write_body(vec![TimeSeries {
        labels: vec![Label::new("__name__", "x"), Label::new("a", "1"), Label::new("a", "2")],
        samples: vec![remote::Sample { value: 1.0, timestamp: 1 }],
        ..Default::default()
    }]);
    check(&send(&api, "POST", "/api/v1/write", PB, dup_names).await, 400, "invalid sample");
    assert_eq!(send(&api, "GET", "/api/v1/write", None, vec![]).await.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn write_v2_reports_written_counts() {
    let db = Arc::new(MemStorage::new());
    let api = Api::new(db.clone(), ApiOptions::default());
    let request = remote::v2::Request {
        symbols: vec!["".into(), "__name__".into(), "m2".into(), "job".into(), "x".into()],
        timeseries: vec![remote::v2::TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            samples: vec![
                remote::v2::Sample { value: 1.0, timestamp: 10, ..Default::default() },
                remote::v2::Sample { value: 2.0, timestamp: 20, ..Default::default() },
            ],
            ..Default::default()
        }],
    };
    let body = remote::encode_write_request_v2(&request).unwrap();
    let sent =
        send(&api, "POST", "/api/v1/write", Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"), body)
            .await;
    assert_eq!(sent.status, StatusCode::NO_CONTENT);
    assert_eq!(sent.headers["X-Prometheus-Remote-Write-Samples-Written"], "2");
    assert_eq!(stored(&*db, "m2"), vec![(10, 1.0), (20, 2.0)]);
    let bad_ref = remote::v2::Request {
        symbols: vec!["".into()],
        timeseries: vec![remote::v2::TimeSeries { labels_refs: vec![7, 8], ..Default::default() }],
    };
    let body = remote::encode_write_request_v2(&bad_ref).unwrap();
    let sent =
        send(&api, "POST", "/api/v1/write", Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"), body)
            .await;
    assert_eq!(sent.status, StatusCode::BAD_REQUEST);
}

fn read_request(types: Vec<ResponseType>) -> Vec<u8> {
    let query = Query {
        start_timestamp_ms: 0,
        end_timestamp_ms: 10_000,
        matchers: vec![remote::matcher_to_proto(
            &sextant_model::Matcher::new(sextant_model::MatchOp::Equal, "__name__", "m").unwrap(),
        )],
        hints: None,
    };
    remote::encode_read_request(&ReadRequest {
        queries: vec![query],
        accepted_response_types: types.into_iter().map(|t| t as i32).collect(),
    })
    .unwrap()
}

#[tokio::test]
async fn read_samples_and_streamed_chunks() {
    let db = Arc::new(MemStorage::new());
    let options = ApiOptions { external_labels: Labels::from_pairs([("cluster", "a")]), ..ApiOptions::default() };
    let api = Api::new(db.clone(), options);
    let points: Vec<(i64, f64)> = (0..300).map(|i| (i * 10, i as f64)).collect();
    let sent = send(&api, "POST", "/api/v1/write", PB, write_body(vec![series("m", &points)])).await;
    assert_eq!(sent.status, StatusCode::NO_CONTENT);

    let sent = send(&api, "POST", "/api/v1/read", PB, read_request(vec![ResponseType::Samples])).await;
    assert_eq!(sent.status, StatusCode::OK);
    assert_eq!(sent.headers[header::CONTENT_ENCODING], "snappy");
    let response = remote::decode_read_response(&sent.body).unwrap();
    let ts = &response.results[0].timeseries[0];
    assert_eq!(ts.samples.len(), 300);
    assert!(ts.labels.contains(&Label::new("cluster", "a")));

    let sent = send(&api, "POST", "/api/v1/read", PB, read_request(vec![ResponseType::StreamedXorChunks])).await;
    assert_eq!(sent.status, StatusCode::OK);
    assert_eq!(
        sent.headers[header::CONTENT_TYPE],
        "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
    );
    let mut frames = remote::ChunkedFrames::new(sent.body, &DecodeLimits::default());
    let mut decoded = Vec::new();
    while let Some(frame) = frames.next_frame() {
        let message = frame.unwrap().decode(&DecodeLimits::default()).unwrap();
        for s in message.chunked_series {
            for c in s.chunks {
                let chunk = XorChunk::from_bytes(c.data.to_vec()).unwrap();
                let mut it = chunk.iter();
                while it.next_sample() {
                    decoded.push(it.at());
                }
            }
        }
    }
    assert_eq!(decoded, points);

    let sent = send(&api, "POST", "/api/v1/read", PB, b"\xff\xff".to_vec()).await;
    assert_eq!(sent.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn admin_delete_series_on_the_tsdb() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(sextant_tsdb::Db::open(dir.path(), sextant_tsdb::Options::default()).unwrap());
    let disabled = Api::new(db.clone(), ApiOptions::default()).with_admin(db.clone());
    let options = ApiOptions { enable_admin_api: true, ..ApiOptions::default() };
    let api = Api::new(db.clone(), options).with_admin(db.clone());
    let sent =
        send(&api, "POST", "/api/v1/write", PB, write_body(vec![series("m", &[(1000, 1.0), (2000, 2.0)])])).await;
    assert_eq!(sent.status, StatusCode::NO_CONTENT);
    let uri = "/api/v1/admin/tsdb/delete_series?match[]=m&start=0&end=1.5";
    assert_eq!(send(&disabled, "POST", uri, None, vec![]).await.status.as_u16(), 500);
    assert_eq!(send(&api, "POST", "/api/v1/admin/tsdb/delete_series", None, vec![]).await.status.as_u16(), 400);
    assert_eq!(send(&api, "POST", uri, None, vec![]).await.status, StatusCode::NO_CONTENT);
    assert_eq!(stored(&*db, "m"), vec![(2000, 2.0)]);
    let clean = send(&api, "PUT", "/api/v1/admin/tsdb/clean_tombstones", None, vec![]).await;
    assert_eq!(clean.status, StatusCode::NO_CONTENT);
    let disabled_snapshot = send(&disabled, "POST", "/api/v1/admin/tsdb/snapshot", None, vec![]).await;
    assert_eq!(disabled_snapshot.status.as_u16(), 500);
    assert_eq!(
        String::from_utf8(disabled_snapshot.body).unwrap(),
        r#"{"status":"error","errorType":"unavailable","error":"admin APIs disabled"}"#
    );

    // A snapshot with the head opens as a data directory holding what was written.
    let snapshot = send(&api, "POST", "/api/v1/admin/tsdb/snapshot", None, vec![]).await;
    assert_eq!(snapshot.status, StatusCode::OK);
    let body: serde_json::Value = serde_json::from_slice(&snapshot.body).unwrap();
    assert_eq!(body["status"], "success");
    let name = body["data"]["name"].as_str().unwrap().to_string();
    assert_eq!((name.len(), &name[8..9], &name[15..17]), (33, "T", "Z-"), "{name}");
    let copy =
        sextant_tsdb::Db::open(dir.path().join("snapshots").join(&name), sextant_tsdb::Options::default()).unwrap();
    assert_eq!(stored(&copy, "m"), vec![(2000, 2.0)]);

    // skip_head: persisted blocks only (none yet); a bad boolean is bad_data, as Go parses it.
    let skipped = send(&api, "PUT", "/api/v1/admin/tsdb/snapshot?skip_head=true", None, vec![]).await;
    assert_eq!(skipped.status, StatusCode::OK);
    let body: serde_json::Value = serde_json::from_slice(&skipped.body).unwrap();
    let skipped_dir = dir.path().join("snapshots").join(body["data"]["name"].as_str().unwrap());
    assert_eq!(std::fs::read_dir(&skipped_dir).unwrap().count(), 0);
    let bad = send(&api, "POST", "/api/v1/admin/tsdb/snapshot?skip_head=maybe", None, vec![]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        String::from_utf8(bad.body).unwrap(),
        r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"skip_head\": unable to parse boolean: strconv.ParseBool: parsing \"maybe\": invalid syntax"}"#
    );
}

#[tokio::test]
async fn cached_series_survive_head_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(sextant_tsdb::Db::open(dir.path(), sextant_tsdb::Options::default()).unwrap());
    let api = Api::new(db.clone(), ApiOptions::default());
    let write = |samples: &[(i64, f64)]| write_body(vec![series("m", samples), series("n", samples)]);
    // The second write of the same label bytes goes through the receiver's series cache.
    for samples in [&[(1000, 1.0)][..], &[(2000, 2.0)], &[(2000, 2.0)]] {
        assert_eq!(send(&api, "POST", "/api/v1/write", PB, write(samples)).await.status, StatusCode::NO_CONTENT);
    }
    let sent = send(&api, "POST", "/api/v1/write", PB, write(&[(1500, 1.0)])).await;
    assert_eq!(sent.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&sent.body).contains("out of order sample for series {__name__=\"m\""));
    // The head drops both series; the cached references are stale and the series come back.
    db.head().truncate(10_000);
    assert_eq!(db.head().num_series(), 0);
    let sent = send(&api, "POST", "/api/v1/write", PB, write(&[(20_000, 5.0), (21_000, 6.0)])).await;
    assert_eq!(sent.status, StatusCode::NO_CONTENT);
    assert_eq!(stored(&*db, "m"), vec![(20_000, 5.0), (21_000, 6.0)]);
    assert_eq!(stored(&*db, "n"), vec![(20_000, 5.0), (21_000, 6.0)]);
    assert_eq!(db.head().num_series(), 2);
}

//! The remote-write receiver and remote read against fixtures captured from Prometheus 2.42
//! (`../shared/conformance/api/remote-write-1.0`, `remote-read`, `prometheus-2.42/rw_*`):
//! real RW 1.0 bodies are accepted and stored whole; remote read answers the captured
//! requests with the same messages (SAMPLES) and the same bytes (STREAMED_XOR_CHUNKS).

#[path = "../../testsupport/shared.rs"]
mod shared;

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request};
use sextant_api::{Api, ApiOptions};
use sextant_model::remote::{self, DecodeLimits};
use sextant_model::{Appendable, Labels, MemStorage, Queryable, ValueType};
use sextant_tsdb::XorChunk;
use tower::ServiceExt;

async fn post(api: &Api, uri: &str, content_type: &str, body: Vec<u8>) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_ENCODING, "snappy")
        .body(Body::from(body))
        .unwrap();
    let resp = api.router().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap().to_vec())
}

fn n_stored(db: &MemStorage) -> usize {
    let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    let all = sextant_model::Matcher::new(sextant_model::MatchOp::RegexMatch, "__name__", ".+").unwrap();
    let mut n = 0;
    for s in q.select(false, None, &[all]).unwrap() {
        let mut s = s.unwrap();
        while s.samples.next() != ValueType::Exhausted {
            n += 1;
        }
    }
    n
}

/// Loads `labels` minus the external `cluster` label with `samples`.
fn load(db: &MemStorage, labels: &[remote::Label], samples: &[(i64, f64)]) {
    let pairs: Vec<(String, String)> = labels
        .iter()
        .map(|l| (String::from_utf8_lossy(&l.name).to_string(), String::from_utf8_lossy(&l.value).to_string()))
        .filter(|(n, _)| n != "cluster")
        .collect();
    let labels = Labels::from_pairs(pairs);
    let mut app = db.appender();
    for &(t, v) in samples {
        app.append(&labels, t, v).unwrap();
    }
    app.commit().unwrap();
}

fn api_over(db: Arc<MemStorage>) -> Api {
    let options = ApiOptions { external_labels: Labels::from_pairs([("cluster", "edge-a")]), ..ApiOptions::default() };
    Api::new(db, options)
}

async fn remote_write(dir: &Path, results: &mut Vec<(String, Result<(), String>)>) {
    let rw = dir.join("remote-write-1.0");
    let mut names: Vec<_> = std::fs::read_dir(&rw).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for path in names.iter().filter(|p| p.to_string_lossy().ends_with(".snappy.bin")) {
        let db = Arc::new(MemStorage::new());
        let api = api_over(db.clone());
        let body = std::fs::read(path).unwrap();
        let expected: usize =
            remote::decode_write_request(&body).unwrap().timeseries.iter().map(|t| t.samples.len()).sum();
        let (status, _, text) = post(&api, "/api/v1/write", "application/x-protobuf", body.clone()).await;
        let outcome = if status != 204 {
            Err(format!("status {status}: {}", String::from_utf8_lossy(&text)))
        } else if n_stored(&db) != expected {
            Err(format!("{} samples stored, {expected} sent", n_stored(&db)))
        } else {
            // A retry of the same batch (as after a lost response) is accepted too.
            let (again, _, _) = post(&api, "/api/v1/write", "application/x-protobuf", body).await;
            if again == 204 {
                Ok(())
            } else {
                Err(format!("resent batch: {again}"))
            }
        };
        results.push((path.file_name().unwrap().to_string_lossy().to_string(), outcome));
    }
    // The receiver's answers to a garbage body and a GET, as 2.42 gave them.
    let api = api_over(Arc::new(MemStorage::new()));
    let golden_status = |name: &str| -> u16 {
        let text = std::fs::read_to_string(dir.join("prometheus-2.42").join(name)).unwrap();
        text.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let (status, _, _) = post(&api, "/api/v1/write", "application/x-protobuf", b"garbage".to_vec()).await;
    let want = golden_status("rw_receive_garbage.http");
    results
        .push(("rw_receive_garbage".into(), if status == want { Ok(()) } else { Err(format!("{status} != {want}")) }));
    let resp =
        api.router().oneshot(Request::builder().uri("/api/v1/write").body(Body::empty()).unwrap()).await.unwrap();
    let want = golden_status("rw_receive_get.http");
    let status = resp.status().as_u16();
    results.push(("rw_receive_get".into(), if status == want { Ok(()) } else { Err(format!("{status} != {want}")) }));
}

async fn remote_read(dir: &Path, results: &mut Vec<(String, Result<(), String>)>) {
    let rr = dir.join("remote-read");
    let limits = DecodeLimits::default();
    // SAMPLES: load what the golden answered, ask the golden request, compare the messages.
    {
        let golden =
            remote::decode_read_response(&std::fs::read(rr.join("samples_default.response.bin")).unwrap()).unwrap();
        let db = Arc::new(MemStorage::new());
        for ts in &golden.results[0].timeseries {
            load(&db, &ts.labels, &ts.samples.iter().map(|s| (s.timestamp, s.value)).collect::<Vec<_>>());
        }
        let request = std::fs::read(rr.join("samples_default.request.snappy.bin")).unwrap();
        let (status, headers, body) = post(&api_over(db), "/api/v1/read", "application/x-protobuf", request).await;
        let outcome = if status != 200 || headers[header::CONTENT_ENCODING] != "snappy" {
            Err(format!("status {status}, headers {headers:?}"))
        } else {
            match remote::decode_read_response(&body) {
                Ok(ours) if ours == golden => Ok(()),
                Ok(ours) => Err(format!("ours {ours:?}\ngolden {golden:?}")),
                Err(e) => Err(e.to_string()),
            }
        };
        results.push(("remote_read_samples".into(), outcome));
    }
    // STREAMED_XOR_CHUNKS: same bytes as Prometheus (frame, CRC, XOR chunk).
    {
        let golden_body = std::fs::read(rr.join("streamed_xor_chunks.response.bin")).unwrap();
        let db = Arc::new(MemStorage::new());
        let mut frames = remote::ChunkedFrames::new(golden_body.clone(), &limits);
        while let Some(frame) = frames.next_frame() {
            let message = frame.unwrap().decode(&limits).unwrap();
            for series in &message.chunked_series {
                let mut samples = Vec::new();
                for c in &series.chunks {
                    let chunk = XorChunk::from_bytes(c.data.to_vec()).unwrap();
                    let mut it = chunk.iter();
                    while it.next_sample() {
                        samples.push(it.at());
                    }
                }
                load(&db, &series.labels, &samples);
            }
        }
        let request = std::fs::read(rr.join("streamed_xor_chunks.request.snappy.bin")).unwrap();
        let (status, headers, body) = post(&api_over(db), "/api/v1/read", "application/x-protobuf", request).await;
        let ct = headers[header::CONTENT_TYPE].to_str().unwrap().to_string();
        let outcome = if status != 200 || ct != "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
        {
            Err(format!("status {status}, content type {ct}"))
        } else if body != golden_body {
            Err(format!("bytes differ: ours {body:02x?}\ngolden {golden_body:02x?}"))
        } else {
            Ok(())
        };
        results.push(("remote_read_streamed_xor_chunks".into(), outcome));
    }
}

#[tokio::test]
async fn conformance_remote_api() {
    let Some(shared) = shared::shared_dir("remote-api") else { return };
    let dir = shared.join("conformance/api");
    let mut results = Vec::new();
    remote_write(&dir, &mut results).await;
    remote_read(&dir, &mut results).await;
    let failures: Vec<String> =
        results.iter().filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}"))).collect();
    println!("conformance remote-api: {} of {} cases passed, 0 skipped", results.len() - failures.len(), results.len());
    for f in &failures {
        println!("FAIL {f}");
    }
    assert!(failures.is_empty());
}

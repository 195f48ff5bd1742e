//! The remote-write receiver (1.0 and 2.0) and remote read (`SAMPLES`, `STREAMED_XOR_CHUNKS`).

use std::sync::atomic::Ordering;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sextant_model::remote::{
    self, ChunkEncoding, ChunkedReadResponse, ChunkedSeries, DecodeLimits, ReadResponse, ResponseType, TimeSeries,
};
use sextant_model::{Labels, LabelsBuilder, StorageError, ValueType};
use sextant_tsdb::XorChunk;

use crate::error::ApiError;
use crate::server::{text, Api, ApiResult, Req};

const V1_PROTO: &str = "prometheus.WriteRequest";
const V2_PROTO: &str = "io.prometheus.write.v2.Request";

/// What went wrong with one write, and whose fault it is.
#[derive(Debug)]
enum WriteFailure {
    /// The sender's: 400 with the reason, never retried.
    BadRequest(String),
    /// Ours: 500, the sender retries.
    Internal(String),
}

fn write_error(status: StatusCode, message: &str) -> Response {
    text(status, format!("{message}\n"))
}

/// The `proto=` of a remote-write `Content-Type`; `None` when the type is not protobuf.
fn write_proto(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if media != "application/x-protobuf" {
        return None;
    }
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            if k.trim().eq_ignore_ascii_case("proto") {
                return Some(v.trim().trim_matches('"').to_string());
            }
        }
    }
    Some(V1_PROTO.to_string())
}

/// Labels from wire pairs as Prometheus' receiver takes them: any order, empty values dropped,
/// a name given twice rejected.
fn labels_from_pairs<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Result<Labels, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in pairs {
        let name = std::str::from_utf8(name).map_err(|_| "invalid UTF-8 in a label name".to_string())?;
        let value = std::str::from_utf8(value).map_err(|_| "invalid UTF-8 in a label value".to_string())?;
        if name.is_empty() {
            return Err("empty label name".to_string());
        }
        if !value.is_empty() {
            out.push((name.to_string(), value.to_string()));
        }
    }
    let labels = Labels::try_from_pairs(out).map_err(|e| format!("{e}: invalid sample"))?;
    if labels.is_empty() {
        return Err("series without labels".to_string());
    }
    Ok(labels)
}

/// Sample errors are the sender's fault: the sample is skipped and the request answered 400.
fn is_sample_error(e: &StorageError) -> bool {
    matches!(
        e,
        StorageError::OutOfOrderSample { .. }
            | StorageError::DuplicateSampleForTimestamp { .. }
            | StorageError::OutOfBounds { .. }
            | StorageError::InvalidLabels { .. }
    )
}

/// Appends `series` (labels, samples) and commits; counts the samples written.
fn append_all(api: &Api, series: Vec<(Labels, Vec<(i64, f64)>)>) -> Result<usize, (usize, WriteFailure)> {
    let mut app = api.storage.appender();
    let mut written = 0usize;
    let mut first_bad: Option<String> = None;
    for (labels, samples) in &series {
        for &(t, v) in samples {
            match app.append(labels, t, v) {
                Ok(()) => written += 1,
                Err(e) if is_sample_error(&e) => {
                    api.shared.remote_write_rejected_total.fetch_add(1, Ordering::Relaxed);
                    first_bad.get_or_insert_with(|| e.to_string());
                }
                Err(e) => {
                    app.rollback();
                    return Err((0, WriteFailure::Internal(e.to_string())));
                }
            }
        }
    }
    if let Err(e) = app.commit() {
        return Err((0, WriteFailure::Internal(e.to_string())));
    }
    api.shared.remote_write_samples_total.fetch_add(written as u64, Ordering::Relaxed);
    match first_bad {
        Some(msg) => Err((written, WriteFailure::BadRequest(msg))),
        None => Ok(written),
    }
}

pub(crate) fn write(api: &Api, req: &Req) -> ApiResult {
    let content_type = req.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let proto = if content_type.is_empty() { Some(V1_PROTO.to_string()) } else { write_proto(content_type) };
    let Some(proto) = proto else {
        return Ok(write_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("unsupported content type {content_type:?}: expected application/x-protobuf"),
        ));
    };
    if let Some(enc) = req.headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()) {
        if !enc.trim().eq_ignore_ascii_case("snappy") {
            return Ok(write_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("unsupported content encoding {enc:?}: only snappy is supported"),
            ));
        }
    }
    let v2 = match proto.as_str() {
        V1_PROTO => false,
        V2_PROTO => true,
        other => {
            return Ok(write_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("unknown remote write protobuf message {other:?}"),
            ));
        }
    };
    let limits = DecodeLimits::default();
    let mut batch: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
    if v2 {
        let request: remote::v2::Request = match remote::decode_snappy(&req.body, &limits) {
            Ok(r) => r,
            Err(e) => return Ok(write_error(StatusCode::BAD_REQUEST, &e.to_string())),
        };
        for ts in &request.timeseries {
            if ts.labels_refs.len() % 2 != 0 {
                return Ok(write_error(StatusCode::BAD_REQUEST, "odd number of label references"));
            }
            let mut pairs = Vec::with_capacity(ts.labels_refs.len() / 2);
            for pair in ts.labels_refs.chunks(2) {
                let (Some(n), Some(v)) = (request.symbols.get(pair[0] as usize), request.symbols.get(pair[1] as usize))
                else {
                    return Ok(write_error(StatusCode::BAD_REQUEST, "label reference outside the symbols table"));
                };
                pairs.push((n.as_bytes(), v.as_bytes()));
            }
            let labels = match labels_from_pairs(pairs.into_iter()) {
                Ok(l) => l,
                Err(e) => return Ok(write_error(StatusCode::BAD_REQUEST, &e)),
            };
            batch.push((labels, ts.samples.iter().map(|s| (s.timestamp, s.value)).collect()));
        }
    } else {
        let request: remote::WriteRequest = match remote::decode_snappy(&req.body, &limits) {
            Ok(r) => r,
            Err(e) => return Ok(write_error(StatusCode::BAD_REQUEST, &e.to_string())),
        };
        for ts in &request.timeseries {
            let labels = match labels_from_pairs(ts.labels.iter().map(|l| (&l.name[..], &l.value[..]))) {
                Ok(l) => l,
                Err(e) => return Ok(write_error(StatusCode::BAD_REQUEST, &e)),
            };
            batch.push((labels, ts.samples.iter().map(|s| (s.timestamp, s.value)).collect()));
        }
    }
    let (written, failure) = match append_all(api, batch) {
        Ok(n) => (n, None),
        Err((n, f)) => (n, Some(f)),
    };
    let mut resp = match failure {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(WriteFailure::BadRequest(msg)) => write_error(StatusCode::BAD_REQUEST, &msg),
        Some(WriteFailure::Internal(msg)) => write_error(StatusCode::INTERNAL_SERVER_ERROR, &msg),
    };
    if v2 {
        let h = resp.headers_mut();
        h.insert("X-Prometheus-Remote-Write-Samples-Written", HeaderValue::from(written as u64));
        h.insert("X-Prometheus-Remote-Write-Histograms-Written", HeaderValue::from(0u64));
        h.insert("X-Prometheus-Remote-Write-Exemplars-Written", HeaderValue::from(0u64));
    }
    Ok(resp)
}

/// Adds external labels a series lacks.
fn with_external(labels: Labels, external: &Labels) -> Labels {
    if external.is_empty() {
        return labels;
    }
    let mut b = LabelsBuilder::new(&labels);
    for l in external.iter() {
        if labels.get(&l.name).is_none() {
            b.set(&l.name, &l.value);
        }
    }
    b.labels()
}

fn bad_read(message: impl std::fmt::Display) -> Response {
    write_error(StatusCode::BAD_REQUEST, &message.to_string())
}

/// Samples per XOR chunk in streamed responses (as Prometheus' head chunks).
const SAMPLES_PER_CHUNK: usize = 120;

pub(crate) fn read(api: &Api, req: &Req) -> ApiResult {
    let request = match remote::decode_read_request(&req.body) {
        Ok(r) => r,
        Err(e) => return Ok(bad_read(e)),
    };
    let streamed = request.accepted_response_types.contains(&(ResponseType::StreamedXorChunks as i32));
    let external = &api.options.external_labels;
    let mut budget = api.options.remote_read_sample_limit;
    let mut results = ReadResponse::default();
    let mut frames: Vec<u8> = Vec::new();
    for (query_index, query) in request.queries.iter().enumerate() {
        let mut matchers = Vec::with_capacity(query.matchers.len());
        for m in &query.matchers {
            match remote::matcher_from_proto(m) {
                Ok(m) => matchers.push(m),
                Err(e) => return Ok(bad_read(e)),
            }
        }
        let querier = api
            .storage
            .querier(query.start_timestamp_ms, query.end_timestamp_ms)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let set = querier.select(true, None, &matchers).map_err(|e| ApiError::internal(e.to_string()))?;
        let mut timeseries = Vec::new();
        for series in set {
            let mut series = series.map_err(|e| ApiError::internal(e.to_string()))?;
            let mut points = Vec::new();
            if series.samples.seek(query.start_timestamp_ms) != ValueType::Exhausted {
                loop {
                    let (t, v) = series.samples.at();
                    if t > query.end_timestamp_ms {
                        break;
                    }
                    points.push((t, v));
                    if series.samples.next() == ValueType::Exhausted {
                        break;
                    }
                }
            }
            if points.is_empty() {
                continue;
            }
            if points.len() > budget {
                return Ok(bad_read(format!("exceeded sample limit ({})", api.options.remote_read_sample_limit)));
            }
            budget -= points.len();
            let labels = remote::labels_to_proto(&with_external(series.labels, external));
            if streamed {
                let chunks = points
                    .chunks(SAMPLES_PER_CHUNK)
                    .map(|part| {
                        let mut chunk = XorChunk::new();
                        for &(t, v) in part {
                            chunk.append(t, v);
                        }
                        remote::Chunk {
                            min_time_ms: part[0].0,
                            max_time_ms: part[part.len() - 1].0,
                            r#type: ChunkEncoding::Xor as i32,
                            data: bytes::Bytes::copy_from_slice(chunk.bytes()),
                        }
                    })
                    .collect();
                let frame = ChunkedReadResponse {
                    chunked_series: vec![ChunkedSeries { labels, chunks }],
                    query_index: query_index as i64,
                };
                remote::encode_chunked_frame(&frame, &mut frames);
            } else {
                timeseries.push(TimeSeries {
                    labels,
                    samples: points.iter().map(|&(t, v)| remote::Sample { value: v, timestamp: t }).collect(),
                    ..Default::default()
                });
            }
        }
        if !streamed {
            results.results.push(remote::QueryResult { timeseries });
        }
    }
    if streamed {
        let mut resp = (StatusCode::OK, frames).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"),
        );
        return Ok(resp);
    }
    let body = remote::encode_read_response(&results).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let check = |ct: &str, expected: Option<&str>| assert_eq!(write_proto(ct).as_deref(), expected, "{ct}");
        check("application/x-protobuf", Some(V1_PROTO));
        check("application/x-protobuf;proto=io.prometheus.write.v2.Request", Some(V2_PROTO));
        check("application/x-protobuf; proto=\"prometheus.WriteRequest\"", Some(V1_PROTO));
        check("application/json", None);
        check("application/x-protobuf;proto=foo.Bar", Some("foo.Bar"));
    }

    #[test]
    fn wire_labels() {
        let ok = |pairs: &[(&str, &str)]| labels_from_pairs(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        assert_eq!(ok(&[("b", "2"), ("a", "1")]).unwrap(), Labels::from_pairs([("a", "1"), ("b", "2")]));
        assert_eq!(ok(&[("a", "1"), ("e", "")]).unwrap(), Labels::from_pairs([("a", "1")]));
        assert!(ok(&[("a", "1"), ("a", "2")]).unwrap_err().contains("invalid sample"));
        assert!(ok(&[("", "1")]).is_err());
        assert!(ok(&[]).is_err());
    }
}

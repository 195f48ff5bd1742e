//! The remote-write receiver (1.0 and 2.0) and remote read (`SAMPLES`, `STREAMED_XOR_CHUNKS`).

use std::cell::RefCell;
use std::sync::atomic::Ordering;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sextant_model::remote::{
    self, ChunkEncoding, ChunkedReadResponse, ChunkedSeries, DecodeLimits, ReadResponse, ResponseType, TimeSeries,
    TimeSeriesView, WriteRequestReader,
};
use sextant_model::{Appender, Labels, LabelsBuilder, StorageError, ValueType};
use sextant_tsdb::XorChunk;

use crate::error::ApiError;
use crate::series_cache::{key_hash, MAX_ENTRY_BYTES};
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

/// Why a request stopped before its commit.
enum Abort {
    /// The sender's (a malformed body or label set): 400, nothing written.
    BadRequest(String),
    /// Ours: 500, nothing written.
    Internal(String),
}

/// One request's appends: counts and the first rejected sample.
struct Appends<'a> {
    api: &'a Api,
    app: Box<dyn Appender + 'a>,
    written: usize,
    first_bad: Option<String>,
}

impl<'a> Appends<'a> {
    fn new(api: &'a Api) -> Appends<'a> {
        Appends { api, app: api.storage.appender(), written: 0, first_bad: None }
    }

    /// Counts one append's outcome; a failure that is not the sample's fault aborts.
    fn outcome(&mut self, result: Result<(), StorageError>) -> Result<(), Abort> {
        match result {
            Ok(()) => self.written += 1,
            Err(e) if is_sample_error(&e) => {
                self.api.shared.remote_write_rejected_total.fetch_add(1, Ordering::Relaxed);
                self.first_bad.get_or_insert_with(|| e.to_string());
            }
            Err(e) => return Err(Abort::Internal(e.to_string())),
        }
        Ok(())
    }

    /// Appends a series known by its labels.
    fn series(&mut self, labels: &Labels, samples: impl Iterator<Item = (i64, f64)>) -> Result<(), Abort> {
        let mut slot = 0u64;
        for (t, v) in samples {
            let result = self.app.append_cached(&mut slot, labels, t, v);
            self.outcome(result)?;
        }
        Ok(())
    }

    /// Appends a series read in place, through the series cache when its label bytes are
    /// known; labels are checked and built only for a series the cache does not know.
    fn view(&mut self, series: &TimeSeriesView<'_>) -> Result<(), Abort> {
        let cache = &self.api.shared.series_cache;
        let key = series.labels_wire().filter(|w| w.len() <= MAX_ENTRY_BYTES).map(|w| (key_hash(w), w));
        let mut slot = key.map_or(0, |(hash, wire)| cache.get(hash, wire));
        let cached = slot;
        let mut labels: Option<Labels> = None;
        if slot == 0 {
            labels = Some(labels_from_pairs(series.labels()).map_err(Abort::BadRequest)?);
        }
        for sample in series.samples() {
            let (t, v) = (sample.timestamp, sample.value);
            let result = match self.app.append_by_ref(slot, t, v) {
                Ok(true) => Ok(()),
                Ok(false) => {
                    // Unknown slot or the series is gone (truncated): append with the labels.
                    let labels = match &mut labels {
                        Some(labels) => labels,
                        None => labels.insert(labels_from_pairs(series.labels()).map_err(Abort::BadRequest)?),
                    };
                    self.app.append_cached(&mut slot, labels, t, v)
                }
                Err(e) => Err(e),
            };
            self.outcome(result)?;
        }
        if let Some((hash, wire)) = key.filter(|_| slot != cached && slot != 0) {
            cache.insert(hash, wire, slot);
        }
        Ok(())
    }

    /// Commits; the count of samples written, or why not.
    fn commit(mut self) -> (usize, Option<WriteFailure>) {
        if let Err(e) = self.app.commit() {
            return (0, Some(WriteFailure::Internal(e.to_string())));
        }
        self.api.shared.remote_write_samples_total.fetch_add(self.written as u64, Ordering::Relaxed);
        (self.written, self.first_bad.map(WriteFailure::BadRequest))
    }

    fn abort(mut self, why: Abort) -> (usize, Option<WriteFailure>) {
        self.app.rollback();
        match why {
            Abort::BadRequest(msg) => (0, Some(WriteFailure::BadRequest(msg))),
            Abort::Internal(msg) => (0, Some(WriteFailure::Internal(msg))),
        }
    }
}

thread_local! {
    /// Each handler thread's buffer for decompressed bodies.
    static BODY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A decompressed body over this is not kept for the next request.
const KEEP_BODY_BYTES: usize = 4 << 20;

/// Remote write 1.0: the body is read in place, series by series.
fn write_v1(api: &Api, body: &[u8], limits: &DecodeLimits) -> (usize, Option<WriteFailure>) {
    BODY.with(|buf| {
        let mut buf = buf.borrow_mut();
        if let Err(e) = remote::snappy_decompress_into(body, limits, &mut buf) {
            return (0, Some(WriteFailure::BadRequest(e.to_string())));
        }
        let mut appends = Appends::new(api);
        let mut aborted = None;
        for series in WriteRequestReader::new(&buf) {
            let done = match series {
                Ok(series) => appends.view(&series),
                Err(e) => Err(Abort::BadRequest(e.to_string())),
            };
            if let Err(why) = done {
                aborted = Some(why);
                break;
            }
        }
        let outcome = match aborted {
            Some(why) => appends.abort(why),
            None => appends.commit(),
        };
        if buf.capacity() > KEEP_BODY_BYTES {
            *buf = Vec::new();
        }
        outcome
    })
}

/// Remote write 2.0: decoded whole (symbols, then series referring to them).
fn write_v2(api: &Api, body: &[u8], limits: &DecodeLimits) -> (usize, Option<WriteFailure>) {
    let request: remote::v2::Request = match remote::decode_snappy(body, limits) {
        Ok(r) => r,
        Err(e) => return (0, Some(WriteFailure::BadRequest(e.to_string()))),
    };
    let mut appends = Appends::new(api);
    for ts in &request.timeseries {
        if let Err(why) = v2_series(&request.symbols, ts)
            .and_then(|labels| appends.series(&labels, ts.samples.iter().map(|s| (s.timestamp, s.value))))
        {
            return appends.abort(why);
        }
    }
    appends.commit()
}

/// The labels of a 2.0 series from the request's symbols.
fn v2_series(symbols: &[String], ts: &remote::v2::TimeSeries) -> Result<Labels, Abort> {
    if ts.labels_refs.len() % 2 != 0 {
        return Err(Abort::BadRequest("odd number of label references".to_string()));
    }
    let mut pairs = Vec::with_capacity(ts.labels_refs.len() / 2);
    for pair in ts.labels_refs.chunks(2) {
        let (Some(n), Some(v)) = (symbols.get(pair[0] as usize), symbols.get(pair[1] as usize)) else {
            return Err(Abort::BadRequest("label reference outside the symbols table".to_string()));
        };
        pairs.push((n.as_bytes(), v.as_bytes()));
    }
    labels_from_pairs(pairs.into_iter()).map_err(Abort::BadRequest)
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
    let (written, failure) = if v2 { write_v2(api, &req.body, &limits) } else { write_v1(api, &req.body, &limits) };
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

//! Remote write 1.0 and remote read bodies captured from Prometheus 2.42
//! (`../shared/conformance/api/remote-write-1.0`, `.../remote-read`): every body decodes to
//! what the JSON beside it records, re-encodes to a body that decodes the same, and the
//! uncompressed protobuf re-encodes byte for byte.

#[path = "../../testsupport/shared.rs"]
mod shared;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value};
use sextant_model::remote::{
    self, Chunk, ChunkEncoding, ChunkedFrames, ChunkedReadResponse, ChunkedSeries, DecodeLimits, Label, Message,
    QueryResult, ReadResponse, ResponseType, Sample, TimeSeries, WriteRequest,
};

/// Files in the fixture folders that are not bodies, with the reason.
const NOT_BODIES: &[(&str, &str)] = &[
    ("retry-observation.json", "sender retry timing on 5xx; belongs to the remote-write sender's tests"),
    ("non-retry-observation.json", "sender behaviour on 429/400; belongs to the remote-write sender's tests"),
];

/// Bodies known not to decode as recorded, with the reason. Empty: every body passes.
const SKIP: &[(&str, &str)] = &[];

#[test]
fn conformance_remote() {
    let Some(shared) = shared::shared_dir("remote") else { return };
    let api = shared.join("conformance/api");
    let mut outcomes: Vec<(String, Result<(), String>)> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();

    let write_dir = api.join("remote-write-1.0");
    for json_name in file_names(&write_dir).into_iter().filter(|n| n.ends_with(".json")) {
        if NOT_BODIES.iter().any(|(name, _)| *name == json_name) {
            seen.insert(format!("remote-write-1.0/{json_name}"));
            continue;
        }
        let stem = json_name.trim_end_matches(".json");
        let record = read_json(&write_dir.join(&json_name));
        seen.insert(format!("remote-write-1.0/{json_name}"));
        for (suffix, check) in [
            (".snappy.bin", check_write_snappy as fn(&[u8], &Value) -> Result<(), String>),
            (".pb.bin", check_write_pb),
        ] {
            let name = format!("remote-write-1.0/{stem}{suffix}");
            seen.insert(name.clone());
            let body = std::fs::read(api.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            outcomes.push((name, check(&body, &record)));
        }
    }

    let read_dir = api.join("remote-read");
    for json_name in file_names(&read_dir).into_iter().filter(|n| n.ends_with(".json")) {
        let stem = json_name.trim_end_matches(".json");
        let record = read_json(&read_dir.join(&json_name));
        seen.insert(format!("remote-read/{json_name}"));
        let request_name = format!("remote-read/{stem}.request.snappy.bin");
        let response_name = format!("remote-read/{stem}.response.bin");
        let request = std::fs::read(api.join(&request_name)).unwrap_or_else(|e| panic!("{request_name}: {e}"));
        let response = std::fs::read(api.join(&response_name)).unwrap_or_else(|e| panic!("{response_name}: {e}"));
        let request_result = check_read_request(&request, &record);
        let streamed =
            request_result.as_ref().is_ok_and(|types| types.first() == Some(&ResponseType::StreamedXorChunks));
        let response_result = if streamed {
            check_streamed_response(&response, &record)
        } else {
            check_samples_response(&response, &record)
        };
        outcomes.push((request_name.clone(), request_result.map(|_| ())));
        outcomes.push((response_name.clone(), response_result));
        seen.extend([request_name, response_name]);
    }

    // Every fixture file must be accounted for, so a new one is not silently ignored.
    for sub in ["remote-write-1.0", "remote-read"] {
        for name in file_names(&api.join(sub)) {
            let path = format!("{sub}/{name}");
            assert!(seen.contains(&path), "{path}: fixture not checked by this test (add it or list it in NOT_BODIES)");
        }
    }

    let total = outcomes.len();
    let mut passed = 0;
    let mut unexpected = Vec::new();
    for (name, outcome) in &outcomes {
        let skipped = SKIP.iter().any(|(skip, _)| name.ends_with(skip));
        match outcome {
            Ok(()) => passed += 1,
            Err(why) if skipped => println!("  {name}: skipped failure: {why}"),
            Err(why) => unexpected.push(format!("{name}: {why}")),
        }
    }
    println!("conformance remote: {passed} of {total} bodies decoded as recorded");
    assert!(total >= 8, "expected at least 8 bodies, found {total}");
    assert!(unexpected.is_empty(), "bodies not decoded as recorded:\n{}", unexpected.join("\n"));
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check_write_snappy(body: &[u8], record: &Value) -> Result<(), String> {
    expect_eq("compressed_len", body.len() as u64, record["compressed_len"].as_u64().ok_or("no compressed_len")?)?;
    let decoded = remote::decode_write_request(body).map_err(|e| e.to_string())?;
    let expected = write_request_from_json(&record["decoded"])?;
    expect_eq("decoded", &decoded, &expected)?;
    let pb_len = decoded.encoded_len() as u64;
    expect_eq("uncompressed_len", pb_len, record["uncompressed_len"].as_u64().ok_or("no uncompressed_len")?)?;
    // Every series is valid for the model.
    for series in &decoded.timeseries {
        remote::series_labels_from_proto(&series.labels).map_err(|e| e.to_string())?;
    }
    let again = remote::encode_write_request(&decoded).map_err(|e| e.to_string())?;
    expect_eq("re-encoded", &remote::decode_write_request(&again).map_err(|e| e.to_string())?, &decoded)
}

fn check_write_pb(body: &[u8], record: &Value) -> Result<(), String> {
    let decoded: WriteRequest =
        remote::decode_protobuf(body.to_vec(), &DecodeLimits::default()).map_err(|e| e.to_string())?;
    expect_eq("decoded", &decoded, &write_request_from_json(&record["decoded"])?)?;
    // Same field order and packing as Prometheus' gogo encoder: byte-identical.
    expect_eq("re-encoded bytes", &decoded.encode_to_vec()[..], body)
}

/// Checks the request; returns its accepted response types.
fn check_read_request(body: &[u8], record: &Value) -> Result<Vec<ResponseType>, String> {
    let request = remote::decode_read_request(body).map_err(|e| e.to_string())?;
    let recorded: Vec<i32> = record["request_accepted_response_types"]
        .as_array()
        .ok_or("no request_accepted_response_types")?
        .iter()
        .map(|v| v.as_i64().map(|n| n as i32).ok_or("bad response type"))
        .collect::<Result<_, _>>()?;
    expect_eq("accepted_response_types", &request.accepted_response_types, &recorded)?;
    // The fixtures read `up` over the last 60 s.
    expect_eq("queries", request.queries.len(), 1)?;
    let query = &request.queries[0];
    expect_eq("range", query.end_timestamp_ms - query.start_timestamp_ms, 60_000)?;
    let matchers = query.matchers.iter().map(remote::matcher_from_proto).collect::<Result<Vec<_>, _>>();
    let matchers = matchers.map_err(|e| e.to_string())?;
    expect_eq(
        "matchers",
        matchers.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        vec![r#"__name__="up""#.to_owned()],
    )?;
    let again = remote::encode_read_request(&request).map_err(|e| e.to_string())?;
    expect_eq("re-encoded", &remote::decode_read_request(&again).map_err(|e| e.to_string())?, &request)?;
    Ok(request.accepted_response_types().collect())
}

fn check_samples_response(body: &[u8], record: &Value) -> Result<(), String> {
    expect_eq("response_len", body.len() as u64, record["response_len"].as_u64().ok_or("no response_len")?)?;
    let response = remote::decode_read_response(body).map_err(|e| e.to_string())?;
    let decoded = &record["decoded"];
    check_keys(decoded, &["results"])?;
    let results = array(decoded, "results")?
        .iter()
        .map(|result| {
            check_keys(result, &["timeseries"])?;
            Ok(QueryResult {
                timeseries: array(result, "timeseries")?.iter().map(series_from_json).collect::<Result<_, _>>()?,
            })
        })
        .collect::<Result<_, String>>()?;
    expect_eq("decoded", &response, &ReadResponse { results })?;
    let again = remote::encode_read_response(&response).map_err(|e| e.to_string())?;
    expect_eq("re-encoded", &remote::decode_read_response(&again).map_err(|e| e.to_string())?, &response)
}

fn check_streamed_response(body: &[u8], record: &Value) -> Result<(), String> {
    expect_eq("response_len", body.len() as u64, record["response_len"].as_u64().ok_or("no response_len")?)?;
    let recorded = array(record, "frames")?;
    let mut frames = ChunkedFrames::new(body.to_vec(), &DecodeLimits::default());
    let mut decoded_all = Vec::new();
    for (idx, expected) in recorded.iter().enumerate() {
        check_keys(expected, &["len", "crc32c", "decoded"])?;
        let frame = frames.next_frame().ok_or(format!("frame {idx}: missing"))?.map_err(|e| e.to_string())?;
        expect_eq("frame len", frame.data.len() as u64, expected["len"].as_u64().ok_or("no len")?)?;
        expect_eq(
            "frame crc32c",
            format!("{:#010x}", frame.crc32c),
            expected["crc32c"].as_str().unwrap_or("").to_owned(),
        )?;
        let message = frame.decode(&DecodeLimits::default()).map_err(|e| e.to_string())?;
        expect_eq(&format!("frame {idx}"), &message, &chunked_response_from_json(&expected["decoded"])?)?;
        decoded_all.push(message);
    }
    if frames.next_frame().is_some() {
        return Err("more frames than recorded".into());
    }
    // Re-encode the frames: the framing is deterministic, so the body is byte-identical.
    let mut again = Vec::new();
    for message in &decoded_all {
        remote::encode_chunked_frame(message, &mut again);
    }
    expect_eq("re-encoded body", &again[..], body)
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, expected: T) -> Result<(), String> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, recorded {expected:?}"))
    }
}

/// Fails on keys the test does not know, so no recorded field goes unchecked.
fn check_keys(value: &Value, known: &[&str]) -> Result<(), String> {
    let object: &Map<String, Value> = value.as_object().ok_or_else(|| format!("not an object: {value}"))?;
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(format!("unchecked field {key:?} in {value}")),
        None => Ok(()),
    }
}

fn array<'a>(value: &'a Value, key: &str) -> Result<&'a Vec<Value>, String> {
    match value.get(key) {
        Some(Value::Array(items)) => Ok(items),
        None => Ok(const { &Vec::new() }),
        Some(other) => Err(format!("{key}: not an array: {other}")),
    }
}

fn string(value: &Value, key: &str) -> Result<String, String> {
    match value.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        None => Ok(String::new()),
        Some(other) => Err(format!("{key}: not a string: {other}")),
    }
}

/// protojson writes int64 as a string.
fn int64(value: &Value, key: &str) -> Result<i64, String> {
    match value.get(key) {
        Some(Value::String(s)) => s.parse().map_err(|e| format!("{key}: {e}")),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| format!("{key}: {n}")),
        None => Ok(0),
        Some(other) => Err(format!("{key}: not an int64: {other}")),
    }
}

fn write_request_from_json(decoded: &Value) -> Result<WriteRequest, String> {
    check_keys(decoded, &["timeseries"])?;
    let timeseries = array(decoded, "timeseries")?.iter().map(series_from_json).collect::<Result<_, _>>()?;
    Ok(WriteRequest { timeseries, metadata: Vec::new() })
}

fn labels_from_json(value: &Value) -> Result<Vec<Label>, String> {
    array(value, "labels")?
        .iter()
        .map(|label| {
            check_keys(label, &["name", "value"])?;
            Ok(Label::new(string(label, "name")?, string(label, "value")?))
        })
        .collect()
}

fn series_from_json(value: &Value) -> Result<TimeSeries, String> {
    check_keys(value, &["labels", "samples"])?;
    let samples = array(value, "samples")?
        .iter()
        .map(|sample| {
            check_keys(sample, &["value", "timestamp"])?;
            let sample_value = sample.get("value").map_or(Some(0.0), Value::as_f64).ok_or("value: not a number")?;
            Ok(Sample { value: sample_value, timestamp: int64(sample, "timestamp")? })
        })
        .collect::<Result<_, String>>()?;
    Ok(TimeSeries { labels: labels_from_json(value)?, samples, ..Default::default() })
}

fn chunked_response_from_json(value: &Value) -> Result<ChunkedReadResponse, String> {
    check_keys(value, &["chunked_series", "query_index"])?;
    let chunked_series = array(value, "chunked_series")?
        .iter()
        .map(|series| {
            check_keys(series, &["labels", "chunks"])?;
            let chunks = array(series, "chunks")?
                .iter()
                .map(|chunk| {
                    check_keys(chunk, &["min_time_ms", "max_time_ms", "type", "data"])?;
                    let kind = match string(chunk, "type")?.as_str() {
                        "" | "UNKNOWN" => ChunkEncoding::Unknown,
                        "XOR" => ChunkEncoding::Xor,
                        "HISTOGRAM" => ChunkEncoding::Histogram,
                        "FLOAT_HISTOGRAM" => ChunkEncoding::FloatHistogram,
                        other => return Err(format!("unknown chunk type {other}")),
                    };
                    Ok(Chunk {
                        min_time_ms: int64(chunk, "min_time_ms")?,
                        max_time_ms: int64(chunk, "max_time_ms")?,
                        r#type: kind as i32,
                        data: base64_decode(&string(chunk, "data")?)?.into(),
                    })
                })
                .collect::<Result<_, String>>()?;
            Ok(ChunkedSeries { labels: labels_from_json(series)?, chunks })
        })
        .collect::<Result<_, String>>()?;
    Ok(ChunkedReadResponse { chunked_series, query_index: int64(value, "query_index")? })
}

/// Standard base64 with padding, as protojson writes `bytes`.
fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let sextet = |c: u8| -> Result<u32, String> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("bad base64 byte {c:#x}")),
        } as u32)
    };
    let trimmed = text.trim_end_matches('=');
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for &c in trimmed.as_bytes() {
        acc = (acc << 6) | sextet(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

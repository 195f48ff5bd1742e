//! Codec behaviour: limits, errors, and property tests (round trips; random and mutated input
//! never panics).

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::Error;

fn limits(max_decompressed_bytes: u64) -> DecodeLimits {
    DecodeLimits { max_decompressed_bytes, ..DecodeLimits::default() }
}

#[test]
fn snappy_errors() {
    let check = |body: &[u8], limits: DecodeLimits, expected: &str| {
        let got = snappy_decompress(body, &limits).map_err(|e| e.to_string());
        assert_eq!(got.as_deref().map_err(String::as_str), Err(expected), "{body:02x?}");
    };
    let defaults = DecodeLimits::default();
    // Header claiming 4 GiB - 1 in a 21-byte body.
    let mut bomb = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
    bomb.extend_from_slice(&[0; 16]);
    check(&bomb, defaults, "snappy: decoded length 4.0 GiB exceeds limit 32 MiB");
    // Under the limit, but more than 10 bytes could ever expand to.
    check(
        &[0x80, 0x80, 0x04, 0, 0, 0, 0, 0, 0, 0],
        defaults,
        "snappy: corrupt input: header announces 64 KiB but 10 B of compressed input expand to at most 213 B",
    );
    check(&snappy_compress(&[7u8; 2000]).unwrap(), limits(1000), "snappy: decoded length 2.0 KiB exceeds limit 1000 B");
    check(&[], defaults, "snappy: corrupt input (empty)");
    // Prometheus answers 400 to a framed-format body; say what is wrong with it.
    let mut framed = snap::write::FrameEncoder::new(Vec::new());
    std::io::Write::write_all(&mut framed, b"some protobuf").unwrap();
    check(
        &framed.into_inner().unwrap(),
        defaults,
        "snappy: body is in the framed (stream) format, remote write and read use the block format",
    );
    assert!(snappy_decompress(&[0x05, 0x10, b'a'], &defaults).unwrap_err().to_string().starts_with("snappy: "));
}

#[test]
fn snappy_round_trip_and_limit_edge() {
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let body = snappy_compress(&data).unwrap();
    assert_eq!(snappy_decompress(&body, &limits(5000)).unwrap(), data);
    assert!(snappy_decompress(&body, &limits(4999)).is_err());
    // Highly compressible data reaches the format's maximal ratio and is still accepted.
    let zeros = vec![0u8; 1 << 20];
    assert_eq!(snappy_decompress(&snappy_compress(&zeros).unwrap(), &DecodeLimits::default()).unwrap(), zeros);
}

#[test]
fn protobuf_errors() {
    let check = |pb: &[u8], expected_start: &str| {
        let body = snappy_compress(pb).unwrap();
        let err = decode_write_request(&body).unwrap_err().to_string();
        assert!(err.starts_with(expected_start), "{pb:02x?}: {err}");
    };
    check(&[0x0a, 0x10, 0x01], "protobuf: invalid WriteRequest: failed to decode Protobuf message: ");
    // A LabelMatcher name that is not UTF-8.
    assert!(decode_read_request(&snappy_compress(&[0x0a, 0x06, 0x1a, 0x04, 0x12, 0x02, 0xff, 0xfe]).unwrap())
        .unwrap_err()
        .to_string()
        .starts_with("protobuf: invalid ReadRequest: "));
    check(&[0x08], "protobuf: invalid WriteRequest: ");
    assert!(matches!(
        decode_read_request(&snappy_compress(&[0x0a, 0x10]).unwrap()),
        Err(Error::Remote(DecodeError::Protobuf { message: "ReadRequest", .. }))
    ));
}

#[test]
fn unknown_fields_and_histograms_decode() {
    // A series with a native histogram and an unknown field 99 (varint) must decode.
    let histogram = Histogram {
        count: Some(HistogramCount::CountInt(5)),
        sum: 12.5,
        schema: 3,
        zero_threshold: 1e-128,
        zero_count: Some(HistogramZeroCount::ZeroCountInt(1)),
        positive_spans: vec![BucketSpan { offset: -2, length: 2 }],
        positive_deltas: vec![3, -2],
        reset_hint: ResetHint::No as i32,
        timestamp: 1_000,
        ..Default::default()
    };
    let request = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![Label { name: "__name__".into(), value: "h".into() }],
            histograms: vec![histogram],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut pb = request.encode_to_vec();
    pb.extend_from_slice(&[0x98, 0x06, 0x2a]); // field 99, varint 42
    let decoded = decode_write_request(&snappy_compress(&pb).unwrap()).unwrap();
    assert_eq!(decoded, request);
    assert_eq!(decoded.timeseries[0].histograms[0].reset_hint(), ResetHint::No);
}

#[test]
fn stale_nan_bits_survive() {
    let stale = crate::stale_nan();
    let request = WriteRequest {
        timeseries: vec![TimeSeries { samples: vec![Sample { value: stale, timestamp: 5 }], ..Default::default() }],
        ..Default::default()
    };
    let decoded = decode_write_request(&encode_write_request(&request).unwrap()).unwrap();
    assert_eq!(decoded.timeseries[0].samples[0].value.to_bits(), crate::STALE_NAN_BITS);
}

#[test]
fn read_messages_round_trip() {
    let request = ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: 1,
            end_timestamp_ms: 60_001,
            matchers: vec![LabelMatcher { r#type: MatcherType::Re as i32, name: "job".into(), value: "a|b".into() }],
            hints: Some(ReadHints {
                step_ms: 15_000,
                func: "rate".into(),
                grouping: vec!["job".into()],
                by: true,
                ..Default::default()
            }),
        }],
        accepted_response_types: vec![ResponseType::StreamedXorChunks as i32, ResponseType::Samples as i32],
    };
    let decoded = decode_read_request(&encode_read_request(&request).unwrap()).unwrap();
    assert_eq!(decoded, request);
    assert_eq!(
        decoded.accepted_response_types().collect::<Vec<_>>(),
        [ResponseType::StreamedXorChunks, ResponseType::Samples]
    );
    let response = ReadResponse {
        results: vec![QueryResult {
            timeseries: vec![TimeSeries { samples: vec![Sample { value: 2.0, timestamp: 3 }], ..Default::default() }],
        }],
    };
    assert_eq!(decode_read_response(&encode_read_response(&response).unwrap()).unwrap(), response);
}

fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

/// `field` as a length-delimited field holding `body`.
fn nested(field: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![(field << 3) | 2];
    out.extend(varint(body.len() as u64));
    out.extend_from_slice(body);
    out
}

#[test]
fn decoded_size_budget() {
    let defaults = DecodeLimits::default();
    let check = |pb: &[u8], limits: &DecodeLimits, expected: Result<(), &str>| {
        let got = decode_protobuf::<WriteRequest>(pb.to_vec(), limits).map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_owned));
    };
    // 50,000 empty series: 100 KB of wire, 4.8 MB of structs.
    let empty_series = [0x0a, 0x00].repeat(50_000);
    check(
        &empty_series,
        &defaults,
        Err("protobuf: WriteRequest of 97.7 KiB would take about 4.6 MiB to decode, over the limit of 3.1 MiB"),
    );
    // The same under a generous expansion passes, and the absolute limit still applies.
    let generous = DecodeLimits { max_expansion: 1000, ..defaults };
    check(&empty_series, &generous, Ok(()));
    check(
        &empty_series,
        &DecodeLimits { max_decoded_bytes: 1 << 20, ..generous },
        Err("protobuf: WriteRequest of 97.7 KiB would take about 4.6 MiB to decode, over the limit of 1 MiB"),
    );
    // Empty histograms nested in one series, behind an unknown group field that prost skips.
    let mut hidden = vec![(9 << 3) | 3, 0x08, 0x01, (9 << 3) | 4];
    hidden.extend(nested(1, &[0x22, 0x00].repeat(30_000)));
    let err = decode_protobuf::<WriteRequest>(hidden.clone(), &defaults).unwrap_err().to_string();
    assert!(err.starts_with("protobuf: WriteRequest of 58.6 KiB would take about "), "{err}");
    check(&hidden, &DecodeLimits { max_expansion: 1000, ..defaults }, Ok(()));
    // A realistic request stays far from the limits.
    let request = WriteRequest {
        timeseries: (0..2000)
            .map(|idx| TimeSeries {
                labels: vec![
                    Label { name: "__name__".into(), value: "node_cpu_seconds_total".into() },
                    Label::new("cpu", format!("{}", idx % 64)),
                    Label { name: "instance".into(), value: "10.0.0.1:9100".into() },
                    Label { name: "job".into(), value: "node".into() },
                    Label::new("mode", format!("mode{}", idx / 64)),
                ],
                samples: vec![Sample { value: idx as f64, timestamp: 1_700_000_000_000 }],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let pb = request.encode_to_vec();
    let tight = DecodeLimits { max_expansion: 8, max_decoded_bytes: 8 * pb.len() as u64, ..defaults };
    assert_eq!(decode_protobuf::<WriteRequest>(pb, &tight).unwrap(), request);
}

// Strategies. Floats exclude NaN so that `==` can compare round trips (NaN bits are checked
// by `stale_nan_bits_survive`).

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO | prop::num::f64::INFINITE,
        Just(1.0),
        Just(0.0)
    ]
}

fn wire_label() -> impl Strategy<Value = Label> {
    ("[a-z_]{0,8}|.{0,4}", ".{0,12}").prop_map(|(name, value)| Label::new(name, value))
}

fn sample() -> impl Strategy<Value = Sample> {
    (float(), any::<i64>()).prop_map(|(value, timestamp)| Sample { value, timestamp })
}

fn exemplar() -> impl Strategy<Value = Exemplar> {
    (prop::collection::vec(wire_label(), 0..3), float(), any::<i64>()).prop_map(|(labels, value, timestamp)| Exemplar {
        labels,
        value,
        timestamp,
    })
}

fn histogram() -> impl Strategy<Value = Histogram> {
    let span = (any::<i32>(), any::<u32>()).prop_map(|(offset, length)| BucketSpan { offset, length });
    (
        prop::option::of(prop_oneof![
            any::<u64>().prop_map(HistogramCount::CountInt),
            float().prop_map(HistogramCount::CountFloat)
        ]),
        (float(), any::<i32>(), float()),
        prop::option::of(prop_oneof![
            any::<u64>().prop_map(HistogramZeroCount::ZeroCountInt),
            float().prop_map(HistogramZeroCount::ZeroCountFloat)
        ]),
        (
            prop::collection::vec(span.clone(), 0..3),
            prop::collection::vec(any::<i64>(), 0..4),
            prop::collection::vec(float(), 0..3),
        ),
        (
            prop::collection::vec(span, 0..3),
            prop::collection::vec(any::<i64>(), 0..4),
            prop::collection::vec(float(), 0..3),
        ),
        (-2i32..6, any::<i64>(), prop::collection::vec(float(), 0..3)),
    )
        .prop_map(
            |(
                count,
                (sum, schema, zero_threshold),
                zero_count,
                negative,
                positive,
                (reset_hint, timestamp, custom_values),
            )| {
                Histogram {
                    count,
                    sum,
                    schema,
                    zero_threshold,
                    zero_count,
                    negative_spans: negative.0,
                    negative_deltas: negative.1,
                    negative_counts: negative.2,
                    positive_spans: positive.0,
                    positive_deltas: positive.1,
                    positive_counts: positive.2,
                    reset_hint,
                    timestamp,
                    custom_values,
                }
            },
        )
}

fn time_series() -> impl Strategy<Value = TimeSeries> {
    (
        prop::collection::vec(wire_label(), 0..6),
        prop::collection::vec(sample(), 0..4),
        prop::collection::vec(exemplar(), 0..2),
        prop::collection::vec(histogram(), 0..2),
    )
        .prop_map(|(labels, samples, exemplars, histograms)| TimeSeries { labels, samples, exemplars, histograms })
}

fn metadata() -> impl Strategy<Value = MetricMetadata> {
    (-1i32..9, ".{0,10}", ".{0,20}", "[a-z]{0,5}").prop_map(|(r#type, metric_family_name, help, unit)| MetricMetadata {
        r#type,
        metric_family_name,
        help,
        unit,
    })
}

fn write_request() -> impl Strategy<Value = WriteRequest> {
    (prop::collection::vec(time_series(), 0..6), prop::collection::vec(metadata(), 0..3))
        .prop_map(|(timeseries, metadata)| WriteRequest { timeseries, metadata })
}

fn chunked_read_response() -> impl Strategy<Value = ChunkedReadResponse> {
    let chunk = (any::<i64>(), any::<i64>(), 0i32..8, prop::collection::vec(any::<u8>(), 0..40)).prop_map(
        |(min_time_ms, max_time_ms, r#type, data)| Chunk { min_time_ms, max_time_ms, r#type, data: Bytes::from(data) },
    );
    let series = (prop::collection::vec(wire_label(), 0..4), prop::collection::vec(chunk, 0..3))
        .prop_map(|(labels, chunks)| ChunkedSeries { labels, chunks });
    (prop::collection::vec(series, 0..3), any::<i64>())
        .prop_map(|(chunked_series, query_index)| ChunkedReadResponse { chunked_series, query_index })
}

/// Applies `edits` (position, kind, byte) to `data`: overwrite, insert, delete or truncate.
fn mutate(mut data: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(pos, kind, byte) in edits {
        if data.is_empty() {
            data.push(byte);
            continue;
        }
        let pos = pos % data.len();
        match kind % 4 {
            0 => data[pos] = byte,
            1 => data.insert(pos, byte),
            2 => {
                data.remove(pos);
            }
            _ => data.truncate(pos),
        }
    }
    data
}

/// Every decoder on `input`: each must return, with a value or an error.
fn decode_everything(input: &[u8]) {
    let small = DecodeLimits { max_decompressed_bytes: 1 << 16, max_frame_bytes: 1 << 16, ..DecodeLimits::default() };
    let _ = decode_write_request(input);
    let _ = decode_write_request_v2(input);
    let _ = decode_read_request(input);
    let _ = decode_read_response(input);
    let _ = decode_snappy::<WriteRequest>(input, &small);
    let _ = decode_protobuf::<WriteRequest>(Bytes::copy_from_slice(input), &small);
    let _ = decode_protobuf::<v2::Request>(Bytes::copy_from_slice(input), &small);
    let _ = decode_protobuf::<ReadRequest>(Bytes::copy_from_slice(input), &small);
    let _ = decode_protobuf::<ChunkedReadResponse>(Bytes::copy_from_slice(input), &small);
    for frame in ChunkedFrames::new(Bytes::copy_from_slice(input), &small) {
        let _ = frame;
    }
    if let Ok(request) = decode_protobuf::<WriteRequest>(Bytes::copy_from_slice(input), &small) {
        for series in &request.timeseries {
            let _ = series_labels_from_proto(&series.labels);
        }
    }
    if let Ok(request) = decode_protobuf::<ReadRequest>(Bytes::copy_from_slice(input), &small) {
        for matcher in request.queries.iter().flat_map(|q| &q.matchers) {
            let _ = matcher_from_proto(matcher);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn write_request_round_trips(request in write_request()) {
        let body = encode_write_request(&request).unwrap();
        prop_assert_eq!(decode_write_request(&body).unwrap(), request.clone());
        // The uncompressed form too.
        prop_assert_eq!(decode_protobuf::<WriteRequest>(request.encode_to_vec(), &DecodeLimits::default()).unwrap(), request);
    }

    #[test]
    fn chunked_frames_round_trip(messages in prop::collection::vec(chunked_read_response(), 0..4)) {
        let mut body = Vec::new();
        for message in &messages {
            encode_chunked_frame(message, &mut body);
        }
        let decoded: Result<Vec<_>, Error> = ChunkedFrames::new(body, &DecodeLimits::default()).collect();
        prop_assert_eq!(decoded.unwrap(), messages);
    }

    #[test]
    fn model_labels_round_trip(pairs in prop::collection::btree_map("[a-z_]{1,6}", "[a-z]{1,4}", 0..6)) {
        let labels = crate::Labels::from_pairs(pairs);
        prop_assert_eq!(labels_from_proto(&labels_to_proto(&labels)).unwrap(), labels);
    }

    #[test]
    fn random_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..300)) {
        decode_everything(&input);
    }

    #[test]
    fn mutated_bodies_never_panic(
        request in write_request(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        // Mutate the compressed body (exercises snappy) and the protobuf under a valid snappy
        // block (exercises prost).
        let pb = request.encode_to_vec();
        decode_everything(&mutate(snappy_compress(&pb).unwrap(), &edits));
        let mutated_pb = mutate(pb, &edits);
        decode_everything(&mutated_pb);
        decode_everything(&snappy_compress(&mutated_pb).unwrap());
    }

    #[test]
    fn mutated_frames_never_panic(
        messages in prop::collection::vec(chunked_read_response(), 1..3),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let mut body = Vec::new();
        for message in &messages {
            encode_chunked_frame(message, &mut body);
        }
        decode_everything(&mutate(body, &edits));
    }
}

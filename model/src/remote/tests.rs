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

/// One series as both decoders see it: label pairs, samples, exemplar and histogram counts.
type SeriesParts = (Vec<(Vec<u8>, Vec<u8>)>, Vec<(i64, u64)>, usize, usize);

/// `pb` read in place by [`WriteRequestReader`]; `Err` when it fails. Also checks that the
/// label bytes, when contiguous, hold exactly the series' labels.
fn read_in_place(pb: &[u8]) -> Result<Vec<SeriesParts>, String> {
    let mut out = Vec::new();
    for series in WriteRequestReader::new(pb) {
        let series = series.map_err(|e| e.to_string())?;
        let labels: Vec<(Vec<u8>, Vec<u8>)> = series.labels().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        assert_eq!(labels.len(), series.num_labels());
        if let Some(wire) = series.labels_wire() {
            let alone = TimeSeries::decode(wire).expect("label bytes decode alone");
            let again: Vec<(Vec<u8>, Vec<u8>)> =
                alone.labels.iter().map(|l| (l.name.to_vec(), l.value.to_vec())).collect();
            assert_eq!(again, labels, "label bytes hold the labels");
        }
        let samples: Vec<(i64, u64)> = series.samples().map(|s| (s.timestamp, s.value.to_bits())).collect();
        assert_eq!(samples.len(), series.num_samples());
        out.push((labels, samples, series.num_exemplars(), series.num_histograms()));
    }
    Ok(out)
}

/// `pb` decoded by prost into owned messages (no budget check).
fn read_with_prost(pb: &[u8]) -> Result<Vec<SeriesParts>, String> {
    let request = WriteRequest::decode(pb).map_err(|e| e.to_string())?;
    Ok(request
        .timeseries
        .iter()
        .map(|ts| {
            (
                ts.labels.iter().map(|l| (l.name.to_vec(), l.value.to_vec())).collect(),
                ts.samples.iter().map(|s| (s.timestamp, s.value.to_bits())).collect(),
                ts.exemplars.len(),
                ts.histograms.len(),
            )
        })
        .collect())
}

/// Both decoders accept `pb` or both refuse it, and agree on what they read.
fn check_same_as_prost(pb: &[u8]) -> Result<(), TestCaseError> {
    let (ours, theirs) = (read_in_place(pb), read_with_prost(pb));
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{:02x?}", pb),
        (Err(_), Err(_)) => {}
        _ => prop_assert!(false, "{:02x?}: in place {:?}, prost {:?}", pb, ours, theirs),
    }
    Ok(())
}

fn key(field: u32, wire_type: u32) -> Vec<u8> {
    varint(u64::from(field << 3 | wire_type))
}

/// `depth` groups of field `field` nested in each other, empty inside.
fn nested_groups(field: u32, depth: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..depth {
        out.extend(key(field, 3));
    }
    for _ in 0..depth {
        out.extend(key(field, 4));
    }
    out
}

#[test]
fn reader_agrees_with_prost_on_wire_corners() {
    let label = |name: &[u8], value: &[u8]| {
        let mut body = key(1, 2);
        body.extend(varint(name.len() as u64));
        body.extend_from_slice(name);
        body.extend(key(2, 2));
        body.extend(varint(value.len() as u64));
        body.extend_from_slice(value);
        nested(1, &body)
    };
    let series = |parts: &[Vec<u8>]| nested(1, &parts.concat());
    let sample = nested(2, &[0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x02]);
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        series(&[label(b"__name__", b"up"), sample.clone()]),
        // Labels interleaved with samples: both kept in order, no contiguous label bytes.
        series(&[label(b"a", b"1"), sample.clone(), label(b"b", b"2")]),
        // A label given a name twice: the last wins.
        series(&[nested(1, &[0x0a, 0x01, b'x', 0x0a, 0x01, b'y', 0x12, 0x01, b'v'])]),
        // Unknown fields of every wire type at every level.
        [
            series(&[label(b"a", b"1"), vec![0xa0, 0x06, 0x05], vec![0xa5, 0x06, 1, 2, 3, 4]]),
            vec![0x29, 0, 0, 0, 0, 0, 0, 0, 0],
        ]
        .concat(),
        // Wrong wire types for known fields.
        vec![0x08, 0x01],
        series(&[vec![0x10, 0x01]]),
        series(&[nested(1, &[0x08, 0x01])]),
        series(&[nested(2, &[0x0a, 0x00])]),
        series(&[nested(2, &[0x11, 0, 0, 0, 0, 0, 0, 0, 0])]),
        // Metadata whose name is not UTF-8, and whose type is a string.
        nested(3, &[0x12, 0x02, 0xff, 0xfe]),
        nested(3, &[0x0a, 0x00]),
        // A histogram with a packed double field of 7 bytes, and of 8.
        series(&[nested(4, &[0x52, 0x07, 0, 0, 0, 0, 0, 0, 0])]),
        series(&[nested(4, &[0x52, 0x08, 0, 0, 0, 0, 0, 0, 0, 0])]),
        series(&[nested(4, &[0x4a, 0x02, 0x80, 0x01, 0x48, 0x05])]),
        series(&[nested(4, &[0x4a, 0x01, 0x80])]),
        // An exemplar label with a wrong type.
        series(&[nested(3, &nested(1, &[0x08, 0x00]))]),
        // Key errors: tag 0, wire types 6 and 7, a lone end-group, a key over 32 bits.
        vec![0x00],
        vec![0x0e],
        vec![0x0f],
        vec![0x0c],
        vec![0x80, 0x80, 0x80, 0x80, 0x10],
        // A ten-byte varint whose last byte overflows.
        [vec![0x28], vec![0xff; 9], vec![0x02]].concat(),
        [vec![0x28], vec![0xff; 9], vec![0x01]].concat(),
        // A group ended by the wrong field, and one never ended.
        vec![0x2b, 0x34],
        vec![0x2b, 0x08, 0x01],
        // A length running past the end of the series but not of the body.
        [nested(1, &[0x0a, 0x05, 0x0a, 0x01]), vec![0; 8]].concat(),
    ];
    // Groups nested around prost's recursion limit, at the top level, in a series and in a label.
    for depth in [1, 97, 98, 99, 100, 101] {
        cases.push(nested_groups(5, depth));
        cases.push(series(&[nested_groups(5, depth)]));
        cases.push(series(&[nested(1, &nested_groups(5, depth))]));
        cases.push(series(&[nested(4, &nested(8, &nested_groups(5, depth)))]));
    }
    for pb in &cases {
        check_same_as_prost(pb).unwrap();
    }
    // Corners above where the outcome matters, spelled out.
    let ok = |pb: &[u8]| read_in_place(pb).is_ok();
    assert!(ok(&cases[4]) && !ok(&cases[5]) && !ok(&cases[10]) && !ok(&cases[12]) && ok(&cases[13]));
    // The deepest groups accepted: 100 at the top, one less per message level.
    let deepest = |wrap: &dyn Fn(Vec<u8>) -> Vec<u8>| (1..=101).filter(|&d| ok(&wrap(nested_groups(5, d)))).max();
    assert_eq!(deepest(&|g| g), Some(100));
    assert_eq!(deepest(&|g| series(&[g])), Some(99));
    assert_eq!(deepest(&|g| series(&[nested(1, &g)])), Some(98));
    assert_eq!(deepest(&|g| series(&[nested(4, &nested(8, &g))])), Some(97));
    let interleaved = WriteRequestReader::new(&cases[2]).next().unwrap().unwrap();
    assert_eq!(interleaved.labels_wire(), None);
    assert_eq!(interleaved.num_labels(), 2);
    let plain = WriteRequestReader::new(&cases[1]).next().unwrap().unwrap();
    assert_eq!(plain.labels_wire(), Some(&label(b"__name__", b"up")[..]));
    let err = WriteRequestReader::new(&[0x0a, 0x05, 0x0a]).next().unwrap().unwrap_err();
    assert_eq!(err.to_string(), "protobuf: invalid WriteRequest: at byte 2: buffer underflow");
    // After an error, the reader ends.
    let mut reader = WriteRequestReader::new(&[0x08, 0x01, 0x0a, 0x00]);
    assert!(reader.next().unwrap().is_err());
    assert!(reader.next().is_none());
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
    for series in WriteRequestReader::new(input) {
        let Ok(series) = series else { break };
        let _ = (series.labels().count(), series.samples().count(), series.labels_wire());
    }
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
    fn reader_reads_what_prost_decodes(request in write_request()) {
        let pb = request.encode_to_vec();
        prop_assert!(read_in_place(&pb).is_ok());
        check_same_as_prost(&pb)?;
    }

    #[test]
    fn reader_agrees_with_prost_on_mutated_bodies(
        request in write_request(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        check_same_as_prost(&mutate(request.encode_to_vec(), &edits))?;
    }

    #[test]
    fn reader_agrees_with_prost_on_random_bytes(input in prop::collection::vec(any::<u8>(), 0..300)) {
        check_same_as_prost(&input)?;
    }

    #[test]
    fn decompress_into_reuses_and_matches(data in prop::collection::vec(any::<u8>(), 0..3000), junk in prop::collection::vec(any::<u8>(), 0..100)) {
        let body = snappy_compress(&data).unwrap();
        let mut out = junk;
        snappy_decompress_into(&body, &DecodeLimits::default(), &mut out).unwrap();
        prop_assert_eq!(&out, &data);
        prop_assert!(snappy_decompress_into(&body[..body.len() / 2], &DecodeLimits::default(), &mut out).is_err() || data.len() < 2);
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

//! Memory of the remote-write/read decoders is bounded by their input: a counting allocator
//! records the peak bytes live on the decoding thread while random, mutated and adversarial
//! bodies are decoded, and the peak must stay within a fixed multiple of the input size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use sextant_model::remote::{self, ChunkedFrames, DecodeLimits, Message, ReadRequest, WriteRequest};

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + size;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn note_free(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(size)));
}

// SAFETY: every call is forwarded to `System` unchanged; the bookkeeping only touches
// const-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc(new_size);
        note_free(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak bytes allocated on this thread while `f` runs, above what was live before.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    f();
    PEAK.with(Cell::get) - base
}

/// The bound asserted, in terms of the input's *expanded* size (the input, or the size its
/// snappy header announces when that is within the limit): the decompressed buffer, the copies
/// made here, and up to about twice the decoded-size budget of `DecodeLimits` (32× plus
/// 64 KiB by default) while vectors grow.
const FACTOR: usize = 100;
const SLACK: usize = 256 << 10;

fn expanded_len(input: &[u8]) -> usize {
    let announced = snap::raw::decompress_len(input).unwrap_or(0) as u64;
    let announced = if announced <= DecodeLimits::DEFAULT_MAX_DECOMPRESSED_BYTES { announced as usize } else { 0 };
    input.len().max(announced)
}

fn decode_all(input: &[u8]) {
    let limits = DecodeLimits::default();
    let _ = remote::decode_write_request(input);
    let _ = remote::decode_write_request_v2(input);
    let _ = remote::decode_read_request(input);
    let _ = remote::decode_read_response(input);
    let _ = remote::decode_protobuf::<WriteRequest>(input.to_vec(), &limits);
    let _ = remote::decode_protobuf::<ReadRequest>(input.to_vec(), &limits);
    let _ = remote::decode_protobuf::<remote::v2::Request>(input.to_vec(), &limits);
    for frame in ChunkedFrames::new(input.to_vec(), &limits) {
        let _ = frame;
    }
}

fn check_bounded(input: &[u8]) -> Result<usize, TestCaseError> {
    let peak = peak_during(|| decode_all(input));
    let bound = FACTOR * expanded_len(input) + SLACK;
    prop_assert!(peak <= bound, "{} input bytes used {} bytes at peak (bound {})", input.len(), peak, bound);
    Ok(peak)
}

#[test]
fn adversarial_bodies() {
    // Empty sub-messages repeated: the largest amplification the messages allow.
    let empty_series = [0x0a, 0x00].repeat(20_000); // WriteRequest.timeseries
    let mut empty_histograms = vec![0x0a];
    let inner = [0x22, 0x00].repeat(20_000); // TimeSeries.histograms
    push_varint(&mut empty_histograms, inner.len() as u64);
    empty_histograms.extend_from_slice(&inner);
    let packed_deltas = {
        let mut histogram = vec![0x62]; // Histogram.positive_deltas, packed sint64
        let deltas = vec![0x00; 40_000];
        push_varint(&mut histogram, deltas.len() as u64);
        histogram.extend_from_slice(&deltas);
        let mut series = vec![0x22];
        push_varint(&mut series, histogram.len() as u64);
        series.extend_from_slice(&histogram);
        let mut request = vec![0x0a];
        push_varint(&mut request, series.len() as u64);
        request.extend_from_slice(&series);
        request
    };
    // With the default limits these are refused before prost allocates; the packed deltas
    // (8 bytes per wire byte) are within them and decode.
    for pb in [empty_series, empty_histograms, packed_deltas] {
        let peak = check_bounded(&pb).unwrap();
        println!("protobuf {} bytes: peak {peak} bytes ({:.0}x)", pb.len(), peak as f64 / pb.len() as f64);
        let body = remote::snappy_compress(&pb).unwrap();
        let peak = check_bounded(&body).unwrap();
        println!("snappy {} bytes: peak {peak} bytes ({:.0}x)", body.len(), peak as f64 / body.len() as f64);
    }
    // A snappy header announcing the limit in a tiny body allocates nothing large.
    let mut bomb = Vec::new();
    push_varint(&mut bomb, DecodeLimits::DEFAULT_MAX_DECOMPRESSED_BYTES);
    bomb.extend_from_slice(&[0; 8]);
    let peak = peak_during(|| decode_all(&bomb));
    assert!(peak < SLACK, "snappy bomb allocated {peak} bytes");
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn sample_body() -> Vec<u8> {
    let series = (0..20)
        .map(|idx| remote::TimeSeries {
            labels: vec![
                remote::Label::new("__name__", format!("metric_{idx}")),
                remote::Label { name: "job".into(), value: "node".into() },
            ],
            samples: vec![remote::Sample { value: idx as f64, timestamp: 1_700_000_000_000 + idx }],
            ..Default::default()
        })
        .collect();
    WriteRequest { timeseries: series, metadata: Vec::new() }.encode_to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_input_memory_is_bounded(input in prop::collection::vec(any::<u8>(), 0..2000)) {
        check_bounded(&input)?;
    }

    #[test]
    fn mutated_input_memory_is_bounded(
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        compress in any::<bool>(),
    ) {
        let mut pb = sample_body();
        for (pos, byte) in edits {
            let pos = pos % pb.len();
            pb[pos] = byte;
        }
        let input = if compress { remote::snappy_compress(&pb).unwrap() } else { pb };
        check_bounded(&input)?;
    }
}

/// Reads every series of `pb` in place, with its labels and samples.
fn read_in_place(pb: &[u8]) -> usize {
    let mut seen = 0;
    for series in remote::WriteRequestReader::new(pb) {
        let Ok(series) = series else { break };
        seen += series.labels().count() + series.samples().count() + series.labels_wire().map_or(0, <[u8]>::len);
    }
    seen
}

#[test]
fn reading_in_place_allocates_nothing() {
    let mut empty_histograms = vec![0x0a];
    let inner = [0x22, 0x00].repeat(20_000);
    push_varint(&mut empty_histograms, inner.len() as u64);
    empty_histograms.extend_from_slice(&inner);
    for pb in [sample_body(), [0x0a, 0x00].repeat(20_000), empty_histograms] {
        assert_eq!(
            peak_during(|| {
                read_in_place(&pb);
            }),
            0,
            "{} bytes",
            pb.len()
        );
    }
    // 20 series of 2 labels and 1 sample; label bytes 35 a series (36 from metric_10 on).
    assert_eq!(read_in_place(&sample_body()), 20 * 3 + 10 * 35 + 10 * 36);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Only a refused body allocates: its error message.
    #[test]
    fn reading_mutated_bodies_in_place_allocates_only_errors(
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let mut pb = sample_body();
        for (at, byte) in &edits {
            let i = at % pb.len();
            pb[i] ^= byte;
        }
        let peak = peak_during(|| {
            read_in_place(&pb);
        });
        let refused = remote::WriteRequestReader::new(&pb).any(|s| s.is_err());
        prop_assert!(peak == 0 || (refused && peak < 1024), "peak {} bytes, refused {}", peak, refused);
    }
}

//! XOR chunk encode and decode, ns/sample; and head-chunk bytes/sample on `gen_dataset.py`
//! data (printed, compare with Prometheus' ≈ 1.6 on the same data).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_tsdb::{Head, HeadOptions, XorChunk, XorIterator};

/// 120 samples like a node exporter counter: 15 s apart with a little jitter, values growing
/// by varying amounts with two decimals.
fn samples() -> Vec<(i64, f64)> {
    let mut seed = 42u64;
    let mut v = 1_234_567.25;
    (0..120)
        .map(|i| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            v += ((seed >> 40) % 5000) as f64 / 100.0;
            (1_700_000_000_000 + i * 15_000 + ((seed >> 20) % 3) as i64, v)
        })
        .collect()
}

fn encode_decode(c: &mut Criterion) {
    let data = samples();
    let mut group = c.benchmark_group("xor");
    group.throughput(Throughput::Elements(data.len() as u64));
    group.bench_function("encode_120", |b| {
        b.iter(|| {
            let mut chunk = XorChunk::with_capacity(256);
            for &(t, v) in &data {
                chunk.append(t, v);
            }
            chunk
        })
    });
    let mut chunk = XorChunk::new();
    for &(t, v) in &data {
        chunk.append(t, v);
    }
    group.bench_function("optimize_120", |b| b.iter(|| chunk.optimized()));
    group.bench_function("decode_120", |b| {
        b.iter(|| {
            let mut it = XorIterator::new(chunk.bytes());
            let mut sum = 0.0;
            while it.next_sample() {
                sum += it.at().1;
            }
            sum
        })
    });
    group.finish();
}

/// Bytes per sample of head chunks on `gen_dataset.py` data (10 hosts × 6 h at 15 s), with
/// the default options, with Prometheus' own window choice, and with 240-sample chunks.
fn gen_dataset_bytes_per_sample() {
    let Some(series) = sextant_benches::gen_dataset(10, 1440) else {
        println!("tsdb_chunks: gen_dataset.py or python3 not found, bytes/sample not measured");
        return;
    };
    let variants = [
        ("default (120 samples, full chunks packed when smaller than XOR)", HeadOptions::default()),
        (
            "120 samples, packed or XOR with optimized windows",
            HeadOptions { optimize_closed_chunks: true, ..HeadOptions::default() },
        ),
        (
            "240 samples, packed or XOR with optimized windows",
            HeadOptions { samples_per_chunk: 240, optimize_closed_chunks: true, ..HeadOptions::default() },
        ),
    ];
    for (name, opts) in variants {
        let head = Head::new(opts);
        for (labels, samples) in &series {
            let mut app = head.appender();
            for &(t, v) in samples {
                app.append_ref(None, labels, t, v).expect("generated data is in order");
            }
            app.commit_batch().expect("no WAL");
        }
        let (bytes, n) = head.chunk_bytes_and_samples();
        println!(
            "tsdb_chunks: gen_dataset.py 10 hosts x 1440 scrapes, {name}: {} series, {n} samples, {bytes} chunk bytes, {:.3} bytes/sample",
            series.len(),
            bytes as f64 / n as f64
        );
    }
}

fn benches(c: &mut Criterion) {
    gen_dataset_bytes_per_sample();
    encode_decode(c);
}

criterion_group!(chunks, benches);
criterion_main!(chunks);

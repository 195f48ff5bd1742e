//! Persisted blocks: write throughput (encode + zstd + index, samples/s), decode throughput of a
//! full block scan through `Block::series_iter` (samples/s), and bytes/sample of the block
//! (printed) on node-exporter-like series: a third constant, a third noisy counters, a third
//! random-walk gauges, 15 s apart.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_model::Labels;
use sextant_tsdb::{write_block, Block, SeriesData};

const SERIES: usize = 600;
const SAMPLES: i64 = 480; // 2 h at 15 s

fn data() -> Vec<SeriesData> {
    let mut seed = 42u64;
    let mut rand = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut out: Vec<SeriesData> = (0..SERIES)
        .map(|s| {
            let labels = Labels::from_pairs([
                ("__name__", format!("metric_{}", s % 40).as_str()),
                ("instance", format!("host-{:04}:9100", s / 40).as_str()),
                ("job", "node"),
            ]);
            let mut v = (rand() % 100_000) as f64;
            let samples = (0..SAMPLES)
                .map(|i| {
                    match s % 3 {
                        0 => {}
                        1 => v += (rand() % 3000) as f64,
                        _ => {
                            if rand() % 10 < 7 {
                                v += (rand() % 41) as f64 - 20.0;
                            }
                        }
                    }
                    (1_700_000_000_000 + i * 15_000, v)
                })
                .collect();
            (labels, samples)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn blocks(c: &mut Criterion) {
    let data = data();
    let samples = SERIES as u64 * SAMPLES as u64;
    let dir = tempfile::tempdir().unwrap();
    let meta = write_block(dir.path(), &data, 1, Vec::new()).unwrap();
    let block = Block::open(&dir.path().join(&meta.ulid)).unwrap();
    println!(
        "block: {samples} samples, chunks {:.3} B/sample, index {:.3} B/sample",
        block.chunk_bytes() as f64 / samples as f64,
        block.index_bytes() as f64 / samples as f64
    );
    let mut group = c.benchmark_group("block");
    group.sample_size(10);
    group.throughput(Throughput::Elements(samples));
    group.bench_function("write", |b| {
        b.iter(|| {
            let out = tempfile::tempdir().unwrap();
            write_block(out.path(), &data, 1, Vec::new()).unwrap()
        })
    });
    group.bench_function("decode_all", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for series in block.series_iter(&[], i64::MIN, i64::MAX) {
                sum += series.unwrap().1.iter().map(|s| s.1).sum::<f64>();
            }
            sum
        })
    });
    group.finish();
}

criterion_group!(benches, blocks);
criterion_main!(benches);

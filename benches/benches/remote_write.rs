//! Remote-write decode throughput: what the `/api/v1/write` receiver does per request.
//!
//! - `shard_2000x1`: a generated request shaped like one Prometheus queue shard batch
//!   (2000 series × 1 sample, node-exporter-like label sets, `max_samples_per_send` 2000);
//! - `prometheus_7series`: the real 7-series body Prometheus 2.42 sent
//!   (`../shared/conformance/api/remote-write-1.0`, read at run time; skipped without it).
//!
//! Throughput is reported per sample (`decode`) and per body byte (`decode_bytes`, the
//! compressed HTTP body); `stages` splits the snappy, protobuf and label-conversion costs.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sextant_model::remote::{self, DecodeLimits, Label, Message, Sample, TimeSeries, WriteRequest};

const MODES: [&str; 8] = ["idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"];

/// 2000 series of one sample each, sorted labels with external labels appended as Prometheus
/// does: a mix of per-CPU counters and filesystem/network gauges from 4 instances.
fn shard_batch() -> WriteRequest {
    let timeseries = (0..2000)
        .map(|idx| {
            let instance = format!("10.0.{}.{}:9100", idx % 4, 10 + idx % 4);
            let mut labels = if idx % 2 == 0 {
                vec![
                    ("__name__", "node_cpu_seconds_total".to_owned()),
                    ("cluster", "edge-a".to_owned()),
                    ("cpu", (idx / 16 % 64).to_string()),
                    ("instance", instance),
                    ("job", "node".to_owned()),
                    ("mode", MODES[idx / 2 % MODES.len()].to_owned()),
                ]
            } else {
                vec![
                    ("__name__", "node_filesystem_avail_bytes".to_owned()),
                    ("cluster", "edge-a".to_owned()),
                    ("device", format!("/dev/sd{}", (b'a' + (idx / 2 % 8) as u8) as char)),
                    ("fstype", "ext4".to_owned()),
                    ("instance", instance),
                    ("job", "node".to_owned()),
                    ("mountpoint", format!("/srv/volume{}", idx / 2 % 250)),
                ]
            };
            labels.sort_by(|a, b| a.0.cmp(b.0));
            TimeSeries {
                labels: labels.into_iter().map(|(name, value)| Label::new(name, value)).collect(),
                samples: vec![Sample {
                    value: (idx as f64) * 1234.5678,
                    timestamp: 1_795_318_529_354 + idx as i64 % 15,
                }],
                ..Default::default()
            }
        })
        .collect();
    WriteRequest { timeseries, metadata: Vec::new() }
}

fn shared_body() -> Option<Vec<u8>> {
    let shared = std::env::var_os("SEXTANT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    std::fs::read(shared.join("conformance/api/remote-write-1.0/prometheus-2.42-7series.snappy.bin")).ok()
}

fn n_samples(request: &WriteRequest) -> u64 {
    request.timeseries.iter().map(|s| s.samples.len() as u64).sum()
}

/// What a receiver does: decode, then turn every series' labels into model labels.
fn decode_and_convert(body: &[u8]) -> usize {
    let request = remote::decode_write_request(body).expect("valid body");
    let mut n_labels = 0;
    for series in &request.timeseries {
        n_labels += remote::series_labels_from_proto(&series.labels).expect("valid labels").len();
    }
    n_labels
}

fn bench(c: &mut Criterion) {
    let shard = shard_batch();
    let mut bodies = vec![("shard_2000x1", remote::encode_write_request(&shard).expect("encodes"))];
    match shared_body() {
        Some(body) => bodies.push(("prometheus_7series", body)),
        None => eprintln!("remote_write: ../shared not found, prometheus_7series skipped"),
    }

    let mut group = c.benchmark_group("remote_write/decode");
    for (name, body) in &bodies {
        let request = remote::decode_write_request(body).expect("valid body");
        group.throughput(Throughput::Elements(n_samples(&request)));
        group.bench_with_input(BenchmarkId::from_parameter(name), body, |b, body| {
            b.iter(|| remote::decode_write_request(black_box(body)).expect("valid body"))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("remote_write/decode_bytes");
    for (name, body) in &bodies {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), body, |b, body| {
            b.iter(|| remote::decode_write_request(black_box(body)).expect("valid body"))
        });
    }
    group.finish();

    let (shard_name, shard_body) = &bodies[0];
    let limits = DecodeLimits::default();
    let pb = remote::snappy_decompress(shard_body, &limits).expect("valid snappy");
    let samples = n_samples(&shard);
    let mut group = c.benchmark_group("remote_write/stages");
    group.throughput(Throughput::Elements(samples));
    group.bench_function(BenchmarkId::new("snappy", shard_name), |b| {
        b.iter(|| remote::snappy_decompress(black_box(shard_body), &limits).expect("valid snappy"))
    });
    group.bench_function(BenchmarkId::new("protobuf", shard_name), |b| {
        b.iter(|| remote::decode_protobuf::<WriteRequest>(black_box(pb.clone()), &limits).expect("valid protobuf"))
    });
    group.bench_function(BenchmarkId::new("decode_and_labels", shard_name), |b| {
        b.iter(|| decode_and_convert(black_box(shard_body)))
    });
    group.bench_function(BenchmarkId::new("encode", shard_name), |b| {
        b.iter(|| remote::encode_write_request(black_box(&shard)).expect("encodes"))
    });
    group.finish();

    eprintln!(
        "remote_write: {shard_name} is {} bytes of snappy, {} bytes of protobuf ({} bytes encoded)",
        shard_body.len(),
        pb.len(),
        shard.encoded_len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);

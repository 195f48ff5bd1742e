//! The node exporter's scrape: gathering every default collector over this host's /proc and
//! /sys and encoding the result, as one `/metrics` request does (without HTTP).
//! Compare with node_exporter by CPU time per scrape (see the exporters crate's report).

use criterion::{criterion_group, criterion_main, Criterion};
use sextant_exporters::{blocking, Format, NodeConfig, Registry, RegistryConfig};

fn bench_node_scrape(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let registry = NodeConfig::from_args(Vec::<String>::new()).unwrap().registry().unwrap();
    c.bench_function("node_scrape_text", |b| b.iter(|| runtime.block_on(registry.encode(Format::Text))));

    // Encoding alone: the families of one node scrape, handed back unchanged.
    let families = runtime.block_on(registry.gather());
    let mut replay = Registry::new(RegistryConfig { process_metrics: false, ..Default::default() });
    replay.register(blocking("replay", move || Ok(families.clone())));
    c.bench_function("node_encode_text", |b| b.iter(|| runtime.block_on(replay.encode(Format::Text))));
    c.bench_function("node_encode_openmetrics", |b| b.iter(|| runtime.block_on(replay.encode(Format::OpenMetrics))));
}

criterion_group!(benches, bench_node_scrape);
criterion_main!(benches);

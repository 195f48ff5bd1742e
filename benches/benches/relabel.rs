//! Metric relabeling over a node-exporter-like scrape: the per-sample cost a scrape pays for
//! `metric_relabel_configs`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_model::Labels;
use sextant_scrape::{relabel, RelabelConfig};

const RULES: &str = r#"
- {source_labels: [__name__], regex: 'go_gc_.*|go_memstats_.*', action: drop}
- {regex: 'tmp_.*', action: labeldrop}
- {source_labels: [instance], regex: '([^:]+):\d+', target_label: host, replacement: '$1'}
- {source_labels: [__name__, device], separator: '@', regex: 'node_disk_.*@(sd[a-z]+)', target_label: disk, replacement: '${1}'}
- {source_labels: [host], modulus: 4, target_label: shard, action: hashmod}
"#;

fn series() -> Vec<Labels> {
    let names = [
        "node_cpu_seconds_total",
        "node_disk_read_bytes_total",
        "go_gc_duration_seconds",
        "node_network_receive_bytes_total",
    ];
    (0..1000)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", names[i % names.len()].to_string()),
                ("instance", format!("host-{}:9100", i % 10)),
                ("job", "node".to_string()),
                ("device", format!("sd{}", (b'a' + (i % 5) as u8) as char)),
                ("cpu", (i % 8).to_string()),
                ("tmp_scratch", "x".to_string()),
            ])
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rules: Vec<RelabelConfig> = serde_yaml_ng::from_str(RULES).expect("rules parse");
    let input = series();
    let mut group = c.benchmark_group("relabel");
    group.throughput(Throughput::Elements(input.len() as u64));
    group.bench_function("metric_relabel_5_rules_1000_series", |b| {
        b.iter(|| input.iter().filter_map(|l| relabel(l, &rules)).count())
    });
    let keep_all: Vec<RelabelConfig> =
        serde_yaml_ng::from_str("- {source_labels: [__name__], regex: 'nothing_.*', action: drop}").expect("parse");
    group.bench_function("single_drop_rule_1000_series", |b| {
        b.iter(|| input.iter().filter_map(|l| relabel(l, &keep_all)).count())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

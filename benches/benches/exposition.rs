//! Exposition parse throughput (MB/s and samples/s): the node exporter scrape from
//! `../shared/bench`, Prometheus' `promtestdata.txt` (the input of its `BenchmarkParse`) and a
//! ~10 MB body generated here, each in the text format and OpenMetrics.
//!
//! `parse` walks every entry (what a scrape loop does when its series cache hits);
//! `parse+labels` also builds `Labels` for every series (every series new); `encode` writes
//! the parsed families back.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sextant_model::exposition::{encode, parse_families, Entry, Format, Parser};

fn shared_file(rel: &str) -> Option<Vec<u8>> {
    let dir = match std::env::var_os("SEXTANT_SHARED") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    std::fs::read(dir.join(rel)).ok()
}

/// Series-heavy text exposition of at least `target` bytes: counters with several labels,
/// gauges, histograms and summaries, shaped like node and application exporters.
fn generate(target: usize) -> String {
    let mut out = String::with_capacity(target + 4096);
    let mut family = 0;
    while out.len() < target {
        let name = format!("app_family_{family}");
        match family % 4 {
            0 => {
                let _ = writeln!(
                    out,
                    "# HELP {name}_total Requests handled, by method and code.\n# TYPE {name}_total counter"
                );
                for i in 0..40 {
                    let _ = writeln!(
                        out,
                        "{name}_total{{instance=\"host-{}.example.org:9100\",job=\"app\",method=\"{}\",code=\"{}\"}} {}",
                        i % 7,
                        ["GET", "POST", "PUT", "DELETE"][i % 4],
                        [200, 404, 500][i % 3],
                        1_000_003 * (i + 1) + family
                    );
                }
            }
            1 => {
                let _ = writeln!(out, "# HELP {name} Current value of something.\n# TYPE {name} gauge");
                for i in 0..30 {
                    let _ = writeln!(out, "{name}{{cpu=\"{i}\",mode=\"idle\"}} {}", 12345.678 + i as f64 * 0.37);
                }
            }
            2 => {
                let _ = writeln!(out, "# HELP {name}_seconds Latency.\n# TYPE {name}_seconds histogram");
                for handler in ["/api", "/metrics", "/health"] {
                    let mut cumulative = 0;
                    for le in ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"] {
                        cumulative += 17;
                        let _ =
                            writeln!(out, "{name}_seconds_bucket{{handler=\"{handler}\",le=\"{le}\"}} {cumulative}");
                    }
                    let _ = writeln!(out, "{name}_seconds_sum{{handler=\"{handler}\"}} 1.2345e+03");
                    let _ = writeln!(out, "{name}_seconds_count{{handler=\"{handler}\"}} {cumulative}");
                }
            }
            _ => {
                let _ = writeln!(out, "# HELP {name} GC pauses.\n# TYPE {name} summary");
                for q in ["0", "0.25", "0.5", "0.75", "1"] {
                    let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} 4.9351e-05");
                }
                let _ = writeln!(out, "{name}_sum 0.012139815\n{name}_count 99");
            }
        }
        family += 1;
    }
    out
}

fn count_samples(input: &[u8], format: Format) -> u64 {
    Parser::new(input, format).filter(|e| matches!(e, Ok(Entry::Series(_)))).count() as u64
}

fn parse_only(input: &[u8], format: Format) -> f64 {
    let mut sum = 0.0;
    for entry in Parser::new(input, format) {
        if let Ok(Entry::Series(s)) = entry {
            sum += s.value() + s.series().len() as f64;
        }
    }
    sum
}

fn parse_with_labels(input: &[u8], format: Format) -> usize {
    let mut n = 0;
    for entry in Parser::new(input, format) {
        if let Ok(Entry::Series(s)) = entry {
            n += s.to_labels().map(|l| l.len()).unwrap_or(0);
        }
    }
    n
}

fn bench_input(c: &mut Criterion, name: &str, text: &[u8]) {
    let families = parse_families(text, Format::Text).expect("bench input parses");
    let om = encode(&families, Format::OpenMetrics);
    let inputs = [(Format::Text, "text", text), (Format::OpenMetrics, "openmetrics", om.as_bytes())];

    let mut group = c.benchmark_group(format!("exposition_bytes/{name}"));
    for (format, label, input) in inputs {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::new("parse", label), input, |b, i| {
            b.iter(|| black_box(parse_only(i, format)))
        });
        group.bench_with_input(BenchmarkId::new("parse+labels", label), input, |b, i| {
            b.iter(|| black_box(parse_with_labels(i, format)))
        });
    }
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("encode/text", |b| b.iter(|| black_box(encode(&families, Format::Text))));
    group.finish();

    let mut group = c.benchmark_group(format!("exposition_samples/{name}"));
    for (format, label, input) in inputs {
        group.throughput(Throughput::Elements(count_samples(input, format)));
        group.bench_with_input(BenchmarkId::new("parse", label), input, |b, i| {
            b.iter(|| black_box(parse_only(i, format)))
        });
    }
    group.finish();
}

fn exposition(c: &mut Criterion) {
    match shared_file("bench/node_exporter_1.5.0_sample.prom") {
        Some(node) => bench_input(c, "node_exporter", &node),
        None => println!(
            "exposition: ../shared/bench/node_exporter_1.5.0_sample.prom not found, node exporter group skipped"
        ),
    }
    // Prometheus' own `BenchmarkParse` input (410 samples), for ns/sample next to Go's figures.
    match shared_file("conformance/exposition/prometheus-v3.0.0/promtestdata.txt") {
        Some(data) => bench_input(c, "promtestdata", &data),
        None => println!("exposition: promtestdata.txt not found, group skipped"),
    }
    // `cargo test --all-targets` runs each bench once in a debug build (no `--bench`): a
    // smaller body keeps that quick.
    let megabytes = if std::env::args().any(|a| a == "--bench") { 10 } else { 1 };
    let generated = generate(megabytes << 20);
    bench_input(c, &format!("generated_{megabytes}MB"), generated.as_bytes());
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = exposition
}
criterion_main!(benches);

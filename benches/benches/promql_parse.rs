//! PromQL parse speed: Sextant's parser against the `promql-parser` crate on the same inputs
//! in the same run. Inputs: the expressions of real Grafana dashboards
//! (`../shared/exporters/*-exprs.txt`, Grafana variables substituted as Grafana would before
//! sending: `$__rate_interval` → `1m`, other `$var` → `x`) and `../shared/bench/queries.txt`;
//! a small built-in set when `../shared` is absent. Only inputs both parsers accept are timed.
//!
//! Besides criterion's report, prints `promql parse: sextant N ns/query, promql-parser M
//! ns/query, ratio R`. Note: Sextant caches compiled regex matchers across parses (as
//! Prometheus does); `promql-parser` compiles them on every parse.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use criterion::{criterion_group, Criterion, Throughput};

const BUILTIN: &[&str] = &[
    "node_load1",
    "rate(node_network_receive_bytes_total[5m])",
    "sum by (instance) (rate(node_cpu_seconds_total{mode!=\"idle\"}[5m]))",
    "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100",
    "count by (__name__) ({__name__=~\"node_.*\"})",
];

/// Grafana's variables replaced by what Grafana sends.
fn substitute(line: &str) -> String {
    let line = line
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("$interval", "1m");
    let mut out = String::with_capacity(line.len());
    let mut rest = line.as_str();
    while let Some(i) = rest.find(['$', '[']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let skip = if let Some(t) = tail.strip_prefix("${") {
            t.find('}').map(|j| j + 3)
        } else if let Some(t) = tail.strip_prefix("[[") {
            t.find("]]").map(|j| j + 4)
        } else if let Some(t) = tail.strip_prefix('$') {
            let n = t.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
            (n > 0).then_some(n + 1)
        } else {
            None
        };
        match skip {
            Some(n) => {
                out.push('x');
                rest = &tail[n..];
            }
            None => {
                out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn inputs() -> Vec<String> {
    let shared = std::env::var_os("SEXTANT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared.join("exporters"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.to_string_lossy().ends_with("-exprs.txt"));
    files.sort();
    files.push(shared.join("bench/queries.txt"));
    let mut queries: Vec<String> = files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| text.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| substitute(&l))
        .collect();
    if queries.is_empty() {
        eprintln!("promql_parse: ../shared not found, using the built-in queries");
        queries = BUILTIN.iter().map(|s| s.to_string()).collect();
    }
    let total = queries.len();
    queries.retain(|q| sextant_promql::parse(q).is_ok() && promql_parser::parser::parse(q).is_ok());
    eprintln!("promql_parse: {} of {total} queries accepted by both parsers", queries.len());
    queries
}

fn sextant_all(queries: &[String]) {
    for q in queries {
        black_box(sextant_promql::parse(black_box(q)).is_ok());
    }
}

fn reference_all(queries: &[String]) {
    for q in queries {
        black_box(promql_parser::parser::parse(black_box(q)).is_ok());
    }
}

fn bench(c: &mut Criterion) {
    let queries = inputs();
    let mut group = c.benchmark_group("promql_parse");
    group.throughput(Throughput::Elements(queries.len() as u64));
    group.bench_function("sextant", |b| b.iter(|| sextant_all(&queries)));
    group.bench_function("promql-parser", |b| b.iter(|| reference_all(&queries)));
    group.finish();
}

/// Per-query times for the one-line summary: the best of several interleaved rounds of each
/// parser, so that load from other processes on the machine affects both alike.
fn summary() {
    let queries = inputs();
    let round = |f: &dyn Fn(&[String])| {
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed().as_millis() < 200 {
            f(&queries);
            n += 1;
        }
        start.elapsed().as_nanos() as f64 / (f64::from(n) * queries.len() as f64)
    };
    let (mut ours, mut theirs) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        ours = ours.min(round(&sextant_all));
        theirs = theirs.min(round(&reference_all));
    }
    println!(
        "promql parse: sextant {ours:.0} ns/query, promql-parser {theirs:.0} ns/query, ratio {:.1}x ({} queries)",
        theirs / ours,
        queries.len()
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}

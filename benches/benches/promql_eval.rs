//! PromQL evaluation: the range-query shapes of Prometheus' `BenchmarkRangeQuery`
//! (`promql/bench_test.go`: `a_X`, `b_X`, `h_X` series with X = one, ten, hundred, over
//! 1, 100 and 1000 steps of 10 s) and the queries of `../shared/bench/queries.txt` over a
//! generated node-exporter-like head, all against `MemStorage`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sextant_model::{Appendable, Labels, MemStorage};
use sextant_promql::{parse, Engine};

const INTERVAL_MS: i64 = 10_000;
const N_INTERVALS: i64 = 1_100;

/// `a_X`, `b_X` (one, ten, hundred series) and `h_X` (the same with eleven `le` buckets).
fn range_query_data() -> MemStorage {
    let mut series: Vec<Labels> = Vec::new();
    for (x, n) in [("one", 1), ("ten", 10), ("hundred", 100)] {
        for i in 0..n {
            let l = i.to_string();
            for name in ["a", "b"] {
                let metric = format!("{name}_{x}");
                if n == 1 {
                    series.push(Labels::from_pairs([("__name__", metric.as_str())]));
                } else {
                    series.push(Labels::from_pairs([("__name__", metric.as_str()), ("l", l.as_str())]));
                }
            }
            let metric = format!("h_{x}");
            for le in (0..10).map(|j| j.to_string()).chain(["+Inf".to_string()]) {
                series.push(Labels::from_pairs([
                    ("__name__", metric.as_str()),
                    ("l", l.as_str()),
                    ("le", le.as_str()),
                ]));
            }
        }
    }
    let db = MemStorage::new();
    let mut app = db.appender();
    // Series by series, one commit each: the in-memory appender is fastest that way.
    for (s, labels) in series.iter().enumerate() {
        for step in 0..N_INTERVALS {
            let v = step as f64 + s as f64 / series.len() as f64;
            app.append(labels, step * INTERVAL_MS, v).expect("append");
        }
        app.commit().expect("commit");
    }
    drop(app);
    db
}

fn bench_range_query(c: &mut Criterion) {
    let db = range_query_data();
    let engine = Engine::default();
    let cases = [
        "a_X",
        "rate(a_X[1m])",
        "rate(a_X[1m]) + rate(b_X[1m])",
        "sum(a_X)",
        "sum by (l)(h_X)",
        "sum by (le)(h_X)",
        "count_values('value', h_X)",
        "topk(1, a_X)",
        "a_X + b_X",
        "a_X + on(l) group_right a_one",
        "histogram_quantile(0.9, rate(h_X[5m]))",
        "-a_X",
        "abs(a_X)",
        "changes(a_X[1d])",
        "rate(a_X[1d])",
        "absent_over_time(a_X[1d])",
        "max_over_time(a_X[1m:10s])",
        "a_X offset 1h",
        "a_X @ 1000",
    ];
    let mut group = c.benchmark_group("promql_range_query");
    group.sample_size(10);
    for case in cases {
        for x in ["one", "ten", "hundred"] {
            let query = case.replace('X', x);
            let expr = parse(&query).expect("bench query parses");
            for steps in [1, 100, 1000] {
                let end = N_INTERVALS * INTERVAL_MS - INTERVAL_MS;
                let start = end - (steps - 1) * INTERVAL_MS;
                group.bench_with_input(BenchmarkId::new(&query, steps), &steps, |b, _| {
                    b.iter(|| engine.range_query(&db, &expr, start, end, INTERVAL_MS).expect("query runs"))
                });
            }
        }
    }
    group.finish();
}

/// Two hours of node-exporter-like data at a 15 s scrape interval for 10 instances.
fn node_data() -> MemStorage {
    let mut series: Vec<(Labels, f64)> = Vec::new();
    for inst in 0..10 {
        let instance = format!("host{inst}:9100");
        let base = [("instance", instance.as_str()), ("job", "node")];
        let with = |extra: &[(&str, &str)]| {
            Labels::from_pairs(base.iter().chain(extra.iter()).map(|(n, v)| (n.to_string(), v.to_string())))
        };
        for name in ["node_load1", "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes"] {
            series.push((with(&[("__name__", name)]), 0.0));
        }
        for name in ["node_memory_Active_bytes", "node_memory_MemFree_bytes"] {
            series.push((with(&[("__name__", name)]), 0.0));
        }
        for cpu in 0..4 {
            let cpu = cpu.to_string();
            for mode in ["idle", "user", "system", "iowait"] {
                series.push((with(&[("__name__", "node_cpu_seconds_total"), ("cpu", &cpu), ("mode", mode)]), 1.0));
            }
        }
        for device in ["eth0", "lo"] {
            for name in ["node_network_receive_bytes_total", "node_network_transmit_bytes_total"] {
                series.push((with(&[("__name__", name), ("device", device)]), 1000.0));
            }
            series.push((with(&[("__name__", "node_filesystem_avail_bytes"), ("device", device)]), -5.0));
        }
        for le in ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"] {
            series.push((with(&[("__name__", "demo_http_request_duration_seconds_bucket"), ("le", le)]), 2.0));
        }
    }
    let db = MemStorage::new();
    let mut app = db.appender();
    for (s, (labels, slope)) in series.iter().enumerate() {
        for step in 0..480_i64 {
            let v = if *slope == 0.0 { ((step + s as i64) % 17) as f64 } else { 1e6 + slope * step as f64 };
            app.append(labels, step * 15_000, v).expect("append");
        }
        app.commit().expect("commit");
    }
    drop(app);
    db
}

fn bench_queries_txt(c: &mut Criterion) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/queries.txt");
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!("promql_eval: {} not found, skipping the queries.txt group", path.display());
        return;
    };
    let db = node_data();
    let engine = Engine::default();
    let end = 479 * 15_000;
    let start = end - 3_600_000;
    let mut group = c.benchmark_group("promql_queries_txt");
    group.sample_size(10);
    for query in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let expr = parse(query).expect("bench query parses");
        group.bench_function(query, |b| {
            b.iter(|| engine.range_query(&db, &expr, start, end, 60_000).expect("query runs"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_range_query, bench_queries_txt);
criterion_main!(benches);

//! `select` latency on a head with 1 M series (`SEXTANT_BENCH_SERIES` to change), with
//! equality and regex matchers; the series set is consumed (labels and first sample).

use criterion::{criterion_group, criterion_main, Criterion};
use sextant_model::{Labels, MatchOp, Matcher, Querier, ValueType};
use sextant_tsdb::Head;

fn build(n: usize) -> Head {
    let head = Head::default();
    let mut app = head.appender();
    for i in 0..n {
        let labels = Labels::from_pairs([
            ("__name__", format!("metric_{}", i % 1000)),
            ("instance", format!("host-{}", i / 1000)),
            ("job", format!("job_{}", i % 10)),
            ("env", if i % 3 == 0 { "prod" } else { "dev" }.to_string()),
        ]);
        app.append_ref(None, &labels, 1_000, i as f64).expect("append");
        if i % 10_000 == 9_999 {
            app.commit_batch().expect("commit");
        }
    }
    app.commit_batch().expect("commit");
    drop(app);
    head
}

fn select(c: &mut Criterion) {
    let n: usize = std::env::var("SEXTANT_BENCH_SERIES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let head = build(n);
    let q = head.querier(0, 10_000);
    let m = |op, name: &str, value: &str| Matcher::new(op, name, value).expect("matcher");
    let cases = [
        ("name_eq", vec![m(MatchOp::Equal, "__name__", "metric_5")]),
        (
            "name_eq_job_regex",
            vec![m(MatchOp::Equal, "__name__", "metric_5"), m(MatchOp::RegexMatch, "job", "job_[0-4]")],
        ),
        (
            "instance_prefix_regex",
            vec![m(MatchOp::RegexMatch, "instance", "host-1.*"), m(MatchOp::Equal, "job", "job_3")],
        ),
        (
            "name_regex_not_env",
            vec![m(MatchOp::RegexMatch, "__name__", "metric_1.."), m(MatchOp::NotEqual, "env", "prod")],
        ),
        ("instance_set_regex", vec![m(MatchOp::RegexMatch, "instance", "host-1|host-20|host-300")]),
    ];
    let mut group = c.benchmark_group(format!("select_{n}_series"));
    group.sample_size(10);
    for (name, matchers) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| {
                let mut found = 0usize;
                for series in q.select(false, None, matchers).expect("select") {
                    let mut series = series.expect("series");
                    if series.samples.next() == ValueType::Float {
                        found += 1;
                    }
                }
                found
            })
        });
    }
    group.finish();
}

criterion_group!(benches, select);
criterion_main!(benches);

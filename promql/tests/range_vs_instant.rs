//! The range evaluator (node at a time, with its step-by-step fallback) against instant
//! queries: a range query's value at each step must be the instant query's value at that time,
//! under both semantics, for generated expressions over data with gaps, resets, NaN, ±Inf,
//! stale markers and timestamps off the step grid.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sextant_model::{stale_nan, Appendable, Labels, MemStorage};
use sextant_promql::{parse_with, Engine, EngineOptions, ParseOptions, Semantics, Value};

fn storage() -> MemStorage {
    let db = MemStorage::new();
    let mut app = db.appender();
    let series: [(&str, &str, &str); 6] = [
        ("c_total", "a", "x"),
        ("c_total", "b", "x"),
        ("g", "a", "y"),
        ("g", "b", "y"),
        ("h_bucket", "a", "0.5"),
        ("h_bucket", "a", "+Inf"),
    ];
    for (n, (name, a, b)) in series.into_iter().enumerate() {
        let label_b = if name == "h_bucket" { "le" } else { "b" };
        let labels = Labels::from_pairs([("__name__", name), ("a", a), (label_b, b)]);
        let mut v = 0.0;
        for k in 0..60i64 {
            // 15 s apart, shifted per series; gaps, a stale marker, NaN and ±Inf in gauges.
            let t = k * 15_000 + (n as i64 * 3_700) % 15_000;
            if (k / 7) % 4 == 3 && n % 2 == 1 {
                continue;
            }
            v += ((k * 7 + n as i64 * 3) % 11) as f64;
            let f = match (name, k % 17) {
                ("c_total", 13) => 1.0,
                ("g", 5) => f64::NAN,
                ("g", 9) if a == "a" => f64::INFINITY,
                ("g", 11) => -v,
                (_, 15) if n == 2 => stale_nan(),
                ("h_bucket", _) if b == "+Inf" => v * 2.0,
                _ => v,
            };
            app.append(&labels, t, f).unwrap();
        }
    }
    app.commit().unwrap();
    drop(app);
    db
}

/// Expressions over the nodes the range evaluator computes a node at a time, and some it hands
/// to the step-by-step evaluator.
fn expr() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(vec![
        "g",
        "c_total",
        "g{a=\"a\"}",
        "g offset 1m",
        "c_total offset -30s",
        "g @ 300",
        "1",
        "-2.5",
        "NaN",
        "time()",
        "vector(3)",
        "{__name__=~\"g|c_total\"}",
        "h_bucket",
    ])
    .prop_map(str::to_string);
    leaf.prop_recursive(3, 24, 3, |inner| {
        let range = prop::sample::select(vec!["[1m]", "[45s]", "[2m:30s]", "[1m:]", "[15s]"]);
        prop_oneof![
            (
                prop::sample::select(vec!["abs", "timestamp", "absent", "ceil", "-", "sgn", "exp", "scalar"]),
                inner.clone()
            )
                .prop_map(|(f, e)| format!("{f}({e})")),
            (
                prop::sample::select(vec![
                    "rate",
                    "increase",
                    "delta",
                    "irate",
                    "idelta",
                    "deriv",
                    "changes",
                    "resets",
                    "max_over_time",
                    "min_over_time",
                    "sum_over_time",
                    "count_over_time",
                    "avg_over_time",
                    "stddev_over_time",
                    "last_over_time",
                    "present_over_time",
                    "absent_over_time",
                    "quantile_over_time(0.3,",
                ]),
                prop::sample::select(vec!["g", "c_total", "g{b=\"y\"}", "h_bucket"]),
                range,
            )
                .prop_map(|(f, s, r)| if f.ends_with(',') {
                    format!("{f} {s}{r})")
                } else {
                    format!("{f}({s}{r})")
                }),
            (
                inner.clone(),
                prop::sample::select(vec![
                    "+",
                    "/",
                    "%",
                    "^",
                    "and",
                    "or",
                    "unless",
                    "> bool",
                    "<",
                    "==",
                    "* on(a)",
                    "/ ignoring(b)",
                    "+ on(a) group_left",
                    "- on(a) group_right",
                ]),
                inner.clone()
            )
                .prop_map(|(l, op, r)| format!("({l}) {op} ({r})")),
            (
                prop::sample::select(vec![
                    "sum",
                    "avg",
                    "count",
                    "min",
                    "max",
                    "stddev",
                    "stdvar",
                    "group",
                    "topk(1,",
                    "bottomk(2,",
                    "quantile(0.5,",
                    "count_values(\"v\",",
                ]),
                prop::sample::select(vec!["", " by (a)", " without (b)"]),
                inner.clone()
            )
                .prop_map(|(a, g, e)| if a.ends_with(',') {
                    format!("{a} {e}){g}")
                } else {
                    format!("{a}{g} ({e})")
                }),
            inner.clone().prop_map(|e| format!("max_over_time(({e})[2m:30s])")),
            inner.clone().prop_map(|e| format!("histogram_quantile(0.9, {e})")),
            inner.prop_map(|e| format!("label_replace({e}, \"x\", \"$1\", \"a\", \"(.*)\")")),
        ]
    })
}

/// A value as compared: NaN equal to NaN, others bit for bit after rounding away the last bits
/// (the two paths may sum in different orders).
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// The range query's points by labels and time.
fn range_points(value: &Value) -> BTreeMap<(String, i64), f64> {
    let mut out = BTreeMap::new();
    if let Value::Matrix(series) = value {
        for s in series {
            for p in &s.floats {
                out.insert((format!("{}", s.labels), p.t), p.f);
            }
        }
    }
    out
}

/// Checks `query` under `semantics`; `Err` describes the first difference.
fn check(db: &MemStorage, query: &str, semantics: Semantics) -> Result<(), String> {
    let options = if semantics == Semantics::Prometheus2 { ParseOptions::prometheus2() } else { ParseOptions::all() };
    let Ok(expr) = parse_with(query, options) else { return Ok(()) };
    let engine = Engine::new(EngineOptions { semantics, max_samples: 1_000_000, ..EngineOptions::default() });
    let (start, end, step) = (0, 900_000, 30_000);
    let Ok(range) = engine.range_query(db, &expr, start, end, step) else { return Ok(()) };
    let from_range = range_points(&range.value);
    let mut from_instants = BTreeMap::new();
    let mut t = start;
    while t <= end {
        let instant = engine.instant_query(db, &expr, t).map_err(|e| format!("at {t}: instant fails: {e}"))?;
        match instant.value {
            Value::Scalar { v, .. } => {
                from_instants.insert((String::from("{}"), t), v);
            }
            Value::Vector(samples) => {
                for s in samples {
                    if from_instants.insert((format!("{}", s.labels), t), s.f).is_some() {
                        return Err(format!("at {t}: the instant query has {} twice", s.labels));
                    }
                }
            }
            _ => return Ok(()),
        }
        t += step;
    }
    let keys: std::collections::BTreeSet<_> = from_range.keys().chain(from_instants.keys()).collect();
    for key in keys {
        match (from_range.get(key), from_instants.get(key)) {
            (Some(&a), Some(&b)) if same(a, b) => {}
            (a, b) => return Err(format!("{key:?}: range {a:?}, instant {b:?}")),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn range_queries_agree_with_instant_queries(query in expr()) {
        let db = storage();
        for semantics in [Semantics::Prometheus3, Semantics::Prometheus2] {
            if let Err(diff) = check(&db, &query, semantics) {
                prop_assert!(false, "{query} ({semantics:?}): {diff}");
            }
        }
    }
}

#[test]
fn fixed_queries_agree() {
    let db = storage();
    let queries = [
        "rate(c_total[1m])",
        "topk(1, g)",
        "bottomk(2, rate(c_total[45s]))",
        "-{__name__=~\"g|c_total\"}",
        "sum by (a) (g)",
        "histogram_quantile(0.9, rate(h_bucket[1m]))",
        "stddev(g)",
        "label_replace(g, \"a\", \"z\", \"a\", \".*\")",
        "max_over_time(rate(c_total[1m])[2m:30s])",
        "g @ 300 > bool 5",
    ];
    let mut failures = Vec::new();
    for query in queries {
        for semantics in [Semantics::Prometheus3, Semantics::Prometheus2] {
            if let Err(diff) = check(&db, query, semantics) {
                failures.push(format!("{query} ({semantics:?}): {diff}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! Random and mutated input for the evaluator and the promqltest runner: no panics, and
//! runaway queries end by the timeout.

use std::time::Duration;

use proptest::prelude::*;
use sextant_model::{Appendable, Labels, MemStorage};
use sextant_promql::promqltest::{run_script, TestOptions};
use sextant_promql::{parse_with, Engine, EngineOptions, ParseOptions};

const SCRIPT: &str = r#"load 1m
  m{a="1", le="0.5"} 1 2 3 _ stale 5+1x3
  m{a="2", le="+Inf"} 1e3-1x4 NaN Inf
  other_total{instance="i", job="j"} 0+10x8
  target_info{instance="i", job="j", team="t"} 1x8

eval instant at 3m sum by (a) (rate(m[2m]))
  {a="1"} 0.0166

eval range from 0 to 5m step 1m histogram_quantile(0.5, m) or info(other_total)
  expect warn
  {} 1 2

eval instant at 1m m offset 1m @ 100
  expect fail msg: x
  m 1
"#;

const QUERY_PARTS: &[&str] = &[
    "m",
    "other_total",
    "target_info",
    "m{a=\"1\"}",
    "m[2m]",
    "m[1m:10s]",
    "(",
    ")",
    "+",
    "/",
    "and",
    "or",
    "unless",
    ">",
    "== bool",
    "on(a)",
    "ignoring(le)",
    "group_left",
    "sum",
    "by (a)",
    "rate(",
    "increase(",
    "histogram_quantile(0.5,",
    "label_replace(",
    "\"a\"",
    "\"$1\"",
    "\".*\"",
    ",",
    "topk(2,",
    "count_values(\"v\",",
    "quantile(0.3,",
    "offset 1m",
    "@ 60",
    "@ start()",
    "1",
    "-1",
    "NaN",
    "Inf",
    "time()",
    "vector(1)",
    "scalar(",
    "absent(",
    "info(",
    "max_over_time(",
    "predict_linear(",
    "3600",
    "[5m:]",
    "sort(",
    "clamp(",
    "0",
    "10",
    "timestamp(",
    "avg",
    "stddev",
    "without (a)",
    "deriv(",
    "resets(",
    "changes(",
    "last_over_time(",
    "abs(",
    "round(",
    "fill(0)",
];

fn storage() -> MemStorage {
    let db = MemStorage::new();
    let mut app = db.appender();
    for (i, name) in ["m", "other_total"].into_iter().enumerate() {
        for a in ["1", "2"] {
            let labels =
                Labels::from_pairs([("__name__", name), ("a", a), ("le", if a == "1" { "0.5" } else { "+Inf" })]);
            for t in 0..20 {
                app.append(&labels, t * 30_000, (t as f64) * (i as f64 + 1.0)).unwrap();
            }
        }
    }
    app.commit().unwrap();
    drop(app);
    db
}

/// Well-formed expressions built from selectors, functions, operators and aggregations.
fn expr() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(vec![
        "m",
        "other_total",
        "m{a=\"1\"}",
        "m offset 1m",
        "m @ 60",
        "1",
        "-2.5",
        "NaN",
        "time()",
        "vector(3)",
        "m{a=~\"1|2\"} @ start()",
    ])
    .prop_map(str::to_string);
    leaf.prop_recursive(4, 32, 3, |inner| {
        let range = prop::sample::select(vec!["[2m]", "[30s]", "[5m:30s]", "[1m:]", "[0s:1ms]"]);
        prop_oneof![
            (
                prop::sample::select(vec!["abs", "sort", "sort_desc", "timestamp", "absent", "ceil", "-", "sgn"]),
                inner.clone()
            )
                .prop_map(|(f, e)| format!("{f}({e})")),
            (
                prop::sample::select(vec![
                    "rate",
                    "increase",
                    "delta",
                    "irate",
                    "deriv",
                    "changes",
                    "resets",
                    "max_over_time",
                    "avg_over_time",
                    "stddev_over_time",
                    "last_over_time",
                    "absent_over_time"
                ]),
                prop::sample::select(vec!["m", "other_total", "m{a=\"2\"}"]),
                range,
            )
                .prop_map(|(f, s, r)| format!("{f}({s}{r})")),
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
                    "atan2",
                    "* on(a)",
                    "/ ignoring(le)",
                    "+ on(a) group_left",
                    "- on(le) group_right(a)"
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
                    "group",
                    "topk(1,",
                    "bottomk(2,",
                    "quantile(0.5,",
                    "count_values(\"v\","
                ]),
                prop::sample::select(vec!["", " by (a)", " without (le)"]),
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mutated_scripts_do_not_panic(edits in prop::collection::vec((0usize..2000, any::<u8>(), 0u8..3), 0..8)) {
        let mut bytes = SCRIPT.as_bytes().to_vec();
        for (pos, byte, kind) in edits {
            let pos = pos % (bytes.len() + 1);
            match kind {
                0 if pos < bytes.len() => { bytes.remove(pos); }
                1 => bytes.insert(pos, byte),
                _ if pos < bytes.len() => bytes[pos] = byte,
                _ => {}
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = run_script(&text, &TestOptions::default(), &|_| None);
    }

    #[test]
    fn generated_queries_do_not_panic(query in expr()) {
        let expr = parse_with(&query, ParseOptions::all());
        if let Ok(expr) = expr {
            let db = storage();
            let engine = Engine::new(EngineOptions {
                timeout: Some(Duration::from_millis(200)),
                max_samples: 100_000,
                ..EngineOptions::default()
            });
            let _ = engine.instant_query(&db, &expr, 300_000);
            let _ = engine.range_query(&db, &expr, 0, 600_000, 30_000);
        }
    }

    #[test]
    fn random_queries_do_not_panic(parts in prop::collection::vec(prop::sample::select(QUERY_PARTS), 1..12)) {
        let query = parts.join(" ");
        if let Ok(expr) = parse_with(&query, ParseOptions::all()) {
            let db = storage();
            let engine = Engine::new(EngineOptions {
                timeout: Some(Duration::from_millis(200)),
                max_samples: 100_000,
                ..EngineOptions::default()
            });
            let _ = engine.instant_query(&db, &expr, 300_000);
            let _ = engine.range_query(&db, &expr, 0, 600_000, 30_000);
        }
    }
}

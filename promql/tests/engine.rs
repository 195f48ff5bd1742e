//! Engine behaviour through the public API: results, limits, timeouts and cancellation.

use std::time::Duration;

use sextant_model::{Appendable, Labels, MemStorage, Querier, Queryable, StorageError};
use sextant_promql::{parse, CancelToken, Engine, EngineOptions, Error, QueryError, Value};

fn storage(n_series: usize, n_samples: i64) -> MemStorage {
    let db = MemStorage::new();
    let mut app = db.appender();
    for s in 0..n_series {
        let labels = Labels::from_pairs([("__name__", "m".to_string()), ("i", s.to_string())]);
        for t in 0..n_samples {
            app.append(&labels, t * 15_000, (s as i64 * t) as f64).expect("append");
        }
    }
    app.commit().expect("commit");
    drop(app);
    db
}

fn instant(engine: &Engine, db: &dyn Queryable, q: &str, t: i64) -> Result<Value, Error> {
    engine.instant_query(db, &parse(q).expect("query parses"), t).map(|r| r.value)
}

fn check(q: &str, t: i64, expected: &str) {
    let db = storage(3, 41);
    let got = match instant(&Engine::default(), &db, q, t) {
        Ok(Value::Scalar { v, .. }) => format!("{v}"),
        Ok(Value::Vector(v)) => {
            let mut s: Vec<String> = v.iter().map(|s| format!("{} {}", s.labels, s.f)).collect();
            s.sort();
            s.join("; ")
        }
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("error: {e}"),
    };
    assert_eq!(got, expected, "{q}");
}

#[test]
fn evaluates() {
    check("m{i=\"2\"}", 600_000, "{__name__=\"m\", i=\"2\"} 80");
    check("sum(m)", 600_000, "{} 120");
    check("count(m offset 10m)", 600_000, "{} 3");
    check("count(m offset 11m)", 600_000, "");
    check("max by (i) (m) > 40", 600_000, "{i=\"2\"} 80");
    check("round(sum(rate(m[1m])), 0.001)", 600_000, "{} 0.2");
    check("1 + 2 * 3", 0, "7");
    check("m / on() m", 600_000, "error: found duplicate series for the match group {} on the right hand-side of the operation: [m{i=\"0\"}, m{i=\"1\"}];many-to-many matching not allowed: matching labels must be unique on one side");
    check(
        "label_replace(m, \"i\", \"x\", \"i\", \".*\")",
        600_000,
        "error: vector cannot contain metrics with the same labelset",
    );
}

#[test]
fn max_samples_stops_a_query() {
    let db = storage(20, 41);
    let engine = Engine::new(EngineOptions { max_samples: 100, ..EngineOptions::default() });
    let q = parse("sum(m)").expect("parses");
    assert!(engine.instant_query(&db, &q, 600_000).is_ok());
    let err = engine.range_query(&db, &q, 0, 600_000, 15_000);
    assert!(err.is_ok(), "21 output samples fit");
    let q = parse("m").expect("parses");
    let err = engine.range_query(&db, &q, 0, 600_000, 15_000).unwrap_err();
    assert_eq!(err, Error::Query(QueryError::TooManySamples("query execution")));
    assert_eq!(err.to_string(), "query processing would load too many samples into memory in query execution");
    let q = parse("count_over_time(m[10m])").expect("parses");
    let err = engine.instant_query(&db, &q, 600_000).unwrap_err();
    assert_eq!(err, Error::Query(QueryError::TooManySamples("query execution")));
}

#[test]
fn timeout_stops_a_query() {
    let db = storage(2, 41);
    let engine = Engine::new(EngineOptions { timeout: Some(Duration::ZERO), ..EngineOptions::default() });
    let q = parse("m").expect("parses");
    let err = engine.range_query(&db, &q, 0, 600_000, 15_000).unwrap_err();
    assert_eq!(err.to_string(), "query timed out in expression evaluation");
}

/// A storage that cancels the query when the engine selects from it, as another thread would.
struct CancellingStorage {
    inner: MemStorage,
    token: CancelToken,
}

impl Queryable for CancellingStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        let token = self.token.clone();
        std::thread::spawn(move || token.cancel()).join().expect("thread");
        self.inner.querier(mint, maxt)
    }
}

#[test]
fn cancellation_stops_a_query() {
    let token = CancelToken::new();
    let db = CancellingStorage { inner: storage(2, 41), token: token.clone() };
    let q = parse("rate(m[1m])").expect("parses");
    let err = Engine::default().range_query_with(&db, &q, 0, 600_000, 15_000, &token).unwrap_err();
    assert_eq!(err.to_string(), "query was canceled in expression evaluation");
    let fresh = CancelToken::new();
    assert!(Engine::default().range_query_with(&db.inner, &q, 0, 600_000, 15_000, &fresh).is_ok());
}

#[test]
fn range_query_rejects_matrix_and_bad_steps() {
    let db = storage(1, 5);
    let e = Engine::default();
    let err = e.range_query(&db, &parse("m[5m]").expect("parses"), 0, 60_000, 15_000).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
    );
    assert!(e.range_query(&db, &parse("m").expect("parses"), 0, 60_000, 0).is_err());
    assert!(e.range_query(&db, &parse("m").expect("parses"), 60_000, 0, 15_000).is_err());
}

/// Range queries (evaluated a node at a time, with sliding-window shortcuts) against instant
/// queries at each step (evaluated window by window), on series with NaN, equal runs, signed
/// zeros, infinities, resets and irregular gaps.
#[test]
fn range_windows_agree_with_instant_evaluation() {
    let db = MemStorage::new();
    let mut app = db.appender();
    let series: &[(&str, &[f64])] = &[
        ("nan", &[f64::NAN, 3.0, f64::NAN, 3.0, 1.0, f64::NAN, f64::NAN, f64::NAN, 7.0, 7.0, 2.0]),
        ("zeros", &[0.0, -0.0, 0.0, -0.0, -1.0, -0.0, 0.0, 0.0, 5.0, 5.0, 5.0]),
        ("inf", &[1.0, f64::INFINITY, 2.0, f64::NEG_INFINITY, 4.0, 4.0, 4.0, 4.0, 9.0, 1.0, 0.5]),
        ("resets", &[10.0, 20.0, 5.0, 5.0, 15.0, 1.0, 2.0, 3.0, 3.0, 0.0, 8.0]),
        ("big", &[1.2e11, 1.2e11 - 4096.0, 1.2e11, 1.19e11, 1.19e11, 1.21e11, 1.2e11, 1.2e11, 1.1e11, 1.3e11, 1.2e11]),
    ];
    let gaps = [0, 15, 30, 45, 100, 115, 130, 200, 215, 230, 245];
    for (name, values) in series {
        let labels = Labels::from_pairs([("__name__", "w"), ("s", name)]);
        for (&g, &v) in gaps.iter().zip(values.iter()) {
            app.append(&labels, g * 1000, v).expect("append");
        }
    }
    app.commit().expect("commit");
    drop(app);
    let engine = Engine::default();
    for q in [
        "max_over_time(w[1m])",
        "min_over_time(w[45s])",
        "ts_of_max_over_time(w[1m])",
        "ts_of_min_over_time(w[100s])",
        "changes(w[1m])",
        "resets(w[90s])",
        "deriv(w[1m])",
        "predict_linear(w[100s], 60)",
        "rate(w[1m])",
        "increase(w[100s])",
        "delta(w[45s])",
    ] {
        let expr = sextant_promql::parse_with(q, sextant_promql::ParseOptions::all()).expect("query parses");
        let Value::Matrix(range) = engine.range_query(&db, &expr, 0, 300_000, 5_000).expect("range query").value else {
            panic!("{q}: not a matrix")
        };
        for step in 0..=60 {
            let t = step * 5_000;
            let Value::Vector(want) = engine.instant_query(&db, &expr, t).expect("instant query").value else {
                panic!("{q}: vector")
            };
            for w in &want {
                let got = range.iter().find(|s| s.labels == w.labels).and_then(|s| s.floats.iter().find(|p| p.t == t));
                let got = got.unwrap_or_else(|| panic!("{q} at {t}: {} missing", w.labels)).f;
                // Bit for bit, except the regressions (prefix sums round differently).
                let exact = !q.starts_with("deriv") && !q.starts_with("predict_linear");
                let same = got.to_bits() == w.f.to_bits()
                    || (got.is_nan() && w.f.is_nan())
                    || (!exact && (got - w.f).abs() <= 1e-9 * w.f.abs().max(1.0));
                assert!(same, "{q} at {t} for {}: range {got} vs instant {}", w.labels, w.f);
            }
            let n_range = range.iter().filter(|s| s.floats.iter().any(|p| p.t == t)).count();
            assert_eq!(n_range, want.len(), "{q} at {t}: series count");
        }
    }
}

//! Property test: random appends, commits, rollbacks, reopens and queries against
//! `MemStorage`, the simple in-memory model.

use proptest::prelude::*;
use sextant_model::{
    Appendable, Appender, Labels, MatchOp, Matcher, MemStorage, Querier, Queryable, StorageError, ValueType,
};
use sextant_tsdb::{Db, HeadOptions, Options, SyncPolicy, WalOptions};

#[derive(Debug, Clone)]
enum Op {
    Append { series: usize, t: i64, v: u8 },
    Commit,
    Rollback,
    Reopen,
    Query { mint: i64, maxt: i64, matcher: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..6usize, 0..400i64, 0..4u8).prop_map(|(series, t, v)| Op::Append { series, t, v }),
        2 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        1 => Just(Op::Reopen),
        2 => (0..400i64, 0..400i64, 0..6usize).prop_map(|(a, b, matcher)| Op::Query { mint: a.min(b), maxt: a.max(b), matcher }),
    ]
}

fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", if i % 2 == 0 { "a" } else { "b" }),
        ("job", ["x", "y", "z"][i % 3]),
        ("i", &i.to_string()),
    ])
}

fn matcher(i: usize) -> Vec<Matcher> {
    let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
    match i {
        0 => vec![],
        1 => vec![m(MatchOp::Equal, "__name__", "a")],
        2 => vec![m(MatchOp::RegexMatch, "job", "x|z")],
        3 => vec![m(MatchOp::NotEqual, "job", "y"), m(MatchOp::RegexMatch, "i", "[0-3]")],
        4 => vec![m(MatchOp::RegexNoMatch, "i", "1|2")],
        _ => vec![m(MatchOp::Equal, "missing", "")],
    }
}

type Found = Vec<(Labels, Vec<(i64, u64)>)>;

fn query(q: &dyn Querier, matchers: &[Matcher]) -> (Found, Vec<String>, Vec<String>) {
    let found = q
        .select(true, None, matchers)
        .unwrap()
        .map(|s| {
            let mut s = s.unwrap();
            let mut out = Vec::new();
            while s.samples.next() == ValueType::Float {
                let (t, v) = s.samples.at();
                out.push((t, v.to_bits()));
            }
            (s.labels, out)
        })
        .collect();
    (found, q.label_names(matchers).unwrap(), q.label_values("job", matchers).unwrap())
}

fn kind(r: &Result<(), StorageError>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(StorageError::OutOfOrderSample { .. }) => "out of order",
        Err(StorageError::DuplicateSampleForTimestamp { .. }) => "duplicate",
        Err(_) => "other",
    }
}

fn run(ops: Vec<Op>, snapshot: bool) {
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options {
        head: HeadOptions {
            samples_per_chunk: 7,
            chunk_range_ms: 100,
            optimize_closed_chunks: snapshot,
            ..HeadOptions::default()
        },
        wal: Some(WalOptions {
            segment_size: 512,
            sync: SyncPolicy::Never,
            replay_threads: 2,
            snapshot_on_close: snapshot,
        }),
        ..Options::default()
    };
    let model = MemStorage::new();
    let mut model_app = model.appender();
    let mut db = Some(Db::open(dir.path(), opts()).unwrap());
    let mut pending: Vec<(usize, i64, f64)> = Vec::new();
    for op in ops {
        match op {
            Op::Append { series, t, v } => {
                let v = f64::from(v);
                let want = model_app.append(&labels(series), t, v);
                // The Db appender lives only for one batch: replay the batch's appends into a
                // fresh appender at commit. Check the verdict with a probe appender now.
                let db_ref = db.as_ref().unwrap();
                let mut probe = db_ref.appender();
                for &(s, t, v) in &pending {
                    probe.append_ref(None, &labels(s), t, v).unwrap();
                }
                let got = Appender::append(&mut probe, &labels(series), t, v);
                probe.rollback_batch();
                assert_eq!(kind(&got), kind(&want), "append {series} {t} {v}");
                if got.is_ok() {
                    pending.push((series, t, v));
                }
            }
            Op::Commit => {
                model_app.commit().unwrap();
                let db_ref = db.as_ref().unwrap();
                let mut app = db_ref.appender();
                for (s, t, v) in pending.drain(..) {
                    app.append_ref(None, &labels(s), t, v).unwrap();
                }
                app.commit_batch().unwrap();
            }
            Op::Rollback => {
                model_app.rollback();
                pending.clear();
            }
            Op::Reopen => {
                model_app.rollback();
                pending.clear();
                db.take().unwrap().close().unwrap();
                db = Some(Db::open(dir.path(), opts()).unwrap());
                let stats = db.as_ref().unwrap().replay_stats();
                assert_eq!((stats.damaged_records, stats.torn_tails, stats.unknown_series_samples), (0, 0, 0));
            }
            Op::Query { mint, maxt, matcher: i } => {
                let matchers = matcher(i);
                let q = Queryable::querier(db.as_ref().unwrap(), mint, maxt).unwrap();
                let mq = model.querier(mint, maxt).unwrap();
                assert_eq!(query(&*q, &matchers), query(&*mq, &matchers), "{matchers:?} [{mint}, {maxt}]");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn db_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..120), snapshot in proptest::bool::ANY) {
        run(ops, snapshot);
    }
}

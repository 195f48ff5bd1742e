//! The head through its public API: append rules, chunks, postings and queries.

use sextant_model::{
    stale_nan, Appendable, Labels, MatchOp, Matcher, MemStorage, Querier, Queryable, SampleIterator, StorageError,
    ValueType,
};
use sextant_tsdb::{Error, Head, HeadOptions};

fn series(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn drain(it: &mut dyn SampleIterator) -> Vec<(i64, u64)> {
    let mut out = Vec::new();
    while it.next() == ValueType::Float {
        let (t, v) = it.at();
        out.push((t, v.to_bits()));
    }
    out
}

fn select(q: &dyn Querier, matchers: &[Matcher]) -> Vec<(Labels, Vec<(i64, u64)>)> {
    q.select(true, None, matchers)
        .unwrap()
        .map(|s| {
            let mut s = s.unwrap();
            (s.labels.clone(), drain(&mut *s.samples))
        })
        .collect()
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Ok,
    OutOfOrder,
    Duplicate,
    OutOfBounds,
}

/// Appends `(t, v)` to one series in order, committing after each; returns outcomes and the
/// stored samples.
fn check_appends(window: i64, appends: &[(i64, f64)], expected: &[Outcome], stored: &[(i64, f64)]) {
    let head = Head::new(HeadOptions { out_of_order_window_ms: window, ..HeadOptions::default() });
    let s = series(&[("__name__", "x")]);
    let mut got = Vec::new();
    for &(t, v) in appends {
        let mut app = head.appender();
        got.push(match app.append_ref(None, &s, t, v) {
            Ok(_) => Outcome::Ok,
            Err(Error::OutOfOrderSample { .. }) => Outcome::OutOfOrder,
            Err(Error::DuplicateSampleForTimestamp { .. }) => Outcome::Duplicate,
            Err(Error::OutOfBounds { .. }) => Outcome::OutOfBounds,
            Err(e) => panic!("unexpected {e}"),
        });
        app.commit_batch().unwrap();
    }
    assert_eq!(got, expected, "appends {appends:?}");
    let q = head.querier(i64::MIN, i64::MAX);
    let want: Vec<(i64, u64)> = stored.iter().map(|&(t, v)| (t, v.to_bits())).collect();
    let found = select(&q, &[Matcher::equal("__name__", "x")]);
    assert_eq!(found.first().map(|f| f.1.clone()).unwrap_or_default(), want, "appends {appends:?}");
}

#[test]
fn append_rules() {
    use Outcome::*;
    check_appends(0, &[(10, 1.0), (20, 2.0)], &[Ok, Ok], &[(10, 1.0), (20, 2.0)]);
    check_appends(0, &[(10, 1.0), (10, 1.0)], &[Ok, Ok], &[(10, 1.0)]);
    check_appends(0, &[(10, 1.0), (10, 2.0)], &[Ok, Duplicate], &[(10, 1.0)]);
    check_appends(0, &[(10, 1.0), (5, 2.0)], &[Ok, OutOfOrder], &[(10, 1.0)]);
    check_appends(0, &[(10, f64::NAN), (10, f64::NAN)], &[Ok, Ok], &[(10, f64::NAN)]);
    // A resend of a sample already stored (a retry whose answer was lost) is accepted and
    // changes nothing; a different value, or a time with no sample, is out of order.
    check_appends(0, &[(10, 1.0), (20, 2.0), (10, 1.0)], &[Ok, Ok, Ok], &[(10, 1.0), (20, 2.0)]);
    check_appends(0, &[(10, 1.0), (20, 2.0), (10, 3.0)], &[Ok, Ok, OutOfOrder], &[(10, 1.0), (20, 2.0)]);
    check_appends(0, &[(10, 1.0), (20, 2.0), (15, 1.0)], &[Ok, Ok, OutOfOrder], &[(10, 1.0), (20, 2.0)]);
    let many: Vec<(i64, f64)> = (0..300).map(|i| (i * 10, i as f64)).collect();
    let mut appends = many.clone();
    appends.extend([(50, 5.0), (1500, 150.0), (2990, 299.0), (55, 5.0), (1500, 1.0)]);
    let mut expected: Vec<Outcome> = many.iter().map(|_| Ok).collect();
    expected.extend([Ok, Ok, Ok, OutOfOrder, OutOfOrder]);
    check_appends(0, &appends, &expected, &many);
    // With a window: a resend of an in-order sample is not stored twice.
    check_appends(100, &[(100, 1.0), (150, 2.0), (100, 1.0)], &[Ok, Ok, Ok], &[(100, 1.0), (150, 2.0)]);
    check_appends(100, &[(100, 1.0), (150, 2.0), (100, 3.0)], &[Ok, Ok, Duplicate], &[(100, 1.0), (150, 2.0)]);
    check_appends(
        0,
        &[(10, 1.0), (20, stale_nan()), (30, 1.0)],
        &[Ok, Ok, Ok],
        &[(10, 1.0), (20, stale_nan()), (30, 1.0)],
    );
    // With an out-of-order window.
    check_appends(100, &[(100, 1.0), (50, 2.0), (0, 3.0)], &[Ok, Ok, Ok], &[(0, 3.0), (50, 2.0), (100, 1.0)]);
    check_appends(100, &[(200, 1.0), (50, 2.0)], &[Ok, OutOfOrder], &[(200, 1.0)]);
    check_appends(
        100,
        &[(100, 1.0), (50, 2.0), (50, 2.0), (50, 3.0)],
        &[Ok, Ok, Ok, Duplicate],
        &[(50, 2.0), (100, 1.0)],
    );
    check_appends(100, &[(100, 1.0), (150, 2.0), (120, 3.0)], &[Ok, Ok, Ok], &[(100, 1.0), (120, 3.0), (150, 2.0)]);
    // After truncation, older samples are out of bounds.
    let head = Head::default();
    let s = series(&[("__name__", "x")]);
    let mut app = head.appender();
    app.append_ref(None, &s, 1000, 1.0).unwrap();
    app.commit_batch().unwrap();
    head.truncate(500);
    assert!(matches!(head.appender().append_ref(None, &s, 400, 1.0), Err(Error::OutOfBounds { .. })));
}

#[test]
fn order_within_a_batch_and_rollback() {
    let head = Head::default();
    let s = series(&[("__name__", "x")]);
    let mut app = head.appender();
    app.append_ref(None, &s, 10, 1.0).unwrap();
    app.append_ref(None, &s, 20, 2.0).unwrap();
    assert!(matches!(app.append_ref(None, &s, 15, 2.0), Err(Error::OutOfOrderSample { .. })));
    assert!(matches!(app.append_ref(None, &s, 20, 3.0), Err(Error::DuplicateSampleForTimestamp { .. })));
    assert_eq!(select(&head.querier(0, 100), &[]).len(), 0, "nothing visible before commit");
    app.rollback_batch();
    // After rollback, the pending samples no longer constrain order.
    app.append_ref(None, &s, 5, 5.0).unwrap();
    app.commit_batch().unwrap();
    assert_eq!(select(&head.querier(0, 100), &[]), vec![(s.clone(), vec![(5, 5.0f64.to_bits())])]);
    // Through the model seam: typed errors.
    let mut app = Appendable::appender(&head);
    assert!(matches!(app.append(&s, 1, 1.0), Err(StorageError::OutOfOrderSample { .. })));
}

#[test]
fn chunks_cut_at_120_samples_and_range_boundaries() {
    let head = Head::new(HeadOptions { chunk_range_ms: 10_000, ..HeadOptions::default() });
    let s = series(&[("__name__", "x")]);
    let mut app = head.appender();
    for t in 0..250 {
        app.append_ref(None, &s, t, t as f64).unwrap();
    }
    app.commit_batch().unwrap();
    assert_eq!(head.stats().chunks_created, 3, "120 + 120 + 10");
    // Crossing a 10 s boundary cuts even a small chunk.
    let head = Head::new(HeadOptions { chunk_range_ms: 10_000, ..HeadOptions::default() });
    let mut app = head.appender();
    for t in [9_000, 9_500, 10_000, 10_500, 25_000] {
        app.append_ref(None, &s, t, 1.0).unwrap();
    }
    app.commit_batch().unwrap();
    assert_eq!(head.stats().chunks_created, 3);
    let found = select(&head.querier(9_600, 20_000), &[]);
    assert_eq!(found[0].1.iter().map(|x| x.0).collect::<Vec<_>>(), [10_000, 10_500]);
}

fn fixture() -> (Head, MemStorage) {
    let head = Head::default();
    let model = MemStorage::new();
    let mut app = head.appender();
    let mut model_app = model.appender();
    let jobs = ["api", "db", "web"];
    for i in 0..60 {
        let mut pairs = vec![
            ("__name__".to_string(), if i % 2 == 0 { "http_requests_total" } else { "up" }.to_string()),
            ("job".to_string(), jobs[i % 3].to_string()),
            ("instance".to_string(), format!("host{i}")),
        ];
        if i % 5 == 0 {
            pairs.push(("env".to_string(), "prod".to_string()));
        }
        let labels = Labels::from_pairs(pairs);
        for t in 0..5 {
            let (t, v) = (t * 1000 + i as i64, (i as i64 * t) as f64);
            app.append_ref(None, &labels, t, v).unwrap();
            model_app.append(&labels, t, v).unwrap();
        }
    }
    app.commit_batch().unwrap();
    model_app.commit().unwrap();
    drop((app, model_app));
    (head, model)
}

#[test]
fn select_with_matchers_agrees_with_the_model() {
    let (head, model) = fixture();
    let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
    use MatchOp::*;
    let cases: Vec<Vec<Matcher>> = vec![
        vec![],
        vec![m(Equal, "job", "api")],
        vec![m(Equal, "job", "nope")],
        vec![m(NotEqual, "job", "api")],
        vec![m(RegexMatch, "job", "api|db")],
        vec![m(RegexMatch, "job", "a.*")],
        vec![m(RegexNoMatch, "job", "a.*")],
        vec![m(Equal, "env", "")],
        vec![m(NotEqual, "env", "")],
        vec![m(RegexMatch, "env", "prod|")],
        vec![m(RegexNoMatch, "env", "prod")],
        vec![m(RegexMatch, "instance", "host1.*"), m(Equal, "__name__", "up")],
        vec![m(Equal, "__name__", "up"), m(RegexMatch, "job", ".+"), m(NotEqual, "instance", "host3")],
        vec![m(RegexMatch, "nolabel", ".*")],
        vec![m(RegexMatch, "nolabel", ".+")],
    ];
    for (mint, maxt) in [(i64::MIN, i64::MAX), (1000, 2030), (4100, 9000), (-5, -1)] {
        let (q, mq) = (head.querier(mint, maxt), model.querier(mint, maxt).unwrap());
        for matchers in &cases {
            assert_eq!(select(&q, matchers), select(&*mq, matchers), "{matchers:?} in [{mint}, {maxt}]");
            assert_eq!(q.label_names(matchers).unwrap(), mq.label_names(matchers).unwrap(), "{matchers:?}");
            for name in ["job", "env", "instance", "none"] {
                assert_eq!(q.label_values(name, matchers).unwrap(), mq.label_values(name, matchers).unwrap());
            }
        }
    }
}

#[test]
fn seek_across_chunks_and_out_of_order_samples() {
    let head = Head::new(HeadOptions { out_of_order_window_ms: 1_000_000, ..HeadOptions::default() });
    let s = series(&[("__name__", "x")]);
    let mut app = head.appender();
    for t in (0..1000).map(|i| i * 10 + 5) {
        app.append_ref(None, &s, t, t as f64).unwrap();
    }
    app.commit_batch().unwrap();
    for t in [30, 5000, 8996] {
        app.append_ref(None, &s, t, -1.0).unwrap();
    }
    app.commit_batch().unwrap();
    let q = head.querier(100, 9000);
    let mut set = q.select(false, None, &[]).unwrap();
    let mut found = set.next().unwrap().unwrap();
    let it = &mut *found.samples;
    assert_eq!(it.seek(2000), ValueType::Float);
    assert_eq!(it.at(), (2005, 2005.0));
    assert_eq!(it.seek(1), ValueType::Float, "never moves back");
    assert_eq!(it.at(), (2005, 2005.0));
    assert_eq!(it.seek(5000), ValueType::Float);
    assert_eq!(it.at(), (5000, -1.0), "the out-of-order sample");
    assert_eq!(it.next(), ValueType::Float);
    assert_eq!(it.at(), (5005, 5005.0));
    assert_eq!(it.seek(8996), ValueType::Float);
    assert_eq!(it.at(), (8996, -1.0));
    assert_eq!(it.seek(9001), ValueType::Exhausted);
    assert_eq!(it.next(), ValueType::Exhausted);
}

#[test]
fn parallel_appenders() {
    let head = Head::default();
    let threads = 4;
    let per_thread = 200;
    std::thread::scope(|scope| {
        for th in 0..threads {
            let head = &head;
            scope.spawn(move || {
                let own: Vec<Labels> = (0..per_thread)
                    .map(|i| Labels::from_pairs([("__name__", "own".to_string()), ("id", format!("{th}-{i}"))]))
                    .collect();
                let shared = series(&[("__name__", "shared")]);
                let mut refs = vec![None; own.len()];
                for t in 0..50i64 {
                    let mut app = head.appender();
                    for (labels, r) in own.iter().zip(&mut refs) {
                        *r = Some(app.append_ref(*r, labels, t, t as f64).unwrap());
                    }
                    // All threads race on one series: each sample is either taken or rejected
                    // with a typed error, never lost silently once accepted and committed.
                    let _ = app.append_ref(None, &shared, t * 10 + th as i64, th as f64);
                    app.commit_batch().unwrap();
                }
            });
        }
    });
    assert_eq!(head.num_series(), (threads * per_thread + 1) as u64);
    let q = head.querier(i64::MIN, i64::MAX);
    let own = select(&q, &[Matcher::equal("__name__", "own")]);
    assert_eq!(own.len(), threads * per_thread);
    assert!(own.iter().all(|(_, samples)| samples.len() == 50));
    let shared = select(&q, &[Matcher::equal("__name__", "shared")]);
    let ts: Vec<i64> = shared[0].1.iter().map(|s| s.0).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "in order: {ts:?}");
    assert!(!ts.is_empty());
}

#[test]
fn cached_series_refs_skip_the_lookup_and_survive_truncation() {
    let head = Head::new(HeadOptions::default());
    let (a, b) = (series(&[("__name__", "a")]), series(&[("__name__", "b")]));
    let (mut slot_a, mut slot_b) = (0u64, 0u64);
    let mut app = Appendable::appender(&head);
    app.append_cached(&mut slot_a, &a, 1_000, 1.0).unwrap();
    app.append_cached(&mut slot_b, &b, 1_000, 2.0).unwrap();
    app.commit().unwrap();
    assert!(slot_a != 0 && slot_b != 0 && slot_a != slot_b, "{slot_a} {slot_b}");
    let (kept_a, kept_b) = (slot_a, slot_b);
    app.append_cached(&mut slot_a, &a, 2_000, 3.0).unwrap();
    app.append_cached(&mut slot_b, &b, 2_000, 4.0).unwrap();
    app.commit().unwrap();
    assert_eq!((slot_a, slot_b), (kept_a, kept_b));
    // The series go away with truncation: a kept slot finds or creates the series again.
    drop(app);
    head.truncate(10_000);
    let mut app = Appendable::appender(&head);
    app.append_cached(&mut slot_a, &a, 20_000, 5.0).unwrap();
    app.commit().unwrap();
    drop(app);
    let q = Queryable::querier(&head, 0, i64::MAX).unwrap();
    let all = Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap();
    assert_eq!(select(&*q, &[all]), vec![(a, vec![(20_000, 5f64.to_bits())])]);
}

/// The outcome of one sample as a short name (errors by kind).
fn outcome(r: &Result<(), Error>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(Error::OutOfOrderSample { .. }) => "out of order",
        Err(Error::DuplicateSampleForTimestamp { .. }) => "duplicate",
        Err(Error::OutOfBounds { .. }) => "out of bounds",
        Err(Error::InvalidLabels { .. }) => "invalid labels",
        Err(e) => panic!("unexpected {e}"),
    }
}

/// Appends `batch` (series index, t, v) after `history` (committed one sample per commit)
/// with `append_batch`, and again on a fresh head with one `append_ref` per sample; both must
/// give `expected` outcomes and store the same samples after commit.
fn check_batch(history: &[(usize, i64, f64)], batch: &[(usize, i64, f64)], expected: &[&str]) {
    let names: Vec<Labels> = (0..40).map(|i| series(&[("__name__", "m"), ("i", &i.to_string())])).collect();
    let empty = Labels::default();
    let label_of = |i: usize| if i == 99 { &empty } else { &names[i] };
    let stored = |head: &Head| select(&head.querier(i64::MIN, i64::MAX), &[Matcher::equal("__name__", "m")]);
    let fresh = || {
        let head = Head::default();
        for &(i, t, v) in history {
            let mut app = head.appender();
            app.append_ref(None, label_of(i), t, v).unwrap();
            app.commit_batch().unwrap();
        }
        head
    };

    let one_by_one = fresh();
    let mut app = one_by_one.appender();
    let mut refs = vec![None; names.len()];
    let mut got_one: Vec<&str> = Vec::new();
    for &(i, t, v) in batch {
        let r = app.append_ref(refs.get(i).copied().flatten(), label_of(i), t, v);
        if let (Ok(found), Some(slot)) = (&r, refs.get_mut(i)) {
            *slot = Some(*found);
        }
        got_one.push(outcome(&r.map(|_| ())));
    }
    app.commit_batch().unwrap();
    drop(app);

    let batched = fresh();
    let mut app = batched.appender();
    let samples: Vec<(&Labels, i64, f64)> = batch.iter().map(|&(i, t, v)| (label_of(i), t, v)).collect();
    let mut refs = vec![None; samples.len()];
    let errors = app.append_batch(&samples, &mut refs);
    let mut got_batch = vec!["ok"; batch.len()];
    for (i, e) in errors {
        got_batch[i] = outcome(&Err(e));
    }
    app.commit_batch().unwrap();
    drop(app);

    assert_eq!(got_one, expected, "one by one, batch {batch:?}");
    assert_eq!(got_batch, expected, "batched, batch {batch:?}");
    assert_eq!(stored(&batched), stored(&one_by_one), "stored, batch {batch:?}");
}

#[test]
fn append_batch_checks_like_append_ref() {
    // Several series, in order.
    check_batch(&[], &[(0, 10, 1.0), (1, 10, 2.0), (2, 10, 3.0)], &["ok", "ok", "ok"]);
    // Out of order within one batch: the later sample of the same series is older.
    check_batch(&[], &[(0, 20, 1.0), (1, 20, 1.0), (0, 10, 1.0)], &["ok", "ok", "out of order"]);
    // Within one batch: an identical resend is accepted, another value at the same time is not.
    check_batch(&[], &[(0, 20, 1.0), (0, 20, 1.0), (0, 20, 2.0), (0, 30, 2.0)], &["ok", "ok", "duplicate", "ok"]);
    // Against committed samples.
    check_batch(
        &[(0, 100, 1.0), (1, 100, 1.0)],
        &[(0, 50, 9.0), (1, 100, 2.0), (0, 150, 3.0)],
        &["out of order", "duplicate", "ok"],
    );
    // A committed sample sent again is accepted silently.
    check_batch(&[(0, 100, 1.0), (0, 200, 2.0)], &[(0, 100, 1.0), (0, 300, 3.0)], &["ok", "ok"]);
    // Invalid labels fail alone; the rest goes on.
    check_batch(&[], &[(0, 10, 1.0), (99, 10, 1.0), (1, 10, 1.0)], &["ok", "invalid labels", "ok"]);
    // Runs of series across stripes, each twice, the second time out of order for every third.
    let mut batch: Vec<(usize, i64, f64)> = (0..40).map(|i| (i, 1000, i as f64)).collect();
    batch.extend((0..40).map(|i| (i, if i % 3 == 0 { 500 } else { 2000 }, 1.0)));
    let expected: Vec<&str> =
        (0..40).map(|_| "ok").chain((0..40).map(|i| if i % 3 == 0 { "out of order" } else { "ok" })).collect();
    check_batch(&[], &batch, &expected);
}

#[test]
fn append_batch_rollback_releases_pending_samples() {
    let head = Head::default();
    let s = series(&[("__name__", "m")]);
    let mut refs = vec![None];
    let mut app = head.appender();
    assert!(app.append_batch(&[(&s, 100, 1.0)], &mut refs).is_empty());
    app.rollback_batch();
    drop(app);
    // Nothing stored, and an older sample than the rolled back one is in order again.
    assert!(select(&head.querier(i64::MIN, i64::MAX), &[Matcher::equal("__name__", "m")]).is_empty());
    let mut app = head.appender();
    assert!(app.append_batch(&[(&s, 50, 1.0)], &mut [None]).is_empty());
    app.commit_batch().unwrap();
    assert_eq!(select(&head.querier(i64::MIN, i64::MAX), &[Matcher::equal("__name__", "m")]).len(), 1);
}

#[test]
fn append_by_ref_uses_a_filled_slot_and_reports_a_gone_series() {
    let head = Head::new(HeadOptions::default());
    let a = series(&[("__name__", "a")]);
    let mut slot = 0u64;
    let mut app = Appendable::appender(&head);
    // An empty slot: the caller must append with labels.
    assert!(!app.append_by_ref(slot, 1_000, 1.0).unwrap());
    app.append_cached(&mut slot, &a, 1_000, 1.0).unwrap();
    assert!(app.append_by_ref(slot, 2_000, 2.0).unwrap());
    // The same checks as with labels: an identical resend is fine, a conflict is an error.
    assert!(app.append_by_ref(slot, 2_000, 2.0).unwrap());
    let err = app.append_by_ref(slot, 2_000, 3.0).unwrap_err();
    assert!(matches!(err, StorageError::DuplicateSampleForTimestamp { .. }), "{err}");
    app.commit().unwrap();
    let err = app.append_by_ref(slot, 1_500, 3.0).unwrap_err();
    assert!(matches!(err, StorageError::OutOfOrderSample { .. }), "{err}");
    // A slot that never was a series, and one whose series was truncated away.
    assert!(!app.append_by_ref(slot + 1_000, 3_000, 1.0).unwrap());
    drop(app);
    head.truncate(10_000);
    let mut app = Appendable::appender(&head);
    assert!(!app.append_by_ref(slot, 20_000, 5.0).unwrap());
    app.commit().unwrap();
    drop(app);
    let q = Queryable::querier(&head, 0, i64::MAX).unwrap();
    let all = Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap();
    assert_eq!(select(&*q, &[all]), vec![]);
}

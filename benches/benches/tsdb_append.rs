//! Append throughput: 1,000 series per commit (the `promtool tsdb bench write` shape) into the
//! head alone and into a `Db` with its WAL, with cached series refs.

use std::cell::Cell;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_model::Labels;
use sextant_tsdb::{Db, Head, HeadAppender, Options, SeriesRef};

const SERIES: usize = 1_000;
const SCRAPES: usize = 10;

fn series() -> Vec<Labels> {
    sextant_benches::series_from_20k(SERIES).unwrap_or_else(|| {
        (0..SERIES)
            .map(|i| {
                Labels::from_pairs([("__name__", format!("metric_{}", i % 50)), ("instance", format!("host-{i}"))])
            })
            .collect()
    })
}

fn scrapes<'a>(
    mut appender: impl FnMut() -> HeadAppender<'a>,
    series: &[Labels],
    refs: &mut [Option<SeriesRef>],
    t: &Cell<i64>,
) {
    for _ in 0..SCRAPES {
        let mut app = appender();
        t.set(t.get() + 30_000);
        for (labels, r) in series.iter().zip(refs.iter_mut()) {
            *r = Some(app.append_ref(*r, labels, t.get(), t.get() as f64).expect("in order"));
        }
        app.commit_batch().expect("commit");
    }
}

fn append(c: &mut Criterion) {
    let series = series();
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements((SERIES * SCRAPES) as u64));
    let head = Head::default();
    let mut refs = vec![None; SERIES];
    let t = Cell::new(0);
    group.bench_function("head_1000_series_x10_commits", |b| {
        b.iter(|| scrapes(|| head.appender(), &series, &mut refs, &t))
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options::default()).expect("open");
    let mut refs = vec![None; SERIES];
    let t = Cell::new(0);
    group.bench_function("db_wal_1000_series_x10_commits", |b| {
        b.iter(|| scrapes(|| db.appender(), &series, &mut refs, &t))
    });
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);

//! Persisted blocks through `Db`: head cuts, queries over head + blocks, deletion, compaction,
//! retention, snapshots, crash leftovers and corruption.

use std::path::Path;

use sextant_model::{Labels, MatchOp, Matcher, Querier, ValueType};
use sextant_tsdb::{open_blocks, write_block, Block, Db, Options, BLOCK_FORMAT_VERSION};

const H: i64 = 3_600_000;

fn opts() -> Options {
    Options { wal: None, ..Options::default() }
}

fn series(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "m"), ("i", &*i.to_string()), ("job", if i % 2 == 0 { "even" } else { "odd" })])
}

/// Appends 4 series at 15 s from `from` to `to` (exclusive), value = t / 1000 + i.
fn fill(db: &Db, from: i64, to: i64) {
    let mut app = db.appender();
    let mut t = from;
    while t < to {
        for i in 0..4 {
            app.append_ref(None, &series(i), t, (t / 1000) as f64 + i as f64).unwrap();
        }
        t += 15_000;
    }
    app.commit_batch().unwrap();
}

fn query(q: &dyn Querier, matchers: &[Matcher]) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let mut out = Vec::new();
    for s in q.select(true, None, matchers).unwrap() {
        let mut s = s.unwrap();
        let mut v = Vec::new();
        while s.samples.next() == ValueType::Float {
            v.push(s.samples.at());
        }
        out.push((s.labels, v));
    }
    out
}

fn all() -> Vec<Matcher> {
    vec![Matcher::equal("__name__", "m")]
}

fn total_samples(db: &Db) -> usize {
    query(&db.querier(i64::MIN, i64::MAX), &all()).iter().map(|s| s.1.len()).sum()
}

fn block_dirs(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.path().join("meta.json").exists()).count()
}

#[test]
fn head_is_cut_into_blocks_and_queries_merge() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    fill(&db, 0, 7 * H);
    let expected = query(&db.querier(i64::MIN, i64::MAX), &all());
    assert_eq!(expected.iter().map(|s| s.1.len()).sum::<usize>(), 4 * 7 * 240);
    let stats = db.compact().unwrap();
    assert!(stats.head_blocks >= 2, "{stats:?}");
    assert!(!db.blocks().is_empty());
    assert_eq!(query(&db.querier(i64::MIN, i64::MAX), &all()), expected);
    // A sub-range crossing block and head boundaries.
    let part = query(&db.querier(H + 1, 5 * H), &[Matcher::equal("job", "odd")]);
    assert_eq!(part.len(), 2);
    assert_eq!(part[0].1.first().unwrap().0, H + 15_000);
    assert_eq!(part[0].1.last().unwrap().0, 5 * H);
    let q = db.querier(i64::MIN, i64::MAX);
    assert_eq!(q.label_values("job", &[]).unwrap(), vec!["even", "odd"]);
    assert_eq!(q.label_names(&[]).unwrap(), vec!["__name__", "i", "job"]);
    // Matchers that match the empty string and regexes go through block postings too.
    let re = Matcher::new(MatchOp::RegexMatch, "i", "1|3").unwrap();
    assert_eq!(query(&db.querier(0, H), &[re]).len(), 2);
    let ne = Matcher::new(MatchOp::NotEqual, "missing", "x").unwrap();
    assert_eq!(query(&db.querier(0, H), &[ne]).len(), 4);
    drop(q);
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    // Without a WAL only the blocks survive.
    let got = query(&db.querier(i64::MIN, i64::MAX), &all());
    let persisted: usize = got.iter().map(|s| s.1.len()).sum();
    assert!(persisted > 0 && persisted < 4 * 7 * 240);
}

#[test]
fn wal_data_survives_cut_and_reopen_without_double_counting() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), Options::default()).unwrap();
        fill(&db, 0, 5 * H);
        db.compact().unwrap();
        assert!(!db.blocks().is_empty());
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(total_samples(&db), 4 * 5 * 240);
}

#[test]
fn delete_compaction_and_clean_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    fill(&db, 0, 20 * H);
    db.compact().unwrap();
    let before = total_samples(&db);
    db.delete(&[Matcher::equal("i", "0")], 0, 3 * H - 1).unwrap();
    assert_eq!(total_samples(&db), before - 3 * 240);
    db.clean_tombstones().unwrap();
    assert!(db.blocks().iter().all(|b| b.num_tombstones() == 0));
    assert_eq!(total_samples(&db), before - 3 * 240);
    // Levelled: 2 h blocks merged into 6 h (and 18 h) windows.
    assert!(db.blocks().iter().any(|b| b.meta().max_time - b.meta().min_time > 2 * H), "{:?}", db.blocks());
    assert_eq!(block_dirs(dir.path()), db.blocks().len());
}

#[test]
fn overlapping_blocks_are_merged() {
    let dir = tempfile::tempdir().unwrap();
    let a: Vec<(Labels, Vec<(i64, f64)>)> = vec![(series(0), vec![(0, 1.0), (10, 2.0)])];
    let b: Vec<(Labels, Vec<(i64, f64)>)> = vec![(series(0), vec![(5, 1.5), (10, 2.0)]), (series(1), vec![(7, 3.0)])];
    write_block(dir.path(), &a, 1, vec![]).unwrap();
    write_block(dir.path(), &b, 1, vec![]).unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let want = vec![(series(0), vec![(0, 1.0), (5, 1.5), (10, 2.0)]), (series(1), vec![(7, 3.0)])];
    assert_eq!(query(&db.querier(i64::MIN, i64::MAX), &all()), want);
    assert_eq!(db.compact().unwrap().merges, 1);
    assert_eq!(db.blocks().len(), 1);
    assert_eq!(query(&db.querier(i64::MIN, i64::MAX), &all()), want);
}

#[test]
fn retention_by_time_keeps_blocks_inside_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options { retention_ms: Some(5 * H), ..opts() }).unwrap();
    fill(&db, 0, 12 * H);
    let stats = db.compact().unwrap();
    assert!(stats.deleted > 0, "{stats:?}");
    let newest = db.head().time_range().unwrap().1;
    for b in db.blocks() {
        assert!(b.meta().max_time >= newest - 5 * H, "{:?}", b.meta());
    }
    // Everything inside the window is still there.
    let got = query(&db.querier(newest - 5 * H, newest), &all());
    assert_eq!(got.iter().map(|s| s.1.len()).sum::<usize>(), 4 * (5 * 240 + 1));
}

#[test]
fn retention_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options { retention_bytes: Some(1), ..opts() }).unwrap();
    fill(&db, 0, 8 * H);
    db.compact().unwrap();
    assert!(db.blocks().is_empty());
}

#[test]
fn snapshot_is_a_usable_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let snap = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    fill(&db, 0, 5 * H);
    db.compact().unwrap();
    let want = query(&db.querier(i64::MIN, i64::MAX), &all());
    db.snapshot(&snap.path().join("s")).unwrap();
    let copy = Db::open(snap.path().join("s"), opts()).unwrap();
    assert_eq!(query(&copy.querier(i64::MIN, i64::MAX), &all()), want);
}

#[test]
fn crash_leftovers_never_count_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<(Labels, Vec<(i64, f64)>)> = vec![(series(0), vec![(0, 1.0), (10, 2.0)])];
    let parent = write_block(dir.path(), &data, 1, vec![]).unwrap();
    // A merge that finished writing its block but died before deleting the parent.
    write_block(dir.path(), &data, 2, vec![parent.ulid.clone()]).unwrap();
    // A block write interrupted before its rename.
    let tmp = dir.path().join("01ARZ3NDEKTSV4RRFFQ69G5FAV.tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(tmp.join("chunks"), b"SXBC").unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(total_samples(&db), 2);
    assert_eq!(db.blocks().len(), 1);
    assert!(!tmp.exists());
    assert!(!dir.path().join(&parent.ulid).exists());
}

#[test]
fn corrupted_blocks_are_skipped_and_reported() {
    // (file, damage)
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 5] = [
        ("chunks", |b| *b.last_mut().unwrap() ^= 1),
        ("chunks", |b| b.truncate(b.len() - 3)),
        ("index", |b| b[20] ^= 0x40),
        ("index", |b| b.truncate(10)),
        ("meta.json", |b| b.truncate(5)),
    ];
    for (file, damage) in damages {
        let dir = tempfile::tempdir().unwrap();
        let good: Vec<(Labels, Vec<(i64, f64)>)> = vec![(series(1), vec![(100, 1.0)])];
        let bad: Vec<(Labels, Vec<(i64, f64)>)> = vec![(series(0), vec![(0, 1.0), (10, 2.0)])];
        write_block(dir.path(), &good, 1, vec![]).unwrap();
        let meta = write_block(dir.path(), &bad, 1, vec![]).unwrap();
        let path = dir.path().join(&meta.ulid).join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        damage(&mut bytes);
        std::fs::write(&path, bytes).unwrap();
        let db = Db::open(dir.path(), opts()).unwrap();
        assert_eq!(db.failed_blocks().len(), 1, "{file}");
        assert_eq!(total_samples(&db), 1, "{file}");
    }
}

#[test]
fn compaction_runs_beside_appends_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    fill(&db, 0, 6 * H);
    std::thread::scope(|s| {
        s.spawn(|| db.compact().unwrap());
        fill(&db, 6 * H, 7 * H);
        assert!(total_samples(&db) >= 4 * 6 * 240);
    });
    assert_eq!(total_samples(&db), 4 * 7 * 240);
}

/// Pseudo-random noise in 0..997 (splitmix64 of `i`).
fn noise(i: i64) -> i64 {
    let mut x = (i as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x % 997) as i64
}

/// The data of the golden block of format `version`.
fn golden_data(version: u8) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let mut want: Vec<(Labels, Vec<(i64, f64)>)> = vec![
        (series(0), (0..10).map(|i| (i * 15_000, i as f64 * 0.5)).collect()),
        (series(1), (0..10).map(|i| (i * 15_000 + i % 3, 42.0)).collect()),
        (series(2), (0..10).map(|i| (i * 15_000, (i as f64).sqrt())).collect()),
        (series(3), vec![(5, f64::INFINITY), (6, -1e300)]),
    ];
    if version >= 2 {
        // A counter with noisy increments (bit-packed) and a steady one (delta-of-delta).
        want.push((series(4), (0..50).map(|i| (i * 15_000, (i * 1000 + noise(i)) as f64 / 100.0)).collect()));
        want.push((series(5), (0..50).map(|i| (i * 30_000, (i * 4096) as f64)).collect()));
        want.sort_by(|a, b| a.0.cmp(&b.0));
    }
    want
}

/// Blocks written by released versions stay readable: `tests/golden/v<N>` was written once by
/// `write_block` in format version N and is checked in (`SEXTANT_WRITE_GOLDEN=1` rewrites the
/// current version's).
#[test]
fn golden_blocks_are_readable() {
    for version in 1..=BLOCK_FORMAT_VERSION {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/v{version}"));
        let want = golden_data(version);
        if version == BLOCK_FORMAT_VERSION && std::env::var_os("SEXTANT_WRITE_GOLDEN").is_some() {
            let _ = std::fs::remove_dir_all(&golden);
            std::fs::create_dir_all(&golden).unwrap();
            write_block(&golden, &want, 1, vec![]).unwrap();
        }
        let (blocks, failed) = open_blocks(&golden).unwrap();
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(blocks.len(), 1, "v{version}");
        let b: &Block = &blocks[0];
        assert_eq!(b.meta().stats.samples, want.iter().map(|w| w.1.len() as u64).sum::<u64>());
        assert_eq!(b.meta().version, version);
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join(&b.meta().ulid);
        std::fs::create_dir_all(&copy).unwrap();
        for f in ["chunks", "index", "tombstones", "meta.json"] {
            std::fs::copy(b.dir().join(f), copy.join(f)).unwrap();
        }
        let db = Db::open(dir.path(), opts()).unwrap();
        let got = query(&db.querier(i64::MIN, i64::MAX), &all());
        assert_eq!(got.len(), want.len(), "v{version}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.0, w.0);
            let bits = |s: &[(i64, f64)]| s.iter().map(|x| (x.0, x.1.to_bits())).collect::<Vec<_>>();
            assert_eq!(bits(&g.1), bits(&w.1), "v{version} {}", w.0);
        }
    }
}

#[test]
fn background_compactor_cuts_blocks_beside_appends() {
    let dir = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(Db::open(dir.path(), opts()).unwrap());
    fill(&db, 0, 6 * H);
    let compactor = Db::spawn_compactor(&db, std::time::Duration::from_secs(3600)).unwrap();
    std::thread::scope(|s| {
        let run = s.spawn(|| compactor.run_now());
        fill(&db, 6 * H, 7 * H);
        let stats = run.join().unwrap().unwrap();
        assert!(stats.head_blocks >= 2, "{stats:?}");
    });
    assert_eq!(compactor.state().runs, 1);
    assert_eq!(compactor.state().last_error, None);
    assert!(!db.blocks().is_empty());
    assert_eq!(total_samples(&db), 4 * 7 * 240);
    drop(compactor);
}

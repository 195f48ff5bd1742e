//! WAL durability: replay, damaged segments, checkpoints, disk full, the lock.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use sextant_model::{Labels, Matcher, Querier, ValueType};
use sextant_tsdb::{Db, Error, FaultyFileSystem, HeadOptions, Options, SyncPolicy, WalOptions};

const SERIES: usize = 5;

fn labels(s: usize) -> Labels {
    Labels::from_pairs([("__name__", "m"), ("s", &s.to_string())])
}

fn opts(segment_size: u64) -> Options {
    Options {
        head: HeadOptions::default(),
        // No snapshot at close: these tests damage the WAL segments a close leaves behind.
        wal: Some(WalOptions { segment_size, sync: SyncPolicy::Never, replay_threads: 2, snapshot_on_close: false }),
        ..Options::default()
    }
}

/// Commit `c` writes `(t = c * 1000, v = c)` to every series.
fn write_commits(db: &Db, commits: std::ops::Range<usize>) {
    for c in commits {
        let mut app = db.appender();
        for s in 0..SERIES {
            app.append_ref(None, &labels(s), c as i64 * 1000, c as f64).unwrap();
        }
        app.commit_batch().unwrap();
    }
}

/// Every (series, commit) found.
fn contents(db: &Db) -> BTreeSet<(usize, usize)> {
    let q = db.querier(i64::MIN, i64::MAX);
    let mut out = BTreeSet::new();
    for series in q.select(false, None, &[]).unwrap() {
        let mut series = series.unwrap();
        let s: usize = series.labels.get("s").unwrap().parse().unwrap();
        while series.samples.next() == ValueType::Float {
            let (t, v) = series.samples.at();
            assert_eq!(t, v as i64 * 1000, "sample values are not invented");
            out.insert((s, v as usize));
        }
    }
    out
}

fn all(commits: std::ops::Range<usize>) -> BTreeSet<(usize, usize)> {
    commits.flat_map(|c| (0..SERIES).map(move |s| (s, c))).collect()
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().len() == 8)
        .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
        .collect();
    out.sort();
    out
}

#[test]
fn replay_restores_everything_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(2048)).unwrap();
    write_commits(&db, 0..300);
    db.close().unwrap();
    assert!(segments(dir.path()).len() > 5);
    let db = Db::open(dir.path(), opts(2048)).unwrap();
    assert_eq!(contents(&db), all(0..300));
    let stats = db.replay_stats().clone();
    assert_eq!((stats.damaged_records, stats.torn_tails, stats.missing_segments), (0, 0, 0));
    assert_eq!(stats.samples, 300 * SERIES as u64);
    // Appending after replay continues the same series.
    write_commits(&db, 300..310);
    db.close().unwrap();
    let db = Db::open(dir.path(), opts(2048)).unwrap();
    assert_eq!(contents(&db), all(0..310));
    assert_eq!(db.head().num_series(), SERIES as u64);
}

fn chunk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir.join("chunks_head")).unwrap().map(|e| e.unwrap().path()).collect();
    out.sort();
    out
}

/// How a `chunks_head/` file is damaged before the reopen.
#[derive(Debug, Clone, Copy)]
enum ChunkDamage {
    None,
    FlipByte(f64),
    Truncate(f64),
    Delete,
}

#[test]
fn full_chunks_on_disk_replace_wal_samples_and_damage_costs_no_data() {
    for damage in [
        ChunkDamage::None,
        ChunkDamage::FlipByte(0.1),
        ChunkDamage::FlipByte(0.6),
        ChunkDamage::Truncate(0.5),
        ChunkDamage::Delete,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), opts(4096)).unwrap();
        write_commits(&db, 0..500);
        // As after kill -9: no snapshot, the WAL and the chunk files as they are.
        db.close().unwrap();
        let files = chunk_files(dir.path());
        assert_eq!(files.len(), 1, "{damage:?}");
        let mut bytes = std::fs::read(&files[0]).unwrap();
        match damage {
            ChunkDamage::None => {}
            ChunkDamage::FlipByte(at) => {
                let i = (bytes.len() as f64 * at) as usize;
                bytes[i] ^= 0x10;
            }
            ChunkDamage::Truncate(at) => bytes.truncate((bytes.len() as f64 * at) as usize),
            ChunkDamage::Delete => bytes.clear(),
        }
        std::fs::write(&files[0], &bytes).unwrap();
        let db = Db::open(dir.path(), opts(4096)).unwrap();
        assert_eq!(contents(&db), all(0..500), "{damage:?}");
        let stats = db.replay_stats().clone();
        assert_eq!(stats.samples, 500 * SERIES as u64, "{damage:?}");
        match damage {
            ChunkDamage::None => {
                // 4 full chunks of 120 samples per series; the last 20 samples from the WAL.
                assert_eq!(stats.head_chunks, 4 * SERIES as u64);
                assert_eq!(stats.head_chunk_samples, 480 * SERIES as u64);
                assert_eq!(stats.samples_in_chunks, 480 * SERIES as u64);
                assert_eq!(stats.damaged_chunk_records, 0);
            }
            ChunkDamage::Delete => assert_eq!(stats.head_chunks, 0),
            _ => {
                assert!(stats.head_chunks < 4 * SERIES as u64, "{damage:?}");
                assert_eq!(stats.damaged_chunk_records, 1, "{damage:?}");
            }
        }
        // Appending continues the series; chunks cut now chain onto the loaded ones.
        write_commits(&db, 500..800);
        db.close().unwrap();
        let db = Db::open(dir.path(), opts(4096)).unwrap();
        assert_eq!(contents(&db), all(0..800), "{damage:?}");
        let stats = db.replay_stats().clone();
        if let ChunkDamage::None = damage {
            assert_eq!(stats.head_chunks, 6 * SERIES as u64);
        }
    }
}

#[test]
fn chunks_of_a_reused_ref_are_not_taken() {
    // Series 0..5 get refs 1..=5; after a truncation removes them all, new series reuse no
    // ref in this process, but chunk files outlive the series: the label hash keeps them apart.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(1 << 20)).unwrap();
    write_commits(&db, 0..130);
    db.close().unwrap();
    // Rewrite the WAL with other label sets under the same refs: a new database, its chunk
    // files replaced by the old ones.
    let other = tempfile::tempdir().unwrap();
    let db = Db::open(other.path(), opts(1 << 20)).unwrap();
    for c in 0..10usize {
        let mut app = db.appender();
        for s in 0..SERIES {
            let l = Labels::from_pairs([("__name__", "other"), ("s", &s.to_string())]);
            app.append_ref(None, &l, c as i64 * 1000, c as f64).unwrap();
        }
        app.commit_batch().unwrap();
    }
    db.close().unwrap();
    std::fs::remove_dir_all(other.path().join("chunks_head")).unwrap();
    std::fs::rename(dir.path().join("chunks_head"), other.path().join("chunks_head")).unwrap();
    let db = Db::open(other.path(), opts(1 << 20)).unwrap();
    assert_eq!(db.replay_stats().head_chunks, 0);
    let (_, samples) = db.head().chunk_bytes_and_samples();
    assert_eq!(samples, 10 * SERIES as u64);
}

#[test]
fn torn_tail_drops_only_the_last_record() {
    // The last commit is one 40-byte samples record (13-byte header, 12-byte base, 5 samples of
    // 3 bytes): every cut ends inside it.
    for cut in [1, 5, 13, 20, 39] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), opts(1 << 20)).unwrap();
        write_commits(&db, 0..50);
        db.close().unwrap();
        let seg = segments(dir.path()).pop().unwrap();
        let len = std::fs::metadata(&seg).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - cut).unwrap();
        let db = Db::open(dir.path(), opts(1 << 20)).unwrap();
        assert_eq!(contents(&db), all(0..49), "cut {cut}");
        assert_eq!(db.replay_stats().torn_tails, 1);
    }
}

#[test]
fn flipped_bit_drops_one_record_and_serves_the_rest() {
    for position in [0.3, 0.5, 0.77, 0.9] {
        for bit in [0, 3, 7] {
            let dir = tempfile::tempdir().unwrap();
            let db = Db::open(dir.path(), opts(1 << 20)).unwrap();
            write_commits(&db, 0..100);
            db.close().unwrap();
            let seg = segments(dir.path()).pop().unwrap();
            let mut bytes = std::fs::read(&seg).unwrap();
            let at = (bytes.len() as f64 * position) as usize;
            bytes[at] ^= 1 << bit;
            std::fs::write(&seg, &bytes).unwrap();
            let db = Db::open(dir.path(), opts(1 << 20)).unwrap();
            let found = contents(&db);
            let missing: BTreeSet<usize> = all(0..100).difference(&found).map(|x| x.1).collect();
            assert_eq!(missing.len(), 1, "exactly one commit lost at {at} bit {bit}: {missing:?}");
            assert_eq!(db.replay_stats().damaged_records, 1);
        }
    }
}

#[test]
fn truncated_and_missing_segments() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(1024)).unwrap();
    write_commits(&db, 0..200);
    db.close().unwrap();
    let segs = segments(dir.path());
    assert!(segs.len() >= 6);
    // Without the full chunks written as they were cut, which hold these samples too.
    std::fs::remove_dir_all(dir.path().join("chunks_head")).unwrap();
    // Cut segment 2 in half, delete segment 4.
    let len = std::fs::metadata(&segs[2]).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&segs[2]).unwrap().set_len(len / 2).unwrap();
    std::fs::remove_file(&segs[4]).unwrap();
    let db = Db::open(dir.path(), opts(1024)).unwrap();
    let stats = db.replay_stats().clone();
    assert_eq!(stats.missing_segments, 1);
    assert_eq!(stats.torn_tails, 1);
    let found = contents(&db);
    // The first and last commits are there; some in the middle are not.
    assert!(found.contains(&(0, 0)) && found.contains(&(SERIES - 1, 199)));
    assert!(found.len() < all(0..200).len());
    assert!(found.is_subset(&all(0..200)));
}

#[test]
fn garbage_segments_never_panic() {
    let mut seed = 0x1234_5678_u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(1 << 20)).unwrap();
    write_commits(&db, 0..40);
    db.close().unwrap();
    let seg = segments(dir.path()).pop().unwrap();
    let original = std::fs::read(&seg).unwrap();
    for round in 0..40 {
        let mut bytes = original.clone();
        for _ in 0..(round % 7 + 1) {
            let at = rand() as usize % bytes.len();
            bytes[at] = rand() as u8;
        }
        if round % 5 == 0 {
            bytes.truncate(rand() as usize % bytes.len());
        }
        std::fs::write(&seg, &bytes).unwrap();
        let db = Db::open(dir.path(), opts(1 << 20)).unwrap();
        assert!(contents(&db).is_subset(&all(0..40)));
        db.close().unwrap();
        for extra in segments(dir.path()).into_iter().filter(|p| *p != seg) {
            std::fs::remove_file(extra).unwrap();
        }
    }
}

#[test]
fn checkpoint_keeps_live_series_and_recent_samples() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(1024)).unwrap();
    write_commits(&db, 0..100);
    // A series that only has old samples disappears with the truncation.
    let mut app = db.appender();
    app.append_ref(None, &Labels::from_pairs([("__name__", "old")]), 10, 1.0).unwrap();
    app.commit_batch().unwrap();
    drop(app);
    db.truncate(50_000).unwrap();
    write_commits(&db, 100..120);
    assert_eq!(db.head().num_series(), SERIES as u64);
    db.close().unwrap();
    let wal_files: Vec<String> = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(wal_files.iter().filter(|f| f.starts_with("checkpoint.")).count(), 1, "{wal_files:?}");
    let db = Db::open(dir.path(), opts(1024)).unwrap();
    assert_eq!(contents(&db), all(50..120));
    assert_eq!(db.head().num_series(), SERIES as u64);
    // Checkpointing again folds the previous checkpoint in.
    db.truncate(110_000).unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), opts(1024)).unwrap();
    assert_eq!(contents(&db), all(110..120));
}

#[test]
fn tombstones_replay() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(1 << 20)).unwrap();
    write_commits(&db, 0..10);
    db.delete(&[Matcher::equal("s", "1")], 2000, 4000).unwrap();
    write_commits(&db, 10..12);
    db.close().unwrap();
    let db = Db::open(dir.path(), opts(1 << 20)).unwrap();
    let mut want = all(0..12);
    for c in 2..=4 {
        want.remove(&(1, c));
    }
    assert_eq!(contents(&db), want);
}

#[test]
fn disk_full_fails_commits_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFileSystem::new();
    let options = || Options { fs: Arc::new(fs.clone()), ..opts(4096) };
    let db = Db::open(dir.path(), options()).unwrap();
    write_commits(&db, 0..20);
    let mut committed = all(0..20);
    let mut c = 20;
    let commit = |c: usize| {
        let mut app = db.appender();
        for s in 0..SERIES {
            app.append_ref(None, &labels(s), c as i64 * 1000, c as f64).unwrap();
        }
        app.commit_batch()
    };
    for budget in [0u64, 10, 100, 200] {
        fs.set_write_budget(Some(budget));
        let mut failures = 0;
        for _ in 0..20 {
            match commit(c) {
                Ok(()) => committed.extend((0..SERIES).map(|s| (s, c))),
                Err(Error::WalWrite(e)) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
                    failures += 1;
                }
                Err(e) => panic!("unexpected {e}"),
            }
            c += 1;
        }
        assert!(failures > 0);
        // Space is back: commits work again.
        fs.set_write_budget(None);
        commit(c).unwrap();
        committed.extend((0..SERIES).map(|s| (s, c)));
        c += 1;
    }
    let in_memory = contents(&db);
    db.close().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    let replayed = contents(&db);
    // Commits that returned Ok are there, failed ones are not, in memory and after replay.
    assert_eq!(in_memory, committed);
    assert_eq!(replayed, committed);
    assert_eq!(db.replay_stats().damaged_records, 0);
}

#[test]
fn second_open_is_refused_while_locked() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(1 << 20)).unwrap();
    assert!(matches!(Db::open(dir.path(), opts(1 << 20)), Err(Error::Locked { .. })));
    db.close().unwrap();
    Db::open(dir.path(), opts(1 << 20)).unwrap().close().unwrap();
}

#[test]
fn sync_policies_work() {
    for sync in [SyncPolicy::EveryCommit, SyncPolicy::Interval(std::time::Duration::from_millis(5)), SyncPolicy::Never]
    {
        let dir = tempfile::tempdir().unwrap();
        let options = || Options { wal: Some(WalOptions { sync, ..WalOptions::default() }), ..Options::default() };
        let db = Db::open(dir.path(), options()).unwrap();
        write_commits(&db, 0..10);
        db.close().unwrap();
        let db = Db::open(dir.path(), options()).unwrap();
        assert_eq!(contents(&db), all(0..10), "{sync:?}");
    }
}

fn with_snapshot(segment_size: u64) -> Options {
    Options {
        wal: Some(WalOptions { segment_size, sync: SyncPolicy::Never, replay_threads: 2, snapshot_on_close: true }),
        ..Options::default()
    }
}

#[test]
fn snapshot_at_close_replaces_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), with_snapshot(4096)).unwrap();
    write_commits(&db, 0..300);
    db.close().unwrap();
    assert_eq!(segments(dir.path()).len(), 0, "segments folded into the snapshot");
    let db = Db::open(dir.path(), with_snapshot(4096)).unwrap();
    let stats = db.replay_stats().clone();
    assert!(stats.snapshot.is_some());
    assert_eq!((stats.series, stats.samples, stats.damaged_records), (SERIES as u64, 300 * SERIES as u64, 0));
    assert_eq!(contents(&db), all(0..300));
    // Appending continues the restored chunks; a crash (no close) replays snapshot + WAL.
    write_commits(&db, 300..320);
    std::mem::forget(db);
    let db = Db::open(dir.path(), opts(4096));
    assert!(matches!(db, Err(Error::Locked { .. })), "the forgotten Db still holds the lock");
    let dir2 = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir.path().join("wal")).unwrap() {
        let entry = entry.unwrap();
        std::fs::create_dir_all(dir2.path().join("wal")).unwrap();
        std::fs::copy(entry.path(), dir2.path().join("wal").join(entry.file_name())).unwrap();
    }
    let db = Db::open(dir2.path(), with_snapshot(4096)).unwrap();
    assert_eq!(contents(&db), all(0..320));
    // A checkpoint after a snapshot folds the snapshot in.
    db.truncate(310_000).unwrap();
    db.close().unwrap();
    let db = Db::open(dir2.path(), opts(4096)).unwrap();
    assert_eq!(contents(&db), all(310..320));
}

#[test]
fn damaged_snapshot_is_counted_not_fatal() {
    for position in [0.1, 0.5, 0.95] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), with_snapshot(1 << 20)).unwrap();
        write_commits(&db, 0..50);
        db.close().unwrap();
        let snap = std::fs::read_dir(dir.path().join("wal"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("snapshot."))
            .unwrap();
        let mut bytes = std::fs::read(&snap).unwrap();
        let at = (bytes.len() as f64 * position) as usize;
        bytes[at] ^= 0x10;
        std::fs::write(&snap, &bytes).unwrap();
        let db = Db::open(dir.path(), with_snapshot(1 << 20)).unwrap();
        assert_eq!(db.replay_stats().damaged_records, 1);
        let found = contents(&db);
        assert!(found.is_subset(&all(0..50)));
        assert_eq!(found.len(), 50 * (SERIES - 1), "one series lost");
    }
}

//! `kill -9` while blocks are merged: after reopening, every sample is there exactly once, no
//! temporary directory is left, no block fails to open.
//!
//! The test binary re-invokes itself: with `SEXTANT_KILL9_COMPACT_DIR` set, `compaction_child`
//! is the child that compacts the directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use sextant_model::{Labels, Matcher, Querier, ValueType};
use sextant_tsdb::{write_block, Db, Options};

const H: i64 = 3_600_000;
const SERIES: usize = 100;
const BLOCKS: i64 = 6;

fn opts() -> Options {
    Options { wal: None, ..Options::default() }
}

/// Six 2 h blocks plus one overlapping the first two; samples every 15 s, values distinct.
fn prepare(dir: &Path) -> usize {
    let mut expected = 0;
    for b in 0..BLOCKS {
        let data: Vec<(Labels, Vec<(i64, f64)>)> = (0..SERIES)
            .map(|s| {
                let labels = Labels::from_pairs([("__name__", "m"), ("s", &*format!("{s:03}"))]);
                let samples = (0..480).map(|i| (b * 2 * H + i * 15_000, (i * (s as i64 + 1)) as f64 * 0.25)).collect();
                (labels, samples)
            })
            .collect();
        expected += data.iter().map(|d| d.1.len()).sum::<usize>();
        write_block(dir, &data, 1, Vec::new()).unwrap();
    }
    // Overlap: the same samples again (deduplicated by the merge), plus one new sample each.
    let data: Vec<(Labels, Vec<(i64, f64)>)> = (0..SERIES)
        .map(|s| {
            let labels = Labels::from_pairs([("__name__", "m"), ("s", &*format!("{s:03}"))]);
            (labels, vec![(15_000, 0.25 * (s as f64 + 1.0)), (2 * H + 7, 1.0)])
        })
        .collect();
    write_block(dir, &data, 1, Vec::new()).unwrap();
    expected + SERIES
}

fn samples(db: &Db) -> usize {
    let q = db.querier(i64::MIN, i64::MAX);
    let mut n = 0;
    for s in q.select(false, None, &[Matcher::equal("__name__", "m")]).unwrap() {
        let mut s = s.unwrap();
        while s.samples.next() == ValueType::Float {
            n += 1;
        }
    }
    n
}

#[test]
fn compaction_child() {
    let Some(dir) = std::env::var_os("SEXTANT_KILL9_COMPACT_DIR") else {
        return; // Only a helper process for `kill_9_during_compaction`.
    };
    let db = Db::open(&dir, opts()).unwrap();
    println!("ready");
    db.compact_all().unwrap();
    println!("done");
}

#[test]
fn kill_9_during_compaction() {
    let exe = std::env::current_exe().unwrap();
    let mut completed = 0;
    for round in 0..6u64 {
        let dir = tempfile::tempdir().unwrap();
        let expected = prepare(dir.path());
        let mut child = Command::new(&exe)
            .args(["--exact", "compaction_child", "--nocapture", "--test-threads=1"])
            .env("SEXTANT_KILL9_COMPACT_DIR", dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while let Some(Ok(line)) = lines.next() {
            if line.contains("ready") {
                break;
            }
        }
        // Varies where in the merge the kill lands (not a wait for an event).
        std::thread::sleep(Duration::from_millis(round * 70));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if lines.any(|l| l.is_ok_and(|l| l.contains("done"))) {
            completed += 1;
        }
        let db = Db::open(dir.path(), opts()).unwrap();
        assert!(db.failed_blocks().is_empty(), "round {round}: {:?}", db.failed_blocks());
        assert_eq!(samples(&db), expected, "round {round}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
        // And the interrupted compaction can be finished.
        db.compact_all().unwrap();
        assert_eq!(samples(&db), expected, "round {round}");
    }
    println!("kill -9 during compaction: 6 rounds verified, {completed} had finished before the kill");
}

/// A database whose WAL holds 7 h of 50 series (at 15 s), not yet cut into blocks.
fn prepare_head(dir: &Path) -> usize {
    let db = Db::open(dir, Options::default()).unwrap();
    let mut n = 0;
    let mut app = db.appender();
    for i in 0..(7 * H / 15_000) {
        for s in 0..50 {
            let labels = Labels::from_pairs([("__name__", "h"), ("s", &*format!("{s:02}"))]);
            app.append_ref(None, &labels, i * 15_000, (i * (s + 1)) as f64).unwrap();
            n += 1;
        }
        if i % 100 == 0 {
            app.commit_batch().unwrap();
        }
    }
    app.commit_batch().unwrap();
    drop(app);
    db.close().unwrap();
    n
}

fn head_samples(db: &Db) -> usize {
    let q = db.querier(i64::MIN, i64::MAX);
    let mut n = 0;
    for s in q.select(false, None, &[Matcher::equal("__name__", "h")]).unwrap() {
        let mut s = s.unwrap();
        while s.samples.next() == ValueType::Float {
            n += 1;
        }
    }
    n
}

#[test]
fn head_cut_child() {
    let Some(dir) = std::env::var_os("SEXTANT_KILL9_HEADCUT_DIR") else {
        return; // Only a helper process for `kill_9_during_head_cut`.
    };
    let db = Db::open(&dir, Options::default()).unwrap();
    println!("ready");
    db.compact().unwrap();
    println!("done");
}

/// `kill -9` while the head is written into blocks and the WAL checkpointed: after reopening,
/// every sample is there once, no two blocks overlap (a block is never counted twice), no block
/// is partial, and compaction can finish.
#[test]
fn kill_9_during_head_cut() {
    let exe = std::env::current_exe().unwrap();
    let (mut completed, mut with_blocks) = (0, 0);
    for round in 0..6u64 {
        let dir = tempfile::tempdir().unwrap();
        let expected = prepare_head(dir.path());
        let mut child = Command::new(&exe)
            .args(["--exact", "head_cut_child", "--nocapture", "--test-threads=1"])
            .env("SEXTANT_KILL9_HEADCUT_DIR", dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while let Some(Ok(line)) = lines.next() {
            if line.contains("ready") {
                break;
            }
        }
        // Varies where in the cut the kill lands (not a wait for an event).
        std::thread::sleep(Duration::from_millis(round * 150));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if lines.any(|l| l.is_ok_and(|l| l.contains("done"))) {
            completed += 1;
        }
        let db = Db::open(dir.path(), Options::default()).unwrap();
        assert!(db.failed_blocks().is_empty(), "round {round}: {:?}", db.failed_blocks());
        let blocks = db.blocks();
        if !blocks.is_empty() {
            with_blocks += 1;
        }
        for w in blocks.windows(2) {
            assert!(w[0].meta().max_time < w[1].meta().min_time, "round {round}: overlapping blocks");
        }
        assert_eq!(head_samples(&db), expected, "round {round}");
        db.compact().unwrap();
        assert_eq!(head_samples(&db), expected, "round {round}");
        assert!(!db.blocks().is_empty(), "round {round}");
    }
    println!(
        "kill -9 during head cut: 6 rounds verified, {with_blocks} had written blocks, {completed} had finished before the kill"
    );
}

//! `kill -9` in the middle of appending, repeatedly: after reopening, every commit the child
//! reported is there and nothing is corrupt.
//!
//! The test binary re-invokes itself: with `SEXTANT_KILL9_DIR` set, `kill9_child` is the child
//! that appends forever, printing each committed commit number.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use sextant_model::{Labels, Querier, ValueType};
use sextant_tsdb::{Db, Options, SyncPolicy, WalOptions};

const SERIES: usize = 20;

fn opts() -> Options {
    // SyncPolicy::Never: a process crash must lose nothing committed even without fsync.
    Options {
        wal: Some(WalOptions { segment_size: 64 << 10, sync: SyncPolicy::Never, ..WalOptions::default() }),
        ..Options::default()
    }
}

fn fixed(s: usize) -> Labels {
    Labels::from_pairs([("__name__", "fixed"), ("s", &s.to_string())])
}

/// Commit numbers found: per commit, how many of its samples are present.
fn commits_found(db: &Db) -> std::collections::BTreeMap<u64, usize> {
    let q = db.querier(i64::MIN, i64::MAX);
    let mut found = std::collections::BTreeMap::new();
    for series in q.select(false, None, &[]).unwrap() {
        let mut series = series.unwrap();
        while series.samples.next() == ValueType::Float {
            let (t, v) = series.samples.at();
            assert_eq!(t, v as i64 * 1000, "no invented samples in {}", series.labels);
            *found.entry(v as u64).or_insert(0) += 1;
        }
    }
    found
}

#[test]
fn kill9_child() {
    let Some(dir) = std::env::var_os("SEXTANT_KILL9_DIR") else {
        return; // Only a helper process for `kill_9_while_appending`.
    };
    let db = Db::open(&dir, opts()).unwrap();
    let mut c = commits_found(&db).keys().next_back().map_or(0, |c| c + 1);
    let stdout = std::io::stdout();
    loop {
        let mut app = db.appender();
        for s in 0..SERIES {
            app.append_ref(None, &fixed(s), c as i64 * 1000, c as f64).unwrap();
        }
        // One new series per commit, so series records are in flight too.
        let fresh = Labels::from_pairs([("__name__", "fresh"), ("c", &c.to_string())]);
        app.append_ref(None, &fresh, c as i64 * 1000, c as f64).unwrap();
        app.commit_batch().unwrap();
        let mut out = stdout.lock();
        writeln!(out, "committed {c}").unwrap();
        out.flush().unwrap();
        c += 1;
    }
}

#[test]
fn kill_9_while_appending() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut reported = BTreeSet::new();
    for round in 0..5 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = 20 + seed % 400;
        let mut child = Command::new(&exe)
            .args(["--exact", "kill9_child", "--nocapture", "--test-threads=1"])
            .env("SEXTANT_KILL9_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some((_, c)) = line.split_once("committed ") {
                reported.insert(c.parse::<u64>().unwrap());
                seen += 1;
                if seen >= kill_after {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
                               // Lines written before the kill are still in the pipe.
        for line in lines {
            if let Some((_, c)) = line.unwrap().split_once("committed ") {
                reported.insert(c.parse::<u64>().unwrap());
            }
        }
        child.wait().unwrap();
        let db = Db::open(dir.path(), opts()).unwrap();
        let stats = db.replay_stats().clone();
        assert_eq!(stats.damaged_records, 0, "round {round}: {stats:?}");
        assert_eq!(stats.unknown_series_samples, 0, "round {round}: {stats:?}");
        let found = commits_found(&db);
        for c in &reported {
            assert_eq!(found.get(c), Some(&(SERIES + 1)), "round {round}: commit {c} complete");
        }
        let last = *reported.last().unwrap();
        for (c, n) in &found {
            assert!(
                reported.contains(c) || (*c == last + 1 && *n == SERIES + 1),
                "round {round}: unexpected commit {c}"
            );
        }
        // A commit the child made but was killed before reporting is committed all the same:
        // later rounds must find it too.
        if found.get(&(last + 1)) == Some(&(SERIES + 1)) {
            reported.insert(last + 1);
        }
        db.close().unwrap();
    }
    println!("kill -9: 5 rounds, {} commits verified", reported.len());
}

//! `sextant promql test FILE...`: one line per failing eval, a summary line, exit status.

use std::process::Command;

fn run(files: &[&std::path::Path]) -> (bool, String) {
    let (ok, out, _) = run_args(files.iter().map(|f| f.as_os_str()));
    (ok, out)
}

/// Runs `sextant promql test ARGS`: (success, stdout, stderr).
fn run_args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(args: I) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sextant")).args(["promql", "test"]).args(args).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn reports_failures_and_counts() {
    let dir = std::env::temp_dir().join(format!("sextant-promql-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.test");
    let bad = dir.join("bad.test");
    std::fs::write(&good, "load 1m\n  m 1 2 3\n\neval instant at 2m m\n  m 3\n\neval instant at 2m m * 2\n  {} 6\n")
        .unwrap();
    std::fs::write(&bad, "load 1m\n  m 1 2 3\n\neval instant at 2m m\n  m 4\n").unwrap();

    assert_eq!(run(&[&good]), (true, "2 passed, 0 failed, 0 skipped\n".to_string()));
    let (ok, out) = run(&[&good, &bad]);
    assert!(!ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], format!("{}:4: m: expected 4 for m but got 3", bad.display()));
    assert_eq!(lines[1], "2 passed, 1 failed, 0 skipped");

    let (ok, out) = run(&[&own_scripts()]);
    assert!(ok, "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn own_scripts() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../promql/testdata/engine.test")
}

/// A script with three evals: line 4 passes, line 7 fails, line 10 fails.
const SCRIPT: &str = "load 1m\n  m 1 2 3\n\neval instant at 2m m\n  m 3\n\neval instant at 2m m\n  m 4\n\neval instant at 2m m * 2\n  {} 7\n";

const TSV_HEADER: &str = "file\tline\tkind\tnative_hist\texperimental\tstart_ts\texperimental_features\texpr\n";

#[test]
fn skip_lists() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.test");
    std::fs::write(&script, SCRIPT).unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let script = script.to_str().unwrap();

    // No skip list: both failures are reported.
    let (ok, out, _) = run_args([script]);
    assert!(!ok);
    assert!(out.ends_with("\n1 passed, 2 failed, 0 skipped\n"), "{out}");

    // A skip list entry for line 7: not run, counted as skipped, reason printed with --verbose.
    let list = file("skips.txt", "# known failures\n\ns.test:7\tbecause of reasons\nother.test:7 not this script\n");
    let (ok, out, _) = run_args(["--skip-list", &list, script]);
    assert!(!ok);
    assert_eq!(out, format!("{script}:10: m * 2: expected 7 for {{}} but got 6\n1 passed, 1 failed, 1 skipped\n"));
    let (_, out, _) = run_args(["--verbose", "--skip-list", &list, script]);
    assert!(out.contains(&format!("{script}:7: m: skipped: because of reasons\n")), "{out}");

    // evals.tsv marks line 10 as native-histogram: with both, everything left passes.
    let tsv = file("evals.tsv", &format!("{TSV_HEADER}s.test\t4\ti\t0\t0\t0\t\tm\ns.test\t10\ti\t1\t0\t0\t\tm\n"));
    let (ok, out, _) = run_args(["--skip-list", &list, "--skip-from-evals-tsv", &tsv, "-v", script]);
    assert!(ok, "{out}");
    assert_eq!(
        out,
        format!(
            "{script}:7: m: skipped: because of reasons\n{script}:10: m * 2: skipped: native histograms are not implemented\n1 passed, 0 failed, 2 skipped\n"
        )
    );

    // --skip-list repeats; a second list adds entries.
    let list2 = file("more.txt", "s.test:10 also skipped\n");
    let (ok, out, _) = run_args(["--skip-list", &list, "--skip-list", &list2, script]);
    assert!(ok, "{out}");
    assert_eq!(out, "1 passed, 0 failed, 2 skipped\n");

    // Malformed lists are errors naming file:line, and nothing runs.
    let bad = file("bad.txt", "# fine\ns.test:7 ok\ns.test:x nope\n");
    let (ok, out, err) = run_args(["--skip-list", &bad, script]);
    assert!(!ok);
    assert_eq!(out, "");
    assert!(err.contains(&format!("{bad}:3: expected a line number after s.test:, got \"x\"")), "{err}");
    let bad = file("noreason.txt", "s.test:7\n");
    let (_, _, err) = run_args(["--skip-list", &bad, script]);
    assert!(err.contains(&format!("{bad}:1: s.test:7 has no reason")), "{err}");
    let bad_tsv = file("bad.tsv", &format!("{TSV_HEADER}s.test\t4\ti\tyes\t0\t0\t\tm\n"));
    let (ok, _, err) = run_args(["--skip-from-evals-tsv", &bad_tsv, script]);
    assert!(!ok);
    assert!(err.contains(&format!("{bad_tsv}:2: expected 0 or 1 in column \"native_hist\"")), "{err}");
}

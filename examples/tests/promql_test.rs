//! `sextant promql test FILE...`: one line per failing eval, a summary line, exit status.

use std::process::Command;

fn run(files: &[&std::path::Path]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sextant")).args(["promql", "test"]).args(files).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
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

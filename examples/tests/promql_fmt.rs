//! `sextant promql fmt`: canonical output on success, caret and non-zero exit on error.

use std::process::Command;

fn fmt(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sextant")).args(["promql", "fmt"]).args(args).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn formats_or_points_at_the_error() {
    assert_eq!(
        fmt(&["sum(rate(x{b='c'}[300])) by (job)"]),
        (true, "sum by (job) (rate(x{b=\"c\"}[5m]))\n".to_string(), String::new())
    );
    let (ok, out, err) = fmt(&["sum(rate(x[5m])"]);
    assert!(!ok && out.is_empty());
    assert_eq!(
        err,
        "1:16: parse error: unclosed left parenthesis\nsum(rate(x[5m])\n               ^ unclosed left parenthesis\n"
    );
    assert_eq!(fmt(&["-foo offset 1m"]).1, "-foo offset 1m\n");
    assert!(!fmt(&["limitk(1, x)"]).0);
    assert!(fmt(&["--experimental", "limitk(1, x)"]).0);
}

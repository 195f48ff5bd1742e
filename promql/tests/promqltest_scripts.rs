//! Runs Sextant's own promqltest scripts (`promql/testdata/*.test`) and checks that the
//! runner reports wrong expectations.

use sextant_promql::promqltest::{run_script, Dialect, EvalStatus, TestOptions};

#[test]
fn own_scripts_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let n = run_dir(&dir, Dialect::V3);
    assert!(n > 50, "only {n} evals ran");
    let n = run_dir(&dir.join("v2.42"), Dialect::V2_42);
    assert!(n >= 6, "only {n} v2.42 evals ran");
}

/// Runs every `.test` file in `dir`; every eval must pass. Returns the number of evals.
fn run_dir(dir: &std::path::Path, dialect: Dialect) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("testdata") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "test") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("script");
        let report = run_script(&text, &TestOptions { dialect }, &|_| None);
        assert_eq!(report.error, None, "{}", path.display());
        for ev in &report.evals {
            assert_eq!(ev.status, EvalStatus::Passed, "{}:{}: {}", path.display(), ev.line, ev.expr);
            n += 1;
        }
    }
    n
}

/// Each script has exactly one eval whose verdict must be `pass` (true) or a failure.
fn check(script: &str, pass: bool) {
    let report = run_script(script, &TestOptions::default(), &|_| None);
    assert_eq!(report.error, None, "{script}");
    assert_eq!(report.evals.len(), 1, "{script}");
    let ok = report.evals[0].status == EvalStatus::Passed;
    assert_eq!(ok, pass, "{script}: {:?}", report.evals[0].status);
}

#[test]
fn runner_detects_wrong_expectations() {
    let load = "load 1m\n  m{a=\"1\"} 1 2 3\n  m{a=\"2\"} 5 5 5\n\n";
    check(&format!("{load}eval instant at 2m m{{a=\"1\"}}\n  m{{a=\"1\"}} 3\n"), true);
    check(&format!("{load}eval instant at 2m m{{a=\"1\"}}\n  m{{a=\"1\"}} 3.1\n"), false);
    check(&format!("{load}eval instant at 2m m{{a=\"1\"}}\n  m{{a=\"1\"}} 3.000001\n"), true);
    check(&format!("{load}eval instant at 2m m{{a=\"1\"}}\n  m{{a=\"2\"}} 3\n"), false);
    check(&format!("{load}eval instant at 2m m\n  m{{a=\"1\"}} 3\n"), false);
    check(&format!("{load}eval instant at 2m m{{a=\"1\"}}\n"), false);
    check(&format!("{load}eval instant at 2m nothing\n"), true);
    check(&format!("{load}eval range from 0 to 2m step 1m m{{a=\"1\"}}\n  m{{a=\"1\"}} 1 2 3\n"), true);
    check(&format!("{load}eval range from 0 to 2m step 1m m{{a=\"1\"}}\n  m{{a=\"1\"}} 1 2\n"), false);
    check(&format!("{load}eval range from 0 to 2m step 1m m{{a=\"1\"}}\n  m{{a=\"1\"}} 1+1x2\n"), true);
    check(&format!("{load}eval instant at 2m sum(m)\n  expect fail\n"), false);
    check(&format!("{load}eval instant at 2m m / on() m\n  expect fail\n"), true);
    check(
        &format!("{load}eval instant at 2m sort_desc(m)\n  expect ordered\n  m{{a=\"2\"}} 5\n  m{{a=\"1\"}} 3\n"),
        true,
    );
    check(&format!("{load}eval instant at 2m sort(m)\n  expect ordered\n  m{{a=\"2\"}} 5\n  m{{a=\"1\"}} 3\n"), false);
    check(
        &format!(
            "{load}eval instant at 2m rate(m[5m])\n  expect info\n  {{a=\"1\"}} 0.008333333333\n  {{a=\"2\"}} 0\n"
        ),
        true,
    );
    check(
        &format!(
            "{load}eval instant at 2m rate(m[5m])\n  expect no_info\n  {{a=\"1\"}} 0.008333333333\n  {{a=\"2\"}} 0\n"
        ),
        false,
    );
    check(&format!("{load}eval instant at 2m scalar(m{{a=\"1\"}})\n  3\n"), true);
    check(&format!("{load}eval instant at 2m scalar(m{{a=\"1\"}})\n  4\n"), false);
}

#[test]
fn script_errors_are_reported() {
    for bad in ["lod 1m\n", "load x\n  m 1\n", "eval instant at 1m\n", "eval instant at 0m m\n  expect bogus\n"] {
        let report = run_script(bad, &TestOptions::default(), &|_| None);
        assert!(report.error.is_some(), "{bad:?}");
    }
}

//! `sextant check rules` and `sextant test rules`: promtool's lines and exit status.

use std::process::Command;

fn sextant(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sextant")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn check_and_test_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    let bad = dir.path().join("bad.yml");
    let tests = dir.path().join("tests.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: g\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n  - alert: Down\n    expr: up == 0\n    for: 2m\n    annotations: {summary: '{{ $labels.job }} down, value {{ $value }}'}\n",
    )
    .unwrap();
    std::fs::write(&bad, "groups:\n- name: g\n  rules:\n  - record: x\n    alert: y\n    expr: up\n").unwrap();
    std::fs::write(
        &tests,
        "rule_files: [rules.yml]\ntests:\n- interval: 1m\n  input_series:\n  - series: up{job=\"a\"}\n    values: 0x5\n  alert_rule_test:\n  - eval_time: 1m\n    alertname: Down\n  - eval_time: 2m\n    alertname: Down\n    exp_alerts:\n    - exp_labels: {job: a}\n      exp_annotations: {summary: 'a down, value 0'}\n  promql_expr_test:\n  - expr: job:up:sum\n    eval_time: 3m\n    exp_samples:\n    - labels: 'job:up:sum{job=\"a\"}'\n      value: 0\n",
    )
    .unwrap();

    let (ok, out, _) = sextant(&["check", "rules", rules.to_str().unwrap()]);
    assert!(ok);
    assert!(out.contains("  SUCCESS: 2 rules found"), "{out}");
    let (ok, _, err) = sextant(&["check", "rules", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("group \"g\", rule 1, \"y\": only one of 'record' and 'alert' must be set"), "{err}");

    let (ok, out, err) = sextant(&["test", "rules", tests.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.ends_with("  SUCCESS\n\n"), "{out}");

    // The same file expecting the alert a minute early fails, as promtool would.
    let early = std::fs::read_to_string(&tests).unwrap().replace("eval_time: 2m", "eval_time: 1m");
    std::fs::write(&tests, early).unwrap();
    let (ok, _, err) = sextant(&["test", "rules", tests.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("alertname: Down, time: 1m"), "{err}");
}

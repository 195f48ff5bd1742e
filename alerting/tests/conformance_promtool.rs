//! promtool's rule unit tests (v2.42.0 files) and the template oracle, run as
//! `promtool test rules` 2.42 runs them: the same files pass and fail.

#[path = "../../testsupport/shared.rs"]
mod shared;

use sextant_alerting::rules::{run_rule_tests, UnitTestOptions};

#[test]
fn promtool_unit_tests() {
    let Some(dir) = shared::shared_dir("promtool") else { return };
    let base = dir.join("conformance/alerting/prom-fixtures");
    // (file, passes with promtool 2.42)
    let cases = [
        ("promtool-testdata-v2.42.0/unittest.yml", true),
        ("promtool-testdata-v2.42.0/at-modifier-test.yml", true),
        ("promtool-testdata-v2.42.0/negative-offset-test.yml", true),
        ("promtool-testdata-v2.42.0/long-period.yml", true),
        ("promtool-testdata-v2.42.0/failing.yml", false),
        ("promtool-testdata-v2.42.0/bad-input-series.yml", false),
        ("promtool-testdata-v2.42.0/bad-promql.yml", false),
        ("promtool-testdata-v2.42.0/bad-rules-error-test.yml", false),
        ("promtool-testdata-v2.42.0/bad-rules-syntax-test.yml", false),
        ("template-oracle/template-test.yml", true),
    ];
    let options = UnitTestOptions { prometheus2: true };
    let mut failures = Vec::new();
    for (file, want_pass) in cases {
        let report = run_rule_tests(&base.join(file), &options);
        if report.passed() != want_pass {
            failures.push(format!(
                "{file}: passed={} want {want_pass}\n{}",
                report.passed(),
                report.failures.join("\n")
            ));
        }
    }
    println!("conformance promtool: {} of {} files give promtool's result", cases.len() - failures.len(), cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

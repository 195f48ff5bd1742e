//! Runs Prometheus' own PromQL test scripts (`../shared/conformance/promql/testdata`) through
//! the promqltest runner.
//!
//! Skips come from `evals.tsv` (the per-eval inventory beside the scripts): an eval that needs
//! native histograms or start timestamps is skipped with that reason. Experimental features
//! run too; the ones that fail are listed with the feature as the reason. Every other
//! ("float-core") eval must pass unless it is in [`KNOWN_FAILURES`] with its reason.

#[path = "../../testsupport/shared.rs"]
mod shared;

use std::collections::HashMap;

use sextant_promql::promqltest::{run_script, Dialect, EvalStatus, TestOptions};

/// Float-core evals that fail today: (file, line, reason).
const KNOWN_FAILURES: &[(&str, usize, &str)] = &[(
    "functions.test",
    523,
    "Rust strings cannot hold invalid UTF-8: the parser rejects \"\\xff\" where Prometheus fails at evaluation",
)];

struct Row {
    native_hist: bool,
    experimental: bool,
    start_ts: bool,
    features: String,
}

fn read_inventory(path: &std::path::Path) -> HashMap<(String, usize), Row> {
    let text = std::fs::read_to_string(path).expect("evals.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("column {name}"));
    let (c_file, c_line, c_nh, c_exp, c_st, c_feat) = (
        col("file"),
        col("line"),
        col("native_hist"),
        col("experimental"),
        col("start_ts"),
        col("experimental_features"),
    );
    let mut rows = HashMap::new();
    for l in lines {
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() <= c_feat {
            continue;
        }
        rows.insert(
            (f[c_file].to_string(), f[c_line].parse().expect("line number")),
            Row {
                native_hist: f[c_nh] == "1",
                experimental: f[c_exp] == "1",
                start_ts: f[c_st] == "1",
                features: f[c_feat].to_string(),
            },
        );
    }
    rows
}

#[test]
fn promqltest_scripts() {
    let Some(dir) = shared::shared_dir("promqltest") else { return };
    let base = dir.join("conformance/promql");
    let inventory = read_inventory(&base.join("evals.tsv"));
    let mut files: Vec<_> = std::fs::read_dir(base.join("testdata"))
        .expect("testdata")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let (mut passed, mut failed, mut known_failed, mut skipped) = (0, 0, 0, 0);
    let (mut exp_passed, mut exp_failed) = (0, 0);
    let mut unexpected = Vec::new();
    let mut known_passing = Vec::new();
    let mut experimental_failures = Vec::new();
    for path in files {
        let name = path.file_name().expect("name").to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).expect("script");
        let skip = |line: usize| {
            let row = inventory.get(&(name.clone(), line))?;
            if row.native_hist {
                Some("native histograms are not implemented".to_string())
            } else if row.start_ts {
                Some("start timestamps (use-start-timestamps) are not implemented".to_string())
            } else {
                None
            }
        };
        let report = run_script(&text, &TestOptions { dialect: Dialect::V3 }, &skip);
        if let Some((line, e)) = &report.error {
            unexpected.push(format!("{name}:{line}: script error: {e}"));
        }
        for ev in &report.evals {
            let experimental = inventory.get(&(name.clone(), ev.line)).filter(|r| r.experimental);
            let known = KNOWN_FAILURES.iter().find(|k| k.0 == name && k.1 == ev.line);
            match (&ev.status, experimental, known) {
                (EvalStatus::Skipped(_), _, _) => skipped += 1,
                (EvalStatus::Passed, Some(_), _) => exp_passed += 1,
                (EvalStatus::Failed(m), Some(row), _) => {
                    exp_failed += 1;
                    skipped += 1;
                    experimental_failures.push(format!(
                        "{name}:{}: experimental feature not complete ({}): {}: {m}",
                        ev.line, row.features, ev.expr
                    ));
                }
                (EvalStatus::Passed, None, Some(_)) => {
                    passed += 1;
                    known_passing.push(format!("{name}:{}", ev.line));
                }
                (EvalStatus::Passed, None, None) => passed += 1,
                (EvalStatus::Failed(_), None, Some(_)) => known_failed += 1,
                (EvalStatus::Failed(m), None, None) => {
                    failed += 1;
                    unexpected.push(format!("{name}:{}: {}: {m}", ev.line, ev.expr));
                }
            }
        }
    }
    println!(
        "conformance promqltest: {passed} passed, {failed} failed, {known_failed} known failures, {skipped} skipped (experimental features: {exp_passed} passed, {exp_failed} not yet)"
    );
    for u in &unexpected {
        println!("  FAIL {u}");
    }
    if std::env::var_os("SEXTANT_PROMQLTEST_VERBOSE").is_some() {
        for f in &experimental_failures {
            println!("  skip {f}");
        }
    }
    if !known_passing.is_empty() {
        println!("  known failures that pass now (remove them from KNOWN_FAILURES): {known_passing:?}");
    }
    assert!(unexpected.is_empty(), "{} unexpected failures", unexpected.len());
}

/// v2.42 evals that fail: (file, line, reason).
const KNOWN_FAILURES_V2_42: &[(&str, usize, &str)] = &[
    (
        "functions.test",
        482,
        "holt_winters is double_exponential_smoothing since Prometheus 3; the 3.x parser rejects the old name",
    ),
    (
        "functions.test",
        496,
        "holt_winters is double_exponential_smoothing since Prometheus 3; the 3.x parser rejects the old name",
    ),
];

/// The Prometheus 2.42 scripts, run with 2.x semantics (closed windows, eager name removal).
#[test]
fn promqltest_scripts_v2_42() {
    let Some(dir) = shared::shared_dir("promqltest-v2.42") else { return };
    let mut files: Vec<_> = std::fs::read_dir(dir.join("conformance/promql/testdata-v2.42.0"))
        .expect("testdata-v2.42.0")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let (mut passed, mut known, mut unexpected) = (0, 0, Vec::new());
    for path in files {
        let name = path.file_name().expect("name").to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).expect("script");
        let report = run_script(&text, &TestOptions { dialect: Dialect::V2_42 }, &|_| None);
        if let Some((line, e)) = &report.error {
            unexpected.push(format!("{name}:{line}: script error: {e}"));
        }
        for ev in &report.evals {
            let is_known = KNOWN_FAILURES_V2_42.iter().any(|k| k.0 == name && k.1 == ev.line);
            match &ev.status {
                EvalStatus::Passed if is_known => {
                    unexpected.push(format!("{name}:{}: known failure passes now", ev.line))
                }
                EvalStatus::Passed => passed += 1,
                _ if is_known => known += 1,
                EvalStatus::Failed(m) => unexpected.push(format!("{name}:{}: {}: {m}", ev.line, ev.expr)),
                EvalStatus::Skipped(m) => unexpected.push(format!("{name}:{}: unexpected skip: {m}", ev.line)),
            }
        }
    }
    println!("conformance promqltest-v2.42: {passed} passed, {} failed, {known} known failures", unexpected.len());
    for u in &unexpected {
        println!("  FAIL {u}");
    }
    assert!(unexpected.is_empty(), "{} unexpected failures", unexpected.len());
}

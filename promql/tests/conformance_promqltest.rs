//! Runs Prometheus' own PromQL test scripts (`../shared/conformance/promql/testdata`) through
//! the promqltest runner.
//!
//! Skips come from `evals.tsv` (the per-eval inventory beside the scripts): an eval that needs
//! native histograms or start timestamps is skipped with that reason. Experimental features
//! run too; the ones that fail are listed with the feature as the reason. Every other
//! ("float-core") eval must pass unless `promql/testdata/known-failures.txt` lists it with its
//! reason (`known-failures-v2.42.txt` for the 2.42 scripts); `.ci/run` gives the same files and
//! `evals.tsv` to `sextant promql test`. An entry that names no eval is a failure.

#[path = "../../testsupport/shared.rs"]
mod shared;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use sextant_promql::promqltest::{parse_evals_tsv, run_script, Dialect, EvalStatus, SkipList, TestOptions};

/// Reads a known-failures file of `promql/testdata` (shared with `.ci/run`'s `sextant promql test`).
fn known_failures(name: &str) -> SkipList {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    SkipList::parse(&text).unwrap_or_else(|e| panic!("{}:{e}", path.display()))
}

/// Entries of `list` that name no eval in `seen` (stale line numbers after a script changed).
fn stale_entries(list: &SkipList, seen: &HashSet<(String, usize)>) -> Vec<String> {
    list.iter()
        .filter(|(file, line, _)| !seen.contains(&(file.to_string(), *line)))
        .map(|(file, line, _)| format!("{file}:{line}: known-failures entry names no eval"))
        .collect()
}

#[test]
fn promqltest_scripts() {
    let Some(dir) = shared::shared_dir("promqltest") else { return };
    let base = dir.join("conformance/promql");
    let rows =
        parse_evals_tsv(&std::fs::read_to_string(base.join("evals.tsv")).expect("evals.tsv")).expect("evals.tsv");
    let skips = SkipList::from_evals_tsv(&rows);
    let experimental: HashMap<(&str, usize), &str> = rows
        .iter()
        .filter(|r| r.experimental)
        .map(|r| ((r.file.as_str(), r.line), r.experimental_features.as_str()))
        .collect();
    let known_failures = known_failures("known-failures.txt");
    let mut seen = HashSet::new();
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
        let report = run_script(&text, &TestOptions { dialect: Dialect::V3 }, &skips.for_file(&name));
        if let Some((line, e)) = &report.error {
            unexpected.push(format!("{name}:{line}: script error: {e}"));
        }
        for ev in &report.evals {
            seen.insert((name.clone(), ev.line));
            let experimental = experimental.get(&(name.as_str(), ev.line));
            let known = known_failures.reason(&name, ev.line);
            match (&ev.status, experimental, known) {
                (EvalStatus::Skipped(_), _, _) => skipped += 1,
                (EvalStatus::Passed, Some(_), _) => exp_passed += 1,
                (EvalStatus::Failed(m), Some(row), _) => {
                    exp_failed += 1;
                    skipped += 1;
                    experimental_failures.push(format!(
                        "{name}:{}: experimental feature not complete ({}): {}: {m}",
                        ev.line, row, ev.expr
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
    unexpected.extend(stale_entries(&known_failures, &seen));
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
        println!("  known failures that pass now (remove them from testdata/known-failures.txt): {known_passing:?}");
    }
    assert!(unexpected.is_empty(), "{} unexpected failures", unexpected.len());
}

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
    let known_failures = known_failures("known-failures-v2.42.txt");
    let mut seen = HashSet::new();
    let (mut passed, mut known, mut unexpected) = (0, 0, Vec::new());
    for path in files {
        let name = path.file_name().expect("name").to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).expect("script");
        let report = run_script(&text, &TestOptions { dialect: Dialect::V2_42 }, &|_| None);
        if let Some((line, e)) = &report.error {
            unexpected.push(format!("{name}:{line}: script error: {e}"));
        }
        for ev in &report.evals {
            seen.insert((name.clone(), ev.line));
            let is_known = known_failures.reason(&name, ev.line).is_some();
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
    unexpected.extend(stale_entries(&known_failures, &seen));
    println!("conformance promqltest-v2.42: {passed} passed, {} failed, {known} known failures", unexpected.len());
    for u in &unexpected {
        println!("  FAIL {u}");
    }
    assert!(unexpected.is_empty(), "{} unexpected failures", unexpected.len());
}

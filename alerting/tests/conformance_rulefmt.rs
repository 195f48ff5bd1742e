//! Rule files against Prometheus' `model/rulefmt/testdata` (expected results in its
//! `EXPECTATIONS.yaml`) and the rule files of `rules/fixtures`.

#[path = "../../testsupport/shared.rs"]
mod shared;

use sextant_alerting::rules::{parse_rule_file, RuleFileOptions};
use sextant_model::NameValidation;

#[test]
fn rulefmt_testdata() {
    let Some(dir) = shared::shared_dir("rulefmt") else { return };
    let base = dir.join("conformance/alerting/prom-fixtures");
    let expectations: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(base.join("rulefmt-testdata/EXPECTATIONS.yaml")).unwrap())
            .unwrap();
    // (file, expected error substring or None for a good file)
    let mut cases: Vec<(String, Option<String>)> = Vec::new();
    for good in expectations["good"].as_sequence().unwrap() {
        cases.push((format!("rulefmt-testdata/{}", good.as_str().unwrap()), None));
    }
    for (file, want) in expectations["bad"].as_mapping().unwrap() {
        cases.push((format!("rulefmt-testdata/{}", file.as_str().unwrap()), Some(want.as_str().unwrap().to_string())));
    }
    for entry in std::fs::read_dir(base.join("rules-fixtures")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        let want = (name == "invalid_rules.yaml").then(|| "field unexpected_field not found".to_string());
        cases.push((format!("rules-fixtures/{name}"), want));
    }
    cases.sort();
    let mut failures = Vec::new();
    for (file, want) in &cases {
        let text = std::fs::read_to_string(base.join(file)).unwrap();
        let options = RuleFileOptions {
            name_validation: if file.contains("legacy_validation") {
                NameValidation::Legacy
            } else {
                NameValidation::Utf8
            },
            ignore_unknown_fields: false,
        };
        let got = parse_rule_file(&text, &options);
        let ok = match (&got, want) {
            (Ok(_), None) => true,
            (Err(e), Some(w)) => e.to_string().contains(w.as_str()),
            _ => false,
        };
        if !ok {
            failures.push(format!("{file}: got {got:?}, want {want:?}"));
        }
    }
    println!("conformance rulefmt: {} of {} files give the expected result", cases.len() - failures.len(), cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

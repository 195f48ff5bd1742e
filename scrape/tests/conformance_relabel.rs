//! Runs `../shared/conformance/relabel/relabel-cases.yaml` (Prometheus' relabel tests as
//! data): 34 relabel cases, 10 validation cases, 16 legacy target-label cases.

#[path = "../../testsupport/shared.rs"]
mod shared;

use serde_yaml_ng::Value;
use sextant_model::{Labels, NameValidation};
use sextant_scrape::{relabel, Action, RelabelConfig, RelabelRegex};

/// Cases we do not pass, with the reason.
const SKIP: &[(&str, &str)] = &[];

fn labels_of(v: &Value) -> Labels {
    let map = v.as_mapping().expect("labels are a mapping");
    Labels::from_pairs(map.iter().map(|(k, v)| (k.as_str().unwrap().to_string(), v.as_str().unwrap().to_string())))
}

fn str_field<'a>(cfg: &'a Value, key: &str) -> Option<&'a str> {
    cfg.get(key).and_then(Value::as_str)
}

fn scheme(cfg: &Value) -> Option<NameValidation> {
    match str_field(cfg, "name_validation_scheme") {
        Some("legacy") => Some(NameValidation::Legacy),
        Some("utf8") => Some(NameValidation::Utf8),
        _ => None,
    }
}

/// A rule built from the fields given, with Go's zero values (not the YAML defaults) for
/// the others, as `TestRelabelValidate` does.
///
/// `Action` has no empty value: the only way to give a rule no action is a YAML null, which
/// is rejected when read, so a case without an action is checked that way.
fn rule_without_defaults(cfg: &Value) -> Result<Result<RelabelConfig, String>, String> {
    let Some(action) = str_field(cfg, "action") else {
        return match serde_yaml_ng::from_str::<RelabelConfig>("action: null") {
            Ok(_) => Err("a rule with a null action was accepted".into()),
            Err(e) => Ok(Err(e.to_string())),
        };
    };
    Ok(Ok(RelabelConfig {
        source_labels: cfg
            .get("source_labels")
            .and_then(Value::as_sequence)
            .map(|s| s.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default(),
        separator: str_field(cfg, "separator").unwrap_or("").to_string(),
        regex: match str_field(cfg, "regex") {
            Some(r) => RelabelRegex::new(r).map_err(|e| e.to_string())?,
            None => RelabelRegex::default_regex(),
        },
        modulus: cfg.get("modulus").and_then(Value::as_u64).unwrap_or(0),
        target_label: str_field(cfg, "target_label").unwrap_or("").to_string(),
        replacement: str_field(cfg, "replacement").unwrap_or("").to_string(),
        action: action.parse::<Action>().map_err(|e| e.to_string())?,
        name_validation: scheme(cfg),
    }))
}

fn run_relabel_case(case: &Value) -> Result<(), String> {
    let input = labels_of(&case["input"]);
    let rules: Vec<RelabelConfig> =
        serde_yaml_ng::from_value(case["relabel_configs"].clone()).map_err(|e| format!("rules do not parse: {e}"))?;
    for r in &rules {
        r.validate(NameValidation::Utf8).map_err(|e| format!("rule does not validate: {e}"))?;
    }
    let got = relabel(&input, &rules);
    let dropped = case["dropped"].as_bool().unwrap_or(false);
    match (got, dropped) {
        (None, true) => Ok(()),
        (Some(out), false) => {
            let want = labels_of(&case["output"]);
            if out == want {
                Ok(())
            } else {
                Err(format!("got {out}, want {want}"))
            }
        }
        (None, false) => Err("dropped, want kept".into()),
        (Some(out), true) => Err(format!("kept as {out}, want dropped")),
    }
}

fn run_validate_case(case: &Value) -> Result<(), String> {
    let got = match rule_without_defaults(&case["config"])? {
        Ok(rule) => rule.validate(NameValidation::Utf8).map_err(|e| e.to_string()),
        Err(message) => Err(message),
    };
    match (str_field(case, "expect_error_contains"), got) {
        (None, Ok(())) => Ok(()),
        (None, Err(e)) => Err(format!("unexpected error {e}")),
        (Some(want), Ok(())) => Err(format!("valid, want error containing {want:?}")),
        (Some(want), Err(e)) if e.contains(want) => Ok(()),
        (Some(want), Err(e)) => Err(format!("error {e:?}, want one containing {want:?}")),
    }
}

fn run_legacy_case(case: &Value) -> Result<(), String> {
    let target = str_field(case, "target_label").unwrap();
    let rule = RelabelConfig {
        target_label: target.to_string(),
        name_validation: Some(NameValidation::Legacy),
        ..RelabelConfig::default()
    };
    let valid = rule.validate(NameValidation::Utf8).is_ok();
    if valid == case["valid"].as_bool().unwrap() {
        Ok(())
    } else {
        Err(format!("{target:?}: valid = {valid}"))
    }
}

#[test]
fn conformance_relabel() {
    let Some(dir) = shared::shared_dir("relabel") else { return };
    let text = std::fs::read_to_string(dir.join("conformance/relabel/relabel-cases.yaml")).unwrap();
    let doc: Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut cases: Vec<(String, Result<(), String>)> = Vec::new();
    for case in doc["relabel_cases"].as_sequence().unwrap() {
        cases.push((str_field(case, "name").unwrap().to_string(), run_relabel_case(case)));
    }
    for case in doc["validate_cases"].as_sequence().unwrap() {
        cases.push((str_field(case, "name").unwrap().to_string(), run_validate_case(case)));
    }
    for (i, case) in doc["legacy_target_label_validity"]["cases"].as_sequence().unwrap().iter().enumerate() {
        cases.push((format!("TestTargetLabelLegacyValidity[{i}]"), run_legacy_case(case)));
    }
    let (mut passed, mut skipped, mut failures) = (0, 0, Vec::new());
    for (name, result) in &cases {
        match (result, SKIP.iter().find(|(n, _)| n == name)) {
            (Ok(()), None) => passed += 1,
            (Ok(()), Some(_)) => failures.push(format!("{name}: passes but is in the skip list")),
            (Err(_), Some(_)) => skipped += 1,
            (Err(e), None) => failures.push(format!("{name}: {e}")),
        }
    }
    println!("conformance relabel: {passed} of {} passed, {skipped} skipped", cases.len());
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

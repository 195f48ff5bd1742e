//! Conformance of the Alertmanager core against `../shared/conformance/alerting/`: matcher
//! parsing, config validation (and every upstream config file), routing and inhibition.

#[path = "../../testsupport/shared.rs"]
mod shared;

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml_ng::Value;
use sextant_alerting::alertmanager::{
    classic_matcher, classic_matchers, inhibited_by, parse_matcher, parse_matchers, utf8_matcher, utf8_matchers,
    Config, Matcher, ParseMode,
};
use sextant_alerting::Error;
use sextant_model::Labels;

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn labels(v: &Value) -> Labels {
    let pairs: Vec<(String, String)> =
        v.as_mapping().map(|m| m.iter().map(|(k, v)| (s(k), s(v))).collect()).unwrap_or_default();
    Labels::from_pairs(pairs)
}

/// Prints the summary line and fails on any case not in the skip list.
fn report(name: &str, total: usize, failures: &[String], skipped: &[(&str, &str)]) {
    let unexpected: Vec<&String> =
        failures.iter().filter(|f| !skipped.iter().any(|(id, _)| f.starts_with(&format!("{id}:")))).collect();
    println!(
        "conformance {name}: {} of {total} passed{}",
        total - failures.len(),
        if skipped.is_empty() { String::new() } else { format!(", {} skipped", skipped.len()) }
    );
    for (id, reason) in skipped {
        println!("  skipped {id}: {reason}");
    }
    assert!(
        unexpected.is_empty(),
        "{name}: unexpected failures:\n{}",
        unexpected.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Matchers

type Parsed = Result<Vec<(String, String, String)>, String>;

fn triples(r: Result<Vec<Matcher>, Error>) -> Parsed {
    r.map(|ms| ms.into_iter().map(|m| (m.name, m.kind.as_str().to_string(), m.value)).collect())
        .map_err(|e| e.message().to_string())
}

fn expected_parse(v: &Value) -> Parsed {
    if let Some(e) = v.get("error") {
        return Err(s(e));
    }
    Ok(v["matchers"]
        .as_sequence()
        .map(|ms| ms.iter().map(|m| (s(&m["name"]), s(&m["op"]), s(&m["value"]))).collect())
        .unwrap_or_default())
}

#[test]
fn conformance_am_matchers() {
    let Some(dir) = shared::shared_dir("am-matchers") else { return };
    let doc = load(&dir.join("conformance/alerting/matcher-cases.yaml"));
    let cases = doc["cases"].as_sequence().expect("cases");
    let mut failures = Vec::new();
    for case in cases {
        let (test, name, input) = (s(&case["test"]), s(&case["name"]), s(&case["input"]));
        let id = format!("{test}/{name}");
        let single = test == "TestMatcher";
        let want_utf8 = expected_parse(&case["utf8_parser"]);
        let want_classic = expected_parse(&case["classic_parser_0_25"]);
        let got_utf8 =
            if single { triples(utf8_matcher(&input).map(|m| vec![m])) } else { triples(utf8_matchers(&input)) };
        let got_classic =
            if single { triples(classic_matcher(&input).map(|m| vec![m])) } else { triples(classic_matchers(&input)) };
        if got_utf8 != want_utf8 {
            failures.push(format!("{id}: utf8 parser: got {got_utf8:?}, want {want_utf8:?}"));
            continue;
        }
        // The classic error texts in the file are a model's; Go's "bad matcher format" is exact.
        let classic_ok = match (&got_classic, &want_classic) {
            (Err(got), Err(want)) => !want.starts_with("bad matcher format") || got == want,
            _ => got_classic == want_classic,
        };
        if !classic_ok {
            failures.push(format!("{id}: classic parser: got {got_classic:?}, want {want_classic:?}"));
            continue;
        }
        // Fallback mode: the UTF-8 result when valid and equal, else the classic one.
        let braces = single && (input.starts_with('{') || input.ends_with('}'));
        let want_fallback = match (&want_utf8, &want_classic) {
            _ if braces => None,
            (Ok(u), Ok(c)) => Some(if u == c { u.clone() } else { c.clone() }),
            (Ok(u), Err(_)) => Some(u.clone()),
            (Err(_), Ok(c)) => Some(c.clone()),
            (Err(_), Err(_)) => None,
        };
        let got_fallback = if single {
            triples(parse_matcher(&input, ParseMode::Fallback).map(|m| vec![m]))
        } else {
            triples(parse_matchers(&input, ParseMode::Fallback))
        };
        if got_fallback.as_ref().ok() != want_fallback.as_ref() {
            failures.push(format!("{id}: fallback: got {got_fallback:?}, want {want_fallback:?}"));
        }
    }
    report("am-matchers", cases.len(), &failures, &[]);
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[test]
fn conformance_am_config() {
    let Some(dir) = shared::shared_dir("am-config") else { return };
    let base = dir.join("conformance/alerting/am-config-testdata");
    let doc = load(&base.join("config-validation-cases.yaml"));
    let cases = doc["cases"].as_sequence().expect("cases");
    let mut failures = Vec::new();
    for case in cases {
        let id = s(&case["id"]);
        let input = match case.get("file") {
            Some(f) => std::fs::read_to_string(base.join(s(f))).expect("case file"),
            None => s(&case["input"]),
        };
        let got = Config::parse(&input).map(|_| ()).map_err(|e| e.message().to_string());
        let expect = &case["expect"];
        let ok = if expect.get("ok").is_some() {
            got.is_ok()
        } else if let Some(exact) = expect.get("error_exact") {
            got.as_ref().err() == Some(&s(exact))
        } else if let Some(part) = expect.get("error_contains") {
            got.as_ref().err().is_some_and(|e| e.contains(&s(part)))
        } else {
            panic!("{id}: no expectation")
        };
        if !ok {
            failures.push(format!("{id}: got {got:?}, want {expect:?}"));
        }
    }
    report("am-config", cases.len(), &failures, &[]);
}

/// Every upstream config file: good ones load, bad ones are rejected.
#[test]
fn conformance_am_config_files() {
    let Some(dir) = shared::shared_dir("am-config-files") else { return };
    let base = dir.join("conformance/alerting/am-config-testdata");
    let doc = load(&base.join("config-validation-cases.yaml"));
    // Expected outcome per file name, from the validation cases (HEAD files).
    let mut by_name: BTreeMap<String, bool> = BTreeMap::new();
    for case in doc["cases"].as_sequence().expect("cases") {
        if let Some(f) = case.get("file") {
            let name = s(f).rsplit('/').next().unwrap_or_default().to_string();
            by_name.insert(name, case["expect"].get("ok").is_some());
        }
    }
    let mut total = 0;
    let mut failures = Vec::new();
    for sub in ["v0.25.0", "head", "cli"] {
        let mut files: Vec<_> = std::fs::read_dir(base.join(sub)).expect("dir").flatten().map(|e| e.path()).collect();
        files.sort();
        for path in files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yml")) {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            // Files without a case: the name says it (upstream's tests expect errors for these).
            let good = by_name.get(&name).copied().unwrap_or_else(|| {
                !["-no-", "both-", "invalid", "nil-", "bad", "old-team"].iter().any(|bad| name.contains(bad))
            });
            total += 1;
            let got = Config::parse(&std::fs::read_to_string(&path).unwrap());
            if got.is_ok() != good {
                failures.push(format!("{sub}/{name}: want {}, got {:?}", if good { "ok" } else { "error" }, got.err()));
            }
        }
    }
    report("am-config-files", total, &failures, &[]);
}

// ---------------------------------------------------------------------------------------------
// Routing

#[test]
fn conformance_am_routing() {
    let Some(dir) = shared::shared_dir("am-routing") else { return };
    let doc = load(&dir.join("conformance/alerting/routing-cases.yaml"));
    let mut total = 0;
    let mut failures = Vec::new();
    for suite in doc["suites"].as_sequence().expect("suites") {
        let config = Config::parse(&s(&suite["config"]));
        for case in suite["cases"].as_sequence().expect("cases") {
            total += 1;
            let id = s(&case["id"]);
            let config = match &config {
                Ok(c) => c,
                Err(e) => {
                    failures.push(format!("{id}: config: {e}"));
                    continue;
                }
            };
            let alert = labels(&case["alert"]);
            let routes = config.route.matches(&alert);
            let got: Vec<String> = routes
                .iter()
                .map(|r| {
                    let group_by = if r.opts.group_by_all {
                        "...".to_string()
                    } else {
                        r.opts.group_by.iter().cloned().collect::<Vec<_>>().join(",")
                    };
                    format!(
                        "receiver={} group_by=[{group_by}] group_labels={:?} wait={} interval={} repeat={} continue={} key={} group_key={}",
                        r.opts.receiver,
                        r.group_labels(&alert),
                        r.opts.group_wait,
                        r.opts.group_interval,
                        r.opts.repeat_interval,
                        r.continue_matching,
                        r.key(),
                        r.group_key(&alert),
                    )
                })
                .collect();
            let want: Vec<String> = case["expected"]
                .as_sequence()
                .expect("expected")
                .iter()
                .map(|e| {
                    let group_by: Vec<String> =
                        e["group_by"].as_sequence().map(|g| g.iter().map(s).collect()).unwrap_or_default();
                    format!(
                        "receiver={} group_by=[{}] group_labels={:?} wait={} interval={} repeat={} continue={} key={} group_key={}",
                        s(&e["receiver"]),
                        group_by.join(","),
                        labels(&e["group_labels"]),
                        s(&e["group_wait"]),
                        s(&e["group_interval"]),
                        s(&e["repeat_interval"]),
                        s(&e["continue"]),
                        s(&e["route_key"]),
                        s(&e["group_key"]),
                    )
                })
                .collect();
            let want_receivers: Vec<String> =
                case["expected_receivers"].as_sequence().expect("receivers").iter().map(s).collect();
            let got_receivers: Vec<String> = routes.iter().map(|r| r.opts.receiver.clone()).collect();
            if got != want || got_receivers != want_receivers {
                failures.push(format!("{id}:\n  got  {got:#?}\n  want {want:#?}"));
            }
        }
    }
    report("am-routing", total, &failures, &[]);
}

// ---------------------------------------------------------------------------------------------
// Inhibition

#[test]
fn conformance_am_inhibit() {
    let Some(dir) = shared::shared_dir("am-inhibit") else { return };
    let doc = load(&dir.join("conformance/alerting/inhibit-cases.yaml"));
    let cases = doc["cases"].as_sequence().expect("cases");
    let mut failures = Vec::new();
    for case in cases {
        let id = s(&case["id"]);
        // The rules go through the real config loader.
        let yaml = format!(
            "route: {{receiver: r}}\nreceivers: [{{name: r}}]\ninhibit_rules:\n{}",
            serde_yaml_ng::to_string(&case["inhibit_rules"]).unwrap()
        );
        let config = match Config::parse(&yaml) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{id}: config: {e}"));
                continue;
            }
        };
        // Alerts are keyed by label set: a later copy (e.g. resolved) replaces an earlier one.
        let mut alerts: Vec<(Labels, bool)> = Vec::new();
        for a in case["source_alerts"].as_sequence().into_iter().flatten() {
            let l = labels(&a["labels"]);
            let resolved = a.get("resolved").and_then(Value::as_bool).unwrap_or(false);
            match alerts.iter_mut().find(|(x, _)| *x == l) {
                Some(slot) => slot.1 = resolved,
                None => alerts.push((l, resolved)),
            }
        }
        let target = labels(&case["target"]);
        let firing: Vec<&Labels> = alerts.iter().filter(|(_, resolved)| !resolved).map(|(l, _)| l).collect();
        let want = case["expected_inhibited"].as_bool().expect("expected_inhibited");
        let got = inhibited_by(&config.inhibit_rules, firing.iter().copied(), &target).is_some();
        if got != want {
            failures.push(format!("{id}: inhibited {got}, want {want}"));
            continue;
        }
        let mut with_target = firing.clone();
        with_target.push(&target);
        for also in case.get("also_expected").and_then(Value::as_sequence).into_iter().flatten() {
            let alert = labels(&also["labels"]);
            let want = also["inhibited"].as_bool().expect("inhibited");
            let got = inhibited_by(&config.inhibit_rules, with_target.iter().copied(), &alert).is_some();
            if got != want {
                failures.push(format!("{id}: also {alert:?}: inhibited {got}, want {want}"));
            }
        }
    }
    report("am-inhibit", cases.len(), &failures, &[]);
}

//! Every PromQL expression of the conformance scripts (`eval` lines of
//! `../shared/conformance/promql/testdata*/*.test`), of real Grafana dashboards
//! (`../shared/exporters/*-exprs.txt`) and of `../shared/bench/queries.txt` parses and
//! round-trips through the formatter: `parse(format(e)) == e` (spans aside).
//!
//! Evals that expect a failure (`expect fail`, `eval_fail`) may fail at parse time or at
//! evaluation time; for them we check that parsing does not panic and, when the script gives
//! the expected message and that message is a parse error, that ours matches.
//!
//! The queries of the PromQL compliance tester (`compliance/promql-test-queries.yml`) are
//! expanded with the tester's fixed variant table (COMPLIANCE.md) and checked the same way.
//!
//! Dashboards are fed to Prometheus after Grafana substitutes its variables, so we do the
//! same with plausible values: `$__rate_interval`, `$__interval`, `$interval` → `1m`
//! (`$__range` → `1h`), any other `$var`/`${var}`/`[[var]]` → `x`.

#[path = "../../testsupport/shared.rs"]
mod shared;

use std::path::Path;

use sextant_promql::{format, parse_with, Expr, ParseOptions};

/// Expressions of the v2.42 scripts that Prometheus 3 rejects on purpose, with the error.
const EXPECTED_PARSE_ERRORS: &[(&str, &str)] = &[("holt_winters", "unknown function with name \"holt_winters\"")];

struct Eval {
    file: String,
    line: usize,
    expr: String,
    expect_fail: bool,
    fail_message: Option<String>,
}

fn extract_evals(path: &Path) -> Vec<Eval> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let instant =
        regex::Regex::new(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$").unwrap();
    let range =
        regex::Regex::new(r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$")
            .unwrap();
    let expect = regex::Regex::new(r"^expect\s+fail(?:\s+(regex|msg):(.+))?$").unwrap();
    let mut out = vec![];
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    for (i, line) in lines.iter().enumerate() {
        let (modifier, expr) = if let Some(c) = instant.captures(line) {
            (c.get(1).map(|m| m.as_str()), c[3].to_string())
        } else if let Some(c) = range.captures(line) {
            (c.get(1).map(|m| m.as_str()), c[5].to_string())
        } else {
            continue;
        };
        let mut eval =
            Eval { file: file.clone(), line: i + 1, expr, expect_fail: modifier == Some("fail"), fail_message: None };
        for body in lines[i + 1..].iter().take_while(|l| !l.is_empty()) {
            if let Some(m) = body.strip_prefix("expected_fail_message") {
                eval.fail_message = Some(m.trim().to_string());
            }
            if let Some(c) = expect.captures(body) {
                eval.expect_fail = true;
                if c.get(1).map(|m| m.as_str()) == Some("msg") {
                    eval.fail_message = Some(c[2].trim().to_string());
                }
            }
        }
        out.push(eval);
    }
    out
}

/// The compliance tester's values for `{{.name}}` (its `testcases/expand.go`).
fn variant_values(name: &str) -> Vec<&'static str> {
    let arith = ["+", "-", "*", "/", "%", "^"];
    let comp = ["==", "!=", "<", ">", "<=", ">="];
    match name {
        "range" => vec!["1s", "15s", "1m", "5m", "15m", "1h"],
        "offset" => vec!["1m", "5m", "10m"],
        "simpleAggrOp" => vec!["sum", "avg", "max", "min", "count", "stddev", "stdvar"],
        "simpleTimeAggrOp" => vec!["sum", "avg", "max", "min", "count", "stddev", "stdvar", "absent", "last"],
        "topBottomOp" => vec!["topk", "bottomk"],
        "quantile" => vec!["-0.5", "0.1", "0.5", "0.75", "0.95", "0.90", "0.99", "1", "1.5"],
        "arithBinOp" => arith.to_vec(),
        "compBinOp" => comp.to_vec(),
        "binOp" => arith.iter().chain(comp.iter()).copied().collect(),
        "simpleMathFunc" => vec!["abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "round"],
        "extrapolatedRateFunc" => vec!["delta", "rate", "increase"],
        "clampFunc" => vec!["clamp_min", "clamp_max"],
        "instantRateFunc" => vec!["idelta", "irate"],
        "dateFunc" => vec!["day_of_month", "day_of_week", "days_in_month", "hour", "minute", "month", "year"],
        other => panic!("unknown variant argument {other}"),
    }
}

/// (query, should_fail) for every expanded compliance test case.
fn compliance_queries(path: &Path) -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut cases: Vec<(String, Vec<String>, bool)> = vec![];
    for line in text.lines() {
        let t = line.trim();
        if let Some(q) = t.strip_prefix("- query:").or_else(|| t.strip_prefix("query:")) {
            let q = q.trim();
            let q = if let Some(inner) = q.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')) {
                inner.replace("''", "'")
            } else if let Some(inner) = q.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                inner.to_string()
            } else {
                q.to_string()
            };
            cases.push((q, vec![], false));
        } else if let (Some(args), Some(case)) = (t.strip_prefix("variant_args:"), cases.last_mut()) {
            case.1 = args
                .trim()
                .trim_matches(['[', ']'])
                .split(',')
                .map(|a| a.trim().trim_matches('\'').to_string())
                .collect();
        } else if let (true, Some(case)) = (t == "should_fail: true", cases.last_mut()) {
            case.2 = true;
        }
    }
    let mut out = vec![];
    for (template, args, should_fail) in cases {
        let mut expanded = vec![template];
        for arg in &args {
            let key = format!("{{{{.{arg}}}}}");
            let key = key.as_str();
            expanded =
                expanded.iter().flat_map(|q| variant_values(arg).into_iter().map(move |v| q.replace(key, v))).collect();
        }
        out.extend(expanded.into_iter().map(|q| (q, should_fail)));
    }
    out
}

fn round_trip(expr: &Expr, options: ParseOptions) -> Result<(), String> {
    let text = format(expr);
    match parse_with(&text, options) {
        Ok(again) if again.without_spans() == expr.without_spans() => Ok(()),
        Ok(again) => Err(format!("formatted as {text:?}, which parses differently: {again:?} vs {expr:?}")),
        Err(e) => Err(format!("formatted as {text:?}, which fails: {e}")),
    }
}

/// Grafana's variables replaced by what Grafana would send.
fn substitute(line: &str) -> String {
    let fixed = line
        .replace("$__rate_interval", "1m")
        .replace("${__rate_interval}", "1m")
        .replace("$__interval", "1m")
        .replace("${__interval}", "1m")
        .replace("$__range", "1h")
        .replace("$interval", "1m")
        .replace("${interval}", "1m");
    let vars = regex::Regex::new(r"\$\{[A-Za-z0-9_:]+\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[A-Za-z0-9_]+\]\]").unwrap();
    vars.replace_all(&fixed, "x").into_owned()
}

#[test]
fn conformance_promql_parse() {
    let Some(shared) = shared::shared_dir("promql-parse") else { return };
    let options = ParseOptions::all();
    let mut failures = vec![];
    let (mut parsed, mut expected_failures) = (0, 0);

    let conformance = shared.join("conformance/promql");
    for dir in ["testdata", "testdata-v2.42.0"] {
        let mut files: Vec<_> = std::fs::read_dir(conformance.join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for path in files.iter().filter(|p| p.extension().is_some_and(|e| e == "test")) {
            for eval in extract_evals(path) {
                let at = format!("{dir}/{}:{}: {}", eval.file, eval.line, eval.expr);
                let result = parse_with(&eval.expr, options);
                if eval.expect_fail {
                    expected_failures += 1;
                    if let (Err(err), Some(msg)) = (&result, &eval.fail_message) {
                        if msg.contains("parse error") && !msg.ends_with(&err.message) {
                            failures.push(format!("{at}: expected failure {msg:?}, got {err}"));
                        }
                    }
                    if let Ok(e) = &result {
                        if let Err(why) = round_trip(e, options) {
                            failures.push(format!("{at}: {why}"));
                        }
                    }
                    continue;
                }
                match result {
                    Ok(e) => match round_trip(&e, options) {
                        Ok(()) => parsed += 1,
                        Err(why) => failures.push(format!("{at}: {why}")),
                    },
                    Err(err) => {
                        let known = EXPECTED_PARSE_ERRORS
                            .iter()
                            .any(|(needle, msg)| eval.expr.contains(needle) && err.message == *msg);
                        if known {
                            expected_failures += 1;
                        } else {
                            failures.push(format!("{at}: {err}"));
                        }
                    }
                }
            }
        }
    }

    let compliance = compliance_queries(&conformance.join("compliance/promql-test-queries.yml"));
    assert_eq!(compliance.len(), 539, "the compliance tester's file expands to 539 queries");
    for (query, should_fail) in compliance {
        let at = format!("compliance: {query}");
        match parse_with(&query, ParseOptions::default()) {
            Ok(e) => match round_trip(&e, ParseOptions::default()) {
                Ok(()) if !should_fail => parsed += 1,
                Ok(()) => expected_failures += 1,
                Err(why) => failures.push(format!("{at}: {why}")),
            },
            Err(_) if should_fail => expected_failures += 1,
            Err(err) => failures.push(format!("{at}: {err}")),
        }
    }

    let mut inputs: Vec<_> = std::fs::read_dir(shared.join("exporters"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-exprs.txt"))
        .collect();
    inputs.sort();
    inputs.push(shared.join("bench/queries.txt"));
    for path in inputs {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let query = substitute(line);
            let at = format!("{}:{}: {query}", path.file_name().unwrap().to_string_lossy(), i + 1);
            match parse_with(&query, ParseOptions::default()) {
                Ok(e) => match round_trip(&e, ParseOptions::default()) {
                    Ok(()) => parsed += 1,
                    Err(why) => failures.push(format!("{at}: {why}")),
                },
                Err(err) => failures.push(format!("{at}: {err}")),
            }
        }
    }

    println!(
        "conformance promql-parse: {parsed} expressions parsed and round-tripped, {expected_failures} expected failures checked"
    );
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

//! promtool's rule unit tests (`promtool test rules`): input series, alert and PromQL
//! expectations at evaluation times.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sextant_model::{Appendable, Labels, MatchOp, MemStorage};
use sextant_promql::{Engine, EngineOptions, Semantics};

use super::file::{parse_rule_file, RuleFileOptions};
use super::group::{AlertState, Group, GroupOptions, QueryEngine};
use crate::alertmanager::PromDuration;

/// Which Prometheus release the tests are judged against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitTestOptions {
    /// Evaluate with Prometheus 2.x semantics and legacy names (as `promtool` 2.42).
    pub prometheus2: bool,
}

/// Outcome of one unit-test file.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitTestReport {
    pub file: PathBuf,
    /// promtool's lines for each failure; empty when the file passed.
    pub failures: Vec<String>,
}

impl UnitTestReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    evaluation_interval: Option<String>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    interval: Option<String>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<PromqlTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    #[serde(default)]
    values: Scalar,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    #[serde(default)]
    eval_time: Scalar,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, Scalar>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromqlTest {
    expr: String,
    #[serde(default)]
    eval_time: Scalar,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    #[serde(default)]
    value: Scalar,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        // A plain scalar as written (`0x10` stays `0x10`), as Go's yaml decodes into strings.
        Option::<String>::deserialize(d).map(|s| Scalar(s.unwrap_or_default()))
    }
}

fn duration_ms(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Ok(0);
    }
    PromDuration::parse(s).map(|d| d.as_millis() as i64).ok_or_else(|| format!("not a valid duration string: \"{s}\""))
}

/// Series labels written as a selector: `up{job="x"}`.
fn series_labels(s: &str) -> Result<Labels, String> {
    if s.trim().is_empty() || s.trim() == "{}" {
        return Ok(Labels::empty());
    }
    let matchers = sextant_promql::parse_metric_selector(s).map_err(|e| e.to_string())?;
    let mut pairs = Vec::new();
    for m in matchers {
        if m.op != MatchOp::Equal {
            return Err(format!("{s}: only = matchers describe a series"));
        }
        pairs.push((m.name.clone(), m.value.clone()));
    }
    Labels::try_from_pairs(pairs).map_err(|e| e.to_string())
}

fn parse_number(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Expands promtool's value notation (`1+2x3 _ stale 5x2 _x3`) into one slot per step:
/// `None` is a missing sample.
pub(crate) fn expand_values(text: &str) -> Result<Vec<Option<f64>>, String> {
    const MAX_POINTS: usize = 10_000_000;
    let mut out: Vec<Option<f64>> = Vec::new();
    for item in text.split_whitespace() {
        let bad = || format!("bad series values: {item:?}");
        if item == "_" {
            out.push(None);
            continue;
        }
        if item == "stale" {
            out.push(Some(sextant_model::stale_nan()));
            continue;
        }
        let (head, times) = match item.rsplit_once('x') {
            Some((h, n)) => (h, Some(n.parse::<usize>().map_err(|_| bad())?)),
            None => (item, None),
        };
        let Some(n) = times else {
            out.push(Some(parse_number(item).ok_or_else(bad)?));
            continue;
        };
        if out.len() + n > MAX_POINTS {
            return Err("too many series values".into());
        }
        if head == "_" {
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        // a+b, a-b, or a (repeated n+1 times); the sign of a may lead.
        let split = head
            .char_indices()
            .skip(1)
            .find(|&(i, c)| (c == '+' || c == '-') && !matches!(head.as_bytes()[i - 1], b'e' | b'E'));
        let (start, step) = match split {
            Some((i, _)) => (parse_number(&head[..i]).ok_or_else(bad)?, parse_number(&head[i..]).ok_or_else(bad)?),
            None => (parse_number(head).ok_or_else(bad)?, 0.0),
        };
        for k in 0..=n {
            out.push(Some(start + step * k as f64));
        }
    }
    Ok(out)
}

struct Failures(Vec<String>);

/// Runs one unit-test file as `promtool test rules` does.
pub fn run_rule_tests(path: &Path, options: &UnitTestOptions) -> UnitTestReport {
    let mut report = UnitTestReport { file: path.to_path_buf(), failures: Vec::new() };
    if let Err(e) = run_file(path, options, &mut report) {
        report.failures.push(e + "\n");
    }
    report
}

fn run_file(path: &Path, options: &UnitTestOptions, report: &mut UnitTestReport) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let file: TestFile = serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())?;
    let eval_interval = match &file.evaluation_interval {
        Some(s) => duration_ms(s)?,
        None => 60_000,
    }
    .max(1);
    let dir = path.parent().unwrap_or(Path::new("."));
    let rule_options = RuleFileOptions {
        name_validation: if options.prometheus2 {
            sextant_model::NameValidation::Legacy
        } else {
            sextant_model::NameValidation::Utf8
        },
        ignore_unknown_fields: false,
    };
    let mut defs = Vec::new();
    for rf in &file.rule_files {
        let rule_path = dir.join(rf);
        let text = std::fs::read_to_string(&rule_path).map_err(|e| format!("{}: {e}", rule_path.display()))?;
        let groups = parse_rule_file(&text, &rule_options).map_err(|e| format!("{}: {e}", rule_path.display()))?;
        for g in groups.groups {
            defs.push((rule_path.display().to_string(), g));
        }
    }
    if !file.group_eval_order.is_empty() {
        let pos = |name: &str| file.group_eval_order.iter().position(|n| n == name).unwrap_or(usize::MAX);
        defs.sort_by_key(|(_, g)| pos(&g.name));
    }
    let engine = Engine::new(EngineOptions {
        semantics: if options.prometheus2 { Semantics::Prometheus2 } else { Semantics::Prometheus3 },
        default_subquery_step_ms: eval_interval,
        ..EngineOptions::default()
    });
    for tg in &file.tests {
        let mut failures = Failures(Vec::new());
        if let Err(e) = run_group(tg, &defs, eval_interval, &engine, &mut failures) {
            failures.0.push(e);
        }
        report.failures.extend(failures.0.into_iter().map(|f| f + "\n"));
    }
    Ok(())
}

fn sort_key(labels: &Labels) -> String {
    labels.to_string()
}

fn run_group(
    tg: &TestGroup,
    defs: &[(String, super::file::RuleGroupDef)],
    eval_interval: i64,
    engine: &Engine,
    failures: &mut Failures,
) -> Result<(), String> {
    let interval = match &tg.interval {
        Some(s) => duration_ms(s)?,
        None => eval_interval,
    }
    .max(1);
    let db = MemStorage::new();
    {
        let mut app = db.appender();
        for s in &tg.input_series {
            let labels = series_labels(&s.series)?;
            for (i, v) in expand_values(&s.values.0)?.into_iter().enumerate() {
                if let Some(v) = v {
                    app.append(&labels, i as i64 * interval, v).map_err(|e| e.to_string())?;
                }
            }
        }
        app.commit().map_err(|e| e.to_string())?;
    }
    let external_labels = Labels::from_pairs(tg.external_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let group_options = GroupOptions {
        default_interval_ms: eval_interval,
        external_labels,
        external_url: tg.external_url.clone(),
        ..GroupOptions::default()
    };
    let mut groups: Vec<Group> = defs
        .iter()
        .map(|(file, def)| {
            // promtool evaluates every group at the file's evaluation_interval.
            let mut def = def.clone();
            def.interval_ms = Some(eval_interval);
            Group::new(file, &def, group_options.clone())
        })
        .collect();

    let mut alert_tests: Vec<(i64, &AlertTest)> = Vec::new();
    for t in &tg.alert_rule_test {
        alert_tests.push((duration_ms(&t.eval_time.0)?, t));
    }
    alert_tests.sort_by_key(|(t, _)| *t);
    let mut max_t = alert_tests.last().map_or(0, |(t, _)| *t);
    for t in &tg.promql_expr_test {
        max_t = max_t.max(duration_ms(&t.eval_time.0)?);
    }
    let mut next_alert = 0;
    let mut ts = 0;
    while ts <= max_t {
        let mut eval_errors = Vec::new();
        for g in &mut groups {
            g.eval(ts, &db, &db, engine);
            for r in g.rules() {
                if let Some(e) = r.last_error() {
                    eval_errors.push(format!("    rule: {}, time: {}, err: {e}", r.name(), PromDuration(ts as u64)));
                }
            }
        }
        if !eval_errors.is_empty() {
            failures.0.extend(eval_errors);
            return Ok(());
        }
        while next_alert < alert_tests.len() && alert_tests[next_alert].0 < ts + eval_interval {
            let (at, test) = alert_tests[next_alert];
            next_alert += 1;
            check_alerts(at, test, &tg.name, &groups, failures);
        }
        ts += eval_interval;
    }
    for t in &tg.promql_expr_test {
        let at = duration_ms(&t.eval_time.0)?;
        let got = QueryEngine::instant_query(engine, &db, &t.expr, at);
        let got = match got {
            Ok(g) => g,
            Err(e) => {
                failures.0.push(format!("    expr: {:?}, time: {}, err: {e}", t.expr, PromDuration(at as u64)));
                continue;
            }
        };
        let mut exp = Vec::new();
        for s in &t.exp_samples {
            let labels = series_labels(&s.labels)
                .map_err(|e| format!("    expr: {:?}, time: {}, err: {e}", t.expr, PromDuration(at as u64)))?;
            let v = parse_number(s.value.0.trim()).ok_or_else(|| format!("bad sample value {:?}", s.value.0))?;
            exp.push((labels, v));
        }
        let mut got = got;
        got.sort_by_key(|(l, _)| sort_key(l));
        exp.sort_by_key(|(l, _)| sort_key(l));
        let same = got.len() == exp.len()
            && got.iter().zip(&exp).all(|((gl, gv), (el, ev))| {
                gl == el
                    && (gv == ev || (gv.is_nan() && ev.is_nan()) || ((gv - ev).abs() <= 1e-12 * ev.abs().max(gv.abs())))
            });
        if !same {
            failures.0.push(format!(
                "    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
                t.expr,
                PromDuration(at as u64),
                samples_string(&exp),
                samples_string(&got)
            ));
        }
    }
    Ok(())
}

fn samples_string(samples: &[(Labels, f64)]) -> String {
    if samples.is_empty() {
        return "nil".into();
    }
    let parts: Vec<String> =
        samples.iter().map(|(l, v)| format!("{l} {}", crate::template::format_e_shortest(*v))).collect();
    parts.join(", ")
}

fn check_alerts(at: i64, test: &AlertTest, group_name: &str, groups: &[Group], failures: &mut Failures) {
    let mut got: Vec<(Labels, Labels)> = Vec::new();
    for g in groups {
        for r in g.rules() {
            if r.name() != test.alertname || !matches!(r.def.kind, super::file::RuleKind::Alerting { .. }) {
                continue;
            }
            for a in r.alerts() {
                if a.state == AlertState::Firing {
                    got.push((a.labels.clone(), a.annotations.clone()));
                }
            }
        }
    }
    let mut exp: Vec<(Labels, Labels)> = test
        .exp_alerts
        .iter()
        .map(|e| {
            let mut labels: Vec<(String, String)> =
                e.exp_labels.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
            labels.push(("alertname".into(), test.alertname.clone()));
            let ann: Vec<(String, String)> = e.exp_annotations.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
            (Labels::from_pairs(labels), Labels::from_pairs(ann))
        })
        .collect();
    got.sort_by_key(|(l, _)| sort_key(l));
    exp.sort_by_key(|(l, _)| sort_key(l));
    if got != exp {
        let show = |v: &[(Labels, Labels)]| {
            if v.is_empty() {
                return "[]".to_string();
            }
            let mut out = String::from("[\n");
            for (i, (l, a)) in v.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                out.push_str(&format!("            {i}:\n              Labels:{l}\n              Annotations:{a}"));
            }
            out.push_str("\n            ]");
            out
        };
        let name = if group_name.is_empty() { String::new() } else { format!("    name: {group_name},\n") };
        failures.0.push(format!(
            "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
            test.alertname,
            PromDuration(at as u64),
            show(&exp),
            show(&got)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let stale = |v: &Option<f64>| v.is_some_and(sextant_model::is_stale);
        assert_eq!(expand_values("1+2x3").unwrap(), vec![Some(1.0), Some(3.0), Some(5.0), Some(7.0)]);
        assert_eq!(expand_values("-2-1x2 _ 5").unwrap(), vec![Some(-2.0), Some(-3.0), Some(-4.0), None, Some(5.0)]);
        assert_eq!(expand_values("0x2 _x2").unwrap(), vec![Some(0.0), Some(0.0), Some(0.0), None, None]);
        assert_eq!(expand_values("1e3+1e1x1").unwrap(), vec![Some(1000.0), Some(1010.0)]);
        assert!(stale(&expand_values("0 stale").unwrap()[1]));
        assert!(expand_values("1+x").is_err());
        assert!(expand_values("0x99999999999").is_err());
    }

    #[test]
    fn labels_of_series() {
        assert_eq!(
            series_labels(r#"up{job="a", i="b"}"#).unwrap(),
            Labels::from_pairs([("__name__", "up"), ("i", "b"), ("job", "a")])
        );
        assert_eq!(series_labels("").unwrap(), Labels::empty());
        assert!(series_labels(r#"up{job="a""#).is_err());
    }
}

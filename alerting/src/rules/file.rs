//! Rule files in Prometheus' format (`model/rulefmt`): decoding and validation.

use std::collections::HashSet;

use serde::Deserialize;
use sextant_model::{is_valid_legacy_label_name, is_valid_legacy_metric_name, NameValidation};

use crate::alertmanager::PromDuration;
use crate::template::Template;
use crate::Error;

/// How rule files are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleFileOptions {
    /// Label and metric name validation: UTF-8 (Prometheus 3, the default) or legacy (2.x).
    pub name_validation: NameValidation,
    /// Accept keys Prometheus does not know (`promtool check rules --ignore-unknown-fields`).
    pub ignore_unknown_fields: bool,
}

/// A decoded, validated rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroups {
    pub groups: Vec<RuleGroupDef>,
}

/// One group of a rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroupDef {
    pub name: String,
    /// Evaluation interval in ms (`None`: the global `evaluation_interval`).
    pub interval_ms: Option<i64>,
    /// `query_offset` in ms (`None`: the global `rule_query_offset`).
    pub query_offset_ms: Option<i64>,
    /// Most series (recording) or alerts (alerting) one rule may produce; 0 is no limit.
    pub limit: usize,
    /// Labels added to every rule's output; a rule's own labels win.
    pub labels: Vec<(String, String)>,
    pub rules: Vec<RuleDef>,
}

/// One rule, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDef {
    pub kind: RuleKind,
    /// The PromQL expression as written.
    pub expr: String,
    /// Labels (templates, for alerting rules) in file order.
    pub labels: Vec<(String, String)>,
}

/// Recording or alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    Recording { record: String },
    Alerting { alert: String, for_ms: i64, keep_firing_for_ms: i64, annotations: Vec<(String, String)> },
}

impl RuleDef {
    /// The rule's name: `record` or `alert`.
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Recording { record } => record,
            RuleKind::Alerting { alert, .. } => alert,
        }
    }
}

/// A YAML scalar read as a string, as Go's `yaml.Node` / `map[string]string` do.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        // A plain scalar as written (`0x10` stays `0x10`), as Go's yaml decodes into strings.
        Option::<String>::deserialize(d).map(|s| Scalar(s.unwrap_or_default()))
    }
}

pub(super) type ScalarMap = Vec<(String, String)>;

fn map_in_order<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ScalarMap>, D::Error> {
    let map: Option<serde_yaml_ng::Mapping> = Option::deserialize(d)?;
    let Some(map) = map else { return Ok(None) };
    let mut out = Vec::new();
    for (k, v) in map {
        let k: Scalar = serde_yaml_ng::from_value(k).map_err(serde::de::Error::custom)?;
        let v: Scalar = serde_yaml_ng::from_value(v).map_err(serde::de::Error::custom)?;
        out.push((k.0, v.0));
    }
    Ok(Some(out))
}

macro_rules! raw_types {
    ($($attr:meta)?; $file:ident, $group:ident, $rule:ident) => {
        #[derive(Debug, Deserialize)]
        $(#[$attr])?
        pub(super) struct $file {
            #[serde(default)]
            pub(super) groups: Vec<$group>,
        }

        #[derive(Debug, Deserialize)]
        $(#[$attr])?
        pub(super) struct $group {
            #[serde(default)]
            pub(super) name: Scalar,
            pub(super) interval: Option<Scalar>,
            pub(super) query_offset: Option<Scalar>,
            #[serde(default)]
            pub(super) limit: Option<i64>,
            #[serde(default, deserialize_with = "map_in_order")]
            pub(super) labels: Option<ScalarMap>,
            #[serde(default)]
            pub(super) rules: Vec<$rule>,
        }

        #[derive(Debug, Deserialize)]
        $(#[$attr])?
        pub(super) struct $rule {
            pub(super) record: Option<Scalar>,
            pub(super) alert: Option<Scalar>,
            pub(super) expr: Option<Scalar>,
            #[serde(rename = "for")]
            pub(super) for_: Option<Scalar>,
            pub(super) keep_firing_for: Option<Scalar>,
            #[serde(default, deserialize_with = "map_in_order")]
            pub(super) labels: Option<ScalarMap>,
            #[serde(default, deserialize_with = "map_in_order")]
            pub(super) annotations: Option<ScalarMap>,
        }
    };
}

mod strict {
    use super::*;
    raw_types!(serde(deny_unknown_fields); RawFile, RawGroup, RawRule);
}

mod lenient {
    use super::*;
    raw_types!(; RawFile, RawGroup, RawRule);
}

fn yaml_error(err: serde_yaml_ng::Error) -> String {
    let mut message = err.to_string();
    if let Some(loc) = err.location() {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(s) = message.strip_suffix(&suffix) {
            message = s.to_string();
        }
        // serde's "groups[0].rules[0]: unknown field `x`, expected …" → Go yaml's wording.
        if let Some(i) = message.find("unknown field `") {
            let rest = &message[i + "unknown field `".len()..];
            let field = rest.split('`').next().unwrap_or("");
            let ty = if rest.contains("`record`") {
                "rulefmt.RuleNode"
            } else if rest.contains("`rules`") {
                "rulefmt.RuleGroup"
            } else {
                "rulefmt.RuleGroups"
            };
            message = format!("field {field} not found in type {ty}");
        }
        return format!("{}:{}: {message}", loc.line(), loc.column());
    }
    message
}

/// Parses and validates a rule file; every problem found is in the error
/// ([`Error::RuleFile`]), each worded as Prometheus does.
pub fn parse_rule_file(text: &str, options: &RuleFileOptions) -> Result<RuleGroups, Error> {
    // Only the first YAML document counts, as in Prometheus.
    let first = serde_yaml_ng::Deserializer::from_str(text).next();
    let Some(doc) = first else { return Ok(RuleGroups { groups: Vec::new() }) };
    if text.contains("<<") {
        // Merge keys are resolved on a value tree (positions are lost in errors then).
        let mut value = serde_yaml_ng::Value::deserialize(doc).map_err(|e| rule_err(vec![yaml_error(e)]))?;
        value.apply_merge().map_err(|e| rule_err(vec![yaml_error(e)]))?;
        let raw = if options.ignore_unknown_fields {
            lenient_to_strict(lenient::RawFile::deserialize(value).map_err(|e| rule_err(vec![yaml_error(e)]))?)
        } else {
            strict::RawFile::deserialize(value).map_err(|e| rule_err(vec![yaml_error(e)]))?
        };
        return validate(raw, options, text);
    }
    let raw: strict::RawFile = if options.ignore_unknown_fields {
        lenient_to_strict(lenient::RawFile::deserialize(doc).map_err(|e| rule_err(vec![yaml_error(e)]))?)
    } else {
        strict::RawFile::deserialize(doc).map_err(|e| rule_err(vec![yaml_error(e)]))?
    };
    validate(raw, options, text)
}

fn lenient_to_strict(lenient: lenient::RawFile) -> strict::RawFile {
    strict::RawFile {
        groups: lenient
            .groups
            .into_iter()
            .map(|g| strict::RawGroup {
                name: g.name,
                interval: g.interval,
                query_offset: g.query_offset,
                limit: g.limit,
                labels: g.labels,
                rules: g
                    .rules
                    .into_iter()
                    .map(|r| strict::RawRule {
                        record: r.record,
                        alert: r.alert,
                        expr: r.expr,
                        for_: r.for_,
                        keep_firing_for: r.keep_firing_for,
                        labels: r.labels,
                        annotations: r.annotations,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn rule_err(errors: Vec<String>) -> Error {
    Error::RuleFile { errors }
}

fn duration(value: &Option<Scalar>, errors: &mut Vec<String>) -> Option<i64> {
    let s = value.as_ref()?;
    match PromDuration::parse(&s.0) {
        Some(d) => Some(d.as_millis() as i64),
        None => {
            errors.push(format!("not a valid duration string: \"{}\"", s.0));
            None
        }
    }
}

fn label_name_ok(name: &str, scheme: NameValidation) -> bool {
    match scheme {
        NameValidation::Legacy => is_valid_legacy_label_name(name),
        _ => !name.is_empty(),
    }
}

fn validate(raw: strict::RawFile, options: &RuleFileOptions, text: &str) -> Result<RuleGroups, Error> {
    let scheme = options.name_validation;
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut groups = Vec::new();
    for (gi, g) in raw.groups.into_iter().enumerate() {
        let name = g.name.0.clone();
        if name.is_empty() {
            errors.push("Groupname must not be empty".to_string());
        }
        if !seen.insert(name.clone()) {
            errors.push(format!("groupname: \"{name}\" is repeated in the same file"));
        }
        let interval_ms = duration(&g.interval, &mut errors);
        let query_offset_ms = duration(&g.query_offset, &mut errors);
        let group_labels = g.labels.unwrap_or_default();
        for (k, v) in &group_labels {
            if !label_name_ok(k, scheme) || k == "__name__" {
                errors.push(format!("group \"{name}\": invalid label name: {k}"));
            }
            let _ = v;
        }
        let mut rules = Vec::new();
        for (i, r) in g.rules.into_iter().enumerate() {
            let rule_name = r.alert.as_ref().or(r.record.as_ref()).map(|s| s.0.clone()).unwrap_or_default();
            let mut rule_errors: Vec<(String, Node)> = Vec::new();
            let (record, alert) = (r.record.map(|s| s.0), r.alert.map(|s| s.0));
            let record = record.filter(|s| !s.is_empty());
            let alert = alert.filter(|s| !s.is_empty());
            match (&record, &alert) {
                (Some(_), Some(_)) => {
                    rule_errors.push(("only one of 'record' and 'alert' must be set".to_string(), Node::RecordAlert))
                }
                (None, None) => rule_errors.push(("one of 'record' or 'alert' must be set".to_string(), Node::Record)),
                _ => {}
            }
            let expr = r.expr.map(|s| s.0).unwrap_or_default();
            if expr.is_empty() {
                rule_errors.push(("field 'expr' must be set in rule".to_string(), Node::Expr));
            } else if let Err(e) = sextant_promql::parse(&expr) {
                rule_errors.push((format!("could not parse expression: {e}"), Node::Expr));
            }
            let mut duration_errors = Vec::new();
            let for_ms = duration(&r.for_, &mut duration_errors);
            let keep_ms = duration(&r.keep_firing_for, &mut duration_errors);
            rule_errors.extend(duration_errors.into_iter().map(|e| (e, Node::None)));
            let labels = r.labels.unwrap_or_default();
            let annotations = r.annotations.unwrap_or_default();
            if let Some(rec) = &record {
                if !annotations.is_empty() {
                    rule_errors.push(("invalid field 'annotations' in recording rule".to_string(), Node::Record));
                }
                if r.for_.is_some() {
                    rule_errors.push(("invalid field 'for' in recording rule".to_string(), Node::Record));
                }
                if r.keep_firing_for.is_some() {
                    rule_errors.push(("invalid field 'keep_firing_for' in recording rule".to_string(), Node::Record));
                }
                let valid = match scheme {
                    NameValidation::Legacy => is_valid_legacy_metric_name(rec),
                    _ => !rec.is_empty(),
                };
                if !valid {
                    rule_errors.push((format!("invalid recording rule name: {rec}"), Node::Record));
                } else if rec.contains(['{', '}']) {
                    rule_errors.push((
                        format!("braces present in the recording rule name; should it be in expr?: {rec}"),
                        Node::Record,
                    ));
                }
            }
            for (k, _) in &labels {
                if !label_name_ok(k, scheme) || k == "__name__" {
                    rule_errors.push((format!("invalid label name: {k}"), Node::None));
                }
            }
            for (k, _) in &annotations {
                if !label_name_ok(k, scheme) {
                    rule_errors.push((format!("invalid annotation name: {k}"), Node::None));
                }
            }
            if let Some(a) = &alert {
                let tmpl_name = format!("__alert_{a}");
                for (kind, map) in [("label", &labels), ("annotation", &annotations)] {
                    for (k, v) in map {
                        if let Err(e) = Template::parse(&tmpl_name, v) {
                            rule_errors.push((format!("{kind} \"{k}\": {e}"), Node::None));
                        }
                    }
                }
            }
            for (e, node) in &rule_errors {
                let at = |key: &str| {
                    let (line, col) = position(
                        text,
                        &[Step::Key("groups"), Step::Index(gi), Step::Key("rules"), Step::Index(i), Step::Key(key)],
                    );
                    format!("{line}:{col}: ")
                };
                let prefix = match node {
                    Node::None => String::new(),
                    Node::Expr => at("expr"),
                    Node::Record => at("record"),
                    Node::RecordAlert => at("record") + &at("alert"),
                };
                errors.push(format!("{prefix}group \"{name}\", rule {}, \"{rule_name}\": {e}", i + 1));
            }
            if !rule_errors.is_empty() {
                continue;
            }
            let kind = match (record, alert) {
                (Some(record), _) => RuleKind::Recording { record },
                (_, Some(alert)) => RuleKind::Alerting {
                    alert,
                    for_ms: for_ms.unwrap_or(0),
                    keep_firing_for_ms: keep_ms.unwrap_or(0),
                    annotations,
                },
                _ => continue,
            };
            rules.push(RuleDef { kind, expr, labels });
        }
        groups.push(RuleGroupDef {
            name,
            interval_ms,
            query_offset_ms,
            limit: g.limit.unwrap_or(0).max(0) as usize,
            labels: group_labels,
            rules,
        });
    }
    if !errors.is_empty() {
        return Err(rule_err(errors));
    }
    Ok(RuleGroups { groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str, want: Result<usize, &str>) {
        let got = parse_rule_file(yaml, &RuleFileOptions::default());
        match (got, want) {
            (Ok(g), Ok(n)) => assert_eq!(g.groups.iter().map(|g| g.rules.len()).sum::<usize>(), n, "{yaml}"),
            (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{yaml}: {e} does not contain {w}"),
            (got, want) => panic!("{yaml}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn errors_point_at_nodes_as_prometheus() {
        let yaml = "groups:\n- name: g\n  rules:\n  - expr: up\n  - record: x\n    alert: y\n    expr: up\n  - alert: a\n    expr: \"sum(\"\n";
        let err = parse_rule_file(yaml, &RuleFileOptions::default()).unwrap_err().to_string();
        let want = [
            "0:0: group \"g\", rule 1, \"\": one of 'record' or 'alert' must be set",
            "5:13: 6:12: group \"g\", rule 2, \"y\": only one of 'record' and 'alert' must be set",
            "9:11: group \"g\", rule 3, \"a\": could not parse expression: 1:5: parse error: unclosed left parenthesis",
        ];
        assert_eq!(err.lines().collect::<Vec<_>>(), want);
    }

    #[test]
    fn files() {
        check("groups: [{name: a, rules: [{record: x, expr: up}]}]", Ok(1));
        check("groups: [{name: a, interval: 30s, rules: [{alert: A, expr: up == 0, for: 5m}]}]", Ok(1));
        check("groups: [{name: a, rules: [{record: x, alert: y, expr: up}]}]", Err("only one of 'record' and 'alert'"));
        check("groups: [{name: a, rules: [{expr: up}]}]", Err("one of 'record' or 'alert' must be set"));
        check("groups: [{name: a, rules: [{record: x}]}]", Err("field 'expr' must be set in rule"));
        check("groups: [{name: a, rules: [{record: x, expr: 'sum('}]}]", Err("could not parse expression"));
        check("groups: [{name: a, rules: [{record: x, expr: up, for: 1m}]}]", Err("invalid field 'for'"));
        check("groups: [{name: a, rules: [{alert: x, expr: up, for: 1x}]}]", Err("not a valid duration string"));
        check("groups: [{name: a, rules: []}, {name: a, rules: []}]", Err("groupname: \"a\" is repeated"));
        check(
            "groups: [{name: a, rules: [{alert: x, expr: up, foo: 1}]}]",
            Err("field foo not found in type rulefmt.RuleNode"),
        );
        check(
            "groups: [{name: a, rules: [{alert: x, expr: up, annotations: {a: '{{ $label.x }}'}}]}]",
            Err("undefined variable \"$label\""),
        );
        check(
            "groups: [{name: a, rules: [{alert: x, expr: up, labels: {a: '{{$labels.q * 100}}'}}]}]",
            Err("label \"a\""),
        );
        check("groups: [{name: a, rules: [{record: x, expr: 1}]}]\n---\nfoo: bar\n", Ok(1));
    }
}

/// The YAML node a rule error points at, as Prometheus chooses it.
#[derive(Debug, Clone, Copy)]
enum Node {
    None,
    Expr,
    Record,
    RecordAlert,
}

/// One step of a path into the YAML document.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Marker error raised at the node a [`Probe`] looks for: its location is the node's.
const PROBE_HIT: &str = "\u{0}probe";

struct Probe<'a> {
    path: &'a [Step<'a>],
}

impl<'de> serde::de::DeserializeSeed<'de> for Probe<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.path.first() {
            None => d.deserialize_any(Hit).map(|_| ()),
            Some(Step::Key(_)) => d.deserialize_map(self),
            Some(Step::Index(_)) => d.deserialize_seq(self),
        }
    }
}

/// Fails inside the node's own visitor, so the error carries the node's position.
struct Hit;

impl<'de> serde::de::Visitor<'de> for Hit {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a node")
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(PROBE_HIT))
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(PROBE_HIT))
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(PROBE_HIT))
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(PROBE_HIT))
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(PROBE_HIT))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Err(E::custom(PROBE_HIT))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(serde::de::Error::custom(PROBE_HIT))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(serde::de::Error::custom(PROBE_HIT))
    }
}

impl<'de> serde::de::Visitor<'de> for Probe<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a node")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(Step::Key(want)) = self.path.first() else { return Ok(()) };
        while let Some(key) = map.next_key::<Scalar>()? {
            if key.0 == *want {
                map.next_value_seed(Probe { path: &self.path[1..] })?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some(Step::Index(want)) = self.path.first() else { return Ok(()) };
        let mut i = 0;
        loop {
            let found = if i == *want {
                seq.next_element_seed(Probe { path: &self.path[1..] })?
            } else {
                seq.next_element::<serde::de::IgnoredAny>()?.map(|_| ())
            };
            if found.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
}

/// Line and column (1-based) of the node at `path` in the first document, as Go's yaml.Node
/// gives them; `(0, 0)` where the node does not exist, as Prometheus prints an unset node.
fn position(text: &str, path: &[Step<'_>]) -> (usize, usize) {
    use serde::de::DeserializeSeed;
    let Some(doc) = serde_yaml_ng::Deserializer::from_str(text).next() else { return (0, 0) };
    match (Probe { path }).deserialize(doc) {
        Err(e) if e.to_string().contains(PROBE_HIT) => e.location().map_or((0, 0), |l| (l.line(), l.column())),
        _ => (0, 0),
    }
}

//! Rule groups and their evaluation: recording rules, the alert state machine, `ALERTS` and
//! `ALERTS_FOR_STATE`, staleness, limits, `for` state restoration.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use sextant_model::{stale_nan, Appendable, Labels, LabelsBuilder, Matcher, Queryable};

use super::file::{RuleDef, RuleGroupDef, RuleKind};
use super::notify::{generator_url, Notification};
use crate::template::{expand_alert_template, QueryFunc, TemplateData};

/// How long a resolved alert is kept (and re-sent as resolved).
const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// The query engine as rules see it: an instant query at a time, returning samples (a scalar
/// is one sample without labels). `sextant_promql::Engine` implements it.
pub trait QueryEngine {
    fn instant_query(&self, storage: &dyn Queryable, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String>;
}

impl QueryEngine for sextant_promql::Engine {
    fn instant_query(&self, storage: &dyn Queryable, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        let parsed = sextant_promql::parse(expr).map_err(|e| e.to_string())?;
        let result = sextant_promql::Engine::instant_query(self, storage, &parsed, t_ms).map_err(|e| e.to_string())?;
        match result.value {
            sextant_promql::Value::Vector(samples) => Ok(samples.into_iter().map(|s| (s.labels, s.f)).collect()),
            sextant_promql::Value::Scalar { v, .. } => Ok(vec![(Labels::empty(), v)]),
            other => Err(format!("rule result is not a vector or scalar: {}", other.type_name())),
        }
    }
}

/// Settings of a group beyond its file definition (Prometheus' flags and global config).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupOptions {
    /// `global.evaluation_interval`, used when the group has no `interval` (ms).
    pub default_interval_ms: i64,
    /// `global.rule_query_offset` (ms).
    pub default_query_offset_ms: i64,
    pub external_labels: Labels,
    pub external_url: String,
    /// Restore `for` state from `ALERTS_FOR_STATE` on the first evaluations (a fresh start);
    /// without it alerting rules write their series from the first evaluation.
    pub restore: bool,
    /// `--rules.alert.for-outage-tolerance` (ms).
    pub for_outage_tolerance_ms: i64,
    /// `--rules.alert.for-grace-period` (ms).
    pub for_grace_period_ms: i64,
}

impl Default for GroupOptions {
    fn default() -> GroupOptions {
        GroupOptions {
            default_interval_ms: 60_000,
            default_query_offset_ms: 0,
            external_labels: Labels::empty(),
            external_url: String::new(),
            restore: false,
            for_outage_tolerance_ms: 3_600_000,
            for_grace_period_ms: 600_000,
        }
    }
}

/// State of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    pub state: AlertState,
    pub value: f64,
    pub active_at_ms: i64,
    pub fired_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub last_sent_at_ms: Option<i64>,
    pub valid_until_ms: Option<i64>,
    pub keep_firing_since_ms: Option<i64>,
}

/// Health of a rule after its last evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleHealth {
    Unknown,
    Ok,
    Err,
}

impl RuleHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleHealth::Unknown => "unknown",
            RuleHealth::Ok => "ok",
            RuleHealth::Err => "err",
        }
    }
}

/// A rule with its evaluation state.
#[derive(Debug, Clone)]
pub struct Rule {
    pub def: RuleDef,
    /// Group labels merged under the rule's own.
    labels: Vec<(String, String)>,
    health: RuleHealth,
    last_error: Option<String>,
    last_eval_ms: Option<i64>,
    eval_duration_s: f64,
    series_in_previous_eval: HashSet<Labels>,
    active: HashMap<Labels, Alert>,
    restored: bool,
}

impl Rule {
    pub fn name(&self) -> &str {
        self.def.name()
    }
    pub fn health(&self) -> RuleHealth {
        self.health
    }
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
    pub fn last_evaluation_ms(&self) -> Option<i64> {
        self.last_eval_ms
    }
    /// Wall time of the last evaluation, in seconds.
    pub fn evaluation_duration_s(&self) -> f64 {
        self.eval_duration_s
    }
    /// The rule's labels: the group's labels under the rule's own.
    pub fn labels(&self) -> &[(String, String)] {
        &self.labels
    }
    /// Alerts (pending, firing, and resolved ones still retained), sorted by labels.
    pub fn alerts(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.active.values().collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }
    /// Highest state among the rule's alerts (`inactive` for recording rules).
    pub fn state(&self) -> AlertState {
        self.active.values().map(|a| a.state).max().unwrap_or(AlertState::Inactive)
    }
}

/// Counters of a group, for self-metrics (`sextant_rule_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GroupMetrics {
    pub evaluations_total: u64,
    pub evaluation_failures_total: u64,
    pub last_evaluation_ms: Option<i64>,
    pub last_duration_s: f64,
    pub last_rule_samples: u64,
}

/// A rule group: rules evaluated in order at one timestamp per interval.
#[derive(Debug, Clone)]
pub struct Group {
    name: String,
    file: String,
    interval_ms: i64,
    query_offset_ms: i64,
    limit: usize,
    options: GroupOptions,
    rules: Vec<Rule>,
    metrics: GroupMetrics,
    n_evals: u64,
    restored: bool,
}

struct TemplateQuery<'a> {
    engine: &'a dyn QueryEngine,
    storage: &'a dyn Queryable,
}

impl QueryFunc for TemplateQuery<'_> {
    fn query(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        self.engine.instant_query(self.storage, expr, t_ms)
    }
}

impl Group {
    /// A group from its definition in `file`.
    pub fn new(file: &str, def: &RuleGroupDef, options: GroupOptions) -> Group {
        let rules = def
            .rules
            .iter()
            .map(|r| {
                let mut labels: Vec<(String, String)> =
                    def.labels.iter().filter(|(k, _)| !r.labels.iter().any(|(rk, _)| rk == k)).cloned().collect();
                labels.extend(r.labels.iter().cloned());
                Rule {
                    def: r.clone(),
                    labels,
                    health: RuleHealth::Unknown,
                    last_error: None,
                    last_eval_ms: None,
                    eval_duration_s: 0.0,
                    series_in_previous_eval: HashSet::new(),
                    active: HashMap::new(),
                    restored: !options.restore,
                }
            })
            .collect();
        Group {
            name: def.name.clone(),
            file: file.to_string(),
            interval_ms: def.interval_ms.filter(|&i| i > 0).unwrap_or(options.default_interval_ms).max(1),
            query_offset_ms: def.query_offset_ms.unwrap_or(options.default_query_offset_ms),
            limit: def.limit,
            restored: !options.restore,
            options,
            rules,
            metrics: GroupMetrics::default(),
            n_evals: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn file(&self) -> &str {
        &self.file
    }
    pub fn interval_ms(&self) -> i64 {
        self.interval_ms
    }
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
    pub fn metrics(&self) -> GroupMetrics {
        self.metrics
    }

    /// The group's stable phase within its interval, from its file and name.
    pub fn offset_ms(&self) -> i64 {
        let key = Labels::from_pairs([("file", self.file.as_str()), ("name", self.name.as_str())]);
        (key.stable_hash() % self.interval_ms as u64) as i64
    }

    /// The evaluation timestamp of the interval `now` falls in: `k × interval + offset`.
    pub fn eval_timestamp(&self, now_ms: i64) -> i64 {
        let offset = self.offset_ms();
        let adj = now_ms - offset;
        adj - adj.rem_euclid(self.interval_ms) + offset
    }

    /// Copies alert state and previous-evaluation series from `old` for rules with the same
    /// name and labels (a reload).
    pub fn copy_state(&mut self, old: &Group) {
        for rule in &mut self.rules {
            if let Some(o) = old.rules.iter().find(|o| {
                o.def.name() == rule.def.name() && o.labels == rule.labels && o.def.kind.same_type(&rule.def.kind)
            }) {
                rule.active = o.active.clone();
                rule.series_in_previous_eval = o.series_in_previous_eval.clone();
                rule.restored = o.restored;
            }
        }
        self.restored = old.restored;
        self.n_evals = old.n_evals;
    }

    /// Evaluates every rule in order at `ts_ms` (an evaluation timestamp), writing results
    /// through `appendable` (committed after each rule, so later rules see earlier results).
    pub fn eval(&mut self, ts_ms: i64, storage: &dyn Queryable, appendable: &dyn Appendable, engine: &dyn QueryEngine) {
        let started = Instant::now();
        let query_ts = ts_ms - self.query_offset_ms;
        let mut total_samples = 0u64;
        let tq = TemplateQuery { engine, storage };
        for rule in &mut self.rules {
            let rule_started = Instant::now();
            self.metrics.evaluations_total += 1;
            let result = match &rule.def.kind {
                RuleKind::Recording { .. } => eval_recording(rule, query_ts, self.limit, storage, engine),
                RuleKind::Alerting { .. } => {
                    eval_alerting(rule, ts_ms, query_ts, self.limit, &self.options, storage, engine, &tq)
                }
            };
            let mut current = HashSet::new();
            let outcome = result.and_then(|samples| {
                let mut app = appendable.appender();
                for (labels, v) in &samples {
                    // Out-of-order or duplicate samples are skipped, as Prometheus does.
                    if app.append(labels, query_ts, *v).is_ok() {
                        current.insert(labels.clone());
                    }
                }
                for gone in rule.series_in_previous_eval.difference(&current) {
                    let _ = app.append(gone, query_ts, stale_nan());
                }
                app.commit().map_err(|e| e.to_string())?;
                total_samples += samples.len() as u64;
                Ok(())
            });
            match outcome {
                Ok(()) => {
                    rule.health = RuleHealth::Ok;
                    rule.last_error = None;
                    rule.series_in_previous_eval = current;
                }
                Err(e) => {
                    rule.health = RuleHealth::Err;
                    rule.last_error = Some(e);
                    self.metrics.evaluation_failures_total += 1;
                    // Series of the failed evaluation go stale.
                    let mut app = appendable.appender();
                    for gone in rule.series_in_previous_eval.drain() {
                        let _ = app.append(&gone, query_ts, stale_nan());
                    }
                    let _ = app.commit();
                }
            }
            rule.last_eval_ms = Some(ts_ms);
            rule.eval_duration_s = rule_started.elapsed().as_secs_f64();
        }
        self.n_evals += 1;
        self.metrics.last_evaluation_ms = Some(ts_ms);
        self.metrics.last_duration_s = started.elapsed().as_secs_f64();
        self.metrics.last_rule_samples = total_samples;
        // A fresh start restores `for` state after the second evaluation.
        if !self.restored && self.n_evals >= 2 {
            self.restore_for_state(ts_ms, storage);
        }
    }

    /// Restores the `ActiveAt` of pending alerts from `ALERTS_FOR_STATE` written before a
    /// restart (Prometheus' `RestoreForState`), then starts writing the alert series.
    pub fn restore_for_state(&mut self, now_ms: i64, storage: &dyn Queryable) {
        let tolerance = self.options.for_outage_tolerance_ms;
        let grace = self.options.for_grace_period_ms;
        for rule in &mut self.rules {
            let RuleKind::Alerting { alert, for_ms, .. } = &rule.def.kind else {
                rule.restored = true;
                continue;
            };
            if *for_ms < grace || rule.active.is_empty() {
                rule.restored = true;
                continue;
            }
            let mut matchers =
                vec![Matcher::equal("__name__", "ALERTS_FOR_STATE"), Matcher::equal("alertname", alert.as_str())];
            for (k, v) in &rule.labels {
                if !v.contains("{{") && k != "alertname" {
                    matchers.push(Matcher::equal(k.as_str(), v.as_str()));
                }
            }
            let mut last: HashMap<Labels, (i64, f64)> = HashMap::new();
            if let Ok(querier) = storage.querier(now_ms - tolerance, now_ms) {
                if let Ok(set) = querier.select(false, None, &matchers) {
                    for series in set.flatten() {
                        let mut samples = series.samples;
                        let mut newest = None;
                        while samples.next() != sextant_model::ValueType::Exhausted {
                            newest = Some(samples.at());
                        }
                        if let Some(s) = newest {
                            last.insert(series.labels.without_metric_name(), s);
                        }
                    }
                }
            }
            for a in rule.active.values_mut() {
                let Some(&(down_at, restored_active_s)) = last.get(&a.labels) else { continue };
                if sextant_model::is_stale(restored_active_s) {
                    continue;
                }
                let restored_active = (restored_active_s * 1000.0) as i64;
                let spent = down_at - restored_active;
                let remaining = for_ms - spent;
                a.active_at_ms = if remaining <= 0 {
                    restored_active
                } else if remaining < grace {
                    now_ms + grace - for_ms
                } else {
                    restored_active + (now_ms - down_at)
                };
            }
            rule.restored = true;
        }
        self.restored = true;
    }

    /// Alerts to send to Alertmanagers at `ts_ms`: firing or resolved ones that are new,
    /// newly resolved, or not sent for `resend_delay_ms` (pending ones never). Marks them sent.
    pub fn alerts_to_send(&mut self, ts_ms: i64, resend_delay_ms: i64) -> Vec<Notification> {
        let valid_for = 4 * self.interval_ms.max(resend_delay_ms);
        let mut out = Vec::new();
        for rule in &mut self.rules {
            let mut url = None;
            for a in rule.active.values_mut() {
                if a.state == AlertState::Pending {
                    continue;
                }
                let resolved_after_send = match (a.resolved_at_ms, a.last_sent_at_ms) {
                    (Some(r), Some(s)) => r > s,
                    (Some(_), None) => true,
                    _ => false,
                };
                let due = a.last_sent_at_ms.is_none_or(|s| s + resend_delay_ms < ts_ms);
                if resolved_after_send || due {
                    a.last_sent_at_ms = Some(ts_ms);
                    let valid_until = ts_ms + valid_for;
                    a.valid_until_ms = Some(valid_until);
                    let url = url.get_or_insert_with(|| generator_url(&self.options.external_url, &rule.def.expr));
                    out.push(Notification {
                        labels: a.labels.clone(),
                        annotations: a.annotations.clone(),
                        starts_at_ms: a.fired_at_ms.unwrap_or(a.active_at_ms),
                        ends_at_ms: a.resolved_at_ms.unwrap_or(valid_until),
                        generator_url: url.clone(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

impl RuleKind {
    fn same_type(&self, other: &RuleKind) -> bool {
        matches!(
            (self, other),
            (RuleKind::Recording { .. }, RuleKind::Recording { .. })
                | (RuleKind::Alerting { .. }, RuleKind::Alerting { .. })
        )
    }
}

fn eval_recording(
    rule: &Rule,
    query_ts: i64,
    limit: usize,
    storage: &dyn Queryable,
    engine: &dyn QueryEngine,
) -> Result<Vec<(Labels, f64)>, String> {
    let RuleKind::Recording { record } = &rule.def.kind else { return Ok(Vec::new()) };
    let samples = engine.instant_query(storage, &rule.def.expr, query_ts)?;
    let mut out = Vec::with_capacity(samples.len());
    let mut seen = HashSet::new();
    for (labels, v) in samples {
        let mut b = LabelsBuilder::new(&labels);
        b.set("__name__", record);
        for (k, val) in &rule.labels {
            if val.is_empty() {
                b.del(k);
            } else {
                b.set(k, val);
            }
        }
        let l = b.labels();
        if !seen.insert(l.clone()) {
            return Err("vector contains metrics with the same labelset after applying rule labels".into());
        }
        out.push((l, v));
    }
    if limit > 0 && out.len() > limit {
        return Err(format!("exceeded limit {limit} with {} series", out.len()));
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn eval_alerting(
    rule: &mut Rule,
    ts: i64,
    query_ts: i64,
    limit: usize,
    options: &GroupOptions,
    storage: &dyn Queryable,
    engine: &dyn QueryEngine,
    tq: &dyn QueryFunc,
) -> Result<Vec<(Labels, f64)>, String> {
    let RuleKind::Alerting { alert: name, for_ms, keep_firing_for_ms, annotations } = &rule.def.kind else {
        return Ok(Vec::new());
    };
    let samples = engine.instant_query(storage, &rule.def.expr, query_ts)?;
    let tmpl_name = format!("__alert_{name}");
    let mut fresh: HashMap<Labels, Alert> = HashMap::new();
    for (labels, v) in samples {
        let data = TemplateData {
            labels: labels.clone(),
            external_labels: options.external_labels.clone(),
            external_url: options.external_url.clone(),
            value: v,
        };
        let mut b = LabelsBuilder::new(&labels);
        b.del("__name__");
        for (k, t) in &rule.labels {
            let val = expand_alert_template(&tmpl_name, t, &data, query_ts, Some(tq));
            if val.is_empty() {
                b.del(k);
            } else {
                b.set(k, &val);
            }
        }
        b.set("alertname", name);
        let alert_labels = b.labels();
        let ann: Vec<(String, String)> = annotations
            .iter()
            .map(|(k, t)| (k.clone(), expand_alert_template(&tmpl_name, t, &data, query_ts, Some(tq))))
            .collect();
        let ann = Labels::from_pairs(ann);
        if fresh.contains_key(&alert_labels) {
            return Err("vector contains metrics with the same labelset after applying alert labels".into());
        }
        fresh.insert(
            alert_labels.clone(),
            Alert {
                labels: alert_labels,
                annotations: ann,
                state: AlertState::Pending,
                value: v,
                active_at_ms: ts,
                fired_at_ms: None,
                resolved_at_ms: None,
                last_sent_at_ms: None,
                valid_until_ms: None,
                keep_firing_since_ms: None,
            },
        );
    }
    for (labels, a) in fresh.iter() {
        match rule.active.get_mut(labels) {
            Some(existing) if existing.state != AlertState::Inactive => {
                existing.value = a.value;
                existing.annotations = a.annotations.clone();
            }
            _ => {
                rule.active.insert(labels.clone(), a.clone());
            }
        }
    }
    let mut out = Vec::new();
    let mut to_delete = Vec::new();
    for (labels, a) in rule.active.iter_mut() {
        if !fresh.contains_key(labels) {
            let mut keep_firing = false;
            if a.state == AlertState::Firing && *keep_firing_for_ms > 0 {
                let since = *a.keep_firing_since_ms.get_or_insert(ts);
                keep_firing = ts - since < *keep_firing_for_ms;
            }
            if a.state == AlertState::Pending || a.resolved_at_ms.is_some_and(|r| ts - r > RESOLVED_RETENTION_MS) {
                to_delete.push(labels.clone());
                continue;
            }
            if a.state != AlertState::Inactive && !keep_firing {
                a.state = AlertState::Inactive;
                a.resolved_at_ms = Some(ts);
            }
            if !keep_firing {
                continue;
            }
        } else {
            a.keep_firing_since_ms = None;
        }
        if a.state == AlertState::Pending && ts - a.active_at_ms >= *for_ms {
            a.state = AlertState::Firing;
            a.fired_at_ms = Some(ts);
        }
        if rule.restored {
            let mut b = LabelsBuilder::new(&a.labels);
            b.set("__name__", "ALERTS");
            b.set("alertstate", a.state.as_str());
            out.push((b.labels(), 1.0));
            let mut b = LabelsBuilder::new(&a.labels);
            b.set("__name__", "ALERTS_FOR_STATE");
            out.push((b.labels(), a.active_at_ms as f64 / 1000.0));
        }
    }
    for l in to_delete {
        rule.active.remove(&l);
    }
    let n_active = rule.active.values().filter(|a| a.state != AlertState::Inactive).count();
    if limit > 0 && n_active > limit {
        rule.active.clear();
        return Err(format!("exceeded limit of {limit} with {n_active} alerts"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use sextant_model::MemStorage;

    use super::*;
    use crate::rules::{parse_rule_file, RuleFileOptions};

    /// Answers each query with a scripted result; `query_log` records what was asked.
    #[derive(Default)]
    struct FakeEngine {
        results: RefCell<HashMap<String, Vec<(Labels, f64)>>>,
    }

    impl QueryEngine for FakeEngine {
        fn instant_query(&self, _: &dyn Queryable, expr: &str, _: i64) -> Result<Vec<(Labels, f64)>, String> {
            self.results.borrow().get(expr).cloned().ok_or_else(|| format!("no result for {expr}"))
        }
    }

    fn group(yaml: &str) -> Group {
        let file = parse_rule_file(yaml, &RuleFileOptions::default()).unwrap();
        Group::new("f.yml", &file.groups[0], GroupOptions::default())
    }

    fn series(db: &MemStorage, name: &str) -> Vec<(Labels, Vec<(i64, f64)>)> {
        let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
        let mut out = Vec::new();
        for s in q.select(true, None, &[Matcher::equal("__name__", name)]).unwrap() {
            let s = s.unwrap();
            let mut it = s.samples;
            let mut v = Vec::new();
            while it.next() != sextant_model::ValueType::Exhausted {
                v.push(it.at());
            }
            out.push((s.labels, v));
        }
        out
    }

    #[test]
    fn alert_lifecycle_with_for_and_keep_firing_for() {
        let mut g = group(
            "groups: [{name: g, rules: [{alert: A, expr: x > 1, for: 2m, keep_firing_for: 1m, labels: {sev: '{{ $labels.job }}'}, annotations: {v: '{{ $value }}'}}]}]",
        );
        let db = MemStorage::new();
        let engine = FakeEngine::default();
        let hit = vec![(Labels::from_pairs([("__name__", "x"), ("job", "a")]), 5.0)];
        let states = |g: &Group| g.rules()[0].alerts().iter().map(|a| a.state).collect::<Vec<_>>();
        let mut seen = Vec::new();
        for (minute, firing) in [(0, true), (1, true), (2, true), (3, false), (4, false), (5, false)] {
            engine.results.borrow_mut().insert("x > 1".into(), if firing { hit.clone() } else { Vec::new() });
            g.eval(minute * 60_000, &db, &db, &engine);
            seen.push(states(&g));
        }
        use AlertState::*;
        assert_eq!(
            seen,
            vec![vec![Pending], vec![Pending], vec![Firing], vec![Firing], vec![Inactive], vec![Inactive]]
        );
        let a = g.rules()[0].alerts()[0].clone();
        assert_eq!(a.labels, Labels::from_pairs([("alertname", "A"), ("job", "a"), ("sev", "a")]));
        assert_eq!(a.annotations.get("v"), Some("5"));
        assert_eq!((a.active_at_ms, a.fired_at_ms, a.resolved_at_ms), (0, Some(120_000), Some(240_000)));
        let alerts = series(&db, "ALERTS");
        let firing = alerts.iter().find(|(l, _)| l.get("alertstate") == Some("firing")).unwrap();
        assert_eq!(firing.1.len(), 3);
        assert!(sextant_model::is_stale(firing.1[2].1), "ALERTS goes stale when resolved");
        assert_eq!(series(&db, "ALERTS_FOR_STATE")[0].1[0], (0, 0.0));
    }

    #[test]
    fn firing_and_resolved_alerts_are_sent_then_resent_after_the_delay() {
        let mut g = group("groups: [{name: g, rules: [{alert: A, expr: x, for: 1m}]}]");
        let db = MemStorage::new();
        let engine = FakeEngine::default();
        engine.results.borrow_mut().insert("x".into(), vec![(Labels::empty(), 1.0)]);
        let mut sent = Vec::new();
        for minute in 0..6 {
            if minute == 4 {
                engine.results.borrow_mut().insert("x".into(), Vec::new());
            }
            g.eval(minute * 60_000, &db, &db, &engine);
            let n = g.alerts_to_send(minute * 60_000, 90_000);
            sent.push(n.iter().map(|n| (n.starts_at_ms, n.ends_at_ms)).collect::<Vec<_>>());
        }
        // Pending at 0; fires at 1m (sent, lease 4 × 90s); resent at 3m (> 1m + 90s);
        // resolved at 4m, sent at once; not again at 5m.
        let want: Vec<Vec<(i64, i64)>> =
            vec![vec![], vec![(60_000, 420_000)], vec![], vec![(60_000, 540_000)], vec![(60_000, 240_000)], vec![]];
        assert_eq!(sent, want);
    }

    #[test]
    fn pending_alert_vanishes_and_limit_clears_state() {
        let mut g = group("groups: [{name: g, limit: 1, rules: [{alert: A, expr: x, for: 5m}]}]");
        let db = MemStorage::new();
        let engine = FakeEngine::default();
        let two = vec![(Labels::from_pairs([("i", "1")]), 1.0), (Labels::from_pairs([("i", "2")]), 1.0)];
        engine.results.borrow_mut().insert("x".into(), two[..1].to_vec());
        g.eval(0, &db, &db, &engine);
        assert_eq!(g.rules()[0].alerts().len(), 1);
        engine.results.borrow_mut().insert("x".into(), Vec::new());
        g.eval(60_000, &db, &db, &engine);
        assert_eq!(g.rules()[0].alerts().len(), 0);
        engine.results.borrow_mut().insert("x".into(), two);
        g.eval(120_000, &db, &db, &engine);
        assert_eq!(g.rules()[0].health(), RuleHealth::Err);
        assert_eq!(g.rules()[0].last_error(), Some("exceeded limit of 1 with 2 alerts"));
        assert!(g.rules()[0].alerts().is_empty());
        assert_eq!(g.metrics().evaluation_failures_total, 1);
    }

    #[test]
    fn recording_rules_write_at_eval_time_and_go_stale() {
        let mut g = group("groups: [{name: g, rules: [{record: 'job:x:sum', expr: x, labels: {a: b}}]}]");
        let db = MemStorage::new();
        let engine = FakeEngine::default();
        engine
            .results
            .borrow_mut()
            .insert("x".into(), vec![(Labels::from_pairs([("__name__", "x"), ("job", "j")]), 2.0)]);
        g.eval(10_000, &db, &db, &engine);
        engine.results.borrow_mut().insert("x".into(), Vec::new());
        g.eval(70_000, &db, &db, &engine);
        let got = series(&db, "job:x:sum");
        assert_eq!(got[0].0, Labels::from_pairs([("__name__", "job:x:sum"), ("a", "b"), ("job", "j")]));
        assert_eq!(got[0].1[0], (10_000, 2.0));
        assert!(sextant_model::is_stale(got[0].1[1].1));
        assert_eq!(g.rules()[0].health(), RuleHealth::Ok);
    }

    #[test]
    fn eval_timestamps_have_a_stable_phase() {
        let g = group("groups: [{name: g, interval: 1m, rules: []}]");
        let off = g.offset_ms();
        assert!((0..60_000).contains(&off));
        for now in [0, 59_999, 60_000, 1_234_567] {
            let ts = g.eval_timestamp(now);
            assert!(ts <= now && now - ts < 60_000);
            assert_eq!((ts - off).rem_euclid(60_000), 0);
        }
    }

    #[test]
    fn for_state_is_restored_after_a_restart() {
        let file =
            parse_rule_file("groups: [{name: g, rules: [{alert: A, expr: x, for: 30m}]}]", &RuleFileOptions::default())
                .unwrap();
        let db = MemStorage::new();
        // Before the restart the alert had been pending since t=0, last written at 10m.
        let mut app = db.appender();
        app.append(&Labels::from_pairs([("__name__", "ALERTS_FOR_STATE"), ("alertname", "A")]), 600_000, 0.0).unwrap();
        app.commit().unwrap();
        let options = GroupOptions { restore: true, ..GroupOptions::default() };
        let mut g = Group::new("f.yml", &file.groups[0], options);
        let engine = FakeEngine::default();
        engine.results.borrow_mut().insert("x".into(), vec![(Labels::empty(), 1.0)]);
        g.eval(1_200_000, &db, &db, &engine);
        g.eval(1_260_000, &db, &db, &engine);
        // 10m spent pending, 20m remain; the 11m outage is not counted.
        assert_eq!(g.rules()[0].alerts()[0].active_at_ms, 660_000);
    }
}

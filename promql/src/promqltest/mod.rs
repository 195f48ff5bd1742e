//! The promqltest runner: Prometheus' `.test` script language (`load`, `clear`,
//! `eval instant|range`, `expect …`), run against [`MemStorage`] with this crate's engine.
//!
//! This runner is float-only: native-histogram values in `load` lines keep their slot but
//! store nothing, `load_with_nhcb` is `load`, and `@st` lines are ignored.
//!
//! A [`SkipList`] names the evals not to run, each with a reason: read from a text file
//! (`FILE:LINE reason`) or derived from `evals.tsv` ([`parse_evals_tsv`]), the inventory
//! that marks the evals needing native histograms or start timestamps.

mod parse;
mod skip;

use std::fmt;

use sextant_model::{is_stale, Appendable, Labels, MemStorage};

use crate::ast::{At, Expr};
use crate::engine::{labels_string as ls, Engine, EngineOptions, QueryResult, Semantics, Value};
use crate::error::Error;
use crate::parser::ParseOptions;
use parse::{Cmd, EvalCmd, Slot};
pub use skip::{parse_evals_tsv, EvalsTsvRow, SkipList, NATIVE_HISTOGRAMS, START_TIMESTAMPS};

/// Which Prometheus' test dialect and engine settings to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Dialect {
    /// Prometheus 3.x: left-open windows, delayed name removal, every parser feature on.
    #[default]
    V3,
    /// Prometheus 2.42: closed windows, names dropped at once, stable PromQL only.
    V2_42,
}

/// Options of a script run.
#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    pub dialect: Dialect,
}

/// The verdict on one `eval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalStatus {
    Passed,
    /// Why it failed (expected versus got).
    Failed(String),
    /// Not run, and why.
    Skipped(String),
}

/// One `eval` of a script and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalOutcome {
    /// 1-based line of the `eval` command.
    pub line: usize,
    pub expr: String,
    pub status: EvalStatus,
}

/// The outcome of a whole script: every eval, or the error that stopped the script from
/// being read or loaded.
#[derive(Debug, Clone, Default)]
pub struct ScriptReport {
    pub evals: Vec<EvalOutcome>,
    /// A parse or load error (`line`, message): the evals after it did not run.
    pub error: Option<(usize, String)>,
}

impl ScriptReport {
    pub fn passed(&self) -> usize {
        self.evals.iter().filter(|e| e.status == EvalStatus::Passed).count()
    }

    pub fn failed(&self) -> usize {
        self.evals.iter().filter(|e| matches!(e.status, EvalStatus::Failed(_))).count()
    }

    pub fn skipped(&self) -> usize {
        self.evals.iter().filter(|e| matches!(e.status, EvalStatus::Skipped(_))).count()
    }
}

impl fmt::Display for EvalOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.status {
            EvalStatus::Passed => write!(f, "{}: {}: ok", self.line, self.expr),
            EvalStatus::Failed(m) => write!(f, "{}: {}: {m}", self.line, self.expr),
            EvalStatus::Skipped(m) => write!(f, "{}: {}: skipped: {m}", self.line, self.expr),
        }
    }
}

/// Runs a script. `skip` is asked for every eval (by line) and returns a reason to skip it.
pub fn run_script(text: &str, options: &TestOptions, skip: &dyn Fn(usize) -> Option<String>) -> ScriptReport {
    let mut report = ScriptReport::default();
    let cmds = match parse::parse_script(text) {
        Ok(c) => c,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    let v3 = options.dialect == Dialect::V3;
    let engine = Engine::new(EngineOptions {
        lookback_delta_ms: 5 * 60 * 1000,
        max_samples: 50_000_000,
        timeout: Some(std::time::Duration::from_secs(100)),
        default_subquery_step_ms: 60_000,
        delayed_name_removal: v3,
        semantics: if v3 { Semantics::Prometheus3 } else { Semantics::Prometheus2 },
    });
    let parse_options = if v3 { ParseOptions::all() } else { ParseOptions::prometheus2() };
    let mut storage = MemStorage::new();
    for cmd in cmds {
        match cmd {
            Cmd::Clear => storage = MemStorage::new(),
            Cmd::Load { series, interval } => {
                if let Err(e) = load(&storage, &series, interval) {
                    report.error = Some((0, format!("load failed: {e}")));
                    return report;
                }
            }
            Cmd::Eval(ev) => {
                let status = match skip(ev.line) {
                    Some(reason) => EvalStatus::Skipped(reason),
                    None => match run_eval(&engine, &storage, &ev, parse_options) {
                        Ok(()) => EvalStatus::Passed,
                        Err(m) => EvalStatus::Failed(m),
                    },
                };
                report.evals.push(EvalOutcome { line: ev.line, expr: ev.expr.clone(), status });
            }
        }
    }
    report
}

fn load(storage: &MemStorage, series: &[(Labels, Vec<Slot>)], interval: i64) -> Result<(), String> {
    let mut app = storage.appender();
    for (labels, slots) in series {
        for (i, slot) in slots.iter().enumerate() {
            if let Slot::Float(f) = slot {
                app.append(labels, i as i64 * interval, *f).map_err(|e| e.to_string())?;
            }
        }
    }
    app.commit().map_err(|e| e.to_string())
}

/// Functions whose result depends on the evaluation time, so the `@` variants are not run.
const AT_UNSAFE: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "end",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "range",
    "start",
    "step",
    "time",
    "timestamp",
];

fn calls_any(e: &Expr, names: &[&str]) -> bool {
    match e {
        Expr::Call(c) => names.contains(&c.func.name) || c.args.iter().any(|a| calls_any(a, names)),
        Expr::Aggregate(a) => calls_any(&a.expr, names) || a.param.as_ref().is_some_and(|p| calls_any(p, names)),
        Expr::Binary(b) => calls_any(&b.lhs, names) || calls_any(&b.rhs, names),
        Expr::Unary(u) => calls_any(&u.expr, names),
        Expr::Paren(p) => calls_any(&p.expr, names),
        Expr::Subquery(s) => calls_any(&s.expr, names),
        _ => false,
    }
}

/// Pins every selector and top-most subquery without a fixed `@` to `t`.
fn set_at(e: &mut Expr, t: i64) {
    let fix = |at: &mut Option<At>| {
        if !matches!(at, Some(At::Timestamp(_))) {
            *at = Some(At::Timestamp(t));
        }
    };
    match e {
        Expr::VectorSelector(vs) => fix(&mut vs.at),
        Expr::MatrixSelector(ms) => fix(&mut ms.selector.at),
        Expr::Subquery(s) => fix(&mut s.at),
        Expr::Call(c) => c.args.iter_mut().for_each(|a| set_at(a, t)),
        Expr::Aggregate(a) => {
            set_at(&mut a.expr, t);
            if let Some(p) = &mut a.param {
                set_at(p, t);
            }
        }
        Expr::Binary(b) => {
            set_at(&mut b.lhs, t);
            set_at(&mut b.rhs, t);
        }
        Expr::Unary(u) => set_at(&mut u.expr, t),
        Expr::Paren(p) => set_at(&mut p.expr, t),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
    }
}

fn run_eval(engine: &Engine, storage: &MemStorage, ev: &EvalCmd, opts: ParseOptions) -> Result<(), String> {
    let expr = crate::parse_with(&ev.expr, opts).map_err(|e| format!("parse error: {e}"))?;
    if let Some((start, end, step)) = ev.range {
        let res = engine.range_query(storage, &expr, start, end, step);
        let Some(res) = check_error(ev, res)? else { return Ok(()) };
        check_annotations(ev, &res)?;
        return compare(ev, &res.value, Some((start, end, step)));
    }
    let t = ev.range_vector.map_or(ev.at.unwrap_or(0), |r| r.1);
    let mut queries = vec![(expr.clone(), t)];
    if !calls_any(&expr, AT_UNSAFE) {
        let mut pinned = expr.clone();
        set_at(&mut pinned, t);
        let times: Vec<i64> = if t == 0 { vec![-1000, 0, 1000] } else { vec![-10 * t, 0, t / 5, t, 10 * t] };
        for at in times {
            queries.push((pinned.clone(), at));
        }
    }
    static CROSS_SKIP: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let cross_skip = CROSS_SKIP.get_or_init(|| regex::Regex::new(r"(start|end|range|step)\(\)").expect("valid regex"));
    let cross_check = ev.range_vector.is_none() && ev.string.is_none() && !cross_skip.is_match(&ev.expr);
    for (i, (q, at)) in queries.iter().enumerate() {
        let res = engine.instant_query(storage, q, *at);
        let Some(res) = check_error(ev, res).map_err(|e| variant(i, *at, e))? else { continue };
        if i == 0 {
            check_annotations(ev, &res)?;
        }
        compare(ev, &res.value, ev.range_vector).map_err(|e| variant(i, *at, e))?;
        if !cross_check {
            continue;
        }
        let range = engine
            .range_query(storage, q, at - 60_000, at + 60_000, 60_000)
            .map_err(|e| variant(i, *at, format!("range-mode cross-check failed: {e}")))?;
        if ev.ordered {
            continue;
        }
        let Value::Matrix(m) = range.value else { return Err("range query did not return a matrix".into()) };
        let mut vec = Vec::new();
        for s in &m {
            if let Some(p) = s.floats.iter().find(|p| p.t == *at) {
                vec.push(crate::engine::Sample::new(s.labels.clone(), p.t, p.f));
            }
        }
        let value = match res.value {
            Value::Scalar { .. } => Value::Scalar { t: *at, v: vec.first().map_or(f64::NAN, |s| s.f) },
            _ => Value::Vector(vec),
        };
        compare(ev, &value, None).map_err(|e| variant(i, *at, format!("range-mode cross-check: {e}")))?;
    }
    Ok(())
}

fn variant(i: usize, at: i64, e: String) -> String {
    if i == 0 {
        e
    } else {
        format!("with @ {}: {e}", at as f64 / 1000.0)
    }
}

/// `Ok(None)`: the query failed as expected.
fn check_error(ev: &EvalCmd, res: Result<QueryResult, Error>) -> Result<Option<QueryResult>, String> {
    match (res, &ev.fail) {
        (Ok(r), None) => Ok(Some(r)),
        (Ok(_), Some(_)) => Err("expected an error, but got none".into()),
        (Err(e), Some(m)) => {
            let text = e.to_string();
            if m.matches(&text) {
                Ok(None)
            } else {
                Err(format!("expected error matching {m:?}, got {text:?}"))
            }
        }
        (Err(e), None) => Err(format!("unexpected error: {e}")),
    }
}

fn check_annotations(ev: &EvalCmd, res: &QueryResult) -> Result<(), String> {
    let a = &res.annotations;
    if ev.legacy_warn && a.warnings.is_empty() {
        return Err("expected warnings, got none".into());
    }
    if ev.legacy_info && a.infos.is_empty() {
        return Err("expected infos, got none".into());
    }
    for (kind, expects, got) in [("warn", &ev.warn, &a.warnings), ("info", &ev.info, &a.infos)] {
        if expects.is_empty() {
            continue;
        }
        if got.is_empty() {
            return Err(format!("expected {kind} annotations, got none"));
        }
        for m in expects {
            if !got.iter().any(|g| m.matches(g)) {
                return Err(format!("expected {kind} annotation matching {m:?}, got {got:?}"));
            }
        }
        for g in got {
            if !expects.iter().any(|m| m.matches(g)) {
                return Err(format!("unexpected {kind} annotation {g:?}"));
            }
        }
    }
    if ev.no_warn && !a.warnings.is_empty() {
        return Err(format!("expected no warnings, got {:?}", a.warnings));
    }
    if ev.no_info && !a.infos.is_empty() {
        return Err(format!("expected no infos, got {:?}", a.infos));
    }
    Ok(())
}

fn fmt_f(f: f64) -> String {
    if is_stale(f) {
        "stale".into()
    } else {
        crate::engine::format_value(f)
    }
}

fn compare(ev: &EvalCmd, value: &Value, range: Option<(i64, i64, i64)>) -> Result<(), String> {
    let eq = |a: f64, b: f64| crate::engine::almost_equal(a, b, 1e-6);
    match value {
        Value::String { s, .. } => {
            let want = ev.string.clone().unwrap_or_default();
            if *s != want {
                return Err(format!("expected string {want:?}, got {s:?}"));
            }
            Ok(())
        }
        Value::Scalar { v, .. } => {
            let Some(want) = ev.scalar else { return Err(format!("expected no scalar, got scalar {}", fmt_f(*v))) };
            if !eq(want, *v) {
                return Err(format!("expected scalar {} but got {}", fmt_f(want), fmt_f(*v)));
            }
            Ok(())
        }
        Value::Vector(vec) => {
            if ev.scalar.is_some() {
                return Err("expected scalar result, got vector".into());
            }
            if ev.string.is_some() {
                return Err("expected string result, got vector".into());
            }
            let mut seen = vec![false; ev.expected.len()];
            for (p, s) in vec.iter().enumerate() {
                let Some(i) = ev.expected.iter().position(|e| e.labels == s.labels) else {
                    return Err(format!("unexpected metric {} in result, has value {}", ls(&s.labels), fmt_f(s.f)));
                };
                let exp = &ev.expected[i];
                seen[i] = true;
                if ev.ordered && exp.ordinal != p + 1 {
                    return Err(format!(
                        "expected metric {} with value at position {}, got position {}",
                        ls(&s.labels),
                        exp.ordinal,
                        p + 1
                    ));
                }
                match exp.values.first() {
                    Some(Slot::Float(want)) => {
                        if !eq(*want, s.f) {
                            return Err(format!(
                                "expected {} for {} but got {}",
                                fmt_f(*want),
                                ls(&s.labels),
                                fmt_f(s.f)
                            ));
                        }
                    }
                    Some(Slot::Histogram) => {
                        return Err(format!("expected histogram for {}, got float", ls(&s.labels)))
                    }
                    _ => return Err(format!("no expected value for {}", ls(&s.labels))),
                }
            }
            if let Some(i) = seen.iter().position(|s| !s) {
                return Err(format!("expected metric {} not found in result", ls(&ev.expected[i].labels)));
            }
            Ok(())
        }
        Value::Matrix(m) => {
            if ev.ordered {
                return Err("expected ordered result, but query returned a matrix".into());
            }
            if ev.scalar.is_some() {
                return Err("expected scalar result, got matrix".into());
            }
            let (start, end, step) = range.unwrap_or((0, 0, 1));
            if m.windows(2).any(|w| w[0].labels >= w[1].labels) {
                return Err("matrix result is not sorted by labels".into());
            }
            for s in m {
                if !ev.expected.iter().any(|e| e.labels == s.labels) {
                    return Err(format!("unexpected metric {} in result", ls(&s.labels)));
                }
            }
            for exp in &ev.expected {
                let Some(s) = m.iter().find(|s| s.labels == exp.labels) else {
                    return Err(format!("expected metric {} not found in result", ls(&exp.labels)));
                };
                let mut want = Vec::new();
                for (i, slot) in exp.values.iter().enumerate() {
                    let t = start + i as i64 * step;
                    if t > end && !matches!(slot, Slot::Omitted) {
                        return Err(format!(
                            "expected {} points for {}, but query time range cannot return this many points",
                            exp.values.len(),
                            ls(&exp.labels)
                        ));
                    }
                    match slot {
                        Slot::Float(f) => want.push((t, *f)),
                        Slot::Histogram => return Err(format!("expected histogram points for {}", ls(&exp.labels))),
                        Slot::Omitted => {}
                    }
                }
                if want.len() != s.floats.len() {
                    let got: Vec<String> = s.floats.iter().map(|p| format!("{} @[{}]", fmt_f(p.f), p.t)).collect();
                    let wanted: Vec<String> = want.iter().map(|(t, f)| format!("{} @[{}]", fmt_f(*f), t)).collect();
                    return Err(format!(
                        "expected {} float points for {}, got {}: want [{}], got [{}]",
                        want.len(),
                        ls(&exp.labels),
                        s.floats.len(),
                        wanted.join(" "),
                        got.join(" ")
                    ));
                }
                for ((t, f), p) in want.iter().zip(&s.floats) {
                    if *t != p.t || !eq(*f, p.f) {
                        return Err(format!(
                            "expected {} @[{}] for {} but got {} @[{}]",
                            fmt_f(*f),
                            t,
                            ls(&exp.labels),
                            fmt_f(p.f),
                            p.t
                        ));
                    }
                }
            }
            Ok(())
        }
    }
}

//! The tree-walking evaluator. Every node is evaluated at one time `t`; range queries and
//! subqueries evaluate their expression step by step. Selectors read from data fetched once
//! per query (one `select` per selector over the whole time range the query needs).

use std::collections::HashMap;
use std::time::Instant;

use sextant_model::{is_stale, Labels, Queryable, SelectHints};

use super::hash::FxHashMap;
use super::value::{Annotations, FPoint, Sample, Series, Value};
use super::{CancelToken, EngineOptions, QueryError, QueryResult};
use crate::ast::{At, Expr, ExprType, MatrixSelector, Subquery, UnaryOp, VectorSelector};

pub(crate) type Result<T> = std::result::Result<T, QueryError>;

/// The value of a node at one time.
#[derive(Debug)]
pub(crate) enum Val {
    Scalar(f64),
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
    Str(String),
}

/// The samples of one selector: every matching series with its points over the whole time
/// range the query reads through that selector.
type SelectorData = Vec<(Labels, Vec<FPoint>)>;

/// A range-vector argument at one step: where its window ends, how long it is, and its series.
pub(crate) struct RangeArg<'d> {
    /// Window end (evaluation time after `@` and `offset`).
    pub end: i64,
    pub range: i64,
    /// `anchored` / `smoothed` (experimental extended range selectors): the series also
    /// hold the points up to one lookback delta around the window.
    pub mode: RangeMode,
    pub series: RangeSeries<'d>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeMode {
    Plain,
    Anchored,
    Smoothed,
}

pub(crate) enum RangeSeries<'d> {
    Borrowed(Vec<(&'d Labels, &'d [FPoint])>),
    Owned(Vec<Series>),
}

impl RangeArg<'_> {
    /// Each series as (labels, points in the window, drop-name flag); series without points
    /// are left out.
    pub fn items(&self) -> Vec<(&Labels, &[FPoint], bool)> {
        match &self.series {
            RangeSeries::Borrowed(v) => v.iter().map(|(l, p)| (*l, *p, false)).collect(),
            RangeSeries::Owned(v) => v.iter().map(|s| (&s.labels, &s.floats[..], s.drop_name)).collect(),
        }
    }
}

pub(crate) struct Evaluator<'a> {
    pub opts: &'a EngineOptions,
    /// Start, end and step of the query (step 0 for instant queries).
    pub start: i64,
    pub end: i64,
    pub interval: i64,
    data: &'a HashMap<usize, SelectorData>,
    pub annos: Annotations,
    deadline: Option<Instant>,
    cancel: &'a CancelToken,
    /// Label sets without their name, by the label set with it: the same series lose their
    /// name at every step.
    dropped: std::cell::RefCell<FxHashMap<Labels, Labels>>,
    /// Prometheus 2.42 fails a negation or range-vector function when two different input
    /// series give the same output labels anywhere in the range, not only at one step: the
    /// input labels of each output, by node and output labels (step-by-step evaluation only).
    origins: FxHashMap<(usize, Labels), Labels>,
    /// Compiled `label_replace` regexes by pattern: compiled once per query, not per step.
    pub regexes: FxHashMap<String, regex::Regex>,
}

/// Runs one query.
pub(crate) fn run(
    opts: &EngineOptions,
    storage: &dyn Queryable,
    expr: &Expr,
    start: i64,
    end: i64,
    interval: i64,
    cancel: &CancelToken,
) -> Result<QueryResult> {
    let deadline = opts.timeout.map(|d| Instant::now() + d);
    if interval > 0 {
        let t = expr.expr_type();
        if t != ExprType::Scalar && t != ExprType::Vector {
            return Err(QueryError::Eval(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                t.documented()
            )));
        }
    }
    let mut needs = Vec::new();
    let planner = Planner { opts, start, end, interval };
    planner.walk(expr, start, end, &mut needs);
    let data = fetch(storage, &needs, interval)?;
    let mut ev = Evaluator {
        opts,
        start,
        end,
        interval,
        data: &data,
        annos: Annotations::default(),
        deadline,
        cancel,
        dropped: Default::default(),
        origins: FxHashMap::default(),
        regexes: FxHashMap::default(),
    };
    let value = if interval == 0 {
        match ev.eval(expr, start)? {
            Val::Scalar(v) => Value::Scalar { t: start, v },
            Val::Str(s) => Value::String { t: start, s },
            Val::Vector(v) => Value::Vector(ev.finish_vector(v)?),
            Val::Matrix(m) => Value::Matrix(ev.finish_matrix(m)?),
        }
    } else {
        let m = ev.range_eval(expr, start, end, interval)?;
        let mut m = ev.finish_matrix(m)?;
        m.sort_by(|a, b| a.labels.cmp(&b.labels));
        Value::Matrix(m)
    };
    let annotations = match opts.semantics {
        // 2.42's engine reports no warnings or infos of its own.
        super::Semantics::Prometheus2 => Annotations::default(),
        _ => ev.annos,
    };
    Ok(QueryResult { value, annotations })
}

/// What one selector needs: its node, the time range of samples, whether it is a range
/// selector (stale markers dropped), and its range (for hints).
struct Need<'e> {
    key: usize,
    matchers: std::borrow::Cow<'e, [sextant_model::Matcher]>,
    mint: i64,
    maxt: i64,
    matrix: bool,
    range: i64,
    /// For an instant selector read only at the steps of the query (not under a subquery):
    /// the times it is read at, `(first, step, count)`; only the newest sample at or before
    /// each of them is needed.
    read_at: Option<(i64, i64, usize)>,
}

struct Planner<'a> {
    opts: &'a EngineOptions,
    start: i64,
    end: i64,
    interval: i64,
}

impl Planner<'_> {
    fn at(&self, at: &Option<At>) -> Option<i64> {
        at.map(|a| match a {
            At::Timestamp(t) => t,
            At::Start => self.start,
            At::End => self.end,
        })
    }

    fn walk<'e>(&self, e: &'e Expr, s: i64, en: i64, out: &mut Vec<Need<'e>>) {
        let (step, range) = (self.interval, self.end - self.start);
        match e {
            Expr::VectorSelector(vs) => {
                let top_level = s == self.start && en == self.end;
                let (s, en) = self.at(&vs.at).map_or((s, en), |a| (a, a));
                let off = vs.offset.resolve(step, range);
                let lb = self.opts.lookback_delta_ms;
                let read_at = (top_level && step > 0 && !vs.smoothed).then(|| {
                    if vs.at.is_some() {
                        (s - off, 1, 1)
                    } else {
                        (s - off, step, ((en - s) / step) as usize + 1)
                    }
                });
                out.push(Need {
                    key: vs as *const _ as usize,
                    matchers: std::borrow::Cow::Borrowed(&vs.matchers),
                    mint: s - off - lb,
                    maxt: en - off + if vs.smoothed { lb } else { 0 },
                    matrix: false,
                    range: 0,
                    read_at,
                });
            }
            Expr::MatrixSelector(ms) => {
                let vs = &ms.selector;
                let (s, en) = self.at(&vs.at).map_or((s, en), |a| (a, a));
                let off = vs.offset.resolve(step, range);
                let r = ms.range.resolve(step, range);
                let lb = self.opts.lookback_delta_ms;
                let (before, after) = if vs.smoothed {
                    (lb, lb)
                } else if vs.anchored {
                    (lb, 0)
                } else {
                    (0, 0)
                };
                out.push(Need {
                    key: vs as *const _ as usize,
                    matchers: std::borrow::Cow::Borrowed(&vs.matchers),
                    mint: s - off - r - before,
                    maxt: en - off + after,
                    matrix: true,
                    range: r,
                    read_at: None,
                });
            }
            Expr::Subquery(sq) => {
                let (s, en) = self.at(&sq.at).map_or((s, en), |a| (a, a));
                let off = sq.offset.resolve(step, range);
                let r = sq.range.resolve(step, range);
                self.walk(&sq.expr, s - off - r, en - off, out);
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
            Expr::Call(c) => {
                if c.func.name == "info" {
                    let (at, off) = super::info::first_selector_timing(&c.args[0]);
                    let (s, en) = self.at(&at).map_or((s, en), |a| (a, a));
                    let off = off.resolve(step, range);
                    out.push(Need {
                        key: c as *const _ as usize,
                        matchers: std::borrow::Cow::Owned(super::info::info_select_matchers(c)),
                        mint: s - off - self.opts.lookback_delta_ms,
                        maxt: en - off,
                        matrix: false,
                        range: 0,
                        read_at: None,
                    });
                }
                c.args.iter().for_each(|a| self.walk(a, s, en, out))
            }
            Expr::Aggregate(a) => {
                if let Some(p) = &a.param {
                    self.walk(p, s, en, out);
                }
                self.walk(&a.expr, s, en, out);
            }
            Expr::Binary(b) => {
                self.walk(&b.lhs, s, en, out);
                self.walk(&b.rhs, s, en, out);
            }
            Expr::Unary(u) => self.walk(&u.expr, s, en, out),
            Expr::Paren(p) => self.walk(&p.expr, s, en, out),
        }
    }
}

fn fetch(storage: &dyn Queryable, needs: &[Need<'_>], interval: i64) -> Result<HashMap<usize, SelectorData>> {
    let mut data = HashMap::new();
    if needs.is_empty() {
        return Ok(data);
    }
    let mint = needs.iter().map(|n| n.mint).min().unwrap_or(0);
    let maxt = needs.iter().map(|n| n.maxt).max().unwrap_or(0);
    let querier = storage.querier(mint, maxt).map_err(|e| QueryError::Storage(e.to_string()))?;
    // One selector may be reached through several paths (subqueries): merge their ranges.
    type Range<'m> = (i64, i64, bool, i64, &'m [sextant_model::Matcher], Option<(i64, i64, usize)>);
    let mut ranges: HashMap<usize, Range<'_>> = HashMap::new();
    for n in needs {
        let r = ranges.entry(n.key).or_insert((n.mint, n.maxt, n.matrix, n.range, &n.matchers[..], n.read_at));
        if (r.0, r.1) != (n.mint, n.maxt) {
            r.5 = None;
        }
        r.0 = r.0.min(n.mint);
        r.1 = r.1.max(n.maxt);
    }
    for (key, (lo, hi, matrix, range, matchers, read_at)) in ranges {
        let hints = SelectHints { start: lo, end: hi, step: interval, func: None, range };
        let set = querier.select(false, Some(&hints), matchers).map_err(|e| QueryError::Storage(e.to_string()))?;
        let mut series = Vec::new();
        for s in set {
            let mut s = s.map_err(|e| QueryError::Storage(e.to_string()))?;
            let mut points = Vec::new();
            let mut vt = s.samples.seek(lo);
            if let Some(buffered) = s.samples.take_buffered() {
                series_points(buffered, hi, matrix, read_at, &mut points);
                if !points.is_empty() {
                    series.push((s.labels, points));
                }
                continue;
            }
            match read_at {
                None => {
                    while vt == sextant_model::ValueType::Float {
                        let (t, f) = s.samples.at();
                        if t > hi {
                            break;
                        }
                        if !(matrix && is_stale(f)) {
                            points.push(FPoint { t, f });
                        }
                        vt = s.samples.next();
                    }
                }
                Some(read_at) => {
                    let mut pick = ReadAtPicker::new(read_at);
                    while vt == sextant_model::ValueType::Float {
                        let (t, f) = s.samples.at();
                        if t > hi || !pick.offer(t, f, &mut points) {
                            break;
                        }
                        vt = s.samples.next();
                    }
                    pick.finish(&mut points);
                }
            }
            if let Some(e) = s.samples.err() {
                return Err(QueryError::Storage(e.to_string()));
            }
            if !points.is_empty() {
                series.push((s.labels, points));
            }
        }
        series.sort_by(|a, b| a.0.cmp(&b.0));
        data.insert(key, series);
    }
    Ok(data)
}

/// The points a selector keeps from `samples` (sorted, from the window start on): those up to
/// `hi`, without stale markers for range selectors; with `read_at` (first read time, step,
/// count) only the newest sample at or before each read time. The same choice as the
/// sample-at-a-time loop in [`fetch`], over a buffer taken whole (in place when nothing is
/// dropped).
fn series_points(
    samples: Vec<(i64, f64)>,
    hi: i64,
    matrix: bool,
    read_at: Option<(i64, i64, usize)>,
    out: &mut Vec<FPoint>,
) {
    match read_at {
        None => {
            *out = samples
                .into_iter()
                .take_while(|s| s.0 <= hi)
                .filter(|s| !(matrix && is_stale(s.1)))
                .map(|(t, f)| FPoint { t, f })
                .collect();
        }
        Some(read_at) => {
            out.reserve_exact(read_at.2.min(samples.len()));
            let mut pick = ReadAtPicker::new(read_at);
            for (t, f) in samples {
                if t > hi || !pick.offer(t, f, out) {
                    break;
                }
            }
            pick.finish(out);
        }
    }
}

/// Keeps, for each read time of a grid (first read time, step, count), the newest sample at or
/// before it: the same answers at those times, a fraction of the samples when steps are longer
/// than the scrape interval. Samples are offered in time order.
struct ReadAtPicker {
    first: i64,
    step: i64,
    n: usize,
    i: usize,
    read_t: i64,
    last: Option<FPoint>,
}

impl ReadAtPicker {
    fn new((first, step, n): (i64, i64, usize)) -> Self {
        ReadAtPicker { first, step, n, i: 0, read_t: first, last: None }
    }

    /// Offers the next sample; false once every read time has passed (stop reading).
    fn offer(&mut self, t: i64, f: f64, out: &mut Vec<FPoint>) -> bool {
        while t > self.read_t {
            if let Some(p) = self.last.take() {
                out.push(p);
            }
            self.i += 1;
            if self.i == self.n {
                return false;
            }
            self.read_t = self.first + self.i as i64 * self.step;
        }
        self.last = Some(FPoint { t, f });
        true
    }

    fn finish(self, out: &mut Vec<FPoint>) {
        out.extend(self.last);
    }
}

/// Removes `__name__` and the other metadata labels (`__type__`, `__unit__`).
pub(crate) fn drop_metadata(labels: &Labels) -> Labels {
    labels.filter(|l| !matches!(&*l.name, "__name__" | "__type__" | "__unit__"))
}

impl<'a> Evaluator<'a> {
    pub fn at_time(&self, at: &Option<At>) -> Option<i64> {
        at.map(|a| match a {
            At::Timestamp(t) => t,
            At::Start => self.start,
            At::End => self.end,
        })
    }

    pub fn resolve(&self, d: &crate::ast::Duration) -> i64 {
        d.resolve(self.interval, self.end - self.start)
    }

    /// Prometheus 2 semantics: closed windows.
    pub fn closed_windows(&self) -> bool {
        self.opts.semantics == super::Semantics::Prometheus2
    }

    pub fn check_cancel(&self) -> Result<()> {
        if self.cancel.is_canceled() {
            return Err(QueryError::Canceled("expression evaluation"));
        }
        if let Some(d) = self.deadline {
            if Instant::now() > d {
                return Err(QueryError::Timeout("expression evaluation"));
            }
        }
        Ok(())
    }

    pub fn check_samples(&self, n: usize) -> Result<()> {
        if n > self.opts.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        Ok(())
    }

    /// Marks a sample's name for removal (delayed) or removes it now.
    pub fn drop_name(&self, s: &mut Sample) {
        if self.opts.delayed_name_removal {
            s.drop_name = true;
        } else {
            s.labels = self.without_name(&s.labels);
        }
    }

    /// `labels` without `__name__` (and the other metadata labels), from a per-query cache.
    pub fn without_name(&self, labels: &Labels) -> Labels {
        if !labels.iter().any(|l| l.name.starts_with("__")) {
            return labels.clone();
        }
        let mut cache = self.dropped.borrow_mut();
        if let Some(l) = cache.get(labels) {
            return l.clone();
        }
        let dropped = drop_metadata(labels);
        if cache.len() < 100_000 {
            cache.insert(labels.clone(), dropped.clone());
        }
        dropped
    }

    fn finish_vector(&self, mut v: Vec<Sample>) -> Result<Vec<Sample>> {
        for s in &mut v {
            if s.drop_name {
                s.labels = drop_metadata(&s.labels);
                s.drop_name = false;
            }
        }
        if has_duplicates(v.iter().map(|s| &s.labels)) {
            return Err(QueryError::Eval("vector cannot contain metrics with the same labelset".into()));
        }
        Ok(v)
    }

    fn finish_matrix(&self, mut m: Vec<Series>) -> Result<Vec<Series>> {
        for s in &mut m {
            if s.drop_name {
                s.labels = drop_metadata(&s.labels);
                s.drop_name = false;
            }
        }
        if !has_duplicates(m.iter().map(|s| &s.labels)) {
            return Ok(m);
        }
        // Series that became equal when their names went: merge them if their points do
        // not overlap in time.
        let mut out: Vec<Series> = Vec::new();
        let mut index: FxHashMap<Labels, usize> = FxHashMap::default();
        for s in m {
            match index.get(&s.labels) {
                None => {
                    index.insert(s.labels.clone(), out.len());
                    out.push(s);
                }
                Some(&i) => {
                    let target = &mut out[i];
                    for p in s.floats {
                        if target.floats.iter().any(|q| q.t == p.t) {
                            return Err(QueryError::Eval(
                                "vector cannot contain metrics with the same labelset".into(),
                            ));
                        }
                        target.floats.push(p);
                    }
                    target.floats.sort_by_key(|p| p.t);
                }
            }
        }
        Ok(out)
    }

    /// Evaluates `e` at every step from `start` to `end` into series.
    pub fn eval_range(&mut self, e: &Expr, start: i64, end: i64, step: i64) -> Result<Vec<Series>> {
        let mut out: Vec<Series> = Vec::new();
        let mut index: FxHashMap<Labels, usize> = FxHashMap::default();
        let mut total = 0usize;
        let mut t = start;
        while t <= end {
            self.check_cancel()?;
            match self.eval(e, t)? {
                Val::Scalar(v) => {
                    if out.is_empty() {
                        out.push(Series::new(Labels::empty(), Vec::new()));
                    }
                    out[0].floats.push(FPoint { t, f: v });
                    total += 1;
                }
                Val::Vector(vec) => {
                    total += vec.len();
                    for s in vec {
                        let i = match index.get(&s.labels) {
                            Some(&i) => i,
                            None => {
                                index.insert(s.labels.clone(), out.len());
                                out.push(Series { labels: s.labels, floats: Vec::new(), drop_name: false });
                                out.len() - 1
                            }
                        };
                        out[i].drop_name |= s.drop_name;
                        out[i].floats.push(FPoint { t, f: s.f });
                    }
                }
                Val::Matrix(_) | Val::Str(_) => {
                    return Err(QueryError::Eval("range evaluation of a range vector or string".into()));
                }
            }
            self.check_samples(total)?;
            t += step;
        }
        Ok(out)
    }

    pub fn eval(&mut self, e: &Expr, t: i64) -> Result<Val> {
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(n.value)),
            Expr::StringLiteral(s) => Ok(Val::Str(s.value.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => {
                let v = self.eval(&u.expr, t)?;
                if u.op == UnaryOp::Pos {
                    return Ok(v);
                }
                let negated = match v {
                    Val::Scalar(f) => Val::Scalar(-f),
                    Val::Vector(mut vec) => {
                        let track = self.tracks_origins();
                        for s in &mut vec {
                            s.f = -s.f;
                            let input = track.then(|| s.labels.clone());
                            self.drop_name(s);
                            if let Some(input) = input {
                                self.check_origin(u as *const _ as usize, &s.labels, input)?;
                            }
                        }
                        Val::Vector(vec)
                    }
                    other => other,
                };
                self.check_node_duplicates(negated)
            }
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.vector_selector(vs, t)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                let arg = self.range_arg(e, t)?;
                let (from, to, mode) = (arg.end - arg.range, arg.end, arg.mode);
                let m = match arg.series {
                    RangeSeries::Borrowed(v) => v
                        .into_iter()
                        .filter_map(|(l, p)| {
                            let points = match mode {
                                RangeMode::Plain => p.to_vec(),
                                _ => super::functions::extend_floats(p, from, to, mode == RangeMode::Smoothed),
                            };
                            (!points.is_empty()).then(|| Series::new(l.clone(), points))
                        })
                        .collect(),
                    RangeSeries::Owned(v) => v,
                };
                Ok(Val::Matrix(m))
            }
            Expr::Call(c) => {
                let v = super::functions::call(self, c, t)?;
                self.check_node_duplicates(v)
            }
            Expr::Aggregate(a) => super::aggregate::aggregate(self, a, t),
            Expr::Binary(b) => {
                let v = super::binop::binary(self, b, t)?;
                self.check_node_duplicates(v)
            }
        }
    }

    /// Whether each function call, operator and negation checks its own result for series
    /// that became equal (lost their names, or `label_replace`), as Prometheus does unless
    /// names are removed late (then only the query's result is checked).
    pub fn checks_node_duplicates(&self) -> bool {
        !self.opts.delayed_name_removal
    }

    /// Whether [`Evaluator::check_origin`] applies: Prometheus 2.42 semantics, where a range
    /// query's negations and range-vector functions are checked over the whole range.
    pub fn tracks_origins(&self) -> bool {
        self.closed_windows() && self.checks_node_duplicates()
    }

    /// Records that node `node` turned series `input` into `output`; an error when another
    /// input series gave the same output before.
    pub fn check_origin(&mut self, node: usize, output: &Labels, input: Labels) -> Result<()> {
        match self.origins.entry((node, output.clone())) {
            std::collections::hash_map::Entry::Occupied(e) if *e.get() != input => {
                Err(QueryError::Eval("vector cannot contain metrics with the same labelset".into()))
            }
            std::collections::hash_map::Entry::Occupied(_) => Ok(()),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(input);
                Ok(())
            }
        }
    }

    fn check_node_duplicates(&self, v: Val) -> Result<Val> {
        if let Val::Vector(vec) = &v {
            if vec.len() > 1 && self.checks_node_duplicates() && has_duplicates(vec.iter().map(|s| &s.labels)) {
                return Err(QueryError::Eval("vector cannot contain metrics with the same labelset".into()));
            }
        }
        Ok(v)
    }

    /// The newest sample of each series at `t` within the lookback delta.
    pub fn vector_selector(&mut self, vs: &VectorSelector, t: i64) -> Result<Vec<Sample>> {
        let data = self.data;
        let Some(series) = data.get(&(vs as *const _ as usize)) else { return Ok(Vec::new()) };
        let ref_t = self.at_time(&vs.at).unwrap_or(t) - self.resolve(&vs.offset);
        let lb = self.opts.lookback_delta_ms;
        let mut out = Vec::new();
        for (labels, points) in series {
            let value = if vs.smoothed {
                smoothed_value(points, ref_t, lb)
            } else {
                self.last_in_lookback(points, ref_t, lb).map(|p| p.f)
            };
            if let Some(f) = value {
                out.push(Sample { labels: labels.clone(), t, f, drop_name: false });
            }
        }
        self.check_samples(out.len())?;
        Ok(out)
    }

    /// Like `vector_selector` but with the samples' own timestamps (for `timestamp()`).
    pub fn vector_selector_timestamps(&mut self, vs: &VectorSelector, t: i64) -> Result<Vec<Sample>> {
        let data = self.data;
        let Some(series) = data.get(&(vs as *const _ as usize)) else { return Ok(Vec::new()) };
        let ref_t = self.at_time(&vs.at).unwrap_or(t) - self.resolve(&vs.offset);
        let lb = self.opts.lookback_delta_ms;
        let mut out = Vec::new();
        for (labels, points) in series {
            if let Some(p) = self.last_in_lookback(points, ref_t, lb) {
                out.push(Sample { labels: labels.clone(), t, f: p.t as f64 / 1000.0, drop_name: false });
            }
        }
        Ok(out)
    }

    /// The series the planner fetched for the node at `key` (a selector or an `info` call).
    pub fn fetched(&self, key: usize) -> &'a [(Labels, Vec<FPoint>)] {
        self.data.get(&key).map_or(&[], |v| &v[..])
    }

    pub fn last_in_lookback<'p>(&self, points: &'p [FPoint], ref_t: i64, lb: i64) -> Option<&'p FPoint> {
        let idx = points.partition_point(|p| p.t <= ref_t);
        if idx == 0 {
            return None;
        }
        let p = &points[idx - 1];
        let inside = if self.closed_windows() { p.t >= ref_t - lb } else { p.t > ref_t - lb };
        (inside && !is_stale(p.f)).then_some(p)
    }

    /// A range-vector argument (matrix selector or subquery, possibly in parentheses) at `t`.
    pub fn range_arg(&mut self, e: &Expr, t: i64) -> Result<RangeArg<'a>> {
        match e {
            Expr::Paren(p) => self.range_arg(&p.expr, t),
            Expr::MatrixSelector(ms) => self.matrix_selector(ms, t),
            Expr::Subquery(sq) => self.subquery(sq, t),
            _ => Err(QueryError::Eval(format!("expected a range vector, got {}", e.expr_type().documented()))),
        }
    }

    fn matrix_selector(&mut self, ms: &MatrixSelector, t: i64) -> Result<RangeArg<'a>> {
        let vs = &ms.selector;
        let end = self.at_time(&vs.at).unwrap_or(t) - self.resolve(&vs.offset);
        let range = self.resolve(&ms.range);
        let data = self.data;
        let mut out = Vec::new();
        let mut n = 0;
        let lb = self.opts.lookback_delta_ms;
        let (mode, before, after) = if vs.smoothed {
            (RangeMode::Smoothed, lb, lb)
        } else if vs.anchored {
            (RangeMode::Anchored, lb, 0)
        } else {
            (RangeMode::Plain, 0, 0)
        };
        if let Some(series) = data.get(&(vs as *const _ as usize)) {
            for (labels, points) in series {
                let from = end - range - before;
                let lo = if self.closed_windows() {
                    points.partition_point(|p| p.t < from)
                } else {
                    points.partition_point(|p| p.t <= from)
                };
                let hi = points.partition_point(|p| p.t <= end + after);
                if lo < hi {
                    n += hi - lo;
                    out.push((labels, &points[lo..hi]));
                }
            }
        }
        self.check_samples(n)?;
        Ok(RangeArg { end, range, mode, series: RangeSeries::Borrowed(out) })
    }

    fn subquery(&mut self, sq: &Subquery, t: i64) -> Result<RangeArg<'a>> {
        let end = self.at_time(&sq.at).unwrap_or(t) - self.resolve(&sq.offset);
        let range = self.resolve(&sq.range);
        let step = match &sq.step {
            Some(s) => self.resolve(s),
            None => self.opts.default_subquery_step_ms,
        };
        if step <= 0 {
            return Err(QueryError::Eval("subquery step must be positive".into()));
        }
        let from = end - range;
        let mut start = from.div_euclid(step) * step;
        if start < from || (start == from && !self.closed_windows()) {
            start += step;
        }
        let m = self.range_eval(&sq.expr, start, end, step)?;
        Ok(RangeArg { end, range, mode: RangeMode::Plain, series: RangeSeries::Owned(m) })
    }
}

/// The value of a `smoothed` selector at `t`: the sample at `t`, or the interpolation between
/// its neighbours within one lookback delta either side, or the last sample before.
fn smoothed_value(points: &[FPoint], t: i64, lb: i64) -> Option<f64> {
    let lo = points.partition_point(|p| p.t <= t - lb);
    let hi = points.partition_point(|p| p.t <= t + lb);
    let window: Vec<FPoint> = points[lo..hi].iter().filter(|p| !is_stale(p.f)).copied().collect();
    let i = window.partition_point(|p| p.t < t);
    if i < window.len() && window[i].t == t {
        Some(window[i].f)
    } else if i > 0 && i < window.len() {
        let (prev, next) = (window[i - 1], window[i]);
        Some(prev.f + (next.f - prev.f) * (t - prev.t) as f64 / (next.t - prev.t) as f64)
    } else if i > 0 {
        Some(window[i - 1].f)
    } else {
        None
    }
}

pub(crate) fn has_duplicates<'l>(labels: impl Iterator<Item = &'l Labels>) -> bool {
    let mut seen = super::hash::FxHashSet::default();
    for l in labels {
        if !seen.insert(l) {
            return true;
        }
    }
    false
}

//! Range evaluation a node at a time: each node is evaluated over every step of the grid at
//! once (a scalar per step, or series with a point per step where they have a value), the way
//! Prometheus' `rangeEval` works. Selectors walk each series' samples once with a moving
//! window; aggregations and vector matching work out group keys and signatures once per
//! series, not once per sample and step.
//!
//! A node this module does not cover (or a case where per-step semantics need care, such as
//! duplicate match groups) is evaluated by the step-by-step evaluator ([`Evaluator::eval_range`])
//! and its result used as this node's value, so both paths give the same answers and errors.

use sextant_model::{is_stale, Labels};

use super::aggregate::{cmp_nan_high, cmp_nan_low, go_g, group_hash, group_labels, heap_select, kahan_inc, mean_v2};
use super::binop::{apply, changes_name, result_labels, signature};
use super::eval::{has_duplicates, Evaluator, Result};
use super::functions::{avg_windows_v2, extrapolated_rate, window_fn_value, RateMemo, RegressionPrefix, WindowFn};
use super::hash::{FxHashMap, FxHashSet};
use super::quantile::{bucket_quantile, quantile, Bucket};
use super::value::{FPoint, Series};
use super::QueryError;
use crate::ast::{
    Aggregate, AggregateOp, Binary, BinaryOp, Call, Cardinality, Expr, ExprType, MatrixSelector, UnaryOp,
    VectorMatching, VectorSelector,
};

/// Prometheus' checks for series that became equal (without delayed name removal): a negation
/// or a function of a range vector fails when any two of its result series are equal, other
/// calls and operators when two are equal at the same step.
fn r_check_duplicates(e: &Expr, value: &RVal) -> Result<()> {
    let RVal::Vector(series) = value else { return Ok(()) };
    let whole_range = match e {
        Expr::Unary(u) => u.op == UnaryOp::Neg,
        Expr::Call(c) => c.args.iter().any(|a| a.expr_type() == ExprType::Matrix),
        Expr::Binary(_) => false,
        _ => return Ok(()),
    };
    if series.len() < 2 || !has_duplicates(series.iter().map(|s| &s.labels)) {
        return Ok(());
    }
    let mut seen: FxHashSet<(&Labels, i64)> = FxHashSet::default();
    let same_step = series.iter().any(|s| s.floats.iter().any(|p| !seen.insert((&s.labels, p.t))));
    if whole_range || same_step {
        return Err(QueryError::Eval("vector cannot contain metrics with the same labelset".into()));
    }
    Ok(())
}

/// The steps of a range evaluation: `start`, `start + step`, … up to `end` (ms).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    start: i64,
    step: i64,
    n: usize,
}

impl Grid {
    fn new(start: i64, end: i64, step: i64) -> Grid {
        let n = if end < start { 0 } else { ((end - start) / step) as usize + 1 };
        Grid { start, step, n }
    }

    #[inline]
    fn t(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    #[inline]
    fn idx(&self, t: i64) -> usize {
        ((t - self.start) / self.step) as usize
    }

    /// [`Grid::idx`] for the points of one series in time order without a division per
    /// point: `cursor` (0 before the series' first point) moves forward to `t`'s step.
    #[inline]
    fn idx_from(&self, t: i64, cursor: &mut usize) -> usize {
        while self.t(*cursor) < t {
            *cursor += 1;
        }
        debug_assert_eq!(*cursor, self.idx(t));
        *cursor
    }
}

/// The value of a node over the whole grid.
enum RVal {
    /// One value per step.
    Scalar(Vec<f64>),
    /// Series with a point at each step where they have a value (never empty).
    Vector(Vec<Series>),
}

/// The range functions computed here over plain windows of matrix selectors.
const WINDOW_FUNCTIONS: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "predict_linear",
    "changes",
    "resets",
    "avg_over_time",
    "sum_over_time",
    "count_over_time",
    "present_over_time",
    "last_over_time",
    "first_over_time",
    "ts_of_last_over_time",
    "ts_of_first_over_time",
    "max_over_time",
    "min_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
    "mad_over_time",
];

fn simple_function(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "deg" => f64::to_degrees,
        "rad" => f64::to_radians,
        _ => return None,
    })
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        other => other,
    }
}

impl Evaluator<'_> {
    /// Evaluates `e` at every step from `start` to `end`, giving the same series as
    /// [`Evaluator::eval_range`] (series in first-seen order, merged by labels).
    pub fn range_eval(&mut self, e: &Expr, start: i64, end: i64, step: i64) -> Result<Vec<Series>> {
        let grid = Grid::new(start, end, step);
        if grid.n == 0 {
            return Ok(Vec::new());
        }
        let value = self.rnode(e, &grid)?;
        let out = match value {
            RVal::Scalar(values) => {
                let floats = values.iter().enumerate().map(|(i, &f)| FPoint { t: grid.t(i), f }).collect();
                vec![Series::new(Labels::empty(), floats)]
            }
            RVal::Vector(series) => merge_same_labels(series),
        };
        self.check_samples(out.iter().map(|s| s.floats.len()).sum())?;
        Ok(out)
    }

    fn rnode(&mut self, e: &Expr, g: &Grid) -> Result<RVal> {
        self.check_cancel()?;
        let fast = match e {
            Expr::Paren(p) => return self.rnode(&p.expr, g),
            Expr::NumberLiteral(n) => Some(RVal::Scalar(vec![n.value; g.n])),
            Expr::Unary(u) => {
                let v = self.rnode(&u.expr, g)?;
                Some(match (u.op, v) {
                    (UnaryOp::Pos, v) => v,
                    (_, RVal::Scalar(mut values)) => {
                        values.iter_mut().for_each(|f| *f = -*f);
                        RVal::Scalar(values)
                    }
                    (_, RVal::Vector(mut series)) => {
                        for s in &mut series {
                            s.floats.iter_mut().for_each(|p| p.f = -p.f);
                            self.drop_series_name(s);
                        }
                        RVal::Vector(series)
                    }
                })
            }
            Expr::VectorSelector(vs) if !vs.smoothed => Some(self.r_selector(vs, g)?),
            Expr::Call(c) => self.r_call(c, g)?,
            Expr::Aggregate(a) => self.r_aggregate(a, g)?,
            Expr::Binary(b) => self.r_binary(b, g)?,
            _ => None,
        };
        let value = match fast {
            Some(v) => v,
            None => self.slow(e, g)?,
        };
        if self.checks_node_duplicates() {
            r_check_duplicates(e, &value)?;
            if let (Expr::Call(_) | Expr::Binary(_), RVal::Vector(series)) = (e, &value) {
                if has_duplicates(series.iter().map(|s| &s.labels)) {
                    // Prometheus merges a node's equal series over the steps (they were checked
                    // not to meet at one step), so a negation above sees one series.
                    let RVal::Vector(series) = value else { unreachable!("matched above") };
                    return Ok(RVal::Vector(merge_same_labels(series)));
                }
            }
        }
        Ok(value)
    }

    /// `e` through the step-by-step evaluator.
    fn slow(&mut self, e: &Expr, g: &Grid) -> Result<RVal> {
        let end = g.t(g.n.saturating_sub(1));
        let series = self.eval_range(e, g.start, end, g.step)?;
        if e.expr_type() == ExprType::Scalar {
            let mut values = vec![f64::NAN; g.n];
            if let Some(s) = series.first() {
                for p in &s.floats {
                    values[g.idx(p.t)] = p.f;
                }
            }
            return Ok(RVal::Scalar(values));
        }
        Ok(RVal::Vector(series.into_iter().filter(|s| !s.floats.is_empty()).collect()))
    }

    /// `ev.drop_name` for a whole series.
    fn drop_series_name(&self, s: &mut Series) {
        if self.opts.delayed_name_removal {
            s.drop_name = true;
        } else {
            s.labels = self.without_name(&s.labels);
        }
    }

    fn r_scalar(&mut self, e: &Expr, g: &Grid) -> Result<Option<Vec<f64>>> {
        match self.rnode(e, g)? {
            RVal::Scalar(v) => Ok(Some(v)),
            RVal::Vector(_) => Ok(None),
        }
    }

    fn r_selector(&mut self, vs: &VectorSelector, g: &Grid) -> Result<RVal> {
        let data = self.fetched(vs as *const _ as usize);
        let off = self.resolve(&vs.offset);
        let at = self.at_time(&vs.at);
        let lb = self.opts.lookback_delta_ms;
        let closed = self.closed_windows();
        let mut out = Vec::new();
        for (labels, points) in data {
            // A point answers at most the steps of one lookback window.
            let per_point = usize::try_from(lb / g.step).unwrap_or(usize::MAX).saturating_add(1);
            let mut floats = Vec::with_capacity(g.n.min(points.len().saturating_mul(per_point)));
            if let Some(at) = at {
                if let Some(p) = self.last_in_lookback(points, at - off, lb) {
                    floats = (0..g.n).map(|i| FPoint { t: g.t(i), f: p.f }).collect();
                }
            } else {
                let mut idx = 0;
                for i in 0..g.n {
                    let t = g.t(i);
                    let ref_t = t - off;
                    while idx < points.len() && points[idx].t <= ref_t {
                        idx += 1;
                    }
                    if idx == 0 {
                        continue;
                    }
                    let p = points[idx - 1];
                    let inside = if closed { p.t >= ref_t - lb } else { p.t > ref_t - lb };
                    if inside && !is_stale(p.f) {
                        floats.push(FPoint { t, f: p.f });
                    }
                }
            }
            if !floats.is_empty() {
                out.push(Series { labels: labels.clone(), floats, drop_name: false });
            }
        }
        // As at each step: one sample per series.
        self.check_samples(out.len())?;
        Ok(RVal::Vector(out))
    }

    fn r_call(&mut self, c: &Call, g: &Grid) -> Result<Option<RVal>> {
        let name = c.func.name;
        let args = &c.args;
        if let Some(f) = simple_function(name) {
            let RVal::Vector(mut series) = self.rnode(&args[0], g)? else { return Ok(None) };
            for s in &mut series {
                s.floats.iter_mut().for_each(|p| p.f = f(p.f));
                self.drop_series_name(s);
            }
            return Ok(Some(RVal::Vector(series)));
        }
        match name {
            "time" => Ok(Some(RVal::Scalar((0..g.n).map(|i| g.t(i) as f64 / 1000.0).collect()))),
            "vector" => {
                let Some(values) = self.r_scalar(&args[0], g)? else { return Ok(None) };
                let floats = values.iter().enumerate().map(|(i, &f)| FPoint { t: g.t(i), f }).collect();
                Ok(Some(RVal::Vector(vec![Series::new(Labels::empty(), floats)])))
            }
            "scalar" => {
                let RVal::Vector(series) = self.rnode(&args[0], g)? else { return Ok(None) };
                let mut count = vec![0u32; g.n];
                let mut values = vec![f64::NAN; g.n];
                for s in &series {
                    for p in &s.floats {
                        let i = g.idx(p.t);
                        count[i] += 1;
                        values[i] = p.f;
                    }
                }
                for (v, &n) in values.iter_mut().zip(&count) {
                    if n != 1 {
                        *v = f64::NAN;
                    }
                }
                Ok(Some(RVal::Scalar(values)))
            }
            "histogram_quantile" => self.r_histogram_quantile(c, g),
            _ if WINDOW_FUNCTIONS.contains(&name) => self.r_window_function(c, g),
            _ => Ok(None),
        }
    }

    /// A range function over a plain matrix selector: one pass over each series, the window's
    /// ends moving forward with the steps.
    fn r_window_function(&mut self, c: &Call, g: &Grid) -> Result<Option<RVal>> {
        let name = c.func.name;
        let args = &c.args;
        let matrix_idx = usize::from(name == "quantile_over_time");
        if args.len() <= matrix_idx {
            return Ok(None);
        }
        let Expr::MatrixSelector(ms) = unwrap_parens(&args[matrix_idx]) else { return Ok(None) };
        if ms.selector.anchored || ms.selector.smoothed {
            return Ok(None);
        }
        let mut scalars: Vec<Vec<f64>> = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i != matrix_idx {
                let Some(v) = self.r_scalar(a, g)? else { return Ok(None) };
                scalars.push(v);
            }
        }
        if name == "quantile_over_time" {
            for &q in &scalars[0] {
                if q.is_nan() || !(0.0..=1.0).contains(&q) {
                    self.annos.warn(format!("quantile value should be between 0 and 1, got {}", go_g(q)));
                }
            }
        }
        Ok(Some(self.r_matrix_function(name, ms, &scalars, g)?))
    }

    fn r_matrix_function(&mut self, name: &str, ms: &MatrixSelector, scalars: &[Vec<f64>], g: &Grid) -> Result<RVal> {
        let vs = &ms.selector;
        let data = self.fetched(vs as *const _ as usize);
        let off = self.resolve(&vs.offset);
        let at = self.at_time(&vs.at);
        let range = self.resolve(&ms.range);
        let closed = self.closed_windows();
        let keep_name = matches!(name, "last_over_time" | "first_over_time");
        let counts_resets = matches!(name, "rate" | "increase");
        let func = WindowFn::from_name(name).ok_or_else(|| QueryError::Eval(format!("unsupported function {name}")))?;
        let mut non_counter: Vec<String> = Vec::new();
        let mut out = Vec::new();
        let mut step_scalars = vec![0.0; scalars.len()];
        let mut resets_before: Vec<u32> = Vec::new();
        // Samples in the windows of all series, per step (the step-by-step limit).
        let mut in_windows = vec![0usize; g.n];
        for (series_idx, (labels, points)) in data.iter().enumerate() {
            if series_idx % 256 == 0 {
                self.check_cancel()?;
            }
            if counts_resets {
                // resets_before[i]: counter resets among points[..=i].
                resets_before.clear();
                let mut n = 0u32;
                resets_before.push(0);
                for w in points.windows(2) {
                    n += u32::from(w[1].f < w[0].f);
                    resets_before.push(n);
                }
            }
            // Per-series state that makes a window's value O(1) (amortised) instead of a pass
            // over its points; only while the windows slide forward (no `@`).
            let mut accel = match func {
                WindowFn::PredictLinear | WindowFn::Deriv => {
                    RegressionPrefix::new(points).map_or(Accel::None, Accel::Regression)
                }
                WindowFn::Changes | WindowFn::Resets if at.is_none() => {
                    let changes = func == WindowFn::Changes;
                    let mut before = Vec::with_capacity(points.len());
                    let mut n = 0u32;
                    before.push(0);
                    for w in points.windows(2) {
                        let counted = if changes {
                            w[1].f != w[0].f && !(w[1].f.is_nan() && w[0].f.is_nan())
                        } else {
                            w[1].f < w[0].f
                        };
                        n += u32::from(counted);
                        before.push(n);
                    }
                    Accel::PairCounts(before)
                }
                WindowFn::MaxOverTime
                | WindowFn::MinOverTime
                | WindowFn::TsOfMaxOverTime
                | WindowFn::TsOfMinOverTime
                    if at.is_none() =>
                {
                    Accel::Extreme(Extreme::new(matches!(func, WindowFn::MaxOverTime | WindowFn::TsOfMaxOverTime)))
                }
                WindowFn::Rate | WindowFn::Increase | WindowFn::Delta => Accel::Rate(RateMemo::default()),
                WindowFn::AvgOverTime if closed => Accel::MeanV2(Vec::with_capacity(g.n)),
                _ => Accel::None,
            };
            let (mut lo, mut hi) = (0usize, 0usize);
            let mut floats = Vec::new();
            for i in 0..g.n {
                let t = g.t(i);
                let end = at.unwrap_or(t) - off;
                let from = end - range;
                if at.is_some() {
                    lo = 0;
                    hi = 0;
                }
                while lo < points.len() && (if closed { points[lo].t < from } else { points[lo].t <= from }) {
                    lo += 1;
                }
                if hi < lo {
                    hi = lo;
                }
                while hi < points.len() && points[hi].t <= end {
                    hi += 1;
                }
                if lo >= hi {
                    continue;
                }
                let window = &points[lo..hi];
                in_windows[i] += window.len();
                for (k, s) in scalars.iter().enumerate() {
                    step_scalars[k] = s[i];
                }
                let scan_resets = !counts_resets || resets_before[hi - 1] != resets_before[lo];
                let value = match &mut accel {
                    Accel::Regression(r) if func == WindowFn::Deriv => {
                        (window.len() >= 2).then(|| r.window(points, lo, hi, points[lo].t).0)
                    }
                    Accel::Regression(r) => (window.len() >= 2).then(|| {
                        let (slope, intercept) = r.window(points, lo, hi, t);
                        slope * step_scalars[0] + intercept
                    }),
                    Accel::Rate(memo) => {
                        let counter = func != WindowFn::Delta;
                        let scan = counter && scan_resets;
                        let rate = func == WindowFn::Rate;
                        extrapolated_rate(window, from, end, range, counter, rate, closed, scan, memo)
                    }
                    Accel::PairCounts(before) => Some(f64::from(before[hi - 1] - before[lo])),
                    Accel::Extreme(e) => {
                        let best = points[e.window(points, lo, hi)];
                        Some(if matches!(func, WindowFn::TsOfMaxOverTime | WindowFn::TsOfMinOverTime) {
                            best.t as f64 / 1000.0
                        } else {
                            best.f
                        })
                    }
                    Accel::MeanV2(windows) => {
                        windows.push((t, lo, hi));
                        None
                    }
                    Accel::None => {
                        window_fn_value(func, window, from, end, range, &step_scalars, t, closed, scan_resets)
                    }
                };
                if let Some(f) = value {
                    floats.push(FPoint { t, f });
                }
            }
            if let Accel::MeanV2(windows) = &accel {
                let bounds: Vec<(usize, usize)> = windows.iter().map(|&(_, lo, hi)| (lo, hi)).collect();
                let means = avg_windows_v2(points, &bounds);
                floats.extend(windows.iter().zip(means).map(|(&(t, _, _), f)| FPoint { t, f }));
            }
            if floats.is_empty() {
                continue;
            }
            if counts_resets {
                if let Some(n) = labels.metric_name() {
                    if !["_total", "_sum", "_count", "_bucket"].iter().any(|s| n.ends_with(s))
                        && !non_counter.iter().any(|x| x == n)
                    {
                        non_counter.push(n.to_string());
                    }
                }
            }
            let mut s = Series { labels: labels.clone(), floats, drop_name: false };
            if !keep_name {
                self.drop_series_name(&mut s);
            }
            out.push(s);
        }
        self.check_samples(in_windows.iter().copied().max().unwrap_or(0))?;
        for n in non_counter {
            self.annos
                .info(format!("metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {n:?}"));
        }
        Ok(RVal::Vector(out))
    }

    fn r_histogram_quantile(&mut self, c: &Call, g: &Grid) -> Result<Option<RVal>> {
        let Some(qs) = self.r_scalar(&c.args[0], g)? else { return Ok(None) };
        let RVal::Vector(series) = self.rnode(&c.args[1], g)? else { return Ok(None) };
        for &q in &qs {
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
                self.annos.warn(format!("quantile value should be between 0 and 1, got {}", go_g(q)));
            }
        }
        // Group the bucket series by their labels without `le`, as `classic_buckets` does.
        struct HGroup {
            labels: Labels,
            members: Vec<(usize, f64)>,
        }
        let mut groups: Vec<HGroup> = Vec::new();
        let mut index: FxHashMap<u64, usize> = FxHashMap::default();
        for (si, s) in series.iter().enumerate() {
            let Some((upper, hash)) = self.bucket_key(&s.labels) else { continue };
            let gi = *index.entry(hash).or_insert_with(|| {
                groups.push(HGroup { labels: s.labels.filter(|l| &*l.name != "le"), members: Vec::new() });
                groups.len() - 1
            });
            groups[gi].members.push((si, upper));
        }
        let mut out = Vec::new();
        let mut cursors: Vec<usize> = Vec::new();
        let mut buckets: Vec<Bucket> = Vec::new();
        for group in &groups {
            cursors.clear();
            cursors.resize(group.members.len(), 0);
            let mut floats = Vec::new();
            let mut drop = false;
            for (i, &q) in qs.iter().enumerate() {
                let t = g.t(i);
                buckets.clear();
                for (k, &(si, upper)) in group.members.iter().enumerate() {
                    let s = &series[si];
                    let cur = &mut cursors[k];
                    while *cur < s.floats.len() && s.floats[*cur].t < t {
                        *cur += 1;
                    }
                    if *cur < s.floats.len() && s.floats[*cur].t == t {
                        buckets.push(Bucket { upper, count: s.floats[*cur].f });
                        drop |= s.drop_name;
                    }
                }
                if buckets.is_empty() {
                    continue;
                }
                let (f, forced) = bucket_quantile(q, buckets.clone());
                if forced {
                    let name = group.labels.metric_name().unwrap_or("");
                    let suffix = if self.opts.delayed_name_removal && !name.is_empty() {
                        format!(" for metric name {name:?}")
                    } else {
                        String::new()
                    };
                    self.annos.info(format!("input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile){suffix}"));
                }
                floats.push(FPoint { t, f });
            }
            if floats.is_empty() {
                continue;
            }
            let mut s = Series { labels: group.labels.clone(), floats, drop_name: drop };
            self.drop_series_name(&mut s);
            out.push(s);
        }
        Ok(Some(RVal::Vector(out)))
    }

    fn r_aggregate(&mut self, a: &Aggregate, g: &Grid) -> Result<Option<RVal>> {
        use AggregateOp as Op;
        let op = a.op;
        if !matches!(
            op,
            Op::Sum
                | Op::Avg
                | Op::Count
                | Op::Group
                | Op::Max
                | Op::Min
                | Op::Stddev
                | Op::Stdvar
                | Op::Topk
                | Op::Bottomk
                | Op::Quantile
        ) {
            return Ok(None);
        }
        let param = match &a.param {
            Some(p) => match self.r_scalar(p, g)? {
                Some(v) => Some(v),
                None => return Ok(None),
            },
            None => None,
        };
        let RVal::Vector(series) = self.rnode(&a.expr, g)? else { return Ok(None) };
        if let (Op::Topk | Op::Bottomk, Some(ks)) = (op, &param) {
            for &k in ks {
                if k.is_nan() {
                    return Err(QueryError::Eval(if self.closed_windows() {
                        // 2.42 checks only that k converts to an integer.
                        "Scalar value NaN overflows int64".into()
                    } else {
                        "Parameter value is NaN".into()
                    }));
                }
                if !(-9.223372036854776e18..9.223372036854776e18).contains(&k) {
                    return Err(QueryError::Eval(format!(
                        "Scalar value {} overflows int64",
                        super::value::format_float(k)
                    )));
                }
            }
        }
        if let (Op::Quantile, Some(qs)) = (op, &param) {
            for &q in qs {
                if !(0.0..=1.0).contains(&q) {
                    self.annos.warn(format!("quantile value should be between 0 and 1, got {}", go_g(q)));
                }
            }
        }
        // Group index of each series, worked out once.
        let mut group_of: Vec<usize> = Vec::with_capacity(series.len());
        let mut group_first: Vec<usize> = Vec::new();
        let mut index: FxHashMap<u64, usize> = FxHashMap::default();
        for (si, s) in series.iter().enumerate() {
            let hash = group_hash(&s.labels, &a.grouping, a.without);
            let gi = *index.entry(hash).or_insert_with(|| {
                group_first.push(si);
                group_first.len() - 1
            });
            group_of.push(gi);
        }
        let n_groups = group_first.len();
        if matches!(op, Op::Topk | Op::Bottomk | Op::Quantile) {
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_groups];
            for (si, &gi) in group_of.iter().enumerate() {
                members[gi].push(si);
            }
            let param = param.unwrap_or_else(|| vec![f64::NAN; g.n]);
            return Ok(Some(if op == Op::Quantile {
                self.r_quantile(a, &series, &members, &group_first, &param, g)
            } else {
                r_topk(op == Op::Topk, series, &members, &param, g, self.closed_windows())
            }));
        }
        let n = g.n;
        let cells = n_groups * n;
        let mut seen = vec![false; cells];
        let mut value = vec![0.0f64; cells];
        let mut kahan_c = vec![0.0f64; cells];
        let needs_mean = matches!(op, Op::Avg | Op::Stddev | Op::Stdvar);
        let needs_count = matches!(op, Op::Avg | Op::Stddev | Op::Stdvar | Op::Count);
        let mut mean = if needs_mean { vec![0.0f64; cells] } else { Vec::new() };
        let mut count = if needs_count { vec![0.0f64; cells] } else { Vec::new() };
        let mut incremental = if op == Op::Avg { vec![false; cells] } else { Vec::new() };
        let mut drop = vec![false; n_groups];
        let prometheus2 = self.closed_windows();
        for (s, &gi) in series.iter().zip(&group_of) {
            drop[gi] |= s.drop_name;
            let base = gi * n;
            let mut cursor = 0;
            for p in &s.floats {
                let c = base + g.idx_from(p.t, &mut cursor);
                let f = p.f;
                if !seen[c] {
                    seen[c] = true;
                    value[c] = match op {
                        Op::Group => 1.0,
                        // 2.42 starts every group at 0, so one NaN or ±Inf alone gives 0.
                        Op::Stddev | Op::Stdvar if (f.is_nan() || f.is_infinite()) && !prometheus2 => f64::NAN,
                        Op::Stddev | Op::Stdvar => 0.0,
                        _ => f,
                    };
                    if needs_mean {
                        mean[c] = f;
                    }
                    if needs_count {
                        count[c] = 1.0;
                    }
                    continue;
                }
                match op {
                    // 2.42 adds plainly and averages incrementally.
                    Op::Sum if prometheus2 => value[c] += f,
                    Op::Sum => (value[c], kahan_c[c]) = kahan_inc(f, value[c], kahan_c[c]),
                    Op::Avg if prometheus2 => {
                        count[c] += 1.0;
                        mean[c] = mean_v2(mean[c], f, count[c]);
                    }
                    Op::Avg => {
                        count[c] += 1.0;
                        if !incremental[c] {
                            let (nv, nc) = kahan_inc(f, value[c], kahan_c[c]);
                            if !nv.is_infinite() {
                                (value[c], kahan_c[c]) = (nv, nc);
                                continue;
                            }
                            incremental[c] = true;
                            mean[c] = value[c] / (count[c] - 1.0);
                            kahan_c[c] /= count[c] - 1.0;
                        }
                        let q = (count[c] - 1.0) / count[c];
                        (mean[c], kahan_c[c]) = kahan_inc(f / count[c], q * mean[c], q * kahan_c[c]);
                    }
                    Op::Count => count[c] += 1.0,
                    Op::Group => {}
                    Op::Max if value[c] < f || value[c].is_nan() => value[c] = f,
                    Op::Min if value[c] > f || value[c].is_nan() => value[c] = f,
                    Op::Stddev | Op::Stdvar => {
                        count[c] += 1.0;
                        let delta = f - mean[c];
                        mean[c] += delta / count[c];
                        value[c] += delta * (f - mean[c]);
                    }
                    _ => {}
                }
            }
        }
        let mut out = Vec::with_capacity(n_groups);
        for (gi, &first) in group_first.iter().enumerate() {
            let base = gi * n;
            let mut floats = Vec::new();
            for i in 0..n {
                let c = base + i;
                if !seen[c] {
                    continue;
                }
                let f = match op {
                    Op::Sum if prometheus2 => value[c],
                    Op::Sum => value[c] + kahan_c[c],
                    Op::Avg if prometheus2 => mean[c],
                    Op::Avg if incremental[c] => mean[c] + kahan_c[c],
                    Op::Avg => value[c] / count[c] + kahan_c[c] / count[c],
                    Op::Count => count[c],
                    Op::Stdvar => value[c] / count[c],
                    Op::Stddev => (value[c] / count[c]).sqrt(),
                    _ => value[c],
                };
                floats.push(FPoint { t: g.t(i), f });
            }
            let labels = group_labels(&series[first].labels, &a.grouping, a.without);
            out.push(Series { labels, floats, drop_name: drop[gi] });
        }
        Ok(Some(RVal::Vector(out)))
    }

    fn r_quantile(
        &mut self,
        a: &Aggregate,
        series: &[Series],
        members: &[Vec<usize>],
        group_first: &[usize],
        qs: &[f64],
        g: &Grid,
    ) -> RVal {
        let mut out = Vec::new();
        let mut values = Vec::new();
        for (gi, member) in members.iter().enumerate() {
            let mut cursors = vec![0usize; member.len()];
            let mut floats = Vec::new();
            let mut drop = false;
            for (i, &q) in qs.iter().enumerate() {
                let t = g.t(i);
                values.clear();
                for (k, &si) in member.iter().enumerate() {
                    if let Some(f) = point_at(&series[si].floats, &mut cursors[k], t) {
                        values.push(f);
                        drop |= series[si].drop_name;
                    }
                }
                if !values.is_empty() {
                    floats.push(FPoint { t, f: quantile(q, values.clone()) });
                }
            }
            if !floats.is_empty() {
                let labels = group_labels(&series[group_first[gi]].labels, &a.grouping, a.without);
                out.push(Series { labels, floats, drop_name: drop });
            }
        }
        RVal::Vector(out)
    }

    fn r_binary(&mut self, b: &Binary, g: &Grid) -> Result<Option<RVal>> {
        let lhs = self.rnode(&b.lhs, g)?;
        let rhs = self.rnode(&b.rhs, g)?;
        Ok(match (lhs, rhs) {
            (RVal::Scalar(l), RVal::Scalar(r)) => {
                let values = l
                    .iter()
                    .zip(&r)
                    .map(|(&l, &r)| {
                        let (v, keep) = apply(b.op, l, r);
                        if b.op.is_comparison() {
                            f64::from(u8::from(keep))
                        } else {
                            v
                        }
                    })
                    .collect();
                Some(RVal::Scalar(values))
            }
            (RVal::Vector(l), RVal::Scalar(r)) => Some(RVal::Vector(self.r_vector_scalar(b, l, &r, false, g))),
            (RVal::Scalar(l), RVal::Vector(r)) => Some(RVal::Vector(self.r_vector_scalar(b, r, &l, true, g))),
            (RVal::Vector(l), RVal::Vector(r)) => {
                let default = VectorMatching {
                    card: if b.op.is_set() { Cardinality::ManyToMany } else { Cardinality::OneToOne },
                    matching_labels: Vec::new(),
                    on: false,
                    include: Vec::new(),
                    fill: Default::default(),
                };
                let m = b.matching.as_ref().unwrap_or(&default);
                match b.op {
                    BinaryOp::And => Some(RVal::Vector(r_and_unless(l, &r, m, true, g))),
                    BinaryOp::Unless => Some(RVal::Vector(r_and_unless(l, &r, m, false, g))),
                    BinaryOp::Or => Some(RVal::Vector(r_or(l, r, m, g))),
                    _ => self.r_vector_vector(b, l, r, m).map(RVal::Vector),
                }
            }
        })
    }

    fn r_vector_scalar(&self, b: &Binary, series: Vec<Series>, scalar: &[f64], swap: bool, g: &Grid) -> Vec<Series> {
        if matches!(b.op, BinaryOp::TrimUpper | BinaryOp::TrimLower) {
            return Vec::new();
        }
        let drop = changes_name(self, b.op) || b.return_bool;
        let mut out = Vec::with_capacity(series.len());
        for mut s in series {
            let mut cursor = 0;
            s.floats.retain_mut(|p| {
                let sc = scalar[g.idx_from(p.t, &mut cursor)];
                let (l, r) = if swap { (sc, p.f) } else { (p.f, sc) };
                let (mut v, mut keep) = apply(b.op, l, r);
                if b.op.is_comparison() {
                    v = p.f;
                }
                if b.return_bool {
                    v = f64::from(u8::from(keep));
                    keep = true;
                }
                p.f = v;
                keep
            });
            if s.floats.is_empty() {
                continue;
            }
            if drop {
                self.drop_series_name(&mut s);
            }
            out.push(s);
        }
        out
    }

    /// Arithmetic and comparisons between two vectors. `None` when some match group has more
    /// than one series on a side where that could be an error at some step: the step-by-step
    /// evaluator then decides (and words the error).
    fn r_vector_vector(&self, b: &Binary, l: Vec<Series>, r: Vec<Series>, m: &VectorMatching) -> Option<Vec<Series>> {
        if m.fill.lhs.is_some() || m.fill.rhs.is_some() {
            return None;
        }
        if matches!(b.op, BinaryOp::TrimUpper | BinaryOp::TrimLower) {
            return Some(Vec::new());
        }
        let swapped = m.card == Cardinality::OneToMany;
        let (many, one) = if swapped { (r, l) } else { (l, r) };
        let mut one_sigs: FxHashMap<u64, usize> = FxHashMap::default();
        for (i, s) in one.iter().enumerate() {
            if one_sigs.insert(signature(&s.labels, m), i).is_some() {
                return None;
            }
        }
        let drop = changes_name(self, b.op) || (!self.opts.delayed_name_removal && b.return_bool);
        let plain = m.card == Cardinality::OneToOne && !m.on && m.matching_labels.is_empty() && m.include.is_empty();
        let out_drop_name = b.return_bool && self.opts.delayed_name_removal;
        let mut used: FxHashSet<u64> = FxHashSet::default();
        let mut results: FxHashSet<(u64, Labels)> = FxHashSet::default();
        let mut out = Vec::new();
        for ls in &many {
            let sig = signature(&ls.labels, m);
            let Some(&ri) = one_sigs.get(&sig) else { continue };
            let rs = &one[ri];
            let labels = if plain {
                if drop {
                    self.without_name(&ls.labels)
                } else {
                    ls.labels.clone()
                }
            } else {
                result_labels(&ls.labels, &rs.labels, m, drop)
            };
            if m.card == Cardinality::OneToOne {
                if !used.insert(sig) {
                    return None;
                }
            } else if !results.insert((sig, labels.clone())) {
                return None;
            }
            let mut floats = Vec::new();
            let (mut i, mut j) = (0, 0);
            while i < ls.floats.len() && j < rs.floats.len() {
                let (lp, rp) = (ls.floats[i], rs.floats[j]);
                if lp.t < rp.t {
                    i += 1;
                    continue;
                }
                if rp.t < lp.t {
                    j += 1;
                    continue;
                }
                i += 1;
                j += 1;
                let (fl, fr) = if swapped { (rp.f, lp.f) } else { (lp.f, rp.f) };
                let (mut v, mut keep) = apply(b.op, fl, fr);
                if b.return_bool {
                    v = f64::from(u8::from(keep));
                    keep = true;
                }
                if keep {
                    floats.push(FPoint { t: lp.t, f: v });
                }
            }
            if !floats.is_empty() {
                out.push(Series { labels, floats, drop_name: out_drop_name });
            }
        }
        Some(out)
    }
}

/// The value of `floats` at `t`, moving `cursor` forward (calls come with growing `t`).
/// What [`Evaluator::r_matrix_function`] keeps per series to answer each window quickly.
enum Accel {
    None,
    Regression(RegressionPrefix),
    Rate(RateMemo),
    /// `before[i]`: pairs among `points[..=i]` that `changes` (or `resets`) counts.
    PairCounts(Vec<u32>),
    Extreme(Extreme),
    /// Prometheus 2.42's `avg_over_time`: the windows `(step, lo, hi)` are collected and their
    /// means computed together after the walk ([`avg_windows_v2`]).
    MeanV2(Vec<(i64, usize, usize)>),
}

/// The maximum (or minimum) of a window sliding forward over a series, as `max_over_time`
/// picks it: the earliest of the largest non-NaN values, or the window's last point when all
/// are NaN. A monotonic queue of candidate indices: each point enters and leaves once.
struct Extreme {
    max: bool,
    queue: std::collections::VecDeque<usize>,
    /// The next point to enter.
    next: usize,
}

impl Extreme {
    fn new(max: bool) -> Extreme {
        Extreme { max, queue: std::collections::VecDeque::new(), next: 0 }
    }

    /// The index of the chosen point of `points[lo..hi]`; `lo` and `hi` never decrease
    /// between calls and `lo < hi`.
    fn window(&mut self, points: &[FPoint], lo: usize, hi: usize) -> usize {
        self.next = self.next.max(lo);
        while self.next < hi {
            let f = points[self.next].f;
            if !f.is_nan() {
                // Strictly beaten candidates go; an equal earlier one stays in front.
                while let Some(&back) = self.queue.back() {
                    let beaten = if self.max { points[back].f < f } else { points[back].f > f };
                    if !beaten {
                        break;
                    }
                    self.queue.pop_back();
                }
                self.queue.push_back(self.next);
            }
            self.next += 1;
        }
        while self.queue.front().is_some_and(|&i| i < lo) {
            self.queue.pop_front();
        }
        self.queue.front().copied().unwrap_or(hi - 1)
    }
}

#[inline]
fn point_at(floats: &[FPoint], cursor: &mut usize, t: i64) -> Option<f64> {
    while *cursor < floats.len() && floats[*cursor].t < t {
        *cursor += 1;
    }
    (*cursor < floats.len() && floats[*cursor].t == t).then(|| floats[*cursor].f)
}

/// Per signature, the steps where some series of `side` has a point.
fn presence(side: &[Series], m: &VectorMatching, g: &Grid) -> FxHashMap<u64, Vec<bool>> {
    let mut out: FxHashMap<u64, Vec<bool>> = FxHashMap::default();
    for s in side {
        let steps = out.entry(signature(&s.labels, m)).or_insert_with(|| vec![false; g.n]);
        for p in &s.floats {
            steps[g.idx(p.t)] = true;
        }
    }
    out
}

fn r_and_unless(l: Vec<Series>, r: &[Series], m: &VectorMatching, and: bool, g: &Grid) -> Vec<Series> {
    let right = presence(r, m, g);
    let mut out = Vec::with_capacity(l.len());
    for mut s in l {
        let steps = right.get(&signature(&s.labels, m));
        s.floats.retain(|p| steps.is_some_and(|st| st[g.idx(p.t)]) == and);
        if !s.floats.is_empty() {
            out.push(s);
        }
    }
    out
}

fn r_or(l: Vec<Series>, r: Vec<Series>, m: &VectorMatching, g: &Grid) -> Vec<Series> {
    let left = presence(&l, m, g);
    let mut out = l;
    for mut s in r {
        if let Some(steps) = left.get(&signature(&s.labels, m)) {
            s.floats.retain(|p| !steps[g.idx(p.t)]);
        }
        if !s.floats.is_empty() {
            out.push(s);
        }
    }
    out
}

/// `topk`/`bottomk` per group and step; the chosen series keep their labels.
fn r_topk(top: bool, series: Vec<Series>, members: &[Vec<usize>], ks: &[f64], g: &Grid, prometheus2: bool) -> RVal {
    let mut chosen: Vec<Vec<FPoint>> = vec![Vec::new(); series.len()];
    let mut candidates: Vec<(f64, usize)> = Vec::new();
    for member in members {
        let mut cursors = vec![0usize; member.len()];
        for (i, &k) in ks.iter().enumerate() {
            let t = g.t(i);
            candidates.clear();
            for (c, &si) in member.iter().enumerate() {
                if let Some(f) = point_at(&series[si].floats, &mut cursors[c], t) {
                    candidates.push((f, si));
                }
            }
            if k < 1.0 || candidates.is_empty() {
                continue;
            }
            let k = (k as usize).min(candidates.len());
            if prometheus2 {
                for (f, si) in heap_select(top, candidates.drain(..), k, |c| c.0) {
                    chosen[si].push(FPoint { t, f });
                }
                continue;
            }
            if top {
                candidates.sort_by(|a, b| cmp_nan_low(b.0, a.0));
            } else {
                candidates.sort_by(|a, b| cmp_nan_high(a.0, b.0));
            }
            candidates.truncate(k);
            for &(f, si) in &candidates {
                chosen[si].push(FPoint { t, f });
            }
        }
    }
    let out = series
        .into_iter()
        .zip(chosen)
        .filter(|(_, c)| !c.is_empty())
        .map(|(s, floats)| Series { labels: s.labels, floats, drop_name: s.drop_name })
        .collect();
    RVal::Vector(out)
}

/// Series with equal labels merged into one (points in time order), as the step-by-step
/// evaluator's result has them; empty series dropped.
fn merge_same_labels(series: Vec<Series>) -> Vec<Series> {
    let mut seen: FxHashSet<&Labels> = FxHashSet::default();
    if series.iter().all(|s| seen.insert(&s.labels)) {
        return series.into_iter().filter(|s| !s.floats.is_empty()).collect();
    }
    let mut out: Vec<Series> = Vec::new();
    let mut index: FxHashMap<Labels, usize> = FxHashMap::default();
    for s in series {
        if s.floats.is_empty() {
            continue;
        }
        match index.get(&s.labels) {
            Some(&i) => {
                out[i].drop_name |= s.drop_name;
                out[i].floats.extend(s.floats);
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    for s in &mut out {
        s.floats.sort_by_key(|p| p.t);
    }
    out
}

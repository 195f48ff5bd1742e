//! The function implementations.

use sextant_model::{Labels, LabelsBuilder, MatchOp};

use super::aggregate::{cmp_nan_high, cmp_nan_low, go_g, kahan_inc};
use super::eval::{Evaluator, RangeMode, Result, Val};
use super::hash::FxHashMap;
use super::quantile::{bucket_fraction, bucket_quantile, quantile, Bucket};
use super::value::{FPoint, Sample};
use super::QueryError;
use crate::ast::{Call, Expr};

/// `almost.Equal` of Prometheus' util: relative tolerance `epsilon`, NaN equals NaN.
pub(crate) fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if sextant_model::is_stale(a) || sextant_model::is_stale(b) {
        return sextant_model::is_stale(a) && sextant_model::is_stale(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// Go's `math.Max`: NaN wins.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn scalar_arg(ev: &mut Evaluator<'_>, e: &Expr, t: i64) -> Result<f64> {
    match ev.eval(e, t)? {
        Val::Scalar(f) => Ok(f),
        _ => Err(QueryError::Eval("expected a scalar argument".into())),
    }
}

fn string_arg(ev: &mut Evaluator<'_>, e: &Expr, t: i64) -> Result<String> {
    match ev.eval(e, t)? {
        Val::Str(s) => Ok(s),
        _ => Err(QueryError::Eval("expected a string argument".into())),
    }
}

fn vector_arg(ev: &mut Evaluator<'_>, e: &Expr, t: i64) -> Result<Vec<Sample>> {
    match ev.eval(e, t)? {
        Val::Vector(v) => Ok(v),
        _ => Err(QueryError::Eval("expected an instant vector argument".into())),
    }
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        other => other,
    }
}

pub(crate) fn call(ev: &mut Evaluator<'_>, c: &Call, t: i64) -> Result<Val> {
    let name = c.func.name;
    let args = &c.args;
    if matches!(name, "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc") && ev.start != ev.end {
        ev.annos.warn("sort is ineffective for range queries since results are always ordered by labels");
    }
    let simple: Option<fn(f64) -> f64> = match name {
        "abs" => Some(f64::abs),
        "ceil" => Some(f64::ceil),
        "floor" => Some(f64::floor),
        "exp" => Some(f64::exp),
        "sqrt" => Some(f64::sqrt),
        "ln" => Some(f64::ln),
        "log2" => Some(f64::log2),
        "log10" => Some(f64::log10),
        "acos" => Some(f64::acos),
        "acosh" => Some(f64::acosh),
        "asin" => Some(f64::asin),
        "asinh" => Some(f64::asinh),
        "atan" => Some(f64::atan),
        "atanh" => Some(f64::atanh),
        "cos" => Some(f64::cos),
        "cosh" => Some(f64::cosh),
        "sin" => Some(f64::sin),
        "sinh" => Some(f64::sinh),
        "tan" => Some(f64::tan),
        "tanh" => Some(f64::tanh),
        "deg" => Some(f64::to_degrees),
        "rad" => Some(f64::to_radians),
        "sgn" => Some(|v: f64| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }),
        _ => None,
    };
    if let Some(f) = simple {
        let mut v = vector_arg(ev, &args[0], t)?;
        for s in &mut v {
            s.f = f(s.f);
            ev.drop_name(s);
        }
        return Ok(Val::Vector(v));
    }
    match name {
        "time" => Ok(Val::Scalar(t as f64 / 1000.0)),
        "pi" => Ok(Val::Scalar(std::f64::consts::PI)),
        "start" => Ok(Val::Scalar(ev.start as f64 / 1000.0)),
        "end" => Ok(Val::Scalar(ev.end as f64 / 1000.0)),
        "range" => Ok(Val::Scalar((ev.end - ev.start) as f64 / 1000.0)),
        "step" => Ok(Val::Scalar(ev.interval as f64 / 1000.0)),
        "min_of" | "max_of" => {
            let a = scalar_arg(ev, &args[0], t)?;
            let b = scalar_arg(ev, &args[1], t)?;
            Ok(Val::Scalar(if name == "min_of" { go_min(a, b) } else { go_max(a, b) }))
        }
        "vector" => {
            let f = scalar_arg(ev, &args[0], t)?;
            Ok(Val::Vector(vec![Sample::new(Labels::empty(), t, f)]))
        }
        "scalar" => {
            let v = vector_arg(ev, &args[0], t)?;
            Ok(Val::Scalar(if v.len() == 1 { v[0].f } else { f64::NAN }))
        }
        "round" => {
            let mut v = vector_arg(ev, &args[0], t)?;
            let to = if args.len() > 1 { scalar_arg(ev, &args[1], t)? } else { 1.0 };
            let inv = 1.0 / to;
            for s in &mut v {
                s.f = (s.f * inv + 0.5).floor() / inv;
                ev.drop_name(s);
            }
            Ok(Val::Vector(v))
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let mut v = vector_arg(ev, &args[0], t)?;
            let (lo, hi) = match name {
                "clamp" => (scalar_arg(ev, &args[1], t)?, scalar_arg(ev, &args[2], t)?),
                "clamp_min" => (scalar_arg(ev, &args[1], t)?, f64::NAN),
                _ => (f64::NAN, scalar_arg(ev, &args[1], t)?),
            };
            if name == "clamp" && hi < lo {
                return Ok(Val::Vector(Vec::new()));
            }
            for s in &mut v {
                s.f = match name {
                    "clamp" => go_max(lo, go_min(hi, s.f)),
                    "clamp_min" => go_max(s.f, lo),
                    _ => go_min(s.f, hi),
                };
                ev.drop_name(s);
            }
            Ok(Val::Vector(v))
        }
        "timestamp" => {
            let mut v = match unwrap_parens(&args[0]) {
                Expr::VectorSelector(vs) => ev.vector_selector_timestamps(vs, t)?,
                other => {
                    let mut v = vector_arg(ev, other, t)?;
                    for s in &mut v {
                        s.f = s.t as f64 / 1000.0;
                    }
                    v
                }
            };
            for s in &mut v {
                ev.drop_name(s);
            }
            Ok(Val::Vector(v))
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute" | "month" | "year" => {
            let mut v = if args.is_empty() {
                vec![Sample::new(Labels::empty(), t, t as f64 / 1000.0)]
            } else {
                vector_arg(ev, &args[0], t)?
            };
            for s in &mut v {
                s.f = date_part(name, s.f, ev.closed_windows());
                ev.drop_name(s);
            }
            Ok(Val::Vector(v))
        }
        "absent" => {
            let v = vector_arg(ev, &args[0], t)?;
            if !v.is_empty() {
                return Ok(Val::Vector(Vec::new()));
            }
            Ok(Val::Vector(vec![Sample::new(absent_labels(&args[0]), t, 1.0)]))
        }
        "sort" | "sort_desc" => {
            let mut v = vector_arg(ev, &args[0], t)?;
            if name == "sort" {
                v.sort_by(|a, b| cmp_nan_high(a.f, b.f));
            } else {
                v.sort_by(|a, b| cmp_nan_low(b.f, a.f));
            }
            Ok(Val::Vector(v))
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut v = vector_arg(ev, &args[0], t)?;
            let mut names = Vec::new();
            for a in &args[1..] {
                names.push(string_arg(ev, a, t)?);
            }
            v.sort_by(|a, b| {
                for n in &names {
                    let o = natural_cmp(a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                    if o != std::cmp::Ordering::Equal {
                        return o;
                    }
                }
                a.labels.cmp(&b.labels)
            });
            if name == "sort_by_label_desc" {
                v.reverse();
            }
            Ok(Val::Vector(v))
        }
        "label_replace" => label_replace(ev, c, t),
        "label_join" => label_join(ev, c, t),
        "histogram_quantile" => {
            let q = scalar_arg(ev, &args[0], t)?;
            let v = vector_arg(ev, &args[1], t)?;
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
                ev.annos.warn(format!("quantile value should be between 0 and 1, got {}", go_g(q)));
            }
            let mut out = Vec::new();
            for (labels, drop, buckets) in classic_buckets(ev, v) {
                let name = labels.metric_name().unwrap_or("").to_string();
                let (f, forced) = bucket_quantile(q, buckets);
                if forced {
                    let suffix = if ev.opts.delayed_name_removal && !name.is_empty() {
                        format!(" for metric name {name:?}")
                    } else {
                        String::new()
                    };
                    ev.annos.info(format!("input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile){suffix}"));
                }
                let mut s = Sample { labels, t, f, drop_name: drop };
                ev.drop_name(&mut s);
                out.push(s);
            }
            Ok(Val::Vector(out))
        }
        "histogram_fraction" => {
            let lo = scalar_arg(ev, &args[0], t)?;
            let hi = scalar_arg(ev, &args[1], t)?;
            let v = vector_arg(ev, &args[2], t)?;
            let mut out = Vec::new();
            if ev.closed_windows() {
                // 2.42 reads only native histograms here.
                return Ok(Val::Vector(out));
            }
            for (labels, drop, buckets) in classic_buckets(ev, v) {
                let mut s = Sample { labels, t, f: bucket_fraction(lo, hi, buckets), drop_name: drop };
                ev.drop_name(&mut s);
                out.push(s);
            }
            Ok(Val::Vector(out))
        }
        "histogram_quantiles" => {
            let v = vector_arg(ev, &args[0], t)?;
            let label = string_arg(ev, &args[1], t)?;
            let mut qs = Vec::new();
            for a in &args[2..] {
                let q = scalar_arg(ev, a, t)?;
                if q.is_nan() || !(0.0..=1.0).contains(&q) {
                    ev.annos.warn(format!("quantile value should be between 0 and 1, got {}", go_g(q)));
                }
                qs.push(q);
            }
            let groups = classic_buckets(ev, v);
            let mut out = Vec::new();
            for q in qs {
                for (labels, drop, buckets) in &groups {
                    let (f, forced) = bucket_quantile(q, buckets.clone());
                    if forced {
                        let name = labels.metric_name().unwrap_or("");
                        let suffix = if ev.opts.delayed_name_removal && !name.is_empty() {
                            format!(" for metric name {name:?}")
                        } else {
                            String::new()
                        };
                        ev.annos.info(format!("input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile){suffix}"));
                    }
                    let mut b = LabelsBuilder::new(labels);
                    b.set(&label, &openmetrics_float(q));
                    let mut s = Sample { labels: b.labels(), t, f, drop_name: *drop };
                    ev.drop_name(&mut s);
                    out.push(s);
                }
            }
            Ok(Val::Vector(out))
        }
        "info" => super::info::info(ev, c, t),
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev" | "histogram_stdvar"
        | "start_timestamp" => {
            // Native histograms only: float samples are ignored.
            for a in args {
                ev.eval(a, t)?;
            }
            Ok(Val::Vector(Vec::new()))
        }
        _ => range_function(ev, c, t),
    }
}

impl Evaluator<'_> {
    /// A classic histogram bucket's upper bound and the hash of its labels without `le` (its
    /// group); `None`, with Prometheus' warning, when `le` is missing or malformed.
    pub(super) fn bucket_key(&mut self, labels: &Labels) -> Option<(f64, u64)> {
        let le = labels.get("le").unwrap_or("");
        let Some(upper) = parse_go_float(le) else {
            let name = labels.metric_name().unwrap_or("");
            let suffix = if self.opts.delayed_name_removal && !name.is_empty() {
                format!(" for metric name {name:?}")
            } else {
                String::new()
            };
            self.annos.warn(format!("bucket label \"le\" is missing or has a malformed value of {le:?}{suffix}"));
            return None;
        };
        use std::hash::{Hash, Hasher};
        let mut h = super::hash::FxHasher::default();
        for l in labels.iter().filter(|l| &*l.name != "le") {
            l.name.hash(&mut h);
            l.value.hash(&mut h);
        }
        Some((upper, h.finish()))
    }
}

/// Groups classic histogram buckets by their labels without `le`.
fn classic_buckets(ev: &mut Evaluator<'_>, v: Vec<Sample>) -> Vec<(Labels, bool, Vec<Bucket>)> {
    let mut out: Vec<(Labels, bool, Vec<Bucket>)> = Vec::new();
    let mut index: FxHashMap<u64, usize> = FxHashMap::default();
    for s in v {
        let Some((upper, hash)) = ev.bucket_key(&s.labels) else { continue };
        let i = *index.entry(hash).or_insert_with(|| {
            out.push((s.labels.filter(|l| &*l.name != "le"), false, Vec::new()));
            out.len() - 1
        });
        out[i].1 |= s.drop_name;
        out[i].2.push(Bucket { upper, count: s.f });
    }
    out
}

/// A float as OpenMetrics writes it in labels: `1.0`, `0.25`, `+Inf`.
fn openmetrics_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let s = format!("{f}");
    if s.contains(['.', 'e']) {
        s
    } else {
        s + ".0"
    }
}

/// Go's `strconv.ParseFloat` for the spellings label values use.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    let neg = s.starts_with('-');
    let lower = t.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if neg { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if lower == "nan" {
        return Some(f64::NAN);
    }
    let cleaned: String = s.chars().filter(|&c| c != '_').collect();
    if cleaned.is_empty() || cleaned.contains("in") {
        return None;
    }
    if let Some(hex) = cleaned.strip_prefix("0x").or_else(|| cleaned.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    cleaned.parse::<f64>().ok()
}

fn absent_labels(e: &Expr) -> Labels {
    let matchers = match e {
        Expr::VectorSelector(vs) => &vs.matchers,
        Expr::MatrixSelector(ms) => &ms.selector.matchers,
        _ => return Labels::empty(),
    };
    let mut b = LabelsBuilder::new(&Labels::empty());
    let mut has: Vec<&str> = Vec::new();
    for m in matchers {
        if m.name == "__name__" {
            continue;
        }
        if m.op == MatchOp::Equal && !has.contains(&m.name.as_str()) {
            b.set(&m.name, &m.value);
            has.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.labels()
}

fn check_label_name(ev: &Evaluator<'_>, name: &str) -> bool {
    if ev.closed_windows() {
        return sextant_model::is_valid_legacy_label_name(name);
    }
    !name.is_empty()
}

fn label_replace(ev: &mut Evaluator<'_>, c: &Call, t: i64) -> Result<Val> {
    let dst = string_arg(ev, &c.args[1], t)?;
    let repl = string_arg(ev, &c.args[2], t)?;
    let src = string_arg(ev, &c.args[3], t)?;
    let re_src = string_arg(ev, &c.args[4], t)?;
    let re = match ev.regexes.get(&re_src) {
        Some(re) => re.clone(),
        None => {
            let re = regex::Regex::new(&format!("^(?s:{re_src})$"))
                .map_err(|_| QueryError::Eval(format!("invalid regular expression in label_replace(): {re_src}")))?;
            ev.regexes.insert(re_src.clone(), re.clone());
            re
        }
    };
    if !check_label_name(ev, &dst) {
        return Err(QueryError::Eval(format!("invalid destination label name in label_replace(): {dst}")));
    }
    let mut v = vector_arg(ev, &c.args[0], t)?;
    for s in &mut v {
        let value = s.labels.get(&src).unwrap_or("").to_string();
        if let Some(caps) = re.captures(&value) {
            let mut res = String::new();
            caps.expand(&repl, &mut res);
            let mut b = LabelsBuilder::new(&s.labels);
            b.set(&dst, &res);
            s.labels = b.labels();
            if dst == "__name__" {
                s.drop_name = false;
            }
        }
    }
    Ok(Val::Vector(v))
}

fn label_join(ev: &mut Evaluator<'_>, c: &Call, t: i64) -> Result<Val> {
    let dst = string_arg(ev, &c.args[1], t)?;
    let sep = string_arg(ev, &c.args[2], t)?;
    let mut srcs = Vec::new();
    for a in &c.args[3..] {
        srcs.push(string_arg(ev, a, t)?);
    }
    if !check_label_name(ev, &dst) {
        return Err(QueryError::Eval(format!("invalid destination label name in label_join(): {dst}")));
    }
    let mut v = vector_arg(ev, &c.args[0], t)?;
    for s in &mut v {
        let joined: Vec<&str> = srcs.iter().map(|n| s.labels.get(n).unwrap_or("")).collect();
        let joined = joined.join(&sep);
        let mut b = LabelsBuilder::new(&s.labels);
        b.set(&dst, &joined);
        s.labels = b.labels();
        if dst == "__name__" {
            s.drop_name = false;
        }
    }
    Ok(Val::Vector(v))
}

/// Compares strings with runs of digits compared as numbers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let na = a[si..i].trim_start_matches('0');
            let nb = b[sj..j].trim_start_matches('0');
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            if ab[i] != bb[j] {
                return ab[i].cmp(&bb[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}

/// Civil date of a Unix time in seconds (UTC): (year, month 1-12, day 1-31, day of year 1-366,
/// weekday 0 = Sunday, hour, minute).
fn civil(secs: i128) -> (i64, u32, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400) as i64;
    let rem = secs.rem_euclid(86_400) as i64;
    let (hour, minute) = ((rem / 3600) as u32, ((rem % 3600) / 60) as u32);
    let weekday = (days + 4).rem_euclid(7) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let day = (doy_mar - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let doy = cum[(month - 1) as usize] + day + u32::from(leap && month > 2);
    (year, month, day, doy, weekday, hour, minute)
}

/// Go's seconds from its absolute zero year (-292277022399) to the Unix epoch: `time.Unix`
/// adds this as an unsigned 64-bit number, so times before `-GO_UNIX_TO_ABSOLUTE` wrap.
const GO_UNIX_TO_ABSOLUTE: i128 = 9_223_372_028_715_321_600;

/// The Unix seconds whose civil date Go's `time.Unix(int64(f), 0).UTC()` shows (Prometheus
/// 2.42): `int64` truncates toward zero, and NaN, ±Inf and values out of range become
/// `math.MinInt64` (amd64), whose absolute time wraps around 2⁶⁴.
fn go_unix_seconds(f: f64) -> i128 {
    let secs = if f.is_finite() && f.abs() < 9.223_372_036_854_776e18 { f.trunc() as i64 } else { i64::MIN };
    (i128::from(secs) + GO_UNIX_TO_ABSOLUTE).rem_euclid(1 << 64) - GO_UNIX_TO_ABSOLUTE
}

/// `name`'s part of the date at Unix time `f` (s); `prometheus2`: as Prometheus 2.42, which
/// also gives NaN and ±Inf a date.
fn date_part(name: &str, f: f64, prometheus2: bool) -> f64 {
    let secs = if prometheus2 {
        go_unix_seconds(f)
    } else if f.is_nan() || f.is_infinite() {
        return f;
    } else {
        i128::from(f.trunc() as i64)
    };
    let (year, month, day, doy, weekday, hour, minute) = civil(secs);
    match name {
        "day_of_month" => day as f64,
        "day_of_week" => weekday as f64,
        "day_of_year" => doy as f64,
        "days_in_month" => {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            let d = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            d[(month - 1) as usize] as f64
        }
        "hour" => hour as f64,
        "minute" => minute as f64,
        "month" => month as f64,
        _ => year as f64,
    }
}

/// Prefix sums of one series for [`linear_regression`] over many windows of it: each window's
/// regression costs O(1) instead of a pass over its points. Timestamp sums are exact integers;
/// value sums are compensated (Neumaier) prefix pairs, so a window's sums match the direct
/// compensated sums to far better than the promqltest tolerance. Built only for series whose
/// values are all finite (an infinity would poison the prefix differences).
#[derive(Debug)]
pub(crate) struct RegressionPrefix {
    /// The first timestamp: sums are over `t - t0` to keep the products small.
    t0: i64,
    /// Σ(t - t0) and Σ(t - t0)² over `points[..i]`.
    dt: Vec<(i128, i128)>,
    /// Σv and Σ(t - t0)·v over `points[..i]`, each as (sum, compensation).
    v: Vec<[(f64, f64); 2]>,
    /// `run_end[i]`: the first index after `i` whose value differs from `points[i]`'s.
    run_end: Vec<u32>,
}

impl RegressionPrefix {
    pub(crate) fn new(points: &[FPoint]) -> Option<RegressionPrefix> {
        if points.len() < 2 || points.len() > u32::MAX as usize || points.iter().any(|p| !p.f.is_finite()) {
            return None;
        }
        let t0 = points[0].t;
        let n = points.len();
        let (mut dt, mut v) = (Vec::with_capacity(n + 1), Vec::with_capacity(n + 1));
        let (mut sd, mut sd2) = (0i128, 0i128);
        let (mut sv, mut cv, mut sdv, mut cdv) = (0.0, 0.0, 0.0, 0.0);
        dt.push((0, 0));
        v.push([(0.0, 0.0); 2]);
        for p in points {
            let d = i128::from(p.t) - i128::from(t0);
            sd += d;
            sd2 += d * d;
            (sv, cv) = kahan_inc(p.f, sv, cv);
            (sdv, cdv) = kahan_inc(d as f64 * p.f, sdv, cdv);
            dt.push((sd, sd2));
            v.push([(sv, cv), (sdv, cdv)]);
        }
        let mut run_end = vec![n as u32; n];
        for i in (0..n - 1).rev() {
            run_end[i] = if points[i + 1].f == points[i].f { run_end[i + 1] } else { (i + 1) as u32 };
        }
        Some(RegressionPrefix { t0, dt, v, run_end })
    }

    /// [`linear_regression`] of `points[lo..hi]` (at least one point) with `x` in seconds
    /// relative to `intercept_time`.
    pub(crate) fn window(&self, points: &[FPoint], lo: usize, hi: usize, intercept_time: i64) -> (f64, f64) {
        if self.run_end[lo] as usize >= hi {
            return (0.0, points[lo].f);
        }
        let n = (hi - lo) as f64;
        let count = (hi - lo) as i128;
        let d0 = i128::from(intercept_time) - i128::from(self.t0);
        let (sd, sd2) = (self.dt[hi].0 - self.dt[lo].0, self.dt[hi].1 - self.dt[lo].1);
        let sx = (sd - count * d0) as f64 / 1e3;
        let sx2 = (sd2 - 2 * d0 * sd + count * d0 * d0) as f64 / 1e6;
        let diff = |k: usize| {
            let (a, b) = (self.v[hi][k], self.v[lo][k]);
            (a.0 - b.0) + (a.1 - b.1)
        };
        let sy = diff(0);
        let sxy = (diff(1) - d0 as f64 * sy) / 1e3;
        let cov = sxy - sx * sy / n;
        let var = sx2 - sx * sx / n;
        let slope = cov / var;
        (slope, sy / n - slope * sx / n)
    }
}

fn linear_regression(points: &[FPoint], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = points[0].f;
    let mut const_y = true;
    for (i, p) in points.iter().enumerate() {
        if const_y && i > 0 && p.f != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_time) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.f, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.f, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// The timing part of [`extrapolated_rate`] for one window shape, kept between windows: on
/// regular scrapes successive windows have the same shape, so their divisions are done once.
#[derive(Debug, Default)]
pub(crate) struct RateMemo {
    /// (first - range start, range end - last, last - first, points, range) in ms.
    key: Option<(i64, i64, i64, usize, i64)>,
    to_start: f64,
    to_end: f64,
    sampled: f64,
    avg: f64,
    threshold: f64,
    /// `to_start` after the threshold rule when no zero point moves it, and the factor then.
    plain_to_start: f64,
    plain_factor: f64,
}

impl RateMemo {
    #[allow(clippy::too_many_arguments)]
    fn timing(
        &mut self,
        first_t: i64,
        last_t: i64,
        range_start: i64,
        range_end: i64,
        n: usize,
        range: i64,
        rate: bool,
    ) {
        let key = (first_t - range_start, range_end - last_t, last_t - first_t, n, range);
        if self.key == Some(key) {
            return;
        }
        self.key = Some(key);
        self.to_start = (first_t - range_start) as f64 / 1000.0;
        self.to_end = (range_end - last_t) as f64 / 1000.0;
        self.sampled = (last_t - first_t) as f64 / 1000.0;
        self.avg = self.sampled / (n - 1) as f64;
        self.threshold = self.avg * 1.1;
        if self.to_end >= self.threshold {
            self.to_end = self.avg / 2.0;
        }
        self.plain_to_start = if self.to_start >= self.threshold { self.avg / 2.0 } else { self.to_start };
        self.plain_factor = self.factor(self.plain_to_start, range, rate);
    }

    fn factor(&self, to_start: f64, range: i64, rate: bool) -> f64 {
        let mut factor = if self.sampled != 0.0 { (self.sampled + to_start + self.to_end) / self.sampled } else { 1.0 };
        if rate {
            factor /= range as f64 / 1000.0;
        }
        factor
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn extrapolated_rate(
    points: &[FPoint],
    range_start: i64,
    range_end: i64,
    range: i64,
    counter: bool,
    rate: bool,
    v2: bool,
    scan_resets: bool,
    memo: &mut RateMemo,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let first = points[0];
    let last = points[points.len() - 1];
    let mut result = last.f - first.f;
    if counter && scan_resets {
        for w in points.windows(2) {
            if w[1].f < w[0].f {
                result += w[0].f;
            }
        }
    }
    memo.timing(first.t, last.t, range_start, range_end, points.len(), range, rate);
    let mut to_start = memo.to_start;
    let zero_point = counter && result > 0.0 && first.f >= 0.0;
    if v2 && zero_point {
        let to_zero = memo.sampled * (first.f / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_start >= memo.threshold {
        to_start = memo.avg / 2.0;
    }
    if !v2 && zero_point {
        let to_zero = memo.sampled * (first.f / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let factor = if to_start.to_bits() == memo.plain_to_start.to_bits() {
        memo.plain_factor
    } else {
        memo.factor(to_start, range, rate)
    };
    Some(result * factor)
}

fn interpolate(p1: FPoint, p2: FPoint, t: i64, counter: bool) -> f64 {
    let y1 = if counter && p2.f < p1.f { 0.0 } else { p1.f };
    y1 + (p2.f - y1) * (t - p1.t) as f64 / (p2.t - p1.t) as f64
}

/// `sort.Search(n, pred)`: the first index below `n` where `pred` holds, else `n`.
fn search(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    (0..n).find(|&i| pred(i)).unwrap_or(n)
}

/// The window of an `anchored`/`smoothed` selector as points at exactly `mint` and `maxt`
/// (picked or interpolated) with the samples between.
pub(crate) fn extend_floats(f: &[FPoint], mint: i64, maxt: i64, smoothed: bool) -> Vec<FPoint> {
    if f.is_empty() {
        return Vec::new();
    }
    let mut last = f.len() - 1;
    let mut first = search(last, |i| f[i].t > mint).saturating_sub(1);
    if smoothed {
        last = search(last, |i| f[i].t >= maxt);
    }
    if f[last].t <= mint {
        return Vec::new();
    }
    let left =
        if smoothed && f[first].t < mint { interpolate(f[first], f[first + 1], mint, false) } else { f[first].f };
    let right = if smoothed && last > 0 && f[last].t > maxt {
        interpolate(f[last - 1], f[last], maxt, false)
    } else {
        f[last].f
    };
    if f[first].t <= mint {
        first += 1;
    }
    let mut out = vec![FPoint { t: mint, f: left }];
    if f[last].t >= maxt {
        if last > first {
            out.extend_from_slice(&f[first..last]);
        }
    } else if last + 1 > first {
        out.extend_from_slice(&f[first..=last]);
    }
    out.push(FPoint { t: maxt, f: right });
    out
}

/// `rate`/`increase`/`delta` over `anchored` or `smoothed` windows: no extrapolation, the
/// value at the window edges is the anchor sample or an interpolation.
fn extended_rate(
    f: &[FPoint],
    range_start: i64,
    range_end: i64,
    range: i64,
    counter: bool,
    rate: bool,
    smoothed: bool,
) -> Option<f64> {
    let mut last = f.len() - 1;
    let mut first = search(last, |i| f[i].t > range_start).saturating_sub(1);
    if smoothed {
        last = search(last, |i| f[i].t >= range_end);
    }
    if f[last].t <= range_start {
        return None;
    }
    if smoothed && f[first].t > range_end {
        return None;
    }
    let left = if smoothed && f[first].t < range_start {
        interpolate(f[first], f[first + 1], range_start, counter)
    } else {
        f[first].f
    };
    let right = if smoothed && last > 0 && f[last].t > range_end {
        interpolate(f[last - 1], f[last], range_end, counter)
    } else {
        f[last].f
    };
    let mut result = right - left;
    if counter {
        if f[first].t <= range_start {
            first += 1;
        }
        let end_excl = if f[last].t >= range_end { last } else { last + 1 };
        let inner = if first < end_excl { &f[first..end_excl] } else { &[][..] };
        let mut prev = left;
        for p in inner {
            if p.f < prev {
                result += prev;
            }
            prev = p.f;
        }
        if right < prev {
            result += prev;
        }
    }
    if rate {
        result /= range as f64 / 1000.0;
    }
    Some(result)
}

fn instant_value(points: &[FPoint], rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let last = points[points.len() - 1];
    let prev = points[points.len() - 2];
    let mut v = if rate && last.f < prev.f { last.f } else { last.f - prev.f };
    let interval = last.t - prev.t;
    if interval == 0 {
        return None;
    }
    if rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

fn avg_points(points: &[FPoint]) -> f64 {
    let (mut sum, mut mean, mut count, mut c) = (0.0, 0.0, 0.0, 0.0);
    let mut incremental = false;
    for p in points {
        count += 1.0;
        if !incremental {
            let (ns, nc) = kahan_inc(p.f, sum, c);
            if count == 1.0 || !ns.is_infinite() {
                (sum, c) = (ns, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.f / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

fn variance(points: &[FPoint]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in points {
        count += 1.0;
        let delta = p.f - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (p.f - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

fn range_function(ev: &mut Evaluator<'_>, c: &Call, t: i64) -> Result<Val> {
    let name = c.func.name;
    let args = &c.args;
    let matrix_idx = match name {
        "quantile_over_time" => 1,
        _ => 0,
    };
    if args.len() <= matrix_idx {
        return Err(QueryError::Eval(format!("unsupported function {name}")));
    }
    let mut scalars = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i != matrix_idx {
            scalars.push(scalar_arg(ev, a, t)?);
        }
    }
    if let Expr::MatrixSelector(ms) = unwrap_parens(&args[matrix_idx]) {
        let kind = if ms.selector.anchored {
            Some(("anchored", "changes, delta, increase, rate, resets"))
        } else if ms.selector.smoothed {
            Some(("smoothed", "delta, increase, rate"))
        } else {
            None
        };
        if let Some((k, list)) = kind {
            if !list.split(", ").any(|f| f == name) {
                return Err(QueryError::Eval(format!("{k} modifier can only be used with: {list} - not with {name}")));
            }
        }
    }
    if name == "double_exponential_smoothing" {
        let (sf, tf) = (scalars[0], scalars[1]);
        if !(sf > 0.0 && sf < 1.0) {
            return Err(QueryError::Eval(format!("invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}")));
        }
        if !(tf > 0.0 && tf < 1.0) {
            return Err(QueryError::Eval(format!("invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}")));
        }
    }
    if name == "quantile_over_time" {
        let q = scalars[0];
        if q.is_nan() || !(0.0..=1.0).contains(&q) {
            ev.annos.warn(format!("quantile value should be between 0 and 1, got {}", go_g(q)));
        }
    }
    let arg = ev.range_arg(&args[matrix_idx], t)?;
    let (range_start, range_end, range) = (arg.end - arg.range, arg.end, arg.range);
    let mode = arg.mode;
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    let v2 = ev.closed_windows();
    let mut out = Vec::new();
    let items = arg.items();
    if name == "absent_over_time" {
        if items.iter().any(|(_, p, _)| !p.is_empty()) {
            return Ok(Val::Vector(Vec::new()));
        }
        return Ok(Val::Vector(vec![Sample::new(absent_labels(unwrap_parens(&args[matrix_idx])), t, 1.0)]));
    }
    let mut non_counter: Vec<String> = Vec::new();
    for (labels, points, drop) in items {
        if points.is_empty() {
            continue;
        }
        if name == "holt_winters" {
            // 2.42 checks the factors for each series it smooths (NaN passes).
            let (sf, tf) = (scalars[0], scalars[1]);
            if sf <= 0.0 || sf >= 1.0 {
                return Err(QueryError::Eval(format!("invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}")));
            }
            if tf <= 0.0 || tf >= 1.0 {
                return Err(QueryError::Eval(format!("invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}")));
            }
        }
        let extended = mode != RangeMode::Plain;
        let smoothed = mode == RangeMode::Smoothed;
        let points = if mode == RangeMode::Anchored && matches!(name, "changes" | "resets") {
            // The anchor: the newest sample at or before the window start, then the window.
            let after = points.partition_point(|p| p.t <= range_start);
            if after >= points.len() {
                continue;
            }
            &points[after.saturating_sub(1)..]
        } else {
            points
        };
        let v = match name {
            "rate" if extended => extended_rate(points, range_start, range_end, range, true, true, smoothed),
            "increase" if extended => extended_rate(points, range_start, range_end, range, true, false, smoothed),
            "delta" if extended => extended_rate(points, range_start, range_end, range, false, false, smoothed),
            _ => match window_value(name, points, range_start, range_end, range, &scalars, t, v2) {
                Some(v) => v,
                None => return Err(QueryError::Eval(format!("unsupported function {name}"))),
            },
        };
        let Some(f) = v else { continue };
        if matches!(name, "rate" | "increase") {
            if let Some(n) = labels.metric_name() {
                if !["_total", "_sum", "_count", "_bucket"].iter().any(|s| n.ends_with(s))
                    && !non_counter.iter().any(|x| x == n)
                {
                    non_counter.push(n.to_string());
                }
            }
        }
        let mut s = Sample { labels: labels.clone(), t, f, drop_name: drop };
        if !keep_name {
            ev.drop_name(&mut s);
            if ev.tracks_origins() {
                ev.check_origin(c as *const _ as usize, &s.labels, labels.clone())?;
            }
        }
        out.push(s);
    }
    for n in non_counter {
        ev.annos.info(format!("metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {n:?}"));
    }
    Ok(Val::Vector(out))
}

/// The range functions [`window_value`] computes over one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WindowFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    Changes,
    Resets,
    AvgOverTime,
    SumOverTime,
    CountOverTime,
    PresentOverTime,
    LastOverTime,
    FirstOverTime,
    TsOfLastOverTime,
    TsOfFirstOverTime,
    MaxOverTime,
    MinOverTime,
    TsOfMaxOverTime,
    TsOfMinOverTime,
    StddevOverTime,
    StdvarOverTime,
    QuantileOverTime,
    MadOverTime,
    DoubleExponentialSmoothing,
}

impl WindowFn {
    pub(crate) fn from_name(name: &str) -> Option<WindowFn> {
        Some(match name {
            "rate" => WindowFn::Rate,
            "increase" => WindowFn::Increase,
            "delta" => WindowFn::Delta,
            "irate" => WindowFn::Irate,
            "idelta" => WindowFn::Idelta,
            "deriv" => WindowFn::Deriv,
            "predict_linear" => WindowFn::PredictLinear,
            "changes" => WindowFn::Changes,
            "resets" => WindowFn::Resets,
            "avg_over_time" => WindowFn::AvgOverTime,
            "sum_over_time" => WindowFn::SumOverTime,
            "count_over_time" => WindowFn::CountOverTime,
            "present_over_time" => WindowFn::PresentOverTime,
            "last_over_time" => WindowFn::LastOverTime,
            "first_over_time" => WindowFn::FirstOverTime,
            "ts_of_last_over_time" => WindowFn::TsOfLastOverTime,
            "ts_of_first_over_time" => WindowFn::TsOfFirstOverTime,
            "max_over_time" => WindowFn::MaxOverTime,
            "min_over_time" => WindowFn::MinOverTime,
            "ts_of_max_over_time" => WindowFn::TsOfMaxOverTime,
            "ts_of_min_over_time" => WindowFn::TsOfMinOverTime,
            "stddev_over_time" => WindowFn::StddevOverTime,
            "stdvar_over_time" => WindowFn::StdvarOverTime,
            "quantile_over_time" => WindowFn::QuantileOverTime,
            "mad_over_time" => WindowFn::MadOverTime,
            "double_exponential_smoothing" | "holt_winters" => WindowFn::DoubleExponentialSmoothing,
            _ => return None,
        })
    }
}

/// [`window_fn_value`] by function name: `None` for a name it does not cover.
#[allow(clippy::too_many_arguments)]
pub(crate) fn window_value(
    name: &str,
    points: &[FPoint],
    range_start: i64,
    range_end: i64,
    range: i64,
    scalars: &[f64],
    t: i64,
    v2: bool,
) -> Option<Option<f64>> {
    let func = WindowFn::from_name(name)?;
    Some(window_fn_value(func, points, range_start, range_end, range, scalars, t, v2, true))
}

/// The value of range function `func` over the samples of one plain window
/// `(range_start, range_end]` evaluated at `t`: `None` when the window yields no
/// sample. `scalars` are the other arguments;
/// `scan_resets: false` tells `rate`/`increase` the window holds no counter reset.
#[allow(clippy::too_many_arguments)]
pub(crate) fn window_fn_value(
    func: WindowFn,
    points: &[FPoint],
    range_start: i64,
    range_end: i64,
    range: i64,
    scalars: &[f64],
    t: i64,
    v2: bool,
    scan_resets: bool,
) -> Option<f64> {
    use WindowFn as W;
    match func {
        W::Rate => extrapolated_rate(
            points,
            range_start,
            range_end,
            range,
            true,
            true,
            v2,
            scan_resets,
            &mut RateMemo::default(),
        ),
        W::Increase => extrapolated_rate(
            points,
            range_start,
            range_end,
            range,
            true,
            false,
            v2,
            scan_resets,
            &mut RateMemo::default(),
        ),
        W::Delta => {
            extrapolated_rate(points, range_start, range_end, range, false, false, v2, false, &mut RateMemo::default())
        }
        W::Irate => instant_value(points, true),
        W::Idelta => instant_value(points, false),
        W::Deriv => (points.len() >= 2).then(|| linear_regression(points, points[0].t).0),
        W::PredictLinear => (points.len() >= 2).then(|| {
            let (slope, intercept) = linear_regression(points, t);
            slope * scalars[0] + intercept
        }),
        W::Changes => {
            let mut n = 0.0;
            for w in points.windows(2) {
                if w[1].f != w[0].f && !(w[1].f.is_nan() && w[0].f.is_nan()) {
                    n += 1.0;
                }
            }
            Some(n)
        }
        W::Resets => Some(points.windows(2).filter(|w| w[1].f < w[0].f).count() as f64),
        W::AvgOverTime if v2 => Some(avg_points_v2(points)),
        W::AvgOverTime => Some(avg_points(points)),
        W::SumOverTime => {
            let (mut s, mut c) = (0.0, 0.0);
            for p in points {
                (s, c) = kahan_inc(p.f, s, c);
            }
            Some(if s.is_infinite() { s } else { s + c })
        }
        W::CountOverTime => Some(points.len() as f64),
        W::PresentOverTime => Some(1.0),
        W::LastOverTime => Some(points[points.len() - 1].f),
        W::FirstOverTime => Some(points[0].f),
        W::TsOfLastOverTime => Some(points[points.len() - 1].t as f64 / 1000.0),
        W::TsOfFirstOverTime => Some(points[0].t as f64 / 1000.0),
        W::MaxOverTime | W::MinOverTime | W::TsOfMaxOverTime | W::TsOfMinOverTime => {
            let max = matches!(func, W::MaxOverTime | W::TsOfMaxOverTime);
            let mut best = points[0];
            for p in &points[1..] {
                let better = if max { p.f > best.f } else { p.f < best.f };
                if better || best.f.is_nan() {
                    best = *p;
                }
            }
            Some(if matches!(func, W::TsOfMaxOverTime | W::TsOfMinOverTime) { best.t as f64 / 1000.0 } else { best.f })
        }
        W::StddevOverTime => Some(variance(points).sqrt()),
        W::StdvarOverTime => Some(variance(points)),
        W::QuantileOverTime => Some(quantile(scalars[0], points.iter().map(|p| p.f).collect())),
        W::MadOverTime if points.iter().any(|p| p.f.is_nan()) => Some(f64::NAN),
        W::MadOverTime => {
            let values: Vec<f64> = points.iter().map(|p| p.f).collect();
            let median = quantile(0.5, values.clone());
            Some(quantile(0.5, values.iter().map(|v| (v - median).abs()).collect()))
        }
        W::DoubleExponentialSmoothing => double_exponential_smoothing(points, scalars[0], scalars[1]),
    }
}

/// `avg_over_time` as Prometheus 2.42 computes it: a compensated incremental mean.
fn avg_points_v2(points: &[FPoint]) -> f64 {
    let mut state = MeanV2::default();
    for p in points {
        state.add(p.f);
    }
    state.value()
}

/// The running state of Prometheus 2.42's `avg_over_time` over one window.
#[derive(Debug, Clone, Copy, Default)]
struct MeanV2 {
    mean: f64,
    c: f64,
    count: f64,
}

impl MeanV2 {
    #[inline(always)]
    fn add(&mut self, f: f64) {
        self.count += 1.0;
        let mean = self.mean;
        if mean.is_infinite() && (f.is_finite() || f.is_infinite() && (mean > 0.0) == (f > 0.0)) {
            return;
        }
        (self.mean, self.c) = kahan_inc(f / self.count - mean / self.count, mean, self.c);
    }

    fn value(self) -> f64 {
        if self.mean.is_infinite() {
            self.mean
        } else {
            self.mean + self.c
        }
    }
}

/// [`avg_points_v2`] of several windows of one series at once: each window's mean is a chain of
/// dependent divisions, so four windows advance side by side and the processor overlaps
/// their chains. Every window sees exactly the operations [`avg_points_v2`] does, in the same
/// order, so the results are identical to the bit. `windows` are `(lo, hi)` index ranges into
/// `points`; the result has one mean per window.
pub(crate) fn avg_windows_v2(points: &[FPoint], windows: &[(usize, usize)]) -> Vec<f64> {
    let mut out = Vec::with_capacity(windows.len());
    for group in windows.chunks(4) {
        let mut states = [MeanV2::default(); 4];
        let common = group.iter().map(|&(lo, hi)| hi - lo).min().unwrap_or(0);
        if group.len() == 4 {
            let [w0, w1, w2, w3] = [group[0].0, group[1].0, group[2].0, group[3].0];
            for j in 0..common {
                states[0].add(points[w0 + j].f);
                states[1].add(points[w1 + j].f);
                states[2].add(points[w2 + j].f);
                states[3].add(points[w3 + j].f);
            }
        } else {
            for j in 0..common {
                for (state, &(lo, _)) in states.iter_mut().zip(group) {
                    state.add(points[lo + j].f);
                }
            }
        }
        for (state, &(lo, hi)) in states.iter_mut().zip(group) {
            for p in &points[lo + common..hi] {
                state.add(p.f);
            }
            out.push(state.value());
        }
    }
    out
}

fn double_exponential_smoothing(points: &[FPoint], sf: f64, tf: f64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, points[0].f);
    let mut b = points[1].f - points[0].f;
    for (i, p) in points.iter().enumerate().skip(1) {
        let x = sf * p.f;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_v2_means_equal_one_at_a_time_to_the_bit() {
        let values = [1.0, 0.1, 1e308, 1e308, -3.5, f64::NAN, 2.0, f64::INFINITY, 7.25, f64::NEG_INFINITY, 0.3, 1e-300];
        let mut points = Vec::new();
        let mut x = 0.7f64;
        for i in 0..200 {
            x = (x * 3.9 * (1.0 - x)).clamp(0.01, 0.99);
            let f = if i % 37 == 5 { values[i % values.len()] } else { x * 1e6 - 4e5 };
            points.push(FPoint { t: i as i64 * 1000, f });
        }
        // Windows of every length and overlap, including empty and single-point ones.
        let mut windows = Vec::new();
        for lo in (0..200).step_by(7) {
            for len in [0usize, 1, 2, 5, 31, 64] {
                windows.push((lo, (lo + len).min(200)));
            }
        }
        for n in [1, 3, 4, 5, windows.len()] {
            let got = avg_windows_v2(&points, &windows[..n]);
            for (&(lo, hi), g) in windows[..n].iter().zip(&got) {
                let want = avg_points_v2(&points[lo..hi]);
                assert_eq!(g.to_bits(), want.to_bits(), "window {lo}..{hi}: {g} vs {want}");
            }
        }
    }

    fn series(start: i64, steps: &[i64], values: &[f64]) -> Vec<FPoint> {
        let mut t = start;
        steps
            .iter()
            .zip(values)
            .map(|(&d, &f)| {
                t += d;
                FPoint { t, f }
            })
            .collect()
    }

    /// Each window of the prefix-sum regression against the direct compensated one.
    fn check_windows(points: &[FPoint], width: usize) {
        let prefix = RegressionPrefix::new(points).expect("finite values");
        for lo in 0..points.len() {
            let hi = (lo + width).min(points.len());
            for at in [points[lo].t, points[hi - 1].t, points[hi - 1].t + 60_000] {
                let (slope, intercept) = prefix.window(points, lo, hi, at);
                let (want_slope, want_intercept) = linear_regression(&points[lo..hi], at);
                let close = |a: f64, b: f64| almost_equal(a, b, 1e-9) || (a - b).abs() < 1e-9 * b.abs().max(1.0);
                assert!(
                    close(slope, want_slope) || (slope.is_nan() && want_slope.is_nan()),
                    "slope {slope} vs {want_slope} [{lo}, {hi})"
                );
                assert!(
                    close(intercept, want_intercept) || (intercept.is_nan() && want_intercept.is_nan()),
                    "intercept {intercept} vs {want_intercept} [{lo}, {hi})"
                );
            }
        }
    }

    #[test]
    fn regression_prefix_matches_direct() {
        // Constant runs, a step, a line, large magnitudes with small changes (disk bytes).
        check_windows(&series(0, &[15_000; 8], &[5.0, 5.0, 5.0, 7.0, 7.0, 7.0, 7.0, 1.0]), 3);
        check_windows(&series(1_700_000_000_000, &[15_000; 6], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 4);
        let disk: Vec<f64> = (0..500).map(|i| 1.2e11 - (i as f64) * 4096.0 * ((i % 7) as f64)).collect();
        check_windows(&series(1_700_000_000_000, &[15_000; 500], &disk), 240);
        assert!(RegressionPrefix::new(&series(0, &[1; 3], &[1.0, f64::INFINITY, 2.0])).is_none());
    }

    proptest::proptest! {
        #[test]
        fn regression_prefix_close_to_direct(
            steps in proptest::collection::vec(1i64..120_000, 2..80),
            values in proptest::collection::vec(-1e12f64..1e12, 80),
            width in 2usize..40,
        ) {
            check_windows(&series(1_700_000_000_000, &steps, &values[..steps.len()]), width);
        }
    }
}

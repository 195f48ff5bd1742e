//! Aggregation operators (`sum`, `avg`, `topk`, `quantile`…).

use sextant_model::{Labels, LabelsBuilder};

use super::eval::{Evaluator, Result, Val};
use super::hash::FxHashMap;
use super::value::{format_float, Sample};
use super::QueryError;
use crate::ast::{Aggregate, AggregateOp};

/// Neumaier's compensated addition: adds `inc` to `sum` with compensation `c`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// One step of Prometheus 2.42's incremental mean: `mean` of `count - 1` values and `f`. An
/// infinite mean stays unless a NaN or the opposite infinity comes.
pub(crate) fn mean_v2(mean: f64, f: f64, count: f64) -> f64 {
    if mean.is_infinite() && (f.is_finite() || f.is_infinite() && (mean > 0.0) == (f > 0.0)) {
        return mean;
    }
    mean + (f / count - mean / count)
}

#[derive(Debug)]
struct Group {
    labels: Labels,
    value: f64,
    kahan_c: f64,
    mean: f64,
    count: f64,
    incremental_mean: bool,
    drop_name: bool,
    values: Vec<f64>,
    members: Vec<Sample>,
}

/// The key of a sample's group: the `by` labels, or all but the `without` labels and the name.
pub(crate) fn group_labels(labels: &Labels, grouping: &[String], without: bool) -> Labels {
    if without {
        labels.filter(|l| &*l.name != "__name__" && !grouping.iter().any(|g| **g == *l.name))
    } else {
        labels.filter(|l| grouping.iter().any(|g| **g == *l.name))
    }
}

fn in_group(name: &str, grouping: &[String], without: bool) -> bool {
    if without {
        name != "__name__" && !grouping.iter().any(|g| g == name)
    } else {
        grouping.iter().any(|g| g == name)
    }
}

pub(crate) fn group_hash(labels: &Labels, grouping: &[String], without: bool) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = super::hash::FxHasher::default();
    for l in labels.iter().filter(|l| in_group(&l.name, grouping, without)) {
        l.name.hash(&mut h);
        l.value.hash(&mut h);
    }
    h.finish()
}

pub(crate) fn aggregate(ev: &mut Evaluator<'_>, a: &Aggregate, t: i64) -> Result<Val> {
    let param = match &a.param {
        Some(p) => Some(ev.eval(p, t)?),
        None => None,
    };
    let Val::Vector(mut vec) = ev.eval(&a.expr, t)? else {
        return Err(QueryError::Eval("aggregation over a non-vector".into()));
    };
    let mut grouping = a.grouping.clone();
    let scalar_param = match &param {
        Some(Val::Scalar(f)) => Some(*f),
        _ => None,
    };
    match a.op {
        AggregateOp::CountValues => {
            let Some(Val::Str(label)) = &param else {
                return Err(QueryError::Eval("count_values needs a string parameter".into()));
            };
            if label.is_empty() {
                return Err(QueryError::Eval(format!("invalid label name {label:?}")));
            }
            for s in &mut vec {
                let mut b = LabelsBuilder::new(&s.labels);
                b.set(label, &format_float(s.f));
                s.labels = b.labels();
            }
            if a.without {
                grouping.retain(|g| g != label);
            } else {
                grouping.push(label.clone());
            }
        }
        AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk => {
            let k = scalar_param.unwrap_or(f64::NAN);
            if k.is_nan() {
                return Err(QueryError::Eval(if ev.closed_windows() {
                    // 2.42 checks only that k converts to an integer.
                    "Scalar value NaN overflows int64".into()
                } else {
                    "Parameter value is NaN".into()
                }));
            }
            if !(-9.223372036854776e18..9.223372036854776e18).contains(&k) {
                return Err(QueryError::Eval(format!("Scalar value {} overflows int64", format_float(k))));
            }
        }
        AggregateOp::LimitRatio if scalar_param.unwrap_or(f64::NAN).is_nan() => {
            return Err(QueryError::Eval("Ratio value is NaN".into()));
        }
        AggregateOp::Quantile => {
            let q = scalar_param.unwrap_or(f64::NAN);
            if !(0.0..=1.0).contains(&q) {
                ev.annos.warn(format!("quantile value should be between 0 and 1, got {}", go_g(q)));
            }
        }
        _ => {}
    }

    let mut groups: Vec<Group> = Vec::new();
    // Groups by a hash of their labels, so no label set is built for samples of known groups.
    let mut index: FxHashMap<u64, usize> = FxHashMap::default();
    let op = a.op;
    let closed = ev.closed_windows();
    for s in vec {
        let hash = group_hash(&s.labels, &grouping, a.without);
        let gi = match index.get(&hash) {
            Some(&i) => i,
            None => {
                index.insert(hash, groups.len());
                let f = s.f;
                groups.push(Group {
                    labels: group_labels(&s.labels, &grouping, a.without),
                    value: match op {
                        AggregateOp::Group => 1.0,
                        // 2.42 starts every group at 0, so one NaN or ±Inf alone gives 0.
                        AggregateOp::Stddev | AggregateOp::Stdvar if (f.is_nan() || f.is_infinite()) && !closed => {
                            f64::NAN
                        }
                        AggregateOp::Stddev | AggregateOp::Stdvar => 0.0,
                        _ => f,
                    },
                    kahan_c: 0.0,
                    mean: f,
                    count: 1.0,
                    incremental_mean: false,
                    drop_name: s.drop_name,
                    values: vec![f],
                    members: Vec::new(),
                });
                if matches!(
                    op,
                    AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk | AggregateOp::LimitRatio
                ) {
                    let g = groups.last_mut().expect("just pushed");
                    g.members.push(s);
                }
                continue;
            }
        };
        let g = &mut groups[gi];
        g.drop_name |= s.drop_name;
        let f = s.f;
        match op {
            // 2.42 adds plainly and averages incrementally.
            AggregateOp::Sum if closed => g.value += f,
            AggregateOp::Sum => (g.value, g.kahan_c) = kahan_inc(f, g.value, g.kahan_c),
            AggregateOp::Avg if closed => {
                g.count += 1.0;
                g.mean = mean_v2(g.mean, f, g.count);
            }
            AggregateOp::Avg => {
                g.count += 1.0;
                if !g.incremental_mean {
                    let (nv, nc) = kahan_inc(f, g.value, g.kahan_c);
                    if !nv.is_infinite() {
                        (g.value, g.kahan_c) = (nv, nc);
                        continue;
                    }
                    g.incremental_mean = true;
                    g.mean = g.value / (g.count - 1.0);
                    g.kahan_c /= g.count - 1.0;
                }
                let q = (g.count - 1.0) / g.count;
                (g.mean, g.kahan_c) = kahan_inc(f / g.count, q * g.mean, q * g.kahan_c);
            }
            AggregateOp::Count | AggregateOp::CountValues => g.count += 1.0,
            AggregateOp::Group => {}
            AggregateOp::Max => {
                if g.value < f || g.value.is_nan() {
                    g.value = f;
                }
            }
            AggregateOp::Min => {
                if g.value > f || g.value.is_nan() {
                    g.value = f;
                }
            }
            AggregateOp::Stddev | AggregateOp::Stdvar => {
                g.count += 1.0;
                let delta = f - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (f - g.mean);
            }
            AggregateOp::Quantile => g.values.push(f),
            AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk | AggregateOp::LimitRatio => {
                g.members.push(s)
            }
        }
    }

    let mut out = Vec::with_capacity(groups.len());
    match op {
        AggregateOp::Topk | AggregateOp::Bottomk => {
            let k = scalar_param.unwrap_or(0.0);
            if k < 1.0 {
                return Ok(Val::Vector(Vec::new()));
            }
            for g in groups {
                let mut m = g.members;
                let k = (k as usize).min(m.len());
                if closed {
                    out.extend(heap_select(op == AggregateOp::Topk, m, k, |s| s.f));
                    continue;
                }
                if op == AggregateOp::Topk {
                    // Descending, NaN last.
                    m.sort_by(|a, b| cmp_nan_low(b.f, a.f));
                } else {
                    m.sort_by(|a, b| cmp_nan_high(a.f, b.f));
                }
                m.truncate(k);
                out.extend(m);
            }
            return Ok(Val::Vector(out));
        }
        AggregateOp::Limitk => {
            let k = scalar_param.unwrap_or(0.0);
            if k < 1.0 {
                return Ok(Val::Vector(Vec::new()));
            }
            for g in groups {
                let mut m = g.members;
                m.sort_by_key(|s| s.labels.stable_hash());
                m.truncate((k as usize).min(m.len()));
                out.extend(m);
            }
            return Ok(Val::Vector(out));
        }
        AggregateOp::LimitRatio => {
            let mut r = scalar_param.unwrap_or(0.0);
            if !(-1.0..=1.0).contains(&r) {
                let capped = r.clamp(-1.0, 1.0);
                ev.annos.warn(format!(
                    "ratio value should be between -1 and 1, got {}, capping to {}",
                    go_g(r),
                    go_g(capped)
                ));
                r = capped;
            }
            for g in groups {
                for s in g.members {
                    let offset = (s.labels.stable_hash() as f64) / (u64::MAX as f64);
                    let keep = if r >= 0.0 { offset < r } else { offset >= 1.0 + r };
                    if keep {
                        out.push(s);
                    }
                }
            }
            return Ok(Val::Vector(out));
        }
        _ => {}
    }
    let q = scalar_param.unwrap_or(f64::NAN);
    for g in groups {
        let v = match op {
            AggregateOp::Sum if closed => g.value,
            AggregateOp::Sum => g.value + g.kahan_c,
            AggregateOp::Avg if closed => g.mean,
            AggregateOp::Avg if g.incremental_mean => g.mean + g.kahan_c,
            AggregateOp::Avg => g.value / g.count + g.kahan_c / g.count,
            AggregateOp::Count | AggregateOp::CountValues => g.count,
            AggregateOp::Stdvar => g.value / g.count,
            AggregateOp::Stddev => (g.value / g.count).sqrt(),
            AggregateOp::Quantile => super::quantile::quantile(q, g.values),
            _ => g.value,
        };
        out.push(Sample { labels: g.labels, t, f: v, drop_name: g.drop_name });
    }
    Ok(Val::Vector(out))
}

/// Orders with NaN below every number.
pub(crate) fn cmp_nan_low(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(&b).expect("not NaN"),
    }
}

/// Orders with NaN above every number.
pub(crate) fn cmp_nan_high(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).expect("not NaN"),
    }
}

/// Go's `%g` for the values that appear in annotations.
pub(crate) fn go_g(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{f}")
    }
}

/// The `k` items `topk` (`top`) or `bottomk` keeps, chosen as Prometheus 2.42 chooses them with
/// Go's `container/heap` (the worst kept value at the root; a better value, or any value when
/// the root is NaN, pops the root and is pushed), so ties keep the same series as there; in
/// 2.42's order, best first.
pub(crate) fn heap_select<T>(
    top: bool,
    items: impl IntoIterator<Item = T>,
    k: usize,
    value: impl Fn(&T) -> f64,
) -> Vec<T> {
    // The heap's `Less`: NaN is always "less", so it is the first to go.
    let less = |a: f64, b: f64| a.is_nan() || if top { a < b } else { a > b };
    let down = |heap: &mut Vec<T>, n: usize| {
        let mut i = 0;
        loop {
            let left = 2 * i + 1;
            if left >= n {
                break;
            }
            let right = left + 1;
            let j = if right < n && less(value(&heap[right]), value(&heap[left])) { right } else { left };
            if !less(value(&heap[j]), value(&heap[i])) {
                break;
            }
            heap.swap(i, j);
            i = j;
        }
    };
    let mut heap: Vec<T> = Vec::with_capacity(k.min(1024));
    if k == 0 {
        return heap;
    }
    for item in items {
        if heap.len() == k {
            let (root, f) = (value(&heap[0]), value(&item));
            let better = if top { root < f } else { root > f };
            if !(better || root.is_nan()) {
                continue;
            }
            if k == 1 {
                heap[0] = item;
                continue;
            }
            // heap.Pop: the root to the end, sift down the new root, drop the end.
            let last = heap.len() - 1;
            heap.swap(0, last);
            down(&mut heap, last);
            heap.pop();
        }
        // heap.Push: append and sift up.
        heap.push(item);
        let mut j = heap.len() - 1;
        while j > 0 {
            let parent = (j - 1) / 2;
            if !less(value(&heap[j]), value(&heap[parent])) {
                break;
            }
            heap.swap(parent, j);
            j = parent;
        }
    }
    // `sort.Sort(sort.Reverse(heap))`: Go sorts up to 12 items by insertion (stable); longer
    // heaps get a stable sort on the same order.
    if heap.len() <= 12 {
        for i in 1..heap.len() {
            let mut j = i;
            while j > 0 && less(value(&heap[j - 1]), value(&heap[j])) {
                heap.swap(j, j - 1);
                j -= 1;
            }
        }
    } else {
        heap.sort_by(|a, b| {
            let (x, y) = (value(a), value(b));
            if top {
                cmp_nan_low(y, x)
            } else {
                cmp_nan_high(x, y)
            }
        });
    }
    heap
}

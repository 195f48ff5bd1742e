//! Binary operators: arithmetic, comparisons and set operations, with vector matching.

use std::hash::{Hash, Hasher};

use sextant_model::{Labels, LabelsBuilder};

use super::eval::{drop_metadata, Evaluator, Result, Val};
use super::hash::{FxHashMap, FxHashSet};
use super::value::{labels_string, Sample};
use super::QueryError;
use crate::ast::{Binary, BinaryOp, Cardinality, VectorMatching};

pub(crate) fn binary(ev: &mut Evaluator<'_>, b: &Binary, t: i64) -> Result<Val> {
    let lhs = ev.eval(&b.lhs, t)?;
    let rhs = ev.eval(&b.rhs, t)?;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => {
            let (v, keep) = apply(b.op, l, r);
            if b.op.is_comparison() {
                return Ok(Val::Scalar(if keep { 1.0 } else { 0.0 }));
            }
            Ok(Val::Scalar(v))
        }
        (Val::Vector(l), Val::Scalar(r)) => Ok(Val::Vector(vector_scalar(ev, b, l, r, false))),
        (Val::Scalar(l), Val::Vector(r)) => Ok(Val::Vector(vector_scalar(ev, b, r, l, true))),
        (Val::Vector(l), Val::Vector(r)) => {
            let default = VectorMatching {
                card: if b.op.is_set() { Cardinality::ManyToMany } else { Cardinality::OneToOne },
                matching_labels: Vec::new(),
                on: false,
                include: Vec::new(),
                fill: Default::default(),
            };
            let m = b.matching.as_ref().unwrap_or(&default);
            match b.op {
                BinaryOp::And => Ok(Val::Vector(and_unless(l, r, m, true))),
                BinaryOp::Unless => Ok(Val::Vector(and_unless(l, r, m, false))),
                BinaryOp::Or => Ok(Val::Vector(or(l, r, m))),
                _ => Ok(Val::Vector(vector_vector(ev, b, l, r, m)?)),
            }
        }
        _ => Err(QueryError::Eval(format!("invalid operands for binary operator {}", b.op))),
    }
}

/// `l op r`: the value and, for comparisons, whether the comparison holds (the value is then
/// `l`).
pub(crate) fn apply(op: BinaryOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinaryOp::Add => (l + r, true),
        BinaryOp::Sub => (l - r, true),
        BinaryOp::Mul => (l * r, true),
        BinaryOp::Div => (l / r, true),
        BinaryOp::Mod => (l % r, true),
        BinaryOp::Pow => (l.powf(r), true),
        BinaryOp::Atan2 => (l.atan2(r), true),
        BinaryOp::Eql => (l, l == r),
        BinaryOp::Neq => (l, l != r),
        BinaryOp::Gtr => (l, l > r),
        BinaryOp::Lss => (l, l < r),
        BinaryOp::Gte => (l, l >= r),
        BinaryOp::Lte => (l, l <= r),
        BinaryOp::TrimUpper | BinaryOp::TrimLower | BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => {
            (f64::NAN, false)
        }
    }
}

pub(crate) fn changes_name(ev: &Evaluator<'_>, op: BinaryOp) -> bool {
    match op {
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod | BinaryOp::Pow => true,
        // Prometheus 2 kept the name for atan2.
        BinaryOp::Atan2 => !ev.closed_windows(),
        _ => false,
    }
}

fn vector_scalar(ev: &Evaluator<'_>, b: &Binary, vec: Vec<Sample>, scalar: f64, swap: bool) -> Vec<Sample> {
    let mut out = Vec::with_capacity(vec.len());
    for mut s in vec {
        if matches!(b.op, BinaryOp::TrimUpper | BinaryOp::TrimLower) {
            continue;
        }
        let (l, r) = if swap { (scalar, s.f) } else { (s.f, scalar) };
        let (mut v, mut keep) = apply(b.op, l, r);
        if b.op.is_comparison() {
            v = s.f;
        }
        if b.return_bool {
            v = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            s.f = v;
            if changes_name(ev, b.op) || b.return_bool {
                ev.drop_name(&mut s);
            }
            out.push(s);
        }
    }
    out
}

/// The matching signature of `labels`: a hash of the `on` labels, or of all labels but the
/// `ignoring` ones and `__name__`.
pub(crate) fn signature(labels: &Labels, m: &VectorMatching) -> u64 {
    let mut h = super::hash::FxHasher::default();
    for l in labels.iter() {
        let listed = m.matching_labels.iter().any(|n| **n == *l.name);
        let take = if m.on { listed } else { !listed && &*l.name != "__name__" };
        if take {
            l.name.hash(&mut h);
            l.value.hash(&mut h);
        }
    }
    h.finish()
}

pub(crate) fn match_labels(labels: &Labels, m: &VectorMatching) -> Labels {
    labels.filter(|l| {
        let listed = m.matching_labels.iter().any(|n| **n == *l.name);
        if m.on {
            listed
        } else {
            !listed && &*l.name != "__name__"
        }
    })
}

fn and_unless(l: Vec<Sample>, r: Vec<Sample>, m: &VectorMatching, and: bool) -> Vec<Sample> {
    let right: FxHashSet<u64> = r.iter().map(|s| signature(&s.labels, m)).collect();
    l.into_iter().filter(|s| right.contains(&signature(&s.labels, m)) == and).collect()
}

fn or(l: Vec<Sample>, r: Vec<Sample>, m: &VectorMatching) -> Vec<Sample> {
    let left: FxHashSet<u64> = l.iter().map(|s| signature(&s.labels, m)).collect();
    let mut out = l;
    out.extend(r.into_iter().filter(|s| !left.contains(&signature(&s.labels, m))));
    out
}

fn vector_vector(
    ev: &Evaluator<'_>,
    b: &Binary,
    l: Vec<Sample>,
    r: Vec<Sample>,
    m: &VectorMatching,
) -> Result<Vec<Sample>> {
    let no_fill = m.fill.lhs.is_none() && m.fill.rhs.is_none();
    if (l.is_empty() && r.is_empty())
        || ((l.is_empty() || r.is_empty()) && no_fill)
        || matches!(b.op, BinaryOp::TrimUpper | BinaryOp::TrimLower)
    {
        return Ok(Vec::new());
    }
    let swapped = m.card == Cardinality::OneToMany;
    let (many, one) = if swapped { (r, l) } else { (l, r) };
    let mut one_sigs: FxHashMap<u64, usize> = FxHashMap::default();
    for (i, s) in one.iter().enumerate() {
        let sig = signature(&s.labels, m);
        if let Some(&j) = one_sigs.get(&sig) {
            let side = if swapped { "left" } else { "right" };
            let (mut d1, mut d2) = (labels_string(&s.labels), labels_string(&one[j].labels));
            if ev.closed_windows() {
                // 2.42: this series, then the one seen before, in Go's `Labels.String()`.
                (d1, d2) = (go_labels_string(&s.labels), go_labels_string(&one[j].labels));
            } else if d1 > d2 {
                std::mem::swap(&mut d1, &mut d2);
            }
            return Err(QueryError::Eval(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{d1}, {d2}];many-to-many matching not allowed: matching labels must be unique on one side",
                labels_string(&match_labels(&s.labels, m))
            )));
        }
        one_sigs.insert(sig, i);
    }
    let mut pairs =
        Pairs { ev, b, m, swapped, matched: FxHashSet::default(), inserted: FxHashMap::default(), out: Vec::new() };
    for ls in &many {
        let sig = signature(&ls.labels, m);
        match one_sigs.get(&sig) {
            Some(&ri) => pairs.apply(ls, &one[ri], sig)?,
            None => {
                // `fill_right(v)`: a missing partner on the "one" side has value v.
                let Some(fill) = m.fill.rhs else { continue };
                let rs = Sample::new(match_labels(&ls.labels, m), ls.t, fill);
                pairs.apply(ls, &rs, sig)?;
            }
        }
    }
    if let Some(fill) = m.fill.lhs {
        // `fill_left(v)`: the "one"-side samples nothing matched meet a partner of value v.
        for rs in &one {
            let sig = signature(&rs.labels, m);
            let done = if m.card == Cardinality::OneToOne {
                pairs.matched.contains(&sig)
            } else {
                pairs.inserted.get(&sig).is_some_and(|s| !s.is_empty())
            };
            if !done {
                let ls = Sample::new(match_labels(&rs.labels, m), rs.t, fill);
                pairs.apply(&ls, rs, sig)?;
            }
        }
    }
    Ok(pairs.out)
}

/// The state of one vector/vector operation: which match groups were used, and the output.
struct Pairs<'e, 'a> {
    ev: &'e Evaluator<'a>,
    b: &'e Binary,
    m: &'e VectorMatching,
    swapped: bool,
    matched: FxHashSet<u64>,
    inserted: FxHashMap<u64, FxHashSet<Labels>>,
    out: Vec<Sample>,
}

impl Pairs<'_, '_> {
    /// Applies the operator to a "many"-side sample `ls` and its "one"-side partner `rs`.
    fn apply(&mut self, ls: &Sample, rs: &Sample, sig: u64) -> Result<()> {
        let (ev, b, m) = (self.ev, self.b, self.m);
        let (fl, fr) = if self.swapped { (rs.f, ls.f) } else { (ls.f, rs.f) };
        let (mut v, mut keep) = apply(b.op, fl, fr);
        if b.return_bool {
            v = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        let drop = changes_name(ev, b.op) || (!ev.opts.delayed_name_removal && b.return_bool);
        let labels = if m.card == Cardinality::OneToOne && !m.on && m.matching_labels.is_empty() && m.include.is_empty()
        {
            if drop {
                ev.without_name(&ls.labels)
            } else {
                ls.labels.clone()
            }
        } else {
            result_labels(&ls.labels, &rs.labels, m, drop)
        };
        if m.card == Cardinality::OneToOne {
            if !self.matched.insert(sig) {
                return Err(QueryError::Eval(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                        .into(),
                ));
            }
        } else if !self.inserted.entry(sig).or_default().insert(labels.clone()) {
            return Err(QueryError::Eval(
                "multiple matches for labels: grouping labels must ensure unique matches".into(),
            ));
        }
        if keep {
            let drop_name = b.return_bool && ev.opts.delayed_name_removal;
            self.out.push(Sample { labels, t: ls.t.max(rs.t), f: v, drop_name });
        }
        Ok(())
    }
}

pub(crate) fn result_labels(lhs: &Labels, rhs: &Labels, m: &VectorMatching, drop_name: bool) -> Labels {
    let base = if drop_name { drop_metadata(lhs) } else { lhs.clone() };
    if m.card != Cardinality::OneToOne && m.include.is_empty() {
        return base;
    }
    let mut b = LabelsBuilder::new(&base);
    if m.card == Cardinality::OneToOne {
        if m.on {
            b.retain(|n, _| m.matching_labels.iter().any(|x| x == n));
        } else {
            for n in &m.matching_labels {
                b.del(n);
            }
        }
    }
    for n in &m.include {
        match rhs.get(n) {
            Some(v) => b.set(n, v),
            None => b.del(n),
        };
    }
    b.labels()
}

/// Go Prometheus' `Labels.String()`: `{__name__="x", a="1"}`.
fn go_labels_string(labels: &sextant_model::Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|l| format!("{}={:?}", l.name, &*l.value)).collect();
    format!("{{{}}}", pairs.join(", "))
}

//! `info(v [, selector])` (experimental): adds the data labels of info metrics
//! (`target_info` by default) that share `v`'s identifying labels (`instance`, `job`).

use std::collections::{BTreeMap, HashMap};

use sextant_model::{LabelsBuilder, MatchOp, Matcher};

use super::eval::{Evaluator, Result, Val};
use super::value::{labels_string, Sample};
use super::QueryError;
use crate::ast::{At, Call, Duration, Expr};

const TARGET_INFO: &str = "target_info";

/// An info series' name and identifying label values.
type InfoKey = (String, Option<String>, Option<String>);
const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// The `@` and `offset` of the first selector in `e` (pre-order), which the info series
/// follow.
pub(crate) fn first_selector_timing(e: &Expr) -> (Option<At>, Duration) {
    match e {
        Expr::VectorSelector(vs) => (vs.at, vs.offset.clone()),
        Expr::MatrixSelector(ms) => (ms.selector.at, ms.selector.offset.clone()),
        Expr::Subquery(s) => first_selector_timing(&s.expr),
        Expr::Call(c) => c
            .args
            .iter()
            .map(first_selector_timing)
            .find(|t| t.0.is_some() || !t.1.is_zero())
            .unwrap_or((None, Duration::Fixed(0))),
        Expr::Aggregate(a) => first_selector_timing(&a.expr),
        Expr::Binary(b) => {
            let l = first_selector_timing(&b.lhs);
            if l.0.is_some() || !l.1.is_zero() {
                l
            } else {
                first_selector_timing(&b.rhs)
            }
        }
        Expr::Unary(u) => first_selector_timing(&u.expr),
        Expr::Paren(p) => first_selector_timing(&p.expr),
        _ => (None, Duration::Fixed(0)),
    }
}

fn selector_matchers(c: &Call) -> Option<&[Matcher]> {
    match c.args.get(1) {
        Some(Expr::VectorSelector(vs)) => Some(&vs.matchers),
        _ => None,
    }
}

fn name_matchers(c: &Call) -> Vec<Matcher> {
    match selector_matchers(c) {
        Some(ms) => effective_name_matchers(ms.iter().filter(|m| m.name == "__name__").cloned().collect()),
        None => vec![Matcher::equal("__name__", TARGET_INFO)],
    }
}

fn effective_name_matchers(matchers: Vec<Matcher>) -> Vec<Matcher> {
    if matchers.iter().any(|m| matches!(m.op, MatchOp::Equal | MatchOp::RegexMatch)) {
        return matchers;
    }
    if matchers.is_empty() {
        return vec![Matcher::equal("__name__", TARGET_INFO)];
    }
    let mut out = vec![Matcher::new(MatchOp::RegexMatch, "__name__", ".+_info").expect("valid regex")];
    out.extend(matchers);
    out
}

/// What the planner selects for an `info` call: the info metrics' names and the data-label
/// matchers (the identifying labels are filtered at evaluation).
pub(crate) fn info_select_matchers(c: &Call) -> Vec<Matcher> {
    let mut out: Vec<Matcher> = selector_matchers(c)
        .map(|ms| ms.iter().filter(|m| m.name != "__name__").cloned().collect())
        .unwrap_or_default();
    out.extend(name_matchers(c));
    out
}

pub(crate) fn info(ev: &mut Evaluator<'_>, c: &Call, t: i64) -> Result<Val> {
    let Val::Vector(base) = ev.eval(&c.args[0], t)? else {
        return Err(QueryError::Eval("info needs an instant vector".into()));
    };
    let names = name_matchers(c);
    let mut data_matchers: BTreeMap<&str, Vec<&Matcher>> = BTreeMap::new();
    if let Some(ms) = selector_matchers(c) {
        for m in ms.iter().filter(|m| m.name != "__name__") {
            data_matchers.entry(&m.name).or_default().push(m);
        }
    }
    let ignored = |s: &Sample| {
        let name = s.labels.metric_name().unwrap_or("");
        names.iter().all(|m| m.matches(name))
    };
    let has_ids = base.iter().filter(|s| !ignored(s)).any(|s| IDENTIFYING.iter().any(|l| s.labels.get(l).is_some()));

    // The newest sample of each info series at `t`, by (name, identifying labels).
    let (at, off) = first_selector_timing(&c.args[0]);
    let ref_t = ev.at_time(&at).unwrap_or(t) - ev.resolve(&off);
    let lb = ev.opts.lookback_delta_ms;
    let mut infos: HashMap<InfoKey, (i64, &sextant_model::Labels)> = HashMap::new();
    let mut info_names: Vec<String> = Vec::new();
    if has_ids {
        for (labels, points) in ev.fetched(c as *const _ as usize) {
            let name = labels.metric_name().unwrap_or("").to_string();
            if !info_names.contains(&name) {
                info_names.push(name.clone());
            }
            let Some(p) = ev.last_in_lookback(points, ref_t, lb) else { continue };
            let key = (name, labels.get("instance").map(str::to_string), labels.get("job").map(str::to_string));
            match infos.get(&key) {
                Some((existing_t, existing)) if *existing_t == p.t => {
                    return Err(QueryError::Eval(format!(
                        "found duplicate series for info metric: existing {} @ {}, new {} @ {}",
                        labels_string(existing),
                        existing_t,
                        labels_string(labels),
                        p.t
                    )));
                }
                Some((existing_t, _)) if *existing_t > p.t => {}
                _ => {
                    infos.insert(key, (p.t, labels));
                }
            }
        }
    }
    let all_match_empty = data_matchers.values().flatten().all(|m| m.matches(""));
    let mut out = Vec::with_capacity(base.len());
    for s in base {
        if ignored(&s) {
            out.push(s);
            continue;
        }
        let mut added = LabelsBuilder::new(&sextant_model::Labels::empty());
        let mut seen = 0;
        for name in &info_names {
            let key =
                (name.clone(), s.labels.get("instance").map(str::to_string), s.labels.get("job").map(str::to_string));
            let Some((_, info_labels)) = infos.get(&key) else { continue };
            for l in info_labels.iter() {
                if &*l.name == "__name__" {
                    continue;
                }
                if !data_matchers.is_empty() && !data_matchers.contains_key(&*l.name) {
                    continue;
                }
                if let Some(v) = added.get(&l.name) {
                    if v != &*l.value {
                        return Err(QueryError::Eval(format!("conflicting label: {}", l.name)));
                    }
                }
                if s.labels.get(&l.name).is_some() {
                    continue;
                }
                added.set(&l.name, &l.value);
            }
            seen += 1;
        }
        if seen == 0 && !all_match_empty {
            continue;
        }
        let mut b = LabelsBuilder::new(&s.labels);
        for l in added.labels().iter() {
            b.set(&l.name, &l.value);
        }
        out.push(Sample { labels: b.labels(), ..s });
    }
    Ok(Val::Vector(out))
}

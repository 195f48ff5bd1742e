//! The formatter: canonical PromQL text, as Prometheus' `String()` and
//! `/api/v1/format_query` print it.

use std::fmt::{self, Write};

use sextant_model::MatchOp;

use crate::ast::*;
use crate::lexer::write_go_quoted;

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
fn write_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Go's `%v` for a float64 (`%g` with the shortest precision).
fn write_float_v(out: &mut String, v: f64) {
    let a = v.abs();
    if !v.is_finite() || a == 0.0 || (1e-4..1e21).contains(&a) {
        write_float(out, v);
        return;
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let _ = write!(out, "{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
}

/// Prometheus' `model.Duration` string of milliseconds (`1h30m`, `0s`).
pub(crate) fn write_duration_ms(out: &mut String, ms: i64) {
    if ms < 0 {
        out.push('-');
    }
    let mut ms = ms.unsigned_abs();
    if ms == 0 {
        out.push_str("0s");
        return;
    }
    for (unit, mult) in [
        ("y", 365 * 24 * 3_600_000u64),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        let v = ms / mult;
        if v > 0 {
            let _ = write!(out, "{v}{unit}");
            ms -= v * mult;
        }
    }
}

fn write_labels(out: &mut String, labels: &[String]) {
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if sextant_model::is_valid_legacy_label_name(l) {
            out.push_str(l);
        } else {
            write_go_quoted(out, l);
        }
    }
}

fn write_duration(out: &mut String, d: &Duration) {
    match d {
        Duration::Fixed(ms) => write_duration_ms(out, *ms),
        Duration::Expr(e) => write_duration_expr(out, e),
    }
}

fn write_duration_expr(out: &mut String, e: &DurationExpr) {
    match e {
        DurationExpr::Number { seconds, unit: true } => write_duration_ms(out, (seconds * 1000.0).round() as i64),
        DurationExpr::Number { seconds, unit: false } => write_float(out, *seconds),
        DurationExpr::Step => out.push_str("step()"),
        DurationExpr::Range => out.push_str("range()"),
        DurationExpr::MinOf(a, b) | DurationExpr::MaxOf(a, b) => {
            out.push_str(if matches!(e, DurationExpr::MinOf(..)) { "min_of(" } else { "max_of(" });
            write_duration_expr(out, a);
            out.push_str(", ");
            write_duration_expr(out, b);
            out.push(')');
        }
        DurationExpr::Neg(inner) => {
            out.push('-');
            write_duration_expr(out, inner);
        }
        DurationExpr::Paren(inner) => {
            out.push('(');
            write_duration_expr(out, inner);
            out.push(')');
        }
        DurationExpr::Binary { op, lhs, rhs } => {
            write_duration_expr(out, lhs);
            out.push_str(match op {
                DurationOp::Add => " + ",
                DurationOp::Sub => " - ",
                DurationOp::Mul => " * ",
                DurationOp::Div => " / ",
                DurationOp::Mod => " % ",
                DurationOp::Pow => " ^ ",
            });
            write_duration_expr(out, rhs);
        }
    }
}

fn write_at(out: &mut String, at: Option<At>) {
    match at {
        Some(At::Timestamp(ms)) => {
            let _ = write!(out, " @ {:.3}", ms as f64 / 1000.0);
        }
        Some(At::Start) => out.push_str(" @ start()"),
        Some(At::End) => out.push_str(" @ end()"),
        None => {}
    }
}

fn write_offset(out: &mut String, d: &Duration) {
    if !d.is_zero() {
        out.push_str(" offset ");
        write_duration(out, d);
    }
}

fn write_selector_core(out: &mut String, vs: &VectorSelector) {
    let name = vs.name.as_deref().unwrap_or("");
    let mut parts: Vec<String> = vs
        .matchers
        .iter()
        .filter(|m| !(m.name == "__name__" && m.op == MatchOp::Equal && m.value == name && !name.is_empty()))
        .map(|m| m.to_string())
        .collect();
    out.push_str(name);
    if !parts.is_empty() {
        parts.sort_unstable();
        out.push('{');
        out.push_str(&parts.join(","));
        out.push('}');
    }
}

fn write_extended(out: &mut String, vs: &VectorSelector) {
    if vs.anchored {
        out.push_str(" anchored");
    } else if vs.smoothed {
        out.push_str(" smoothed");
    }
}

/// Appends the canonical text of `e` to `out`.
pub fn write_expr(out: &mut String, e: &Expr) {
    match e {
        Expr::NumberLiteral(n) => {
            if n.duration {
                write_duration_ms(out, (n.value * 1000.0).round() as i64);
            } else {
                write_float(out, n.value);
            }
        }
        Expr::StringLiteral(s) => write_go_quoted(out, &s.value),
        Expr::VectorSelector(vs) => {
            write_selector_core(out, vs);
            write_at(out, vs.at);
            write_extended(out, vs);
            write_offset(out, &vs.offset);
        }
        Expr::MatrixSelector(m) => {
            write_selector_core(out, &m.selector);
            out.push('[');
            write_duration(out, &m.range);
            out.push(']');
            write_extended(out, &m.selector);
            write_at(out, m.selector.at);
            write_offset(out, &m.selector.offset);
        }
        Expr::Subquery(s) => {
            write_expr(out, &s.expr);
            out.push('[');
            write_duration(out, &s.range);
            out.push(':');
            if let Some(step) = &s.step {
                write_duration(out, step);
            }
            out.push(']');
            write_at(out, s.at);
            write_offset(out, &s.offset);
        }
        Expr::Call(c) => {
            out.push_str(c.func.name);
            out.push('(');
            for (i, a) in c.args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(out, a);
            }
            out.push(')');
        }
        Expr::Aggregate(a) => {
            out.push_str(a.op.as_str());
            if a.without {
                out.push_str(" without (");
                write_labels(out, &a.grouping);
                out.push_str(") ");
            } else if !a.grouping.is_empty() {
                out.push_str(" by (");
                write_labels(out, &a.grouping);
                out.push_str(") ");
            }
            out.push('(');
            if let Some(p) = &a.param {
                write_expr(out, p);
                out.push_str(", ");
            }
            write_expr(out, &a.expr);
            out.push(')');
        }
        Expr::Binary(b) => {
            write_expr(out, &b.lhs);
            out.push(' ');
            out.push_str(b.op.as_str());
            if b.return_bool {
                out.push_str(" bool");
            }
            if let Some(m) = &b.matching {
                let grouped = matches!(m.card, Cardinality::ManyToOne | Cardinality::OneToMany);
                if !m.matching_labels.is_empty() || m.on || grouped {
                    out.push_str(if m.on { " on (" } else { " ignoring (" });
                    write_labels(out, &m.matching_labels);
                    out.push(')');
                }
                if grouped {
                    out.push_str(if m.card == Cardinality::ManyToOne { " group_left (" } else { " group_right (" });
                    write_labels(out, &m.include);
                    out.push(')');
                }
                match (m.fill.lhs, m.fill.rhs) {
                    (Some(l), Some(r)) if l == r || (l.is_nan() && r.is_nan()) => {
                        out.push_str(" fill (");
                        write_float_v(out, l);
                        out.push(')');
                    }
                    (l, r) => {
                        if let Some(l) = l {
                            out.push_str(" fill_left (");
                            write_float_v(out, l);
                            out.push(')');
                        }
                        if let Some(r) = r {
                            out.push_str(" fill_right (");
                            write_float_v(out, r);
                            out.push(')');
                        }
                    }
                }
            }
            out.push(' ');
            write_expr(out, &b.rhs);
        }
        Expr::Unary(u) => {
            out.push(if u.op == UnaryOp::Neg { '-' } else { '+' });
            write_expr(out, &u.expr);
        }
        Expr::Paren(p) => {
            out.push('(');
            write_expr(out, &p.expr);
            out.push(')');
        }
    }
}

/// `5m`, `1h30m`, or the duration expression (`5m + step()`).
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        write_duration(&mut s, self);
        f.write_str(&s)
    }
}

impl fmt::Display for DurationExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        write_duration_expr(&mut s, self);
        f.write_str(&s)
    }
}

/// Canonical PromQL, e.g. `sum by (job) (rate(x[5m]))`.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        write_expr(&mut s, self);
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_floats() {
        let d = |ms| {
            let mut s = String::new();
            write_duration_ms(&mut s, ms);
            s
        };
        assert_eq!(d(0), "0s");
        assert_eq!(d(5_400_000), "1h30m");
        assert_eq!(d(-300_000), "-5m");
        assert_eq!(d(90_500), "1m30s500ms");
        let v = |x| {
            let mut s = String::new();
            write_float_v(&mut s, x);
            s
        };
        assert_eq!(v(5.0), "5");
        assert_eq!(v(1e21), "1e+21");
        assert_eq!(v(1e-5), "1e-05");
        assert_eq!(v(f64::NEG_INFINITY), "-Inf");
    }
}

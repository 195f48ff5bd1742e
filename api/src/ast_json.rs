//! The AST as JSON, as `/api/v1/parse_query` returns it (Prometheus' `translateAST`).

use sextant_promql::{At, Cardinality, Duration, Expr, UnaryOp, VectorSelector};

use crate::json::{format_value, JsonWriter};

fn duration_ms(d: &Duration) -> i64 {
    d.resolve(0, 0)
}

fn selector_fields(w: &mut JsonWriter, vs: &VectorSelector) {
    w.raw(r#","name":"#).string(vs.name.as_deref().unwrap_or(""));
    w.raw(r#","offset":"#).raw(&duration_ms(&vs.offset).to_string());
    w.raw(r#","matchers":["#);
    for (i, m) in vs.matchers.iter().enumerate() {
        if i > 0 {
            w.raw(",");
        }
        w.raw(r#"{"type":"#).string(m.op.as_str()).raw(r#","name":"#).string(&m.name);
        w.raw(r#","value":"#).string(&m.value).raw("}");
    }
    w.raw("]");
    at_fields(w, &vs.at);
}

fn at_fields(w: &mut JsonWriter, at: &Option<At>) {
    match at {
        Some(At::Timestamp(ms)) => {
            w.raw(r#","timestamp":"#).raw(&ms.to_string()).raw(r#","startOrEnd":null"#);
        }
        Some(At::Start) => {
            w.raw(r#","timestamp":null,"startOrEnd":"start""#);
        }
        Some(At::End) => {
            w.raw(r#","timestamp":null,"startOrEnd":"end""#);
        }
        None => {
            w.raw(r#","timestamp":null,"startOrEnd":null"#);
        }
    }
}

/// Writes `expr` as JSON.
pub(crate) fn write(w: &mut JsonWriter, expr: &Expr) {
    match expr {
        Expr::NumberLiteral(n) => {
            w.raw(r#"{"type":"numberLiteral","val":"#).string(&format_value(n.value)).raw("}");
        }
        Expr::StringLiteral(s) => {
            w.raw(r#"{"type":"stringLiteral","val":"#).string(&s.value).raw("}");
        }
        Expr::VectorSelector(vs) => {
            w.raw(r#"{"type":"vectorSelector""#);
            selector_fields(w, vs);
            w.raw("}");
        }
        Expr::MatrixSelector(ms) => {
            w.raw(r#"{"type":"matrixSelector","range":"#).raw(&duration_ms(&ms.range).to_string());
            selector_fields(w, &ms.selector);
            w.raw("}");
        }
        Expr::Subquery(sq) => {
            w.raw(r#"{"type":"subquery","expr":"#);
            write(w, &sq.expr);
            w.raw(r#","range":"#).raw(&duration_ms(&sq.range).to_string());
            w.raw(r#","offset":"#).raw(&duration_ms(&sq.offset).to_string());
            w.raw(r#","step":"#).raw(&sq.step.as_ref().map_or(0, duration_ms).to_string());
            at_fields(w, &sq.at);
            w.raw("}");
        }
        Expr::Call(c) => {
            w.raw(r#"{"type":"call","func":{"name":"#).string(c.func.name).raw(r#","argTypes":"#);
            w.string_list(c.func.arg_types.iter().map(|t| t.as_str()));
            w.raw(r#","variadic":"#).raw(&c.func.variadic.to_string());
            w.raw(r#","returnType":"#).string(c.func.return_type.as_str()).raw(r#"},"args":["#);
            for (i, a) in c.args.iter().enumerate() {
                if i > 0 {
                    w.raw(",");
                }
                write(w, a);
            }
            w.raw("]}");
        }
        Expr::Aggregate(a) => {
            w.raw(r#"{"type":"aggregation","op":"#).string(a.op.as_str()).raw(r#","expr":"#);
            write(w, &a.expr);
            w.raw(r#","param":"#);
            match &a.param {
                Some(p) => write(w, p),
                None => {
                    w.raw("null");
                }
            }
            w.raw(r#","grouping":"#).string_list(a.grouping.iter().map(String::as_str));
            w.raw(r#","without":"#).raw(if a.without { "true" } else { "false" }).raw("}");
        }
        Expr::Binary(b) => {
            w.raw(r#"{"type":"binaryExpr","op":"#).string(b.op.as_str()).raw(r#","lhs":"#);
            write(w, &b.lhs);
            w.raw(r#","rhs":"#);
            write(w, &b.rhs);
            w.raw(r#","matching":"#);
            match &b.matching {
                Some(m) => {
                    let card = match m.card {
                        Cardinality::OneToOne => "one-to-one",
                        Cardinality::ManyToOne => "many-to-one",
                        Cardinality::OneToMany => "one-to-many",
                        _ => "many-to-many",
                    };
                    w.raw(r#"{"card":"#).string(card).raw(r#","labels":"#);
                    w.string_list(m.matching_labels.iter().map(String::as_str));
                    w.raw(r#","on":"#).raw(if m.on { "true" } else { "false" }).raw(r#","include":"#);
                    w.string_list(m.include.iter().map(String::as_str)).raw("}");
                }
                None => {
                    w.raw("null");
                }
            }
            w.raw(r#","bool":"#).raw(if b.return_bool { "true" } else { "false" }).raw("}");
        }
        Expr::Unary(u) => {
            let op = if matches!(u.op, UnaryOp::Neg) { "-" } else { "+" };
            w.raw(r#"{"type":"unaryExpr","op":"#).string(op).raw(r#","expr":"#);
            write(w, &u.expr);
            w.raw("}");
        }
        Expr::Paren(p) => {
            w.raw(r#"{"type":"parenExpr","expr":"#);
            write(w, &p.expr);
            w.raw("}");
        }
    }
}

//! The type checker (Prometheus' `checkAST`), run after a successful parse.

use crate::ast::*;
use crate::error::{ParseError, Span};
use crate::lexer::go_quote;

pub(crate) struct Checker<'a> {
    src: &'a str,
}

type CResult = Result<ExprType, ParseError>;

impl<'a> Checker<'a> {
    pub fn new(src: &'a str) -> Checker<'a> {
        Checker { src }
    }

    fn err(&self, span: Span, message: impl Into<String>) -> ParseError {
        ParseError::new(self.src, span, message)
    }

    fn expect_type(&self, e: &mut Expr, want: ExprType, context: &str) -> Result<(), ParseError> {
        let t = self.check(e)?;
        if t != want {
            return Err(
                self.err(e.span(), format!("expected type {} in {context}, got {}", want.documented(), t.documented()))
            );
        }
        Ok(())
    }

    /// The operator's range: from after the left operand to before the right one.
    fn op_span(&self, b: &Binary) -> Span {
        let bytes = self.src.as_bytes();
        let mut start = b.lhs.span().end;
        while start < bytes.len() && matches!(bytes[start], b' ' | b'\t' | b'\n' | b'\r') {
            start += 1;
        }
        let mut end = b.rhs.span().start.max(start);
        while end > start && matches!(bytes[end - 1], b' ' | b'\t' | b'\n' | b'\r') {
            end -= 1;
        }
        Span::new(start, end)
    }

    pub fn check(&self, e: &mut Expr) -> CResult {
        self.check_inner(e, false)
    }

    fn check_inner(&self, e: &mut Expr, bypass_empty_matcher_check: bool) -> CResult {
        let span = e.span();
        match e {
            Expr::Aggregate(a) => {
                self.expect_type(&mut a.expr, ExprType::Vector, "aggregation expression")?;
                match a.op {
                    AggregateOp::Topk
                    | AggregateOp::Bottomk
                    | AggregateOp::Quantile
                    | AggregateOp::Limitk
                    | AggregateOp::LimitRatio => {
                        if let Some(p) = &mut a.param {
                            self.expect_type(p, ExprType::Scalar, "aggregation parameter")?;
                        }
                    }
                    AggregateOp::CountValues => {
                        if let Some(p) = &mut a.param {
                            self.expect_type(p, ExprType::String, "aggregation parameter")?;
                        }
                    }
                    _ => {}
                }
            }
            Expr::Binary(b) => return self.check_binary(b),
            Expr::Call(c) => {
                let nargs = c.func.arg_types.len();
                let name = c.func.name;
                if c.func.variadic == 0 {
                    if nargs != c.args.len() {
                        return Err(self.err(
                            span,
                            format!("expected {nargs} argument(s) in call to {}, got {}", go_quote(name), c.args.len()),
                        ));
                    }
                } else {
                    let min = nargs - 1;
                    if min > c.args.len() {
                        return Err(self.err(
                            span,
                            format!(
                                "expected at least {min} argument(s) in call to {}, got {}",
                                go_quote(name),
                                c.args.len()
                            ),
                        ));
                    }
                    let max = min as i64 + i64::from(c.func.variadic);
                    if c.func.variadic > 0 && max < c.args.len() as i64 {
                        return Err(self.err(
                            span,
                            format!(
                                "expected at most {max} argument(s) in call to {}, got {}",
                                go_quote(name),
                                c.args.len()
                            ),
                        ));
                    }
                }
                let mut bypass_second = false;
                if name == "info" && c.args.len() > 1 {
                    let second = &c.args[1];
                    if second.expr_type() != ExprType::Vector {
                        return Err(self.err(
                            span,
                            format!(
                                "expected type {} in call to function \"info\", got {}",
                                ExprType::Vector.documented(),
                                second.expr_type().documented()
                            ),
                        ));
                    }
                    match second {
                        Expr::VectorSelector(vs) if vs.name.is_some() => {
                            return Err(
                                self.err(second.span(), "expected label selectors only, got vector selector instead")
                            )
                        }
                        Expr::VectorSelector(_) => bypass_second = true,
                        _ => return Err(self.err(second.span(), "expected label selectors only")),
                    }
                }
                for (i, arg) in c.args.iter_mut().enumerate() {
                    let idx = if i >= nargs {
                        if c.func.variadic == 0 {
                            break;
                        }
                        nargs - 1
                    } else {
                        i
                    };
                    let t = self.check_inner(arg, bypass_second && i == 1)?;
                    let want = c.func.arg_types[idx];
                    if t != want {
                        return Err(self.err(
                            arg.span(),
                            format!(
                                "expected type {} in call to function {}, got {}",
                                want.documented(),
                                go_quote(name),
                                t.documented()
                            ),
                        ));
                    }
                }
            }
            Expr::Paren(p) => return self.check(&mut p.expr),
            Expr::Unary(u) => {
                let t = self.check(&mut u.expr)?;
                if t != ExprType::Scalar && t != ExprType::Vector {
                    return Err(self.err(
                        span,
                        format!(
                            "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                            go_quote(t.documented())
                        ),
                    ));
                }
                return Ok(t);
            }
            Expr::Subquery(s) => {
                let t = self.check(&mut s.expr)?;
                if t != ExprType::Vector {
                    return Err(self.err(span, format!("subquery is only allowed on instant vector, got {t} instead")));
                }
            }
            Expr::MatrixSelector(m) => self.check_selector(&m.selector, false)?,
            Expr::VectorSelector(vs) => self.check_selector(vs, bypass_empty_matcher_check)?,
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        }
        // Only leaves and nodes with a fixed type get here: no recursion in expr_type.
        Ok(e.expr_type())
    }

    fn check_selector(&self, vs: &VectorSelector, bypass: bool) -> Result<(), ParseError> {
        if let Some(name) = &vs.name {
            let others = &vs.matchers[..vs.matchers.len().saturating_sub(1)];
            if let Some(m) = others.iter().find(|m| m.name == "__name__") {
                return Err(self.err(
                    vs.span,
                    format!("metric name must not be set twice: {} or {}", go_quote(name), go_quote(&m.value)),
                ));
            }
            return Ok(());
        }
        if !bypass && vs.matchers.iter().all(|m| m.matches_empty()) {
            return Err(self.err(vs.span, "vector selector must contain at least one non-empty matcher"));
        }
        Ok(())
    }

    fn check_binary(&self, b: &mut Binary) -> CResult {
        let lt = self.check(&mut b.lhs)?;
        let rt = self.check(&mut b.rhs)?;
        let whole = b.lhs.span().to(b.rhs.span());
        if b.return_bool && !b.op.is_comparison() {
            return Err(self.err(self.op_span(b), "bool modifier can only be used on comparison operators"));
        }
        if b.op.is_comparison() && !b.return_bool && lt == ExprType::Scalar && rt == ExprType::Scalar {
            return Err(self.err(self.op_span(b), "comparisons between scalars must use BOOL modifier"));
        }
        let op_span = self.op_span(b);
        if let Some(m) = &mut b.matching {
            if b.op.is_set() && m.card == Cardinality::OneToOne {
                m.card = Cardinality::ManyToMany;
            }
            if m.on {
                if let Some(l) = m.matching_labels.iter().find(|l| m.include.contains(l)) {
                    return Err(self
                        .err(op_span, format!("label {} must not occur in ON and GROUP clause at once", go_quote(l))));
                }
            }
        }
        if lt != ExprType::Scalar && lt != ExprType::Vector {
            return Err(self.err(b.lhs.span(), "binary expression must contain only scalar and instant vector types"));
        }
        if rt != ExprType::Scalar && rt != ExprType::Vector {
            return Err(self.err(b.rhs.span(), "binary expression must contain only scalar and instant vector types"));
        }
        if lt != ExprType::Vector || rt != ExprType::Vector {
            if let Some(m) = &b.matching {
                if !m.matching_labels.is_empty() {
                    return Err(self.err(whole, "vector matching only allowed between instant vectors"));
                }
                if m.fill.lhs.is_some() || m.fill.rhs.is_some() {
                    return Err(self.err(whole, "filling in missing series only allowed between instant vectors"));
                }
            }
            b.matching = None;
        } else if b.op.is_set() {
            if let Some(m) = &b.matching {
                if matches!(m.card, Cardinality::OneToMany | Cardinality::ManyToOne) {
                    return Err(
                        self.err(whole, format!("no grouping allowed for {} operation", go_quote(b.op.as_str())))
                    );
                }
                if m.card != Cardinality::ManyToMany {
                    return Err(self.err(whole, "set operations must always be many-to-many"));
                }
                if m.fill.lhs.is_some() || m.fill.rhs.is_some() {
                    return Err(self.err(whole, "filling in missing series not allowed for set operators"));
                }
            }
        }
        if (lt == ExprType::Scalar || rt == ExprType::Scalar) && b.op.is_set() {
            return Err(self.err(
                whole,
                format!("set operator {} not allowed in binary scalar expression", go_quote(b.op.as_str())),
            ));
        }
        Ok(if lt == ExprType::Scalar && rt == ExprType::Scalar { ExprType::Scalar } else { ExprType::Vector })
    }
}

//! The syntax tree of a PromQL expression.

use std::fmt;

use sextant_model::Matcher;

use crate::error::Span;
use crate::functions::Function;

/// The type of an expression's value (Prometheus' `ValueType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExprType {
    Scalar,
    /// Instant vector.
    Vector,
    /// Range vector.
    Matrix,
    String,
}

impl ExprType {
    /// The name used in Prometheus' documentation and type errors (`instant vector`).
    pub fn documented(self) -> &'static str {
        match self {
            ExprType::Scalar => "scalar",
            ExprType::Vector => "instant vector",
            ExprType::Matrix => "range vector",
            ExprType::String => "string",
        }
    }

    /// The short name (`vector`, `matrix`), as in query results.
    pub fn as_str(self) -> &'static str {
        match self {
            ExprType::Scalar => "scalar",
            ExprType::Vector => "vector",
            ExprType::Matrix => "matrix",
            ExprType::String => "string",
        }
    }
}

impl fmt::Display for ExprType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A PromQL expression. Every node carries the [`Span`] of its text.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    NumberLiteral(NumberLiteral),
    StringLiteral(StringLiteral),
    VectorSelector(VectorSelector),
    MatrixSelector(MatrixSelector),
    Subquery(Subquery),
    Call(Call),
    Aggregate(Aggregate),
    Binary(Binary),
    Unary(Unary),
    Paren(Paren),
}

impl Expr {
    /// The type of the expression's value.
    pub fn expr_type(&self) -> ExprType {
        match self {
            Expr::NumberLiteral(_) => ExprType::Scalar,
            Expr::StringLiteral(_) => ExprType::String,
            Expr::VectorSelector(_) | Expr::Aggregate(_) => ExprType::Vector,
            Expr::MatrixSelector(_) | Expr::Subquery(_) => ExprType::Matrix,
            Expr::Call(c) => c.func.return_type,
            Expr::Binary(b) => {
                if b.lhs.expr_type() == ExprType::Scalar && b.rhs.expr_type() == ExprType::Scalar {
                    ExprType::Scalar
                } else {
                    ExprType::Vector
                }
            }
            Expr::Unary(u) => u.expr.expr_type(),
            Expr::Paren(p) => p.expr.expr_type(),
        }
    }

    /// The byte range of the expression in the query.
    pub fn span(&self) -> Span {
        match self {
            Expr::NumberLiteral(e) => e.span,
            Expr::StringLiteral(e) => e.span,
            Expr::VectorSelector(e) => e.span,
            Expr::MatrixSelector(e) => e.span,
            Expr::Subquery(e) => e.span,
            Expr::Call(e) => e.span,
            Expr::Aggregate(e) => e.span,
            Expr::Binary(e) => e.lhs.span().to(e.rhs.span()),
            Expr::Unary(e) => e.span,
            Expr::Paren(e) => e.span,
        }
    }

    pub(crate) fn span_mut(&mut self) -> Option<&mut Span> {
        match self {
            Expr::NumberLiteral(e) => Some(&mut e.span),
            Expr::StringLiteral(e) => Some(&mut e.span),
            Expr::VectorSelector(e) => Some(&mut e.span),
            Expr::MatrixSelector(e) => Some(&mut e.span),
            Expr::Subquery(e) => Some(&mut e.span),
            Expr::Call(e) => Some(&mut e.span),
            Expr::Aggregate(e) => Some(&mut e.span),
            Expr::Binary(_) => None,
            Expr::Unary(e) => Some(&mut e.span),
            Expr::Paren(e) => Some(&mut e.span),
        }
    }

    /// The direct subexpressions, in source order (an aggregation's parameter first).
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::VectorSelector(_) | Expr::MatrixSelector(_) => {
                vec![]
            }
            Expr::Subquery(s) => vec![&s.expr],
            Expr::Call(c) => c.args.iter().collect(),
            Expr::Aggregate(a) => a.param.iter().map(|p| &**p).chain([&*a.expr]).collect(),
            Expr::Binary(b) => vec![&b.lhs, &b.rhs],
            Expr::Unary(u) => vec![&u.expr],
            Expr::Paren(p) => vec![&p.expr],
        }
    }

    /// A copy with every span set to `0..0` and the matchers of each selector in the
    /// formatter's order, for comparing trees parsed from different texts
    /// (`parse(format(e)) == e` up to spans).
    pub fn without_spans(&self) -> Expr {
        let mut e = self.clone();
        e.clear_spans();
        e
    }

    fn clear_spans(&mut self) {
        if let Some(s) = self.span_mut() {
            *s = Span::default();
        }
        let sort = |vs: &mut VectorSelector| {
            let name = vs.name.take();
            if name.is_some() {
                let name_matcher = vs.matchers.pop();
                vs.matchers.sort_by_cached_key(|m| m.to_string());
                vs.matchers.extend(name_matcher);
            } else {
                vs.matchers.sort_by_cached_key(|m| m.to_string());
            }
            vs.name = name;
        };
        match self {
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
            Expr::VectorSelector(vs) => sort(vs),
            Expr::MatrixSelector(m) => {
                m.selector.span = Span::default();
                sort(&mut m.selector);
            }
            Expr::Subquery(s) => s.expr.clear_spans(),
            Expr::Call(c) => c.args.iter_mut().for_each(Expr::clear_spans),
            Expr::Aggregate(a) => {
                a.expr.clear_spans();
                if let Some(p) = &mut a.param {
                    p.clear_spans();
                }
            }
            Expr::Binary(b) => {
                b.lhs.clear_spans();
                b.rhs.clear_spans();
            }
            Expr::Unary(u) => u.expr.clear_spans(),
            Expr::Paren(p) => p.expr.clear_spans(),
        }
    }
}

/// A number such as `1`, `0x1F`, `1e3`, `Inf`; or a duration used as a number (`5m` is 300).
#[derive(Debug, Clone)]
pub struct NumberLiteral {
    pub value: f64,
    /// Written as a duration (`5m`); the formatter writes it back as one.
    pub duration: bool,
    pub span: Span,
}

/// Equal values (NaN equals NaN), same `duration` flag and span.
impl PartialEq for NumberLiteral {
    fn eq(&self, other: &NumberLiteral) -> bool {
        (self.value == other.value || (self.value.is_nan() && other.value.is_nan()))
            && self.duration == other.duration
            && self.span == other.span
    }
}

/// A string such as `"a\n"`, `'b'` or `` `raw` ``, unquoted.
#[derive(Debug, Clone, PartialEq)]
pub struct StringLiteral {
    pub value: String,
    pub span: Span,
}

/// The `@` modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// `@ <unix seconds>`, here in milliseconds.
    Timestamp(i64),
    /// `@ start()`: the start of the range query.
    Start,
    /// `@ end()`: the end of the range query.
    End,
}

/// A time span: a fixed number of milliseconds, or a duration expression evaluated per
/// query (`[5m + step()]`, `offset (1h - 5m)`).
#[derive(Debug, Clone, PartialEq)]
pub enum Duration {
    Fixed(i64),
    Expr(DurationExpr),
}

impl Duration {
    /// The value in milliseconds, given the query's step and range (0 for instant queries).
    pub fn resolve(&self, step_ms: i64, range_ms: i64) -> i64 {
        match self {
            Duration::Fixed(ms) => *ms,
            Duration::Expr(e) => (e.eval(step_ms, range_ms) * 1000.0).round() as i64,
        }
    }

    /// True for `Fixed(0)`, Prometheus' "not set".
    pub fn is_zero(&self) -> bool {
        matches!(self, Duration::Fixed(0))
    }
}

/// An operator of a [`DurationExpr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

/// A duration expression (`5m + step()`), evaluated in seconds.
#[derive(Debug, Clone, PartialEq)]
pub enum DurationExpr {
    /// Seconds; `unit` is true when written as a duration (`5m`) rather than a number.
    Number {
        seconds: f64,
        unit: bool,
    },
    /// `step()`: the step of the range query (0 for instant queries).
    Step,
    /// `range()`: end minus start of the range query (0 for instant queries).
    Range,
    MinOf(Box<DurationExpr>, Box<DurationExpr>),
    MaxOf(Box<DurationExpr>, Box<DurationExpr>),
    Neg(Box<DurationExpr>),
    Binary {
        op: DurationOp,
        lhs: Box<DurationExpr>,
        rhs: Box<DurationExpr>,
    },
    Paren(Box<DurationExpr>),
}

impl DurationExpr {
    /// The value in seconds.
    pub fn eval(&self, step_ms: i64, range_ms: i64) -> f64 {
        match self {
            DurationExpr::Number { seconds, .. } => *seconds,
            DurationExpr::Step => step_ms as f64 / 1000.0,
            DurationExpr::Range => range_ms as f64 / 1000.0,
            DurationExpr::MinOf(a, b) => a.eval(step_ms, range_ms).min(b.eval(step_ms, range_ms)),
            DurationExpr::MaxOf(a, b) => a.eval(step_ms, range_ms).max(b.eval(step_ms, range_ms)),
            DurationExpr::Neg(e) => -e.eval(step_ms, range_ms),
            DurationExpr::Paren(e) => e.eval(step_ms, range_ms),
            DurationExpr::Binary { op, lhs, rhs } => {
                let (a, b) = (lhs.eval(step_ms, range_ms), rhs.eval(step_ms, range_ms));
                match op {
                    DurationOp::Add => a + b,
                    DurationOp::Sub => a - b,
                    DurationOp::Mul => a * b,
                    DurationOp::Div => a / b,
                    DurationOp::Mod => a % b,
                    DurationOp::Pow => a.powf(b),
                }
            }
        }
    }
}

/// An instant vector selector: `name{matchers} @ t offset d`.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSelector {
    /// The metric name written before the braces, if any.
    pub name: Option<String>,
    /// All matchers; when `name` is set, the last one is `__name__="name"`.
    pub matchers: Vec<Matcher>,
    /// `offset`; `Fixed(0)` when absent.
    pub offset: Duration,
    pub at: Option<At>,
    /// `anchored` (experimental extended range selectors).
    pub anchored: bool,
    /// `smoothed` (experimental extended range selectors).
    pub smoothed: bool,
    pub span: Span,
}

/// A range vector selector `selector[range]`; `offset` and `@` live in `selector`.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSelector {
    pub selector: VectorSelector,
    pub range: Duration,
    pub span: Span,
}

/// A subquery `expr[range:step] @ t offset d`.
#[derive(Debug, Clone, PartialEq)]
pub struct Subquery {
    pub expr: Box<Expr>,
    pub range: Duration,
    /// `None` for `[range:]`: the default evaluation interval.
    pub step: Option<Duration>,
    pub offset: Duration,
    pub at: Option<At>,
    pub span: Span,
}

/// A function call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub func: &'static Function,
    pub args: Vec<Expr>,
    pub span: Span,
}

/// An aggregation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
    Limitk,
    LimitRatio,
}

impl AggregateOp {
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateOp::Sum => "sum",
            AggregateOp::Avg => "avg",
            AggregateOp::Count => "count",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
            AggregateOp::Group => "group",
            AggregateOp::Stddev => "stddev",
            AggregateOp::Stdvar => "stdvar",
            AggregateOp::Topk => "topk",
            AggregateOp::Bottomk => "bottomk",
            AggregateOp::CountValues => "count_values",
            AggregateOp::Quantile => "quantile",
            AggregateOp::Limitk => "limitk",
            AggregateOp::LimitRatio => "limit_ratio",
        }
    }

    /// True for the operators that take a parameter before the vector.
    pub fn has_param(self) -> bool {
        matches!(
            self,
            AggregateOp::Topk
                | AggregateOp::Bottomk
                | AggregateOp::CountValues
                | AggregateOp::Quantile
                | AggregateOp::Limitk
                | AggregateOp::LimitRatio
        )
    }

    /// True for `limitk` and `limit_ratio`.
    pub fn is_experimental(self) -> bool {
        matches!(self, AggregateOp::Limitk | AggregateOp::LimitRatio)
    }
}

impl fmt::Display for AggregateOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `op by|without (grouping) ([param,] expr)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub op: AggregateOp,
    pub param: Option<Box<Expr>>,
    pub expr: Box<Expr>,
    pub grouping: Vec<String>,
    /// `without` instead of `by`.
    pub without: bool,
    pub span: Span,
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eql,
    Neq,
    Lte,
    Lss,
    Gte,
    Gtr,
    /// `</`, native-histogram trim upper.
    TrimUpper,
    /// `>/`, native-histogram trim lower.
    TrimLower,
    And,
    Or,
    Unless,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Atan2 => "atan2",
            BinaryOp::Eql => "==",
            BinaryOp::Neq => "!=",
            BinaryOp::Lte => "<=",
            BinaryOp::Lss => "<",
            BinaryOp::Gte => ">=",
            BinaryOp::Gtr => ">",
            BinaryOp::TrimUpper => "</",
            BinaryOp::TrimLower => ">/",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Unless => "unless",
        }
    }

    /// `==`, `!=`, `<=`, `<`, `>=`, `>`.
    pub fn is_comparison(self) -> bool {
        matches!(self, BinaryOp::Eql | BinaryOp::Neq | BinaryOp::Lte | BinaryOp::Lss | BinaryOp::Gte | BinaryOp::Gtr)
    }

    /// `and`, `or`, `unless`.
    pub fn is_set(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }

    /// Binding strength: 1 (`or`) to 6 (`^`).
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And | BinaryOp::Unless => 2,
            BinaryOp::Eql
            | BinaryOp::Neq
            | BinaryOp::Lte
            | BinaryOp::Lss
            | BinaryOp::Gte
            | BinaryOp::Gtr
            | BinaryOp::TrimUpper
            | BinaryOp::TrimLower => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod | BinaryOp::Atan2 => 5,
            BinaryOp::Pow => 6,
        }
    }
}

impl fmt::Display for BinaryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the two sides of a vector/vector operation are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    OneToOne,
    /// `group_left`.
    ManyToOne,
    /// `group_right`.
    OneToMany,
    /// Set operators.
    ManyToMany,
}

/// Values of `fill()`, `fill_left()`, `fill_right()` (experimental).
#[derive(Debug, Clone, Copy, Default)]
pub struct FillValues {
    pub lhs: Option<f64>,
    pub rhs: Option<f64>,
}

/// NaN equals NaN.
impl PartialEq for FillValues {
    fn eq(&self, other: &FillValues) -> bool {
        let same = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => a == b || (a.is_nan() && b.is_nan()),
            (a, b) => a.is_none() && b.is_none(),
        };
        same(self.lhs, other.lhs) && same(self.rhs, other.rhs)
    }
}

/// `on`/`ignoring`, `group_left`/`group_right` and `fill` of a binary operation.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorMatching {
    pub card: Cardinality,
    /// The labels of `on(...)` or `ignoring(...)`.
    pub matching_labels: Vec<String>,
    /// `on` rather than `ignoring`.
    pub on: bool,
    /// The extra labels of `group_left(...)`/`group_right(...)`.
    pub include: Vec<String>,
    pub fill: FillValues,
}

/// `lhs op [bool] [on|ignoring (...)] [group_left|group_right (...)] rhs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Binary {
    pub op: BinaryOp,
    pub lhs: Box<Expr>,
    pub rhs: Box<Expr>,
    /// The `bool` modifier of comparisons.
    pub return_bool: bool,
    /// Present when both sides are instant vectors.
    pub matching: Option<VectorMatching>,
}

/// A unary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Pos,
}

/// `-expr` or `+expr` (a sign before a number literal is folded into the literal).
#[derive(Debug, Clone, PartialEq)]
pub struct Unary {
    pub op: UnaryOp,
    pub expr: Box<Expr>,
    pub span: Span,
}

/// `(expr)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Paren {
    pub expr: Box<Expr>,
    pub span: Span,
}

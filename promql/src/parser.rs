//! Recursive-descent parser with precedence climbing over the lexer's tokens.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use sextant_model::{MatchOp, Matcher};

use crate::ast::*;
use crate::error::{ParseError, Span};
use crate::functions::{added_after_v2_42, function, HOLT_WINTERS};
use crate::lexer::{go_quote, parse_duration, parse_number, unquote, Kw, Lexer, Token, T};

/// Parser switches, like Prometheus' feature flags. `Default` is Prometheus 3.14's default:
/// duration expressions on, the experimental rest off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// `--enable-feature=promql-experimental-functions`: experimental functions, `limitk`,
    /// `limit_ratio`.
    pub experimental_functions: bool,
    /// Arithmetic, `step()`, `range()`, `min_of`, `max_of` in ranges and offsets.
    pub duration_expressions: bool,
    /// `--enable-feature=promql-extended-range-selectors`: `anchored`, `smoothed`.
    pub extended_range_selectors: bool,
    /// `--enable-feature=promql-binop-fill-modifiers`: `fill()`, `fill_left()`, `fill_right()`.
    pub binop_fill_modifiers: bool,
    /// Prometheus 2.42's function set (`--query.semantics=prometheus2`): `holt_winters` is
    /// known, the functions added since are not.
    pub prometheus2: bool,
}

impl Default for ParseOptions {
    fn default() -> ParseOptions {
        ParseOptions {
            experimental_functions: false,
            duration_expressions: true,
            extended_range_selectors: false,
            binop_fill_modifiers: false,
            prometheus2: false,
        }
    }
}

impl ParseOptions {
    /// Every feature on, as Prometheus' own test scripts run.
    pub fn all() -> ParseOptions {
        ParseOptions {
            experimental_functions: true,
            duration_expressions: true,
            extended_range_selectors: true,
            binop_fill_modifiers: true,
            prometheus2: false,
        }
    }

    /// Prometheus 2.42's function set, otherwise the defaults.
    pub fn prometheus2() -> ParseOptions {
        ParseOptions { prometheus2: true, ..ParseOptions::default() }
    }
}

/// The deepest nesting accepted, both of the parser's recursion and of the resulting tree
/// (a chain `a or b or c ...` counts one level per operator, since later passes recurse
/// over it); deeper input is an error, not a stack overflow. 128 levels fit in a 2 MiB stack
/// in debug builds with room to spare (checked by the tests); Prometheus has no bound.
pub const MAX_DEPTH: usize = 128;

type PResult<T> = Result<T, ParseError>;

pub(crate) struct Parser<'a> {
    src: &'a str,
    lex: Lexer<'a>,
    tok: Token,
    /// End of the last consumed token.
    last_end: usize,
    opts: ParseOptions,
    depth: usize,
}

/// An expression with the depth of its tree.
struct Node {
    expr: Expr,
    depth: usize,
}

impl Node {
    fn leaf(expr: Expr) -> Node {
        Node { expr, depth: 1 }
    }
}

impl<'a> Parser<'a> {
    pub fn new(src: &'a str, opts: ParseOptions) -> Parser<'a> {
        let mut lex = Lexer::new(src);
        let tok = lex.next_token();
        Parser { src, lex, tok, last_end: 0, opts, depth: 0 }
    }

    fn err(&self, span: Span, message: impl Into<String>) -> ParseError {
        ParseError::new(self.src, span, message)
    }

    fn bump(&mut self) -> Token {
        let t = self.tok;
        self.last_end = t.end;
        self.tok = self.lex.next_token();
        t
    }

    fn text(&self, t: Token) -> &'a str {
        &self.src[t.start..t.end]
    }

    fn tok_span(&self) -> Span {
        Span::new(self.tok.start, self.tok.end)
    }

    /// "unexpected <token>[ in context][, expected ...]", or the lexer's own error.
    fn unexpected(&self, context: &str, expected: &str) -> ParseError {
        if self.tok.t == T::Error {
            let (at, message) = self.lex.error.clone().unwrap_or_default();
            return self.err(Span::new(at, self.src.len()), message);
        }
        let mut m = format!("unexpected {}", self.lex.describe(self.tok));
        if !context.is_empty() {
            m.push_str(" in ");
            m.push_str(context);
        }
        if !expected.is_empty() {
            m.push_str(", expected ");
            m.push_str(expected);
        }
        self.err(self.tok_span(), m)
    }

    fn expect(&mut self, t: T, context: &str, expected: &str) -> PResult<Token> {
        if self.tok.t == t {
            Ok(self.bump())
        } else {
            Err(self.unexpected(context, expected))
        }
    }

    pub fn parse(mut self) -> PResult<Expr> {
        if self.tok.t == T::Eof {
            return Err(self.err(Span::new(0, 0), "no expression found in input"));
        }
        let node = self.expr(0)?;
        if self.tok.t != T::Eof {
            return Err(self.unexpected("", ""));
        }
        Ok(node.expr)
    }

    /// A lone vector selector (`foo{a="b"}`, `{__name__=~"x.*"}`), as in the `match[]`
    /// parameters of the HTTP API.
    pub fn parse_selector(mut self) -> PResult<VectorSelector> {
        let vs = match self.tok.t {
            T::LBrace => self.selector(None, self.tok.start)?,
            T::Ident
            | T::MetricIdent
            | T::Agg(_)
            | T::Op(BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
            | T::Kw(
                Kw::By
                | Kw::Without
                | Kw::Offset
                | Kw::Anchored
                | Kw::Smoothed
                | Kw::Fill
                | Kw::FillLeft
                | Kw::FillRight
                | Kw::Start
                | Kw::End
                | Kw::Step
                | Kw::Range
                | Kw::MaxOf
                | Kw::MinOf,
            ) => {
                let t = self.bump();
                match self.named_selector(t)?.expr {
                    Expr::VectorSelector(vs) => vs,
                    _ => return Err(self.unexpected("", "")),
                }
            }
            _ => return Err(self.unexpected("", "")),
        };
        if self.tok.t != T::Eof {
            return Err(self.unexpected("", ""));
        }
        Ok(vs)
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(
                self.err(self.tok_span(), format!("expression nesting is too deep (more than {MAX_DEPTH} levels)"))
            );
        }
        Ok(())
    }

    fn check_depth(&self, depth: usize, span: impl FnOnce() -> Span) -> PResult<()> {
        if depth > MAX_DEPTH {
            return Err(self.err(span(), format!("expression nesting is too deep (more than {MAX_DEPTH} levels)")));
        }
        Ok(())
    }

    fn expr(&mut self, min_prec: u8) -> PResult<Node> {
        self.enter()?;
        let mut lhs = self.unary()?;
        while let T::Op(op) = self.tok.t {
            if op.precedence() < min_prec {
                break;
            }
            lhs = self.binary_rhs(lhs, op)?;
        }
        self.depth -= 1;
        Ok(lhs)
    }

    /// After `lhs`, with the operator `op` current: modifiers and the right operand.
    fn binary_rhs(&mut self, lhs: Node, op: BinaryOp) -> PResult<Node> {
        self.bump();
        let (return_bool, matching) = self.bin_modifiers()?;
        let prec = op.precedence();
        let rhs = self.expr(if op == BinaryOp::Pow { prec } else { prec + 1 })?;
        self.make_binary(lhs, op, rhs, return_bool, matching)
    }

    fn make_binary(
        &self,
        lhs: Node,
        op: BinaryOp,
        rhs: Node,
        return_bool: bool,
        matching: Option<VectorMatching>,
    ) -> PResult<Node> {
        let depth = lhs.depth.max(rhs.depth) + 1;
        let fill = matching.as_ref().map(|m| m.fill).unwrap_or_default();
        let expr = Expr::Binary(Binary { op, lhs: Box::new(lhs.expr), rhs: Box::new(rhs.expr), return_bool, matching });
        self.check_depth(depth, || expr.span())?;
        if !self.opts.binop_fill_modifiers && (fill.lhs.is_some() || fill.rhs.is_some()) {
            return Err(self.err(expr.span(), "binop fill modifiers are experimental and not enabled"));
        }
        Ok(Node { expr, depth })
    }

    fn bin_modifiers(&mut self) -> PResult<(bool, Option<VectorMatching>)> {
        let mut m = VectorMatching {
            card: Cardinality::OneToOne,
            matching_labels: vec![],
            on: false,
            include: vec![],
            fill: FillValues::default(),
        };
        let mut return_bool = false;
        if self.tok.t == T::Kw(Kw::Bool) {
            self.bump();
            return_bool = true;
        }
        if matches!(self.tok.t, T::Kw(Kw::On | Kw::Ignoring)) {
            m.on = self.bump().t == T::Kw(Kw::On);
            m.matching_labels = self.grouping_labels()?;
            if matches!(self.tok.t, T::Kw(Kw::GroupLeft | Kw::GroupRight)) {
                m.card =
                    if self.bump().t == T::Kw(Kw::GroupLeft) { Cardinality::ManyToOne } else { Cardinality::OneToMany };
                if self.tok.t == T::LParen {
                    m.include = self.grouping_labels()?;
                }
            }
        }
        let mut seen_left = false;
        let mut seen_right = false;
        loop {
            match self.tok.t {
                T::Kw(Kw::Fill) if !seen_left && !seen_right => {
                    self.bump();
                    let v = self.fill_value()?;
                    m.fill = FillValues { lhs: Some(v), rhs: Some(v) };
                    break;
                }
                T::Kw(Kw::FillLeft) if !seen_left => {
                    self.bump();
                    m.fill.lhs = Some(self.fill_value()?);
                    seen_left = true;
                }
                T::Kw(Kw::FillRight) if !seen_right => {
                    self.bump();
                    m.fill.rhs = Some(self.fill_value()?);
                    seen_right = true;
                }
                _ => break,
            }
        }
        Ok((return_bool, Some(m)))
    }

    fn fill_value(&mut self) -> PResult<f64> {
        self.expect(T::LParen, "fill modifier", "\"(\"")?;
        let mut sign = 1.0;
        if let T::Op(op @ (BinaryOp::Add | BinaryOp::Sub)) = self.tok.t {
            self.bump();
            if op == BinaryOp::Sub {
                sign = -1.0;
            }
        }
        let v = match self.tok.t {
            T::Number | T::Duration => self.number_literal()?.0,
            _ => return Err(self.unexpected("fill modifier", "number")),
        };
        self.expect(T::RParen, "fill modifier", "\")\"")?;
        Ok(sign * v)
    }

    /// `(label, "label", ...)`.
    fn grouping_labels(&mut self) -> PResult<Vec<String>> {
        if self.tok.t != T::LParen {
            return Err(self.unexpected("grouping opts", "\"(\""));
        }
        self.bump();
        let mut labels = vec![];
        loop {
            if self.tok.t == T::RParen {
                self.bump();
                return Ok(labels);
            }
            let label = match self.tok.t {
                T::Str => {
                    let t = self.bump();
                    let s = self.unquote_token(t)?;
                    if s.is_empty() {
                        return Err(self.err(
                            Span::new(t.start, t.end),
                            format!("invalid label name for grouping: {}", go_quote(&s)),
                        ));
                    }
                    s
                }
                T::Ident | T::MetricIdent | T::Agg(_) | T::Kw(_) => {
                    let t = self.bump();
                    let text = self.text(t);
                    if !is_label_name_token(t.t) {
                        return Err(self.err(
                            Span::new(t.start, t.end),
                            format!("unexpected {} in grouping opts, expected label", self.lex.describe(t)),
                        ));
                    }
                    if text.contains(':') {
                        return Err(self.err(
                            Span::new(t.start, t.end),
                            format!("invalid label name for grouping: {}", go_quote(text)),
                        ));
                    }
                    text.to_string()
                }
                T::Op(BinaryOp::And | BinaryOp::Or | BinaryOp::Unless | BinaryOp::Atan2) => {
                    let t = self.bump();
                    self.text(t).to_string()
                }
                _ => return Err(self.unexpected("grouping opts", "label")),
            };
            labels.push(label);
            match self.tok.t {
                T::Comma => {
                    self.bump();
                }
                T::RParen => {}
                _ => return Err(self.unexpected("grouping opts", "\",\" or \")\"")),
            }
        }
    }

    fn unquote_token(&self, t: Token) -> PResult<String> {
        let raw = self.text(t);
        unquote(raw).map_err(|()| {
            self.err(Span::new(t.start, t.end), format!("error unquoting string {}: invalid UTF-8", go_quote(raw)))
        })
    }

    fn unary(&mut self) -> PResult<Node> {
        if let T::Op(op @ (BinaryOp::Add | BinaryOp::Sub)) = self.tok.t {
            let t = self.bump();
            let operand = self.expr(BinaryOp::Pow.precedence())?;
            return self.make_unary(op, t, operand);
        }
        let mut node = self.primary()?;
        if matches!(self.tok.t, T::LBracket | T::Kw(Kw::Offset | Kw::Anchored | Kw::Smoothed) | T::At) {
            node = self.postfix(node)?;
        }
        Ok(node)
    }

    fn make_unary(&self, op: BinaryOp, t: Token, operand: Node) -> PResult<Node> {
        let span = Span::new(t.start, operand.expr.span().end);
        let expr = match operand.expr {
            Expr::NumberLiteral(mut n) => {
                if op == BinaryOp::Sub {
                    n.value = -n.value;
                }
                n.span.start = t.start;
                Expr::NumberLiteral(n)
            }
            e => {
                let op = if op == BinaryOp::Sub { UnaryOp::Neg } else { UnaryOp::Pos };
                Expr::Unary(Unary { op, expr: Box::new(e), span })
            }
        };
        let depth = operand.depth + 1;
        self.check_depth(depth, || span)?;
        Ok(Node { expr, depth })
    }

    fn number_literal(&mut self) -> PResult<(f64, bool, Span)> {
        let t = self.bump();
        let span = Span::new(t.start, t.end);
        let text = self.text(t);
        if t.t == T::Duration {
            let ms = parse_duration(text).map_err(|m| self.err(span, m))?;
            Ok((ms as f64 / 1000.0, true, span))
        } else {
            let v = parse_number(text).map_err(|m| self.err(span, m))?;
            Ok((v, false, span))
        }
    }

    fn primary(&mut self) -> PResult<Node> {
        match self.tok.t {
            T::LParen => self.paren(),
            T::Agg(op) => {
                let t = self.bump();
                if matches!(self.tok.t, T::LParen | T::Kw(Kw::By | Kw::Without)) {
                    return self.aggregate(op, t);
                }
                self.named_selector(t)
            }
            T::Ident | T::Kw(Kw::Start | Kw::End | Kw::Step | Kw::Range | Kw::MaxOf | Kw::MinOf) => {
                let t = self.bump();
                if self.tok.t == T::LParen {
                    return self.call(t);
                }
                self.named_selector(t)
            }
            _ => self.leaf(),
        }
    }

    fn paren(&mut self) -> PResult<Node> {
        let open = self.bump();
        let inner = self.expr(0)?;
        self.make_paren(open, inner)
    }

    fn make_paren(&mut self, open: Token, inner: Node) -> PResult<Node> {
        let close = self.expect(T::RParen, "paren expression", "\")\"")?;
        let span = Span::new(open.start, close.end);
        let depth = inner.depth + 1;
        self.check_depth(depth, || span)?;
        Ok(Node { expr: Expr::Paren(Paren { expr: Box::new(inner.expr), span }), depth })
    }

    /// Literals and selectors.
    fn leaf(&mut self) -> PResult<Node> {
        match self.tok.t {
            T::Number | T::Duration => {
                let (value, duration, span) = self.number_literal()?;
                Ok(Node::leaf(Expr::NumberLiteral(NumberLiteral { value, duration, span })))
            }
            T::Str => {
                let t = self.bump();
                let value = self.unquote_token(t)?;
                Ok(Node::leaf(Expr::StringLiteral(StringLiteral { value, span: Span::new(t.start, t.end) })))
            }
            T::LBrace => {
                let vs = self.selector(None, self.tok.start)?;
                Ok(Node::leaf(Expr::VectorSelector(vs)))
            }
            T::MetricIdent
            | T::Kw(
                Kw::By
                | Kw::Without
                | Kw::Offset
                | Kw::Anchored
                | Kw::Smoothed
                | Kw::Fill
                | Kw::FillLeft
                | Kw::FillRight,
            )
            | T::Op(BinaryOp::And | BinaryOp::Or | BinaryOp::Unless) => {
                let t = self.bump();
                self.named_selector(t)
            }
            _ => Err(self.unexpected("", "")),
        }
    }

    fn named_selector(&mut self, name_tok: Token) -> PResult<Node> {
        let name = self.text(name_tok).to_string();
        let vs = if self.tok.t == T::LBrace {
            self.selector(Some(name), name_tok.start)?
        } else {
            VectorSelector {
                matchers: vec![Matcher::equal("__name__", name.clone())],
                name: Some(name),
                offset: Duration::Fixed(0),
                at: None,
                anchored: false,
                smoothed: false,
                span: Span::new(name_tok.start, name_tok.end),
            }
        };
        Ok(Node::leaf(Expr::VectorSelector(vs)))
    }

    /// `{...}` after an optional name.
    fn selector(&mut self, name: Option<String>, start: usize) -> PResult<VectorSelector> {
        self.expect(T::LBrace, "", "")?;
        let mut matchers = Vec::with_capacity(4);
        loop {
            match self.tok.t {
                T::RBrace => break,
                T::Ident | T::Str => {
                    let label_tok = self.bump();
                    let label = if label_tok.t == T::Str {
                        self.unquote_token(label_tok)?
                    } else {
                        self.text(label_tok).to_string()
                    };
                    let op = match self.tok.t {
                        T::Eql => Some(MatchOp::Equal),
                        T::Op(BinaryOp::Neq) => Some(MatchOp::NotEqual),
                        T::EqlRegex => Some(MatchOp::RegexMatch),
                        T::NeqRegex => Some(MatchOp::RegexNoMatch),
                        _ => None,
                    };
                    match op {
                        Some(op) => {
                            self.bump();
                            if self.tok.t != T::Str {
                                return Err(self.unexpected("label matching", "string"));
                            }
                            let value_tok = self.bump();
                            let value = self.unquote_token(value_tok)?;
                            let span = Span::new(label_tok.start, value_tok.end);
                            matchers.push(self.matcher(op, label, value, span)?);
                        }
                        None if label_tok.t == T::Str && matches!(self.tok.t, T::Comma | T::RBrace) => {
                            matchers.push(Matcher::equal("__name__", label));
                        }
                        None if label_tok.t == T::Str => {
                            return Err(self.unexpected("label matching", "\",\" or \"}\""))
                        }
                        None => return Err(self.unexpected("label matching", "label matching operator")),
                    }
                    match self.tok.t {
                        T::Comma => {
                            self.bump();
                        }
                        T::RBrace => {}
                        _ => return Err(self.unexpected("label matching", "\",\" or \"}\"")),
                    }
                }
                _ => return Err(self.unexpected("label matching", "identifier or \"}\"")),
            }
        }
        let close = self.bump();
        if let Some(name) = &name {
            matchers.push(Matcher::equal("__name__", name.clone()));
        }
        Ok(VectorSelector {
            name,
            matchers,
            offset: Duration::Fixed(0),
            at: None,
            anchored: false,
            smoothed: false,
            span: Span::new(start, close.end),
        })
    }

    fn matcher(&self, op: MatchOp, name: String, value: String, span: Span) -> PResult<Matcher> {
        match op {
            MatchOp::Equal | MatchOp::NotEqual => {
                Matcher::new(op, name, value).map_err(|e| self.err(span, e.to_string()))
            }
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                cached_regex_matcher(op, name, value).map_err(|m| self.err(span, m))
            }
        }
    }

    fn call(&mut self, name_tok: Token) -> PResult<Node> {
        let (args, depth) = self.call_body()?;
        self.make_call(name_tok, args, depth)
    }

    fn make_call(&self, name_tok: Token, args: Vec<Expr>, depth: usize) -> PResult<Node> {
        let name = self.text(name_tok);
        let name_span = Span::new(name_tok.start, name_tok.end);
        let func = match name {
            "holt_winters" if self.opts.prometheus2 => Some(&HOLT_WINTERS),
            _ if self.opts.prometheus2 && added_after_v2_42(name) => None,
            _ => function(name),
        };
        let Some(func) = func else {
            return Err(self.err(name_span, format!("unknown function with name {}", go_quote(name))));
        };
        if func.experimental && !self.opts.experimental_functions {
            return Err(self.err(name_span, format!("function {} is not enabled", go_quote(name))));
        }
        let span = Span::new(name_tok.start, self.last_end);
        self.check_depth(depth + 1, || span)?;
        Ok(Node { expr: Expr::Call(Call { func, args, span }), depth: depth + 1 })
    }

    /// `(arg, arg, ...)`: the arguments and their greatest depth.
    fn call_body(&mut self) -> PResult<(Vec<Expr>, usize)> {
        self.expect(T::LParen, "", "")?;
        let mut args = vec![];
        let mut depth = 0;
        if self.tok.t == T::RParen {
            self.bump();
            return Ok((args, depth));
        }
        loop {
            let arg = self.expr(0)?;
            depth = depth.max(arg.depth);
            args.push(arg.expr);
            if self.after_arg()? {
                return Ok((args, depth));
            }
        }
    }

    /// After a call argument: true at the closing `)`, false after a `,`.
    fn after_arg(&mut self) -> PResult<bool> {
        match self.tok.t {
            T::Comma => {
                let comma = self.bump();
                if self.tok.t == T::RParen {
                    return Err(self
                        .err(Span::new(comma.start, comma.end), "trailing commas not allowed in function call args"));
                }
                Ok(false)
            }
            T::RParen => {
                self.bump();
                Ok(true)
            }
            _ => Err(self.unexpected("", "")),
        }
    }

    fn aggregate(&mut self, op: AggregateOp, op_tok: Token) -> PResult<Node> {
        let before = self.aggregate_modifier()?;
        if self.tok.t != T::LParen {
            return Err(self.unexpected("aggregation", ""));
        }
        let (args, depth) = self.call_body()?;
        self.make_aggregate(op, op_tok, before, args, depth)
    }

    /// `by (...)` or `without (...)`, if present.
    fn aggregate_modifier(&mut self) -> PResult<Option<(bool, Vec<String>)>> {
        if let T::Kw(k @ (Kw::By | Kw::Without)) = self.tok.t {
            self.bump();
            return Ok(Some((k == Kw::Without, self.grouping_labels()?)));
        }
        Ok(None)
    }

    fn make_aggregate(
        &mut self,
        op: AggregateOp,
        op_tok: Token,
        before: Option<(bool, Vec<String>)>,
        mut args: Vec<Expr>,
        depth: usize,
    ) -> PResult<Node> {
        let modifier = match before {
            Some(m) => Some(m),
            None => self.aggregate_modifier()?,
        };
        let (without, grouping) = modifier.unwrap_or_default();
        let span = Span::new(op_tok.start, self.last_end);
        if args.is_empty() {
            return Err(self.err(span, "no arguments for aggregate expression provided"));
        }
        let mut wanted = 1;
        if op.has_param() {
            if op.is_experimental() && !self.opts.experimental_functions {
                return Err(self.err(
                    span,
                    format!("{op}() is experimental and must be enabled with --enable-feature=promql-experimental-functions"),
                ));
            }
            wanted = 2;
        }
        if args.len() != wanted {
            return Err(self.err(
                span,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {wanted}, got {}",
                    args.len()
                ),
            ));
        }
        let expr =
            Box::new(args.pop().unwrap_or(Expr::NumberLiteral(NumberLiteral { value: 0.0, duration: false, span })));
        let param = args.pop().map(Box::new);
        self.check_depth(depth + 1, || span)?;
        Ok(Node { expr: Expr::Aggregate(Aggregate { op, param, expr, grouping, without, span }), depth: depth + 1 })
    }

    /// `[range]`, `[range:step]`, `offset`, `@`, `anchored`, `smoothed` after an expression.
    fn postfix(&mut self, mut node: Node) -> PResult<Node> {
        loop {
            match self.tok.t {
                T::LBracket => node = self.range_or_subquery(node)?,
                T::Kw(Kw::Offset) => {
                    self.bump();
                    let d = self.offset_duration()?;
                    self.set_offset(&mut node.expr, d)?;
                }
                T::At => {
                    self.bump();
                    let at = self.at_modifier(&node.expr)?;
                    self.set_at(&mut node.expr, at)?;
                }
                T::Kw(k @ (Kw::Anchored | Kw::Smoothed)) => {
                    self.bump();
                    self.set_extended(&mut node.expr, k == Kw::Anchored)?;
                }
                _ => return Ok(node),
            }
        }
    }

    fn range_or_subquery(&mut self, node: Node) -> PResult<Node> {
        let open = self.bump();
        if matches!(self.tok.t, T::RBracket | T::Eof) || self.tok.t == T::Colon {
            return Err(self.unexpected("subquery or range selector", "number, duration, step(), or range()"));
        }
        let range = self.positive_duration()?;
        match self.tok.t {
            T::RBracket => {
                let close = self.bump();
                let bracket_span = Span::new(open.start, close.end);
                let selector = match node.expr {
                    Expr::VectorSelector(vs) => vs,
                    _ => return Err(self.err(bracket_span, "ranges only allowed for vector selectors")),
                };
                if !selector.offset.is_zero() {
                    return Err(self.err(bracket_span, "no offset modifiers allowed before range"));
                }
                if selector.at.is_some() {
                    return Err(self.err(bracket_span, "no @ modifiers allowed before range"));
                }
                let span = Span::new(selector.span.start, close.end);
                Ok(Node { expr: Expr::MatrixSelector(MatrixSelector { selector, range, span }), depth: node.depth + 1 })
            }
            T::Colon => {
                self.bump();
                let step = if self.tok.t == T::RBracket {
                    None
                } else if matches!(
                    self.tok.t,
                    T::Number
                        | T::Duration
                        | T::LParen
                        | T::Op(BinaryOp::Add | BinaryOp::Sub)
                        | T::Kw(Kw::Step | Kw::Range | Kw::MinOf | Kw::MaxOf)
                ) {
                    Some(self.positive_duration()?)
                } else {
                    return Err(self.unexpected("subquery selector", "number, duration, step(), range(), or \"]\""));
                };
                if self.tok.t != T::RBracket {
                    return Err(self.unexpected("subquery selector", "\"]\""));
                }
                let close = self.bump();
                let span = Span::new(node.expr.span().start, close.end);
                let depth = node.depth + 1;
                self.check_depth(depth, || span)?;
                let sq =
                    Subquery { expr: Box::new(node.expr), range, step, offset: Duration::Fixed(0), at: None, span };
                Ok(Node { expr: Expr::Subquery(sq), depth })
            }
            _ => Err(self.unexpected("subquery or range", "\":\" or \"]\"")),
        }
    }

    fn positive_duration(&mut self) -> PResult<Duration> {
        let start = self.tok.start;
        let d = self.duration_expr(0)?;
        if let DurationExpr::Number { seconds, .. } = d {
            if seconds <= 0.0 {
                return Err(self.err(Span::new(start, self.last_end), "duration must be greater than 0"));
            }
        }
        Ok(to_duration(d))
    }

    fn experimental_duration(&self, span: Span) -> PResult<()> {
        if !self.opts.duration_expressions {
            return Err(self.err(span, "experimental duration expression is not enabled"));
        }
        Ok(())
    }

    /// A duration expression inside `[...]` (or an argument of `min_of`/`max_of`).
    fn duration_expr(&mut self, min_prec: u8) -> PResult<DurationExpr> {
        self.enter()?;
        let start = self.tok.start;
        let mut lhs = self.duration_unary()?;
        loop {
            let (op, prec) = match self.tok.t {
                T::Op(BinaryOp::Add) => (DurationOp::Add, 1),
                T::Op(BinaryOp::Sub) => (DurationOp::Sub, 1),
                T::Op(BinaryOp::Mul) => (DurationOp::Mul, 2),
                T::Op(BinaryOp::Div) => (DurationOp::Div, 2),
                T::Op(BinaryOp::Mod) => (DurationOp::Mod, 2),
                T::Op(BinaryOp::Pow) => (DurationOp::Pow, 3),
                _ => break,
            };
            if prec < min_prec {
                break;
            }
            let op_tok = self.bump();
            self.experimental_duration(Span::new(start, op_tok.start))?;
            let rhs = self.duration_expr(if op == DurationOp::Pow { prec } else { prec + 1 })?;
            if let DurationExpr::Number { seconds, .. } = rhs {
                if seconds == 0.0 && op == DurationOp::Div {
                    return Err(self.err(Span::new(op_tok.start, op_tok.end), "division by zero"));
                }
                if seconds == 0.0 && op == DurationOp::Mod {
                    return Err(self.err(Span::new(op_tok.start, op_tok.end), "modulo by zero"));
                }
            }
            lhs = DurationExpr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn duration_unary(&mut self) -> PResult<DurationExpr> {
        if let T::Op(op @ (BinaryOp::Add | BinaryOp::Sub)) = self.tok.t {
            let t = self.bump();
            let e = self.duration_expr(3)?;
            return self.apply_duration_sign(op, e, t);
        }
        self.duration_primary()
    }

    fn apply_duration_sign(&self, op: BinaryOp, e: DurationExpr, t: Token) -> PResult<DurationExpr> {
        Ok(match e {
            DurationExpr::Number { seconds, unit } => {
                let seconds = if op == BinaryOp::Sub { -seconds } else { seconds };
                if out_of_range(seconds) {
                    return Err(self.err(Span::new(t.start, t.end), "duration out of range"));
                }
                DurationExpr::Number { seconds, unit }
            }
            e if op == BinaryOp::Sub => DurationExpr::Neg(Box::new(e)),
            e => e,
        })
    }

    fn duration_primary(&mut self) -> PResult<DurationExpr> {
        match self.tok.t {
            T::Number | T::Duration => {
                let (seconds, unit, span) = self.number_literal()?;
                if out_of_range(seconds) {
                    return Err(self.err(span, "duration out of range"));
                }
                Ok(DurationExpr::Number { seconds, unit })
            }
            T::Kw(k @ (Kw::Step | Kw::Range)) => {
                let t = self.bump();
                let (ctx, want) = ("subquery or range selector", "number, duration, step(), or range()");
                self.expect(T::LParen, ctx, want)?;
                self.expect(T::RParen, ctx, want)?;
                self.experimental_duration(Span::new(t.start, self.last_end))?;
                Ok(if k == Kw::Step { DurationExpr::Step } else { DurationExpr::Range })
            }
            T::Kw(k @ (Kw::MinOf | Kw::MaxOf)) => {
                let t = self.bump();
                self.expect(T::LParen, "", "")?;
                let a = self.duration_expr(0)?;
                self.expect(T::Comma, "", "")?;
                let b = self.duration_expr(0)?;
                self.expect(T::RParen, "", "")?;
                self.experimental_duration(Span::new(t.start, self.last_end))?;
                let (a, b) = (Box::new(a), Box::new(b));
                Ok(if k == Kw::MinOf { DurationExpr::MinOf(a, b) } else { DurationExpr::MaxOf(a, b) })
            }
            T::LParen => {
                let open = self.bump();
                let inner = self.duration_expr(0)?;
                self.expect(T::RParen, "", "")?;
                Ok(match inner {
                    n @ DurationExpr::Number { .. } => n,
                    p @ DurationExpr::Paren(_) => p,
                    e => {
                        self.experimental_duration(Span::new(open.start, self.last_end))?;
                        DurationExpr::Paren(Box::new(e))
                    }
                })
            }
            _ => Err(self.unexpected("subquery or range selector", "number, duration, step(), or range()")),
        }
    }

    /// After `offset`: a signed literal, `step()`, `range()`, `min_of`/`max_of`, or a
    /// parenthesised duration expression (so `x offset 1m + 1` is `(x offset 1m) + 1`).
    fn offset_duration(&mut self) -> PResult<Duration> {
        let mut sign = None;
        if let T::Op(op @ (BinaryOp::Add | BinaryOp::Sub)) = self.tok.t {
            sign = Some((op, self.bump()));
        }
        if !matches!(
            self.tok.t,
            T::Number | T::Duration | T::LParen | T::Kw(Kw::Step | Kw::Range | Kw::MinOf | Kw::MaxOf)
        ) {
            return Err(self.unexpected("offset", "number, duration, step(), or range()"));
        }
        let mut e = self.duration_primary()?;
        if let Some((op, t)) = sign {
            e = self.apply_duration_sign(op, e, t)?;
        }
        Ok(to_duration(e))
    }

    fn at_modifier(&mut self, target: &Expr) -> PResult<At> {
        let mut sign = 1.0;
        if let T::Op(op @ (BinaryOp::Add | BinaryOp::Sub)) = self.tok.t {
            self.bump();
            if op == BinaryOp::Sub {
                sign = -1.0;
            }
            if !matches!(self.tok.t, T::Number | T::Duration) {
                return Err(self.unexpected("@", "timestamp"));
            }
        }
        match self.tok.t {
            T::Number | T::Duration => {
                let ts = sign * self.number_literal()?.0;
                if !ts.is_finite() || ts >= i64::MAX as f64 || ts <= i64::MIN as f64 {
                    return Err(
                        self.err(target.span(), format!("timestamp out of bounds for @ modifier: {}", go_float_f(ts)))
                    );
                }
                Ok(At::Timestamp((ts * 1000.0).round() as i64))
            }
            T::Kw(k @ (Kw::Start | Kw::End)) => {
                self.bump();
                self.expect(T::LParen, "@", "\"(\"")?;
                self.expect(T::RParen, "@", "\")\"")?;
                Ok(if k == Kw::Start { At::Start } else { At::End })
            }
            _ => Err(self.unexpected("@", "timestamp")),
        }
    }

    fn set_offset(&self, e: &mut Expr, d: Duration) -> PResult<()> {
        let span = e.span();
        let end = self.last_end;
        let (slot, span_end) = match e {
            Expr::VectorSelector(vs) => (&mut vs.offset, &mut vs.span.end),
            Expr::MatrixSelector(m) => (&mut m.selector.offset, &mut m.span.end),
            Expr::Subquery(s) => (&mut s.offset, &mut s.span.end),
            _ => return Err(self.err(
                span,
                "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
            )),
        };
        if !slot.is_zero() {
            return Err(self.err(span, "offset may not be set multiple times"));
        }
        *slot = d;
        *span_end = end;
        Ok(())
    }

    fn set_at(&self, e: &mut Expr, at: At) -> PResult<()> {
        let span = e.span();
        let end = self.last_end;
        let (slot, span_end) =
            match e {
                Expr::VectorSelector(vs) => (&mut vs.at, &mut vs.span.end),
                Expr::MatrixSelector(m) => (&mut m.selector.at, &mut m.span.end),
                Expr::Subquery(s) => (&mut s.at, &mut s.span.end),
                _ => return Err(self.err(
                    span,
                    "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                )),
            };
        if slot.is_some() {
            return Err(self.err(span, "@ <timestamp> may not be set multiple times"));
        }
        *slot = Some(at);
        *span_end = end;
        Ok(())
    }

    fn set_extended(&self, e: &mut Expr, anchored: bool) -> PResult<()> {
        let name = if anchored { "anchored" } else { "smoothed" };
        let span = e.span();
        if !self.opts.extended_range_selectors {
            return Err(self.err(span, format!("{name} modifier is experimental and not enabled")));
        }
        let vs = match e {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(m) => &mut m.selector,
            Expr::Subquery(_) => return Err(self.err(span, format!("{name} modifier is not supported for subqueries"))),
            _ => return Err(self.err(span, format!("{name} modifier not implemented"))),
        };
        if anchored {
            vs.anchored = true;
        } else {
            vs.smoothed = true;
        }
        if vs.anchored && vs.smoothed {
            return Err(self.err(span, "anchored and smoothed modifiers cannot be used together"));
        }
        Ok(())
    }
}

/// Tokens that may be a label name in `by (...)` and similar lists (every keyword but
/// `without`, as in Prometheus' grammar).
fn is_label_name_token(t: T) -> bool {
    matches!(
        t,
        T::Ident
            | T::MetricIdent
            | T::Agg(_)
            | T::Op(BinaryOp::And | BinaryOp::Or | BinaryOp::Unless | BinaryOp::Atan2)
    ) || matches!(t, T::Kw(k) if k != Kw::Without)
}

fn out_of_range(seconds: f64) -> bool {
    !(-9_223_372_036.854_775..=9_223_372_036.854_775).contains(&seconds)
}

fn to_duration(e: DurationExpr) -> Duration {
    match e {
        DurationExpr::Number { seconds, .. } => Duration::Fixed((seconds * 1000.0).round() as i64),
        e => Duration::Expr(e),
    }
}

/// Go's `%f`.
fn go_float_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:.6}")
    }
}

/// Compiled regex matchers by pattern: dashboards repeat the same selectors, and compiling
/// a regex costs far more than parsing the query (Prometheus caches them too). Bounded;
/// cleared when full.
fn cached_regex_matcher(op: MatchOp, name: String, value: String) -> Result<Matcher, String> {
    const CAPACITY: usize = 4096;
    const MAX_CACHED_PATTERN: usize = 1024;
    static CACHE: Mutex<Option<HashMap<String, Matcher, BuildHasherDefault<Fnv>>>> = Mutex::new(None);
    if let Ok(guard) = CACHE.lock() {
        if let Some(cached) = guard.as_ref().and_then(|c| c.get(value.as_str())) {
            // The compiled pattern does not depend on the label name or on `=~` vs `!~`.
            let mut m = cached.clone();
            m.op = op;
            m.name = name;
            return Ok(m);
        }
    }
    let m = Matcher::new(op, name, value).map_err(|e| e.to_string())?;
    // Long patterns are rare and would make the cache's memory depend on the input.
    if m.value.len() > MAX_CACHED_PATTERN {
        return Ok(m);
    }
    if let Ok(mut guard) = CACHE.lock() {
        let cache = guard.get_or_insert_with(HashMap::default);
        if cache.len() >= CAPACITY {
            cache.clear();
        }
        // Stored without the label name, so that hits do not copy a name only to drop it.
        let mut stored = m.clone();
        stored.name = String::new();
        cache.insert(m.value.clone(), stored);
    }
    Ok(m)
}

/// FNV-1a: the regex cache's keys are short patterns, for which SipHash is slow.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

//! The tokenizer: Prometheus' lexer states (statements, inside braces, duration expressions
//! inside brackets), with nom scanning the terminals.

use nom::bytes::complete::take_while;
use nom::IResult;

use crate::ast::{AggregateOp, BinaryOp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kw {
    Bool,
    By,
    GroupLeft,
    GroupRight,
    Fill,
    FillLeft,
    FillRight,
    Ignoring,
    Offset,
    Smoothed,
    Anchored,
    On,
    Without,
    Start,
    End,
    Step,
    Range,
    MaxOf,
    MinOf,
}

impl Kw {
    fn is_preprocessor(self) -> bool {
        matches!(self, Kw::Start | Kw::End | Kw::Step | Kw::Range | Kw::MaxOf | Kw::MinOf)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum T {
    Eof,
    /// A lexer error; the message is in `Lexer::error`.
    Error,
    Comma,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Colon,
    At,
    /// `=` (label matching).
    Eql,
    /// `=~`
    EqlRegex,
    /// `!~`
    NeqRegex,
    Op(BinaryOp),
    Agg(AggregateOp),
    Kw(Kw),
    Number,
    Duration,
    Str,
    Ident,
    MetricIdent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub t: T,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Statements,
    Braces,
    /// The first tokens after `[`: Prometheus' `lexDurationExpr`.
    DurationExpr,
}

#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    mode: Mode,
    paren_depth: i64,
    bracket_open: bool,
    got_colon: bool,
    got_duration: bool,
    finished: bool,
    /// Set with a `T::Error` token: (position, message).
    pub error: Option<(usize, String)>,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn is_alpha(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

fn is_alnum(b: u8) -> bool {
    is_alpha(b) || b.is_ascii_digit()
}

/// Length of the identifier (`[a-zA-Z0-9_:]*`) at the start of `input`.
fn word_len(input: &[u8]) -> usize {
    let r: IResult<&[u8], &[u8]> = take_while(|b: u8| is_alnum(b) || b == b':')(input);
    r.map_or(0, |(_, w)| w.len())
}

/// Length of the label name (`[a-zA-Z0-9_]*`) at the start of `input`.
fn label_word_len(input: &[u8]) -> usize {
    let r: IResult<&[u8], &[u8]> = take_while(is_alnum)(input);
    r.map_or(0, |(_, w)| w.len())
}

/// Go's `%q` for a rune.
pub(crate) fn quote_rune(c: char) -> String {
    match c {
        '\'' => "'\\''".to_string(),
        '\\' => "'\\\\'".to_string(),
        '\n' => "'\\n'".to_string(),
        '\r' => "'\\r'".to_string(),
        '\t' => "'\\t'".to_string(),
        c if c.is_control() => format!("'\\x{:02x}'", c as u32),
        c => format!("'{c}'"),
    }
}

/// Go's `%#U` for a rune: `U+0063 'c'`.
fn unicode_rune(c: char) -> String {
    format!("U+{:04X} '{c}'", c as u32)
}

pub(crate) fn keyword(w: &str) -> Option<T> {
    if w.len() > 12 {
        return None;
    }
    let mut buf = [0u8; 12];
    let lower = &mut buf[..w.len()];
    lower.copy_from_slice(w.as_bytes());
    lower.make_ascii_lowercase();
    Some(match &*lower {
        b"and" => T::Op(BinaryOp::And),
        b"or" => T::Op(BinaryOp::Or),
        b"unless" => T::Op(BinaryOp::Unless),
        b"atan2" => T::Op(BinaryOp::Atan2),
        b"sum" => T::Agg(AggregateOp::Sum),
        b"avg" => T::Agg(AggregateOp::Avg),
        b"count" => T::Agg(AggregateOp::Count),
        b"min" => T::Agg(AggregateOp::Min),
        b"max" => T::Agg(AggregateOp::Max),
        b"group" => T::Agg(AggregateOp::Group),
        b"stddev" => T::Agg(AggregateOp::Stddev),
        b"stdvar" => T::Agg(AggregateOp::Stdvar),
        b"topk" => T::Agg(AggregateOp::Topk),
        b"bottomk" => T::Agg(AggregateOp::Bottomk),
        b"count_values" => T::Agg(AggregateOp::CountValues),
        b"quantile" => T::Agg(AggregateOp::Quantile),
        b"limitk" => T::Agg(AggregateOp::Limitk),
        b"limit_ratio" => T::Agg(AggregateOp::LimitRatio),
        b"offset" => T::Kw(Kw::Offset),
        b"smoothed" => T::Kw(Kw::Smoothed),
        b"anchored" => T::Kw(Kw::Anchored),
        b"by" => T::Kw(Kw::By),
        b"without" => T::Kw(Kw::Without),
        b"on" => T::Kw(Kw::On),
        b"ignoring" => T::Kw(Kw::Ignoring),
        b"group_left" => T::Kw(Kw::GroupLeft),
        b"group_right" => T::Kw(Kw::GroupRight),
        b"fill" => T::Kw(Kw::Fill),
        b"fill_left" => T::Kw(Kw::FillLeft),
        b"fill_right" => T::Kw(Kw::FillRight),
        b"bool" => T::Kw(Kw::Bool),
        b"start" => T::Kw(Kw::Start),
        b"end" => T::Kw(Kw::End),
        b"step" => T::Kw(Kw::Step),
        b"range" => T::Kw(Kw::Range),
        b"max_of" => T::Kw(Kw::MaxOf),
        b"min_of" => T::Kw(Kw::MinOf),
        b"inf" | b"nan" => T::Number,
        _ => return None,
    })
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Lexer<'a> {
        Lexer {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            mode: Mode::Statements,
            paren_depth: 0,
            bracket_open: false,
            got_colon: false,
            got_duration: false,
            finished: false,
            error: None,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_char(&self) -> Option<char> {
        match self.bytes.get(self.pos) {
            Some(&b) if b < 0x80 => Some(b as char),
            Some(_) => self.src[self.pos..].chars().next(),
            None => None,
        }
    }

    fn fail(&mut self, at: usize, message: String) -> Token {
        self.finished = true;
        self.error = Some((at, message));
        Token { t: T::Error, start: at, end: self.src.len() }
    }

    fn tok(&self, t: T, start: usize) -> Token {
        Token { t, start, end: self.pos }
    }

    /// The next token, skipping spaces and comments.
    pub fn next_token(&mut self) -> Token {
        if self.finished {
            return match self.error {
                Some((at, _)) => Token { t: T::Error, start: at, end: self.src.len() },
                None => Token { t: T::Eof, start: self.src.len(), end: self.src.len() },
            };
        }
        loop {
            while self.peek().is_some_and(is_space) {
                self.pos += 1;
            }
            if self.peek() == Some(b'#') && self.mode != Mode::DurationExpr {
                while self.peek().is_some_and(|b| b != b'\n' && b != b'\r') {
                    self.pos += 1;
                }
                continue;
            }
            break;
        }
        match self.mode {
            Mode::Statements => self.lex_statements(),
            Mode::Braces => self.lex_braces(),
            Mode::DurationExpr => self.lex_duration_expr(),
        }
    }

    fn lex_statements(&mut self) -> Token {
        let start = self.pos;
        let Some(c) = self.peek_char() else {
            if self.paren_depth != 0 {
                return self.fail(start, "unclosed left parenthesis".into());
            }
            if self.bracket_open {
                return self.fail(start, "unclosed left bracket".into());
            }
            self.finished = true;
            return self.tok(T::Eof, start);
        };
        self.pos += c.len_utf8();
        let next = self.peek();
        let t = match c {
            ',' => T::Comma,
            '*' => T::Op(BinaryOp::Mul),
            '/' => T::Op(BinaryOp::Div),
            '%' => T::Op(BinaryOp::Mod),
            '+' => T::Op(BinaryOp::Add),
            '-' => T::Op(BinaryOp::Sub),
            '^' => T::Op(BinaryOp::Pow),
            '@' => T::At,
            '=' => match next {
                Some(b'=') => {
                    self.pos += 1;
                    T::Op(BinaryOp::Eql)
                }
                Some(b'~') => return self.fail(start, "unexpected character after '=': '~'".into()),
                _ => T::Eql,
            },
            '!' => {
                let n = self.peek_char();
                if n == Some('=') {
                    self.pos += 1;
                    T::Op(BinaryOp::Neq)
                } else {
                    let shown = n.map_or("U+FFFFFFFFFFFFFFFF".to_string(), quote_rune);
                    return self.fail(start, format!("unexpected character after '!': {shown}"));
                }
            }
            '<' | '>' => {
                let (with_eq, with_slash, plain) = if c == '<' {
                    (BinaryOp::Lte, BinaryOp::TrimUpper, BinaryOp::Lss)
                } else {
                    (BinaryOp::Gte, BinaryOp::TrimLower, BinaryOp::Gtr)
                };
                match next {
                    Some(b'=') => {
                        self.pos += 1;
                        T::Op(with_eq)
                    }
                    Some(b'/') => {
                        self.pos += 1;
                        T::Op(with_slash)
                    }
                    _ => T::Op(plain),
                }
            }
            '0'..='9' => {
                self.pos = start;
                return self.lex_number_or_duration(start);
            }
            '.' if next.is_some_and(|b| b.is_ascii_digit()) => {
                self.pos = start;
                return self.lex_number_or_duration(start);
            }
            '"' | '\'' => return self.lex_string(start, c),
            '`' => return self.lex_raw_string(start),
            c if c == ':' || (c.is_ascii() && is_alpha(c as u8)) => {
                if !self.bracket_open {
                    self.pos = start;
                    return self.lex_word(start);
                }
                if c == ':' {
                    if self.got_colon {
                        return self.fail(start, "unexpected colon ':'".into());
                    }
                    self.got_colon = true;
                    T::Colon
                } else {
                    self.pos = start;
                    if let Some(t) = self.duration_keyword() {
                        return t;
                    }
                    return self.fail(start, format!("unexpected character: {}, expected ':'", quote_rune(c)));
                }
            }
            '(' => {
                self.paren_depth += 1;
                T::LParen
            }
            ')' => {
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return self.fail(self.pos, "unexpected right parenthesis ')'".into());
                }
                T::RParen
            }
            '{' => {
                self.mode = Mode::Braces;
                T::LBrace
            }
            '[' => {
                if self.bracket_open {
                    return self.fail(self.pos, "unexpected left bracket '['".into());
                }
                self.got_colon = false;
                self.got_duration = false;
                self.bracket_open = true;
                self.mode = Mode::DurationExpr;
                T::LBracket
            }
            ']' => {
                if !self.bracket_open {
                    return self.fail(self.pos, "unexpected right bracket ']'".into());
                }
                self.bracket_open = false;
                T::RBracket
            }
            c => return self.fail(start, format!("unexpected character: {}", quote_rune(c))),
        };
        self.tok(t, start)
    }

    /// `step`, `range`, `max_of`, `min_of` inside brackets.
    fn duration_keyword(&mut self) -> Option<Token> {
        let start = self.pos;
        let len = self.bytes[start..].iter().take_while(|&&b| is_alpha(b)).count();
        let t = match keyword(&self.src[start..start + len]) {
            Some(T::Kw(k @ (Kw::Step | Kw::Range | Kw::MaxOf | Kw::MinOf))) => T::Kw(k),
            _ => return None,
        };
        self.pos += len;
        Some(self.tok(t, start))
    }

    fn lex_word(&mut self, start: usize) -> Token {
        self.pos = start + word_len(&self.bytes[start..]);
        let w = &self.src[start..self.pos];
        let t = match keyword(w) {
            Some(T::Kw(Kw::Fill | Kw::FillLeft | Kw::FillRight)) if !self.followed_by_paren() => T::Ident,
            Some(t) => t,
            None if w.contains(':') => T::MetricIdent,
            None => T::Ident,
        };
        self.tok(t, start)
    }

    fn followed_by_paren(&self) -> bool {
        self.bytes[self.pos..].iter().find(|&&b| !is_space(b)) == Some(&b'(')
    }

    fn lex_braces(&mut self) -> Token {
        let start = self.pos;
        let Some(c) = self.peek_char() else {
            return self.fail(start, "unexpected end of input inside braces".into());
        };
        self.pos += c.len_utf8();
        let t = match c {
            c if c.is_ascii() && is_alpha(c as u8) => {
                self.pos = start + label_word_len(&self.bytes[start..]);
                T::Ident
            }
            ',' => T::Comma,
            '"' | '\'' => return self.lex_string(start, c),
            '`' => return self.lex_raw_string(start),
            '=' => {
                if self.peek() == Some(b'~') {
                    self.pos += 1;
                    T::EqlRegex
                } else {
                    T::Eql
                }
            }
            '!' => match self.peek_char() {
                Some('~') => {
                    self.pos += 1;
                    T::NeqRegex
                }
                Some('=') => {
                    self.pos += 1;
                    T::Op(BinaryOp::Neq)
                }
                n => {
                    let shown = n.map_or("U+FFFFFFFFFFFFFFFF".to_string(), quote_rune);
                    return self.fail(start, format!("unexpected character after '!' inside braces: {shown}"));
                }
            },
            '{' => return self.fail(start, "unexpected left brace '{'".into()),
            '}' => {
                self.mode = Mode::Statements;
                T::RBrace
            }
            c => return self.fail(start, format!("unexpected character inside braces: {}", quote_rune(c))),
        };
        self.tok(t, start)
    }

    fn lex_duration_expr(&mut self) -> Token {
        let start = self.pos;
        let Some(c) = self.peek_char() else {
            return self.fail(start, "unexpected end of input in duration expression".into());
        };
        self.pos += c.len_utf8();
        let t = match c {
            ']' => {
                self.bracket_open = false;
                self.got_colon = false;
                self.mode = Mode::Statements;
                T::RBracket
            }
            ':' => {
                if !self.got_duration {
                    return self.fail(start, "unexpected colon before duration in duration expression".into());
                }
                if self.got_colon {
                    return self.fail(start, "unexpected repeated colon in duration expression".into());
                }
                self.got_colon = true;
                T::Colon
            }
            '(' => {
                self.paren_depth += 1;
                T::LParen
            }
            ')' => {
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return self.fail(self.pos, "unexpected right parenthesis ')'".into());
                }
                T::RParen
            }
            '+' => T::Op(BinaryOp::Add),
            '-' => T::Op(BinaryOp::Sub),
            '*' => T::Op(BinaryOp::Mul),
            '/' => T::Op(BinaryOp::Div),
            '%' => T::Op(BinaryOp::Mod),
            '^' => T::Op(BinaryOp::Pow),
            ',' => T::Comma,
            c if c.is_ascii_digit() || (c == '.' && self.peek().is_some_and(|b| b.is_ascii_digit())) => {
                self.pos = start;
                self.got_duration = true;
                self.mode = Mode::Statements;
                return self.lex_number_or_duration(start);
            }
            c if c.is_ascii() && is_alpha(c as u8) => {
                self.pos = start;
                if let Some(t) = self.duration_keyword() {
                    return t;
                }
                return self.fail(start, format!("unexpected character in duration expression: {}", quote_rune(c)));
            }
            c => return self.fail(start, format!("unexpected character in duration expression: {}", quote_rune(c))),
        };
        self.tok(t, start)
    }

    fn accept(&mut self, set: &[u8]) -> bool {
        match self.peek() {
            Some(b) if set.contains(&b) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    fn is(&self, set: &[u8]) -> bool {
        self.peek().is_some_and(|b| set.contains(&b))
    }

    /// Prometheus' `scanNumber`: moves `pos` past what it read, true if that is a number.
    fn scan_number(&mut self) -> bool {
        const DEC: &[u8] = b"0123456789";
        const HEX: &[u8] = b"0123456789abcdefABCDEF";
        let initial = self.pos;
        let mut digits = DEC;
        if self.accept(b"0") && self.accept(b"xX") {
            self.accept(b"_");
            digits = HEX;
        }
        self.accept(b".");
        self.accept(digits);
        let (mut dot, mut exp) = (false, false);
        while self.is(digits) || self.is(b"._eE") {
            if self.is(b".") && dot {
                self.accept(b".");
                return false;
            }
            if self.is(b"eE") && exp {
                self.accept(b"eE");
                return false;
            }
            if self.accept(b".") {
                dot = true;
                if self.accept(b"_.") || digits.len() > 10 {
                    return false;
                }
                continue;
            }
            if self.accept(b"eE") {
                exp = true;
                self.accept(b"+-");
                if self.accept(b"._eE") || self.peek().is_none() {
                    return false;
                }
                continue;
            }
            if self.accept(b"_") {
                if self.accept(b"._eE") || self.peek().is_none() {
                    return false;
                }
                continue;
            }
            while self.accept(digits) {}
        }
        if self.pos == initial {
            return false;
        }
        !self.peek().is_some_and(is_alnum)
    }

    fn accept_remaining_duration(&mut self) -> bool {
        if !self.accept(b"smhdwy") {
            return false;
        }
        self.accept(b"s");
        while self.accept(b"0123456789") {
            while self.accept(b"0123456789") {}
            if !self.accept(b"smhdw") {
                return false;
            }
            self.accept(b"s");
        }
        // Go reads one more rune here and backs up.
        match self.peek_char() {
            Some(c) if c.is_ascii() && is_alnum(c as u8) => {
                self.pos += 1;
                false
            }
            _ => true,
        }
    }

    fn lex_number_or_duration(&mut self, start: usize) -> Token {
        if self.scan_number() {
            return self.tok(T::Number, start);
        }
        if self.accept_remaining_duration() {
            return self.tok(T::Duration, start);
        }
        let text = &self.src[start..self.pos.min(self.src.len())];
        self.fail(start, format!("bad number or duration syntax: {}", go_quote(text)))
    }

    fn lex_string(&mut self, start: usize, quote: char) -> Token {
        loop {
            let Some(c) = self.peek_char() else {
                return self.fail(start, "unterminated quoted string".into());
            };
            self.pos += c.len_utf8();
            match c {
                '\\' => {
                    if let Err(message) = self.lex_escape(quote) {
                        return self.fail(start, message);
                    }
                }
                '\n' => return self.fail(start, "unterminated quoted string".into()),
                c if c == quote => return self.tok(T::Str, start),
                _ => {}
            }
        }
    }

    fn lex_escape(&mut self, quote: char) -> Result<(), String> {
        let Some(c) = self.peek_char() else {
            return Err("escape sequence not terminated".into());
        };
        self.pos += c.len_utf8();
        let (n, base, max) = match c {
            'a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\' => return Ok(()),
            c if c == quote => return Ok(()),
            '0'..='7' => {
                self.pos -= 1;
                (3, 8, 255)
            }
            'x' => (2, 16, 255),
            'u' => (4, 16, 0x10FFFF),
            'U' => (8, 16, 0x10FFFF),
            c => return Err(format!("unknown escape sequence {}", unicode_rune(c))),
        };
        let mut x: u32 = 0;
        for _ in 0..n {
            let Some(d) = self.peek_char() else {
                return Err("escape sequence not terminated".into());
            };
            let v = d.to_digit(16).filter(|&v| v < base);
            let Some(v) = v else {
                return Err(format!("illegal character {} in escape sequence", unicode_rune(d)));
            };
            self.pos += d.len_utf8();
            x = x * base + v;
        }
        if x > max || (0xD800..0xE000).contains(&x) {
            return Err("escape sequence is an invalid Unicode code point".into());
        }
        Ok(())
    }

    fn lex_raw_string(&mut self, start: usize) -> Token {
        match self.src[self.pos..].find('`') {
            Some(i) => {
                self.pos += i + 1;
                self.tok(T::Str, start)
            }
            None => self.fail(start, "unterminated raw string".into()),
        }
    }

    /// Describes a token as Prometheus' parser does in "unexpected ..." messages.
    pub fn describe(&self, tok: Token) -> String {
        let text = &self.src[tok.start.min(self.src.len())..tok.end.min(self.src.len())];
        match tok.t {
            T::Eof => "end of input".into(),
            T::Error => self.error.as_ref().map(|e| e.1.clone()).unwrap_or_default(),
            T::Op(_) | T::At => format!("<op:{text}>"),
            T::Agg(_) => format!("<aggr:{text}>"),
            T::Kw(k) if !k.is_preprocessor() => format!("<{text}>"),
            T::Kw(_) | T::Comma | T::LParen | T::RParen | T::LBrace | T::RBrace | T::LBracket | T::RBracket => {
                go_quote(text)
            }
            T::Colon | T::Eql | T::EqlRegex | T::NeqRegex => go_quote(text),
            T::Number => format!("number {}", short_quote(text)),
            T::Duration => format!("duration {}", short_quote(text)),
            T::Str => format!("string {}", short_quote(text)),
            T::Ident => format!("identifier {}", go_quote(text)),
            T::MetricIdent => format!("metric identifier {}", go_quote(text)),
        }
    }
}

/// Go's `%.10q...` for long token texts, `%q` otherwise.
fn short_quote(text: &str) -> String {
    if text.len() > 10 {
        let cut: String = text.chars().take(10).collect();
        format!("{}...", go_quote(&cut))
    } else {
        go_quote(text)
    }
}

pub(crate) use sextant_model::{go_quote, write_go_quoted};

/// Unquotes a string token that the lexer accepted (escapes are valid). Fails only when
/// byte escapes (`\xc5`, `\305`) make the result invalid UTF-8.
pub(crate) fn unquote(token: &str) -> Result<String, ()> {
    sextant_model::go_unquote(token).ok_or(())
}

/// Parses a Prometheus duration (`1h30m`, `5m`, `0`) into milliseconds.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    let invalid = || format!("not a valid duration string: {}", go_quote(s));
    let mut rest = s;
    let mut total: i64 = 0;
    let mut last_rank = usize::MAX;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits: IResult<&str, &str> = nom::character::complete::digit1(rest);
        let Ok((after, digits)) = digits else { return Err(invalid()) };
        let (after, unit) = take_while::<_, &str, nom::error::Error<&str>>(|c: char| c.is_ascii_alphabetic())(after)
            .map_err(|_| invalid())?;
        let (rank, mult) = match unit {
            "y" => (0, 365 * 24 * 3_600_000),
            "w" => (1, 7 * 24 * 3_600_000),
            "d" => (2, 24 * 3_600_000),
            "h" => (3, 3_600_000),
            "m" => (4, 60_000),
            "s" => (5, 1000),
            "ms" => (6, 1),
            "" => return Err(invalid()),
            u => return Err(format!("unknown unit {} in duration {}", go_quote(u), go_quote(s))),
        };
        if last_rank != usize::MAX && rank <= last_rank {
            return Err(invalid());
        }
        last_rank = rank;
        let n: i64 = digits.parse().map_err(|_| "duration out of range".to_string())?;
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .filter(|v| *v <= i64::MAX / 1_000_000)
            .ok_or_else(|| "duration out of range".to_string())?;
        rest = after;
    }
    Ok(total)
}

/// Parses a number token like Go's `ParseInt(s, 0, 64)` falling back to `ParseFloat`.
pub(crate) fn parse_number(s: &str) -> Result<f64, String> {
    let b = s.as_bytes();
    // Fast path: plain decimal integers without a leading zero.
    if !b.is_empty() && b.len() <= 15 && b[0] != b'0' && b.iter().all(u8::is_ascii_digit) {
        return Ok(b.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')) as f64);
    }
    if s.eq_ignore_ascii_case("inf") || s.eq_ignore_ascii_case("+inf") {
        return Ok(f64::INFINITY);
    }
    if s.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    let clean: std::borrow::Cow<'_, str> =
        if s.contains('_') { s.chars().filter(|&c| c != '_').collect::<String>().into() } else { s.into() };
    let underscores_ok = !s.contains('_') || underscores_valid(s);
    if underscores_ok {
        if let Some(hex) = clean.strip_prefix("0x").or_else(|| clean.strip_prefix("0X")) {
            if let Ok(v) = i64::from_str_radix(hex, 16) {
                return Ok(v as f64);
            }
            return Err(format!("error parsing number: strconv.ParseFloat: parsing {}: invalid syntax", go_quote(s)));
        }
        if clean.len() > 1 && clean.starts_with('0') && clean.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(v) = i64::from_str_radix(&clean[1..], 8) {
                return Ok(v as f64);
            }
        }
        if clean.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(v) = clean.parse::<i64>() {
                return Ok(v as f64);
            }
        }
        if let Ok(v) = clean.parse::<f64>() {
            if v.is_infinite() {
                return Err(format!(
                    "error parsing number: strconv.ParseFloat: parsing {}: value out of range",
                    go_quote(s)
                ));
            }
            return Ok(v);
        }
    }
    Err(format!("error parsing number: strconv.ParseFloat: parsing {}: invalid syntax", go_quote(s)))
}

/// Go allows `_` only between digits (or after a base prefix).
fn underscores_valid(s: &str) -> bool {
    let b = s.as_bytes();
    let hex = b.len() > 1 && b[0] == b'0' && (b[1] == b'x' || b[1] == b'X');
    let is_digit = |c: u8| if hex { c.is_ascii_hexdigit() } else { c.is_ascii_digit() };
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let prev_ok = i > 0 && (is_digit(b[i - 1]) || (hex && i == 2));
            let next_ok = i + 1 < b.len() && is_digit(b[i + 1]);
            if !prev_ok || !next_ok {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<T> {
        let mut l = Lexer::new(src);
        let mut out = vec![];
        loop {
            let t = l.next_token();
            out.push(t.t);
            if matches!(t.t, T::Eof | T::Error) {
                return out;
            }
        }
    }

    #[test]
    fn tokens() {
        use BinaryOp::*;
        assert_eq!(kinds("a+1"), [T::Ident, T::Op(Add), T::Number, T::Eof]);
        assert_eq!(kinds("x{a=~'b'}"), [T::Ident, T::LBrace, T::Ident, T::EqlRegex, T::Str, T::RBrace, T::Eof]);
        assert_eq!(kinds("x[5m:1m]"), [T::Ident, T::LBracket, T::Duration, T::Colon, T::Duration, T::RBracket, T::Eof]);
        assert_eq!(kinds("a </ b"), [T::Ident, T::Op(TrimUpper), T::Ident, T::Eof]);
        assert_eq!(
            kinds("fill + fill(1)"),
            [T::Ident, T::Op(Add), T::Kw(Kw::Fill), T::LParen, T::Number, T::RParen, T::Eof]
        );
        assert_eq!(kinds("Inf # c\n"), [T::Number, T::Eof]);
        assert_eq!(kinds("a:b"), [T::MetricIdent, T::Eof]);
    }

    #[test]
    fn numbers_and_durations() {
        for (s, v) in
            [("1", 1.0), ("0x1F", 31.0), ("1e3", 1000.0), ("1_000", 1000.0), (".5", 0.5), ("010", 8.0), ("08", 8.0)]
        {
            assert_eq!(parse_number(s), Ok(v), "{s}");
        }
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("1m30s500ms"), Ok(90_500));
        assert_eq!(parse_duration("5m1h"), Err("not a valid duration string: \"5m1h\"".into()));
        assert_eq!(parse_duration("5y1hs"), Err("unknown unit \"hs\" in duration \"5y1hs\"".into()));
    }

    #[test]
    fn unquoting() {
        assert_eq!(unquote(r#""a\nb\x41\101\u00e9""#), Ok("a\nbAAé".into()));
        assert_eq!(unquote("`a\\n`"), Ok("a\\n".into()));
        assert_eq!(unquote(r#"'it\'s'"#), Ok("it's".into()));
        assert_eq!(unquote(r#""a\xc5z""#), Err(()));
    }
}

//! Alertmanager's label matchers and its two matcher parsers.
//!
//! Alertmanager's regexes are Go regexps anchored as `^(?:re)$` *without* the `s` flag, so
//! `.` does not match a newline; `sextant_model::Matcher` follows Prometheus 3 (`.` matches
//! newlines), hence this separate type.

use std::cmp::Ordering;
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;
use sextant_model::{is_valid_legacy_label_name, Labels};

use super::gostr;
use crate::Error;

/// The operator of a [`Matcher`], ordered as Alertmanager sorts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regexp,
    NotRegexp,
}

impl MatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regexp => "=~",
            MatchType::NotRegexp => "!~",
        }
    }
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Alertmanager label matcher. A label the alert lacks has the value `""`.
#[derive(Clone)]
pub struct Matcher {
    pub kind: MatchType,
    pub name: String,
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// A matcher; fails only when a regex does not compile (anchored as `^(?:value)$`).
    pub fn new(kind: MatchType, name: impl Into<String>, value: impl Into<String>) -> Result<Matcher, Error> {
        let (name, value) = (name.into(), value.into());
        let regex = match kind {
            MatchType::Regexp | MatchType::NotRegexp => Some(compile_anchored(&value)?),
            MatchType::Equal | MatchType::NotEqual => None,
        };
        Ok(Matcher { kind, name, value, regex })
    }

    /// True if a label with this value (`""` when absent) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match (self.kind, &self.regex) {
            (MatchType::Equal, _) => value == self.value,
            (MatchType::NotEqual, _) => value != self.value,
            (MatchType::Regexp, Some(re)) => re.is_match(value),
            (MatchType::NotRegexp, Some(re)) => !re.is_match(value),
            (MatchType::Regexp | MatchType::NotRegexp, None) => false,
        }
    }

    /// True if the alert with `labels` satisfies the matcher.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

/// Go-compatible anchoring; the `regex` crate's syntax is RE2's, as Go's is, after
/// [`go_to_rust_regex`] has fixed the few differences.
pub(crate) fn compile_anchored(re: &str) -> Result<Regex, Error> {
    regex::RegexBuilder::new(&format!("^(?:{})$", go_to_rust_regex(re)))
        .size_limit(1 << 22)
        .build()
        .map_err(|e| Error::matcher(format!("error parsing regexp: {}", first_line(&e.to_string()))))
}

/// Rewrites a Go regexp so the `regex` crate gives it Go's meaning: Perl classes (`\d`,
/// `\w`, `\s`) and word boundaries are ASCII-only in Go; `\Q...\E` quotes; inside a
/// bracket class a `[` that does not open `[:name:]` is literal, and `&&`/`~~` are not set
/// operations. Everything else is passed through (an invalid pattern stays invalid).
fn go_to_rust_regex(re: &str) -> std::borrow::Cow<'_, str> {
    if !re.contains(['\\', '[']) {
        return std::borrow::Cow::Borrowed(re);
    }
    let chars: Vec<char> = re.chars().collect();
    let mut out = String::with_capacity(re.len() + 8);
    let mut in_class = false;
    let mut class_start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                let e = chars[i + 1];
                i += 2;
                let perl = match (e, in_class) {
                    ('d', false) => Some("[0-9]"),
                    ('D', _) => Some("[^0-9]"),
                    ('w', false) => Some("[0-9A-Za-z_]"),
                    ('W', _) => Some("[^0-9A-Za-z_]"),
                    ('s', false) => Some("[\\t\\n\\x0C\\r ]"),
                    ('S', _) => Some("[^\\t\\n\\x0C\\r ]"),
                    ('d', true) => Some("0-9"),
                    ('w', true) => Some("0-9A-Za-z_"),
                    ('s', true) => Some("\\t\\n\\x0C\\r "),
                    ('b', false) => Some("(?-u:\\b)"),
                    ('B', false) => Some("(?-u:\\B)"),
                    _ => None,
                };
                if let Some(p) = perl {
                    out.push_str(p);
                } else if e == 'Q' && !in_class {
                    let mut quoted = String::new();
                    while i < chars.len() && !(chars[i] == '\\' && chars.get(i + 1) == Some(&'E')) {
                        quoted.push(chars[i]);
                        i += 1;
                    }
                    i += 2;
                    out.push_str(&regex::escape(&quoted));
                } else {
                    out.push('\\');
                    out.push(e);
                }
                continue;
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                class_start = i;
                continue;
            }
            '[' if chars.get(i + 1) == Some(&':') => {
                // [:alpha:] and friends, copied whole.
                let end = (i + 2..chars.len().saturating_sub(1)).find(|&j| chars[j] == ':' && chars[j + 1] == ']');
                match end {
                    Some(j) => {
                        out.extend(&chars[i..j + 2]);
                        i = j + 2;
                    }
                    None => {
                        out.push_str("\\[");
                        i += 1;
                    }
                }
                continue;
            }
            '[' | '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
                i += 1;
                continue;
            }
            ']' if in_class && i > class_start => in_class = false,
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

fn first_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s).trim_start_matches("error: ")
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.kind == other.kind && self.name == other.name && self.value == other.value
    }
}

impl Eq for Matcher {}

impl PartialOrd for Matcher {
    fn partial_cmp(&self, other: &Matcher) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Alertmanager's sort order: name, then value, then operator.
impl Ord for Matcher {
    fn cmp(&self, other: &Matcher) -> Ordering {
        (&self.name, &self.value, self.kind).cmp(&(&other.name, &other.value, other.kind))
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `name="value"` as Alertmanager prints it (`Matcher.String()`); names with reserved
/// characters are Go-quoted.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.chars().any(is_reserved) {
            write!(f, "{}{}{}", gostr::quote(&self.name), self.kind, gostr::quote(&self.value))
        } else {
            write!(f, "{}{}\"{}\"", self.name, self.kind, gostr::open_metrics_escape(&self.value))
        }
    }
}

/// A conjunction of matchers, printed `{a="1",b=~"x"}` as in route keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    /// True if every matcher accepts `labels`.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|m| m.matches_labels(labels))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Matcher> {
        self.0.iter()
    }
}

impl fmt::Display for Matchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

/// Which matcher parser to use, as Alertmanager's `--enable-feature` flags select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParseMode {
    /// 0.27+ default: the UTF-8 parser, falling back to the classic parser when the UTF-8
    /// parser fails, and taking the classic result when both succeed but disagree.
    #[default]
    Fallback,
    /// `classic-mode`: the 0.25 parser only.
    Classic,
    /// `utf8-strict-mode`: the UTF-8 parser only.
    Utf8Strict,
}

/// Parses a matcher list such as `{env="prod", severity=~"crit|page"}` (braces optional).
pub fn parse_matchers(input: &str, mode: ParseMode) -> Result<Vec<Matcher>, Error> {
    match mode {
        ParseMode::Classic => classic_matchers(input),
        ParseMode::Utf8Strict => utf8_matchers(input),
        ParseMode::Fallback => {
            let utf8 = utf8_matchers(input);
            // Compiling regexes dominates: when the classic parser reads the same matchers,
            // its regexes compile exactly as the UTF-8 parser's did.
            if let Ok(u) = &utf8 {
                let raw: Result<Vec<RawMatcher>, Error> =
                    classic_tokens(input).iter().map(|t| classic_syntax(t)).collect();
                if raw.is_ok_and(|raw| raw.len() == u.len() && raw.iter().zip(u).all(|(r, m)| same(r, m))) {
                    return utf8;
                }
            }
            let classic = classic_matchers(input);
            match (utf8, classic) {
                (Err(_), Ok(c)) => Ok(c),
                (Err(_), Err(c)) => Err(c),
                (Ok(u), Ok(c)) => Ok(if u == c { u } else { c }),
                (Ok(u), Err(_)) => Ok(u),
            }
        }
    }
}

fn same(raw: &RawMatcher, m: &Matcher) -> bool {
    raw.0 == m.kind && raw.1 == m.name && raw.2 == m.value
}

/// Parses exactly one matcher (as silences and `amtool` arguments do).
pub fn parse_matcher(input: &str, mode: ParseMode) -> Result<Matcher, Error> {
    let braces = || Error::matcher(format!("unexpected open or close brace: {input}"));
    match mode {
        ParseMode::Classic => classic_matcher(input),
        ParseMode::Utf8Strict => {
            if input.starts_with('{') || input.ends_with('}') {
                return Err(braces());
            }
            utf8_matcher(input)
        }
        ParseMode::Fallback => {
            if input.starts_with('{') || input.ends_with('}') {
                return Err(braces());
            }
            match (utf8_matcher(input), classic_matcher(input)) {
                (Err(_), Ok(c)) => Ok(c),
                (Err(_), Err(c)) => Err(c),
                (Ok(u), Ok(c)) => Ok(if u == c { u } else { c }),
                (Ok(u), Err(_)) => Ok(u),
            }
        }
    }
}

/// The UTF-8 parser on its own (0.27+), without the brace check of the single-matcher API.
pub fn utf8_matcher(input: &str) -> Result<Matcher, Error> {
    let mut ms = utf8_matchers(input)?;
    match ms.len() {
        1 => Ok(ms.remove(0)),
        0 => Err(Error::matcher("no matchers")),
        n => Err(Error::matcher(format!("expected 1 matcher, found {n}"))),
    }
}

// ---------------------------------------------------------------------------------------
// The classic parser (pkg/labels/parse.go, the only one in 0.25).

/// The 0.25 parser of a matcher list: strips one `{` and one `}`, splits on commas outside
/// double quotes.
pub fn classic_matchers(input: &str) -> Result<Vec<Matcher>, Error> {
    classic_tokens(input).iter().map(|t| classic_matcher(t)).collect()
}

fn classic_tokens(input: &str) -> Vec<String> {
    let s = input.strip_prefix('{').unwrap_or(input);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let mut token = String::new();
    let (mut inside_quotes, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            ',' if !inside_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            ',' => {}
            '"' => {
                if !escaped {
                    inside_quotes = !inside_quotes;
                } else {
                    escaped = false;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    let last = token.trim();
    if !last.is_empty() {
        tokens.push(last.to_string());
    }
    tokens
}

fn classic_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^[\t\n\x0C\r ]*([a-zA-Z_:][a-zA-Z0-9_:]*)[\t\n\x0C\r ]*(=~|=|!=|!~)[\t\n\x0C\r ]*((?s).*?)[\t\n\x0C\r ]*$")
            .expect("static regex compiles")
    })
}

/// The 0.25 parser of one matcher: `name op value`, the value optionally double-quoted.
pub fn classic_matcher(input: &str) -> Result<Matcher, Error> {
    let (kind, name, value) = classic_syntax(input)?;
    Matcher::new(kind, name, value)
}

type RawMatcher = (MatchType, String, String);

/// The classic parser without compiling regexes.
fn classic_syntax(input: &str) -> Result<RawMatcher, Error> {
    let Some(caps) = classic_regex().captures(input) else {
        return Err(Error::matcher(format!("bad matcher format: {input}")));
    };
    let (name, op, raw) = (&caps[1], &caps[2], &caps[3]);
    let (body, mut expect_quote) = match raw.strip_prefix('"') {
        Some(rest) => (rest, true),
        None => (raw, false),
    };
    let unescaped_quote = || Error::matcher(format!("matcher value contains unescaped double quote: {raw}"));
    let mut value = String::with_capacity(body.len());
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                _ => {
                    value.push('\\');
                    value.push(c);
                }
            }
            continue;
        }
        match c {
            '\\' if i + 1 < body.len() => escaped = true,
            '\\' => value.push('\\'),
            '"' => {
                if !expect_quote || i + 1 < body.len() {
                    return Err(unescaped_quote());
                }
                expect_quote = false;
            }
            c => value.push(c),
        }
    }
    if expect_quote {
        return Err(unescaped_quote());
    }
    let kind = match op {
        "=" => MatchType::Equal,
        "!=" => MatchType::NotEqual,
        "=~" => MatchType::Regexp,
        _ => MatchType::NotRegexp,
    };
    Ok((kind, name.to_string(), value))
}

// ---------------------------------------------------------------------------------------
// The UTF-8 parser (matcher/parse, 0.27+): a lexer and a small state machine. Error
// messages carry rune columns `start:end` exactly as Alertmanager prints them.

fn is_reserved(c: char) -> bool {
    c.is_whitespace() || "{}!=~,\\\"'`".contains(c)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Eof,
    Open,
    Close,
    Comma,
    Equals,
    NotEquals,
    Matches,
    NotMatches,
    Quoted,
    Unquoted,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Tok,
    value: &'a str,
    col_start: usize,
    col_end: usize,
}

const EOF_TOKEN: Token<'static> = Token { kind: Tok::Eof, value: "", col_start: 0, col_end: 0 };

#[derive(Clone)]
struct Lexer<'a> {
    input: &'a str,
    err: Option<String>,
    start: usize,
    pos: usize,
    width: usize,
    column: usize,
    cols: usize,
}

impl<'a> Lexer<'a> {
    fn next(&mut self) -> Option<char> {
        let c = self.input[self.pos..].chars().next();
        match c {
            None => self.width = 0,
            Some(c) => {
                self.width = c.len_utf8();
                self.pos += self.width;
                self.cols += 1;
            }
        }
        c
    }

    fn rewind(&mut self) {
        self.pos -= self.width;
        if self.width > 0 {
            self.cols -= 1;
        }
    }

    fn skip(&mut self) {
        self.start = self.pos;
        self.column = self.cols;
    }

    fn emit(&mut self, kind: Tok) -> Token<'a> {
        let t = Token { kind, value: &self.input[self.start..self.pos], col_start: self.column, col_end: self.cols };
        self.start = self.pos;
        self.column = self.cols;
        t
    }

    fn accept(&mut self, valid: char) -> bool {
        if self.next() == Some(valid) {
            return true;
        }
        self.rewind();
        false
    }

    fn invalid_input(&self) -> String {
        format!("{}:{}: {}: invalid input", self.column, self.cols, &self.input[self.start..self.pos])
    }

    fn expected(&self, expected: &str) -> String {
        if self.pos >= self.input.len() {
            format!("{}:{}: unexpected end of input, expected one of '{expected}'", self.column, self.cols)
        } else {
            format!(
                "{}:{}: {}: expected one of '{expected}'",
                self.column,
                self.cols,
                &self.input[self.start..self.pos]
            )
        }
    }

    fn scan(&mut self) -> Result<Token<'a>, String> {
        if let Some(e) = &self.err {
            return Err(e.clone());
        }
        let result = self.scan_inner();
        if let Err(e) = &result {
            self.err = Some(e.clone());
        }
        result
    }

    fn scan_inner(&mut self) -> Result<Token<'a>, String> {
        while let Some(c) = self.next() {
            match c {
                '{' => return Ok(self.emit(Tok::Open)),
                '}' => return Ok(self.emit(Tok::Close)),
                ',' => return Ok(self.emit(Tok::Comma)),
                '=' | '!' => {
                    self.rewind();
                    return self.scan_operator();
                }
                '"' => {
                    self.rewind();
                    return self.scan_quoted();
                }
                c if !is_reserved(c) => {
                    self.rewind();
                    while let Some(c) = self.next() {
                        if is_reserved(c) {
                            self.rewind();
                            break;
                        }
                    }
                    return Ok(self.emit(Tok::Unquoted));
                }
                c if c.is_whitespace() => self.skip(),
                _ => return Err(self.invalid_input()),
            }
        }
        Ok(EOF_TOKEN)
    }

    fn scan_operator(&mut self) -> Result<Token<'a>, String> {
        if self.accept('!') {
            if self.accept('=') {
                return Ok(self.emit(Tok::NotEquals));
            }
            if self.accept('~') {
                return Ok(self.emit(Tok::NotMatches));
            }
            return Err(self.expected("=~"));
        }
        if self.accept('=') {
            if self.accept('~') {
                return Ok(self.emit(Tok::Matches));
            }
            return Ok(self.emit(Tok::Equals));
        }
        Err(self.expected("!="))
    }

    fn scan_quoted(&mut self) -> Result<Token<'a>, String> {
        if !self.accept('"') {
            return Err(self.expected("\""));
        }
        let mut escaped = false;
        while let Some(c) = self.next() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                self.rewind();
                break;
            }
        }
        if !self.accept('"') {
            return Err(format!(
                "{}:{}: {}: missing end \"",
                self.column,
                self.cols,
                &self.input[self.start..self.pos]
            ));
        }
        Ok(self.emit(Tok::Quoted))
    }

    fn peek(&mut self) -> Result<Token<'a>, String> {
        let (start, pos, width, column, cols) = (self.start, self.pos, self.width, self.column, self.cols);
        let t = self.scan();
        (self.start, self.pos, self.width, self.column, self.cols) = (start, pos, width, column, cols);
        t
    }
}

enum Fail {
    Eof,
    Msg(String),
}

impl Fail {
    fn wrap(self, what: &str) -> String {
        match self {
            Fail::Eof => format!("end of input: {what}"),
            Fail::Msg(m) => format!("{m}: {what}"),
        }
    }
}

fn expect_peek<'a>(l: &mut Lexer<'a>, kinds: &[Tok]) -> Result<Token<'a>, Fail> {
    let t = l.peek().map_err(Fail::Msg)?;
    if t.kind == Tok::Eof {
        return Err(Fail::Eof);
    }
    if !kinds.contains(&t.kind) {
        return Err(Fail::Msg(format!("{}:{}: unexpected {}", t.col_start, t.col_end, t.value)));
    }
    Ok(t)
}

fn expect<'a>(l: &mut Lexer<'a>, kinds: &[Tok]) -> Result<Token<'a>, Fail> {
    let t = expect_peek(l, kinds)?;
    let _ = l.scan();
    Ok(t)
}

fn unquote(t: &Token<'_>) -> Result<String, String> {
    match t.kind {
        Tok::Quoted => {
            gostr::unquote(t.value).ok_or_else(|| format!("{}:{}: {}: invalid input", t.col_start, t.col_end, t.value))
        }
        _ => Ok(t.value.to_string()),
    }
}

#[derive(Clone, Copy)]
enum State {
    OpenBrace,
    CloseBrace,
    Matcher,
    EndOfMatcher,
    Comma,
    Eof,
}

/// The UTF-8 parser (0.27+) of a matcher list: quoted or unquoted names and values, Go
/// string escapes inside quotes, balanced braces, one trailing comma allowed.
pub fn utf8_matchers(input: &str) -> Result<Vec<Matcher>, Error> {
    utf8_parse(input).map_err(Error::matcher)
}

fn utf8_parse(input: &str) -> Result<Vec<Matcher>, String> {
    let mut l = Lexer { input, err: None, start: 0, pos: 0, width: 0, column: 0, cols: 0 };
    let mut matchers = Vec::new();
    let mut has_open_brace = false;
    let mut state = State::OpenBrace;
    loop {
        state = match state {
            State::OpenBrace => {
                let t = l.peek()?;
                if t.kind == Tok::Eof {
                    State::Eof
                } else {
                    if t.kind == Tok::Open {
                        has_open_brace = true;
                        l.scan()?;
                    }
                    let t = l.peek()?;
                    match t.kind {
                        Tok::Eof | Tok::Close => State::CloseBrace,
                        _ => State::Matcher,
                    }
                }
            }
            State::CloseBrace => {
                let r = expect(&mut l, &[Tok::Close]);
                if has_open_brace {
                    if let Err(e) = r {
                        return Err(format!("0:{}: {}", l.cols, e.wrap("expected close brace")));
                    }
                } else if r.is_ok() {
                    return Err(format!("0:{}: }}: expected opening brace", l.cols));
                }
                State::Eof
            }
            State::Matcher => {
                let t = expect(&mut l, &[Tok::Quoted, Tok::Unquoted]).map_err(|e| e.wrap("expected label name"))?;
                let name = unquote(&t)?;
                let t = expect(&mut l, &[Tok::Equals, Tok::NotEquals, Tok::Matches, Tok::NotMatches])
                    .map_err(|e| e.wrap("expected an operator such as '=', '!=', '=~' or '!~'"))?;
                let kind = match t.kind {
                    Tok::Equals => MatchType::Equal,
                    Tok::NotEquals => MatchType::NotEqual,
                    Tok::Matches => MatchType::Regexp,
                    _ => MatchType::NotRegexp,
                };
                let t = expect(&mut l, &[Tok::Unquoted, Tok::Quoted]).map_err(|e| e.wrap("expected label value"))?;
                let value = unquote(&t)?;
                let m = Matcher::new(kind, name, value)
                    .map_err(|e| format!("failed to create matcher: {}", e.message()))?;
                matchers.push(m);
                State::EndOfMatcher
            }
            State::EndOfMatcher => match expect_peek(&mut l, &[Tok::Comma, Tok::Close]) {
                Err(Fail::Eof) => State::CloseBrace,
                Err(e) => return Err(e.wrap("expected a comma or close brace")),
                Ok(t) if t.kind == Tok::Comma => State::Comma,
                Ok(_) => State::CloseBrace,
            },
            State::Comma => {
                expect(&mut l, &[Tok::Comma]).map_err(|e| e.wrap("expected a comma"))?;
                match expect_peek(&mut l, &[Tok::Close, Tok::Unquoted, Tok::Quoted]) {
                    Err(Fail::Eof) => State::CloseBrace,
                    Err(e) => return Err(e.wrap("expected a matcher or close brace after comma")),
                    Ok(t) if t.kind == Tok::Close => State::CloseBrace,
                    Ok(_) => State::Matcher,
                }
            }
            State::Eof => {
                let t = l.scan().map_err(|e| format!("{e}: expected end of input"))?;
                if t.kind != Tok::Eof {
                    return Err(format!("{}:{}: {}: expected end of input", t.col_start, t.col_end, t.value));
                }
                return Ok(matchers);
            }
        };
    }
}

/// True for a label name the classic (0.25) rules accept, `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn is_valid_label_name(name: &str) -> bool {
    is_valid_legacy_label_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(r: Result<Vec<Matcher>, Error>) -> String {
        match r {
            Ok(ms) => ms.iter().map(|m| format!("{}{}{:?}", m.name, m.kind, m.value)).collect::<Vec<_>>().join(" "),
            Err(e) => format!("error: {}", e.message()),
        }
    }

    #[test]
    fn utf8_parser() {
        let check = |input: &str, expected: &str| assert_eq!(show(utf8_matchers(input)), expected, "{input}");
        check("", "");
        check("{}", "");
        check("{foo=bar,}", "foo=\"bar\"");
        check(r#"{"foo bar"=~"a\\d"}"#, r#"foo bar=~"a\\d""#);
        check("{", "error: 0:1: end of input: expected close brace");
        check("foo=bar}", "error: 0:8: }: expected opening brace");
        check("{foo=:\"bar\"}", "error: 6:11: unexpected \"bar\": expected a comma or close brace");
        check("{foo=bar\\n}", "error: 8:9: \\: invalid input: expected a comma or close brace");
        check("foo!bar", "error: 3:4: !: expected one of '=~': expected an operator such as '=', '!=', '=~' or '!~'");
        check("foo=\"bar", "error: 4:8: \"bar: missing end \": expected label value");
        check("foo=~\"(\"", "error: failed to create matcher: error parsing regexp: unclosed group");
    }

    #[test]
    fn classic_parser() {
        let check = |input: &str, expected: &str| assert_eq!(show(classic_matchers(input)), expected, "{input}");
        check("{foo=bar", "foo=\"bar\"");
        check("foo=bar}", "foo=\"bar\"");
        check(r#"foo="a,b", x!~"y""#, r#"foo="a,b" x!~"y""#);
        check("foo=bar\\n", "foo=\"bar\\n\"");
        check(",", "error: bad matcher format: ");
        check(r#"foo=:"bar""#, "error: matcher value contains unescaped double quote: :\"bar\"");
        check(r#"foo="bar"#, "error: matcher value contains unescaped double quote: \"bar");
        check("foo= ", "foo=\"\"");
        check("foo=\"\\\\\"", "foo=\"\\\\\"");
    }

    #[test]
    fn fallback_prefers_classic_on_disagreement() {
        let ms = parse_matchers(r#"{foo="bar\w"}"#, ParseMode::Fallback).unwrap();
        assert_eq!(ms[0].value, "bar\\w");
        let ms = parse_matchers(r#"{"foo"="bar"}"#, ParseMode::Fallback).unwrap();
        assert_eq!(ms[0].name, "foo");
        assert!(parse_matchers(r#"{"foo"="bar"}"#, ParseMode::Classic).is_err());
        assert!(parse_matcher("{foo=bar}", ParseMode::Fallback).is_err());
    }

    #[test]
    fn dot_does_not_match_newline() {
        let m = Matcher::new(MatchType::Regexp, "a", "b.*").unwrap();
        assert!(m.matches("bxx"));
        assert!(!m.matches("b\nx"));
        assert!(!m.matches("xb"));
    }

    #[test]
    fn regexes_mean_what_go_means() {
        let check = |re: &str, input: &str, expected: bool| {
            let m = Matcher::new(MatchType::Regexp, "a", re).unwrap();
            assert_eq!(m.matches(input), expected, "{re} on {input:?}");
        };
        check(r"\d+", "42", true);
        check(r"\d", "٣", false);
        check(r"\D", "٣", true);
        check(r"[\d.]+", "1.5", true);
        check(r"[\d]", "٣", false);
        check(r"\w+", "é", false);
        check(r"\s", "\u{a0}", false);
        check(r"x\b.*", "x.", true);
        check(r"\Qa.b\E", "a.b", true);
        check(r"\Qa.b\E", "axb", false);
        check(r"[a[]+", "a[", true);
        check(r"[a&&b]", "&", true);
        check(r"[[:alpha:]]+", "abc", true);
        check(r"[^\]a]", "b", true);
        check(r"[]a]", "]", true);
        check(r"\\d", "\\d", true);
        assert!(Matcher::new(MatchType::Regexp, "a", "(").is_err());
    }

    #[test]
    fn prints_like_alertmanager() {
        let ms = Matchers(vec![
            Matcher::new(MatchType::Equal, "a", "x\"\n\\").unwrap(),
            Matcher::new(MatchType::NotRegexp, "foo bar", "é").unwrap(),
        ]);
        assert_eq!(ms.to_string(), r#"{a="x\"\n\\","foo bar"!~"é"}"#);
    }
}

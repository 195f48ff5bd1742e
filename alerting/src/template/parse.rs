//! Lexer and parser of the Go `text/template` subset: text, actions with pipelines,
//! variables, `if`/`else`/`range`/`with`/`break`/`continue`, comments and trim markers.

use std::fmt;

/// Deepest nesting of blocks and parentheses accepted.
const MAX_NESTING: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Break,
    Continue,
    /// `{{template "name" pipeline}}`.
    Template(String, Option<Pipe>),
}

/// The templates a text defines with `{{define}}` and `{{block}}`, in order.
pub(crate) type Defines = Vec<(String, Vec<Node>)>;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipe {
    /// Variables declared (`$x :=`) or assigned (`$x =`).
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    /// `.` followed by fields (`.Labels.job`; empty path is dot itself).
    Field(Vec<String>),
    /// `$x.a.b`.
    Var(String, Vec<String>),
    Func(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// `( pipeline ).a.b`.
    Pipe(Box<Pipe>, Vec<String>),
}

/// A template syntax error, worded like Go's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub(crate) message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Num(String),
    Char(i64),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Fields directly after a `)`: `(x).Format`.
    spaced: bool,
}

/// One `{{ … }}` or text run.
enum Piece {
    Text(String),
    Action { tokens: Vec<Token>, line: usize },
}

pub(crate) struct Parser<'a> {
    name: &'a str,
    funcs: &'a dyn Fn(&str) -> bool,
    pieces: Vec<Piece>,
    pos: usize,
    vars: Vec<String>,
    depth: usize,
    loops: usize,
    defines: Defines,
    in_define: bool,
}

fn err(name: &str, line: usize, msg: impl fmt::Display) -> TemplateError {
    TemplateError { message: format!("template: {name}:{line}: {msg}") }
}

fn lex_action(name: &str, src: &str, line: usize) -> Result<Vec<Token>, TemplateError> {
    let bytes = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let mut spaced = true;
    let path = |i: &mut usize| -> Vec<String> {
        let mut fields = Vec::new();
        while *i < bytes.len() && bytes[*i] == b'.' {
            let start = *i + 1;
            let mut j = start;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] >= 0x80) {
                j += 1;
            }
            if j == start {
                break;
            }
            fields.push(src[start..j].to_string());
            *i = j;
        }
        fields
    };
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            spaced = true;
            continue;
        }
        let tok = match c {
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'|' => {
                i += 1;
                Tok::Pipe
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b'=' => {
                i += 1;
                Tok::Assign
            }
            b':' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Declare
            }
            b'.' if !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let fields = path(&mut i);
                if fields.is_empty() {
                    i += 1;
                }
                Tok::Field(fields)
            }
            b'$' => {
                let start = i;
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80) {
                    i += 1;
                }
                let name = src[start..i].to_string();
                Tok::Var(name, path(&mut i))
            }
            b'"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    let Some(ch) = src[i..].chars().next() else {
                        return Err(err(name, line, "unterminated quoted string"));
                    };
                    i += ch.len_utf8();
                    match ch {
                        '"' => break,
                        '\n' => return Err(err(name, line, "unterminated quoted string")),
                        '\\' => {
                            let Some(e) = src[i..].chars().next() else {
                                return Err(err(name, line, "unterminated quoted string"));
                            };
                            i += e.len_utf8();
                            match e {
                                'n' => s.push('\n'),
                                't' => s.push('\t'),
                                'r' => s.push('\r'),
                                '\\' => s.push('\\'),
                                '"' => s.push('"'),
                                '\'' => s.push('\''),
                                'a' => s.push('\x07'),
                                'b' => s.push('\x08'),
                                'f' => s.push('\x0c'),
                                'v' => s.push('\x0b'),
                                'x' | 'u' | 'U' => {
                                    let n = match e {
                                        'x' => 2,
                                        'u' => 4,
                                        _ => 8,
                                    };
                                    let hex = src.get(i..i + n).ok_or_else(|| err(name, line, "invalid syntax"))?;
                                    let code =
                                        u32::from_str_radix(hex, 16).map_err(|_| err(name, line, "invalid syntax"))?;
                                    s.push(char::from_u32(code).ok_or_else(|| err(name, line, "invalid syntax"))?);
                                    i += n;
                                }
                                _ => return Err(err(name, line, "invalid syntax")),
                            }
                        }
                        ch => s.push(ch),
                    }
                }
                Tok::Str(s)
            }
            b'`' => {
                let end = src[i + 1..].find('`').ok_or_else(|| err(name, line, "unterminated raw quoted string"))?;
                let s = src[i + 1..i + 1 + end].to_string();
                i += end + 2;
                Tok::Str(s)
            }
            b'\'' => {
                let rest = &src[i + 1..];
                let mut chars = rest.chars();
                let ch = chars.next().ok_or_else(|| err(name, line, "unterminated character constant"))?;
                if chars.next() != Some('\'') || ch == '\\' {
                    return Err(err(name, line, "unterminated character constant"));
                }
                i += 2 + ch.len_utf8();
                Tok::Char(ch as i64)
            }
            b'0'..=b'9' | b'-' | b'+' | b'.' => {
                let start = i;
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || bytes[i] == b'.'
                        || bytes[i] == b'_'
                        || ((bytes[i] == b'-' || bytes[i] == b'+')
                            && matches!(bytes[i - 1], b'e' | b'E' | b'p' | b'P')))
                {
                    i += 1;
                }
                Tok::Num(src[start..i].to_string())
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80) {
                    i += 1;
                }
                Tok::Ident(src[start..i].to_string())
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(err(name, line, format!("unexpected bad character U+{:04X} '{ch}' in command", ch as u32)));
            }
        };
        out.push(Token { tok, spaced });
        spaced = false;
    }
    Ok(out)
}

fn split(name: &str, src: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut line = 1;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            let mut text = rest;
            if trim_next {
                text = text.trim_start();
            }
            pieces.push(Piece::Text(text.to_string()));
            break;
        };
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[open + 2..];
        let trim_left = after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_left {
            text = text.trim_end();
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_string()));
        }
        line += rest[..open].matches('\n').count();
        let body_start = if trim_left { 2 } else { 0 };
        let inner = &after[body_start..];
        // A comment: {{/* … */}}.
        let trimmed = inner.trim_start();
        let (body, consumed, trim_right) = if trimmed.starts_with("/*") {
            let end = trimmed.find("*/").ok_or_else(|| err(name, line, "unclosed comment"))?;
            let after_comment = &trimmed[end + 2..];
            let (tr, close) = if let Some(stripped) = after_comment.strip_prefix(" -}}") {
                let _ = stripped;
                (true, 4)
            } else if after_comment.starts_with("}}") {
                (false, 2)
            } else {
                return Err(err(name, line, "comment ends before closing delimiter"));
            };
            let consumed = inner.len() - trimmed.len() + end + 2 + close;
            (None, consumed, tr)
        } else {
            // The action ends at the first "}}" outside a quoted string.
            let b = inner.as_bytes();
            let mut j = 0;
            let mut close = None;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j += 1;
                        while j < b.len() && b[j] != b'"' && b[j] != b'\n' {
                            if b[j] == b'\\' {
                                j += 1;
                            }
                            j += 1;
                        }
                    }
                    b'`' => {
                        j += 1;
                        while j < b.len() && b[j] != b'`' {
                            j += 1;
                        }
                    }
                    b'}' if b.get(j + 1) == Some(&b'}') => {
                        close = Some(j);
                        break;
                    }
                    _ => {}
                }
                j += 1;
            }
            let close = close.ok_or_else(|| err(name, line, "unclosed action"))?;
            let mut body = &inner[..close];
            let tr = body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-");
            if tr {
                body = &body[..body.len() - 1];
            }
            (Some(body), close + 2, tr)
        };
        if let Some(body) = body {
            let tokens = lex_action(name, body, line)?;
            pieces.push(Piece::Action { tokens, line });
            line += body.matches('\n').count();
        }
        rest = &inner[consumed..];
        trim_next = trim_right;
    }
    Ok(pieces)
}

enum BlockEnd {
    Eof,
    End,
    Else(Vec<Token>),
}

impl<'a> Parser<'a> {
    pub(crate) fn parse(
        name: &'a str,
        src: &str,
        predeclared: &[&str],
        funcs: &'a dyn Fn(&str) -> bool,
    ) -> Result<(Vec<Node>, Defines), TemplateError> {
        let pieces = split(name, src)?;
        let mut vars = vec!["$".to_string()];
        vars.extend(predeclared.iter().map(|v| v.to_string()));
        let mut p =
            Parser { name, funcs, pieces, pos: 0, vars, depth: 0, loops: 0, defines: Vec::new(), in_define: false };
        let (nodes, end) = p.list()?;
        match end {
            BlockEnd::Eof => Ok((nodes, p.defines)),
            BlockEnd::End => Err(p.err("unexpected {{end}}")),
            BlockEnd::Else(_) => Err(p.err("unexpected {{else}}")),
        }
    }

    fn line(&self) -> usize {
        match self.pieces.get(self.pos.saturating_sub(1)) {
            Some(Piece::Action { line, .. }) => *line,
            _ => 1,
        }
    }

    fn err(&self, msg: impl fmt::Display) -> TemplateError {
        err(self.name, self.line(), msg)
    }

    fn list(&mut self) -> Result<(Vec<Node>, BlockEnd), TemplateError> {
        let mut nodes = Vec::new();
        loop {
            let Some(piece) = self.pieces.get(self.pos) else {
                return Ok((nodes, BlockEnd::Eof));
            };
            self.pos += 1;
            let tokens = match piece {
                Piece::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Piece::Action { tokens, .. } => tokens.clone(),
            };
            let keyword = match tokens.first().map(|t| &t.tok) {
                Some(Tok::Ident(k)) => k.as_str(),
                None => return Err(self.err("missing value for command")),
                _ => "",
            };
            match keyword {
                "end" => {
                    if tokens.len() > 1 {
                        return Err(self.err("unexpected token in end"));
                    }
                    return Ok((nodes, BlockEnd::End));
                }
                "else" => return Ok((nodes, BlockEnd::Else(tokens[1..].to_vec()))),
                "if" | "range" | "with" => nodes.push(self.block(keyword, &tokens[1..])?),
                "break" | "continue" => {
                    if self.loops == 0 {
                        return Err(self.err(format!("{{{{{keyword}}}}} outside {{{{range}}}}")));
                    }
                    nodes.push(if keyword == "break" { Node::Break } else { Node::Continue });
                }
                "define" | "block" => {
                    if keyword == "define" && (self.depth > 0 || self.in_define) {
                        return Err(self.err("unexpected <define> in command"));
                    }
                    let Some(Token { tok: Tok::Str(tname), .. }) = tokens.get(1) else {
                        return Err(self.err(format!("unexpected token in {keyword} clause")));
                    };
                    let tname = tname.clone();
                    let pipe = if keyword == "block" {
                        if tokens.len() < 3 {
                            return Err(self.err("missing value for block clause"));
                        }
                        Some(self.pipe(&tokens[2..], false)?)
                    } else if tokens.len() > 2 {
                        return Err(self.err("unexpected token in define clause"));
                    } else {
                        None
                    };
                    let body = self.define_body(keyword)?;
                    self.defines.push((tname.clone(), body));
                    if keyword == "block" {
                        nodes.push(Node::Template(tname, pipe));
                    }
                }
                "template" => {
                    let Some(Token { tok: Tok::Str(tname), .. }) = tokens.get(1) else {
                        return Err(self.err("unexpected token in template clause"));
                    };
                    let tname = tname.clone();
                    let pipe = if tokens.len() > 2 { Some(self.pipe(&tokens[2..], false)?) } else { None };
                    nodes.push(Node::Template(tname, pipe));
                }
                _ => {
                    let pipe = self.pipe(&tokens, true)?;
                    nodes.push(Node::Action(pipe));
                }
            }
        }
    }

    /// The body of a `{{define}}` or `{{block}}` up to its `{{end}}`, in a fresh variable scope.
    fn define_body(&mut self, keyword: &str) -> Result<Vec<Node>, TemplateError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.err("template nested too deeply"));
        }
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let (loops, in_define) = (self.loops, self.in_define);
        self.loops = 0;
        self.in_define = true;
        let (body, end) = self.list()?;
        self.vars = vars;
        self.loops = loops;
        self.in_define = in_define;
        self.depth -= 1;
        match end {
            BlockEnd::End => Ok(body),
            BlockEnd::Eof => Err(self.err(format!("unexpected EOF in {keyword}"))),
            BlockEnd::Else(_) => Err(self.err(format!("unexpected {{{{else}}}} in {keyword}"))),
        }
    }

    fn block(&mut self, keyword: &str, tokens: &[Token]) -> Result<Node, TemplateError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.err("template nested too deeply"));
        }
        let n_vars = self.vars.len();
        let pipe = self.pipe(tokens, keyword == "range")?;
        if keyword == "range" {
            self.loops += 1;
        }
        let (body, end) = self.list()?;
        if keyword == "range" {
            self.loops -= 1;
        }
        let else_body = match end {
            BlockEnd::Eof => return Err(self.err(format!("unexpected EOF in {keyword}"))),
            BlockEnd::End => Vec::new(),
            BlockEnd::Else(rest) => {
                if rest.is_empty() {
                    let (else_body, end) = self.list()?;
                    match end {
                        BlockEnd::End => else_body,
                        BlockEnd::Eof => return Err(self.err(format!("unexpected EOF in {keyword}"))),
                        BlockEnd::Else(_) => return Err(self.err("expected end; found {{else}}")),
                    }
                } else {
                    // {{else if …}} / {{else with …}}: a nested block sharing our {{end}}.
                    let nested = match &rest[0].tok {
                        Tok::Ident(k) if (k == "if" && keyword == "if") || (k == "with" && keyword == "with") => {
                            k.clone()
                        }
                        _ => return Err(self.err("unexpected token in else")),
                    };
                    vec![self.block(&nested, &rest[1..])?]
                }
            }
        };
        self.vars.truncate(n_vars);
        self.depth -= 1;
        Ok(match keyword {
            "if" => Node::If(pipe, body, else_body),
            "range" => Node::Range(pipe, body, else_body),
            _ => Node::With(pipe, body, else_body),
        })
    }

    /// A pipeline, with an optional declaration in front.
    fn pipe(&mut self, tokens: &[Token], allow_decl: bool) -> Result<Pipe, TemplateError> {
        let mut decl = Vec::new();
        let mut assign = false;
        let mut rest = tokens;
        // $x := …, $x = …, $i, $e := …
        let is_var = |t: Option<&Token>| matches!(t.map(|t| &t.tok), Some(Tok::Var(_, p)) if p.is_empty());
        if is_var(rest.first()) {
            match rest.get(1).map(|t| &t.tok) {
                Some(Tok::Declare | Tok::Assign) => {
                    if let Tok::Var(v, _) = &rest[0].tok {
                        decl.push(v.clone());
                    }
                    assign = matches!(rest[1].tok, Tok::Assign);
                    rest = &rest[2..];
                }
                Some(Tok::Comma) if allow_decl && is_var(rest.get(2)) => {
                    if let (Tok::Var(a, _), Tok::Var(b, _)) = (&rest[0].tok, &rest[2].tok) {
                        decl.push(a.clone());
                        decl.push(b.clone());
                    }
                    match rest.get(3).map(|t| &t.tok) {
                        Some(Tok::Declare) => {}
                        Some(Tok::Assign) => assign = true,
                        _ => return Err(self.err("expected := or = in range")),
                    }
                    rest = &rest[4..];
                }
                _ => {}
            }
        }
        if assign {
            for v in &decl {
                if !self.vars.contains(v) {
                    return Err(self.err(format!("undefined variable \"{v}\"")));
                }
            }
        }
        let (cmds, used) = self.cmds(rest, false)?;
        if used != rest.len() {
            return Err(self.err("unexpected right paren"));
        }
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipe { decl, assign, cmds })
    }

    /// Commands separated by `|`, up to the end or (when `in_paren`) a `)`.
    fn cmds(&mut self, tokens: &[Token], in_paren: bool) -> Result<(Vec<Vec<Arg>>, usize), TemplateError> {
        let mut cmds = Vec::new();
        let mut cmd = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let t = &tokens[i];
            i += 1;
            let arg = match &t.tok {
                Tok::Pipe => {
                    if cmd.is_empty() {
                        return Err(self.err("missing command"));
                    }
                    cmds.push(std::mem::take(&mut cmd));
                    continue;
                }
                Tok::RParen => {
                    if !in_paren {
                        return Err(self.err("unexpected right paren"));
                    }
                    if cmd.is_empty() && cmds.is_empty() {
                        return Err(self.err("missing value for parenthesized pipeline"));
                    }
                    if !cmd.is_empty() {
                        cmds.push(cmd);
                    }
                    return Ok((cmds, i));
                }
                Tok::LParen => {
                    self.depth += 1;
                    if self.depth > MAX_NESTING {
                        return Err(self.err("template nested too deeply"));
                    }
                    let (inner, used) = self.cmds(&tokens[i..], true)?;
                    self.depth -= 1;
                    i += used;
                    let mut fields = Vec::new();
                    while let Some(Token { tok: Tok::Field(f), spaced: false }) = tokens.get(i) {
                        fields.extend(f.iter().cloned());
                        i += 1;
                    }
                    Arg::Pipe(Box::new(Pipe { decl: Vec::new(), assign: false, cmds: inner }), fields)
                }
                Tok::Field(f) => Arg::Field(f.clone()),
                Tok::Var(v, f) => {
                    if !self.vars.contains(v) {
                        return Err(self.err(format!("undefined variable \"{v}\"")));
                    }
                    Arg::Var(v.clone(), f.clone())
                }
                Tok::Ident(id) => match id.as_str() {
                    "true" => Arg::Bool(true),
                    "false" => Arg::Bool(false),
                    "nil" => Arg::Nil,
                    _ => {
                        if !(self.funcs)(id) {
                            return Err(self.err(format!("function \"{id}\" not defined")));
                        }
                        Arg::Func(id.clone())
                    }
                },
                Tok::Str(s) => Arg::Str(s.clone()),
                Tok::Char(c) => Arg::Int(*c),
                Tok::Num(n) => self.number(n)?,
                Tok::Declare | Tok::Assign | Tok::Comma => return Err(self.err("unexpected token in operand")),
            };
            if matches!(arg, Arg::Nil)
                && cmd.is_empty()
                && !matches!(tokens.get(i).map(|t| &t.tok), None | Some(Tok::Pipe))
            {
                return Err(self.err("nil is not a command"));
            }
            cmd.push(arg);
        }
        if in_paren {
            return Err(self.err("unclosed left paren"));
        }
        if cmd.is_empty() {
            return Err(self.err(if cmds.is_empty() { "missing value for command" } else { "missing command" }));
        }
        cmds.push(cmd);
        Ok((cmds, i))
    }

    fn number(&self, n: &str) -> Result<Arg, TemplateError> {
        let clean = n.replace('_', "");
        let (neg, digits) = match clean.strip_prefix('-') {
            Some(d) => (true, d.to_string()),
            None => (false, clean.trim_start_matches('+').to_string()),
        };
        let int = if let Some(h) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
            i64::from_str_radix(h, 16).ok()
        } else if let Some(o) = digits.strip_prefix("0o") {
            i64::from_str_radix(o, 8).ok()
        } else if let Some(b) = digits.strip_prefix("0b") {
            i64::from_str_radix(b, 2).ok()
        } else if digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit()) {
            i64::from_str_radix(&digits[1..], 8).ok()
        } else if digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse().ok()
        } else {
            None
        };
        if let Some(i) = int {
            return Ok(Arg::Int(if neg { -i } else { i }));
        }
        match clean.parse::<f64>() {
            Ok(f) if clean.contains(['.', 'e', 'E']) && !clean.contains("inf") && !clean.contains("nan") => {
                Ok(Arg::Float(f))
            }
            _ => Err(self.err(format!("bad number syntax: \"{n}\""))),
        }
    }
}

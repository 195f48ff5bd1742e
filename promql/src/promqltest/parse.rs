//! Parsing of promqltest scripts (`load`, `clear`, `eval …` and their bodies).

use std::sync::OnceLock;

use regex::Regex;
use sextant_model::{Labels, LabelsBuilder};

use crate::lexer::{parse_duration, parse_number, unquote};

/// One value slot of a series line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Slot {
    Omitted,
    Float(f64),
    /// A native histogram (`{{…}}`); not stored by this float-only runner.
    Histogram,
}

#[derive(Debug)]
pub(crate) enum Cmd {
    Load { series: Vec<(Labels, Vec<Slot>)>, interval: i64 },
    Clear,
    Eval(Box<EvalCmd>),
}

#[derive(Debug, Clone)]
pub(crate) enum MsgMatch {
    Any,
    Exact(String),
    Regex(Regex),
}

impl MsgMatch {
    pub fn matches(&self, s: &str) -> bool {
        match self {
            MsgMatch::Any => true,
            MsgMatch::Exact(m) => m == s,
            MsgMatch::Regex(r) => r.is_match(s),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ExpectedSeries {
    pub labels: Labels,
    pub values: Vec<Slot>,
    pub ordinal: usize,
}

#[derive(Debug)]
pub(crate) struct EvalCmd {
    pub line: usize,
    pub expr: String,
    /// Instant: `Some(t)`; range: `None` and `range` set.
    pub at: Option<i64>,
    pub range: Option<(i64, i64, i64)>,
    pub fail: Option<MsgMatch>,
    pub warn: Vec<MsgMatch>,
    pub info: Vec<MsgMatch>,
    pub no_warn: bool,
    pub no_info: bool,
    pub legacy_warn: bool,
    pub legacy_info: bool,
    pub ordered: bool,
    pub expected: Vec<ExpectedSeries>,
    pub scalar: Option<f64>,
    pub string: Option<String>,
    pub range_vector: Option<(i64, i64, i64)>,
}

fn re(cell: &'static OnceLock<Regex>, src: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(src).expect("valid regex"))
}

fn dur(s: &str) -> Result<i64, String> {
    parse_duration(s.trim())
}

/// A parse error: line (1-based) and message.
pub(crate) type PErr = (usize, String);

pub(crate) fn parse_script(text: &str) -> Result<Vec<Cmd>, PErr> {
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l.split([' ', '\t']).next().unwrap_or("").to_lowercase();
        if word == "clear" {
            cmds.push(Cmd::Clear);
            i += 1;
        } else if word.starts_with("load") {
            let (cmd, next) = parse_load(&lines, i)?;
            cmds.push(cmd);
            i = next;
        } else if word.starts_with("eval") {
            let (cmd, next) = parse_eval(&lines, i)?;
            cmds.push(Cmd::Eval(Box::new(cmd)));
            i = next;
        } else {
            return Err((i + 1, format!("invalid command {l:?}")));
        }
    }
    Ok(cmds)
}

fn parse_load(lines: &[String], start: usize) -> Result<(Cmd, usize), PErr> {
    static HEAD: OnceLock<Regex> = OnceLock::new();
    let head = re(&HEAD, r"^load(?:_(with_nhcb))?\s+(.+?)$");
    let caps = head.captures(&lines[start]).ok_or((start + 1, format!("invalid load command {:?}", lines[start])))?;
    let interval = dur(&caps[2]).map_err(|e| (start + 1, e))?;
    let mut series: Vec<(Labels, Vec<Slot>)> = Vec::new();
    let mut i = start + 1;
    while i < lines.len() && !lines[i].is_empty() {
        let l = &lines[i];
        let first = l.split_whitespace().next().unwrap_or("");
        if first.ends_with("@st") {
            // Start timestamps: not used by this runner.
            i += 1;
            continue;
        }
        let (labels, values) = parse_series(l).map_err(|e| (i + 1, e))?;
        if let Some(pos) = series.iter().position(|(l, _)| *l == labels) {
            series[pos].1 = values;
        } else {
            series.push((labels, values));
        }
        i += 1;
    }
    Ok((Cmd::Load { series, interval }, i))
}

fn parse_eval(lines: &[String], start: usize) -> Result<(EvalCmd, usize), PErr> {
    static INSTANT: OnceLock<Regex> = OnceLock::new();
    static RANGE: OnceLock<Regex> = OnceLock::new();
    static EXPECT: OnceLock<Regex> = OnceLock::new();
    static RANGE_VEC: OnceLock<Regex> = OnceLock::new();
    let instant = re(&INSTANT, r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$");
    let range = re(&RANGE, r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$");
    let expect_re = re(&EXPECT, r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$");
    let range_vec = re(&RANGE_VEC, r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$");
    let l = &lines[start];
    let line = start + 1;
    let mut cmd = EvalCmd {
        line,
        expr: String::new(),
        at: None,
        range: None,
        fail: None,
        warn: Vec::new(),
        info: Vec::new(),
        no_warn: false,
        no_info: false,
        legacy_warn: false,
        legacy_info: false,
        ordered: false,
        expected: Vec::new(),
        scalar: None,
        string: None,
        range_vector: None,
    };
    let modifier;
    if let Some(c) = instant.captures(l) {
        modifier = c.get(1).map(|m| m.as_str().to_string());
        let at = c.get(2).map(|m| m.as_str()).unwrap_or("");
        cmd.at = Some(dur(at).map_err(|e| (line, e))?);
        cmd.expr = c[3].to_string();
    } else if let Some(c) = range.captures(l) {
        modifier = c.get(1).map(|m| m.as_str().to_string());
        let from = dur(&c[2]).map_err(|e| (line, e))?;
        let to = dur(&c[3]).map_err(|e| (line, e))?;
        let step = dur(&c[4]).map_err(|e| (line, e))?;
        if to < from {
            return Err((line, "invalid test definition, end timestamp is before start timestamp".into()));
        }
        cmd.range = Some((from, to, step));
        cmd.expr = c[5].to_string();
    } else {
        return Err((line, format!("invalid evaluation command {l:?}")));
    }
    match modifier.as_deref() {
        Some("fail") => cmd.fail = Some(MsgMatch::Any),
        Some("warn") => cmd.legacy_warn = true,
        Some("info") => cmd.legacy_info = true,
        Some("ordered") => cmd.ordered = true,
        _ => {}
    }
    let mut i = start + 1;
    let mut ordinal = 0;
    while i < lines.len() && !lines[i].is_empty() {
        let b = &lines[i];
        let bl = i + 1;
        i += 1;
        if let Some(rest) = b.strip_prefix("expected_fail_message") {
            if cmd.fail.is_some() {
                cmd.fail = Some(MsgMatch::Exact(rest.trim().to_string()));
            }
            break;
        }
        if let Some(rest) = b.strip_prefix("expected_fail_regexp") {
            if cmd.fail.is_some() {
                let r = Regex::new(rest.trim()).map_err(|e| (bl, e.to_string()))?;
                cmd.fail = Some(MsgMatch::Regex(r));
            }
            break;
        }
        if b.starts_with("expect range vector") {
            let c = range_vec.captures(b).ok_or((bl, format!("invalid range vector definition {b:?}")))?;
            let from = dur(&c[1]).map_err(|e| (bl, e))?;
            let to = dur(&c[2]).map_err(|e| (bl, e))?;
            let step = dur(&c[3]).map_err(|e| (bl, e))?;
            cmd.range_vector = Some((from, to, step));
            continue;
        }
        if let Some(rest) = b.strip_prefix("expect string") {
            let s = rest.trim();
            let ok = (s.starts_with('"') && s.ends_with('"') || s.starts_with('`') && s.ends_with('`')) && s.len() >= 2;
            if !ok {
                return Err((bl, format!("invalid string {s:?}")));
            }
            cmd.string = Some(unquote(s).map_err(|_| (bl, format!("invalid string {s:?}")))?);
            continue;
        }
        if b.split(' ').next() == Some("expect") {
            let c = expect_re.captures(b).ok_or((bl, format!("invalid expect statement {b:?}")))?;
            let m = match (c.get(2).map(|m| m.as_str()), c.get(3)) {
                (Some("msg"), Some(t)) => MsgMatch::Exact(t.as_str().trim().to_string()),
                (Some("regex"), Some(t)) => {
                    MsgMatch::Regex(Regex::new(t.as_str().trim()).map_err(|e| (bl, e.to_string()))?)
                }
                _ => MsgMatch::Any,
            };
            match &c[1] {
                "ordered" => cmd.ordered = true,
                "fail" => cmd.fail = Some(m),
                "warn" => cmd.warn.push(m),
                "info" => cmd.info.push(m),
                "no_warn" => cmd.no_warn = true,
                _ => cmd.no_info = true,
            }
            continue;
        }
        ordinal += 1;
        if let Some(v) = parse_go_number(b) {
            cmd.scalar = Some(v);
            break;
        }
        let (labels, values) = parse_series(b).map_err(|e| (bl, e))?;
        if cmd.range.is_none() && cmd.range_vector.is_none() && values.len() > 1 {
            return Err((bl, "expecting multiple values in instant evaluation not allowed".into()));
        }
        if let Some(pos) = cmd.expected.iter().position(|s| s.labels == labels) {
            cmd.expected[pos] = ExpectedSeries { labels, values, ordinal };
        } else {
            cmd.expected.push(ExpectedSeries { labels, values, ordinal });
        }
    }
    if !cmd.warn.is_empty() && cmd.no_warn || !cmd.info.is_empty() && cmd.no_info {
        return Err((line, "invalid expect lines: conflicting expectations".into()));
    }
    Ok((cmd, i))
}

/// A whole line as a Go `ParseInt(s, 0, 64)` or `ParseFloat` number.
fn parse_go_number(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() || body.starts_with(['+', '-']) {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let ok_chars =
        lower.chars().all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | 'x' | '_' | 'e' | '+' | '-' | 'o' | 'p'))
            || lower == "inf"
            || lower == "infinity"
            || lower == "nan";
    if !ok_chars {
        return None;
    }
    let v = parse_number(body).ok()?;
    Some(if neg { -v } else { v })
}

/// Parses `metric{labels} values…`.
pub(crate) fn parse_series(line: &str) -> Result<(Labels, Vec<Slot>), String> {
    let bytes = line.as_bytes();
    let mut pos = 0;
    let mut name: Option<String> = None;
    if pos < bytes.len() && (bytes[pos].is_ascii_alphabetic() || bytes[pos] == b'_' || bytes[pos] == b':') {
        let s = pos;
        while pos < bytes.len() && (bytes[pos].is_ascii_alphanumeric() || bytes[pos] == b'_' || bytes[pos] == b':') {
            pos += 1;
        }
        name = Some(line[s..pos].to_string());
    }
    let mut b = LabelsBuilder::new(&Labels::empty());
    if let Some(n) = &name {
        b.set("__name__", n);
    }
    if pos < bytes.len() && bytes[pos] == b'{' {
        pos += 1;
        loop {
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if pos >= bytes.len() {
                return Err(format!("unterminated label set in {line:?}"));
            }
            if bytes[pos] == b'}' {
                pos += 1;
                break;
            }
            let label_name = if matches!(bytes[pos], b'"' | b'\'' | b'`') {
                let (s, next) = read_string(line, pos)?;
                pos = next;
                s
            } else {
                let s = pos;
                while pos < bytes.len() && (bytes[pos].is_ascii_alphanumeric() || bytes[pos] == b'_') {
                    pos += 1;
                }
                if s == pos {
                    return Err(format!("unexpected character in label set of {line:?}"));
                }
                line[s..pos].to_string()
            };
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if pos < bytes.len() && bytes[pos] == b'=' {
                pos += 1;
                while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                    pos += 1;
                }
                let (value, next) = read_string(line, pos)?;
                pos = next;
                b.set(&label_name, &value);
            } else {
                // A bare string is the metric name.
                b.set("__name__", &label_name);
            }
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if pos < bytes.len() && bytes[pos] == b',' {
                pos += 1;
            }
        }
    } else if name.is_none() {
        return Err(format!("invalid series line {line:?}"));
    }
    let values = parse_values(&line[pos..])?;
    Ok((b.labels(), values))
}

fn read_string(line: &str, pos: usize) -> Result<(String, usize), String> {
    let bytes = line.as_bytes();
    let Some(&q) = bytes.get(pos) else { return Err(format!("expected a string in {line:?}")) };
    if !matches!(q, b'"' | b'\'' | b'`') {
        return Err(format!("expected a string in {line:?}"));
    }
    let mut i = pos + 1;
    while i < bytes.len() && bytes[i] != q {
        if bytes[i] == b'\\' && q != b'`' {
            i += 1;
        }
        i += 1;
    }
    if i >= bytes.len() {
        return Err(format!("unterminated string in {line:?}"));
    }
    let token = &line[pos..=i];
    let s = unquote(token).map_err(|_| format!("invalid string {token}"))?;
    Ok((s, i + 1))
}

/// Splits value items: whitespace-separated, but `{{…}}` histogram literals stay whole.
fn split_items(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' && chars.get(i + 1) == Some(&'{') {
            depth += 1;
            cur.push_str("{{");
            i += 2;
            continue;
        }
        if c == '}' && chars.get(i + 1) == Some(&'}') && depth > 0 {
            depth -= 1;
            cur.push_str("}}");
            i += 2;
            continue;
        }
        if c.is_whitespace() && depth == 0 {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
        i += 1;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The most slots one value item may expand to (the upstream scripts use up to 10,001).
const MAX_REPEAT: usize = 1_000_000;

fn repeat_count(it: &str, n: &str) -> Result<usize, String> {
    let n: usize = n.parse().map_err(|_| format!("invalid value {it:?}"))?;
    if n > MAX_REPEAT {
        return Err(format!("too many values in {it:?} (at most {MAX_REPEAT})"));
    }
    Ok(n)
}

fn parse_values(s: &str) -> Result<Vec<Slot>, String> {
    static ITEM: OnceLock<Regex> = OnceLock::new();
    const NUM: &str = r"(?:(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?|(?i:inf|nan))";
    let item = re(&ITEM, &format!(r"^([+-]?{NUM})(?:([+-])({NUM}))?(?:x([0-9]+))?$"));
    let mut out = Vec::new();
    for it in split_items(s) {
        if it == "_" {
            out.push(Slot::Omitted);
        } else if let Some(n) = it.strip_prefix("_x") {
            let n = repeat_count(&it, n)?;
            out.extend(std::iter::repeat_n(Slot::Omitted, n));
        } else if it == "stale" {
            out.push(Slot::Float(sextant_model::stale_nan()));
        } else if it.starts_with("{{") {
            let n = match it.rfind("}}x") {
                Some(p) => repeat_count(&it, &it[p + 3..])? + 1,
                None => 1,
            };
            out.extend(std::iter::repeat_n(Slot::Histogram, n));
        } else {
            let c = item.captures(&it).ok_or_else(|| format!("invalid value {it:?}"))?;
            let base = signed_number(&c[1])?;
            let times: usize = match c.get(4) {
                Some(n) => repeat_count(&it, n.as_str())?,
                None => 0,
            };
            let delta = match (c.get(2), c.get(3)) {
                (Some(sign), Some(d)) => {
                    let d = signed_number(d.as_str())?;
                    if sign.as_str() == "-" {
                        -d
                    } else {
                        d
                    }
                }
                _ => 0.0,
            };
            if c.get(4).is_none() {
                if c.get(2).is_some() {
                    return Err(format!("invalid value {it:?}"));
                }
                out.push(Slot::Float(base));
                continue;
            }
            let mut cur = base;
            out.push(Slot::Float(cur));
            for _ in 0..times {
                cur += delta;
                out.push(Slot::Float(cur));
            }
        }
    }
    Ok(out)
}

fn signed_number(s: &str) -> Result<f64, String> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = parse_number(body)?;
    Ok(if neg { -v } else { v })
}

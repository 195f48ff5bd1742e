//! Go's string literal syntax (`strconv.Quote` / `strconv.Unquote`), which Prometheus and
//! Alertmanager use in error messages, matcher strings and PromQL string literals.

use std::fmt::Write;

/// `strconv.Quote(s)`: double-quoted, with Go's escapes for `"`, `\`, control characters and
/// non-printable characters (an approximation of `unicode.IsPrint`).
///
/// ```
/// assert_eq!(sextant_model::go_quote("a\"b\n"), r#""a\"b\n""#);
/// ```
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_go_quoted(&mut out, s);
    out
}

/// [`go_quote`] appending to `out`.
pub fn write_go_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// An approximation of Go's `unicode.IsPrint`: not a control character, not a space other
/// than U+0020, not a format character, not a surrogate or private-use code point.
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f | 0x202a..=0x202e
        | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff | 0xf0000..=0x10ffff
        | 0xfffe | 0xffff)
}

/// `strconv.Unquote` for a `"…"`, `'…'` or `` `…` `` literal, quotes included. `None` when it
/// is not a valid literal (unknown escape, unescaped quote or newline, bad digits) or the
/// result is not valid UTF-8. Single quotes may hold a whole string, as PromQL allows.
///
/// ```
/// assert_eq!(sextant_model::go_unquote(r#""a\x41\u00e9""#).as_deref(), Some("aAé"));
/// assert_eq!(sextant_model::go_unquote(r#""\d""#), None);
/// ```
pub fn go_unquote(lit: &str) -> Option<String> {
    let quote = lit.chars().next()?;
    if !matches!(quote, '"' | '\'' | '`') || lit.len() < 2 || !lit.ends_with(quote) {
        return None;
    }
    let inner = &lit[1..lit.len() - 1];
    if quote == '`' {
        return (!inner.contains('`')).then(|| inner.replace('\r', ""));
    }
    if inner.contains('\n') {
        return None;
    }
    if !inner.contains('\\') {
        return (!inner.contains(quote)).then(|| inner.to_string());
    }
    let mut bytes: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == quote {
            return None;
        }
        if c != '\\' {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = chars.next()?;
        match e {
            'a' => bytes.push(7),
            'b' => bytes.push(8),
            'f' => bytes.push(12),
            'n' => bytes.push(b'\n'),
            'r' => bytes.push(b'\r'),
            't' => bytes.push(b'\t'),
            'v' => bytes.push(11),
            '\\' => bytes.push(b'\\'),
            q if q == quote => bytes.push(q as u8),
            'x' => bytes.push(digits(&mut chars, 2, 16)? as u8),
            'u' | 'U' => {
                let ch = char::from_u32(digits(&mut chars, if e == 'u' { 4 } else { 8 }, 16)?)?;
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            '0'..='7' => {
                let v = e.to_digit(8)? * 64 + digits(&mut chars, 2, 8)?;
                bytes.push(u8::try_from(v).ok()?);
            }
            _ => return None,
        }
    }
    String::from_utf8(bytes).ok()
}

fn digits(chars: &mut std::str::Chars<'_>, n: usize, base: u32) -> Option<u32> {
    let mut v = 0u32;
    for _ in 0..n {
        v = v * base + chars.next()?.to_digit(base)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        let check = |input: &str, expected: &str| assert_eq!(go_quote(input), expected, "{input:?}");
        check("", r#""""#);
        check("a\"b\\c", r#""a\"b\\c""#);
        check("x\ny\t", r#""x\ny\t""#);
        check("\u{1}\u{7f}", r#""\x01\x7f""#);
        check("🙂é", "\"🙂é\"");
        check("\u{a0}\u{feff}", r#""\u00a0\ufeff""#);
    }

    #[test]
    fn unquotes_like_go() {
        let check = |input: &str, expected: Option<&str>| assert_eq!(go_unquote(input).as_deref(), expected, "{input}");
        check(r#""bar""#, Some("bar"));
        check(r#""\"bar\"""#, Some("\"bar\""));
        check(r#""\xf0\x9f\x99\x82""#, Some("🙂"));
        check(r#""\U0001f642""#, Some("🙂"));
        check(r#""\101""#, Some("A"));
        check(r#""a\nb\x41\101\u00e9""#, Some("a\nbAAé"));
        check("`a\\n`", Some("a\\n"));
        check(r#"'it\'s'"#, Some("it's"));
        check(r#"'say "hi"'"#, Some("say \"hi\""));
        check(r#""\xf0\x9f""#, None);
        check(r#""a\xc5z""#, None);
        check(r#""\d""#, None);
        check(r#""bar\w""#, None);
        check(r#""\'""#, None);
        check(r#""\ud800""#, None);
        check(r#""\400""#, None);
        check(r#""a"b""#, None);
        check("\"a\nb\"", None);
        check("\"a", None);
        check("\"", None);
        check("", None);
    }

    proptest::proptest! {
        #[test]
        fn quote_then_unquote_is_identity(s in "\\PC*") {
            proptest::prop_assert_eq!(go_unquote(&go_quote(&s)), Some(s));
        }

        #[test]
        fn unquote_never_panics(s in "[\"'`\\\\a-z0-9xuU]{0,16}") {
            let _ = go_unquote(&s);
        }
    }
}

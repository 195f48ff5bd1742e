//! Go's string quoting, which Alertmanager's user-visible keys are made of.

use std::fmt::Write;

/// `strconv.Quote(s)`: double-quoted, with Go escapes for `"`, `\`, control characters and
/// (approximately: Rust has no `unicode.IsPrint`) non-printable characters.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
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
    out
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
    let n = c as u32;
    !matches!(n,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f | 0x202a..=0x202e
        | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff | 0xf0000..=0x10ffff
        | 0xfffe | 0xffff)
}

/// The value escaping of Alertmanager's `Matcher.String()`: `\`, newline and `"` only.
pub(crate) fn open_metrics_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// Go's `strconv.Unquote` for a double-quoted literal (the quotes included). `None` when it
/// is not a valid Go string literal or the result is not valid UTF-8.
pub(crate) fn unquote(lit: &str) -> Option<String> {
    let inner = lit.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\n') {
        return None;
    }
    let mut bytes: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            '\\' => {
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
                    '"' => bytes.push(b'"'),
                    'x' => {
                        let v = hex_digits(&mut chars, 2)?;
                        bytes.push(v as u8);
                    }
                    'u' | 'U' => {
                        let v = hex_digits(&mut chars, if e == 'u' { 4 } else { 8 })?;
                        let ch = char::from_u32(v)?;
                        let mut buf = [0u8; 4];
                        bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8)?;
                        for _ in 0..2 {
                            v = v * 8 + chars.next()?.to_digit(8)?;
                        }
                        if v > 255 {
                            return None;
                        }
                        bytes.push(v as u8);
                    }
                    _ => return None,
                }
            }
            c => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    String::from_utf8(bytes).ok()
}

fn hex_digits(chars: &mut std::str::Chars<'_>, n: usize) -> Option<u32> {
    let mut v = 0u32;
    for _ in 0..n {
        v = v * 16 + chars.next()?.to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        let check = |input: &str, expected: &str| assert_eq!(quote(input), expected, "{input:?}");
        check("", r#""""#);
        check("a\"b\\c", r#""a\"b\\c""#);
        check("x\ny\t", r#""x\ny\t""#);
        check("\u{1}", r#""\x01""#);
        check("🙂é", "\"🙂é\"");
        check("\u{a0}", r#""\u00a0""#);
    }

    #[test]
    fn unquotes_like_go() {
        let check = |input: &str, expected: Option<&str>| assert_eq!(unquote(input).as_deref(), expected, "{input}");
        check(r#""bar""#, Some("bar"));
        check(r#""\"bar\"""#, Some("\"bar\""));
        check(r#""\xf0\x9f\x99\x82""#, Some("🙂"));
        check(r#""\U0001f642""#, Some("🙂"));
        check(r#""\101""#, Some("A"));
        check(r#""\xf0\x9f""#, None);
        check(r#""\d""#, None);
        check(r#""bar\w""#, None);
        check(r#""\'""#, None);
        check(r#""\ud800""#, None);
        check("\"a", None);
    }
}

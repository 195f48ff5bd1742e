//! Go's string quoting, which Alertmanager's user-visible keys are made of.

pub(crate) use sextant_model::go_quote as quote;

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
    if !lit.starts_with('"') {
        return None;
    }
    sextant_model::go_unquote(lit)
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

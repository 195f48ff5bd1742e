//! Label matchers (`=`, `!=`, `=~`, `!~`) with Prometheus' semantics.
//!
//! Regexes are fully anchored and use RE2 syntax (the `regex` crate), with `.` matching a
//! newline as in Prometheus 3.x. Common shapes skip the regex engine: a literal, a
//! `prefix.*`, a `.*suffix`, a `.*infix.*`, a set `a|b|c`, `.*` and `.+`.

use std::fmt;

use regex::Regex;

use crate::labels::{is_valid_legacy_label_name, write_quoted, Labels};
use crate::Error;

/// The operator of a [`Matcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        }
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Matches one label's value. A label that is absent has the value `""`.
#[derive(Clone)]
pub struct Matcher {
    pub op: MatchOp,
    pub name: String,
    pub value: String,
    regex: Option<FastRegex>,
}

impl Matcher {
    /// A matcher; fails only for a regex that does not compile.
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Matcher, Error> {
        let (name, value) = (name.into(), value.into());
        let regex = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => Some(FastRegex::new(&value)?),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher { op, name, value, regex })
    }

    /// Shorthand for an `=` matcher.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Matcher {
        Matcher { op: MatchOp::Equal, name: name.into(), value: value.into(), regex: None }
    }

    /// True if a label with value `value` (`""` when absent) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match (&self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::RegexMatch, Some(re)) => re.is_match(value),
            (MatchOp::RegexNoMatch, Some(re)) => !re.is_match(value),
            (MatchOp::RegexMatch | MatchOp::RegexNoMatch, None) => unreachable!("regex compiled in new"),
        }
    }

    /// True if the matcher selects series that lack the label (Prometheus' rule that a
    /// matcher matching `""` also matches absence).
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// True if the series with `labels` satisfies the matcher.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// For a regex matcher that is a set of literals (`a|b|c`, or a single literal), the
    /// values; lets an index look values up instead of scanning them.
    pub fn set_matches(&self) -> Option<&[String]> {
        match &self.regex {
            Some(FastRegex { kind: FastKind::Set(values), .. }) => Some(values),
            _ => None,
        }
    }

    /// For a regex matcher of the shape `prefix.*`, the prefix.
    pub fn prefix(&self) -> Option<&str> {
        match &self.regex {
            Some(FastRegex { kind: FastKind::Prefix(p), .. }) => Some(p),
            _ => None,
        }
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.op == other.op && self.name == other.name && self.value == other.value
    }
}

impl Eq for Matcher {}

impl std::hash::Hash for Matcher {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.op.hash(state);
        self.name.hash(state);
        self.value.hash(state);
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `name="value"` in PromQL syntax (the name quoted when it is not a legacy name).
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_valid_legacy_label_name(&self.name) {
            f.write_str(&self.name)?;
        } else {
            write_quoted(f, &self.name)?;
        }
        f.write_str(self.op.as_str())?;
        write_quoted(f, &self.value)
    }
}

/// True if every matcher in `matchers` accepts `labels`.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches_labels(labels))
}

#[derive(Clone, Debug)]
struct FastRegex {
    kind: FastKind,
}

#[derive(Clone, Debug)]
enum FastKind {
    /// `.*`
    Any,
    /// `.+`
    NonEmpty,
    /// One or more literal alternatives.
    Set(Vec<String>),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(Regex),
}

impl FastRegex {
    fn new(pattern: &str) -> Result<FastRegex, Error> {
        // Compile first in every case, so that invalid patterns are rejected even where a
        // fast path would not need the engine.
        let regex = Regex::new(&format!("^(?s:{pattern})$"))
            .map_err(|e| Error::InvalidRegex { pattern: pattern.to_string(), message: e.to_string() })?;
        let kind = match pattern {
            ".*" => FastKind::Any,
            ".+" => FastKind::NonEmpty,
            _ => Self::literal_shape(pattern).unwrap_or(FastKind::Regex(regex)),
        };
        Ok(FastRegex { kind })
    }

    fn literal_shape(pattern: &str) -> Option<FastKind> {
        let is_literal = |s: &str| !s.is_empty() && regex::escape(s) == s;
        if pattern.is_empty() {
            return Some(FastKind::Set(vec![String::new()]));
        }
        if let Some(inner) = pattern.strip_prefix(".*").and_then(|p| p.strip_suffix(".*")) {
            if is_literal(inner) {
                return Some(FastKind::Contains(inner.to_string()));
            }
        }
        if let Some(prefix) = pattern.strip_suffix(".*") {
            if is_literal(prefix) {
                return Some(FastKind::Prefix(prefix.to_string()));
            }
        }
        if let Some(suffix) = pattern.strip_prefix(".*") {
            if is_literal(suffix) {
                return Some(FastKind::Suffix(suffix.to_string()));
            }
        }
        let alternatives: Vec<&str> = pattern.split('|').collect();
        if alternatives.iter().all(|a| is_literal(a)) {
            let mut values: Vec<String> = alternatives.into_iter().map(str::to_string).collect();
            values.sort_unstable();
            values.dedup();
            return Some(FastKind::Set(values));
        }
        None
    }

    fn is_match(&self, value: &str) -> bool {
        match &self.kind {
            FastKind::Any => true,
            FastKind::NonEmpty => !value.is_empty(),
            FastKind::Set(values) => values.iter().any(|v| v == value),
            FastKind::Prefix(p) => value.starts_with(p.as_str()),
            FastKind::Suffix(s) => value.ends_with(s.as_str()),
            FastKind::Contains(c) => value.contains(c.as_str()),
            FastKind::Regex(re) => re.is_match(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(op: MatchOp, pattern: &str, value: &str, expected: bool) {
        let m = Matcher::new(op, "l", pattern).unwrap();
        assert_eq!(m.matches(value), expected, "{m} against {value:?}");
    }

    #[test]
    fn equality_and_regex_cases() {
        use MatchOp::*;
        check(Equal, "a", "a", true);
        check(Equal, "a", "ab", false);
        check(NotEqual, "a", "b", true);
        check(Equal, "", "", true);
        // Anchored: a regex must match the whole value.
        check(RegexMatch, "a", "ab", false);
        check(RegexMatch, "a.", "ab", true);
        check(RegexMatch, "foo|bar", "bar", true);
        check(RegexMatch, "foo|bar", "foobar", false);
        check(RegexMatch, "foo.*", "foobar", true);
        check(RegexMatch, "foo.*", "xfoo", false);
        check(RegexMatch, ".*bar", "foobar", true);
        check(RegexMatch, ".*ob.*", "foobar", true);
        check(RegexMatch, ".*ob.*", "fbar", false);
        check(RegexMatch, ".*", "", true);
        check(RegexMatch, ".+", "", false);
        check(RegexMatch, ".+", "x", true);
        // `.` matches a newline, as in Prometheus 3.
        check(RegexMatch, "a.b", "a\nb", true);
        check(RegexMatch, "(?i)FOO", "foo", true);
        check(RegexNoMatch, "foo|bar", "baz", true);
        check(RegexNoMatch, "", "", false);
        check(RegexMatch, "a\\.b", "a.b", true);
        check(RegexMatch, "a\\.b", "axb", false);
    }

    #[test]
    fn empty_string_semantics() {
        use MatchOp::*;
        for (op, pattern, matches_empty) in [
            (Equal, "", true),
            (Equal, "x", false),
            (NotEqual, "", false),
            (NotEqual, "x", true),
            (RegexMatch, ".*", true),
            (RegexMatch, ".+", false),
            (RegexMatch, "x|", true),
            (RegexNoMatch, ".+", true),
            (RegexNoMatch, ".*", false),
        ] {
            let m = Matcher::new(op, "l", pattern).unwrap();
            assert_eq!(m.matches_empty(), matches_empty, "{m}");
        }
        let labels = Labels::from_pairs([("job", "x")]);
        assert!(Matcher::new(MatchOp::Equal, "absent", "").unwrap().matches_labels(&labels));
    }

    #[test]
    fn invalid_regex_is_an_error_naming_the_pattern() {
        let err = Matcher::new(MatchOp::RegexMatch, "l", "a(").unwrap_err();
        assert!(err.to_string().starts_with("invalid regular expression \"a(\""), "{err}");
    }

    #[test]
    fn set_and_prefix_are_exposed_for_indexes() {
        let m = Matcher::new(MatchOp::RegexMatch, "l", "b|a|b").unwrap();
        assert_eq!(m.set_matches(), Some(&["a".to_string(), "b".to_string()][..]));
        let m = Matcher::new(MatchOp::RegexMatch, "l", "api_.*").unwrap();
        assert_eq!(m.prefix(), Some("api_"));
        assert_eq!(Matcher::new(MatchOp::RegexMatch, "l", "a+").unwrap().set_matches(), None);
    }

    #[test]
    fn display_is_promql() {
        let m = Matcher::new(MatchOp::RegexNoMatch, "a.b", "x\"y").unwrap();
        assert_eq!(m.to_string(), r#""a.b"!~"x\"y""#);
    }

    proptest! {
        // Every fast path agrees with the plain anchored regex.
        #[test]
        fn fast_paths_agree_with_the_regex_engine(
            pattern in prop::sample::select(vec![
                "", ".*", ".+", "foo", "foo|bar|baz", "foo.*", ".*foo", ".*oo.*", "f.o", "a|", "(foo)",
            ]),
            value in "(f|o|b|a|r|z|\n|){0,7}",
        ) {
            let plain = Regex::new(&format!("^(?s:{pattern})$")).unwrap();
            let m = Matcher::new(MatchOp::RegexMatch, "l", pattern).unwrap();
            prop_assert_eq!(m.matches(&value), plain.is_match(&value));
        }
    }
}

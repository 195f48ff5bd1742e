//! Between the wire messages and the model's types.

use super::error::DecodeError;
use super::proto::{self, LabelMatcher, MatcherType};
use crate::{Error, Label, Labels, MatchOp, Matcher};

/// Label pairs from the wire as [`Labels`]. They must be sorted by name, names unique and not
/// empty (the remote-write spec's MUSTs); labels with empty values are dropped, as in
/// Prometheus an empty value is the same as no label. Use this for exemplar labels and for
/// any set that need not name a metric; series go through [`series_labels_from_proto`].
pub fn labels_from_proto(labels: &[proto::Label]) -> Result<Labels, Error> {
    let mut out: Vec<Label> = Vec::with_capacity(labels.len());
    let mut previous: &str = "";
    for (index, label) in labels.iter().enumerate() {
        let name = utf8(&label.name, index, "name")?;
        let value = utf8(&label.value, index, "value")?;
        if name.is_empty() {
            return Err(DecodeError::EmptyLabelName { index }.into());
        }
        // Byte order of UTF-8 is code point order, as Go compares strings.
        match previous.cmp(name) {
            std::cmp::Ordering::Less => {}
            std::cmp::Ordering::Equal => return Err(Error::DuplicateLabelName { name: name.to_owned() }),
            std::cmp::Ordering::Greater => {
                return Err(
                    DecodeError::UnsortedLabels { index, previous: previous.to_owned(), name: name.to_owned() }.into()
                )
            }
        }
        previous = name;
        if !value.is_empty() {
            out.push(Label::new(name, value));
        }
    }
    Ok(Labels::from_sorted(out))
}

fn utf8<'a>(bytes: &'a [u8], index: usize, part: &'static str) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes).map_err(|err| DecodeError::InvalidUtf8 { index, part, offset: err.valid_up_to() }.into())
}

/// Like [`labels_from_proto`], and the set must have a non-empty `__name__`, as a series in a
/// remote-write request must. Name syntax is left to [`Labels::validate`], whose scheme
/// (legacy or UTF-8) is the receiver's choice.
pub fn series_labels_from_proto(labels: &[proto::Label]) -> Result<Labels, Error> {
    let out = labels_from_proto(labels)?;
    if out.metric_name().is_none() {
        return Err(DecodeError::MissingMetricName { labels: out.to_string() }.into());
    }
    Ok(out)
}

/// [`Labels`] as wire label pairs (already sorted and unique).
pub fn labels_to_proto(labels: &Labels) -> Vec<proto::Label> {
    labels
        .iter()
        .map(|l| proto::Label {
            name: bytes::Bytes::copy_from_slice(l.name.as_bytes()),
            value: bytes::Bytes::copy_from_slice(l.value.as_bytes()),
        })
        .collect()
}

/// A remote-read matcher as a [`Matcher`]; fails for an unknown type or a regex that does not
/// compile.
pub fn matcher_from_proto(matcher: &LabelMatcher) -> Result<Matcher, Error> {
    let op = match MatcherType::try_from(matcher.r#type) {
        Ok(MatcherType::Eq) => MatchOp::Equal,
        Ok(MatcherType::Neq) => MatchOp::NotEqual,
        Ok(MatcherType::Re) => MatchOp::RegexMatch,
        Ok(MatcherType::Nre) => MatchOp::RegexNoMatch,
        Err(_) => {
            return Err(DecodeError::UnknownMatcherType { name: matcher.name.clone(), value: matcher.r#type }.into())
        }
    };
    Matcher::new(op, matcher.name.as_str(), matcher.value.as_str())
}

/// A [`Matcher`] as a remote-read matcher.
pub fn matcher_to_proto(matcher: &Matcher) -> LabelMatcher {
    let kind = match matcher.op {
        MatchOp::Equal => MatcherType::Eq,
        MatchOp::NotEqual => MatcherType::Neq,
        MatchOp::RegexMatch => MatcherType::Re,
        MatchOp::RegexNoMatch => MatcherType::Nre,
    };
    LabelMatcher { r#type: kind as i32, name: matcher.name.clone(), value: matcher.value.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(pairs: &[(&str, &str)]) -> Vec<proto::Label> {
        pairs.iter().map(|(n, v)| proto::Label::new(*n, *v)).collect()
    }

    #[test]
    fn series_labels() {
        let check = |pairs: &[(&str, &str)], expected: Result<Labels, &str>| {
            let got = series_labels_from_proto(&wire(pairs)).map_err(|e| e.to_string());
            assert_eq!(got, expected.map_err(str::to_owned), "{pairs:?}");
        };
        check(&[("__name__", "up"), ("job", "node")], Ok(Labels::from_pairs([("__name__", "up"), ("job", "node")])));
        check(
            &[("__name__", "up"), ("env", ""), ("job", "a")],
            Ok(Labels::from_pairs([("__name__", "up"), ("job", "a")])),
        );
        check(&[("__name__", "a.b/c"), ("ü", "x")], Ok(Labels::from_pairs([("__name__", "a.b/c"), ("ü", "x")])));
        check(
            &[("__name__", "up"), ("job", "a"), ("instance", "b")],
            Err("labels not sorted: \"instance\" (label 2) comes after \"job\""),
        );
        check(&[("__name__", "up"), ("job", "a"), ("job", "b")], Err("label name \"job\" is given twice"));
        check(&[("", "x"), ("__name__", "up")], Err("label 0 has an empty name"));
        check(&[("job", "a")], Err("series {job=\"a\"} has no metric name"));
        check(&[("__name__", ""), ("job", "a")], Err("series {job=\"a\"} has no metric name"));
        check(&[], Err("series {} has no metric name"));
        let bad = vec![
            proto::Label::new("__name__", "up"),
            proto::Label { name: "job".into(), value: vec![b'a', 0xff].into() },
        ];
        assert_eq!(
            series_labels_from_proto(&bad).map_err(|e| e.to_string()),
            Err("label 1: value is not valid UTF-8 (invalid byte at offset 1)".to_owned())
        );
    }

    #[test]
    fn plain_labels() {
        assert_eq!(labels_from_proto(&wire(&[])), Ok(Labels::empty()));
        assert_eq!(labels_from_proto(&wire(&[("trace_id", "abc")])), Ok(Labels::from_pairs([("trace_id", "abc")])));
        let labels = Labels::from_pairs([("__name__", "up"), ("a", "1"), ("z", "2")]);
        assert_eq!(labels_from_proto(&labels_to_proto(&labels)), Ok(labels));
    }

    #[test]
    fn matchers() {
        let check = |kind: i32, name: &str, value: &str, expected: Result<&str, &str>| {
            let wire = LabelMatcher { r#type: kind, name: name.into(), value: value.into() };
            let got = matcher_from_proto(&wire);
            match (&got, expected) {
                (Ok(m), Ok(text)) => {
                    assert_eq!(m.to_string(), text);
                    assert_eq!(matcher_to_proto(m), wire, "round trip");
                }
                (Err(e), Err(text)) => assert_eq!(e.to_string(), text),
                _ => panic!("{wire:?}: got {got:?}, expected {expected:?}"),
            }
        };
        check(0, "job", "node", Ok("job=\"node\""));
        check(1, "job", "node", Ok("job!=\"node\""));
        check(2, "job", "no.*", Ok("job=~\"no.*\""));
        check(3, "job", "", Ok("job!~\"\""));
        check(4, "job", "x", Err("label matcher for \"job\" has unknown type 4"));
        check(-1, "job", "x", Err("label matcher for \"job\" has unknown type -1"));
        let bad = matcher_from_proto(&LabelMatcher { r#type: 2, name: "job".into(), value: "(".into() });
        assert!(matches!(bad, Err(Error::InvalidRegex { .. })), "{bad:?}");
    }
}

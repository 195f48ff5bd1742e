//! Data-driven tests of parser, strict rules and encoder: `check(format, input, expected)`
//! renders each entry (or the error) as one line.

use super::*;
use crate::Labels;

fn render(parser: Parser<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for entry in parser {
        out.push(match entry {
            Ok(Entry::Help { name, help }) => format!("help {name} {help:?}"),
            Ok(Entry::Type { name, metric_type }) => format!("type {name} {metric_type}"),
            Ok(Entry::Unit { name, unit }) => format!("unit {name} {unit}"),
            Ok(Entry::Comment(text)) => format!("comment {text:?}"),
            Ok(Entry::Series(s)) => {
                let labels = s.to_labels().map(|l| l.to_string()).unwrap_or_else(|e| e.to_string());
                let mut line = format!("{} => {labels} {}", String::from_utf8_lossy(s.series()), s.value());
                if let Some(ts) = s.timestamp() {
                    line += &format!(" @{ts}");
                }
                if let Some(e) = s.exemplar() {
                    line += &format!(" # {} {}", e.to_labels().unwrap(), e.value());
                    if let Some(ts) = e.timestamp() {
                        line += &format!(" @{ts}");
                    }
                }
                line
            }
            Err(e) => format!("error {e}"),
        });
    }
    out
}

#[track_caller]
fn check(format: Format, input: &str, expected: &[&str]) {
    let got = render(Parser::new(input.as_bytes(), format));
    assert_eq!(got, expected, "input:\n{input}");
}

#[track_caller]
fn check_strict(input: &str, expected_error: Option<&str>) {
    let got = Parser::openmetrics_strict(input.as_bytes()).find_map(Result::err).map(|e| e.to_string());
    assert_eq!(got.as_deref(), expected_error, "input:\n{input}");
}

#[test]
fn text_format_entries() {
    check(
        Format::Text,
        "# HELP go_gc_duration_seconds A summary of the GC invocation durations.\n\
         # \tTYPE go_gc_duration_seconds summary\n\
         go_gc_duration_seconds{quantile=\"0\"} 4.9351e-05\n\
         go_gc_duration_seconds{quantile=\"0.25\",} 7.424100000000001e-05\n\
         go_gc_duration_seconds{ quantile = \"0.9\" , a = \"b\" } 8.3835e-05\n\
         go_gc_duration_seconds { quantile=\"1\" a=\"b\" } 1\n\
         # Hrandom comment starting with prefix of HELP\n\
         #\n\
         \n\
         \t  wind_speed{A=\"2\",c=\"3\"} 12345\n\
         # HELP nohelp1\n\
         go_gc_duration_seconds_count 99\n\
         some:aggregate:rate5m{a_b=\"c\"}\t1\n\
         # TYPE go_goroutines gauge\n\
         go_goroutines 33  \t123123\n\
         _metric_starting_with_underscore 1\n\
         testmetric{label=\"\\\"bar\\\"\\n\\\\\\z\"} +Inf\n\
         nan NaN",
        &[
            "help go_gc_duration_seconds \"A summary of the GC invocation durations.\"",
            "type go_gc_duration_seconds summary",
            "go_gc_duration_seconds{quantile=\"0\"} => {__name__=\"go_gc_duration_seconds\", quantile=\"0.0\"} 0.000049351",
            "go_gc_duration_seconds{quantile=\"0.25\",} => {__name__=\"go_gc_duration_seconds\", quantile=\"0.25\"} 0.00007424100000000001",
            "go_gc_duration_seconds{ quantile = \"0.9\" , a = \"b\" } => {__name__=\"go_gc_duration_seconds\", a=\"b\", quantile=\"0.9\"} 0.000083835",
            "go_gc_duration_seconds { quantile=\"1\" a=\"b\" } => {__name__=\"go_gc_duration_seconds\", a=\"b\", quantile=\"1.0\"} 1",
            "comment \"# Hrandom comment starting with prefix of HELP\"",
            "comment \"#\"",
            "wind_speed{A=\"2\",c=\"3\"} => {A=\"2\", __name__=\"wind_speed\", c=\"3\"} 12345",
            "help nohelp1 \"\"",
            "go_gc_duration_seconds_count => {__name__=\"go_gc_duration_seconds_count\"} 99",
            "some:aggregate:rate5m{a_b=\"c\"} => {__name__=\"some:aggregate:rate5m\", a_b=\"c\"} 1",
            "type go_goroutines gauge",
            "go_goroutines => {__name__=\"go_goroutines\"} 33 @123123",
            "_metric_starting_with_underscore => {__name__=\"_metric_starting_with_underscore\"} 1",
            "testmetric{label=\"\\\"bar\\\"\\n\\\\\\z\"} => {__name__=\"testmetric\", label=\"\\\"bar\\\"\\n\\\\\\\\z\"} inf",
            "nan => {__name__=\"nan\"} NaN",
        ],
    );
}

#[test]
fn text_format_utf8_names_and_help_escapes() {
    check(
        Format::Text,
        "# HELP \"go.gc_duration_seconds\" A summary\\nof \\\\ \\\" things\n\
         # TYPE \"go.gc_duration_seconds\" summary\n\
         {\"go.gc_duration_seconds\",quantile=\"0\"} 1\n\
         {\"go.gc_duration_seconds\", \"quantile.x\"=\"0.5\", a=\"b\"} 2 7\n\
         {\"with\\\"quote\"} 3\n",
        &[
            "help go.gc_duration_seconds \"A summary\\nof \\\\ \\\\\\\" things\"",
            "type go.gc_duration_seconds summary",
            "{\"go.gc_duration_seconds\",quantile=\"0\"} => {__name__=\"go.gc_duration_seconds\", quantile=\"0.0\"} 1",
            "{\"go.gc_duration_seconds\", \"quantile.x\"=\"0.5\", a=\"b\"} => {__name__=\"go.gc_duration_seconds\", a=\"b\", \"quantile.x\"=\"0.5\"} 2 @7",
            "{\"with\\\"quote\"} => {__name__=\"with\\\"quote\"} 3",
        ],
    );
}

#[test]
fn text_format_errors() {
    for (input, error) in [
        ("a", "1:2: expected value after metric, got end of input while parsing: \"a\""),
        ("a\n", "1:2: expected value after metric, got \"\\n\" while parsing: \"a\\n\""),
        ("a{b='c'} 1\n", "1:5: expected label value, got \"'c'\" while parsing: \"a{b='c'\""),
        ("a{b x\n", "1:5: expected equal, got \"x\" while parsing: \"a{b x\""),
        ("a{b=\"c\" d} 1\n", "1:10: expected equal, got \"}\" while parsing: \"a{b=\\\"c\\\" d}\""),
        ("{a=\"ok\"} 1\n", "1:9: metric name not set while parsing: \"{a=\\\"ok\\\"}\""),
        ("{\"a\", \"b\"} 1\n", "1:10: metric name already set while parsing: \"{\\\"a\\\", \\\"b\\\"\""),
        ("a{\"b\"} 1\n", "1:7: metric name already set while parsing: \"a{\\\"b\\\"}\""),
        ("foo 1_2\n", "1:5: invalid value \"1_2\" while parsing: \"foo 1_2\""),
        ("foo 0x1p-3\n", "1:5: invalid value \"0x1p-3\" while parsing: \"foo 0x1p-3\""),
        ("foo 0x1P-3\n", "1:5: invalid value \"0x1P-3\" while parsing: \"foo 0x1P-3\""),
        ("foo 1 2x\n", "1:8: expected next entry after timestamp, got \"x\" while parsing: \"foo 1 2x\""),
        ("foo 1 -5\n", "1:7: expected timestamp or new record, got \"-5\" while parsing: \"foo 1 -5\""),
        (
            "foo 1 99999999999999999999\n",
            "1:7: invalid timestamp \"99999999999999999999\" while parsing: \"foo 1 99999999999999999999\"",
        ),
        ("# TYPE a meh\n", "1:9: invalid metric type \"meh\""),
        ("# TYPE a untyped \n", "1:9: invalid metric type \"untyped \""),
        ("# TYPE 1a gauge\n", "1:8: expected metric name after TYPE, got \"1a\" while parsing: \"# TYPE 1a\""),
        ("a{b=\"\u{1}\" 1\n", "1:9: expected label name, got \"1\" while parsing: \"a{b=\\\"\\u{1}\\\" 1\""),
        ("}\n", "1:1: expected a valid start token, got \"}\" while parsing: \"}\""),
    ] {
        check(Format::Text, input, &[&format!("error {error}")]);
    }
    // Invalid UTF-8 is allowed in comments but not in label values or help.
    let bad_value = b"a{b=\"\xff\"} 1\n";
    let err = Parser::new(bad_value, Format::Text).find_map(Result::err).unwrap();
    assert_eq!(err.to_string(), "1:5: label value is not valid UTF-8");
    let bad_help = b"# HELP a x\xff\n";
    let err = Parser::new(bad_help, Format::Text).find_map(Result::err).unwrap();
    assert_eq!(err.to_string(), "1:9: help text is not valid UTF-8");
    assert_eq!(render(Parser::new(b"# \xff\n", Format::Text)), ["comment \"# \u{fffd}\""]);
    // NUL bytes are fine inside label values and help.
    check(
        Format::Text,
        "# HELP a he\0lp\na{b=\"c\0d\"} 1\n",
        &["help a \"he\\0lp\"", "a{b=\"c\0d\"} => {__name__=\"a\", b=\"c\\x00d\"} 1"],
    );
}

#[test]
fn error_renders_caret() {
    let input = b"ok 1\nbad{x=1} 2\n";
    let err = Parser::new(input, Format::Text).find_map(Result::err).unwrap();
    assert_eq!((err.line, err.column, err.offset), (2, 7, 11));
    assert_eq!(
        err.render(input),
        "2:7: expected label value, got \"1\" while parsing: \"bad{x=1\"\nbad{x=1} 2\n      ^"
    );
}

#[test]
fn openmetrics_entries() {
    check(
        Format::OpenMetrics,
        "# TYPE a counter\n\
         # UNIT a_seconds seconds\n\
         # HELP a he\\\"l\\\\p\\n\n\
         a_total{b=\"c\"} 1 1.5 # {t=\"x\"} 2 3.25\n\
         a_total{b=\"d\",} 1 # {} 2\n\
         a_created{b=\"c\"} 1.7e9\n\
         {\"a.b\",c=\"d\"} -Inf 0\n\
         # EOF\n",
        &[
            "type a counter",
            "unit a_seconds seconds",
            "help a \"he\\\"l\\\\p\\n\"",
            "a_total{b=\"c\"} => {__name__=\"a_total\", b=\"c\"} 1 @1500 # {t=\"x\"} 2 @3250",
            "a_total{b=\"d\",} => {__name__=\"a_total\", b=\"d\"} 1 # {} 2",
            "a_created{b=\"c\"} => {__name__=\"a_created\", b=\"c\"} 1700000000",
            "{\"a.b\",c=\"d\"} => {__name__=\"a.b\", c=\"d\"} -inf @0",
        ],
    );
    check(Format::OpenMetrics, "a 1\n# EOF", &["a => {__name__=\"a\"} 1"]);
}

#[test]
fn openmetrics_errors() {
    for (input, error) in [
        ("a 1\n", "2:1: data does not end with # EOF"),
        ("a 1", "1:4: data does not end with # EOF"),
        ("", "1:1: data does not end with # EOF"),
        ("a 1\n\n# EOF\n", "2:1: expected a valid start token, got \"\\n\" while parsing: \"\\n\""),
        ("# EOF\na 1\n", "2:1: unexpected data after # EOF"),
        ("# EOF\n\n", "2:1: unexpected data after # EOF"),
        ("# comment\n# EOF\n", "1:1: expected a valid start token, got \"#\" while parsing: \"#\""),
        ("a  1\n# EOF\n", "1:2: expected value after metric, got \" \" while parsing: \"a \""),
        ("a 1 \n# EOF\n", "1:5: expected timestamp, got \"\\n\" while parsing: \"a 1 \\n\""),
        ("a{b=\"c\" d=\"e\"} 1\n# EOF\n", "1:8: expected comma or brace close, got \" \" while parsing: \"a{b=\\\"c\\\" \""),
        ("a 1 NaN\n# EOF\n", "1:5: invalid timestamp \"NaN\" while parsing: \"a 1 NaN\""),
        ("a_total 1 # {a=\"b\"} 1 Inf\n# EOF\n", "1:23: invalid exemplar timestamp \"Inf\""),
        ("# HELP a\n# EOF\n", "1:9: expected text in HELP, got \"\\n\" while parsing: \"# HELP a\\n\""),
        ("# UNIT a seconds\n# EOF\n", "1:9: unit is not a suffix of the metric name"),
        ("# TYPE a untyped\n# EOF\n", "1:9: invalid metric type \"untyped\""),
        (
            "a_total 1 # {a=\"12345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678\"} 1\n# EOF\n",
            "1:14: exemplar labels have 129 characters, exceeding the limit of 128",
        ),
    ] {
        let got = render(Parser::new(input.as_bytes(), Format::OpenMetrics));
        assert_eq!(got.last().map(String::as_str), Some(format!("error {error}").as_str()), "input: {input:?}");
    }
}

#[test]
fn openmetrics_strict_rules() {
    for (input, error) in [
        ("# TYPE a counter\na_total 1\na_created 2\n# EOF\n", None),
        ("# TYPE a counter\na 1\n# EOF\n", Some("2:1: sample name a is not allowed in counter a")),
        ("# TYPE a counter\na_total -1\n# EOF\n", Some("2:1: counter a_total must not be NaN or negative")),
        ("# TYPE a gauge\n# TYPE a gauge\n# EOF\n", Some("2:1: second # TYPE for a")),
        ("# HELP a x\na 1\n# TYPE a gauge\n# EOF\n", Some("3:1: # TYPE for a after its samples")),
        ("a 1\nb 1\na 2\n# EOF\n", Some("3:1: metric family a appears twice or clashes with another family's samples")),
        (
            "a{x=\"1\"} 1\na{x=\"2\"} 1\na{x=\"1\"} 1\n# EOF\n",
            Some("3:1: samples of a for one label set are not together"),
        ),
        ("a 1 2\na 1 1\n# EOF\n", Some("2:1: timestamp of a goes backwards")),
        ("a 1 1\na 1\n# EOF\n", Some("2:1: a mixes samples with and without timestamps")),
        ("a{b=\"1\",} 1\n# EOF\n", Some("1:9: expected label name, got \"}\" while parsing: \"a{b=\\\"1\\\",}\"")),
        ("a{b=\"1\",b=\"2\"} 1\n# EOF\n", Some("1:1: label name b is given twice")),
        ("# TYPE a histogram\na_bucket{le=\"1\"} 1\na_bucket{le=\"+Inf\"} 2\na_count 2\na_sum 3\n# EOF\n", None),
        ("# TYPE a histogram\na_bucket{le=\"1\"} 1\n# EOF\n", Some("3:1: histogram a has no +Inf bucket")),
        (
            "# TYPE a histogram\na_bucket{le=\"+Inf\"} 2\na_count 1\na_sum 3\n# EOF\n",
            Some("5:1: a_count differs from the +Inf bucket"),
        ),
        (
            "# TYPE a histogram\na_bucket{le=\"+Inf\"} 2\na_count 2\n# EOF\n",
            Some("4:1: a_count and a_sum must come together"),
        ),
        (
            "# TYPE a histogram\na_bucket{le=\"2\"} 1\na_bucket{le=\"1\"} 1\n# EOF\n",
            Some("3:1: buckets of a_bucket are not in increasing le order"),
        ),
        ("# TYPE a histogram\na_bucket{le=\"+INF\"} 1\n# EOF\n", Some("2:1: invalid le \"+INF\"")),
        ("# TYPE a histogram\na_sum 1 # {a=\"b\"} 1\n# EOF\n", Some("2:1: exemplar not allowed on a_sum")),
        (
            "# TYPE a gaugehistogram\na_bucket{le=\"-1\"} 1\na_bucket{le=\"+Inf\"} 1\na_gcount 1\na_gsum -2\n# EOF\n",
            None,
        ),
        ("# TYPE a summary\na{quantile=\"1.5\"} 1\n# EOF\n", Some("2:1: invalid quantile \"1.5\"")),
        ("# TYPE a stateset\na{a=\"x\"} 1\na{a=\"y\"} 0\n# EOF\n", None),
        ("# TYPE a stateset\na{a=\"x\"} 2\n# EOF\n", Some("2:1: stateset a must have value 0 or 1")),
        ("# TYPE a info\na_info{x=\"y\"} 1\n# EOF\n", None),
        ("# TYPE a_u info\n# UNIT a_u u\n# EOF\n", Some("2:1: info a_u must not have a unit")),
        (
            "# TYPE a_created gauge\n# TYPE a counter\n# EOF\n",
            Some("2:1: sample name a_created of a clashes with an earlier metric family"),
        ),
        ("{\"a.b\"} 1\n# EOF\n", Some("1:2: expected label name, got \"\\\"\" while parsing: \"{\\\"\"")),
    ] {
        check_strict(input, error);
    }
}

fn sample(name: &str, labels: &[(&str, &str)], value: f64, timestamp: Option<i64>) -> FamilySample {
    FamilySample {
        name: name.into(),
        labels: Labels::from_pairs(labels.iter().copied()),
        value,
        timestamp,
        exemplar: None,
    }
}

#[test]
fn encodes_both_formats() {
    let families = vec![
        MetricFamily {
            name: "http_requests_total".into(),
            help: Some("Requests \\ \"served\"\nso far.".into()),
            metric_type: MetricType::Counter,
            unit: None,
            samples: vec![
                FamilySample {
                    exemplar: Some(FamilyExemplar {
                        labels: Labels::from_pairs([("trace_id", "abc")]),
                        value: 0.5,
                        timestamp: Some(1_500),
                    }),
                    ..sample(
                        "http_requests_total",
                        &[("code", "200"), ("path", "/a\"b\\c\nd")],
                        1027.0,
                        Some(1_395_066_363_000),
                    )
                },
                sample("http_requests_total", &[("code", "500")], 3.0, None),
            ],
        },
        MetricFamily {
            name: "latency_seconds".into(),
            help: None,
            metric_type: MetricType::Histogram,
            unit: Some("seconds".into()),
            samples: vec![
                sample("latency_seconds_bucket", &[("le", "0.5")], 1.0, None),
                sample("latency_seconds_bucket", &[("le", "+Inf")], 2.0, None),
                sample("latency_seconds_count", &[], 2.0, None),
                sample("latency_seconds_sum", &[], 17518624.0, None),
            ],
        },
        MetricFamily {
            name: "my.metric".into(),
            help: None,
            metric_type: MetricType::Unknown,
            unit: None,
            samples: vec![sample("my.metric", &[("a.b", "c")], f64::NAN, None)],
        },
    ];
    assert_eq!(
        encode(&families, Format::Text),
        "# HELP http_requests_total Requests \\\\ \"served\"\\nso far.\n\
         # TYPE http_requests_total counter\n\
         http_requests_total{code=\"200\",path=\"/a\\\"b\\\\c\\nd\"} 1027 1395066363000\n\
         http_requests_total{code=\"500\"} 3\n\
         # TYPE latency_seconds histogram\n\
         latency_seconds_bucket{le=\"0.5\"} 1\n\
         latency_seconds_bucket{le=\"+Inf\"} 2\n\
         latency_seconds_count 2\n\
         latency_seconds_sum 1.7518624e+07\n\
         {\"my.metric\",\"a.b\"=\"c\"} NaN\n"
    );
    let om = encode(&families, Format::OpenMetrics);
    assert_eq!(
        om,
        "# TYPE http_requests counter\n\
         # HELP http_requests Requests \\\\ \\\"served\\\"\\nso far.\n\
         http_requests_total{code=\"200\",path=\"/a\\\"b\\\\c\\nd\"} 1027.0 1395066363.000 # {trace_id=\"abc\"} 0.5 1.500\n\
         http_requests_total{code=\"500\"} 3.0\n\
         # TYPE latency_seconds histogram\n\
         # UNIT latency_seconds seconds\n\
         latency_seconds_bucket{le=\"0.5\"} 1.0\n\
         latency_seconds_bucket{le=\"+Inf\"} 2.0\n\
         latency_seconds_count 2.0\n\
         latency_seconds_sum 1.7518624e+07\n\
         {\"my.metric\",\"a.b\"=\"c\"} NaN\n\
         # EOF\n"
    );
    // Both outputs read back to the same families (the OpenMetrics counter family is named
    // without `_total`).
    let text_back = parse_families(encode(&families, Format::Text).as_bytes(), Format::Text).unwrap();
    assert_eq!(text_back.len(), 3);
    assert_eq!(text_back[0].samples[0].labels, families[0].samples[0].labels);
    assert_eq!(text_back[1].samples[3].value, 17518624.0);
    let om_back = parse_families(om.as_bytes(), Format::OpenMetrics).unwrap();
    assert_eq!(om_back[0].name, "http_requests");
    assert_eq!(om_back[0].samples[0].exemplar, families[0].samples[0].exemplar);
    assert_eq!(om_back[1].unit.as_deref(), Some("seconds"));
    assert_eq!(om_back[1].samples, families[1].samples);
}

#[test]
fn series_bytes_key_and_lazy_labels() {
    let input = b"# TYPE h histogram\nh_bucket{le=\"1\",x=\"a\\\\b\"} 2\n";
    let entries: Vec<_> = Parser::new(input, Format::Text).collect::<Result<_, _>>().unwrap();
    let Entry::Series(s) = &entries[1] else { panic!("not a series: {:?}", entries[1]) };
    assert_eq!(s.series(), b"h_bucket{le=\"1\",x=\"a\\\\b\"}");
    assert_eq!(s.metric_type(), MetricType::Histogram);
    let pairs: Vec<(String, String)> = s.labels().map(|(n, v)| (n.into_owned(), v.into_owned())).collect();
    assert_eq!(pairs, [("le".to_string(), "1".to_string()), ("x".to_string(), "a\\b".to_string())]);
    assert_eq!(s.to_labels().unwrap().get("le"), Some("1.0"));
    // Borrowed when nothing needs unescaping.
    assert!(matches!(s.labels().next(), Some((std::borrow::Cow::Borrowed(_), std::borrow::Cow::Borrowed(_)))));
    assert_eq!(
        Parser::new(b"a{b=\"1\",b=\"2\"} 1", Format::Text)
            .map(|e| match e.unwrap() {
                Entry::Series(s) => s.to_labels().unwrap_err().to_string(),
                _ => String::new(),
            })
            .collect::<Vec<_>>(),
        ["label name \"b\" is given twice"]
    );
}

#[test]
fn created_timestamps() {
    let input = b"# TYPE a counter\na_total 1\na_created 1.5e9\n# TYPE g gauge\ng_created 2\n# EOF\n";
    let created: Vec<Option<i64>> = Parser::new(input, Format::OpenMetrics)
        .filter_map(|e| match e.unwrap() {
            Entry::Series(s) => Some(s.created_timestamp()),
            _ => None,
        })
        .collect();
    assert_eq!(created, [None, Some(1_500_000_000_000), None]);
    let text = b"# TYPE a counter\na_created 1.5e9\n";
    let Some(Ok(Entry::Series(s))) = Parser::new(text, Format::Text).nth(1) else { panic!("no series") };
    assert_eq!(s.created_timestamp(), None);
}

#[test]
fn text_format_accepts_and_rejects() {
    // (input, parses) — the cases Prometheus' promparse tests reject or accept.
    for (input, ok) in [
        ("a{b=\"\0ss\"} 1\n", true),
        ("a{b=\"\0\"} 1\n", true),
        ("# HELP a he\0lp\n", true),
        ("# a comment with \0\n", true),
        ("a{b=\0\"ssss\"} 1\n", false),
        ("a{b=\"\0", false),
        ("a{b\0=\"hiih\"}\t1", false),
        ("a\0{b=\"ddd\"} 1", false),
        ("a 0 1\0", false),
        ("a{b=\n", false),
        ("a{\u{ff}=\"foo\"} 1\n", false),
        ("{\"a\", \"b = \"c\"}", false),
        ("{\"a\",b\nc=\"d\"} 1", false),
        ("a true\n", false),
        ("something_weird{problem=\"", false),
        ("empty_label_name{=\"\"} 0", false),
        ("foo 0 1_2\n", false),
        ("# TYPE #\n", false),
        ("# HELP #\n", false),
        ("a{b=\"c\"d=\"e\"} 1\n", true),
        ("a{b=\"multi\nline\"} 1\n", true),
        ("a 1\r\n", false),
        ("a{} 1\n", true),
        ("a{,} 1\n", false),
        ("a{b=\"c\",,} 1\n", false),
        ("a -Inf\nb +inf\nc nan\n", true),
        ("a 1e400\n", false),
        ("a -NaN\n", false),
    ] {
        let errors: Vec<_> = Parser::new(input.as_bytes(), Format::Text).filter_map(Result::err).collect();
        assert_eq!(errors.is_empty(), ok, "{input:?}: {errors:?}");
    }
}

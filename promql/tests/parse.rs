//! Parser, checker and formatter behaviour through the public API.

use sextant_promql::{format, parse, parse_with, Expr, ParseOptions};

/// (query, canonical form) as Prometheus 3.14's printer writes them.
const FORMATS: &[(&str, &str)] = &[
    (r#"sum by() (task:errors:rate10s{job="s"})"#, r#"sum(task:errors:rate10s{job="s"})"#),
    (r#"sum by(code) (task:errors:rate10s{job="s"})"#, r#"sum by (code) (task:errors:rate10s{job="s"})"#),
    (r#"sum without() (task:errors:rate10s{job="s"})"#, r#"sum without () (task:errors:rate10s{job="s"})"#),
    (
        r#"sum without(instance) (task:errors:rate10s{job="s"})"#,
        r#"sum without (instance) (task:errors:rate10s{job="s"})"#,
    ),
    (r#"sum by("foo.bar") (task:errors:rate10s{job="s"})"#, r#"sum by ("foo.bar") (task:errors:rate10s{job="s"})"#),
    (
        r#"sum without("foo.bar") (task:errors:rate10s{job="s"})"#,
        r#"sum without ("foo.bar") (task:errors:rate10s{job="s"})"#,
    ),
    (r#"topk(5, task:errors:rate10s{job="s"})"#, r#"topk(5, task:errors:rate10s{job="s"})"#),
    (
        r#"count_values("value", task:errors:rate10s{job="s"})"#,
        r#"count_values("value", task:errors:rate10s{job="s"})"#,
    ),
    (r#"a - on() c"#, r#"a - on () c"#),
    (r#"a - on(b) c"#, r#"a - on (b) c"#),
    (r#"a - on(b) group_left(x) c"#, r#"a - on (b) group_left (x) c"#),
    (r#"a - on(b) group_left(x, y) c"#, r#"a - on (b) group_left (x, y) c"#),
    (r#"a - on(b) group_left c"#, r#"a - on (b) group_left () c"#),
    (r#"a - on(b) group_left() (c)"#, r#"a - on (b) group_left () (c)"#),
    (r#"a - ignoring(b) c"#, r#"a - ignoring (b) c"#),
    (r#"a - ignoring() c"#, r#"a - c"#),
    (r#"a - ignoring() group_left c"#, r#"a - ignoring () group_left () c"#),
    (r#"a + fill(-23) b"#, r#"a + fill (-23) b"#),
    (r#"a + fill_left(-23) b"#, r#"a + fill_left (-23) b"#),
    (r#"a + fill_right(42) b"#, r#"a + fill_right (42) b"#),
    (r#"a + fill_left(-23) fill_right(42) b"#, r#"a + fill_left (-23) fill_right (42) b"#),
    (r#"a + fill_left(5) fill_right(5) b"#, r#"a + fill (5) b"#),
    (r#"a + on(b) group_left fill(-23) c"#, r#"a + on (b) group_left () fill (-23) c"#),
    (r#"up > bool 0"#, r#"up > bool 0"#),
    (r#"a offset 1m"#, r#"a offset 1m"#),
    (r#"a offset -7m"#, r#"a offset -7m"#),
    (r#"a{c="d"}[5m] offset 1m"#, r#"a{c="d"}[5m] offset 1m"#),
    (r#"a[5m] offset 1m"#, r#"a[5m] offset 1m"#),
    (r#"a[12m] offset -3m"#, r#"a[12m] offset -3m"#),
    (r#"a[1h:5m] offset 1m"#, r#"a[1h:5m] offset 1m"#),
    (r#"a anchored"#, r#"a anchored"#),
    (r#"a[5m] anchored"#, r#"a[5m] anchored"#),
    (r#"a{b="c"}[5m] anchored"#, r#"a{b="c"}[5m] anchored"#),
    (r#"a{b="c"}[5m] anchored offset 1m"#, r#"a{b="c"}[5m] anchored offset 1m"#),
    (r#"a{b="c"}[5m] anchored @ start() offset 1m"#, r#"a{b="c"}[5m] anchored @ start() offset 1m"#),
    (r#"a smoothed"#, r#"a smoothed"#),
    (r#"a[5m] smoothed"#, r#"a[5m] smoothed"#),
    (r#"a{b="c"}[5m] smoothed"#, r#"a{b="c"}[5m] smoothed"#),
    (r#"a{b="c"}[5m] smoothed offset 1m"#, r#"a{b="c"}[5m] smoothed offset 1m"#),
    (r#"a{b="c"}[5m] smoothed @ start() offset 1m"#, r#"a{b="c"}[5m] smoothed @ start() offset 1m"#),
    (r#"{__name__="a"}"#, r#"{__name__="a"}"#),
    (r#"a{b!="c"}[1m]"#, r#"a{b!="c"}[1m]"#),
    (r#"a{b=~"c"}[1m]"#, r#"a{b=~"c"}[1m]"#),
    (r#"a{b!~"c"}[1m]"#, r#"a{b!~"c"}[1m]"#),
    (r#"a @ 10"#, r#"a @ 10.000"#),
    (r#"a[1m] @ 10"#, r#"a[1m] @ 10.000"#),
    (r#"a @ start()"#, r#"a @ start()"#),
    (r#"a @ end()"#, r#"a @ end()"#),
    (r#"a[1m] @ start()"#, r#"a[1m] @ start()"#),
    (r#"a[1m] @ end()"#, r#"a[1m] @ end()"#),
    (r#"{__name__="",a="x"}"#, r#"{__name__="",a="x"}"#),
    (r#"{"a.b"="c"}"#, r#"{"a.b"="c"}"#),
    (r#"{"0"="1"}"#, r#"{"0"="1"}"#),
    (r#"{"_0"="1"}"#, r#"{_0="1"}"#),
    (r#"{""="0"}"#, r#"{""="0"}"#),
    ("{``=\"0\"}", r#"{""="0"}"#),
    ("1048576", "1048576"),
    ("foo[step()]", "foo[step()]"),
    ("foo[-step()]", "foo[-step()]"),
    ("foo[(step())]", "foo[(step())]"),
    ("foo[-(step())]", "foo[-(step())]"),
    ("foo offset step()", "foo offset step()"),
    ("foo offset -step()", "foo offset -step()"),
    ("foo offset (step())", "foo offset (step())"),
    ("foo offset -(step())", "foo offset -(step())"),
    ("foo offset +(5*2)", "foo offset (5 * 2)"),
    ("foo offset +min_of(10s, 20s)", "foo offset min_of(10s, 20s)"),
    ("foo offset -min_of(10s, 20s)", "foo offset -min_of(10s, 20s)"),
    ("foo offset -min_of(10s, +max_of(step() ^ 2, 2))", "foo offset -min_of(10s, max_of(step() ^ 2, 2))"),
    ("foo[200-min_of(-step()^+step(),1)]", "foo[200 - min_of(-step() ^ step(), 1)]"),
    (
        "foo[200 - min_of(step() + 10s, -max_of(step() ^ 2, 3))]",
        "foo[200 - min_of(step() + 10s, -max_of(step() ^ 2, 3))]",
    ),
    ("foo[range()]", "foo[range()]"),
    ("foo[-range()]", "foo[-range()]"),
    ("foo offset range()", "foo offset range()"),
    ("foo offset -range()", "foo offset -range()"),
    ("foo[max_of(range(), 5s)]", "foo[max_of(range(), 5s)]"),
    (r#"predict_linear(foo[1h], 3000)"#, r#"predict_linear(foo[1h], 3000)"#),
    (r#"sum by("üüü") (foo)"#, r#"sum by ("üüü") (foo)"#),
    (r#"sum without("äää") (foo)"#, r#"sum without ("äää") (foo)"#),
    (r#"count by("ööö", job) (foo)"#, r#"count by ("ööö", job) (foo)"#),
    ("1 + 2 * 3 ^ 4 ^ 5", "1 + 2 * 3 ^ 4 ^ 5"),
    ("-1 ^ 2", "-1 ^ 2"),
    ("- - 1", "1"),
    ("-(1)", "-(1)"),
    ("- -foo", "--foo"),
    ("0x1F + 1e3 + 1_000 + .5 + Inf + -NaN", "31 + 1000 + 1000 + 0.5 + +Inf + NaN"),
    ("time() - 1h30m", "time() - 1h30m"),
    ("foo[300]", "foo[5m]"),
    ("foo offset 90", "foo offset 1m30s"),
    ("foo[5m:]", "foo[5m:]"),
    ("foo[1h:5m] @ 100 offset -1d", "foo[1h:5m] @ 100.000 offset -1d"),
    ("foo[(5m + 1m) * 2]", "foo[(5m + 1m) * 2]"),
    ("SUM BY (job) (x)", "sum by (job) (x)"),
    ("sum(x) without (a, b,)", "sum without (a, b) (x)"),
    ("topk by (x) (5, y)", "topk by (x) (5, y)"),
    ("a and on(x) b or c unless d", "a and on (x) b or c unless d"),
    ("x{a='b', c=`d`, e=\"f\\n\"}", "x{a=\"b\",c=\"d\",e=\"f\\n\"}"),
    ("{\"my.metric\", \"a.b\"=\"c\"}", "{\"a.b\"=\"c\",__name__=\"my.metric\"}"),
    ("'a\\'b'", "\"a'b\""),
    ("foo # comment\n + bar", "foo + bar"),
    ("label_replace(up, \"a\", \"$1\", \"b\", \"(.*)\")", "label_replace(up, \"a\", \"$1\", \"b\", \"(.*)\")"),
    ("rate(x[5m]) >/ 1", "rate(x[5m]) >/ 1"),
    ("count_values by (a) (\"v\", x)", "count_values by (a) (\"v\", x)"),
    ("sum:rate5m", "sum:rate5m"),
    ("sum + avg", "sum + avg"),
    ("fill + fill", "fill + fill"),
];

#[test]
fn formats_like_prometheus() {
    let mut wrong = vec![];
    for &(query, canonical) in FORMATS {
        match parse_with(query, ParseOptions::all()) {
            Ok(e) => {
                let text = format(&e);
                if text != canonical {
                    wrong.push(format!("{query:?}: formatted as {text:?}, expected {canonical:?}"));
                }
                let again = parse_with(&text, ParseOptions::all()).map(|a| a.without_spans());
                if again.as_ref() != Ok(&e.without_spans()) {
                    wrong.push(format!("{query:?}: {text:?} parses back as {again:?}"));
                }
            }
            Err(err) => wrong.push(format!("{query:?}: {err}")),
        }
    }
    assert!(wrong.is_empty(), "{} of {} differ:\n{}", wrong.len(), FORMATS.len(), wrong.join("\n"));
}

/// (query, byte position, message) as Prometheus 3.14's parser reports them.
const ERRORS: &[(&str, usize, &str)] = &[
    ("# just a comment\n\n", 0, "no expression found in input"),
    ("1+", 2, "unexpected end of input"),
    (".", 0, "unexpected character: '.'"),
    ("2.5.", 0, r#"bad number or duration syntax: "2.5.""#),
    ("100..4", 0, r#"bad number or duration syntax: "100..""#),
    ("0deadbeef", 0, "bad number or duration syntax: \"0de\""),
    ("1 /", 3, "unexpected end of input"),
    ("*1", 0, "unexpected <op:*>"),
    ("(1))", 4, "unexpected right parenthesis ')'"),
    ("((1)", 4, "unclosed left parenthesis"),
    ("(", 1, "unclosed left parenthesis"),
    ("1 and 1", 0, "set operator \"and\" not allowed in binary scalar expression"),
    ("1 == 1", 2, "comparisons between scalars must use BOOL modifier"),
    ("1 or 1", 0, "set operator \"or\" not allowed in binary scalar expression"),
    ("1 unless 1", 0, "set operator \"unless\" not allowed in binary scalar expression"),
    ("1 !~ 1", 2, "unexpected character after '!': '~'"),
    ("1 =~ 1", 2, "unexpected character after '=': '~'"),
    (
        r#"-"string""#,
        0,
        r#"unary expression only allowed on expressions of type scalar or instant vector, got "string""#,
    ),
    (
        r#"-test[5m]"#,
        0,
        r#"unary expression only allowed on expressions of type scalar or instant vector, got "range vector""#,
    ),
    (r#"*test"#, 0, "unexpected <op:*>"),
    (r#"@@"#, 0, r#"unexpected <op:@>"#),
    (
        "1 offset 1d",
        0,
        "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
    ),
    ("foo offset 1s offset 2s", 0, "offset may not be set multiple times"),
    ("a - on(b) ignoring(c) d", 10, "unexpected <ignoring>"),
    ("foo and 1", 0, "set operator \"and\" not allowed in binary scalar expression"),
    ("1 and foo", 0, "set operator \"and\" not allowed in binary scalar expression"),
    ("foo or 1", 0, "set operator \"or\" not allowed in binary scalar expression"),
    ("1 or foo", 0, "set operator \"or\" not allowed in binary scalar expression"),
    ("foo unless 1", 0, "set operator \"unless\" not allowed in binary scalar expression"),
    ("1 unless foo", 0, "set operator \"unless\" not allowed in binary scalar expression"),
    ("1 or on(bar) foo", 0, "vector matching only allowed between instant vectors"),
    ("foo == on(bar) 10", 0, "vector matching only allowed between instant vectors"),
    ("foo + group_left(baz) bar", 6, "unexpected <group_left>"),
    ("foo and on(bar) group_left(baz) bar", 0, "no grouping allowed for \"and\" operation"),
    ("foo and on(bar) group_right(baz) bar", 0, "no grouping allowed for \"and\" operation"),
    ("foo or on(bar) group_left(baz) bar", 0, "no grouping allowed for \"or\" operation"),
    ("foo or on(bar) group_right(baz) bar", 0, "no grouping allowed for \"or\" operation"),
    ("foo unless on(bar) group_left(baz) bar", 0, "no grouping allowed for \"unless\" operation"),
    ("foo unless on(bar) group_right(baz) bar", 0, "no grouping allowed for \"unless\" operation"),
    (
        r#"http_requests{group="production"} + on(instance) group_left(job,instance) cpu_count{type="smp"}"#,
        34,
        "label \"instance\" must not occur in ON and GROUP clause at once",
    ),
    ("foo + bool bar", 4, "bool modifier can only be used on comparison operators"),
    ("foo + bool 10", 4, "bool modifier can only be used on comparison operators"),
    ("foo and bool 10", 4, "bool modifier can only be used on comparison operators"),
    (
        r#"http_requests{group="production"} + on(instance) group_left(job,instance) cpu_count{type="smp"}"#,
        34,
        "label \"instance\" must not occur in ON and GROUP clause at once",
    ),
    (r#"foo @ +Inf"#, 0, "timestamp out of bounds for @ modifier: +Inf"),
    (r#"foo @ -Inf"#, 0, "timestamp out of bounds for @ modifier: -Inf"),
    (r#"foo @ NaN"#, 0, "timestamp out of bounds for @ modifier: NaN"),
    (r#"{"#, 1, "unexpected end of input inside braces"),
    (r#"}"#, 0, "unexpected character: '}'"),
    (r#"some{"#, 5, "unexpected end of input inside braces"),
    (r#"some}"#, 4, "unexpected character: '}'"),
    (r#"some_metric{a=b}"#, 14, "unexpected identifier \"b\" in label matching, expected string"),
    (r#"some_metric{a:b="b"}"#, 13, "unexpected character inside braces: ':'"),
    (r#"foo{a*"b"}"#, 5, "unexpected character inside braces: '*'"),
    (r#"foo{gibberish}"#, 13, r#"unexpected "}" in label matching, expected label matching operator"#),
    (r#"foo{1}"#, 4, "unexpected character inside braces: '1'"),
    (r#"{}"#, 0, "vector selector must contain at least one non-empty matcher"),
    (r#"{x=""}"#, 0, "vector selector must contain at least one non-empty matcher"),
    (r#"{x=~".*"}"#, 0, "vector selector must contain at least one non-empty matcher"),
    (r#"{x!~".+"}"#, 0, "vector selector must contain at least one non-empty matcher"),
    (r#"{x!="a"}"#, 0, "vector selector must contain at least one non-empty matcher"),
    (r#"foo{__name__="bar"}"#, 0, r#"metric name must not be set twice: "foo" or "bar""#),
    (r#"foo{__name__= =}"#, 14, "unexpected \"=\" in label matching, expected string"),
    (r#"foo{,}"#, 4, "unexpected \",\" in label matching, expected identifier or \"}\""),
    (r#"foo{__name__ == "bar"}"#, 14, "unexpected \"=\" in label matching, expected string"),
    (r#"foo{__name__="bar" lol}"#, 19, r#"unexpected identifier "lol" in label matching, expected "," or "}""#),
    (r#"foo{"a"=}"#, 8, r#"unexpected "}" in label matching, expected string"#),
    (r#"foo[5mm]"#, 4, "bad number or duration syntax: \"5mm\""),
    (r#"foo[5m1]"#, 4, "bad number or duration syntax: \"5m1\""),
    (r#"foo[5m:1m1]"#, 7, "bad number or duration syntax: \"1m1\""),
    (r#"foo[5y1hs]"#, 4, "unknown unit \"hs\" in duration \"5y1hs\""),
    (r#"foo[5m1h]"#, 4, "not a valid duration string: \"5m1h\""),
    (r#"foo[5m1m]"#, 4, "not a valid duration string: \"5m1m\""),
    (r#"foo[0m]"#, 4, "duration must be greater than 0"),
    (r#"foo[]"#, 4, "unexpected \"]\" in subquery or range selector, expected number, duration, step(), or range()"),
    (r#"foo[-1]"#, 4, "duration must be greater than 0"),
    (r#"some_metric[5m] OFFSET 1mm"#, 23, "bad number or duration syntax: \"1mm\""),
    (
        r#"some_metric[5m] OFFSET"#,
        22,
        "unexpected end of input in offset, expected number, duration, step(), or range()",
    ),
    (r#"some_metric OFFSET 1m[5m]"#, 21, "no offset modifiers allowed before range"),
    (r#"some_metric[5m] @"#, 17, "unexpected end of input in @, expected timestamp"),
    (r#"some_metric @ 1234 [5m]"#, 19, "no @ modifiers allowed before range"),
    (r#"(foo + bar)[5m]"#, 11, "ranges only allowed for vector selectors"),
    (r#"sum by ("foo)(some_metric{})"#, 8, "unterminated quoted string"),
    ("sum without(==)(some_metric)", 12, "unexpected <op:==> in grouping opts, expected label"),
    ("sum without(,)(some_metric)", 12, r#"unexpected "," in grouping opts, expected label"#),
    ("sum without(foo,,)(some_metric)", 16, r#"unexpected "," in grouping opts, expected label"#),
    (r#"sum some_metric by (test)"#, 4, r#"unexpected identifier "some_metric""#),
    (r#"sum (some_metric) by test"#, 21, r#"unexpected identifier "test" in grouping opts, expected "(""#),
    (r#"sum () by (test)"#, 0, "no arguments for aggregate expression provided"),
    ("MIN keep_common (some_metric)", 4, "unexpected identifier \"keep_common\""),
    ("MIN (some_metric) keep_common", 18, r#"unexpected identifier "keep_common""#),
    (r#"sum (some_metric) without (test) by (test)"#, 33, "unexpected <by>"),
    (r#"sum without (test) (some_metric) by (test)"#, 33, "unexpected <by>"),
    (r#"topk(some_metric)"#, 0, "wrong number of arguments for aggregate expression provided, expected 2, got 1"),
    (r#"topk(some_metric,)"#, 16, "trailing commas not allowed in function call args"),
    (r#"topk(some_metric, other_metric)"#, 5, "expected type scalar in aggregation parameter, got instant vector"),
    (r#"count_values(5, other_metric)"#, 13, "expected type string in aggregation parameter, got scalar"),
    (
        r#"rate(some_metric[5m]) @ 1234"#,
        0,
        "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
    ),
    ("floor()", 0, "expected 1 argument(s) in call to \"floor\", got 0"),
    ("floor(some_metric, other_metric)", 0, "expected 1 argument(s) in call to \"floor\", got 2"),
    ("floor(some_metric, 1)", 0, "expected 1 argument(s) in call to \"floor\", got 2"),
    ("floor(1)", 6, "expected type instant vector in call to function \"floor\", got scalar"),
    ("hour(some_metric, some_metric, some_metric)", 0, "expected at most 1 argument(s) in call to \"hour\", got 3"),
    ("time(some_metric)", 0, "expected 0 argument(s) in call to \"time\", got 1"),
    ("non_existent_function_far_bar()", 0, "unknown function with name \"non_existent_function_far_bar\""),
    ("rate(some_metric)", 5, "expected type range vector in call to function \"rate\", got instant vector"),
    ("*1", 0, "unexpected <op:*>"),
    ("-=", 1, r#"unexpected "=""#),
    ("++-++-+-+-<", 10, r#"unexpected <op:<>"#),
    ("e-+=/(0)", 3, r#"unexpected "=""#),
    ("a>b()", 2, r#"unknown function with name "b""#),
    ("rate(avg)", 5, r#"expected type range vector in call to function "rate", got instant vector"#),
    ("`\\``", 3, "unterminated raw string"),
    (r#""\"#, 0, "escape sequence not terminated"),
    (r#""\c""#, 0, "unknown escape sequence U+0063 'c'"),
    (r#""\x.""#, 0, "illegal character U+002E '.' in escape sequence"),
    (r#"foo{bar="baz"}["#, 15, r#"unexpected end of input in duration expression"#),
    ("test[5d] OFFSET 10s [10m:5s]", 0, "subquery is only allowed on instant vector, got matrix instead"),
    (r#"(foo + bar{nm="val"})[5m:][10m:5s]"#, 0, r#"subquery is only allowed on instant vector, got matrix instead"#),
    ("rate(food[1m])[1h] offset 1h", 14, r#"ranges only allowed for vector selectors"#),
    ("rate(food[1m])[1h] @ 100", 14, r#"ranges only allowed for vector selectors"#),
    (
        r#"info(rate(http_request_counter_total{}[5m]), target_info{foo="bar"})"#,
        45,
        r#"expected label selectors only, got vector selector instead"#,
    ),
    (r#"info(http_request_counter_total{namespace="zzz"}, {foo="bar"} == 1)"#, 50, "expected label selectors only"),
    (
        r#"foo[step]"#,
        8,
        r#"unexpected "]" in subquery or range selector, expected number, duration, step(), or range()"#,
    ),
    (r#"foo[step()/0d]"#, 10, r#"division by zero"#),
    (r#"foo[5s/0d]"#, 6, r#"division by zero"#),
    (r#"foo offset (4d/0)"#, 14, r#"division by zero"#),
    (r#"foo[5s%0d]"#, 6, r#"modulo by zero"#),
    (r#"foo offset 9.5e10"#, 11, r#"duration out of range"#),
    (r#"foo[9.5e10]"#, 4, r#"duration out of range"#),
    ("sum(", 4, "unclosed left parenthesis"),
    ("sum(rate(", 9, "unclosed left parenthesis"),
    ("foo[5s x 5s]", 7, "unexpected character: 'x', expected ':'"),
    ("foo[5s s 5s]", 7, "unexpected character: 's', expected ':'"),
];

#[test]
fn errors_read_like_prometheus() {
    let mut wrong = vec![];
    for &(query, pos, message) in ERRORS {
        let expected = format!("1:{}: parse error: {message}", pos + 1);
        match parse_with(query, ParseOptions::all()) {
            Ok(e) => wrong.push(format!("{query:?}: parsed as {e}, expected {expected}")),
            Err(err) if err.to_string() != expected => wrong.push(format!("{query:?}: got {err}, expected {expected}")),
            Err(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{} of {} differ:\n{}", wrong.len(), ERRORS.len(), wrong.join("\n"));
}

/// Nested shapes: `n` levels of each.
fn nested(n: usize) -> Vec<(&'static str, String)> {
    vec![
        ("parens", format!("{}1{}", "(".repeat(n), ")".repeat(n))),
        ("unary", format!("{}foo", "-".repeat(n))),
        ("calls", format!("{}foo{}", "abs(".repeat(n), ")".repeat(n))),
        ("aggregations", format!("{}foo{}", "sum by (a) (".repeat(n), ")".repeat(n))),
        ("power", format!("{}1", "1 ^ ".repeat(n))),
        ("left chain", format!("1{}", " + 1".repeat(n))),
        ("mixed", format!("{}foo{}", "-(abs(".repeat(n / 3), "))".repeat(n / 3))),
        ("durations", format!("foo[{}1{}]", "(".repeat(n - 4), " + 1)".repeat(n - 4))),
        ("subqueries", format!("{}foo{}", "max_over_time(".repeat(n / 2), "[1m:])".repeat(n / 2))),
    ]
}

/// Debug builds, 2 MiB stacks: the deepest accepted input parses, checks, formats and drops
/// without overflowing, and deeper input is a clear error.
#[test]
fn deep_nesting_is_bounded() {
    let limit = sextant_promql::MAX_DEPTH;
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            for (shape, query) in nested(limit - 2) {
                let parsed = parse(&query);
                if let Ok(e) = &parsed {
                    let text = format(e);
                    assert!(parse(&text).is_ok(), "{shape}: {text}");
                }
                assert!(parsed.is_ok(), "{shape} at {}: {:?}", limit - 2, parsed.err());
            }
            for (shape, query) in nested(limit + 2).into_iter().chain(nested(100_000)) {
                let err = parse(&query).expect_err(shape);
                assert!(err.message.contains("nesting is too deep"), "{shape}: {err}");
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn caret_points_at_the_error() {
    let err = parse("sum(rate(x[5m])").unwrap_err();
    assert_eq!(err.render_caret(), "sum(rate(x[5m])\n               ^ unclosed left parenthesis");
    let err = parse("foo and\n  1 == 1").unwrap_err();
    assert_eq!(err.to_string(), "2:5: parse error: comparisons between scalars must use BOOL modifier");
    assert_eq!(err.render_caret(), "  1 == 1\n    ^^ comparisons between scalars must use BOOL modifier");
    let err = parse("rate(x{a=~\"(\"}[5m])").unwrap_err();
    assert_eq!((err.line, err.column), (1, 8));
    assert!(err.message.starts_with("invalid regular expression \"(\""), "{err}");
}

#[test]
fn options_gate_experimental_syntax() {
    for (query, message) in [
        ("sort_by_label(x, \"a\")", "function \"sort_by_label\" is not enabled"),
        (
            "limitk(1, x)",
            "limitk() is experimental and must be enabled with --enable-feature=promql-experimental-functions",
        ),
        ("rate(x[5m] anchored)", "anchored modifier is experimental and not enabled"),
        ("x + fill(0) y", "binop fill modifiers are experimental and not enabled"),
    ] {
        assert_eq!(parse(query).unwrap_err().message, message, "{query}");
        assert!(parse_with(query, ParseOptions::all()).is_ok(), "{query}");
    }
    let no_durations = ParseOptions { duration_expressions: false, ..ParseOptions::default() };
    assert_eq!(
        parse_with("x[5m + 1m]", no_durations).unwrap_err().message,
        "experimental duration expression is not enabled"
    );
    assert!(parse_with("x[5m] offset 1m", no_durations).is_ok());
}

#[test]
fn ast_shape_for_the_evaluator() {
    use sextant_promql::{At, BinaryOp, Cardinality, Duration};
    let e = parse("a / on (x) group_left (y) b{c!~\"d\"}[5m] @ end() offset -1m").unwrap_err();
    assert_eq!(e.message, "binary expression must contain only scalar and instant vector types");
    let Expr::Binary(b) = parse("a / on (x) group_left (y) b offset 1m").unwrap() else { panic!() };
    assert_eq!(b.op, BinaryOp::Div);
    let m = b.matching.unwrap();
    assert_eq!(
        (m.card, m.on, m.matching_labels, m.include),
        (Cardinality::ManyToOne, true, vec!["x".into()], vec!["y".into()])
    );
    let Expr::VectorSelector(vs) = *b.rhs else { panic!() };
    assert_eq!(vs.offset, Duration::Fixed(60_000));
    let Expr::Call(c) = parse("rate(b{c!~\"d\"}[5m] @ 10.5)").unwrap() else { panic!() };
    let Expr::MatrixSelector(ms) = &c.args[0] else { panic!() };
    assert_eq!((ms.range.clone(), ms.selector.at), (Duration::Fixed(300_000), Some(At::Timestamp(10_500))));
    assert_eq!(ms.selector.matchers.len(), 2);
    assert_eq!(c.func.name, "rate");
    let Expr::Subquery(sq) = parse("x[step() * 2:]").unwrap() else { panic!() };
    assert_eq!(sq.range.resolve(15_000, 0), 30_000);
    assert_eq!(sq.step, None);
    // Scalar operands drop vector matching, set operators are many-to-many.
    let Expr::Binary(b) = parse("a + 1").unwrap() else { panic!() };
    assert!(b.matching.is_none());
    let Expr::Binary(b) = parse("a or b").unwrap() else { panic!() };
    assert_eq!(b.matching.unwrap().card, Cardinality::ManyToMany);
}

/// Queries that Prometheus 3.14's parser tests accept (all features on).
const ACCEPTED: &[&str] = &[
    "1",
    "+Inf",
    "-Inf",
    ".5",
    "5.",
    "123.4567",
    "5e-3",
    "5e3",
    "0xc",
    "0755",
    "+5.5e-3",
    "-0755",
    "1 + 1",
    "1 - 1",
    "1 * 1",
    "1 % 1",
    "1 / 1",
    "1 == bool 1",
    "1 != bool 1",
    "1 > bool 1",
    "1 >= bool 1",
    "1 < bool 1",
    "1 <= bool 1",
    "-1^2",
    "-1*2",
    "-1+2",
    "-1^-2",
    "+1 + -2 * 1",
    "1 + 2/(3*1)",
    "1 < bool 2 - 1 * 2",
    "-some_metric",
    "+some_metric",
    " +some_metric",
    r#" +{"some_metric"}"#,
    r#"offset{step="1s"}[5m]"#,
    r#"step{offset="1s"}[5m]"#,
    r#"anchored{job="test"}"#,
    r#"smoothed{job="test"}"#,
    "foo * bar",
    "foo * sum",
    "foo == 1",
    "foo == bool 1",
    "2.5 / bar",
    "foo and bar",
    "foo or bar",
    "foo unless bar",
    "foo * on(test,blub) bar",
    "foo * on(test,blub) group_left bar",
    "foo and on(test,blub) bar",
    "foo and on() bar",
    "foo and ignoring(test,blub) bar",
    "foo and ignoring() bar",
    "foo unless on(bar) baz",
    "foo / on(test,blub) group_left(bar) bar",
    "foo / ignoring(test,blub) group_left(blub) bar",
    "foo / ignoring(test,blub) group_left(bar) bar",
    "foo - on(test,blub) group_right(bar,foo) bar",
    "foo - ignoring(test,blub) group_right(bar,foo) bar",
    "foo",
    "min",
    "foo offset 5m",
    "foo offset -7m",
    "foo offset +(5)",
    "foo offset -(5)",
    r#"foo OFFSET 1h30m"#,
    r#"foo OFFSET 1m30ms"#,
    r#"foo @ 1603774568"#,
    r#"foo @ -100"#,
    r#"foo @ .3"#,
    r#"foo @ 3."#,
    r#"foo @ 3.33"#,
    r#"foo @ 3e2"#,
    r#"foo @ 3e-1"#,
    r#"foo @ 0xA"#,
    r#"foo @ -3.3e1"#,
    r#"foo:bar{a="bc"}"#,
    r#"{"foo"}"#,
    r#"{"foo", a="bc"}"#,
    r#"foo{NaN='bc'}"#,
    r#"foo{bar='}'}"#,
    r#"foo{a="b", foo!="bar", test=~"test", bar!~"baz"}"#,
    r#"foo{a="b", foo!="bar", test=~"test", bar!~"baz",}"#,
    "test[1000ms]",
    "test[1001ms]",
    "test[1002ms]",
    "test[5s]",
    "test[5m]",
    r#"foo[5m30s]"#,
    "test[5h] OFFSET 5m",
    "test[5d] OFFSET 10s",
    "test[5w] offset 2w",
    r#"test{a="b"}[5y] OFFSET 3d"#,
    r#"test{a="b"}[5m] OFFSET 3600"#,
    r#"foo[3ms] @ 2.345"#,
    r#"foo[4s180ms] @ 2.345"#,
    r#"foo[4.18] @ 2.345"#,
    r#"foo[4s18ms] @ 2.345"#,
    r#"foo[4.018] @ 2.345"#,
    r#"test{a="b"}[5y] @ 1603774699"#,
    "test[5]",
    r#"some_metric[5m] @ 1m"#,
    "sum by (foo)(some_metric)",
    "sum by (anchored)(some_metric)",
    "sum by (smoothed)(some_metric)",
    r#"sum by ("foo bar")({"some.metric"})"#,
    r#"sum by ("foo", bar, 'baz')({"some.metric"})"#,
    "avg by (foo)(some_metric)",
    "max by (foo)(some_metric)",
    "sum without (foo) (some_metric)",
    "sum (some_metric) without (foo)",
    "stddev(some_metric)",
    "stdvar by (foo)(some_metric)",
    "sum by ()(some_metric)",
    "sum by (foo,bar,)(some_metric)",
    "sum by (foo,)(some_metric)",
    "topk(5, some_metric)",
    r#"count_values("value", some_metric)"#,
    "time()",
    r#"floor(some_metric{foo!="bar"})"#,
    "rate(some_metric[5m])",
    "round(some_metric)",
    "round(some_metric, 5)",
    "sum(sum)",
    "a + sum",
    r#""double-quoted string \" with escaped quote""#,
    r#"'single-quoted string \' with escaped quote'"#,
    "`backtick-quoted string`",
    r#"foo{bar="baz"}[10m:6s]"#,
    r#"foo{bar="baz"}[10m5s:1h6ms]"#,
    r#"foo[10m:]"#,
    r#"min_over_time(rate(foo{bar="baz"}[2s])[5m:5s])"#,
    r#"min_over_time(rate(foo{bar="baz"}[2s])[5m:])[4m:3s]"#,
    r#"min_over_time(rate(foo{bar="baz"}[2s])[5m:] offset 4m)[4m:3s]"#,
    r#"min_over_time(rate(foo{bar="baz"}[2s])[5m:] @ 1603775091)[4m:3s]"#,
    r#"min_over_time(rate(foo{bar="baz"}[2s])[5m:] @ -160377509)[4m:3s]"#,
    "sum without(and, by, avg, count, alert, annotations)(some_metric) [30m:10s]",
    r#"some_metric OFFSET 1m [10m:5s]"#,
    r#"some_metric @ 123 [10m:5s]"#,
    r#"some_metric @ 123 offset 1m [10m:5s]"#,
    r#"some_metric offset 1m @ 123 [10m:5s]"#,
    r#"some_metric[10m:5s] offset 1m @ 123"#,
    r#"(foo + bar{nm="val"})[5m:]"#,
    r#"(foo + bar{nm="val"})[5m:] offset 10m"#,
    r#"(foo + bar{nm="val"} @ 1234)[5m:] @ 1603775019"#,
    r#"foo @ start()"#,
    r#"foo @ end()"#,
    r#"test[5y] @ start()"#,
    r#"test[5y] @ end()"#,
    r#"foo[10m:6s] @ start()"#,
    r#"foo[10m:6s] @ end()"#,
    r#"start()"#,
    r#"end()"#,
    r#"start"#,
    r#"end"#,
    r#"start{end="foo"}"#,
    r#"end{start="foo"}"#,
    r#"foo unless on(start) bar"#,
    r#"foo unless on(end) bar"#,
    r#"info(rate(http_request_counter_total{}[5m]))"#,
    r#"info(http_request_counter_total{namespace="zzz"}, {foo="bar", bar="baz"})"#,
    r#"foo[11s+10s-5*2^2]"#,
    r#"foo[-(10s-5s)+20s]"#,
    r#"foo[-10s+15s]"#,
    r#"foo[step()]"#,
    r#"foo[  -  step  (  )  ]"#,
    r#"foo[   step  (  )  ]"#,
    r#"foo[-step()]"#,
    r#"foo offset step()"#,
    r#"foo offset -step()"#,
    r#"foo[max_of(step(),5s)]"#,
    r#"foo offset max_of(step(),5s)"#,
    r#"foo offset -min_of(5s,step()+8s)"#,
    r#"foo[range()]"#,
    r#"foo[2m/range()]"#,
    r#"foo[-range()]"#,
    r#"foo offset range()"#,
    r#"foo offset -range()"#,
    r#"foo[max_of(range(),5s)]"#,
    r#"foo[4s+4s:1s*2] offset (5s-8)"#,
    r#"foo offset 5s-8"#,
    r#"rate(foo[2m+2m])"#,
    r#"foo offset -1^1"#,
    r#"foo offset -(1^2)"#,
    r#"foo offset (-1^2)"#,
    r#"foo[-2^2]"#,
    r#"foo[0+-2^2]"#,
    "(sum(foo))",
    "(sum(foo) )",
    "(sum(foo) by (bar))",
    "(sum by (bar) (foo))",
    "sum by (job)(rate(http_requests_total[30m]))",
];

#[test]
fn accepts_what_prometheus_accepts() {
    let mut wrong = vec![];
    for query in ACCEPTED {
        match parse_with(query, ParseOptions::all()) {
            Ok(e) => {
                let text = format(&e);
                let again = parse_with(&text, ParseOptions::all()).map(|a| a.without_spans());
                if again.as_ref() != Ok(&e.without_spans()) {
                    wrong.push(format!("{query:?}: {text:?} parses back as {again:?}"));
                }
            }
            Err(err) => wrong.push(format!("{query:?}: {err}")),
        }
    }
    assert!(wrong.is_empty(), "{} of {} differ:\n{}", wrong.len(), ACCEPTED.len(), wrong.join("\n"));
}

/// Prometheus accepts byte escapes that make a string invalid UTF-8 (Go strings are bytes);
/// Rust strings are UTF-8, so we reject them at parse time instead of failing later.
#[test]
fn invalid_utf8_from_escapes_is_a_parse_error() {
    for query in [r#""\xFF""#, r#"'\377'"#, r#"count_values("a\xc5z", x)"#] {
        let err = parse(query).unwrap_err();
        assert!(err.message.ends_with("invalid UTF-8"), "{query}: {err}");
    }
    assert_eq!(format(&parse(r#""\xc3\xa9\u00e9\U0001F600""#).unwrap()), "\"éé😀\"");
}

/// Queries that Prometheus 3.14's parser tests reject (all features on); we reject them too.
const REJECTED: &[&str] = &[
    "",
    "# just a comment\n\n",
    "1+",
    ".",
    "2.5.",
    "100..4",
    "0deadbeef",
    "1 /",
    "*1",
    "(1))",
    "((1)",
    "(",
    "1 and 1",
    "1 == 1",
    "1 or 1",
    "1 unless 1",
    "1 !~ 1",
    "1 =~ 1",
    r#"-"string""#,
    r#"-test[5m]"#,
    r#"*test"#,
    r#"@@"#,
    "1 offset 1d",
    "foo offset 1s offset 2s",
    "a - on(b) ignoring(c) d",
    "foo and 1",
    "1 and foo",
    "foo or 1",
    "1 or foo",
    "foo unless 1",
    "1 unless foo",
    "1 or on(bar) foo",
    "foo == on(bar) 10",
    "foo + group_left(baz) bar",
    "foo and on(bar) group_left(baz) bar",
    "foo and on(bar) group_right(baz) bar",
    "foo or on(bar) group_left(baz) bar",
    "foo or on(bar) group_right(baz) bar",
    "foo unless on(bar) group_left(baz) bar",
    "foo unless on(bar) group_right(baz) bar",
    r#"http_requests{group="production"} + on(instance) group_left(job,instance) cpu_count{type="smp"}"#,
    "foo + bool bar",
    "foo + bool 10",
    "foo and bool 10",
    r#"http_requests{group="production"} + on(instance) group_left(job,instance) cpu_count{type="smp"}"#,
    r#"foo @ +Inf"#,
    r#"foo @ -Inf"#,
    r#"foo @ NaN"#,
    r#"{"#,
    r#"}"#,
    r#"some{"#,
    r#"some}"#,
    r#"some_metric{a=b}"#,
    r#"some_metric{a:b="b"}"#,
    r#"foo{a*"b"}"#,
    r#"foo{a>="b"}"#,
    r#"foo{gibberish}"#,
    r#"foo{1}"#,
    r#"{}"#,
    r#"{x=""}"#,
    r#"{x=~".*"}"#,
    r#"{x!~".+"}"#,
    r#"{x!="a"}"#,
    r#"foo{__name__="bar"}"#,
    r#"foo{__name__= =}"#,
    r#"foo{,}"#,
    r#"foo{__name__ == "bar"}"#,
    r#"foo{__name__="bar" lol}"#,
    r#"foo{"a"=}"#,
    r#"foo[5mm]"#,
    r#"foo[5m1]"#,
    r#"foo[5m:1m1]"#,
    r#"foo[5y1hs]"#,
    r#"foo[5m1h]"#,
    r#"foo[5m1m]"#,
    r#"foo[0m]"#,
    r#"foo["5m"]"#,
    r#"foo[]"#,
    r#"foo[-1]"#,
    r#"some_metric[5m] OFFSET 1mm"#,
    r#"some_metric[5m] OFFSET"#,
    r#"some_metric OFFSET 1m[5m]"#,
    r#"some_metric[5m] @"#,
    r#"some_metric @ 1234 [5m]"#,
    r#"(foo + bar)[5m]"#,
    r#"sum by ("foo)(some_metric{})"#,
    "sum without(==)(some_metric)",
    "sum without(,)(some_metric)",
    "sum without(foo,,)(some_metric)",
    r#"sum some_metric by (test)"#,
    r#"sum (some_metric) by test"#,
    r#"sum () by (test)"#,
    "MIN keep_common (some_metric)",
    "MIN (some_metric) keep_common",
    r#"sum (some_metric) without (test) by (test)"#,
    r#"sum without (test) (some_metric) by (test)"#,
    r#"topk(some_metric)"#,
    r#"topk(some_metric,)"#,
    r#"topk(some_metric, other_metric)"#,
    r#"count_values(5, other_metric)"#,
    r#"rate(some_metric[5m]) @ 1234"#,
    "floor()",
    "floor(some_metric, other_metric)",
    "floor(some_metric, 1)",
    "floor(1)",
    "hour(some_metric, some_metric, some_metric)",
    "time(some_metric)",
    "non_existent_function_far_bar()",
    "rate(some_metric)",
    "*1",
    "-=",
    "++-++-+-+-<",
    "e-+=/(0)",
    "a>b()",
    "rate(avg)",
    "`\\``",
    r#""\"#,
    r#""\c""#,
    r#""\x.""#,
    r#"foo{bar="baz"}["#,
    "test[5d] OFFSET 10s [10m:5s]",
    r#"(foo + bar{nm="val"})[5m:][10m:5s]"#,
    "rate(food[1m])[1h] offset 1h",
    "rate(food[1m])[1h] @ 100",
    r#"info(rate(http_request_counter_total{}[5m]), target_info{foo="bar"})"#,
    r#"info(http_request_counter_total{namespace="zzz"}, {foo="bar"} == 1)"#,
    r#"foo[step]"#,
    r#"foo[step()/0d]"#,
    r#"foo[5s/0d]"#,
    r#"foo offset (4d/0)"#,
    r#"foo[5s%0d]"#,
    r#"foo offset 9.5e10"#,
    r#"foo[9.5e10]"#,
    "sum(",
    "sum(rate(",
    "foo[5s x 5s]",
    "foo[5s s 5s]",
    "1[5m] smoothed",
    "1[5m] anchored",
];

#[test]
fn rejects_what_prometheus_rejects() {
    let accepted: Vec<String> = REJECTED
        .iter()
        .filter_map(|q| parse_with(q, ParseOptions::all()).ok().map(|e| format!("{q:?} parsed as {e}")))
        .collect();
    assert!(accepted.is_empty(), "{}", accepted.join("\n"));
}

#[test]
fn children_and_duration_display() {
    let e = parse("topk(3, a + -b) or max_over_time(c[5m:1m])").unwrap();
    let Expr::Binary(b) = &e else { panic!() };
    assert_eq!(e.children().len(), 2);
    let topk = b.lhs.children().iter().map(|c| c.to_string()).collect::<Vec<_>>();
    assert_eq!(topk, ["3", "a + -b"]);
    let Expr::Call(c) = &*b.rhs else { panic!() };
    let Expr::Subquery(sq) = &c.args[0] else { panic!() };
    assert_eq!((sq.range.to_string(), sq.step.as_ref().map(|s| s.to_string())), ("5m".into(), Some("1m".into())));
}

#[test]
fn metric_selectors() {
    use sextant_promql::parse_metric_selector;
    let m = parse_metric_selector(r#"up{job="node", i=~"a|b"}"#).unwrap();
    assert_eq!(
        m.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        [r#"job="node""#, r#"i=~"a|b""#, r#"__name__="up""#]
    );
    assert_eq!(parse_metric_selector(r#"{"a.b"}"#).unwrap()[0].to_string(), r#"__name__="a.b""#);
    assert_eq!(parse_metric_selector("{}").unwrap(), vec![]);
    for (input, message) in [
        ("up + 1", "1:4: parse error: unexpected <op:+>"),
        ("rate(x[5m])", "1:5: parse error: unexpected \"(\""),
        ("up[5m]", "1:3: parse error: unexpected \"[\""),
        ("", "unknown position: parse error: unexpected end of input"),
    ] {
        assert_eq!(parse_metric_selector(input).unwrap_err().to_string(), message, "{input}");
    }
}

//! Random and mutated queries: the parser never panics, memory stays bounded, and whatever
//! parses round-trips through the formatter.

use proptest::prelude::*;
use sextant_promql::{format, parse_with, ParseOptions};

const SEEDS: &[&str] = &[
    r#"sum by (job) (rate(http_requests_total{job="api", code=~"5.."}[5m]))"#,
    r#"histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) > bool 0.5"#,
    r#"a / on (instance) group_left (node) b offset -5m @ 100"#,
    r#"max_over_time(deriv(x[1h:5m] @ start())[1d:] offset 1w)"#,
    r#"topk(3, count_values("v", x) without (a,)) or vector(1) unless c"#,
    r#"{"my.metric", "a.b"!~'c|d'} * -2 ^ 3 ^ -0x1F % 2 atan2 1"#,
    r#"label_replace(up, "a", "$1", "b", `(.*)`) # comment"#,
    r#"foo[5m + step() * 2] offset (1h - min_of(5m, range())) anchored"#,
    r#"limitk(2, x) + fill_left(1) fill_right(NaN) y </ z"#,
    r#"-(1_000 + Inf) == bool .5e3"#,
];

fn check(query: &str) -> Result<(), TestCaseError> {
    let options = ParseOptions::all();
    let parsed = parse_with(query, options);
    if let Err(err) = &parsed {
        prop_assert!(err.span.start <= query.len());
        prop_assert!(!err.to_string().is_empty() && !err.render_caret().is_empty());
    }
    if let Ok(e) = parsed {
        let text = format(&e);
        let again = parse_with(&text, options);
        prop_assert!(again.is_ok(), "{query:?} formats as {text:?}, which fails: {:?}", again.err());
        prop_assert_eq!(again.unwrap().without_spans(), e.without_spans(), "{:?} -> {:?}", query, text);
    }
    Ok(())
}

fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "@",
        "=",
        "=~",
        "!=",
        "!~",
        "+",
        "-",
        "*",
        "/",
        "%",
        "^",
        "==",
        "<",
        ">=",
        "</",
        "and",
        "or",
        "unless",
        "atan2",
        "bool",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "by",
        "without",
        "offset",
        "sum",
        "topk",
        "count_values",
        "rate",
        "abs",
        "vector",
        "time",
        "foo",
        "bar:baz",
        "le",
        "1",
        "0x1F",
        "1.5e3",
        "Inf",
        "NaN",
        "5m",
        "1h30m",
        "\"s\"",
        "'t'",
        "`r`",
        "step()",
        "start()",
        "end()",
        "#c\n",
        " ",
        "é",
        "😀",
        "\n",
        "anchored",
        "smoothed",
        "fill",
        "min_of",
        "-5m",
        "__name__",
    ])
}

/// Grammar-shaped expressions, mostly valid.
fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "[a-z_]{1,8}".prop_map(|s| s),
        "[a-z]{1,5}".prop_map(|s| format!("{s}{{job=~\"a|b\", x!=\"y\"}}")),
        (0u32..1000).prop_map(|n| n.to_string()),
        Just("1.5".to_string()),
        Just("\"str\"".to_string()),
    ];
    leaf.prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["+", "-", "*", "/", "^", "and", "or", "== bool", "> on (a) group_left (b)"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.clone().prop_map(|a| format!("-{a}")),
            inner.clone().prop_map(|a| format!("sum by (job) ({a})")),
            inner.clone().prop_map(|a| format!("topk(3, {a})")),
            inner.clone().prop_map(|a| format!("rate({a}[5m])")),
            inner.clone().prop_map(|a| format!("max_over_time({a}[1h:1m] offset 5m)")),
            inner.clone().prop_map(|a| format!("abs({a}) @ 10")),
            inner.prop_map(|a| format!("{a} offset -1d")),
        ]
    })
}

proptest! {
    // 2000 cases each unless PROPTEST_CASES says otherwise (for longer fuzzing runs).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_tokens(tokens in prop::collection::vec(token(), 0..40)) {
        check(&tokens.join(""))?;
        check(&tokens.join(" "))?;
    }

    #[test]
    fn random_text(text in "\\PC{0,60}") {
        check(&text)?;
    }

    #[test]
    fn grammar_shaped(query in expr()) {
        check(&query)?;
    }

    #[test]
    fn mutated_seeds(seed in prop::sample::select(SEEDS), at in any::<prop::sample::Index>(), len in 0usize..6, insert in prop::sample::select(vec!["", "(", ")", "[", "]", "{", "}", "\"", "'", "`", "\\", ",", " ", "offset", "@", "-", "1e", "0x", "_", ":", "#", "\n"])) {
        let chars: Vec<char> = seed.chars().collect();
        let start = at.index(chars.len() + 1);
        let end = (start + len).min(chars.len());
        let mutated: String = chars[..start].iter().copied().chain(insert.chars()).chain(chars[end..].iter().copied()).collect();
        check(&mutated)?;
    }
}

#[test]
fn seeds_parse() {
    for seed in SEEDS {
        let e = parse_with(seed, ParseOptions::all()).unwrap_or_else(|err| panic!("{seed}: {err}"));
        assert!(!format(&e).is_empty());
    }
}

#[test]
fn large_input_is_linear_and_bounded() {
    // A long flat selector list and a long string: parse without excessive work or memory.
    let many = (0..2000).map(|i| format!("l{i}=\"v\"")).collect::<Vec<_>>().join(",");
    let e = parse_with(&format!("x{{{many}}}"), ParseOptions::default()).unwrap();
    assert_eq!(format(&e).len(), 3 + many.len());
    let long = "a".repeat(1 << 20);
    assert!(parse_with(&format!("\"{long}\""), ParseOptions::default()).is_ok());
    assert!(parse_with(&"(".repeat(1 << 20), ParseOptions::default()).is_err());
}

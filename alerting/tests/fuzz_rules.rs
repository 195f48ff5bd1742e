//! Random and mutated inputs into the rule file parser, the template parser and executor:
//! errors, never panics, and output bounded.

use proptest::prelude::*;
use sextant_alerting::rules::{parse_rule_file, RuleFileOptions};
use sextant_alerting::template::{Template, TemplateData};
use sextant_model::Labels;

const TEMPLATE_SEEDS: &[&str] = &[
    "{{ $labels.job }} {{ humanize $value }}",
    "{{ range $i, $v := $labels }}{{ $i }}{{ if gt $value 1.0 }}{{ break }}{{ end }}{{ end }}",
    "{{ with query \"up\" }}{{ . | first | value }}{{ else }}-{{ end }}",
    "{{ printf \"%5.2f %q %d\" $value \"x\" 3 }}{{/* c */}}{{- 1 -}}",
    "{{ (toTime 1e9).Format \"2006-01-02\" }}{{ index $labels \"a\" }}{{ $x := 1 }}{{ $x = 2 }}",
];

const RULE_SEED: &str = "groups:\n- name: g\n  interval: 1m\n  rules:\n  - alert: A\n    expr: up == 0\n    for: 5m\n    labels: {s: '{{ $labels.x }}'}\n  - record: r\n    expr: sum(up)\n";

fn mutate(seed: &str, edits: &[(usize, u8)]) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for &(pos, b) in edits {
        if bytes.is_empty() {
            bytes.push(b);
            continue;
        }
        let i = pos % bytes.len();
        match b % 3 {
            0 => bytes[i] = b,
            1 => {
                bytes.remove(i);
            }
            _ => bytes.insert(i, b),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn run_template(text: &str) {
    let data = TemplateData { labels: Labels::from_pairs([("job", "j")]), value: 2.5, ..TemplateData::default() };
    if let Ok(t) = Template::parse("fuzz", text) {
        if let Ok(out) = t.execute(&data, 0, None) {
            assert!(out.len() <= (1 << 20) + text.len() * 64 + 4096);
        }
    }
}

proptest! {
    #[test]
    fn templates_never_panic(seed in 0..TEMPLATE_SEEDS.len(), edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8)) {
        run_template(&mutate(TEMPLATE_SEEDS[seed], &edits));
    }

    #[test]
    fn random_templates_never_panic(text in "[{}$. a-z\"()|:=0-9-]{0,60}") {
        run_template(&text);
    }

    #[test]
    fn rule_files_never_panic(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8)) {
        let _ = parse_rule_file(&mutate(RULE_SEED, &edits), &RuleFileOptions::default());
    }
}

#[test]
fn deep_nesting_is_an_error() {
    let text = "{{ if 1 }}".repeat(10_000) + &"{{ end }}".repeat(10_000);
    assert!(Template::parse("deep", &text).is_err());
    let parens = "{{ ".to_string() + &"(".repeat(10_000) + "1" + &")".repeat(10_000) + " }}";
    assert!(Template::parse("deep", &parens).is_err());
}

#[test]
fn long_loops_stop() {
    let text = "{{ range 1000000000 }}{{ range 1000000000 }}x{{ end }}{{ end }}";
    let data = TemplateData::default();
    assert!(Template::parse("big", text).unwrap().execute(&data, 0, None).is_err());
}

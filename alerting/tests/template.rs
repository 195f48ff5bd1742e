//! Template expansion through the public API: Go's `text/template` semantics and
//! Prometheus' functions, one case per line.

use sextant_alerting::template::{QueryFunc, Template, TemplateData};
use sextant_model::Labels;

struct FakeQuery;

impl QueryFunc for FakeQuery {
    fn query(&self, expr: &str, _t_ms: i64) -> Result<Vec<(Labels, f64)>, String> {
        match expr {
            "m" => Ok(vec![
                (Labels::from_pairs([("__name__", "m"), ("job", "b"), ("instance", "h:1")]), 2.0),
                (Labels::from_pairs([("__name__", "m"), ("job", "a"), ("instance", "h:2")]), 1.0),
            ]),
            "none" => Ok(Vec::new()),
            _ => Err(format!("bad query {expr}")),
        }
    }
}

fn data(value: f64) -> TemplateData {
    TemplateData {
        labels: Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", "db1.example.com:9100")]),
        external_labels: Labels::from_pairs([("cluster", "eu")]),
        external_url: "http://prom:9090/sub".into(),
        value,
    }
}

fn check(text: &str, value: f64, want: &str) {
    let got = Template::parse("t", text).and_then(|t| t.execute(&data(value), 1_000, Some(&FakeQuery)));
    match got {
        Ok(s) => assert_eq!(s, want, "{text}"),
        Err(e) => assert_eq!(format!("error: {e}"), want, "{text}"),
    }
}

#[test]
fn variables_and_fields() {
    check("{{ $labels.job }} {{ .Labels.instance }}", 1.0, "node db1.example.com:9100");
    check("{{ $value }}|{{ .Value }}", 1e6, "1e+06|1e+06");
    check("{{ $externalLabels.cluster }} {{ $externalURL }}", 0.0, "eu http://prom:9090/sub");
    check("x{{ $labels.missing }}y", 0.0, "xy");
    check("{{ $x := 3 }}{{ $x }}{{ $x = 4 }}{{ $x }}", 0.0, "34");
    check("{{ $ := 1 }}", 0.0, "");
    check("{{ len $labels }}", 0.0, "3");
    check("{{ index $labels \"job\" }}", 0.0, "node");
}

#[test]
fn control_flow() {
    check("{{ if gt $value 1.0 }}big{{ else if eq $value 1.0 }}one{{ else }}small{{ end }}", 2.0, "big");
    check("{{ if gt $value 1.0 }}big{{ else if eq $value 1.0 }}one{{ else }}small{{ end }}", 1.0, "one");
    check("{{ if gt $value 1.0 }}big{{ else if eq $value 1.0 }}one{{ else }}small{{ end }}", 0.0, "small");
    check(
        "{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}",
        0.0,
        "__name__=up,instance=db1.example.com:9100,job=node,",
    );
    check("{{ range query \"none\" }}x{{ else }}empty{{ end }}", 0.0, "empty");
    check(
        "{{ range $i, $s := query \"m\" | sortByLabel \"job\" }}{{ if $i }},{{ end }}{{ $s.Labels.job }}{{ end }}",
        0.0,
        "a,b",
    );
    check("{{ range query \"m\" }}{{ if eq .Value 2.0 }}{{ break }}{{ end }}{{ .Value }}{{ end }}", 0.0, "");
    check("{{ with $labels.job }}[{{ . }}]{{ end }}{{ with $labels.nope }}x{{ else }}none{{ end }}", 0.0, "[node]none");
    check("a  {{- 1 -}}  b", 0.0, "a1b");
    check("{{/* comment */}}ok", 0.0, "ok");
    check("{{ and 1 0 }} {{ or 0 \"x\" }} {{ not true }}", 0.0, "0 x false");
}

#[test]
fn functions() {
    check("{{ humanize 1234567.891 }} {{ humanize 0.5 }} {{ humanize \"2048\" }}", 0.0, "1.235M 500m 2.048k");
    check("{{ humanize1024 1048576 }} {{ humanizePercentage 0.1234 }}", 0.0, "1Mi 12.34%");
    check("{{ humanizeDuration 90061 }} {{ humanizeDuration 0.000123 }}", 0.0, "1d 1h 1m 1s 123us");
    check("{{ humanizeTimestamp 1435065584.128 }}", 0.0, "2015-06-23 13:19:44.128 +0000 UTC");
    check(
        "{{ printf \"%.1f%%\" 12.345 }} {{ printf \"%s-%d\" \"a\" 3 }} {{ printf \"%v\" 1e21 }}",
        0.0,
        "12.3% a-3 1e+21",
    );
    check("{{ with query \"m\" }}{{ . | first | label \"job\" }}={{ . | first | value }}{{ end }}", 0.0, "b=2");
    check("{{ reReplaceAll \"(.*):(.*)\" \"$2\" $labels.instance }}", 0.0, "9100");
    check("{{ match \"^db\" $labels.instance }} {{ title \"hello world\" }}", 0.0, "true Hello World");
    check("{{ $labels.instance | stripPort }} {{ $labels.instance | stripDomain }}", 0.0, "db1.example.com db1:9100");
    check("{{ \"10.0.0.1:80\" | stripDomain }}", 0.0, "10.0.0.1:80");
    check("{{ tableLink \"rate(x[5m]) > 1\" }}", 0.0, "/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+1&g0.tab=1");
    check("{{ pathPrefix }} {{ externalURL }}", 0.0, "/sub http://prom:9090/sub");
    check("{{ with args 1 \"b\" }}{{ .arg0 }}{{ .arg1 }}{{ end }}", 0.0, "1b");
    check("{{ toUpper \"ab\" }}{{ toLower \"CD\" }}{{ toUpper \"ß\" }}", 0.0, "ABcdß");
    check("{{ title \"o'neil foo-bar wORLD\" }}", 0.0, "O'Neil Foo-Bar WORLD");
    check("{{ printf \"%X|%o|%G|%G\" 255 8 1e-7 $value }}", f64::NAN, "FF|10|1E-07|NaN");
    check(
        "{{ . }}",
        0.5,
        "{map[__name__:up instance:db1.example.com:9100 job:node] map[cluster:eu] http://prom:9090/sub 0.5}",
    );
    check(
        "{{ humanizeTimestamp -0.000123 }}|{{ humanizeDuration 1e100 }}",
        0.0,
        "1970-01-01 00:00:00 +0000 UTC|-106751991167300d -15h -30m -8s",
    );
    check(
        "{{ parseDuration \"1m30s\" }} {{ (toTime 0).Format \"2006-01-02T15:04:05Z07:00\" }}",
        0.0,
        "90 1970-01-01T00:00:00Z",
    );
}

#[test]
fn errors() {
    check("{{ $label.x }}", 0.0, "error: template: t:1: undefined variable \"$label\"");
    check("{{ $labels.q * 100 }}", 0.0, "error: template: t:1: unexpected bad character U+002A '*' in command");
    check("{{ nosuch 1 }}", 0.0, "error: template: t:1: function \"nosuch\" not defined");
    check("{{ if 1 }}", 0.0, "error: template: t:1: unexpected EOF in if");
    check("{{ end }}", 0.0, "error: template: t:1: unexpected {{end}}");
    check(
        "{{ query \"none\" | first }}",
        0.0,
        "error: template: t: error calling first: first() called on vector with no elements",
    );
    check("{{ gt $value 1 }}", 0.0, "error: template: t: error calling gt: incompatible types for comparison");
    check(
        "{{ humanize \"x\" }}",
        0.0,
        "error: template: t: error calling humanize: strconv.ParseFloat: parsing \"x\": invalid syntax",
    );
}

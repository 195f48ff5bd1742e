//! Notification templates: Sextant's defaults under Alertmanager's names, user templates with
//! `{{ define }}`, Alertmanager's data model and functions, HTML escaping; each case is also
//! rendered by `amtool template render` (Alertmanager 0.25, Debian package
//! `prometheus-alertmanager`) when it is installed, and both outputs must be equal.

use sextant_alerting::template::{AlertData, NotificationData, TemplateSet};

const USER_TEMPLATES: &str = r#"
{{ define "my.title" }}{{ .CommonLabels.alertname }} on {{ .CommonLabels.cluster }}{{ end }}
{{ define "my.list" }}{{ range .Alerts }}{{ .Labels.instance }}:{{ .Status }} {{ end }}{{ end }}
{{ define "slack.default.text" }}overridden {{ len .Alerts }}{{ end }}
{{- define "my.html" }}<b>{{ .CommonAnnotations.summary }}</b>{{ end }}
"#;

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn data() -> NotificationData {
    let a = AlertData {
        status: "firing".into(),
        labels: pairs(&[("alertname", "DiskFull"), ("cluster", "eu1"), ("instance", "db1:9100"), ("severity", "page")]),
        annotations: pairs(&[("summary", "Disk <almost> full & \"hot\""), ("runbook", "http://x/y?a=1+2")]),
        starts_at_ms: 1_795_318_732_887,
        ends_at_ms: None,
        generator_url: "http://127.0.0.1:9090/graph?g0.expr=up&g0.tab=1".into(),
        fingerprint: "3a1626b175e28853".into(),
    };
    let b = AlertData {
        status: "resolved".into(),
        labels: pairs(&[("alertname", "DiskFull"), ("cluster", "eu1"), ("instance", "db2:9100"), ("severity", "page")]),
        annotations: pairs(&[("summary", "Disk <almost> full & \"hot\"")]),
        starts_at_ms: 1_795_318_700_000,
        ends_at_ms: Some(1_795_318_760_500),
        generator_url: String::new(),
        fingerprint: "0123456789abcdef".into(),
    };
    NotificationData {
        receiver: r"team\.db".into(),
        status: "firing".into(),
        alerts: vec![a, b],
        group_labels: pairs(&[("alertname", "DiskFull")]),
        common_labels: pairs(&[("alertname", "DiskFull"), ("cluster", "eu1"), ("severity", "page")]),
        common_annotations: pairs(&[("summary", "Disk <almost> full & \"hot\"")]),
        external_url: "http://am.example:9093".into(),
    }
}

/// (template text, html?, expected output).
const CASES: &[(&str, bool, &str)] = &[
    (r#"{{ template "__subject" . }}"#, false, "[FIRING:1] DiskFull (eu1 page)"),
    (r#"{{ template "slack.default.title" . }}"#, false, "[FIRING:1] DiskFull (eu1 page)"),
    (
        r#"{{ template "slack.default.fallback" . }}"#,
        false,
        r"[FIRING:1] DiskFull (eu1 page) | http://am.example:9093/#/alerts?receiver=team%5C.db",
    ),
    (r#"{{ template "slack.default.username" . }}"#, false, "Alertmanager"),
    (r#"{{ template "slack.default.text" . }}"#, false, "overridden 2"),
    (r#"{{ template "pagerduty.default.client" . }}"#, false, "Alertmanager"),
    (
        r#"{{ template "pagerduty.default.instances" .Alerts.Firing }}"#,
        false,
        "Labels:\n - alertname = DiskFull\n - cluster = eu1\n - instance = db1:9100\n - severity = page\nAnnotations:\n - runbook = http://x/y?a=1+2\n - summary = Disk <almost> full & \"hot\"\nSource: http://127.0.0.1:9090/graph?g0.expr=up&g0.tab=1\n",
    ),
    (
        r#"{{ template "msteams.default.text" . }}"#,
        false,
        "\n\n# Alerts Firing:\n\nLabels:\n  - alertname = DiskFull\n  - cluster = eu1\n  - instance = db1:9100\n  - severity = page\n\nAnnotations:\n  - runbook = http://x/y?a=1+2\n  - summary = Disk <almost> full & \"hot\"\n\nSource: http://127.0.0.1:9090/graph?g0.expr=up&g0.tab=1\n\n\n\n\n# Alerts Resolved:\n\nLabels:\n  - alertname = DiskFull\n  - cluster = eu1\n  - instance = db2:9100\n  - severity = page\n\nAnnotations:\n  - summary = Disk <almost> full & \"hot\"\n\nSource: \n\n\n\n",
    ),
    (r#"{{ template "email.default.subject" . }}"#, false, "[FIRING:1] DiskFull (eu1 page)"),
    (r#"{{ template "my.title" . }}"#, false, "DiskFull on eu1"),
    (r#"{{ template "my.list" . }}"#, false, "db1:9100:firing db2:9100:resolved "),
    (r#"{{ .CommonLabels.severity | toUpper }} {{ .Receiver }}"#, false, r"PAGE team\.db"),
    (r#"{{ .GroupLabels.SortedPairs.Names | join "," }}"#, false, "alertname"),
    (r#"{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }};{{ end }}"#, false, "alertname=DiskFull;cluster=eu1;severity=page;"),
    (r#"{{ range $k, $v := .CommonLabels }}{{ $k }}:{{ $v }} {{ end }}"#, false, "alertname:DiskFull cluster:eu1 severity:page "),
    (r#"{{ with .CommonLabels.Remove (stringSlice "cluster" "severity") }}{{ .Names }}{{ end }}"#, false, "[alertname]"),
    (r#"{{ (index .Alerts 0).StartsAt.Format "2006-01-02T15:04:05Z07:00" }}"#, false, "2026-11-22T03:38:52Z"),
    (r#"{{ (index .Alerts 1).EndsAt }}"#, false, "2026-11-22 03:39:20.5 +0000 UTC"),
    (r#"{{ (index .Alerts 0).EndsAt.IsZero }}"#, false, "true"),
    (r#"{{ len .Alerts.Firing }}/{{ len .Alerts.Resolved }} {{ .Status | title }}"#, false, "1/1 Firing"),
    (r#"{{ if match "^db" .CommonLabels.cluster }}y{{ else }}n{{ end }}"#, false, "n"),
    (r#"{{ reReplaceAll "(\\d+)" "<$1>" (index .Alerts 0).Labels.instance }}"#, false, "db<1>:<9100>"),
    (r#"{{ (index .Alerts 0).Fingerprint }} {{ .ExternalURL }}"#, false, "3a1626b175e28853 http://am.example:9093"),
    (r#"{{ .CommonLabels.missing }}|{{ .CommonAnnotations.summary }}"#, false, "|Disk <almost> full & \"hot\""),
    (r#"<p>{{ .CommonAnnotations.summary }}</p>"#, true, "<p>Disk &lt;almost&gt; full &amp; &#34;hot&#34;</p>"),
    (r#"{{ template "my.html" . }}"#, true, "<b>Disk &lt;almost&gt; full &amp; &#34;hot&#34;</b>"),
    (r#"{{ "<i>x</i>" | safeHtml }}"#, true, "<i>x</i>"),
    (r#"{{ (index .Alerts 0).Annotations.runbook }}"#, true, "http://x/y?a=1&#43;2"),
    (r#"{{ template "__subject" . }}"#, true, "[FIRING:1] DiskFull (eu1 page)"),
];

fn set() -> TemplateSet {
    let mut set = TemplateSet::with_defaults();
    set.add("user.tmpl", USER_TEMPLATES).unwrap();
    set
}

#[test]
fn templates_render_like_alertmanager() {
    let set = set();
    let data = data();
    for (text, html, want) in CASES {
        let got = if *html { set.execute_html(text, &data) } else { set.execute_text(text, &data) };
        assert_eq!(got.as_deref(), Ok(*want), "{text}");
    }
}

#[test]
fn errors_are_errors() {
    let set = set();
    let data = data();
    for (text, want) in [
        (r#"{{ template "nope" . }}"#, "no such template \"nope\""),
        ("{{ .Nope }}", "can't evaluate field Nope"),
        ("{{ query \"up\" }}", "function \"query\" not defined"),
        ("{{ define \"a\" }}{{ template \"a\" . }}{{ end }}{{ template \"a\" . }}", "exceeded maximum template depth"),
    ] {
        let err = set.execute_text(text, &data).unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
    // A user file that does not parse is refused.
    assert!(TemplateSet::with_defaults().add("bad.tmpl", "{{ define \"x\" }}{{ if }}{{ end }}").is_err());
}

/// The data as JSON for `amtool template render --template.data`.
fn data_json(d: &NotificationData) -> String {
    let kv = |p: &[(String, String)]| {
        serde_json::Value::Object(p.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect())
    };
    let time = |ms: Option<i64>| {
        ms.map(sextant_alerting::alertmanager::format_rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string())
    };
    let alerts: Vec<serde_json::Value> = d
        .alerts
        .iter()
        .map(|a| {
            serde_json::json!({
                "status": a.status, "labels": kv(&a.labels), "annotations": kv(&a.annotations),
                "startsAt": time(Some(a.starts_at_ms)), "endsAt": time(a.ends_at_ms),
                "generatorURL": a.generator_url, "fingerprint": a.fingerprint,
            })
        })
        .collect();
    serde_json::json!({
        "receiver": d.receiver, "status": d.status, "alerts": alerts, "groupLabels": kv(&d.group_labels),
        "commonLabels": kv(&d.common_labels), "commonAnnotations": kv(&d.common_annotations),
        "externalURL": d.external_url,
    })
    .to_string()
}

/// amtool 0.25 renders without Alertmanager's default templates unless given their file.
const DEBIAN_DEFAULT_TEMPLATES: &str = "/usr/share/prometheus/alertmanager/default.tmpl";
const DEBIAN_EMAIL_TEMPLATES: &str = "/usr/share/prometheus/alertmanager/email.tmpl";

#[test]
fn amtool_renders_the_same() {
    if std::process::Command::new("amtool").arg("--version").output().is_err()
        || !std::path::Path::new(DEBIAN_DEFAULT_TEMPLATES).exists()
    {
        println!(
            "conformance amtool templates: skipped, amtool not installed (Debian package prometheus-alertmanager)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let user = dir.path().join("user.tmpl");
    std::fs::write(&user, USER_TEMPLATES).unwrap();
    let data_file = dir.path().join("data.json");
    let data = data();
    std::fs::write(&data_file, data_json(&data)).unwrap();
    let set = set();
    // Known differences, each with its reason.
    let skip: &[(&str, &str)] = &[(
        r#"{{ template "msteams.default.text" . }}"#,
        "Alertmanager 0.25 has no Microsoft Teams integration nor its templates (0.26+)",
    )];
    let mut passed = 0;
    let mut skipped = 0;
    for (text, html, _) in CASES {
        if skip.iter().any(|(t, _)| t == text) {
            skipped += 1;
            continue;
        }
        // Brackets keep the output's own leading and trailing newlines apart from amtool's.
        let wrapped = format!("[{text}]");
        let out = std::process::Command::new("amtool")
            .arg("template")
            .arg("render")
            .arg(format!("--template.glob={DEBIAN_DEFAULT_TEMPLATES}"))
            .arg(format!("--template.glob={DEBIAN_EMAIL_TEMPLATES}"))
            .arg(format!("--template.glob={}", user.display()))
            .arg(format!("--template.text={wrapped}"))
            .arg(format!("--template.type={}", if *html { "html" } else { "text" }))
            .arg(format!("--template.data={}", data_file.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{text}: {}", String::from_utf8_lossy(&out.stderr));
        let theirs = String::from_utf8(out.stdout).unwrap();
        let theirs = theirs.strip_suffix('\n').unwrap_or(&theirs);
        let ours = if *html { set.execute_html(&wrapped, &data) } else { set.execute_text(&wrapped, &data) }.unwrap();
        assert_eq!(ours, theirs, "{text}");
        passed += 1;
    }
    println!("conformance amtool templates: {passed} of {} cases equal to amtool 0.25, {skipped} skipped", CASES.len());
}

/// A Teams notification from a configuration with a `templates:` glob: user templates
/// override fields, unset fields get the defaults, the card is red while firing.
#[test]
fn msteams_card_with_user_templates() {
    use sextant_alerting::alertmanager::{msteams_body, Config, Dispatcher, PostableAlert};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("teams.tmpl"),
        r#"{{ define "teams.title" }}{{ .CommonLabels.alertname }}!{{ end }}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("other.txt"), "{{ not a template").unwrap();
    let yaml = "route: {receiver: teams, group_by: [alertname], group_wait: 1s}\n\
                templates: ['*.tmpl']\n\
                receivers:\n- name: teams\n  msteams_configs:\n  - webhook_url: http://127.0.0.1:1/teams\n    title: '{{ template \"teams.title\" . }}'\n";
    let mut config = Config::parse(yaml).unwrap();
    config.resolve_paths(dir.path());
    let templates = config.load_templates().unwrap();
    let receiver = config.receivers[0].msteams_configs[0].clone().unwrap();
    let mut dispatcher = Dispatcher::new(config);
    let alert = PostableAlert {
        labels: vec![("alertname".into(), "DiskFull".into()), ("instance".into(), "a:1".into())],
        annotations: [("summary".to_string(), "full".to_string())].into(),
        generator_url: "http://g/graph".into(),
        ..PostableAlert::default()
    };
    dispatcher.put_alerts(vec![alert], 0).unwrap();
    let notifications = dispatcher.tick(1_000);
    let n = notifications.iter().find(|n| n.integration.kind == "msteams").expect("a Teams notification");
    let body = String::from_utf8(msteams_body(n, &receiver, "http://am", &templates).unwrap()).unwrap();
    let text = "\n\n# Alerts Firing:\n\nLabels:\n  - alertname = DiskFull\n  - instance = a:1\n\nAnnotations:\n  - summary = full\n\nSource: http://g/graph\n\n\n\n\n";
    let want = serde_json::json!({
        "@context": "http://schema.org/extensions", "type": "MessageCard", "title": "DiskFull!",
        "summary": "[FIRING:1] DiskFull (a:1)", "text": text, "themeColor": "8C1A1A",
    });
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap(), want, "{body}");
    assert!(body.starts_with(r#"{"@context":"http://schema.org/extensions","type":"MessageCard","title""#), "{body}");

    // A template file that does not parse makes the configuration's templates fail to load.
    std::fs::write(dir.path().join("bad.tmpl"), "{{ define \"x\" }}{{ end").unwrap();
    let mut config = Config::parse(yaml).unwrap();
    config.resolve_paths(dir.path());
    assert!(config.load_templates().is_err());
}

//! From discovered targets to final labels (Prometheus' `PopulateLabels`).

use sextant_model::Labels;
use sextant_scrape::{populate_labels, targets_from_group, Config};

fn job(yaml_body: &str) -> sextant_scrape::ScrapeConfig {
    let text = format!("scrape_configs:\n- job_name: node\n  scrape_interval: 15s\n{yaml_body}");
    Config::load_str(&text).unwrap().scrape_configs.remove(0)
}

/// Populates `target` (+ `group`) under the job built from `relabel` rules; renders the
/// outcome as labels, `dropped`, or `error: ...`.
fn outcome(job_body: &str, target: &[(&str, &str)], group: &[(&str, &str)]) -> String {
    let cfg = job(job_body);
    match populate_labels(&cfg, &Labels::from_pairs(target.iter().copied()), &Labels::from_pairs(group.iter().copied()))
    {
        Ok(Some(l)) => l.to_string(),
        Ok(None) => "dropped".into(),
        Err(e) => format!("error: {e}"),
    }
}

const STD: &str = r#"__address__="h:9100", __always_scrape_classic_histograms__="false", __convert_classic_histograms_to_nhcb__="false", __metrics_path__="/metrics", __scheme__="http", __scrape_interval__="15s", __scrape_native_histograms__="false", __scrape_timeout__="10s""#;

#[test]
fn populate_labels_cases() {
    let addr = [("__address__", "h:9100")];
    type Pairs = Vec<(&'static str, &'static str)>;
    let cases: Vec<(&str, Pairs, Pairs, String)> = vec![
        ("", addr.to_vec(), vec![], format!(r#"{{{STD}, instance="h:9100", job="node"}}"#)),
        (
            "",
            vec![("__address__", "h:9100"), ("__meta_x", "y"), ("env", "own")],
            vec![("env", "group"), ("zone", "z")],
            format!(r#"{{{STD}, env="own", instance="h:9100", job="node", zone="z"}}"#),
        ),
        ("", vec![("__address__", "h:9100"), ("instance", "me"), ("job", "other")], vec![], format!(r#"{{{STD}, instance="me", job="other"}}"#)),
        (
            "  relabel_configs:\n  - {source_labels: [__address__], regex: 'h:.*', action: drop}\n",
            addr.to_vec(),
            vec![],
            "dropped".into(),
        ),
        (
            "  relabel_configs:\n  - {regex: __address__, action: labeldrop}\n",
            addr.to_vec(),
            vec![],
            "error: no address".into(),
        ),
        (
            "  relabel_configs:\n  - {target_label: __address__, replacement: 'http://h:1/x'}\n",
            addr.to_vec(),
            vec![],
            r#"error: "http://h:1/x" is not a valid hostname"#.into(),
        ),
        (
            "  relabel_configs:\n  - {target_label: __scrape_interval__, replacement: soon}\n",
            addr.to_vec(),
            vec![],
            r#"error: error parsing scrape interval: not a valid duration string: "soon""#.into(),
        ),
        (
            "  relabel_configs:\n  - {target_label: __scrape_interval__, replacement: 0s}\n",
            addr.to_vec(),
            vec![],
            "error: scrape interval cannot be 0".into(),
        ),
        (
            "  relabel_configs:\n  - {target_label: __scrape_timeout__, replacement: 0s}\n",
            addr.to_vec(),
            vec![],
            "error: scrape timeout cannot be 0".into(),
        ),
        (
            "  relabel_configs:\n  - {target_label: __scrape_timeout__, replacement: 20s}\n",
            addr.to_vec(),
            vec![],
            r#"error: scrape timeout cannot be greater than scrape interval ("20s" > "15s")"#.into(),
        ),
        (
            "  relabel_configs:\n  - {target_label: __scrape_native_histograms__, replacement: yes}\n",
            addr.to_vec(),
            vec![],
            r#"error: error parsing scrape native histograms: strconv.ParseBool: parsing "yes": invalid syntax"#.into(),
        ),
        (
            // The blackbox pattern: the target becomes a parameter, the prober the address.
            "  metrics_path: /probe\n  params: {module: [http_2xx]}\n  relabel_configs:\n  - {source_labels: [__address__], target_label: __param_target}\n  - {source_labels: [__param_target], target_label: instance}\n  - {target_label: __address__, replacement: '127.0.0.1:9115'}\n",
            vec![("__address__", "https://example.org")],
            vec![],
            r#"{__address__="127.0.0.1:9115", __always_scrape_classic_histograms__="false", __convert_classic_histograms_to_nhcb__="false", __metrics_path__="/probe", __param_module="http_2xx", __param_target="https://example.org", __scheme__="http", __scrape_interval__="15s", __scrape_native_histograms__="false", __scrape_timeout__="10s", instance="https://example.org", job="node"}"#.into(),
        ),
    ];
    let mut failures = Vec::new();
    for (body, target, group, want) in &cases {
        let got = outcome(body, target, group);
        if &got != want {
            failures.push(format!("{body:?} {target:?}:\n   got {got}\n  want {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn targets_from_static_group() {
    let cfg = job(
        "  metrics_path: /probe\n  params: {module: [http_2xx], x: ['a b', c]}\n  static_configs:\n  - targets: ['a:1', 'b:2', 'c:3']\n    labels: {env: prod}\n  relabel_configs:\n  - {source_labels: [__address__], regex: 'b:.*', action: drop}\n  - {source_labels: [__address__], regex: 'c:.*', target_label: __address__, replacement: ''}\n  - {source_labels: [__address__], regex: 'a:.*', target_label: __param_module, replacement: icmp}\n",
    );
    let (targets, errors) = targets_from_group(&cfg.static_configs[0], &cfg);
    assert_eq!(targets.len(), 1);
    let t = &targets[0];
    assert_eq!(t.labels().to_string(), r#"{env="prod", instance="a:1", job="node"}"#);
    assert_eq!(t.url(), "http://a:1/probe?module=icmp&x=a+b&x=c");
    assert_eq!(t.discovered_labels().get("__param_module"), Some("http_2xx"));
    let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors, ["instance 2 in group 0: no address"]);
}

//! Random and mutated input into every parser: an error or a value, never a panic.

use proptest::prelude::*;
use sextant_model::Labels;
use sextant_scrape::{relabel, ByteSize, Config, Duration, RelabelConfig, RelabelRegex};

const VALID: &str = r#"global:
  scrape_interval: 15s
  external_labels: {region: '${REGION}', x: '$$y'}
rule_files: ['rules/*.yml']
scrape_configs:
- job_name: node
  metrics_path: /metrics
  params: {module: [a]}
  basic_auth: {username: u, password: p}
  tls_config: {ca_file: ca.pem}
  static_configs: [{targets: ['a:1'], labels: {env: prod}}]
  file_sd_configs: [{files: ['t/*.json']}]
  relabel_configs:
  - {source_labels: [__address__], regex: '(.*):.*', target_label: host, replacement: '$1'}
  - {action: hashmod, source_labels: [host], modulus: 3, target_label: shard}
  metric_relabel_configs: [{action: labeldrop, regex: 'tmp_.*'}]
remote_write:
- url: http://127.0.0.1:1/w
  queue_config: {max_samples_per_send: 10}
"#;

fn env(_: &str) -> Option<String> {
    Some("v".into())
}

proptest! {
    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        let _ = Config::load_str_with_env(&text, "f", &env);
    }

    #[test]
    fn yamlish_text_never_panics(text in "[a-z_:\\[\\]{}\\-'\" \\n$0-9.*]{0,300}") {
        let _ = Config::load_str_with_env(&text, "f", &env);
    }

    #[test]
    fn mutated_config_never_panics(edits in proptest::collection::vec((0usize..2000, any::<u8>(), 0u8..3), 1..8)) {
        let mut bytes = VALID.as_bytes().to_vec();
        for (pos, byte, kind) in edits {
            let pos = pos % (bytes.len() + 1);
            match kind {
                0 if pos < bytes.len() => bytes[pos] = byte,
                1 if pos < bytes.len() => { bytes.remove(pos); }
                _ => bytes.insert(pos, byte),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(config) = Config::load_str_with_env(&text, "f", &env) {
            // Whatever loads renders and loads back.
            let again = Config::load_str_with_env(&config.to_yaml(), "f", &env);
            prop_assert!(again.is_ok(), "{:?}", again.err());
        }
    }

    #[test]
    fn durations_round_trip(ms in 0u64..9_223_372_036_854) {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(d.to_string().parse::<Duration>().unwrap(), d);
    }

    #[test]
    fn duration_text_never_panics(text in "[0-9ywdhms.\\-]{0,30}") {
        let _ = text.parse::<Duration>();
        let _ = text.parse::<ByteSize>();
    }

    #[test]
    fn sizes_round_trip(bytes in 0u64..(1 << 62)) {
        let s = ByteSize::from_bytes(bytes);
        prop_assert_eq!(s.to_string().parse::<ByteSize>().unwrap(), s);
    }

    #[test]
    fn relabel_never_panics(
        regex in "[a-z.*()|$1]{0,12}",
        replacement in "[a-z$1{}_]{0,8}",
        target in "[a-z$1{}_]{1,8}",
        values in proptest::collection::vec("[a-z\\n]{0,6}", 1..4),
    ) {
        let Ok(regex) = RelabelRegex::new(&regex) else { return Ok(()) };
        let labels = Labels::from_pairs(values.iter().enumerate().map(|(i, v)| (format!("l{i}"), v.clone())));
        for action in ["replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep", "lowercase", "uppercase", "keepequal", "dropequal"] {
            let rule = RelabelConfig {
                source_labels: vec!["l0".into(), "l1".into()],
                regex: regex.clone(),
                modulus: 7,
                target_label: target.clone(),
                replacement: replacement.clone(),
                action: action.parse().unwrap(),
                ..RelabelConfig::default()
            };
            let _ = rule.validate(sextant_model::NameValidation::Utf8);
            let _ = relabel(&labels, &[rule]);
        }
    }
}

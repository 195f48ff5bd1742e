//! `prometheus.yml` loading: small documents against the expected values or error text.

use sextant_scrape::{Config, Error};

fn env(name: &str) -> Option<String> {
    match name {
        "REGION" => Some("eu-west".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn load(text: &str) -> Result<Config, Error> {
    Config::load_str_with_env(text, "prometheus.yml", &env)
}

/// `text` must fail to load with exactly `expected` (`FILE:LINE:COL: message`); returns
/// what went wrong otherwise.
fn check_err(text: &str, expected: &str) -> Option<String> {
    match load(text) {
        Ok(_) => Some(format!("{text:?}: loaded, want error {expected:?}")),
        Err(e) if e.to_string() == expected => None,
        Err(e) => Some(format!("{text:?}:\n   got {:?}\n  want {expected:?}", e.to_string())),
    }
}

#[test]
fn errors_name_file_line_and_field() {
    let cases: &[(&str, &str)] = &[
        ("foo: 1\n", "prometheus.yml:1:1: unknown field `foo`, expected one of `global`, `runtime`, `alerting`, `rule_files`, `scrape_config_files`, `scrape_configs`, `storage`, `remote_write`, `remote_read`"),
        ("global:\n  scrape_interval: 1m\n  bogus: x\n", "prometheus.yml:3:3: global: unknown field `bogus`, expected one of `scrape_interval`, `scrape_timeout`, `scrape_protocols`, `evaluation_interval`, `rule_query_offset`, `query_log_file`, `scrape_failure_log_file`, `external_labels`, `body_size_limit`, `sample_limit`, `target_limit`, `label_limit`, `label_name_length_limit`, `label_value_length_limit`, `keep_dropped_targets`, `metric_name_validation_scheme`, `metric_name_escaping_scheme`, `scrape_native_histograms`, `convert_classic_histograms_to_nhcb`, `always_scrape_classic_histograms`, `extra_scrape_metrics`"),
        ("global:\n  scrape_interval: 1.5m\n", "prometheus.yml:2:20: global.scrape_interval: unknown unit \".\" in duration \"1.5m\""),
        ("global:\n  scrape_interval: -1m\n", "prometheus.yml:2:20: global.scrape_interval: not a valid duration string: \"-1m\""),
        ("global:\n  scrape_interval: 10s\n  scrape_timeout: 20s\n", "prometheus.yml:3:19: global.scrape_timeout: global scrape timeout greater than scrape interval"),
        ("global:\n  body_size_limit: 10XB\n", "prometheus.yml:2:20: global.body_size_limit: units: unknown unit XB in 10XB"),
        ("scrape_configs:\n- job_name: a\n  scrape_interval: 5s\n  scrape_timeout: 10s\n", "prometheus.yml:4:19: scrape_configs[0].scrape_timeout: scrape timeout greater than scrape interval for scrape config with job name \"a\""),
        ("scrape_configs:\n- job_name: a\n- job_name: b\n- job_name: a\n", "prometheus.yml:4:13: scrape_configs[2].job_name: found multiple scrape configs with job name \"a\""),
        ("scrape_configs:\n- job_name: a\n  scrape_intervall: 5s\n", "prometheus.yml:3:3: scrape_configs[0]: unknown field `scrape_intervall`, expected one of `job_name`, `honor_labels`, `honor_timestamps`, `track_timestamps_staleness`, `params`, `scrape_interval`, `scrape_timeout`, `scrape_protocols`, `fallback_scrape_protocol`, `scrape_native_histograms`, `always_scrape_classic_histograms`, `convert_classic_histograms_to_nhcb`, `scrape_failure_log_file`, `metrics_path`, `scheme`, `enable_compression`, `body_size_limit`, `sample_limit`, `target_limit`, `label_limit`, `label_name_length_limit`, `label_value_length_limit`, `native_histogram_bucket_limit`, `native_histogram_min_bucket_factor`, `keep_dropped_targets`, `metric_name_validation_scheme`, `metric_name_escaping_scheme`, `extra_scrape_metrics`, `relabel_configs`, `metric_relabel_configs`, `static_configs`, `file_sd_configs`, `http_sd_configs`, `docker_sd_configs`, `basic_auth`, `authorization`, `oauth2`, `bearer_token`, `bearer_token_file`, `tls_config`, `follow_redirects`, `enable_http2`, `proxy_url`, `no_proxy`, `proxy_from_environment`, `http_headers`"),
        ("scrape_configs:\n- scrape_interval: 5s\n", "prometheus.yml:2:3: scrape_configs[0]: job_name is empty"),
        ("scrape_configs:\n- job_name: a\n  sample_limit: -1\n", "prometheus.yml:3:17: scrape_configs[0].sample_limit: invalid type: integer `-1`, expected u64"),
        ("scrape_configs:\n- job_name: a\n  honor_labels: maybe\n", "prometheus.yml:3:17: scrape_configs[0].honor_labels: invalid type: string \"maybe\", expected a boolean"),
        ("scrape_configs:\n- job_name: a\n  static_configs:\n  - targets: ['http://x:9100']\n", "prometheus.yml:2:3: scrape_configs[0]: \"http://x:9100\" is not a valid hostname"),
        ("scrape_configs:\n- job_name: a\n  static_configs:\n  - targets: [x]\n    lables: {a: b}\n", "prometheus.yml:5:5: scrape_configs[0].static_configs[0]: unknown field `lables`, expected `targets` or `labels`"),
        ("scrape_configs:\n- job_name: a\n  basic_auth: {username: u, password: p}\n  bearer_token: t\n", "prometheus.yml:2:3: scrape_configs[0]: at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"),
        ("scrape_configs:\n- job_name: a\n  basic_auth: {password: p, password_file: f}\n", "prometheus.yml:2:3: scrape_configs[0]: at most one of basic_auth password, password_file & password_ref must be configured"),
        ("scrape_configs:\n- job_name: a\n  authorization: {type: Basic, credentials: x}\n", "prometheus.yml:2:3: scrape_configs[0]: authorization type cannot be set to \"basic\", use \"basic_auth\" instead"),
        ("scrape_configs:\n- job_name: a\n  tls_config: {cert_file: c}\n", "prometheus.yml:2:3: scrape_configs[0]: exactly one of key or key_file must be configured when a client certificate is configured"),
        ("scrape_configs:\n- job_name: a\n  tls_config: {min_version: TLS99}\n", "prometheus.yml:3:29: scrape_configs[0].tls_config.min_version: unknown variant `TLS99`, expected one of `TLS10`, `TLS11`, `TLS12`, `TLS13`"),
        ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - action: replace\n", "prometheus.yml:4:5: scrape_configs[0].relabel_configs[0]: relabel configuration for replace action requires 'target_label' value"),
        ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - action: hashmod\n    target_label: x\n", "prometheus.yml:4:5: scrape_configs[0].relabel_configs[0]: relabel configuration for hashmod requires non-zero modulus"),
        ("scrape_configs:\n- job_name: a\n  metric_relabel_configs:\n  - action: explode\n", "prometheus.yml:4:13: scrape_configs[0].metric_relabel_configs[0].action: unknown relabel action \"explode\""),
        ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - regex: '('\n    action: keep\n", "prometheus.yml:4:12: scrape_configs[0].relabel_configs[0].regex: error parsing regexp: regex parse error: ^(?s:()$ ^ error: unclosed group"),
        ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - {action: labeldrop, regex: x, target_label: y}\n", "prometheus.yml:4:5: scrape_configs[0].relabel_configs[0]: labeldrop action requires only 'regex', and no other fields"),
        ("scrape_configs:\n- job_name: a\n  metric_name_validation_scheme: legacy\n  relabel_configs:\n  - {source_labels: [a], target_label: 'a.b'}\n", "prometheus.yml:5:5: scrape_configs[0].relabel_configs[0]: \"a.b\" is invalid 'target_label' for replace action"),
        ("scrape_configs:\n- job_name: a\n  file_sd_configs:\n  - files: [targets.txt]\n", "prometheus.yml:4:5: scrape_configs[0].file_sd_configs[0]: path name \"targets.txt\" is not valid for file discovery"),
        ("scrape_configs:\n- job_name: a\n  file_sd_configs:\n  - refresh_interval: 1m\n", "prometheus.yml:4:5: scrape_configs[0].file_sd_configs[0]: file service discovery config must contain at least one path name"),
        ("scrape_configs:\n- job_name: a\n  http_sd_configs:\n  - url: ftp://x/y\n", "prometheus.yml:4:5: scrape_configs[0].http_sd_configs[0]: URL scheme must be 'http' or 'https'"),
        ("scrape_configs:\n- job_name: a\n  http_sd_configs:\n  - refresh_interval: 1m\n", "prometheus.yml:4:5: scrape_configs[0].http_sd_configs[0]: URL is missing"),
        ("scrape_configs:\n- job_name: a\n  docker_sd_configs:\n  - port: 8080\n", "prometheus.yml:4:5: scrape_configs[0].docker_sd_configs[0]: host missing"),
        ("scrape_configs:\n- job_name: a\n  kubernetes_sd_configs:\n  - role: pod\n", "prometheus.yml:3:3: scrape_configs[0]: unknown field `kubernetes_sd_configs`, expected one of `job_name`, `honor_labels`, `honor_timestamps`, `track_timestamps_staleness`, `params`, `scrape_interval`, `scrape_timeout`, `scrape_protocols`, `fallback_scrape_protocol`, `scrape_native_histograms`, `always_scrape_classic_histograms`, `convert_classic_histograms_to_nhcb`, `scrape_failure_log_file`, `metrics_path`, `scheme`, `enable_compression`, `body_size_limit`, `sample_limit`, `target_limit`, `label_limit`, `label_name_length_limit`, `label_value_length_limit`, `native_histogram_bucket_limit`, `native_histogram_min_bucket_factor`, `keep_dropped_targets`, `metric_name_validation_scheme`, `metric_name_escaping_scheme`, `extra_scrape_metrics`, `relabel_configs`, `metric_relabel_configs`, `static_configs`, `file_sd_configs`, `http_sd_configs`, `docker_sd_configs`, `basic_auth`, `authorization`, `oauth2`, `bearer_token`, `bearer_token_file`, `tls_config`, `follow_redirects`, `enable_http2`, `proxy_url`, `no_proxy`, `proxy_from_environment`, `http_headers`"),
        ("rule_files: ['rules/*/x.yml']\n", "prometheus.yml:1:14: rule_files[0]: invalid rule file path \"rules/*/x.yml\""),
        ("remote_write:\n- remote_timeout: 5s\n", "prometheus.yml:2:3: remote_write[0]: url for remote_write is empty"),
        ("remote_write:\n- url: http://a/w\n  headers: {Content-Type: x}\n", "prometheus.yml:2:3: remote_write[0]: Content-Type is a reserved header. It must not be changed"),
        ("remote_write:\n- url: http://a/w\n  headers: {authorization: x}\n", "prometheus.yml:2:3: remote_write[0]: authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter"),
        ("remote_write:\n- url: http://a/w\n  queue_config: {min_shards: 10, max_shards: 5}\n", "prometheus.yml:2:3: remote_write[0]: remote write queue min_shards must not be greater than max_shards"),
        ("remote_write:\n- url: http://a/w\n  queue_config: {max_samples: 5}\n", "prometheus.yml:3:18: remote_write[0].queue_config: unknown field `max_samples`, expected one of `capacity`, `max_shards`, `min_shards`, `max_samples_per_send`, `batch_send_deadline`, `min_backoff`, `max_backoff`, `retry_on_http_429`, `sample_age_limit`"),
        ("remote_write:\n- url: http://a/w\n  name: x\n- url: http://b/w\n  name: x\n", "prometheus.yml:5:9: remote_write[1].name: found multiple remote write configs with job name \"x\""),
        ("remote_read:\n- read_recent: true\n", "prometheus.yml:2:3: remote_read[0]: url for remote_read is empty"),
        ("alerting:\n  alertmanagers:\n  - api_version: v1\n", "prometheus.yml:3:5: alerting.alertmanagers[0]: expected Alertmanager api version to be one of [v2] but got v1"),
        ("global:\n  external_labels: {'': x}\n", "prometheus.yml:2:20: global.external_labels: \"\" is not a valid label name"),
        ("global:\n  metric_name_validation_scheme: legacy\n  external_labels: {a.b: x}\n", "prometheus.yml:3:20: global.external_labels: \"a.b\" is not a valid label name"),
        ("scrape_configs:\n- job_name: a\n  job_name: b\n", "prometheus.yml:2:3: scrape_configs[0]: duplicate field `job_name`"),
        ("scrape_configs: [\n", "prometheus.yml:2:1: did not find expected node content at line 2 column 1, while parsing a flow node"),
    ];
    let failures: Vec<String> = cases.iter().filter_map(|(text, expected)| check_err(text, expected)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

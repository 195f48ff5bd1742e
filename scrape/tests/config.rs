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
        ("foo: 1\n", "prometheus.yml:1:1: unknown field `foo`, expected one of `global`, `runtime`, `alerting`, `rule_files`, `scrape_config_files`, `scrape_configs`, `storage`, `remote_write`, `remote_read`, `tracing`, `otlp`"),
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
        ("scrape_configs:\n-\n", "prometheus.yml:2:2: scrape_configs[0]: empty or null scrape config section"),
        ("scrape_configs:\n- job_name: a\n  static_configs:\n  -\n", "prometheus.yml:4:4: scrape_configs[0].static_configs[0]: empty or null section in static_configs"),
        ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  -\n", "prometheus.yml:4:4: scrape_configs[0].relabel_configs[0]: empty or null relabeling rule"),
        ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - action: null\n", "prometheus.yml:4:13: scrape_configs[0].relabel_configs[0].action: relabel action cannot be empty"),
        ("scrape_configs:\n- job_name: a\n  scrape_protocols: [PrometheusText0.0.4, prometheusproto]\n", "prometheus.yml:3:43: scrape_configs[0].scrape_protocols[1]: unknown scrape protocol prometheusproto, supported: [OpenMetricsText0.0.1 OpenMetricsText1.0.0 PrometheusProto PrometheusText0.0.4 PrometheusText1.0.0]"),
        ("scrape_configs:\n- job_name: a\n  scrape_protocols: [PrometheusProto, PrometheusProto]\n", "prometheus.yml:3:21: scrape_configs[0].scrape_protocols: duplicated protocol in scrape_protocols, got [PrometheusProto PrometheusProto] for scrape config with job name \"a\""),
        ("global:\n  metric_name_validation_scheme: ascii\n", "prometheus.yml:2:34: global.metric_name_validation_scheme: unrecognized ValidationScheme: \"ascii\""),
        ("storage:\n  tsdb:\n    retention: {percentage: 101}\n", "prometheus.yml:3:16: storage.tsdb.retention: 'storage.tsdb.retention.percentage' must be in the range [0, 100], got 101"),
        ("tracing:\n  client_type: grpc\n", "prometheus.yml:2:3: tracing: tracing endpoint must be set"),
        ("otlp:\n  translation_strategy: Bogus\n", "prometheus.yml:2:25: otlp.translation_strategy: unsupported OTLP translation strategy \"Bogus\""),
        ("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - {source_labels: [a, ''], action: keep}\n", "prometheus.yml:4:5: scrape_configs[0].relabel_configs[0]: \"\" is not a valid label name in source_labels"),
        ("scrape_configs: [\n", "prometheus.yml:2:1: did not find expected node content at line 2 column 1, while parsing a flow node"),
    ];
    let failures: Vec<String> = cases.iter().filter_map(|(text, expected)| check_err(text, expected)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn empty_file_gives_prometheus_defaults() {
    for text in ["", "# nothing\n", "global:\n", "global: {}\n"] {
        let c = load(text).unwrap();
        assert_eq!(c.global.scrape_interval.to_string(), "1m", "{text:?}");
        assert_eq!(c.global.scrape_timeout.to_string(), "10s");
        assert_eq!(c.global.evaluation_interval.to_string(), "1m");
        assert!(c.scrape_configs.is_empty());
    }
}

#[test]
fn jobs_inherit_from_global() {
    let c = load(
        "global:\n  scrape_interval: 15s\n  scrape_timeout: 30s\n  sample_limit: 1000\n  body_size_limit: 10MB\n\
         scrape_configs:\n- job_name: a\n- job_name: b\n  scrape_interval: 5s\n  sample_limit: 7\n- job_name: c\n  scrape_interval: 2m\n",
    );
    assert!(c.is_err(), "global timeout 30s > interval 15s");
    let c = load(
        "global:\n  scrape_interval: 15s\n  sample_limit: 1000\n  body_size_limit: 10MB\n\
         scrape_configs:\n- job_name: a\n- job_name: b\n  scrape_interval: 5s\n  sample_limit: 7\n- job_name: c\n  scrape_interval: 2m\n",
    )
    .unwrap();
    let got: Vec<(String, String, String, u64, u64)> = c
        .scrape_configs
        .iter()
        .map(|s| {
            (
                s.job_name.clone(),
                s.scrape_interval.to_string(),
                s.scrape_timeout.to_string(),
                s.sample_limit,
                s.body_size_limit.as_bytes(),
            )
        })
        .collect();
    let want =
        [("a", "15s", "10s", 1000, 10 << 20), ("b", "5s", "5s", 7, 10 << 20), ("c", "2m", "10s", 1000, 10 << 20)];
    let want: Vec<(String, String, String, u64, u64)> =
        want.iter().map(|(j, i, t, l, b)| (j.to_string(), i.to_string(), t.to_string(), *l, *b)).collect();
    assert_eq!(got, want);
    let a = c.scrape_config("a").unwrap();
    assert_eq!((a.metrics_path.as_str(), a.scheme.as_str()), ("/metrics", "http"));
    assert!(a.honor_timestamps && a.enable_compression && !a.honor_labels);
    assert!(a.http.follow_redirects && a.http.enable_http2);
    assert_eq!(a.scrape_protocols.len(), 4);
    assert_eq!(a.metric_name_escaping_scheme, "allow-utf-8");

    // A job interval below the global timeout lowers the timeout instead of failing.
    let c = load("global: {scrape_timeout: 30s}\nscrape_configs:\n- {job_name: a, scrape_interval: 15s}\n").unwrap();
    assert_eq!(c.scrape_configs[0].scrape_timeout.to_string(), "15s");
    // Likewise a global interval below the default timeout.
    let c = load("global: {scrape_interval: 5s}\n").unwrap();
    assert_eq!(c.global.scrape_timeout.to_string(), "5s");
}

#[test]
fn scrape_config_fields() {
    let c = load(
        r#"
scrape_configs:
- job_name: blackbox
  metrics_path: /probe
  scheme: https
  params:
    module: [http_2xx]
  honor_labels: true
  honor_timestamps: false
  enable_compression: false
  follow_redirects: false
  body_size_limit: 1GiB512MiB
  label_limit: 30
  target_limit: 5
  basic_auth:
    username: prom
    password_file: secret.txt
  tls_config:
    ca_file: ca.pem
    insecure_skip_verify: true
    min_version: TLS12
  static_configs:
  - targets: ['a:1', 'b:2']
    labels: {env: prod}
  file_sd_configs:
  - files: ['targets/*.json']
  http_sd_configs:
  - url: http://127.0.0.1:8000/sd
    refresh_interval: 30s
  docker_sd_configs:
  - host: unix:///var/run/docker.sock
    filters: [{name: label, values: ['prometheus=yes']}]
"#,
    )
    .unwrap();
    let s = &c.scrape_configs[0];
    assert_eq!(s.metrics_path, "/probe");
    assert_eq!(s.scheme, "https");
    assert_eq!(s.params["module"], ["http_2xx"]);
    assert!(s.honor_labels && !s.honor_timestamps && !s.enable_compression && !s.http.follow_redirects);
    assert_eq!(s.body_size_limit.to_string(), "1GiB512MiB");
    assert_eq!((s.label_limit, s.target_limit), (30, 5));
    let auth = s.http.basic_auth.as_ref().unwrap();
    assert_eq!((auth.username.as_str(), auth.password_file.as_str()), ("prom", "secret.txt"));
    assert_eq!(s.http.tls_config.ca_file, "ca.pem");
    assert!(s.http.tls_config.insecure_skip_verify);
    assert_eq!(s.static_configs[0].targets, ["a:1", "b:2"]);
    assert_eq!(s.static_configs[0].labels["env"], "prod");
    assert_eq!(s.file_sd_configs[0].files, ["targets/*.json"]);
    assert_eq!(s.file_sd_configs[0].refresh_interval.to_string(), "5m");
    assert_eq!(s.http_sd_configs[0].refresh_interval.to_string(), "30s");
    assert_eq!(s.docker_sd_configs[0].port, 80);
    assert_eq!(s.docker_sd_configs[0].host_networking_host, "localhost");
    assert_eq!(s.docker_sd_configs[0].filters[0].values, ["prometheus=yes"]);
}

#[test]
fn bearer_token_moves_into_authorization() {
    let c = load("scrape_configs:\n- job_name: a\n  bearer_token: abc\n- job_name: b\n  bearer_token_file: /t\n- job_name: c\n  authorization: {credentials: x}\n").unwrap();
    let auth = |i: usize| c.scrape_configs[i].http.authorization.clone().unwrap();
    assert_eq!((auth(0).kind.as_str(), auth(0).credentials.expose()), ("Bearer", "abc"));
    assert!(c.scrape_configs[0].http.bearer_token.is_empty());
    assert_eq!(auth(1).credentials_file, "/t");
    assert_eq!(auth(2).kind, "Bearer");
}

#[test]
fn external_labels_expand_environment() {
    let c = load(
        "global:\n  external_labels:\n    region: ${REGION}\n    zone: $REGION-a\n    cost: $$5\n    gone: ${EMPTY}\n    unset: x${NOPE}y\n    dollar: a$\n",
    )
    .unwrap();
    let l = c.global.external_labels();
    assert_eq!(l.get("region"), Some("eu-west"));
    assert_eq!(l.get("zone"), Some("eu-west-a"));
    assert_eq!(l.get("cost"), Some("$5"));
    assert_eq!(l.get("gone"), None);
    assert_eq!(l.get("unset"), Some("xy"));
    assert_eq!(l.get("dollar"), Some("a$"));
}

#[test]
fn remote_write_and_read_defaults() {
    let c = load(
        "remote_write:\n- url: https://hub:9090/api/v1/write\n  basic_auth: {username: edge, password: hunter2}\n  queue_config: {max_samples_per_send: 500}\n  write_relabel_configs:\n  - {source_labels: [__name__], regex: 'go_.*', action: drop}\nremote_read:\n- url: http://hub/api/v1/read\n",
    )
    .unwrap();
    let rw = &c.remote_write[0];
    assert_eq!(rw.remote_timeout.to_string(), "30s");
    assert_eq!(rw.queue_config.max_samples_per_send, 500);
    assert_eq!(rw.queue_config.capacity, 10_000);
    assert_eq!(rw.queue_config.max_shards, 50);
    assert_eq!(rw.queue_config.min_backoff.to_string(), "30ms");
    assert_eq!(rw.metadata_config.send_interval.to_string(), "1m");
    assert_eq!(rw.protobuf_message, "prometheus.WriteRequest");
    assert!(!rw.http.enable_http2);
    assert_eq!(rw.http.basic_auth.as_ref().unwrap().password.expose(), "hunter2");
    assert_eq!(rw.write_relabel_configs.len(), 1);
    let rr = &c.remote_read[0];
    assert_eq!(rr.remote_timeout.to_string(), "1m");
    assert!(rr.filter_external_labels && !rr.read_recent);
}

#[test]
fn secrets_never_print() {
    let text = "scrape_configs:\n- job_name: a\n  basic_auth: {username: u, password: hunter2}\n- job_name: b\n  authorization: {credentials: tok3n}\n- job_name: c\n  bearer_token: b3arer\n  tls_config: {cert: C, key: k3y}\nremote_write:\n- url: http://x/w\n  oauth2: {client_id: id, client_secret: s3cret, token_url: http://t/}\n";
    let c = load(text).unwrap();
    let debug = format!("{c:?}");
    let yaml = c.to_yaml();
    for secret in ["hunter2", "tok3n", "b3arer", "k3y", "s3cret"] {
        assert!(!debug.contains(secret), "{secret} in Debug");
        assert!(!yaml.contains(secret), "{secret} in YAML");
    }
    assert_eq!(yaml.matches("<secret>").count(), 5, "{yaml}");
}

#[test]
fn rendered_yaml_loads_back_the_same() {
    let text = "global:\n  scrape_interval: 2s\n  external_labels: {cluster: edge-a}\nrule_files: [rules.yml]\nscrape_configs:\n- job_name: prometheus\n  static_configs:\n  - targets: ['127.0.0.1:19091']\n    labels: {env: test}\n  metric_relabel_configs:\n  - {source_labels: [__name__], regex: 'go_gc_duration_seconds.*', action: drop}\nremote_write:\n- url: http://127.0.0.1:19092/api/v1/write\n  name: capture\nalerting:\n  alertmanagers:\n  - static_configs: [{targets: ['127.0.0.1:9093']}]\n";
    let c = load(text).unwrap();
    let yaml = c.to_yaml();
    for needle in [
        "scrape_interval: 2s",
        "scrape_timeout: 2s",
        "evaluation_interval: 1m",
        "honor_timestamps: true",
        "metrics_path: /metrics",
        "follow_redirects: true",
        "separator: ;",
        "replacement: $1",
        "action: drop",
        "remote_timeout: 30s",
        "capacity: 10000",
    ] {
        assert!(yaml.contains(needle), "{needle} missing from\n{yaml}");
    }
    let again = load(&yaml).unwrap();
    assert_eq!(again, c);
}

#[test]
fn relabel_defaults_and_scheme() {
    let c = load("scrape_configs:\n- job_name: a\n  metric_name_validation_scheme: legacy\n  relabel_configs:\n  - target_label: x\n    replacement: y\n").unwrap();
    let r = &c.scrape_configs[0].relabel_configs[0];
    assert_eq!((r.separator.as_str(), r.regex.as_str(), r.replacement.as_str()), (";", "(.*)", "y"));
    assert!(r.regex.is_default());
    assert_eq!(r.name_validation, Some(sextant_model::NameValidation::Legacy));
    assert_eq!(c.scrape_configs[0].metric_name_escaping_scheme, "underscores");
    let c = load(
        "scrape_configs:\n- job_name: a\n  relabel_configs:\n  - {action: KEEP, regex: '(.*)', source_labels: [a]}\n",
    )
    .unwrap();
    let r = &c.scrape_configs[0].relabel_configs[0];
    assert_eq!(r.action, sextant_scrape::Action::Keep);
    assert!(!r.regex.is_default(), "an explicit (.*) is not the default");
}

#[test]
fn load_file_names_the_file_and_resolves_paths() {
    let dir = std::env::temp_dir().join(format!("sextant-scrape-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, "rule_files: [rules/*.yml]\nscrape_configs:\n- job_name: a\n  file_sd_configs: [{files: [t.json]}]\n  tls_config: {ca_file: ca.pem}\n").unwrap();
    let c = Config::load_file(&path).unwrap();
    assert_eq!(c.rule_files[0], dir.join("rules/*.yml").to_string_lossy());
    assert_eq!(c.scrape_configs[0].file_sd_configs[0].files[0], dir.join("t.json").to_string_lossy());
    assert_eq!(c.scrape_configs[0].http.tls_config.ca_file, dir.join("ca.pem").to_string_lossy());
    std::fs::write(&path, "global:\n  scrape_interval: soon\n").unwrap();
    let err = Config::load_file(&path).unwrap_err().to_string();
    assert_eq!(err, format!("{}:2:20: global.scrape_interval: not a valid duration string: \"soon\"", path.display()));
    let missing = Config::load_file(dir.join("nope.yml")).unwrap_err().to_string();
    assert!(missing.starts_with(&format!("{}: ", dir.join("nope.yml").display())), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scrape_config_files_are_read_and_checked() {
    let dir = std::env::temp_dir().join(format!("sextant-scrape-files-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    let main = dir.join("prometheus.yml");
    std::fs::write(
        &main,
        "global: {scrape_interval: 30s}\nscrape_config_files: ['jobs/*.yml']\nscrape_configs:\n- job_name: main\n",
    )
    .unwrap();
    std::fs::write(dir.join("jobs/b.yml"), "scrape_configs:\n- job_name: b\n  tls_config: {ca_file: ca.pem}\n")
        .unwrap();
    std::fs::write(dir.join("jobs/a.yml"), "scrape_configs:\n- job_name: a\n  scrape_timeout: 5s\n").unwrap();
    std::fs::write(dir.join("jobs/ignored.json"), "{}").unwrap();
    let c = Config::load_file(&main).unwrap();
    let all = c.all_scrape_configs().unwrap();
    let names: Vec<&str> = all.iter().map(|s| s.job_name.as_str()).collect();
    assert_eq!(names, ["main", "a", "b"]);
    assert_eq!(all[1].scrape_interval.to_string(), "30s");
    assert_eq!(all[2].http.tls_config.ca_file, dir.join("jobs/ca.pem").to_string_lossy());

    std::fs::write(dir.join("jobs/c.yml"), "scrape_configs:\n- job_name: x\n- job_name: main\n").unwrap();
    let err = Config::load_file(&main).unwrap().all_scrape_configs().unwrap_err().to_string();
    let c_file = std::path::absolute(dir.join("jobs/c.yml")).unwrap().display().to_string();
    assert_eq!(
        err,
        format!("{c_file}:3:13: scrape_configs[1].job_name: found multiple scrape configs with job name \"main\", first found in main config file")
    );
    std::fs::write(
        dir.join("jobs/c.yml"),
        "scrape_configs:\n- job_name: x\n  scrape_interval: 1s\n  scrape_timeout: 2s\n",
    )
    .unwrap();
    let err = Config::load_file(&main).unwrap().all_scrape_configs().unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{c_file}:4:19: scrape_configs[0].scrape_timeout: scrape timeout greater than scrape interval for scrape config with job name \"x\"")
    );
    std::fs::write(dir.join("jobs/c.yml"), "global: {}\n").unwrap();
    let err = Config::load_file(&main).unwrap().all_scrape_configs().unwrap_err().to_string();
    assert_eq!(err, format!("{c_file}:1:1: unknown field `global`, expected `scrape_configs`"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn agent_mode_forbids_server_sections() {
    for (text, want) in [
        ("scrape_configs: [{job_name: a}]\nremote_write: [{url: 'http://h/w'}]\n", None),
        ("rule_files: [r.yml]\n", Some("field rule_files is not allowed in agent mode")),
        (
            "alerting: {alertmanagers: [{static_configs: [{targets: ['a:1']}]}]}\n",
            Some("field alerting is not allowed in agent mode"),
        ),
        ("remote_read: [{url: 'http://h/r'}]\n", Some("field remote_read is not allowed in agent mode")),
    ] {
        let got = load(text).unwrap().check_agent_mode().err().map(|e| e.to_string());
        assert_eq!(got.as_deref(), want, "{text}");
    }
}

#[test]
fn scrape_request_headers() {
    let c = load("scrape_configs:\n- job_name: a\n- job_name: b\n  enable_compression: false\n  scrape_protocols: [PrometheusProto, PrometheusText0.0.4]\n  metric_name_validation_scheme: legacy\n- job_name: c\n  scrape_native_histograms: true\n").unwrap();
    let [a, b, native] = [&c.scrape_configs[0], &c.scrape_configs[1], &c.scrape_configs[2]];
    assert_eq!(
        a.accept_header(),
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    );
    assert_eq!(a.accept_encoding_header(), "gzip");
    assert_eq!(
        b.accept_header(),
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,text/plain;version=0.0.4;q=0.5,*/*;q=0.4"
    );
    assert_eq!(b.accept_encoding_header(), "identity");
    assert!(native.accept_header().starts_with("application/vnd.google.protobuf;"), "{}", native.accept_header());
}

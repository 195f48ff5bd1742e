//! `prometheus.yml`: the types, Prometheus' defaults and validation, loading with positioned
//! errors, and rendering back to YAML with secrets masked.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sextant_model::{is_valid_legacy_label_name, Labels, NameValidation};

use crate::discovery::{DockerSdConfig, FileSdConfig, HttpSdConfig, TargetGroup};
use crate::http::{join_dir, with_http_client, HttpClientConfig};
use crate::locate::{locate, path_string, Seg};
use crate::relabel::RelabelConfig;
use crate::units::{ByteSize, Duration};
use crate::Error;

/// A whole `prometheus.yml` after Prometheus' defaults, inheritance from `global` and
/// validation. Load it with [`Config::load_file`] or [`Config::load_str`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub global: GlobalConfig,
    #[serde(skip_serializing_if = "RuntimeConfig::is_unset")]
    pub runtime: RuntimeConfig,
    #[serde(skip_serializing_if = "AlertingConfig::is_empty")]
    pub alerting: AlertingConfig,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule_files: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scrape_config_files: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scrape_configs: Vec<ScrapeConfig>,
    #[serde(skip_serializing_if = "StorageConfig::is_empty")]
    pub storage: StorageConfig,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_write: Vec<RemoteWriteConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_read: Vec<RemoteReadConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfig>,
    #[serde(skip_serializing_if = "OtlpConfig::is_unset")]
    pub otlp: OtlpConfig,
}

impl Default for Config {
    /// The configuration of an empty file.
    fn default() -> Config {
        let mut config = Config {
            global: GlobalConfig::default(),
            runtime: RuntimeConfig::default(),
            alerting: AlertingConfig::default(),
            rule_files: Vec::new(),
            scrape_config_files: Vec::new(),
            scrape_configs: Vec::new(),
            storage: StorageConfig::default(),
            remote_write: Vec::new(),
            remote_read: Vec::new(),
            tracing: None,
            otlp: OtlpConfig::default(),
        };
        config.global.fill_defaults();
        config
    }
}

/// `global`: defaults for every scrape config and rule group, and the external labels.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// Default `1m`.
    pub scrape_interval: Duration,
    /// Default `10s`, or the scrape interval if smaller.
    pub scrape_timeout: Duration,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scrape_protocols: Vec<ScrapeProtocol>,
    /// Default `1m`.
    pub evaluation_interval: Duration,
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub rule_query_offset: Duration,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub query_log_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scrape_failure_log_file: String,
    /// After `${VAR}` expansion from the environment.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub external_labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "ByteSize::is_zero")]
    pub body_size_limit: ByteSize,
    #[serde(skip_serializing_if = "is_zero")]
    pub sample_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub target_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub label_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub label_name_length_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub label_value_length_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub keep_dropped_targets: u64,
    /// `utf8` (default) or `legacy`.
    #[serde(with = "scheme_serde", skip_serializing_if = "Option::is_none")]
    pub metric_name_validation_scheme: Option<NameValidation>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub metric_name_escaping_scheme: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_native_histograms: Option<bool>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub convert_classic_histograms_to_nhcb: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub always_scrape_classic_histograms: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_scrape_metrics: Option<bool>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl GlobalConfig {
    /// The effective name validation scheme (`utf8` unless `legacy` is set).
    pub fn name_validation(&self) -> NameValidation {
        self.metric_name_validation_scheme.unwrap_or(NameValidation::Utf8)
    }

    /// The external labels as a label set (empty values dropped).
    pub fn external_labels(&self) -> Labels {
        Labels::from_pairs(self.external_labels.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }

    fn fill_defaults(&mut self) {
        if self.scrape_interval.is_zero() {
            self.scrape_interval = Duration::from_secs(60);
        }
        if self.scrape_timeout.is_zero() {
            self.scrape_timeout = Duration::from_secs(10).min(self.scrape_interval);
        }
        if self.evaluation_interval.is_zero() {
            self.evaluation_interval = Duration::from_secs(60);
        }
    }
}

/// `runtime`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gogc: Option<i64>,
}

impl RuntimeConfig {
    fn is_unset(&self) -> bool {
        self.gogc.is_none()
    }
}

/// `storage` (read for compatibility; the TSDB takes its settings from flags for now).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tsdb: Option<TsdbConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exemplars: Option<ExemplarsConfig>,
}

impl StorageConfig {
    fn is_empty(&self) -> bool {
        self.tsdb.is_none() && self.exemplars.is_none()
    }
}

/// `storage.tsdb`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TsdbConfig {
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub out_of_order_time_window: Duration,
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub stale_series_compaction_threshold: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_encoding: Option<ChunkEncodingConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionConfig>,
}

/// `storage.tsdb.chunk_encoding`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChunkEncodingConfig {
    /// `xor`, `xor2` or empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub floats: String,
}

/// `storage.tsdb.retention`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub time: Duration,
    #[serde(skip_serializing_if = "ByteSize::is_zero")]
    pub size: ByteSize,
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub percentage: f64,
}

/// `tracing`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TracingConfig {
    /// `grpc` (default) or `http`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub sampling_fraction: f64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<crate::http::TlsConfig>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub compression: String,
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
struct TracingRaw {
    client_type: Option<String>,
    endpoint: String,
    sampling_fraction: f64,
    insecure: bool,
    tls_config: Option<crate::http::TlsConfig>,
    headers: BTreeMap<String, String>,
    compression: String,
    timeout: Duration,
}

impl crate::units::Section for TracingConfig {}

impl<'de> Deserialize<'de> for TracingConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TracingConfig, D::Error> {
        crate::units::deserialize_checked::<D, TracingRaw, TracingConfig>(deserializer)
    }
}

impl TryFrom<TracingRaw> for TracingConfig {
    type Error = String;
    fn try_from(r: TracingRaw) -> Result<TracingConfig, String> {
        let client_type = r.client_type.unwrap_or_else(|| "grpc".into());
        if client_type != "grpc" && client_type != "http" {
            return Err(format!("expected tracing client type to be to be http or grpc, but got {client_type}"));
        }
        for name in r.headers.keys() {
            let lower = name.to_lowercase();
            if lower == "authorization" {
                return Err("custom authorization header configuration is not yet supported".into());
            }
            if RESERVED_HEADERS.contains(&lower.as_str()) {
                return Err(format!("{name} is a reserved header. It must not be changed"));
            }
        }
        if r.endpoint.is_empty() {
            return Err("tracing endpoint must be set".into());
        }
        if !r.compression.is_empty() && r.compression != "gzip" {
            return Err(format!("invalid compression type {} provided, valid options: gzip", r.compression));
        }
        Ok(TracingConfig {
            client_type,
            endpoint: r.endpoint,
            sampling_fraction: r.sampling_fraction,
            insecure: r.insecure,
            tls_config: r.tls_config,
            headers: r.headers,
            compression: r.compression,
            timeout: r.timeout,
        })
    }
}

/// `otlp`: how the OTLP receiver translates metrics (read for compatibility).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub promote_all_resource_attributes: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub promote_resource_attributes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore_resource_attributes: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub translation_strategy: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keep_identifying_resource_attributes: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub convert_histograms_to_nhcb: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub promote_scope_metadata: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_name_underscore_sanitization: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_name_preserve_multiple_underscores: Option<bool>,
}

impl OtlpConfig {
    fn is_unset(&self) -> bool {
        self == &OtlpConfig::default()
    }
}

/// `storage.exemplars`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExemplarsConfig {
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_exemplars: i64,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

/// Exposition formats a scrape may ask for (`scrape_protocols`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ScrapeProtocol {
    PrometheusProto,
    #[serde(rename = "PrometheusText0.0.4")]
    PrometheusText0_0_4,
    #[serde(rename = "PrometheusText1.0.0")]
    PrometheusText1_0_0,
    #[serde(rename = "OpenMetricsText0.0.1")]
    OpenMetricsText0_0_1,
    #[serde(rename = "OpenMetricsText1.0.0")]
    OpenMetricsText1_0_0,
}

impl std::str::FromStr for ScrapeProtocol {
    type Err = Error;
    fn from_str(s: &str) -> Result<ScrapeProtocol, Error> {
        ScrapeProtocol::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            Error::Value {
                message: format!(
                    "unknown scrape protocol {s}, supported: [OpenMetricsText0.0.1 OpenMetricsText1.0.0 PrometheusProto PrometheusText0.0.4 PrometheusText1.0.0]"
                ),
            }
        })
    }
}

impl crate::units::YamlScalar for ScrapeProtocol {
    const NULL: &'static str = "";
}

impl<'de> Deserialize<'de> for ScrapeProtocol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ScrapeProtocol, D::Error> {
        crate::units::deserialize_parsed(deserializer)
    }
}

impl ScrapeProtocol {
    const ALL: [ScrapeProtocol; 5] = [
        ScrapeProtocol::PrometheusProto,
        ScrapeProtocol::PrometheusText0_0_4,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::OpenMetricsText1_0_0,
    ];

    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => "PrometheusProto",
            ScrapeProtocol::PrometheusText0_0_4 => "PrometheusText0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "PrometheusText1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "OpenMetricsText0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "OpenMetricsText1.0.0",
        }
    }

    /// Prometheus' default order.
    pub const DEFAULT: [ScrapeProtocol; 4] = [
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    /// The media type with parameters this protocol is asked for with.
    pub fn header(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => {
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
            }
            ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "text/plain;version=1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
        }
    }
}

/// (De)serializes `Option<NameValidation>` as `utf8` / `legacy` (absent or `""`: unset).
mod scheme_serde {
    use super::*;

    pub(super) fn serialize<S: Serializer>(v: &Option<NameValidation>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(NameValidation::Legacy) => s.serialize_str("legacy"),
            Some(NameValidation::Utf8) => s.serialize_str("utf8"),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NameValidation>, D::Error> {
        Ok(crate::units::deserialize_parsed::<SchemeText, D>(d)?.0)
    }

    struct SchemeText(Option<NameValidation>);

    impl std::str::FromStr for SchemeText {
        type Err = Error;
        fn from_str(s: &str) -> Result<SchemeText, Error> {
            match s {
                "" => Ok(SchemeText(None)),
                "utf8" => Ok(SchemeText(Some(NameValidation::Utf8))),
                "legacy" => Ok(SchemeText(Some(NameValidation::Legacy))),
                other => Err(Error::Value { message: format!("unrecognized ValidationScheme: {other:?}") }),
            }
        }
    }

    impl crate::units::YamlScalar for SchemeText {
        const NULL: &'static str = "";
    }
}

const ESCAPING_SCHEMES: [&str; 4] = ["allow-utf-8", "underscores", "dots", "values"];

with_http_client! {
    /// One `scrape_configs` entry (a job). After loading, every field that inherits from
    /// `global` holds the effective value.
    pub struct ScrapeConfig via RawScrapeConfig, null = "empty or null scrape config section" {
        pub job_name: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        pub honor_labels: bool,
        pub honor_timestamps: bool,
        pub track_timestamps_staleness: bool,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        pub params: BTreeMap<String, Vec<String>>,
        pub scrape_interval: Duration,
        pub scrape_timeout: Duration,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub scrape_protocols: Vec<ScrapeProtocol>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub fallback_scrape_protocol: Option<ScrapeProtocol>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub scrape_native_histograms: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub always_scrape_classic_histograms: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub convert_classic_histograms_to_nhcb: Option<bool>,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub scrape_failure_log_file: String,
        pub metrics_path: String,
        pub scheme: String,
        pub enable_compression: bool,
        #[serde(skip_serializing_if = "ByteSize::is_zero")]
        pub body_size_limit: ByteSize,
        #[serde(skip_serializing_if = "is_zero")]
        pub sample_limit: u64,
        #[serde(skip_serializing_if = "is_zero")]
        pub target_limit: u64,
        #[serde(skip_serializing_if = "is_zero")]
        pub label_limit: u64,
        #[serde(skip_serializing_if = "is_zero")]
        pub label_name_length_limit: u64,
        #[serde(skip_serializing_if = "is_zero")]
        pub label_value_length_limit: u64,
        #[serde(skip_serializing_if = "is_zero")]
        pub native_histogram_bucket_limit: u64,
        #[serde(skip_serializing_if = "is_zero_f64")]
        pub native_histogram_min_bucket_factor: f64,
        #[serde(skip_serializing_if = "is_zero")]
        pub keep_dropped_targets: u64,
        #[serde(with = "scheme_serde", skip_serializing_if = "Option::is_none")]
        pub metric_name_validation_scheme: Option<NameValidation>,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub metric_name_escaping_scheme: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub extra_scrape_metrics: Option<bool>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub relabel_configs: Vec<RelabelConfig>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub metric_relabel_configs: Vec<RelabelConfig>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub static_configs: Vec<TargetGroup>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub file_sd_configs: Vec<FileSdConfig>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub http_sd_configs: Vec<HttpSdConfig>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub docker_sd_configs: Vec<DockerSdConfig>,
    }
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

impl Default for ScrapeConfig {
    /// Prometheus' `DefaultScrapeConfig`; intervals and limits are inherited at load time.
    fn default() -> ScrapeConfig {
        ScrapeConfig {
            job_name: String::new(),
            honor_labels: false,
            honor_timestamps: true,
            track_timestamps_staleness: false,
            params: BTreeMap::new(),
            scrape_interval: Duration::ZERO,
            scrape_timeout: Duration::ZERO,
            scrape_protocols: Vec::new(),
            fallback_scrape_protocol: None,
            scrape_native_histograms: None,
            always_scrape_classic_histograms: None,
            convert_classic_histograms_to_nhcb: None,
            scrape_failure_log_file: String::new(),
            metrics_path: "/metrics".into(),
            scheme: "http".into(),
            enable_compression: true,
            body_size_limit: ByteSize::ZERO,
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            native_histogram_bucket_limit: 0,
            native_histogram_min_bucket_factor: 0.0,
            keep_dropped_targets: 0,
            metric_name_validation_scheme: None,
            metric_name_escaping_scheme: String::new(),
            extra_scrape_metrics: None,
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            http_sd_configs: Vec::new(),
            docker_sd_configs: Vec::new(),
            http: HttpClientConfig::default(),
        }
    }
}

/// Prometheus' `CheckTargetAddress`: a URL is not a target address.
fn check_target_address(address: &str) -> Result<(), String> {
    if address.contains('/') {
        return Err(format!("{address:?} is not a valid hostname"));
    }
    Ok(())
}

impl ScrapeConfig {
    /// Checks that need nothing outside this block (Prometheus' `ScrapeConfig.UnmarshalYAML`).
    fn check(&mut self) -> Result<(), String> {
        if self.job_name.is_empty() {
            return Err("job_name is empty".into());
        }
        self.http.validate()?;
        if self.relabel_configs.is_empty() {
            for group in &self.static_configs {
                for t in &group.targets {
                    check_target_address(t)?;
                }
            }
        }
        for (i, group) in self.static_configs.iter_mut().enumerate() {
            group.source = i.to_string();
        }
        Ok(())
    }

    fn set_directory(&mut self, dir: &str) {
        self.http.set_directory(dir);
        self.scrape_failure_log_file = join_dir(dir, &self.scrape_failure_log_file);
        self.file_sd_configs.iter_mut().for_each(|f| f.set_directory(dir));
        self.http_sd_configs.iter_mut().for_each(|h| h.http.set_directory(dir));
        self.docker_sd_configs.iter_mut().for_each(|d| d.http.set_directory(dir));
    }

    /// The `Accept` header a scrape sends: `scrape_protocols` in order with falling
    /// q-weights, the escaping scheme on the 1.0 text formats, then `*/*` (Prometheus'
    /// `acceptHeader`).
    pub fn accept_header(&self) -> String {
        let mut weight = ScrapeProtocol::ALL.len() + 1;
        let mut parts = Vec::with_capacity(self.scrape_protocols.len() + 1);
        for p in &self.scrape_protocols {
            let mut part = p.header().to_string();
            if matches!(p, ScrapeProtocol::PrometheusText1_0_0 | ScrapeProtocol::OpenMetricsText1_0_0) {
                part.push_str(";escaping=");
                part.push_str(&self.metric_name_escaping_scheme);
            }
            part.push_str(&format!(";q=0.{weight}"));
            parts.push(part);
            weight = weight.saturating_sub(1);
        }
        parts.push(format!("*/*;q=0.{weight}"));
        parts.join(",")
    }

    /// The `Accept-Encoding` header: `gzip` with `enable_compression`, else `identity`.
    pub fn accept_encoding_header(&self) -> &'static str {
        if self.enable_compression {
            "gzip"
        } else {
            "identity"
        }
    }

    /// The effective name validation scheme of this job.
    pub fn name_validation(&self) -> NameValidation {
        self.metric_name_validation_scheme.unwrap_or(NameValidation::Utf8)
    }

    /// Prometheus' `ScrapeConfig.Validate`: inherits from `global` and checks what depends
    /// on it. Errors carry the path of the field at fault below this job.
    fn inherit(&mut self, global: &GlobalConfig) -> Result<(), (Vec<Seg>, String)> {
        let job = self.job_name.clone();
        let at = |key: &'static str, msg: String| (vec![Seg::Key(key)], msg);
        let interval_set = !self.scrape_interval.is_zero();
        if !interval_set {
            self.scrape_interval = global.scrape_interval;
        }
        if self.scrape_timeout > self.scrape_interval {
            let key = if !self.scrape_timeout.is_zero() { "scrape_timeout" } else { "scrape_interval" };
            return Err(at(
                key,
                format!("scrape timeout greater than scrape interval for scrape config with job name {job:?}"),
            ));
        }
        if self.scrape_timeout.is_zero() {
            self.scrape_timeout = global.scrape_timeout.min(self.scrape_interval);
        }
        if self.body_size_limit.is_zero() {
            self.body_size_limit = global.body_size_limit;
        }
        for (mine, global) in [
            (&mut self.sample_limit, global.sample_limit),
            (&mut self.target_limit, global.target_limit),
            (&mut self.label_limit, global.label_limit),
            (&mut self.label_name_length_limit, global.label_name_length_limit),
            (&mut self.label_value_length_limit, global.label_value_length_limit),
            (&mut self.keep_dropped_targets, global.keep_dropped_targets),
        ] {
            if *mine == 0 {
                *mine = global;
            }
        }
        if self.scrape_failure_log_file.is_empty() {
            self.scrape_failure_log_file = global.scrape_failure_log_file.clone();
        }
        if self.scrape_native_histograms.is_none() {
            self.scrape_native_histograms = Some(global.scrape_native_histograms.unwrap_or(false));
        }
        if self.extra_scrape_metrics.is_none() {
            self.extra_scrape_metrics = Some(global.extra_scrape_metrics.unwrap_or(false));
        }
        if self.scrape_protocols.is_empty() {
            self.scrape_protocols = if !global.scrape_protocols.is_empty() {
                global.scrape_protocols.clone()
            } else if self.scrape_native_histograms == Some(true) {
                let mut p = vec![ScrapeProtocol::PrometheusProto];
                p.extend(ScrapeProtocol::DEFAULT);
                p
            } else {
                ScrapeProtocol::DEFAULT.to_vec()
            };
        } else {
            check_protocols(&self.scrape_protocols)
                .map_err(|m| at("scrape_protocols", format!("{m} for scrape config with job name {job:?}")))?;
        }
        let local_unset = self.metric_name_validation_scheme.is_none();
        if local_unset {
            self.metric_name_validation_scheme = Some(global.name_validation());
        }
        let global_escaping = match global.metric_name_escaping_scheme.as_str() {
            "" if global.name_validation() == NameValidation::Legacy => "underscores",
            "" => "allow-utf-8",
            other => other,
        };
        if self.metric_name_escaping_scheme.is_empty() {
            self.metric_name_escaping_scheme = if local_unset {
                global_escaping.to_string()
            } else if self.name_validation() == NameValidation::Legacy {
                "underscores".into()
            } else {
                "allow-utf-8".into()
            };
        }
        if !ESCAPING_SCHEMES.contains(&self.metric_name_escaping_scheme.as_str()) {
            return Err(at(
                "metric_name_escaping_scheme",
                format!(
                    "unknown scrape config name escaping method specified, must be one of 'allow-utf-8', 'underscores', 'dots', or 'values', got {:?}",
                    self.metric_name_escaping_scheme
                ),
            ));
        }
        if self.metric_name_escaping_scheme == "allow-utf-8" && self.name_validation() != NameValidation::Utf8 {
            return Err(at(
                "metric_name_escaping_scheme",
                "utf8 metric names requested but validation scheme is not set to UTF8".into(),
            ));
        }
        if self.convert_classic_histograms_to_nhcb.is_none() {
            self.convert_classic_histograms_to_nhcb = Some(global.convert_classic_histograms_to_nhcb);
        }
        if self.always_scrape_classic_histograms.is_none() {
            self.always_scrape_classic_histograms = Some(global.always_scrape_classic_histograms);
        }
        let scheme = self.name_validation();
        validate_relabel_list(&mut self.relabel_configs, scheme, "relabel_configs")?;
        validate_relabel_list(&mut self.metric_relabel_configs, scheme, "metric_relabel_configs")?;
        Ok(())
    }
}

fn validate_relabel_list(
    configs: &mut [RelabelConfig],
    scheme: NameValidation,
    key: &'static str,
) -> Result<(), (Vec<Seg>, String)> {
    for (i, rc) in configs.iter_mut().enumerate() {
        rc.validate(scheme).map_err(|e| (vec![Seg::Key(key), Seg::Index(i)], e.to_string()))?;
        rc.name_validation.get_or_insert(scheme);
    }
    Ok(())
}

fn check_protocols(protocols: &[ScrapeProtocol]) -> Result<(), String> {
    let mut seen = HashSet::new();
    for p in protocols {
        if !seen.insert(*p) {
            let names: Vec<String> =
                protocols.iter().map(|p| serde_yaml_ng::to_string(p).unwrap_or_default().trim().to_string()).collect();
            return Err(format!("duplicated protocol in scrape_protocols, got [{}]", names.join(" ")));
        }
    }
    Ok(())
}

/// `alerting`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

impl AlertingConfig {
    fn is_empty(&self) -> bool {
        self.alert_relabel_configs.is_empty() && self.alertmanagers.is_empty()
    }
}

with_http_client! {
    /// One `alerting.alertmanagers` entry.
    pub struct AlertmanagerConfig via RawAlertmanagerConfig, null = "empty or null Alertmanager config section" {
        pub scheme: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub path_prefix: String,
        pub timeout: Duration,
        pub api_version: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub relabel_configs: Vec<RelabelConfig>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub alert_relabel_configs: Vec<RelabelConfig>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub static_configs: Vec<TargetGroup>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub file_sd_configs: Vec<FileSdConfig>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub http_sd_configs: Vec<HttpSdConfig>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub docker_sd_configs: Vec<DockerSdConfig>,
    }
}

impl Default for AlertmanagerConfig {
    fn default() -> AlertmanagerConfig {
        AlertmanagerConfig {
            scheme: "http".into(),
            path_prefix: String::new(),
            timeout: Duration::from_secs(10),
            api_version: "v2".into(),
            relabel_configs: Vec::new(),
            alert_relabel_configs: Vec::new(),
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            http_sd_configs: Vec::new(),
            docker_sd_configs: Vec::new(),
            http: HttpClientConfig::default(),
        }
    }
}

impl AlertmanagerConfig {
    fn check(&mut self) -> Result<(), String> {
        if self.api_version != "v2" {
            return Err(format!("expected Alertmanager api version to be one of [v2] but got {}", self.api_version));
        }
        self.http.validate()?;
        if self.relabel_configs.is_empty() {
            for group in &self.static_configs {
                for t in &group.targets {
                    check_target_address(t)?;
                }
            }
        }
        Ok(())
    }
}

with_http_client! {
    /// One `remote_write` entry.
    pub struct RemoteWriteConfig via RawRemoteWriteConfig, null = "empty or null remote write config section" {
        pub url: String,
        pub remote_timeout: Duration,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        pub headers: BTreeMap<String, String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub write_relabel_configs: Vec<RelabelConfig>,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub name: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        pub send_exemplars: bool,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        pub send_native_histograms: bool,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        pub round_robin_dns: bool,
        /// `prometheus.WriteRequest` (remote write 1.0, default) or
        /// `io.prometheus.write.v2.Request`.
        pub protobuf_message: String,
        pub queue_config: QueueConfig,
        pub metadata_config: MetadataConfig,
    }
}

impl Default for RemoteWriteConfig {
    fn default() -> RemoteWriteConfig {
        RemoteWriteConfig {
            url: String::new(),
            remote_timeout: Duration::from_secs(30),
            headers: BTreeMap::new(),
            write_relabel_configs: Vec::new(),
            name: String::new(),
            send_exemplars: false,
            send_native_histograms: false,
            round_robin_dns: false,
            protobuf_message: "prometheus.WriteRequest".into(),
            queue_config: QueueConfig::default(),
            metadata_config: MetadataConfig::default(),
            http: HttpClientConfig { enable_http2: false, ..HttpClientConfig::default() },
        }
    }
}

/// Headers `remote_write` / `remote_read` `headers` may not set (besides `Authorization`).
const RESERVED_HEADERS: [&str; 17] = [
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "authorization",
];

fn validate_headers(headers: &BTreeMap<String, String>) -> Result<(), String> {
    for name in headers.keys() {
        let lower = name.to_lowercase();
        if lower == "authorization" {
            return Err("authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter".into());
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(format!("{name} is a reserved header. It must not be changed"));
        }
    }
    Ok(())
}

fn validate_url(url: &str, what: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err(format!("url for {what} is empty"));
    }
    if let Some(c) = url.chars().find(|c| c.is_control() || *c == ' ') {
        return Err(format!("parse {url:?}: invalid character {:?} in URL", c.to_string()));
    }
    Ok(())
}

impl RemoteWriteConfig {
    fn check(&mut self) -> Result<(), String> {
        validate_url(&self.url, "remote_write")?;
        validate_headers(&self.headers)?;
        if !["prometheus.WriteRequest", "io.prometheus.write.v2.Request"].contains(&self.protobuf_message.as_str()) {
            return Err(format!(
                "invalid protobuf_message value: unknown type for remote write protobuf message {}, supported: prometheus.WriteRequest, io.prometheus.write.v2.Request",
                self.protobuf_message
            ));
        }
        self.http.validate()?;
        self.queue_config.validate()
    }
}

/// `remote_write.queue_config`; defaults as Prometheus 3.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    pub capacity: i64,
    pub max_shards: i64,
    pub min_shards: i64,
    pub max_samples_per_send: i64,
    pub batch_send_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retry_on_http_429: bool,
    #[serde(skip_serializing_if = "Duration::is_zero")]
    pub sample_age_limit: Duration,
}

impl Default for QueueConfig {
    fn default() -> QueueConfig {
        QueueConfig {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2_000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: false,
            sample_age_limit: Duration::ZERO,
        }
    }
}

impl QueueConfig {
    fn validate(&self) -> Result<(), String> {
        if self.max_shards <= 0 {
            return Err("remote write queue max_shards must be positive".into());
        }
        if self.min_shards <= 0 {
            return Err("remote write queue min_shards must be positive".into());
        }
        if self.min_shards > self.max_shards {
            return Err("remote write queue min_shards must not be greater than max_shards".into());
        }
        if self.max_samples_per_send <= 0 {
            return Err("remote write queue max_samples_per_send must be positive".into());
        }
        if self.capacity <= 0 {
            return Err("remote write queue capacity must be positive".into());
        }
        if self.max_backoff < self.min_backoff {
            return Err("remote write queue max_backoff must not be less than min_backoff".into());
        }
        Ok(())
    }
}

/// `remote_write.metadata_config`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    pub send: bool,
    pub send_interval: Duration,
    pub max_samples_per_send: i64,
}

impl Default for MetadataConfig {
    fn default() -> MetadataConfig {
        MetadataConfig { send: true, send_interval: Duration::from_secs(60), max_samples_per_send: 2_000 }
    }
}

with_http_client! {
    /// One `remote_read` entry.
    pub struct RemoteReadConfig via RawRemoteReadConfig, null = "empty or null remote read config section" {
        pub url: String,
        pub remote_timeout: Duration,
        #[serde(skip_serializing_if = "is_zero")]
        pub chunked_read_limit: u64,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        pub headers: BTreeMap<String, String>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        pub read_recent: bool,
        #[serde(skip_serializing_if = "String::is_empty")]
        pub name: String,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        pub required_matchers: BTreeMap<String, String>,
        pub filter_external_labels: bool,
    }
}

impl Default for RemoteReadConfig {
    fn default() -> RemoteReadConfig {
        RemoteReadConfig {
            url: String::new(),
            remote_timeout: Duration::from_secs(60),
            chunked_read_limit: 50_000_000,
            headers: BTreeMap::new(),
            read_recent: false,
            name: String::new(),
            required_matchers: BTreeMap::new(),
            filter_external_labels: true,
            http: HttpClientConfig::default(),
        }
    }
}

impl RemoteReadConfig {
    fn check(&mut self) -> Result<(), String> {
        validate_url(&self.url, "remote_read")?;
        validate_headers(&self.headers)?;
        self.http.validate()
    }
}

static RULE_PATH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[^*]*(\*[^/]*)?$").expect("valid regex"));

/// Prometheus' `os.Expand` rules for `$VAR` / `${VAR}`, with `$$` giving `$`.
pub(crate) fn expand_env(s: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut start = 0;
    let mut j = 0;
    while j < bytes.len() {
        if bytes[j] == b'$' && j + 1 < bytes.len() {
            out.push_str(&s[start..j]);
            let (name, width) = shell_name(&s[j + 1..]);
            match (name, width) {
                ("", w) if w > 0 => {}
                ("", _) => out.push('$'),
                ("$", _) => out.push('$'),
                (name, _) => out.push_str(&env(name).unwrap_or_default()),
            }
            j += width;
            start = j + 1;
        }
        j += 1;
    }
    out.push_str(&s[start.min(s.len())..]);
    out
}

fn is_shell_special(b: u8) -> bool {
    matches!(b, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9')
}

/// Go's `getShellName`: the variable name after a `$` and how many bytes it spans.
fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_shell_special(b[1]) && b[2] == b'}' {
            return (&s[1..2], 3);
        }
        for i in 1..b.len() {
            if b[i] == b'}' {
                if i == 1 {
                    return ("", 2);
                }
                return (&s[1..i], i + 1);
            }
        }
        return ("", 1);
    }
    if is_shell_special(b[0]) {
        return (&s[0..1], 1);
    }
    let n = b.iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
    (&s[..n], n)
}

/// An error found after deserialization: where (path) and what.
type Invalid = (Vec<Seg>, String);

impl Config {
    /// Reads and validates a `prometheus.yml`; relative file paths in it are resolved
    /// against its directory, and errors name the file.
    pub fn load_file(path: impl AsRef<Path>) -> Result<Config, Error> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { file: file.clone(), source })?;
        let mut config = Config::parse(&text, &file, &|name| std::env::var(name).ok())?;
        let dir = path.parent().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
        config.set_directory(&dir);
        Ok(config)
    }

    /// Parses and validates YAML text; `${VAR}` in external labels comes from the process
    /// environment.
    pub fn load_str(text: &str) -> Result<Config, Error> {
        Config::parse(text, "", &|name| std::env::var(name).ok())
    }

    /// Like [`Config::load_str`] with the environment given as a function; `file` is used in
    /// error messages only.
    pub fn load_str_with_env(text: &str, file: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Error> {
        Config::parse(text, file, env)
    }

    fn parse(text: &str, file: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let is_blank = text.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#') || t == "---"
        });
        let mut config: Config = if is_blank {
            Config::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| yaml_error(file, &e))?
        };
        if let Err((path, message)) = config.validate(env) {
            let (line, column) = locate(text, &path);
            let message = if path.is_empty() { message } else { format!("{}: {message}", path_string(&path)) };
            return Err(Error::Config { file: file.to_string(), line, column, message });
        }
        Ok(config)
    }

    /// Prometheus' `Config.UnmarshalYAML` and `Load` checks after the sections parsed.
    fn validate(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), Invalid> {
        let g = &mut self.global;
        let key = |k: &'static str| vec![Seg::Key("global"), Seg::Key(k)];
        let scheme = g.name_validation();
        for (name, value) in g.external_labels.iter_mut() {
            let valid = match scheme {
                NameValidation::Legacy => is_valid_legacy_label_name(name),
                NameValidation::Utf8 => !name.is_empty(),
            };
            if !valid {
                return Err((key("external_labels"), format!("{name:?} is not a valid label name")));
            }
            *value = expand_env(value, env);
        }
        if !g.scrape_interval.is_zero() && g.scrape_timeout > g.scrape_interval {
            return Err((key("scrape_timeout"), "global scrape timeout greater than scrape interval".into()));
        }
        if g.scrape_interval.is_zero() && g.scrape_timeout > Duration::from_secs(60) {
            return Err((key("scrape_timeout"), "global scrape timeout greater than scrape interval".into()));
        }
        g.fill_defaults();
        if !g.scrape_protocols.is_empty() {
            check_protocols(&g.scrape_protocols)
                .map_err(|m| (key("scrape_protocols"), format!("{m} for global config")))?;
        }
        if !g.metric_name_escaping_scheme.is_empty()
            && !ESCAPING_SCHEMES.contains(&g.metric_name_escaping_scheme.as_str())
        {
            return Err((
                key("metric_name_escaping_scheme"),
                format!(
                    "unknown global name escaping method specified, must be one of 'allow-utf-8', 'underscores', 'dots', or 'values', got {:?}",
                    g.metric_name_escaping_scheme
                ),
            ));
        }
        self.validate_sections()?;
        for (i, rf) in self.rule_files.iter().enumerate() {
            if !RULE_PATH.is_match(rf) {
                return Err((vec![Seg::Key("rule_files"), Seg::Index(i)], format!("invalid rule file path {rf:?}")));
            }
        }
        for (i, sf) in self.scrape_config_files.iter().enumerate() {
            if !RULE_PATH.is_match(sf) {
                return Err((
                    vec![Seg::Key("scrape_config_files"), Seg::Index(i)],
                    format!("invalid scrape config file path {sf:?}"),
                ));
            }
        }
        let global = self.global.clone();
        let mut jobs = HashSet::new();
        for (i, sc) in self.scrape_configs.iter_mut().enumerate() {
            let prefix = |mut p: Vec<Seg>| {
                let mut full = vec![Seg::Key("scrape_configs"), Seg::Index(i)];
                full.append(&mut p);
                full
            };
            sc.inherit(&global).map_err(|(p, m)| (prefix(p), m))?;
            if !jobs.insert(sc.job_name.clone()) {
                return Err((
                    prefix(vec![Seg::Key("job_name")]),
                    format!("found multiple scrape configs with job name {:?}", sc.job_name),
                ));
            }
        }
        validate_relabel_list(&mut self.alerting.alert_relabel_configs, scheme, "alert_relabel_configs")
            .map_err(|(p, m)| ([vec![Seg::Key("alerting")], p].concat(), m))?;
        for (i, am) in self.alerting.alertmanagers.iter_mut().enumerate() {
            let prefix =
                |p: Vec<Seg>| [vec![Seg::Key("alerting"), Seg::Key("alertmanagers"), Seg::Index(i)], p].concat();
            validate_relabel_list(&mut am.relabel_configs, scheme, "relabel_configs")
                .map_err(|(p, m)| (prefix(p), m))?;
            validate_relabel_list(&mut am.alert_relabel_configs, scheme, "alert_relabel_configs")
                .map_err(|(p, m)| (prefix(p), m))?;
        }
        let mut names = HashSet::new();
        for (i, rw) in self.remote_write.iter_mut().enumerate() {
            let prefix = |p: Vec<Seg>| [vec![Seg::Key("remote_write"), Seg::Index(i)], p].concat();
            if !rw.name.is_empty() && !names.insert(rw.name.clone()) {
                return Err((
                    prefix(vec![Seg::Key("name")]),
                    format!("found multiple remote write configs with job name {:?}", rw.name),
                ));
            }
            validate_relabel_list(&mut rw.write_relabel_configs, scheme, "write_relabel_configs")
                .map_err(|(p, m)| (prefix(p), m))?;
        }
        let mut names = HashSet::new();
        for (i, rr) in self.remote_read.iter().enumerate() {
            if !rr.name.is_empty() && !names.insert(rr.name.clone()) {
                return Err((
                    vec![Seg::Key("remote_read"), Seg::Index(i), Seg::Key("name")],
                    format!("found multiple remote read configs with job name {:?}", rr.name),
                ));
            }
        }
        Ok(())
    }

    /// `storage` and `otlp` checks.
    fn validate_sections(&self) -> Result<(), Invalid> {
        if let Some(tsdb) = &self.storage.tsdb {
            let at = |k: &'static str| vec![Seg::Key("storage"), Seg::Key("tsdb"), Seg::Key(k)];
            if let Some(enc) = &tsdb.chunk_encoding {
                if !["", "xor", "xor2"].contains(&enc.floats.as_str()) {
                    return Err((at("chunk_encoding"), format!("'storage.tsdb.chunk_encoding.floats' must be 'xor' or 'xor2', or the field must be omitted entirely, got {:?}", enc.floats)));
                }
            }
            if let Some(r) = &tsdb.retention {
                if !(0.0..=100.0).contains(&r.percentage) {
                    return Err((
                        at("retention"),
                        format!(
                            "'storage.tsdb.retention.percentage' must be in the range [0, 100], got {}",
                            r.percentage
                        ),
                    ));
                }
            }
        }
        let o = &self.otlp;
        let at = |k: &'static str| vec![Seg::Key("otlp"), Seg::Key(k)];
        match o.translation_strategy.as_str() {
            "" | "UnderscoreEscapingWithSuffixes" | "UnderscoreEscapingWithoutSuffixes" => {}
            "NoTranslation" | "NoUTF8EscapingWithSuffixes" => {
                if self.global.name_validation() == NameValidation::Legacy {
                    return Err((
                        at("translation_strategy"),
                        format!(
                            "OTLP translation strategy {:?} is not allowed when UTF8 is disabled",
                            o.translation_strategy
                        ),
                    ));
                }
            }
            other => {
                return Err((at("translation_strategy"), format!("unsupported OTLP translation strategy {other:?}")))
            }
        }
        let check_attrs = |attrs: &[String], adjective: &str| -> Result<(), String> {
            let mut seen = HashSet::new();
            for a in attrs {
                let a = a.trim();
                if a.is_empty() {
                    return Err(format!("empty {adjective} OTel resource attribute"));
                }
                if !seen.insert(a) {
                    return Err(format!("duplicated {adjective} OTel resource attribute {a:?}"));
                }
            }
            Ok(())
        };
        if o.promote_all_resource_attributes {
            if !o.promote_resource_attributes.is_empty() {
                return Err((at("promote_resource_attributes"), "'promote_all_resource_attributes' and 'promote_resource_attributes' cannot be configured simultaneously".into()));
            }
            check_attrs(&o.ignore_resource_attributes, "ignored").map_err(|m| {
                (at("ignore_resource_attributes"), format!("invalid 'ignore_resource_attributes': {m}"))
            })?;
        } else {
            if !o.ignore_resource_attributes.is_empty() {
                return Err((at("ignore_resource_attributes"), "'ignore_resource_attributes' cannot be configured unless 'promote_all_resource_attributes' is true".into()));
            }
            check_attrs(&o.promote_resource_attributes, "promoted").map_err(|m| {
                (at("promote_resource_attributes"), format!("invalid 'promote_resource_attributes': {m}"))
            })?;
        }
        Ok(())
    }

    /// Joins relative file paths with `dir`, as Prometheus does with the config's directory.
    fn set_directory(&mut self, dir: &str) {
        for f in self.rule_files.iter_mut().chain(self.scrape_config_files.iter_mut()) {
            *f = join_dir(dir, f);
        }
        self.global.query_log_file = join_dir(dir, &self.global.query_log_file);
        self.global.scrape_failure_log_file = join_dir(dir, &self.global.scrape_failure_log_file);
        for sc in self.scrape_configs.iter_mut() {
            sc.set_directory(dir);
        }
        for am in self.alerting.alertmanagers.iter_mut() {
            am.http.set_directory(dir);
            am.file_sd_configs.iter_mut().for_each(|f| f.set_directory(dir));
        }
        self.remote_write.iter_mut().for_each(|c| c.http.set_directory(dir));
        self.remote_read.iter_mut().for_each(|c| c.http.set_directory(dir));
    }

    /// The loaded configuration as YAML, the way Prometheus' `/api/v1/status/config` shows
    /// it: defaults and inherited values filled in, every secret printed as `<secret>`.
    pub fn to_yaml(&self) -> String {
        // Serialising these plain data types cannot fail.
        serde_yaml_ng::to_string(self).unwrap_or_default()
    }

    /// The scrape configs of the file and of every file `scrape_config_files` matches, read
    /// now (Prometheus re-reads them on each reload), each validated against `global`; job
    /// names must be unique across all of them.
    pub fn all_scrape_configs(&self) -> Result<Vec<ScrapeConfig>, Error> {
        let mut out = self.scrape_configs.clone();
        let mut first_seen: HashMap<String, String> =
            out.iter().map(|s| (s.job_name.clone(), "main config file".to_string())).collect();
        for pattern in &self.scrape_config_files {
            for path in glob_files(pattern) {
                let file = std::path::absolute(&path).unwrap_or_else(|_| path.clone()).display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|source| Error::Io { file: file.clone(), source })?;
                let parsed: ScrapeConfigsFile = if text.trim().is_empty() {
                    ScrapeConfigsFile::default()
                } else {
                    serde_yaml_ng::from_str(&text).map_err(|e| yaml_error(&file, &e))?
                };
                let dir = path.parent().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default();
                for (i, mut sc) in parsed.scrape_configs.into_iter().enumerate() {
                    let at = |p: Vec<Seg>, m: String| {
                        let path = [vec![Seg::Key("scrape_configs"), Seg::Index(i)], p].concat();
                        let (line, column) = locate(&text, &path);
                        Error::Config {
                            file: file.clone(),
                            line,
                            column,
                            message: format!("{}: {m}", path_string(&path)),
                        }
                    };
                    sc.inherit(&self.global).map_err(|(p, m)| at(p, m))?;
                    if let Some(first) = first_seen.get(&sc.job_name) {
                        return Err(at(
                            vec![Seg::Key("job_name")],
                            format!(
                                "found multiple scrape configs with job name {:?}, first found in {first}",
                                sc.job_name
                            ),
                        ));
                    }
                    first_seen.insert(sc.job_name.clone(), format!("{file:?}"));
                    sc.set_directory(&dir);
                    out.push(sc);
                }
            }
        }
        Ok(out)
    }

    /// Prometheus' extra checks for agent mode: no `alerting`, `rule_files` or `remote_read`.
    pub fn check_agent_mode(&self) -> Result<(), Error> {
        let forbidden = [
            ("alerting", !self.alerting.alertmanagers.is_empty() || !self.alerting.alert_relabel_configs.is_empty()),
            ("rule_files", !self.rule_files.is_empty()),
            ("remote_read", !self.remote_read.is_empty()),
        ];
        match forbidden.iter().find(|(_, present)| *present) {
            Some((field, _)) => Err(Error::Value { message: format!("field {field} is not allowed in agent mode") }),
            None => Ok(()),
        }
    }

    /// The scrape config of job `name`.
    pub fn scrape_config(&self, name: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs.iter().find(|s| s.job_name == name)
    }
}

/// A file named by `scrape_config_files`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ScrapeConfigsFile {
    scrape_configs: Vec<ScrapeConfig>,
}

/// The files matching `pattern`, sorted, where only the last path element may hold `*` and
/// `?` (what `rule_files` and `scrape_config_files` allow); unreadable directories match
/// nothing, as with Go's `filepath.Glob`.
pub(crate) fn glob_files(pattern: &str) -> Vec<std::path::PathBuf> {
    let path = Path::new(pattern);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !name.contains(['*', '?']) {
        return if path.is_file() { vec![path.to_path_buf()] } else { Vec::new() };
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut found: Vec<std::path::PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| wildcard_match(name.as_bytes(), e.file_name().to_string_lossy().as_bytes()))
        .map(|e| path.parent().unwrap_or(Path::new("")).join(e.file_name()))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found
}

/// `*` matches any run of bytes, `?` any one byte.
fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

/// Turns a serde_yaml_ng error into [`Error::Config`], moving its position out of the text.
fn yaml_error(file: &str, err: &serde_yaml_ng::Error) -> Error {
    let (line, column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
    let mut message = err.to_string();
    let suffix = format!(" at line {line} column {column}");
    if let Some(stripped) = message.strip_suffix(&suffix) {
        message = stripped.to_string();
    }
    Error::Config { file: file.to_string(), line, column, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_expansion_follows_go_os_expand() {
        let env = |name: &str| match name {
            "A" => Some("x".to_string()),
            "1" => Some("one".to_string()),
            _ => None,
        };
        for (input, want) in [
            ("$A", "x"),
            ("${A}", "x"),
            ("$A$A", "xx"),
            ("pre-${A}-post", "pre-x-post"),
            ("$$", "$"),
            ("$$A", "$A"),
            ("$", "$"),
            ("a$", "a$"),
            ("$-", ""),
            ("$1x", "onex"),
            ("${}", ""),
            ("${A", "A"),
            ("$ A", "$ A"),
            ("$B", ""),
            ("ünïcode $A", "ünïcode x"),
        ] {
            assert_eq!(expand_env(input, &env), want, "{input:?}");
        }
    }

    #[test]
    fn wildcards_match_like_filepath_match() {
        for (pattern, name, want) in [
            ("*.yml", "a.yml", true),
            ("*.yml", "a.yaml", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*", "", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("exact", "exact", true),
        ] {
            assert_eq!(wildcard_match(pattern.as_bytes(), name.as_bytes()), want, "{pattern} {name}");
        }
    }

    #[test]
    fn locate_finds_nested_values() {
        let text = "a:\n  b:\n  - x\n  - {c: 1, d: [p, q]}\n";
        assert_eq!(locate(text, &[Seg::Key("a")]), (2, 3));
        assert_eq!(locate(text, &[Seg::Key("a"), Seg::Key("b"), Seg::Index(1)]), (4, 5));
        assert_eq!(locate(text, &[Seg::Key("a"), Seg::Key("b"), Seg::Index(1), Seg::Key("d"), Seg::Index(1)]), (4, 19));
        // A missing key falls back to the nearest ancestor.
        assert_eq!(locate(text, &[Seg::Key("a"), Seg::Key("zz")]), (2, 3));
        assert_eq!(path_string(&[Seg::Key("a"), Seg::Index(2), Seg::Key("b")]), "a[2].b");
    }
}

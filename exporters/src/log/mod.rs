//! The log exporter: Logporter's `docker_*` families from the Docker Engine API, log line
//! counters per container and stream (counted incrementally with `since`), counters of lines
//! matching configurable patterns, and the same counting for log files on disk.
//!
//! Metric and label names are Logporter's (v1 set plus the v2/v3 families); HELP and TYPE
//! are written once per family.

mod docker_metrics;
mod files;
mod logs;
mod loki;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regex::Regex;

use crate::docker::{self, Docker, DockerHost};
use crate::registry::{Registry, RegistryConfig};
use crate::Error;

/// Logporter v1's default `DOCKER_LOG_CUSTOM_QUERY`, extended to unquoted words so that plain
/// text lines like `ERROR: disk full` count too (a superset of what Logporter matches).
pub(crate) const DEFAULT_ERROR_PATTERN: &str = r#"\b(err|error|ERR|ERROR|Error|fatal|FATAL|panic|PANIC)\b"#;

/// Configuration of the log exporter, from Logporter's environment variables and flags
/// (flags win).
///
/// ```
/// let config = sextant_exporters::LogConfig::from_env_and_args(
///     [("DOCKER_METRICS_HOSTNAME", "host-1")],
///     ["--log.pattern=timeout=(?i)timed? ?out", "--log.file=/var/log/app.log"],
/// ).unwrap();
/// assert_eq!(config.hostname.as_deref(), Some("host-1"));
/// assert_eq!(config.patterns[0].0, "timeout");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LogConfig {
    /// `--web.listen-address` / `DOCKER_METRICS_PORT`; default `:9333`.
    pub listen_address: String,
    /// `--web.telemetry-path`, default `/metrics`.
    pub telemetry_path: String,
    /// `--docker.host` / `DOCKER_HOST`; `None` (empty value) turns the Docker collectors off.
    pub docker_host: Option<String>,
    /// `--docker.hostname` / `DOCKER_METRICS_HOSTNAME`; default: the `Name` from `/info`.
    pub hostname: Option<String>,
    /// `--docker.logs` / `DOCKER_LOG_METRICS` / `DOCKER_METRICS_LOG`: count container log lines
    /// (default on; Logporter's default is off).
    pub container_logs: bool,
    /// `--docker.volumes` / `DOCKER_METRICS_VOLUME`: report volume sizes (default on).
    pub volumes: bool,
    /// `--docker.volume-cache` / `DOCKER_METRICS_VOLUME_CACHE` (minutes, default 30): how long
    /// a `/system/df` answer is reused.
    pub volume_cache: Duration,
    /// `--log.pattern=NAME=REGEX` (repeatable) / `DOCKER_LOG_CUSTOM_QUERY` (named `custom`):
    /// lines matching any count in `docker_logs_custom_count`, and per pattern in
    /// `sextant_log_pattern_lines_total`. Default: one `error` pattern.
    pub patterns: Vec<(String, Regex)>,
    /// `--log.file=PATH` (repeatable) / `LOG_FILES` (comma-separated): plain log files to count.
    pub files: Vec<PathBuf>,
    /// `--log.docker-dir=DIR`: Docker's `json-file` logs, `DIR/<id>/<id>-json.log`
    /// (e.g. `/var/lib/docker/containers`), counted per stream from disk.
    pub docker_dir: Option<PathBuf>,
    /// `--log.state-file=PATH`: where file positions and counts are kept across restarts.
    pub state_file: Option<PathBuf>,
    /// `--loki.url` / `LOKI_URL` (`http://host:port`): ship container log lines to Loki's
    /// push API after each counting pass; off when empty.
    pub loki_url: Option<String>,
    /// `--loki.username` / `LOKI_USERNAME` and `--loki.password` / `LOKI_PASSWORD`: basic auth.
    pub loki_username: Option<String>,
    /// See `loki_username`.
    pub loki_password: Option<String>,
    /// `--loki.tenant-id` / `LOKI_TENANT_ID`: sent as `X-Scope-OrgID`.
    pub loki_tenant: Option<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            listen_address: ":9333".into(),
            telemetry_path: "/metrics".into(),
            docker_host: Some(docker::DEFAULT_HOST.into()),
            hostname: None,
            container_logs: true,
            volumes: true,
            volume_cache: Duration::from_secs(30 * 60),
            patterns: vec![("error".into(), Regex::new(DEFAULT_ERROR_PATTERN).expect("valid default pattern"))],
            files: Vec::new(),
            docker_dir: None,
            state_file: None,
            loki_url: None,
            loki_username: None,
            loki_password: None,
            loki_tenant: None,
        }
    }
}

const VALUE_FLAGS: &[&str] = &[
    "web.listen-address",
    "web.telemetry-path",
    "docker.host",
    "docker.hostname",
    "docker.volume-cache",
    "log.pattern",
    "log.file",
    "log.docker-dir",
    "log.state-file",
    "loki.url",
    "loki.username",
    "loki.password",
    "loki.tenant-id",
];
const BOOL_FLAGS: &[&str] = &["docker.logs", "docker.volumes"];

fn pattern(flag: &str, name: &str, source: &str) -> Result<(String, Regex), Error> {
    let regex = Regex::new(source).map_err(|err| Error::Flag { flag: flag.into(), message: err.to_string() })?;
    Ok((name.to_string(), regex))
}

impl LogConfig {
    /// The configuration from the process environment and `args`.
    pub fn from_args<I, S>(args: I) -> Result<LogConfig, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        LogConfig::from_env_and_args(std::env::vars(), args)
    }

    /// The configuration from explicit environment pairs and `args`.
    pub fn from_env_and_args<E, K, V, I, S>(env: E, args: I) -> Result<LogConfig, Error>
    where
        E: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut config = LogConfig::default();
        let mut custom_metrics = None;
        for (key, value) in env {
            let (key, value) = (key.as_ref(), value.as_ref());
            match key {
                "DOCKER_HOST" => config.docker_host = Some(value.to_string()).filter(|v| !v.is_empty()),
                "DOCKER_METRICS_PORT" if !value.is_empty() => config.listen_address = format!(":{value}"),
                "DOCKER_METRICS_HOSTNAME" if !value.is_empty() => config.hostname = Some(value.to_string()),
                "DOCKER_LOG_METRICS" | "DOCKER_METRICS_LOG" if !value.is_empty() => {
                    config.container_logs = docker::parse_bool(key, value)?
                }
                "DOCKER_METRICS_VOLUME" if !value.is_empty() => config.volumes = docker::parse_bool(key, value)?,
                "DOCKER_METRICS_VOLUME_CACHE" if !value.is_empty() => {
                    let minutes: u64 = value
                        .parse()
                        .map_err(|_| Error::Flag { flag: key.into(), message: format!("not minutes: {value:?}") })?;
                    config.volume_cache = Duration::from_secs(minutes * 60);
                }
                "DOCKER_LOG_CUSTOM_METRICS" if !value.is_empty() => {
                    custom_metrics = Some(docker::parse_bool(key, value)?)
                }
                "DOCKER_LOG_CUSTOM_QUERY" if !value.is_empty() => {
                    config.patterns = vec![pattern(key, "custom", value)?]
                }
                "LOKI_URL" => config.loki_url = Some(value.to_string()).filter(|v| !v.is_empty()),
                "LOKI_USERNAME" => config.loki_username = Some(value.to_string()).filter(|v| !v.is_empty()),
                "LOKI_PASSWORD" => config.loki_password = Some(value.to_string()).filter(|v| !v.is_empty()),
                "LOKI_TENANT_ID" => config.loki_tenant = Some(value.to_string()).filter(|v| !v.is_empty()),
                "LOG_FILES" => config.files = value.split(',').filter(|p| !p.is_empty()).map(PathBuf::from).collect(),
                _ => {}
            }
        }
        if custom_metrics == Some(false) {
            config.patterns.clear();
        }
        let mut flag_patterns = Vec::new();
        for (name, value) in docker::split_flags(args, VALUE_FLAGS, BOOL_FLAGS)? {
            match name.as_str() {
                "web.listen-address" => config.listen_address = value,
                "web.telemetry-path" => config.telemetry_path = value,
                "docker.host" => config.docker_host = Some(value).filter(|v| !v.is_empty()),
                "docker.hostname" => config.hostname = Some(value).filter(|v| !v.is_empty()),
                "docker.volume-cache" => {
                    let minutes: u64 = value.parse().map_err(|_| Error::Flag {
                        flag: "--docker.volume-cache".into(),
                        message: format!("not minutes: {value:?}"),
                    })?;
                    config.volume_cache = Duration::from_secs(minutes * 60);
                }
                "docker.logs" => config.container_logs = docker::parse_bool("--docker.logs", &value)?,
                "docker.volumes" => config.volumes = docker::parse_bool("--docker.volumes", &value)?,
                "log.pattern" => {
                    let (pattern_name, source) = value.split_once('=').ok_or_else(|| Error::Flag {
                        flag: "--log.pattern".into(),
                        message: format!("want NAME=REGEX, got {value:?}"),
                    })?;
                    flag_patterns.push(pattern("--log.pattern", pattern_name, source)?);
                }
                "log.file" => config.files.push(value.into()),
                "log.docker-dir" => config.docker_dir = Some(value.into()),
                "log.state-file" => config.state_file = Some(value.into()),
                "loki.url" => config.loki_url = Some(value).filter(|v| !v.is_empty()),
                "loki.username" => config.loki_username = Some(value).filter(|v| !v.is_empty()),
                "loki.password" => config.loki_password = Some(value).filter(|v| !v.is_empty()),
                "loki.tenant-id" => config.loki_tenant = Some(value).filter(|v| !v.is_empty()),
                _ => {}
            }
        }
        if !flag_patterns.is_empty() {
            config.patterns = flag_patterns;
        }
        if let Some(host) = &config.docker_host {
            DockerHost::parse(host)?;
        }
        config.loki()?;
        Ok(config)
    }

    /// The usage text for `--help`.
    pub fn usage() -> String {
        "usage: sextant exporter log [flags]   (Logporter's environment variables are honoured too)\n\
         \x20 --web.listen-address=:9333      DOCKER_METRICS_PORT\n\
         \x20 --web.telemetry-path=/metrics\n\
         \x20 --docker.host=URL               DOCKER_HOST (default unix:///var/run/docker.sock); empty: no Docker\n\
         \x20 --docker.hostname=NAME          DOCKER_METRICS_HOSTNAME (default: the daemon's Name)\n\
         \x20 --[no-]docker.logs              DOCKER_LOG_METRICS / DOCKER_METRICS_LOG: count container log lines\n\
         \x20 --[no-]docker.volumes           DOCKER_METRICS_VOLUME: volume sizes\n\
         \x20 --docker.volume-cache=MINUTES   DOCKER_METRICS_VOLUME_CACHE (30)\n\
         \x20 --log.pattern=NAME=REGEX        lines to count per pattern (repeatable; DOCKER_LOG_CUSTOM_QUERY);\n\
         \x20                                 default: error=\\b(err|error|ERR|ERROR|Error|fatal|FATAL|panic|PANIC)\\b\n\
         \x20 --log.file=PATH                 a log file to count (repeatable; LOG_FILES=a,b)\n\
         \x20 --log.docker-dir=DIR            Docker json-file logs on disk, DIR/<id>/<id>-json.log\n\
         \x20 --log.state-file=PATH           keep file positions and counts across restarts\n\
         \x20 --loki.url=http://HOST:PORT     LOKI_URL: push container log lines to Loki\n\
         \x20 --loki.username, --loki.password, --loki.tenant-id   LOKI_USERNAME, LOKI_PASSWORD, LOKI_TENANT_ID\n"
            .to_string()
    }

    fn loki(&self) -> Result<Option<loki::Loki>, Error> {
        self.loki_url
            .as_deref()
            .map(|url| {
                loki::Loki::new(
                    url,
                    self.loki_username.as_deref(),
                    self.loki_password.as_deref(),
                    self.loki_tenant.as_deref(),
                )
            })
            .transpose()
    }

    /// A registry (namespace `log`) with the `docker` collector (container metrics), the
    /// `docker_logs` collector (container log lines) and the `files` collector, as configured.
    pub fn registry(&self) -> Result<Registry, Error> {
        let mut registry = Registry::new(RegistryConfig { namespace: "log".into(), ..Default::default() });
        let patterns = Arc::new(self.patterns.clone());
        if let Some(host) = &self.docker_host {
            let docker = Docker::new(DockerHost::parse(host)?);
            let hostname = Arc::new(Hostname { configured: self.hostname.clone(), cached: Mutex::new(None) });
            registry.register(docker_metrics::DockerCollector::new(
                docker.clone(),
                hostname.clone(),
                self.volumes,
                self.volume_cache,
            ));
            if self.container_logs {
                registry.register(logs::LogCollector::new(docker, hostname, patterns.clone(), self.loki()?));
            }
        }
        if !self.files.is_empty() || self.docker_dir.is_some() {
            let counter =
                files::FileCounter::new(self.files.clone(), self.docker_dir.clone(), self.state_file.clone(), patterns);
            let counter = Mutex::new(counter);
            registry.register(crate::registry::blocking("files", move || {
                let mut counter = counter.lock().unwrap_or_else(|poison| poison.into_inner());
                counter.collect()
            }));
        }
        Ok(registry)
    }
}

/// The `hostname` label: configured, or the daemon's `Name` from `/info`, asked once.
#[derive(Debug)]
pub(crate) struct Hostname {
    configured: Option<String>,
    cached: Mutex<Option<String>>,
}

impl Hostname {
    pub(crate) async fn get(&self, docker: &Docker) -> Result<String, Error> {
        if let Some(name) = &self.configured {
            return Ok(name.clone());
        }
        if let Some(name) = self.cached.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(name);
        }
        let info = docker.get_json("/info").await?;
        let name = info.get("Name").and_then(|n| n.as_str()).unwrap_or("").to_string();
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some(name.clone());
        Ok(name)
    }
}

/// A running container's identity labels, in Logporter's order: `containerId`,
/// `containerName`, the compose labels when non-empty, `hostname`.
#[derive(Debug, Clone)]
pub(crate) struct ContainerLabels(pub(crate) Vec<(&'static str, String)>);

impl ContainerLabels {
    pub(crate) fn from_list_item(item: &serde_json::Value, hostname: &str) -> Option<ContainerLabels> {
        let id = item.get("Id")?.as_str()?.to_string();
        let name = item
            .get("Names")
            .and_then(|n| n.as_array())
            .and_then(|n| n.first())
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .trim_start_matches('/')
            .to_string();
        let mut labels = vec![("containerId", id), ("containerName", name)];
        let docker_labels = item.get("Labels");
        for (label, key) in [
            ("composeProject", "com.docker.compose.project"),
            ("composeService", "com.docker.compose.service"),
            ("composeWorkDir", "com.docker.compose.project.working_dir"),
        ] {
            if let Some(value) = docker_labels.and_then(|l| l.get(key)).and_then(|v| v.as_str()) {
                if !value.is_empty() {
                    labels.push((label, value.to_string()));
                }
            }
        }
        labels.push(("hostname", hostname.to_string()));
        Some(ContainerLabels(labels))
    }

    pub(crate) fn id(&self) -> &str {
        &self.0[0].1
    }

    /// The labels as borrowed pairs, with `extra` appended.
    pub(crate) fn with<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut out: Vec<(&str, &str)> = self.0.iter().map(|(n, v)| (*n, v.as_str())).collect();
        out.extend_from_slice(extra);
        out
    }
}

/// Parses an RFC 3339 time (`2024-01-02T03:04:05.123456789Z`, any offset) into unix seconds
/// and nanoseconds.
pub(crate) fn parse_rfc3339(text: &str) -> Option<(i64, u32)> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b'T' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept = &fraction[..digits.min(9)];
        nanos = kept.parse::<u32>().ok()? * 10u32.pow(9 - kept.len() as u32);
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (rest[1..3].parse::<i64>().ok()? * 3600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + hour * 3600 + minute * 60 + second - offset, nanos))
}

//! Service discovery configuration: the data types only (`static_configs`,
//! `file_sd_configs`, `http_sd_configs`, `docker_sd_configs`). The discoverers come later.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use sextant_model::{Labels, LabelsBuilder};

use crate::http::{join_dir, with_http_client, HttpClientConfig};
use crate::units::Duration;

/// The label holding a target's `host:port`.
pub const ADDRESS_LABEL: &str = "__address__";

/// A group of targets sharing labels, as in `static_configs` and file/HTTP discovery:
/// `{targets: [host:port, ...], labels: {name: value}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TargetGroup {
    pub targets: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Where the group came from (e.g. its index in `static_configs`); not in YAML.
    #[serde(skip)]
    pub source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
struct TargetGroupRaw {
    targets: Vec<String>,
    labels: BTreeMap<String, String>,
}

impl TryFrom<TargetGroupRaw> for TargetGroup {
    type Error = String;
    fn try_from(raw: TargetGroupRaw) -> Result<TargetGroup, String> {
        if let Some(name) = raw.labels.keys().find(|n| n.is_empty()) {
            return Err(format!("{name:?} is not a valid label name"));
        }
        Ok(TargetGroup { targets: raw.targets, labels: raw.labels, source: String::new() })
    }
}

impl crate::units::Section for TargetGroup {
    const NULL_MESSAGE: &'static str = "empty or null section in static_configs";
}

impl<'de> Deserialize<'de> for TargetGroup {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<TargetGroup, D::Error> {
        crate::units::deserialize_checked::<D, TargetGroupRaw, TargetGroup>(deserializer)
    }
}

impl TargetGroup {
    /// Each target's own labels (`__address__`), as discovery hands them to
    /// [`crate::populate_labels`].
    pub fn target_labels(&self) -> impl Iterator<Item = Labels> + '_ {
        self.targets.iter().map(|t| Labels::from_pairs([(ADDRESS_LABEL, t.as_str())]))
    }

    /// The group's common labels.
    pub fn group_labels(&self) -> Labels {
        let mut b = LabelsBuilder::new(&Labels::empty());
        for (n, v) in &self.labels {
            b.set(n, v);
        }
        b.labels()
    }
}

static FILE_SD_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$").expect("valid regex"));

/// `file_sd_configs` entry: files (globs allowed in the last path element) of target groups.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    pub refresh_interval: Duration,
}

impl Default for FileSdConfig {
    fn default() -> FileSdConfig {
        FileSdConfig { files: Vec::new(), refresh_interval: Duration::from_secs(300) }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSdRaw {
    #[serde(default)]
    files: Vec<String>,
    refresh_interval: Option<Duration>,
}

impl crate::units::Section for FileSdConfig {
    const NULL_MESSAGE: &'static str = "empty or null section in file_sd_configs";
}

impl<'de> Deserialize<'de> for FileSdConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<FileSdConfig, D::Error> {
        crate::units::deserialize_checked::<D, FileSdRaw, FileSdConfig>(deserializer)
    }
}

impl TryFrom<FileSdRaw> for FileSdConfig {
    type Error = String;
    fn try_from(raw: FileSdRaw) -> Result<FileSdConfig, String> {
        if raw.files.is_empty() {
            return Err("file service discovery config must contain at least one path name".into());
        }
        if let Some(bad) = raw.files.iter().find(|f| !FILE_SD_NAME.is_match(f)) {
            return Err(format!("path name {bad:?} is not valid for file discovery"));
        }
        let refresh_interval = raw.refresh_interval.unwrap_or(FileSdConfig::default().refresh_interval);
        Ok(FileSdConfig { files: raw.files, refresh_interval })
    }
}

impl FileSdConfig {
    pub(crate) fn set_directory(&mut self, dir: &str) {
        for f in self.files.iter_mut() {
            *f = join_dir(dir, f);
        }
    }
}

with_http_client! {
    /// `http_sd_configs` entry: an HTTP(S) URL returning target groups as JSON.
    pub struct HttpSdConfig via HttpSdRaw, null = "empty or null section in http_sd_configs" {
        pub url: String,
        pub refresh_interval: Duration,
    }
}

impl Default for HttpSdConfig {
    fn default() -> HttpSdConfig {
        HttpSdConfig {
            url: String::new(),
            refresh_interval: Duration::from_secs(60),
            http: HttpClientConfig::default(),
        }
    }
}

/// Splits `scheme://host[:port]/...` into scheme and host; `None` without `://`.
fn url_scheme_host(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some((scheme, host))
}

impl HttpSdConfig {
    fn check(&mut self) -> Result<(), String> {
        if self.url.is_empty() {
            return Err("URL is missing".into());
        }
        let (scheme, host) = url_scheme_host(&self.url).unwrap_or(("", ""));
        if scheme != "http" && scheme != "https" {
            return Err("URL scheme must be 'http' or 'https'".into());
        }
        if host.is_empty() {
            return Err("host is missing in URL".into());
        }
        self.http.validate()
    }
}

/// A Docker API filter (`filters: [{name: ..., values: [...]}]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerFilter {
    pub name: String,
    pub values: Vec<String>,
}

with_http_client! {
    /// `docker_sd_configs` entry: containers of a Docker daemon as targets.
    pub struct DockerSdConfig via DockerSdRaw, null = "empty or null section in docker_sd_configs" {
        pub host: String,
        pub port: u16,
        pub filters: Vec<DockerFilter>,
        pub host_networking_host: String,
        pub refresh_interval: Duration,
        pub match_first_network: bool,
    }
}

impl Default for DockerSdConfig {
    fn default() -> DockerSdConfig {
        DockerSdConfig {
            host: String::new(),
            port: 80,
            filters: Vec::new(),
            host_networking_host: "localhost".into(),
            refresh_interval: Duration::from_secs(60),
            match_first_network: true,
            http: HttpClientConfig::default(),
        }
    }
}

impl DockerSdConfig {
    fn check(&mut self) -> Result<(), String> {
        if self.host.is_empty() {
            return Err("host missing".into());
        }
        self.http.validate()
    }
}

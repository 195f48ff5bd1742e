//! Service discovery behind one trait, [`Discoverer`]: static groups, files (`file_sd_configs`),
//! HTTP endpoints (`http_sd_configs`) and the Docker Engine API (`docker_sd_configs`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Deserialize;

use crate::client::{describe_reqwest, read_body_limited, HttpClient};
use crate::config::{AlertmanagerConfig, ScrapeConfig};
use crate::discovery::{DockerSdConfig, FileSdConfig, HttpSdConfig, TargetGroup, ADDRESS_LABEL};
use crate::Error;

/// Largest discovery document read (file, HTTP or Docker answer).
const MAX_DOCUMENT_BYTES: u64 = 64 << 20;

/// A source of target groups. [`Discoverer::refresh`] returns the complete current list;
/// the manager calls it at start, every [`Discoverer::refresh_interval`], and whenever
/// [`Discoverer::changed`] (a cheap check polled about every second) says so.
#[async_trait::async_trait]
pub trait Discoverer: Send + Sync + std::fmt::Debug {
    async fn refresh(&self) -> Result<Vec<TargetGroup>, Error>;

    /// `None` for sources that never change (static groups).
    fn refresh_interval(&self) -> Option<std::time::Duration>;

    /// Whether the source changed since the last refresh, without reading it.
    fn changed(&self) -> bool {
        false
    }
}

/// The discoverers of one scrape job, in the order Prometheus names them.
pub fn discoverers(config: &ScrapeConfig) -> Result<Vec<Box<dyn Discoverer>>, Error> {
    let mut out: Vec<Box<dyn Discoverer>> = Vec::new();
    if !config.static_configs.is_empty() {
        out.push(Box::new(StaticDiscoverer { groups: config.static_configs.clone() }));
    }
    for c in &config.file_sd_configs {
        out.push(Box::new(FileDiscoverer::new(c.clone())));
    }
    for c in &config.http_sd_configs {
        out.push(Box::new(HttpDiscoverer::new(c.clone())?));
    }
    for c in &config.docker_sd_configs {
        out.push(Box::new(DockerDiscoverer::new(c.clone())?));
    }
    Ok(out)
}

/// The discoverers of one `alerting.alertmanagers` entry.
pub fn alertmanager_discoverers(config: &AlertmanagerConfig) -> Result<Vec<Box<dyn Discoverer>>, Error> {
    let mut out: Vec<Box<dyn Discoverer>> = Vec::new();
    if !config.static_configs.is_empty() {
        out.push(Box::new(StaticDiscoverer { groups: config.static_configs.clone() }));
    }
    for c in &config.file_sd_configs {
        out.push(Box::new(FileDiscoverer::new(c.clone())));
    }
    for c in &config.http_sd_configs {
        out.push(Box::new(HttpDiscoverer::new(c.clone())?));
    }
    for c in &config.docker_sd_configs {
        out.push(Box::new(DockerDiscoverer::new(c.clone())?));
    }
    Ok(out)
}

/// `static_configs`.
#[derive(Debug)]
pub struct StaticDiscoverer {
    groups: Vec<TargetGroup>,
}

#[async_trait::async_trait]
impl Discoverer for StaticDiscoverer {
    async fn refresh(&self) -> Result<Vec<TargetGroup>, Error> {
        Ok(self.groups.iter().enumerate().map(|(i, g)| TargetGroup { source: i.to_string(), ..g.clone() }).collect())
    }

    fn refresh_interval(&self) -> Option<std::time::Duration> {
        None
    }
}

/// `file_sd_configs`: JSON or YAML lists of groups; `*` in the file name part of a path.
/// Each group gets `__meta_filepath`. Changes are noticed by polling names, sizes and
/// modification times, and everything is re-read every `refresh_interval` as well.
#[derive(Debug)]
pub struct FileDiscoverer {
    config: FileSdConfig,
    fingerprint: Mutex<Vec<(String, u64, Option<SystemTime>)>>,
}

fn wildcard_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((prefix, rest)) => {
            let Some(tail) = name.strip_prefix(prefix) else { return false };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && wildcard_match(rest, &tail[i..]))
        }
    }
}

impl FileDiscoverer {
    pub fn new(config: FileSdConfig) -> FileDiscoverer {
        FileDiscoverer { config, fingerprint: Mutex::new(Vec::new()) }
    }

    fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        for pattern in &self.config.files {
            if !pattern.contains('*') {
                out.push(pattern.clone());
                continue;
            }
            let (dir, file) = pattern.rsplit_once('/').unwrap_or((".", pattern));
            let dir = if dir.is_empty() { "/" } else { dir };
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            let mut found: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|name| wildcard_match(file, name))
                .map(|name| format!("{}/{name}", dir.trim_end_matches('/')))
                .collect();
            found.sort();
            out.extend(found);
        }
        out
    }

    fn current_fingerprint(&self) -> Vec<(String, u64, Option<SystemTime>)> {
        self.paths()
            .into_iter()
            .map(|p| {
                let meta = std::fs::metadata(&p).ok();
                let size = meta.as_ref().map_or(0, |m| m.len());
                let modified = meta.and_then(|m| m.modified().ok());
                (p, size, modified)
            })
            .collect()
    }

    fn read_file(path: &str) -> Result<Vec<TargetGroup>, Error> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.len() > MAX_DOCUMENT_BYTES {
            return Err(Error::scrape(format!("{path}: file larger than {MAX_DOCUMENT_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let lower = path.to_ascii_lowercase();
        let groups: Vec<TargetGroup> = if lower.ends_with(".json") {
            serde_json::from_str::<Option<Vec<TargetGroup>>>(&text)
                .map_err(|e| Error::scrape(format!("{path}:{}:{}: {e}", e.line(), e.column())))?
                .unwrap_or_default()
        } else {
            serde_yaml_ng::from_str::<Option<Vec<TargetGroup>>>(&text)
                .map_err(|e| Error::scrape(format!("{path}: {e}")))?
                .unwrap_or_default()
        };
        Ok(groups
            .into_iter()
            .enumerate()
            .map(|(i, mut g)| {
                g.labels.insert("__meta_filepath".into(), path.to_string());
                g.source = format!("{path}:{i}");
                g
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl Discoverer for FileDiscoverer {
    async fn refresh(&self) -> Result<Vec<TargetGroup>, Error> {
        let fingerprint = self.current_fingerprint();
        let mut groups = Vec::new();
        let mut first_error = None;
        for (path, _, _) in &fingerprint {
            // As Prometheus: a file that fails to read or parse is skipped, the others count.
            match FileDiscoverer::read_file(path) {
                Ok(g) => groups.extend(g),
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        *self.fingerprint.lock().unwrap_or_else(|e| e.into_inner()) = fingerprint;
        match first_error {
            Some(e) if groups.is_empty() => Err(e),
            _ => Ok(groups),
        }
    }

    fn refresh_interval(&self) -> Option<std::time::Duration> {
        Some(self.config.refresh_interval.as_std())
    }

    fn changed(&self) -> bool {
        *self.fingerprint.lock().unwrap_or_else(|e| e.into_inner()) != self.current_fingerprint()
    }
}

/// `http_sd_configs`: a JSON list of groups from a URL; each group gets `__meta_url`.
#[derive(Debug)]
pub struct HttpDiscoverer {
    config: HttpSdConfig,
    client: HttpClient,
}

impl HttpDiscoverer {
    pub fn new(config: HttpSdConfig) -> Result<HttpDiscoverer, Error> {
        let client = HttpClient::new(&config.http, true)?;
        Ok(HttpDiscoverer { config, client })
    }
}

#[async_trait::async_trait]
impl Discoverer for HttpDiscoverer {
    async fn refresh(&self) -> Result<Vec<TargetGroup>, Error> {
        let url = &self.config.url;
        let request = self.client.decorate(self.client.client.get(url)).await?;
        let response = request.send().await.map_err(|e| Error::scrape(describe_reqwest(&e)))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(Error::scrape(format!("server returned HTTP status {}", response.status())));
        }
        let content_type = response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !content_type.is_some_and(|c| c.trim().to_ascii_lowercase().starts_with("application/json")) {
            return Err(Error::scrape(format!("unsupported content type {:?}", content_type.unwrap_or(""))));
        }
        let body = read_body_limited(response, MAX_DOCUMENT_BYTES).await?;
        let groups: Vec<TargetGroup> = serde_json::from_slice::<Option<Vec<TargetGroup>>>(&body)
            .map_err(|e| Error::scrape(format!("{url}: {e}")))?
            .unwrap_or_default();
        Ok(groups
            .into_iter()
            .enumerate()
            .map(|(i, mut g)| {
                g.labels.insert("__meta_url".into(), url.clone());
                g.source = format!("{url}:{i}");
                g
            })
            .collect())
    }

    fn refresh_interval(&self) -> Option<std::time::Duration> {
        Some(self.config.refresh_interval.as_std())
    }
}

/// `docker_sd_configs` through the Docker Engine API (`/containers/json`, `/networks`),
/// on a unix socket (`unix:///var/run/docker.sock`) or over TCP (`tcp://` or `http(s)://`).
#[derive(Debug)]
pub struct DockerDiscoverer {
    config: DockerSdConfig,
    client: HttpClient,
    base: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerContainer {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    host_config: DockerHostConfig,
    #[serde(default)]
    ports: Vec<DockerPort>,
    #[serde(default)]
    network_settings: DockerNetworkSettings,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct DockerHostConfig {
    #[serde(default)]
    network_mode: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerPort {
    #[serde(default, rename = "IP")]
    ip: String,
    private_port: u16,
    #[serde(default)]
    public_port: u16,
    #[serde(default)]
    r#type: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct DockerNetworkSettings {
    #[serde(default)]
    networks: Option<BTreeMap<String, DockerEndpoint>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEndpoint {
    #[serde(default, rename = "NetworkID")]
    network_id: String,
    #[serde(default, rename = "IPAddress")]
    ip_address: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerNetwork {
    #[serde(default)]
    name: String,
    id: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    ingress: bool,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

fn sanitize_label_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

impl DockerDiscoverer {
    pub fn new(config: DockerSdConfig) -> Result<DockerDiscoverer, Error> {
        let (client, base) = if let Some(path) = config.host.strip_prefix("unix://") {
            (HttpClient::with_socket(&config.http, false, Some(path))?, "http://localhost".to_string())
        } else if let Some(addr) = config.host.strip_prefix("tcp://") {
            (HttpClient::new(&config.http, false)?, format!("http://{addr}"))
        } else {
            (HttpClient::new(&config.http, false)?, config.host.trim_end_matches('/').to_string())
        };
        Ok(DockerDiscoverer { config, client, base })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path_and_query: &str) -> Result<T, Error> {
        let url = format!("{}{path_and_query}", self.base);
        let request = self.client.decorate(self.client.client.get(&url)).await?;
        let response = request.send().await.map_err(|e| Error::scrape(describe_reqwest(&e)))?;
        if !response.status().is_success() {
            return Err(Error::scrape(format!("docker API {path_and_query}: HTTP status {}", response.status())));
        }
        let body = read_body_limited(response, MAX_DOCUMENT_BYTES).await?;
        serde_json::from_slice(&body).map_err(|e| Error::scrape(format!("docker API {path_and_query}: {e}")))
    }
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[async_trait::async_trait]
impl Discoverer for DockerDiscoverer {
    async fn refresh(&self) -> Result<Vec<TargetGroup>, Error> {
        let mut path = "/containers/json".to_string();
        if !self.config.filters.is_empty() {
            let filters: BTreeMap<&str, &Vec<String>> =
                self.config.filters.iter().map(|f| (f.name.as_str(), &f.values)).collect();
            let json = serde_json::to_string(&filters).unwrap_or_default();
            path.push_str(&format!("?filters={}", query_escape(&json)));
        }
        let containers: Vec<DockerContainer> = self.get_json(&path).await?;
        let networks: Vec<DockerNetwork> = self.get_json("/networks").await?;
        let networks: BTreeMap<&str, &DockerNetwork> = networks.iter().map(|n| (n.id.as_str(), n)).collect();
        let mut targets: Vec<BTreeMap<String, String>> = Vec::new();
        for c in &containers {
            let mut common = BTreeMap::new();
            common.insert("__meta_docker_container_id".to_string(), c.id.clone());
            common.insert("__meta_docker_container_name".into(), c.names.first().cloned().unwrap_or_default());
            common.insert("__meta_docker_container_network_mode".into(), c.host_config.network_mode.clone());
            for (k, v) in c.labels.iter().flatten() {
                common.insert(format!("__meta_docker_container_label_{}", sanitize_label_name(k)), v.clone());
            }
            let all_networks = c.network_settings.networks.as_ref();
            let mut chosen: Vec<(&String, &DockerEndpoint)> = all_networks.into_iter().flatten().collect();
            if self.config.match_first_network && chosen.len() > 1 {
                let mode = &c.host_config.network_mode;
                let pick = chosen.iter().position(|(name, _)| *name == mode).unwrap_or(0);
                chosen = vec![chosen[pick]];
            }
            for (_, endpoint) in chosen {
                let mut labels = common.clone();
                if let Some(n) = networks.get(endpoint.network_id.as_str()) {
                    labels.insert("__meta_docker_network_id".into(), n.id.clone());
                    labels.insert("__meta_docker_network_name".into(), n.name.clone());
                    labels.insert("__meta_docker_network_scope".into(), n.scope.clone());
                    labels.insert("__meta_docker_network_internal".into(), n.internal.to_string());
                    labels.insert("__meta_docker_network_ingress".into(), n.ingress.to_string());
                    for (k, v) in n.labels.iter().flatten() {
                        labels.insert(format!("__meta_docker_network_label_{}", sanitize_label_name(k)), v.clone());
                    }
                }
                labels.insert("__meta_docker_network_ip".into(), endpoint.ip_address.clone());
                let host_mode = c.host_config.network_mode == "host";
                let ip = if host_mode { self.config.host_networking_host.as_str() } else { &endpoint.ip_address };
                let mut added = false;
                for p in c.ports.iter().filter(|p| p.r#type == "tcp" || p.r#type.is_empty()) {
                    let mut l = labels.clone();
                    l.insert("__meta_docker_port_private".into(), p.private_port.to_string());
                    if p.public_port > 0 {
                        l.insert("__meta_docker_port_public".into(), p.public_port.to_string());
                        l.insert("__meta_docker_port_public_ip".into(), p.ip.clone());
                    }
                    l.insert(ADDRESS_LABEL.into(), join_host_port(ip, p.private_port));
                    targets.push(l);
                    added = true;
                }
                if !added {
                    labels.insert(ADDRESS_LABEL.into(), join_host_port(ip, self.config.port));
                    targets.push(labels);
                }
            }
        }
        // A group carries one label set for all its targets, so each target is its own group.
        let mut out = Vec::with_capacity(targets.len());
        for (i, mut labels) in targets.into_iter().enumerate() {
            let address = labels.remove(ADDRESS_LABEL).unwrap_or_default();
            out.push(TargetGroup { targets: vec![address], labels, source: format!("Docker:{i}") });
        }
        Ok(out)
    }

    fn refresh_interval(&self) -> Option<std::time::Duration> {
        Some(self.config.refresh_interval.as_std())
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn wildcards() {
        let cases = [
            ("*.json", "a.json", true),
            ("*.json", "a.yml", false),
            ("t-*.yml", "t-1.yml", true),
            ("t-*.yml", "x-1.yml", false),
            ("a.json", "a.json", true),
            ("*", "", true),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(wildcard_match(pattern, name), expected, "{pattern} {name}");
        }
    }
}

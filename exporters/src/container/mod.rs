//! The container exporter: cAdvisor-compatible `container_*` metrics read from cgroup v2 (or
//! the v1 controllers where the host still has them), with `id`, `name` and `image` labels
//! from the Docker Engine API when it answers.

mod cgroup;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::docker::{self, Docker, DockerHost};
use crate::registry::{Collector, Registry, RegistryConfig};
use crate::Error;
use sextant_model::exposition::MetricFamily;

pub(crate) use cgroup::DockerInfo;

/// Configuration of the container exporter, from cAdvisor-style flags.
///
/// ```
/// let config = sextant_exporters::ContainerConfig::from_args(["--path.sysfs=/sys", "--docker.host="]).unwrap();
/// assert_eq!(config.docker_host, None);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ContainerConfig {
    /// `--web.listen-address`, default `:8080` (cAdvisor's port).
    pub listen_address: String,
    /// `--web.telemetry-path`, default `/metrics`.
    pub telemetry_path: String,
    /// `--path.sysfs`: the cgroup tree is read from `<sysfs>/fs/cgroup`.
    pub sysfs: PathBuf,
    /// `--path.procfs`: network counters come from `<procfs>/<pid>/net/dev`.
    pub procfs: PathBuf,
    /// `--docker.host` (default `DOCKER_HOST`, else the default socket); empty disables Docker.
    pub docker_host: Option<String>,
}

impl Default for ContainerConfig {
    fn default() -> Self {
        ContainerConfig {
            listen_address: ":8080".into(),
            telemetry_path: "/metrics".into(),
            sysfs: "/sys".into(),
            procfs: "/proc".into(),
            docker_host: Some(
                std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()).unwrap_or(docker::DEFAULT_HOST.into()),
            ),
        }
    }
}

const VALUE_FLAGS: &[&str] = &["web.listen-address", "web.telemetry-path", "path.sysfs", "path.procfs", "docker.host"];

impl ContainerConfig {
    /// Parses the flags (`--name=value` or `--name value`).
    pub fn from_args<I, S>(args: I) -> Result<ContainerConfig, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut config = ContainerConfig::default();
        for (name, value) in docker::split_flags(args, VALUE_FLAGS, &[])? {
            match name.as_str() {
                "web.listen-address" => config.listen_address = value,
                "web.telemetry-path" => config.telemetry_path = value,
                "path.sysfs" => config.sysfs = value.into(),
                "path.procfs" => config.procfs = value.into(),
                "docker.host" => config.docker_host = Some(value).filter(|v| !v.is_empty()),
                _ => {}
            }
        }
        if let Some(host) = &config.docker_host {
            DockerHost::parse(host)?;
        }
        Ok(config)
    }

    /// The usage text for `--help`.
    pub fn usage() -> String {
        "usage: sextant exporter container [flags]\n\
         \x20 --web.listen-address=:8080   address to serve metrics on\n\
         \x20 --web.telemetry-path=/metrics\n\
         \x20 --path.sysfs=/sys            the cgroup tree is <sysfs>/fs/cgroup\n\
         \x20 --path.procfs=/proc          per-container network counters from <procfs>/<pid>/net/dev\n\
         \x20 --docker.host=URL            Docker Engine API (default $DOCKER_HOST or unix:///var/run/docker.sock);\n\
         \x20                              empty: no Docker names and images\n"
            .to_string()
    }

    /// A registry (namespace `container`) with the `cgroup` collector and, when Docker is
    /// configured, a `docker` collector whose success says whether the API answered.
    pub fn registry(&self) -> Result<Registry, Error> {
        let docker = self.docker_host.as_deref().map(DockerHost::parse).transpose()?.map(Docker::new);
        let mut registry = Registry::new(RegistryConfig { namespace: "container".into(), ..Default::default() });
        let shared = Arc::new(CgroupCollector {
            cgroup_root: self.sysfs.join("fs/cgroup"),
            sysfs: self.sysfs.clone(),
            procfs: self.procfs.clone(),
            docker: docker.clone(),
        });
        registry.register(CgroupCollectorHandle(shared));
        if let Some(docker) = docker {
            registry.register(DockerPing(docker));
        }
        Ok(registry)
    }
}

struct CgroupCollector {
    cgroup_root: PathBuf,
    sysfs: PathBuf,
    procfs: PathBuf,
    docker: Option<Docker>,
}

struct CgroupCollectorHandle(Arc<CgroupCollector>);

/// Running containers by full ID, from `GET /containers/json`.
pub(crate) async fn docker_containers(docker: &Docker) -> Result<HashMap<String, DockerInfo>, Error> {
    let list = docker.get_json("/containers/json").await?;
    let mut out = HashMap::new();
    for item in list.as_array().into_iter().flatten() {
        let Some(id) = item.get("Id").and_then(|v| v.as_str()) else { continue };
        let name = item
            .get("Names")
            .and_then(|n| n.as_array())
            .and_then(|n| n.first())
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .trim_start_matches('/')
            .to_string();
        let image = item.get("Image").and_then(|v| v.as_str()).unwrap_or("").to_string();
        let created = item.get("Created").and_then(|v| v.as_f64());
        let mut labels: Vec<(String, String)> = item
            .get("Labels")
            .and_then(|l| l.as_object())
            .into_iter()
            .flatten()
            .filter_map(|(key, value)| Some((cgroup::label_name(key), value.as_str()?.to_string())))
            .collect();
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        out.insert(id.to_string(), DockerInfo { name, image, created, labels });
    }
    Ok(out)
}

#[async_trait::async_trait]
impl Collector for CgroupCollectorHandle {
    fn name(&self) -> &str {
        "cgroup"
    }

    async fn collect(&self) -> Result<Vec<MetricFamily>, Error> {
        // Names and images are a bonus: without Docker the cgroup metrics still come, with
        // empty `name` and `image` (the `docker` collector reports the failure).
        let containers = match &self.0.docker {
            Some(docker) => docker_containers(docker).await.unwrap_or_default(),
            None => HashMap::new(),
        };
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || {
            cgroup::collect(&inner.cgroup_root, &inner.sysfs, &inner.procfs, &containers)
        })
        .await
        .map_err(|_| Error::Join("cgroup".into()))?
    }
}

struct DockerPing(Docker);

#[async_trait::async_trait]
impl Collector for DockerPing {
    fn name(&self) -> &str {
        "docker"
    }

    async fn collect(&self) -> Result<Vec<MetricFamily>, Error> {
        self.0.get_bytes("/_ping").await.map(|_| Vec::new())
    }
}

//! Logporter's container, image and volume families from the Docker Engine API.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{parse_rfc3339, ContainerLabels, Hostname};
use crate::docker::Docker;
use crate::registry::Collector;
use crate::Error;
use sextant_model::exposition::{MetricFamily, MetricType};

/// One volume from `/system/df`: name, driver, reference count, size in bytes.
type Volume = (String, String, i64, f64);

pub(crate) struct DockerCollector {
    docker: Docker,
    hostname: Arc<Hostname>,
    volumes: bool,
    volume_cache: Duration,
    cached_volumes: Mutex<Option<(Instant, Vec<Volume>)>>,
}

impl DockerCollector {
    pub(crate) fn new(docker: Docker, hostname: Arc<Hostname>, volumes: bool, volume_cache: Duration) -> Self {
        DockerCollector { docker, hostname, volumes, volume_cache, cached_volumes: Mutex::new(None) }
    }

    async fn volumes(&self) -> Result<Vec<Volume>, Error> {
        if let Some((at, volumes)) = &*self.cached_volumes.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < self.volume_cache {
                return Ok(volumes.clone());
            }
        }
        let df = self.docker.get_json("/system/df").await?;
        let mut volumes = Vec::new();
        for volume in df.get("Volumes").and_then(|v| v.as_array()).into_iter().flatten() {
            let text = |key: &str| volume.get(key).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let usage = volume.get("UsageData");
            let refs = usage.and_then(|u| u.get("RefCount")).and_then(|v| v.as_i64()).unwrap_or(0);
            let size = usage.and_then(|u| u.get("Size")).and_then(|v| v.as_f64()).unwrap_or(0.0);
            volumes.push((text("Name"), text("Driver"), refs, size));
        }
        *self.cached_volumes.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), volumes.clone()));
        Ok(volumes)
    }
}

fn number(value: &Value, path: &[&str]) -> f64 {
    let mut current = value;
    for key in path {
        match current.get(key) {
            Some(next) => current = next,
            None => return 0.0,
        }
    }
    current.as_f64().unwrap_or(0.0)
}

/// Logporter's counters whose names do not end in `_total`. Logporter serves only text 0.0.4;
/// typed as counters here, an OpenMetrics scrape (Prometheus' first choice) would see them
/// as `<name>_total` and dashboards would break, so they are untyped: same names in both
/// formats, and `rate()`/`increase()` work the same.
pub(crate) const LOGPORTER_COUNTER: MetricType = MetricType::Unknown;

/// The per-container families in Logporter's order, with their types and help.
const CONTAINER_FAMILIES: &[(&str, MetricType, &str)] = &[
    ("docker_cpu_usage_total", MetricType::Counter, "Total CPU time consumed by the container in seconds."),
    ("docker_cpu_usage_user", LOGPORTER_COUNTER, "CPU time consumed in user mode in seconds."),
    ("docker_cpu_usage_kernel", LOGPORTER_COUNTER, "CPU time consumed in kernel mode in seconds."),
    ("docker_memory_total", MetricType::Gauge, "Memory limit of the container in bytes."),
    ("docker_memory_usage", MetricType::Gauge, "Memory used by the container in bytes."),
    ("docker_network_received_bytes", LOGPORTER_COUNTER, "Bytes received over all interfaces."),
    ("docker_network_received_packages", LOGPORTER_COUNTER, "Packets received over all interfaces."),
    ("docker_network_transmit_bytes", LOGPORTER_COUNTER, "Bytes transmitted over all interfaces."),
    ("docker_network_transmit_packages", LOGPORTER_COUNTER, "Packets transmitted over all interfaces."),
    ("docker_io_read_bytes", LOGPORTER_COUNTER, "Bytes read from block devices."),
    ("docker_io_write_bytes", LOGPORTER_COUNTER, "Bytes written to block devices."),
    ("docker_process_pids_count", MetricType::Gauge, "Number of processes in the container."),
    ("docker_started_time", MetricType::Gauge, "Start time of the container in unix seconds."),
];

/// The values of [`CONTAINER_FAMILIES`] from one stats answer and one inspect answer.
pub(crate) fn container_values(stats: &Value, inspect: &Value) -> [f64; 13] {
    let mut networks = [0.0; 4];
    if let Some(map) = stats.get("networks").and_then(|n| n.as_object()) {
        for interface in map.values() {
            for (slot, key) in ["rx_bytes", "rx_packets", "tx_bytes", "tx_packets"].into_iter().enumerate() {
                networks[slot] += number(interface, &[key]);
            }
        }
    }
    // cgroup v2 hosts say `read`/`write`, v1 hosts `Read`/`Write`: both count (Logporter
    // only matches the lower-case spelling).
    let mut io = [0.0; 2];
    let entries = stats.get("blkio_stats").and_then(|b| b.get("io_service_bytes_recursive")).and_then(|e| e.as_array());
    for entry in entries.into_iter().flatten() {
        let op = entry.get("op").and_then(|o| o.as_str()).unwrap_or("");
        if op.eq_ignore_ascii_case("read") {
            io[0] += number(entry, &["value"]);
        } else if op.eq_ignore_ascii_case("write") {
            io[1] += number(entry, &["value"]);
        }
    }
    let started = inspect
        .get("State")
        .and_then(|s| s.get("StartedAt"))
        .and_then(|s| s.as_str())
        .and_then(parse_rfc3339)
        .map(|(secs, nanos)| secs as f64 + nanos as f64 / 1e9)
        .unwrap_or(0.0);
    [
        number(stats, &["cpu_stats", "cpu_usage", "total_usage"]) / 1e9,
        number(stats, &["cpu_stats", "cpu_usage", "usage_in_usermode"]) / 1e9,
        number(stats, &["cpu_stats", "cpu_usage", "usage_in_kernelmode"]) / 1e9,
        number(stats, &["memory_stats", "limit"]),
        number(stats, &["memory_stats", "usage"]),
        networks[0],
        networks[1],
        networks[2],
        networks[3],
        io[0],
        io[1],
        number(stats, &["pids_stats", "current"]),
        started,
    ]
}

#[async_trait::async_trait]
impl Collector for DockerCollector {
    fn name(&self) -> &str {
        "docker"
    }

    async fn collect(&self) -> Result<Vec<MetricFamily>, Error> {
        let hostname = self.hostname.get(&self.docker).await?;
        let list = self.docker.get_json("/containers/json?all=1").await?;
        let mut status = MetricFamily::new(
            "docker_container_status",
            "Whether the container is running (1) or not (0).",
            MetricType::Gauge,
        );
        let (mut up, mut down) = (0.0, 0.0);
        let mut running = Vec::new();
        for item in list.as_array().into_iter().flatten() {
            let Some(labels) = ContainerLabels::from_list_item(item, &hostname) else { continue };
            let is_running = item.get("State").and_then(|s| s.as_str()) == Some("running");
            status.push(&labels.with(&[]), if is_running { 1.0 } else { 0.0 });
            if is_running {
                up += 1.0;
                running.push(labels);
            } else {
                down += 1.0;
            }
        }
        // Stats and inspect for every running container, concurrently.
        let mut tasks = tokio::task::JoinSet::new();
        for (idx, labels) in running.iter().enumerate() {
            let docker = self.docker.clone();
            let id = labels.id().to_string();
            tasks.spawn(async move {
                let stats = docker.get_json(&format!("/containers/{id}/stats?stream=false&one-shot=true")).await;
                let inspect = docker.get_json(&format!("/containers/{id}/json")).await;
                (idx, stats, inspect)
            });
        }
        let mut values: BTreeMap<usize, [f64; 13]> = BTreeMap::new();
        while let Some(joined) = tasks.join_next().await {
            let Ok((idx, stats, inspect)) = joined else { continue };
            // A container that stopped between list and stats is skipped, as Logporter does.
            if let (Ok(stats), Ok(inspect)) = (stats, inspect) {
                values.insert(idx, container_values(&stats, &inspect));
            }
        }
        let mut families: Vec<MetricFamily> =
            CONTAINER_FAMILIES.iter().map(|(name, kind, help)| MetricFamily::new(*name, *help, *kind)).collect();
        for (idx, row) in &values {
            let labels = running[*idx].with(&[]);
            for (family, value) in families.iter_mut().zip(row) {
                family.push(&labels, *value);
            }
        }
        let host = [("hostname", hostname.as_str())];
        let mut up_family =
            MetricFamily::new("docker_containers_up_count", "Number of running containers.", MetricType::Gauge);
        up_family.push(&host, up);
        let mut down_family =
            MetricFamily::new("docker_containers_down_count", "Number of stopped containers.", MetricType::Gauge);
        down_family.push(&host, down);
        families.extend([status, up_family, down_family]);

        let images = self.docker.get_json("/images/json?shared-size=1").await?;
        let mut image_family = MetricFamily::new(
            "docker_image_size",
            "Image size in bytes, without layers shared with other images.",
            MetricType::Gauge,
        );
        for image in images.as_array().into_iter().flatten() {
            let tag = image
                .get("RepoTags")
                .and_then(|t| t.as_array())
                .and_then(|t| t.first())
                .and_then(|t| t.as_str())
                .unwrap_or("none");
            let size = number(image, &["Size"]);
            let shared = number(image, &["SharedSize"]);
            let value = if shared > 0.0 { size - shared } else { size };
            image_family.push(&[("imageTag", tag), ("hostname", &hostname)], value);
        }
        families.push(image_family);

        if self.volumes {
            let mut volume_family = MetricFamily::new("docker_volume_size", "Volume size in bytes.", MetricType::Gauge);
            for (name, driver, refs, size) in self.volumes().await? {
                let refs = refs.to_string();
                volume_family.push(
                    &[
                        ("volumeName", &name),
                        ("volumeDriver", &driver),
                        ("volumeUsage", &refs),
                        ("hostname", &hostname),
                    ],
                    size,
                );
            }
            families.push(volume_family);
        }
        Ok(families)
    }
}

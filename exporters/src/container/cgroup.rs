//! Reading one cgroup tree (v2 unified, or the v1 controllers) into cAdvisor's families.
//!
//! Semantics follow cAdvisor: `id` is the cgroup path (`/` for the root), the working set is
//! usage minus inactive file pages, CPU counters are in seconds, network counters are read
//! from a member process's network namespace and reported for Docker containers only.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Error;
use sextant_model::exposition::{MetricFamily, MetricType};

/// What Docker says about one running container.
#[derive(Debug, Clone, Default)]
pub(crate) struct DockerInfo {
    pub(crate) name: String,
    pub(crate) image: String,
    /// Creation time, unix seconds.
    pub(crate) created: Option<f64>,
    /// Docker labels as cAdvisor names them: `container_label_<sanitized key>`, value.
    pub(crate) labels: Vec<(String, String)>,
}

/// `container_label_<key>` with every character outside `[a-zA-Z0-9_]` replaced by `_`.
pub(crate) fn label_name(key: &str) -> String {
    let mut out = String::from("container_label_");
    out.extend(key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }));
    out
}

/// Counter or gauge families by name, built up over all cgroups.
struct Families(BTreeMap<&'static str, MetricFamily>);

impl Families {
    fn push(&mut self, name: &'static str, help: &str, kind: MetricType, labels: &[(&str, &str)], value: f64) {
        self.0.entry(name).or_insert_with(|| MetricFamily::new(name, help, kind)).push(labels, value);
    }
}

/// The cgroup hierarchy layout of this host.
enum Layout {
    /// cgroup v2: every controller's files in one directory per cgroup.
    Unified(PathBuf),
    /// cgroup v1: one tree per controller; `cpuacct`, `memory`, `blkio`, `pids` roots.
    Split { cpu: PathBuf, cpuacct: PathBuf, memory: PathBuf, blkio: PathBuf, pids: PathBuf },
}

fn detect(root: &Path) -> Result<Layout, Error> {
    if root.join("cgroup.controllers").exists() {
        return Ok(Layout::Unified(root.to_path_buf()));
    }
    let pick = |names: &[&str]| names.iter().map(|n| root.join(n)).find(|p| p.is_dir());
    let cpuacct = pick(&["cpuacct", "cpu,cpuacct", "cpuacct,cpu"]);
    let memory = pick(&["memory"]);
    match (cpuacct, memory) {
        (Some(cpuacct), Some(memory)) => Ok(Layout::Split {
            cpu: pick(&["cpu", "cpu,cpuacct", "cpuacct,cpu"]).unwrap_or_else(|| cpuacct.clone()),
            cpuacct,
            memory,
            blkio: pick(&["blkio"]).unwrap_or_else(|| root.join("blkio")),
            pids: pick(&["pids"]).unwrap_or_else(|| root.join("pids")),
        }),
        _ => Err(Error::NoData(format!("no cgroup v2 or v1 hierarchy under {}", root.display()))),
    }
}

/// Every cgroup directory under `root` as its path relative to it (`/` for the root).
fn walk(root: &Path) -> Vec<String> {
    let mut out = vec!["/".to_string()];
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = format!("{rel}/{name}");
            out.push(child.clone());
            stack.push((entry.path(), child));
        }
    }
    out.sort();
    out
}

/// The Docker container ID a cgroup path belongs to: `.../docker-<id>.scope` (systemd driver)
/// or `.../docker/<id>` (cgroupfs driver).
pub(crate) fn docker_id(cgroup: &str) -> Option<&str> {
    let last = cgroup.rsplit('/').next()?;
    let id = if let Some(scope) = last.strip_prefix("docker-").and_then(|s| s.strip_suffix(".scope")) {
        scope
    } else if cgroup.rsplit('/').nth(1) == Some("docker") {
        last
    } else {
        return None;
    };
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `key value` lines (`cpu.stat`, `memory.stat`, `cpuacct.stat`).
fn read_keyed(path: &Path) -> HashMap<String, u64> {
    let Ok(text) = std::fs::read_to_string(path) else { return HashMap::new() };
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Per-device I/O: `(major:minor) -> (read bytes, write bytes, reads, writes)`.
type DeviceIo = BTreeMap<String, [u64; 4]>;

fn io_v2(path: &Path) -> DeviceIo {
    let mut out = DeviceIo::new();
    let Ok(text) = std::fs::read_to_string(path) else { return out };
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(device) = fields.next() else { continue };
        let entry = out.entry(device.to_string()).or_default();
        for field in fields {
            let Some((key, value)) = field.split_once('=') else { continue };
            let Ok(value) = value.parse::<u64>() else { continue };
            match key {
                "rbytes" => entry[0] = value,
                "wbytes" => entry[1] = value,
                "rios" => entry[2] = value,
                "wios" => entry[3] = value,
                _ => {}
            }
        }
    }
    out
}

fn io_v1(dir: &Path) -> DeviceIo {
    let mut out = DeviceIo::new();
    for (file, offset) in [("blkio.throttle.io_service_bytes", 0), ("blkio.throttle.io_serviced", 2)] {
        let Ok(text) = std::fs::read_to_string(dir.join(file)) else { continue };
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [device, op, value] = fields[..] else { continue };
            let Ok(value) = value.parse::<u64>() else { continue };
            let slot = match op {
                "Read" => offset,
                "Write" => offset + 1,
                _ => continue,
            };
            out.entry(device.to_string()).or_default()[slot] = value;
        }
    }
    out
}

/// `/dev/<name>` for a `major:minor`, from sysfs, as cAdvisor labels devices.
fn device_name(sysfs: &Path, device: &str) -> String {
    let uevent = std::fs::read_to_string(sysfs.join("dev/block").join(device).join("uevent")).unwrap_or_default();
    uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .map(|name| format!("/dev/{name}"))
        .unwrap_or_else(|| device.to_string())
}

/// `/proc/<pid>/net/dev` counters per interface (loopback left out):
/// rx bytes, rx packets, rx errors, rx dropped, tx bytes, tx packets, tx errors, tx dropped.
fn net_dev(path: &Path) -> Vec<(String, [u64; 8])> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    let mut out = Vec::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else { continue };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let values: Vec<u64> = rest.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        if values.len() < 16 {
            continue;
        }
        out.push((
            name.to_string(),
            [values[0], values[1], values[2], values[3], values[8], values[9], values[10], values[11]],
        ));
    }
    out
}

/// Reads every cgroup under `root` into cAdvisor's families.
pub(crate) fn collect(
    root: &Path,
    sysfs: &Path,
    procfs: &Path,
    containers: &HashMap<String, DockerInfo>,
) -> Result<Vec<MetricFamily>, Error> {
    let layout = detect(root)?;
    let walk_root = match &layout {
        Layout::Unified(root) => root.clone(),
        Layout::Split { cpuacct, .. } => cpuacct.clone(),
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let mut fams = Families(BTreeMap::new());
    let mut device_names = HashMap::new();
    for id in walk(&walk_root) {
        let rel = id.trim_start_matches('/');
        let docker = docker_id(&id).and_then(|docker_id| containers.get(docker_id));
        let (name, image) = docker.map(|d| (d.name.as_str(), d.image.as_str())).unwrap_or(("", ""));
        let mut labels: Vec<(&str, &str)> = Vec::new();
        if let Some(info) = docker {
            labels.extend(info.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        labels.extend([("id", id.as_str()), ("image", image), ("name", name)]);
        let counter = MetricType::Counter;
        let gauge = MetricType::Gauge;

        // CPU, memory, I/O, pids per layout; `members` is where cgroup.procs lives.
        let members: PathBuf;
        let io: DeviceIo;
        match &layout {
            Layout::Unified(root) => {
                let dir = root.join(rel);
                let cpu = read_keyed(&dir.join("cpu.stat"));
                if let Some(usage) = cpu.get("usage_usec") {
                    let cpu_help = "Cumulative cpu time consumed in seconds.";
                    fams.push("container_cpu_usage_seconds_total", cpu_help, counter, &labels, *usage as f64 / 1e6);
                }
                if let Some(user) = cpu.get("user_usec") {
                    let help = "Cumulative user cpu time consumed in seconds.";
                    fams.push("container_cpu_user_seconds_total", help, counter, &labels, *user as f64 / 1e6);
                }
                if let Some(system) = cpu.get("system_usec") {
                    let help = "Cumulative system cpu time consumed in seconds.";
                    fams.push("container_cpu_system_seconds_total", help, counter, &labels, *system as f64 / 1e6);
                }
                cfs_families(&mut fams, &labels, &cpu, 1e6);
                if let Ok(cpu_max) = std::fs::read_to_string(dir.join("cpu.max")) {
                    let mut fields = cpu_max.split_whitespace();
                    let quota = fields.next().and_then(|q| q.parse::<u64>().ok());
                    let period = fields.next().and_then(|p| p.parse::<u64>().ok());
                    if let Some(period) = period {
                        let help = "CPU period of the container.";
                        fams.push("container_spec_cpu_period", help, gauge, &labels, period as f64);
                    }
                    if let Some(quota) = quota {
                        let help = "CPU quota of the container.";
                        fams.push("container_spec_cpu_quota", help, gauge, &labels, quota as f64);
                    }
                }
                if let Some(ooms) = read_keyed(&dir.join("memory.events")).get("oom_kill") {
                    let help = "Count of out of memory events observed for the container";
                    fams.push("container_oom_events_total", help, counter, &labels, *ooms as f64);
                }
                let memory_stat = read_keyed(&dir.join("memory.stat"));
                // The root cgroup has no memory.current; cAdvisor sums the stat instead.
                let usage = read_u64(&dir.join("memory.current")).or_else(|| {
                    (id == "/").then(|| memory_stat.get("anon")?.checked_add(*memory_stat.get("file")?))?
                });
                if let Some(usage) = usage {
                    memory_families(
                        &mut fams,
                        &labels,
                        usage,
                        &memory_stat,
                        "inactive_file",
                        ["anon", "file", "file_mapped"],
                    );
                }
                if let Some(swap) = read_u64(&dir.join("memory.swap.current")) {
                    fams.push("container_memory_swap", "Container swap usage in bytes.", gauge, &labels, swap as f64);
                }
                if let Some(limit) = read_u64(&dir.join("memory.max")) {
                    let help = "Memory limit for the container.";
                    fams.push("container_spec_memory_limit_bytes", help, gauge, &labels, limit as f64);
                }
                if let Some(pids) = read_u64(&dir.join("pids.current")) {
                    fams.push(
                        "container_threads",
                        "Number of threads running inside the container",
                        gauge,
                        &labels,
                        pids as f64,
                    );
                }
                if let Some(max) = read_u64(&dir.join("pids.max")) {
                    let help = "Maximum number of threads allowed inside the container, infinity if value is zero";
                    fams.push("container_threads_max", help, gauge, &labels, max as f64);
                }
                io = io_v2(&dir.join("io.stat"));
                members = dir;
            }
            Layout::Split { cpu, cpuacct, memory, blkio, pids } => {
                let cpu_dir = cpuacct.join(rel);
                if let Some(usage) = read_u64(&cpu_dir.join("cpuacct.usage")) {
                    let help = "Cumulative cpu time consumed in seconds.";
                    fams.push("container_cpu_usage_seconds_total", help, counter, &labels, usage as f64 / 1e9);
                }
                cfs_families(&mut fams, &labels, &read_keyed(&cpu.join(rel).join("cpu.stat")), 1e9);
                // cpuacct.stat is in USER_HZ ticks, 100 per second on Linux.
                let ticks = read_keyed(&cpu_dir.join("cpuacct.stat"));
                if let Some(user) = ticks.get("user") {
                    let help = "Cumulative user cpu time consumed in seconds.";
                    fams.push("container_cpu_user_seconds_total", help, counter, &labels, *user as f64 / 100.0);
                }
                if let Some(system) = ticks.get("system") {
                    let help = "Cumulative system cpu time consumed in seconds.";
                    fams.push("container_cpu_system_seconds_total", help, counter, &labels, *system as f64 / 100.0);
                }
                let mem_dir = memory.join(rel);
                let memory_stat = read_keyed(&mem_dir.join("memory.stat"));
                if let Some(usage) = read_u64(&mem_dir.join("memory.usage_in_bytes")) {
                    let keys = ["total_rss", "total_cache", "total_mapped_file"];
                    memory_families(&mut fams, &labels, usage, &memory_stat, "total_inactive_file", keys);
                }
                if let Some(swap) = memory_stat.get("total_swap") {
                    fams.push("container_memory_swap", "Container swap usage in bytes.", gauge, &labels, *swap as f64);
                }
                if let Some(limit) = read_u64(&mem_dir.join("memory.limit_in_bytes")) {
                    let help = "Memory limit for the container.";
                    fams.push("container_spec_memory_limit_bytes", help, gauge, &labels, limit as f64);
                }
                if let Some(max) = read_u64(&mem_dir.join("memory.max_usage_in_bytes")) {
                    let help = "Maximum memory usage recorded in bytes";
                    fams.push("container_memory_max_usage_bytes", help, gauge, &labels, max as f64);
                }
                if let Some(failcnt) = read_u64(&mem_dir.join("memory.failcnt")) {
                    let help = "Number of memory usage hits limits";
                    fams.push("container_memory_failcnt", help, counter, &labels, failcnt as f64);
                }
                if let Some(count) = read_u64(&pids.join(rel).join("pids.current")) {
                    fams.push(
                        "container_threads",
                        "Number of threads running inside the container",
                        gauge,
                        &labels,
                        count as f64,
                    );
                }
                io = io_v1(&blkio.join(rel));
                members = cpu_dir;
            }
        }
        for (device, [read_bytes, write_bytes, reads, writes]) in &io {
            let device = device_names.entry(device.clone()).or_insert_with(|| device_name(sysfs, device)).clone();
            let mut dev_labels = labels.clone();
            dev_labels.push(("device", device.as_str()));
            let fs = [
                ("container_fs_reads_bytes_total", "Cumulative count of bytes read", *read_bytes),
                ("container_fs_writes_bytes_total", "Cumulative count of bytes written", *write_bytes),
                ("container_fs_reads_total", "Cumulative count of reads completed", *reads),
                ("container_fs_writes_total", "Cumulative count of writes completed", *writes),
            ];
            for (metric, help, value) in fs {
                fams.push(metric, help, counter, &dev_labels, value as f64);
            }
        }

        if let Some(info) = docker {
            // Network counters live in the container's namespace: read them through a member.
            let first_pid = std::fs::read_to_string(members.join("cgroup.procs"))
                .ok()
                .and_then(|t| t.lines().next().map(str::to_string));
            if let Some(pid) = first_pid {
                for (interface, values) in net_dev(&procfs.join(&pid).join("net/dev")) {
                    let mut net_labels = labels.clone();
                    let name_at = net_labels.len() - 1;
                    net_labels.insert(name_at, ("interface", interface.as_str()));
                    let net = [
                        ("container_network_receive_bytes_total", "Cumulative count of bytes received"),
                        ("container_network_receive_packets_total", "Cumulative count of packets received"),
                        (
                            "container_network_receive_errors_total",
                            "Cumulative count of errors encountered while receiving",
                        ),
                        (
                            "container_network_receive_packets_dropped_total",
                            "Cumulative count of packets dropped while receiving",
                        ),
                        ("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted"),
                        ("container_network_transmit_packets_total", "Cumulative count of packets transmitted"),
                        (
                            "container_network_transmit_errors_total",
                            "Cumulative count of errors encountered while transmitting",
                        ),
                        (
                            "container_network_transmit_packets_dropped_total",
                            "Cumulative count of packets dropped while transmitting",
                        ),
                    ];
                    for ((metric, help), value) in net.into_iter().zip(values) {
                        fams.push(metric, help, counter, &net_labels, value as f64);
                    }
                }
            }
            if let Some(created) = info.created {
                fams.push(
                    "container_start_time_seconds",
                    "Start time of the container since unix epoch in seconds.",
                    gauge,
                    &labels,
                    created,
                );
            }
        }
        fams.push("container_last_seen", "Last time a container was seen by the exporter", gauge, &labels, now.floor());
    }
    Ok(fams.0.into_values().collect())
}

/// `container_cpu_cfs_*` from `cpu.stat` (v2: `throttled_usec`; v1: `throttled_time` in
/// nanoseconds), only for cgroups with a CPU quota (periods counted), as cAdvisor does.
fn cfs_families(fams: &mut Families, labels: &[(&str, &str)], cpu: &HashMap<String, u64>, per_second: f64) {
    let Some(periods) = cpu.get("nr_periods").copied().filter(|p| *p > 0) else { return };
    let counter = MetricType::Counter;
    fams.push(
        "container_cpu_cfs_periods_total",
        "Number of elapsed enforcement period intervals.",
        counter,
        labels,
        periods as f64,
    );
    if let Some(throttled) = cpu.get("nr_throttled") {
        let help = "Number of throttled period intervals.";
        fams.push("container_cpu_cfs_throttled_periods_total", help, counter, labels, *throttled as f64);
    }
    if let Some(time) = cpu.get("throttled_usec").or_else(|| cpu.get("throttled_time")) {
        let help = "Total time duration the container has been throttled.";
        fams.push("container_cpu_cfs_throttled_seconds_total", help, counter, labels, *time as f64 / per_second);
    }
}

fn memory_families(
    fams: &mut Families,
    labels: &[(&str, &str)],
    usage: u64,
    stat: &HashMap<String, u64>,
    inactive_key: &str,
    [rss_key, cache_key, mapped_key]: [&str; 3],
) {
    let gauge = MetricType::Gauge;
    fams.push(
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
        gauge,
        labels,
        usage as f64,
    );
    let inactive = stat.get(inactive_key).copied().unwrap_or(0);
    let working_set = usage.saturating_sub(inactive);
    fams.push("container_memory_working_set_bytes", "Current working set in bytes.", gauge, labels, working_set as f64);
    if let Some(rss) = stat.get(rss_key) {
        fams.push("container_memory_rss", "Size of RSS in bytes.", gauge, labels, *rss as f64);
    }
    if let Some(cache) = stat.get(cache_key) {
        fams.push("container_memory_cache", "Number of bytes of page cache memory.", gauge, labels, *cache as f64);
    }
    if let Some(mapped) = stat.get(mapped_key) {
        fams.push(
            "container_memory_mapped_file",
            "Size of memory mapped files in bytes.",
            gauge,
            labels,
            *mapped as f64,
        );
    }
}

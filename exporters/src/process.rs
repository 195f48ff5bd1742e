//! `process_*` metrics about this process, named as Prometheus' client libraries name them.

use std::io::Read as _;
use std::path::Path;
use std::sync::OnceLock;

use sextant_model::exposition::{MetricFamily, MetricType};

/// Reads a whole file into a string. Unlike `std::fs::read_to_string` it does not stat the
/// file first: `/proc` and `/sys` files report size 0 or 4096 anyway, and a node scrape
/// reads ~150 of them.
pub(crate) fn read_file(path: impl AsRef<Path>) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::with_capacity(4096);
    // `File::read_to_end` would ask for the size (statx and lseek); through `Take` the generic
    // loop runs instead, which reads into the spare capacity without zeroing it first.
    (&file).take(u64::MAX).read_to_end(&mut bytes)?;
    String::from_utf8(bytes).map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))
}

/// This process's start time (seconds since the epoch); it never changes, so read it once.
fn start_time_seconds(start_ticks: f64) -> Option<f64> {
    static START: OnceLock<Option<f64>> = OnceLock::new();
    *START.get_or_init(|| {
        let stat = read_file("/proc/stat").ok()?;
        let btime: f64 = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
        Some(btime + start_ticks / USER_HZ)
    })
}

const USER_HZ: f64 = 100.0;

fn field_kb(status: &str, key: &str) -> Option<f64> {
    let line = status.lines().find(|line| line.starts_with(key))?;
    let value: f64 = line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(value * 1024.0)
}

/// The process families, or none where `/proc/self` is unreadable.
pub(crate) fn collect() -> Vec<MetricFamily> {
    let mut families = Vec::new();
    if let Ok(stat) = read_file("/proc/self/stat") {
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let num = |idx: usize| fields.get(idx).and_then(|v| v.parse::<f64>().ok());
            if let (Some(utime), Some(stime)) = (num(11), num(12)) {
                families.push(MetricFamily::single(
                    "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.",
                    MetricType::Counter,
                    (utime + stime) / USER_HZ,
                ));
            }
            if let Some(start) = num(19).and_then(start_time_seconds) {
                families.push(MetricFamily::single(
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    MetricType::Gauge,
                    start,
                ));
            }
        }
    }
    if let Ok(status) = read_file("/proc/self/status") {
        if let Some(rss) = field_kb(&status, "VmRSS:") {
            families.push(MetricFamily::single(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                MetricType::Gauge,
                rss,
            ));
        }
        if let Some(vsize) = field_kb(&status, "VmSize:") {
            families.push(MetricFamily::single(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                MetricType::Gauge,
                vsize,
            ));
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        families.push(MetricFamily::single(
            "process_open_fds",
            "Number of open file descriptors.",
            MetricType::Gauge,
            entries.count() as f64,
        ));
    }
    if let Ok(limits) = read_file("/proc/self/limits") {
        // Soft limits; "unlimited" is -1, as Go's procfs reports it.
        let soft_limit = |key: &str| -> Option<f64> {
            let line = limits.lines().find(|l| l.starts_with(key))?;
            let soft = line[key.len()..].split_whitespace().next()?;
            if soft == "unlimited" {
                Some(-1.0)
            } else {
                soft.parse().ok()
            }
        };
        if let Some(value) = soft_limit("Max open files") {
            families.push(MetricFamily::single(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                MetricType::Gauge,
                value,
            ));
        }
        if let Some(value) = soft_limit("Max address space") {
            families.push(MetricFamily::single(
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                MetricType::Gauge,
                value,
            ));
        }
    }
    families
}

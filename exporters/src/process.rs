//! `process_*` metrics about this process, named as Prometheus' client libraries name them.

use crate::encode::{MetricFamily, MetricType};

const USER_HZ: f64 = 100.0;

fn field_kb(status: &str, key: &str) -> Option<f64> {
    let line = status.lines().find(|line| line.starts_with(key))?;
    let value: f64 = line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(value * 1024.0)
}

/// The process families, or none where `/proc/self` is unreadable.
pub(crate) fn collect() -> Vec<MetricFamily> {
    let mut families = Vec::new();
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
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
            if let (Some(start_ticks), Ok(uptime)) = (num(19), std::fs::read_to_string("/proc/stat")) {
                if let Some(btime) =
                    uptime.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse::<f64>().ok())
                {
                    families.push(MetricFamily::single(
                        "process_start_time_seconds",
                        "Start time of the process since unix epoch in seconds.",
                        MetricType::Gauge,
                        btime + start_ticks / USER_HZ,
                    ));
                }
            }
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
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
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
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

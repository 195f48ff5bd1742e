//! Block device and filesystem collectors.

use std::collections::{BTreeMap, HashSet};
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{read, Context};
use crate::Error;
use sextant_model::exposition::{MetricFamily, MetricType};

/// Sector size the kernel uses for the sector counts in `/proc/diskstats`.
const SECTOR_BYTES: f64 = 512.0;

/// `/proc/diskstats` columns after major, minor and name: (metric, type, scale, help).
const DISKSTATS: &[(&str, MetricType, f64, &str)] = &[
    ("reads_completed_total", MetricType::Counter, 1.0, "The total number of reads completed successfully."),
    ("reads_merged_total", MetricType::Counter, 1.0, "The total number of reads merged."),
    ("read_bytes_total", MetricType::Counter, SECTOR_BYTES, "The total number of bytes read successfully."),
    ("read_time_seconds_total", MetricType::Counter, 0.001, "The total number of seconds spent by all reads."),
    ("writes_completed_total", MetricType::Counter, 1.0, "The total number of writes completed successfully."),
    ("writes_merged_total", MetricType::Counter, 1.0, "The number of writes merged."),
    ("written_bytes_total", MetricType::Counter, SECTOR_BYTES, "The total number of bytes written successfully."),
    (
        "write_time_seconds_total",
        MetricType::Counter,
        0.001,
        "This is the total number of seconds spent by all writes.",
    ),
    ("io_now", MetricType::Gauge, 1.0, "The number of I/Os currently in progress."),
    ("io_time_seconds_total", MetricType::Counter, 0.001, "Total seconds spent doing I/Os."),
    ("io_time_weighted_seconds_total", MetricType::Counter, 0.001, "The weighted # of seconds spent doing I/Os."),
    ("discards_completed_total", MetricType::Counter, 1.0, "The total number of discards completed successfully."),
    ("discards_merged_total", MetricType::Counter, 1.0, "The total number of discards merged."),
    ("discarded_sectors_total", MetricType::Counter, 1.0, "The total number of sectors discarded successfully."),
    (
        "discard_time_seconds_total",
        MetricType::Counter,
        0.001,
        "This is the total number of seconds spent by all discards.",
    ),
    ("flush_requests_total", MetricType::Counter, 1.0, "The total number of flush requests completed successfully"),
    (
        "flush_requests_time_seconds_total",
        MetricType::Counter,
        0.001,
        "This is the total number of seconds spent by all flush requests.",
    ),
];

/// `KEY=value` properties of a udev database entry (`E:` lines).
fn udev_properties(path: &Path) -> BTreeMap<String, String> {
    let mut props = BTreeMap::new();
    if let Ok(text) = crate::process::read_file(path) {
        for line in text.lines() {
            if let Some((key, value)) = line.strip_prefix("E:").and_then(|rest| rest.split_once('=')) {
                props.insert(key.to_string(), value.to_string());
            }
        }
    }
    props
}

pub(super) fn diskstats(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let path = ctx.proc("diskstats");
    let text = read(&path)?;
    let mut families: Vec<MetricFamily> = DISKSTATS
        .iter()
        .map(|(name, kind, _, help)| MetricFamily::new(format!("node_disk_{name}"), *help, *kind))
        .collect();
    let mut info = MetricFamily::new("node_disk_info", "Info of /sys/block/<block_device>.", MetricType::Gauge);
    for (line_no, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 14 {
            return Err(Error::parse(&path, line_no + 1, format!("expected at least 14 fields, got {}", fields.len())));
        }
        let (major, minor, device) = (fields[0], fields[1], fields[2]);
        if ctx.diskstats_exclude.is_match(device) {
            continue;
        }
        let props = udev_properties(&ctx.udev_data.join(format!("b{major}:{minor}")));
        let prop = |key: &str| props.get(key).map(String::as_str).unwrap_or("");
        let serial = if props.contains_key("ID_SERIAL_SHORT") { prop("ID_SERIAL_SHORT") } else { prop("ID_SERIAL") };
        info.push(
            &[
                ("device", device),
                ("major", major),
                ("minor", minor),
                ("model", prop("ID_MODEL")),
                ("path", prop("ID_PATH")),
                ("revision", prop("ID_REVISION")),
                ("serial", serial),
                ("wwn", prop("ID_WWN")),
            ],
            1.0,
        );
        for (idx, value) in fields[3..].iter().enumerate().take(DISKSTATS.len()) {
            let value: f64 =
                value.parse().map_err(|_| Error::parse(&path, line_no + 1, format!("bad value {value:?}")))?;
            families[idx].push(&[("device", device)], value * DISKSTATS[idx].2);
        }
    }
    families.push(info);
    Ok(families)
}

/// Undoes the octal escapes (`\040` for a space) of `/proc/mounts` fields.
fn unescape_mount(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        if bytes[idx] == b'\\'
            && idx + 3 < bytes.len()
            && bytes[idx + 1..idx + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let code = (bytes[idx + 1] - b'0') as u32 * 64
                + (bytes[idx + 2] - b'0') as u32 * 8
                + (bytes[idx + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(code) {
                out.push(byte);
                idx += 4;
                continue;
            }
        }
        out.push(bytes[idx]);
        idx += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Mount {
    device: String,
    mount_point: String,
    fs_type: String,
    read_only: bool,
}

fn mounts(ctx: &Context) -> Result<Vec<Mount>, Error> {
    let primary = ctx.proc("1/mounts");
    let text = match crate::process::read_file(&primary) {
        Ok(text) => text,
        Err(_) => read(&ctx.proc("mounts"))?,
    };
    let mut found = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 4 {
            continue;
        }
        let mut mount_point = unescape_mount(fields[1]);
        // With --path.rootfs, report mount points as seen from inside that root.
        let root = ctx.rootfs.to_string_lossy();
        if root != "/" {
            let root = root.trim_end_matches('/');
            match mount_point.strip_prefix(root) {
                Some("") => mount_point = "/".to_string(),
                Some(rest) if rest.starts_with('/') => mount_point = rest.to_string(),
                _ => continue,
            }
        }
        found.push(Mount {
            device: unescape_mount(fields[0]),
            mount_point,
            fs_type: fields[2].to_string(),
            read_only: fields[3].split(',').any(|option| option == "ro"),
        });
    }
    Ok(found)
}

fn statfs_now(path: &Path) -> Option<libc::statfs> {
    let c_path = CString::new(path.to_string_lossy().as_bytes()).ok()?;
    // SAFETY: statfs writes into the zeroed struct we own; `c_path` is NUL-terminated.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call.
    (unsafe { libc::statfs(c_path.as_ptr(), &mut buf) } == 0).then_some(buf)
}

type StatfsReply = mpsc::Sender<Option<libc::statfs>>;

/// Runs `statfs` on a helper thread so that a hung mount (a dead NFS server) costs one
/// `--collector.filesystem.mount-timeout` once: the mount point is then marked stuck and
/// reported with `device_error 1`, without another call, until its call returns. The other
/// mounts keep reporting. The helper thread is reused; a stuck one is abandoned and exits
/// once its call returns.
#[derive(Default)]
pub(super) struct StatfsWorker {
    requests: Mutex<Option<mpsc::Sender<(String, PathBuf, StatfsReply)>>>,
    stuck: Arc<Mutex<HashSet<String>>>,
}

impl StatfsWorker {
    fn spawn(&self) -> Option<mpsc::Sender<(String, PathBuf, StatfsReply)>> {
        let (tx, rx) = mpsc::channel::<(String, PathBuf, StatfsReply)>();
        let stuck = self.stuck.clone();
        std::thread::Builder::new()
            .name("statfs".into())
            .spawn(move || {
                for (mount_point, path, reply) in rx {
                    let result = statfs_now(&path);
                    if let Ok(mut stuck) = stuck.lock() {
                        stuck.remove(&mount_point);
                    }
                    let _ = reply.send(result);
                }
            })
            .ok()?;
        Some(tx)
    }

    fn statfs(&self, mount_point: &str, path: &Path, timeout: Duration) -> Option<libc::statfs> {
        // Marked in flight first; the helper unmarks it when its call returns, however late.
        if !self.stuck.lock().ok()?.insert(mount_point.to_string()) {
            return None;
        }
        let mut requests = self.requests.lock().ok()?;
        if requests.is_none() {
            *requests = self.spawn();
        }
        let (reply_tx, reply_rx) = mpsc::channel();
        let sent = requests.as_ref().map(|tx| tx.send((mount_point.to_string(), path.to_path_buf(), reply_tx)));
        if !matches!(sent, Some(Ok(()))) {
            *requests = None;
            self.stuck.lock().ok()?.remove(mount_point);
            return None;
        }
        match reply_rx.recv_timeout(timeout) {
            Ok(result) => result,
            Err(_) => {
                // The thread is busy in statfs for good; the next call gets a fresh one.
                *requests = None;
                None
            }
        }
    }
}

pub(super) fn filesystem(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let names: [(&str, &str); 7] = [
        ("node_filesystem_size_bytes", "Filesystem size in bytes."),
        ("node_filesystem_free_bytes", "Filesystem free space in bytes."),
        ("node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes."),
        ("node_filesystem_files", "Filesystem total file nodes."),
        ("node_filesystem_files_free", "Filesystem total free file nodes."),
        ("node_filesystem_readonly", "Filesystem read-only status."),
        ("node_filesystem_device_error", "Whether an error occurred while getting statistics for the given device."),
    ];
    let mut families: Vec<MetricFamily> =
        names.iter().map(|(name, help)| MetricFamily::new(*name, *help, MetricType::Gauge)).collect();
    let mut seen = HashSet::new();
    for mount in mounts(ctx)? {
        if ctx.mount_points_exclude.is_match(&mount.mount_point) || ctx.fs_types_exclude.is_match(&mount.fs_type) {
            continue;
        }
        if !seen.insert((mount.device.clone(), mount.mount_point.clone(), mount.fs_type.clone())) {
            continue;
        }
        let labels = [
            ("device", mount.device.as_str()),
            ("fstype", mount.fs_type.as_str()),
            ("mountpoint", mount.mount_point.as_str()),
        ];
        let full_path = ctx.rootfs.join(mount.mount_point.trim_start_matches('/'));
        let stats = ctx.statfs.statfs(&mount.mount_point, &full_path, ctx.mount_timeout);
        let Some(stats) = stats else {
            families[6].push(&labels, 1.0);
            continue;
        };
        let block = stats.f_bsize as f64;
        let values = [
            stats.f_blocks as f64 * block,
            stats.f_bfree as f64 * block,
            stats.f_bavail as f64 * block,
            stats.f_files as f64,
            stats.f_ffree as f64,
            if mount.read_only { 1.0 } else { 0.0 },
            0.0,
        ];
        for (fam, value) in families.iter_mut().zip(values) {
            fam.push(&labels, value);
        }
    }
    Ok(families)
}

#[cfg(test)]
mod tests {
    #[test]
    fn mount_escapes() {
        let cases = [("/mnt/a\\040b", "/mnt/a b"), ("plain", "plain"), ("trail\\04", "trail\\04"), ("\\134x", "\\x")];
        for (input, expected) in cases {
            assert_eq!(super::unescape_mount(input), expected, "{input}");
        }
    }
}

//! The node exporter: Linux collectors over `/proc` and `/sys`, with node_exporter 1.5.0's
//! metric names, types, labels and command-line flags.

mod disk;
mod hardware;
mod net;
mod system;
mod textfile;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use crate::process::read_file;
use crate::registry::{blocking, Registry, RegistryConfig};
use crate::Error;
use sextant_model::exposition::MetricFamily;

type CollectFn = fn(&Context) -> Result<Vec<MetricFamily>, Error>;

/// Every collector this exporter implements: name, enabled by default, function.
const COLLECTORS: &[(&str, bool, CollectFn)] = &[
    ("arp", true, net::arp),
    ("bonding", true, hardware::bonding),
    ("conntrack", true, net::conntrack),
    ("cpu", true, system::cpu),
    ("cpufreq", true, hardware::cpufreq),
    ("diskstats", true, disk::diskstats),
    ("edac", true, hardware::edac),
    ("entropy", true, system::entropy),
    ("filefd", true, system::filefd),
    ("filesystem", true, disk::filesystem),
    ("hwmon", true, hardware::hwmon),
    ("interrupts", false, system::interrupts),
    ("loadavg", true, system::loadavg),
    ("meminfo", true, system::meminfo),
    ("netclass", true, net::netclass),
    ("netdev", true, net::netdev),
    ("netstat", true, net::netstat),
    ("os", true, system::os),
    ("powersupplyclass", true, hardware::powersupplyclass),
    ("pressure", true, system::pressure),
    ("rapl", true, hardware::rapl),
    ("processes", false, system::processes),
    ("schedstat", true, system::schedstat),
    ("selinux", true, system::selinux),
    ("sockstat", true, net::sockstat),
    ("softnet", true, net::softnet),
    ("stat", true, system::stat),
    ("tcpstat", false, net::tcpstat),
    ("textfile", true, textfile::collect),
    ("thermal_zone", true, hardware::thermal_zone),
    ("time", true, system::time),
    ("timex", true, system::timex),
    ("udp_queues", true, net::udp_queues),
    ("uname", true, system::uname),
    ("vmstat", true, system::vmstat),
];

/// node_exporter 1.5.0 collectors that Sextant does not implement yet; their flags are
/// accepted, and enabling one is reported as a warning.
const NOT_IMPLEMENTED: &[&str] = &[
    "bcache",
    "btrfs",
    "buddyinfo",
    "cgroups",
    "dmi",
    "drbd",
    "drm",
    "ethtool",
    "fibrechannel",
    "infiniband",
    "ipvs",
    "ksmd",
    "lnstat",
    "logind",
    "mdadm",
    "meminfo_numa",
    "mountstats",
    "network_route",
    "nfs",
    "nfsd",
    "ntp",
    "nvme",
    "perf",
    "qdisc",
    "runit",
    "slabinfo",
    "softirqs",
    "supervisord",
    "sysctl",
    "systemd",
    "tapestats",
    "wifi",
    "xfs",
    "zfs",
    "zoneinfo",
];

/// Flags that node_exporter accepts and Sextant ignores (they tune things we do differently).
const IGNORED_VALUE_FLAGS: &[&str] = &[
    "log.level",
    "log.format",
    "web.max-requests",
    "runtime.gomaxprocs",
    "collector.diskstats.ignored-devices-is-regexp",
];

/// The flags that take a value.
const VALUE_FLAGS: &[&str] = &[
    "web.listen-address",
    "web.telemetry-path",
    "path.procfs",
    "path.sysfs",
    "path.rootfs",
    "path.udev.data",
    "collector.textfile.directory",
    "collector.netdev.device-include",
    "collector.netdev.device-whitelist",
    "collector.netdev.device-exclude",
    "collector.netdev.device-blacklist",
    "collector.netclass.ignored-devices",
    "collector.filesystem.mount-points-exclude",
    "collector.filesystem.ignored-mount-points",
    "collector.filesystem.fs-types-exclude",
    "collector.filesystem.ignored-fs-types",
    "collector.diskstats.device-exclude",
    "collector.diskstats.ignored-devices",
    "collector.vmstat.fields",
    "collector.netstat.fields",
    "collector.filesystem.mount-timeout",
    "collector.timeout",
];

const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
const DEFAULT_DISKSTATS_EXCLUDE: &str = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";
const DEFAULT_VMSTAT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";
const DEFAULT_NETSTAT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

/// The node exporter's settings, from node_exporter-style command-line flags.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// `--web.listen-address` (default `:9100`, i.e. all interfaces).
    pub listen_address: String,
    /// `--web.telemetry-path` (default `/metrics`).
    pub telemetry_path: String,
    /// `--path.procfs` (default `/proc`).
    pub procfs: PathBuf,
    /// `--path.sysfs` (default `/sys`).
    pub sysfs: PathBuf,
    /// `--path.rootfs` (default `/`).
    pub rootfs: PathBuf,
    /// `--path.udev.data` (default `/run/udev/data`).
    pub udev_data: PathBuf,
    /// Enabled collectors, sorted.
    pub collectors: Vec<String>,
    /// `--collector.textfile.directory` (default empty: no files read).
    pub textfile_directory: Option<PathBuf>,
    /// `--collector.netdev.device-include`.
    pub netdev_device_include: Option<String>,
    /// `--collector.netdev.device-exclude`.
    pub netdev_device_exclude: Option<String>,
    /// `--[no-]collector.netdev.netlink` (default on): also report `receive_nohandler`.
    pub netdev_netlink: bool,
    /// `--collector.netclass.ignored-devices` (default `^$`).
    pub netclass_ignored_devices: String,
    /// `--collector.filesystem.mount-points-exclude`.
    pub mount_points_exclude: String,
    /// `--collector.filesystem.fs-types-exclude`.
    pub fs_types_exclude: String,
    /// `--collector.filesystem.mount-timeout` (default 5s): how long one `statfs` may take
    /// before its mount point counts as stuck and is skipped until it answers.
    pub mount_timeout: Duration,
    /// `--collector.diskstats.device-exclude`.
    pub diskstats_device_exclude: String,
    /// `--collector.vmstat.fields`.
    pub vmstat_fields: String,
    /// `--collector.netstat.fields`.
    pub netstat_fields: String,
    /// `--collector.timeout` (Sextant's own; default 10s): the per-collector time limit.
    pub collector_timeout: Duration,
    /// Flags that were accepted but have no effect, one message each.
    pub warnings: Vec<String>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen_address: ":9100".to_string(),
            telemetry_path: "/metrics".to_string(),
            procfs: PathBuf::from("/proc"),
            sysfs: PathBuf::from("/sys"),
            rootfs: PathBuf::from("/"),
            udev_data: PathBuf::from("/run/udev/data"),
            collectors: COLLECTORS.iter().filter(|c| c.1).map(|c| c.0.to_string()).collect(),
            textfile_directory: None,
            netdev_device_include: None,
            netdev_device_exclude: None,
            netdev_netlink: true,
            netclass_ignored_devices: "^$".to_string(),
            mount_points_exclude: DEFAULT_MOUNT_POINTS_EXCLUDE.to_string(),
            fs_types_exclude: DEFAULT_FS_TYPES_EXCLUDE.to_string(),
            mount_timeout: Duration::from_secs(5),
            diskstats_device_exclude: DEFAULT_DISKSTATS_EXCLUDE.to_string(),
            vmstat_fields: DEFAULT_VMSTAT_FIELDS.to_string(),
            netstat_fields: DEFAULT_NETSTAT_FIELDS.to_string(),
            collector_timeout: Duration::from_secs(10),
            warnings: Vec::new(),
        }
    }
}

fn flag_error(flag: &str, message: impl Into<String>) -> Error {
    Error::Flag { flag: flag.to_string(), message: message.into() }
}

fn parse_duration(flag: &str, value: &str) -> Result<Duration, Error> {
    let (number, scale) = if let Some(ms) = value.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = value.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = value.strip_suffix('m') {
        (m, 60.0)
    } else {
        (value, 1.0)
    };
    let number: f64 = number.parse().map_err(|_| flag_error(flag, format!("bad duration {value:?}")))?;
    if !(number.is_finite() && number > 0.0) {
        return Err(flag_error(flag, format!("bad duration {value:?}")));
    }
    Ok(Duration::from_secs_f64(number * scale))
}

impl NodeConfig {
    /// Parses node_exporter's flags (kingpin spelling: `--flag=value`, `--flag value`,
    /// `--collector.NAME`, `--no-collector.NAME`, `--collector.disable-defaults`; the Go
    /// single-dash form `-flag=value` is accepted too). Unknown flags are errors.
    pub fn from_args<I, S>(args: I) -> Result<NodeConfig, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut config = NodeConfig::default();
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        let mut enabled: Vec<(String, bool)> = Vec::new();
        let mut disable_defaults = false;
        let mut idx = 0;
        while idx < args.len() {
            let raw = &args[idx];
            idx += 1;
            let Some(body) = raw.strip_prefix("--").or_else(|| raw.strip_prefix('-')) else {
                return Err(flag_error(raw, "unexpected argument"));
            };
            let (name, inline_value) = match body.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (body, None),
            };
            // Boolean flags first.
            if name == "collector.disable-defaults" {
                disable_defaults = true;
                continue;
            }
            if name == "collector.netdev.netlink" || name == "no-collector.netdev.netlink" {
                config.netdev_netlink = match inline_value.as_deref() {
                    None => name == "collector.netdev.netlink",
                    Some("true") => true,
                    Some("false") => false,
                    Some(other) => return Err(flag_error(raw, format!("bad boolean {other:?}"))),
                };
                continue;
            }
            let collector_name = name.strip_prefix("collector.").or_else(|| name.strip_prefix("no-collector."));
            let is_collector = |c: &&str| COLLECTORS.iter().any(|k| k.0 == *c) || NOT_IMPLEMENTED.contains(c);
            if let Some(collector) = collector_name.filter(is_collector) {
                let on = match inline_value.as_deref() {
                    None => name.starts_with("collector."),
                    Some("true") => name.starts_with("collector."),
                    Some("false") => !name.starts_with("collector."),
                    Some(other) => return Err(flag_error(raw, format!("bad boolean {other:?}"))),
                };
                if COLLECTORS.iter().any(|c| c.0 == collector) {
                    enabled.push((collector.to_string(), on));
                } else if on {
                    config.warnings.push(format!("collector {collector} is not implemented in sextant"));
                }
                continue;
            }
            // Flags with a value.
            if !VALUE_FLAGS.contains(&name) && !IGNORED_VALUE_FLAGS.contains(&name) {
                return Err(flag_error(raw, "unknown flag"));
            }
            let value = match inline_value {
                Some(value) => value,
                None => {
                    let Some(value) = args.get(idx) else {
                        return Err(flag_error(raw, "expected a value"));
                    };
                    idx += 1;
                    value.clone()
                }
            };
            match name {
                "web.listen-address" => config.listen_address = value,
                "web.telemetry-path" => config.telemetry_path = value,
                "path.procfs" => config.procfs = value.into(),
                "path.sysfs" => config.sysfs = value.into(),
                "path.rootfs" => config.rootfs = value.into(),
                "path.udev.data" => config.udev_data = value.into(),
                "collector.textfile.directory" => {
                    config.textfile_directory = if value.is_empty() { None } else { Some(value.into()) }
                }
                "collector.netdev.device-include" | "collector.netdev.device-whitelist" => {
                    config.netdev_device_include = Some(value)
                }
                "collector.netdev.device-exclude" | "collector.netdev.device-blacklist" => {
                    config.netdev_device_exclude = Some(value)
                }
                "collector.netclass.ignored-devices" => config.netclass_ignored_devices = value,
                "collector.filesystem.mount-points-exclude" | "collector.filesystem.ignored-mount-points" => {
                    config.mount_points_exclude = value
                }
                "collector.filesystem.fs-types-exclude" | "collector.filesystem.ignored-fs-types" => {
                    config.fs_types_exclude = value
                }
                "collector.diskstats.device-exclude" | "collector.diskstats.ignored-devices" => {
                    config.diskstats_device_exclude = value
                }
                "collector.vmstat.fields" => config.vmstat_fields = value,
                "collector.netstat.fields" => config.netstat_fields = value,
                "collector.timeout" => config.collector_timeout = parse_duration(raw, &value)?,
                "collector.filesystem.mount-timeout" => config.mount_timeout = parse_duration(raw, &value)?,
                other if IGNORED_VALUE_FLAGS.contains(&other) => {
                    config.warnings.push(format!("flag --{other} is accepted and ignored"))
                }
                _ => return Err(flag_error(raw, "unknown flag")),
            }
        }
        let mut collectors: Vec<String> = if disable_defaults { Vec::new() } else { config.collectors.clone() };
        for (name, on) in enabled {
            collectors.retain(|c| *c != name);
            if on {
                collectors.push(name);
            }
        }
        collectors.sort();
        config.collectors = collectors;
        Context::new(&config)?;
        Ok(config)
    }

    /// A description of the accepted flags and collectors, for `--help`.
    pub fn usage() -> String {
        let mut text = String::from(
            "Flags (node_exporter 1.5.0 spelling; --flag=value or --flag value):\n  \
             --web.listen-address=:9100  --web.telemetry-path=/metrics\n  \
             --path.procfs=/proc  --path.sysfs=/sys  --path.rootfs=/  --path.udev.data=/run/udev/data\n  \
             --collector.<name> / --no-collector.<name>  --collector.disable-defaults\n  \
             --collector.timeout=10s (per-collector limit; sextant only)\n",
        );
        for flag in VALUE_FLAGS.iter().filter(|f| f.starts_with("collector.") && **f != "collector.timeout") {
            text.push_str(&format!("  --{flag}=...\n"));
        }
        text.push_str("  --[no-]collector.netdev.netlink\nCollectors (* = enabled by default):\n  ");
        let names: Vec<String> =
            COLLECTORS.iter().map(|(name, on, _)| format!("{name}{}", if *on { "*" } else { "" })).collect();
        text.push_str(&names.join(" "));
        text.push_str("\nAccepted but not implemented: ");
        text.push_str(&NOT_IMPLEMENTED.join(" "));
        text.push('\n');
        text
    }

    /// A registry (namespace `node`) holding the enabled collectors.
    pub fn registry(&self) -> Result<Registry, Error> {
        let context = Arc::new(Context::new(self)?);
        let mut registry = Registry::new(RegistryConfig {
            namespace: "node".to_string(),
            collector_timeout: self.collector_timeout,
            process_metrics: true,
        });
        for (name, _, collect_fn) in COLLECTORS {
            if self.collectors.iter().any(|c| c == name) {
                let context = context.clone();
                let collect_fn = *collect_fn;
                registry.register(blocking(*name, move || collect_fn(&context)));
            }
        }
        Ok(registry)
    }
}

fn compile(flag: &str, pattern: &str) -> Result<Regex, Error> {
    Regex::new(pattern).map_err(|err| flag_error(flag, err.to_string()))
}

/// What the collectors share: paths and compiled filters.
pub(crate) struct Context {
    procfs: PathBuf,
    sysfs: PathBuf,
    rootfs: PathBuf,
    udev_data: PathBuf,
    textfile_directory: Option<PathBuf>,
    netdev_include: Option<Regex>,
    netdev_exclude: Option<Regex>,
    netdev_netlink: bool,
    netclass_ignored: Regex,
    mount_points_exclude: Regex,
    fs_types_exclude: Regex,
    mount_timeout: Duration,
    statfs: disk::StatfsWorker,
    diskstats_exclude: Regex,
    vmstat_fields: Regex,
    netstat_fields: Regex,
    netstat_keys: std::sync::Mutex<net::NetstatKeys>,
}

impl Context {
    fn new(config: &NodeConfig) -> Result<Context, Error> {
        let optional = |flag: &str, pattern: &Option<String>| -> Result<Option<Regex>, Error> {
            pattern.as_deref().map(|p| compile(flag, p)).transpose()
        };
        Ok(Context {
            procfs: config.procfs.clone(),
            sysfs: config.sysfs.clone(),
            rootfs: config.rootfs.clone(),
            udev_data: config.udev_data.clone(),
            textfile_directory: config.textfile_directory.clone(),
            netdev_include: optional("--collector.netdev.device-include", &config.netdev_device_include)?,
            netdev_exclude: optional("--collector.netdev.device-exclude", &config.netdev_device_exclude)?,
            netdev_netlink: config.netdev_netlink,
            netclass_ignored: compile("--collector.netclass.ignored-devices", &config.netclass_ignored_devices)?,
            mount_timeout: config.mount_timeout,
            statfs: disk::StatfsWorker::default(),
            mount_points_exclude: compile("--collector.filesystem.mount-points-exclude", &config.mount_points_exclude)?,
            fs_types_exclude: compile("--collector.filesystem.fs-types-exclude", &config.fs_types_exclude)?,
            diskstats_exclude: compile("--collector.diskstats.device-exclude", &config.diskstats_device_exclude)?,
            vmstat_fields: compile("--collector.vmstat.fields", &config.vmstat_fields)?,
            netstat_fields: compile("--collector.netstat.fields", &config.netstat_fields)?,
            netstat_keys: Default::default(),
        })
    }

    fn proc(&self, relative: &str) -> PathBuf {
        self.procfs.join(relative)
    }

    fn sys(&self, relative: &str) -> PathBuf {
        self.sysfs.join(relative)
    }
}

/// Reads a whole file into a string.
fn read(path: &Path) -> Result<String, Error> {
    read_file(path).map_err(|err| Error::io(path, err))
}

/// Reads a file holding one number (sysfs style), trimmed.
fn read_f64(path: &Path) -> Result<f64, Error> {
    let text = read(path)?;
    parse_number(text.trim()).ok_or_else(|| Error::parse(path, 1, format!("not a number: {:?}", text.trim())))
}

/// Parses an integer (decimal or `0x` hex) or a float.
fn parse_number(text: &str) -> Option<f64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    text.parse::<f64>().ok()
}

/// Names of the entries of a directory, sorted; a missing directory is an empty list.
fn dir_names(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(path) {
        Ok(entries) => entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

#[cfg(test)]
mod tests;

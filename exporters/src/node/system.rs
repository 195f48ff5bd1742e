//! Collectors for the kernel's process, CPU, memory and clock statistics.

use std::collections::BTreeMap;

use super::{dir_names, parse_number, read, read_f64, Context};
use crate::Error;
use sextant_model::exposition::{MetricFamily, MetricType};

/// `USER_HZ`: the unit of the CPU times in `/proc/stat` on every Linux architecture we run on.
const USER_HZ: f64 = 100.0;

fn gauge(name: &str, help: &str, value: f64) -> MetricFamily {
    MetricFamily::single(name, help, MetricType::Gauge, value)
}

fn counter(name: &str, help: &str, value: f64) -> MetricFamily {
    MetricFamily::single(name, help, MetricType::Counter, value)
}

pub(super) fn cpu(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let path = ctx.proc("stat");
    let text = read(&path)?;
    let mut seconds =
        MetricFamily::new("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", MetricType::Counter);
    let mut guest = MetricFamily::new(
        "node_cpu_guest_seconds_total",
        "Seconds the CPUs spent in guests (VMs) for each mode.",
        MetricType::Counter,
    );
    const MODES: [&str; 8] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];
    for (line_no, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("cpu") else { continue };
        let mut fields = rest.split_ascii_whitespace();
        let Some(cpu) = fields.next() else { continue };
        if cpu.is_empty() || !cpu.bytes().all(|b| b.is_ascii_digit()) || rest.starts_with(' ') {
            continue;
        }
        let values: Vec<f64> = fields
            .map(|f| f.parse::<f64>().map_err(|_| Error::parse(&path, line_no + 1, format!("bad cpu time {f:?}"))))
            .collect::<Result<_, _>>()?;
        for (mode, value) in MODES.iter().zip(&values) {
            seconds.push(&[("cpu", cpu), ("mode", mode)], value / USER_HZ);
        }
        if values.len() >= 10 {
            guest.push(&[("cpu", cpu), ("mode", "user")], values[8] / USER_HZ);
            guest.push(&[("cpu", cpu), ("mode", "nice")], values[9] / USER_HZ);
        }
    }
    let mut families = vec![seconds, guest];
    families.extend(cpu_sysfs(ctx));
    Ok(families)
}

/// CPU numbers of a kernel CPU list such as `1-3,8`; malformed parts are skipped.
fn parse_cpu_list(text: &str) -> Vec<u32> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => {
                if let (Ok(first), Ok(last)) = (first.parse::<u32>(), last.parse::<u32>()) {
                    // Bounded: a CPU list never names more CPUs than the kernel supports.
                    cpus.extend((first..=last).take(8192));
                }
            }
            None => cpus.extend(part.parse::<u32>().ok()),
        }
    }
    cpus
}

/// Isolated CPUs and thermal throttle counters from `/sys/devices/system/cpu`.
fn cpu_sysfs(ctx: &Context) -> Vec<MetricFamily> {
    let base = ctx.sys("devices/system/cpu");
    let mut families = Vec::new();
    if let Ok(text) = read(&base.join("isolated")) {
        let mut isolated = MetricFamily::new(
            "node_cpu_isolated",
            "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
            MetricType::Gauge,
        );
        for cpu in parse_cpu_list(&text) {
            isolated.push(&[("cpu", &cpu.to_string())], 1.0);
        }
        families.push(isolated);
    }
    let mut core_throttles = MetricFamily::new(
        "node_cpu_core_throttles_total",
        "Number of times this CPU core has been throttled.",
        MetricType::Counter,
    );
    let mut package_throttles = MetricFamily::new(
        "node_cpu_package_throttles_total",
        "Number of times this CPU package has been throttled.",
        MetricType::Counter,
    );
    let mut seen_cores = std::collections::HashSet::new();
    let mut seen_packages = std::collections::HashSet::new();
    for name in dir_names(&base) {
        if !name.strip_prefix("cpu").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
            continue;
        }
        let dir = base.join(&name);
        let Ok(core_count) = read_f64(&dir.join("thermal_throttle/core_throttle_count")) else { continue };
        let (Ok(package), Ok(core)) =
            (read(&dir.join("topology/physical_package_id")), read(&dir.join("topology/core_id")))
        else {
            continue;
        };
        let (package, core) = (package.trim().to_string(), core.trim().to_string());
        if seen_cores.insert((package.clone(), core.clone())) {
            core_throttles.push(&[("core", &core), ("package", &package)], core_count);
        }
        if seen_packages.insert(package.clone()) {
            if let Ok(count) = read_f64(&dir.join("thermal_throttle/package_throttle_count")) {
                package_throttles.push(&[("package", &package)], count);
            }
        }
    }
    families.push(core_throttles);
    families.push(package_throttles);
    families
}

pub(super) fn stat(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let path = ctx.proc("stat");
    let text = read(&path)?;
    let mut families = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let key = fields.next().unwrap_or("");
        let first = || -> Result<f64, Error> {
            let value = line.split_ascii_whitespace().nth(1).unwrap_or("");
            value.parse().map_err(|_| Error::parse(&path, line_no + 1, format!("bad {key} value {value:?}")))
        };
        match key {
            "intr" => families.push(counter("node_intr_total", "Total number of interrupts serviced.", first()?)),
            "ctxt" => {
                families.push(counter("node_context_switches_total", "Total number of context switches.", first()?))
            }
            "btime" => families.push(gauge("node_boot_time_seconds", "Node boot time, in unixtime.", first()?)),
            "processes" => families.push(counter("node_forks_total", "Total number of forks.", first()?)),
            "procs_running" => {
                families.push(gauge("node_procs_running", "Number of processes in runnable state.", first()?))
            }
            "procs_blocked" => families.push(gauge(
                "node_procs_blocked",
                "Number of processes blocked waiting for I/O to complete.",
                first()?,
            )),
            _ => {}
        }
    }
    Ok(families)
}

pub(super) fn loadavg(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let path = ctx.proc("loadavg");
    let text = read(&path)?;
    let loads: Vec<f64> = text.split_ascii_whitespace().take(3).filter_map(|v| v.parse().ok()).collect();
    if loads.len() != 3 {
        return Err(Error::parse(&path, 1, "expected three load averages"));
    }
    Ok(vec![
        gauge("node_load1", "1m load average.", loads[0]),
        gauge("node_load5", "5m load average.", loads[1]),
        gauge("node_load15", "15m load average.", loads[2]),
    ])
}

pub(super) fn meminfo(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let path = ctx.proc("meminfo");
    let text = read(&path)?;
    let mut families = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(key), Some(value)) = (fields.next(), fields.next()) else { continue };
        let key = key.strip_suffix(':').unwrap_or(key);
        let mut value: f64 =
            value.parse().map_err(|_| Error::parse(&path, line_no + 1, format!("bad value {value:?}")))?;
        // "Active(anon)" -> "Active_anon".
        let mut name = String::with_capacity(key.len() + 20);
        name.push_str("node_memory_");
        for ch in key.chars() {
            match ch {
                '(' => name.push('_'),
                ')' => {}
                other => name.push(other),
            }
        }
        if fields.next() == Some("kB") {
            value *= 1024.0;
            name.push_str("_bytes");
        }
        families.push(gauge(&name, &format!("Memory information field {}.", &name[12..]), value));
    }
    Ok(families)
}

pub(super) fn vmstat(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let path = ctx.proc("vmstat");
    let text = read(&path)?;
    let mut families = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else { continue };
        if !ctx.vmstat_fields.is_match(key) {
            continue;
        }
        let Ok(value) = value.trim().parse::<f64>() else { continue };
        families.push(MetricFamily::single(
            format!("node_vmstat_{key}"),
            format!("/proc/vmstat information field {key}."),
            MetricType::Unknown,
            value,
        ));
    }
    Ok(families)
}

pub(super) fn filefd(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let path = ctx.proc("sys/fs/file-nr");
    let text = read(&path)?;
    let values: Vec<f64> = text.split_ascii_whitespace().filter_map(|v| v.parse().ok()).collect();
    if values.len() != 3 {
        return Err(Error::parse(&path, 1, "expected three numbers"));
    }
    Ok(vec![
        gauge("node_filefd_allocated", "File descriptor statistics: allocated.", values[0]),
        gauge("node_filefd_maximum", "File descriptor statistics: maximum.", values[2]),
    ])
}

pub(super) fn entropy(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let available = read_f64(&ctx.proc("sys/kernel/random/entropy_avail"))?;
    let pool = read_f64(&ctx.proc("sys/kernel/random/poolsize"))?;
    Ok(vec![
        gauge("node_entropy_available_bits", "Bits of available entropy.", available),
        gauge("node_entropy_pool_size_bits", "Bits of entropy pool.", pool),
    ])
}

/// The `total=` value (microseconds) of the `some` or `full` line of a PSI file.
fn psi_total(text: &str, kind: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(kind))?;
    let total = line.split_ascii_whitespace().find_map(|f| f.strip_prefix("total="))?;
    total.parse::<f64>().ok().map(|us| us / 1000.0 / 1000.0)
}

pub(super) fn pressure(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let mut families = Vec::new();
    for resource in ["cpu", "io", "memory"] {
        let path = ctx.proc(&format!("pressure/{resource}"));
        let text = match crate::process::read_file(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoData(
                    "pressure information is unavailable, you need a Linux kernel >= 4.20 and/or CONFIG_PSI".into(),
                ))
            }
            Err(err) => return Err(Error::io(&path, err)),
        };
        let some = psi_total(&text, "some").ok_or_else(|| Error::parse(&path, 1, "no \"some\" line"))?;
        match resource {
            "cpu" => families.push(counter(
                "node_pressure_cpu_waiting_seconds_total",
                "Total time in seconds that processes have waited for CPU time",
                some,
            )),
            _ => {
                let full = psi_total(&text, "full").ok_or_else(|| Error::parse(&path, 2, "no \"full\" line"))?;
                let (waiting_help, stalled_help) = if resource == "io" {
                    (
                        "Total time in seconds that processes have waited due to IO congestion",
                        "Total time in seconds no process could make progress due to IO congestion",
                    )
                } else {
                    (
                        "Total time in seconds that processes have waited for memory",
                        "Total time in seconds no process could make progress due to memory congestion",
                    )
                };
                families.push(counter(&format!("node_pressure_{resource}_waiting_seconds_total"), waiting_help, some));
                families.push(counter(&format!("node_pressure_{resource}_stalled_seconds_total"), stalled_help, full));
            }
        }
    }
    Ok(families)
}

pub(super) fn schedstat(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let path = ctx.proc("schedstat");
    let text = read(&path)?;
    let mut running = MetricFamily::new(
        "node_schedstat_running_seconds_total",
        "Number of seconds CPU spent running a process.",
        MetricType::Counter,
    );
    let mut waiting = MetricFamily::new(
        "node_schedstat_waiting_seconds_total",
        "Number of seconds spent by processing waiting for this CPU.",
        MetricType::Counter,
    );
    let mut timeslices = MetricFamily::new(
        "node_schedstat_timeslices_total",
        "Number of timeslices executed by CPU.",
        MetricType::Counter,
    );
    for (line_no, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(cpu) = fields.first().and_then(|f| f.strip_prefix("cpu")) else { continue };
        if fields.len() < 10 {
            return Err(Error::parse(&path, line_no + 1, "expected 9 values after the cpu name"));
        }
        let num = |idx: usize| -> Result<f64, Error> {
            fields[idx].parse().map_err(|_| Error::parse(&path, line_no + 1, format!("bad value {:?}", fields[idx])))
        };
        running.push(&[("cpu", cpu)], num(7)? / 1e9);
        waiting.push(&[("cpu", cpu)], num(8)? / 1e9);
        timeslices.push(&[("cpu", cpu)], num(9)?);
    }
    Ok(vec![running, waiting, timeslices])
}

/// The text of a C string field of `utsname`.
fn c_field(field: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = field.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub(super) fn uname(_ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    // SAFETY: `uname` fills the zeroed struct we own; all fields are NUL-terminated arrays.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable `utsname`.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return Err(Error::io("uname(2)", std::io::Error::last_os_error()));
    }
    let mut fam = MetricFamily::new(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
        MetricType::Gauge,
    );
    fam.push(
        &[
            ("domainname", &c_field(&uts.domainname)),
            ("machine", &c_field(&uts.machine)),
            ("nodename", &c_field(&uts.nodename)),
            ("release", &c_field(&uts.release)),
            ("sysname", &c_field(&uts.sysname)),
            ("version", &c_field(&uts.version)),
        ],
        1.0,
    );
    Ok(vec![fam])
}

pub(super) fn time(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let mut families = vec![gauge("node_time_seconds", "System time in seconds since epoch (1970).", now)];
    // SAFETY: localtime_r writes into the zeroed `tm` we own; `secs` is a valid time_t.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let secs = now as libc::time_t;
    // SAFETY: both pointers are valid for the duration of the call.
    if !unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        let zone = if tm.tm_zone.is_null() {
            String::new()
        } else {
            // SAFETY: tm_zone points to a NUL-terminated static string owned by libc.
            unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }.to_string_lossy().into_owned()
        };
        let mut offset = MetricFamily::new(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
            MetricType::Gauge,
        );
        offset.push(&[("time_zone", &zone)], tm.tm_gmtoff as f64);
        families.push(offset);
    }
    let mut available = MetricFamily::new(
        "node_time_clocksource_available_info",
        "Available clocksources read from '/sys/devices/system/clocksource'.",
        MetricType::Gauge,
    );
    let mut current = MetricFamily::new(
        "node_time_clocksource_current_info",
        "Current clocksource read from '/sys/devices/system/clocksource'.",
        MetricType::Gauge,
    );
    let base = ctx.sys("devices/system/clocksource");
    for name in dir_names(&base) {
        let Some(device) = name.strip_prefix("clocksource") else { continue };
        let dir = base.join(&name);
        if let Ok(text) = read(&dir.join("available_clocksource")) {
            for source in text.split_ascii_whitespace() {
                available.push(&[("clocksource", source), ("device", device)], 1.0);
            }
        }
        if let Ok(text) = read(&dir.join("current_clocksource")) {
            current.push(&[("clocksource", text.trim()), ("device", device)], 1.0);
        }
    }
    families.push(available);
    families.push(current);
    Ok(families)
}

pub(super) fn timex(_ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    // SAFETY: adjtimex with modes = 0 only reads the kernel clock state into our struct.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `tx` is a valid, writable `timex`.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state == -1 {
        return Err(Error::io("adjtimex(2)", std::io::Error::last_os_error()));
    }
    const STA_NANO: i32 = 0x2000;
    const TIME_ERROR: i32 = 5;
    let divisor = if tx.status & STA_NANO != 0 { 1e9 } else { 1e6 };
    let ppm16 = 65536.0 * 1e6;
    Ok(vec![
        gauge(
            "node_timex_sync_status",
            "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
            if state == TIME_ERROR { 0.0 } else { 1.0 },
        ),
        gauge(
            "node_timex_offset_seconds",
            "Time offset in between local system and reference clock.",
            tx.offset as f64 / divisor,
        ),
        gauge(
            "node_timex_frequency_adjustment_ratio",
            "Local clock frequency adjustment.",
            1.0 + tx.freq as f64 / ppm16,
        ),
        gauge("node_timex_maxerror_seconds", "Maximum error in seconds.", tx.maxerror as f64 / 1e6),
        gauge("node_timex_estimated_error_seconds", "Estimated error in seconds.", tx.esterror as f64 / 1e6),
        gauge("node_timex_status", "Value of the status array bits.", tx.status as f64),
        gauge("node_timex_loop_time_constant", "Phase-locked loop time constant.", tx.constant as f64),
        gauge("node_timex_tick_seconds", "Seconds between clock ticks.", tx.tick as f64 / 1e6),
        gauge("node_timex_pps_frequency_hertz", "Pulse per second frequency.", tx.ppsfreq as f64 / ppm16),
        gauge("node_timex_pps_jitter_seconds", "Pulse per second jitter.", tx.jitter as f64 / divisor),
        gauge("node_timex_pps_shift_seconds", "Pulse per second interval duration.", tx.shift as f64),
        gauge(
            "node_timex_pps_stability_hertz",
            "Pulse per second stability, average of recent frequency changes.",
            tx.stabil as f64 / ppm16,
        ),
        counter(
            "node_timex_pps_jitter_total",
            "Pulse per second count of jitter limit exceeded events.",
            tx.jitcnt as f64,
        ),
        counter(
            "node_timex_pps_calibration_total",
            "Pulse per second count of calibration intervals.",
            tx.calcnt as f64,
        ),
        counter("node_timex_pps_error_total", "Pulse per second count of calibration errors.", tx.errcnt as f64),
        counter(
            "node_timex_pps_stability_exceeded_total",
            "Pulse per second count of stability limit exceeded events.",
            tx.stbcnt as f64,
        ),
        gauge("node_timex_tai_offset_seconds", "International Atomic Time (TAI) offset.", tx.tai as f64),
    ])
}

/// Parses `os-release`: `KEY=value` lines, values optionally quoted.
fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = value.trim();
        let unquoted = if value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"')) || (value.starts_with('\'') && value.ends_with('\'')))
        {
            value[1..value.len() - 1].replace("\\\"", "\"").replace("\\\\", "\\").replace("\\$", "$")
        } else {
            value.to_string()
        };
        fields.insert(key.trim().to_string(), unquoted);
    }
    fields
}

/// The leading `major[.minor]` of a version id as a number, like node_exporter does.
fn os_version_number(version_id: &str) -> f64 {
    let mut parts = version_id.split('.');
    let major = parts.next().unwrap_or("");
    let text = match parts.next() {
        Some(minor) => format!("{major}.{minor}"),
        None => major.to_string(),
    };
    text.parse().unwrap_or(0.0)
}

pub(super) fn os(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let candidates = [ctx.rootfs.join("etc/os-release"), ctx.rootfs.join("usr/lib/os-release")];
    let mut last_error = None;
    let mut fields = None;
    for path in &candidates {
        match read(path) {
            Ok(text) => {
                fields = Some(parse_os_release(&text));
                break;
            }
            Err(err) => last_error = Some(err),
        }
    }
    let Some(fields) = fields else {
        return Err(last_error.unwrap_or_else(|| Error::NoData("no os-release file".into())));
    };
    let get = |key: &str| fields.get(key).map(String::as_str).unwrap_or("");
    let mut info = MetricFamily::new(
        "node_os_info",
        "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
        MetricType::Gauge,
    );
    info.push(
        &[
            ("build_id", get("BUILD_ID")),
            ("id", get("ID")),
            ("id_like", get("ID_LIKE")),
            ("image_id", get("IMAGE_ID")),
            ("image_version", get("IMAGE_VERSION")),
            ("name", get("NAME")),
            ("pretty_name", get("PRETTY_NAME")),
            ("variant", get("VARIANT")),
            ("variant_id", get("VARIANT_ID")),
            ("version", get("VERSION")),
            ("version_codename", get("VERSION_CODENAME")),
            ("version_id", get("VERSION_ID")),
        ],
        1.0,
    );
    let mut version = MetricFamily::new(
        "node_os_version",
        "Metric containing the major.minor part of the OS version.",
        MetricType::Gauge,
    );
    version.push(
        &[("id", get("ID")), ("id_like", get("ID_LIKE")), ("name", get("NAME"))],
        os_version_number(get("VERSION_ID")),
    );
    Ok(vec![info, version])
}

pub(super) fn selinux(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let enforce = ctx.sys("fs/selinux/enforce");
    let Ok(current) = read_f64(&enforce) else {
        return Ok(vec![gauge("node_selinux_enabled", "SELinux is enabled, 1 is true, 0 is false", 0.0)]);
    };
    Ok(vec![
        gauge("node_selinux_enabled", "SELinux is enabled, 1 is true, 0 is false", 1.0),
        gauge(
            "node_selinux_current_mode",
            "SELinux current mode: -1 is disabled, 0 is permissive, 1 is enforcing",
            current,
        ),
    ])
}

pub(super) fn processes(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let mut n_pids = 0.0;
    let mut n_threads = 0.0;
    let mut states: BTreeMap<String, f64> = BTreeMap::new();
    let mut thread_states: BTreeMap<String, f64> = BTreeMap::new();
    let entries = std::fs::read_dir(&ctx.procfs).map_err(|err| Error::io(&ctx.procfs, err))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // A process can exit between listing and reading: skip it.
        let Ok(stat) = crate::process::read_file(entry.path().join("stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
        let (Some(state), Some(threads)) = (fields.first(), fields.get(17)) else { continue };
        n_pids += 1.0;
        n_threads += threads.parse::<f64>().unwrap_or(0.0);
        *states.entry(state.to_string()).or_insert(0.0) += 1.0;
        // The main thread's state is the process's, already read.
        *thread_states.entry(state.to_string()).or_insert(0.0) += 1.0;
        let Ok(tasks) = std::fs::read_dir(entry.path().join("task")) else { continue };
        for task in tasks.flatten() {
            if task.file_name() == entry.file_name() {
                continue;
            }
            let Ok(stat) = crate::process::read_file(task.path().join("stat")) else { continue };
            let Some((_, rest)) = stat.rsplit_once(')') else { continue };
            if let Some(state) = rest.split_ascii_whitespace().next() {
                *thread_states.entry(state.to_string()).or_insert(0.0) += 1.0;
            }
        }
    }
    let mut state_family =
        MetricFamily::new("node_processes_state", "Number of processes in each state.", MetricType::Gauge);
    for (state, count) in &states {
        state_family.push(&[("state", state)], *count);
    }
    let mut thread_state_family =
        MetricFamily::new("node_processes_threads_state", "Number of threads in each state.", MetricType::Gauge);
    for (state, count) in &thread_states {
        thread_state_family.push(&[("thread_state", state)], *count);
    }
    Ok(vec![
        thread_state_family,
        gauge("node_processes_threads", "Allocated threads in system", n_threads),
        gauge("node_processes_pids", "Number of PIDs", n_pids),
        gauge(
            "node_processes_max_threads",
            "Limit of threads in the system",
            read_f64(&ctx.proc("sys/kernel/threads-max"))?,
        ),
        gauge("node_processes_max_processes", "Number of max PIDs limit", read_f64(&ctx.proc("sys/kernel/pid_max"))?),
        state_family,
    ])
}

pub(super) fn interrupts(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let path = ctx.proc("interrupts");
    let text = read(&path)?;
    let mut lines = text.lines();
    let n_cpus = lines.next().map(|header| header.split_ascii_whitespace().count()).unwrap_or(0);
    let mut fam = MetricFamily::new("node_interrupts_total", "Interrupt details.", MetricType::Counter);
    for line in lines {
        let parts: Vec<&str> = line.split_ascii_whitespace().collect();
        // The interrupt, one column per CPU and at least one column of details; ERR and MIS
        // have no details and are skipped, as node_exporter does.
        if parts.len() < n_cpus + 2 {
            continue;
        }
        let name = parts[0].strip_suffix(':').unwrap_or(parts[0]);
        let (info, devices) = if name.parse::<u64>().is_ok() {
            (parts[n_cpus + 1].to_string(), parts[n_cpus + 2..].join(" "))
        } else {
            (parts[n_cpus + 1..].join(" "), String::new())
        };
        for (cpu, value) in parts[1..=n_cpus].iter().enumerate() {
            let Some(value) = parse_number(value) else { continue };
            fam.push(&[("cpu", &cpu.to_string()), ("devices", &devices), ("info", &info), ("type", name)], value);
        }
    }
    Ok(vec![fam])
}

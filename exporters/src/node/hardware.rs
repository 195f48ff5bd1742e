//! Hardware collectors under `/sys/class` and `/sys/devices`: hwmon, thermal zones, CPU
//! frequency, power supplies. Each reports nothing (successfully) where the hardware or the
//! driver is absent, except hwmon, which fails without `/sys/class/hwmon` as node_exporter does.

use std::collections::BTreeMap;
use std::path::Path;

use super::{dir_names, read, read_f64, Context};
use crate::Error;
use sextant_model::exposition::{MetricFamily, MetricType};

/// Families keyed by name, built up sample by sample.
#[derive(Default)]
struct Families(BTreeMap<String, MetricFamily>);

impl Families {
    fn push(&mut self, name: &str, help: &str, kind: MetricType, labels: &[(&str, &str)], value: f64) {
        self.0.entry(name.to_string()).or_insert_with(|| MetricFamily::new(name, help, kind)).push(labels, value);
    }

    fn into_vec(self) -> Vec<MetricFamily> {
        self.0.into_values().collect()
    }
}

pub(super) fn cpufreq(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    const FILES: [(&str, &str, &str); 6] = [
        ("cpuinfo_cur_freq", "node_cpu_frequency_hertz", "Current cpu thread frequency in hertz."),
        ("cpuinfo_max_freq", "node_cpu_frequency_max_hertz", "Maximum cpu thread frequency in hertz."),
        ("cpuinfo_min_freq", "node_cpu_frequency_min_hertz", "Minimum cpu thread frequency in hertz."),
        ("scaling_cur_freq", "node_cpu_scaling_frequency_hertz", "Current scaled CPU thread frequency in hertz."),
        ("scaling_max_freq", "node_cpu_scaling_frequency_max_hertz", "Maximum scaled CPU thread frequency in hertz."),
        ("scaling_min_freq", "node_cpu_scaling_frequency_min_hertz", "Minimum scaled cpu thread frequency in hertz."),
    ];
    let base = ctx.sys("devices/system/cpu");
    let mut families = Families::default();
    for name in dir_names(&base) {
        let Some(cpu) = name.strip_prefix("cpu").filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let dir = base.join(&name).join("cpufreq");
        for (file, metric, help) in FILES {
            if let Ok(khz) = read_f64(&dir.join(file)) {
                families.push(metric, help, MetricType::Gauge, &[("cpu", cpu)], khz * 1000.0);
            }
        }
    }
    Ok(families.into_vec())
}

pub(super) fn thermal_zone(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let base = ctx.sys("class/thermal");
    let mut families = Families::default();
    for name in dir_names(&base) {
        let dir = base.join(&name);
        if let Some(zone) = name.strip_prefix("thermal_zone") {
            let (Ok(kind), Ok(temp)) = (read(&dir.join("type")), read_f64(&dir.join("temp"))) else { continue };
            families.push(
                "node_thermal_zone_temp",
                "Zone temperature in Celsius",
                MetricType::Gauge,
                &[("type", kind.trim()), ("zone", zone)],
                temp / 1000.0,
            );
        } else if let Some(device) = name.strip_prefix("cooling_device") {
            let Ok(kind) = read(&dir.join("type")) else { continue };
            let labels = [("name", device), ("type", kind.trim())];
            if let Ok(cur) = read_f64(&dir.join("cur_state")) {
                let help = "Current throttle state of the cooling device";
                families.push("node_cooling_device_cur_state", help, MetricType::Gauge, &labels, cur);
            }
            if let Ok(max) = read_f64(&dir.join("max_state")) {
                let help = "Maximum throttle state of the cooling device";
                families.push("node_cooling_device_max_state", help, MetricType::Gauge, &labels, max);
            }
        }
    }
    Ok(families.into_vec())
}

/// Lower-case, `[a-z0-9:_]` only, trimmed of `_`: node_exporter's hwmon name cleaning.
fn clean_name(name: &str) -> String {
    let cleaned: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' { c } else { '_' })
        .collect();
    cleaned.trim_matches('_').to_string()
}

/// The stable chip name of a hwmon directory: from its device path, else its `name` file,
/// else the directory name.
fn hwmon_chip(dir: &Path) -> String {
    if let Ok(device) = std::fs::canonicalize(dir.join("device")) {
        let dev_name = device.file_name().map(|n| clean_name(&n.to_string_lossy())).unwrap_or_default();
        let dev_type =
            device.parent().and_then(|p| p.file_name()).map(|n| clean_name(&n.to_string_lossy())).unwrap_or_default();
        if !dev_type.is_empty() && !dev_name.is_empty() {
            return format!("{dev_type}_{dev_name}");
        }
        if !dev_name.is_empty() {
            return dev_name;
        }
    }
    if let Ok(name) = read(&dir.join("name")) {
        let cleaned = clean_name(&name);
        if !cleaned.is_empty() {
            return cleaned;
        }
    }
    let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    real.file_name().map(|n| clean_name(&n.to_string_lossy())).unwrap_or_default()
}

const HWMON_TYPES: [&str; 12] =
    ["vrm", "beep_enable", "in", "fan", "pwm", "temp", "curr", "power", "energy", "humidity", "intrusion", "freq"];

/// Splits `temp1_crit_alarm` into (`temp`, `1`, `crit_alarm`).
fn explode_sensor(file: &str) -> Option<(&str, &str, &str)> {
    let type_end = file.find(|c: char| c.is_ascii_digit()).unwrap_or(file.len());
    let (kind, rest) = file.split_at(type_end);
    let id_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let (id, property) = rest.split_at(id_end);
    let property = match property.strip_prefix('_') {
        Some(p) => p,
        None if property.is_empty() => "",
        None => return None,
    };
    (!kind.is_empty()).then_some((kind, id, property))
}

pub(super) fn hwmon(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let base = ctx.sys("class/hwmon");
    std::fs::read_dir(&base).map_err(|err| Error::io(&base, err))?;
    let mut families = Families::default();
    for entry in dir_names(&base) {
        let dir = base.join(&entry);
        let chip = hwmon_chip(&dir);
        if let Ok(name) = read(&dir.join("name")) {
            families.push(
                "node_hwmon_chip_names",
                "Annotation metric for human-readable chip names",
                MetricType::Gauge,
                &[("chip", &chip), ("chip_name", name.trim())],
                1.0,
            );
        }
        // sensor -> property -> raw text, from the directory and its device directory.
        let mut sensors: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for sub in [dir.clone(), dir.join("device")] {
            for file in dir_names(&sub) {
                let Some((kind, id, property)) = explode_sensor(&file) else { continue };
                if !HWMON_TYPES.contains(&kind) {
                    continue;
                }
                let Ok(text) = crate::process::read_file(sub.join(&file)) else { continue };
                sensors.entry(format!("{kind}{id}")).or_default().insert(property.to_string(), text.trim().to_string());
            }
        }
        for (sensor, properties) in &sensors {
            let Some((kind, _, _)) = explode_sensor(sensor) else { continue };
            let labels = [("chip", chip.as_str()), ("sensor", sensor.as_str())];
            if let Some(label) = properties.get("label") {
                families.push(
                    "node_hwmon_sensor_label",
                    "Label for given chip and sensor",
                    MetricType::Gauge,
                    &[("chip", &chip), ("label", label), ("sensor", sensor)],
                    1.0,
                );
            }
            for (property, text) in properties {
                if property == "label" {
                    continue;
                }
                let Ok(value) = text.parse::<f64>() else { continue };
                let mut name = format!("node_hwmon_{kind}");
                if property == "input" {
                    if properties.contains_key("") {
                        name.push_str("_input");
                    }
                } else if !property.is_empty() {
                    name.push('_');
                    name.push_str(property);
                }
                let help = format!("Hardware monitor for {kind} ({property})");
                let (suffix, scale) = match (kind, property.as_str()) {
                    (_, "fault" | "alarm") => ("", 1.0),
                    (_, "beep") => ("_enabled", 1.0),
                    ("in" | "cpu", _) => ("_volts", 0.001),
                    ("temp", p) if p != "type" => ("_celsius", 0.001),
                    ("curr", _) => ("_amps", 0.001),
                    ("power", p) if p.ends_with("interval") => ("_seconds", 0.001),
                    ("power", _) => ("_watt", 1e-6),
                    ("energy", _) => ("_joule_total", 1e-6),
                    ("fan", "input" | "min" | "max" | "target") => ("_rpm", 1.0),
                    ("humidity", _) => ("", 1e-6),
                    _ => ("", 1.0),
                };
                name.push_str(suffix);
                families.push(&name, &help, MetricType::Gauge, &labels, value * scale);
            }
        }
    }
    Ok(families.into_vec())
}

pub(super) fn powersupplyclass(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    // (file, metric, scale)
    const NUMERIC: [(&str, &str, f64); 10] = [
        ("online", "online", 1.0),
        ("present", "present", 1.0),
        ("capacity", "capacity", 1.0),
        ("cycle_count", "cyclecount", 1.0),
        ("energy_full", "energy_full", 1e-6),
        ("energy_full_design", "energy_full_design", 1e-6),
        ("energy_now", "energy_watthour", 1e-6),
        ("power_now", "power_watt", 1e-6),
        ("voltage_now", "voltage_volt", 1e-6),
        ("voltage_min_design", "voltage_min_design", 1e-6),
    ];
    const INFO: [&str; 7] =
        ["capacity_level", "manufacturer", "model_name", "serial_number", "status", "technology", "type"];
    let base = ctx.sys("class/power_supply");
    let mut families = Families::default();
    for supply in dir_names(&base) {
        let dir = base.join(&supply);
        for (file, metric, scale) in NUMERIC {
            if let Ok(value) = read_f64(&dir.join(file)) {
                families.push(
                    &format!("node_power_supply_{metric}"),
                    &format!("{file} value of /sys/class/power_supply/<power_supply>."),
                    MetricType::Gauge,
                    &[("power_supply", &supply)],
                    value * scale,
                );
            }
        }
        let values: Vec<(&str, String)> =
            INFO.iter().filter_map(|key| read(&dir.join(key)).ok().map(|v| (*key, v.trim().to_string()))).collect();
        let mut labels: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        labels.push(("power_supply", &supply));
        labels.sort();
        families.push(
            "node_power_supply_info",
            "info of /sys/class/power_supply/<power_supply>.",
            MetricType::Gauge,
            &labels,
            1.0,
        );
    }
    Ok(families.into_vec())
}

pub(super) fn edac(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let base = ctx.sys("devices/system/edac/mc");
    let mut families = Families::default();
    let counters = [
        ("ce_count", "node_edac_correctable_errors_total", "Total correctable memory errors."),
        ("ue_count", "node_edac_uncorrectable_errors_total", "Total uncorrectable memory errors."),
    ];
    let csrow_help = |kind: &str| format!("Total {kind} memory errors for this csrow.");
    for name in dir_names(&base) {
        let Some(controller) = name.strip_prefix("mc").filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let dir = base.join(&name);
        for (file, metric, help) in counters {
            families.push(metric, help, MetricType::Counter, &[("controller", controller)], read_f64(&dir.join(file))?);
        }
        for (file, metric, kind) in [
            ("ce_noinfo_count", "node_edac_csrow_correctable_errors_total", "correctable"),
            ("ue_noinfo_count", "node_edac_csrow_uncorrectable_errors_total", "uncorrectable"),
        ] {
            let value = read_f64(&dir.join(file))?;
            let labels = [("controller", controller), ("csrow", "unknown")];
            families.push(metric, &csrow_help(kind), MetricType::Counter, &labels, value);
        }
        for row in dir_names(&dir) {
            let Some(csrow) = row.strip_prefix("csrow").filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
                continue;
            };
            for (file, metric, kind) in [
                ("ce_count", "node_edac_csrow_correctable_errors_total", "correctable"),
                ("ue_count", "node_edac_csrow_uncorrectable_errors_total", "uncorrectable"),
            ] {
                let value = read_f64(&dir.join(&row).join(file))?;
                let labels = [("controller", controller), ("csrow", csrow)];
                families.push(metric, &csrow_help(kind), MetricType::Counter, &labels, value);
            }
        }
    }
    Ok(families.into_vec())
}

pub(super) fn bonding(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let base = ctx.sys("class/net");
    let masters = match read(&base.join("bonding_masters")) {
        Ok(text) => text,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoData("no bonding_masters file".into()))
        }
        Err(err) => return Err(err),
    };
    let mut slaves_family = MetricFamily::new(
        "node_bonding_slaves",
        "Number of configured slaves per bonding interface.",
        MetricType::Gauge,
    );
    let mut active_family =
        MetricFamily::new("node_bonding_active", "Number of active slaves per bonding interface.", MetricType::Gauge);
    for master in masters.split_ascii_whitespace() {
        let slaves = read(&base.join(master).join("bonding/slaves"))?;
        let (mut n_slaves, mut n_active) = (0.0, 0.0);
        for slave in slaves.split_ascii_whitespace() {
            let lower = base.join(master).join(format!("lower_{slave}/bonding_slave/mii_status"));
            let state = match read(&lower) {
                Ok(state) => state,
                Err(_) => read(&base.join(master).join(format!("slave_{slave}/bonding_slave/mii_status")))?,
            };
            n_slaves += 1.0;
            if state.trim() == "up" {
                n_active += 1.0;
            }
        }
        slaves_family.push(&[("master", master)], n_slaves);
        active_family.push(&[("master", master)], n_active);
    }
    Ok(vec![slaves_family, active_family])
}

/// Splits a RAPL zone name like `package-0` into (`package`, 0); other names are numbered
/// by how often they were seen, as node_exporter does.
fn rapl_name_and_index(name: &str, seen: &mut BTreeMap<String, u32>) -> (String, u32) {
    if let Some((base, index)) = name.rsplit_once('-') {
        if let Ok(index) = index.parse::<u32>() {
            seen.insert(base.to_string(), index + 1);
            return (base.to_string(), index);
        }
    }
    let index = seen.get(name).copied().unwrap_or(0);
    seen.insert(name.to_string(), index + 1);
    (name.to_string(), index)
}

pub(super) fn rapl(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let base = ctx.sys("class/powercap");
    std::fs::read_dir(&base).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => Error::NoData("no class/powercap".into()),
        _ => Error::io(&base, err),
    })?;
    let mut families = Families::default();
    let mut seen = BTreeMap::new();
    for zone in dir_names(&base) {
        let dir = base.join(&zone);
        let Ok(name) = read(&dir.join("name")) else { continue };
        let (name, index) = rapl_name_and_index(name.trim(), &mut seen);
        read_f64(&dir.join("max_energy_range_uj"))?;
        let micro_joules = read_f64(&dir.join("energy_uj"))?;
        let metric = format!("node_rapl_{}_joules_total", clean_name(&name));
        let help = format!("Current RAPL {name} value in joules");
        let (index, path) = (index.to_string(), dir.to_string_lossy().into_owned());
        families.push(&metric, &help, MetricType::Counter, &[("index", &index), ("path", &path)], micro_joules / 1e6);
    }
    Ok(families.into_vec())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sensor_file_names() {
        let cases = [
            ("temp1_input", Some(("temp", "1", "input"))),
            ("temp1_crit_alarm", Some(("temp", "1", "crit_alarm"))),
            ("fan2", Some(("fan", "2", ""))),
            ("beep_enable", Some(("beep_enable", "", ""))),
            ("in0x", None),
            ("", None),
        ];
        for (file, expected) in cases {
            assert_eq!(super::explode_sensor(file), expected, "{file}");
        }
    }

    #[test]
    fn chip_name_cleaning() {
        let cases = [("platform", "platform"), ("Core Temp-0\n", "core_temp_0"), ("__x__", "x")];
        for (input, expected) in cases {
            assert_eq!(super::clean_name(input), expected);
        }
    }
}

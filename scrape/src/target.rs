//! From a discovered target to the labels it is scraped with: Prometheus'
//! `PopulateLabels` (job defaults, relabeling, checks, `instance` defaulting).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sextant_model::{Labels, LabelsBuilder};

use crate::config::ScrapeConfig;
use crate::discovery::{TargetGroup, ADDRESS_LABEL};
use crate::relabel::relabel_builder;
use crate::units::Duration;
use crate::Error;

/// `__scheme__`: `http` or `https`.
pub const SCHEME_LABEL: &str = "__scheme__";
/// `__metrics_path__`.
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
/// `__scrape_interval__`, in Prometheus' duration format.
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
/// `__scrape_timeout__`.
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
/// `__param_<name>`: the first value of URL parameter `<name>`.
pub const PARAM_LABEL_PREFIX: &str = "__param_";
/// `__meta_*`: discovery metadata, removed after relabeling.
pub const META_LABEL_PREFIX: &str = "__meta_";
/// Labels starting with `__` are internal and never stored with samples.
pub const RESERVED_LABEL_PREFIX: &str = "__";
/// `instance`, defaulted to `__address__`.
pub const INSTANCE_LABEL: &str = "instance";
/// `job`, defaulted to the job name.
pub const JOB_LABEL: &str = "job";

const CONVERT_NHCB_LABEL: &str = "__convert_classic_histograms_to_nhcb__";
const ALWAYS_CLASSIC_LABEL: &str = "__always_scrape_classic_histograms__";
const NATIVE_HISTOGRAMS_LABEL: &str = "__scrape_native_histograms__";

/// The labels a target has before relabeling: its own, then its group's where it has none,
/// then the job's (`job`, `__scrape_interval__`, `__scrape_timeout__`, `__metrics_path__`,
/// `__scheme__`, histogram switches, `__param_*`) where still unset.
pub fn discovered_labels(cfg: &ScrapeConfig, target: &Labels, group: &Labels) -> LabelsBuilder {
    let mut lb = LabelsBuilder::new(target);
    for l in group.iter() {
        if target.get(&l.name).is_none() {
            lb.set(&l.name, &l.value);
        }
    }
    let defaults = [
        (JOB_LABEL, cfg.job_name.clone()),
        (SCRAPE_INTERVAL_LABEL, cfg.scrape_interval.to_string()),
        (SCRAPE_TIMEOUT_LABEL, cfg.scrape_timeout.to_string()),
        (METRICS_PATH_LABEL, cfg.metrics_path.clone()),
        (SCHEME_LABEL, cfg.scheme.clone()),
        (CONVERT_NHCB_LABEL, cfg.convert_classic_histograms_to_nhcb.unwrap_or(false).to_string()),
        (ALWAYS_CLASSIC_LABEL, cfg.always_scrape_classic_histograms.unwrap_or(false).to_string()),
        (NATIVE_HISTOGRAMS_LABEL, cfg.scrape_native_histograms.unwrap_or(false).to_string()),
    ];
    for (name, value) in defaults {
        if lb.get(name).unwrap_or("").is_empty() {
            lb.set(name, &value);
        }
    }
    for (key, values) in &cfg.params {
        let name = format!("{PARAM_LABEL_PREFIX}{key}");
        if let Some(first) = values.first() {
            if lb.get(&name).unwrap_or("").is_empty() {
                lb.set(&name, first);
            }
        }
    }
    lb
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> bool {
    matches!(v, "1" | "t" | "T" | "TRUE" | "true" | "True" | "0" | "f" | "F" | "FALSE" | "false" | "False")
}

/// Prometheus' `PopulateLabels`: the final label set of a target (still holding the
/// internal `__address__`, `__scheme__`, ... labels, without `__meta_*`), `Ok(None)` when
/// relabeling drops it, or an error such as `no address`.
pub fn populate_labels(cfg: &ScrapeConfig, target: &Labels, group: &Labels) -> Result<Option<Labels>, Error> {
    let mut lb = discovered_labels(cfg, target, group);
    if !relabel_builder(&mut lb, &cfg.relabel_configs) {
        return Ok(None);
    }
    let addr = lb.get(ADDRESS_LABEL).unwrap_or("").to_string();
    if addr.is_empty() {
        return Err(Error::target("no address"));
    }
    if addr.contains('/') {
        return Err(Error::target(format!("{addr:?} is not a valid hostname")));
    }
    let interval_text = lb.get(SCRAPE_INTERVAL_LABEL).unwrap_or("").to_string();
    let interval: Duration =
        interval_text.parse().map_err(|e| Error::target(format!("error parsing scrape interval: {e}")))?;
    if interval.is_zero() {
        return Err(Error::target("scrape interval cannot be 0"));
    }
    let timeout_text = lb.get(SCRAPE_TIMEOUT_LABEL).unwrap_or("").to_string();
    let timeout: Duration =
        timeout_text.parse().map_err(|e| Error::target(format!("error parsing scrape timeout: {e}")))?;
    if timeout.is_zero() {
        return Err(Error::target("scrape timeout cannot be 0"));
    }
    if timeout > interval {
        return Err(Error::target(format!(
            "scrape timeout cannot be greater than scrape interval ({timeout_text:?} > {interval_text:?})"
        )));
    }
    for (name, desc) in [
        (CONVERT_NHCB_LABEL, "convert classic histograms to nhcb"),
        (ALWAYS_CLASSIC_LABEL, "always scrape classic histograms"),
        (NATIVE_HISTOGRAMS_LABEL, "scrape native histograms"),
    ] {
        if let Some(v) = lb.get(name) {
            if !parse_go_bool(v) {
                return Err(Error::target(format!(
                    "error parsing {desc}: strconv.ParseBool: parsing {v:?}: invalid syntax"
                )));
            }
        }
    }
    lb.retain(|name, _| !name.starts_with(META_LABEL_PREFIX));
    if lb.get(INSTANCE_LABEL).unwrap_or("").is_empty() {
        lb.set(INSTANCE_LABEL, &addr);
    }
    Ok(Some(lb.labels()))
}

/// A scrape target: the labels after relabeling and what discovery gave before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    labels: Labels,
    discovered: Labels,
    params: BTreeMap<String, Vec<String>>,
}

impl Target {
    /// Every label, internal ones (`__address__`, `__scheme__`, ...) included.
    pub fn all_labels(&self) -> &Labels {
        &self.labels
    }

    /// The labels attached to the target's samples: those not starting with `__`.
    pub fn labels(&self) -> Labels {
        self.labels.filter(|l| !l.name.starts_with(RESERVED_LABEL_PREFIX))
    }

    /// The labels before relabeling (shown for dropped targets on the targets page).
    pub fn discovered_labels(&self) -> &Labels {
        &self.discovered
    }

    /// The URL to scrape: `__scheme__://__address____metrics_path__?params`, where the job's
    /// `params` are overridden by `__param_<name>` labels.
    pub fn url(&self) -> String {
        let mut params = self.params.clone();
        for l in self.labels.iter() {
            if let Some(key) = l.name.strip_prefix(PARAM_LABEL_PREFIX) {
                let values = params.entry(key.to_string()).or_default();
                match values.first_mut() {
                    Some(first) => *first = l.value.to_string(),
                    None => values.push(l.value.to_string()),
                }
            }
        }
        let get = |n: &str| self.labels.get(n).unwrap_or("");
        let mut url = format!("{}://{}{}", get(SCHEME_LABEL), get(ADDRESS_LABEL), get(METRICS_PATH_LABEL));
        let mut sep = '?';
        for (key, values) in &params {
            for v in values {
                url.push(sep);
                sep = '&';
                query_escape(&mut url, key);
                url.push('=');
                query_escape(&mut url, v);
            }
        }
        url
    }
}

/// Go's `url.QueryEscape`.
fn query_escape(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

/// Prometheus' `TargetsFromGroup`: the group's targets that survive relabeling, and one
/// error per target that cannot be scraped (`instance N in group SOURCE: ...`).
pub fn targets_from_group(group: &TargetGroup, cfg: &ScrapeConfig) -> (Vec<Target>, Vec<Error>) {
    let (targets, _, failures) = split_group(group, cfg);
    (targets, failures)
}

/// Like [`targets_from_group`], also returning the discovered labels of the targets that
/// relabeling dropped (for the targets API's `droppedTargets`).
pub(crate) fn split_group(group: &TargetGroup, cfg: &ScrapeConfig) -> (Vec<Target>, Vec<Labels>, Vec<Error>) {
    let group_labels = group.group_labels();
    let mut targets = Vec::new();
    let mut dropped = Vec::new();
    let mut failures = Vec::new();
    for (i, target_labels) in group.target_labels().enumerate() {
        match populate_labels(cfg, &target_labels, &group_labels) {
            Ok(Some(labels)) => targets.push(Target {
                labels,
                discovered: discovered_labels(cfg, &target_labels, &group_labels).labels(),
                params: cfg.params.clone(),
            }),
            Ok(None) => dropped.push(discovered_labels(cfg, &target_labels, &group_labels).labels()),
            Err(e) => failures.push(Error::target(format!("instance {i} in group {}: {e}", group.source))),
        }
    }
    (targets, dropped, failures)
}

//! Collects samples into metric families by name during one scrape of a database.

use std::collections::BTreeMap;

use sextant_model::exposition::{MetricFamily, MetricType};

/// Families built up during one scrape, keyed by full name.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    namespace: String,
    families: BTreeMap<String, MetricFamily>,
}

impl Builder {
    pub(crate) fn new(namespace: &str) -> Builder {
        Builder { namespace: namespace.to_string(), families: BTreeMap::new() }
    }

    fn full_name(&self, name: &str) -> String {
        if self.namespace.is_empty() {
            name.to_string()
        } else {
            format!("{}_{name}", self.namespace)
        }
    }

    /// Adds a sample to the family `<namespace>_<name>`, creating it on first use.
    pub(crate) fn add(&mut self, name: &str, help: &str, kind: MetricType, labels: &[(&str, &str)], value: f64) {
        self.add_sample(name, help, kind, "", labels, value);
    }

    pub(crate) fn add_sample(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        suffix: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let full = self.full_name(name);
        let fam = self.families.entry(full.clone()).or_insert_with(|| MetricFamily::new(full, help, kind));
        fam.push_suffixed(suffix, labels, value);
    }

    pub(crate) fn finish(self) -> Vec<MetricFamily> {
        self.families.into_values().collect()
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The Go exporters' `<exporter>_build_info` gauge (constant 1, labelled with the build), with
/// our version and `goversion="sextant"`.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn go_build_info(name: &str, help: &str) -> MetricFamily {
    let mut build = MetricFamily::new(name, help, MetricType::Gauge);
    build.push(
        &[
            ("branch", ""),
            ("goarch", std::env::consts::ARCH),
            ("goos", std::env::consts::OS),
            ("goversion", "sextant"),
            ("revision", ""),
            ("version", env!("CARGO_PKG_VERSION")),
        ],
        1.0,
    );
    build
}

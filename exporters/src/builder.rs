//! Collects samples into metric families by name during one scrape of a database.

use std::collections::BTreeMap;

use crate::encode::{MetricFamily, MetricType, Sample};

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
        fam.push_sample(Sample {
            suffix: suffix.to_string(),
            labels: labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            value,
        });
    }

    pub(crate) fn finish(self) -> Vec<MetricFamily> {
        self.families.into_values().collect()
    }
}

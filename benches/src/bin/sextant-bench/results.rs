//! The results file (JSON), and the figures derived from it. Maps are keyed by system:
//! `sextant`, `prometheus`, `victoriametrics`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Results {
    pub size: String,
    pub started_utc: String,
    pub duration_s: f64,
    pub machine: Machine,
    pub dataset: Dataset,
    /// Persisted blocks after import (VictoriaMetrics: after force_merge).
    pub disk: BTreeMap<String, Disk>,
    pub import: BTreeMap<String, Import>,
    /// `tsdb bench write` (promtool's and ours).
    pub append: BTreeMap<String, Append>,
    pub remote_write: BTreeMap<String, RemoteWrite>,
    pub restart: BTreeMap<String, Restart>,
    pub queries: Vec<QueryRow>,
    /// RSS of the query servers after the query run.
    pub rss_after_queries: BTreeMap<String, u64>,
    /// Failed phases and other problems.
    pub notes: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub mem_gib: f64,
    pub kernel: String,
    pub load_start: [f64; 3],
    pub load_end: [f64; 3],
    pub sextant_commit: String,
    pub sextant_binary: String,
    pub prometheus_version: String,
    pub victoria_version: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Dataset {
    pub instances: usize,
    pub scrapes: usize,
    pub series: u64,
    pub samples: u64,
    pub om_bytes: u64,
    pub start_s: i64,
    pub end_s: i64,
    pub step_s: i64,
    /// The two remote-write datasets (small, large).
    pub rw_sizes: Vec<RwSize>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RwSize {
    pub instances: usize,
    pub scrapes: usize,
    pub series: usize,
    pub samples: u64,
    pub encoded_bytes: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Disk {
    pub samples: u64,
    pub chunks_bytes: u64,
    pub index_bytes: u64,
    pub dir_bytes: u64,
}

impl Disk {
    pub fn per_sample(&self, bytes: u64) -> Option<f64> {
        (self.samples > 0).then(|| bytes as f64 / self.samples as f64)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Import {
    pub wall_s: f64,
    pub cpu_s: f64,
    pub max_rss_bytes: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Append {
    /// samples/s as the tool reports it, one per repetition.
    pub runs: Vec<f64>,
    pub cpu_s: Vec<f64>,
    pub pinned_to_one_core: bool,
    /// Samples appended per run (`--metrics` × `--scrapes`); 0 in results written before it was kept.
    #[serde(default)]
    pub samples: u64,
}

impl Append {
    pub fn median(&self) -> Option<f64> {
        median(&self.runs)
    }

    /// Median over runs of samples per CPU-second of the whole process (start-up, reading the
    /// label sets and closing the database included, which the tools' own figure leaves out).
    pub fn median_per_cpu_s(&self) -> Option<f64> {
        let rates: Vec<f64> =
            self.cpu_s.iter().filter(|c| **c > 0.0 && self.samples > 0).map(|c| self.samples as f64 / c).collect();
        median(&rates)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RemoteWrite {
    pub small: Option<RwRun>,
    pub large: Option<RwRun>,
}

impl RemoteWrite {
    /// Accepted samples per CPU-second of the server, on the large replay.
    pub fn per_cpu_s(&self) -> Option<f64> {
        let r = self.large.as_ref()?;
        (r.cpu_s > 0.0).then(|| r.samples_accepted as f64 / r.cpu_s)
    }

    /// Δ resident memory / Δseries between the two replays: anonymous memory (heap and stacks)
    /// where it was recorded, else the whole resident set.
    pub fn rss_per_series(&self) -> Option<f64> {
        let (a, b) = (self.small.as_ref()?, self.large.as_ref()?);
        let (ma, mb) = if a.anon_bytes > 0 && b.anon_bytes > 0 {
            (a.anon_bytes, b.anon_bytes)
        } else {
            (a.rss_bytes, b.rss_bytes)
        };
        (b.series > a.series).then(|| (mb as f64 - ma as f64) / (b.series - a.series) as f64)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RwRun {
    pub series: usize,
    pub samples_sent: u64,
    pub samples_accepted: u64,
    pub requests: u64,
    pub failed_requests: u64,
    pub first_error: Option<String>,
    pub cpu_s: f64,
    pub wall_s: f64,
    pub rss_bytes: u64,
    /// RssAnon; 0 in results written before it was kept.
    #[serde(default)]
    pub anon_bytes: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Restart {
    pub dir_bytes: u64,
    pub wal_bytes: u64,
    pub term: Option<RestartRun>,
    pub kill: Option<RestartRun>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RestartRun {
    /// From the signal to the exit of the old process.
    pub stop_s: f64,
    /// From spawn to the readiness endpoint answering 200.
    pub ready_s: Option<f64>,
    /// From spawn to the first successful instant query.
    pub first_query_s: Option<f64>,
    /// That query's value (`count(node_load1)`: the number of hosts).
    pub first_query_value: Option<f64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct QueryRow {
    pub query: String,
    pub per: BTreeMap<String, QueryResult>,
    pub mismatches: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct QueryResult {
    pub median_ms: Option<f64>,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub series: Option<usize>,
    pub points: usize,
    pub error: Option<String>,
}

pub fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// Geometric mean of positive values.
pub fn geomean(v: &[f64]) -> Option<f64> {
    let pos: Vec<f64> = v.iter().copied().filter(|x| *x > 0.0 && x.is_finite()).collect();
    (!pos.is_empty()).then(|| (pos.iter().map(|x| x.ln()).sum::<f64>() / pos.len() as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_means() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[]), None);
        assert!((geomean(&[1.0, 4.0]).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(geomean(&[0.0]), None);
    }

    #[test]
    fn slopes() {
        let run = |series, rss_bytes| {
            Some(RwRun { series, rss_bytes, samples_accepted: 100, cpu_s: 2.0, ..Default::default() })
        };
        let rw = RemoteWrite { small: run(1000, 10_000_000), large: run(3000, 12_000_000) };
        assert_eq!(rw.rss_per_series(), Some(1000.0));
        assert_eq!(rw.per_cpu_s(), Some(50.0));
    }
}

//! Container log lines counted incrementally: each pass asks `/containers/{id}/logs` with
//! `timestamps=1` and `since=` the newest timestamp already counted, skips lines at or before
//! it (Docker's `since` is inclusive), and adds the rest to per-container totals.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use regex::Regex;

use super::{parse_rfc3339, ContainerLabels, Hostname};
use crate::docker::{demultiplex, Docker, Stream};
use crate::encode::{MetricFamily, MetricType};
use crate::registry::Collector;
use crate::Error;

/// Running totals of one container.
#[derive(Debug, Default, Clone)]
pub(crate) struct LogTotals {
    /// The newest timestamp counted, as Docker wrote it (fixed-width RFC 3339, so ordered).
    pub(crate) newest: Option<String>,
    pub(crate) stdout: u64,
    pub(crate) stderr: u64,
    /// Lines matching any pattern.
    pub(crate) matched_any: u64,
    /// Lines matching each pattern, in the configured order.
    pub(crate) matched: Vec<u64>,
}

impl LogTotals {
    /// Adds the lines of one `/logs?timestamps=1` body that are newer than `newest`.
    pub(crate) fn add(&mut self, body: &[u8], patterns: &[(String, Regex)]) {
        self.matched.resize(patterns.len(), 0);
        let previous = self.newest.clone();
        for (stream, payload) in demultiplex(body) {
            let text = String::from_utf8_lossy(payload);
            for line in text.split_terminator('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line);
                let (timestamp, message) = line.split_once(' ').unwrap_or((line, ""));
                if parse_rfc3339(timestamp).is_none() {
                    continue;
                }
                if previous.as_deref().is_some_and(|seen| timestamp <= seen) {
                    continue;
                }
                if self.newest.as_deref().is_none_or(|newest| timestamp > newest) {
                    self.newest = Some(timestamp.to_string());
                }
                match stream {
                    Stream::Stdout => self.stdout += 1,
                    Stream::Stderr => self.stderr += 1,
                }
                let mut any = false;
                for (count, (_, regex)) in self.matched.iter_mut().zip(patterns) {
                    if regex.is_match(message) {
                        *count += 1;
                        any = true;
                    }
                }
                if any {
                    self.matched_any += 1;
                }
            }
        }
    }

    /// The `since` query value: the newest timestamp as `seconds.nanoseconds`, or `0`.
    pub(crate) fn since(&self) -> String {
        match self.newest.as_deref().and_then(parse_rfc3339) {
            Some((secs, nanos)) => format!("{secs}.{nanos:09}"),
            None => "0".into(),
        }
    }
}

pub(crate) struct LogCollector {
    docker: Docker,
    hostname: Arc<Hostname>,
    patterns: Arc<Vec<(String, Regex)>>,
    totals: Mutex<HashMap<String, LogTotals>>,
}

impl LogCollector {
    pub(crate) fn new(docker: Docker, hostname: Arc<Hostname>, patterns: Arc<Vec<(String, Regex)>>) -> Self {
        LogCollector { docker, hostname, patterns, totals: Mutex::new(HashMap::new()) }
    }
}

#[async_trait::async_trait]
impl Collector for LogCollector {
    fn name(&self) -> &str {
        "docker_logs"
    }

    async fn collect(&self) -> Result<Vec<MetricFamily>, Error> {
        let hostname = self.hostname.get(&self.docker).await?;
        let list = self.docker.get_json("/containers/json").await?;
        let running: Vec<ContainerLabels> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| ContainerLabels::from_list_item(item, &hostname))
            .collect();
        let snapshot = self.totals.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut tasks = tokio::task::JoinSet::new();
        for labels in &running {
            let id = labels.id().to_string();
            let mut totals = snapshot.get(&id).cloned().unwrap_or_default();
            let docker = self.docker.clone();
            let patterns = self.patterns.clone();
            tasks.spawn(async move {
                let path = format!("/containers/{id}/logs?stdout=1&stderr=1&timestamps=1&since={}", totals.since());
                let body = docker.get_bytes(&path).await?;
                totals.add(&body, &patterns);
                Ok::<_, Error>((id, totals))
            });
        }
        let mut fresh = HashMap::new();
        let mut first_error = None;
        let n_asked = running.len();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok((id, totals))) => {
                    fresh.insert(id, totals);
                }
                Ok(Err(err)) => first_error = first_error.or(Some(err)),
                Err(_) => first_error = first_error.or(Some(Error::Join("docker_logs".into()))),
            }
        }
        let n_fresh = fresh.len();
        // A container that failed this pass keeps its old totals; stopped ones are dropped.
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = HashMap::new();
        for labels in &running {
            let id = labels.id();
            if let Some(t) = fresh.remove(id).or_else(|| totals.get(id).cloned()) {
                next.insert(id.to_string(), t);
            }
        }
        *totals = next;
        // Only when no container could be read does the collector fail.
        if let (Some(err), true) = (first_error, n_asked > 0 && n_fresh == 0) {
            return Err(err);
        }

        let new = |name: &str, help: &str| MetricFamily::new(name, help, MetricType::Counter);
        let mut stdout = new("docker_logs_stdout_count", "Number of log lines on stdout.");
        let mut stderr = new("docker_logs_stderr_count", "Number of log lines on stderr.");
        let mut all = new("docker_logs_all_count", "Number of log lines on stdout and stderr.");
        let mut custom = new("docker_logs_custom_count", "Number of log lines matching the configured patterns.");
        let mut per_pattern =
            new("sextant_log_pattern_lines_total", "Number of log lines matching each configured pattern.");
        for labels in &running {
            let Some(t) = totals.get(labels.id()) else { continue };
            let base = labels.with(&[]);
            stdout.push(&base, t.stdout as f64);
            stderr.push(&base, t.stderr as f64);
            all.push(&base, (t.stdout + t.stderr) as f64);
            if !self.patterns.is_empty() {
                custom.push(&base, t.matched_any as f64);
            }
            for ((name, _), count) in self.patterns.iter().zip(&t.matched) {
                per_pattern.push(&labels.with(&[("pattern", name)]), *count as f64);
            }
        }
        Ok(vec![stdout, stderr, all, custom, per_pattern])
    }
}

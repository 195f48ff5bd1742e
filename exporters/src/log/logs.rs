//! Container log lines counted incrementally: each pass asks `/containers/{id}/logs` with
//! `timestamps=1` and `since=` the newest timestamp already counted, skips lines at or before
//! it (Docker's `since` is inclusive), and adds the rest to per-container totals.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use regex::Regex;

use super::docker_metrics::LOGPORTER_COUNTER;
use super::loki::{Loki, LokiStream};
use super::{parse_rfc3339, ContainerLabels, Hostname};
use crate::docker::{demultiplex, Docker, Stream};
use crate::registry::Collector;
use crate::Error;
use sextant_model::exposition::{MetricFamily, MetricType};

/// A line to ship: stream, unix nanoseconds, message.
pub(crate) type NewLine = (Stream, i128, String);

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
    /// With `shipped`, the new lines are also kept there as `(stream, unix ns, message)`.
    pub(crate) fn add(&mut self, body: &[u8], patterns: &[(String, Regex)], mut shipped: Option<&mut Vec<NewLine>>) {
        self.matched.resize(patterns.len(), 0);
        let previous = self.newest.clone();
        for (stream, payload) in demultiplex(body) {
            let text = String::from_utf8_lossy(payload);
            for line in text.split_terminator('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line);
                let (timestamp, message) = line.split_once(' ').unwrap_or((line, ""));
                let Some((secs, nanos)) = parse_rfc3339(timestamp) else { continue };
                if previous.as_deref().is_some_and(|seen| timestamp <= seen) {
                    continue;
                }
                if self.newest.as_deref().is_none_or(|newest| timestamp > newest) {
                    self.newest = Some(timestamp.to_string());
                }
                if let Some(shipped) = shipped.as_deref_mut() {
                    shipped.push((stream, i128::from(secs) * 1_000_000_000 + i128::from(nanos), message.to_string()));
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
    loki: Option<Loki>,
    shipped: AtomicU64,
    ship_failures: AtomicU64,
}

impl LogCollector {
    pub(crate) fn new(
        docker: Docker,
        hostname: Arc<Hostname>,
        patterns: Arc<Vec<(String, Regex)>>,
        loki: Option<Loki>,
    ) -> Self {
        LogCollector {
            docker,
            hostname,
            patterns,
            totals: Mutex::new(HashMap::new()),
            loki,
            shipped: AtomicU64::new(0),
            ship_failures: AtomicU64::new(0),
        }
    }

    /// Pushes the new lines of one pass to Loki, one stream per container and output stream.
    async fn ship(&self, loki: &Loki, running: &[ContainerLabels], new_lines: &HashMap<String, Vec<NewLine>>) {
        let mut streams: Vec<LokiStream> = Vec::new();
        for labels in running {
            let Some(lines) = new_lines.get(labels.id()) else { continue };
            for stream in [Stream::Stdout, Stream::Stderr] {
                let values: Vec<(i128, String)> =
                    lines.iter().filter(|l| l.0 == stream).map(|(_, ns, text)| (*ns, text.clone())).collect();
                if values.is_empty() {
                    continue;
                }
                let mut pairs: Vec<(String, String)> =
                    labels.0.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
                let service = labels
                    .0
                    .iter()
                    .find(|(k, _)| *k == "composeService")
                    .or_else(|| labels.0.iter().find(|(k, _)| *k == "containerName"))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                pairs.push(("service_name".into(), service));
                pairs.push(("stream".into(), stream.as_str().into()));
                streams.push((pairs, values));
            }
        }
        let n_lines: usize = streams.iter().map(|(_, v)| v.len()).sum();
        match loki.push(&streams).await {
            Ok(()) => {
                self.shipped.fetch_add(n_lines as u64, Ordering::Relaxed);
            }
            Err(_) => {
                self.ship_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
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
            let ship = self.loki.is_some();
            tasks.spawn(async move {
                let path = format!("/containers/{id}/logs?stdout=1&stderr=1&timestamps=1&since={}", totals.since());
                let body = docker.get_bytes(&path).await?;
                let mut new_lines = Vec::new();
                totals.add(&body, &patterns, ship.then_some(&mut new_lines));
                Ok::<_, Error>((id, totals, new_lines))
            });
        }
        let mut fresh = HashMap::new();
        let mut new_lines = HashMap::new();
        let mut first_error = None;
        let n_asked = running.len();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok((id, totals, lines))) => {
                    new_lines.insert(id.clone(), lines);
                    fresh.insert(id, totals);
                }
                Ok(Err(err)) => first_error = first_error.or(Some(err)),
                Err(_) => first_error = first_error.or(Some(Error::Join("docker_logs".into()))),
            }
        }
        let n_fresh = fresh.len();
        if let Some(loki) = &self.loki {
            self.ship(loki, &running, &new_lines).await;
        }
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

        let new = |name: &str, help: &str| MetricFamily::new(name, help, LOGPORTER_COUNTER);
        let mut stdout = new("docker_logs_stdout_count", "Number of log lines on stdout.");
        let mut stderr = new("docker_logs_stderr_count", "Number of log lines on stderr.");
        let mut all = new("docker_logs_all_count", "Number of log lines on stdout and stderr.");
        let mut custom = new("docker_logs_custom_count", "Number of log lines matching the configured patterns.");
        let mut per_pattern = MetricFamily::new(
            "sextant_log_pattern_lines_total",
            "Number of log lines matching each configured pattern.",
            MetricType::Counter,
        );
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
        let mut families = vec![stdout, stderr, all, custom, per_pattern];
        if self.loki.is_some() {
            families.push(MetricFamily::single(
                "sextant_log_loki_pushed_lines_total",
                "Log lines pushed to Loki.",
                MetricType::Counter,
                self.shipped.load(Ordering::Relaxed) as f64,
            ));
            families.push(MetricFamily::single(
                "sextant_log_loki_push_failures_total",
                "Pushes to Loki that failed (their lines are dropped).",
                MetricType::Counter,
                self.ship_failures.load(Ordering::Relaxed) as f64,
            ));
        }
        Ok(families)
    }
}

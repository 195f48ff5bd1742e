//! The scrape manager: per job, discovery → relabeling → targets → one scrape loop each;
//! reloads with a new configuration keep loops of unchanged targets running.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sextant_model::{Appendable, Clock, Labels};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, ScrapeConfig};
use crate::discovery::TargetGroup;
use crate::scrape::{ScrapeCounters, ScrapeLoop, StopMode, TargetHandle};
use crate::sd::{discoverers, Discoverer};
use crate::target::split_group;
use crate::Error;

/// How often discoverers are asked whether their source changed (file discovery's change
/// notification).
const CHANGE_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs the scrape loops of a configuration. Dropping it aborts everything; [`ScrapeManager::stop`]
/// ends the loops cleanly (with staleness markers).
pub struct ScrapeManager {
    storage: Arc<dyn Appendable>,
    clock: Arc<dyn Clock>,
    pools: HashMap<String, Pool>,
    counters: Arc<ScrapeCounters>,
    syncs: Arc<AtomicU64>,
    /// Scrape pools created, and reloads of existing pools with a changed configuration.
    pools_created: u64,
    pool_reloads: u64,
    config_reloads: u64,
}

impl std::fmt::Debug for ScrapeManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeManager").field("jobs", &self.pools.keys().collect::<Vec<_>>()).finish()
    }
}

struct Pool {
    config: Arc<ScrapeConfig>,
    commands: mpsc::UnboundedSender<PoolCommand>,
    task: JoinHandle<()>,
    targets: Arc<Mutex<Vec<TargetHandle>>>,
    errors: Arc<Mutex<Vec<String>>>,
    dropped: Arc<Mutex<Vec<Labels>>>,
}

enum PoolCommand {
    Reload(Arc<ScrapeConfig>, Vec<Box<dyn Discoverer>>),
    Stop,
}

impl ScrapeManager {
    pub fn new(storage: Arc<dyn Appendable>, clock: Arc<dyn Clock>) -> ScrapeManager {
        ScrapeManager {
            storage,
            clock,
            pools: HashMap::new(),
            counters: Arc::default(),
            syncs: Arc::default(),
            pools_created: 0,
            pool_reloads: 0,
            config_reloads: 0,
        }
    }

    /// Starts, reloads and stops jobs so that the running set matches `config` (including
    /// `scrape_config_files`). Jobs whose configuration did not change are left alone.
    pub async fn apply_config(&mut self, config: &Config) -> Result<(), Error> {
        let jobs = config.all_scrape_configs()?;
        self.config_reloads += 1;
        let mut wanted: HashMap<String, Arc<ScrapeConfig>> = HashMap::new();
        for job in jobs {
            wanted.insert(job.job_name.clone(), Arc::new(job));
        }
        let gone: Vec<String> = self.pools.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect();
        for name in gone {
            if let Some(pool) = self.pools.remove(&name) {
                let _ = pool.commands.send(PoolCommand::Stop);
                let _ = pool.task.await;
            }
        }
        for (name, job) in wanted {
            let sources = discoverers(&job)?;
            match self.pools.get_mut(&name) {
                Some(pool) if *pool.config == *job => {}
                Some(pool) => {
                    pool.config = Arc::clone(&job);
                    self.pool_reloads += 1;
                    let _ = pool.commands.send(PoolCommand::Reload(job, sources));
                }
                None => {
                    let shared = (Arc::clone(&self.counters), Arc::clone(&self.syncs));
                    let pool = start_pool(job, sources, Arc::clone(&self.storage), Arc::clone(&self.clock), shared);
                    self.pools_created += 1;
                    self.pools.insert(name, pool);
                }
            }
        }
        Ok(())
    }

    /// The active targets of every job, by job name.
    pub fn targets(&self) -> HashMap<String, Vec<TargetHandle>> {
        self.pools
            .iter()
            .map(|(name, pool)| (name.clone(), pool.targets.lock().unwrap_or_else(|e| e.into_inner()).clone()))
            .collect()
    }

    /// The discovered labels of targets relabeling dropped, by job (at most
    /// `keep_dropped_targets` per job when that is set).
    pub fn dropped_targets(&self) -> HashMap<String, Vec<Labels>> {
        self.pools
            .iter()
            .map(|(name, pool)| (name.clone(), pool.dropped.lock().unwrap_or_else(|e| e.into_inner()).clone()))
            .collect()
    }

    /// The last discovery or target errors of every job (failed refreshes, targets whose
    /// labels are invalid after relabeling).
    pub fn errors(&self) -> HashMap<String, Vec<String>> {
        self.pools
            .iter()
            .map(|(name, pool)| (name.clone(), pool.errors.lock().unwrap_or_else(|e| e.into_inner()).clone()))
            .collect()
    }

    /// Self-metrics in the text exposition format, under Prometheus' names.
    pub fn metrics_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let c = &self.counters;
        let load = |v: &AtomicU64| v.load(Ordering::Relaxed);
        let counters = [
            (
                "prometheus_target_scrapes_exceeded_sample_limit_total",
                "Total number of scrapes that hit the sample limit and were rejected.",
                load(&c.exceeded_sample_limit),
            ),
            (
                "prometheus_target_scrapes_exceeded_body_size_limit_total",
                "Total number of scrapes that hit the body size limit.",
                load(&c.exceeded_body_size_limit),
            ),
            (
                "prometheus_target_scrape_pool_exceeded_label_limits_total",
                "Total number of times scrape pools hit the label limits.",
                load(&c.exceeded_label_limits),
            ),
            (
                "prometheus_target_scrapes_sample_out_of_order_total",
                "Total number of samples rejected due to not being out of the expected order.",
                load(&c.sample_out_of_order),
            ),
            (
                "prometheus_target_scrapes_sample_duplicate_timestamp_total",
                "Total number of samples rejected due to duplicate timestamps but different values.",
                load(&c.sample_duplicate_timestamp),
            ),
            (
                "prometheus_target_scrapes_sample_out_of_bounds_total",
                "Total number of samples rejected due to timestamp falling out of the time bounds.",
                load(&c.sample_out_of_bounds),
            ),
            ("sextant_scrape_scrapes_total", "Scrapes attempted.", load(&c.scrapes)),
            ("sextant_scrape_failed_scrapes_total", "Scrapes that failed (up == 0).", load(&c.failed_scrapes)),
            (
                "prometheus_target_scrape_pool_sync_total",
                "Total number of syncs that were executed on a scrape pool.",
                load(&self.syncs),
            ),
            (
                "prometheus_target_scrape_pools_total",
                "Total number of scrape pool creation attempts.",
                self.pools_created,
            ),
            ("prometheus_target_scrape_pool_reloads_total", "Total number of scrape pool reloads.", self.pool_reloads),
            (
                "sextant_scrape_config_reloads_total",
                "Total number of configuration reloads applied to the scrape manager.",
                self.config_reloads,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        let mut jobs: Vec<(&String, &Pool)> = self.pools.iter().collect();
        jobs.sort_by(|a, b| a.0.cmp(b.0));
        let _ = writeln!(
            out,
            "# HELP prometheus_target_scrape_pool_targets Current number of targets in this scrape pool."
        );
        let _ = writeln!(out, "# TYPE prometheus_target_scrape_pool_targets gauge");
        for (name, pool) in &jobs {
            let n = pool.targets.lock().unwrap_or_else(|e| e.into_inner()).len();
            let _ = writeln!(out, "prometheus_target_scrape_pool_targets{{scrape_job=\"{name}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP prometheus_sd_discovered_targets Current number of discovered targets.");
        let _ = writeln!(out, "# TYPE prometheus_sd_discovered_targets gauge");
        for (name, pool) in &jobs {
            let n = pool.targets.lock().unwrap_or_else(|e| e.into_inner()).len()
                + pool.dropped.lock().unwrap_or_else(|e| e.into_inner()).len();
            let _ = writeln!(out, "prometheus_sd_discovered_targets{{config=\"{name}\",name=\"scrape\"}} {n}");
        }
        let _ = writeln!(out, "# HELP sextant_scrape_discovery_errors Current discovery and target errors of a job.");
        let _ = writeln!(out, "# TYPE sextant_scrape_discovery_errors gauge");
        for (name, pool) in &jobs {
            let n = pool.errors.lock().unwrap_or_else(|e| e.into_inner()).len();
            let _ = writeln!(out, "sextant_scrape_discovery_errors{{scrape_job=\"{name}\"}} {n}");
        }
        out
    }

    /// Stops every loop, writing staleness markers, and waits for them.
    pub async fn stop(mut self) {
        for (_, pool) in self.pools.drain() {
            let _ = pool.commands.send(PoolCommand::Stop);
            let _ = pool.task.await;
        }
    }
}

impl Drop for ScrapeManager {
    fn drop(&mut self) {
        for pool in self.pools.values() {
            pool.task.abort();
        }
    }
}

fn start_pool(
    config: Arc<ScrapeConfig>,
    sources: Vec<Box<dyn Discoverer>>,
    storage: Arc<dyn Appendable>,
    clock: Arc<dyn Clock>,
    (counters, syncs): (Arc<ScrapeCounters>, Arc<AtomicU64>),
) -> Pool {
    let (commands, rx) = mpsc::unbounded_channel();
    let targets = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let state = PoolState {
        dropped: Arc::clone(&dropped),
        config: Arc::clone(&config),
        generation: 0,
        storage,
        clock,
        loops: HashMap::new(),
        groups: HashMap::new(),
        targets: Arc::clone(&targets),
        errors: Arc::clone(&errors),
        finishing: Vec::new(),
        counters,
        syncs,
    };
    let task = tokio::spawn(state.run(sources, rx));
    Pool { config, commands, task, targets, errors, dropped }
}

struct RunningLoop {
    generation: u64,
    handle: TargetHandle,
    stop: watch::Sender<Option<StopMode>>,
    task: JoinHandle<()>,
}

struct PoolState {
    config: Arc<ScrapeConfig>,
    generation: u64,
    storage: Arc<dyn Appendable>,
    clock: Arc<dyn Clock>,
    loops: HashMap<u64, RunningLoop>,
    /// Latest groups per (generation, discoverer index).
    groups: HashMap<usize, Vec<TargetGroup>>,
    targets: Arc<Mutex<Vec<TargetHandle>>>,
    errors: Arc<Mutex<Vec<String>>>,
    dropped: Arc<Mutex<Vec<Labels>>>,
    /// Loops told to stop that may still be writing their staleness markers.
    finishing: Vec<JoinHandle<()>>,
    counters: Arc<ScrapeCounters>,
    syncs: Arc<AtomicU64>,
}

type Update = (u64, usize, Result<Vec<TargetGroup>, Error>);

fn spawn_discoverers(
    generation: u64,
    sources: Vec<Box<dyn Discoverer>>,
    updates: &mpsc::UnboundedSender<Update>,
) -> Vec<JoinHandle<()>> {
    sources
        .into_iter()
        .enumerate()
        .map(|(index, source)| {
            let updates = updates.clone();
            tokio::spawn(async move {
                let interval = source.refresh_interval();
                loop {
                    let result = source.refresh().await;
                    if updates.send((generation, index, result)).is_err() {
                        return;
                    }
                    let Some(interval) = interval else { return };
                    let due = tokio::time::Instant::now() + interval;
                    loop {
                        let wake = (tokio::time::Instant::now() + CHANGE_POLL).min(due);
                        tokio::time::sleep_until(wake).await;
                        if tokio::time::Instant::now() >= due || source.changed() {
                            break;
                        }
                    }
                }
            })
        })
        .collect()
}

impl PoolState {
    async fn run(mut self, sources: Vec<Box<dyn Discoverer>>, mut commands: mpsc::UnboundedReceiver<PoolCommand>) {
        let (updates_tx, mut updates) = mpsc::unbounded_channel::<Update>();
        let mut discovery = spawn_discoverers(self.generation, sources, &updates_tx);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(PoolCommand::Reload(config, sources)) => {
                        discovery.iter().for_each(|t| t.abort());
                        self.generation += 1;
                        self.config = config;
                        self.groups.clear();
                        discovery = spawn_discoverers(self.generation, sources, &updates_tx);
                    }
                    Some(PoolCommand::Stop) | None => {
                        discovery.iter().for_each(|t| t.abort());
                        self.stop_all().await;
                        return;
                    }
                },
                Some((generation, index, result)) = updates.recv() => {
                    if generation != self.generation {
                        continue;
                    }
                    match result {
                        Ok(groups) => {
                            self.groups.insert(index, groups);
                        }
                        Err(e) => {
                            // A failed refresh keeps the last good targets, as Prometheus does.
                            self.errors.lock().unwrap_or_else(|e| e.into_inner()).push(e.to_string());
                            continue;
                        }
                    }
                    self.sync();
                }
            }
        }
    }

    /// Starts loops for new targets, stops loops of vanished ones, restarts loops created
    /// under an older configuration.
    fn sync(&mut self) {
        self.finishing.retain(|t| !t.is_finished());
        self.syncs.fetch_add(1, Ordering::Relaxed);
        let mut wanted = HashMap::new();
        let mut errors = Vec::new();
        let mut dropped = Vec::new();
        let mut indexes: Vec<&usize> = self.groups.keys().collect();
        indexes.sort();
        for index in indexes {
            for group in &self.groups[index] {
                let (targets, dropped_here, failures) = split_group(group, &self.config);
                errors.extend(failures.into_iter().map(|e| e.to_string()));
                let keep = self.config.keep_dropped_targets;
                for labels in dropped_here {
                    if keep == 0 || (dropped.len() as u64) < keep {
                        dropped.push(labels);
                    }
                }
                for target in targets {
                    wanted.entry(target.all_labels().stable_hash()).or_insert(target);
                }
            }
        }
        if self.config.target_limit > 0 && wanted.len() as u64 > self.config.target_limit {
            // As Prometheus: past target_limit the whole pool stops scraping.
            errors.push(format!(
                "target_limit exceeded (number of targets: {}, limit: {})",
                wanted.len(),
                self.config.target_limit
            ));
            wanted.clear();
        }
        let stale: Vec<u64> = self.loops.keys().filter(|h| !wanted.contains_key(h)).copied().collect();
        for hash in stale {
            if let Some(running) = self.loops.remove(&hash) {
                let _ = running.stop.send(Some(StopMode::Stale));
                self.finishing.push(running.task);
            }
        }
        for (hash, target) in wanted {
            if let Some(running) = self.loops.get(&hash) {
                if running.generation == self.generation {
                    continue;
                }
                let _ = running.stop.send(Some(StopMode::Quiet));
                if let Some(old) = self.loops.remove(&hash) {
                    self.finishing.push(old.task);
                }
            }
            let scrape_loop = match ScrapeLoop::new(
                target,
                Arc::clone(&self.config),
                Arc::clone(&self.storage),
                Arc::clone(&self.clock),
            ) {
                Ok(l) => l,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            let scrape_loop = scrape_loop.with_counters(Arc::clone(&self.counters));
            let handle = scrape_loop.handle();
            let (stop, stop_rx) = watch::channel(None);
            let task = tokio::spawn(scrape_loop.run(stop_rx));
            self.loops.insert(hash, RunningLoop { generation: self.generation, handle, stop, task });
        }
        *self.targets.lock().unwrap_or_else(|e| e.into_inner()) =
            self.loops.values().map(|l| l.handle.clone()).collect();
        *self.errors.lock().unwrap_or_else(|e| e.into_inner()) = errors;
        *self.dropped.lock().unwrap_or_else(|e| e.into_inner()) = dropped;
    }

    async fn stop_all(&mut self) {
        let loops: Vec<RunningLoop> = self.loops.drain().map(|(_, l)| l).collect();
        for l in &loops {
            let _ = l.stop.send(Some(StopMode::Stale));
        }
        for l in loops {
            let _ = l.task.await;
        }
        for task in self.finishing.drain(..) {
            let _ = task.await;
        }
        self.targets.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

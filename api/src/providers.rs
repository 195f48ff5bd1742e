//! What the API needs from components it does not own: the scrape manager's targets and
//! metadata, the rule manager's groups and alerts. The server wires real implementations;
//! [`NoTargets`] and [`NoRules`] answer with empty lists.

use sextant_model::Labels;

/// One active scrape target, as `/api/v1/targets` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveTarget {
    pub discovered_labels: Labels,
    pub labels: Labels,
    pub scrape_pool: String,
    pub scrape_url: String,
    pub global_url: String,
    /// Empty when the last scrape succeeded.
    pub last_error: String,
    /// Start of the last scrape (ms since the epoch), `None` before the first.
    pub last_scrape_ms: Option<i64>,
    pub last_scrape_duration_seconds: f64,
    /// `up`, `down` or `unknown`.
    pub health: String,
    /// Prometheus duration text, e.g. `15s`.
    pub scrape_interval: String,
    pub scrape_timeout: String,
}

/// A target dropped by relabeling.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedTarget {
    pub discovered_labels: Labels,
    pub scrape_pool: String,
}

/// Metadata of one metric as a target exposed it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetMetadata {
    /// The target's labels (`instance`, `job`, …).
    pub target: Labels,
    pub metric: String,
    /// `counter`, `gauge`, `histogram`, `summary`, `unknown`…
    pub metric_type: String,
    pub help: String,
    pub unit: String,
}

/// The scrape manager's view for the API.
pub trait TargetsProvider: Send + Sync {
    fn scrape_pools(&self) -> Vec<String>;
    fn active_targets(&self) -> Vec<ActiveTarget>;
    fn dropped_targets(&self) -> Vec<DroppedTarget>;
    fn metadata(&self) -> Vec<TargetMetadata>;
    /// The scrape manager's self-metrics in the text exposition format, served on `/metrics`
    /// (`prometheus_target_*`, `prometheus_sd_*`, `sextant_scrape_*`).
    fn metrics_text(&self) -> String {
        String::new()
    }
}

/// No scrape manager: every list is empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTargets;

impl TargetsProvider for NoTargets {
    fn scrape_pools(&self) -> Vec<String> {
        Vec::new()
    }
    fn active_targets(&self) -> Vec<ActiveTarget> {
        Vec::new()
    }
    fn dropped_targets(&self) -> Vec<DroppedTarget> {
        Vec::new()
    }
    fn metadata(&self) -> Vec<TargetMetadata> {
        Vec::new()
    }
}

/// An alert of an alerting rule, as `/api/v1/alerts` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    /// `pending` or `firing`.
    pub state: String,
    pub active_at_ms: i64,
    pub value: f64,
}

/// One rule of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleStatus {
    pub name: String,
    pub query: String,
    pub labels: Labels,
    /// Alerting rules only.
    pub alerting: Option<AlertingRuleStatus>,
    /// `ok`, `err` or `unknown`.
    pub health: String,
    pub last_error: String,
    pub evaluation_seconds: f64,
    pub last_evaluation_ms: Option<i64>,
}

/// The alerting part of a [`RuleStatus`].
#[derive(Debug, Clone, PartialEq)]
pub struct AlertingRuleStatus {
    /// `inactive`, `pending` or `firing`.
    pub state: String,
    pub duration_seconds: f64,
    pub annotations: Labels,
    pub alerts: Vec<Alert>,
}

/// A rule group.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    pub file: String,
    pub interval_seconds: f64,
    pub rules: Vec<RuleStatus>,
    pub evaluation_seconds: f64,
    pub last_evaluation_ms: Option<i64>,
}

/// The rule manager's view for the API.
pub trait RulesProvider: Send + Sync {
    fn rule_groups(&self) -> Vec<RuleGroup>;
    fn alerts(&self) -> Vec<Alert>;
    /// The URLs alerts are posted to (`/api/v1/alertmanagers`); none by default.
    /// The rule manager's and notifier's self-metrics in the text exposition format, served
    /// on `/metrics` (`prometheus_rule_*`, `prometheus_notifications_*`).
    fn metrics_text(&self) -> String {
        String::new()
    }
    fn alertmanagers(&self) -> Vec<String> {
        Vec::new()
    }
}

/// No rule manager: no groups, no alerts.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRules;

impl RulesProvider for NoRules {
    fn rule_groups(&self) -> Vec<RuleGroup> {
        Vec::new()
    }
    fn alerts(&self) -> Vec<Alert> {
        Vec::new()
    }
}

/// What the admin API (`--web.enable-admin-api`) asks of the storage.
pub trait AdminStorage: Send + Sync {
    /// Deletes samples in `[mint, maxt]` of the series matching any of `selectors`.
    fn delete_series(&self, selectors: &[Vec<sextant_model::Matcher>], mint: i64, maxt: i64) -> Result<(), String>;
    /// Removes deleted data from disk (a no-op where deletion is immediate).
    fn clean_tombstones(&self) -> Result<(), String>;
    /// Writes a snapshot named `name` under the data directory's `snapshots/` (persisted
    /// blocks, plus the in-memory head unless `skip_head`) and returns its directory.
    fn snapshot(&self, name: &str, skip_head: bool) -> Result<std::path::PathBuf, String> {
        let _ = (name, skip_head);
        Err("this storage does not support snapshots".to_string())
    }
}

impl AdminStorage for sextant_tsdb::Db {
    fn delete_series(&self, selectors: &[Vec<sextant_model::Matcher>], mint: i64, maxt: i64) -> Result<(), String> {
        for matchers in selectors {
            self.delete(matchers, mint, maxt).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn clean_tombstones(&self) -> Result<(), String> {
        // The head applies deletions at once; blocks with tombstones are rewritten.
        sextant_tsdb::Db::clean_tombstones(self).map(|_| ()).map_err(|e| e.to_string())
    }

    fn snapshot(&self, name: &str, skip_head: bool) -> Result<std::path::PathBuf, String> {
        let dir = self.dir().join("snapshots").join(name);
        if !skip_head {
            sextant_tsdb::Db::snapshot(self, &dir).map_err(|e| format!("create snapshot: {e}"))?;
            return Ok(dir);
        }
        // Persisted blocks only: hard links of their files.
        let io = |e: std::io::Error| format!("create snapshot: {e}");
        std::fs::create_dir_all(&dir).map_err(io)?;
        for block in self.blocks() {
            let target = dir.join(&block.meta().ulid);
            std::fs::create_dir_all(&target).map_err(io)?;
            for entry in std::fs::read_dir(block.dir()).map_err(io)? {
                let entry = entry.map_err(io)?;
                if entry.file_type().map_err(io)?.is_file() {
                    std::fs::hard_link(entry.path(), target.join(entry.file_name())).map_err(io)?;
                }
            }
        }
        Ok(dir)
    }
}

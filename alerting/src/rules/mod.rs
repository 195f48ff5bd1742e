//! Prometheus' rule side: rule files, rule groups and their evaluation.

mod file;
mod group;
mod notify;
mod unittest;

pub use file::{parse_rule_file, RuleDef, RuleFileOptions, RuleGroupDef, RuleGroups, RuleKind};
pub use group::{Alert, AlertState, Group, GroupMetrics, GroupOptions, QueryEngine, Rule, RuleHealth};
pub use notify::{encode_alerts_v2, generator_url, to_postable_alerts, Notification};
pub use unittest::{run_rule_tests, UnitTestOptions, UnitTestReport};

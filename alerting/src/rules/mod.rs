//! Prometheus' rule side: rule files, rule groups and their evaluation.

mod file;
mod group;
mod unittest;

pub use file::{parse_rule_file, RuleDef, RuleFileOptions, RuleGroupDef, RuleGroups, RuleKind};
pub use group::{Alert, AlertState, Group, GroupMetrics, GroupOptions, QueryEngine, Rule, RuleHealth};
pub use unittest::{run_rule_tests, UnitTestOptions, UnitTestReport};

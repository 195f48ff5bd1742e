//! Prometheus' rule side: rule files, rule groups and their evaluation.

mod file;

pub use file::{parse_rule_file, RuleDef, RuleFileOptions, RuleGroupDef, RuleGroups, RuleKind};

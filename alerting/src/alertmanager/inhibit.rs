//! Inhibition (`inhibit/inhibit.go`) as a pure function of the firing alerts.

use sextant_model::Labels;

use super::matcher::Matchers;

/// One `inhibit_rules` entry: while an alert matching `source_matchers` fires, alerts
/// matching `target_matchers` that agree with it on every `equal` label are muted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InhibitRule {
    /// Alertmanager 0.30+ `name`; empty when not set.
    pub name: String,
    /// `source_match` (=) + `source_match_re` (=~, anchored) + `source_matchers`.
    pub source_matchers: Matchers,
    pub target_matchers: Matchers,
    /// Label names that must have equal values (absent = `""`) on source and target.
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// True if `source` (a firing alert) mutes `target` under this rule.
    pub fn mutes(&self, source: &Labels, target: &Labels) -> bool {
        if !self.target_matchers.matches(target) || !self.source_matchers.matches(source) {
            return false;
        }
        let value = |labels: &Labels, name: &str| labels.get(name).unwrap_or("").to_string();
        if self.equal.iter().any(|l| value(source, l) != value(target, l)) {
            return false;
        }
        // An alert matching both sides is not muted by sources that also match the target
        // side: no mutual or self inhibition.
        !(self.source_matchers.matches(target) && self.target_matchers.matches(source))
    }
}

/// The first firing alert that inhibits `target` under any of `rules`, if any. `firing` is
/// every alert that has not resolved (silenced and inhibited alerts included: they still
/// inhibit); it may contain `target` itself.
pub fn inhibited_by<'a>(
    rules: &[InhibitRule],
    firing: impl IntoIterator<Item = &'a Labels> + Clone,
    target: &Labels,
) -> Option<&'a Labels> {
    rules
        .iter()
        .filter(|rule| rule.target_matchers.matches(target))
        .find_map(|rule| firing.clone().into_iter().find(|source| rule.mutes(source, target)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alertmanager::{parse_matchers, ParseMode};

    fn rule(source: &str, target: &str, equal: &[&str]) -> InhibitRule {
        InhibitRule {
            name: String::new(),
            source_matchers: Matchers(parse_matchers(source, ParseMode::Fallback).unwrap()),
            target_matchers: Matchers(parse_matchers(target, ParseMode::Fallback).unwrap()),
            equal: equal.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn inhibits() {
        let rules = [rule("severity=critical", "severity=warning", &["cluster"])];
        let crit = Labels::from_pairs([("severity", "critical"), ("cluster", "a")]);
        let check = |target: &[(&str, &str)], expected: bool| {
            let target = Labels::from_pairs(target.iter().copied());
            assert_eq!(inhibited_by(&rules, [&crit], &target).is_some(), expected, "{target:?}");
        };
        check(&[("severity", "warning"), ("cluster", "a")], true);
        check(&[("severity", "warning"), ("cluster", "b")], false);
        check(&[("severity", "warning")], false);
        check(&[("severity", "critical"), ("cluster", "a")], false);
    }

    #[test]
    fn no_self_inhibition() {
        let rules = [rule("a=~.+", "a=~.+", &[])];
        let x = Labels::from_pairs([("a", "1")]);
        let y = Labels::from_pairs([("a", "2")]);
        assert!(inhibited_by(&rules, [&x, &y], &x).is_none());
    }
}

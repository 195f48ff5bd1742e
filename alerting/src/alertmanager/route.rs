//! The routing tree (`dispatch/route.go`): matching is a pure function of the alert's labels.

use std::collections::{BTreeMap, BTreeSet};

use sextant_model::{Label, Labels};

use super::duration::PromDuration;
use super::gostr;
use super::matcher::Matchers;

/// A route node's effective options (inherited from its parents where not set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOpts {
    pub receiver: String,
    /// Label names to group by (ignored when `group_by_all`).
    pub group_by: BTreeSet<String>,
    /// `group_by: ['...']`: every label of the alert.
    pub group_by_all: bool,
    pub group_wait: PromDuration,
    pub group_interval: PromDuration,
    pub repeat_interval: PromDuration,
    /// Not inherited.
    pub mute_time_intervals: Vec<String>,
    /// Not inherited.
    pub active_time_intervals: Vec<String>,
    /// Route labels (Alertmanager 0.34+), inherited and merged.
    pub labels: BTreeMap<String, String>,
}

impl Default for RouteOpts {
    /// The root's defaults: 30s / 5m / 4h, no grouping.
    fn default() -> RouteOpts {
        RouteOpts {
            receiver: String::new(),
            group_by: BTreeSet::new(),
            group_by_all: false,
            group_wait: PromDuration::from_secs(30),
            group_interval: PromDuration::from_secs(300),
            repeat_interval: PromDuration::from_secs(4 * 3600),
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
            labels: BTreeMap::new(),
        }
    }
}

/// One node of the routing tree.
#[derive(Debug, Clone)]
pub struct Route {
    pub opts: RouteOpts,
    /// `match` + `match_re` (anchored) + `matchers`, sorted by name, value, operator.
    pub matchers: Matchers,
    /// `continue`: keep looking at later siblings after this route matched.
    pub continue_matching: bool,
    pub routes: Vec<Route>,
    /// Alertmanager's post-order index of the node in the tree.
    pub idx: usize,
    key: String,
    id: String,
}

impl Route {
    pub(crate) fn new(
        opts: RouteOpts,
        matchers: Matchers,
        continue_matching: bool,
        routes: Vec<Route>,
        idx: usize,
        key: String,
        id: String,
    ) -> Route {
        Route { opts, matchers, continue_matching, routes, idx, key, id }
    }

    /// The routes an alert goes to, in order: depth first, a matching child ends the scan
    /// of its siblings unless it has `continue`; a node none of whose children match is
    /// itself the result. Empty only when this node's own matchers reject the alert (never
    /// for the root).
    pub fn matches(&self, labels: &Labels) -> Vec<&Route> {
        let mut out = Vec::new();
        self.collect(labels, &mut out);
        out
    }

    fn collect<'a>(&'a self, labels: &Labels, out: &mut Vec<&'a Route>) -> bool {
        if !self.matchers.matches(labels) {
            return false;
        }
        let before = out.len();
        for child in &self.routes {
            if child.collect(labels, out) && !child.continue_matching {
                break;
            }
        }
        if out.len() == before {
            out.push(self);
        }
        true
    }

    /// `Route.Key()`: the matchers of every node from the root, `{}/{env="prod"}`; the
    /// prefix of group keys.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// `Route.ID()`: like [`Route::key`] but with each node's position among its siblings,
    /// `{}/{env="prod"}/0`, unique within the tree.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The alert's labels restricted to the route's grouping (all of them for `...`);
    /// labels the alert lacks are left out.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        if self.opts.group_by_all {
            return labels.clone();
        }
        labels.filter(|l: &Label| self.opts.group_by.contains(&*l.name))
    }

    /// The aggregation group's key, `{}/{env="prod"}:{alertname="x", cluster="a"}`, as in
    /// the webhook's `groupKey`.
    pub fn group_key(&self, labels: &Labels) -> String {
        format!("{}:{}", self.key, label_set_string(&self.group_labels(labels)))
    }

    /// Every node, parents before children.
    pub fn walk<'a>(&'a self, visit: &mut impl FnMut(&'a Route)) {
        visit(self);
        for child in &self.routes {
            child.walk(visit);
        }
    }
}

/// Prometheus' `LabelSet.String()`: `{a="1", b="2"}`, entries Go-quoted and sorted as strings.
pub fn label_set_string(labels: &Labels) -> String {
    let mut parts: Vec<String> = labels.iter().map(|l| format!("{}={}", l.name, gostr::quote(&l.value))).collect();
    parts.sort();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alertmanager::Config;

    const CONFIG: &str = r#"
route:
  receiver: default
  group_by: [alertname]
  routes:
  - matchers: ['team="a"']
    receiver: a
    continue: true
    routes:
    - matchers: [sev=page]
      receiver: a-page
      group_by: ['...']
  - match_re: {team: 'a|b'}
    receiver: ab
    group_wait: 1m
  - receiver: never
    matchers: [team=b]
receivers: [{name: default}, {name: a}, {name: a-page}, {name: ab}, {name: never}]
"#;

    fn route(labels: &[(&str, &str)]) -> Vec<String> {
        let config = Config::parse(CONFIG).unwrap();
        let labels = Labels::from_pairs(labels.iter().copied());
        config
            .route
            .matches(&labels)
            .iter()
            .map(|r| format!("{} {} {} {}", r.opts.receiver, r.id(), r.group_key(&labels), r.opts.group_wait))
            .collect()
    }

    #[test]
    fn routes_like_alertmanager() {
        let check = |labels: &[(&str, &str)], expected: &[&str]| assert_eq!(route(labels), expected, "{labels:?}");
        check(&[("alertname", "x")], &[r#"default {} {}:{alertname="x"} 30s"#]);
        check(
            &[("alertname", "x"), ("team", "a")],
            &[
                r#"a {}/{team="a"}/0 {}/{team="a"}:{alertname="x"} 30s"#,
                r#"ab {}/{team=~"^(?:a|b)$"}/1 {}/{team=~"^(?:a|b)$"}:{alertname="x"} 1m"#,
            ],
        );
        check(
            &[("alertname", "x"), ("team", "a"), ("sev", "page")],
            &[
                r#"a-page {}/{team="a"}/0/{sev="page"}/0 {}/{team="a"}/{sev="page"}:{alertname="x", sev="page", team="a"} 30s"#,
                r#"ab {}/{team=~"^(?:a|b)$"}/1 {}/{team=~"^(?:a|b)$"}:{alertname="x"} 1m"#,
            ],
        );
        check(&[("team", "b")], &[r#"ab {}/{team=~"^(?:a|b)$"}/1 {}/{team=~"^(?:a|b)$"}:{} 1m"#]);
    }

    #[test]
    fn label_set_strings_sort_as_go_does() {
        let labels = Labels::from_pairs([("a", "1"), ("a:b", "q\"")]);
        assert_eq!(label_set_string(&labels), r#"{a:b="q\"", a="1"}"#);
    }
}

//! Go `text/template` for Prometheus' alert templates (with Prometheus' functions) and for
//! Alertmanager's notification templates ([`TemplateSet`] over [`NotificationData`], with
//! Alertmanager's functions and default template names, and `html/template`-style escaping
//! for e-mail HTML).

mod exec;
mod gofmt;
mod parse;

use std::collections::BTreeMap;

use sextant_model::Labels;

pub(crate) use exec::{format_time, query_escape};
pub(crate) use gofmt::format_e_shortest;
pub use gofmt::{format_float as format_go_float, sprintf as go_sprintf, Arg as GoArg};
pub use parse::TemplateError;

/// Runs the instant queries of the `query` template function, at the evaluation timestamp.
pub trait QueryFunc {
    /// Result of `expr` at `t_ms` as samples (a scalar is one sample without labels).
    fn query(&self, expr: &str, t_ms: i64) -> Result<Vec<(Labels, f64)>, String>;
}

/// What a label or annotation template sees: `$labels`/`.Labels`, `$value`/`.Value`,
/// `$externalLabels`/`.ExternalLabels` and `$externalURL`/`.ExternalURL`.
#[derive(Debug, Clone, Default)]
pub struct TemplateData {
    pub labels: Labels,
    pub external_labels: Labels,
    pub external_url: String,
    pub value: f64,
}

const PREDECLARED: [&str; 4] = ["$labels", "$externalLabels", "$externalURL", "$value"];

/// A parsed template, ready to run.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    nodes: Vec<parse::Node>,
    defines: exec::DefineMap,
}

fn add_defines(map: &mut exec::DefineMap, defines: parse::Defines) {
    for (name, body) in defines {
        // As in Go, an empty redefinition does not replace a template.
        if body.is_empty() && map.contains_key(&name) {
            continue;
        }
        map.insert(name, std::sync::Arc::new(body));
    }
}

impl Template {
    /// Parses `text` as Prometheus parses rule templates (`$labels`, `$value`,
    /// `$externalLabels`, `$externalURL` predeclared); `name` appears in errors.
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        let (nodes, defines) = parse::Parser::parse(name, text, &PREDECLARED, &exec::is_function)?;
        let mut map = exec::DefineMap::new();
        add_defines(&mut map, defines);
        Ok(Template { name: name.to_string(), nodes, defines: map })
    }

    /// Runs the template; `query` serves the `query` function at `t_ms` (without it, `query`
    /// is an error).
    pub fn execute(
        &self,
        data: &TemplateData,
        t_ms: i64,
        query: Option<&dyn QueryFunc>,
    ) -> Result<String, TemplateError> {
        exec::execute(&self.name, &self.nodes, &self.defines, data, t_ms, query)
    }
}

/// Expands `text` for an alert the way Prometheus does: errors become the value
/// `<error expanding template: …>`.
pub fn expand_alert_template(
    name: &str,
    text: &str,
    data: &TemplateData,
    t_ms: i64,
    query: Option<&dyn QueryFunc>,
) -> String {
    let template = match Template::parse(name, text) {
        Ok(t) => t,
        Err(e) => return format!("<error expanding template: error parsing template {name}: {e}>"),
    };
    match template.execute(data, t_ms, query) {
        Ok(s) => s,
        Err(e) => format!("<error expanding template: error executing template {name}: {e}>"),
    }
}

pub(crate) fn labels_map(labels: &Labels) -> BTreeMap<String, String> {
    labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect()
}

/// Go's zero `time.Time` (`0001-01-01T00:00:00Z`) in nanoseconds since the epoch.
pub(crate) const GO_ZERO_TIME_NS: i128 = -62_135_596_800_000_000_000;

/// One alert of a notification, as Alertmanager's templates see it (`.Alerts` elements).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertData {
    /// `firing` or `resolved`.
    pub status: String,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub starts_at_ms: i64,
    /// `None` is Go's zero time.
    pub ends_at_ms: Option<i64>,
    pub generator_url: String,
    pub fingerprint: String,
}

/// Alertmanager's template data (`template.Data`): `.Receiver`, `.Status`, `.Alerts` (with
/// `.Firing` and `.Resolved`), `.GroupLabels`, `.CommonLabels`, `.CommonAnnotations` (with
/// `SortedPairs`, `Names`, `Values`, `Remove`) and `.ExternalURL`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotificationData {
    /// The receiver name, escaped like Go's `regexp.QuoteMeta` as Alertmanager does.
    pub receiver: String,
    pub status: String,
    pub alerts: Vec<AlertData>,
    pub group_labels: Vec<(String, String)>,
    pub common_labels: Vec<(String, String)>,
    pub common_annotations: Vec<(String, String)>,
    pub external_url: String,
}

/// Alertmanager's notification templates: named templates (`{{ define }}`) from Sextant's
/// defaults (Alertmanager's names: `__subject`, `slack.default.title`, `email.default.html`,
/// `msteams.default.text`, ...) and user template files, and the texts of a receiver's
/// fields run against them.
///
/// ```
/// use sextant_alerting::template::{NotificationData, TemplateSet};
///
/// let mut set = TemplateSet::with_defaults();
/// set.add("my.tmpl", r#"{{ define "my.title" }}{{ .CommonLabels.alertname | toUpper }}{{ end }}"#)?;
/// let data = NotificationData {
///     status: "firing".into(),
///     group_labels: vec![("alertname".into(), "DiskFull".into())],
///     common_labels: vec![("alertname".into(), "DiskFull".into()), ("severity".into(), "page".into())],
///     ..NotificationData::default()
/// };
/// assert_eq!(set.execute_text(r#"{{ template "my.title" . }}"#, &data)?, "DISKFULL");
/// assert_eq!(set.execute_text(r#"{{ template "slack.default.title" . }}"#, &data)?, "[FIRING:0] DiskFull (page)");
/// # Ok::<(), sextant_alerting::template::TemplateError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    defines: exec::DefineMap,
}

const DEFAULT_TEMPLATES: &str = include_str!("defaults.tmpl");

impl TemplateSet {
    /// The default templates only.
    pub fn with_defaults() -> TemplateSet {
        let mut set = TemplateSet::default();
        set.add("default.tmpl", DEFAULT_TEMPLATES).expect("the default templates parse");
        set
    }

    /// Parses a template file's text and adds its `{{ define }}`s (replacing templates of the
    /// same name, as a later file does in Alertmanager).
    pub fn add(&mut self, name: &str, text: &str) -> Result<(), TemplateError> {
        let (_, defines) = parse::Parser::parse(name, text, &[], &exec::is_notification_function)?;
        add_defines(&mut self.defines, defines);
        Ok(())
    }

    /// Whether a template of that name is defined.
    pub fn contains(&self, name: &str) -> bool {
        self.defines.contains_key(name)
    }

    fn run(&self, text: &str, data: &NotificationData, html: bool) -> Result<String, TemplateError> {
        if text.is_empty() {
            return Ok(String::new());
        }
        let (nodes, defines) = parse::Parser::parse("", text, &[], &exec::is_notification_function)?;
        if defines.is_empty() {
            return exec::execute_notification("", &nodes, &self.defines, data, html);
        }
        let mut map = self.defines.clone();
        add_defines(&mut map, defines);
        exec::execute_notification("", &nodes, &map, data, html)
    }

    /// Runs `text` (a receiver field such as `{{ template "slack.default.title" . }}`) as
    /// Alertmanager's `ExecuteTextString`: an empty text gives an empty string.
    pub fn execute_text(&self, text: &str, data: &NotificationData) -> Result<String, TemplateError> {
        self.run(text, data, false)
    }

    /// Runs `text` as an HTML template (`ExecuteHTMLString`): action output is escaped for
    /// HTML unless it comes from `safeHtml`.
    pub fn execute_html(&self, text: &str, data: &NotificationData) -> Result<String, TemplateError> {
        self.run(text, data, true)
    }
}

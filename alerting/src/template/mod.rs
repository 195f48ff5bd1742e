//! Prometheus' alert templates: the Go `text/template` subset with Prometheus' functions.

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
}

impl Template {
    /// Parses `text` as Prometheus parses rule templates (`$labels`, `$value`,
    /// `$externalLabels`, `$externalURL` predeclared); `name` appears in errors.
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        let nodes = parse::Parser::parse(name, text, &PREDECLARED, &exec::is_function)?;
        Ok(Template { name: name.to_string(), nodes })
    }

    /// Runs the template; `query` serves the `query` function at `t_ms` (without it, `query`
    /// is an error).
    pub fn execute(
        &self,
        data: &TemplateData,
        t_ms: i64,
        query: Option<&dyn QueryFunc>,
    ) -> Result<String, TemplateError> {
        exec::execute(&self.name, &self.nodes, data, t_ms, query)
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

//! The executor: Go's value semantics for the data Prometheus passes, and the functions.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::gofmt::{self, format_float};
use super::parse::{Arg, Node, Pipe, TemplateError};
use super::{labels_map, QueryFunc, TemplateData};

/// Largest output of one template.
const MAX_OUTPUT: usize = 1 << 20;
/// Most steps (nodes and commands run) of one template.
const MAX_STEPS: usize = 1_000_000;

/// Go's `text/template` builtins, in both function sets.
const GO_BUILTINS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "html", "js", "urlquery", "eq", "ne",
    "lt", "le", "gt", "ge", "call",
];

/// Prometheus' alert and console template functions.
const FUNCTIONS: &[&str] = &[
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "stripPort",
    "stripDomain",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "toDuration",
    "pathPrefix",
    "externalURL",
    "parseDuration",
    "now",
    "urlQueryEscape",
];

pub(crate) fn is_function(name: &str) -> bool {
    GO_BUILTINS.contains(&name) || FUNCTIONS.contains(&name)
}

/// Alertmanager's notification template functions.
const NOTIFICATION_FUNCTIONS: &[&str] = &[
    "toUpper",
    "toLower",
    "title",
    "join",
    "match",
    "safeHtml",
    "reReplaceAll",
    "stringSlice",
    "trimSpace",
    "safeUrl",
    "urlUnescape",
    "humanizeDuration",
];

pub(crate) fn is_notification_function(name: &str) -> bool {
    GO_BUILTINS.contains(&name) || NOTIFICATION_FUNCTIONS.contains(&name)
}

/// Most nested `{{template}}` calls.
const MAX_TEMPLATE_DEPTH: usize = 100;

/// The named templates an execution can call.
pub(crate) type DefineMap = std::collections::HashMap<String, std::sync::Arc<Vec<Node>>>;

/// A query result element: labels and value.
type SampleData = (BTreeMap<String, String>, f64);

#[derive(Debug, Clone)]
enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `map[string]string`: labels.
    Labels(Rc<BTreeMap<String, String>>),
    /// `map[string]interface{}` (what `args` returns).
    Map(Rc<BTreeMap<String, Value>>),
    /// A struct: the template data.
    Struct(Rc<Vec<(&'static str, Value)>>),
    /// `queryResult`.
    List(Rc<Vec<Value>>),
    /// `*sample`: labels and value.
    Sample(Rc<SampleData>),
    /// `*time.Time` in nanoseconds since the epoch, UTC.
    Time(i128),
    /// `time.Duration` in nanoseconds.
    Duration(i64),
    /// Alertmanager's `template.KV` (sorted by name).
    Kv(Rc<Vec<(String, String)>>),
    /// Alertmanager's `template.Pairs` (`KV.SortedPairs`).
    Pairs(Rc<Vec<(String, String)>>),
    /// Alertmanager's `template.Alerts`.
    Alerts(Rc<Vec<Value>>),
    /// `safeHtml`'s result: not escaped in HTML templates.
    Safe(String),
}

fn pair_struct(name: &str, value: &str) -> Value {
    Value::Struct(Rc::new(vec![("Name", Value::Str(name.to_string())), ("Value", Value::Str(value.to_string()))]))
}

fn str_list<'a>(items: impl Iterator<Item = &'a String>) -> Value {
    Value::List(Rc::new(items.map(|s| Value::Str(s.clone())).collect()))
}

/// `KV.SortedPairs`: `alertname` first, then by name.
fn sorted_pairs(kv: &[(String, String)]) -> Vec<(String, String)> {
    let mut pairs = kv.to_vec();
    pairs.sort_by(|a, b| (a.0 != "alertname", &a.0).cmp(&(b.0 != "alertname", &b.0)));
    pairs
}

impl Value {
    fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Labels(m) => !m.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Duration(d) => *d != 0,
            Value::Kv(l) | Value::Pairs(l) => !l.is_empty(),
            Value::Alerts(l) => !l.is_empty(),
            Value::Safe(s) => !s.is_empty(),
            Value::Struct(_) | Value::Sample(_) | Value::Time(_) => true,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Labels(_) => "map[string]string",
            Value::Map(_) => "map[string]interface {}",
            Value::Struct(_) => "struct",
            Value::List(_) => "template.queryResult",
            Value::Sample(_) => "*template.sample",
            Value::Time(_) => "*time.Time",
            Value::Duration(_) => "time.Duration",
            Value::Kv(_) => "template.KV",
            Value::Pairs(_) => "template.Pairs",
            Value::Alerts(_) => "template.Alerts",
            Value::Safe(_) => "template.HTML",
        }
    }

    /// `fmt.Sprint` of the value.
    fn print(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_float(*f),
            Value::Str(s) => s.clone(),
            Value::Labels(m) => {
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", parts.join(" "))
            }
            Value::Map(m) => {
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{}", v.print())).collect();
                format!("map[{}]", parts.join(" "))
            }
            Value::Struct(m) => {
                let parts: Vec<String> = m.iter().map(|(_, v)| v.print()).collect();
                format!("{{{}}}", parts.join(" "))
            }
            Value::List(l) => {
                let parts: Vec<String> = l.iter().map(Value::print).collect();
                format!("[{}]", parts.join(" "))
            }
            Value::Sample(s) => {
                let labels = Value::Labels(Rc::new(s.0.clone())).print();
                format!("&{{{labels} {}}}", format_float(s.1))
            }
            Value::Time(ns) => format_time(*ns, "2006-01-02 15:04:05.999999999 -0700 MST"),
            Value::Duration(d) => go_duration_string(*d),
            Value::Kv(l) => {
                let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", parts.join(" "))
            }
            Value::Pairs(l) => {
                let parts: Vec<String> = l.iter().map(|(k, v)| format!("{{{k} {v}}}")).collect();
                format!("[{}]", parts.join(" "))
            }
            Value::Alerts(l) => {
                let parts: Vec<String> = l.iter().map(Value::print).collect();
                format!("[{}]", parts.join(" "))
            }
            Value::Safe(s) => s.clone(),
        }
    }

    fn to_arg(&self) -> gofmt::Arg {
        match self {
            Value::Int(i) => gofmt::Arg::Int(*i),
            Value::Float(f) => gofmt::Arg::Float(*f),
            Value::Str(s) | Value::Safe(s) => gofmt::Arg::Str(s.clone()),
            Value::Bool(b) => gofmt::Arg::Bool(*b),
            other => gofmt::Arg::Other(other.print()),
        }
    }
}

struct Exec<'a> {
    name: &'a str,
    defines: &'a DefineMap,
    /// Escape action output for HTML (Alertmanager's `html` templates).
    html: bool,
    /// Alertmanager's function semantics (`safeHtml` marks instead of escaping).
    notification: bool,
    depth: usize,
    data: &'a TemplateData,
    t_ms: i64,
    query: Option<&'a dyn QueryFunc>,
    vars: Vec<(String, Value)>,
    out: String,
    steps: usize,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) fn execute(
    name: &str,
    nodes: &[Node],
    defines: &DefineMap,
    data: &TemplateData,
    t_ms: i64,
    query: Option<&dyn QueryFunc>,
) -> Result<String, TemplateError> {
    let labels = Value::Labels(Rc::new(labels_map(&data.labels)));
    let external = Value::Labels(Rc::new(labels_map(&data.external_labels)));
    let dot = Value::Struct(Rc::new(vec![
        ("Labels", labels.clone()),
        ("ExternalLabels", external.clone()),
        ("ExternalURL", Value::Str(data.external_url.clone())),
        ("Value", Value::Float(data.value)),
    ]));
    let mut exec = Exec {
        name,
        defines,
        html: false,
        notification: false,
        depth: 0,
        data,
        t_ms,
        query,
        vars: vec![
            ("$".into(), dot.clone()),
            ("$labels".into(), labels),
            ("$externalLabels".into(), external),
            ("$externalURL".into(), Value::Str(data.external_url.clone())),
            ("$value".into(), Value::Float(data.value)),
        ],
        out: String::new(),
        steps: 0,
    };
    exec.list(nodes, &dot)?;
    Ok(exec.out)
}

/// Alertmanager's `template.Data` as a template value.
fn notification_value(data: &super::NotificationData) -> Value {
    let kv = |pairs: &[(String, String)]| {
        let mut v = pairs.to_vec();
        v.sort();
        Value::Kv(Rc::new(v))
    };
    let time = |ms: Option<i64>| Value::Time(ms.map_or(super::GO_ZERO_TIME_NS, |ms| ms as i128 * 1_000_000));
    let alerts = data
        .alerts
        .iter()
        .map(|a| {
            Value::Struct(Rc::new(vec![
                ("Status", Value::Str(a.status.clone())),
                ("Labels", kv(&a.labels)),
                ("Annotations", kv(&a.annotations)),
                ("StartsAt", time(Some(a.starts_at_ms))),
                ("EndsAt", time(a.ends_at_ms)),
                ("GeneratorURL", Value::Str(a.generator_url.clone())),
                ("Fingerprint", Value::Str(a.fingerprint.clone())),
            ]))
        })
        .collect();
    Value::Struct(Rc::new(vec![
        ("Receiver", Value::Str(data.receiver.clone())),
        ("Status", Value::Str(data.status.clone())),
        ("Alerts", Value::Alerts(Rc::new(alerts))),
        ("GroupLabels", kv(&data.group_labels)),
        ("CommonLabels", kv(&data.common_labels)),
        ("CommonAnnotations", kv(&data.common_annotations)),
        ("ExternalURL", Value::Str(data.external_url.clone())),
    ]))
}

/// Runs a notification template over Alertmanager's data; `html` escapes action output the
/// way `html/template` does in text and attribute values.
pub(crate) fn execute_notification(
    name: &str,
    nodes: &[Node],
    defines: &DefineMap,
    data: &super::NotificationData,
    html: bool,
) -> Result<String, TemplateError> {
    let dot = notification_value(data);
    let rule_data = TemplateData { external_url: data.external_url.clone(), ..TemplateData::default() };
    let mut exec = Exec {
        name,
        defines,
        html,
        notification: true,
        depth: 0,
        data: &rule_data,
        t_ms: 0,
        query: None,
        vars: vec![("$".into(), dot.clone())],
        out: String::new(),
        steps: 0,
    };
    exec.list(nodes, &dot)?;
    Ok(exec.out)
}

impl Exec<'_> {
    fn err(&self, msg: impl std::fmt::Display) -> TemplateError {
        TemplateError { message: format!("template: {}: {msg}", self.name) }
    }

    fn step(&mut self) -> Result<(), TemplateError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.err("template ran too long"));
        }
        if self.out.len() > MAX_OUTPUT {
            return Err(self.err("template output too large"));
        }
        Ok(())
    }

    fn list(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, TemplateError> {
        for node in nodes {
            self.step()?;
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(pipe) => {
                    let v = self.pipe(pipe, dot)?;
                    if pipe.decl.is_empty() {
                        let s = match v {
                            Value::Nil if self.html => String::new(),
                            Value::Nil => "<no value>".to_string(),
                            Value::Safe(s) => s,
                            v if self.html => html_escape_plus(&v.print()),
                            v => v.print(),
                        };
                        self.out.push_str(&s);
                    }
                }
                Node::Template(tname, pipe) => {
                    let new_dot = match pipe {
                        Some(p) => {
                            let n_vars = self.vars.len();
                            let v = self.pipe(p, dot)?;
                            self.vars.truncate(n_vars);
                            v
                        }
                        None => Value::Nil,
                    };
                    let Some(body) = self.defines.get(tname).cloned() else {
                        return Err(self.err(format!("no such template \"{tname}\"")));
                    };
                    if self.depth >= MAX_TEMPLATE_DEPTH {
                        return Err(self.err(format!("exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})")));
                    }
                    self.depth += 1;
                    let vars = std::mem::replace(&mut self.vars, vec![("$".to_string(), new_dot.clone())]);
                    let result = self.list(&body, &new_dot);
                    self.vars = vars;
                    self.depth -= 1;
                    result?;
                }
                Node::If(pipe, body, else_body) | Node::With(pipe, body, else_body) => {
                    let n_vars = self.vars.len();
                    let v = self.pipe(pipe, dot)?;
                    let flow = if v.truth() {
                        let new_dot = if matches!(node, Node::With(..)) { v } else { dot.clone() };
                        self.list(body, &new_dot)?
                    } else {
                        self.list(else_body, dot)?
                    };
                    self.vars.truncate(n_vars);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(pipe, body, else_body) => {
                    let n_vars = self.vars.len();
                    let inner = Pipe { decl: Vec::new(), assign: false, cmds: pipe.cmds.clone() };
                    let v = self.pipe(&inner, dot)?;
                    let items: Box<dyn Iterator<Item = (Value, Value)>> = match &v {
                        Value::List(l) => {
                            let l = l.clone();
                            Box::new((0..l.len()).map(move |i| (Value::Int(i as i64), l[i].clone())))
                        }
                        Value::Labels(m) => {
                            let pairs: Vec<_> =
                                m.iter().map(|(k, x)| (Value::Str(k.clone()), Value::Str(x.clone()))).collect();
                            Box::new(pairs.into_iter())
                        }
                        Value::Map(m) => {
                            let pairs: Vec<_> = m.iter().map(|(k, x)| (Value::Str(k.clone()), x.clone())).collect();
                            Box::new(pairs.into_iter())
                        }
                        Value::Int(n) => Box::new((0..*n).map(|i| (Value::Int(i), Value::Int(i)))),
                        Value::Kv(m) => {
                            let pairs: Vec<_> =
                                m.iter().map(|(k, x)| (Value::Str(k.clone()), Value::Str(x.clone()))).collect();
                            Box::new(pairs.into_iter())
                        }
                        Value::Pairs(l) => {
                            let items: Vec<_> = l
                                .iter()
                                .enumerate()
                                .map(|(i, (k, x))| (Value::Int(i as i64), pair_struct(k, x)))
                                .collect();
                            Box::new(items.into_iter())
                        }
                        Value::Alerts(l) => {
                            let l = l.clone();
                            Box::new((0..l.len()).map(move |i| (Value::Int(i as i64), l[i].clone())))
                        }
                        Value::Nil => Box::new(std::iter::empty()),
                        other => return Err(self.err(format!("range can't iterate over {}", other.print()))),
                    };
                    let mut any = false;
                    for (key, item) in items {
                        any = true;
                        self.step()?;
                        self.vars.truncate(n_vars);
                        match pipe.decl.as_slice() {
                            [e] => self.set_var(e, item.clone(), pipe.assign),
                            [k, e] => {
                                self.set_var(k, key, pipe.assign);
                                self.set_var(e, item.clone(), pipe.assign);
                            }
                            _ => {}
                        }
                        match self.list(body, &item)? {
                            Flow::Break => break,
                            Flow::Continue | Flow::Normal => {}
                        }
                    }
                    if !any {
                        self.list(else_body, dot)?;
                    }
                    self.vars.truncate(n_vars);
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn set_var(&mut self, name: &str, v: Value, assign: bool) {
        if assign {
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v;
                return;
            }
        }
        self.vars.push((name.to_string(), v));
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> Result<Value, TemplateError> {
        let mut last: Option<Value> = None;
        for cmd in &pipe.cmds {
            self.step()?;
            last = Some(self.command(cmd, dot, last)?);
        }
        let v = last.unwrap_or(Value::Nil);
        if let Some(name) = pipe.decl.first() {
            self.set_var(name, v.clone(), pipe.assign);
        }
        Ok(v)
    }

    fn command(&mut self, cmd: &[Arg], dot: &Value, piped: Option<Value>) -> Result<Value, TemplateError> {
        let Some(first) = cmd.first() else { return Ok(Value::Nil) };
        if let Arg::Func(name) = first {
            // and/or evaluate lazily.
            if (name == "and" || name == "or") && piped.is_none() {
                if cmd.len() < 2 {
                    return Err(self.err(format!("wrong number of args for {name}: want at least 1 got 0")));
                }
                let mut v = Value::Nil;
                for a in &cmd[1..] {
                    v = self.arg(a, dot)?;
                    if v.truth() != (name == "and") {
                        return Ok(v);
                    }
                }
                return Ok(v);
            }
            let mut args = Vec::with_capacity(cmd.len());
            for a in &cmd[1..] {
                args.push(self.arg(a, dot)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            return self.call(name, args);
        }
        // A method call with arguments: (t).Format "layout".
        if let Some(method_args) = cmd.get(1..).filter(|rest| !rest.is_empty() || piped.is_some()) {
            let (target, method) = match first {
                Arg::Field(path) if !path.is_empty() => {
                    (self.walk(dot.clone(), &path[..path.len() - 1])?, path[path.len() - 1].clone())
                }
                Arg::Var(v, path) if !path.is_empty() => {
                    (self.walk(self.var(v)?, &path[..path.len() - 1])?, path[path.len() - 1].clone())
                }
                Arg::Pipe(p, path) if !path.is_empty() => {
                    let base = self.pipe(p, dot)?;
                    (self.walk(base, &path[..path.len() - 1])?, path[path.len() - 1].clone())
                }
                _ => {
                    let v = self.arg(first, dot)?.print();
                    return Err(self.err(format!("can't give argument to non-function {v}")));
                }
            };
            let mut args = Vec::new();
            for a in method_args {
                args.push(self.arg(a, dot)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            return self.method(&target, &method, args);
        }
        self.arg(first, dot)
    }

    fn var(&self, name: &str) -> Result<Value, TemplateError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.err(format!("undefined variable: {name}")))
    }

    fn arg(&mut self, arg: &Arg, dot: &Value) -> Result<Value, TemplateError> {
        Ok(match arg {
            Arg::Field(path) => self.walk(dot.clone(), path)?,
            Arg::Var(v, path) => {
                let base = self.var(v)?;
                self.walk(base, path)?
            }
            Arg::Func(name) => self.call(name, Vec::new())?,
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(f) => Value::Float(*f),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Nil => Value::Nil,
            Arg::Pipe(p, path) => {
                let base = self.pipe(p, dot)?;
                self.walk(base, path)?
            }
        })
    }

    fn walk(&self, mut v: Value, path: &[String]) -> Result<Value, TemplateError> {
        for field in path {
            v = match &v {
                Value::Labels(m) => Value::Str(m.get(field).cloned().unwrap_or_default()),
                Value::Kv(m) => match field.as_str() {
                    "SortedPairs" => Value::Pairs(Rc::new(sorted_pairs(m))),
                    "Names" => str_list(m.iter().map(|(k, _)| k)),
                    "Values" => str_list(m.iter().map(|(_, v)| v)),
                    _ => Value::Str(m.iter().find(|(k, _)| k == field).map(|(_, v)| v.clone()).unwrap_or_default()),
                },
                Value::Pairs(l) => match field.as_str() {
                    "Names" => str_list(l.iter().map(|(k, _)| k)),
                    "Values" => str_list(l.iter().map(|(_, v)| v)),
                    _ => return Err(self.err(format!("can't evaluate field {field} in type template.Pairs"))),
                },
                Value::Alerts(l) => match field.as_str() {
                    "Firing" | "Resolved" => {
                        let want = if field == "Firing" { "firing" } else { "resolved" };
                        let status = |a: &Value| match a {
                            Value::Struct(s) => {
                                s.iter().any(|(k, v)| *k == "Status" && matches!(v, Value::Str(x) if x == want))
                            }
                            _ => false,
                        };
                        Value::Alerts(Rc::new(l.iter().filter(|a| status(a)).cloned().collect()))
                    }
                    _ => return Err(self.err(format!("can't evaluate field {field} in type template.Alerts"))),
                },
                Value::Map(m) => m.get(field).cloned().unwrap_or(Value::Nil),
                Value::Struct(s) => match s.iter().find(|(k, _)| *k == field.as_str()) {
                    Some((_, x)) => x.clone(),
                    None => return Err(self.err(format!("can't evaluate field {field} in type struct"))),
                },
                Value::Sample(s) => match field.as_str() {
                    "Labels" => Value::Labels(Rc::new(s.0.clone())),
                    "Value" => Value::Float(s.1),
                    _ => return Err(self.err(format!("can't evaluate field {field} in type *template.sample"))),
                },
                Value::Time(_) | Value::Duration(_) => self.method(&v, field, Vec::new())?,
                Value::Nil => return Err(self.err(format!("nil pointer evaluating interface {{}}.{field}"))),
                other => {
                    return Err(self.err(format!("can't evaluate field {field} in type {}", other.type_name())));
                }
            };
        }
        Ok(v)
    }

    fn method(&self, target: &Value, name: &str, args: Vec<Value>) -> Result<Value, TemplateError> {
        match (target, name, args.as_slice()) {
            (Value::Time(ns), "Format", [Value::Str(layout)]) => Ok(Value::Str(format_time(*ns, layout))),
            (Value::Time(ns), "Unix", []) => Ok(Value::Int(ns.div_euclid(1_000_000_000) as i64)),
            (Value::Time(ns), "UnixMilli", []) => Ok(Value::Int(ns.div_euclid(1_000_000) as i64)),
            (Value::Time(ns), "String", []) => Ok(Value::Str(Value::Time(*ns).print())),
            (Value::Time(ns), "UTC", []) => Ok(Value::Time(*ns)),
            (Value::Time(ns), "IsZero", []) => Ok(Value::Bool(*ns == super::GO_ZERO_TIME_NS)),
            (Value::Duration(d), "Seconds", []) => Ok(Value::Float(*d as f64 / 1e9)),
            (Value::Duration(d), "String", []) => Ok(Value::Str(go_duration_string(*d))),
            (Value::Kv(m), "Remove", [Value::List(keys)]) => {
                let keys: Vec<String> = keys.iter().map(Value::print).collect();
                Ok(Value::Kv(Rc::new(m.iter().filter(|(k, _)| !keys.contains(k)).cloned().collect())))
            }
            _ => Err(self.err(format!("can't evaluate field {name} in type {}", target.type_name()))),
        }
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, TemplateError> {
        let want = |n: usize| -> Result<(), TemplateError> {
            if args.len() != n {
                return Err(self.err(format!("wrong number of args for {name}: want {n} got {}", args.len())));
            }
            Ok(())
        };
        let string = |v: &Value| -> Result<String, TemplateError> {
            match v {
                Value::Str(s) | Value::Safe(s) => Ok(s.clone()),
                other => Err(self.err(format!(
                    "error calling {name}: wrong type for value; expected string; got {}",
                    other.type_name()
                ))),
            }
        };
        let float = |v: &Value| -> Result<f64, TemplateError> {
            to_float(v).map_err(|e| self.err(format!("error calling {name}: {e}")))
        };
        let sample = |v: &Value| -> Result<Rc<SampleData>, TemplateError> {
            match v {
                Value::Sample(s) => Ok(s.clone()),
                other => Err(self.err(format!(
                    "error calling {name}: wrong type for value; expected *template.sample; got {}",
                    other.type_name()
                ))),
            }
        };
        Ok(match name {
            "and" | "or" => {
                let mut v = Value::Nil;
                for a in args {
                    let t = a.truth();
                    v = a;
                    if t != (name == "and") {
                        break;
                    }
                }
                v
            }
            "not" => {
                want(1)?;
                Value::Bool(!args[0].truth())
            }
            "len" => {
                want(1)?;
                Value::Int(match &args[0] {
                    Value::Str(s) => s.len(),
                    Value::Labels(m) => m.len(),
                    Value::Map(m) => m.len(),
                    Value::List(l) | Value::Alerts(l) => l.len(),
                    Value::Kv(l) | Value::Pairs(l) => l.len(),
                    other => return Err(self.err(format!("error calling len: len of type {}", other.type_name()))),
                } as i64)
            }
            "index" => {
                if args.is_empty() {
                    return Err(self.err("wrong number of args for index: want at least 1 got 0"));
                }
                let mut v = args[0].clone();
                for key in &args[1..] {
                    v = match (&v, key) {
                        (Value::Labels(m), Value::Str(k)) => Value::Str(m.get(k).cloned().unwrap_or_default()),
                        (Value::Kv(m), Value::Str(k)) => {
                            Value::Str(m.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone()).unwrap_or_default())
                        }
                        (Value::Map(m), Value::Str(k)) => m.get(k).cloned().unwrap_or(Value::Nil),
                        (Value::List(l) | Value::Alerts(l), Value::Int(i)) => {
                            match usize::try_from(*i).ok().and_then(|i| l.get(i)) {
                                Some(x) => x.clone(),
                                None => return Err(self.err(format!("error calling index: index out of range: {i}"))),
                            }
                        }
                        (Value::Str(s), Value::Int(i)) => {
                            match usize::try_from(*i).ok().and_then(|i| s.as_bytes().get(i)) {
                                Some(b) => Value::Int(*b as i64),
                                None => return Err(self.err(format!("error calling index: index out of range: {i}"))),
                            }
                        }
                        (target, _) => {
                            return Err(self
                                .err(format!("error calling index: can't index item of type {}", target.type_name())))
                        }
                    };
                }
                v
            }
            "slice" => {
                if args.is_empty() {
                    return Err(self.err("wrong number of args for slice: want at least 1 got 0"));
                }
                let bound = |v: &Value| match v {
                    Value::Int(i) if *i >= 0 => Ok(*i as usize),
                    _ => Err(self.err("error calling slice: cannot index slice/array with nil")),
                };
                match &args[0] {
                    Value::Str(s) => {
                        let lo = args.get(1).map(bound).transpose()?.unwrap_or(0);
                        let hi = args.get(2).map(bound).transpose()?.unwrap_or(s.len());
                        match s.get(lo..hi) {
                            Some(x) if lo <= hi => Value::Str(x.to_string()),
                            _ => return Err(self.err(format!("error calling slice: index out of range: {hi}"))),
                        }
                    }
                    Value::List(l) => {
                        let lo = args.get(1).map(bound).transpose()?.unwrap_or(0);
                        let hi = args.get(2).map(bound).transpose()?.unwrap_or(l.len());
                        match l.get(lo..hi) {
                            Some(x) if lo <= hi => Value::List(Rc::new(x.to_vec())),
                            _ => return Err(self.err(format!("error calling slice: index out of range: {hi}"))),
                        }
                    }
                    other => {
                        return Err(
                            self.err(format!("error calling slice: can't slice item of type {}", other.type_name()))
                        )
                    }
                }
            }
            "print" => Value::Str(go_sprint(&args)),
            "println" => {
                let parts: Vec<String> = args.iter().map(Value::print).collect();
                Value::Str(format!("{}\n", parts.join(" ")))
            }
            "printf" => {
                if args.is_empty() {
                    return Err(self.err("wrong number of args for printf: want at least 1 got 0"));
                }
                let format = string(&args[0])?;
                let rest: Vec<gofmt::Arg> = args[1..].iter().map(Value::to_arg).collect();
                Value::Str(gofmt::sprintf(&format, &rest))
            }
            "safeHtml" if self.notification => {
                want(1)?;
                Value::Safe(string(&args[0])?)
            }
            "html" | "safeHtml" => Value::Str(html_escape(&go_sprint(&args))),
            "join" => {
                want(2)?;
                let sep = string(&args[0])?;
                let items: Vec<String> = match &args[1] {
                    Value::List(l) => l.iter().map(&string).collect::<Result<_, _>>()?,
                    other => {
                        return Err(self.err(format!(
                            "error calling join: wrong type for value; expected []string; got {}",
                            other.type_name()
                        )))
                    }
                };
                Value::Str(items.join(&sep))
            }
            "stringSlice" => {
                Value::List(Rc::new(args.iter().map(|v| string(v).map(Value::Str)).collect::<Result<Vec<_>, _>>()?))
            }
            "trimSpace" => {
                want(1)?;
                Value::Str(string(&args[0])?.trim().to_string())
            }
            "safeUrl" => {
                want(1)?;
                Value::Safe(string(&args[0])?)
            }
            "urlUnescape" => {
                want(1)?;
                Value::Str(url_unescape(&string(&args[0])?))
            }
            "js" => Value::Str(js_escape(&go_sprint(&args))),
            "urlquery" | "urlQueryEscape" => Value::Str(query_escape(&go_sprint(&args))),
            "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
                if args.len() < 2 {
                    return Err(self.err(format!("error calling {name}: missing argument for comparison")));
                }
                if name == "eq" {
                    let mut any = false;
                    for b in &args[1..] {
                        if compare(&args[0], b).map_err(|e| self.err(format!("error calling eq: {e}")))?
                            == Some(std::cmp::Ordering::Equal)
                        {
                            any = true;
                        }
                    }
                    return Ok(Value::Bool(any));
                }
                want(2)?;
                let ord = compare(&args[0], &args[1]).map_err(|e| self.err(format!("error calling {name}: {e}")))?;
                let Some(ord) = ord else { return Ok(Value::Bool(name == "ne")) };
                Value::Bool(match name {
                    "ne" => ord.is_ne(),
                    "lt" => ord.is_lt(),
                    "le" => ord.is_le(),
                    "gt" => ord.is_gt(),
                    _ => ord.is_ge(),
                })
            }
            "call" => return Err(self.err("error calling call: non-function")),
            "query" => {
                want(1)?;
                let expr = string(&args[0])?;
                let Some(q) = self.query else {
                    return Err(self.err("error calling query: no query engine"));
                };
                let result = q.query(&expr, self.t_ms).map_err(|e| self.err(format!("error calling query: {e}")))?;
                Value::List(Rc::new(result.iter().map(|(l, v)| Value::Sample(Rc::new((labels_map(l), *v)))).collect()))
            }
            "first" => {
                want(1)?;
                match &args[0] {
                    Value::List(l) => match l.first() {
                        Some(x) => x.clone(),
                        None => return Err(self.err("error calling first: first() called on vector with no elements")),
                    },
                    other => {
                        return Err(self.err(format!(
                            "error calling first: wrong type for value; expected template.queryResult; got {}",
                            other.type_name()
                        )))
                    }
                }
            }
            "label" => {
                want(2)?;
                let name = string(&args[0])?;
                Value::Str(sample(&args[1])?.0.get(&name).cloned().unwrap_or_default())
            }
            "value" => {
                want(1)?;
                Value::Float(sample(&args[0])?.1)
            }
            "strvalue" => {
                want(1)?;
                Value::Str(sample(&args[0])?.0.get("__value__").cloned().unwrap_or_default())
            }
            "args" => {
                let map: BTreeMap<String, Value> =
                    args.into_iter().enumerate().map(|(i, v)| (format!("arg{i}"), v)).collect();
                Value::Map(Rc::new(map))
            }
            "reReplaceAll" => {
                want(3)?;
                let (pattern, repl, text) = (string(&args[0])?, string(&args[1])?, string(&args[2])?);
                let re =
                    regex::Regex::new(&pattern).map_err(|e| self.err(format!("error calling reReplaceAll: {e}")))?;
                Value::Str(re.replace_all(&text, repl.as_str()).into_owned())
            }
            "match" => {
                want(2)?;
                let (pattern, text) = (string(&args[0])?, string(&args[1])?);
                let re = regex::Regex::new(&pattern).map_err(|e| self.err(format!("error calling match: {e}")))?;
                Value::Bool(re.is_match(&text))
            }
            "title" => {
                want(1)?;
                Value::Str(go_title(&string(&args[0])?))
            }
            "toUpper" => {
                want(1)?;
                Value::Str(map_chars(&string(&args[0])?, true))
            }
            "toLower" => {
                want(1)?;
                Value::Str(map_chars(&string(&args[0])?, false))
            }
            "graphLink" | "tableLink" => {
                want(1)?;
                let tab = if name == "graphLink" { 0 } else { 1 };
                Value::Str(format!("/graph?g0.expr={}&g0.tab={tab}", query_escape(&string(&args[0])?)))
            }
            "sortByLabel" => {
                want(2)?;
                let label = string(&args[0])?;
                let Value::List(l) = &args[1] else {
                    return Err(self.err(format!(
                        "error calling sortByLabel: wrong type for value; expected template.queryResult; got {}",
                        args[1].type_name()
                    )));
                };
                let mut items: Vec<Value> = l.as_ref().clone();
                let key = |v: &Value| match v {
                    Value::Sample(s) => s.0.get(&label).cloned().unwrap_or_default(),
                    _ => String::new(),
                };
                items.sort_by_key(key);
                Value::List(Rc::new(items))
            }
            "stripPort" => {
                want(1)?;
                let s = string(&args[0])?;
                Value::Str(split_host_port(&s).map(|(h, _)| h).unwrap_or(s))
            }
            "stripDomain" => {
                want(1)?;
                let s = string(&args[0])?;
                let (host, port) = match split_host_port(&s) {
                    Some((h, p)) => (h, Some(p)),
                    None => (s.clone(), None),
                };
                if host.parse::<std::net::IpAddr>().is_ok() {
                    Value::Str(s)
                } else {
                    let short = host.split('.').next().unwrap_or("").to_string();
                    Value::Str(match port {
                        Some(p) => join_host_port(&short, &p),
                        None => short,
                    })
                }
            }
            "humanize" => {
                want(1)?;
                Value::Str(humanize(float(&args[0])?))
            }
            "humanize1024" => {
                want(1)?;
                Value::Str(humanize1024(float(&args[0])?))
            }
            "humanizeDuration" => {
                want(1)?;
                Value::Str(humanize_duration(float(&args[0])?))
            }
            "humanizePercentage" => {
                want(1)?;
                Value::Str(format!("{}%", gofmt::format_g(float(&args[0])? * 100.0, Some(4))))
            }
            "humanizeTimestamp" => {
                want(1)?;
                let v = float(&args[0])?;
                if v.is_nan() || v.is_infinite() {
                    Value::Str(gofmt::format_g(v, Some(4)))
                } else {
                    let ns = float_to_time(v).map_err(|e| self.err(format!("error calling humanizeTimestamp: {e}")))?;
                    Value::Str(Value::Time(ns).print())
                }
            }
            "toTime" => {
                want(1)?;
                let v = float(&args[0])?;
                Value::Time(float_to_time(v).map_err(|e| self.err(format!("error calling toTime: {e}")))?)
            }
            "toDuration" => {
                want(1)?;
                let v = float(&args[0])?;
                Value::Duration((v * 1e9).round() as i64)
            }
            "now" => {
                want(0)?;
                Value::Float(self.t_ms as f64 / 1000.0)
            }
            "pathPrefix" => {
                want(0)?;
                Value::Str(url_path(&self.data.external_url))
            }
            "externalURL" => {
                want(0)?;
                Value::Str(self.data.external_url.clone())
            }
            "parseDuration" => {
                want(1)?;
                let s = string(&args[0])?;
                match crate::alertmanager::PromDuration::parse(&s) {
                    Some(d) => Value::Float(d.as_millis() as f64 / 1000.0),
                    None => {
                        return Err(
                            self.err(format!("error calling parseDuration: not a valid duration string: \"{s}\""))
                        )
                    }
                }
            }
            other => return Err(self.err(format!("function \"{other}\" not defined"))),
        })
    }
}

fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => {
            parse_go_float(s).ok_or_else(|| format!("strconv.ParseFloat: parsing \"{s}\": invalid syntax"))
        }
        Value::Duration(d) => Ok(*d as f64 / 1e9),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => return Some(if s.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY }),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    s.replace('_', "").parse().ok()
}

fn go_sprint(args: &[Value]) -> String {
    // Sprint puts spaces between operands when neither side is a string.
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&a.print());
    }
    out
}

fn compare(a: &Value, b: &Value) -> Result<Option<std::cmp::Ordering>, String> {
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Str(x) | Value::Safe(x), Value::Str(y) | Value::Safe(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Nil, Value::Nil) => Some(std::cmp::Ordering::Equal),
        _ => return Err("incompatible types for comparison".into()),
    })
}

fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return gofmt::format_g(v, Some(4));
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", gofmt::format_g(v, Some(4)))
}

fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return gofmt::format_g(v, Some(4));
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", gofmt::format_g(v, Some(4)))
}

fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return gofmt::format_g(v, Some(4));
    }
    if v == 0.0 {
        return format!("{}s", gofmt::format_g(v, Some(4)));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        // Go's int64 conversion of an out-of-range float gives the minimum int64.
        let d = if v >= i64::MAX as f64 { i64::MIN } else { v as i64 };
        let (seconds, minutes, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", gofmt::format_g(v, Some(4)));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", gofmt::format_g(v, Some(4)))
}

/// Seconds as a float to ns, truncated to ms as `model.TimeFromUnixNano` does.
fn float_to_time(v: f64) -> Result<i128, String> {
    if v.is_nan() || v.is_infinite() {
        return Err("value is NaN or Inf".into());
    }
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            format_float(v)
        ));
    }
    let ms = (ns as i64) / 1_000_000;
    Ok(ms as i128 * 1_000_000)
}

/// Go's `strings.ToUpper`/`ToLower`: rune by rune, keeping runes without a one-rune mapping.
fn map_chars(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            let mut m: Vec<char> = if upper { c.to_uppercase().collect() } else { c.to_lowercase().collect() };
            if m.len() == 1 {
                m.pop().unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

fn go_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_';
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `html/template`'s escaping of text and attribute values (also `+`).
fn html_escape_plus(s: &str) -> String {
    html_escape(s).replace('+', "&#43;")
}

/// Go's `url.QueryUnescape`, keeping malformed escapes as they are.
fn url_unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn js_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    match rest.find('/') {
        Some(i) => rest[i..].split(['?', '#']).next().unwrap_or("").to_string(),
        None => String::new(),
    }
}

/// Go's `net.SplitHostPort`, or `None` where it fails.
fn split_host_port(s: &str) -> Option<(String, String)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        if port.contains(':') {
            return None;
        }
        return Some((host.to_string(), port.to_string()));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') || host.contains('[') || host.contains(']') || port.contains(']') {
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn go_duration_string(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let s = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", trim_frac(u as f64 / 1e3))
    } else if u < 1_000_000_000 {
        format!("{}ms", trim_frac(u as f64 / 1e6))
    } else {
        let total_s = u / 1_000_000_000;
        let frac = u % 1_000_000_000;
        let (h, m, sec) = (total_s / 3600, (total_s / 60) % 60, total_s % 60);
        let mut secs = sec.to_string();
        if frac > 0 {
            let f = format!("{frac:09}");
            secs.push('.');
            secs.push_str(f.trim_end_matches('0'));
        }
        if h > 0 {
            format!("{h}h{m}m{secs}s")
        } else if m > 0 {
            format!("{m}m{secs}s")
        } else {
            format!("{secs}s")
        }
    };
    if neg {
        format!("-{s}")
    } else {
        s
    }
}

fn trim_frac(v: f64) -> String {
    let s = format!("{v:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Civil date of days since 1970-01-01.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday"];

/// Go's `time.Time.Format` in UTC, for the common layout elements.
pub(crate) fn format_time(ns: i128, layout: &str) -> String {
    let secs = ns.div_euclid(1_000_000_000) as i64;
    let frac = ns.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, mo, d) = civil(days);
    let (h, mi, s) = (sod / 3600, (sod / 60) % 60, sod % 60);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let mut out = String::new();
    let mut rest = layout;
    let elements: &[&str] = &[
        "January",
        "Monday",
        "2006",
        "-07:00",
        "-0700",
        "Z07:00",
        "Z0700",
        ".000000000",
        ".999999999",
        ".000000",
        ".999999",
        ".000",
        ".999",
        "Jan",
        "Mon",
        "MST",
        "01",
        "02",
        "03",
        "04",
        "05",
        "06",
        "15",
        "_2",
        "PM",
        "pm",
        "1",
        "2",
        "3",
        "4",
        "5",
    ];
    'outer: while !rest.is_empty() {
        for e in elements {
            if let Some(after) = rest.strip_prefix(e) {
                let piece = match *e {
                    "January" => MONTHS[mo as usize - 1].to_string(),
                    "Jan" => MONTHS[mo as usize - 1][..3].to_string(),
                    "Monday" => weekday.to_string(),
                    "Mon" => weekday[..3].to_string(),
                    "2006" => format!("{y:04}"),
                    "06" => format!("{:02}", y.rem_euclid(100)),
                    "01" => format!("{mo:02}"),
                    "1" => mo.to_string(),
                    "02" => format!("{d:02}"),
                    "_2" => format!("{d:>2}"),
                    "2" => d.to_string(),
                    "15" => format!("{h:02}"),
                    "03" => format!("{:02}", if h % 12 == 0 { 12 } else { h % 12 }),
                    "3" => (if h % 12 == 0 { 12 } else { h % 12 }).to_string(),
                    "04" => format!("{mi:02}"),
                    "4" => mi.to_string(),
                    "05" => format!("{s:02}"),
                    "5" => s.to_string(),
                    "PM" => (if h >= 12 { "PM" } else { "AM" }).to_string(),
                    "pm" => (if h >= 12 { "pm" } else { "am" }).to_string(),
                    "MST" => "UTC".to_string(),
                    "-0700" => "+0000".to_string(),
                    "-07:00" => "+00:00".to_string(),
                    "Z07:00" | "Z0700" => "Z".to_string(),
                    e if e.starts_with(".0") => {
                        let digits = e.len() - 1;
                        format!(".{}", &format!("{frac:09}")[..digits])
                    }
                    e => {
                        let digits = e.len() - 1;
                        let f = format!("{frac:09}");
                        let f = f[..digits].trim_end_matches('0');
                        if f.is_empty() {
                            String::new()
                        } else {
                            format!(".{f}")
                        }
                    }
                };
                out.push_str(&piece);
                rest = after;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanizers() {
        type Case = (fn(f64) -> String, f64, &'static str);
        let cases: [Case; 12] = [
            (humanize, 1234567.891, "1.235M"),
            (humanize, 0.5, "500m"),
            (humanize, 0.0, "0"),
            (humanize1024, 1234567.891, "1.177Mi"),
            (humanize1024, 0.5, "0.5"),
            (humanize1024, 3600.0, "3.516ki"),
            (humanize_duration, 1234567.891, "14d 6h 56m 7s"),
            (humanize_duration, 0.5, "500ms"),
            (humanize_duration, 3600.0, "1h 0m 0s"),
            (humanize_duration, 60.0, "1m 0s"),
            (humanize_duration, 1.234, "1.234s"),
            (humanize_duration, 0.0001, "100us"),
        ];
        for (f, v, want) in cases {
            assert_eq!(f(v), want, "{v}");
        }
    }

    #[test]
    fn times() {
        let ns = |ms: i64| ms as i128 * 1_000_000;
        assert_eq!(Value::Time(ns(1_234_567_891)).print(), "1970-01-15 06:56:07.891 +0000 UTC");
        assert_eq!(Value::Time(ns(3_600_000)).print(), "1970-01-01 01:00:00 +0000 UTC");
        assert_eq!(format_time(ns(1_435_065_584_128), "2006-01-02"), "2015-06-23");
        assert_eq!(format_time(ns(1_435_065_584_128), "Mon Jan _2 15:04:05.000"), "Tue Jun 23 13:19:44.128");
    }

    #[test]
    fn host_port() {
        assert_eq!(split_host_port("host.example.com:9100"), Some(("host.example.com".into(), "9100".into())));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1".into(), "80".into())));
        assert_eq!(split_host_port("::1"), None);
        assert_eq!(split_host_port("host"), None);
    }
}

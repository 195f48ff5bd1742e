//! `alertmanager.yml`: decoding (strict, unknown fields rejected) and Alertmanager's
//! load-time validation, with its messages.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Deref;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::duration::PromDuration;
use super::inhibit::InhibitRule;
use super::matcher::{self, compile_anchored, is_valid_label_name, MatchType, Matcher, Matchers, ParseMode};
use super::receivers::{check_url, validate_receiver, HttpClientConfig, Receiver};
use super::route::{Route, RouteOpts};
use super::timeinterval::{self, NamedTimeInterval, RawNamed};
use crate::Error;

/// A YAML scalar read as a string, as Go's YAML decoder does for string fields (`2` → `"2"`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Scalar(pub String);

impl Deref for Scalar {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

type S = Option<Scalar>;

fn set(s: &S) -> bool {
    s.as_ref().is_some_and(|v| !v.is_empty())
}

/// The `global:` block. Unset fields are `None`; the `*_or_default` methods give the value
/// Alertmanager uses.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    #[serde(default)]
    pub resolve_timeout: S,
    #[serde(default)]
    pub http_config: Option<HttpClientConfig>,
    #[serde(default)]
    pub jira_api_url: S,
    #[serde(default)]
    pub smtp_from: S,
    #[serde(default)]
    pub smtp_hello: S,
    #[serde(default)]
    pub smtp_smarthost: S,
    #[serde(default)]
    pub smtp_auth_username: S,
    #[serde(default)]
    pub smtp_auth_password: S,
    #[serde(default)]
    pub smtp_auth_password_file: S,
    #[serde(default)]
    pub smtp_auth_secret: S,
    #[serde(default)]
    pub smtp_auth_secret_file: S,
    #[serde(default)]
    pub smtp_auth_identity: S,
    #[serde(default)]
    pub smtp_require_tls: Option<bool>,
    #[serde(default)]
    pub smtp_tls_config: Option<Value>,
    #[serde(default)]
    pub smtp_force_implicit_tls: Option<bool>,
    #[serde(default)]
    pub slack_api_url: S,
    #[serde(default)]
    pub slack_api_url_file: S,
    #[serde(default)]
    pub slack_app_token: S,
    #[serde(default)]
    pub slack_app_token_file: S,
    #[serde(default)]
    pub slack_app_url: S,
    #[serde(default)]
    pub pagerduty_url: S,
    #[serde(default)]
    pub opsgenie_api_url: S,
    #[serde(default)]
    pub opsgenie_api_key: S,
    #[serde(default)]
    pub opsgenie_api_key_file: S,
    #[serde(default)]
    pub wechat_api_url: S,
    #[serde(default)]
    pub wechat_api_secret: S,
    #[serde(default)]
    pub wechat_api_secret_file: S,
    #[serde(default)]
    pub wechat_api_corp_id: S,
    #[serde(default)]
    pub victorops_api_url: S,
    #[serde(default)]
    pub victorops_api_key: S,
    #[serde(default)]
    pub victorops_api_key_file: S,
    #[serde(default)]
    pub telegram_api_url: S,
    #[serde(default)]
    pub telegram_bot_token: S,
    #[serde(default)]
    pub telegram_bot_token_file: S,
    #[serde(default)]
    pub webex_api_url: S,
    #[serde(default)]
    pub rocketchat_api_url: S,
    #[serde(default)]
    pub rocketchat_token: S,
    #[serde(default)]
    pub rocketchat_token_file: S,
    #[serde(default)]
    pub rocketchat_token_id: S,
    #[serde(default)]
    pub rocketchat_token_id_file: S,
    #[serde(default)]
    pub mattermost_webhook_url: S,
    #[serde(default)]
    pub mattermost_webhook_url_file: S,
}

fn or_default(v: &S, default: &str) -> String {
    v.as_ref().map(|s| s.0.clone()).unwrap_or_else(|| default.to_string())
}

impl GlobalConfig {
    /// `resolve_timeout`, default 5m.
    pub fn resolve_timeout(&self) -> PromDuration {
        self.resolve_timeout.as_deref().and_then(PromDuration::parse).unwrap_or(PromDuration::from_secs(300))
    }
    /// `smtp_hello`, default `localhost`.
    pub fn smtp_hello(&self) -> String {
        or_default(&self.smtp_hello, "localhost")
    }
    /// `smtp_require_tls`, default true.
    pub fn smtp_require_tls(&self) -> bool {
        self.smtp_require_tls.unwrap_or(true)
    }
    pub fn pagerduty_url(&self) -> String {
        or_default(&self.pagerduty_url, "https://events.pagerduty.com/v2/enqueue")
    }
    pub fn opsgenie_api_url(&self) -> String {
        or_default(&self.opsgenie_api_url, "https://api.opsgenie.com/")
    }
    pub fn wechat_api_url(&self) -> String {
        or_default(&self.wechat_api_url, "https://qyapi.weixin.qq.com/cgi-bin/")
    }
    pub fn victorops_api_url(&self) -> String {
        or_default(&self.victorops_api_url, "https://alert.victorops.com/integrations/generic/20131114/alert/")
    }
    pub fn telegram_api_url(&self) -> String {
        or_default(&self.telegram_api_url, "https://api.telegram.org")
    }
    pub fn webex_api_url(&self) -> String {
        or_default(&self.webex_api_url, "https://webexapis.com/v1/messages")
    }
    pub fn rocketchat_api_url(&self) -> String {
        or_default(&self.rocketchat_api_url, "https://open.rocket.chat/")
    }
    pub fn slack_app_url(&self) -> String {
        or_default(&self.slack_app_url, "https://slack.com/api/chat.postMessage")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "config")]
struct RawConfig {
    #[serde(default)]
    global: Option<GlobalConfig>,
    #[serde(default)]
    route: Option<RawRoute>,
    #[serde(default)]
    inhibit_rules: Option<Vec<RawInhibitRule>>,
    #[serde(default)]
    receivers: Option<Vec<Receiver>>,
    #[serde(default)]
    templates: Option<Vec<String>>,
    #[serde(default)]
    mute_time_intervals: Option<Vec<RawNamed>>,
    #[serde(default)]
    time_intervals: Option<Vec<RawNamed>>,
    // HEAD-only blocks, accepted and not used yet.
    #[serde(default, rename = "tracing")]
    _tracing: Option<Value>,
    #[serde(default, rename = "event_recorder")]
    _event_recorder: Option<Value>,
}

type LabelMap = BTreeMap<String, Option<Scalar>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "route")]
struct RawRoute {
    #[serde(default)]
    receiver: S,
    #[serde(default)]
    group_by: Option<Vec<Scalar>>,
    #[serde(default, rename = "match")]
    match_eq: Option<LabelMap>,
    #[serde(default)]
    match_re: Option<LabelMap>,
    #[serde(default)]
    matchers: Option<Vec<Scalar>>,
    #[serde(default)]
    mute_time_intervals: Option<Vec<Scalar>>,
    #[serde(default)]
    active_time_intervals: Option<Vec<Scalar>>,
    #[serde(default, rename = "continue")]
    continue_matching: Option<bool>,
    #[serde(default)]
    routes: Option<Vec<RawRoute>>,
    #[serde(default)]
    group_wait: S,
    #[serde(default)]
    group_interval: S,
    #[serde(default)]
    repeat_interval: S,
    #[serde(default)]
    labels: Option<BTreeMap<String, Scalar>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "inhibit rule")]
struct RawInhibitRule {
    #[serde(default)]
    name: S,
    #[serde(default)]
    source_match: Option<LabelMap>,
    #[serde(default)]
    source_match_re: Option<LabelMap>,
    #[serde(default)]
    source_matchers: Option<Vec<Scalar>>,
    #[serde(default)]
    target_match: Option<LabelMap>,
    #[serde(default)]
    target_match_re: Option<LabelMap>,
    #[serde(default)]
    target_matchers: Option<Vec<Scalar>>,
    #[serde(default)]
    equal: Option<Vec<Scalar>>,
}

/// A loaded, validated `alertmanager.yml`.
#[derive(Debug, Clone)]
pub struct Config {
    pub global: GlobalConfig,
    /// The routing tree with every node's effective options.
    pub route: Route,
    pub inhibit_rules: Vec<InhibitRule>,
    /// Receivers with global defaults applied to their integrations.
    pub receivers: Vec<Receiver>,
    /// Template file globs, as written.
    pub templates: Vec<String>,
    /// The deprecated top-level `mute_time_intervals:`.
    pub mute_time_intervals: Vec<NamedTimeInterval>,
    pub time_intervals: Vec<NamedTimeInterval>,
    /// The text the configuration was loaded from.
    pub original: String,
}

/// How matcher strings in the file are parsed; Alertmanager's default is fallback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    pub matcher_mode: ParseMode,
}

impl Config {
    /// Loads a configuration as `alertmanager --config.file` does (fallback matcher parsing).
    pub fn parse(yaml: &str) -> Result<Config, Error> {
        Config::parse_with(yaml, LoadOptions::default())
    }

    /// Loads a configuration with explicit options.
    pub fn parse_with(yaml: &str, options: LoadOptions) -> Result<Config, Error> {
        let doc: Value = serde_yaml_ng::from_str(yaml)?;
        if doc.is_null() {
            return Err(Error::config("no route provided in config"));
        }
        let raw: RawConfig = serde_yaml_ng::from_str(yaml)?;
        build(raw, yaml, options)
    }

    /// Makes the relative paths in the file relative to `dir` (the configuration file's
    /// directory), as Alertmanager does after loading a file: template globs and the file
    /// paths of every `http_config`. Integration `*_file` fields stay as written, as upstream.
    pub fn resolve_paths(&mut self, dir: &std::path::Path) {
        for t in &mut self.templates {
            super::receivers::join_dir(dir, t);
        }
        if let Some(h) = &mut self.global.http_config {
            h.set_directory(dir);
        }
        for r in &mut self.receivers {
            r.set_directory(dir);
        }
    }

    /// The notification templates: the defaults, then every file matching the `templates:`
    /// globs (`*` and `?` in the file name; files in name order), later definitions
    /// replacing earlier ones. A glob matching nothing is fine; an unreadable or invalid
    /// file is an error, as in Alertmanager.
    pub fn load_templates(&self) -> Result<crate::template::TemplateSet, Error> {
        let mut set = crate::template::TemplateSet::with_defaults();
        for pattern in &self.templates {
            for path in glob_files(pattern) {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| Error::config(format!("reading template {}: {e}", path.display())))?;
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
                set.add(&name, &text).map_err(|e| Error::config(e.to_string()))?;
            }
        }
        Ok(set)
    }

    /// The named interval (from `time_intervals` or `mute_time_intervals`).
    pub fn time_interval(&self, name: &str) -> Option<&NamedTimeInterval> {
        self.time_intervals.iter().chain(&self.mute_time_intervals).find(|t| t.name == name)
    }

    /// The receiver called `name`.
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, Error> {
    Err(Error::config(msg))
}

fn quote(s: &str) -> String {
    super::gostr::quote(s)
}

/// A parsed route node before options are inherited.
struct NodeConfig {
    receiver: String,
    group_by: Option<Vec<String>>,
    group_by_all: bool,
    matchers: Vec<Matcher>,
    has_matchers: bool,
    continue_matching: bool,
    group_wait: Option<PromDuration>,
    group_interval: Option<PromDuration>,
    repeat_interval: Option<PromDuration>,
    mute_time_intervals: Vec<String>,
    active_time_intervals: Vec<String>,
    labels: BTreeMap<String, String>,
    routes: Vec<NodeConfig>,
}

fn parse_duration(s: &S) -> Result<Option<PromDuration>, Error> {
    match s {
        None => Ok(None),
        Some(v) => match PromDuration::parse(v) {
            Some(d) => Ok(Some(d)),
            None => err(format!("not a valid duration string: {}", quote(v))),
        },
    }
}

fn equality_matchers(map: &Option<LabelMap>) -> Result<Vec<Matcher>, Error> {
    let mut out = Vec::new();
    for (name, value) in map.iter().flatten() {
        if !is_valid_label_name(name) {
            return err(format!("invalid label name {}", quote(name)));
        }
        out.push(Matcher::new(MatchType::Equal, name.clone(), value.clone().unwrap_or_default().0)?);
    }
    Ok(out)
}

/// `match_re` values become matchers on the anchored source, as Alertmanager keeps it.
fn regex_matchers(map: &Option<LabelMap>) -> Result<Vec<Matcher>, Error> {
    let mut out = Vec::new();
    for (name, value) in map.iter().flatten() {
        if !is_valid_label_name(name) {
            return err(format!("invalid label name {}", quote(name)));
        }
        let Some(value) = value else {
            return err(format!("invalid regexp value for {}", quote(name)));
        };
        compile_anchored(value).map_err(|e| Error::config(e.message()))?;
        out.push(Matcher::new(MatchType::Regexp, name.clone(), format!("^(?:{})$", value.0))?);
    }
    Ok(out)
}

fn parsed_matchers(lines: &Option<Vec<Scalar>>, mode: ParseMode) -> Result<Vec<Matcher>, Error> {
    let mut out = Vec::new();
    for line in lines.iter().flatten() {
        out.extend(matcher::parse_matchers(line, mode).map_err(|e| Error::config(e.message()))?);
    }
    Ok(out)
}

fn names(list: &Option<Vec<Scalar>>) -> Vec<String> {
    list.iter().flatten().map(|s| s.0.clone()).collect()
}

fn build_node(raw: RawRoute, mode: ParseMode) -> Result<NodeConfig, Error> {
    let mut matchers = equality_matchers(&raw.match_eq)?;
    matchers.extend(regex_matchers(&raw.match_re)?);
    let parsed = parsed_matchers(&raw.matchers, mode)?;
    let has_matchers = !matchers.is_empty() || !parsed.is_empty();
    matchers.extend(parsed);
    matchers.sort();

    let mut routes = Vec::new();
    for child in raw.routes.unwrap_or_default() {
        routes.push(build_node(child, mode)?);
    }

    let mut labels = BTreeMap::new();
    for (name, value) in raw.labels.unwrap_or_default() {
        if !is_valid_label_name(&name) {
            return err(format!("invalid label name {} in route labels", quote(&name)));
        }
        labels.insert(name, value.0);
    }

    let mut group_by_all = false;
    let mut group_by = Vec::new();
    for l in names(&raw.group_by) {
        if l == "..." {
            group_by_all = true;
        } else if !is_valid_label_name(&l) {
            return err(format!("invalid label name {} in group_by list", quote(&l)));
        } else {
            group_by.push(l);
        }
    }
    if !group_by.is_empty() && group_by_all {
        return err("cannot have wildcard group_by (`...`) and other labels at the same time");
    }
    let mut seen = BTreeSet::new();
    for l in &group_by {
        if !seen.insert(l) {
            return err(format!("duplicated label {} in group_by", quote(l)));
        }
    }
    let group_interval = parse_duration(&raw.group_interval)?;
    if group_interval == Some(PromDuration(0)) {
        return err("group_interval cannot be zero");
    }
    let repeat_interval = parse_duration(&raw.repeat_interval)?;
    if repeat_interval == Some(PromDuration(0)) {
        return err("repeat_interval cannot be zero");
    }
    Ok(NodeConfig {
        receiver: raw.receiver.map(|s| s.0).unwrap_or_default(),
        // 0.25 semantics: an explicit `group_by: []` is the same as no group_by (inherit);
        // 0.31+ makes it "one group for everything".
        group_by: if group_by.is_empty() { None } else { Some(group_by) },
        group_by_all,
        matchers,
        has_matchers,
        continue_matching: raw.continue_matching.unwrap_or(false),
        group_wait: parse_duration(&raw.group_wait)?,
        group_interval,
        repeat_interval,
        mute_time_intervals: names(&raw.mute_time_intervals),
        active_time_intervals: names(&raw.active_time_intervals),
        labels,
        routes,
    })
}

fn build_inhibit_rule(raw: RawInhibitRule, mode: ParseMode) -> Result<InhibitRule, Error> {
    let mut source = equality_matchers(&raw.source_match)?;
    let mut target = equality_matchers(&raw.target_match)?;
    source.extend(regex_matchers(&raw.source_match_re)?);
    target.extend(regex_matchers(&raw.target_match_re)?);
    source.extend(parsed_matchers(&raw.source_matchers, mode)?);
    target.extend(parsed_matchers(&raw.target_matchers, mode)?);
    let equal = names(&raw.equal);
    for l in &equal {
        if !is_valid_label_name(l) {
            return err(format!("invalid label name {} in equal list", quote(l)));
        }
    }
    Ok(InhibitRule {
        name: raw.name.map(|s| s.0).unwrap_or_default(),
        source_matchers: Matchers(source),
        target_matchers: Matchers(target),
        equal,
    })
}

fn check_host_port(s: &S) -> Result<(), Error> {
    let Some(s) = s.as_deref().filter(|s| !s.is_empty()) else { return Ok(()) };
    let port = if let Some(rest) = s.strip_prefix('[') {
        match rest.split_once(']') {
            Some((_, after)) => after.strip_prefix(':'),
            None => return err(format!("address {s}: missing ']' in address")),
        }
    } else {
        match s.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => return err(format!("address {s}: too many colons in address")),
            Some((_, port)) => Some(port),
            None => None,
        }
    };
    match port {
        None => err(format!("address {s}: missing port in address")),
        Some("") => err(format!("address {}: port cannot be empty", quote(s))),
        Some(_) => Ok(()),
    }
}

fn check_global(g: &GlobalConfig) -> Result<(), Error> {
    parse_duration(&g.resolve_timeout)?;
    check_host_port(&g.smtp_smarthost)?;
    for u in [
        &g.jira_api_url,
        &g.slack_api_url,
        &g.slack_app_url,
        &g.pagerduty_url,
        &g.opsgenie_api_url,
        &g.wechat_api_url,
        &g.victorops_api_url,
        &g.telegram_api_url,
        &g.webex_api_url,
        &g.rocketchat_api_url,
        &g.mattermost_webhook_url,
    ] {
        if let Some(u) = u.as_deref().filter(|u| !u.is_empty()) {
            check_url(u)?;
        }
    }
    let pairs: [(&S, &S, &str); 10] = [
        (&g.slack_app_token, &g.slack_app_token_file, "slack_app_token"),
        (&g.slack_api_url, &g.slack_api_url_file, "slack_api_url"),
        (&g.opsgenie_api_key, &g.opsgenie_api_key_file, "opsgenie_api_key"),
        (&g.victorops_api_key, &g.victorops_api_key_file, "victorops_api_key"),
        (&g.telegram_bot_token, &g.telegram_bot_token_file, "telegram_bot_token"),
        (&g.smtp_auth_password, &g.smtp_auth_password_file, "smtp_auth_password"),
        (&g.rocketchat_token, &g.rocketchat_token_file, "rocketchat_token"),
        (&g.rocketchat_token_id, &g.rocketchat_token_id_file, "rocketchat_token_id"),
        (&g.smtp_auth_secret, &g.smtp_auth_secret_file, "smtp_auth_secret"),
        (&g.wechat_api_secret, &g.wechat_api_secret_file, "wechat_api_secret"),
    ];
    for (i, (a, b, name)) in pairs.iter().enumerate() {
        // Rocketchat's token and token_id are pointers upstream: set-but-empty counts as set.
        let a_set = if (6..=7).contains(&i) { a.is_some() } else { set(a) };
        if a_set && set(b) {
            return err(format!("at most one of {name} & {name}_file must be configured"));
        }
        if i == 1
            && (set(&g.slack_app_token) || set(&g.slack_app_token_file))
            && (set(&g.slack_api_url) || set(&g.slack_api_url_file))
            && g.slack_api_url.as_deref() != Some(g.slack_app_url().as_str())
        {
            return err(
                "at most one of slack_app_token/slack_app_token_file & slack_api_url/slack_api_url_file must be configured",
            );
        }
    }
    if g.mattermost_webhook_url.is_some() && set(&g.mattermost_webhook_url_file) {
        return err("at most one of mattermost_webhook_url & mattermost_webhook_url_file must be configured");
    }
    Ok(())
}

fn or(local: &mut S, global: &S) {
    if !set(local) {
        local.clone_from(global);
    }
}

fn fill(local: &mut S, value: String) {
    if !set(local) {
        *local = Some(Scalar(value));
    }
}

/// Global defaults and the checks that need them (the receiver loop of `Config.UnmarshalYAML`).
fn apply_globals(rcv: &mut Receiver, g: &GlobalConfig) -> Result<(), Error> {
    let http = |h: &mut Option<HttpClientConfig>| {
        if h.is_none() {
            h.clone_from(&g.http_config);
        }
    };
    for c in &mut rcv.webhook_configs {
        let Some(c) = c else { return err("missing webhook config") };
        http(&mut c.http_config);
    }
    for c in &mut rcv.email_configs {
        let Some(c) = c else { return err("missing email config") };
        if c.tls_config.is_none() {
            c.tls_config.clone_from(&g.smtp_tls_config);
        }
        or(&mut c.smarthost, &g.smtp_smarthost);
        check_host_port(&c.smarthost)?;
        if !set(&c.smarthost) {
            return err("no global SMTP smarthost set");
        }
        or(&mut c.from, &g.smtp_from);
        if !set(&c.from) {
            return err("no global SMTP from set");
        }
        fill(&mut c.hello, g.smtp_hello());
        or(&mut c.auth_username, &g.smtp_auth_username);
        if !set(&c.auth_password) && !set(&c.auth_password_file) {
            c.auth_password.clone_from(&g.smtp_auth_password);
            c.auth_password_file.clone_from(&g.smtp_auth_password_file);
        }
        if !set(&c.auth_secret) && !set(&c.auth_secret_file) {
            c.auth_secret.clone_from(&g.smtp_auth_secret);
            c.auth_secret_file.clone_from(&g.smtp_auth_secret_file);
        }
        or(&mut c.auth_identity, &g.smtp_auth_identity);
        if c.require_tls.is_none() {
            c.require_tls = Some(g.smtp_require_tls());
        }
        if c.force_implicit_tls.is_none() {
            c.force_implicit_tls = g.smtp_force_implicit_tls;
        }
    }
    for c in rcv.slack_configs.iter_mut() {
        let c = c.get_or_insert_with(Default::default);
        fill(&mut c.app_url, g.slack_app_url());
        let local_auth = c.http_config.as_ref().is_some_and(|h| h.authorization.is_some());
        if !set(&c.app_token) && !set(&c.app_token_file) && !local_auth && !set(&c.api_url) {
            c.app_token.clone_from(&g.slack_app_token);
            c.app_token_file.clone_from(&g.slack_app_token_file);
        }
        if !set(&c.api_url) && !set(&c.api_url_file) {
            c.api_url.clone_from(&g.slack_api_url);
            c.api_url_file.clone_from(&g.slack_api_url_file);
        }
        if !set(&c.api_url) && !set(&c.api_url_file) && !set(&c.app_token) && !set(&c.app_token_file) {
            return err("no Slack API URL nor App token set either inline or in a file");
        }
        http(&mut c.http_config);
        if (set(&c.app_token) || set(&c.app_token_file)) && local_auth {
            return err("http authorization can't be set when using Slack App tokens");
        }
    }
    for c in &mut rcv.pushover_configs {
        let Some(c) = c else { return err("missing pushover config") };
        http(&mut c.http_config);
    }
    for c in &mut rcv.pagerduty_configs {
        let Some(c) = c else { return err("missing pagerduty config") };
        http(&mut c.http_config);
        fill(&mut c.url, g.pagerduty_url());
    }
    for c in &mut rcv.incidentio_configs {
        let Some(c) = c else { return err("missing incidentio config") };
        http(&mut c.http_config);
    }
    for c in rcv.opsgenie_configs.iter_mut() {
        let c = c.get_or_insert_with(Default::default);
        http(&mut c.http_config);
        fill(&mut c.api_url, g.opsgenie_api_url());
        or(&mut c.api_key, &g.opsgenie_api_key);
        or(&mut c.api_key_file, &g.opsgenie_api_key_file);
        if !set(&c.api_key) && !set(&c.api_key_file) {
            return err("no global OpsGenie API Key set either inline or in a file");
        }
    }
    for c in rcv.wechat_configs.iter_mut() {
        let c = c.get_or_insert_with(Default::default);
        http(&mut c.http_config);
        fill(&mut c.api_url, g.wechat_api_url());
        if !set(&c.api_secret) && !set(&c.api_secret_file) {
            if !set(&g.wechat_api_secret) && !set(&g.wechat_api_secret_file) {
                return err("no global Wechat Api Secret set either inline or in a file");
            }
            c.api_secret.clone_from(&g.wechat_api_secret);
            c.api_secret_file.clone_from(&g.wechat_api_secret_file);
        }
        or(&mut c.corp_id, &g.wechat_api_corp_id);
        if !set(&c.corp_id) {
            return err("no global Wechat CorpID set");
        }
    }
    for c in &mut rcv.victorops_configs {
        let Some(c) = c else { return err("missing victorops config") };
        http(&mut c.http_config);
        fill(&mut c.api_url, g.victorops_api_url());
        or(&mut c.api_key, &g.victorops_api_key);
        or(&mut c.api_key_file, &g.victorops_api_key_file);
        if !set(&c.api_key) && !set(&c.api_key_file) {
            return err("no global VictorOps API Key set");
        }
    }
    for c in &mut rcv.sns_configs {
        let Some(c) = c else { return err("missing sns config") };
        http(&mut c.http_config);
    }
    for c in &mut rcv.telegram_configs {
        let Some(c) = c else { return err("missing telegram config") };
        http(&mut c.http_config);
        fill(&mut c.api_url, g.telegram_api_url());
        if !set(&c.bot_token) && !set(&c.bot_token_file) {
            if !set(&g.telegram_bot_token) && !set(&g.telegram_bot_token_file) {
                return err("missing bot_token or bot_token_file on telegram_config");
            }
            c.bot_token.clone_from(&g.telegram_bot_token);
            c.bot_token_file.clone_from(&g.telegram_bot_token_file);
        }
    }
    for c in &mut rcv.discord_configs {
        let Some(c) = c else { return err("missing discord config") };
        http(&mut c.http_config);
    }
    for c in &mut rcv.webex_configs {
        let Some(c) = c else { return err("missing webex config") };
        http(&mut c.http_config);
        fill(&mut c.api_url, g.webex_api_url());
    }
    for c in &mut rcv.msteams_configs {
        let Some(c) = c else { return err("missing msteams config") };
        http(&mut c.http_config);
    }
    for c in &mut rcv.msteamsv2_configs {
        let Some(c) = c else { return err("missing msteamsv2 config") };
        http(&mut c.http_config);
    }
    for c in &mut rcv.jira_configs {
        let Some(c) = c else { return err("missing jira config") };
        http(&mut c.http_config);
        or(&mut c.api_url, &g.jira_api_url);
        if !set(&c.api_url) {
            return err("no global Jira Cloud URL set");
        }
    }
    for c in rcv.rocketchat_configs.iter_mut() {
        let c = c.get_or_insert_with(Default::default);
        http(&mut c.http_config);
        fill(&mut c.api_url, g.rocketchat_api_url());
        if c.token_id.is_none() {
            c.token_id.clone_from(&g.rocketchat_token_id);
        }
        or(&mut c.token_id_file, &g.rocketchat_token_id_file);
        if c.token_id.is_none() && !set(&c.token_id_file) {
            return err("no global Rocketchat TokenID set either inline or in a file");
        }
        if c.token.is_none() {
            c.token.clone_from(&g.rocketchat_token);
        }
        or(&mut c.token_file, &g.rocketchat_token_file);
        if c.token.is_none() && !set(&c.token_file) {
            return err("no global Rocketchat Token set either inline or in a file");
        }
    }
    for c in &mut rcv.mattermost_configs {
        let Some(c) = c else { return err("missing mattermost config") };
        http(&mut c.http_config);
        if c.webhook_url.is_none() && !set(&c.webhook_url_file) {
            if g.mattermost_webhook_url.is_none() && !set(&g.mattermost_webhook_url_file) {
                return err("missing webhook_url or webhook_url_file on mattermost_config");
            }
            c.webhook_url.clone_from(&g.mattermost_webhook_url);
            c.webhook_url_file.clone_from(&g.mattermost_webhook_url_file);
        }
    }
    Ok(())
}

fn check_receivers_used(node: &NodeConfig, receivers: &BTreeSet<&str>) -> Result<(), Error> {
    for child in &node.routes {
        check_receivers_used(child, receivers)?;
    }
    if !node.receiver.is_empty() && !receivers.contains(node.receiver.as_str()) {
        return err(format!("undefined receiver {} used in route", quote(&node.receiver)));
    }
    Ok(())
}

fn check_intervals_used(node: &NodeConfig, intervals: &BTreeSet<&str>) -> Result<(), Error> {
    for child in &node.routes {
        check_intervals_used(child, intervals)?;
    }
    for name in node.active_time_intervals.iter().chain(&node.mute_time_intervals) {
        if !intervals.contains(name.as_str()) {
            return err(format!("undefined time interval {} used in route", quote(name)));
        }
    }
    Ok(())
}

fn build(raw: RawConfig, original: &str, options: LoadOptions) -> Result<Config, Error> {
    let mode = options.matcher_mode;
    // Decode-time checks (Alertmanager's per-type UnmarshalYAML), then the whole-file checks.
    let global = raw.global.unwrap_or_default();
    check_global(&global)?;
    let route = raw.route.map(|r| build_node(r, mode)).transpose()?;
    let mut receivers = raw.receivers.unwrap_or_default();
    for r in &mut receivers {
        if r.name.is_empty() {
            return err("missing name in receiver");
        }
        let labels = r.labels.get_or_insert_with(BTreeMap::new);
        if let Some(v) = labels.get("name") {
            if v.0 != r.name {
                return err(format!(
                    "receiver label \"name\" must match receiver name {}, got {}",
                    quote(&r.name),
                    quote(&v.0)
                ));
            }
        }
        labels.insert("name".to_string(), Scalar(r.name.clone()));
        validate_receiver(r)?;
    }
    let inhibit_rules = raw
        .inhibit_rules
        .unwrap_or_default()
        .into_iter()
        .map(|r| build_inhibit_rule(r, mode))
        .collect::<Result<Vec<_>, _>>()?;
    let mute_time_intervals = raw
        .mute_time_intervals
        .unwrap_or_default()
        .into_iter()
        .map(|t| timeinterval::build(t, "missing name in mute time interval"))
        .collect::<Result<Vec<_>, _>>()?;
    let time_intervals = raw
        .time_intervals
        .unwrap_or_default()
        .into_iter()
        .map(|t| timeinterval::build(t, "missing name in time interval"))
        .collect::<Result<Vec<_>, _>>()?;

    let mut names = BTreeSet::new();
    for r in &mut receivers {
        if names.contains(r.name.as_str()) {
            return err(format!("notification config name {} is not unique", quote(&r.name)));
        }
        apply_globals(r, &global)?;
        names.insert(r.name.as_str());
    }
    let names: BTreeSet<&str> = receivers.iter().map(|r| r.name.as_str()).collect();

    let Some(root) = route else { return err("no routes provided") };
    if root.receiver.is_empty() {
        return err("root route must specify a default receiver");
    }
    if root.has_matchers {
        return err("root route must not have any matchers");
    }
    if !root.mute_time_intervals.is_empty() {
        return err("root route must not have any mute time intervals");
    }
    if !root.active_time_intervals.is_empty() {
        return err("root route must not have any active time intervals");
    }
    check_receivers_used(&root, &names)?;

    let mut interval_names = BTreeSet::new();
    for t in &mute_time_intervals {
        if !interval_names.insert(t.name.as_str()) {
            return err(format!("mute time interval {} is not unique", quote(&t.name)));
        }
    }
    for t in &time_intervals {
        if !interval_names.insert(t.name.as_str()) {
            return err(format!("time interval {} is not unique", quote(&t.name)));
        }
    }
    check_intervals_used(&root, &interval_names)?;
    if root.continue_matching {
        return err("cannot have continue in root route");
    }

    let route = tree(root, None, &mut 0);
    Ok(Config {
        global,
        route,
        inhibit_rules,
        receivers,
        templates: raw.templates.unwrap_or_default(),
        mute_time_intervals,
        time_intervals,
        original: original.to_string(),
    })
}

/// Builds the routing tree with inherited options, as `dispatch.NewRoute` does; `idx` is the
/// post-order counter Alertmanager assigns.
fn tree(node: NodeConfig, parent: Option<(&RouteOpts, &str, &str, usize)>, counter: &mut usize) -> Route {
    let mut opts = parent.map(|p| p.0.clone()).unwrap_or_default();
    if !node.labels.is_empty() {
        opts.labels.extend(node.labels);
    }
    if !node.receiver.is_empty() {
        opts.receiver = node.receiver;
    }
    match node.group_by {
        Some(labels) => {
            opts.group_by = labels.into_iter().collect();
            opts.group_by_all = false;
        }
        None if node.group_by_all => opts.group_by_all = true,
        None => {}
    }
    if let Some(d) = node.group_wait {
        opts.group_wait = d;
    }
    if let Some(d) = node.group_interval {
        opts.group_interval = d;
    }
    if let Some(d) = node.repeat_interval {
        opts.repeat_interval = d;
    }
    opts.mute_time_intervals = node.mute_time_intervals;
    opts.active_time_intervals = node.active_time_intervals;
    let matchers = Matchers(node.matchers);
    let (key, id) = match parent {
        None => (matchers.to_string(), matchers.to_string()),
        Some((_, parent_key, parent_id, sibling)) => {
            (format!("{parent_key}/{matchers}"), format!("{parent_id}/{matchers}/{sibling}"))
        }
    };
    let mut routes = Vec::with_capacity(node.routes.len());
    for (i, child) in node.routes.into_iter().enumerate() {
        routes.push(tree(child, Some((&opts, &key, &id, i)), counter));
    }
    let idx = *counter;
    *counter += 1;
    Route::new(opts, matchers, node.continue_matching, routes, idx, key, id)
}

/// Shell-style match of `*` and `?` against a file name.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&pattern[1..], name) || (!name.is_empty() && wildcard(pattern, &name[1..])),
        (Some(b'?'), Some(_)) => wildcard(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => wildcard(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// The files a template glob names (wildcards in the last path element only), sorted.
fn glob_files(pattern: &str) -> Vec<std::path::PathBuf> {
    let path = std::path::Path::new(pattern);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !name.contains(['*', '?']) {
        return if path.exists() { vec![path.to_path_buf()] } else { Vec::new() };
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let mut found: Vec<std::path::PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_str().is_some_and(|f| wildcard(name.as_bytes(), f.as_bytes())))
            .map(|e| e.path())
            .collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<Config, String> {
        Config::parse(yaml).map_err(|e| e.to_string())
    }

    fn check_err(yaml: &str, expected: &str) {
        match load(yaml) {
            Ok(_) => panic!("{yaml}: loaded, want {expected}"),
            Err(e) => assert_eq!(e, expected, "{yaml}"),
        }
    }

    const OK: &str = "route: {receiver: r}\nreceivers: [{name: r}]\n";

    #[test]
    fn rejects_like_alertmanager() {
        check_err("", "no route provided in config");
        check_err("# only a comment\n", "no route provided in config");
        check_err("receivers: [{name: r}]", "no routes provided");
        check_err("route: {receiver: r, continue: true}\nreceivers: [{name: r}]", "cannot have continue in root route");
        check_err("route: {receiver: r, foo: 1}\nreceivers: [{name: r}]", "1:22: route: unknown field `foo`, expected one of `receiver`, `group_by`, `match`, `match_re`, `matchers`, `mute_time_intervals`, `active_time_intervals`, `continue`, `routes`, `group_wait`, `group_interval`, `repeat_interval`, `labels`");
        check_err(
            "route: {receiver: r}\nroute: {receiver: r}\nreceivers: [{name: r}]",
            "1:1: duplicate entry with key \"route\"",
        );
        check_err(
            "route: {receiver: r, group_wait: 5x}\nreceivers: [{name: r}]",
            "not a valid duration string: \"5x\"",
        );
        check_err(
            "route: {receiver: r, routes: [{match_re: {a: '('}}]}\nreceivers: [{name: r}]",
            "error parsing regexp: unclosed group",
        );
        check_err(
            "route: {receiver: r, routes: [{matchers: ['a=~(']}]}\nreceivers: [{name: r}]",
            "error parsing regexp: unclosed group",
        );
        check_err(
            "route: {receiver: r, routes: [{match: {'a-b': c}}]}\nreceivers: [{name: r}]",
            "invalid label name \"a-b\"",
        );
        check_err(
            "route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{}]}]",
            "one of url or url_file must be configured",
        );
        check_err(
            "route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: 'ftp://x'}]}]",
            "invalid URL: unsupported scheme \"ftp\" for URL",
        );
        check_err(
            "route: {receiver: r}\nreceivers: [{name: r, email_configs: [{to: a@b}]}]",
            "no global SMTP smarthost set",
        );
        check_err(
            "global: {smtp_smarthost: 'x'}\nroute: {receiver: r}\nreceivers: [{name: r}]",
            "address x: missing port in address",
        );
        check_err(
            "route: {receiver: r}\nreceivers: [{name: r}]\ninhibit_rules: [{equal: ['a-b']}]",
            "invalid label name \"a-b\" in equal list",
        );
        check_err(
            "route: {receiver: r}\nreceivers: [{name: r}]\ntime_intervals: [{name: a}, {name: a}]",
            "time interval \"a\" is not unique",
        );
    }

    #[test]
    fn decodes_like_alertmanager() {
        // Scalars become strings; an empty `global:` keeps the defaults.
        let c =
            load("global:\nroute:\n  receiver: r\n  routes: [{match: {test: 2}, receiver: r}]\nreceivers: [{name: r}]")
                .unwrap();
        assert_eq!(c.route.routes[0].matchers.to_string(), r#"{test="2"}"#);
        assert_eq!(c.global.smtp_hello(), "localhost");
        assert_eq!(c.global.resolve_timeout().to_string(), "5m");
        // Global values reach the integrations.
        let c = load(
            "global: {smtp_smarthost: 'mx:25', smtp_from: a@b, slack_api_url: 'http://s/x', http_config: {follow_redirects: false}}\n\
             route: {receiver: r}\n\
             receivers: [{name: r, email_configs: [{to: c@d}], slack_configs: [{channel: '#x'}], webhook_configs: [{url: 'http://w/'}]}]",
        )
        .unwrap();
        let r = c.receiver("r").unwrap();
        let email = r.email_configs[0].as_ref().unwrap();
        assert_eq!(email.smarthost.as_deref(), Some("mx:25"));
        assert_eq!(email.hello.as_deref(), Some("localhost"));
        assert_eq!(email.require_tls, Some(true));
        assert!(!email.send_resolved());
        assert_eq!(r.slack_configs[0].as_ref().unwrap().api_url.as_deref(), Some("http://s/x"));
        let webhook = r.webhook_configs[0].as_ref().unwrap();
        assert_eq!(webhook.http_config.as_ref().and_then(|h| h.follow_redirects), Some(false));
        assert!(webhook.send_resolved());
        assert_eq!(r.integration_count(), 3);
        assert!(load(OK).is_ok());
    }

    #[test]
    fn resolves_paths_against_the_config_directory() {
        let mut c = load(
            "global: {http_config: {bearer_token_file: tok}}\ntemplates: ['t/*.tmpl', '/abs/x.tmpl']\nroute: {receiver: r}\n\
             receivers: [{name: r, webhook_configs: [{url: 'http://w/', http_config: {tls_config: {ca_file: ca.pem}, basic_auth: {username: u, password_file: /p}}}]}]",
        )
        .unwrap();
        c.resolve_paths(std::path::Path::new("/etc/am"));
        assert_eq!(c.templates, ["/etc/am/t/*.tmpl", "/abs/x.tmpl"]);
        assert_eq!(c.global.http_config.as_ref().unwrap().bearer_token_file.as_deref(), Some("/etc/am/tok"));
        let h = c.receivers[0].webhook_configs[0].as_ref().unwrap().http_config.as_ref().unwrap();
        assert_eq!(h.tls_config.as_ref().unwrap()["ca_file"].as_str(), Some("/etc/am/ca.pem"));
        assert_eq!(h.basic_auth.as_ref().unwrap()["password_file"].as_str(), Some("/p"));
    }

    #[test]
    fn group_by_empty_list_inherits_as_in_0_25() {
        let c = load(
            "route:\n  receiver: r\n  group_by: [a]\n  routes: [{group_by: [], receiver: r}]\nreceivers: [{name: r}]",
        )
        .unwrap();
        assert_eq!(c.route.routes[0].opts.group_by.iter().collect::<Vec<_>>(), ["a"]);
    }
}

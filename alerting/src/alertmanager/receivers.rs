//! Receivers and their integrations' configuration (parsed and validated; sending comes
//! later). Field names and validation messages are Alertmanager's (HEAD field set).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::config::Scalar;
use crate::Error;

type S = Option<Scalar>;

fn set(s: &S) -> bool {
    s.as_ref().is_some_and(|v| !v.is_empty())
}

/// Prometheus' common HTTP client configuration (`http_config`); nested blocks are kept as
/// YAML values for the HTTP client to interpret.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpClientConfig {
    #[serde(default)]
    pub basic_auth: Option<Value>,
    #[serde(default)]
    pub authorization: Option<Value>,
    #[serde(default)]
    pub oauth2: Option<Value>,
    #[serde(default)]
    pub bearer_token: S,
    #[serde(default)]
    pub bearer_token_file: S,
    #[serde(default)]
    pub tls_config: Option<Value>,
    #[serde(default)]
    pub proxy_url: S,
    #[serde(default)]
    pub no_proxy: S,
    #[serde(default)]
    pub proxy_from_environment: Option<bool>,
    #[serde(default)]
    pub proxy_connect_header: Option<Value>,
    #[serde(default)]
    pub follow_redirects: Option<bool>,
    #[serde(default)]
    pub enable_http2: Option<bool>,
    #[serde(default)]
    pub http_headers: Option<Value>,
}

impl HttpClientConfig {
    /// Makes relative file paths (`bearer_token_file`, `*_file` in `basic_auth`,
    /// `authorization`, `oauth2` and `tls_config`) relative to `dir`, as Prometheus'
    /// `SetDirectory` does. No IO.
    pub fn set_directory(&mut self, dir: &std::path::Path) {
        if let Some(f) = &mut self.bearer_token_file {
            join_dir(dir, &mut f.0);
        }
        let blocks: [(&mut Option<Value>, &[&str]); 3] = [
            (&mut self.basic_auth, &["username_file", "password_file"]),
            (&mut self.authorization, &["credentials_file"]),
            (&mut self.oauth2, &["client_secret_file"]),
        ];
        for (block, keys) in blocks {
            if let Some(block) = block {
                set_file_keys(block, keys, dir);
                if let Some(tls) = block.get_mut("tls_config") {
                    set_file_keys(tls, TLS_FILES, dir);
                }
            }
        }
        if let Some(tls) = &mut self.tls_config {
            set_file_keys(tls, TLS_FILES, dir);
        }
    }
}

const TLS_FILES: &[&str] = &["ca_file", "cert_file", "key_file"];

fn set_file_keys(block: &mut Value, keys: &[&str], dir: &std::path::Path) {
    for key in keys {
        if let Some(Value::String(path)) = block.get_mut(*key) {
            join_dir(dir, path);
        }
    }
}

pub(crate) fn join_dir(dir: &std::path::Path, path: &mut String) {
    if !path.is_empty() && !std::path::Path::new(path.as_str()).is_absolute() {
        *path = dir.join(path.as_str()).to_string_lossy().into_owned();
    }
}

/// A Slack attachment field (`slack_configs[].fields`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackField {
    #[serde(default)]
    pub title: S,
    #[serde(default)]
    pub value: S,
    #[serde(default)]
    pub short: Option<bool>,
}

/// A Slack action button (`slack_configs[].actions`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackAction {
    #[serde(default)]
    pub r#type: S,
    #[serde(default)]
    pub text: S,
    #[serde(default)]
    pub url: S,
    #[serde(default)]
    pub style: S,
    #[serde(default)]
    pub name: S,
    #[serde(default)]
    pub value: S,
    #[serde(default)]
    pub confirm: Option<SlackConfirmationField>,
}

/// The confirmation dialog of a [`SlackAction`].
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackConfirmationField {
    #[serde(default)]
    pub text: S,
    #[serde(default)]
    pub title: S,
    #[serde(default)]
    pub ok_text: S,
    #[serde(default)]
    pub dismiss_text: S,
}

/// An OpsGenie responder (`opsgenie_configs[].responders`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpsGenieResponder {
    #[serde(default)]
    pub id: S,
    #[serde(default)]
    pub name: S,
    #[serde(default)]
    pub username: S,
    #[serde(default)]
    pub r#type: S,
}

/// A PagerDuty image (`pagerduty_configs[].images`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyImage {
    #[serde(default)]
    pub src: S,
    #[serde(default)]
    pub alt: S,
    #[serde(default)]
    pub href: S,
}

/// A PagerDuty link (`pagerduty_configs[].links`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyLink {
    #[serde(default)]
    pub href: S,
    #[serde(default)]
    pub text: S,
}

macro_rules! integration {
    ($(#[$doc:meta])* $name:ident, default_send_resolved = $sr:expr, { $($field:ident : $ty:ty),* $(,)? }) => {
        integration!(@struct $(#[$doc])* $name, $sr, {
            /// The HTTP client's settings; the global `http_config` when not set.
            http_config: Option<HttpClientConfig>, $($field: $ty),*
        });
    };
    ($(#[$doc:meta])* $name:ident, no_http, default_send_resolved = $sr:expr, { $($field:ident : $ty:ty),* $(,)? }) => {
        integration!(@struct $(#[$doc])* $name, $sr, { $($field: $ty),* });
    };
    (@struct $(#[$doc:meta])* $name:ident, $sr:expr, { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, Deserialize, PartialEq)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Whether resolved alerts are notified; `None` means the integration's default.
            #[serde(default)]
            pub send_resolved: Option<bool>,
            $( $(#[$fdoc])* #[serde(default)] pub $field: $ty, )*
        }

        impl $name {
            /// `send_resolved` with the integration's default applied.
            pub fn send_resolved(&self) -> bool {
                self.send_resolved.unwrap_or($sr)
            }
        }
    };
}

integration!(
    /// `webhook_configs`
    WebhookConfig, default_send_resolved = true, {
    url: S, url_file: S, max_alerts: Option<u64>, timeout: S, payload: Option<Value>,
});

integration!(
    /// `email_configs`
    EmailConfig, no_http, default_send_resolved = false, {
    to: S, from: S, hello: S, smarthost: S, auth_username: S, auth_password: S, auth_password_file: S,
    auth_secret: S, auth_secret_file: S, auth_identity: S, headers: Option<BTreeMap<String, Scalar>>, html: S,
    text: S, require_tls: Option<bool>, tls_config: Option<Value>, force_implicit_tls: Option<bool>,
    threading: Option<Value>,
});

integration!(
    /// `slack_configs`
    SlackConfig, default_send_resolved = false, {
    api_url: S, api_url_file: S, app_token: S, app_token_file: S, app_url: S, channel: S, username: S,
    color: S, title: S, title_link: S, pretext: S, text: S, message_text: S, fields: Option<Vec<SlackField>>,
    short_fields: Option<bool>, footer: S, fallback: S, callback_id: S, icon_emoji: S, icon_url: S,
    image_url: S, thumb_url: S, link_names: Option<bool>, mrkdwn_in: Option<Vec<String>>,
    actions: Option<Vec<SlackAction>>, update_message: Option<bool>, timeout: S,
});

integration!(
    /// `pagerduty_configs`
    PagerdutyConfig, default_send_resolved = true, {
    service_key: S, service_key_file: S, routing_key: S, routing_key_file: S, url: S, client: S,
    client_url: S, description: S, details: Option<Value>, images: Option<Vec<PagerdutyImage>>,
    links: Option<Vec<PagerdutyLink>>, source: S, severity: S, class: S, component: S, group: S, timeout: S,
});

integration!(
    /// `opsgenie_configs`
    OpsGenieConfig, default_send_resolved = true, {
    api_key: S, api_key_file: S, api_url: S, message: S, description: S, source: S,
    details: Option<BTreeMap<String, Scalar>>, entity: S, responders: Option<Vec<OpsGenieResponder>>, actions: S,
    tags: S, note: S, priority: S, update_alerts: Option<bool>,
});

integration!(
    /// `wechat_configs`
    WechatConfig, default_send_resolved = false, {
    api_secret: S, api_secret_file: S, corp_id: S, message: S, api_url: S, to_user: S, to_party: S,
    to_tag: S, agent_id: S, message_type: S,
});

integration!(
    /// `pushover_configs`
    PushoverConfig, default_send_resolved = true, {
    user_key: S, user_key_file: S, token: S, token_file: S, title: S, message: S, url: S, url_title: S,
    device: S, sound: S, priority: S, retry: S, expire: S, ttl: S, html: Option<bool>,
    monospace: Option<bool>,
});

integration!(
    /// `victorops_configs`
    VictorOpsConfig, default_send_resolved = true, {
    api_key: S, api_key_file: S, api_url: S, routing_key: S, message_type: S, state_message: S,
    entity_display_name: S, monitoring_tool: S, custom_fields: Option<BTreeMap<String, Scalar>>,
});

integration!(
    /// `sns_configs`
    SnsConfig, default_send_resolved = true, {
    api_url: S, sigv4: Option<Value>, topic_arn: S, phone_number: S, target_arn: S, subject: S, message: S,
    attributes: Option<BTreeMap<String, Scalar>>, use_aws_http_client: Option<bool>,
});

integration!(
    /// `telegram_configs`
    TelegramConfig, default_send_resolved = true, {
    api_url: S, bot_token: S, bot_token_file: S, chat_id: Option<i64>, chat_id_file: S,
    message_thread_id: Option<i64>, message: S, disable_notifications: Option<bool>, parse_mode: S,
});

integration!(
    /// `webex_configs`
    WebexConfig, default_send_resolved = true, { api_url: S, message: S, room_id: S });

integration!(
    /// `discord_configs`
    DiscordConfig, default_send_resolved = true, {
    webhook_url: S, webhook_url_file: S, content: S, title: S, message: S, username: S, avatar_url: S,
});

integration!(
    /// `msteams_configs`
    MsTeamsConfig, default_send_resolved = true, {
    webhook_url: S, webhook_url_file: S, title: S, summary: S, text: S,
});

integration!(
    /// `msteamsv2_configs`
    MsTeamsV2Config, default_send_resolved = true, { webhook_url: S, webhook_url_file: S, title: S, text: S });

integration!(
    /// `jira_configs`
    JiraConfig, default_send_resolved = true, {
    api_url: S, api_type: S, project: S, summary: Option<Value>, description: Option<Value>,
    labels: Option<Vec<String>>, priority: S, issue_type: S, reopen_transition: S, resolve_transition: S,
    wont_fix_resolution: S, reopen_duration: S, fields: Option<Value>,
});

integration!(
    /// `rocketchat_configs`
    RocketchatConfig, default_send_resolved = false, {
    api_url: S, token_id: S, token_id_file: S, token: S, token_file: S, channel: S, color: S, title: S,
    title_link: S, text: S, fields: Option<Vec<Value>>, short_fields: Option<bool>, emoji: S, icon_url: S,
    image_url: S, thumb_url: S, link_names: Option<bool>, actions: Option<Vec<Value>>,
});

integration!(
    /// `mattermost_configs`
    MattermostConfig, default_send_resolved = true, {
    webhook_url: S, webhook_url_file: S, channel: S, username: S, text: S, fallback: S, color: S,
    pretext: S, author_name: S, author_link: S, author_icon: S, title: S, title_link: S,
    fields: Option<Vec<Value>>, thumb_url: S, footer: S, footer_icon: S, image_url: S, icon_url: S,
    icon_emoji: S, attachments: Option<Vec<Value>>, r#type: S, props: Option<Value>, priority: Option<Value>,
});

integration!(
    /// `incidentio_configs`
    IncidentioConfig, default_send_resolved = true, {
    url: S, url_file: S, alert_source_token: S, alert_source_token_file: S, max_alerts: Option<u64>,
    timeout: S,
});

/// A named receiver with any number of integrations (none is a valid "blackhole").
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    #[serde(default)]
    pub name: String,
    /// HEAD (0.33+): labels for the API; `name` is always set to the receiver's name.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, Scalar>>,
    #[serde(default)]
    pub webhook_configs: Vec<Option<WebhookConfig>>,
    #[serde(default)]
    pub email_configs: Vec<Option<EmailConfig>>,
    #[serde(default)]
    pub slack_configs: Vec<Option<SlackConfig>>,
    #[serde(default)]
    pub pagerduty_configs: Vec<Option<PagerdutyConfig>>,
    #[serde(default)]
    pub opsgenie_configs: Vec<Option<OpsGenieConfig>>,
    #[serde(default)]
    pub wechat_configs: Vec<Option<WechatConfig>>,
    #[serde(default)]
    pub pushover_configs: Vec<Option<PushoverConfig>>,
    #[serde(default)]
    pub victorops_configs: Vec<Option<VictorOpsConfig>>,
    #[serde(default)]
    pub sns_configs: Vec<Option<SnsConfig>>,
    #[serde(default)]
    pub telegram_configs: Vec<Option<TelegramConfig>>,
    #[serde(default)]
    pub webex_configs: Vec<Option<WebexConfig>>,
    #[serde(default)]
    pub discord_configs: Vec<Option<DiscordConfig>>,
    #[serde(default)]
    pub msteams_configs: Vec<Option<MsTeamsConfig>>,
    #[serde(default)]
    pub msteamsv2_configs: Vec<Option<MsTeamsV2Config>>,
    #[serde(default)]
    pub jira_configs: Vec<Option<JiraConfig>>,
    #[serde(default)]
    pub rocketchat_configs: Vec<Option<RocketchatConfig>>,
    #[serde(default)]
    pub mattermost_configs: Vec<Option<MattermostConfig>>,
    #[serde(default)]
    pub incidentio_configs: Vec<Option<IncidentioConfig>>,
}

impl Receiver {
    /// Resolves relative paths of every integration's `http_config` against `dir`.
    pub fn set_directory(&mut self, dir: &std::path::Path) {
        macro_rules! each {
            ($($list:ident),*) => {
                $(for c in self.$list.iter_mut().flatten() {
                    if let Some(h) = &mut c.http_config {
                        h.set_directory(dir);
                    }
                })*
            };
        }
        each!(
            webhook_configs,
            slack_configs,
            pagerduty_configs,
            opsgenie_configs,
            wechat_configs,
            pushover_configs,
            victorops_configs,
            sns_configs,
            telegram_configs,
            webex_configs,
            discord_configs,
            msteams_configs,
            msteamsv2_configs,
            jira_configs,
            rocketchat_configs,
            mattermost_configs,
            incidentio_configs
        );
    }

    /// The number of integrations (each is its own delivery pipeline).
    pub fn integration_count(&self) -> usize {
        self.webhook_configs.len()
            + self.email_configs.len()
            + self.slack_configs.len()
            + self.pagerduty_configs.len()
            + self.opsgenie_configs.len()
            + self.wechat_configs.len()
            + self.pushover_configs.len()
            + self.victorops_configs.len()
            + self.sns_configs.len()
            + self.telegram_configs.len()
            + self.webex_configs.len()
            + self.discord_configs.len()
            + self.msteams_configs.len()
            + self.msteamsv2_configs.len()
            + self.jira_configs.len()
            + self.rocketchat_configs.len()
            + self.mattermost_configs.len()
            + self.incidentio_configs.len()
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, Error> {
    Err(Error::config(msg))
}

fn at_most_one(a: &S, b: &S, an: &str, bn: &str) -> Result<(), Error> {
    if set(a) && set(b) {
        return err(format!("at most one of {an} & {bn} must be configured"));
    }
    Ok(())
}

fn has_authorization(h: &Option<HttpClientConfig>) -> bool {
    h.as_ref().is_some_and(|h| h.authorization.is_some())
}

/// The checks Alertmanager runs while decoding each integration (its `UnmarshalYAML`).
pub(crate) fn validate_receiver(r: &mut Receiver) -> Result<(), Error> {
    let urls = r
        .slack_configs
        .iter()
        .flatten()
        .flat_map(|c| [&c.api_url, &c.app_url])
        .chain(r.pagerduty_configs.iter().flatten().map(|c| &c.url))
        .chain(r.opsgenie_configs.iter().flatten().map(|c| &c.api_url))
        .chain(r.wechat_configs.iter().flatten().map(|c| &c.api_url))
        .chain(r.victorops_configs.iter().flatten().map(|c| &c.api_url))
        .chain(r.telegram_configs.iter().flatten().map(|c| &c.api_url))
        .chain(r.webex_configs.iter().flatten().map(|c| &c.api_url))
        .chain(r.discord_configs.iter().flatten().map(|c| &c.webhook_url))
        .chain(r.msteams_configs.iter().flatten().map(|c| &c.webhook_url))
        .chain(r.msteamsv2_configs.iter().flatten().map(|c| &c.webhook_url))
        .chain(r.jira_configs.iter().flatten().map(|c| &c.api_url))
        .chain(r.rocketchat_configs.iter().flatten().map(|c| &c.api_url))
        .chain(r.mattermost_configs.iter().flatten().map(|c| &c.webhook_url))
        .chain(r.incidentio_configs.iter().flatten().map(|c| &c.url));
    for u in urls {
        url_field(u)?;
    }
    for c in r.webhook_configs.iter().flatten() {
        if !set(&c.url) && !set(&c.url_file) {
            return err("one of url or url_file must be configured");
        }
        at_most_one(&c.url, &c.url_file, "url", "url_file")?;
        if let Some(url) = &c.url {
            if !url.is_empty() && !url.contains("{{") {
                check_url(url).map_err(|e| Error::config(format!("invalid URL: {}", e.message())))?;
            }
        }
    }
    for c in r.email_configs.iter().flatten() {
        if !set(&c.to) {
            return err("missing to address in email config");
        }
        let mut seen = std::collections::BTreeSet::new();
        for name in c.headers.iter().flat_map(|h| h.keys()) {
            let canonical = canonical_header(name);
            if !seen.insert(canonical.clone()) {
                return err(format!("duplicate header {} in email config", super::gostr::quote(&canonical)));
            }
        }
    }
    for c in r.slack_configs.iter().flatten() {
        for f in c.fields.iter().flatten() {
            if !set(&f.title) {
                return err("missing title in Slack field configuration");
            }
            if !set(&f.value) {
                return err("missing value in Slack field configuration");
            }
        }
        for a in c.actions.iter().flatten() {
            if !set(&a.r#type) {
                return err("missing type in Slack action configuration");
            }
            if !set(&a.text) {
                return err("missing text in Slack action configuration");
            }
            if !set(&a.url) && !set(&a.name) {
                return err("missing name or url in Slack action configuration");
            }
            if a.confirm.as_ref().is_some_and(|c| !set(&c.text)) {
                return err("missing text in Slack confirmation configuration");
            }
        }
        at_most_one(&c.api_url, &c.api_url_file, "api_url", "api_url_file")?;
        at_most_one(&c.app_token, &c.app_token_file, "app_token", "app_token_file")?;
        if (set(&c.api_url) || set(&c.api_url_file)) && (set(&c.app_token) || set(&c.app_token_file)) {
            return err("at most one of api_url/api_url_file & app_token/app_token_file must be configured");
        }
        if c.update_message == Some(true) && set(&c.api_url) && !set(&c.app_token) && !set(&c.app_token_file) {
            let is_api = c.api_url.as_deref().is_some_and(|u| u.contains("chat.postMessage"));
            if !is_api {
                return err("update_message can only be used with bot tokens. api_url must be set to https://slack.com/api/chat.postMessage");
            }
        }
    }
    for c in r.pagerduty_configs.iter().flatten() {
        if !set(&c.routing_key) && !set(&c.service_key) && !set(&c.routing_key_file) && !set(&c.service_key_file) {
            return err("missing service or routing key in PagerDuty config");
        }
        at_most_one(&c.routing_key, &c.routing_key_file, "routing_key", "routing_key_file")?;
        at_most_one(&c.service_key, &c.service_key_file, "service_key", "service_key_file")?;
    }
    for c in r.opsgenie_configs.iter().flatten() {
        at_most_one(&c.api_key, &c.api_key_file, "api_key", "api_key_file")?;
        for resp in c.responders.iter().flatten() {
            let shown = || {
                let f = |v: &S| v.as_ref().map(|s| s.0.clone()).unwrap_or_default();
                format!("{{{} {} {} {}}}", f(&resp.id), f(&resp.name), f(&resp.username), f(&resp.r#type))
            };
            if !set(&resp.id) && !set(&resp.username) && !set(&resp.name) {
                return err(format!(
                    "opsGenieConfig responder {} has to have at least one of id, username or name specified",
                    shown()
                ));
            }
            let kind = resp.r#type.as_deref().unwrap_or("");
            if !kind.contains("{{")
                && !["team", "teams", "user", "escalation", "schedule"].contains(&&*kind.to_lowercase())
            {
                return err(format!(
                    "opsGenieConfig responder {} type does not match valid options ^(team|teams|user|escalation|schedule)$",
                    shown()
                ));
            }
        }
    }
    for c in r.pushover_configs.iter().flatten() {
        if !set(&c.user_key) && !set(&c.user_key_file) {
            return err("one of user_key or user_key_file must be configured");
        }
        at_most_one(&c.user_key, &c.user_key_file, "user_key", "user_key_file")?;
        if !set(&c.token) && !set(&c.token_file) {
            return err("one of token or token_file must be configured");
        }
        at_most_one(&c.token, &c.token_file, "token", "token_file")?;
        if c.html == Some(true) && c.monospace == Some(true) {
            return err("at most one of monospace & html must be configured");
        }
    }
    for c in r.victorops_configs.iter().flatten() {
        if !set(&c.routing_key) {
            return err("missing Routing key in VictorOps config");
        }
        for key in c.custom_fields.iter().flat_map(|m| m.keys()) {
            if [
                "routing_key",
                "message_type",
                "state_message",
                "entity_display_name",
                "monitoring_tool",
                "entity_id",
                "entity_state",
            ]
            .contains(&key.as_str())
            {
                return err(format!("victorOps config contains custom field {key} which cannot be used as it conflicts with the fixed/static fields"));
            }
        }
    }
    for c in r.sns_configs.iter().flatten() {
        if !set(&c.target_arn) && !set(&c.topic_arn) && !set(&c.phone_number) {
            return err("must provide either a Target ARN, Topic ARN, or Phone Number for SNS config");
        }
    }
    for c in r.telegram_configs.iter().flatten() {
        at_most_one(&c.bot_token, &c.bot_token_file, "bot_token", "bot_token_file")?;
        if c.chat_id.unwrap_or(0) == 0 && !set(&c.chat_id_file) {
            return err("missing chat_id or chat_id_file on telegram_config");
        }
        if c.chat_id.unwrap_or(0) != 0 && set(&c.chat_id_file) {
            return err("at most one of chat_id & chat_id_file must be configured");
        }
        if let Some(mode) = &c.parse_mode {
            if !["", "Markdown", "MarkdownV2", "HTML"].contains(&&**mode) {
                return err(
                    "unknown parse_mode on telegram_config, must be Markdown, MarkdownV2, HTML or empty string",
                );
            }
        }
    }
    for c in r.webex_configs.iter().flatten() {
        if !set(&c.room_id) {
            return err("missing room_id on webex_config");
        }
        if !has_authorization(&c.http_config) {
            return err("missing webex_configs.http_config.authorization");
        }
    }
    for c in r.discord_configs.iter().flatten() {
        if !set(&c.webhook_url) && !set(&c.webhook_url_file) {
            return err("one of webhook_url or webhook_url_file must be configured");
        }
        at_most_one(&c.webhook_url, &c.webhook_url_file, "webhook_url", "webhook_url_file")?;
    }
    for c in r.msteams_configs.iter().flatten() {
        if !set(&c.webhook_url) && !set(&c.webhook_url_file) {
            return err("one of webhook_url or webhook_url_file must be configured");
        }
        at_most_one(&c.webhook_url, &c.webhook_url_file, "webhook_url", "webhook_url_file")?;
    }
    for c in r.msteamsv2_configs.iter().flatten() {
        if !set(&c.webhook_url) && !set(&c.webhook_url_file) {
            return err("one of webhook_url or webhook_url_file must be configured");
        }
        at_most_one(&c.webhook_url, &c.webhook_url_file, "webhook_url", "webhook_url_file")?;
    }
    for c in r.jira_configs.iter().flatten() {
        if !set(&c.project) {
            return err("missing project in jira_config");
        }
        if !set(&c.issue_type) {
            return err("missing issue_type in jira_config");
        }
        if let Some(t) = &c.api_type {
            if !["", "auto", "cloud", "datacenter"].contains(&&**t) {
                return err("unknown api_type on jira_config, must be auto, cloud or datacenter");
            }
        }
    }
    for c in r.rocketchat_configs.iter().flatten() {
        at_most_one(&c.token, &c.token_file, "token", "token_file")?;
        at_most_one(&c.token_id, &c.token_id_file, "token_id", "token_id_file")?;
    }
    for c in r.mattermost_configs.iter().flatten() {
        at_most_one(&c.webhook_url, &c.webhook_url_file, "webhook_url", "webhook_url_file")?;
    }
    for c in r.incidentio_configs.iter().flatten() {
        if !set(&c.url) && !set(&c.url_file) {
            return err("one of url or url_file must be configured");
        }
        at_most_one(&c.url, &c.url_file, "url", "url_file")?;
        at_most_one(
            &c.alert_source_token,
            &c.alert_source_token_file,
            "alert_source_token",
            "alert_source_token_file",
        )?;
        let token = set(&c.alert_source_token) || set(&c.alert_source_token_file);
        if token && has_authorization(&c.http_config) {
            return err(
                "cannot specify alert_source_token or alert_source_token_file when using http_config.authorization",
            );
        }
        if !token && !has_authorization(&c.http_config) {
            return err("at least one of alert_source_token, alert_source_token_file or http_config.authorization must be configured");
        }
    }
    Ok(())
}

/// Go's `textproto.CanonicalMIMEHeaderKey` for ASCII header names.
fn canonical_header(name: &str) -> String {
    if name.bytes().any(|b| b == b' ' || !b.is_ascii()) {
        return name.to_string();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}

/// The check of Alertmanager's `URL` type: scheme `http` or `https` and a host.
pub(crate) fn check_url(s: &str) -> Result<(), Error> {
    if s == "<secret>" {
        return Ok(());
    }
    let (scheme, rest) = match s.split_once(':') {
        Some((scheme, rest))
            if scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (scheme.to_ascii_lowercase(), rest)
        }
        _ => (String::new(), s),
    };
    if scheme != "http" && scheme != "https" {
        return err(format!("unsupported scheme {} for URL", super::gostr::quote(&scheme)));
    }
    let host = rest.strip_prefix("//").map(|r| r.split(['/', '?', '#']).next().unwrap_or("")).unwrap_or("");
    if host.is_empty() {
        return err("missing host for URL");
    }
    Ok(())
}

fn url_field(s: &S) -> Result<(), Error> {
    match s {
        Some(u) if !u.is_empty() => check_url(u),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let check = |u: &str, expected: Result<(), &str>| {
            assert_eq!(check_url(u).map_err(|e| e.message().to_string()), expected.map_err(String::from), "{u}")
        };
        check("http://a.example/x", Ok(()));
        check("HTTPS://a:1", Ok(()));
        check("ftp://a", Err("unsupported scheme \"ftp\" for URL"));
        check("foo", Err("unsupported scheme \"\" for URL"));
        check("http:///x", Err("missing host for URL"));
    }

    #[test]
    fn canonical_headers() {
        assert_eq!(canonical_header("subject"), "Subject");
        assert_eq!(canonical_header("x-mailer-ID"), "X-Mailer-Id");
    }
}

//! Slack, PagerDuty (Events API v2) and Microsoft Teams bodies. Every text field is a
//! template run over Alertmanager's template data ([`template_data`]) with the receiver's
//! [`TemplateSet`] (the defaults plus the `templates:` files); an unset field gets
//! Alertmanager's default (`{{ template "slack.default.title" . }}`, ...).

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::config::Scalar;
use super::dispatch::Notification;
use super::receivers::{MsTeamsConfig, PagerdutyConfig, SlackConfig};
use super::webhook::{go_html_escape, quote_meta};
use crate::template::{AlertData, NotificationData, TemplateSet};
use crate::Error;

fn pairs(labels: &sextant_model::Labels) -> Vec<(String, String)> {
    labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect()
}

/// Alertmanager's template data for a notification: the receiver name (`regexp.QuoteMeta`
/// applied, as upstream), status, alerts (a firing alert's `EndsAt` is Go's zero time),
/// group labels, labels and annotations common to all alerts, and the external URL.
pub fn template_data(n: &Notification, external_url: &str) -> NotificationData {
    let alerts: Vec<AlertData> = n
        .alerts
        .iter()
        .map(|a| AlertData {
            status: if a.resolved { "resolved" } else { "firing" }.to_string(),
            labels: pairs(&a.alert.labels),
            annotations: a.alert.annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            starts_at_ms: a.alert.starts_at_ms,
            ends_at_ms: a.resolved.then_some(a.alert.ends_at_ms),
            generator_url: a.alert.generator_url.clone(),
            fingerprint: format!("{:016x}", a.alert.fingerprint()),
        })
        .collect();
    let common = |field: fn(&AlertData) -> &Vec<(String, String)>| -> Vec<(String, String)> {
        let Some(first) = alerts.first() else { return Vec::new() };
        field(first).iter().filter(|p| alerts.iter().all(|a| field(a).contains(p))).cloned().collect()
    };
    NotificationData {
        receiver: quote_meta(&n.receiver),
        status: n.status().to_string(),
        group_labels: pairs(&n.group_labels),
        common_labels: common(|a| &a.labels),
        common_annotations: common(|a| &a.annotations),
        alerts: alerts.clone(),
        external_url: external_url.to_string(),
    }
}

/// Go's `TruncateInRunes`: at most `n` characters, the last one `…` when cut.
fn truncate(s: String, n: usize) -> String {
    if s.chars().count() <= n {
        return s;
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Runs a receiver field (or its default) as a text template.
pub(crate) fn render(
    set: &TemplateSet,
    data: &NotificationData,
    value: &Option<Scalar>,
    default: &str,
    kind: &'static str,
) -> Result<String, Error> {
    let text = value.as_ref().map_or(default, |v| v.0.as_str());
    set.execute_text(text, data).map_err(|e| Error::notify(kind, format!("template: {e}"), false))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut body = go_html_escape(&serde_json::to_string(value).unwrap_or_default()).into_bytes();
    body.push(b'\n');
    body
}

#[derive(Serialize)]
struct SlackMessage {
    #[serde(skip_serializing_if = "String::is_empty")]
    channel: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_emoji: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_url: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    link_names: bool,
    attachments: Vec<SlackAttachment>,
}

#[derive(Serialize)]
struct SlackAttachment {
    title: String,
    title_link: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pretext: String,
    text: String,
    fallback: String,
    callback_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    image_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    thumb_url: String,
    footer: String,
    color: String,
    mrkdwn_in: Vec<String>,
}

/// The Slack webhook body (`notify/slack`), as Alertmanager 0.25 writes it.
pub fn slack_body(
    n: &Notification,
    c: &SlackConfig,
    external_url: &str,
    templates: &TemplateSet,
) -> Result<Vec<u8>, Error> {
    let k = "slack";
    let data = template_data(n, external_url);
    let t = |value: &Option<Scalar>, default: &str| render(templates, &data, value, default, k);
    let message = SlackMessage {
        channel: t(&c.channel, "")?,
        username: t(&c.username, r#"{{ template "slack.default.username" . }}"#)?,
        icon_emoji: t(&c.icon_emoji, r#"{{ template "slack.default.iconemoji" . }}"#)?,
        icon_url: t(&c.icon_url, r#"{{ template "slack.default.iconurl" . }}"#)?,
        link_names: c.link_names.unwrap_or(false),
        attachments: vec![SlackAttachment {
            title: truncate(t(&c.title, r#"{{ template "slack.default.title" . }}"#)?, 1024),
            title_link: t(&c.title_link, r#"{{ template "slack.default.titlelink" . }}"#)?,
            pretext: t(&c.pretext, r#"{{ template "slack.default.pretext" . }}"#)?,
            text: t(&c.text, r#"{{ template "slack.default.text" . }}"#)?,
            fallback: t(&c.fallback, r#"{{ template "slack.default.fallback" . }}"#)?,
            callback_id: t(&c.callback_id, r#"{{ template "slack.default.callbackid" . }}"#)?,
            image_url: t(&c.image_url, "")?,
            thumb_url: t(&c.thumb_url, "")?,
            footer: t(&c.footer, r#"{{ template "slack.default.footer" . }}"#)?,
            color: t(&c.color, r#"{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}"#)?,
            mrkdwn_in: c.mrkdwn_in.clone().unwrap_or_else(|| vec!["fallback".into(), "pretext".into(), "text".into()]),
        }],
    };
    Ok(encode(&message))
}

#[derive(Serialize)]
struct PagerdutyMessage {
    routing_key: String,
    dedup_key: String,
    event_action: &'static str,
    payload: PagerdutyPayload,
    client: String,
    client_url: String,
}

#[derive(Serialize)]
struct PagerdutyPayload {
    summary: String,
    source: String,
    severity: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    component: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    class: String,
    custom_details: BTreeMap<String, String>,
}

/// The PagerDuty Events API v2 body (`notify/pagerduty`, `routing_key` configured), as
/// Alertmanager 0.25 writes it. The dedup key is the SHA-256 of the group key; configured
/// `details` are added to the default ones (`firing`, `resolved`, `num_firing`, `num_resolved`).
pub fn pagerduty_body(
    n: &Notification,
    c: &PagerdutyConfig,
    external_url: &str,
    templates: &TemplateSet,
) -> Result<Vec<u8>, Error> {
    let k = "pagerduty";
    let routing_key = match (&c.routing_key, &c.routing_key_file) {
        (Some(key), _) => key.0.clone(),
        (None, Some(file)) => std::fs::read_to_string(&**file)
            .map_err(|e| Error::notify(k, format!("reading routing_key_file: {e}"), false))?
            .trim()
            .to_string(),
        (None, None) => return Err(Error::notify(k, "only Events API v2 (routing_key) is supported", false)),
    };
    let data = template_data(n, external_url);
    let t = |value: &Option<Scalar>, default: &str| render(templates, &data, value, default, k);
    let mut detail_texts: BTreeMap<String, Option<Scalar>> = [
        ("firing", r#"{{ template "pagerduty.default.instances" .Alerts.Firing }}"#),
        ("resolved", r#"{{ template "pagerduty.default.instances" .Alerts.Resolved }}"#),
        ("num_firing", "{{ .Alerts.Firing | len }}"),
        ("num_resolved", "{{ .Alerts.Resolved | len }}"),
    ]
    .into_iter()
    .map(|(name, text)| (name.to_string(), Some(Scalar(text.to_string()))))
    .collect();
    if let Some(value) = &c.details {
        let map: BTreeMap<String, Scalar> =
            serde_yaml_ng::from_value(value.clone()).map_err(|e| Error::notify(k, format!("details: {e}"), false))?;
        for (name, v) in map {
            detail_texts.insert(name, Some(v));
        }
    }
    let mut details = BTreeMap::new();
    for (name, text) in &detail_texts {
        details.insert(name.clone(), t(text, "")?);
    }
    let client = t(&c.client, r#"{{ template "pagerduty.default.client" . }}"#)?;
    let source = match t(&c.source, "")? {
        s if s.is_empty() => client.clone(),
        s => s,
    };
    let message = PagerdutyMessage {
        routing_key,
        dedup_key: Sha256::digest(n.group_key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect(),
        event_action: if n.status() == "resolved" { "resolve" } else { "trigger" },
        payload: PagerdutyPayload {
            summary: truncate(t(&c.description, r#"{{ template "pagerduty.default.description" . }}"#)?, 1024),
            source,
            severity: match t(&c.severity, "")? {
                s if s.is_empty() => "error".to_string(),
                s => s,
            },
            component: t(&c.component, "")?,
            group: t(&c.group, "")?,
            class: t(&c.class, "")?,
            custom_details: details,
        },
        client_url: t(&c.client_url, r#"{{ template "pagerduty.default.clientURL" . }}"#)?,
        client,
    };
    Ok(encode(&message))
}

#[derive(Serialize)]
struct TeamsMessage {
    #[serde(rename = "@context")]
    context: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    title: String,
    summary: String,
    text: String,
    #[serde(rename = "themeColor")]
    theme_color: &'static str,
}

/// The Microsoft Teams incoming-webhook body (`notify/msteams`, a MessageCard, Alertmanager
/// 0.26+; 0.25 has no Teams integration): title, summary and text from the templates,
/// `themeColor` red (`8C1A1A`) while firing, green (`2DC72D`) when resolved.
pub fn msteams_body(
    n: &Notification,
    c: &MsTeamsConfig,
    external_url: &str,
    templates: &TemplateSet,
) -> Result<Vec<u8>, Error> {
    let data = template_data(n, external_url);
    let t = |value: &Option<Scalar>, default: &str| render(templates, &data, value, default, "msteams");
    let message = TeamsMessage {
        context: "http://schema.org/extensions",
        kind: "MessageCard",
        title: t(&c.title, r#"{{ template "msteams.default.title" . }}"#)?,
        summary: t(&c.summary, r#"{{ template "msteams.default.summary" . }}"#)?,
        text: t(&c.text, r#"{{ template "msteams.default.text" . }}"#)?,
        theme_color: if n.status() == "firing" { "8C1A1A" } else { "2DC72D" },
    };
    Ok(encode(&message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_like_go() {
        assert_eq!(truncate("abcdef".into(), 4), "abc…");
        assert_eq!(truncate("abc".into(), 4), "abc");
    }
}

//! Slack and PagerDuty (Events API v2) bodies with Alertmanager's default templates
//! (`template/default.tmpl`) rendered by hand. A field set in the configuration is used
//! as written when it holds no template action; one with `{{` is refused (there is no Go
//! template engine yet).

use std::collections::BTreeMap;

use serde::Serialize;
use sextant_model::Labels;
use sha2::{Digest, Sha256};

use super::config::Scalar;
use super::dispatch::{Notification, NotifiedAlert};
use super::receivers::{PagerdutyConfig, SlackConfig};
use super::webhook::go_html_escape;
use crate::Error;

/// `KV.SortedPairs`: `alertname` first, then by name.
fn sorted_pairs(labels: &[(String, String)]) -> Vec<(String, String)> {
    let mut pairs = labels.to_vec();
    pairs.sort_by(|a, b| (a.0 != "alertname", &a.0).cmp(&(b.0 != "alertname", &b.0)));
    pairs
}

fn pairs(labels: &Labels) -> Vec<(String, String)> {
    labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect()
}

fn common_labels(alerts: &[NotifiedAlert]) -> Vec<(String, String)> {
    let Some(first) = alerts.first() else { return Vec::new() };
    pairs(&first.alert.labels)
        .into_iter()
        .filter(|(k, v)| alerts.iter().all(|a| a.alert.labels.get(k) == Some(v.as_str())))
        .collect()
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `__subject`: `[FIRING:2] GroupValues (CommonValues not in the group)`.
pub fn default_subject(n: &Notification) -> String {
    let status = n.status();
    let mut out = format!("[{}", status.to_uppercase());
    if status == "firing" {
        out.push_str(&format!(":{}", n.alerts.iter().filter(|a| !a.resolved).count()));
    }
    out.push_str("] ");
    let group = sorted_pairs(&pairs(&n.group_labels));
    out.push_str(&group.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(" "));
    out.push(' ');
    let common = common_labels(&n.alerts);
    if common.len() > group.len() {
        let rest: Vec<(String, String)> = common.into_iter().filter(|(k, _)| n.group_labels.get(k).is_none()).collect();
        let values: Vec<String> = sorted_pairs(&rest).into_iter().map(|(_, v)| v).collect();
        out.push_str(&format!("({})", values.join(" ")));
    }
    out
}

/// `__alertmanagerURL`.
pub fn alertmanager_url(n: &Notification, external_url: &str) -> String {
    format!("{external_url}/#/alerts?receiver={}", query_escape(&n.receiver))
}

/// `__text_alert_list` over the alerts with the given status.
fn text_alert_list(alerts: &[NotifiedAlert], resolved: bool) -> String {
    let mut out = String::new();
    for a in alerts.iter().filter(|a| a.resolved == resolved) {
        out.push_str("Labels:\n");
        for (k, v) in sorted_pairs(&pairs(&a.alert.labels)) {
            out.push_str(&format!(" - {k} = {v}\n"));
        }
        out.push_str("Annotations:\n");
        let annotations: Vec<(String, String)> =
            a.alert.annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (k, v) in sorted_pairs(&annotations) {
            out.push_str(&format!(" - {k} = {v}\n"));
        }
        out.push_str(&format!("Source: {}\n", a.alert.generator_url));
    }
    out
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

/// A configured field, or the default when unset; a template action is refused.
fn field(value: &Option<Scalar>, default: impl FnOnce() -> String, kind: &str) -> Result<String, Error> {
    match value {
        None => Ok(default()),
        Some(v) if v.contains("{{") => {
            Err(Error::notify(kind, format!("templated field {:?} is not supported yet", v.0), false))
        }
        Some(v) => Ok(v.0.clone()),
    }
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
pub fn slack_body(n: &Notification, c: &SlackConfig, external_url: &str) -> Result<Vec<u8>, Error> {
    let k = "slack";
    let title = truncate(field(&c.title, || default_subject(n), k)?, 1024);
    let title_link = field(&c.title_link, || alertmanager_url(n, external_url), k)?;
    let color = field(&c.color, || if n.status() == "firing" { "danger" } else { "good" }.to_string(), k)?;
    let fallback = field(&c.fallback, || format!("{title} | {title_link}"), k)?;
    let message = SlackMessage {
        channel: field(&c.channel, String::new, k)?,
        username: field(&c.username, || "Alertmanager".to_string(), k)?,
        icon_emoji: field(&c.icon_emoji, String::new, k)?,
        icon_url: field(&c.icon_url, String::new, k)?,
        link_names: c.link_names.unwrap_or(false),
        attachments: vec![SlackAttachment {
            title,
            title_link,
            pretext: field(&c.pretext, String::new, k)?,
            text: field(&c.text, String::new, k)?,
            fallback,
            callback_id: field(&c.callback_id, String::new, k)?,
            image_url: field(&c.image_url, String::new, k)?,
            thumb_url: field(&c.thumb_url, String::new, k)?,
            footer: field(&c.footer, String::new, k)?,
            color,
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
/// Alertmanager 0.25 writes it. The dedup key is the SHA-256 of the group key.
pub fn pagerduty_body(n: &Notification, c: &PagerdutyConfig, external_url: &str) -> Result<Vec<u8>, Error> {
    let k = "pagerduty";
    let routing_key = match (&c.routing_key, &c.routing_key_file) {
        (Some(key), _) => key.0.clone(),
        (None, Some(file)) => std::fs::read_to_string(&**file)
            .map_err(|e| Error::notify(k, format!("reading routing_key_file: {e}"), false))?
            .trim()
            .to_string(),
        (None, None) => return Err(Error::notify(k, "only Events API v2 (routing_key) is supported", false)),
    };
    let client = field(&c.client, || "Alertmanager".to_string(), k)?;
    let mut details = BTreeMap::new();
    match &c.details {
        None => {
            let firing = n.alerts.iter().filter(|a| !a.resolved).count();
            details.insert("firing".to_string(), text_alert_list(&n.alerts, false));
            details.insert("resolved".to_string(), text_alert_list(&n.alerts, true));
            details.insert("num_firing".to_string(), firing.to_string());
            details.insert("num_resolved".to_string(), (n.alerts.len() - firing).to_string());
        }
        Some(value) => {
            let map: BTreeMap<String, Scalar> = serde_yaml_ng::from_value(value.clone())
                .map_err(|e| Error::notify(k, format!("details: {e}"), false))?;
            for (name, v) in map {
                details.insert(name, field(&Some(v), String::new, k)?);
            }
        }
    }
    let summary = truncate(field(&c.description, || default_subject(n), k)?, 1024);
    let message = PagerdutyMessage {
        routing_key,
        dedup_key: Sha256::digest(n.group_key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect(),
        event_action: if n.status() == "resolved" { "resolve" } else { "trigger" },
        payload: PagerdutyPayload {
            summary,
            source: field(&c.source, || client.clone(), k)?,
            severity: field(&c.severity, || "error".to_string(), k)?,
            component: field(&c.component, String::new, k)?,
            group: field(&c.group, String::new, k)?,
            class: field(&c.class, String::new, k)?,
            custom_details: details,
        },
        client_url: field(&c.client_url, || alertmanager_url(n, external_url), k)?,
        client,
    };
    Ok(encode(&message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_like_go() {
        assert_eq!(query_escape("a b/c&d~"), "a+b%2Fc%26d~");
        let pairs_in =
            vec![("b".to_string(), "1".to_string()), ("alertname".into(), "x".into()), ("a".into(), "2".into())];
        let names: Vec<String> = sorted_pairs(&pairs_in).into_iter().map(|p| p.0).collect();
        assert_eq!(names, ["alertname", "a", "b"]);
        assert_eq!(truncate("abcdef".into(), 4), "abc…");
        assert_eq!(truncate("abc".into(), 4), "abc");
    }
}

//! The webhook integration's body (`notify/webhook/webhook.go`, template `Data`), version 4.

use std::collections::BTreeMap;

use serde::Serialize;
use sextant_model::Labels;

use super::alert::{format_rfc3339, ZERO_TIME};
use super::dispatch::{Notification, NotifiedAlert};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    receiver: String,
    status: &'static str,
    alerts: Vec<WebhookAlert<'a>>,
    group_labels: BTreeMap<&'a str, &'a str>,
    common_labels: BTreeMap<&'a str, &'a str>,
    common_annotations: BTreeMap<&'a str, &'a str>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    version: &'static str,
    group_key: &'a str,
    truncated_alerts: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert<'a> {
    status: &'static str,
    labels: BTreeMap<&'a str, &'a str>,
    annotations: BTreeMap<&'a str, &'a str>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: String,
}

fn label_map(labels: &Labels) -> BTreeMap<&str, &str> {
    labels.iter().map(|l| (&*l.name, &*l.value)).collect()
}

/// Go's `regexp.QuoteMeta`, which the webhook applies to the receiver name (a historical
/// quirk: `web.hook` is sent as `web\.hook`).
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Key/values present with the same value in every map.
fn common<'a>(maps: impl Iterator<Item = BTreeMap<&'a str, &'a str>>) -> BTreeMap<&'a str, &'a str> {
    let mut maps = maps;
    let Some(mut out) = maps.next() else { return BTreeMap::new() };
    for m in maps {
        out.retain(|k, v| m.get(k) == Some(v));
    }
    out
}

/// The webhook body for a notification (`max_alerts` 0 = no limit), JSON as Alertmanager
/// 0.25 writes it, with the trailing newline of Go's encoder.
pub fn webhook_body(notification: &Notification, external_url: &str, max_alerts: usize) -> Vec<u8> {
    let all = &notification.alerts;
    let kept: &[NotifiedAlert] = if max_alerts > 0 && all.len() > max_alerts { &all[..max_alerts] } else { all };
    let alerts = kept
        .iter()
        .map(|a| WebhookAlert {
            status: if a.resolved { "resolved" } else { "firing" },
            labels: label_map(&a.alert.labels),
            annotations: a.alert.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            starts_at: format_rfc3339(a.alert.starts_at_ms),
            ends_at: if a.resolved { format_rfc3339(a.alert.ends_at_ms) } else { ZERO_TIME.to_string() },
            generator_url: &a.alert.generator_url,
            fingerprint: format!("{:016x}", a.alert.fingerprint()),
        })
        .collect();
    let message = Message {
        receiver: quote_meta(&notification.receiver),
        status: notification.status(),
        alerts,
        group_labels: label_map(&notification.group_labels),
        common_labels: common(all.iter().map(|a| label_map(&a.alert.labels))),
        common_annotations: common(
            all.iter().map(|a| a.alert.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()),
        ),
        external_url,
        version: "4",
        group_key: &notification.group_key,
        truncated_alerts: all.len() - kept.len(),
    };
    let json = serde_json::to_string(&message).unwrap_or_default();
    let mut body = go_html_escape(&json).into_bytes();
    body.push(b'\n');
    body
}

/// Go's JSON encoder escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings; these
/// characters occur in serde_json's output only inside strings.
pub(crate) fn go_html_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote_meta("web.hook"), r"web\.hook");
        assert_eq!(go_html_escape(r#"{"a":"x&y<z>"}"#), r#"{"a":"x\u0026y\u003cz\u003e"}"#);
        assert_eq!(quote_meta("a-b_c (x)|[y]{z}^$*+?\\"), r"a-b_c \(x\)\|\[y\]\{z\}\^\$\*\+\?\\");
    }
}

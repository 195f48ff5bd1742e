//! What the rule side sends to Alertmanagers: alerts due for (re)sending, encoded as
//! Alertmanager API v2 `postableAlert`s the way Prometheus encodes them.

use std::collections::BTreeMap;

use serde::Serialize;
use sextant_model::Labels;

/// One alert as sent to Alertmanager.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub labels: Labels,
    pub annotations: Labels,
    /// When the alert started firing (`FiredAt`, not `ActiveAt`).
    pub starts_at_ms: i64,
    /// `ResolvedAt` for a resolved alert, else the lease `ValidUntil`.
    pub ends_at_ms: i64,
    /// `<external URL>/graph?g0.expr=<expr>&g0.tab=1`.
    pub generator_url: String,
}

/// The `generatorURL` of a rule: its expression as Prometheus prints it, query-escaped.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    let printed = sextant_promql::parse(expr).map(|e| sextant_promql::format(&e)).unwrap_or_else(|_| expr.to_string());
    format!("{external_url}/graph?g0.expr={}&g0.tab=1", crate::template::query_escape(&printed))
}

#[derive(Serialize)]
struct PostableAlert<'a> {
    annotations: BTreeMap<&'a str, &'a str>,
    #[serde(rename = "endsAt")]
    ends_at: String,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    labels: BTreeMap<&'a str, &'a str>,
}

fn rfc3339(ms: i64) -> String {
    crate::template::format_time(ms as i128 * 1_000_000, "2006-01-02T15:04:05.999999999Z07:00")
}

/// The JSON body of `POST /api/v2/alerts`: external labels the alert lacks are added; keys,
/// timestamps (RFC 3339, UTC) and escaping (`&` as `\u0026`) as Prometheus writes them.
pub fn encode_alerts_v2(alerts: &[Notification], external_labels: &Labels) -> String {
    let body: Vec<PostableAlert<'_>> = alerts
        .iter()
        .map(|a| {
            let mut labels: BTreeMap<&str, &str> = a.labels.iter().map(|l| (&*l.name, &*l.value)).collect();
            for l in external_labels.iter() {
                labels.entry(&*l.name).or_insert(&*l.value);
            }
            PostableAlert {
                annotations: a.annotations.iter().map(|l| (&*l.name, &*l.value)).collect(),
                ends_at: rfc3339(a.ends_at_ms),
                starts_at: rfc3339(a.starts_at_ms),
                generator_url: &a.generator_url,
                labels,
            }
        })
        .collect();
    let json = serde_json::to_string(&body).unwrap_or_else(|_| "[]".to_string());
    // Go's encoding/json escapes HTML characters and the JavaScript line separators.
    json.replace('&', "\\u0026")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_prometheus() {
        let url = generator_url("http://127.0.0.1:19090", "up{job=\"a\"}==0");
        assert_eq!(url, "http://127.0.0.1:19090/graph?g0.expr=up%7Bjob%3D%22a%22%7D+%3D%3D+0&g0.tab=1");
        let alert = Notification {
            labels: Labels::from_pairs([("alertname", "AlwaysFiring"), ("severity", "page")]),
            annotations: Labels::from_pairs([("summary", "a <b>")]),
            starts_at_ms: 1_795_318_732_887,
            ends_at_ms: 1_795_318_758_000,
            generator_url: url,
        };
        let body = encode_alerts_v2(&[alert], &Labels::from_pairs([("replica", "a"), ("severity", "x")]));
        assert_eq!(
            body,
            r#"[{"annotations":{"summary":"a \u003cb\u003e"},"endsAt":"2026-11-22T03:39:18Z","startsAt":"2026-11-22T03:38:52.887Z","generatorURL":"http://127.0.0.1:19090/graph?g0.expr=up%7Bjob%3D%22a%22%7D+%3D%3D+0\u0026g0.tab=1","labels":{"alertname":"AlwaysFiring","replica":"a","severity":"page"}}]"#
        );
    }
}

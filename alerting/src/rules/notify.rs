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

/// The in-process path to our own Alertmanager: the alerts exactly as
/// `PostableAlert::parse_json(encode_alerts_v2(alerts, external_labels))` would read them,
/// without the JSON round trip, ready for `Dispatcher::put_alerts` in the same process.
pub fn to_postable_alerts(
    alerts: &[Notification],
    external_labels: &Labels,
) -> Vec<crate::alertmanager::PostableAlert> {
    alerts
        .iter()
        .map(|a| {
            let mut labels: BTreeMap<String, String> =
                a.labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect();
            for l in external_labels.iter() {
                labels.entry(l.name.to_string()).or_insert_with(|| l.value.to_string());
            }
            crate::alertmanager::PostableAlert {
                labels: labels.into_iter().collect(),
                annotations: a.annotations.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect(),
                starts_at_ms: Some(a.starts_at_ms),
                ends_at_ms: Some(a.ends_at_ms),
                generator_url: a.generator_url.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_in_process_path_equals_the_http_body() {
        use crate::alertmanager::{Config, Dispatcher, PostableAlert};
        let alerts = vec![
            Notification {
                labels: Labels::from_pairs([("alertname", "A"), ("job", "x & y"), ("severity", "page")]),
                annotations: Labels::from_pairs([("summary", "<b>down</b> since 5m")]),
                starts_at_ms: 1_700_000_000_123,
                ends_at_ms: 1_700_000_240_000,
                generator_url: generator_url("http://127.0.0.1:9090", "up == 0"),
            },
            Notification {
                labels: Labels::from_pairs([("alertname", "B"), ("region", "own")]),
                annotations: Labels::empty(),
                starts_at_ms: 1_700_000_000_000,
                ends_at_ms: 1_700_000_060_000,
                generator_url: String::new(),
            },
        ];
        let external = Labels::from_pairs([("region", "eu"), ("cluster", "c1")]);
        let direct = to_postable_alerts(&alerts, &external);
        let via_json = PostableAlert::parse_json(encode_alerts_v2(&alerts, &external).as_bytes()).unwrap();
        assert_eq!(direct, via_json);
        assert!(direct[1].labels.contains(&("region".to_string(), "own".to_string())));

        let config = Config::parse("route: {receiver: r, group_by: [alertname]}\nreceivers: [{name: r}]\n").unwrap();
        let mut dispatcher = Dispatcher::new(config);
        dispatcher.put_alerts(direct, 1_700_000_000_500).unwrap();
        assert_eq!(dispatcher.alerts().count(), 2);
    }

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

//! Webhook bodies against the ones Alertmanager 0.25 sent (captures/ in ../shared): the
//! alerts of each captured notification are posted to a dispatcher configured like the
//! capture run, and the body it produces must equal the captured bytes.

#[path = "../../testsupport/shared.rs"]
mod shared;

use sextant_alerting::alertmanager::{parse_rfc3339, webhook_body, Config, Dispatcher, PostableAlert};

#[test]
fn webhook_bodies_match_alertmanager() {
    let Some(dir) = shared::shared_dir("alertmanager webhook") else { return };
    let captures = dir.join("conformance/alerting/captures");
    let config = std::fs::read_to_string(captures.join("am-0.25-integrations-config.yml")).unwrap();
    let config = Config::parse(&config).unwrap();
    let mut dispatcher = Dispatcher::new(config);
    let text = std::fs::read_to_string(captures.join("am-0.25-notifications-webhook-slack-pagerduty.jsonl")).unwrap();
    let (mut total, mut passed) = (0, 0);
    let mut now = 0;
    for line in text.lines() {
        let capture: serde_json::Value = serde_json::from_str(line).unwrap();
        if capture["path"] != "/webhook" {
            continue;
        }
        total += 1;
        let raw = capture["raw"].as_str().unwrap();
        let body = &capture["body"];
        let mut posted = Vec::new();
        for alert in body["alerts"].as_array().unwrap() {
            let resolved = alert["status"] == "resolved";
            let time = |field: &str| parse_rfc3339(alert[field].as_str().unwrap()).unwrap();
            let labels = alert["labels"].as_object().unwrap();
            let annotations = alert["annotations"].as_object().unwrap();
            let start = time("startsAt").unwrap();
            let end = if resolved { time("endsAt") } else { None };
            now = now.max(end.unwrap_or(start));
            posted.push(PostableAlert {
                labels: labels.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect(),
                annotations: annotations.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect(),
                starts_at_ms: Some(start),
                ends_at_ms: end,
                generator_url: alert["generatorURL"].as_str().unwrap().to_string(),
            });
        }
        dispatcher.put_alerts(posted, now).unwrap();
        // Run the clock until the webhook integration has something to send.
        let mut sent = None;
        for _ in 0..100 {
            now = dispatcher.next_deadline().unwrap().max(now);
            for n in dispatcher.tick(now) {
                if n.integration.kind == "webhook" {
                    sent = Some(webhook_body(&n, body["externalURL"].as_str().unwrap(), 0));
                }
                dispatcher.notified(&n, true, now).unwrap();
            }
            if sent.is_some() {
                break;
            }
        }
        let sent = String::from_utf8(sent.expect("no webhook notification")).unwrap();
        let got: serde_json::Value = serde_json::from_str(&sent).unwrap();
        assert_eq!(&got, body, "field by field");
        assert_eq!(sent, raw, "byte for byte (Go's field order and escaping)");
        passed += 1;
    }
    assert!(total > 0);
    println!("conformance alertmanager webhook: {passed} of {total} captured bodies identical");
}

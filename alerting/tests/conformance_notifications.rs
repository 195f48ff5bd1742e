//! Webhook, Slack and PagerDuty bodies against the ones Alertmanager 0.25 sent (captures/ in
//! ../shared): the alerts of each captured webhook notification are posted to a dispatcher
//! configured like the capture run, and the bodies it produces for every integration of that
//! round must equal the captured bytes.

#[path = "../../testsupport/shared.rs"]
mod shared;

use std::collections::BTreeMap;

use sextant_alerting::alertmanager::{
    email_html, pagerduty_body, parse_rfc3339, slack_body, template_data, webhook_body, Config, Dispatcher,
    PostableAlert,
};

#[test]
fn webhook_bodies_match_alertmanager() {
    let Some(dir) = shared::shared_dir("alertmanager webhook") else { return };
    let captures = dir.join("conformance/alerting/captures");
    let config = std::fs::read_to_string(captures.join("am-0.25-integrations-config.yml")).unwrap();
    let config = Config::parse(&config).unwrap();
    let mut dispatcher = Dispatcher::new(config.clone());
    let templates = config.load_templates().unwrap();
    let receiver = &config.receivers[0];
    let text = std::fs::read_to_string(captures.join("am-0.25-notifications-webhook-slack-pagerduty.jsonl")).unwrap();
    let captures: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut passed: BTreeMap<String, usize> = BTreeMap::new();
    let mut emails: Vec<(String, String)> = Vec::new();
    let mut now = 0;
    for capture in &captures {
        if capture["path"] != "/webhook" {
            continue;
        }
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
        let external_url = body["externalURL"].as_str().unwrap();
        let mut sent: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for _ in 0..100 {
            now = dispatcher.next_deadline().unwrap().max(now);
            for n in dispatcher.tick(now) {
                let i = n.integration.index;
                let bytes = match n.integration.kind {
                    "webhook" => webhook_body(&n, external_url, 0),
                    "slack" => {
                        slack_body(&n, receiver.slack_configs[i].as_ref().unwrap(), external_url, &templates).unwrap()
                    }
                    "pagerduty" => {
                        pagerduty_body(&n, receiver.pagerduty_configs[i].as_ref().unwrap(), external_url, &templates)
                            .unwrap()
                    }
                    "email" => {
                        let html =
                            email_html(&n, receiver.email_configs[i].as_ref().unwrap(), external_url, &templates)
                                .unwrap();
                        let subject = templates
                            .execute_text(
                                r#"{{ template "email.default.subject" . }}"#,
                                &template_data(&n, external_url),
                            )
                            .unwrap();
                        emails.push((subject, html));
                        Vec::new()
                    }
                    _ => Vec::new(),
                };
                sent.insert(format!("/{}", n.integration.kind), bytes);
                dispatcher.notified(&n, true, now).unwrap();
            }
            if sent.contains_key("/webhook") {
                break;
            }
        }
        // The captures of the same round: within a second of this webhook capture.
        let t = capture["t"].as_f64().unwrap();
        for other in captures.iter().filter(|c| (c["t"].as_f64().unwrap() - t).abs() < 1.0) {
            let path = other["path"].as_str().unwrap();
            let Some(bytes) = sent.get(path) else { continue };
            let ours = String::from_utf8(bytes.clone()).unwrap();
            let got: serde_json::Value = serde_json::from_str(&ours).unwrap();
            assert_eq!(got, other["body"], "{path}: field by field");
            assert_eq!(ours, other["raw"].as_str().unwrap(), "{path}: byte for byte (Go's field order and escaping)");
            *passed.entry(path.to_string()).or_default() += 1;
        }
        assert_eq!(sent.get("/webhook").map(|b| String::from_utf8_lossy(b).into_owned()).as_deref(), Some(raw));
    }
    let total = captures.iter().filter(|c| c["path"] != "/email").count();
    let n_passed: usize = passed.values().sum();
    assert_eq!(n_passed, total, "every captured webhook/slack/pagerduty body reproduced: {passed:?}");
    println!("conformance alertmanager notifications: {n_passed} of {total} captured bodies identical ({passed:?})");

    // E-mail: Sextant's own `email.default.html` has Alertmanager's structure: the same
    // subject, the same visible text in the same order and the same links.
    let text = std::fs::read_to_string(dir.join("conformance/alerting/captures/am-0.25-email-smtp.jsonl")).unwrap();
    let mut n_emails = 0;
    let mut n_same = 0;
    for line in text.lines() {
        let data: serde_json::Value = serde_json::from_str(line).unwrap();
        let message = data["data"].as_str().unwrap();
        let subject = message.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap();
        let html = decode_quoted_printable(message.splitn(3, "\n\n").nth(2).unwrap());
        n_emails += 1;
        let want = (visible_text(&html), hrefs(&html));
        let ours: Vec<_> =
            emails.iter().filter(|(s, _)| s == subject).map(|(_, h)| (visible_text(h), hrefs(h))).collect();
        assert!(ours.contains(&want), "no e-mail like {subject:?}: want {want:?}, ours {ours:?}");
        n_same += 1;
    }
    println!("conformance alertmanager email html: {n_same} of {n_emails} captured e-mails with the same subject, text and links");
}

fn decode_quoted_printable(text: &str) -> String {
    let text = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The text a reader sees, without `<head>` (title, style) or the MIME boundary.
fn visible_text(html: &str) -> String {
    let body = html.split("<body").nth(1).unwrap_or("");
    let body = body.split_once('>').map_or("", |(_, rest)| rest);
    let body = body.split("</html>").next().unwrap_or("");
    let mut out = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn hrefs(html: &str) -> Vec<String> {
    html.split("href=\"").skip(1).map(|rest| rest.split('"').next().unwrap_or("").to_string()).collect()
}

// Runs an Alertmanager timeline in virtual time: alerts re-posted every 2 s with
// endsAt = now + 60 s as Prometheus does, or with their resolution time once resolved;
// the dispatcher's notifications rendered as the reference timeline files print them.

use sextant_alerting::alertmanager::{Config, Dispatcher, Notification, PostableAlert};

#[allow(dead_code)]
pub const CONFIG: &str = r#"
route:
  receiver: sr
  group_by: [alertname]
  group_wait: 2s
  group_interval: 5s
  repeat_interval: 12s
receivers:
- name: sr
  webhook_configs:
  - url: http://127.0.0.1:1/sr-true
    send_resolved: true
  - url: http://127.0.0.1:1/sr-false
    send_resolved: false
"#;

/// One `POST` event of a timeline: alert name, time in ms, resolved or first time.
#[derive(Debug, Clone)]
pub struct Post {
    pub name: String,
    pub t_ms: i64,
    pub resolve: bool,
}

/// Parses the `POST` lines of a timeline file.
#[allow(dead_code)]
pub fn posts(timeline: &str) -> Vec<Post> {
    timeline
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("t=")?;
            let (t, event) = rest.trim_start().split_once(char::is_whitespace)?;
            let words: Vec<&str> = event.split_whitespace().collect();
            if words.first() != Some(&"POST") {
                return None;
            }
            let t_ms = (t.parse::<f64>().ok()? * 1000.0).round() as i64;
            Some(Post { name: words[1].to_string(), t_ms, resolve: words.get(2) == Some(&"resolved") })
        })
        .collect()
}

/// The `NOTIFY` lines of a timeline, normalised: `t=2.0 /sr-true firing A:firing`, sorted.
#[allow(dead_code)]
pub fn notify_lines(timeline: &str) -> Vec<String> {
    let mut out: Vec<String> = timeline
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("t=")?;
            let words: Vec<&str> = rest.split_whitespace().collect();
            if words.get(1) != Some(&"NOTIFY") {
                return None;
            }
            let t: f64 = words[0].parse().ok()?;
            let status = words[3].strip_prefix("status=")?;
            let alerts = words[4].strip_prefix("alerts=")?;
            Some(format!("t={t:.1} {} {status} {alerts}", words[2]))
        })
        .collect();
    out.sort();
    out
}

/// Runs the posts through a dispatcher configured with `config` and returns its
/// notifications in the form of [`notify_lines`]. Every send succeeds.
#[allow(dead_code)]
pub fn run(config: &str, posts: &[Post]) -> Vec<String> {
    let config = Config::parse(config).unwrap();
    let mut dispatcher = Dispatcher::new(config.clone());
    let end = posts.iter().map(|p| p.t_ms).max().unwrap_or(0) + 20_000;
    // (name, start, resolved at)
    let mut alerts: Vec<(String, i64, Option<i64>)> = Vec::new();
    let mut sent = Vec::new();
    let mut next_post = 0;
    let mut now = 0;
    while now <= end {
        for p in posts.iter().filter(|p| p.t_ms == now) {
            match alerts.iter_mut().find(|a| a.0 == p.name) {
                Some(a) if p.resolve => a.2 = Some(now),
                Some(_) => {}
                None => alerts.push((p.name.clone(), now, None)),
            }
        }
        if now == next_post || posts.iter().any(|p| p.t_ms == now) {
            let batch = alerts
                .iter()
                .map(|(name, start, resolved)| PostableAlert {
                    labels: vec![("alertname".into(), "Timeline".into()), ("name".into(), name.clone())],
                    starts_at_ms: Some(*start),
                    ends_at_ms: Some(resolved.unwrap_or(now + 60_000)),
                    ..PostableAlert::default()
                })
                .collect();
            dispatcher.put_alerts(batch, now).unwrap();
            if now == next_post {
                next_post += 2000;
            }
        }
        for n in dispatcher.tick(now) {
            sent.push(render(&config, &n));
            dispatcher.notified(&n, true, now).unwrap();
        }
        let deadline = dispatcher.next_deadline().unwrap_or(i64::MAX);
        let next_event = posts.iter().map(|p| p.t_ms).filter(|t| *t > now).min().unwrap_or(i64::MAX);
        now = deadline.max(now + 1).min(next_post).min(next_event);
    }
    sent.sort();
    sent
}

fn render(config: &Config, n: &Notification) -> String {
    let receiver = config.receivers.iter().find(|r| r.name == n.receiver).unwrap();
    let url = receiver.webhook_configs[n.integration.index].as_ref().unwrap().url.clone().unwrap();
    let path = &url[url.rfind('/').unwrap()..];
    let alerts: Vec<String> = n
        .alerts
        .iter()
        .map(|a| {
            format!("{}:{}", a.alert.labels.get("name").unwrap_or("?"), if a.resolved { "resolved" } else { "firing" })
        })
        .collect();
    format!("t={:.1} {path} {} {}", n.now_ms as f64 / 1000.0, n.status(), alerts.join(","))
}

//! The notification pipeline through the public API: inhibition, silences, failed sends,
//! restarts with a persisted notification log.

use sextant_alerting::alertmanager::{parse_matchers, Config, Dispatcher, Matchers, ParseMode, PostableAlert, Silence};

const CONFIG: &str = r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
inhibit_rules:
- source_matchers: [severity=page]
  target_matchers: [severity=info]
  equal: [cluster]
receivers:
- name: hook
  webhook_configs: [{url: 'http://127.0.0.1:1/a'}]
"#;

fn alert(pairs: &[(&str, &str)], start: i64, end: Option<i64>) -> PostableAlert {
    PostableAlert {
        labels: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        starts_at_ms: Some(start),
        ends_at_ms: end,
        ..PostableAlert::default()
    }
}

/// Ticks at `now` and returns the notified alerts' `name` labels with status, marking every
/// send as `ok`.
fn tick(d: &mut Dispatcher, now: i64, ok: bool) -> Vec<String> {
    let mut out = Vec::new();
    for n in d.tick(now) {
        for a in &n.alerts {
            out.push(format!(
                "{}:{}",
                a.alert.labels.get("name").unwrap(),
                if a.resolved { "resolved" } else { "firing" }
            ));
        }
        d.notified(&n, ok, now).unwrap();
    }
    out.sort();
    out
}

#[test]
fn inhibited_alerts_are_held_back_until_the_source_resolves() {
    let mut d = Dispatcher::new(Config::parse(CONFIG).unwrap());
    let page = [("alertname", "X"), ("name", "p"), ("severity", "page"), ("cluster", "a")];
    let info = [("alertname", "Y"), ("name", "i"), ("severity", "info"), ("cluster", "a")];
    let other = [("alertname", "Y"), ("name", "o"), ("severity", "info"), ("cluster", "b")];
    d.put_alerts(
        vec![alert(&page, 0, Some(600_000)), alert(&info, 0, Some(600_000)), alert(&other, 0, Some(600_000))],
        0,
    )
    .unwrap();
    assert_eq!(tick(&mut d, 1000, true), ["o:firing", "p:firing"]);
    d.put_alerts(vec![alert(&page, 0, Some(3000))], 3000).unwrap();
    // i is new in group Y, so that group (with o) is notified again.
    assert_eq!(tick(&mut d, 6000, true), ["i:firing", "o:firing", "p:resolved"]);
}

#[test]
fn silenced_alerts_are_not_notified() {
    let mut d = Dispatcher::new(Config::parse(CONFIG).unwrap());
    let silence = Silence {
        id: String::new(),
        matchers: Matchers(parse_matchers("name=s", ParseMode::Fallback).unwrap()),
        starts_at_ms: 0,
        ends_at_ms: 7000,
        updated_at_ms: 0,
        created_by: "t".into(),
        comment: "t".into(),
    };
    let id = d.silences_mut().set(silence, 0).unwrap();
    d.put_alerts(vec![alert(&[("alertname", "X"), ("name", "s")], 0, Some(600_000))], 0).unwrap();
    d.put_alerts(vec![alert(&[("alertname", "X"), ("name", "t")], 0, Some(600_000))], 0).unwrap();
    assert_eq!(tick(&mut d, 1000, true), ["t:firing"]);
    let alert_s = d.alerts().find(|a| a.labels.get("name") == Some("s")).unwrap().clone();
    assert_eq!(d.status(&alert_s, 1000).silenced_by, vec![id]);
    // The silence ends at 7s: the alert shows up at the next tick as a new firing alert.
    assert_eq!(tick(&mut d, 6000, true), Vec::<String>::new());
    assert_eq!(tick(&mut d, 11_000, true), ["s:firing", "t:firing"]);
}

#[test]
fn failed_sends_are_retried_at_the_next_tick() {
    let mut d = Dispatcher::new(Config::parse(CONFIG).unwrap());
    d.put_alerts(vec![alert(&[("alertname", "X"), ("name", "a")], 0, Some(600_000))], 0).unwrap();
    assert_eq!(tick(&mut d, 1000, false), ["a:firing"]);
    assert_eq!(tick(&mut d, 6000, true), ["a:firing"]);
    assert_eq!(tick(&mut d, 11_000, true), Vec::<String>::new());
}

#[test]
fn restart_sends_no_duplicate_and_keeps_silences() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(CONFIG).unwrap();
    let firing = alert(&[("alertname", "X"), ("name", "a")], 0, Some(600_000));
    let silence_id = {
        let mut d = Dispatcher::open(config.clone(), dir.path()).unwrap();
        d.put_alerts(vec![firing.clone()], 0).unwrap();
        assert_eq!(tick(&mut d, 1000, true), ["a:firing"]);
        let silence = Silence {
            id: String::new(),
            matchers: Matchers(parse_matchers("name=zzz", ParseMode::Fallback).unwrap()),
            starts_at_ms: 0,
            ends_at_ms: 3_600_000,
            updated_at_ms: 0,
            created_by: "t".into(),
            comment: "t".into(),
        };
        d.silences_mut().set(silence, 1000).unwrap()
        // Dropped without any shutdown step, as by kill -9.
    };
    let mut d = Dispatcher::open(config, dir.path()).unwrap();
    assert!(d.silences().get(&silence_id).is_some());
    // Prometheus re-sends the alert; it is older than group_wait so the group flushes at once.
    d.put_alerts(vec![firing], 20_000).unwrap();
    assert_eq!(d.next_deadline(), Some(20_000));
    assert_eq!(tick(&mut d, 20_000, true), Vec::<String>::new(), "already notified before the restart");
    d.put_alerts(vec![alert(&[("alertname", "X"), ("name", "b")], 21_000, Some(600_000))], 21_000).unwrap();
    assert_eq!(tick(&mut d, 25_000, true), ["a:firing", "b:firing"]);
}

#[test]
fn invalid_alerts_are_rejected_and_valid_ones_kept() {
    let mut d = Dispatcher::new(Config::parse(CONFIG).unwrap());
    let err = d.put_alerts(vec![alert(&[("a", "")], 0, None), alert(&[("alertname", "X"), ("name", "v")], 0, None)], 0);
    assert_eq!(err.unwrap_err().to_string(), "at least one label pair required");
    assert_eq!(d.alerts().count(), 1);
    assert_eq!(tick(&mut d, 1000, true), ["v:firing"]);
}

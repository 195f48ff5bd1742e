//! Random and mutated inputs to the Alertmanager parsers: errors, never panics.

use proptest::prelude::*;
use sextant_alerting::alertmanager::{
    classic_matchers, parse_matcher, parse_matchers, utf8_matchers, Config, MatchType, Matcher, ParseMode, PromDuration,
};
use sextant_model::Labels;

const SEED_CONFIG: &str = r#"
global: {resolve_timeout: 5m, smtp_smarthost: 'localhost:25', smtp_from: a@b}
route:
  receiver: default
  group_by: [alertname]
  routes:
  - matchers: ['env=~"prod|stag.*"', 'team!="x"']
    match: {a: b}
    match_re: {c: 'd+'}
    receiver: web
    continue: true
    group_wait: 1m
    mute_time_intervals: [night]
inhibit_rules:
- source_matchers: [severity=critical]
  target_matchers: [severity=warning]
  equal: [cluster]
receivers:
- name: default
- name: web
  webhook_configs: [{url: 'http://127.0.0.1:1/x'}]
  email_configs: [{to: x@y}]
time_intervals:
- name: night
  time_intervals: [{times: [{start_time: '00:00', end_time: '06:00'}], weekdays: ['monday:friday']}]
"#;

fn mutate(seed: &str, edits: &[(usize, u8)]) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for &(pos, byte) in edits {
        if bytes.is_empty() {
            break;
        }
        let i = pos % bytes.len();
        match byte % 3 {
            0 => {
                let alphabet = b" :{}[],'\"-=~!\n\\#*&.0123456789abz";
                bytes[i] = alphabet[(byte as usize / 3) % alphabet.len()];
            }
            1 => {
                bytes.remove(i);
            }
            _ => bytes.insert(i, byte % 96 + 32),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn matchers_never_panic(input in "[ -~🙂é\\n]{0,40}") {
        for mode in [ParseMode::Fallback, ParseMode::Classic, ParseMode::Utf8Strict] {
            let _ = parse_matchers(&input, mode);
            let _ = parse_matcher(&input, mode);
        }
    }

    #[test]
    fn matcher_like_inputs_never_panic(name in "[a-z\"{}]{0,4}", op in "(=|!=|=~|!~|!|~)", value in "[a-z\"\\\\,{}()*.+ ]{0,8}") {
        let input = format!("{{{name}{op}{value}}}");
        let _ = parse_matchers(&input, ParseMode::Fallback);
    }

    /// Fallback mode: the UTF-8 result if valid and the same as the classic one, else classic.
    #[test]
    fn fallback_is_the_documented_choice(name in "[a-z\"]{1,3}", op in "(=|!=|=~|!~)", value in "[a-z\"\\\\,(|.*]{0,6}") {
        let input = format!("{{{name}{op}{value}}}");
        let expected = match (utf8_matchers(&input), classic_matchers(&input)) {
            (Ok(u), Ok(c)) => Ok(if u == c { u } else { c }),
            (Ok(u), Err(_)) => Ok(u),
            (Err(_), c) => c,
        };
        let got = parse_matchers(&input, ParseMode::Fallback);
        prop_assert_eq!(got.as_ref().ok(), expected.as_ref().ok());
        prop_assert_eq!(got.err().map(|e| e.to_string()), expected.err().map(|e| e.to_string()));
    }

    #[test]
    fn regexes_never_panic(re in r"[\\\[\]^:&~a-zQEdDwWsSbB.*+?(){}|-]{0,16}", input in "[a-z0-9\\[\\]&~ ]{0,6}") {
        if let Ok(m) = Matcher::new(MatchType::Regexp, "a", re) {
            let _ = m.matches(&input);
        }
    }

    #[test]
    fn durations_never_panic(input in "[0-9ywdhms]{0,12}") {
        if let Some(d) = PromDuration::parse(&input) {
            prop_assert_eq!(PromDuration::parse(&d.to_string()), Some(d));
        }
    }

    #[test]
    fn mutated_configs_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let text = mutate(SEED_CONFIG, &edits);
        if let Ok(config) = Config::parse(&text) {
            let alert = Labels::from_pairs([("env", "prod"), ("a", "b"), ("c", "dd")]);
            prop_assert!(!config.route.matches(&alert).is_empty());
        }
    }
}

#[test]
fn seed_config_loads() {
    let config = Config::parse(SEED_CONFIG).unwrap();
    let alert = Labels::from_pairs([("env", "prod"), ("a", "b"), ("c", "dd")]);
    let receivers: Vec<_> = config.route.matches(&alert).iter().map(|r| r.opts.receiver.clone()).collect();
    assert_eq!(receivers, ["web"]);
}

const SEED_ALERTS: &str = r#"[{"labels":{"alertname":"A","instance":"i:1"},"annotations":{"summary":"s"},
"startsAt":"2026-11-22T03:39:18.887Z","endsAt":"2026-11-22T03:44:18+02:00","generatorURL":"http://g"}]"#;

proptest! {
    #[test]
    fn rfc3339_times_round_trip(ms in -62_135_596_800_000i64..253_402_300_799_000) {
        use sextant_alerting::alertmanager::{format_rfc3339, parse_rfc3339};
        let text = format_rfc3339(ms);
        let back = parse_rfc3339(&text).unwrap();
        // Go's zero time is the one instant that reads back as "not set".
        prop_assert!(back == Some(ms) || (back.is_none() && ms == -62_135_596_800_000), "{text}");
    }

    #[test]
    fn rfc3339_parser_never_panics(s in "\\PC{0,40}", edits in prop::collection::vec((0usize..40, any::<u8>()), 0..4)) {
        let _ = sextant_alerting::alertmanager::parse_rfc3339(&s);
        let _ = sextant_alerting::alertmanager::parse_rfc3339(&mutate("2026-11-22T03:39:18.887+02:00", &edits));
    }

    #[test]
    fn posted_alerts_never_panic(edits in prop::collection::vec((0usize..220, any::<u8>()), 0..6)) {
        use sextant_alerting::alertmanager::{Dispatcher, PostableAlert};
        let body = mutate(SEED_ALERTS, &edits);
        if let Ok(alerts) = PostableAlert::parse_json(body.as_bytes()) {
            let mut dispatcher = Dispatcher::new(Config::parse(SEED_CONFIG).unwrap());
            let _ = dispatcher.put_alerts(alerts, 1_795_318_758_887);
            for n in dispatcher.tick(i64::MAX / 2) {
                let _ = sextant_alerting::alertmanager::webhook_body(&n, "http://x", 1);
            }
        }
    }
}

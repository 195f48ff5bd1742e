//! Alertmanager routing hot paths: matching an alert through the documentation's example
//! tree (with a group key per matched route), and parsing matcher strings.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use sextant_alerting::alertmanager::{parse_matchers, Config, ParseMode};
use sextant_model::Labels;

const CONFIG: &str = r#"
route:
  receiver: team-X-mails
  group_by: ['alertname', 'cluster', 'service']
  routes:
  - matchers: ['service=~"foo1|foo2|baz"']
    receiver: team-X-mails
    routes:
    - matchers: [severity="critical"]
      receiver: team-X-pager
  - matchers: [service="files"]
    receiver: team-Y-mails
    routes:
    - matchers: [severity="critical"]
      receiver: team-Y-pager
  - matchers: [service="database"]
    receiver: team-DB-pager
    group_by: [alertname, cluster, database]
    routes:
    - matchers: [owner="team-X"]
      receiver: team-X-pager
      continue: true
    - matchers: [owner="team-Y"]
      receiver: team-Y-pager
receivers: [{name: team-X-mails}, {name: team-X-pager}, {name: team-Y-mails}, {name: team-Y-pager}, {name: team-DB-pager}]
"#;

fn routing(c: &mut Criterion) {
    let config = Config::parse(CONFIG).expect("config loads");
    let alert = Labels::from_pairs([
        ("alertname", "DatabaseDown"),
        ("cluster", "eu-1"),
        ("database", "orders"),
        ("owner", "team-X"),
        ("service", "database"),
        ("severity", "critical"),
    ]);
    c.bench_function("am_route_match_and_group_key", |b| {
        b.iter(|| {
            let routes = config.route.matches(black_box(&alert));
            routes.iter().map(|r| r.group_key(&alert).len()).sum::<usize>()
        })
    });
    c.bench_function("am_parse_matchers_fallback", |b| {
        b.iter(|| {
            parse_matchers(black_box(r#"{env=~"prod|staging", severity!="info", team="db"}"#), ParseMode::Fallback)
        })
    });
    c.bench_function("am_config_parse", |b| b.iter(|| Config::parse(black_box(CONFIG))));
}

criterion_group!(benches, routing);
criterion_main!(benches);

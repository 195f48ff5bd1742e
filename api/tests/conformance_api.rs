//! Our router against responses captured from Prometheus 2.42 (`../shared/conformance/api/`):
//! the same data (the golden server's self-scrape, reduced to the series the requests touch)
//! is loaded into `MemStorage`, the same requests go through the router in process, and the
//! answers are compared: status code and content type always, then the JSON structure (keys,
//! value types) or, where the result is deterministic, the exact body.

#[path = "../../testsupport/shared.rs"]
mod shared;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request};
use serde_json::Value;
use sextant_api::{
    ActiveTarget, Alert, AlertingRuleStatus, Api, ApiOptions, RuleGroup, RuleStatus, RulesProvider, TargetMetadata,
    TargetsProvider,
};
use sextant_model::{Appendable, Labels, ManualClock, MemStorage};
use tower::ServiceExt;

/// How a response is compared with its golden.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Compare {
    /// The JSON bodies are equal.
    Exact,
    /// Same keys and value types; arrays compared by their first element.
    Structure,
    /// Like `Structure`, but `data` is an object keyed by data (metric names, flags): only the
    /// shape of its values is compared.
    DataMap,
    /// Status and content type only (text bodies that name the server).
    Status,
    /// Text bodies compared line by line as sets of (name, sorted labels, value, timestamp).
    Federation,
}

struct Case {
    golden: &'static str,
    method: Method,
    uri: &'static str,
    form: Option<&'static str>,
    compare: Compare,
}

fn case(golden: &'static str, uri: &'static str, compare: Compare) -> Case {
    Case { golden, method: Method::GET, uri, form: None, compare }
}

fn cases() -> Vec<Case> {
    use Compare::*;
    let mut v = vec![
        case("query_vector", "/api/v1/query?query=up&time=1795318561", Exact),
        case("query_scalar", "/api/v1/query?query=1%2B1&time=4", Exact),
        case("query_string", "/api/v1/query?query=%22hello%22&time=1795318561", Exact),
        case(
            "query_nan_inf",
            "/api/v1/query?query=vector(0%2F0)%20or%20label_replace(vector(1%2F0),%22a%22,%22b%22,%22%22,%22%22)%20or%20label_replace(vector(-1%2F0),%22a%22,%22c%22,%22%22,%22%22)&time=1795318561",
            Exact,
        ),
        case("query_matrix_instant", "/api/v1/query?query=up%5B10s%5D&time=1795318561", Exact),
        case("query_range", "/api/v1/query_range?query=up&start=1795318541&end=1795318561&step=5", Exact),
        case(
            "query_range_float_step",
            "/api/v1/query_range?query=up&start=1795318533.5&end=1795318564&step=30.5",
            Exact,
        ),
        case(
            "query_range_rate",
            "/api/v1/query_range?query=rate(no_such_metric%5B1m%5D)&start=1795318541&end=1795318561&step=5",
            Exact,
        ),
        case(
            "query_range_rate_up",
            "/api/v1/query_range?query=rate(up%5B1m%5D)&start=1795318541&end=1795318561&step=5",
            Exact,
        ),
        case("query_rfc3339", "/api/v1/query?query=up&time=2026-11-22T03:36:12.123Z", Exact),
        case("query_stats_all", "/api/v1/query?query=up&time=1795318561&stats=all", Structure),
        case("err_bad_duration", "/api/v1/query?query=up&timeout=1ns", Exact),
        case("err_bad_time", "/api/v1/query?query=up&time=notatime", Exact),
        case("err_end_before_start", "/api/v1/query_range?query=up&start=2&end=1&step=1", Exact),
        case(
            "err_exec_422",
            "/api/v1/query?query=label_replace(up,%22x%22,%22%241%22,%22job%22,%22(%22)&time=1795318561",
            Structure,
        ),
        case(
            "err_exec_duplicate_series",
            "/api/v1/query?query=up%20%2B%20on(job)%20%7B__name__%3D~%22go_info%7Cgo_goroutines%22%7D&time=1795318561",
            Structure,
        ),
        case("err_missing_query", "/api/v1/query?time=1795318561", Exact),
        case("err_parse", "/api/v1/query?query=sum(&time=1795318561", Exact),
        case("err_step_zero", "/api/v1/query_range?query=up&start=1&end=2&step=0", Exact),
        case("err_timeout_503", "/api/v1/query?query=up&time=1795318561&timeout=0.000001", Exact),
        case("err_too_many_points", "/api/v1/query_range?query=up&start=0&end=100000&step=1", Exact),
        case("series", "/api/v1/series?match%5B%5D=up&match%5B%5D=prometheus_build_info", Exact),
        case("series_nomatch", "/api/v1/series", Exact),
        case("labels", "/api/v1/labels", Structure),
        case("labels_match", "/api/v1/labels?match%5B%5D=up", Exact),
        case("label_values_job", "/api/v1/label/job/values", Exact),
        case("label_values_empty", "/api/v1/label/no_such_label/values", Exact),
        case("label_values_name_limit", "/api/v1/label/__name__/values", Structure),
        case("metadata_limit", "/api/v1/metadata?limit=5", DataMap),
        case("metadata_metric", "/api/v1/metadata?metric=no_such_metric", Exact),
        case("targets", "/api/v1/targets", Structure),
        case("targets_metadata", "/api/v1/targets/metadata?metric=go_goroutines", Exact),
        case("scrape_pools", "/api/v1/scrape_pools", Exact),
        case("rules", "/api/v1/rules", Structure),
        case("alerts", "/api/v1/alerts", Structure),
        case("alertmanagers", "/api/v1/alertmanagers", Exact),
        case("buildinfo", "/api/v1/status/buildinfo", Structure),
        case("config", "/api/v1/status/config", Structure),
        case("flags", "/api/v1/status/flags", DataMap),
        case("runtimeinfo", "/api/v1/status/runtimeinfo", Structure),
        case("tsdb_status", "/api/v1/status/tsdb", Structure),
        case("walreplay", "/api/v1/status/walreplay", Exact),
        case("query_exemplars", "/api/v1/query_exemplars?query=up&start=1795318541&end=1795318561", Exact),
        case(
            "query_exemplars_grafana_ms",
            "/api/v1/query_exemplars?query=test&start=1795318541000&end=1795318561000",
            Exact,
        ),
        case(
            "format_query",
            "/api/v1/format_query?query=sum(rate(foo%7Ba%3D%22b%22%7D%5B5m%5D))%20by%20(job)",
            Exact,
        ),
        case("unknown_endpoint", "/api/v1/no_such_endpoint", Exact),
        case("federate", "/federate?match%5B%5D=up&match%5B%5D=job%3Aup%3Asum", Federation),
        case("federate_nomatch", "/federate", Exact),
        case("metrics_text", "/metrics", Status),
        case("healthy", "/-/healthy", Status),
        case("ready", "/-/ready", Status),
    ];
    v.push(Case {
        golden: "query_post_form",
        method: Method::POST,
        uri: "/api/v1/query",
        form: Some("query=sum+by+(job)+(up)&time=1795318561"),
        compare: Exact,
    });
    v.push(Case { golden: "options_cors", method: Method::OPTIONS, uri: "/api/v1/query", form: None, compare: Status });
    v
}

/// Goldens we do not compare yet, with the reason.
const SKIP: &[(&str, &str)] = &[];

const T0: i64 = 1_795_318_527_354;
const T_END: i64 = 1_795_318_561_354;

fn target() -> Labels {
    Labels::from_pairs([("env", "test"), ("instance", "127.0.0.1:19091"), ("job", "prometheus")])
}

fn with_name(name: &str, base: &Labels, extra: &[(&str, &str)]) -> Labels {
    let mut pairs: Vec<(String, String)> = base.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect();
    pairs.push(("__name__".into(), name.into()));
    pairs.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    Labels::from_pairs(pairs)
}

/// The golden server's series the requests look at, every 2 s as it scraped itself.
fn load() -> MemStorage {
    let db = MemStorage::new();
    {
        let mut app = db.appender();
        let t = target();
        let build_info = with_name(
            "prometheus_build_info",
            &t,
            &[
                ("branch", "debian/sid"),
                ("goarch", "amd64"),
                ("goos", "linux"),
                ("goversion", "go1.19.8"),
                ("revision", "2.42.0+ds-5+deb12u1"),
                ("version", "2.42.0+ds"),
            ],
        );
        let go_info = with_name("go_info", &t, &[("version", "go1.19.8")]);
        let mut ts = T0;
        while ts <= T_END {
            app.append(&with_name("up", &t, &[]), ts, 1.0).unwrap();
            app.append(&build_info, ts, 1.0).unwrap();
            app.append(&go_info, ts, 1.0).unwrap();
            app.append(&with_name("go_goroutines", &t, &[]), ts, 36.0).unwrap();
            app.append(&Labels::from_pairs([("__name__", "job:up:sum"), ("job", "prometheus")]), ts + 203, 1.0)
                .unwrap();
            ts += 2000;
        }
        app.commit().unwrap();
    }
    db
}

/// The golden server's one target, as the scrape manager would report it.
#[derive(Debug)]
struct Targets;

impl TargetsProvider for Targets {
    fn scrape_pools(&self) -> Vec<String> {
        vec!["prometheus".into()]
    }
    fn active_targets(&self) -> Vec<ActiveTarget> {
        vec![ActiveTarget {
            discovered_labels: Labels::from_pairs([
                ("__address__", "127.0.0.1:19091"),
                ("__metrics_path__", "/metrics"),
                ("__scheme__", "http"),
                ("__scrape_interval__", "2s"),
                ("__scrape_timeout__", "2s"),
                ("env", "test"),
                ("job", "prometheus"),
            ]),
            labels: target(),
            scrape_pool: "prometheus".into(),
            scrape_url: "http://127.0.0.1:19091/metrics".into(),
            global_url: "http://vm:19091/metrics".into(),
            last_error: String::new(),
            last_scrape_ms: Some(T_END),
            last_scrape_duration_seconds: 0.0045,
            health: "up".into(),
            scrape_interval: "2s".into(),
            scrape_timeout: "2s".into(),
        }]
    }
    fn dropped_targets(&self) -> Vec<sextant_api::DroppedTarget> {
        Vec::new()
    }
    fn metadata(&self) -> Vec<TargetMetadata> {
        vec![
            TargetMetadata {
                target: target(),
                metric: "go_goroutines".into(),
                metric_type: "gauge".into(),
                help: "Number of goroutines that currently exist.".into(),
                unit: String::new(),
            },
            TargetMetadata {
                target: target(),
                metric: "up".into(),
                metric_type: "unknown".into(),
                help: String::new(),
                unit: String::new(),
            },
        ]
    }
}

/// The golden server's rule file: one recording rule, one always-firing alert.
#[derive(Debug)]
struct Rules;

impl Rules {
    fn alert() -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", "AlwaysFiring"), ("severity", "info")]),
            annotations: Labels::from_pairs([("summary", "test alert 1")]),
            state: "firing".into(),
            active_at_ms: T0,
            value: 1.0,
        }
    }
}

impl RulesProvider for Rules {
    fn rule_groups(&self) -> Vec<RuleGroup> {
        vec![RuleGroup {
            name: "example".into(),
            file: "promrun/rules.yml".into(),
            interval_seconds: 2.0,
            rules: vec![
                RuleStatus {
                    name: "job:up:sum".into(),
                    query: "sum by (job) (up)".into(),
                    labels: Labels::empty(),
                    alerting: None,
                    health: "ok".into(),
                    last_error: String::new(),
                    evaluation_seconds: 0.0004,
                    last_evaluation_ms: Some(T_END),
                },
                RuleStatus {
                    name: "AlwaysFiring".into(),
                    query: "vector(1)".into(),
                    labels: Labels::from_pairs([("severity", "info")]),
                    alerting: Some(AlertingRuleStatus {
                        state: "firing".into(),
                        duration_seconds: 0.0,
                        annotations: Labels::from_pairs([("summary", "test alert {{ $value }}")]),
                        alerts: vec![Rules::alert()],
                    }),
                    health: "ok".into(),
                    last_error: String::new(),
                    evaluation_seconds: 0.0004,
                    last_evaluation_ms: Some(T_END),
                },
            ],
            evaluation_seconds: 0.0008,
            last_evaluation_ms: Some(T_END),
        }]
    }
    fn alerts(&self) -> Vec<Alert> {
        vec![Rules::alert()]
    }
}

fn api() -> Api {
    let mut options = ApiOptions {
        external_labels: Labels::from_pairs([("cluster", "edge-a")]),
        config_yaml: "global:\n  scrape_interval: 2s\n".into(),
        ..ApiOptions::default()
    };
    options.engine.semantics = sextant_promql::Semantics::Prometheus2;
    options.flags.insert("query.lookback-delta".into(), "5m".into());
    options.flags.insert("web.listen-address".into(), "127.0.0.1:9090".into());
    let clock = Arc::new(ManualClock::new(T_END + 646));
    Api::with_clock(Arc::new(load()), options, clock).with_targets(Arc::new(Targets)).with_rules(Arc::new(Rules))
}

/// Where two JSON values differ in structure (keys or types), if anywhere.
fn structure_diff(path: &str, ours: &Value, golden: &Value, data_map_at: Option<&str>) -> Option<String> {
    match (ours, golden) {
        (Value::Object(a), Value::Object(b)) => {
            if data_map_at == Some(path) {
                let (Some(x), Some(y)) = (a.values().next(), b.values().next()) else { return None };
                return structure_diff(&format!("{path}.*"), x, y, data_map_at);
            }
            let missing: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
            let extra: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
            if !missing.is_empty() || !extra.is_empty() {
                return Some(format!("{path}: missing keys {missing:?}, extra keys {extra:?}"));
            }
            b.iter().find_map(|(k, v)| structure_diff(&format!("{path}.{k}"), &a[k], v, data_map_at))
        }
        (Value::Array(a), Value::Array(b)) => match (a.first(), b.first()) {
            (Some(x), Some(y)) => structure_diff(&format!("{path}[0]"), x, y, data_map_at),
            (None, Some(_)) => Some(format!("{path}: empty array, golden has elements")),
            _ => None,
        },
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => None,
        (Value::Null, Value::Null) => None,
        _ => Some(format!("{path}: type differs: ours {ours}, golden {golden}")),
    }
}

/// Federation text as a sorted list of (name, sorted labels, value, timestamp) plus TYPE lines.
fn federation_lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with('#') {
                return line.to_string();
            }
            let (series, rest) = line.split_once('}').unwrap_or((line, ""));
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let mut pairs: Vec<&str> = labels.split(',').collect();
            pairs.sort();
            format!("{name}{{{}}}{rest}", pairs.join(","))
        })
        .collect();
    out.sort();
    out
}

async fn check(api: &Api, dir: &std::path::Path, c: &Case) -> Result<(), String> {
    let golden_status = std::fs::read_to_string(dir.join(format!("{}.status", c.golden))).map_err(|e| e.to_string())?;
    let golden_body = std::fs::read_to_string(dir.join(format!("{}.body", c.golden))).unwrap_or_default();
    let (code, content_type) = golden_status.trim_end().split_once(' ').unwrap_or((golden_status.trim(), ""));
    let mut request = Request::builder().method(c.method.clone()).uri(c.uri);
    let body = match c.form {
        Some(form) => {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(form)
        }
        None => Body::empty(),
    };
    let response = api.router().oneshot(request.body(body).unwrap()).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16().to_string();
    let ours_ct =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.map_err(|e| e.to_string())?;
    let ours = String::from_utf8_lossy(&bytes).to_string();
    if status != code {
        return Err(format!("status {status}, golden {code}; body {ours}"));
    }
    if ours_ct != content_type.trim() {
        return Err(format!("content type {ours_ct:?}, golden {content_type:?}"));
    }
    match c.compare {
        Compare::Status => Ok(()),
        Compare::Federation => {
            let (a, b) = (federation_lines(&ours), federation_lines(&golden_body));
            if a == b {
                Ok(())
            } else {
                Err(format!("ours {a:?}\ngolden {b:?}"))
            }
        }
        _ if !content_type.contains("json") => {
            if ours == golden_body {
                Ok(())
            } else {
                Err(format!("body {ours:?}, golden {golden_body:?}"))
            }
        }
        compare => {
            let mut a: Value =
                serde_json::from_str(&ours).map_err(|e| format!("our body is not JSON ({e}): {ours}"))?;
            // PromQL infos (`metric might not be a counter`) appeared after 2.42, which has none.
            if let Some(obj) = a.as_object_mut() {
                obj.remove("infos");
            }
            let b: Value = serde_json::from_str(&golden_body).map_err(|e| format!("golden is not JSON: {e}"))?;
            match compare {
                Compare::Exact if a != b => Err(format!("body\n  ours   {ours}\n  golden {golden_body}")),
                Compare::Exact => Ok(()),
                _ => {
                    let map_at = (compare == Compare::DataMap).then_some("$.data");
                    match structure_diff("$", &a, &b, map_at) {
                        None => Ok(()),
                        Some(d) => Err(format!("{d}\n  ours   {ours}\n  golden {golden_body}")),
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn conformance_api() {
    let Some(shared) = shared::shared_dir("api") else { return };
    let dir = shared.join("conformance/api/prometheus-2.42");
    let api = api();
    let cases = cases();
    let (mut matched, mut skipped, mut failures) = (0, Vec::new(), Vec::new());
    for c in &cases {
        if let Some((_, reason)) = SKIP.iter().find(|(name, _)| *name == c.golden) {
            skipped.push(format!("{}: {reason}", c.golden));
            continue;
        }
        match check(&api, &dir, c).await {
            Ok(()) => matched += 1,
            Err(e) => failures.push(format!("{}: {e}", c.golden)),
        }
    }
    println!(
        "conformance api: {matched} of {} goldens match, {} skipped ({})",
        cases.len(),
        skipped.len(),
        skipped.join("; ")
    );
    for f in &failures {
        println!("FAIL {f}");
    }
    assert!(failures.is_empty(), "{} goldens differ", failures.len());
}

//! Loads the `prometheus.yml` files under `../shared`, and compares what we render for the
//! one Prometheus 2.42 served at `/api/v1/status/config` with its answer, field by field.

#[path = "../../testsupport/shared.rs"]
mod shared;

use std::collections::BTreeMap;

use serde_yaml_ng::Value;
use sextant_scrape::Config;

/// Configuration files Prometheus ran with while the reference data was captured.
const FIXTURES: &[&str] = &[
    "conformance/api/tools/promrun/prometheus.yml",
    "conformance/alerting/timeline/prometheus-to-sink.yml",
    "conformance/alerting/timeline/prometheus-to-am.yml",
    "conformance/alerting/captures/prometheus-2.42-capture-prometheus.yml",
    "conformance/promql/compliance/prometheus-test-data.yml",
];

/// Fields of the 2.42 rendering we do not reproduce, with the reason.
const SKIP: &[(&str, &str)] = &[
    ("rule_files[0]", "2.42 ran from another directory; we join the path with the config file's directory"),
    ("remote_write[0].queue_config.capacity", "2.42's default (2500); we use Prometheus 3's (10000)"),
    ("remote_write[0].queue_config.max_shards", "2.42's default (200); we use Prometheus 3's (50)"),
    (
        "remote_write[0].metadata_config.max_samples_per_send",
        "2.42 copied it from the queue; Prometheus 3 defaults to 2000",
    ),
    ("remote_write[0].enable_http2", "2.42's default (true); Prometheus 3 turns HTTP/2 off for remote write"),
];

/// Every scalar of `v` by its path (`a.b[0].c`).
fn flatten(v: &Value, path: String, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                let key = k.as_str().unwrap_or("?");
                flatten(v, if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }, out);
            }
        }
        Value::Sequence(s) => {
            for (i, v) in s.iter().enumerate() {
                flatten(v, format!("{path}[{i}]"), out);
            }
        }
        Value::String(s) => {
            out.insert(path, s.clone());
        }
        Value::Number(n) => {
            out.insert(path, n.to_string());
        }
        Value::Bool(b) => {
            out.insert(path, b.to_string());
        }
        Value::Null => {
            out.insert(path, String::new());
        }
        Value::Tagged(t) => flatten(&t.value, path, out),
    }
}

#[test]
fn conformance_config() {
    let Some(dir) = shared::shared_dir("config") else { return };
    let mut failures = Vec::new();
    let mut loaded = 0;
    for f in FIXTURES {
        match Config::load_file(dir.join(f)) {
            Ok(_) => loaded += 1,
            Err(e) => failures.push(format!("{f}: {e}")),
        }
    }

    let body = std::fs::read_to_string(dir.join("conformance/api/prometheus-2.42/config.body")).unwrap();
    let body: Value = serde_yaml_ng::from_str(&body).unwrap();
    let golden: Value = serde_yaml_ng::from_str(body["data"]["yaml"].as_str().unwrap()).unwrap();
    let ours = Config::load_file(dir.join(FIXTURES[0])).unwrap().to_yaml();
    let ours: Value = serde_yaml_ng::from_str(&ours).unwrap();
    let (mut want, mut got) = (BTreeMap::new(), BTreeMap::new());
    flatten(&golden, String::new(), &mut want);
    flatten(&ours, String::new(), &mut got);
    let (mut same, mut skipped) = (0, 0);
    for (path, value) in &want {
        let skip = SKIP.iter().any(|(p, _)| p == path);
        match (got.get(path) == Some(value), skip) {
            (true, false) => same += 1,
            (true, true) => failures.push(format!("{path}: matches but is in the skip list")),
            (false, true) => skipped += 1,
            (false, false) => failures.push(format!("{path}: got {:?}, want {value:?}", got.get(path))),
        }
    }
    println!(
        "conformance config: {loaded} of {} files load; {same} of {} fields of the 2.42 rendering match, {skipped} skipped",
        FIXTURES.len(),
        want.len()
    );
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

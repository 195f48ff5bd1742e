//! Differential test of the PromQL engine against a real Prometheus 2.42 (Debian's
//! `prometheus`): the same generated data (`../shared/bench/gen_dataset.py`'s node-exporter-like
//! families plus a few families of our own with counter resets, NaN/±Inf, gaps, series that end
//! or start mid-range, jittered timestamps and odd histograms) is loaded into both, with
//! `promtool tsdb create-blocks-from openmetrics` and `sextant tsdb import openmetrics`, plus
//! series with stale markers remote-written to both, and the demo-service families the
//! compliance tester's queries (`../shared/conformance/promql/compliance/`) read; then a
//! query set generated from PromQL's functions, aggregations and operators runs through both
//! HTTP APIs (instant queries at several times, range queries with several steps) against
//! `sextant server --query.semantics=prometheus2`. Results must match: result type, series label
//! sets, timestamps, values (relative tolerance 1e-9, NaN and ±Inf equal), error type and text,
//! and no warnings where Prometheus has none.
//!
//! `SEXTANT_PROMQL_DIFF_FULL=1` adds more evaluation times and steps; `SEXTANT_PROMQL_DIFF_ONLY=TEXT`
//! keeps only the queries containing TEXT; `SEXTANT_PROMQL_DIFF_JITTER_MS=N` moves the generated
//! node samples by up to ±N ms (default 0: every sample on the 15 s grid, so windows often end
//! exactly on a sample); `SEXTANT_PROMQL_DIFF_TOLERANCE=X` sets the relative tolerance (1e-9);
//! `SEXTANT_PROMQL_DIFF_SCRAPES=N` the number of 15 s scrapes (480: 2 h). Known differences are
//! listed in [`KNOWN`] with reasons. Differences the comparison tolerates: the last bits of
//! libm functions (`exp`, `ln`, trigonometry, `^`, `atan2`: Go's math library rounds differently)
//! and of sums whose order Go's map iteration randomises (`sum(sum by (x) (...))` in range
//! queries); `le`/`quantile` label values are compared as numbers (see [`label_value`]).

#[path = "../../testsupport/shared.rs"]
mod shared;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value as Json;

mod procs;
use procs::{free_port, present, wait_for, Proc};

/// Queries whose results are known to differ, each with the reason.
const KNOWN: &[(&str, &str)] = &[(
    "demo_http_request_duration_seconds_bucket{le=\"1\"}",
    "ingestion, not PromQL: `sextant tsdb import` normalises `le` of classic histograms (and `quantile` of \
     summaries) to float spelling as Prometheus 3 does (`le=\"1.0\"`); 2.42 keeps `le=\"1\"`",
)];

/// First sample of the generated data (s); samples every 15 s.
const START: i64 = 1_700_000_000;
/// Scrapes per series: 480 (2 h), or `SEXTANT_PROMQL_DIFF_SCRAPES`.
fn scrapes() -> i64 {
    std::env::var("SEXTANT_PROMQL_DIFF_SCRAPES").ok().and_then(|v| v.parse().ok()).unwrap_or(480)
}
/// Last sample of the generated data (s).
fn end_s() -> i64 {
    START + (scrapes() - 1) * 15
}

fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// GET over HTTP/1.0 on loopback: status and body, `None` when the connection fails.
fn get(port: u16, path_and_query: &str) -> Option<(u16, String)> {
    request(port, &format!("GET {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"))
}

/// A form POST, as Prometheus' Go client sends queries.
fn post(port: u16, path: &str, form: &str) -> Option<(u16, String)> {
    request(
        port,
        &format!(
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
}

/// A snappy protobuf POST (remote write).
fn post_protobuf(port: u16, path: &str, body: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .ok()?;
    s.write_all(body).ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.split(' ').nth(1)?.parse().ok()?, body.to_string()))
}

fn request(port: u16, text: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
    s.write_all(text.as_bytes()).ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Data

/// A small deterministic generator (xorshift), so our own families need no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn om_time(ms: i64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn om_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Our own families, in OpenMetrics text (without `# EOF`).
fn extra_families() -> String {
    let mut out = String::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let t0 = START * 1000;
    // Counters with resets; one with jittered timestamps; one that stops half way.
    out.push_str("# TYPE diff_counter counter\n");
    for (instance, kind) in [("a", "reset"), ("b", "reset"), ("a", "jitter"), ("b", "ends")] {
        let mut v = 0.0;
        for k in 0..scrapes() {
            if kind == "ends" && k > scrapes() / 2 {
                break;
            }
            let mut t = t0 + k * 15_000;
            if kind == "jitter" {
                t += (rng.next() % 4001) as i64 - 2000;
            }
            if kind == "reset" && k % 37 == 36 {
                v = (rng.next() % 5) as f64;
            } else {
                v += (rng.next() % 100) as f64 * 0.5;
            }
            let _ = writeln!(out, "diff_counter_total{{instance=\"{instance}\",kind=\"{kind}\"}} {v} {}", om_time(t));
        }
    }
    // Gauges: a random walk around zero, special values, one with gaps, one that ends, one
    // that starts late, one constant.
    out.push_str("# TYPE diff_gauge gauge\n");
    for (instance, kind) in
        [("a", "walk"), ("b", "walk"), ("a", "special"), ("a", "gaps"), ("a", "ends"), ("b", "starts"), ("b", "const")]
    {
        let mut v: f64 = 10.0;
        for k in 0..scrapes() {
            let t = t0 + k * 15_000;
            v += (rng.unit() - 0.5) * 8.0;
            v = (v * 4.0).round() / 4.0;
            let value = match kind {
                "special" => match k % 29 {
                    3 => f64::NAN,
                    11 => f64::INFINITY,
                    19 => f64::NEG_INFINITY,
                    _ => v,
                },
                "gaps" if (k / 40) % 3 == 1 => continue,
                "ends" if k > scrapes() / 3 => break,
                "starts" if k < 2 * scrapes() / 3 => continue,
                "const" => 7.0,
                _ => v,
            };
            let _ = writeln!(
                out,
                "diff_gauge{{instance=\"{instance}\",kind=\"{kind}\"}} {} {}",
                om_value(value),
                om_time(t)
            );
        }
    }
    // Classic histogram buckets: well-formed with resets (a), without +Inf (b), non-monotonic (c).
    out.push_str("# TYPE diff_hist_bucket gauge\n");
    let les = ["0.1", "0.5", "1", "5", "+Inf"];
    for instance in ["a", "b", "c"] {
        for (i, le) in les.iter().enumerate() {
            if instance == "b" && *le == "+Inf" {
                continue;
            }
            let mut counts = 0.0;
            for k in 0..scrapes() {
                let t = t0 + k * 15_000 + 250;
                if k % 101 == 100 {
                    counts = 0.0;
                }
                counts += (k % 7 + 1) as f64 * (i + 1) as f64;
                let mut v = counts;
                if instance == "c" && i == 2 {
                    v = counts * 0.5;
                }
                let _ = writeln!(out, "diff_hist_bucket{{instance=\"{instance}\",le=\"{le}\"}} {v} {}", om_time(t));
            }
        }
    }
    // Two names with the same labels, one in the first half of the data, one in the second.
    for (name, from, to) in [("diff_early", 0, scrapes() / 2), ("diff_late", scrapes() / 2 + 20, scrapes())] {
        let _ = writeln!(out, "# TYPE {name} gauge");
        for k in from..to {
            let _ = writeln!(out, "{name}{{instance=\"x\"}} {} {}", k * 3, om_time(t0 + k * 15_000));
        }
    }
    out.push_str(&demo_families(&mut rng));
    // Label sets for matching errors: two series per `a`.
    out.push_str("# TYPE diff_dup gauge\n");
    for (a, b) in [("1", "x"), ("1", "y"), ("2", "x")] {
        for k in 0..scrapes() {
            let _ = writeln!(out, "diff_dup{{a=\"{a}\",b=\"{b}\"}} {} {}", k % 5, om_time(t0 + k * 15_000));
        }
    }
    out
}

/// The metric families of PromLabs' demo service that the compliance tester's queries read
/// (`../shared/conformance/promql/COMPLIANCE.md`), with values of our own.
fn demo_families(rng: &mut Rng) -> String {
    let mut out = String::new();
    let t0 = START * 1000;
    let instances = ["demo.promlabs.com:10000", "demo.promlabs.com:10001", "demo.promlabs.com:10002"];
    let times = |k: i64| om_time(t0 + k * 15_000 + 123);
    let series = |out: &mut String, name: &str, labels: &str, kind: &str, base: f64, rng: &mut Rng| {
        let mut v = base;
        for k in 0..scrapes() {
            match kind {
                "counter" => v += (rng.next() % 1000) as f64 / 100.0,
                "walk" => v = (v + (rng.unit() - 0.5) * base * 0.02).max(0.0).round(),
                "batch" if k % 40 == 0 => v = ((t0 + k * 15_000) / 1000) as f64,
                "intermittent" if (k / 20) % 2 == 1 => continue,
                _ => {}
            }
            let _ = writeln!(out, "{name}{{{labels}}} {v} {}", times(k));
        }
    };
    for (name, kind) in [
        ("demo_memory_usage_bytes", "walk"),
        ("demo_num_cpus", "const"),
        ("demo_cpu_usage_seconds_total", "counter"),
        ("demo_disk_usage_bytes", "walk"),
        ("demo_disk_total_bytes", "const"),
        ("demo_batch_last_success_timestamp_seconds", "batch"),
        ("demo_api_http_requests_in_progress", "walk"),
        ("demo_intermittent_metric", "intermittent"),
    ] {
        let family = name.strip_suffix("_total").unwrap_or(name);
        let _ = writeln!(out, "# TYPE {family} {}", if kind == "counter" { "counter" } else { "gauge" });
        for (i, instance) in instances.iter().enumerate() {
            let il = format!("instance=\"{instance}\",job=\"demo\"");
            match name {
                "demo_memory_usage_bytes" => {
                    for ty in ["buffers", "cached", "free", "used"] {
                        series(&mut out, name, &format!("{il},type=\"{ty}\""), kind, 1e9 + i as f64 * 1e8, rng);
                    }
                }
                "demo_cpu_usage_seconds_total" => {
                    for mode in ["idle", "system", "user"] {
                        series(&mut out, name, &format!("{il},mode=\"{mode}\""), kind, 100.0, rng);
                    }
                }
                "demo_num_cpus" => series(&mut out, name, &il, kind, 4.0 + i as f64, rng),
                _ => series(&mut out, name, &il, kind, 1e6 * (i + 1) as f64, rng),
            }
        }
    }
    // Request latency buckets, counted as a counter each.
    let les = ["0.0001", "0.001", "0.01", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "10.0", "+Inf"];
    for suffix in ["bucket", "sum", "count"] {
        let _ = writeln!(out, "# TYPE demo_api_request_duration_seconds_{suffix} gauge");
        for instance in instances {
            for (method, path, status) in [("GET", "/api/foo", "200"), ("POST", "/api/bar", "500")] {
                let il = format!(
                    "instance=\"{instance}\",job=\"demo\",method=\"{method}\",path=\"{path}\",status=\"{status}\""
                );
                let buckets: &[&str] = if suffix == "bucket" { &les } else { &[""] };
                let mut counts = vec![0.0; buckets.len()];
                let mut lines = vec![String::new(); buckets.len()];
                for k in 0..scrapes() {
                    let mut add = 0.0;
                    for (b, count) in counts.iter_mut().enumerate() {
                        add += (rng.next() % 5) as f64 * (b + 1) as f64;
                        *count += if suffix == "sum" { add * 0.01 } else { add };
                        let labels =
                            if suffix == "bucket" { format!("{il},le=\"{}\"", buckets[b]) } else { il.clone() };
                        let _ = writeln!(
                            lines[b],
                            "demo_api_request_duration_seconds_{suffix}{{{labels}}} {} {}",
                            *count,
                            times(k)
                        );
                    }
                }
                out.extend(lines);
            }
        }
    }
    out
}

/// First sample of the remote-written series with stale markers (s): after the imported data.
fn stale_start() -> i64 {
    end_s() + 60
}

/// `diff_stale{kind}` gauges and a `diff_stale_total` counter, 60 samples 15 s apart with stale
/// markers: one that ends with a marker, one with a marker and a restart, one whose marker
/// comes right before its next sample.
fn stale_write_request() -> Vec<u8> {
    use sextant_model::remote::{self, Label, TimeSeries, WriteRequest};
    let t0 = stale_start() * 1000;
    let mut timeseries = Vec::new();
    for (name, kind) in
        [("diff_stale", "ends"), ("diff_stale", "restarts"), ("diff_stale", "blip"), ("diff_stale_total", "restarts")]
    {
        let mut samples = Vec::new();
        for k in 0..60i64 {
            let stale = match kind {
                "ends" => k == 30,
                "restarts" => k == 20,
                _ => k % 17 == 16,
            };
            if (kind == "ends" && k > 30) || (kind == "restarts" && (21..28).contains(&k)) {
                continue;
            }
            let value = if stale {
                sextant_model::stale_nan()
            } else {
                (k % 13) as f64 + if name.ends_with("_total") { k as f64 } else { 0.0 }
            };
            samples.push(remote::Sample { value, timestamp: t0 + k * 15_000 + 500 });
        }
        let labels = vec![Label::new("__name__", name), Label::new("kind", kind)];
        timeseries.push(TimeSeries { labels, samples, ..Default::default() });
    }
    sextant_model::remote::encode_write_request(&WriteRequest { timeseries, ..Default::default() }).unwrap()
}

fn stale_queries() -> Vec<String> {
    [
        "diff_stale",
        "diff_stale_total",
        "diff_stale offset 1m",
        "count_over_time(diff_stale[5m])",
        "last_over_time(diff_stale[10m])",
        "max_over_time(diff_stale[3m:30s])",
        "changes(diff_stale[10m])",
        "rate(diff_stale_total[5m])",
        "increase(diff_stale_total[2m])",
        "timestamp(diff_stale)",
        "absent(diff_stale{kind=\"ends\"})",
        "absent_over_time(diff_stale{kind=\"ends\"}[1m])",
        "sum(diff_stale)",
        "diff_stale > 5",
        "diff_stale @ end()",
        "present_over_time(diff_stale[1m])",
    ]
    .map(str::to_string)
    .to_vec()
}

fn stale_requests() -> Vec<Request> {
    let s = stale_start() as f64;
    vec![
        Request::Instant(s + 20.0 * 15.0 + 10.0),
        Request::Instant(s + 30.0 * 15.0),
        Request::Instant(s + 30.0 * 15.0 + 1.0),
        Request::Instant(s + 45.0 * 15.0),
        Request::Instant(s + 70.0 * 15.0),
        Request::Range { start: s - 60.0, end: s + 1000.0, step: 15.0 },
        Request::Range { start: s, end: s + 1200.0, step: 40.0 },
    ]
}

// ---------------------------------------------------------------------------------------------
// Queries

/// The compliance tester's queries (`promql-test-queries.yml`), expanded with its variant table.
fn compliance_queries(file: &str) -> Vec<String> {
    let variants = |name: &str| -> Vec<&'static str> {
        match name {
            "range" => vec!["1s", "15s", "1m", "5m", "15m", "1h"],
            "offset" => vec!["1m", "5m", "10m"],
            "simpleAggrOp" => vec!["sum", "avg", "max", "min", "count", "stddev", "stdvar"],
            "simpleTimeAggrOp" => vec!["sum", "avg", "max", "min", "count", "stddev", "stdvar", "absent", "last"],
            "topBottomOp" => vec!["topk", "bottomk"],
            "quantile" => vec!["-0.5", "0.1", "0.5", "0.75", "0.95", "0.90", "0.99", "1", "1.5"],
            "arithBinOp" => vec!["+", "-", "*", "/", "%", "^"],
            "compBinOp" => vec!["==", "!=", "<", ">", "<=", ">="],
            "binOp" => vec!["+", "-", "*", "/", "%", "^", "==", "!=", "<", ">", "<=", ">="],
            "simpleMathFunc" => vec!["abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "round"],
            "extrapolatedRateFunc" => vec!["delta", "rate", "increase"],
            "clampFunc" => vec!["clamp_min", "clamp_max"],
            "instantRateFunc" => vec!["idelta", "irate"],
            "dateFunc" => vec!["day_of_month", "day_of_week", "days_in_month", "hour", "minute", "month", "year"],
            other => panic!("unknown variant {other}"),
        }
    };
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(file).unwrap();
    let mut out = Vec::new();
    for case in doc["test_cases"].as_sequence().unwrap() {
        let mut expanded = vec![case["query"].as_str().unwrap().to_string()];
        for arg in case["variant_args"].as_sequence().into_iter().flatten() {
            let arg = arg.as_str().unwrap();
            let placeholder = format!("{{{{.{arg}}}}}");
            let placeholder = &placeholder;
            expanded = expanded
                .iter()
                .flat_map(|q| variants(arg).into_iter().map(move |v| q.replace(placeholder, v)))
                .collect();
        }
        out.extend(expanded);
    }
    out
}

/// The generated query set.
fn queries() -> Vec<String> {
    let mut q: Vec<String> = Vec::new();
    let counters = [
        "node_cpu_seconds_total",
        "node_network_receive_bytes_total",
        "diff_counter_total",
        "go_gc_duration_seconds_count",
    ];
    let gauges = ["node_load1", "node_memory_MemAvailable_bytes", "diff_gauge", "node_filesystem_avail_bytes"];
    let ranges = ["15s", "1m", "5m", "1h"];

    // Literals and scalars.
    for lit in ["42", "-1.5", ".5e1", "0x1F", "Inf", "-Inf", "NaN", "1 + 2 * 3 ^ 2 % 5", "-2 ^ 2", "2 ^ 3 ^ 2"] {
        q.push(lit.into());
    }
    for e in ["time()", "time() - 1700000000", "pi()", "vector(1)", "vector(time())", "scalar(vector(3))"] {
        q.push(e.into());
    }
    q.push("\"a string\"".into());

    // Selectors, matchers, offset, @.
    for m in counters.iter().chain(&gauges) {
        q.push(m.to_string());
        q.push(format!("{m} offset 5m"));
        q.push(format!("{m} offset -10m"));
        q.push(format!("{m} @ start()"));
        q.push(format!("{m} @ end()"));
        q.push(format!("{m} @ 1700003600"));
        q.push(format!("{m} offset 1h @ end()"));
    }
    for sel in [
        "node_cpu_seconds_total{mode=\"idle\"}",
        "node_cpu_seconds_total{mode!=\"idle\"}",
        "node_cpu_seconds_total{mode=~\"i.*|user\"}",
        "node_cpu_seconds_total{mode!~\"idle|iowait\",cpu=\"1\"}",
        "node_cpu_seconds_total{mode=~\"(?i)IDLE\"}",
        "node_cpu_seconds_total{cpu=~\"1|\"}",
        "{__name__=~\"node_load.*\"}",
        "{__name__=~\"diff_.*\",instance=\"a\"}",
        "{__name__=~\"node_load1|node_load5\",instance=~\"host-0001.*\"}",
        "node_network_receive_bytes_total{device=~\"e.+\"}",
        "node_load1{nonexistent=\"\"}",
        "node_load1{instance=\"\"}",
        "diff_gauge{kind=\"special\"}",
        "diff_gauge{kind=\"ends\"}",
        "diff_gauge{kind=\"starts\"}",
        "diff_gauge{kind=\"gaps\"}",
        "nonexistent_metric",
        "{__name__=~\".*\"}",
        "{job=~\".*\"}",
        "node_load1[5m]",
        "diff_gauge[1m] offset 2m",
    ] {
        q.push(sel.into());
    }

    // Range functions.
    for f in ["rate", "increase", "delta", "irate", "idelta", "resets", "changes", "deriv"] {
        for c in counters {
            for r in ranges {
                q.push(format!("{f}({c}[{r}])"));
            }
        }
        q.push(format!("{f}(diff_gauge[5m])"));
        q.push(format!("{f}(diff_counter_total[5m] offset 10m)"));
        q.push(format!("{f}(diff_counter_total[10m] @ end())"));
    }
    for f in [
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "last_over_time",
        "present_over_time",
        "stddev_over_time",
        "stdvar_over_time",
        "absent_over_time",
    ] {
        for g in gauges {
            for r in ["15s", "1m", "10m"] {
                q.push(format!("{f}({g}[{r}])"));
            }
        }
        q.push(format!("{f}(diff_counter_total[2m] offset 1m)"));
        q.push(format!("{f}(nonexistent_metric[5m])"));
    }
    for phi in ["-0.5", "0", "0.5", "0.9", "1", "1.5", "NaN"] {
        q.push(format!("quantile_over_time({phi}, diff_gauge[10m])"));
    }
    q.push("quantile_over_time(0.75, node_load1[1h])".into());
    for g in gauges {
        q.push(format!("predict_linear({g}[10m], 600)"));
        q.push(format!("holt_winters({g}[10m], 0.5, 0.5)"));
    }
    q.push("predict_linear(diff_counter_total[1h], -3600)".into());
    q.push("holt_winters(diff_gauge[5m], 0.1, 0.9)".into());
    q.push("holt_winters(diff_gauge[5m], 1.5, 0.9)".into());

    // Instant-vector math functions.
    for f in [
        "abs",
        "ceil",
        "floor",
        "exp",
        "sqrt",
        "ln",
        "log2",
        "log10",
        "round",
        "sgn",
        "deg",
        "rad",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "sinh",
        "cosh",
        "tanh",
        "asinh",
        "acosh",
        "atanh",
        "timestamp",
    ] {
        q.push(format!("{f}(diff_gauge)"));
        q.push(format!("{f}(node_load1)"));
    }
    for e in [
        "round(diff_gauge, 5)",
        "round(diff_gauge, 0.3)",
        "round(node_memory_MemAvailable_bytes, 1e6)",
        "clamp(diff_gauge, -5, 5)",
        "clamp(diff_gauge, 5, -5)",
        "clamp_min(diff_gauge, 0)",
        "clamp_max(diff_gauge, 3)",
        "clamp_max(node_load1, NaN)",
        "exp(node_memory_MemAvailable_bytes)",
        "ln(-diff_gauge)",
        "timestamp(diff_gauge offset 1m)",
        "timestamp(node_load1 @ start())",
        "timestamp(diff_counter_total{kind=\"jitter\"})",
        "timestamp(vector(1))",
    ] {
        q.push(e.into());
    }
    for f in ["day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year"] {
        q.push(format!("{f}()"));
        q.push(format!("{f}(vector(1700003600))"));
        q.push(format!("{f}(timestamp(node_load1))"));
        q.push(format!("{f}(diff_gauge)"));
    }

    // Aggregations.
    let agg_inputs = [
        "diff_gauge",
        "rate(node_cpu_seconds_total[5m])",
        "node_memory_MemAvailable_bytes",
        "nonexistent_metric",
        "diff_dup",
    ];
    for op in ["sum", "avg", "max", "min", "count", "stddev", "stdvar", "group"] {
        for input in agg_inputs {
            q.push(format!("{op}({input})"));
        }
        q.push(format!("{op} by (instance) (diff_gauge)"));
        q.push(format!("{op} without (cpu) (rate(node_cpu_seconds_total[5m]))"));
        q.push(format!("{op} by (mode, instance) (rate(node_cpu_seconds_total[1m]))"));
        q.push(format!("{op} by (nonexistent) (diff_gauge)"));
        q.push(format!("{op} without () (diff_gauge)"));
        q.push(format!("{op}(diff_gauge) by (__name__)"));
        q.push(format!("{op} without (kind) ({{__name__=~\"diff_gauge|diff_counter_total\"}})"));
    }
    for op in ["topk", "bottomk"] {
        for k in ["1", "3", "0", "-1", "1e10", "scalar(diff_gauge{kind=\"const\"})"] {
            q.push(format!("{op}({k}, diff_gauge)"));
        }
        q.push(format!("{op} by (instance) (2, rate(node_cpu_seconds_total[5m]))"));
        q.push(format!("{op} without (cpu) (1, node_cpu_seconds_total)"));
        q.push(format!("sum({op}(2, diff_gauge))"));
    }
    for phi in ["-0.5", "0", "0.25", "0.5", "0.9", "1", "1.5", "NaN"] {
        q.push(format!("quantile({phi}, diff_gauge)"));
    }
    q.push("quantile by (instance) (0.9, rate(node_cpu_seconds_total[5m]))".into());
    for e in [
        "count_values(\"value\", ceil(diff_gauge))",
        "count_values by (instance) (\"v\", floor(node_load1 * 10))",
        "count_values(\"instance\", diff_gauge{kind=\"const\"})",
        "count_values(\"x\", diff_gauge{kind=\"special\"})",
        "count_values(\"le\", diff_hist_bucket)",
        "avg(max by (instance) (diff_gauge))",
        "sum(sum by (mode) (rate(node_cpu_seconds_total[5m])))",
        "max(diff_gauge{kind=\"special\"})",
        "min(diff_gauge{kind=\"special\"})",
        "sum(diff_gauge{kind=\"special\"})",
        "avg(diff_gauge{kind=\"special\"})",
        "stddev(diff_gauge{kind=\"special\"})",
    ] {
        q.push(e.into());
    }

    // Binary operators.
    let arith = ["+", "-", "*", "/", "%", "^", "atan2"];
    let cmp = ["==", "!=", "<", ">", "<=", ">="];
    for op in arith {
        q.push(format!("diff_gauge {op} 2"));
        q.push(format!("3 {op} diff_gauge"));
        q.push(format!("diff_gauge {op} diff_gauge"));
        q.push(format!("diff_gauge{{kind=\"walk\"}} {op} on (instance) diff_gauge{{kind=\"walk\"}}"));
        q.push(format!("time() {op} 1"));
    }
    for op in cmp {
        q.push(format!("diff_gauge {op} 7"));
        q.push(format!("diff_gauge {op} bool 7"));
        q.push(format!("7 {op} diff_gauge"));
        q.push(format!("1 {op} bool 2"));
        q.push(format!("diff_gauge {op} ignoring (kind) group_left diff_gauge{{kind=\"const\"}}"));
        q.push(format!("diff_gauge {op} bool on (instance) group_left diff_gauge{{kind=\"const\"}}"));
    }
    for e in [
        "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
        "node_memory_MemAvailable_bytes / on (instance) node_memory_MemTotal_bytes",
        "node_memory_MemAvailable_bytes / ignoring (job) node_memory_MemTotal_bytes",
        "rate(node_cpu_seconds_total[5m]) / on (instance) group_left sum by (instance) (rate(node_cpu_seconds_total[5m]))",
        "sum by (instance) (rate(node_cpu_seconds_total[5m])) / on (instance) group_right rate(node_cpu_seconds_total[5m])",
        "node_cpu_seconds_total * on (instance) group_left (nodename) node_uname_info",
        "node_uname_info * on (instance) group_right (nodename) node_cpu_seconds_total",
        "diff_dup * on (a) diff_dup",
        "diff_dup * on (a) group_left diff_gauge",
        "diff_dup + ignoring (b) diff_dup",
        "diff_gauge * on (instance) group_left diff_gauge",
        "diff_gauge{kind=\"walk\"} + on (instance) group_left diff_gauge{kind=\"const\"}",
        "diff_gauge{kind=\"walk\"} > on (instance) group_left diff_gauge{kind=\"const\"}",
        "diff_gauge{kind=\"walk\"} > bool on (instance) diff_gauge{kind=\"const\"}",
        "-diff_gauge",
        "-node_load1 ^ 2",
        "+diff_gauge",
        "diff_gauge / 0",
        "diff_gauge % 0",
        "diff_gauge == bool diff_gauge",
        "(diff_gauge > 5) + 1",
        "node_load1 > 0.5 > 0.6",
        "scalar(node_load1) + node_load1",
        "scalar(diff_gauge{kind=\"const\"}) * 2",
        "vector(1) + vector(2)",
        "vector(1) + on () group_left node_load1",
        "node_load1 - node_load1 offset 5m",
        "node_load1 @ start() - node_load1 @ end()",
        "rate(diff_counter_total[5m]) * 60 > 1",
        "sum(rate(node_cpu_seconds_total[5m])) by (instance) / count(node_cpu_seconds_total) by (instance)",
        "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))",
        "node_filesystem_avail_bytes / node_filesystem_size_bytes * 100 < 90",
    ] {
        q.push(e.into());
    }
    // Set operators.
    for op in ["and", "or", "unless"] {
        q.push(format!("diff_gauge {op} diff_gauge{{kind=\"walk\"}}"));
        q.push(format!("diff_gauge {op} on (instance) diff_gauge{{kind=\"const\"}}"));
        q.push(format!("diff_gauge {op} ignoring (kind) node_load1"));
        q.push(format!("node_load1 {op} nonexistent_metric"));
        q.push(format!("nonexistent_metric {op} node_load1"));
        q.push(format!("diff_gauge > 5 {op} diff_gauge < 12"));
        q.push(format!("rate(diff_counter_total[5m]) {op} diff_gauge"));
    }
    q.push("diff_dup and on (a) diff_dup".into());
    q.push("diff_dup or diff_gauge".into());

    // Subqueries.
    for e in [
        "diff_gauge[30m:1m]",
        "rate(diff_counter_total[5m])[30m:1m]",
        "max_over_time(diff_gauge[30m:1m])",
        "max_over_time(rate(diff_counter_total[5m])[30m:1m])",
        "rate(diff_counter_total[30m:1m])",
        "rate(diff_counter_total[30m:1m] offset 10m)",
        "avg_over_time(node_load1[10m:])",
        "sum_over_time(diff_gauge[1h:5m])",
        "min_over_time(deriv(node_load1[5m])[20m:2m])",
        "max_over_time(max_over_time(diff_gauge[5m:1m])[15m:30s])",
        "count_over_time(diff_gauge{kind=\"ends\"}[20m:1m])",
        "last_over_time(diff_gauge[10m:1m] @ end())",
        "quantile_over_time(0.5, rate(node_cpu_seconds_total[5m])[15m:1m])",
        "irate(diff_counter_total[10m:15s])",
        "delta(diff_gauge[7m:45s])",
        "stddev_over_time(node_load1[30m:1m] offset 30m)",
        "changes(diff_gauge[20m:1m])",
        "absent_over_time(nonexistent_metric[5m:1m])",
        "avg_over_time((diff_gauge > 5)[10m:1m])",
        "sum_over_time(vector(1)[5m:1m])",
        "max_over_time(time()[5m:1m])",
    ] {
        q.push(e.into());
    }

    // Labels.
    for e in [
        "label_replace(diff_gauge, \"dst\", \"$1-x\", \"kind\", \"(w.*)\")",
        "label_replace(diff_gauge, \"kind\", \"\", \"kind\", \".*\")",
        "label_replace(diff_gauge, \"kind\", \"same\", \"kind\", \".*\")",
        "label_replace(diff_gauge, \"__name__\", \"renamed\", \"kind\", \"walk\")",
        "label_replace(node_load1, \"host\", \"$1\", \"instance\", \"(.*):.*\")",
        "label_replace(node_load1, \"host\", \"${1}_$2\", \"instance\", \"host-(\\\\d+):(\\\\d+)\")",
        "label_replace(node_load1, \"bad-name\", \"x\", \"instance\", \".*\")",
        "label_replace(node_load1, \"x\", \"y\", \"instance\", \"(.*\")",
        "label_replace(rate(diff_counter_total[5m]), \"instance\", \"x\", \"instance\", \".*\")",
        "label_join(diff_gauge, \"joined\", \"-\", \"instance\", \"kind\")",
        "label_join(diff_gauge, \"kind\", \"\", \"nonexistent\")",
        "label_join(diff_gauge, \"joined\", \",\")",
        "label_join(node_cpu_seconds_total{cpu=\"0\"}, \"__name__\", \"_\", \"mode\", \"cpu\")",
        "label_join(node_load1, \"bad-name\", \"-\", \"instance\")",
    ] {
        q.push(e.into());
    }

    // Sorting, absence, histograms.
    for e in [
        "sort(diff_gauge)",
        "sort_desc(diff_gauge)",
        "sort(rate(node_cpu_seconds_total[5m]))",
        "sort_desc(sum by (mode) (rate(node_cpu_seconds_total[5m])))",
        "absent(nonexistent_metric)",
        "absent(nonexistent_metric{job=\"x\", instance=~\"y\"})",
        "absent(node_load1)",
        "absent(diff_gauge{kind=\"ends\"})",
        "absent(sum(nonexistent_metric))",
        "absent(nonexistent_metric{a=\"1\", a=\"2\"})",
        "absent_over_time(diff_gauge{kind=\"gaps\"}[1m])",
        "absent_over_time(nonexistent_metric{job=\"x\"}[1m])",
        "histogram_quantile(0.9, rate(demo_http_request_duration_seconds_bucket[5m]))",
        "histogram_quantile(0.5, sum by (le) (rate(demo_http_request_duration_seconds_bucket[5m])))",
        "histogram_quantile(0.99, sum by (instance, le) (rate(demo_http_request_duration_seconds_bucket[1m])))",
        "histogram_quantile(0, demo_http_request_duration_seconds_bucket)",
        "histogram_quantile(1, demo_http_request_duration_seconds_bucket)",
        "histogram_quantile(-1, demo_http_request_duration_seconds_bucket)",
        "histogram_quantile(2, demo_http_request_duration_seconds_bucket)",
        "histogram_quantile(NaN, demo_http_request_duration_seconds_bucket)",
        "histogram_quantile(0.5, diff_hist_bucket)",
        "histogram_quantile(0.95, rate(diff_hist_bucket[5m]))",
        "histogram_quantile(0.5, increase(diff_hist_bucket[10m]))",
        "histogram_quantile(0.5, diff_gauge)",
        "histogram_quantile(0.5, sum without (le) (diff_hist_bucket))",
        "histogram_quantile(scalar(diff_gauge{kind=\"const\"}) / 10, diff_hist_bucket)",
        "histogram_count(diff_hist_bucket)",
        "histogram_sum(diff_hist_bucket)",
        "histogram_fraction(0, 0.5, diff_hist_bucket)",
        "rate(demo_http_request_duration_seconds_sum[5m]) / rate(demo_http_request_duration_seconds_count[5m])",
        "go_gc_duration_seconds{quantile=\"0.5\"}",
        "max by (quantile) (go_gc_duration_seconds)",
    ] {
        q.push(e.into());
    }

    // Names dropped from series that then share their labels, at different times.
    let early_late = "{__name__=~\"diff_early|diff_late\"}";
    for e in [
        "rate(X[5m])",
        "-X",
        "X * 2",
        "abs(X)",
        "sum_over_time(X[1h])",
        "last_over_time(X[1h])",
        "label_replace(X, \"__name__\", \"x\", \"\", \"\")",
        "sum by (__name__) (X)",
        "timestamp(X)",
        "X > 0",
        "X and X",
        "max_over_time(X[1h:5m])",
        "rate(X[1h:5m])",
        "max_over_time(X[5m:1m])",
        "rate(X[2m:1m])",
        "sum_over_time(X[1m])",
        "-(X * 2)",
        "label_replace(rate(X[1m]), \"a\", \"b\", \"\", \"\")",
    ] {
        q.push(e.replace('X', early_late));
    }

    // More shapes, as dashboards write them.
    for e in [
        "sum by (le) (rate(demo_http_request_duration_seconds_bucket[5m]))",
        "sum by (le, handler) (increase(demo_http_request_duration_seconds_bucket[10m]))",
        "demo_http_request_duration_seconds_bucket{le=\"1\"}",
        "demo_http_request_duration_seconds_bucket{le=\"+Inf\"}",
        "demo_http_request_duration_seconds_bucket{le=~\"0.0.*\",handler=\"/\"}",
        "count by (__name__) ({__name__=~\"node_network_.*\"})",
        "count({__name__!=\"\",instance=\"host-0000:9100\"})",
        "topk(3, node_cpu_seconds_total)",
        "bottomk(2, rate(node_network_receive_bytes_total[5m]))",
        "topk(1, diff_gauge) by (instance)",
        "count_values(\"mode\", node_cpu_seconds_total > 0)",
        "group by (instance) (node_cpu_seconds_total)",
        "stddev by (instance) (node_load1)",
        "changes(node_load1[1h])",
        "resets(node_load1[1h])",
        "deriv(node_memory_MemAvailable_bytes[10m])",
        "predict_linear(node_filesystem_avail_bytes[1h], 4 * 3600) < 0",
        "avg_over_time(rate(diff_counter_total[5m])[1h:])",
        "timestamp(node_load1) - time()",
        "time() - node_boot_time_seconds",
        "node_time_seconds - time()",
        "scalar(count(node_load1))",
        "vector(1) and on () node_load1",
        "(node_load1 > 0.5) or vector(0)",
        "node_load1 unless on (instance) node_load5 > 1",
        "sum without (instance, job) (node_load1)",
        "- - node_load1",
        "-(diff_gauge)",
        "node_load1 offset 1m @ 1700003600",
        "rate(node_cpu_seconds_total[5m] @ end() offset 10m)",
        "max_over_time(node_load1[10m:1m] @ 1700003000 offset 5m)",
        "sum_over_time(node_load1[5m:30s] offset -5m)",
        "avg_over_time(max_over_time(rate(diff_counter_total[5m])[10m:1m])[20m:2m])",
        "max_over_time(diff_gauge[5m:7s])",
        "rate(diff_counter_total[1s])",
        "rate(diff_counter_total[14s])",
        "rate(diff_counter_total[3h])",
        "increase(diff_counter_total[1d])",
        "avg_over_time(diff_gauge[1d])",
        "irate(diff_counter_total[30s])",
        "1 == bool 1",
        "node_load1 == bool node_load1",
        "node_load1 * on (instance, job) group_left node_load5",
        "node_network_receive_bytes_total / on (instance, device) node_network_transmit_bytes_total",
        "rate(node_network_receive_bytes_total[5m]) + ignoring (device) group_left sum by (instance, job) (node_load1)",
        "sum(rate(node_cpu_seconds_total{mode!=\"idle\"}[5m])) by (instance) / sum(rate(node_cpu_seconds_total[5m])) by (instance) * 100",
        "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)",
        "max by (instance) (node_filesystem_size_bytes - node_filesystem_avail_bytes)",
        "label_replace(sum by (instance) (node_load1), \"host\", \"$1\", \"instance\", \"(.*):9100\")",
        "sort_desc(topk(5, rate(node_network_receive_bytes_total[5m])))",
        "sort(count_values(\"v\", diff_dup))",
        "quantile_over_time(scalar(diff_gauge{kind=\"const\"}) / 10, node_load1[10m])",
        "absent(node_load1{instance=\"nope\"})",
        "absent_over_time(node_load1{instance=\"nope\"}[5m])",
        "ceil(diff_gauge{kind=\"special\"})",
        "diff_gauge{kind=\"special\"} > 0",
        "diff_gauge{kind=\"special\"} == bool diff_gauge{kind=\"special\"}",
        "sum_over_time(diff_gauge{kind=\"special\"}[5m])",
        "avg_over_time(diff_gauge{kind=\"special\"}[5m])",
        "max_over_time(diff_gauge{kind=\"special\"}[5m])",
        "min_over_time(diff_gauge{kind=\"special\"}[5m])",
        "stddev_over_time(diff_gauge{kind=\"special\"}[5m])",
        "quantile_over_time(0.5, diff_gauge{kind=\"special\"}[5m])",
        "rate(diff_gauge{kind=\"special\"}[5m])",
        "deriv(diff_gauge{kind=\"special\"}[5m])",
        "predict_linear(diff_gauge{kind=\"special\"}[5m], 60)",
        "holt_winters(diff_gauge{kind=\"special\"}[5m], 0.5, 0.5)",
        "topk(2, diff_gauge{kind=\"special\"})",
        "bottomk(2, diff_gauge{kind=\"special\"})",
        "quantile(0.5, diff_gauge{kind=\"special\"})",
        "count_values(\"v\", diff_gauge{kind=\"special\"})",
        "sort(diff_gauge{kind=\"special\"} or diff_gauge{kind=\"const\"})",
        "sort_desc(diff_gauge{kind=\"special\"} or diff_gauge{kind=\"const\"})",
        "histogram_quantile(0.5, rate(diff_hist_bucket{instance=\"a\"}[1m]))",
        "delta(diff_gauge{kind=\"gaps\"}[10m])",
        "idelta(diff_gauge{kind=\"gaps\"}[10m])",
        "deriv(diff_gauge{kind=\"const\"}[10m])",
        "predict_linear(diff_gauge{kind=\"const\"}[10m], 100)",
        "stddev_over_time(diff_gauge{kind=\"const\"}[10m])",
    ] {
        q.push(e.into());
    }

    // Syntax variants, literals, durations, regexes, number formatting.
    for e in [
        "count_values(\"v\", diff_gauge / 3)",
        "count_values(\"v\", node_memory_MemAvailable_bytes * 1e10)",
        "count_values(\"v\", node_load1 / 1e7)",
        "count_values(\"v\", -diff_gauge)",
        "label_replace(node_load1, \"x\", \"$2\", \"instance\", \"(.*)\")",
        "label_replace(node_load1, \"x\", \"${1}suffix\", \"instance\", \"host-(.*)\")",
        "label_replace(node_load1, \"x\", \"$1suffix\", \"instance\", \"host-(.*)\")",
        "label_replace(node_load1, \"x\", \"$name\", \"instance\", \"(?P<name>host)-.*\")",
        "node_cpu_seconds_total{mode=~\"^idle$\"}",
        "{__name__=~\"node_(load|cpu_s).*\",mode!~\"i.*\"}",
        "node_cpu_seconds_total{mode=~\"IDLE\"}",
        "node_cpu_seconds_total{mode=~\"id.e|us.?r\"}",
        "node_network_receive_bytes_total{device!=\"lo\",device=~\".+\"}",
        "2 > bool 1",
        "scalar(sum(node_load1)) * node_load1",
        "node_load1 offset 1h30m",
        "rate(diff_counter_total[1h30m])",
        "rate(diff_counter_total[90s])",
        "rate(diff_counter_total[1500ms])",
        "max_over_time(diff_gauge[1w])",
        "node_load1 @ 1700003600.5",
        "node_load1 @ 1700003600.5 offset 30s",
        "timestamp(node_load1 @ 1700003000)",
        "1e3 + node_load1",
        "0x10 * node_load1",
        "-inf < node_load1",
        "node_load1 + nan",
        "count(count by (instance) (node_cpu_seconds_total))",
        "SUM BY (instance) (node_load1)",
        "Sum(node_load1)",
        "sum(node_load1) by (instance) > 0",
        "sum(node_load1) # a comment",
        "sum(\n  node_load1\n)",
        "absent(rate(nonexistent_metric[5m]))",
        "resets(demo_http_request_duration_seconds_bucket[1h])",
        "last_over_time(node_load1[5m] offset 1h)",
        "node_load1 * on () group_left vector(2)",
        "node_load1 + on (instance) group_left (nonexistent) node_load5",
        "node_load1 / on (instance) node_load5 * on (instance) node_load15",
        "abs(-node_load1)",
        "floor(node_load1 * 100) / 100",
        "round(-2.5 + node_load1 * 0)",
        "round(2.5 + node_load1 * 0)",
        "sgn(diff_gauge)",
        "deriv(node_load1[15s])",
        "predict_linear(node_load1[15s], 60)",
        "stddev_over_time(node_load1[15s])",
        "quantile_over_time(0.5, node_load1[15s])",
        "changes(node_load1[15s])",
        "{__name__=~\"node_load.*|diff_gauge\"}",
        "sort(node_load1) * 1",
        "sum by (instance) (rate(node_network_receive_bytes_total{device!~\"lo|veth.*\"}[5m])) * 8",
        "increase(node_cpu_seconds_total{mode=\"idle\"}[1h]) / 3600",
        "(1 - (node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)) * 100 > 0",
        "node_filesystem_size_bytes{fstype!~\"tmpfs|ramfs\"} - node_filesystem_free_bytes",
        "time() - node_boot_time_seconds > 3600",
        "count by (mode) (node_cpu_seconds_total)",
        "count without (cpu, mode) (node_cpu_seconds_total)",
        "topk(3, sum by (device) (rate(node_network_receive_bytes_total[5m])))",
        "bottomk(1, node_filesystem_avail_bytes) by (instance)",
        "quantile(0.9, rate(node_cpu_seconds_total[5m])) by (mode)",
    ] {
        q.push(e.into());
    }

    // Errors, edge cases and oddities.
    for e in [
        "rate(node_load1)",
        "sum(node_load1[5m])",
        "node_load1 + on (instance) group_left node_cpu_seconds_total",
        "label_replace(diff_gauge, \"kind\", \"x\", \"kind\", \".*\")",
        "{__name__=~\"diff_gauge|diff_dup\"} * 2",
        "scalar(diff_gauge)",
        "vector(scalar(node_load1))",
        "diff_gauge[5m] offset -5m",
        "rate(diff_counter_total[5m] @ 1700000000)",
        "rate(diff_counter_total[5m] @ 1699999000)",
        "count_over_time(diff_gauge[1h] @ 1700000300)",
        "node_load1 @ 1699999900",
        "last_over_time(diff_gauge{kind=\"ends\"}[1h])",
        "present_over_time(diff_gauge{kind=\"starts\"}[10m])",
        "increase(diff_counter_total{kind=\"ends\"}[10m])",
        "sum by (kind) (count_over_time(diff_gauge[5m]))",
        "topk(2, count_values(\"v\", diff_dup))",
        "1 > bool 2 == bool 0",
        "sum(diff_gauge) / sum(diff_gauge offset 1d)",
    ] {
        q.push(e.into());
    }
    q
}

// ---------------------------------------------------------------------------------------------
// Comparison

/// A result series: its labels and its points (time, value as sent).
type ResultSeries = (BTreeMap<String, String>, Vec<(f64, String)>);

#[derive(Debug)]
enum Outcome {
    Ok {
        kind: String,
        /// Sorted by labels.
        series: Vec<ResultSeries>,
        /// For results whose order matters (`sort`): the values in the order returned. Only
        /// the values, since the order of equal values is not specified.
        ordered: Vec<String>,
        warnings: Vec<String>,
    },
    Err {
        kind: String,
        message: String,
    },
}

fn points(j: &Json) -> Vec<(f64, String)> {
    let point = |p: &Json| (p[0].as_f64().unwrap_or(f64::NAN), p[1].as_str().unwrap_or("?").to_string());
    match j {
        Json::Array(a) if a.first().is_some_and(Json::is_array) => a.iter().map(point).collect(),
        Json::Array(_) => vec![point(j)],
        _ => Vec::new(),
    }
}

fn parse_outcome(status: u16, body: &str, keep_order: bool) -> Outcome {
    let Ok(j) = serde_json::from_str::<Json>(body) else {
        return Outcome::Err { kind: format!("http {status}, not JSON"), message: body.chars().take(200).collect() };
    };
    if j["status"] != "success" {
        return Outcome::Err {
            kind: j["errorType"].as_str().unwrap_or("?").to_string(),
            message: j["error"].as_str().unwrap_or("").to_string(),
        };
    }
    let data = &j["data"];
    let kind = data["resultType"].as_str().unwrap_or("?").to_string();
    let mut series = Vec::new();
    match &data["result"] {
        Json::Array(items) if kind == "vector" || kind == "matrix" => {
            for item in items {
                let labels = item["metric"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), label_value(k, v.as_str().unwrap_or("")))).collect())
                    .unwrap_or_default();
                let values = if kind == "vector" { points(&item["value"]) } else { points(&item["values"]) };
                series.push((labels, values));
            }
        }
        other => series.push((BTreeMap::new(), points(other))),
    }
    let ordered =
        if keep_order { series.iter().filter_map(|s| s.1.first()).map(|p| p.1.clone()).collect() } else { Vec::new() };
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let warnings = j["warnings"]
        .as_array()
        .map(|w| w.iter().map(|s| s.as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default();
    Outcome::Ok { kind, series, ordered, warnings }
}

/// A label value as compared: `le` and `quantile` as numbers, since Sextant's ingestion
/// normalises their spelling of classic histograms and summaries as Prometheus 3 does
/// (`le="1"` becomes `"1.0"`), where 2.42 keeps it: a difference of ingestion, not of PromQL.
fn label_value(name: &str, value: &str) -> String {
    match value.parse::<f64>() {
        Ok(f) if name == "le" || name == "quantile" => format!("{f:?}"),
        _ => value.to_string(),
    }
}

/// The relative tolerance of value comparisons: `SEXTANT_PROMQL_DIFF_TOLERANCE`, default 1e-9.
fn tolerance() -> f64 {
    static TOLERANCE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TOLERANCE.get_or_init(|| {
        std::env::var("SEXTANT_PROMQL_DIFF_TOLERANCE").ok().and_then(|v| v.parse().ok()).unwrap_or(1e-9)
    })
}

fn values_equal(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) else { return false };
    if x.is_nan() || y.is_nan() || x.is_infinite() || y.is_infinite() {
        return x.is_nan() && y.is_nan() || x == y;
    }
    (x - y).abs() <= tolerance() * x.abs().max(y.abs()) || (x - y).abs() < 1e-300
}

fn labels_text(l: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// The first difference between Prometheus' outcome and ours, if any.
fn first_difference(theirs: &Outcome, ours: &Outcome) -> Option<String> {
    match (theirs, ours) {
        (Outcome::Err { kind: k1, message: m1 }, Outcome::Err { kind: k2, .. }) if k1 != k2 => {
            Some(format!("error type {k1} ({m1}) vs {k2}"))
        }
        (Outcome::Err { message: m1, .. }, Outcome::Err { message: m2, .. }) if m1 != m2 => {
            Some(format!("error text {m1:?} vs {m2:?}"))
        }
        (Outcome::Err { .. }, Outcome::Err { .. }) => None,
        (Outcome::Err { kind, message }, Outcome::Ok { kind: ok, .. }) => {
            Some(format!("Prometheus fails ({kind}: {message}), we return a {ok}"))
        }
        (Outcome::Ok { kind, .. }, Outcome::Err { kind: ek, message }) => {
            Some(format!("Prometheus returns a {kind}, we fail ({ek}: {message})"))
        }
        (
            Outcome::Ok { kind: k1, series: s1, ordered: o1, warnings: w1 },
            Outcome::Ok { kind: k2, series: s2, ordered: o2, warnings: w2 },
        ) => {
            if k1 != k2 {
                return Some(format!("result type {k1} vs {k2}"));
            }
            if o1.len() != o2.len() || o1.iter().zip(o2).any(|(a, b)| !values_equal(a, b)) {
                return Some(format!("order of values {o1:?} vs {o2:?}"));
            }
            let n = s1.len().max(s2.len());
            for i in 0..n {
                let (Some(a), Some(b)) = (s1.get(i), s2.get(i)) else {
                    let (who, extra) =
                        if s1.len() > s2.len() { ("only Prometheus", &s1[i]) } else { ("only we", &s2[i]) };
                    return Some(format!(
                        "{} vs {} series; {who} have {} {:?}",
                        s1.len(),
                        s2.len(),
                        labels_text(&extra.0),
                        extra.1.first()
                    ));
                };
                if a.0 != b.0 {
                    return Some(format!("series #{i}: labels {} vs {}", labels_text(&a.0), labels_text(&b.0)));
                }
                for j in 0..a.1.len().max(b.1.len()) {
                    match (a.1.get(j), b.1.get(j)) {
                        (Some(p), Some(r)) if p.0 == r.0 && values_equal(&p.1, &r.1) => {}
                        (p, r) => {
                            return Some(format!(
                                "series {} point #{j}: {p:?} vs {r:?} ({} vs {} points)",
                                labels_text(&a.0),
                                a.1.len(),
                                b.1.len()
                            ))
                        }
                    }
                }
            }
            if w1 != w2 {
                return Some(format!("warnings {w1:?} vs {w2:?}"));
            }
            None
        }
    }
}

/// One request to both servers.
#[derive(Debug, Clone)]
enum Request {
    Instant(f64),
    Range {
        start: f64,
        end: f64,
        step: f64,
    },
    /// A form POST to `path` with these parameters besides `query` (RFC 3339 times, a
    /// duration step).
    Post {
        path: &'static str,
        params: &'static str,
    },
}

impl Request {
    fn send(&self, port: u16, query: &str) -> (u16, String) {
        let q = percent_encode(query);
        let answer = match self {
            Request::Instant(t) => get(port, &format!("/api/v1/query?query={q}&time={t}")),
            Request::Range { start, end, step } => {
                get(port, &format!("/api/v1/query_range?query={q}&start={start}&end={end}&step={step}"))
            }
            Request::Post { path, params } => post(port, path, &format!("query={q}&{params}")),
        };
        answer.unwrap_or_else(|| panic!("no answer to {self:?} {query}"))
    }
}

fn requests(full: bool) -> Vec<Request> {
    let s = START as f64;
    let e = end_s() as f64;
    let mut r = vec![
        Request::Instant(s + 1800.0),
        Request::Instant(s + 3607.5),
        Request::Instant(e + 250.0),
        Request::Range { start: s - 600.0, end: e + 600.0, step: 120.0 },
        Request::Range { start: s + 1000.0, end: s + 1900.0, step: 15.0 },
        // Steps on the samples' timestamps: windows end and start exactly on samples.
        Request::Range { start: s + 900.0, end: s + 1800.0, step: 60.0 },
        Request::Post {
            path: "/api/v1/query_range",
            params: "start=2023-11-14T23%3A00%3A00Z&end=2023-11-14T23%3A30%3A00.5Z&step=2m",
        },
    ];
    if full {
        r.extend([
            Request::Instant(s - 100.0),
            Request::Instant(s + 60.0),
            Request::Instant(e),
            Request::Instant(e + 400.0),
            Request::Range { start: s + 123.456, end: s + 4000.0, step: 37.0 },
            Request::Range { start: s, end: e, step: 60.0 },
            Request::Range { start: e - 300.0, end: e + 700.0, step: 10.0 },
            Request::Post { path: "/api/v1/query", params: "time=2023-11-14T22%3A43%3A20.250Z" },
            // Times and steps finer than a millisecond.
            Request::Instant(s + 1234.5678),
            Request::Range { start: s + 100.0004, end: s + 1300.0, step: 17.5 },
        ]);
    }
    r
}

#[test]
fn promql_matches_prometheus_2_42() {
    let Some(shared) = shared::shared_dir("promql-diff") else { return };
    if !present("prometheus") || !present("promtool") || !present("python3") {
        println!("conformance promql-diff: skipped, prometheus/promtool/python3 not installed (Debian `prometheus`)");
        return;
    }
    let full = std::env::var_os("SEXTANT_PROMQL_DIFF_FULL").is_some_and(|v| v == "1");
    let only = std::env::var("SEXTANT_PROMQL_DIFF_ONLY").ok();
    let jitter_ms = std::env::var("SEXTANT_PROMQL_DIFF_JITTER_MS").unwrap_or_else(|_| "0".into());
    let dir = tempfile::tempdir().unwrap();

    // The data: gen_dataset.py's families (2 hosts, 2 h at 15 s) and ours, one OpenMetrics file.
    let generated = Command::new("python3")
        .arg(shared.join("bench/gen_dataset.py"))
        .arg("--template")
        .arg(shared.join("bench/node_exporter_1.5.0_sample.prom"))
        .args(["--instances", "2", "--scrapes", &scrapes().to_string(), "--start-ms", &(START * 1000).to_string()])
        .args(["--format", "om", "--jitter-ms", &jitter_ms])
        .output()
        .unwrap();
    assert!(generated.status.success(), "gen_dataset.py: {}", String::from_utf8_lossy(&generated.stderr));
    let mut om = String::from_utf8(generated.stdout).unwrap();
    assert!(om.ends_with("# EOF\n"));
    om.truncate(om.len() - "# EOF\n".len());
    om.push_str(&extra_families());
    om.push_str("# EOF\n");
    let data = dir.path().join("data.om");
    std::fs::write(&data, om).unwrap();

    let prom_data = dir.path().join("prom-data");
    let sextant_data = dir.path().join("sextant-data");
    run(Command::new("promtool").args(["tsdb", "create-blocks-from", "openmetrics"]).arg(&data).arg(&prom_data));
    run(Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["tsdb", "import", "openmetrics"])
        .arg(&data)
        .arg(&sextant_data));

    let config = dir.path().join("config.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 15s\n").unwrap();
    let (prom_port, sextant_port) = (free_port(), free_port());
    let prom_log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _prometheus = Proc(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", prom_data.display()))
            .arg("--storage.tsdb.retention.time=100y")
            .arg("--web.enable-remote-write-receiver")
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(prom_log)
            .spawn()
            .unwrap(),
    );
    let _sextant = Proc(
        Command::new(env!("CARGO_BIN_EXE_sextant"))
            .arg("server")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", sextant_data.display()))
            .arg("--storage.tsdb.retention.time=100y")
            .arg("--query.semantics=prometheus2")
            .arg("--web.enable-remote-write-receiver")
            .arg(format!("--web.listen-address=127.0.0.1:{sextant_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for port in [prom_port, sextant_port] {
        wait_for("the servers to be ready", Duration::from_secs(60), || {
            get(port, "/-/ready").is_some_and(|(status, _)| status == 200)
        });
    }

    // Series with stale markers, which OpenMetrics files cannot carry: remote-written to both,
    // after the imported data (Prometheus' head takes nothing older than its newest block).
    let stale_body = stale_write_request();
    for port in [prom_port, sextant_port] {
        let (status, body) = post_protobuf(port, "/api/v1/write", &stale_body).expect("remote write");
        assert!(status == 204 || status == 200, "remote write to {port}: {status} {body}");
        // The writes are visible (else the stale queries below would compare empty results).
        let at = stale_start() + 10 * 15;
        let (_, body) = get(port, &format!("/api/v1/query?query=count(diff_stale)&time={at}")).unwrap();
        assert!(body.contains(r#""value":["#) && body.contains(r#","3"]"#), "written series on {port}: {body}");
    }

    let mut all = queries();
    // The compliance tester's queries over the demo families.
    let compliance =
        std::fs::read_to_string(shared.join("conformance/promql/compliance/promql-test-queries.yml")).unwrap();
    all.extend(compliance_queries(&compliance));
    // The benchmark's query set too.
    let bench = std::fs::read_to_string(shared.join("bench/queries.txt")).unwrap();
    all.extend(bench.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string));
    if let Some(only) = &only {
        all.retain(|q| q.contains(only.as_str()));
    }
    let requests = requests(full);
    let stale_requests = stale_requests();
    let mut compared = 0;
    let mut mismatches: Vec<String> = Vec::new();
    let mut known_seen = 0;

    let stale_queries = stale_queries();
    let plan = all.iter().map(|q| (q, &requests)).chain(
        stale_queries
            .iter()
            .filter(|q| only.as_ref().is_none_or(|o| q.contains(o.as_str())))
            .map(|q| (q, &stale_requests)),
    );
    let mut n_queries = 0;
    for (query, requests) in plan {
        n_queries += 1;
        let keep_order = query.starts_with("sort");
        let mut first: Option<String> = None;
        for request in requests {
            let instant = matches!(request, Request::Instant(_) | Request::Post { path: "/api/v1/query", .. });
            let ask = |port| {
                let (status, body) = request.send(port, query);
                parse_outcome(status, &body, keep_order && instant)
            };
            let theirs = ask(prom_port);
            let ours = ask(sextant_port);
            compared += 1;
            if first.is_none() {
                first = first_difference(&theirs, &ours).map(|d| format!("{request:?}: {d}"));
            }
        }
        match (first, KNOWN.iter().find(|(k, _)| k == query)) {
            (Some(_), Some(_)) => known_seen += 1,
            (Some(diff), None) => mismatches.push(format!("{query}\n    {diff}")),
            (None, Some((_, reason))) => println!("known difference no longer seen: {query} ({reason})"),
            (None, None) => {}
        }
    }
    println!(
        "conformance promql-diff: {} of {} queries equal ({compared} requests), {known_seen} known differences, {} mismatches",
        n_queries - mismatches.len() - known_seen,
        n_queries,
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches against Prometheus 2.42:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

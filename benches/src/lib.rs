//! Sextant's benchmarks.
//!
//! Criterion benches live in `benches/benches/`, one file per hot path, each through the public
//! API of the crate it measures. Helpers shared by the benches (inputs from `../shared/bench`)
//! live here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sextant_model::Labels;

/// `$SEXTANT_SHARED/bench` or `../shared/bench` beside the workspace, if present.
pub fn shared_bench_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("SEXTANT_SHARED") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    let bench = dir.join("bench");
    bench.is_dir().then_some(bench)
}

/// The first `n` label sets of `20kseries.json` (the file `promtool tsdb bench write` reads).
pub fn series_from_20k(n: usize) -> Option<Vec<Labels>> {
    let text = std::fs::read_to_string(shared_bench_dir()?.join("20kseries.json")).ok()?;
    text.lines()
        .take(n)
        .map(|line| {
            let map: BTreeMap<String, String> = serde_json::from_str(line).ok()?;
            Labels::try_from_pairs(map).ok()
        })
        .collect()
}

/// A series and its samples in time order.
pub type SeriesSamples = (Labels, Vec<(i64, f64)>);

/// Series and their samples from `gen_dataset.py` (`--format prom`, run with `python3`), or
/// `None` when the script or python3 is missing. `$SEXTANT_GEN_DATASET` names a file with the
/// script's output to read instead (it takes minutes to generate).
pub fn gen_dataset(instances: usize, scrapes: usize) -> Option<Vec<SeriesSamples>> {
    if let Some(path) = std::env::var_os("SEXTANT_GEN_DATASET") {
        return parse_prom_text(&std::fs::read_to_string(path).ok()?);
    }
    let bench = shared_bench_dir()?;
    let out = std::process::Command::new("python3")
        .arg(bench.join("gen_dataset.py"))
        .arg("--template")
        .arg(bench.join("node_exporter_1.5.0_sample.prom"))
        .args(["--instances", &instances.to_string(), "--scrapes", &scrapes.to_string(), "--format", "prom"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_prom_text(&String::from_utf8(out.stdout).ok()?)
}

fn parse_prom_text(text: &str) -> Option<Vec<SeriesSamples>> {
    let mut series: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (labels, v, t) = parse_prom_line(line)?;
        series.entry(labels).or_default().push((t, v));
    }
    Some(series.into_iter().collect())
}

/// `name{a="b",...} value timestamp` as `gen_dataset.py` writes it (no escapes in values).
pub fn parse_prom_line(line: &str) -> Option<(Labels, f64, i64)> {
    let (series, rest) = match line.rfind('}') {
        Some(close) => (&line[..close + 1], &line[close + 1..]),
        None => line.split_at(line.find(' ')?),
    };
    let mut fields = rest.split_whitespace();
    let value = match fields.next()? {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let t: i64 = fields.next()?.parse().ok()?;
    let (name, labels) = match series.find('{') {
        Some(open) => (&series[..open], &series[open + 1..series.len() - 1]),
        None => (series, ""),
    };
    let mut pairs = vec![("__name__".to_string(), name.to_string())];
    for pair in labels.split("\",").filter(|p| !p.is_empty()) {
        let (n, v) = pair.split_once("=\"")?;
        pairs.push((n.to_string(), v.trim_end_matches('"').to_string()));
    }
    Some((Labels::try_from_pairs(pairs).ok()?, value, t))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_generated_lines() {
        let (labels, v, t) = super::parse_prom_line(
            r#"go_info{instance="host-0000:9100",job="node",version="go1.19.8"} 1 1700000000000"#,
        )
        .unwrap();
        assert_eq!(labels.get("version"), Some("go1.19.8"));
        assert_eq!(labels.metric_name(), Some("go_info"));
        assert_eq!((v, t), (1.0, 1_700_000_000_000));
        let (labels, v, _) = super::parse_prom_line("up 0.5 10").unwrap();
        assert_eq!((labels.len(), v), (1, 0.5));
    }
}

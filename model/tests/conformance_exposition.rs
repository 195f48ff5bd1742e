//! Conformance of the exposition codecs against `../shared`:
//! - the OpenMetrics 1.0 parser suite (`conformance/exposition/openmetrics-1.0-suite`, 211
//!   cases): every must-parse case parses and every `bad_*` case is rejected by the strict
//!   OpenMetrics parser;
//! - Prometheus' `textparse` test data and the real exporter scrapes parse with Prometheus'
//!   rules, and encode → parse gives the same entries.

#[path = "../../testsupport/shared.rs"]
mod shared;

use std::collections::BTreeMap;

use sextant_model::exposition::{encode, parse_families, Entry, Format, MetricType, Parser};

/// Cases of the OpenMetrics suite we do not pass, with the reason. Empty: all pass.
const OPENMETRICS_SKIPS: &[(&str, &str)] = &[];

#[test]
fn openmetrics_suite() {
    let Some(shared) = shared::shared_dir("openmetrics") else { return };
    let dir = shared.join("conformance/exposition/openmetrics-1.0-suite");
    let mut cases: Vec<_> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("test.json").is_file()).collect();
    cases.sort();
    let (mut passed, mut skipped, mut lenient_rejects, mut n_bad) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let spec = std::fs::read_to_string(case.join("test.json")).unwrap();
        let should_parse = json_bool(&spec, "shouldParse").unwrap_or_else(|| panic!("{name}: no shouldParse"));
        let file = json_string(&spec, "file").unwrap_or_else(|| "metrics".to_string());
        let input = std::fs::read(case.join(file)).unwrap();
        let result = Parser::openmetrics_strict(&input).collect::<Result<Vec<_>, _>>();
        if !should_parse {
            n_bad += 1;
            if Parser::new(&input, Format::OpenMetrics).any(|e| e.is_err()) {
                lenient_rejects += 1;
            }
        }
        if let Some((_, reason)) = OPENMETRICS_SKIPS.iter().find(|(n, _)| *n == name) {
            println!("skip {name}: {reason}");
            skipped += 1;
            continue;
        }
        match (should_parse, result) {
            (true, Ok(_)) | (false, Err(_)) => passed += 1,
            (true, Err(e)) => failures.push(format!("{name}: must parse, got {e}")),
            (false, Ok(_)) => failures.push(format!("{name}: must be rejected, parsed")),
        }
    }
    println!(
        "conformance openmetrics: {passed} of {} passed, {skipped} skipped ({lenient_rejects} of {n_bad} bad cases \
         also rejected with Prometheus' lenient rules)",
        cases.len()
    );
    assert!(failures.is_empty(), "unexpected results:\n{}", failures.join("\n"));
    assert!(cases.len() >= 211, "suite incomplete: {} cases", cases.len());
}

/// `"key": true|false` in a flat JSON object.
fn json_bool(json: &str, key: &str) -> Option<bool> {
    let after = json.split_once(&format!("\"{key}\""))?.1.trim_start().strip_prefix(':')?.trim_start();
    if after.starts_with("true") {
        Some(true)
    } else if after.starts_with("false") {
        Some(false)
    } else {
        None
    }
}

fn json_string(json: &str, key: &str) -> Option<String> {
    let after = json.split_once(&format!("\"{key}\""))?.1.trim_start().strip_prefix(':')?.trim_start();
    Some(after.strip_prefix('"')?.split_once('"')?.0.to_string())
}

#[test]
fn prometheus_testdata_and_scrapes() {
    let Some(shared) = shared::shared_dir("exposition") else { return };
    let mut files = Vec::new();
    for sub in
        ["conformance/exposition/prometheus-v3.14.0", "conformance/exposition/prometheus-v3.0.0", "exporters/scrapes"]
    {
        let dir = shared.join(sub);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries {
            files.push(e.unwrap().path());
        }
    }
    files.sort();
    let (mut n_files, mut n_samples) = (0, 0);
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let raw = std::fs::read(path).unwrap();
        let input = exposition_part(&name, &raw);
        let format = if name.contains(".om.") || name.starts_with("om") { Format::OpenMetrics } else { Format::Text };
        match check_file(input, format) {
            Ok(n) => {
                println!("  {name}: {n} samples, {format:?}");
                n_files += 1;
                n_samples += n;
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    println!("conformance exposition: {n_files} of {} files parse and round-trip ({n_samples} samples)", files.len());
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

/// blackbox's `?debug=true` page holds logs, then the exposition after this line.
fn exposition_part<'a>(name: &str, raw: &'a [u8]) -> &'a [u8] {
    const MARKER: &[u8] = b"Metrics that would have been returned:\n";
    if !name.ends_with("-debug.txt") {
        return raw;
    }
    match raw.windows(MARKER.len()).position(|w| w == MARKER) {
        Some(i) => {
            let rest = &raw[i + MARKER.len()..];
            // The module configuration follows the metrics after a blank line.
            let end = rest.windows(2).position(|w| w == b"\n\n").map_or(rest.len(), |j| j + 1);
            &rest[..end]
        }
        None => raw,
    }
}

/// Parses `input`, encodes it again in the same format, parses that, and compares entries.
fn check_file(input: &[u8], format: Format) -> Result<usize, String> {
    let original = summarize(input, format)?;
    let families = parse_families(input, format).map_err(|e| e.to_string())?;
    let encoded = encode(&families, format);
    let again = summarize(encoded.as_bytes(), format).map_err(|e| format!("re-parse: {e}"))?;
    if original.series.len() != again.series.len() {
        return Err(format!("{} series before, {} after round trip", original.series.len(), again.series.len()));
    }
    for (a, b) in original.series.iter().zip(&again.series) {
        if a != b {
            return Err(format!("round trip changed\n  {a}\nto\n  {b}"));
        }
    }
    if original.meta != again.meta {
        let diff: Vec<_> = original.meta.iter().filter(|(k, v)| again.meta.get(*k) != Some(v)).take(3).collect();
        return Err(format!("metadata changed: {diff:?}"));
    }
    Ok(original.series.len())
}

struct Summary {
    series: Vec<String>,
    meta: BTreeMap<String, String>,
}

fn summarize(input: &[u8], format: Format) -> Result<Summary, String> {
    let mut summary = Summary { series: Vec::new(), meta: BTreeMap::new() };
    for entry in Parser::new(input, format) {
        match entry.map_err(|e| e.to_string())? {
            Entry::Help { name, help } => {
                summary.meta.insert(format!("help {name}"), help.into_owned());
            }
            Entry::Type { name, metric_type } if metric_type != MetricType::Unknown => {
                let name = match metric_type {
                    MetricType::Counter if format == Format::OpenMetrics => name.trim_end_matches("_total").to_string(),
                    _ => name.into_owned(),
                };
                summary.meta.insert(format!("type {name}"), metric_type.to_string());
            }
            Entry::Unit { name, unit } => {
                summary.meta.insert(format!("unit {name}"), unit.to_string());
            }
            Entry::Series(s) => {
                let labels = s.to_labels().map_err(|e| e.to_string())?;
                let exemplar = s.exemplar().map(|e| {
                    format!(
                        "{} {} {:?}",
                        e.to_labels().map(|l| l.to_string()).unwrap_or_default(),
                        bits(e.value()),
                        e.timestamp()
                    )
                });
                summary.series.push(format!("{labels} {} {:?} {exemplar:?}", bits(s.value()), s.timestamp()));
            }
            _ => {}
        }
    }
    Ok(summary)
}

/// Value bits with every NaN the same.
fn bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

//! The textfile collector: `*.prom` files in `--collector.textfile.directory`, in text
//! format 0.0.4, merged into the scrape.

use std::collections::BTreeMap;
use std::path::Path;

use super::Context;
use crate::Error;
use sextant_model::exposition::{Format, MetricFamily, MetricType};

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// Splits a leading metric or label name off `text`.
fn take_name(text: &str) -> Option<(&str, &str)> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || !is_name_start(bytes[0]) {
        return None;
    }
    let end = bytes.iter().position(|b| !is_name_char(*b)).unwrap_or(bytes.len());
    Some(text.split_at(end))
}

type LabelPairs = Vec<(String, String)>;

/// Parses `{a="x",b="y"}` at the start of `text`; returns the labels and the rest.
fn take_labels(text: &str) -> Result<(LabelPairs, &str), String> {
    let mut labels = Vec::new();
    let mut rest = text.strip_prefix('{').ok_or("expected '{'")?;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = take_name(rest).ok_or("expected a label name")?;
        let after = after.trim_start().strip_prefix('=').ok_or("expected '=' after label name")?;
        let after = after.trim_start().strip_prefix('"').ok_or("expected '\"' to open a label value")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut closed_at = None;
        while let Some((idx, ch)) = chars.next() {
            match ch {
                '"' => {
                    closed_at = Some(idx);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, other)) => return Err(format!("invalid escape \\{other} in label value")),
                    None => return Err("unterminated label value".into()),
                },
                other => value.push(other),
            }
        }
        let closed_at = closed_at.ok_or("unterminated label value")?;
        labels.push((name.to_string(), value));
        rest = after[closed_at + 1..].trim_start();
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma;
        } else if !rest.starts_with('}') {
            return Err("expected ',' or '}' after a label".into());
        }
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}

/// The family a sample belongs to, given the declared types: `x_bucket` belongs to histogram
/// `x`, and so on.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, MetricType>) -> (&'a str, &'a str) {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            match types.get(base) {
                Some(MetricType::Histogram) => return (base, suffix),
                Some(MetricType::Summary) if suffix != "_bucket" => return (base, suffix),
                _ => {}
            }
        }
    }
    (name, "")
}

/// Parses one text-format file into families. Errors name the line, as Prometheus' parser
/// does: `text format parsing error in line 3: ...`.
pub(crate) fn parse_text(text: &str, default_help: &str) -> Result<Vec<MetricFamily>, String> {
    let mut types: BTreeMap<String, MetricType> = BTreeMap::new();
    let mut helps: BTreeMap<String, String> = BTreeMap::new();
    let mut samples: Vec<(String, LabelPairs, f64)> = Vec::new();
    for (line_idx, raw) in text.lines().enumerate() {
        let err = |message: &str| format!("text format parsing error in line {}: {message}", line_idx + 1);
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start();
            let (keyword, rest) = comment.split_once(char::is_whitespace).unwrap_or((comment, ""));
            if keyword != "HELP" && keyword != "TYPE" {
                continue;
            }
            let rest = rest.trim_start();
            let (name, rest) = take_name(rest).ok_or_else(|| err("invalid metric name in comment"))?;
            let rest = rest.trim();
            if keyword == "TYPE" {
                let kind = MetricType::parse(rest, Format::Text)
                    .or_else(|| MetricType::parse(rest, Format::OpenMetrics))
                    .ok_or_else(|| err(&format!("unknown metric type {rest:?}")))?;
                if types.insert(name.to_string(), kind).is_some() {
                    return Err(err(&format!("second TYPE line for metric name {name:?}")));
                }
            } else {
                let help = rest.replace("\\n", "\n").replace("\\\\", "\\");
                if helps.insert(name.to_string(), help).is_some() {
                    return Err(err(&format!("second HELP line for metric name {name:?}")));
                }
            }
            continue;
        }
        let (name, rest) = take_name(line).ok_or_else(|| err("invalid metric name"))?;
        let (labels, rest) =
            if rest.starts_with('{') { take_labels(rest).map_err(|m| err(&m))? } else { (Vec::new(), rest) };
        let mut fields = rest.split_ascii_whitespace();
        let value = fields.next().ok_or_else(|| err("expected a value"))?;
        let value = parse_value(value).ok_or_else(|| err(&format!("expected float as value, got {value:?}")))?;
        if fields.next().is_some() {
            return Err(err("client-side timestamps are not supported in text files"));
        }
        samples.push((name.to_string(), labels, value));
    }
    let mut families: BTreeMap<String, MetricFamily> = BTreeMap::new();
    for (name, labels, value) in samples {
        let (family, suffix) = family_of(&name, &types);
        let labels: Vec<(&str, &str)> = labels.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let kind = types.get(family).copied().unwrap_or(MetricType::Unknown);
        let help = helps.get(family).cloned().unwrap_or_else(|| default_help.to_string());
        families
            .entry(family.to_string())
            .or_insert_with(|| MetricFamily::new(family, help, kind))
            .push_suffixed(suffix, &labels, value);
    }
    Ok(families.into_values().collect())
}

fn mtime_seconds(path: &Path) -> Option<f64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    modified.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs_f64())
}

pub(super) fn collect(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let mut families = Vec::new();
    let mut error = 0.0;
    let mut mtimes = MetricFamily::new(
        "node_textfile_mtime_seconds",
        "Unixtime mtime of textfiles successfully read.",
        MetricType::Gauge,
    );
    if let Some(dir) = &ctx.textfile_directory {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut files: Vec<_> = entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".prom"))
                    .map(|e| e.path())
                    .collect();
                files.sort();
                for path in files {
                    let default_help = format!("Metric read from {}", path.display());
                    let parsed = crate::process::read_file(&path)
                        .map_err(|e| e.to_string())
                        .and_then(|text| parse_text(&text, &default_help));
                    match parsed {
                        Ok(found) => {
                            if let Some(mtime) = mtime_seconds(&path) {
                                mtimes.push(&[("file", &path.to_string_lossy())], mtime);
                            }
                            families.extend(found);
                        }
                        Err(_) => error = 1.0,
                    }
                }
            }
            Err(_) => error = 1.0,
        }
    }
    families.push(mtimes);
    families.push(MetricFamily::single(
        "node_textfile_scrape_error",
        "1 if there was an error opening or reading a file, 0 otherwise",
        MetricType::Gauge,
        error,
    ));
    Ok(families)
}

#[cfg(test)]
mod tests {
    use super::parse_text;
    use crate::registry::write_text;
    use sextant_model::exposition::MetricFamily;

    fn check(input: &str, expected: Result<&str, &str>) {
        let result = parse_text(input, "default").map(|families: Vec<MetricFamily>| {
            let mut out = String::new();
            write_text(&mut out, &families);
            out
        });
        match (result, expected) {
            (Ok(out), Ok(expected)) => assert_eq!(out, expected, "{input}"),
            (Err(err), Err(expected)) => assert!(err.contains(expected), "{input}: {err}"),
            (got, expected) => panic!("{input}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn textfile_cases() {
        check("", Ok(""));
        check("a 1\n", Ok("# HELP a default\n# TYPE a untyped\na 1\n"));
        check(
            "# HELP x Some help.\n# TYPE x counter\nx{l=\"v\",m=\"a\\\"b\"} 2\n",
            Ok("# HELP x Some help.\n# TYPE x counter\nx{l=\"v\",m=\"a\\\"b\"} 2\n"),
        );
        check(
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n",
            Ok("# HELP h default\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"),
        );
        check("a{} NaN\n", Ok("# HELP a default\n# TYPE a untyped\na NaN\n"));
        check("a 1 1700000000\n", Err("line 1: client-side timestamps"));
        check("# TYPE a foo\n", Err("line 1: unknown metric type"));
        check("\n1a 1\n", Err("line 2: invalid metric name"));
        check("a{b=\"x} 1\n", Err("unterminated label value"));
        check("a{b=x} 1\n", Err("expected '\"'"));
        check("a one\n", Err("expected float"));
        check("# TYPE a gauge\n# TYPE a gauge\n", Err("second TYPE"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in ".{0,200}") {
            let _ = parse_text(&input, "help");
        }

        #[test]
        fn mutated_valid_input_never_panics(cut in 0usize..80, byte in proptest::num::u8::ANY) {
            let valid = "# HELP x h\n# TYPE x counter\nx{a=\"1\",b=\"\\\\\"} 2\ny 3\n";
            let mut bytes = valid.as_bytes().to_vec();
            let idx = cut % bytes.len();
            bytes[idx] = byte;
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(families) = parse_text(&text, "help") {
                let n_samples: usize = families.iter().map(|f| f.samples.len()).sum();
                proptest::prop_assert!(n_samples <= text.lines().count());
            }
        }
    }
}

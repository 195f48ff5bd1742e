//! `/federate`: the latest sample of every matching series, in the text format.

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use sextant_model::{is_stale, Labels, ValueType};

use crate::error::ApiError;
use crate::params::parse_match_params;
use crate::server::{Api, ApiResult, Req};

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` as the text format writes values: the exponent
/// form below 1e-4 and from 1e6 (`1.79531852e+09`).
pub(crate) fn go_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let e_repr = format!("{f:e}");
    let exp = e_repr.split_once('e').and_then(|(_, e)| e.parse::<i32>().ok()).unwrap_or(0);
    if !(-4..6).contains(&exp) {
        crate::json::go_exponent(f)
    } else {
        format!("{f}")
    }
}

fn write_labels(out: &mut String, labels: &Labels, external: &Labels) {
    out.push('{');
    let mut first = true;
    let mut put = |out: &mut String, name: &str, value: &str| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    };
    for l in labels.iter().filter(|l| &*l.name != "__name__") {
        put(out, &l.name, &l.value);
    }
    for l in external.iter().filter(|l| labels.get(&l.name).is_none()) {
        put(out, &l.name, &l.value);
    }
    if labels.get("instance").is_none() && external.get("instance").is_none() {
        put(out, "instance", "");
    }
    out.push('}');
}

pub(crate) fn federate(api: &Api, req: &Req) -> ApiResult {
    let sets = parse_match_params(&req.params)?;
    let now = api.clock.now_ms();
    let mint = now - api.options.engine.lookback_delta_ms;
    let mut latest: BTreeMap<String, BTreeMap<Labels, (i64, f64)>> = BTreeMap::new();
    if !sets.is_empty() {
        let querier = api.storage.querier(mint, now).map_err(|e| ApiError::internal(e.to_string()))?;
        for matchers in &sets {
            let set = querier.select(false, None, matchers).map_err(|e| ApiError::internal(e.to_string()))?;
            for series in set {
                let mut series = series.map_err(|e| ApiError::internal(e.to_string()))?;
                let mut last = None;
                if series.samples.seek(mint) != ValueType::Exhausted {
                    loop {
                        let (t, v) = series.samples.at();
                        if t > now {
                            break;
                        }
                        last = Some((t, v));
                        if series.samples.next() == ValueType::Exhausted {
                            break;
                        }
                    }
                }
                let Some((t, v)) = last else { continue };
                if is_stale(v) {
                    continue;
                }
                let name = series.labels.metric_name().unwrap_or("").to_string();
                latest.entry(name).or_default().insert(series.labels, (t, v));
            }
        }
    }
    let mut out = String::new();
    for (name, series) in &latest {
        out.push_str("# TYPE ");
        out.push_str(name);
        out.push_str(" untyped\n");
        for (labels, (t, v)) in series {
            out.push_str(name);
            write_labels(&mut out, labels, &api.options.external_labels);
            out.push(' ');
            out.push_str(&go_g(*v));
            out.push(' ');
            out.push_str(&t.to_string());
            out.push('\n');
        }
    }
    let mut resp = (StatusCode::OK, out).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::go_g;

    #[test]
    fn text_values() {
        let check = |f: f64, expected: &str| assert_eq!(go_g(f), expected, "{f}");
        check(1.0, "1");
        check(0.0001, "0.0001");
        check(0.00001, "1e-05");
        check(123456.0, "123456");
        check(1234567.0, "1.234567e+06");
        check(1795318520.0, "1.79531852e+09");
        check(f64::NAN, "NaN");
        check(f64::NEG_INFINITY, "-Inf");
        check(-2.5, "-2.5");
    }
}

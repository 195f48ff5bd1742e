//! `/api/v1/…` JSON endpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use axum::response::IntoResponse as _;

use sextant_model::{Labels, Matcher, ValueType};
use sextant_promql::{Engine, Value};

use crate::error::{ApiError, ErrorType};
use crate::json::{format_value, go_exponent, success, JsonWriter};
use crate::params::{
    format_rfc3339, parse_duration, parse_match_params, parse_selector, parse_time, unescape_label_name, MAX_TIME_MS,
    MIN_TIME_MS,
};
use crate::server::{Api, ApiResult, Req};

/// Prometheus' limit on points per series of a range query.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

fn ok(data: &str) -> ApiResult {
    Ok(success(data, &[], &[]))
}

/// A `time`-like parameter with a default.
fn time_param(req: &Req, name: &str, default: i64) -> Result<i64, ApiError> {
    let v = req.params.get(name);
    if v.is_empty() {
        return Ok(default);
    }
    parse_time(v).map_err(|e| ApiError::invalid_param(name, e))
}

fn limit_param(req: &Req) -> Result<usize, ApiError> {
    let v = req.params.get("limit");
    if v.is_empty() {
        return Ok(0);
    }
    match v.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n as usize),
        Ok(_) => Err(ApiError::bad_data("limit must be non-negative")),
        Err(_) => Err(ApiError::bad_data(format!("cannot parse \"limit\" as an integer: {v:?}"))),
    }
}

/// The engine for one query: the server's options with `timeout` and `lookback_delta` applied.
fn engine_for(api: &Api, req: &Req) -> Result<Engine, ApiError> {
    let mut options = api.options.engine.clone();
    let timeout = req.params.get("timeout");
    if !timeout.is_empty() {
        let ms = parse_duration(timeout).map_err(|e| ApiError::invalid_param("timeout", e))?;
        if !(timeout.ends_with('s') || timeout.ends_with('m') || timeout.ends_with('h')) && ms == 0 {
            // Sub-millisecond float timeouts ("0.000001") are already over.
            return Err(ApiError::new(ErrorType::Timeout, "query timed out in query queue"));
        }
        let ms = ms.max(0) as u64;
        let requested = std::time::Duration::from_millis(ms);
        options.timeout = Some(options.timeout.map_or(requested, |t| t.min(requested)));
    }
    let lookback = req.params.get("lookback_delta");
    if !lookback.is_empty() {
        let ms = parse_duration(lookback).map_err(|e| ApiError::invalid_param("lookback_delta", e))?;
        if ms < 0 {
            return Err(ApiError::invalid_param("lookback_delta", "lookback delta must be positive"));
        }
        if ms > 0 {
            options.lookback_delta_ms = ms;
        }
    }
    if let Some(t) = options.timeout {
        if req.received.elapsed() >= t {
            return Err(ApiError::new(ErrorType::Timeout, "query timed out in query queue"));
        }
    }
    Ok(Engine::new(options))
}

/// The `query` parameter, parsed in the dialect of the engine's semantics.
fn query_param(api: &Api, req: &Req) -> Result<sextant_promql::Expr, ApiError> {
    parse_query_param(api, req).map_err(|e| ApiError::invalid_param("query", e))
}

fn parse_query_param(api: &Api, req: &Req) -> Result<sextant_promql::Expr, String> {
    let q = req.params.get("query");
    if q.is_empty() {
        return Err("1:1: parse error: no expression found in input".into());
    }
    let options = match api.options.engine.semantics {
        sextant_promql::Semantics::Prometheus2 => sextant_promql::ParseOptions::prometheus2(),
        _ => sextant_promql::ParseOptions::default(),
    };
    sextant_promql::parse_with(q, options).map_err(|e| e.to_string())
}

/// One line of the query log (`query_log_file`), as Prometheus writes it: JSON with sorted
/// keys, `params` (`query`, `start`, `end`, `step` in seconds, 0 for instant queries), the
/// error if any, the request, the timings and the time of logging.
fn log_query(api: &Api, req: &Req, (start, end, step_ms): (i64, i64, i64), elapsed: f64, error: Option<&str>) {
    api.shared.queries_total.fetch_add(1, Ordering::Relaxed);
    let mut guard = api.shared.query_log.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(sink) = guard.as_mut() {
        let mut w = JsonWriter::new();
        w.raw("{");
        if let Some(error) = error {
            w.raw(r#""error":"#).string(error).raw(",");
        }
        w.raw(r#""httpRequest":{"method":"#).string(req.method.as_str());
        w.raw(r#","path":"#).string(&req.path);
        w.raw(r#"},"params":{"end":"#).string(&format_rfc3339(end));
        w.raw(r#","query":"#).string(req.params.get("query"));
        w.raw(r#","start":"#).string(&format_rfc3339(start));
        w.raw(r#","step":"#).raw(&(step_ms as f64 / 1000.0).to_string());
        let queued = req.received.elapsed().as_secs_f64() - elapsed;
        w.raw(r#"},"stats":{"timings":{"evalTotalTime":"#).raw(&elapsed.to_string());
        w.raw(r#","resultSortTime":0,"queryPreparationTime":0,"innerEvalTime":"#).raw(&elapsed.to_string());
        w.raw(r#","execQueueTime":"#).raw(&queued.max(0.0).to_string());
        w.raw(r#","execTotalTime":"#).raw(&(elapsed + queued.max(0.0)).to_string());
        w.raw(r#"}},"ts":"#).string(&format_rfc3339(api.clock.now_ms()));
        w.raw("}\n");
        let _ = sink.write_all(w.finish().as_bytes());
        let _ = sink.flush();
    }
}

/// Writes `value` as `{"resultType":…,"result":…}` (without closing the object).
fn write_value(w: &mut JsonWriter, value: &Value, limit: usize) -> bool {
    let mut truncated = false;
    w.raw(r#"{"resultType":"#).string(value.type_name()).raw(r#","result":"#);
    match value {
        Value::Scalar { t, v } => {
            w.point(*t, *v);
        }
        Value::String { t, s } => {
            w.raw("[").timestamp(*t).raw(",").string(s).raw("]");
        }
        Value::Vector(samples) => {
            w.raw("[");
            for (i, s) in samples.iter().enumerate() {
                if limit > 0 && i >= limit {
                    truncated = true;
                    break;
                }
                if i > 0 {
                    w.raw(",");
                }
                w.raw(r#"{"metric":"#).labels(&s.labels).raw(r#","value":"#).point(s.t, s.f).raw("}");
            }
            w.raw("]");
        }
        Value::Matrix(series) => {
            w.raw("[");
            for (i, s) in series.iter().enumerate() {
                if limit > 0 && i >= limit {
                    truncated = true;
                    break;
                }
                if i > 0 {
                    w.raw(",");
                }
                w.raw(r#"{"metric":"#).labels(&s.labels).raw(r#","values":["#);
                for (j, p) in s.floats.iter().enumerate() {
                    if j > 0 {
                        w.raw(",");
                    }
                    w.point(p.t, p.f);
                }
                w.raw("]}");
            }
            w.raw("]");
        }
        _ => {
            w.raw("[]");
        }
    }
    truncated
}

fn n_points(value: &Value) -> usize {
    match value {
        Value::Vector(v) => v.len(),
        Value::Matrix(m) => m.iter().map(|s| s.floats.len()).sum(),
        _ => 1,
    }
}

fn query_response(req: &Req, result: sextant_promql::QueryResult, eval_secs: f64) -> ApiResult {
    let limit = limit_param(req)?;
    // About 30 bytes per point: one allocation for most answers.
    let mut w = crate::json::success_writer(n_points(&result.value).saturating_mul(30).min(64 << 20));
    let truncated = write_value(&mut w, &result.value, limit);
    if !req.params.get("stats").is_empty() {
        let total = req.received.elapsed().as_secs_f64();
        let points = n_points(&result.value);
        w.raw(r#","stats":{"timings":{"evalTotalTime":"#).raw(&eval_secs.to_string());
        w.raw(r#","resultSortTime":0,"queryPreparationTime":0,"innerEvalTime":"#).raw(&eval_secs.to_string());
        w.raw(r#","execQueueTime":0,"execTotalTime":"#).raw(&total.to_string());
        w.raw(r#"},"samples":{"totalQueryableSamples":"#).raw(&points.to_string());
        w.raw(r#","peakSamples":"#).raw(&points.to_string()).raw("}}");
    }
    w.raw("}");
    let mut warnings = result.annotations.warnings;
    if truncated {
        warnings.push("results truncated due to limit".to_string());
    }
    Ok(crate::json::finish_success(w, &warnings, &result.annotations.infos))
}

pub(crate) fn query(api: &Api, req: &Req) -> ApiResult {
    let t = req.params.get("time");
    let t = if t.is_empty() {
        api.clock.now_ms()
    } else {
        parse_time(t).map_err(|e| ApiError::invalid_param("time", format!("Invalid time value for 'time': {e}")))?
    };
    let engine = engine_for(api, req)?;
    let expr = query_param(api, req)?;
    let started = std::time::Instant::now();
    let result = engine.instant_query(&*api.storage, &expr, t);
    let error = result.as_ref().err().map(|e| e.to_string());
    log_query(api, req, (t, t, 0), started.elapsed().as_secs_f64(), error.as_deref());
    let result = result.map_err(ApiError::from_query)?;
    query_response(req, result, started.elapsed().as_secs_f64())
}

pub(crate) fn query_range(api: &Api, req: &Req) -> ApiResult {
    let p = &req.params;
    let start = parse_time(p.get("start")).map_err(|e| ApiError::invalid_param("start", e))?;
    let end = parse_time(p.get("end")).map_err(|e| ApiError::invalid_param("end", e))?;
    if end < start {
        return Err(ApiError::invalid_param("end", "end timestamp must not be before start time"));
    }
    let step = parse_duration(p.get("step")).map_err(|e| ApiError::invalid_param("step", e))?;
    if step <= 0 {
        return Err(ApiError::invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let engine = engine_for(api, req)?;
    let expr = match api.options.engine.semantics {
        // 2.42 does not name the parameter in a range query's parse error.
        sextant_promql::Semantics::Prometheus2 => parse_query_param(api, req).map_err(ApiError::bad_data)?,
        _ => query_param(api, req)?,
    };
    let kind = expr.expr_type();
    if !matches!(kind, sextant_promql::ExprType::Scalar | sextant_promql::ExprType::Vector) {
        // Prometheus refuses these when it creates the query: bad data, not an execution error.
        return Err(ApiError::bad_data(format!(
            "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
            kind.documented()
        )));
    }
    let started = std::time::Instant::now();
    let result = engine.range_query(&*api.storage, &expr, start, end, step);
    let error = result.as_ref().err().map(|e| e.to_string());
    log_query(api, req, (start, end, step), started.elapsed().as_secs_f64(), error.as_deref());
    let result = result.map_err(ApiError::from_query)?;
    query_response(req, result, started.elapsed().as_secs_f64())
}

pub(crate) fn format_query(api: &Api, req: &Req) -> ApiResult {
    let expr = query_param(api, req)?;
    let mut w = JsonWriter::new();
    w.string(&sextant_promql::format(&expr));
    ok(&w.finish())
}

pub(crate) fn parse_query(api: &Api, req: &Req) -> ApiResult {
    let expr = query_param(api, req)?;
    let mut w = JsonWriter::new();
    crate::ast_json::write(&mut w, &expr);
    ok(&w.finish())
}

/// `[start, end]` of a metadata call (`series`, `labels`, `label values`).
fn range_params(req: &Req) -> Result<(i64, i64), ApiError> {
    let start = time_param(req, "start", MIN_TIME_MS)?;
    let end = time_param(req, "end", MAX_TIME_MS)?;
    Ok((start, end))
}

fn storage_err(e: sextant_model::StorageError) -> ApiError {
    ApiError::new(ErrorType::Execution, e.to_string())
}

pub(crate) fn series(api: &Api, req: &Req) -> ApiResult {
    let sets = parse_match_params(&req.params)?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = range_params(req)?;
    let limit = limit_param(req)?;
    let querier = api.storage.querier(start, end).map_err(storage_err)?;
    let hints = sextant_model::SelectHints { start, end, func: Some("series".into()), ..Default::default() };
    let mut found: BTreeSet<Labels> = BTreeSet::new();
    for matchers in &sets {
        for series in querier.select(false, Some(&hints), matchers).map_err(storage_err)? {
            let mut series = series.map_err(storage_err)?;
            // A series counts only when it has a sample in the range.
            if series.samples.next() != ValueType::Exhausted {
                found.insert(series.labels);
            }
        }
    }
    let mut w = JsonWriter::new();
    w.raw("[");
    let mut truncated = false;
    for (i, labels) in found.iter().enumerate() {
        if limit > 0 && i >= limit {
            truncated = true;
            break;
        }
        if i > 0 {
            w.raw(",");
        }
        w.labels(labels);
    }
    w.raw("]");
    let warnings = if truncated { vec!["results truncated due to limit".to_string()] } else { vec![] };
    Ok(success(&w.finish(), &warnings, &[]))
}

fn string_list_response(items: Vec<String>, limit: usize) -> ApiResult {
    let truncated = limit > 0 && items.len() > limit;
    let shown = if truncated { &items[..limit] } else { &items[..] };
    let mut w = JsonWriter::new();
    w.string_list(shown.iter().map(String::as_str));
    let warnings = if truncated { vec!["results truncated due to limit".to_string()] } else { vec![] };
    Ok(success(&w.finish(), &warnings, &[]))
}

pub(crate) fn labels(api: &Api, req: &Req) -> ApiResult {
    let sets = parse_match_params(&req.params)?;
    let (start, end) = range_params(req)?;
    let limit = limit_param(req)?;
    let querier = api.storage.querier(start, end).map_err(storage_err)?;
    let mut names: BTreeSet<String> = BTreeSet::new();
    if sets.is_empty() {
        names.extend(querier.label_names(&[]).map_err(storage_err)?);
    }
    for matchers in &sets {
        names.extend(querier.label_names(matchers).map_err(storage_err)?);
    }
    string_list_response(names.into_iter().collect(), limit)
}

/// Decodes `%XX` escapes of a URL path segment.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or(""), 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn label_values(api: &Api, req: &Req) -> ApiResult {
    let raw = req.path.strip_prefix("/api/v1/label/").and_then(|r| r.strip_suffix("/values")).unwrap_or_default();
    let name = unescape_label_name(&percent_decode(raw));
    if name.is_empty() {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let sets = parse_match_params(&req.params)?;
    let (start, end) = range_params(req)?;
    let limit = limit_param(req)?;
    let querier = api.storage.querier(start, end).map_err(storage_err)?;
    let mut values: BTreeSet<String> = BTreeSet::new();
    if sets.is_empty() {
        values.extend(querier.label_values(&name, &[]).map_err(storage_err)?);
    }
    for matchers in &sets {
        values.extend(querier.label_values(&name, matchers).map_err(storage_err)?);
    }
    string_list_response(values.into_iter().collect(), limit)
}

pub(crate) fn query_exemplars(api: &Api, req: &Req) -> ApiResult {
    // Exemplars are not stored yet: validate like Prometheus, answer with an empty list.
    query_param(api, req)?;
    time_param(req, "start", MIN_TIME_MS)?;
    time_param(req, "end", MAX_TIME_MS)?;
    ok("[]")
}

fn int_param(req: &Req, name: &str) -> Result<Option<i64>, ApiError> {
    let v = req.params.get(name);
    if v.is_empty() {
        return Ok(None);
    }
    v.parse().map(Some).map_err(|_| ApiError::bad_data(format!("{name} must be a number")))
}

pub(crate) fn metadata(api: &Api, req: &Req) -> ApiResult {
    let limit = int_param(req, "limit")?.unwrap_or(-1);
    let per_metric = int_param(req, "limit_per_metric")?.unwrap_or(-1);
    let metric = req.params.get("metric");
    let mut by_metric: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    for m in api.targets.metadata() {
        if !metric.is_empty() && m.metric != metric {
            continue;
        }
        let entry = by_metric.entry(m.metric).or_default();
        let item = (m.metric_type, m.help, m.unit);
        if !entry.contains(&item) {
            entry.push(item);
        }
    }
    let mut w = JsonWriter::new();
    w.raw("{");
    for (i, (name, items)) in by_metric.iter().enumerate() {
        if limit >= 0 && i as i64 >= limit {
            break;
        }
        if i > 0 {
            w.raw(",");
        }
        w.string(name).raw(":[");
        for (j, (kind, help, unit)) in items.iter().enumerate() {
            if per_metric > 0 && j as i64 >= per_metric {
                break;
            }
            if j > 0 {
                w.raw(",");
            }
            w.raw(r#"{"type":"#).string(kind).raw(r#","help":"#).string(help).raw(r#","unit":"#).string(unit).raw("}");
        }
        w.raw("]");
    }
    w.raw("}");
    ok(&w.finish())
}

pub(crate) fn targets_metadata(api: &Api, req: &Req) -> ApiResult {
    let limit = int_param(req, "limit")?.unwrap_or(-1);
    let match_target = req.params.get("match_target");
    let target_matchers: Vec<Matcher> =
        if match_target.is_empty() { Vec::new() } else { parse_selector(match_target).map_err(ApiError::bad_data)? };
    let metric = req.params.get("metric");
    let mut w = JsonWriter::new();
    w.raw("[");
    let mut n = 0i64;
    for m in api.targets.metadata() {
        if limit >= 0 && n >= limit {
            break;
        }
        if !metric.is_empty() && m.metric != metric {
            continue;
        }
        if !sextant_model::matches_all(&target_matchers, &m.target) {
            continue;
        }
        if n > 0 {
            w.raw(",");
        }
        n += 1;
        w.raw(r#"{"target":"#).labels(&m.target);
        if metric.is_empty() {
            w.raw(r#","metric":"#).string(&m.metric);
        }
        w.raw(r#","type":"#).string(&m.metric_type).raw(r#","help":"#).string(&m.help);
        w.raw(r#","unit":"#).string(&m.unit).raw("}");
    }
    w.raw("]");
    ok(&w.finish())
}

fn opt_time(w: &mut JsonWriter, ms: Option<i64>) {
    match ms {
        Some(ms) => w.string(&format_rfc3339(ms)),
        None => w.string("0001-01-01T00:00:00Z"),
    };
}

pub(crate) fn targets(api: &Api, req: &Req) -> ApiResult {
    let state = req.params.get("state").to_ascii_lowercase();
    let pool = req.params.get("scrapePool");
    let show_active = state.is_empty() || state == "active" || state == "any";
    let show_dropped = state.is_empty() || state == "dropped" || state == "any";
    let mut w = JsonWriter::new();
    w.raw(r#"{"activeTargets":["#);
    if show_active {
        let active = api.targets.active_targets();
        for (i, t) in active.iter().filter(|t| pool.is_empty() || t.scrape_pool == pool).enumerate() {
            if i > 0 {
                w.raw(",");
            }
            w.raw(r#"{"discoveredLabels":"#).labels(&t.discovered_labels);
            w.raw(r#","labels":"#).labels(&t.labels);
            w.raw(r#","scrapePool":"#).string(&t.scrape_pool);
            w.raw(r#","scrapeUrl":"#).string(&t.scrape_url);
            w.raw(r#","globalUrl":"#).string(&t.global_url);
            w.raw(r#","lastError":"#).string(&t.last_error);
            w.raw(r#","lastScrape":"#);
            opt_time(&mut w, t.last_scrape_ms);
            w.raw(r#","lastScrapeDuration":"#).raw(&float_number(t.last_scrape_duration_seconds));
            w.raw(r#","health":"#).string(&t.health);
            w.raw(r#","scrapeInterval":"#).string(&t.scrape_interval);
            w.raw(r#","scrapeTimeout":"#).string(&t.scrape_timeout).raw("}");
        }
    }
    w.raw(r#"],"droppedTargets":["#);
    if show_dropped {
        let dropped = api.targets.dropped_targets();
        for (i, t) in dropped.iter().filter(|t| pool.is_empty() || t.scrape_pool == pool).enumerate() {
            if i > 0 {
                w.raw(",");
            }
            w.raw(r#"{"discoveredLabels":"#).labels(&t.discovered_labels);
            w.raw(r#","scrapePool":"#).string(&t.scrape_pool).raw("}");
        }
    }
    w.raw("]}");
    ok(&w.finish())
}

/// A JSON number for a finite float (`0` for NaN/Inf, which JSON cannot hold).
fn float_number(f: f64) -> String {
    if f.is_finite() {
        format!("{f}")
    } else {
        "0".to_string()
    }
}

pub(crate) fn scrape_pools(api: &Api, _req: &Req) -> ApiResult {
    let mut pools = api.targets.scrape_pools();
    pools.sort();
    let mut w = JsonWriter::new();
    w.raw(r#"{"scrapePools":"#).string_list(pools.iter().map(String::as_str)).raw("}");
    ok(&w.finish())
}

fn write_alert(w: &mut JsonWriter, a: &crate::providers::Alert) {
    w.raw(r#"{"labels":"#).labels(&a.labels).raw(r#","annotations":"#).labels(&a.annotations);
    w.raw(r#","state":"#).string(&a.state).raw(r#","activeAt":"#).string(&format_rfc3339(a.active_at_ms));
    w.raw(r#","value":"#).string(&go_exponent_fixed(a.value)).raw("}");
}

/// Go's `%e` (six mantissa digits trimmed as Prometheus' alert value: `1e+00`).
fn go_exponent_fixed(v: f64) -> String {
    if !v.is_finite() {
        return format_value(v);
    }
    go_exponent(v)
}

pub(crate) fn rules(api: &Api, req: &Req) -> ApiResult {
    let kind = req.params.get("type").to_ascii_lowercase();
    if !kind.is_empty() && kind != "alert" && kind != "record" {
        return Err(ApiError::bad_data(format!("invalid parameter \"type\": not supported value {kind:?}")));
    }
    let mut w = JsonWriter::new();
    w.raw(r#"{"groups":["#);
    for (i, g) in api.rules.rule_groups().iter().enumerate() {
        if i > 0 {
            w.raw(",");
        }
        w.raw(r#"{"name":"#).string(&g.name).raw(r#","file":"#).string(&g.file).raw(r#","rules":["#);
        let mut n = 0;
        for r in &g.rules {
            let is_alert = r.alerting.is_some();
            if (kind == "alert" && !is_alert) || (kind == "record" && is_alert) {
                continue;
            }
            if n > 0 {
                w.raw(",");
            }
            n += 1;
            w.raw("{");
            if let Some(a) = &r.alerting {
                w.raw(r#""state":"#).string(&a.state).raw(",");
            }
            w.raw(r#""name":"#).string(&r.name).raw(r#","query":"#).string(&r.query);
            if let Some(a) = &r.alerting {
                w.raw(r#","duration":"#).raw(&float_number(a.duration_seconds));
                w.raw(r#","keepFiringFor":0,"labels":"#).labels(&r.labels);
                w.raw(r#","annotations":"#).labels(&a.annotations).raw(r#","alerts":["#);
                for (j, alert) in a.alerts.iter().enumerate() {
                    if j > 0 {
                        w.raw(",");
                    }
                    write_alert(&mut w, alert);
                }
                w.raw("]");
            } else if !r.labels.is_empty() {
                w.raw(r#","labels":"#).labels(&r.labels);
            }
            w.raw(r#","health":"#).string(&r.health);
            if !r.last_error.is_empty() {
                w.raw(r#","lastError":"#).string(&r.last_error);
            }
            w.raw(r#","evaluationTime":"#).raw(&float_number(r.evaluation_seconds));
            w.raw(r#","lastEvaluation":"#);
            opt_time(&mut w, r.last_evaluation_ms);
            w.raw(r#","type":"#).string(if is_alert { "alerting" } else { "recording" }).raw("}");
        }
        w.raw(r#"],"interval":"#).raw(&float_number(g.interval_seconds));
        w.raw(r#","limit":0,"evaluationTime":"#).raw(&float_number(g.evaluation_seconds));
        w.raw(r#","lastEvaluation":"#);
        opt_time(&mut w, g.last_evaluation_ms);
        w.raw("}");
    }
    w.raw("]}");
    ok(&w.finish())
}

pub(crate) fn alerts(api: &Api, _req: &Req) -> ApiResult {
    let mut w = JsonWriter::new();
    w.raw(r#"{"alerts":["#);
    for (i, a) in api.rules.alerts().iter().enumerate() {
        if i > 0 {
            w.raw(",");
        }
        write_alert(&mut w, a);
    }
    w.raw("]}");
    ok(&w.finish())
}

pub(crate) fn alertmanagers(api: &Api, _req: &Req) -> ApiResult {
    let mut w = JsonWriter::new();
    w.raw(r#"{"activeAlertmanagers":["#);
    for (i, url) in api.rules.alertmanagers().iter().enumerate() {
        if i > 0 {
            w.raw(",");
        }
        w.raw(r#"{"url":"#).string(url).raw("}");
    }
    w.raw(r#"],"droppedAlertmanagers":[]}"#);
    ok(&w.finish())
}

pub(crate) fn buildinfo(api: &Api, _req: &Req) -> ApiResult {
    let b = &api.options.build_info;
    let mut w = JsonWriter::new();
    w.raw(r#"{"version":"#).string(&b.version);
    w.raw(r#","revision":"#).string(&b.revision);
    w.raw(r#","branch":"#).string(&b.branch);
    w.raw(r#","buildUser":"#).string(&b.build_user);
    w.raw(r#","buildDate":"#).string(&b.build_date);
    w.raw(r#","goVersion":"#).string(&b.go_version).raw("}");
    ok(&w.finish())
}

pub(crate) fn config(api: &Api, _req: &Req) -> ApiResult {
    let mut w = JsonWriter::new();
    w.raw(r#"{"yaml":"#).string(&api.options.config_yaml).raw("}");
    ok(&w.finish())
}

pub(crate) fn flags(api: &Api, _req: &Req) -> ApiResult {
    let mut w = JsonWriter::new();
    w.raw("{");
    for (i, (k, v)) in api.options.flags.iter().enumerate() {
        if i > 0 {
            w.raw(",");
        }
        w.string(k).raw(":").string(v);
    }
    w.raw("}");
    ok(&w.finish())
}

pub(crate) fn runtimeinfo(api: &Api, _req: &Req) -> ApiResult {
    let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut w = JsonWriter::new();
    w.raw(r#"{"startTime":"#).string(&format_rfc3339(api.shared.start_ms));
    w.raw(r#","CWD":"#).string(&cwd);
    w.raw(r#","reloadConfigSuccess":"#);
    w.raw(if api.shared.last_reload_ok.load(Ordering::Relaxed) { "true" } else { "false" });
    w.raw(r#","lastConfigTime":"#).string(&format_rfc3339(api.shared.start_ms / 1000 * 1000));
    w.raw(r#","corruptionCount":0,"goroutineCount":0,"GOMAXPROCS":"#).raw(&threads.to_string());
    w.raw(r#","GOGC":"","GODEBUG":"","storageRetention":"#).string(&api.options.storage_retention).raw("}");
    ok(&w.finish())
}

pub(crate) fn tsdb_status(api: &Api, req: &Req) -> ApiResult {
    let limit = int_param(req, "limit")?.unwrap_or(10);
    if limit < 1 {
        return Err(ApiError::bad_data("limit must be a positive number"));
    }
    let limit = limit as usize;
    let querier = api.storage.querier(MIN_TIME_MS, MAX_TIME_MS).map_err(storage_err)?;
    let all = Matcher::new(sextant_model::MatchOp::RegexMatch, "__name__", ".+")
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let (mut n_series, mut min_t, mut max_t) = (0u64, i64::MAX, i64::MIN);
    let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
    let mut values_by_label: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut bytes_by_label: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_pair: BTreeMap<String, u64> = BTreeMap::new();
    for series in querier.select(false, None, &[all]).map_err(storage_err)? {
        let mut series = series.map_err(storage_err)?;
        n_series += 1;
        while series.samples.next() != ValueType::Exhausted {
            let (t, _) = series.samples.at();
            min_t = min_t.min(t);
            max_t = max_t.max(t);
        }
        for l in series.labels.iter() {
            if &*l.name == "__name__" {
                *by_name.entry(l.value.to_string()).or_default() += 1;
            }
            if values_by_label.entry(l.name.to_string()).or_default().insert(l.value.to_string()) {
                *bytes_by_label.entry(l.name.to_string()).or_default() += l.value.len() as u64;
            }
            *by_pair.entry(format!("{}={}", l.name, l.value)).or_default() += 1;
        }
    }
    let top = |m: Vec<(String, u64)>, w: &mut JsonWriter| {
        let mut m = m;
        m.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        w.raw("[");
        for (i, (name, value)) in m.iter().take(limit).enumerate() {
            if i > 0 {
                w.raw(",");
            }
            w.raw(r#"{"name":"#).string(name).raw(r#","value":"#).raw(&value.to_string()).raw("}");
        }
        w.raw("]");
    };
    let n_pairs: usize = values_by_label.values().map(BTreeSet::len).sum();
    let (min_t, max_t) = if n_series == 0 { (i64::MAX, i64::MIN) } else { (min_t, max_t) };
    let mut w = JsonWriter::new();
    w.raw(r#"{"headStats":{"numSeries":"#).raw(&n_series.to_string());
    w.raw(r#","numLabelPairs":"#).raw(&n_pairs.to_string());
    w.raw(r#","chunkCount":"#).raw(&n_series.to_string());
    w.raw(r#","minTime":"#).raw(&min_t.to_string()).raw(r#","maxTime":"#).raw(&max_t.to_string());
    w.raw(r#"},"seriesCountByMetricName":"#);
    top(by_name.into_iter().collect(), &mut w);
    w.raw(r#","labelValueCountByLabelName":"#);
    top(values_by_label.iter().map(|(k, v)| (k.clone(), v.len() as u64)).collect(), &mut w);
    w.raw(r#","memoryInBytesByLabelName":"#);
    top(bytes_by_label.into_iter().collect(), &mut w);
    w.raw(r#","seriesCountByLabelValuePair":"#);
    top(by_pair.into_iter().collect(), &mut w);
    w.raw("}");
    ok(&w.finish())
}

pub(crate) fn walreplay(_api: &Api, _req: &Req) -> ApiResult {
    ok(r#"{"min":0,"max":0,"current":0}"#)
}

pub(crate) fn admin(api: &Api, req: &Req) -> ApiResult {
    if !api.options.enable_admin_api {
        return Err(ApiError::new(ErrorType::Unavailable, "admin APIs disabled"));
    }
    let unsupported = || ApiError::new(ErrorType::Unavailable, "this storage does not support the admin operation");
    let Some(admin) = &api.admin else { return Err(unsupported()) };
    let no_content = || Ok(axum::http::StatusCode::NO_CONTENT.into_response());
    match req.path.rsplit('/').next().unwrap_or_default() {
        "delete_series" => {
            let sets = parse_match_params(&req.params)?;
            if sets.is_empty() {
                return Err(ApiError::bad_data("no match[] parameter provided"));
            }
            let (start, end) = range_params(req)?;
            admin.delete_series(&sets, start, end).map_err(ApiError::internal)?;
            no_content()
        }
        "clean_tombstones" => {
            admin.clean_tombstones().map_err(ApiError::internal)?;
            no_content()
        }
        "snapshot" => {
            let skip_head = match req.params.get("skip_head") {
                "" => false,
                text => parse_go_bool(text).ok_or_else(|| {
                    ApiError::bad_data(format!(
                        "invalid parameter \"skip_head\": unable to parse boolean: strconv.ParseBool: parsing {text:?}: invalid syntax"
                    ))
                })?,
            };
            let name = snapshot_name(api.clock.now_ms());
            admin.snapshot(&name, skip_head).map_err(ApiError::internal)?;
            let mut w = crate::json::JsonWriter::new();
            w.raw(r#"{"name":"#);
            w.string(&name);
            w.raw("}");
            ok(&w.finish())
        }
        _ => Err(unsupported()),
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Prometheus' snapshot name: the UTC time as `20060102T150405Z` and 16 random hex digits.
fn snapshot_name(now_ms: i64) -> String {
    use std::hash::{BuildHasher, Hasher};
    let time: String = crate::params::format_rfc3339(now_ms - now_ms.rem_euclid(1000))
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(now_ms);
    format!("{time}-{:016x}", hasher.finish() >> 1)
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn snapshot_names() {
        let name = super::snapshot_name(1_700_000_000_123);
        assert_eq!(&name[..17], "20231114T221320Z-");
        assert_eq!(name.len(), 33);
        assert!(name[17..].chars().all(|c| c.is_ascii_hexdigit()), "{name}");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }
}

//! Operational endpoints: `/-/healthy`, `/-/ready`, `/-/reload`, `/metrics`.

use std::sync::atomic::Ordering;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;

use crate::federate::go_g;
use crate::server::{text, Api, ApiResult, Req};

pub(crate) fn healthy(_api: &Api, _req: &Req) -> ApiResult {
    Ok(text(StatusCode::OK, "Sextant Server is Healthy.\n"))
}

/// `GET /`: 200 (clients such as prometheus-api-client probe it and need a 2xx).
pub(crate) fn root(_api: &Api, _req: &Req) -> ApiResult {
    Ok(text(StatusCode::OK, "Sextant Server: the Prometheus HTTP API is under /api/v1/.\n"))
}

pub(crate) fn ready(api: &Api, _req: &Req) -> ApiResult {
    if api.shared.ready.load(Ordering::Relaxed) {
        Ok(text(StatusCode::OK, "Sextant Server is Ready.\n"))
    } else {
        Ok(text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n"))
    }
}

pub(crate) fn reload(api: &Api, _req: &Req) -> ApiResult {
    let hook = api.shared.reload.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let Some(hook) = hook else {
        return Ok(text(StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n"));
    };
    match hook() {
        Ok(()) => {
            api.shared.last_reload_ok.store(true, Ordering::Relaxed);
            Ok(text(StatusCode::OK, ""))
        }
        Err(e) => {
            api.shared.last_reload_ok.store(false, Ordering::Relaxed);
            Ok(text(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}\n")))
        }
    }
}

/// Self-metrics, followed by the Pushgateway groups (scrape with `honor_labels: true`).
pub(crate) fn metrics(api: &Api, _req: &Req) -> ApiResult {
    let s = &api.shared;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n", go_g(v as f64)));
    };
    counter("sextant_api_http_requests_total", "HTTP requests received.", s.requests_total.load(Ordering::Relaxed));
    counter(
        "sextant_api_queries_total",
        "PromQL queries run through the API.",
        s.queries_total.load(Ordering::Relaxed),
    );
    counter(
        "sextant_api_remote_write_samples_total",
        "Samples appended by the remote-write receiver.",
        s.remote_write_samples_total.load(Ordering::Relaxed),
    );
    counter(
        "sextant_api_remote_write_rejected_samples_total",
        "Samples the remote-write receiver rejected (out of order, duplicate, out of bounds).",
        s.remote_write_rejected_total.load(Ordering::Relaxed),
    );
    out.push_str(&format!(
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n\
         # TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {}\n",
        go_g(s.start_ms as f64 / 1000.0)
    ));
    out.push_str(&api.targets.metrics_text());
    out.push_str(&api.rules.metrics_text());
    out.push_str(&s.pushgateway.render());
    let mut resp = (StatusCode::OK, out).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(resp)
}

//! `/metrics` over HTTP with axum: content negotiation and gzip.

use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sextant_web::WebConfig;

use crate::{Error, Registry};
use sextant_model::exposition::{Format, MetricFamily};

fn accepts_gzip(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value.split(',').any(|part| {
        let mut params = part.split(';');
        let coding = params.next().unwrap_or("").trim();
        let refused = params.any(|p| p.trim().replace(' ', "") == "q=0");
        coding.eq_ignore_ascii_case("gzip") && !refused
    })
}

async fn metrics(State(registry): State<Arc<Registry>>, headers: HeaderMap) -> Response {
    let format = negotiate(&headers);
    let body = registry.encode_reusing(format).await;
    text_response(bytes::Bytes::from_owner(body), format, &headers)
}

/// Encodes `families` as text 0.0.4, gzip-compressed when the request accepts that.
///
/// Always text, whatever the `Accept` header says: the Go exporters these reproduce (redis,
/// postgres, mysqld, blackbox) do not enable OpenMetrics, and an OpenMetrics answer would make
/// Prometheus store counters without a `_total` suffix under a renamed series, which breaks
/// the dashboards written for them.
#[cfg_attr(
    not(any(feature = "redis", feature = "postgres", feature = "mysql", feature = "blackbox")),
    allow(dead_code)
)]
pub(crate) fn families_response(mut families: Vec<MetricFamily>, headers: &HeaderMap) -> Response {
    let format = Format::Text;
    crate::registry::normalize(&mut families);
    text_response(sextant_model::exposition::encode(&families, format).into(), format, headers)
}

/// The format for the request's `Accept` header (text when there is none).
fn negotiate(headers: &HeaderMap) -> Format {
    Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or(""))
}

fn text_response(body: bytes::Bytes, format: Format, headers: &HeaderMap) -> Response {
    let content_type = HeaderValue::from_static(format.content_type());
    if accepts_gzip(headers) {
        let mut encoder =
            flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
        if encoder.write_all(&body).is_ok() {
            if let Ok(compressed) = encoder.finish() {
                return (
                    StatusCode::OK,
                    [
                        (header::CONTENT_TYPE, content_type),
                        (header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
                    ],
                    compressed,
                )
                    .into_response();
            }
        }
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// An axum router serving `registry` at `metrics_path` and a small landing page at `/`.
pub fn router(registry: Arc<Registry>, metrics_path: &str) -> Router {
    let landing = format!(
        "<html><head><title>Sextant exporter</title></head><body><h1>Sextant exporter</h1>\
         <p><a href=\"{metrics_path}\">Metrics</a></p></body></html>"
    );
    let mut router = Router::new().route(metrics_path, get(metrics));
    if metrics_path != "/" {
        router = router.route("/", get(move || async move { Html(landing) }));
    }
    router.with_state(registry)
}

/// Serves `router` on `listener` until `shutdown` completes, through [`sextant_web::serve`]:
/// over TLS when `web` has a `tls_server_config`, with bcrypt basic authentication on every
/// path when it has `basic_auth_users` (`WebConfig::default()` serves plain HTTP, no auth).
///
/// The returned future owns a copy of `web`, so it can be spawned.
pub fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    web: &WebConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = Result<(), Error>> + Send + 'static {
    let web = web.clone();
    async move { sextant_web::serve(listener, router, &web, shutdown).await.map_err(Error::Serve) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_exporter_clones_answer_text_even_when_openmetrics_is_asked_for() {
        let check = |accept: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            let response = families_response(Vec::new(), &headers);
            let content_type = response.headers().get(header::CONTENT_TYPE).unwrap().to_str().unwrap().to_string();
            assert_eq!(content_type, Format::Text.content_type(), "{accept}");
        };
        check("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5");
        check("application/openmetrics-text; version=1.0.0");
        check("text/plain");
        check("*/*");
    }
}

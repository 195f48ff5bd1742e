//! The [`Api`] state and its axum [`Router`]: every endpoint, method and fallback.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, on, MethodFilter};
use axum::Router;
use sextant_model::{Appendable, Clock, Labels, Queryable, SystemClock};
use sextant_promql::EngineOptions;

use crate::error::ApiError;
use crate::params::Params;
use crate::providers::{AdminStorage, NoRules, NoTargets, RulesProvider, TargetsProvider};
use crate::series_cache::SeriesCache;
use crate::{federate, ops, pushgateway, remote, v1};

/// Storage the API reads from and writes to (the TSDB, or `MemStorage` in tests).
pub trait Storage: Queryable + Appendable {}

impl<T: Queryable + Appendable + ?Sized> Storage for T {}

/// What `/api/v1/status/buildinfo` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: String,
    pub revision: String,
    pub branch: String,
    pub build_user: String,
    pub build_date: String,
    pub go_version: String,
}

impl Default for BuildInfo {
    fn default() -> BuildInfo {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: String::new(),
            branch: String::new(),
            build_user: String::new(),
            build_date: String::new(),
            go_version: "rust".to_string(),
        }
    }
}

/// Settings of the API, mostly from the server's flags.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Engine defaults (`--query.lookback-delta`, `--query.max-samples`, `--query.timeout`).
    pub engine: EngineOptions,
    /// `global.external_labels`, added by federation.
    pub external_labels: Labels,
    /// `--web.enable-admin-api`.
    pub enable_admin_api: bool,
    /// `--web.enable-remote-write-receiver` (Sextant enables it by default).
    pub enable_remote_write_receiver: bool,
    pub build_info: BuildInfo,
    /// Flag name (without `--`) to value, for `/api/v1/status/flags`.
    pub flags: BTreeMap<String, String>,
    /// The loaded configuration file, for `/api/v1/status/config`.
    pub config_yaml: String,
    /// `--storage.tsdb.retention.time` as text, for `runtimeinfo`.
    pub storage_retention: String,
    /// The largest request body accepted (bytes); larger bodies get 413.
    pub max_body_bytes: usize,
    /// Most series a remote-read query may return.
    pub remote_read_sample_limit: usize,
    /// Memory for the remote-write receiver's cache of series references, keyed by the label
    /// bytes on the wire (those bytes and about 30 more per series); 0 turns it off.
    pub remote_write_series_cache_bytes: usize,
}

impl Default for ApiOptions {
    fn default() -> ApiOptions {
        ApiOptions {
            engine: EngineOptions::default(),
            external_labels: Labels::empty(),
            enable_admin_api: false,
            enable_remote_write_receiver: true,
            build_info: BuildInfo::default(),
            flags: BTreeMap::new(),
            config_yaml: String::new(),
            storage_retention: "15d".to_string(),
            max_body_bytes: 32 << 20,
            remote_read_sample_limit: 50_000_000,
            remote_write_series_cache_bytes: 64 << 20,
        }
    }
}

/// A hook the server gives for `/-/reload` (re-reads the configuration).
pub type ReloadHook = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The API's state: storage, engine settings and the providers of targets and rules. Cheap to
/// clone; [`Api::router`] builds the axum router over it.
#[derive(Clone)]
pub struct Api {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) targets: Arc<dyn TargetsProvider>,
    pub(crate) rules: Arc<dyn RulesProvider>,
    pub(crate) admin: Option<Arc<dyn AdminStorage>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) options: Arc<ApiOptions>,
    pub(crate) shared: Arc<Shared>,
}

/// Mutable state shared by all requests.
pub(crate) struct Shared {
    pub(crate) start_ms: i64,
    pub(crate) ready: AtomicBool,
    pub(crate) reload: Mutex<Option<ReloadHook>>,
    pub(crate) last_reload_ok: AtomicBool,
    pub(crate) requests_total: AtomicU64,
    pub(crate) queries_total: AtomicU64,
    pub(crate) remote_write_samples_total: AtomicU64,
    pub(crate) remote_write_rejected_total: AtomicU64,
    /// Series references of remote-written label sets.
    pub(crate) series_cache: SeriesCache,
    pub(crate) pushgateway: pushgateway::Groups,
    pub(crate) query_log: Mutex<Option<Box<dyn std::io::Write + Send>>>,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api").field("options", &self.options).finish_non_exhaustive()
    }
}

impl Api {
    /// An API over `storage` with no scrape or rule manager and the system clock.
    pub fn new(storage: Arc<dyn Storage>, options: ApiOptions) -> Api {
        Api::with_clock(storage, options, Arc::new(SystemClock))
    }

    /// Like [`Api::new`] with the given clock (default query time, `push_time_seconds`).
    pub fn with_clock(storage: Arc<dyn Storage>, options: ApiOptions, clock: Arc<dyn Clock>) -> Api {
        let start_ms = clock.now_ms();
        let series_cache = SeriesCache::new(options.remote_write_series_cache_bytes);
        Api {
            storage,
            targets: Arc::new(NoTargets),
            rules: Arc::new(NoRules),
            admin: None,
            clock,
            options: Arc::new(options),
            shared: Arc::new(Shared {
                start_ms,
                ready: AtomicBool::new(true),
                reload: Mutex::new(None),
                last_reload_ok: AtomicBool::new(true),
                requests_total: AtomicU64::new(0),
                queries_total: AtomicU64::new(0),
                remote_write_samples_total: AtomicU64::new(0),
                remote_write_rejected_total: AtomicU64::new(0),
                series_cache,
                pushgateway: pushgateway::Groups::default(),
                query_log: Mutex::new(None),
            }),
        }
    }

    /// The same API with the scrape manager's targets and metadata.
    pub fn with_targets(mut self, targets: Arc<dyn TargetsProvider>) -> Api {
        self.targets = targets;
        self
    }

    /// The same API with the rule manager's groups and alerts.
    pub fn with_rules(mut self, rules: Arc<dyn RulesProvider>) -> Api {
        self.rules = rules;
        self
    }

    /// The same API with the storage's admin operations (used when
    /// [`ApiOptions::enable_admin_api`] is set).
    pub fn with_admin(mut self, admin: Arc<dyn AdminStorage>) -> Api {
        self.admin = Some(admin);
        self
    }

    /// Sets what `/-/reload` calls.
    pub fn set_reload_hook(&self, hook: ReloadHook) {
        *self.shared.reload.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    /// Marks the server ready or not (`/-/ready` answers 503 until ready).
    pub fn set_ready(&self, ready: bool) {
        self.shared.ready.store(ready, Ordering::Relaxed);
    }

    /// Logs every query (JSON lines, as Prometheus' `query_log_file`) to `sink`.
    pub fn set_query_log(&self, sink: Box<dyn std::io::Write + Send>) {
        *self.shared.query_log.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink);
    }

    /// Stops logging queries (closes the sink).
    pub fn stop_query_log(&self) {
        *self.shared.query_log.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The Pushgateway groups as text, for the server to persist (see [`Api::pushgateway_load`]).
    pub fn pushgateway_save(&self) -> String {
        self.shared.pushgateway.save()
    }

    /// Restores Pushgateway groups from [`Api::pushgateway_save`]'s text.
    pub fn pushgateway_load(&self, text: &str) -> Result<(), crate::Error> {
        self.shared.pushgateway.load(text).map_err(crate::Error::PushgatewayState)
    }

    /// The axum router serving every endpoint of this API.
    pub fn router(&self) -> Router {
        let v1_get_post = MethodFilter::GET.or(MethodFilter::POST);
        let admin = MethodFilter::POST.or(MethodFilter::PUT);
        let mut router = Router::new()
            .route("/api/v1/query", on(v1_get_post, handler(v1::query)))
            .route("/api/v1/query_range", on(v1_get_post, handler(v1::query_range)))
            .route("/api/v1/format_query", on(v1_get_post, handler(v1::format_query)))
            .route("/api/v1/parse_query", on(v1_get_post, handler(v1::parse_query)))
            .route("/api/v1/series", on(v1_get_post, handler(v1::series)))
            .route("/api/v1/labels", on(v1_get_post, handler(v1::labels)))
            .route("/api/v1/label/{name}/values", get(handler(v1::label_values)))
            .route("/api/v1/query_exemplars", on(v1_get_post, handler(v1::query_exemplars)))
            .route("/api/v1/metadata", get(handler(v1::metadata)))
            .route("/api/v1/targets/metadata", get(handler(v1::targets_metadata)))
            .route("/api/v1/targets", get(handler(v1::targets)))
            .route("/api/v1/scrape_pools", get(handler(v1::scrape_pools)))
            .route("/api/v1/rules", get(handler(v1::rules)))
            .route("/api/v1/alerts", get(handler(v1::alerts)))
            .route("/api/v1/alertmanagers", get(handler(v1::alertmanagers)))
            .route("/api/v1/status/buildinfo", get(handler(v1::buildinfo)))
            .route("/api/v1/status/config", get(handler(v1::config)))
            .route("/api/v1/status/flags", get(handler(v1::flags)))
            .route("/api/v1/status/runtimeinfo", get(handler(v1::runtimeinfo)))
            .route("/api/v1/status/tsdb", get(handler(v1::tsdb_status)))
            .route("/api/v1/status/walreplay", get(handler(v1::walreplay)))
            .route("/api/v1/admin/tsdb/snapshot", on(admin, handler(v1::admin)))
            .route("/api/v1/admin/tsdb/delete_series", on(admin, handler(v1::admin)))
            .route("/api/v1/admin/tsdb/clean_tombstones", on(admin, handler(v1::admin)))
            .route("/api/v1/read", on(MethodFilter::POST, handler(remote::read)))
            .route("/federate", get(handler(federate::federate)))
            .route("/-/healthy", on(MethodFilter::GET.or(MethodFilter::HEAD), handler(ops::healthy)))
            .route("/-/ready", on(MethodFilter::GET.or(MethodFilter::HEAD), handler(ops::ready)))
            .route("/-/reload", on(MethodFilter::POST.or(MethodFilter::PUT), handler(ops::reload)))
            .route("/metrics", get(handler(ops::metrics)))
            .route("/", get(handler(ops::root)))
            .route(
                "/metrics/{*rest}",
                on(MethodFilter::PUT.or(MethodFilter::POST).or(MethodFilter::DELETE), handler(pushgateway::push)),
            );
        if self.options.enable_remote_write_receiver {
            router = router.route("/api/v1/write", on(MethodFilter::POST, handler(remote::write)));
        }
        router
            .fallback(not_found)
            .layer(axum::middleware::from_fn_with_state(self.clone(), cors_and_count))
            .layer(DefaultBodyLimit::max(self.options.max_body_bytes))
            .with_state(self.clone())
    }
}

/// One request, read whole: what every handler gets.
#[derive(Debug)]
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) params: Params,
    pub(crate) body: Bytes,
    pub(crate) received: Instant,
}

pub(crate) type ApiResult = Result<Response, ApiError>;

type HandlerFn = fn(&Api, &Req) -> ApiResult;

/// Wraps a synchronous handler: reads the body, parses the form, runs it off the async threads.
fn handler(
    f: HandlerFn,
) -> impl Fn(State<Api>, Request) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
       + Clone
       + Send
       + 'static {
    move |State(api): State<Api>, request: Request| Box::pin(run(api, request, f))
}

async fn run(api: Api, request: Request, f: HandlerFn) -> Response {
    let received = Instant::now();
    let (parts, body) = request.into_parts();
    let limit = api.options.max_body_bytes;
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, format!("request body larger than {limit} bytes")).into_response();
        }
    };
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/x-www-form-urlencoded"));
    let params = Params::parse(parts.uri.query(), is_form.then_some(&body[..]));
    let req = Req {
        method: parts.method,
        path: parts.uri.path().to_string(),
        headers: parts.headers,
        params,
        body,
        received,
    };
    match tokio::task::spawn_blocking(move || f(&api, &req)).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError::internal("request handler failed").into_response(),
    }
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found\n")
}

/// `text/plain; charset=utf-8` body.
pub(crate) fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut resp = (status, body.into()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// Answers CORS preflights on the API with 204, as Prometheus, and counts requests.
async fn cors_and_count(State(api): State<Api>, request: Request, next: axum::middleware::Next) -> Response {
    api.shared.requests_total.fetch_add(1, Ordering::Relaxed);
    let is_api = request.uri().path().starts_with("/api/v1/");
    if is_api && request.method() == Method::OPTIONS {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Accept, Authorization, Content-Type, Origin"),
        );
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Date"));
        return resp;
    }
    let mut resp = next.run(request).await;
    if is_api {
        resp.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    resp
}

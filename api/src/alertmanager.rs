//! The Alertmanager's HTTP face: API v2 (alerts, groups, silences, status, receivers), the
//! lifecycle endpoints and `/metrics`, plus the task that drives the dispatcher's timers and
//! sends its notifications.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use sextant_alerting::alertmanager::{
    format_rfc3339, parse_matchers, parse_rfc3339, send_with_retries, Alert, Config, Dispatcher, HttpNotifier,
    MatchType, Matcher, Matchers, Notifier, NotifyMetrics, ParseMode, PostableAlert, Silence,
};
use sextant_model::{Clock, Labels};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

/// A running Alertmanager's shared state: the dispatcher behind a lock, the clock, the
/// notifier and its metrics.
#[derive(Debug)]
pub struct Alertmanager {
    dispatcher: Mutex<Dispatcher>,
    clock: Arc<dyn Clock>,
    notifier: Arc<dyn Notifier>,
    http_notifier: Option<Arc<HttpNotifier>>,
    metrics: NotifyMetrics,
    wake: Notify,
    config_file: Option<PathBuf>,
    started_ms: i64,
}

/// How often resolved alerts, expired silences and log entries are dropped.
const GC_INTERVAL_MS: i64 = 15 * 60 * 1000;

impl Alertmanager {
    /// Sends through `notifier`; `config_file` is what `/-/reload` re-reads.
    pub fn new(
        dispatcher: Dispatcher,
        clock: Arc<dyn Clock>,
        notifier: Arc<dyn Notifier>,
        config_file: Option<PathBuf>,
    ) -> Arc<Alertmanager> {
        let started_ms = clock.now_ms();
        Arc::new(Alertmanager {
            dispatcher: Mutex::new(dispatcher),
            clock,
            notifier,
            http_notifier: None,
            metrics: NotifyMetrics::new(),
            wake: Notify::new(),
            config_file,
            started_ms,
        })
    }

    /// Sends over HTTP with an [`HttpNotifier`] that follows reloads.
    pub fn with_http(
        dispatcher: Dispatcher,
        clock: Arc<dyn Clock>,
        external_url: &str,
        config_file: Option<PathBuf>,
    ) -> Arc<Alertmanager> {
        let config = Arc::new(dispatcher.config().clone());
        let http = Arc::new(HttpNotifier::new(Arc::clone(&config), external_url));
        // Invalid template files are refused when the configuration is loaded; the defaults
        // stand in should they have changed since.
        if let Ok(templates) = config.load_templates() {
            http.set_config(config, Arc::new(templates));
        }
        let started_ms = clock.now_ms();
        Arc::new(Alertmanager {
            dispatcher: Mutex::new(dispatcher),
            clock,
            notifier: http.clone(),
            http_notifier: Some(http),
            metrics: NotifyMetrics::new(),
            wake: Notify::new(),
            config_file,
            started_ms,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Dispatcher> {
        self.dispatcher.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn metrics(&self) -> &NotifyMetrics {
        &self.metrics
    }

    /// Re-reads the configuration file; on error the old configuration stays.
    pub fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.config_file else { return Err("no configuration file".into()) };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut config = Config::parse(&text).map_err(|e| e.to_string())?;
        config.resolve_paths(path.parent().unwrap_or(std::path::Path::new(".")));
        let templates = config.load_templates().map_err(|e| e.to_string())?;
        if let Some(http) = &self.http_notifier {
            http.set_config(Arc::new(config.clone()), Arc::new(templates));
        }
        self.lock().reload(config, self.clock.now_ms());
        self.wake.notify_one();
        Ok(())
    }

    /// Drives the dispatcher until `shutdown` turns true: sleeps until the next group is due
    /// (or new alerts arrive), flushes, and sends each notification in its own task with
    /// retries, reporting the outcome back. Sends still running at shutdown are awaited.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut sends = JoinSet::new();
        let mut next_gc = self.clock.now_ms() + GC_INTERVAL_MS;
        loop {
            let now = self.clock.now_ms();
            let notifications = self.lock().tick(now);
            for n in notifications {
                let me = Arc::clone(&self);
                sends.spawn(async move {
                    let timeout = Duration::from_millis(n.timeout_ms.max(0) as u64);
                    let ok = send_with_retries(&*me.notifier, &n, timeout, &me.metrics).await.is_ok();
                    let now = me.clock.now_ms();
                    if let Err(e) = me.lock().notified(&n, ok, now) {
                        eprintln!("alertmanager: writing the notification log: {e}");
                    }
                    me.wake.notify_one();
                });
            }
            if now >= next_gc {
                if let Err(e) = self.lock().gc(now) {
                    eprintln!("alertmanager: maintenance: {e}");
                }
                next_gc = now + GC_INTERVAL_MS;
            }
            let deadline = self.lock().next_deadline().unwrap_or(i64::MAX).min(next_gc);
            let wait = Duration::from_millis((deadline - self.clock.now_ms()).clamp(0, 3_600_000) as u64);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                Some(_) = sends.join_next() => {}
                _ = shutdown.changed() => break,
            }
        }
        while sends.join_next().await.is_some() {}
    }
}

/// The routes: `/api/v2/...`, `/-/healthy`, `/-/ready`, `/-/reload`, `/metrics`.
pub fn router(am: Arc<Alertmanager>) -> Router {
    Router::new()
        .route("/api/v2/alerts", get(get_alerts).post(post_alerts))
        .route("/api/v2/alerts/groups", get(get_groups))
        .route("/api/v2/silences", get(get_silences).post(post_silence))
        .route("/api/v2/silence/{id}", get(get_silence).delete(delete_silence))
        .route("/api/v2/status", get(get_status))
        .route("/api/v2/receivers", get(get_receivers))
        .route("/-/healthy", get(|| async { "OK" }))
        .route("/-/ready", get(|| async { "OK" }))
        .route("/-/reload", post(reload))
        .route("/metrics", get(metrics))
        .route("/api/v1/alerts", post(|| async { StatusCode::GONE }))
        .route("/api/v1/silence/{id}", delete(|| async { StatusCode::GONE }))
        .with_state(am)
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn bad_request(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, json_string(&message.into())).into_response()
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `a=1&b=%20x` → pairs, `+` as space.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => match s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

async fn post_alerts(State(am): State<Arc<Alertmanager>>, body: Bytes) -> Response {
    let alerts = match PostableAlert::parse_json(&body) {
        Ok(a) => a,
        Err(e) => return bad_request(e.to_string()),
    };
    let now = am.clock.now_ms();
    let result = am.lock().put_alerts(alerts, now);
    am.wake.notify_one();
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => bad_request(e.to_string()),
    }
}

#[derive(Serialize)]
struct ReceiverName {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertStatusJson {
    inhibited_by: Vec<String>,
    silenced_by: Vec<String>,
    state: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GettableAlert {
    annotations: BTreeMap<String, String>,
    ends_at: String,
    fingerprint: String,
    receivers: Vec<ReceiverName>,
    starts_at: String,
    status: AlertStatusJson,
    updated_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    labels: BTreeMap<String, String>,
}

fn label_map(labels: &Labels) -> BTreeMap<String, String> {
    labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect()
}

fn gettable(d: &Dispatcher, alert: &Alert, now: i64) -> GettableAlert {
    let status = d.status(alert, now);
    let suppressed = !status.silenced_by.is_empty() || !status.inhibited_by.is_empty();
    GettableAlert {
        annotations: alert.annotations.clone(),
        ends_at: format_rfc3339(alert.ends_at_ms),
        fingerprint: format!("{:016x}", alert.fingerprint()),
        receivers: status.receivers.into_iter().map(|name| ReceiverName { name }).collect(),
        starts_at: format_rfc3339(alert.starts_at_ms),
        status: AlertStatusJson {
            inhibited_by: status.inhibited_by,
            silenced_by: status.silenced_by,
            state: if suppressed { "suppressed" } else { "active" },
        },
        updated_at: format_rfc3339(alert.updated_at_ms),
        generator_url: alert.generator_url.clone(),
        labels: label_map(&alert.labels),
    }
}

/// The alert filters of `GET /api/v2/alerts` and `/alerts/groups`.
struct AlertFilter {
    active: bool,
    silenced: bool,
    inhibited: bool,
    matchers: Vec<Matcher>,
    receiver: Option<regex::Regex>,
}

impl AlertFilter {
    fn parse(query: Option<&str>) -> Result<AlertFilter, String> {
        let mut f = AlertFilter { active: true, silenced: true, inhibited: true, matchers: Vec::new(), receiver: None };
        for (key, value) in query_pairs(query) {
            let flag = || value != "false";
            match key.as_str() {
                "active" => f.active = flag(),
                "silenced" => f.silenced = flag(),
                "inhibited" => f.inhibited = flag(),
                "filter" => f.matchers.extend(parse_matchers(&value, ParseMode::Fallback).map_err(|e| e.to_string())?),
                "receiver" => {
                    let re = regex::Regex::new(&format!("^(?:{value})$")).map_err(|e| e.to_string())?;
                    f.receiver = Some(re);
                }
                _ => {}
            }
        }
        Ok(f)
    }

    fn keep(&self, alert: &GettableAlert, labels: &Labels) -> bool {
        let silenced = !alert.status.silenced_by.is_empty();
        let inhibited = !alert.status.inhibited_by.is_empty();
        if (!self.silenced && silenced) || (!self.inhibited && inhibited) || (!self.active && !silenced && !inhibited) {
            return false;
        }
        if let Some(re) = &self.receiver {
            if !alert.receivers.iter().any(|r| re.is_match(&r.name)) {
                return false;
            }
        }
        self.matchers.iter().all(|m| m.matches_labels(labels))
    }
}

async fn get_alerts(State(am): State<Arc<Alertmanager>>, RawQuery(query): RawQuery) -> Response {
    let filter = match AlertFilter::parse(query.as_deref()) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    let now = am.clock.now_ms();
    let d = am.lock();
    let mut alerts: Vec<GettableAlert> = d
        .alerts()
        .filter(|a| !a.resolved_at(now))
        .map(|a| (gettable(&d, a, now), &a.labels))
        .filter(|(g, labels)| filter.keep(g, labels))
        .map(|(g, _)| g)
        .collect();
    drop(d);
    alerts.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    json(&alerts)
}

#[derive(Serialize)]
struct AlertGroupJson {
    alerts: Vec<GettableAlert>,
    labels: BTreeMap<String, String>,
    receiver: ReceiverName,
}

async fn get_groups(State(am): State<Arc<Alertmanager>>, RawQuery(query): RawQuery) -> Response {
    let filter = match AlertFilter::parse(query.as_deref()) {
        Ok(f) => f,
        Err(e) => return bad_request(e),
    };
    let now = am.clock.now_ms();
    let d = am.lock();
    let groups: Vec<AlertGroupJson> = d
        .groups()
        .into_iter()
        .filter(|g| filter.receiver.as_ref().is_none_or(|re| re.is_match(g.receiver)))
        .map(|g| AlertGroupJson {
            alerts: g
                .alerts
                .iter()
                .filter(|a| !a.resolved_at(now))
                .map(|a| (gettable(&d, a, now), &a.labels))
                .filter(|(ga, labels)| filter.keep(ga, labels))
                .map(|(ga, _)| ga)
                .collect(),
            labels: label_map(g.labels),
            receiver: ReceiverName { name: g.receiver.to_string() },
        })
        .filter(|g| !g.alerts.is_empty())
        .collect();
    json(&groups)
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MatcherJson {
    name: String,
    value: String,
    is_regex: bool,
    #[serde(default = "yes")]
    is_equal: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<MatcherJson>,
    starts_at: String,
    ends_at: String,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
}

#[derive(Serialize)]
struct SilenceStatusJson {
    state: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GettableSilence {
    id: String,
    status: SilenceStatusJson,
    updated_at: String,
    comment: String,
    created_by: String,
    ends_at: String,
    matchers: Vec<MatcherJson>,
    starts_at: String,
}

fn gettable_silence(s: &Silence, now: i64) -> GettableSilence {
    GettableSilence {
        id: s.id.clone(),
        status: SilenceStatusJson { state: s.state(now).as_str() },
        updated_at: format_rfc3339(s.updated_at_ms),
        comment: s.comment.clone(),
        created_by: s.created_by.clone(),
        ends_at: format_rfc3339(s.ends_at_ms),
        matchers: s
            .matchers
            .iter()
            .map(|m| MatcherJson {
                name: m.name.clone(),
                value: m.value.clone(),
                is_regex: matches!(m.kind, MatchType::Regexp | MatchType::NotRegexp),
                is_equal: matches!(m.kind, MatchType::Equal | MatchType::Regexp),
            })
            .collect(),
        starts_at: format_rfc3339(s.starts_at_ms),
    }
}

async fn get_silences(State(am): State<Arc<Alertmanager>>, RawQuery(query): RawQuery) -> Response {
    let mut matchers = Vec::new();
    for (key, value) in query_pairs(query.as_deref()) {
        if key == "filter" {
            match parse_matchers(&value, ParseMode::Fallback) {
                Ok(m) => matchers.extend(m),
                Err(e) => return bad_request(e.to_string()),
            }
        }
    }
    let now = am.clock.now_ms();
    let d = am.lock();
    let mut silences: Vec<GettableSilence> = d
        .silences()
        .iter()
        .filter(|s| {
            // A filter keeps silences having an equal matcher (as Alertmanager's `CheckFilters`).
            matchers.iter().all(|f| s.matchers.iter().any(|m| m.name == f.name && f.matches(&m.value)))
        })
        .map(|s| gettable_silence(s, now))
        .collect();
    // Active first, then pending, then expired, as Alertmanager sorts them.
    let rank = |s: &GettableSilence| match s.status.state {
        "active" => 0,
        "pending" => 1,
        _ => 2,
    };
    silences.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.ends_at.cmp(&b.ends_at)));
    json(&silences)
}

async fn post_silence(State(am): State<Arc<Alertmanager>>, body: Bytes) -> Response {
    let posted: PostableSilence = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return bad_request(format!("parsing silence: {e}")),
    };
    let time = |s: &str| parse_rfc3339(s).map_err(|e| e.to_string()).and_then(|t| t.ok_or("zero time".to_string()));
    let (starts, ends) = match (time(&posted.starts_at), time(&posted.ends_at)) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    let mut matchers = Vec::new();
    for m in posted.matchers {
        let kind = match (m.is_regex, m.is_equal) {
            (false, true) => MatchType::Equal,
            (false, false) => MatchType::NotEqual,
            (true, true) => MatchType::Regexp,
            (true, false) => MatchType::NotRegexp,
        };
        match Matcher::new(kind, m.name, m.value) {
            Ok(m) => matchers.push(m),
            Err(e) => return bad_request(e.to_string()),
        }
    }
    let silence = Silence {
        id: posted.id.unwrap_or_default(),
        matchers: Matchers(matchers),
        starts_at_ms: starts,
        ends_at_ms: ends,
        updated_at_ms: 0,
        created_by: posted.created_by,
        comment: posted.comment,
    };
    let now = am.clock.now_ms();
    let result = am.lock().silences_mut().set(silence, now);
    am.wake.notify_one();
    match result {
        Ok(id) => json(&serde_json::json!({ "silenceID": id })),
        Err(sextant_alerting::Error::SilenceNotFound { .. }) => {
            (StatusCode::NOT_FOUND, json_string("silence not found")).into_response()
        }
        Err(e) => bad_request(e.to_string()),
    }
}

async fn get_silence(State(am): State<Arc<Alertmanager>>, Path(id): Path<String>) -> Response {
    let now = am.clock.now_ms();
    let d = am.lock();
    match d.silences().get(&id) {
        Some(s) => json(&gettable_silence(s, now)),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete_silence(State(am): State<Arc<Alertmanager>>, Path(id): Path<String>) -> Response {
    let now = am.clock.now_ms();
    let result = am.lock().silences_mut().expire(&id, now);
    am.wake.notify_one();
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(sextant_alerting::Error::SilenceNotFound { .. }) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, json_string(&e.to_string())).into_response(),
    }
}

async fn get_status(State(am): State<Arc<Alertmanager>>) -> Response {
    let now = am.clock.now_ms();
    let original = am.lock().config().original.clone();
    json(&serde_json::json!({
        "cluster": { "name": "", "peers": [], "status": "disabled" },
        "config": { "original": original },
        "uptime": format_rfc3339(am.started_ms),
        "versionInfo": {
            "branch": "", "buildDate": "", "buildUser": "", "goVersion": "",
            "revision": "", "version": env!("CARGO_PKG_VERSION"),
        },
        "now": format_rfc3339(now),
    }))
}

async fn get_receivers(State(am): State<Arc<Alertmanager>>) -> Response {
    let names: Vec<ReceiverName> =
        am.lock().config().receivers.iter().map(|r| ReceiverName { name: r.name.clone() }).collect();
    json(&names)
}

async fn reload(State(am): State<Arc<Alertmanager>>) -> Response {
    match am.reload() {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}")).into_response(),
    }
}

async fn metrics(State(am): State<Arc<Alertmanager>>) -> Response {
    let now = am.clock.now_ms();
    let mut text = am.metrics.render();
    let d = am.lock();
    let (mut active, mut suppressed) = (0, 0);
    for a in d.alerts().filter(|a| !a.resolved_at(now)) {
        let s = d.status(a, now);
        if s.silenced_by.is_empty() && s.inhibited_by.is_empty() {
            active += 1;
        } else {
            suppressed += 1;
        }
    }
    let flushes = d.flushes();
    text.push_str("# HELP sextant_alertmanager_group_flushes_total Aggregation group flushes run.\n");
    text.push_str(&format!(
        "# TYPE sextant_alertmanager_group_flushes_total counter\nsextant_alertmanager_group_flushes_total {flushes}\n"
    ));
    text.push_str("# HELP alertmanager_alerts How many alerts by state.\n# TYPE alertmanager_alerts gauge\n");
    text.push_str(&format!("alertmanager_alerts{{state=\"active\"}} {active}\n"));
    text.push_str(&format!("alertmanager_alerts{{state=\"suppressed\"}} {suppressed}\n"));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

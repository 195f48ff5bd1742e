//! A Redis exporter compatible with redis_exporter 1.45: the metrics of `INFO ALL` (server,
//! clients, memory, persistence, stats, replication, CPU, commandstats, latencystats,
//! errorstats, keyspace), `CONFIG GET *`, `SLOWLOG` and `LATENCY LATEST`, under the same names,
//! plus `redis_up` and the `redis_exporter_*` scrape metrics. `/metrics` scrapes the configured
//! address; `/scrape?target=` scrapes any other one.

mod info;
mod resp;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, Response};
use axum::routing::get;
use axum::Router;

use crate::flags::{self, flag_error};
use crate::Error;
use info::Builder;
use resp::{Connection, Value};
use sextant_model::exposition::{MetricFamily, MetricType};

const BOOL_FLAGS: &[&str] = &[
    "include-system-metrics",
    "redis-only-metrics",
    "set-client-name",
    "skip-tls-verification",
    "is-tile38",
    "is-cluster",
    "export-client-list",
    "export-client-port",
    "ping-on-connect",
    "include-config-metrics",
    "debug",
    "log-format",
    "version",
];

const VALUE_FLAGS: &[&str] = &[
    "redis.addr",
    "redis.user",
    "redis.password",
    "redis.password-file",
    "namespace",
    "web.listen-address",
    "web.telemetry-path",
    "connection-timeout",
    "config-command",
    "check-keys",
    "check-single-keys",
    "check-streams",
    "check-single-streams",
    "check-keys-batch-size",
    "count-keys",
    "script",
    "tls-client-key-file",
    "tls-client-cert-file",
    "tls-ca-cert-file",
    "tls-server-key-file",
    "tls-server-cert-file",
    "tls-server-ca-cert-file",
    "tls-server-min-version",
    "check-key-groups",
    "max-distinct-key-groups",
    "log-format",
];

/// Flags accepted for unit-file compatibility whose features are not implemented.
const IGNORED: &[&str] = &[
    "is-tile38",
    "is-cluster",
    "export-client-list",
    "export-client-port",
    "include-config-metrics",
    "check-keys",
    "check-single-keys",
    "check-streams",
    "check-single-streams",
    "check-keys-batch-size",
    "count-keys",
    "script",
    "check-key-groups",
    "max-distinct-key-groups",
    "log-format",
    "debug",
];

/// Settings of the Redis exporter, from redis_exporter's flags and environment variables.
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `--web.listen-address` (`REDIS_EXPORTER_WEB_LISTEN_ADDRESS`), default `:9121`.
    pub listen_address: String,
    /// `--web.telemetry-path`, default `/metrics`.
    pub telemetry_path: String,
    /// `--redis.addr` (`REDIS_ADDR`): `redis://[user:pass@]host:port`, `unix:///path` or
    /// `host:port`.
    pub addr: String,
    /// `--redis.user` (`REDIS_USER`), for ACL users.
    pub user: String,
    password: String,
    password_map: Vec<(String, String)>,
    /// `--namespace` (`REDIS_EXPORTER_NAMESPACE`), default `redis`.
    pub namespace: String,
    /// `--connection-timeout`, default 15s: the bound on one whole scrape of Redis.
    pub connection_timeout: Duration,
    /// `--set-client-name`, default on: names the connection `redis_exporter`.
    pub set_client_name: bool,
    /// `--include-system-metrics`: adds `redis_total_system_memory_bytes`.
    pub include_system_metrics: bool,
    /// `--redis-only-metrics`: leaves out the `process_*` metrics of the exporter.
    pub redis_only_metrics: bool,
    /// `--config-command`, default `CONFIG`.
    pub config_command: String,
    /// Notes about accepted but unimplemented flags.
    pub warnings: Vec<String>,
    /// `--tls-ca-cert-file`, `--skip-tls-verification`, `--tls-client-cert-file` and
    /// `--tls-client-key-file`, for `rediss://` targets.
    tls: crate::tls::TlsSettings,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password is never printed.
        f.debug_struct("RedisConfig")
            .field("listen_address", &self.listen_address)
            .field("addr", &redact(&self.addr))
            .field("user", &self.user)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            listen_address: ":9121".into(),
            telemetry_path: "/metrics".into(),
            addr: "redis://localhost:6379".into(),
            user: String::new(),
            password: String::new(),
            password_map: Vec::new(),
            namespace: "redis".into(),
            connection_timeout: Duration::from_secs(15),
            set_client_name: true,
            include_system_metrics: false,
            redis_only_metrics: false,
            config_command: "CONFIG".into(),
            warnings: Vec::new(),
            tls: crate::tls::TlsSettings::default(),
        }
    }
}

/// An address with any password replaced by `***`, for logs.
fn redact(addr: &str) -> String {
    let Some((scheme, rest)) = addr.split_once("://") else { return addr.to_string() };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => addr.to_string(),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl RedisConfig {
    /// Parses redis_exporter's flags (`--redis.addr`, `--redis.user`, `--redis.password`,
    /// `--redis.password-file`, `--web.listen-address`, `--namespace`, ...; the single-dash
    /// Go form too), after its environment variables (`REDIS_ADDR`, `REDIS_USER`,
    /// `REDIS_PASSWORD`, `REDIS_PASSWORD_FILE`, `REDIS_EXPORTER_*`).
    pub fn from_args<I, S>(args: I) -> Result<RedisConfig, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        let mut config = RedisConfig::default();
        let mut password_file = env("REDIS_PASSWORD_FILE");
        let (mut client_cert, mut client_key) = (None, None);
        if let Some(v) = env("REDIS_ADDR") {
            config.addr = v;
        }
        if let Some(v) = env("REDIS_USER") {
            config.user = v;
        }
        if let Some(v) = env("REDIS_PASSWORD") {
            config.password = v;
        }
        if let Some(v) = env("REDIS_EXPORTER_WEB_LISTEN_ADDRESS") {
            config.listen_address = v;
        }
        if let Some(v) = env("REDIS_EXPORTER_WEB_TELEMETRY_PATH") {
            config.telemetry_path = v;
        }
        if let Some(v) = env("REDIS_EXPORTER_NAMESPACE") {
            config.namespace = v;
        }
        if let Some(v) = env("REDIS_EXPORTER_CONNECTION_TIMEOUT") {
            config.connection_timeout = flags::duration("REDIS_EXPORTER_CONNECTION_TIMEOUT", &v)?;
        }
        if let Some(v) = env("REDIS_EXPORTER_INCL_SYSTEM_METRICS") {
            config.include_system_metrics = v == "true";
        }
        if let Some(v) = env("REDIS_EXPORTER_REDIS_ONLY_METRICS") {
            config.redis_only_metrics = v == "true";
        }
        for (name, value) in flags::parse(&args, BOOL_FLAGS, VALUE_FLAGS)? {
            match name.as_str() {
                "redis.addr" => config.addr = value,
                "redis.user" => config.user = value,
                "redis.password" => config.password = value,
                "redis.password-file" => password_file = Some(value),
                "namespace" => config.namespace = value,
                "web.listen-address" => config.listen_address = value,
                "web.telemetry-path" => config.telemetry_path = value,
                "connection-timeout" => config.connection_timeout = flags::duration(&name, &value)?,
                "config-command" => config.config_command = value,
                "set-client-name" => config.set_client_name = value == "true",
                "include-system-metrics" => config.include_system_metrics = value == "true",
                "redis-only-metrics" => config.redis_only_metrics = value == "true",
                "version" => {}
                "skip-tls-verification" => config.tls.insecure_skip_verify = value == "true",
                "tls-ca-cert-file" => config.tls.ca_file = Some(value).filter(|v| !v.is_empty()),
                "tls-client-cert-file" => client_cert = Some(value).filter(|v| !v.is_empty()),
                "tls-client-key-file" => client_key = Some(value).filter(|v| !v.is_empty()),
                other if other.starts_with("tls-") => {
                    config.warnings.push(format!("--{other}: serving /metrics over TLS is done with --web.config.file"))
                }
                other if IGNORED.contains(&other) => {
                    if value != "false" && !value.is_empty() {
                        config.warnings.push(format!("--{other} is accepted and ignored"));
                    }
                }
                other => return Err(flag_error(other, "unknown flag")),
            }
        }
        if let (Some(cert), Some(key)) = (client_cert, client_key) {
            config.tls.client_cert = Some((cert, key));
        }
        if let Some(path) = password_file {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            config.password_map = parse_password_file(&text).map_err(|m| Error::parse(&path, 0, m))?;
        }
        Ok(config)
    }

    /// A description of the accepted flags, for `--help`.
    pub fn usage() -> String {
        "usage: sextant exporter redis [flags]\n\
         \n  --redis.addr=redis://localhost:6379  address (redis://, unix://, host:port; env REDIS_ADDR)\
         \n  --redis.user, --redis.password       ACL user and password (env REDIS_USER, REDIS_PASSWORD)\
         \n  --redis.password-file=FILE           JSON map of address to password (env REDIS_PASSWORD_FILE)\
         \n  --web.listen-address=:9121           (env REDIS_EXPORTER_WEB_LISTEN_ADDRESS)\
         \n  --web.telemetry-path=/metrics\
         \n  --namespace=redis\
         \n  --connection-timeout=15s\
         \n  --[no-]set-client-name, --include-system-metrics, --redis-only-metrics\
         \n  /scrape?target=ADDR scrapes another Redis server with the same credentials\n"
            .to_string()
    }

    fn password_for(&self, addr: &str) -> String {
        self.password_map
            .iter()
            .find(|(a, _)| a == addr)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| self.password.clone())
    }
}

/// redis_exporter's password file: a JSON object mapping addresses to passwords.
fn parse_password_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| format!("password file is not a JSON object: {e}"))?;
    Ok(map.into_iter().filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string()))).collect())
}

/// Where and how to connect.
#[derive(Debug, PartialEq)]
struct Target {
    tcp: Option<String>,
    unix: Option<String>,
    tls: bool,
    user: Option<String>,
    password: Option<String>,
    db: Option<String>,
}

fn parse_target(addr: &str) -> Result<Target, String> {
    let mut target = Target { tcp: None, unix: None, tls: false, user: None, password: None, db: None };
    if let Some(path) = addr.strip_prefix("unix://") {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        target.unix = Some(path.to_string());
        for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            match k {
                "password" => target.password = Some(flags::percent_decode(v)),
                "db" => target.db = Some(v.to_string()),
                _ => {}
            }
        }
        return Ok(target);
    }
    let rest = if let Some(rest) = addr.strip_prefix("redis://") {
        rest
    } else if let Some(rest) = addr.strip_prefix("rediss://") {
        target.tls = true;
        rest
    } else if addr.contains("://") {
        return Err(format!("unsupported address scheme in {}", redact(addr)));
    } else {
        addr
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo), host),
        None => (None, authority),
    };
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, pass)) => {
                if !user.is_empty() {
                    target.user = Some(flags::percent_decode(user));
                }
                target.password = Some(flags::percent_decode(pass));
            }
            None => target.user = Some(flags::percent_decode(userinfo)).filter(|u| !u.is_empty()),
        }
    }
    if host.is_empty() {
        return Err("address without a host".into());
    }
    let host = if host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !host.ends_with(']') {
        host.to_string()
    } else {
        format!("{host}:6379")
    };
    target.tcp = Some(host);
    let db = path.split('?').next().unwrap_or("");
    if !db.is_empty() {
        target.db = Some(db.to_string());
    }
    Ok(target)
}

/// State kept across scrapes of `/metrics`.
struct Shared {
    config: RedisConfig,
    scrapes: AtomicU64,
    request_errors: AtomicU64,
    durations: Mutex<(f64, u64)>,
}

/// The Redis exporter: scrapes a Redis server per request.
///
/// ```
/// # #[cfg(feature = "redis")] {
/// use sextant_exporters::{RedisConfig, RedisExporter};
///
/// let config = RedisConfig::from_args(["--redis.addr=redis://127.0.0.1:1", "--connection-timeout=1s"]).unwrap();
/// let exporter = RedisExporter::new(config);
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// let families = runtime.block_on(exporter.scrape(None));
/// let up = families.iter().find(|f| f.name == "redis_up").unwrap();
/// assert_eq!(up.samples[0].value, 0.0); // nothing listens on port 1
/// # }
/// ```
#[derive(Clone)]
pub struct RedisExporter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisExporter").field("config", &self.shared.config).finish()
    }
}

/// Values read from Redis in one scrape.
struct Raw {
    config: Vec<String>,
    info: String,
    slowlog_len: Option<f64>,
    slowlog_last: Option<(f64, f64)>,
    latency: Vec<(String, f64, f64)>,
}

async fn connect(target: &Target, timeout: Duration, tls: &crate::tls::TlsSettings) -> std::io::Result<Connection> {
    let stream: Box<dyn resp::Stream> = match (&target.tcp, &target.unix) {
        (Some(addr), _) => {
            let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
            stream.set_nodelay(true)?;
            if target.tls {
                let host = addr.rsplit_once(':').map_or(addr.as_str(), |(host, _)| host);
                Box::new(tls.connect(stream, host).await.map_err(std::io::Error::other)?)
            } else {
                Box::new(stream)
            }
        }
        (None, Some(path)) => Box::new(tokio::net::UnixStream::connect(path).await?),
        (None, None) => return Err(std::io::Error::other("no address")),
    };
    Ok(Connection::new(stream))
}

fn server_error(value: Value) -> std::io::Result<Value> {
    match value {
        Value::Error(message) => Err(std::io::Error::other(message)),
        other => Ok(other),
    }
}

async fn read_all(
    conn: &mut Connection,
    target: &Target,
    config: &RedisConfig,
    password: &str,
) -> std::io::Result<Raw> {
    let user = target.user.clone().or_else(|| Some(config.user.clone()).filter(|u| !u.is_empty()));
    let password = target.password.clone().unwrap_or_else(|| password.to_string());
    if !password.is_empty() {
        let reply = match &user {
            Some(user) => conn.command(&["AUTH", user, &password]).await?,
            None => conn.command(&["AUTH", &password]).await?,
        };
        server_error(reply)?;
    }
    if let Some(db) = &target.db {
        server_error(conn.command(&["SELECT", db]).await?)?;
    }
    if config.set_client_name {
        let _ = conn.command(&["CLIENT", "SETNAME", "redis_exporter"]).await?;
    }
    let config_pairs = match conn.command(&[&config.config_command, "GET", "*"]).await? {
        Value::Array(items) => items.iter().filter_map(Value::text).collect(),
        _ => Vec::new(),
    };
    let info = match server_error(conn.command(&["INFO", "ALL"]).await?)? {
        Value::Bytes(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => return Err(std::io::Error::other("INFO did not return a string")),
    };
    let mut latency = Vec::new();
    if let Value::Array(events) = conn.command(&["LATENCY", "LATEST"]).await? {
        for event in events {
            let Value::Array(fields) = event else { continue };
            if let (Some(name), Some(when), Some(last)) = (
                fields.first().and_then(Value::text),
                fields.get(1).and_then(Value::int),
                fields.get(2).and_then(Value::int),
            ) {
                latency.push((name, when as f64, last as f64 / 1000.0));
            }
        }
    }
    let slowlog_len = conn.command(&["SLOWLOG", "LEN"]).await?.int().map(|n| n as f64);
    let slowlog_last = match conn.command(&["SLOWLOG", "GET", "1"]).await? {
        Value::Array(entries) => match entries.first() {
            Some(Value::Array(entry)) => {
                let id = entry.first().and_then(Value::int).unwrap_or(0) as f64;
                let usec = entry.get(2).and_then(Value::int).unwrap_or(0) as f64;
                Some((id, usec / 1e6))
            }
            _ => Some((0.0, 0.0)),
        },
        _ => None,
    };
    Ok(Raw { config: config_pairs, info, slowlog_len, slowlog_last, latency })
}

impl RedisExporter {
    /// An exporter for `config`.
    pub fn new(config: RedisConfig) -> RedisExporter {
        RedisExporter {
            shared: Arc::new(Shared {
                config,
                scrapes: AtomicU64::new(0),
                request_errors: AtomicU64::new(0),
                durations: Mutex::new((0.0, 0)),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RedisConfig {
        &self.shared.config
    }

    /// Scrapes `target` (or the configured address) once. Never fails: an unreachable or
    /// refusing server gives `redis_up 0` and `redis_exporter_last_scrape_error{err} 1`, and
    /// the error is logged to stderr.
    pub async fn scrape(&self, target: Option<&str>) -> Vec<MetricFamily> {
        let config = &self.shared.config;
        let addr = target.unwrap_or(&config.addr);
        let ns = config.namespace.as_str();
        let mut builder = Builder::new(ns);
        let start = Instant::now();
        let scrapes = self.shared.scrapes.fetch_add(1, Ordering::Relaxed) + 1;
        let mut connect_seconds = None;
        let result: Result<Raw, String> = match parse_target(addr) {
            Err(message) => Err(message),
            Ok(parsed) => {
                let password = config.password_for(addr);
                let deadline = config.connection_timeout;
                let work = async {
                    let connected = Instant::now();
                    let mut conn = connect(&parsed, deadline, &config.tls).await?;
                    connect_seconds = Some(connected.elapsed().as_secs_f64());
                    read_all(&mut conn, &parsed, config, &password).await
                };
                match tokio::time::timeout(deadline, work).await {
                    Ok(Ok(raw)) => Ok(raw),
                    Ok(Err(err)) => Err(err.to_string()),
                    Err(_) => Err(format!("timed out after {}s", deadline.as_secs_f64())),
                }
            }
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let error = match result {
            Ok(raw) => {
                let databases = info::add_config(&mut builder, &raw.config);
                let summary = info::add_info(&mut builder, &raw.info, now, config.include_system_metrics);
                info::add_empty_dbs(&mut builder, databases.unwrap_or(16), &summary.dbs_seen);
                if let Some(len) = raw.slowlog_len {
                    builder.add("slowlog_length", "Total slowlog", MetricType::Gauge, &[], len);
                }
                if let Some((id, seconds)) = raw.slowlog_last {
                    builder.add("slowlog_last_id", "Last id of slowlog", MetricType::Gauge, &[], id);
                    builder.add(
                        "last_slow_execution_duration_seconds",
                        "The amount of time needed for last slow execution, in seconds",
                        MetricType::Gauge,
                        &[],
                        seconds,
                    );
                }
                for (event, when, seconds) in &raw.latency {
                    let labels = [("event_name", event.as_str())];
                    builder.add(
                        "latency_spike_last",
                        "When the latency spike last occurred",
                        MetricType::Gauge,
                        &labels,
                        *when,
                    );
                    builder.add(
                        "latency_spike_duration_seconds",
                        "Length of the last latency spike in seconds",
                        MetricType::Gauge,
                        &labels,
                        *seconds,
                    );
                }
                None
            }
            Err(message) => {
                eprintln!("redis exporter: scrape of {} failed: {message}", redact(addr));
                Some(message)
            }
        };
        let up = if error.is_none() { 1.0 } else { 0.0 };
        builder.add("up", "Information about the Redis instance", MetricType::Gauge, &[], up);
        builder.add(
            "exporter_last_scrape_error",
            "The last scrape error status.",
            MetricType::Gauge,
            &[("err", error.as_deref().unwrap_or(""))],
            if error.is_some() { 1.0 } else { 0.0 },
        );
        if let Some(seconds) = connect_seconds {
            builder.add(
                "exporter_last_scrape_connect_time_seconds",
                "exporter_last_scrape_connect_time_seconds metric",
                MetricType::Gauge,
                &[],
                seconds,
            );
        }
        builder.add(
            "last_key_groups_scrape_duration_milliseconds",
            "Duration of the last key group metrics scrape in milliseconds",
            MetricType::Gauge,
            &[],
            0.0,
        );
        let elapsed = start.elapsed().as_secs_f64();
        builder.add(
            "exporter_last_scrape_duration_seconds",
            "exporter_last_scrape_duration_seconds metric",
            MetricType::Gauge,
            &[],
            elapsed,
        );
        let mut families = builder.finish();
        let (sum, count) = {
            let mut durations = self.shared.durations.lock().unwrap_or_else(|e| e.into_inner());
            durations.0 += elapsed;
            durations.1 += 1;
            *durations
        };
        let prefix = if ns.is_empty() { String::new() } else { format!("{ns}_") };
        let mut summary = MetricFamily::new(
            format!("{prefix}exporter_scrape_duration_seconds"),
            "Durations of scrapes by the exporter",
            MetricType::Summary,
        );
        summary.push_suffixed("_sum", &[], sum);
        summary.push_suffixed("_count", &[], count as f64);
        families.push(summary);
        families.push(MetricFamily::single(
            format!("{prefix}exporter_scrapes_total"),
            "Current total redis scrapes.",
            MetricType::Counter,
            scrapes as f64,
        ));
        families.push(MetricFamily::single(
            format!("{prefix}target_scrape_request_errors_total"),
            "Errors in requests to the exporter",
            MetricType::Counter,
            self.shared.request_errors.load(Ordering::Relaxed) as f64,
        ));
        let mut build =
            MetricFamily::new(format!("{prefix}exporter_build_info"), "redis exporter build_info", MetricType::Gauge);
        build.push(
            &[
                ("build_date", ""),
                ("commit_sha", ""),
                ("golang_version", "sextant"),
                ("version", env!("CARGO_PKG_VERSION")),
            ],
            1.0,
        );
        families.push(build);
        families
    }

    /// An axum router: `telemetry_path` scrapes the configured address, `/scrape?target=`
    /// any other one (a fresh exporter per request, as redis_exporter does).
    pub fn router(&self) -> Router {
        let path = self.shared.config.telemetry_path.clone();
        let landing = format!(
            "<html><head><title>Redis Exporter</title></head><body><h1>Redis Exporter (sextant)</h1>\
             <p><a href=\"{path}\">Metrics</a></p></body></html>"
        );
        let mut router = Router::new().route(&path, get(metrics)).route("/scrape", get(scrape_target));
        if path != "/" {
            router = router.route("/", get(move || async move { Html(landing) }));
        }
        router.with_state(self.clone())
    }
}

async fn metrics(State(exporter): State<RedisExporter>, headers: HeaderMap) -> Response {
    let mut families = exporter.scrape(None).await;
    if !exporter.shared.config.redis_only_metrics {
        families.extend(crate::process::collect());
    }
    crate::server::families_response(families, &headers)
}

async fn scrape_target(State(exporter): State<RedisExporter>, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let Some(target) = flags::query_param(uri.query().unwrap_or(""), "target").filter(|t| !t.is_empty()) else {
        exporter.shared.request_errors.fetch_add(1, Ordering::Relaxed);
        return axum::response::IntoResponse::into_response((
            axum::http::StatusCode::BAD_REQUEST,
            "'target' parameter must be specified\n",
        ));
    };
    let single = RedisExporter::new(exporter.shared.config.clone());
    let families = single.scrape(Some(&target)).await;
    crate::server::families_response(families, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = parse_target("redis://127.0.0.1:16379").unwrap();
        assert_eq!(t.tcp.as_deref(), Some("127.0.0.1:16379"));
        let t = parse_target("localhost").unwrap();
        assert_eq!(t.tcp.as_deref(), Some("localhost:6379"));
        let t = parse_target("rediss://bob:p%40ss@h:1/2").unwrap();
        assert!(t.tls);
        assert_eq!((t.user.as_deref(), t.password.as_deref(), t.db.as_deref()), (Some("bob"), Some("p@ss"), Some("2")));
        let t = parse_target("redis://:secret@h:1").unwrap();
        assert_eq!((t.user, t.password.as_deref()), (None, Some("secret")));
        let t = parse_target("unix:///run/redis.sock?password=x").unwrap();
        assert_eq!((t.unix.as_deref(), t.password.as_deref()), (Some("/run/redis.sock"), Some("x")));
        assert!(parse_target("http://h:1").is_err());
        assert!(parse_target("redis://").is_err());
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("redis://bob:secret@h:1"), "redis://bob:***@h:1");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
        let config =
            RedisConfig::from_args(["--redis.addr=redis://u:topsecret@h:1", "--redis.password=alsosecret"]).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn flags() {
        let config = RedisConfig::from_args([
            "-redis.addr=redis://127.0.0.1:1",
            "--web.listen-address",
            "127.0.0.1:9",
            "--no-set-client-name",
            "--connection-timeout=2s",
            "--namespace=r",
        ])
        .unwrap();
        assert_eq!(config.addr, "redis://127.0.0.1:1");
        assert_eq!(config.listen_address, "127.0.0.1:9");
        assert!(!config.set_client_name);
        assert_eq!(config.connection_timeout, Duration::from_secs(2));
        assert_eq!(config.namespace, "r");
        assert!(RedisConfig::from_args(["--nope"]).is_err());
    }

    #[test]
    fn password_file() {
        let map = parse_password_file(r#"{"redis://h:1": "a", "redis://h:2": "b"}"#).unwrap();
        assert_eq!(map.len(), 2);
        assert!(parse_password_file("[1]").is_err());
    }

    #[test]
    fn down_server_is_up_zero() {
        // Bind then drop a listener so the port is very likely closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config =
            RedisConfig::from_args([format!("--redis.addr=127.0.0.1:{port}"), "--connection-timeout=2s".into()])
                .unwrap();
        let exporter = RedisExporter::new(config);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let families = runtime.block_on(exporter.scrape(None));
        let value = |name: &str| families.iter().find(|f| f.name == name).map(|f| f.samples[0].value);
        assert_eq!(value("redis_up"), Some(0.0));
        assert_eq!(value("redis_exporter_last_scrape_error"), Some(1.0));
        assert_eq!(value("redis_exporter_scrapes_total"), Some(1.0));
    }
}

//! A PostgreSQL exporter compatible with postgres_exporter 0.11.1: its default metrics
//! (`pg_up`, `pg_stat_database_*`, `pg_stat_database_conflicts_*`, `pg_locks_count`,
//! `pg_stat_activity_*`, `pg_stat_archiver_*`, `pg_stat_replication_*`,
//! `pg_replication_slots_*`, `pg_settings_*`, `pg_static`, and the `database` and `bgwriter`
//! collectors' `pg_database_size_bytes` and `pg_stat_bgwriter_*_total`) under the same names,
//! plus user queries from a `queries.yaml`.

mod queries;
mod tls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, Response};
use axum::routing::get;
use axum::Router;

use crate::builder::Builder;
use crate::flags::{self, flag_error};
use crate::Error;
use queries::{QuerySpec, Rows};
use sextant_model::exposition::{MetricFamily, MetricType};

const BOOL_FLAGS: &[&str] = &[
    "disable-default-metrics",
    "disable-settings-metrics",
    "auto-discover-databases",
    "collector.database",
    "collector.bgwriter",
    "dumpmaps",
    "version",
];

const VALUE_FLAGS: &[&str] = &[
    "web.listen-address",
    "web.telemetry-path",
    "web.config.file",
    "extend.query-path",
    "include-databases",
    "exclude-databases",
    "constantLabels",
    "metric-prefix",
    "log.level",
    "log.format",
];

/// Settings of the PostgreSQL exporter, from postgres_exporter's flags and environment.
#[derive(Clone)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// `--web.listen-address` (`PG_EXPORTER_WEB_LISTEN_ADDRESS`), default `:9187`.
    pub listen_address: String,
    /// `--web.telemetry-path`, default `/metrics`.
    pub telemetry_path: String,
    dsn: String,
    /// `--disable-default-metrics`: only `pg_up`, settings and user queries.
    pub disable_default_metrics: bool,
    /// `--disable-settings-metrics`: no `pg_settings_*`.
    pub disable_settings_metrics: bool,
    /// `--[no-]collector.database` (default on): `pg_database_size_bytes`.
    pub collector_database: bool,
    /// `--[no-]collector.bgwriter` (default on): `pg_stat_bgwriter_*_total`.
    pub collector_bgwriter: bool,
    /// `--constantLabels`: `name=value,...` added to every metric of the queries.
    pub constant_labels: Vec<(String, String)>,
    user_queries: Vec<QuerySpec>,
    /// The queries file and the SHA-256 of its content, for `pg_exporter_user_queries_load_error`.
    user_queries_file: Option<(String, String)>,
    /// How long one scrape may take (connect and all queries).
    pub timeout: Duration,
    /// Notes about accepted but unimplemented flags.
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The DSN carries the password: never printed.
        f.debug_struct("PostgresConfig")
            .field("listen_address", &self.listen_address)
            .field("user_queries", &self.user_queries.len())
            .finish_non_exhaustive()
    }
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            listen_address: ":9187".into(),
            telemetry_path: "/metrics".into(),
            dsn: String::new(),
            disable_default_metrics: false,
            disable_settings_metrics: false,
            collector_database: true,
            collector_bgwriter: true,
            constant_labels: Vec::new(),
            user_queries: Vec::new(),
            user_queries_file: None,
            timeout: Duration::from_secs(10),
            warnings: Vec::new(),
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The value of `NAME`, or the trimmed content of the file named by `NAME_FILE`.
fn env_or_file(name: &str) -> Result<Option<String>, Error> {
    if let Some(path) = env(&format!("{name}_FILE")) {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        return Ok(Some(text.trim().to_string()));
    }
    Ok(env(name))
}

/// Builds the DSN postgres_exporter would use: `DATA_SOURCE_NAME`, or `DATA_SOURCE_URI`
/// with `DATA_SOURCE_USER` and `DATA_SOURCE_PASS` (each also from a `_FILE`).
fn dsn_from_env() -> Result<String, Error> {
    if let Some(dsn) = env_or_file("DATA_SOURCE_NAME")? {
        return Ok(dsn);
    }
    let Some(uri) = env_or_file("DATA_SOURCE_URI")? else {
        return Ok(String::new());
    };
    let user = env_or_file("DATA_SOURCE_USER")?.unwrap_or_default();
    let pass = env_or_file("DATA_SOURCE_PASS")?.unwrap_or_default();
    let uri = uri.strip_prefix("postgresql://").or_else(|| uri.strip_prefix("postgres://")).unwrap_or(&uri);
    let escape = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    let auth = match (user.is_empty(), pass.is_empty()) {
        (true, _) => String::new(),
        (false, true) => format!("{}@", escape(&user)),
        (false, false) => format!("{}:{}@", escape(&user), escape(&pass)),
    };
    Ok(format!("postgresql://{auth}{uri}"))
}

impl PostgresConfig {
    /// Parses postgres_exporter 0.11's flags (`--web.listen-address`, `--extend.query-path`,
    /// `--disable-default-metrics`, `--[no-]collector.bgwriter`, ...; single dash too) after
    /// its environment (`DATA_SOURCE_NAME`, `DATA_SOURCE_URI`/`_USER`/`_PASS` and their
    /// `_FILE` forms, `PG_EXPORTER_*`).
    pub fn from_args<I, S>(args: I) -> Result<PostgresConfig, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        let mut config = PostgresConfig { dsn: dsn_from_env()?, ..PostgresConfig::default() };
        let mut query_path = env("PG_EXPORTER_EXTEND_QUERY_PATH");
        if let Some(v) = env("PG_EXPORTER_WEB_LISTEN_ADDRESS") {
            config.listen_address = v;
        }
        if let Some(v) = env("PG_EXPORTER_WEB_TELEMETRY_PATH") {
            config.telemetry_path = v;
        }
        config.disable_default_metrics = env("PG_EXPORTER_DISABLE_DEFAULT_METRICS").is_some_and(|v| v == "true");
        config.disable_settings_metrics = env("PG_EXPORTER_DISABLE_SETTINGS_METRICS").is_some_and(|v| v == "true");
        let mut constant = env("PG_EXPORTER_CONSTANT_LABELS");
        for (name, value) in flags::parse(&args, BOOL_FLAGS, VALUE_FLAGS)? {
            let on = value == "true";
            match name.as_str() {
                "web.listen-address" => config.listen_address = value,
                "web.telemetry-path" => config.telemetry_path = value,
                "extend.query-path" => query_path = Some(value),
                "disable-default-metrics" => config.disable_default_metrics = on,
                "disable-settings-metrics" => config.disable_settings_metrics = on,
                "collector.database" => config.collector_database = on,
                "collector.bgwriter" => config.collector_bgwriter = on,
                "constantLabels" => constant = Some(value),
                "web.config.file" => {
                    return Err(flag_error(&name, "--web.config.file is read by the HTTP server (`sextant exporter` takes it off first), not by the exporter's flags"))
                }
                "auto-discover-databases" | "include-databases" | "exclude-databases" | "metric-prefix" => {
                    if value != "false" && !value.is_empty() {
                        config
                            .warnings
                            .push(format!("--{name} is accepted and ignored (only the DSN's database is scraped)"));
                    }
                }
                "dumpmaps" | "version" | "log.level" | "log.format" => {}
                other => return Err(flag_error(other, "unknown flag")),
            }
        }
        if let Some(text) = constant {
            for pair in text.split(',').filter(|p| !p.is_empty()) {
                let Some((k, v)) = pair.split_once('=') else {
                    return Err(flag_error("constantLabels", format!("{pair:?} is not name=value")));
                };
                config.constant_labels.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        if let Some(path) = query_path.filter(|p| !p.is_empty()) {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            config.user_queries = queries::parse_user_queries(&text).map_err(|m| Error::parse(&path, 0, m))?;
            use sha2::Digest as _;
            let hash: String = sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
            config.user_queries_file = Some((path, hash));
        }
        Ok(config)
    }

    /// Sets the DSN (lib/pq URL `postgresql://user:pass@host:port/db?sslmode=disable` or
    /// `key=value` form), as `DATA_SOURCE_NAME` does.
    pub fn with_dsn(mut self, dsn: impl Into<String>) -> PostgresConfig {
        self.dsn = dsn.into();
        self
    }

    /// A description of the accepted flags, for `--help`.
    pub fn usage() -> String {
        "usage: DATA_SOURCE_NAME=postgresql://user:pass@host:5432/postgres?sslmode=disable sextant exporter postgres [flags]\n\
         \n  --web.listen-address=:9187, --web.telemetry-path=/metrics\
         \n  --extend.query-path=queries.yaml     user queries (postgres_exporter format)\
         \n  --disable-default-metrics, --disable-settings-metrics\
         \n  --[no-]collector.database, --[no-]collector.bgwriter\
         \n  --constantLabels=name=value,...\
         \n  env: DATA_SOURCE_NAME, or DATA_SOURCE_URI + DATA_SOURCE_USER + DATA_SOURCE_PASS (each also _FILE)\n"
            .to_string()
    }
}

struct Shared {
    config: PostgresConfig,
    scrapes: AtomicU64,
    /// The connection, kept between scrapes as postgres_exporter keeps its pool.
    client: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
}

/// The PostgreSQL exporter: connects and queries once per scrape.
///
/// ```
/// # #[cfg(feature = "postgres")] {
/// use sextant_exporters::{PostgresConfig, PostgresExporter};
///
/// let config = PostgresConfig::from_args(Vec::<String>::new()).unwrap()
///     .with_dsn("postgresql://u@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2");
/// let exporter = PostgresExporter::new(config);
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// let families = runtime.block_on(exporter.scrape());
/// let up = families.iter().find(|f| f.name == "pg_up").unwrap();
/// assert_eq!(up.samples[0].value, 0.0); // nothing listens on port 1
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresExporter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PostgresExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresExporter").field("config", &self.shared.config).finish()
    }
}

/// An error with the server's message, which `tokio_postgres::Error`'s `Display` leaves out.
fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(err) {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        },
    }
}

async fn run_query(client: &tokio_postgres::Client, sql: &str) -> Result<Rows, tokio_postgres::Error> {
    let mut names = Vec::new();
    let mut rows = Vec::new();
    for message in client.simple_query(sql).await? {
        match message {
            tokio_postgres::SimpleQueryMessage::RowDescription(columns) if names.is_empty() => {
                names = columns.iter().map(|c| c.name().to_string()).collect();
            }
            tokio_postgres::SimpleQueryMessage::Row(row) => {
                if names.is_empty() {
                    names = row.columns().iter().map(|c| c.name().to_string()).collect();
                }
                rows.push((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect());
            }
            _ => {}
        }
    }
    Ok((names, rows))
}

/// `host:port` of the first host in the DSN, as postgres_exporter's `server` label.
fn server_label(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

impl PostgresExporter {
    /// An exporter for `config`.
    pub fn new(config: PostgresConfig) -> PostgresExporter {
        PostgresExporter {
            shared: Arc::new(Shared { config, scrapes: AtomicU64::new(0), client: tokio::sync::Mutex::new(None) }),
        }
    }

    /// Scrapes once. Never fails: an unreachable server or bad DSN gives `pg_up 0` and
    /// `pg_exporter_last_scrape_error 1`, and a line on stderr (without credentials).
    pub async fn scrape(&self) -> Vec<MetricFamily> {
        let config = &self.shared.config;
        let start = Instant::now();
        let scrapes = self.shared.scrapes.fetch_add(1, Ordering::Relaxed) + 1;
        let mut builder = Builder::new("");
        let mut collectors: Vec<(&str, f64, bool)> = Vec::new();
        let work = self.scrape_into(&mut builder, &mut collectors);
        let (up, error) = match tokio::time::timeout(config.timeout, work).await {
            Ok(Ok(errors)) => (true, errors),
            Ok(Err(message)) => {
                eprintln!("postgres exporter: {message}");
                (false, true)
            }
            Err(_) => {
                eprintln!("postgres exporter: scrape timed out after {}s", config.timeout.as_secs_f64());
                // A hung connection is dropped; the next scrape connects afresh.
                if let Ok(mut slot) = self.shared.client.try_lock() {
                    *slot = None;
                }
                (false, true)
            }
        };
        if !up {
            // The collectors report failure, as postgres_exporter's do when the server is down.
            collectors.clear();
            if !config.disable_default_metrics && config.collector_bgwriter {
                collectors.push(("bgwriter", 0.0, false));
            }
            if !config.disable_default_metrics && config.collector_database {
                collectors.push(("database", 0.0, false));
            }
        }
        let mut families = builder.finish();
        if !config.constant_labels.is_empty() {
            for fam in &mut families {
                for sample in &mut fam.samples {
                    let mut builder = sextant_model::LabelsBuilder::new(&sample.labels);
                    for (name, value) in &config.constant_labels {
                        builder.set(name, value);
                    }
                    sample.labels = builder.labels();
                }
            }
        }
        families.push(MetricFamily::single(
            "pg_up",
            "Whether the last scrape of metrics from PostgreSQL was able to connect to the server (1 for yes, 0 for no).",
            MetricType::Gauge,
            if up { 1.0 } else { 0.0 },
        ));
        families.push(MetricFamily::single(
            "pg_exporter_last_scrape_error",
            "Whether the last scrape of metrics from PostgreSQL resulted in an error (1 for error, 0 for success).",
            MetricType::Gauge,
            if error { 1.0 } else { 0.0 },
        ));
        families.push(MetricFamily::single(
            "pg_exporter_scrapes_total",
            "Total number of times PostgreSQL was scraped for metrics.",
            MetricType::Counter,
            scrapes as f64,
        ));
        families.push(MetricFamily::single(
            "pg_exporter_last_scrape_duration_seconds",
            "Duration of the last scrape of metrics from PostgreSQL.",
            MetricType::Gauge,
            start.elapsed().as_secs_f64(),
        ));
        if let Some((file, hash)) = &config.user_queries_file {
            let mut load = MetricFamily::new(
                "pg_exporter_user_queries_load_error",
                "Whether the user queries file was loaded and parsed successfully (1 for error, 0 for success).",
                MetricType::Gauge,
            );
            load.push(&[("filename", file), ("hashsum", hash)], 0.0);
            families.push(load);
        }
        if !collectors.is_empty() {
            let mut duration = MetricFamily::new(
                "pg_scrape_collector_duration_seconds",
                "postgres_exporter: Duration of a collector scrape.",
                MetricType::Gauge,
            );
            let mut success = MetricFamily::new(
                "pg_scrape_collector_success",
                "postgres_exporter: Whether a collector succeeded.",
                MetricType::Gauge,
            );
            for (name, seconds, ok) in collectors {
                duration.push(&[("collector", name)], seconds);
                success.push(&[("collector", name)], if ok { 1.0 } else { 0.0 });
            }
            families.push(duration);
            families.push(success);
        }
        families.push(crate::builder::go_build_info(
            "postgres_exporter_build_info",
            "A metric with a constant '1' value labeled by version, revision, branch, goversion from which postgres_exporter was built, and the goos and goarch for the build.",
        ));
        families
    }

    /// Connects and runs every query; `Ok(true)` when some query failed but the server was
    /// reachable.
    async fn scrape_into(
        &self,
        builder: &mut Builder,
        collectors: &mut Vec<(&'static str, f64, bool)>,
    ) -> Result<bool, String> {
        let config = &self.shared.config;
        if config.dsn.is_empty() {
            return Err("no DSN: set DATA_SOURCE_NAME (or DATA_SOURCE_URI, _USER, _PASS)".into());
        }
        let (dsn, tls) = tls::split_dsn(&config.dsn);
        let mut pg: tokio_postgres::Config = dsn.parse().map_err(|e: tokio_postgres::Error| format!("bad DSN: {e}"))?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(config.timeout);
        }
        let server = server_label(&pg);
        let mut slot = self.shared.client.lock().await;
        if slot.as_ref().is_none_or(|c| c.is_closed()) {
            *slot = None;
            let (client, connection) = pg
                .connect(tls::MakeRustls(tls))
                .await
                .map_err(|e| format!("connecting to {server}: {}", describe(&e)))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            // As lib/pq does at connect, so settings and floats read the same.
            let _ = client.simple_query("SET extra_float_digits = 2; SET TimeZone = 'UTC'").await;
            *slot = Some(client);
        }
        let Some(client) = slot.as_ref() else { return Err("no connection".into()) };
        let result = self.run_all(client, &server, builder, collectors).await;
        if client.is_closed() {
            *slot = None;
        }
        result
    }

    async fn run_all(
        &self,
        client: &tokio_postgres::Client,
        server: &str,
        builder: &mut Builder,
        collectors: &mut Vec<(&'static str, f64, bool)>,
    ) -> Result<bool, String> {
        let config = &self.shared.config;
        let mut failed = false;
        let version = run_query(client, "SELECT version(), current_setting('server_version_num')")
            .await
            .map_err(|e| format!("querying {server}: {}", describe(&e)))?;
        if let Some(row) = version.1.first() {
            let full = row.first().cloned().flatten().unwrap_or_default();
            let num: u64 = row.get(1).cloned().flatten().and_then(|n| n.parse().ok()).unwrap_or(0);
            let short = format!("{}.{}.0", num / 10000, num % 10000);
            builder.add(
                "pg_static",
                "Version string as reported by postgres",
                MetricType::Unknown,
                &[("server", server), ("short_version", &short), ("version", &full)],
                1.0,
            );
        }
        if !config.disable_settings_metrics {
            let sql = "SELECT name, setting, COALESCE(unit, ''), short_desc, vartype FROM pg_settings \
                       WHERE vartype IN ('bool', 'integer', 'real') AND name != 'sync_commit_cancel_wait'";
            match run_query(client, sql).await {
                Ok(rows) => queries::add_settings(builder, &rows, server),
                Err(e) => {
                    eprintln!("postgres exporter: pg_settings on {server}: {}", describe(&e));
                    failed = true;
                }
            }
        }
        let mut specs: Vec<QuerySpec> = Vec::new();
        if !config.disable_default_metrics {
            specs.extend(queries::builtin());
        }
        specs.extend(config.user_queries.iter().cloned());
        for spec in &specs {
            match run_query(client, &spec.query).await {
                Ok(rows) => queries::add_rows(builder, spec, &rows, server),
                Err(e) => {
                    eprintln!("postgres exporter: query {} on {server}: {}", spec.namespace, describe(&e));
                    failed = true;
                }
            }
        }
        if !config.disable_default_metrics && config.collector_bgwriter {
            let start = Instant::now();
            let sql = "SELECT checkpoints_timed, checkpoints_req, checkpoint_write_time, checkpoint_sync_time, \
                       buffers_checkpoint, buffers_clean, maxwritten_clean, buffers_backend, buffers_backend_fsync, \
                       buffers_alloc, stats_reset FROM pg_stat_bgwriter";
            let ok = match run_query(client, sql).await {
                Ok((names, rows)) => {
                    for row in &rows {
                        for (idx, name) in names.iter().enumerate() {
                            let Some(value) = queries::value_of(row[idx].as_deref()) else { continue };
                            builder.add(
                                &format!("pg_stat_bgwriter_{name}_total"),
                                bgwriter_help(name),
                                MetricType::Counter,
                                &[("server", server)],
                                value,
                            );
                        }
                    }
                    true
                }
                Err(e) => {
                    eprintln!("postgres exporter: bgwriter collector on {server}: {}", describe(&e));
                    false
                }
            };
            collectors.push(("bgwriter", start.elapsed().as_secs_f64(), ok));
        }
        if !config.disable_default_metrics && config.collector_database {
            let start = Instant::now();
            let sql = "SELECT datname, pg_database_size(datname) FROM pg_database";
            let ok = match run_query(client, sql).await {
                Ok((_, rows)) => {
                    for row in &rows {
                        let datname = row.first().cloned().flatten().unwrap_or_default();
                        let Some(size) = queries::value_of(row.get(1).and_then(|v| v.as_deref())) else { continue };
                        builder.add(
                            "pg_database_size_bytes",
                            "Disk space used by the database",
                            MetricType::Gauge,
                            &[("datname", &datname), ("server", server)],
                            size,
                        );
                    }
                    true
                }
                Err(e) => {
                    eprintln!("postgres exporter: database collector on {server}: {}", describe(&e));
                    false
                }
            };
            collectors.push(("database", start.elapsed().as_secs_f64(), ok));
        }
        Ok(failed)
    }

    /// An axum router serving the scrape at the telemetry path.
    pub fn router(&self) -> Router {
        let path = self.shared.config.telemetry_path.clone();
        let landing = format!(
            "<html><head><title>Postgres exporter</title></head><body><h1>Postgres exporter (sextant)</h1>\
             <p><a href=\"{path}\">Metrics</a></p></body></html>"
        );
        let mut router = Router::new().route(&path, get(metrics));
        if path != "/" {
            router = router.route("/", get(move || async move { Html(landing) }));
        }
        router.with_state(self.clone())
    }
}

fn bgwriter_help(column: &str) -> &'static str {
    match column {
        "checkpoints_timed" => "Number of scheduled checkpoints that have been performed",
        "checkpoints_req" => "Number of requested checkpoints that have been performed",
        "checkpoint_write_time" => "Total amount of time that has been spent in the portion of checkpoint processing where files are written to disk, in milliseconds",
        "checkpoint_sync_time" => "Total amount of time that has been spent in the portion of checkpoint processing where files are synchronized to disk, in milliseconds",
        "buffers_checkpoint" => "Number of buffers written during checkpoints",
        "buffers_clean" => "Number of buffers written by the background writer",
        "maxwritten_clean" => "Number of times the background writer stopped a cleaning scan because it had written too many buffers",
        "buffers_backend" => "Number of buffers written directly by a backend",
        "buffers_backend_fsync" => "Number of times a backend had to execute its own fsync call (normally the background writer handles those even when the backend does its own write)",
        "buffers_alloc" => "Number of buffers allocated",
        "stats_reset" => "Time at which these statistics were last reset",
        _ => "pg_stat_bgwriter column",
    }
}

async fn metrics(State(exporter): State<PostgresExporter>, headers: HeaderMap) -> Response {
    let mut families = exporter.scrape().await;
    families.extend(crate::process::collect());
    crate::server::families_response(families, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_queries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queries.yaml");
        std::fs::write(
            &path,
            "q:\n  query: SELECT 1 AS one\n  metrics:\n    - one:\n        usage: GAUGE\n        description: d\n",
        )
        .unwrap();
        let config = PostgresConfig::from_args([
            "-web.listen-address=127.0.0.1:9".to_string(),
            format!("--extend.query-path={}", path.display()),
            "--no-collector.bgwriter".into(),
            "--constantLabels=env=test".into(),
        ])
        .unwrap();
        assert_eq!(config.listen_address, "127.0.0.1:9");
        assert!(!config.collector_bgwriter);
        assert!(config.collector_database);
        assert_eq!(config.user_queries.len(), 1);
        assert_eq!(config.constant_labels, vec![("env".to_string(), "test".to_string())]);
        assert!(PostgresConfig::from_args(["--bogus"]).is_err());
        assert!(PostgresConfig::from_args(["--constantLabels=x"]).is_err());
        assert!(PostgresConfig::from_args(["--web.config.file=x"]).is_err());
    }

    #[test]
    fn dsn_is_never_printed() {
        let config = PostgresConfig::default().with_dsn("postgresql://u:topsecret@h/db");
        assert!(!format!("{config:?}").contains("topsecret"));
    }

    #[test]
    fn server_labels() {
        let pg: tokio_postgres::Config = "postgresql://u:p@127.0.0.1:15432/postgres?sslmode=disable".parse().unwrap();
        assert_eq!(server_label(&pg), "127.0.0.1:15432");
        let pg: tokio_postgres::Config = "host=db user=u".parse().unwrap();
        assert_eq!(server_label(&pg), "db:5432");
    }

    #[test]
    fn down_server_is_up_zero() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = PostgresConfig::default().with_dsn(format!("postgresql://u@127.0.0.1:{port}/db?sslmode=disable"));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let families = runtime.block_on(PostgresExporter::new(config).scrape());
        let value = |name: &str| families.iter().find(|f| f.name == name).map(|f| f.samples[0].value);
        assert_eq!(value("pg_up"), Some(0.0));
        assert_eq!(value("pg_exporter_last_scrape_error"), Some(1.0));
        let no_dsn = runtime.block_on(PostgresExporter::new(PostgresConfig::default()).scrape());
        assert!(no_dsn.iter().any(|f| f.name == "pg_up" && f.samples[0].value == 0.0));
    }
}

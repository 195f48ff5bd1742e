//! A MySQL/MariaDB exporter compatible with mysqld_exporter 0.14: its default collectors
//! (`collect.global_status`, `collect.global_variables`, `collect.slave_status`,
//! `collect.info_schema.innodb_cmp`, `collect.info_schema.innodb_cmpmem`,
//! `collect.info_schema.query_response_time`) under the same names, plus `mysql_up`,
//! `mysql_version_info` and the `mysql_exporter_*` scrape metrics. A new connection per
//! scrape, as mysqld_exporter 0.14 makes.

mod parse;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, Response};
use axum::routing::get;
use axum::Router;
use mysql_async::prelude::Queryable as _;

use crate::builder::Builder;
use crate::flags::{self, flag_error};
use crate::Error;
use parse::Dsn;
use sextant_model::exposition::{MetricFamily, MetricType};

/// Collectors of mysqld_exporter 0.14 and whether they are on by default.
const SCRAPERS: &[(&str, bool)] = &[
    ("global_status", true),
    ("global_variables", true),
    ("slave_status", true),
    ("info_schema.innodb_cmp", true),
    ("info_schema.innodb_cmpmem", true),
    ("info_schema.query_response_time", true),
    ("info_schema.processlist", false),
    ("info_schema.tables", false),
    ("info_schema.innodb_tablespaces", false),
    ("info_schema.innodb_metrics", false),
    ("auto_increment.columns", false),
    ("binlog_size", false),
    ("perf_schema.tableiowaits", false),
    ("perf_schema.indexiowaits", false),
    ("perf_schema.tablelocks", false),
    ("perf_schema.eventsstatements", false),
    ("perf_schema.eventsstatementssum", false),
    ("perf_schema.eventswaits", false),
    ("perf_schema.file_events", false),
    ("perf_schema.file_instances", false),
    ("perf_schema.memory_events", false),
    ("perf_schema.replication_group_members", false),
    ("perf_schema.replication_group_member_stats", false),
    ("perf_schema.replication_applier_status_by_worker", false),
    ("info_schema.userstats", false),
    ("info_schema.clientstats", false),
    ("info_schema.tablestats", false),
    ("info_schema.schemastats", false),
    ("info_schema.replica_host", false),
    ("mysql.user", false),
    ("engine_innodb_status", false),
    ("engine_tokudb_status", false),
    ("heartbeat", false),
    ("slave_hosts", false),
    ("sys.user_summary", false),
];

/// Implemented here.
const IMPLEMENTED: &[&str] = &[
    "global_status",
    "global_variables",
    "slave_status",
    "info_schema.innodb_cmp",
    "info_schema.innodb_cmpmem",
    "info_schema.query_response_time",
];

const VALUE_FLAGS: &[&str] = &[
    "web.listen-address",
    "web.telemetry-path",
    "web.config.file",
    "config.my-cnf",
    "exporter.lock_wait_timeout",
    "timeout-offset",
    "mysqld.address",
    "mysqld.username",
    "log.level",
    "log.format",
    "collect.info_schema.processlist.min_time",
    "collect.info_schema.tables.databases",
    "collect.heartbeat.database",
    "collect.heartbeat.table",
];

/// Settings of the MySQL exporter, from mysqld_exporter's flags and environment.
#[derive(Clone)]
#[non_exhaustive]
pub struct MysqlConfig {
    /// `--web.listen-address`, default `:9104`.
    pub listen_address: String,
    /// `--web.telemetry-path`, default `/metrics`.
    pub telemetry_path: String,
    dsn: Option<Dsn>,
    /// `--exporter.lock_wait_timeout` (seconds), default 2, set on the session.
    pub lock_wait_timeout: u32,
    /// The enabled collectors (`global_status`, ...), after `--[no-]collect.<name>`.
    pub collectors: Vec<String>,
    /// How long one scrape may take.
    pub timeout: Duration,
    /// Notes about accepted but unimplemented flags.
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for MysqlConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials are never printed.
        f.debug_struct("MysqlConfig")
            .field("listen_address", &self.listen_address)
            .field("collectors", &self.collectors)
            .finish_non_exhaustive()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl MysqlConfig {
    /// Parses mysqld_exporter's flags (`--web.listen-address`, `--config.my-cnf`,
    /// `--[no-]collect.<name>`, `--exporter.lock_wait_timeout`, and 0.15's
    /// `--mysqld.address`/`--mysqld.username` with `MYSQLD_EXPORTER_PASSWORD`; single dash
    /// too). Credentials come from `DATA_SOURCE_NAME` (go-sql-driver DSN) when set, else
    /// from the my.cnf (default `~/.my.cnf`).
    pub fn from_args<I, S>(args: I) -> Result<MysqlConfig, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        let bool_flags: Vec<String> = SCRAPERS.iter().map(|(n, _)| format!("collect.{n}")).collect();
        let mut bools: Vec<&str> = bool_flags.iter().map(String::as_str).collect();
        bools.extend(["exporter.log_slow_filter", "version", "collect.heartbeat.utc"]);
        let mut config = MysqlConfig {
            listen_address: ":9104".into(),
            telemetry_path: "/metrics".into(),
            dsn: None,
            lock_wait_timeout: 2,
            collectors: SCRAPERS.iter().filter(|s| s.1).map(|s| s.0.to_string()).collect(),
            timeout: Duration::from_secs(10),
            warnings: Vec::new(),
        };
        let mut my_cnf: Option<String> = None;
        let mut address: Option<String> = None;
        let mut username: Option<String> = None;
        for (name, value) in flags::parse(&args, &bools, VALUE_FLAGS)? {
            if let Some(collector) = name.strip_prefix("collect.").filter(|c| SCRAPERS.iter().any(|s| s.0 == *c)) {
                config.collectors.retain(|c| c != collector);
                if value == "true" {
                    if IMPLEMENTED.contains(&collector) {
                        config.collectors.push(collector.to_string());
                    } else {
                        config.warnings.push(format!("collector {collector} is not implemented in sextant"));
                    }
                }
                continue;
            }
            match name.as_str() {
                "web.listen-address" => config.listen_address = value,
                "web.telemetry-path" => config.telemetry_path = value,
                "config.my-cnf" => my_cnf = Some(value),
                "mysqld.address" => address = Some(value),
                "mysqld.username" => username = Some(value),
                "exporter.lock_wait_timeout" => {
                    config.lock_wait_timeout = value.parse().map_err(|_| flag_error(&name, "expected seconds"))?
                }
                "web.config.file" => {
                    return Err(flag_error(&name, "--web.config.file is read by the HTTP server (`sextant exporter` takes it off first), not by the exporter's flags"))
                }
                "exporter.log_slow_filter" if value == "true" => {
                    config.warnings.push("--exporter.log_slow_filter is accepted and ignored".into());
                }
                _ => {}
            }
        }
        config.collectors.sort();
        config.dsn = if let Some(dsn) = env("DATA_SOURCE_NAME") {
            Some(parse::parse_dsn(&dsn).map_err(|m| flag_error("DATA_SOURCE_NAME", m))?)
        } else if address.is_some() || username.is_some() {
            let address = address.unwrap_or_else(|| "localhost:3306".into());
            let (host, port) = match address.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| flag_error("mysqld.address", "bad port"))?),
                None => (address, 3306),
            };
            Some(Dsn {
                user: username.unwrap_or_default(),
                password: env("MYSQLD_EXPORTER_PASSWORD").unwrap_or_default(),
                host,
                port,
                socket: None,
            })
        } else {
            let path = my_cnf.unwrap_or_else(|| format!("{}/.my.cnf", env("HOME").unwrap_or_default()));
            match std::fs::read_to_string(&path) {
                Ok(text) => Some(parse::parse_my_cnf(&text).map_err(|m| Error::parse(&path, 0, m))?),
                Err(err) => {
                    config
                        .warnings
                        .push(format!("no DATA_SOURCE_NAME and {path}: {err}; every scrape reports mysql_up 0"));
                    None
                }
            }
        };
        Ok(config)
    }

    /// Sets the DSN in go-sql-driver form (`user:pass@(host:port)/`), as `DATA_SOURCE_NAME` does.
    pub fn with_dsn(mut self, dsn: &str) -> Result<MysqlConfig, Error> {
        self.dsn = Some(parse::parse_dsn(dsn).map_err(|m| flag_error("dsn", m))?);
        Ok(self)
    }

    /// A description of the accepted flags, for `--help`.
    pub fn usage() -> String {
        let mut out = String::from(
            "usage: DATA_SOURCE_NAME='user:pass@(host:3306)/' sextant exporter mysql [flags]\n\
             \n  --web.listen-address=:9104, --web.telemetry-path=/metrics\
             \n  --config.my-cnf=~/.my.cnf           [client] user, password, host, port, socket\
             \n  --mysqld.address=host:port --mysqld.username=U (password in MYSQLD_EXPORTER_PASSWORD)\
             \n  --exporter.lock_wait_timeout=2\
             \n  --[no-]collect.NAME, implemented:",
        );
        for name in IMPLEMENTED {
            out.push(' ');
            out.push_str(name);
        }
        out.push('\n');
        out
    }
}

struct Shared {
    config: MysqlConfig,
    scrapes: AtomicU64,
}

/// The MySQL exporter.
///
/// ```
/// # #[cfg(feature = "mysql")] {
/// use sextant_exporters::{MysqlConfig, MysqlExporter};
///
/// let config = MysqlConfig::from_args(["--config.my-cnf=/nonexistent"]).unwrap()
///     .with_dsn("exporter:pw@(127.0.0.1:1)/").unwrap();
/// let exporter = MysqlExporter::new(config);
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// let families = runtime.block_on(exporter.scrape());
/// let up = families.iter().find(|f| f.name == "mysql_up").unwrap();
/// assert_eq!(up.samples[0].value, 0.0); // nothing listens on port 1
/// # }
/// ```
#[derive(Clone)]
pub struct MysqlExporter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MysqlExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlExporter").field("config", &self.shared.config).finish()
    }
}

fn text(value: &mysql_async::Value) -> Option<String> {
    match value {
        mysql_async::Value::NULL => None,
        mysql_async::Value::Bytes(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        mysql_async::Value::Int(n) => Some(n.to_string()),
        mysql_async::Value::UInt(n) => Some(n.to_string()),
        mysql_async::Value::Float(n) => Some(n.to_string()),
        mysql_async::Value::Double(n) => Some(n.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

/// Result rows as (column names, text values).
async fn query(conn: &mut mysql_async::Conn, sql: &str) -> Result<(Vec<String>, Vec<Vec<Option<String>>>), String> {
    let rows: Vec<mysql_async::Row> = conn.query(sql).await.map_err(|e| format!("{sql}: {e}"))?;
    let names =
        rows.first().map(|r| r.columns_ref().iter().map(|c| c.name_str().into_owned()).collect()).unwrap_or_default();
    let values = rows.iter().map(|r| (0..r.len()).map(|i| r.as_ref(i).and_then(text)).collect()).collect();
    Ok((names, values))
}

fn pairs(rows: &[Vec<Option<String>>]) -> Vec<(String, String)> {
    rows.iter().filter_map(|r| Some((r.first()?.clone()?, r.get(1).cloned().flatten().unwrap_or_default()))).collect()
}

impl MysqlExporter {
    /// An exporter for `config`.
    pub fn new(config: MysqlConfig) -> MysqlExporter {
        MysqlExporter { shared: Arc::new(Shared { config, scrapes: AtomicU64::new(0) }) }
    }

    /// Scrapes once. Never fails: a server that is down gives `mysql_up 0`, and the error
    /// is logged to stderr (without credentials).
    pub async fn scrape(&self) -> Vec<MetricFamily> {
        let config = &self.shared.config;
        let scrapes = self.shared.scrapes.fetch_add(1, Ordering::Relaxed) + 1;
        let mut builder = Builder::new("mysql");
        let mut durations: Vec<(String, f64)> = Vec::new();
        let mut failed = false;
        let start = Instant::now();
        let connection = match &config.dsn {
            None => Err("no credentials: set DATA_SOURCE_NAME or --config.my-cnf".to_string()),
            Some(dsn) => {
                let mut opts = mysql_async::OptsBuilder::default()
                    .user(Some(dsn.user.clone()))
                    .pass(Some(dsn.password.clone()).filter(|p| !p.is_empty()))
                    .prefer_socket(false)
                    .init(vec![format!("SET SESSION lock_wait_timeout = {}", config.lock_wait_timeout)]);
                opts = match &dsn.socket {
                    Some(socket) => opts.socket(Some(socket.clone())),
                    None => opts.ip_or_hostname(dsn.host.clone()).tcp_port(dsn.port),
                };
                match tokio::time::timeout(config.timeout, mysql_async::Conn::new(opts)).await {
                    Ok(Ok(conn)) => Ok(conn),
                    Ok(Err(e)) => Err(format!(
                        "connecting to {}: {e}",
                        dsn.socket.clone().unwrap_or(format!("{}:{}", dsn.host, dsn.port))
                    )),
                    Err(_) => Err("connecting timed out".to_string()),
                }
            }
        };
        durations.push(("connection".into(), start.elapsed().as_secs_f64()));
        let up = match connection {
            Err(message) => {
                eprintln!("mysql exporter: {message}");
                false
            }
            Ok(mut conn) => {
                let work = async {
                    for collector in &config.collectors {
                        let started = Instant::now();
                        if let Err(message) = self.collect(&mut conn, collector, &mut builder).await {
                            eprintln!("mysql exporter: collect.{collector}: {message}");
                            failed = true;
                        }
                        durations.push((format!("collect.{collector}"), started.elapsed().as_secs_f64()));
                    }
                };
                if tokio::time::timeout(config.timeout, work).await.is_err() {
                    eprintln!("mysql exporter: scrape timed out after {}s", config.timeout.as_secs_f64());
                    failed = true;
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), conn.disconnect()).await;
                true
            }
        };
        let mut families = builder.finish();
        families.push(MetricFamily::single(
            "mysql_up",
            "Whether the MySQL server is up.",
            MetricType::Gauge,
            if up { 1.0 } else { 0.0 },
        ));
        families.push(MetricFamily::single(
            "mysql_exporter_last_scrape_error",
            "Whether the last scrape of metrics from MySQL resulted in an error (1 for error, 0 for success).",
            MetricType::Gauge,
            if failed || !up { 1.0 } else { 0.0 },
        ));
        families.push(MetricFamily::single(
            "mysql_exporter_scrapes_total",
            "Total number of times MySQL was scraped for metrics.",
            MetricType::Counter,
            scrapes as f64,
        ));
        let mut duration = MetricFamily::new(
            "mysql_exporter_collector_duration_seconds",
            "Collector time duration.",
            MetricType::Gauge,
        );
        for (name, seconds) in &durations {
            duration.push(&[("collector", name)], *seconds);
        }
        families.push(duration);
        families.push(crate::builder::go_build_info(
            "mysqld_exporter_build_info",
            "A metric with a constant '1' value labeled by version, revision, branch, and goversion from which mysqld_exporter was built.",
        ));
        families
    }

    async fn collect(
        &self,
        conn: &mut mysql_async::Conn,
        collector: &str,
        builder: &mut Builder,
    ) -> Result<(), String> {
        match collector {
            "global_status" => {
                let (_, rows) = query(conn, "SHOW GLOBAL STATUS").await?;
                parse::add_global_status(builder, &pairs(&rows));
            }
            "global_variables" => {
                let (_, rows) = query(conn, "SHOW GLOBAL VARIABLES").await?;
                parse::add_global_variables(builder, &pairs(&rows));
            }
            "slave_status" => {
                // MariaDB names every replication source; MySQL has one.
                let result = match query(conn, "SHOW ALL SLAVES STATUS").await {
                    Ok(result) => result,
                    Err(_) => query(conn, "SHOW SLAVE STATUS").await?,
                };
                add_slave_status(builder, &result);
            }
            "info_schema.innodb_cmp" => {
                let sql =
                    "SELECT page_size, compress_ops, compress_ops_ok, compress_time, uncompress_ops, uncompress_time \
                           FROM information_schema.innodb_cmp";
                let (_, rows) = query(conn, sql).await?;
                let columns: [(&str, &str, f64); 5] = [
                    (
                        "compress_ops_total",
                        "Number of times a B-tree page of the size PAGE_SIZE has been compressed.",
                        1.0,
                    ),
                    (
                        "compress_ops_ok_total",
                        "Number of times a B-tree page of the size PAGE_SIZE has been successfully compressed.",
                        1.0,
                    ),
                    (
                        "compress_time_seconds_total",
                        "Total time in seconds spent in attempts to compress B-tree pages.",
                        1.0,
                    ),
                    (
                        "uncompress_ops_total",
                        "Number of times a B-tree page of the size PAGE_SIZE has been uncompressed.",
                        1.0,
                    ),
                    (
                        "uncompress_time_seconds_total",
                        "Total time in seconds spent in uncompressing B-tree pages.",
                        1.0,
                    ),
                ];
                for row in &rows {
                    let page_size = row.first().cloned().flatten().unwrap_or_default();
                    for (idx, (name, help, scale)) in columns.iter().enumerate() {
                        let Some(v) = row.get(idx + 1).cloned().flatten().and_then(|v| v.parse::<f64>().ok()) else {
                            continue;
                        };
                        builder.add(
                            &format!("info_schema_innodb_cmp_{name}"),
                            help,
                            MetricType::Counter,
                            &[("page_size", &page_size)],
                            v * scale,
                        );
                    }
                }
            }
            "info_schema.innodb_cmpmem" => {
                let sql =
                    "SELECT page_size, buffer_pool_instance, pages_used, pages_free, relocation_ops, relocation_time \
                           FROM information_schema.innodb_cmpmem";
                let (_, rows) = query(conn, sql).await?;
                let columns: [(&str, &str, f64); 4] = [
                    ("pages_used_total", "Number of blocks of the size PAGE_SIZE that are currently in use.", 1.0),
                    (
                        "pages_free_total",
                        "Number of blocks of the size PAGE_SIZE that are currently available for allocation.",
                        1.0,
                    ),
                    ("relocation_ops_total", "Number of times a block of the size PAGE_SIZE has been relocated.", 1.0),
                    ("relocation_time_seconds_total", "Total time in seconds spent in relocating blocks.", 1e-6),
                ];
                for row in &rows {
                    let page_size = row.first().cloned().flatten().unwrap_or_default();
                    let pool = row.get(1).cloned().flatten().unwrap_or_default();
                    for (idx, (name, help, scale)) in columns.iter().enumerate() {
                        let Some(v) = row.get(idx + 2).cloned().flatten().and_then(|v| v.parse::<f64>().ok()) else {
                            continue;
                        };
                        builder.add(
                            &format!("info_schema_innodb_cmpmem_{name}"),
                            help,
                            MetricType::Counter,
                            &[("buffer_pool", &pool), ("page_size", &page_size)],
                            v * scale,
                        );
                    }
                }
            }
            "info_schema.query_response_time" => {
                // Only with the QUERY_RESPONSE_TIME plugin and its statistics switched on.
                let (_, rows) = query(conn, "SELECT @@query_response_time_stats").await.unwrap_or_default();
                let on = rows
                    .first()
                    .and_then(|r| r.first().cloned().flatten())
                    .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("ON"));
                if on {
                    return Err("query_response_time histograms are not implemented".into());
                }
            }
            other => return Err(format!("collector {other} is not implemented")),
        }
        Ok(())
    }

    /// An axum router serving the scrape at the telemetry path.
    pub fn router(&self) -> Router {
        let path = self.shared.config.telemetry_path.clone();
        let landing = format!(
            "<html><head><title>MySQLd exporter</title></head><body><h1>MySQLd exporter (sextant)</h1>\
             <p><a href=\"{path}\">Metrics</a></p></body></html>"
        );
        let mut router = Router::new().route(&path, get(metrics));
        if path != "/" {
            router = router.route("/", get(move || async move { Html(landing) }));
        }
        router.with_state(self.clone())
    }
}

/// `SHOW SLAVE STATUS` rows: every numeric (or Yes/No) column as
/// `mysql_slave_status_<column>{master_host, master_uuid, channel_name, connection_name}`.
fn add_slave_status(builder: &mut Builder, (names, rows): &(Vec<String>, Vec<Vec<Option<String>>>)) {
    let column = |row: &[Option<String>], name: &str| {
        names.iter().position(|n| n.eq_ignore_ascii_case(name)).and_then(|i| row[i].clone()).unwrap_or_default()
    };
    for row in rows {
        let host = column(row, "Master_Host");
        let uuid = column(row, "Master_UUID");
        let channel = column(row, "Channel_Name");
        let connection = column(row, "Connection_name");
        let labels = [
            ("channel_name", channel.as_str()),
            ("connection_name", connection.as_str()),
            ("master_host", host.as_str()),
            ("master_uuid", uuid.as_str()),
        ];
        for (idx, name) in names.iter().enumerate() {
            let Some(value) = row[idx].as_deref().and_then(parse::parse_value) else { continue };
            builder.add(
                &format!("slave_status_{}", parse::metric_name(name)),
                "Generic metric from SHOW SLAVE STATUS.",
                MetricType::Unknown,
                &labels,
                value,
            );
        }
    }
}

async fn metrics(State(exporter): State<MysqlExporter>, headers: HeaderMap) -> Response {
    let mut families = exporter.scrape().await;
    families.extend(crate::process::collect());
    crate::server::families_response(families, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let dir = tempfile::tempdir().unwrap();
        let cnf = dir.path().join("my.cnf");
        std::fs::write(&cnf, "[client]\nuser=exporter\npassword=secretpw\nport=13306\n").unwrap();
        let config = MysqlConfig::from_args([
            format!("-config.my-cnf={}", cnf.display()),
            "--no-collect.info_schema.innodb_cmp".into(),
            "--collect.info_schema.processlist".into(),
            "--web.listen-address".into(),
            "127.0.0.1:9".into(),
        ])
        .unwrap();
        assert_eq!(config.listen_address, "127.0.0.1:9");
        assert!(!config.collectors.iter().any(|c| c == "info_schema.innodb_cmp"));
        assert!(config.collectors.iter().any(|c| c == "global_status"));
        assert!(config.warnings.iter().any(|w| w.contains("processlist")));
        assert!(!format!("{config:?}").contains("secretpw"));
        assert!(MysqlConfig::from_args(["--bogus"]).is_err());
    }

    #[test]
    fn down_server_is_up_zero() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = MysqlConfig::from_args(["--config.my-cnf=/nonexistent"])
            .unwrap()
            .with_dsn(&format!("u:p@(127.0.0.1:{port})/"))
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let families = runtime.block_on(MysqlExporter::new(config).scrape());
        let value = |name: &str| families.iter().find(|f| f.name == name).map(|f| f.samples[0].value);
        assert_eq!(value("mysql_up"), Some(0.0));
        assert_eq!(value("mysql_exporter_last_scrape_error"), Some(1.0));
    }
}

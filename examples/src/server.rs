//! `sextant server`: the TSDB and the HTTP API (Prometheus v1, remote write/read, federation,
//! Pushgateway) in one process, with Prometheus' flag names.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sextant_api::{Api, ApiOptions, BuildInfo};
use sextant_model::Labels;
use sextant_promql::EngineOptions;

use crate::fanout::Fanout;
use crate::wiring::{check_config, Reloader, RuleGroups, RuleOptions, ScrapeTargets};

/// Run a Prometheus-compatible server.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Prometheus configuration file.
    #[arg(long = "config.file", default_value = "prometheus.yml")]
    config_file: PathBuf,
    /// Base path for metrics storage.
    #[arg(long = "storage.tsdb.path", default_value = "data/")]
    tsdb_path: PathBuf,
    /// Address to listen on for the web interface and API.
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9090")]
    listen_address: String,
    /// Path to a web configuration file (TLS, basic auth), Prometheus' web.yml format.
    #[arg(long = "web.config.file")]
    web_config_file: Option<PathBuf>,
    /// How long to retain samples in storage.
    #[arg(long = "storage.tsdb.retention.time", default_value = "15d")]
    retention_time: String,
    /// Maximum number of bytes that can be stored for blocks (0 = off).
    #[arg(long = "storage.tsdb.retention.size", default_value = "0B")]
    retention_size: String,
    /// How often the background compactor cuts the head into blocks, merges blocks and
    /// applies retention (Prometheus: once a minute).
    #[arg(long = "storage.tsdb.compaction-interval", default_value = "1m", hide = true)]
    compaction_interval: String,
    /// Enable API endpoints for admin control actions.
    #[arg(long = "web.enable-admin-api")]
    enable_admin_api: bool,
    /// Enable shutdown and reload via HTTP request.
    #[arg(long = "web.enable-lifecycle")]
    enable_lifecycle: bool,
    /// Accepted for compatibility: the remote-write receiver is always on.
    #[arg(long = "web.enable-remote-write-receiver")]
    enable_remote_write_receiver: bool,
    /// Maximum number of samples a single query can load into memory.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    max_samples: usize,
    /// Maximum time a query may take before being aborted.
    #[arg(long = "query.timeout", default_value = "2m")]
    query_timeout: String,
    /// The maximum lookback duration for retrieving metrics during expression evaluations.
    #[arg(long = "query.lookback-delta", default_value = "5m")]
    lookback_delta: String,
    /// Which Prometheus release's PromQL rules apply where releases differ: `prometheus3`
    /// (left-open range windows `(t-r, t]`) or `prometheus2` (closed windows `[t-r, t]`, as
    /// Prometheus 2.x answers; for side-by-side comparisons with a 2.x server).
    #[arg(long = "query.semantics", value_enum, default_value_t = QuerySemantics::Prometheus3)]
    query_semantics: QuerySemantics,
    /// File keeping pushed Pushgateway groups across restarts (the Pushgateway's flag name);
    /// written at shutdown, read at start.
    #[arg(long = "persistence.file")]
    persistence_file: Option<PathBuf>,
    /// Minimum amount of time to wait before resending an alert to Alertmanager.
    #[arg(long = "rules.alert.resend-delay", default_value = "1m")]
    resend_delay: String,
    /// Max time to tolerate Prometheus outage for restoring "for" state of alert.
    #[arg(long = "rules.alert.for-outage-tolerance", default_value = "1h")]
    for_outage_tolerance: String,
    /// Minimum duration between alert and restored "for" state (kept only for alerts with a
    /// configured "for" time greater than the grace period).
    #[arg(long = "rules.alert.for-grace-period", default_value = "10m")]
    for_grace_period: String,
    /// The URL under which the server is externally reachable (generatorURL of alerts);
    /// default http://<web.listen-address>.
    #[arg(long = "web.external-url")]
    external_url: Option<String>,
    /// Largest HTTP request body accepted, in bytes.
    #[arg(long = "web.max-request-bytes", default_value_t = 32 << 20)]
    max_request_bytes: usize,
}

fn duration_ms(flag: &str, text: &str) -> anyhow::Result<i64> {
    let d: sextant_scrape::Duration =
        text.parse().map_err(|e| anyhow::anyhow!("--{flag}: invalid duration {text:?}: {e:?}"))?;
    Ok(d.as_millis() as i64)
}

pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    run_with(args, |_| async { Ok(()) })
}

/// A range query builds tens of MB of short-lived buffers. glibc returns freed memory at the
/// top of the heap to the kernel beyond 128 KiB, so the next query faults every page in again
/// (measured: a fifth of a `count({__name__!=""})` over 5,500 series went to page faults).
/// Keep up to 128 MiB of freed memory, grow the heap 16 MiB at a time, and serve buffers
/// below 32 MiB from the heap rather than from fresh mappings. Called by `main` first thing.
pub(crate) fn keep_freed_query_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
        libc::mallopt(libc::M_TOP_PAD, 16 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}

/// Runs the server; `started` is called inside the runtime once the API listens (with its
/// address), before requests are served: `sextant stack` starts its exporters there.
pub fn run_with<F, Fut>(args: ServerArgs, started: F) -> anyhow::Result<()>
where
    F: FnOnce(std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let config_text = std::fs::read_to_string(&args.config_file)
        .with_context(|| format!("reading --config.file={}", args.config_file.display()))?;
    let config = check_config(&args.config_file).context("--config.file")?;
    let web_config = match &args.web_config_file {
        Some(path) => sextant_web::WebConfig::load_file(path)?,
        None => sextant_web::WebConfig::default(),
    };
    let engine = EngineOptions {
        lookback_delta_ms: duration_ms("query.lookback-delta", &args.lookback_delta)?,
        max_samples: args.max_samples,
        timeout: Some(Duration::from_millis(duration_ms("query.timeout", &args.query_timeout)? as u64)),
        semantics: match args.query_semantics {
            QuerySemantics::Prometheus3 => sextant_promql::Semantics::Prometheus3,
            QuerySemantics::Prometheus2 => sextant_promql::Semantics::Prometheus2,
        },
        ..EngineOptions::default()
    };
    let mut flags = BTreeMap::new();
    for (k, v) in [
        ("config.file", args.config_file.display().to_string()),
        ("storage.tsdb.path", args.tsdb_path.display().to_string()),
        ("web.listen-address", args.listen_address.clone()),
        ("web.config.file", args.web_config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
        ("storage.tsdb.retention.time", args.retention_time.clone()),
        ("storage.tsdb.retention.size", args.retention_size.clone()),
        ("web.enable-admin-api", args.enable_admin_api.to_string()),
        ("web.enable-lifecycle", args.enable_lifecycle.to_string()),
        ("web.enable-remote-write-receiver", "true".to_string()),
        ("query.max-samples", args.max_samples.to_string()),
        ("query.timeout", args.query_timeout.clone()),
        ("query.lookback-delta", args.lookback_delta.clone()),
        ("rules.alert.resend-delay", args.resend_delay.clone()),
        ("rules.alert.for-outage-tolerance", args.for_outage_tolerance.clone()),
        ("rules.alert.for-grace-period", args.for_grace_period.clone()),
    ] {
        flags.insert(k.to_string(), v);
    }
    let query_engine = sextant_promql::Engine::new(engine.clone());
    let rule_options = RuleOptions {
        resend_delay_ms: duration_ms("rules.alert.resend-delay", &args.resend_delay)?,
        for_outage_tolerance_ms: duration_ms("rules.alert.for-outage-tolerance", &args.for_outage_tolerance)?,
        for_grace_period_ms: duration_ms("rules.alert.for-grace-period", &args.for_grace_period)?,
        external_url: args
            .external_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", args.listen_address))
            .trim_end_matches('/')
            .to_string(),
    };
    let options = ApiOptions {
        engine,
        external_labels: Labels::from_pairs(
            config.global.external_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ),
        enable_admin_api: args.enable_admin_api,
        build_info: BuildInfo::default(),
        flags,
        config_yaml: config_text,
        storage_retention: args.retention_time.clone(),
        max_body_bytes: args.max_request_bytes,
        ..ApiOptions::default()
    };

    let db_options = sextant_tsdb::Options {
        retention_ms: retention_ms(&args.retention_time)?,
        retention_bytes: retention_bytes(&args.retention_size)?,
        ..sextant_tsdb::Options::default()
    };
    let db = Arc::new(
        sextant_tsdb::Db::open(&args.tsdb_path, db_options)
            .with_context(|| format!("opening --storage.tsdb.path={}", args.tsdb_path.display()))?,
    );
    // Head cuts, merges and retention on a background thread, once a minute as Prometheus.
    let compaction_interval = sextant_model::parse_duration_ms(&args.compaction_interval)
        .map_err(|e| anyhow::anyhow!("--storage.tsdb.compaction-interval={}: {e}", args.compaction_interval))?;
    let compactor = sextant_tsdb::Db::spawn_compactor(&db, Duration::from_millis(compaction_interval.max(100)))
        .context("starting the TSDB compactor thread")?;
    // remote_write: scraped samples, rule results and received remote writes go to the TSDB
    // and, while endpoints are configured, to the durable remote-write buffer beside it,
    // from which one queue per endpoint sends (the agent's buffer: send positions persist,
    // so an outage or a restart loses nothing). Opened with no endpoints (queues are tokio
    // tasks); the reloader applies the configuration's inside the runtime.
    let remote_dir = args.tsdb_path.join("remote-write");
    let remote = Arc::new(
        sextant_scrape::RemoteWriteStorage::open(
            &remote_dir,
            &sextant_scrape::Config::default(),
            sextant_scrape::BufferOptions::default(),
            Arc::new(sextant_model::SystemClock),
        )
        .with_context(|| format!("opening the remote-write buffer {}", remote_dir.display()))?,
    );
    let storage = Arc::new(Fanout::new(db.clone(), remote.clone()));
    let targets = Arc::new(ScrapeTargets::new(storage.clone()).with_remote_write(remote.clone()));
    let rules = Arc::new(RuleGroups::with_options(db.clone(), storage.clone(), query_engine, rule_options));
    let api = Api::new(storage.clone(), options)
        .with_admin(db.clone())
        .with_targets(targets.clone())
        .with_rules(rules.clone());
    // The query log follows `global.query_log_file` across reloads, as Prometheus' does.
    let query_log_api = api.clone();
    let query_log_path = std::sync::Mutex::new(None::<String>);
    let reloader = Arc::new(
        Reloader::new(args.config_file.clone(), targets.clone(), rules.clone())
            .with_remote_write(remote.clone())
            .on_apply(move |config| {
                let path = &config.global.query_log_file;
                let mut current = query_log_path.lock().unwrap_or_else(|e| e.into_inner());
                if current.as_deref() == Some(path.as_str()) {
                    return Ok(());
                }
                if path.is_empty() {
                    query_log_api.stop_query_log();
                } else {
                    let file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .with_context(|| format!("opening query_log_file {path}"))?;
                    query_log_api.set_query_log(Box::new(file));
                }
                *current = Some(path.clone());
                Ok(())
            }),
    );
    if let Some(path) = &args.persistence_file {
        if path.exists() {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            api.pushgateway_load(&text).with_context(|| format!("loading {}", path.display()))?;
        }
    }
    let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
    if args.enable_lifecycle {
        let path = args.config_file.clone();
        // Checked here so that `/-/reload` answers with the error; applied by the reloader.
        api.set_reload_hook(Arc::new(move || {
            check_config(&path).map_err(|e| format!("{e:#}"))?;
            reload_tx.send(()).map_err(|e| e.to_string())
        }));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen_address)
            .await
            .with_context(|| format!("listening on --web.listen-address={}", args.listen_address))?;
        let addr = listener.local_addr()?;
        eprintln!("sextant server: listening on {addr}, storage {}", args.tsdb_path.display());
        reloader.apply(&config).await.context("starting scraping and rule evaluation")?;
        let reloads = tokio::spawn(reloader.clone().serve(reload_rx));
        let compaction_log = tokio::spawn(log_compaction_errors(compactor.state_handle()));
        started(addr).await?;
        sextant_web::serve(listener, api.router(), &web_config, shutdown_signal()).await?;
        reloads.abort();
        compaction_log.abort();
        rules.stop();
        targets.stop().await;
        // What was not sent stays in the buffer for the next start.
        if let Err(e) = remote.shutdown().await {
            eprintln!("sextant server: stopping remote write: {e}");
        }
        anyhow::Ok(())
    })?;
    drop(reloader);
    drop(rules);
    drop(targets);
    if let Some(path) = &args.persistence_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, api.pushgateway_save()).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    drop(api);
    drop(storage);
    drop(remote);
    runtime.shutdown_timeout(Duration::from_secs(5));
    eprintln!("sextant server: shutting down, closing the TSDB");
    drop(compactor);
    match Arc::try_unwrap(db) {
        Ok(db) => db.close()?,
        Err(db) => db.sync()?,
    }
    Ok(())
}

/// `--query.semantics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum QuerySemantics {
    Prometheus3,
    Prometheus2,
}

/// `--storage.tsdb.retention.time`: a Prometheus duration; `0s` keeps everything.
fn retention_ms(text: &str) -> anyhow::Result<Option<i64>> {
    let ms = sextant_model::parse_duration_ms(text)
        .map_err(|e| anyhow::anyhow!("--storage.tsdb.retention.time={text}: {e} (use e.g. 15d, 90d, 1y)"))?;
    Ok((ms > 0).then(|| i64::try_from(ms).unwrap_or(i64::MAX)))
}

/// `--storage.tsdb.retention.size`: bytes with a unit (`512MB`, `10GB`); `0B` means no limit.
fn retention_bytes(text: &str) -> anyhow::Result<Option<u64>> {
    let size: sextant_scrape::ByteSize = text
        .parse()
        .map_err(|e| anyhow::anyhow!("--storage.tsdb.retention.size={text}: {e} (use e.g. 512MB, 10GB)"))?;
    Ok((!size.is_zero()).then(|| size.as_bytes()))
}

/// Logs each new compaction error once (the compactor keeps retrying every minute).
async fn log_compaction_errors(state: impl Fn() -> sextant_tsdb::CompactorState) {
    let mut last: Option<String> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    loop {
        tick.tick().await;
        let error = state().last_error;
        if error.is_some() && error != last {
            eprintln!(
                "sextant server: TSDB compaction failed: {} (the head keeps growing until it succeeds; check free space and permissions of --storage.tsdb.path)",
                error.as_deref().unwrap_or_default()
            );
        }
        last = error;
    }
}

/// SIGTERM or SIGINT (Ctrl-C).
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await,
        };
        tokio::select! {
            () = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

//! `sextant agent`: scrape targets and remote-write everything through a durable buffer,
//! with no local TSDB (Prometheus' agent mode).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::State;
use axum::routing::{get, post};
use sextant_model::SystemClock;
use sextant_scrape::{BufferOptions, Config, Duration, RemoteWriteStorage, ScrapeManager};
use tokio::sync::Mutex;

/// Flags, spelled as Prometheus' agent mode spells them.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// Prometheus configuration file (scrape_configs and remote_write).
    #[arg(long = "config.file", default_value = "prometheus.yml")]
    config_file: PathBuf,
    /// Directory of the remote-write buffer (WAL and send positions).
    #[arg(long = "storage.agent.path", default_value = "data-agent/")]
    storage_path: PathBuf,
    /// Address for /metrics, /api/v1/targets, /-/healthy, /-/ready and /-/reload.
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9090")]
    listen_address: SocketAddr,
    /// Oldest data kept in the buffer while an endpoint is unreachable.
    #[arg(long = "storage.agent.retention.max-time", default_value = "24h")]
    max_time: Duration,
    /// Largest buffer kept while an endpoint is unreachable (bytes, or e.g. 4GB).
    #[arg(long = "storage.agent.retention.max-size", default_value = "4GB")]
    max_size: sextant_scrape::ByteSize,
    /// Size of one buffer segment file.
    #[arg(long = "storage.agent.wal-segment-size", default_value = "16MB")]
    segment_size: sextant_scrape::ByteSize,
    /// Sync the buffer to disk on every commit (every scrape), not only when a segment is
    /// full and at shutdown: a committed scrape then survives a power loss.
    #[arg(long = "storage.agent.wal-fsync-commits")]
    fsync_commits: bool,
}

struct App {
    config_file: PathBuf,
    manager: Mutex<ScrapeManager>,
    storage: Arc<RemoteWriteStorage>,
}

pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    run_with(args, |_| async { Ok(()) })
}

/// Runs the agent; `started` is called inside the runtime once it listens (with its address):
/// `sextant stack` starts its exporters there.
pub fn run_with<F, Fut>(args: AgentArgs, started: F) -> anyhow::Result<()>
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(args, started))
}

async fn serve<F, Fut>(args: AgentArgs, started: F) -> anyhow::Result<()>
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let config = Config::load_file(&args.config_file)?;
    config.check_agent_mode()?;
    let options = BufferOptions {
        segment_size: args.segment_size.as_bytes().max(4096),
        max_bytes: args.max_size.as_bytes(),
        max_age: args.max_time.as_std(),
        fsync_commits: args.fsync_commits,
        ..BufferOptions::default()
    };
    let storage = Arc::new(
        RemoteWriteStorage::open(&args.storage_path, &config, options, Arc::new(SystemClock))
            .with_context(|| format!("opening {}", args.storage_path.display()))?,
    );
    let mut manager = ScrapeManager::new(storage.clone(), Arc::new(SystemClock));
    manager.apply_config(&config).await?;
    let app = Arc::new(App { config_file: args.config_file.clone(), manager: Mutex::new(manager), storage });

    let router = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/targets", get(targets))
        .route("/-/healthy", get(|| async { "Sextant agent is Healthy.\n" }))
        .route("/-/ready", get(|| async { "Sextant agent is Ready.\n" }))
        .route("/-/reload", post(reload))
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind(args.listen_address)
        .await
        .with_context(|| format!("listening on {}", args.listen_address))?;
    eprintln!("sextant agent: listening on {}", listener.local_addr()?);
    started(listener.local_addr()?).await?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let server = axum::serve(listener, router).with_graceful_shutdown({
        let app = app.clone();
        async move {
            loop {
                tokio::select! {
                    _ = hangup.recv() => {
                        if let Err(e) = do_reload(&app).await {
                            eprintln!("sextant agent: reload failed: {e:#}");
                        }
                    }
                    _ = terminate.recv() => break,
                    _ = tokio::signal::ctrl_c() => break,
                }
            }
        }
    });
    server.await?;
    eprintln!("sextant agent: shutting down");
    let manager = std::mem::replace(
        &mut *app.manager.lock().await,
        ScrapeManager::new(app.storage.clone(), Arc::new(SystemClock)),
    );
    manager.stop().await;
    app.storage.shutdown().await?;
    Ok(())
}

async fn do_reload(app: &App) -> anyhow::Result<()> {
    let config = Config::load_file(&app.config_file)?;
    config.check_agent_mode()?;
    // Remote write first: scrapes after the reload carry the new external labels.
    app.storage.apply_config(&config).await?;
    app.manager.lock().await.apply_config(&config).await?;
    eprintln!("sextant agent: configuration reloaded");
    Ok(())
}

async fn reload(State(app): State<Arc<App>>) -> (axum::http::StatusCode, String) {
    match do_reload(&app).await {
        Ok(()) => (axum::http::StatusCode::OK, String::new()),
        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e:#}\n")),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> ([(&'static str, &'static str); 1], String) {
    let mut out = app.storage.metrics_text();
    out.push_str(&app.manager.lock().await.metrics_text());
    ([("content-type", "text/plain; version=0.0.4; charset=utf-8")], out)
}

async fn targets(State(app): State<Arc<App>>) -> ([(&'static str, &'static str); 1], String) {
    let manager = app.manager.lock().await;
    let mut active = Vec::new();
    for (_, list) in manager.targets() {
        for t in list {
            let s = t.state();
            let labels: serde_json::Map<String, serde_json::Value> =
                s.labels.iter().map(|l| (l.name.to_string(), l.value.to_string().into())).collect();
            let discovered: serde_json::Map<String, serde_json::Value> =
                s.discovered_labels.iter().map(|l| (l.name.to_string(), l.value.to_string().into())).collect();
            active.push(serde_json::json!({
                "discoveredLabels": discovered,
                "labels": labels,
                "scrapePool": s.scrape_pool,
                "scrapeUrl": s.scrape_url,
                "lastError": s.last_error,
                "lastScrape": rfc3339(s.last_scrape_ms),
                "lastScrapeDuration": s.last_scrape_duration.as_secs_f64(),
                "health": s.health.as_str(),
                "scrapeInterval": format!("{}", Duration::from_millis(s.scrape_interval.as_millis() as u64)),
                "scrapeTimeout": format!("{}", Duration::from_millis(s.scrape_timeout.as_millis() as u64)),
            }));
        }
    }
    let mut dropped = Vec::new();
    for (_, list) in manager.dropped_targets() {
        for labels in list {
            let discovered: serde_json::Map<String, serde_json::Value> =
                labels.iter().map(|l| (l.name.to_string(), l.value.to_string().into())).collect();
            dropped.push(serde_json::json!({"discoveredLabels": discovered}));
        }
    }
    let body = serde_json::json!({"status": "success", "data": {"activeTargets": active, "droppedTargets": dropped}});
    ([("content-type", "application/json")], body.to_string())
}

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds.
fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        let cases = [(0, "1970-01-01T00:00:00.000Z"), (1_700_000_000_123, "2023-11-14T22:13:20.123Z")];
        for (ms, expected) in cases {
            assert_eq!(super::rfc3339(ms), expected);
        }
    }
}

//! `sextant exporter node [node_exporter flags]`: the node exporter on `/metrics`.
//!
//! Every exporter takes `--web.config.file=FILE` (Prometheus' web.yml: TLS, bcrypt basic auth
//! on every path). It is taken off the arguments here, before the exporter's own flags are
//! parsed, and applied by `sextant_exporters::serve` through `sextant-web`.

use std::sync::Arc;

use anyhow::Context as _;
use sextant_exporters::{ContainerConfig, LogConfig, NodeConfig};

/// Threads that run collectors; a scrape of ~30 file-reading collectors needs few.
const BLOCKING_THREADS: usize = 4;

/// glibc gives each thread that allocates its own malloc arena; for a small daemon with a
/// few short-lived allocations per scrape, one arena keeps the resident set small (node: 0.4 MB
/// less than with two, no measurable CPU cost: the per-thread caches take most allocations
/// without the arena lock).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// `sextant exporter ...` parsed on its own (see `main`): the same subcommands as under the
/// full command line.
#[derive(Debug, clap::Parser)]
#[command(name = "sextant exporter", bin_name = "sextant exporter", version, about = "Run an exporter.")]
struct ExporterCli {
    #[command(subcommand)]
    command: ExporterCommand,
}

/// Parses `sextant exporter <NAME> [flags]` from the process arguments and runs it.
pub fn run_from_args() -> anyhow::Result<()> {
    use clap::Parser as _;
    // Skipping `sextant` leaves `exporter` in the program-name position.
    let cli = ExporterCli::parse_from(std::env::args_os().skip(1));
    run(cli.command)
}

/// Which exporter to run.
#[derive(Debug, clap::Subcommand)]
pub enum ExporterCommand {
    /// Linux host metrics, compatible with node_exporter 1.5.0 (same metric names and flags).
    Node {
        /// node_exporter flags, e.g. --web.listen-address=127.0.0.1:9100 --path.procfs=/proc
        /// --collector.processes --no-collector.hwmon --collector.textfile.directory=DIR
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// cAdvisor-compatible container metrics from cgroups (names and images from Docker).
    Container {
        /// --web.listen-address=:8080 --path.sysfs=/sys --path.procfs=/proc --docker.host=unix:///var/run/docker.sock
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Logporter-compatible Docker metrics and log line/error counters (Logporter env vars too).
    Log {
        /// --web.listen-address=:9333 --docker.host=URL --log.pattern=NAME=REGEX --log.file=PATH ...
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Redis metrics, compatible with redis_exporter 1.45 (names, flags, `/scrape?target=`).
    Redis {
        /// redis_exporter flags, e.g. --redis.addr=redis://127.0.0.1:6379 --web.listen-address=:9121
        /// --redis.user=U --redis.password-file=FILE (or env REDIS_ADDR, REDIS_PASSWORD, ...)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Blackbox probes, compatible with blackbox_exporter 0.23 (`/probe?module=&target=`).
    Blackbox {
        /// blackbox_exporter flags, e.g. --config.file=blackbox.yml --web.listen-address=:9115
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// MySQL/MariaDB metrics, compatible with mysqld_exporter 0.14; DSN from DATA_SOURCE_NAME.
    Mysql {
        /// mysqld_exporter flags, e.g. --web.listen-address=:9104 --config.my-cnf=/etc/.my.cnf
        /// --collect.info_schema.innodb_cmp --no-collect.slave_status
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// PostgreSQL metrics, compatible with postgres_exporter 0.11.1; DSN from DATA_SOURCE_NAME.
    Postgres {
        /// postgres_exporter flags, e.g. --web.listen-address=:9187 --extend.query-path=queries.yaml
        /// --disable-settings-metrics --no-collector.bgwriter
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// The `--help` line for the flag every exporter takes (see [`take_web_config`]).
const WEB_CONFIG_USAGE: &str =
    "  --web.config.file=FILE  TLS and basic auth, Prometheus' web.yml format (default: none)\n";

impl ExporterCommand {
    /// The exporter's own arguments (every subcommand has them).
    fn args_mut(&mut self) -> &mut Vec<String> {
        match self {
            ExporterCommand::Node { args }
            | ExporterCommand::Container { args }
            | ExporterCommand::Log { args }
            | ExporterCommand::Redis { args }
            | ExporterCommand::Blackbox { args }
            | ExporterCommand::Mysql { args }
            | ExporterCommand::Postgres { args } => args,
        }
    }
}

/// Takes `--web.config.file=FILE` (or `--web.config.file FILE`, or Go's single dash) off
/// `args` and loads it; no flag or an empty value means plain HTTP without authentication.
fn take_web_config(args: &mut Vec<String>) -> anyhow::Result<sextant_web::WebConfig> {
    let mut file = None;
    let mut idx = 0;
    while idx < args.len() {
        let body = args[idx].strip_prefix("--").or_else(|| args[idx].strip_prefix('-')).unwrap_or("");
        let value = if let Some(value) = body.strip_prefix("web.config.file=") {
            let value = value.to_string();
            args.remove(idx);
            value
        } else if body == "web.config.file" {
            anyhow::ensure!(idx + 1 < args.len(), "flag {}: expected a value", args[idx]);
            args.remove(idx);
            args.remove(idx)
        } else {
            idx += 1;
            continue;
        };
        file = if value.is_empty() { None } else { Some(value) };
    }
    match file {
        Some(file) => Ok(sextant_web::WebConfig::load_file(&file)?),
        None => Ok(sextant_web::WebConfig::default()),
    }
}

/// Serves `registry` on `listen_address` until Ctrl-C or SIGTERM (the Docker exporters).
fn serve_registry(
    name: &str,
    registry: sextant_exporters::Registry,
    listen_address: &str,
    telemetry_path: &str,
    web: &sextant_web::WebConfig,
) -> anyhow::Result<()> {
    let registry = Arc::new(registry);
    limit_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let address = bind_address(listen_address);
        let listener =
            tokio::net::TcpListener::bind(&address).await.with_context(|| format!("listening on {address}"))?;
        eprintln!("sextant {name} exporter listening on {}", listener.local_addr()?);
        let (_, errors) = registry.gather_with_errors().await;
        for (collector, error) in errors {
            eprintln!("collector {collector} failed: {error}");
        }
        let router = sextant_exporters::router(registry, telemetry_path);
        sextant_exporters::serve(listener, router, web, shutdown_signal()).await?;
        Ok(())
    })
}

/// `:9121` means every interface, as in Go.
fn bind_address(listen: &str) -> String {
    match listen.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => listen.to_string(),
    }
}

/// Serves `router` on `listen` with a one-worker runtime until Ctrl-C or SIGTERM.
fn serve_router(name: &str, listen: &str, router: axum::Router, web: &sextant_web::WebConfig) -> anyhow::Result<()> {
    limit_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(async move {
        let address = bind_address(listen);
        let listener =
            tokio::net::TcpListener::bind(&address).await.with_context(|| format!("listening on {address}"))?;
        eprintln!("sextant {name} exporter listening on {}", listener.local_addr()?);
        sextant_exporters::serve(listener, router, web, shutdown_signal()).await?;
        Ok(())
    })
}

/// Runs the chosen exporter until Ctrl-C or SIGTERM.
pub fn run(mut command: ExporterCommand) -> anyhow::Result<()> {
    let web = take_web_config(command.args_mut())?;
    match command {
        ExporterCommand::Container { args } => {
            if args.iter().any(|a| a == "--help" || a == "-h") {
                print!("{}{WEB_CONFIG_USAGE}", ContainerConfig::usage());
                return Ok(());
            }
            let config = ContainerConfig::from_args(args)?;
            serve_registry("container", config.registry()?, &config.listen_address, &config.telemetry_path, &web)
        }
        ExporterCommand::Log { args } => {
            if args.iter().any(|a| a == "--help" || a == "-h") {
                print!("{}{WEB_CONFIG_USAGE}", LogConfig::usage());
                return Ok(());
            }
            let config = LogConfig::from_args(args)?;
            serve_registry("log", config.registry()?, &config.listen_address, &config.telemetry_path, &web)
        }
        ExporterCommand::Blackbox { args } => {
            if args.iter().any(|a| a == "--help" || a == "-h") {
                print!("{}", sextant_exporters::BlackboxConfig::usage());
                return Ok(());
            }
            let config = sextant_exporters::BlackboxConfig::from_args(args)?;
            let listen = config.listen_address.clone();
            let exporter = sextant_exporters::BlackboxExporter::new(config);
            serve_router("blackbox", &listen, exporter.router(), &web)
        }
        ExporterCommand::Mysql { args } => {
            if args.iter().any(|a| a == "--help" || a == "-h") {
                print!("{}", sextant_exporters::MysqlConfig::usage());
                return Ok(());
            }
            let config = sextant_exporters::MysqlConfig::from_args(args)?;
            for warning in &config.warnings {
                eprintln!("warning: {warning}");
            }
            let listen = config.listen_address.clone();
            let exporter = sextant_exporters::MysqlExporter::new(config);
            serve_router("mysql", &listen, exporter.router(), &web)
        }
        ExporterCommand::Postgres { args } => {
            if args.iter().any(|a| a == "--help" || a == "-h") {
                print!("{}", sextant_exporters::PostgresConfig::usage());
                return Ok(());
            }
            let config = sextant_exporters::PostgresConfig::from_args(args)?;
            for warning in &config.warnings {
                eprintln!("warning: {warning}");
            }
            let listen = config.listen_address.clone();
            let exporter = sextant_exporters::PostgresExporter::new(config);
            serve_router("postgres", &listen, exporter.router(), &web)
        }
        ExporterCommand::Redis { args } => {
            if args.iter().any(|a| a == "--help" || a == "-h") {
                print!("{}", sextant_exporters::RedisConfig::usage());
                return Ok(());
            }
            let config = sextant_exporters::RedisConfig::from_args(args)?;
            for warning in &config.warnings {
                eprintln!("warning: {warning}");
            }
            let listen = config.listen_address.clone();
            let exporter = sextant_exporters::RedisExporter::new(config);
            serve_router("redis", &listen, exporter.router(), &web)
        }
        ExporterCommand::Node { args } => {
            if args.iter().any(|a| a == "--help" || a == "-h") {
                print!("{}{WEB_CONFIG_USAGE}", NodeConfig::usage());
                return Ok(());
            }
            let config = NodeConfig::from_args(args)?;
            for warning in &config.warnings {
                eprintln!("warning: {warning}");
            }
            let registry = Arc::new(config.registry()?);
            limit_malloc_arenas();
            // One async worker is plenty for an HTTP endpoint; collectors run on a small
            // blocking pool (a stuck collector holds at most one of its threads).
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .max_blocking_threads(BLOCKING_THREADS)
                .thread_keep_alive(std::time::Duration::from_secs(300))
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let address = match config.listen_address.strip_prefix(':') {
                    Some(port) => format!("0.0.0.0:{port}"),
                    None => config.listen_address.clone(),
                };
                let listener =
                    tokio::net::TcpListener::bind(&address).await.with_context(|| format!("listening on {address}"))?;
                eprintln!(
                    "sextant node exporter listening on {} (collectors: {})",
                    listener.local_addr()?,
                    config.collectors.join(", ")
                );
                // One scrape up front says which collectors fail here and why, as
                // node_exporter's log does on every scrape.
                let (_, errors) = registry.gather_with_errors().await;
                for (collector, error) in errors {
                    eprintln!("collector {collector} failed: {error}");
                }
                let router = sextant_exporters::router(registry, &config.telemetry_path);
                sextant_exporters::serve(listener, router, &web, shutdown_signal()).await?;
                Ok(())
            })
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

//! `sextant alertmanager ...`: without a subcommand, an Alertmanager server
//! (`--config.file`, `--storage.path`, `--web.listen-address`, as the Go binary spells them);
//! with one, the configuration tools of `amtool` (`check-config`, `config routes [show|test]`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use sextant_alerting::alertmanager::{classic_matcher, Config, MatchType, Route};
use sextant_model::Labels;

/// Alertmanager server and tools.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    server: ServerArgs,
}

/// The server's flags (Alertmanager's names; cluster and log flags accepted and ignored).
#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// Alertmanager configuration file.
    #[arg(long = "config.file", default_value = "alertmanager.yml")]
    config_file: PathBuf,
    /// Where silences and the notification log are kept.
    #[arg(long = "storage.path", default_value = "data/")]
    storage_path: PathBuf,
    /// Address to listen on for the API.
    #[arg(long = "web.listen-address", default_value = ":9093")]
    listen_address: String,
    /// The URL under which Alertmanager is reached (in notifications).
    #[arg(long = "web.external-url")]
    external_url: Option<String>,
    /// Ignored: Sextant's Alertmanager does not cluster.
    #[arg(long = "cluster.listen-address")]
    cluster_listen_address: Option<String>,
    /// Ignored.
    #[arg(long = "log.level")]
    log_level: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Validate alertmanager config files, as `amtool check-config`.
    CheckConfig {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show the routing tree, or test where alerts go, as `amtool config routes`.
    Routes(RoutesArgs),
}

#[derive(Debug, clap::Args)]
struct RoutesArgs {
    /// The alertmanager.yml to read.
    #[arg(long = "config.file", global = true)]
    config_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<RoutesCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum RoutesCommand {
    /// Print the routing tree (the default).
    Show,
    /// Print the receivers an alert with these labels goes to, comma-separated.
    Test {
        /// Fail unless the receivers are exactly this comma-separated list.
        #[arg(long = "verify.receivers")]
        verify_receivers: Option<String>,
        /// Print the tree of matching routes first.
        #[arg(long)]
        tree: bool,
        /// Alert labels as `name=value`.
        labels: Vec<String>,
    },
}

/// Runs the subcommand; a failed check exits with status 1, as amtool does.
pub fn run(args: Args) -> anyhow::Result<()> {
    let code = run_inner(args)?;
    if code != ExitCode::SUCCESS {
        std::process::exit(1);
    }
    Ok(())
}

fn run_inner(args: Args) -> anyhow::Result<ExitCode> {
    let Some(command) = args.command else {
        serve(args.server)?;
        return Ok(ExitCode::SUCCESS);
    };
    match command {
        Command::CheckConfig { files } => check_config(&files),
        Command::Routes(routes) => {
            let path = routes.config_file.context("--config.file is required")?;
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let config = Config::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
            match routes.command.unwrap_or(RoutesCommand::Show) {
                RoutesCommand::Show => {
                    println!("Routing tree:");
                    let mut out = String::from(".\n");
                    show_tree(&config.route, "", true, &mut out, &|r| slug(r, true, true));
                    println!("{out}");
                    Ok(ExitCode::SUCCESS)
                }
                RoutesCommand::Test { verify_receivers, tree, labels } => {
                    routes_test(&config, &labels, tree, verify_receivers.as_deref())
                }
            }
        }
    }
}

/// Runs the Alertmanager until SIGINT/SIGTERM; SIGHUP reloads the configuration.
fn serve(args: ServerArgs) -> anyhow::Result<()> {
    use std::sync::Arc;

    use sextant_alerting::alertmanager::Dispatcher;
    use sextant_api::alertmanager::{router, Alertmanager};
    use sextant_model::SystemClock;

    let text = std::fs::read_to_string(&args.config_file)
        .with_context(|| format!("reading {}", args.config_file.display()))?;
    let mut config = Config::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.config_file.display()))?;
    config.resolve_paths(args.config_file.parent().unwrap_or(Path::new(".")));
    config.load_templates().map_err(|e| anyhow::anyhow!("{}: {e}", args.config_file.display()))?;
    let dispatcher = Dispatcher::open(config, &args.storage_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let listen = if args.listen_address.starts_with(':') {
        format!("0.0.0.0{}", args.listen_address)
    } else {
        args.listen_address
    };
    let external_url = args.external_url.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
        let port = listen.rsplit(':').next().unwrap_or("9093");
        format!("http://{host}:{port}")
    });
    let am = Alertmanager::with_http(dispatcher, Arc::new(SystemClock), &external_url, Some(args.config_file));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("listening on {listen}"))?;
        eprintln!("sextant alertmanager: listening on {}", listener.local_addr()?);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let driver = tokio::spawn(Arc::clone(&am).run(stop_rx.clone()));
        let reloader = {
            let am = Arc::clone(&am);
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
                loop {
                    tokio::select! {
                        _ = hup.recv() => if let Err(e) = am.reload() { eprintln!("sextant alertmanager: reload: {e}") },
                        _ = stop.changed() => return,
                    }
                }
            })
        };
        let mut stop = stop_rx;
        let server = axum::serve(listener, router(am)).with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        });
        let server = tokio::spawn(async move { server.await });
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = stop_tx.send(true);
        server.await??;
        driver.await?;
        reloader.await?;
        Ok(())
    })
}

fn check_config(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut failed = 0;
    for path in files {
        print!("Checking '{}'", path.display());
        let loaded = std::fs::read_to_string(path)
            .map_err(|e| format!("open {}: {e}", path.display()))
            .and_then(|text| Config::parse(&text).map_err(|e| e.message().to_string()));
        match loaded {
            Err(message) => {
                println!("  FAILED: {message}");
                failed += 1;
            }
            Ok(mut config) => {
                config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
                println!("  SUCCESS");
                println!("Found:");
                println!(" - global config");
                println!(" - route");
                println!(" - {} inhibit rules", config.inhibit_rules.len());
                println!(" - {} receivers", config.receivers.len());
                println!(" - {} templates", config.templates.len());
                if !config.templates.is_empty() {
                    match config.load_templates() {
                        Ok(_) => println!("  SUCCESS"),
                        Err(e) => {
                            println!("  FAILED: {e}");
                            failed += 1;
                        }
                    }
                }
            }
        }
        println!();
    }
    if failed > 0 {
        eprintln!("sextant: error: failed to validate {failed} file(s)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn routes_test(config: &Config, args: &[String], tree: bool, verify: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut pairs = Vec::new();
    for arg in args {
        let m = classic_matcher(arg).map_err(|e| anyhow::anyhow!("Failed to parse labels: {e}"))?;
        if m.kind != MatchType::Equal {
            bail!("Failed to parse labels: labels must be specified as key=value pairs");
        }
        pairs.push((m.name, m.value));
    }
    let labels = Labels::from_pairs(pairs);
    if tree {
        println!("Matching routes:");
        let mut out = String::from(".\n");
        matching_tree(&config.route, &labels, "", true, &mut out);
        println!("{out}");
        println!();
    }
    let receivers: Vec<&str> = config.route.matches(&labels).iter().map(|r| r.opts.receiver.as_str()).collect();
    let slug = receivers.join(",");
    println!("{slug}");
    if let Some(expected) = verify {
        if !expected.is_empty() && expected != slug {
            println!("WARNING: Expected receivers did not match resolved receivers.");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn slug(route: &Route, show_continue: bool, show_receiver: bool) -> String {
    let mut s = if route.matchers.is_empty() { "default-route".to_string() } else { route.matchers.to_string() };
    if route.continue_matching && show_continue {
        s.push_str("  continue: true");
    }
    if show_receiver {
        s.push_str("  receiver: ");
        s.push_str(&route.opts.receiver);
    }
    s
}

/// One branch in `treeprint`'s style (`├── `, `└── `, and `│` + two no-break spaces + a space).
fn branch(label: &str, prefix: &str, last: bool, out: &mut String) -> String {
    out.push_str(prefix);
    out.push_str(if last { "└── " } else { "├── " });
    out.push_str(label);
    out.push('\n');
    format!("{prefix}{}", if last { "    " } else { "│\u{a0}\u{a0} " })
}

fn show_tree(route: &Route, prefix: &str, last: bool, out: &mut String, label: &dyn Fn(&Route) -> String) {
    let child_prefix = branch(&label(route), prefix, last, out);
    for (i, child) in route.routes.iter().enumerate() {
        show_tree(child, &child_prefix, i + 1 == route.routes.len(), out, label);
    }
}

/// The routes an alert walks through, as `amtool config routes test --tree` prints them.
fn matching_tree(route: &Route, labels: &Labels, prefix: &str, last: bool, out: &mut String) {
    let mut children = Vec::new();
    for child in &route.routes {
        if child.matchers.matches(labels) {
            children.push(child);
            if !child.continue_matching {
                break;
            }
        }
    }
    let label = slug(route, false, children.is_empty());
    let child_prefix = branch(&label, prefix, last, out);
    for (i, child) in children.iter().enumerate() {
        matching_tree(child, labels, &child_prefix, i + 1 == children.len(), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees() {
        let config = Config::parse(
            "route:\n  receiver: d\n  routes:\n  - {matchers: [a=1], receiver: x, continue: true}\n  - {matchers: [b=2], receiver: y}\nreceivers: [{name: d}, {name: x}, {name: y}]\n",
        )
        .unwrap();
        let mut out = String::new();
        show_tree(&config.route, "", true, &mut out, &|r| slug(r, true, true));
        assert_eq!(
            out,
            "└── default-route  receiver: d\n    ├── {a=\"1\"}  continue: true  receiver: x\n    └── {b=\"2\"}  receiver: y\n"
        );
        let mut out = String::new();
        matching_tree(&config.route, &Labels::from_pairs([("a", "1"), ("b", "2")]), "", true, &mut out);
        assert_eq!(out, "└── default-route\n    ├── {a=\"1\"}  receiver: x\n    └── {b=\"2\"}  receiver: y\n");
    }
}

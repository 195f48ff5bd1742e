//! `sextant stack single-host`: the server (TSDB, API, scraping, rules), the node exporter and
//! the log exporter in one process, configured from `examples/stacks/single-host/`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args as _, FromArgMatches as _};
use sextant_exporters::{LogConfig, NodeConfig};

/// The stack's files, built into the binary (`--stack.dir` reads them from a directory instead).
const SINGLE_HOST: [(&str, &str); 2] = [
    ("prometheus.yml", include_str!("../stacks/single-host/prometheus.yml")),
    ("host-alerts.yml", include_str!("../stacks/single-host/host-alerts.yml")),
];

/// Which stack to run.
#[derive(Debug, clap::Subcommand)]
pub enum StackCommand {
    /// Server on 127.0.0.1:9090, node exporter on 127.0.0.1:9100, log exporter on 127.0.0.1:9333.
    SingleHost(SingleHostArgs),
}

#[derive(Debug, clap::Args)]
pub struct SingleHostArgs {
    /// Where the TSDB (`tsdb/`) and the effective configuration (`config/`) live.
    #[arg(long = "data.dir", default_value = "data/single-host")]
    data_dir: PathBuf,
    /// Read prometheus.yml and host-alerts.yml from this directory instead of the built-in copies.
    #[arg(long = "stack.dir")]
    stack_dir: Option<PathBuf>,
    /// Address of the server (query API, UI endpoints, /metrics).
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9090")]
    listen_address: String,
    /// Address of the node exporter.
    #[arg(long = "node.listen-address", default_value = "127.0.0.1:9100")]
    node_address: String,
    /// Address of the log exporter.
    #[arg(long = "log.listen-address", default_value = "127.0.0.1:9333")]
    log_address: String,
}

pub fn run(command: StackCommand) -> anyhow::Result<()> {
    let StackCommand::SingleHost(args) = command;
    let config_dir = args.data_dir.join("config");
    std::fs::create_dir_all(&config_dir).with_context(|| format!("creating {}", config_dir.display()))?;
    // The stack's files name the default addresses; the listen flags replace them.
    for (name, builtin) in SINGLE_HOST {
        let text = match &args.stack_dir {
            Some(dir) => {
                let path = dir.join(name);
                std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?
            }
            None => builtin.to_string(),
        };
        let text = text
            .replace("127.0.0.1:9090", &args.listen_address)
            .replace("127.0.0.1:9100", &args.node_address)
            .replace("127.0.0.1:9333", &args.log_address);
        let path = config_dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }

    let config_file = config_dir.join("prometheus.yml");
    let tsdb_path = args.data_dir.join("tsdb");
    let argv = [
        "server".to_string(),
        format!("--config.file={}", config_file.display()),
        format!("--storage.tsdb.path={}", tsdb_path.display()),
        format!("--web.listen-address={}", args.listen_address),
        "--web.enable-lifecycle".to_string(),
    ];
    let command = crate::server::ServerArgs::augment_args(clap::Command::new("server"));
    let server_args = crate::server::ServerArgs::from_arg_matches(&command.try_get_matches_from(argv)?)?;

    let node = NodeConfig::from_args([format!("--web.listen-address={}", args.node_address)])?;
    for warning in &node.warnings {
        eprintln!("warning: {warning}");
    }
    let log = LogConfig::from_args([format!("--web.listen-address={}", args.log_address)])?;
    let node_registry = Arc::new(node.registry()?);
    let log_registry = Arc::new(log.registry()?);

    crate::server::run_with(server_args, move |api| async move {
        let node_listener = tokio::net::TcpListener::bind(&args.node_address)
            .await
            .with_context(|| format!("listening on --node.listen-address={}", args.node_address))?;
        let log_listener = tokio::net::TcpListener::bind(&args.log_address)
            .await
            .with_context(|| format!("listening on --log.listen-address={}", args.log_address))?;
        let (node_addr, log_addr) = (node_listener.local_addr()?, log_listener.local_addr()?);
        let web = sextant_web::WebConfig::default();
        for (name, listener, registry, path) in [
            ("node", node_listener, node_registry, node.telemetry_path.clone()),
            ("log", log_listener, log_registry, log.telemetry_path.clone()),
        ] {
            let router = sextant_exporters::router(registry, &path);
            let serving = sextant_exporters::serve(listener, router, &web, crate::server::shutdown_signal());
            tokio::spawn(async move {
                if let Err(e) = serving.await {
                    eprintln!("sextant stack: {name} exporter: {e}");
                }
            });
        }
        println!("Sextant single-host stack:");
        println!("  query API      http://{api}/api/v1/query?query=up");
        println!("  targets        http://{api}/api/v1/targets");
        println!("  alerts         http://{api}/api/v1/alerts");
        println!("  rules          http://{api}/api/v1/rules");
        println!("  node exporter  http://{node_addr}{}", node.telemetry_path);
        println!("  log exporter   http://{log_addr}{}", log.telemetry_path);
        println!("  data           {}", args.data_dir.display());
        Ok(())
    })
}

//! `sextant stack NAME|DIR`: every component of one monitoring stack in one process, from a
//! directory of ordinary configuration files.
//!
//! What runs follows from what the directory holds:
//!
//! - `prometheus.yml`: the server (TSDB, HTTP API, scraping, rules), or the agent (scraping and
//!   durable remote write, no TSDB) when `stack.yml` has an `agent:` section;
//! - `web.yml`: TLS and basic auth in front of the server (Prometheus' web config format);
//! - `alertmanager.yml`: an Alertmanager (API v2 on its own address, silences and the
//!   notification log under `DATA_DIR/alertmanager`);
//! - `blackbox.yml`: the blackbox exporter with that module file;
//! - `stack.yml` (optional): the addresses, the exporters and their flags, the demo services,
//!   further servers (federation) and extra server or agent flags.
//!
//! The files are written to `DATA_DIR/config/` with two substitutions: every default address
//! of `stack.yml`'s `addresses` is replaced by the one chosen with `--address NAME=HOST:PORT`
//! (so the files stay ordinary Prometheus files naming real addresses), and `${VAR}` or
//! `${VAR:-default}` (upper-case names) is replaced by the environment variable, which is how
//! secrets and site settings (SMTP host, user, password file; TLS files; bcrypt hashes) get in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use serde::Deserialize;

/// One built-in stack: its name and its runtime files (Grafana files and README stay on disk).
type Builtin = (&'static str, &'static [(&'static str, &'static str)]);

macro_rules! builtin {
    ($stack:literal: $($file:literal),* $(,)?) => {
        ($stack, &[$(($file, include_str!(concat!("../stacks/", $stack, "/", $file)))),*])
    };
}

/// The stacks built into the binary, so `sextant stack NAME` works from any directory.
const BUILTIN: &[Builtin] = &[
    builtin!("single-host": "stack.yml", "prometheus.yml", "host-alerts.yml", "alertmanager.yml"),
    builtin!("hub": "stack.yml", "prometheus.yml", "hub-rules.yml", "alertmanager.yml", "web.yml"),
    builtin!("edge": "stack.yml", "prometheus.yml"),
    builtin!("app": "stack.yml", "prometheus.yml", "app-alerts.yml", "alertmanager.yml"),
    builtin!(
        "enterprise": "stack.yml",
        "prometheus.yml",
        "regional.yml",
        "recording-rules.yml",
        "alerts.yml",
        "alertmanager.yml",
        "blackbox.yml",
    ),
    builtin!("microservices": "stack.yml", "prometheus.yml", "service-rules.yml", "alertmanager.yml"),
];

/// Default addresses of the components (a stack's `addresses` may change them).
const DEFAULT_ADDRESSES: [(&str, &str); 10] = [
    ("server", "127.0.0.1:9090"),
    ("agent", "127.0.0.1:9090"),
    ("alertmanager", "127.0.0.1:9093"),
    ("node", "127.0.0.1:9100"),
    ("log", "127.0.0.1:9333"),
    ("container", "127.0.0.1:8080"),
    ("mysql", "127.0.0.1:9104"),
    ("redis", "127.0.0.1:9121"),
    ("postgres", "127.0.0.1:9187"),
    ("blackbox", "127.0.0.1:9115"),
];

/// Run a stack.
#[derive(Debug, clap::Args)]
pub struct StackArgs {
    /// A built-in stack (single-host, hub, edge, app, enterprise, microservices) or a
    /// directory holding prometheus.yml and the other files.
    #[arg(default_value = "single-host")]
    stack: String,
    /// Where the TSDB, the Alertmanager state and the effective configuration (`config/`) live
    /// (default: data/NAME).
    #[arg(long = "data.dir")]
    data_dir: Option<PathBuf>,
    /// Listen on (or talk to) another address than the stack's default for NAME, e.g.
    /// `--address server=127.0.0.1:19090`; repeatable.
    #[arg(long = "address", value_name = "NAME=HOST:PORT")]
    addresses: Vec<String>,
    /// Same as --address server=ADDR (or agent=ADDR for an agent stack).
    #[arg(long = "web.listen-address")]
    listen_address: Option<String>,
    /// Same as --address node=ADDR.
    #[arg(long = "node.listen-address")]
    node_address: Option<String>,
    /// Same as --address log=ADDR.
    #[arg(long = "log.listen-address")]
    log_address: Option<String>,
    /// Read the stack from this directory (same as giving the directory as STACK).
    #[arg(long = "stack.dir")]
    stack_dir: Option<PathBuf>,
}

/// `stack.yml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    /// One line saying what the stack is.
    #[serde(default)]
    description: String,
    /// Name → default address; every occurrence of the address in the stack's files follows
    /// `--address NAME=...`.
    #[serde(default)]
    addresses: BTreeMap<String, String>,
    /// Extra `sextant server` flags.
    #[serde(default)]
    server: Option<Flags>,
    /// Present: run `sextant agent` instead of the server, with these extra flags.
    #[serde(default)]
    agent: Option<Flags>,
    /// Exporter name (node, log, container, mysql, redis, postgres, blackbox) → settings.
    #[serde(default)]
    exporters: BTreeMap<String, ExporterSettings>,
    /// Instrumented demo services (see `services.rs`), each listening on its address.
    #[serde(default)]
    services: Vec<String>,
    /// Further servers in the same process, e.g. one that the main server federates from.
    #[serde(default)]
    servers: Vec<ExtraServer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Flags {
    #[serde(default)]
    args: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExporterSettings {
    /// The exporter's own flags (as `sextant exporter NAME` takes them), without the listen address.
    #[serde(default)]
    args: Vec<String>,
    /// The data source (MySQL: go-sql-driver DSN; PostgreSQL: URL), as DATA_SOURCE_NAME.
    #[serde(default)]
    dsn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtraServer {
    /// Its address name (in `addresses`) and data directory name.
    name: String,
    /// Its prometheus.yml, a file of this stack.
    config: String,
    #[serde(default)]
    args: Vec<String>,
}

/// The stack as read: its name, where it came from, and its files.
struct Source {
    name: String,
    origin: String,
    files: Vec<(String, String)>,
}

fn load_source(args: &StackArgs) -> anyhow::Result<Source> {
    let dir = match &args.stack_dir {
        Some(dir) => Some(dir.clone()),
        // A built-in name wins over a directory of the same name in the working directory
        // (`./hub` names the directory).
        None if args.stack.contains('/')
            || (Path::new(&args.stack).is_dir() && !BUILTIN.iter().any(|(name, _)| *name == args.stack)) =>
        {
            Some(PathBuf::from(&args.stack))
        }
        None => None,
    };
    let Some(dir) = dir else {
        let Some((name, files)) = BUILTIN.iter().find(|(name, _)| *name == args.stack) else {
            let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            bail!("no stack {:?}: give a directory, or one of {}", args.stack, names.join(", "));
        };
        return Ok(Source {
            name: name.to_string(),
            origin: format!("built-in (examples/stacks/{name})"),
            files: files.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect(),
        });
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading stack directory {}", dir.display()))? {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type()?.is_file() || file_name.starts_with("README") || file_name.starts_with('.') {
            continue;
        }
        let text =
            std::fs::read_to_string(entry.path()).with_context(|| format!("reading {}", entry.path().display()))?;
        files.push((file_name, text));
    }
    files.sort();
    anyhow::ensure!(
        files.iter().any(|(n, _)| n == "prometheus.yml"),
        "{}: a stack directory needs a prometheus.yml",
        dir.display()
    );
    let canonical = dir.canonicalize().unwrap_or(dir.clone());
    let name = canonical.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "stack".into());
    Ok(Source { name, origin: dir.display().to_string(), files })
}

/// Replaces `${NAME}` and `${NAME:-default}` (NAME upper-case letters, digits and `_`, not
/// starting with a digit) with `lookup(NAME)`; anything else, such as relabeling's `${1}`, is
/// left alone. An unset variable without a default is an error naming it.
fn expand_env(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len =
            after.find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')).unwrap_or(after.len());
        let name = &after[..name_len];
        let valid_name = !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit());
        let tail = &after[name_len..];
        let (default, consumed) = if let Some(d) = tail.strip_prefix(":-") {
            match d.find('}') {
                Some(end) => (Some(&d[..end]), name_len + 2 + end + 1),
                None => (None, usize::MAX),
            }
        } else if tail.starts_with('}') {
            (None, name_len + 1)
        } else {
            (None, usize::MAX)
        };
        if !valid_name || consumed == usize::MAX {
            out.push_str("${");
            rest = after;
            continue;
        }
        match (lookup(name), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Replaces each `from` address of `map` with its `to`, in one pass (a replacement is never
/// replaced again), longest `from` first where they overlap.
fn replace_addresses(text: &str, map: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = map.iter().filter(|(from, to)| from != to && !from.is_empty()).collect();
    sorted.sort_by_key(|entry| std::cmp::Reverse(entry.0.len()));
    let mut out = String::with_capacity(text.len());
    let mut idx = 0;
    'outer: while idx < text.len() {
        for (from, to) in &sorted {
            if text[idx..].starts_with(from.as_str()) {
                // Not in the middle of a longer port number ("127.0.0.1:90901").
                let next = text[idx + from.len()..].chars().next();
                if !next.is_some_and(|c| c.is_ascii_digit()) {
                    out.push_str(to);
                    idx += from.len();
                    continue 'outer;
                }
            }
        }
        let c = text[idx..].chars().next().unwrap_or(' ');
        out.push(c);
        idx += c.len_utf8();
    }
    out
}

fn parse_manifest(text: &str) -> anyhow::Result<Manifest> {
    if text.trim().is_empty() {
        return Ok(Manifest::default());
    }
    serde_yaml_ng::from_str(text).map_err(|e| anyhow::anyhow!("stack.yml: {e}"))
}

/// The stack's addresses: the defaults, then `stack.yml`, then the flags. Returns name →
/// (default, chosen).
fn addresses(args: &StackArgs, manifest: &Manifest) -> anyhow::Result<BTreeMap<String, (String, String)>> {
    let mut map: BTreeMap<String, (String, String)> =
        DEFAULT_ADDRESSES.iter().map(|(n, a)| (n.to_string(), (a.to_string(), a.to_string()))).collect();
    for (name, addr) in &manifest.addresses {
        map.insert(name.clone(), (addr.clone(), addr.clone()));
    }
    let mut chosen: Vec<(String, String)> = Vec::new();
    for spec in &args.addresses {
        let Some((name, addr)) = spec.split_once('=') else { bail!("--address {spec:?}: expected NAME=HOST:PORT") };
        chosen.push((name.to_string(), addr.to_string()));
    }
    let main = if manifest.agent.is_some() { "agent" } else { "server" };
    for (name, flag) in [(main, &args.listen_address), ("node", &args.node_address), ("log", &args.log_address)] {
        if let Some(addr) = flag {
            chosen.push((name.to_string(), addr.clone()));
        }
    }
    for (name, addr) in chosen {
        let Some(entry) = map.get_mut(&name) else {
            let names: Vec<&String> = map.keys().collect();
            bail!("--address {name}=...: the stack has no address {name:?} (it has {names:?})");
        };
        entry.1 = addr;
    }
    Ok(map)
}

/// `{data}` and `{config}` in a flag stand for the data and configuration directories.
fn placeholders(arg: &str, data_dir: &Path, config_dir: &Path) -> String {
    arg.replace("{data}", &data_dir.display().to_string()).replace("{config}", &config_dir.display().to_string())
}

/// Everything `run` needs once the files are written.
struct Plan {
    name: String,
    origin: String,
    data_dir: PathBuf,
    config_dir: PathBuf,
    manifest: Manifest,
    addresses: BTreeMap<String, (String, String)>,
    files: Vec<String>,
}

impl Plan {
    fn address(&self, name: &str) -> anyhow::Result<String> {
        match self.addresses.get(name) {
            Some((_, addr)) => Ok(addr.clone()),
            None => bail!("stack.yml: no address for {name:?}; add it under addresses"),
        }
    }

    fn has(&self, file: &str) -> bool {
        self.files.iter().any(|f| f == file)
    }
}

fn prepare(args: &StackArgs) -> anyhow::Result<Plan> {
    let source = load_source(args)?;
    let env = |name: &str| std::env::var(name).ok();
    let raw_manifest = source.files.iter().find(|(n, _)| n == "stack.yml").map(|(_, t)| t.as_str()).unwrap_or("");
    let manifest = parse_manifest(&expand_env(raw_manifest, &env).map_err(|e| anyhow::anyhow!("stack.yml: {e}"))?)?;
    let addresses = addresses(args, &manifest)?;
    let replacements: Vec<(String, String)> = addresses.values().cloned().collect();

    let data_dir = args.data_dir.clone().unwrap_or_else(|| PathBuf::from("data").join(&source.name));
    let config_dir = data_dir.join("config");
    std::fs::create_dir_all(&config_dir).with_context(|| format!("creating {}", config_dir.display()))?;
    let mut manifest = manifest;
    let mut files = Vec::new();
    for (name, text) in &source.files {
        let text = replace_addresses(text, &replacements);
        let text = expand_env(&text, &env).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        if name == "stack.yml" {
            manifest = parse_manifest(&text)?;
        }
        let path = config_dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        files.push(name.clone());
    }
    // Absolute, so that the components do not depend on the working directory.
    let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
    let config_dir = data_dir.join("config");
    Ok(Plan { name: source.name, origin: source.origin, data_dir, config_dir, manifest, addresses, files })
}

/// Parses `argv` (program name first) as `T`'s flags.
fn parse_flags<T: clap::Args + clap::FromArgMatches>(argv: Vec<String>) -> anyhow::Result<T> {
    let command = T::augment_args(clap::Command::new("sextant"));
    Ok(T::from_arg_matches(&command.try_get_matches_from(argv)?)?)
}

pub fn run(args: StackArgs) -> anyhow::Result<()> {
    let plan = prepare(&args)?;
    anyhow::ensure!(plan.has("prometheus.yml"), "the stack has no prometheus.yml");
    let config_file = plan.config_dir.join("prometheus.yml");
    let extra_args = |plan: &Plan, flags: &Option<Flags>| -> Vec<String> {
        flags.iter().flat_map(|f| f.args.iter()).map(|a| placeholders(a, &plan.data_dir, &plan.config_dir)).collect()
    };

    // Further servers run on threads of their own (each has its runtime and stops on the
    // same signals).
    let mut extra = Vec::new();
    for server in &plan.manifest.servers {
        let mut argv = vec![
            "server".to_string(),
            format!("--config.file={}", plan.config_dir.join(&server.config).display()),
            format!("--storage.tsdb.path={}", plan.data_dir.join(&server.name).display()),
            format!("--web.listen-address={}", plan.address(&server.name)?),
            "--web.enable-lifecycle".to_string(),
        ];
        argv.extend(server.args.iter().map(|a| placeholders(a, &plan.data_dir, &plan.config_dir)));
        let server_args: crate::server::ServerArgs = parse_flags(argv)?;
        let name = server.name.clone();
        extra.push(std::thread::Builder::new().name(format!("server-{name}")).spawn(move || {
            let result = crate::server::run(server_args);
            if let Err(e) = &result {
                // A stack with a missing part is not the stack: stop (at start, this
                // is a bad file or a busy port).
                eprintln!("sextant stack: server {name}: {e:#}");
                std::process::exit(1);
            }
            result
        })?);
    }

    let plan = Arc::new(plan);
    let result = if plan.manifest.agent.is_some() {
        let mut argv = vec![
            "agent".to_string(),
            format!("--config.file={}", config_file.display()),
            format!("--storage.agent.path={}", plan.data_dir.join("agent").display()),
            format!("--web.listen-address={}", plan.address("agent")?),
        ];
        argv.extend(extra_args(&plan, &plan.manifest.agent));
        let agent_args: crate::agent::AgentArgs = parse_flags(argv)?;
        let started = Arc::clone(&plan);
        crate::agent::run_with(agent_args, move |addr| start_components(started, addr, false))
    } else {
        let mut argv = vec![
            "server".to_string(),
            format!("--config.file={}", config_file.display()),
            format!("--storage.tsdb.path={}", plan.data_dir.join("tsdb").display()),
            format!("--web.listen-address={}", plan.address("server")?),
            "--web.enable-lifecycle".to_string(),
        ];
        let mut tls = false;
        if plan.has("web.yml") {
            let web = plan.config_dir.join("web.yml");
            tls = sextant_web::WebConfig::load_file(&web).with_context(|| format!("{}", web.display()))?.tls.is_some();
            argv.push(format!("--web.config.file={}", web.display()));
        }
        argv.extend(extra_args(&plan, &plan.manifest.server));
        let server_args: crate::server::ServerArgs = parse_flags(argv)?;
        let started = Arc::clone(&plan);
        crate::server::run_with(server_args, move |addr| start_components(started, addr, tls))
    };
    result?;
    for handle in extra {
        match handle.join() {
            Ok(r) => r?,
            Err(_) => bail!("a server thread panicked"),
        }
    }
    Ok(())
}

/// Binds `addr` with a message naming the component.
async fn bind(what: &str, addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("{what}: listening on {addr}"))
}

/// Runs `serving` as a task that reports its error.
fn spawn_serving<F, E>(what: String, serving: F)
where
    F: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    tokio::spawn(async move {
        if let Err(e) = serving.await {
            eprintln!("sextant stack: {what}: {e}");
        }
    });
}

/// Starts the exporters, the Alertmanager and the services inside the main component's
/// runtime, then prints the URLs (`main` is the server's or agent's address).
async fn start_components(plan: Arc<Plan>, main: std::net::SocketAddr, tls: bool) -> anyhow::Result<()> {
    let mut urls: Vec<(String, String)> = Vec::new();
    let scheme = if tls { "https" } else { "http" };
    if plan.manifest.agent.is_some() {
        urls.push(("agent targets".into(), format!("http://{main}/api/v1/targets")));
        urls.push(("agent metrics".into(), format!("http://{main}/metrics")));
    } else {
        urls.push(("query API".into(), format!("{scheme}://{main}/api/v1/query?query=up")));
        urls.push(("targets".into(), format!("{scheme}://{main}/api/v1/targets")));
        urls.push(("alerts".into(), format!("{scheme}://{main}/api/v1/alerts")));
        urls.push(("rules".into(), format!("{scheme}://{main}/api/v1/rules")));
        urls.push(("remote write".into(), format!("{scheme}://{main}/api/v1/write")));
    }
    for server in &plan.manifest.servers {
        let addr = plan.address(&server.name)?;
        urls.push((format!("server {}", server.name), format!("http://{addr}/api/v1/query?query=up")));
    }

    if plan.has("alertmanager.yml") {
        let addr = plan.address("alertmanager")?;
        let listener = bind("alertmanager", &addr).await?;
        let bound = listener.local_addr()?;
        start_alertmanager(&plan, listener, format!("http://{bound}"))?;
        urls.push(("alertmanager".into(), format!("http://{bound}/api/v2/alerts")));
    }

    let mut exporters: Vec<(String, ExporterSettings)> = Vec::new();
    for (name, settings) in &plan.manifest.exporters {
        exporters.push((name.clone(), ExporterSettings { args: settings.args.clone(), dsn: settings.dsn.clone() }));
    }
    if plan.has("blackbox.yml") && !exporters.iter().any(|(n, _)| n == "blackbox") {
        exporters.push(("blackbox".into(), ExporterSettings::default()));
    }
    for (name, settings) in exporters {
        let addr = plan.address(&name)?;
        let listener = bind(&format!("{name} exporter"), &addr).await?;
        let bound = listener.local_addr()?;
        let path = start_exporter(&plan, &name, settings, listener)?;
        urls.push((format!("{name} exporter"), format!("http://{bound}{path}")));
    }

    if !plan.manifest.services.is_empty() {
        let mut peers = BTreeMap::new();
        for name in &plan.manifest.services {
            peers.insert(name.clone(), plan.address(name)?);
        }
        let peers = Arc::new(peers);
        for name in &plan.manifest.services {
            let listener = bind(&format!("service {name}"), &peers[name]).await?;
            let bound = listener.local_addr()?;
            crate::services::spawn(name, listener, Arc::clone(&peers))?;
            urls.push((format!("service {name}"), format!("http://{bound}/metrics")));
        }
    }

    let title = if plan.manifest.description.is_empty() {
        format!("Sextant stack {} ({}):", plan.name, plan.origin)
    } else {
        format!("Sextant stack {}: {} ({}):", plan.name, plan.manifest.description, plan.origin)
    };
    println!("{title}");
    let width = urls.iter().map(|(what, _)| what.len()).max().unwrap_or(0);
    for (what, url) in &urls {
        println!("  {what:width$}  {url}");
    }
    println!("  {:width$}  {}", "configuration", plan.config_dir.display());
    println!("  {:width$}  {}", "data", plan.data_dir.display());
    println!("Stop with Ctrl-C or SIGTERM.");
    Ok(())
}

fn start_alertmanager(plan: &Plan, listener: tokio::net::TcpListener, external_url: String) -> anyhow::Result<()> {
    use sextant_alerting::alertmanager::{Config, Dispatcher};
    use sextant_api::alertmanager::{router, Alertmanager};

    let path = plan.config_dir.join("alertmanager.yml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut config = Config::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    config.resolve_paths(&plan.config_dir);
    let storage = plan.data_dir.join("alertmanager");
    let dispatcher = Dispatcher::open(config, &storage).map_err(|e| anyhow::anyhow!("{}: {e}", storage.display()))?;
    let am = Alertmanager::with_http(dispatcher, Arc::new(sextant_model::SystemClock), &external_url, Some(path));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let driver = tokio::spawn(Arc::clone(&am).run(stop_rx));
    tokio::spawn(async move {
        let served = axum::serve(listener, router(am)).with_graceful_shutdown(crate::server::shutdown_signal()).await;
        if let Err(e) = served {
            eprintln!("sextant stack: alertmanager: {e}");
        }
        let _ = stop_tx.send(true);
        let _ = driver.await;
    });
    Ok(())
}

/// Starts exporter `name` on `listener`; returns its metrics path.
fn start_exporter(
    plan: &Plan,
    name: &str,
    settings: ExporterSettings,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<String> {
    use sextant_exporters as ex;

    let mut args: Vec<String> =
        settings.args.iter().map(|a| placeholders(a, &plan.data_dir, &plan.config_dir)).collect();
    let web = sextant_web::WebConfig::default();
    let what = format!("{name} exporter");
    let registry_router = |registry: ex::Registry, path: &str| ex::router(Arc::new(registry), path);
    let (router, path) = match name {
        "node" => {
            let config = ex::NodeConfig::from_args(&args).with_context(|| what.clone())?;
            for warning in &config.warnings {
                eprintln!("{what}: warning: {warning}");
            }
            (registry_router(config.registry()?, &config.telemetry_path), config.telemetry_path.clone())
        }
        "log" => {
            let config = ex::LogConfig::from_args(&args).with_context(|| what.clone())?;
            (registry_router(config.registry()?, &config.telemetry_path), config.telemetry_path.clone())
        }
        "container" => {
            let config = ex::ContainerConfig::from_args(&args).with_context(|| what.clone())?;
            (registry_router(config.registry()?, &config.telemetry_path), config.telemetry_path.clone())
        }
        "mysql" => {
            let mut config = ex::MysqlConfig::from_args(&args).with_context(|| what.clone())?;
            if let Some(dsn) = &settings.dsn {
                config = config.with_dsn(dsn).with_context(|| format!("{what}: dsn"))?;
            } else {
                for warning in &config.warnings {
                    eprintln!("{what}: warning: {warning}");
                }
            }
            (ex::MysqlExporter::new(config).router(), "/metrics".to_string())
        }
        "postgres" => {
            let mut config = ex::PostgresConfig::from_args(&args).with_context(|| what.clone())?;
            if let Some(dsn) = &settings.dsn {
                config = config.with_dsn(dsn.clone());
            }
            (ex::PostgresExporter::new(config).router(), "/metrics".to_string())
        }
        "redis" => {
            let config = ex::RedisConfig::from_args(&args).with_context(|| what.clone())?;
            (ex::RedisExporter::new(config).router(), "/metrics".to_string())
        }
        "blackbox" => {
            if !args.iter().any(|a| a.contains("config.file")) {
                args.push(format!("--config.file={}", plan.config_dir.join("blackbox.yml").display()));
            }
            let config = ex::BlackboxConfig::from_args(&args).with_context(|| what.clone())?;
            (ex::BlackboxExporter::new(config).router(), "/probe".to_string())
        }
        other => {
            bail!("stack.yml: unknown exporter {other:?} (node, log, container, mysql, redis, postgres, blackbox)")
        }
    };
    spawn_serving(what, ex::serve(listener, router, &web, crate::server::shutdown_signal()));
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_expansion() {
        let env = |name: &str| match name {
            "SMTP_HOST" => Some("mail:25".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let check = |input: &str, expected: Result<&str, &str>| {
            assert_eq!(expand_env(input, &env), expected.map(str::to_string).map_err(str::to_string), "{input}");
        };
        check("host: ${SMTP_HOST}", Ok("host: mail:25"));
        check("host: ${SMTP_HOST:-x:1}", Ok("host: mail:25"));
        check("user: '${SMTP_USER:-}'", Ok("user: ''"));
        check("to: ${TO:-root@localhost} ${EMPTY}.", Ok("to: root@localhost ."));
        check("replacement: ${1}:9100 $1 ${name}", Ok("replacement: ${1}:9100 $1 ${name}"));
        check("${UNTERMINATED", Ok("${UNTERMINATED"));
        check("$${X:-a}", Ok("$a"));
        check("a ${MISSING} b", Err("environment variable MISSING is not set"));
    }

    #[test]
    fn address_replacement() {
        let map = vec![
            ("127.0.0.1:9090".to_string(), "127.0.0.1:9100".to_string()),
            ("127.0.0.1:9100".to_string(), "127.0.0.1:5000".to_string()),
            ("127.0.0.1:9093".to_string(), "127.0.0.1:9093".to_string()),
        ];
        let check = |input: &str, expected: &str| assert_eq!(replace_addresses(input, &map), expected, "{input}");
        check("[127.0.0.1:9090, 127.0.0.1:9100]", "[127.0.0.1:9100, 127.0.0.1:5000]");
        check("127.0.0.1:90901 127.0.0.1:9093", "127.0.0.1:90901 127.0.0.1:9093");
        check("http://127.0.0.1:9100/metrics é", "http://127.0.0.1:5000/metrics é");
    }

    /// Every built-in stack's files load as their programs read them (with the environment
    /// variables the stack requires set to placeholders).
    #[test]
    fn builtin_stacks_load() {
        let env = |name: &str| {
            // Defaults apply; the required variables (secrets, certificates) get placeholders.
            match name {
                "HUB_PASSWORD_BCRYPT" => Some("$2b$04$x".to_string()),
                "HUB_TLS_CERT" | "HUB_TLS_KEY" | "HUB_CA_FILE" | "HUB_PASSWORD_FILE" => Some(format!("/{name}")),
                _ => None,
            }
        };
        for (stack, files) in BUILTIN {
            for (file, text) in files.iter() {
                let expanded = expand_env(text, &env).unwrap_or_else(|e| panic!("{stack}/{file}: {e}"));
                let loaded = match *file {
                    "stack.yml" => parse_manifest(&expanded).map(|_| ()).map_err(|e| e.to_string()),
                    "prometheus.yml" | "regional.yml" => {
                        sextant_scrape::Config::load_str(&expanded).map(|_| ()).map_err(|e| e.to_string())
                    }
                    "alertmanager.yml" => {
                        sextant_alerting::alertmanager::Config::parse(&expanded).map(|_| ()).map_err(|e| e.to_string())
                    }
                    "web.yml" | "blackbox.yml" => Ok(()),
                    _ => sextant_alerting::rules::parse_rule_file(
                        &expanded,
                        &sextant_alerting::rules::RuleFileOptions::default(),
                    )
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                };
                if let Err(e) = loaded {
                    panic!("{stack}/{file}: {e}");
                }
            }
            // The files name only addresses the manifest knows, so `--address` moves them all.
            let manifest = files.iter().find(|(n, _)| *n == "stack.yml").map(|(_, t)| *t).unwrap_or("");
            let manifest = parse_manifest(&expand_env(manifest, &env).unwrap()).unwrap();
            let known: Vec<String> = manifest.addresses.values().cloned().collect();
            for (file, text) in files.iter() {
                for (idx, _) in text.match_indices("127.0.0.1:") {
                    let port: String = text[idx + 10..].chars().take_while(char::is_ascii_digit).collect();
                    let addr = format!("127.0.0.1:{port}");
                    assert!(known.contains(&addr), "{stack}/{file} names {addr}, which stack.yml does not list");
                }
            }
        }
    }
}

//! The `sextant` binary: one command that runs Sextant's components.
//!
//! Subcommands appear here as the crates behind them start working.

use std::process::ExitCode;

use clap::Parser;

mod agent;
mod alertmanager;
mod check;
mod exporter;
mod fanout;
mod notifier;
mod promql;
mod promql_test;
mod rules;
mod server;
mod services;
mod stack;
mod tsdb;
mod wiring;

/// Sextant: a Prometheus-compatible monitoring system.
#[derive(Debug, Parser)]
#[command(name = "sextant", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Scrape targets and remote-write the samples through a durable buffer (agent mode).
    Agent(agent::AgentArgs),
    /// Check configuration files, like promtool check.
    Check {
        #[command(subcommand)]
        command: check::CheckCommand,
    },
    /// Alertmanager: the server (no subcommand), or `check-config`, `routes [show|test]`.
    Alertmanager(alertmanager::Args),
    /// Run an exporter: `sextant exporter node [node_exporter flags]`.
    #[command(subcommand)]
    Exporter(exporter::ExporterCommand),
    /// PromQL tools (`fmt`).
    Promql(promql::PromqlArgs),
    /// Run the server: TSDB and the Prometheus HTTP API (`--config.file`, `--storage.tsdb.path`, …).
    Server(server::ServerArgs),
    /// Run a whole stack from a directory of config files: `sextant stack single-host|hub|edge|app|enterprise|microservices|DIR`.
    Stack(stack::StackArgs),
    /// TSDB tools: `tsdb bench write`, `tsdb import openmetrics`, `tsdb analyze`.
    Tsdb(tsdb::TsdbArgs),
    /// Run tests, like promtool test: `sextant test rules FILE...`.
    #[command(subcommand)]
    Test(rules::TestCommand),
}

fn main() -> anyhow::Result<ExitCode> {
    // An exporter is a small long-running daemon: parse only its own subcommand tree, so the
    // code that builds every other command's arguments is never run (nor made resident).
    if std::env::args_os().nth(1).is_some_and(|arg| arg == "exporter") {
        return exporter::run_from_args().map(|()| ExitCode::SUCCESS);
    }
    let cli = Cli::parse();
    match cli.command {
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Check { command }) => check::run(command).map(|()| ExitCode::SUCCESS),
        Some(Command::Alertmanager(args)) => alertmanager::run(args).map(|()| ExitCode::SUCCESS),
        Some(Command::Exporter(command)) => exporter::run(command).map(|()| ExitCode::SUCCESS),
        Some(Command::Promql(args)) => promql::run(args),
        Some(Command::Server(args)) => {
            server::keep_freed_query_memory();
            server::run(args).map(|()| ExitCode::SUCCESS)
        }
        Some(Command::Stack(command)) => stack::run(command).map(|()| ExitCode::SUCCESS),
        Some(Command::Tsdb(args)) => tsdb::run(args).map(|()| ExitCode::SUCCESS),
        Some(Command::Test(command)) => rules::test(command),
        Some(Command::Agent(args)) => agent::run(args).map(|()| ExitCode::SUCCESS),
    }
}

//! The `sextant` binary: one command that runs Sextant's components.
//!
//! Subcommands appear here as the crates behind them start working.

use std::process::ExitCode;

use clap::Parser;

mod promql;
mod promql_test;

/// Sextant: a Prometheus-compatible monitoring system.
#[derive(Debug, Parser)]
#[command(name = "sextant", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// PromQL tools (`fmt`).
    Promql(promql::PromqlArgs),
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Promql(args)) => promql::run(args),
    }
}

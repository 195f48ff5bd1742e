//! The `sextant` binary: one command that runs Sextant's components.
//!
//! Subcommands appear here as the crates behind them start working.

use clap::Parser;

mod tsdb;

/// Sextant: a Prometheus-compatible monitoring system.
#[derive(Debug, Parser)]
#[command(name = "sextant", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// TSDB tools: `tsdb bench write`.
    Tsdb(tsdb::TsdbArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            Ok(())
        }
        Some(Command::Tsdb(args)) => tsdb::run(args),
    }
}

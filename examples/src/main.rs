//! The `sextant` binary: one command that runs Sextant's components.
//!
//! Subcommands appear here as the crates behind them start working.

use clap::Parser;

mod agent;
mod check;

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            Ok(())
        }
        Some(Command::Check { command }) => check::run(command),
        Some(Command::Agent(args)) => agent::run(args),
    }
}

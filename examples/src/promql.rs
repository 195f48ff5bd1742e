//! `sextant promql fmt EXPR`: prints the canonical form of a PromQL expression, or the parse
//! error with a caret under it (exit status 1).

use std::process::ExitCode;

use sextant_promql::{format, parse_with, ParseOptions};

/// PromQL tools.
#[derive(Debug, clap::Args)]
pub struct PromqlArgs {
    #[command(subcommand)]
    command: PromqlCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PromqlCommand {
    /// Print EXPR formatted as Prometheus' /api/v1/format_query does.
    Fmt {
        /// The PromQL expression (may start with `-`).
        #[arg(allow_hyphen_values = true)]
        expr: String,
        /// Enable experimental syntax (functions, limitk, anchored/smoothed, fill), like
        /// Prometheus' --enable-feature flags.
        #[arg(long)]
        experimental: bool,
    },
    /// Run promqltest scripts (Prometheus' `.test` format).
    Test(crate::promql_test::TestArgs),
}

pub fn run(args: PromqlArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PromqlCommand::Test(args) => crate::promql_test::run(args),
        PromqlCommand::Fmt { expr, experimental } => {
            let options = if experimental { ParseOptions::all() } else { ParseOptions::default() };
            match parse_with(&expr, options) {
                Ok(e) => {
                    println!("{}", format(&e));
                    Ok(ExitCode::SUCCESS)
                }
                Err(err) => {
                    eprintln!("{err}\n{}", err.render_caret());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

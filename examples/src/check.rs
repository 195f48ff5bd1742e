//! `sextant check config FILE...`: validates `prometheus.yml` files like `promtool check config`.

use std::path::PathBuf;

/// What `sextant check` checks.
#[derive(Debug, clap::Subcommand)]
pub enum CheckCommand {
    /// Check that Prometheus configuration files are valid.
    Config {
        /// Check the files for use with `sextant agent` (no alerting, rule_files, remote_read).
        #[arg(long)]
        agent: bool,
        /// The configuration files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check that rule files are valid.
    Rules(crate::rules::CheckRulesArgs),
}

/// Runs a check; prints promtool's lines and exits with status 1 if any file is invalid.
pub fn run(command: CheckCommand) -> anyhow::Result<()> {
    match command {
        CheckCommand::Config { agent, files } => {
            let mut failed = false;
            for file in &files {
                let name = file.display();
                println!("Checking {name}");
                let checked = sextant_scrape::Config::load_file(file).and_then(|c| {
                    if agent {
                        c.check_agent_mode().map_err(|e| sextant_scrape::Error::Config {
                            file: name.to_string(),
                            line: 0,
                            column: 0,
                            message: e.to_string(),
                        })?;
                    }
                    c.all_scrape_configs()
                });
                match checked {
                    Ok(_) => println!("  SUCCESS: {name} is valid prometheus config file syntax"),
                    Err(e) => {
                        eprintln!("  FAILED: {e}");
                        failed = true;
                    }
                }
                println!();
            }
            if failed {
                std::process::exit(1);
            }
            Ok(())
        }
        CheckCommand::Rules(args) => {
            if crate::rules::check(args)? != std::process::ExitCode::SUCCESS {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

//! `sextant check config FILE...`: validates `prometheus.yml` files like `promtool check config`.

use std::path::PathBuf;

/// What `sextant check` checks.
#[derive(Debug, clap::Subcommand)]
pub enum CheckCommand {
    /// Check that Prometheus configuration files are valid.
    Config {
        /// The configuration files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Runs a check; prints promtool's lines and exits with status 1 if any file is invalid.
pub fn run(command: CheckCommand) -> anyhow::Result<()> {
    match command {
        CheckCommand::Config { files } => {
            let mut failed = false;
            for file in &files {
                let name = file.display();
                println!("Checking {name}");
                match sextant_scrape::Config::load_file(file).and_then(|c| c.all_scrape_configs()) {
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
    }
}

//! `sextant check rules FILE...` and `sextant test rules FILE...`: promtool's rule commands.

use std::path::PathBuf;
use std::process::ExitCode;

use sextant_alerting::rules::{parse_rule_file, run_rule_tests, RuleFileOptions, UnitTestOptions};
use sextant_model::NameValidation;

/// Arguments of `sextant check rules`.
#[derive(Debug, clap::Args)]
pub struct CheckRulesArgs {
    /// Rule files to check.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Accept keys Prometheus does not know.
    #[arg(long)]
    ignore_unknown_fields: bool,
    /// Legacy (Prometheus 2.x) label and metric name validation.
    #[arg(long)]
    legacy_names: bool,
    /// Linting: `duplicate-rules` (promtool's default) or `none`.
    #[arg(long, default_value = "duplicate-rules")]
    lint: String,
    /// Exit with status 3 on lint findings.
    #[arg(long)]
    lint_fatal: bool,
}

/// promtool's duplicate-rules lint: rules with the same name and labels, once per kind.
fn duplicates(groups: &sextant_alerting::rules::RuleGroups) -> Option<String> {
    let mut keys: Vec<(String, Vec<(String, String)>)> = groups
        .groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .map(|r| {
            let mut labels = r.labels.clone();
            labels.sort();
            (r.name().to_string(), labels)
        })
        .collect();
    keys.sort();
    let mut dups: Vec<&(String, Vec<(String, String)>)> = Vec::new();
    for pair in keys.windows(2) {
        if pair[0] == pair[1] && dups.last().is_none_or(|d| **d != pair[0]) {
            dups.push(&pair[1]);
        }
    }
    if dups.is_empty() {
        return None;
    }
    let mut out = format!("lint error {} duplicate rule(s) found.\n", dups.len());
    for (metric, labels) in dups {
        out.push_str(&format!("Metric: {metric}\nLabel(s):\n"));
        for (k, v) in labels {
            out.push_str(&format!("\t{k}: {v}\n"));
        }
    }
    out.push_str("Might cause inconsistency while recording expressions");
    Some(out)
}

/// What `sextant test` tests.
#[derive(Debug, clap::Subcommand)]
pub enum TestCommand {
    /// Run promtool rule unit tests.
    Rules {
        /// Unit-test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Judge with Prometheus 3 semantics and UTF-8 names (default: as promtool 2.42).
        #[arg(long)]
        v3: bool,
    },
}

/// Prints promtool's lines for each file; exit status 1 when any file is invalid.
pub fn check(args: CheckRulesArgs) -> anyhow::Result<ExitCode> {
    let options = RuleFileOptions {
        name_validation: if args.legacy_names { NameValidation::Legacy } else { NameValidation::Utf8 },
        ignore_unknown_fields: args.ignore_unknown_fields,
    };
    let mut failed = false;
    let mut lint_found = false;
    for file in &args.files {
        let name = file.display();
        println!("Checking {name}");
        let checked = std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|text| parse_rule_file(&text, &options).map_err(|e| e.to_string()));
        match checked {
            Ok(groups) => match duplicates(&groups).filter(|_| args.lint == "duplicate-rules") {
                Some(lint) => {
                    lint_found = true;
                    eprintln!("  FAILED:");
                    eprintln!("{lint}");
                }
                None => {
                    let n: usize = groups.groups.iter().map(|g| g.rules.len()).sum();
                    println!("  SUCCESS: {n} rules found");
                }
            },
            Err(e) => {
                failed = true;
                eprintln!("  FAILED:");
                for line in e.lines() {
                    eprintln!("{name}: {line}");
                }
            }
        }
        println!();
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else if lint_found && args.lint_fatal {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs unit-test files as `promtool test rules`; exit status 1 when any failed.
pub fn test(command: TestCommand) -> anyhow::Result<ExitCode> {
    let TestCommand::Rules { files, v3 } = command;
    let options = UnitTestOptions { prometheus2: !v3 };
    let mut failed = false;
    for file in &files {
        println!("Unit Testing:  {}", file.display());
        let report = run_rule_tests(file, &options);
        if report.passed() {
            println!("  SUCCESS");
        } else {
            failed = true;
            eprintln!("  FAILED:");
            for f in &report.failures {
                eprintln!("{f}");
            }
        }
        println!();
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

//! `sextant promql test FILE...`: runs promqltest scripts (Prometheus' `.test` format) and
//! prints one line per failing eval, then `N passed, M failed, K skipped`. Exit status 1 when
//! anything failed.

use std::path::PathBuf;
use std::process::ExitCode;

use sextant_promql::promqltest::{run_script, Dialect, EvalStatus, TestOptions};

/// Arguments of `sextant promql test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Script files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Run with Prometheus 2.42 semantics (closed windows, eager name removal).
    #[arg(long)]
    v2_42: bool,
}

pub fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
    let options = TestOptions { dialect: if args.v2_42 { Dialect::V2_42 } else { Dialect::V3 } };
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for path in &args.files {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let report = run_script(&text, &options, &|_| None);
        if let Some((line, e)) = &report.error {
            println!("{}:{line}: {e}", path.display());
            failed += 1;
        }
        for ev in &report.evals {
            match &ev.status {
                EvalStatus::Passed => passed += 1,
                EvalStatus::Skipped(_) => skipped += 1,
                EvalStatus::Failed(m) => {
                    failed += 1;
                    println!("{}:{}: {}: {m}", path.display(), ev.line, ev.expr);
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

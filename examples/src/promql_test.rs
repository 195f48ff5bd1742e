//! `sextant promql test FILE...`: runs promqltest scripts (Prometheus' `.test` format) and
//! prints one line per failing eval, then `N passed, M failed, K skipped` alone on the last
//! line. Exit status 1 when anything failed.
//!
//! Evals are skipped only through skip lists, each entry with its reason: `--skip-list FILE`
//! (`FILE:LINE reason` lines, FILE being the script's file name) and `--skip-from-evals-tsv
//! PATH` (the native-histogram and start-timestamp evals that Prometheus' `evals.tsv` marks).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use sextant_promql::promqltest::{parse_evals_tsv, run_script, Dialect, EvalStatus, SkipList, TestOptions};

/// Arguments of `sextant promql test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Script files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Run with Prometheus 2.42 semantics (closed windows, eager name removal).
    #[arg(long)]
    v2_42: bool,
    /// Skip the evals this file lists: one `FILE:LINE reason` a line (FILE is the script's
    /// file name without its directory; `#` starts a comment). May be repeated.
    #[arg(long, value_name = "FILE")]
    skip_list: Vec<PathBuf>,
    /// Skip the evals that this `evals.tsv` (Prometheus' per-eval inventory) marks as needing
    /// native histograms or start timestamps.
    #[arg(long, value_name = "PATH")]
    skip_from_evals_tsv: Option<PathBuf>,
    /// Also print each skipped eval with its reason.
    #[arg(long, short)]
    verbose: bool,
}

pub fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
    let skips = read_skips(&args)?;
    let options = TestOptions { dialect: if args.v2_42 { Dialect::V2_42 } else { Dialect::V3 } };
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for path in &args.files {
        let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let report = run_script(&text, &options, &skips.for_file(&name));
        if let Some((line, e)) = &report.error {
            println!("{}:{line}: {e}", path.display());
            failed += 1;
        }
        for ev in &report.evals {
            match &ev.status {
                EvalStatus::Passed => passed += 1,
                EvalStatus::Skipped(reason) => {
                    skipped += 1;
                    if args.verbose {
                        println!("{}:{}: {}: skipped: {reason}", path.display(), ev.line, ev.expr);
                    }
                }
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

/// The union of every skip list given; errors name the file and line.
fn read_skips(args: &TestArgs) -> anyhow::Result<SkipList> {
    let read = |path: &Path| std::fs::read_to_string(path).with_context(|| path.display().to_string());
    let mut skips = SkipList::default();
    for path in &args.skip_list {
        let list = SkipList::parse(&read(path)?).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
        skips.extend(list);
    }
    if let Some(path) = &args.skip_from_evals_tsv {
        let rows = parse_evals_tsv(&read(path)?).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
        skips.extend(SkipList::from_evals_tsv(&rows));
    }
    Ok(skips)
}

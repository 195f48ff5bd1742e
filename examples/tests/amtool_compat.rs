//! `sextant alertmanager` against the real `amtool` 0.25 (Debian package
//! `prometheus-alertmanager`) on the shared Alertmanager configs: same stdout and exit status
//! for `check-config`, `routes` and `routes test [--tree]`. YAML decoding messages differ
//! (Go's yaml.v2 vs serde) and are compared only as "FAILED".

#[path = "../../testsupport/shared.rs"]
mod shared;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::Value;

struct Run {
    stdout: String,
    ok: bool,
}

fn run(program: &str, args: &[String]) -> Run {
    let out = Command::new(program).args(args).current_dir(std::env::temp_dir()).output().expect("runs");
    Run { stdout: String::from_utf8_lossy(&out.stdout).into_owned(), ok: out.status.success() }
}

/// YAML decoding errors are worded differently; keep only the fact that the file failed.
fn normalise(stdout: &str) -> String {
    let mut out = Vec::new();
    let mut skipping = false;
    for line in stdout.lines() {
        if skipping && line.starts_with("  line ") {
            continue;
        }
        skipping = false;
        match line.split_once("  FAILED: ") {
            Some((head, msg)) if msg.starts_with("yaml: ") || is_serde_message(msg) => {
                out.push(format!("{head}  FAILED: <yaml error>"));
                skipping = true;
            }
            _ => out.push(line.to_string()),
        }
    }
    out.join("\n")
}

fn is_serde_message(msg: &str) -> bool {
    ["invalid type", "unknown field", "missing field", "duplicate", "did not find", "mapping values", "found "]
        .iter()
        .any(|p| msg.contains(p))
}

fn amtool() -> Option<&'static str> {
    let found = Command::new("amtool").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        println!("conformance amtool: skipped, amtool not installed (Debian package prometheus-alertmanager)");
    }
    found.then_some("amtool")
}

fn configs(dir: &Path) -> Vec<PathBuf> {
    let base = dir.join("conformance/alerting/am-config-testdata");
    let mut files = Vec::new();
    for sub in ["cli", "v0.25.0"] {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(base.join(sub)).expect("dir").flatten().map(|e| e.path()).collect();
        entries.sort();
        files.extend(entries.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yml")));
    }
    files
}

#[test]
fn check_config_like_amtool() {
    let Some(dir) = shared::shared_dir("amtool-check-config") else { return };
    let Some(amtool) = amtool() else { return };
    let sextant = env!("CARGO_BIN_EXE_sextant");
    // Files where the message differs on purpose, with the reason.
    let skip = [(
        "v0.25.0/conf.slack-no-api-url.yml",
        "Sextant gives HEAD's message (Slack app tokens exist there): no Slack API URL nor App token set ...",
    )];
    let mut failures = Vec::new();
    let files = configs(&dir);
    for file in &files {
        let path = file.display().to_string();
        if let Some((name, reason)) = skip.iter().find(|(name, _)| path.ends_with(name)) {
            println!("  skipped {name}: {reason}");
            continue;
        }
        let theirs = run(amtool, &["check-config".into(), path.clone()]);
        let ours = run(sextant, &["alertmanager".into(), "check-config".into(), path.clone()]);
        let (theirs_text, ours_text) = (normalise(&theirs.stdout), normalise(&ours.stdout));
        if theirs_text != ours_text || theirs.ok != ours.ok {
            failures.push(format!(
                "{path}:\n--- amtool ({})\n{theirs_text}\n--- sextant ({})\n{ours_text}",
                theirs.ok, ours.ok
            ));
        }
    }
    println!(
        "conformance amtool-check-config: {} of {} passed, {} skipped",
        files.len() - skip.len() - failures.len(),
        files.len(),
        skip.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn routes_like_amtool() {
    let Some(dir) = shared::shared_dir("amtool-routes") else { return };
    let Some(amtool) = amtool() else { return };
    let sextant = env!("CARGO_BIN_EXE_sextant");
    let text = std::fs::read_to_string(dir.join("conformance/alerting/routing-cases.yaml")).expect("cases");
    let doc: Value = serde_yaml_ng::from_str(&text).expect("yaml");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut total, mut failures) = (0, Vec::new());
    let mut compare = |what: String, theirs: Run, ours: Run| {
        total += 1;
        if theirs.stdout != ours.stdout || theirs.ok != ours.ok {
            failures.push(format!(
                "{what}:\n--- amtool ({})\n{}--- sextant ({})\n{}",
                theirs.ok, theirs.stdout, ours.ok, ours.stdout
            ));
        }
    };
    for suite in doc["suites"].as_sequence().expect("suites") {
        let id = suite["id"].as_str().expect("id");
        let config = tmp.path().join(format!("{id}.yml"));
        std::fs::write(&config, suite["config"].as_str().expect("config")).expect("write");
        let flag = format!("--config.file={}", config.display());
        compare(
            format!("{id}: routes"),
            run(amtool, &["config".into(), "routes".into(), flag.clone()]),
            run(sextant, &["alertmanager".into(), "routes".into(), flag.clone()]),
        );
        for case in suite["cases"].as_sequence().expect("cases") {
            let labels: Vec<String> = case["alert"]
                .as_mapping()
                .expect("alert")
                .iter()
                .map(|(k, v)| format!("{}={}", k.as_str().unwrap_or_default(), v.as_str().unwrap_or_default()))
                .collect();
            for tree in [false, true] {
                let mut args = vec!["routes".to_string(), "test".into(), flag.clone()];
                if tree {
                    args.push("--tree".into());
                }
                args.extend(labels.iter().cloned());
                let mut theirs_args = vec!["config".to_string()];
                theirs_args.extend(args.iter().cloned());
                let mut ours_args = vec!["alertmanager".to_string()];
                ours_args.extend(args.iter().cloned());
                compare(
                    format!("{} tree={tree}", case["id"].as_str().unwrap_or_default()),
                    run(amtool, &theirs_args),
                    run(sextant, &ours_args),
                );
            }
        }
    }
    // The full tree of every upstream config file amtool can load.
    for file in configs(&dir) {
        let flag = format!("--config.file={}", file.display());
        let theirs = run(amtool, &["config".into(), "routes".into(), flag.clone()]);
        if theirs.ok {
            compare(
                format!("{}: routes", file.display()),
                theirs,
                run(sextant, &["alertmanager".into(), "routes".into(), flag]),
            );
        }
    }
    println!("conformance amtool-routes: {} of {total} passed", total - failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

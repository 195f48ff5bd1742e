//! `sextant check config`: promtool's output and exit status.

use std::process::Command;

fn check(text: &str) -> (i32, String, String, String) {
    check_with(text, &[])
}

fn check_with(text: &str, flags: &[&str]) -> (i32, String, String, String) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sextant-check-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, text).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_sextant")).args(["check", "config"]).args(flags).arg(&file).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let name = file.display().to_string();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        name,
    )
}

#[test]
fn valid_config_succeeds() {
    let (code, stdout, stderr, name) =
        check("scrape_configs:\n- job_name: a\n  static_configs: [{targets: ['x:1']}]\n");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, format!("Checking {name}\n  SUCCESS: {name} is valid prometheus config file syntax\n\n"));
}

#[test]
fn invalid_config_fails_with_position() {
    let (code, stdout, stderr, name) =
        check("scrape_configs:\n- job_name: a\n  scrape_interval: 5s\n  scrape_timeout: 10s\n");
    assert_eq!(code, 1);
    assert_eq!(stdout, format!("Checking {name}\n\n"));
    assert_eq!(
        stderr,
        format!("  FAILED: {name}:4:19: scrape_configs[0].scrape_timeout: scrape timeout greater than scrape interval for scrape config with job name \"a\"\n")
    );
}

#[test]
fn agent_flag_rejects_server_sections() {
    let (code, _, stderr, name) = check_with("rule_files: [r.yml]\n", &["--agent"]);
    assert_eq!(code, 1);
    assert_eq!(stderr, format!("  FAILED: {name}: field rule_files is not allowed in agent mode\n"));
}

//! `sextant exporter ... --web.config.file`: TLS and bcrypt basic auth on every path of an
//! exporter, checked with `openssl` (self-signed certificate) and `curl` on loopback (skips
//! when either is absent); a bad web.yml stops the exporter at startup, naming the file.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod webtls;
use webtls::{curl, present};

mod procs;
use procs::{free_port, Proc};

/// The node exporter with one cheap collector, on `port`, with `extra` flags.
fn node_exporter(port: u16, extra: &[String]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sextant"));
    command
        .args(["exporter", "node", "--collector.disable-defaults", "--collector.loadavg"])
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra);
    command
}

/// Waits until something answers `url` (the exporter gives no readiness signal but its port).
fn wait_for(args: &[&str]) {
    let start = Instant::now();
    while curl(args) == "000" {
        assert!(start.elapsed() < Duration::from_secs(20), "exporter did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write_web(dir: &Path, text: &str) -> String {
    let web = dir.join("web.yml");
    std::fs::write(&web, text).unwrap();
    web.display().to_string()
}

#[test]
fn basic_auth_over_plain_http() {
    if !present("curl", "--version") {
        println!("exporter web config: skipped, curl missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let web = write_web(dir.path(), &format!("basic_auth_users:\n  alice: '{hash}'\n"));
    let port = free_port();
    // The two-argument spelling of the flag.
    let flags = ["--web.config.file".to_string(), web];
    let _exporter = Proc(node_exporter(port, &flags).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let landing = format!("http://127.0.0.1:{port}/");
    wait_for(&[&metrics]);
    for (args, expected) in [
        (vec![metrics.as_str()], "401"),
        (vec!["-u", "alice:wrong", &metrics], "401"),
        (vec!["-u", "bob:s3cret", &metrics], "401"),
        (vec!["-u", "alice:s3cret", &metrics], "200"),
        (vec![landing.as_str()], "401"),
        (vec!["-u", "alice:s3cret", &landing], "200"),
    ] {
        assert_eq!(curl(&args), expected, "{args:?}");
    }
}

#[test]
fn tls_and_basic_auth() {
    if !present("openssl", "version") || !present("curl", "--version") {
        println!("exporter web config: skipped, openssl or curl missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, _key) = webtls::self_signed_cert(dir.path());
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let web = write_web(
        dir.path(),
        &format!(
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  alice: '{hash}'\n"
        ),
    );
    let port = free_port();
    let flags = [format!("--web.config.file={web}")];
    let _exporter = Proc(node_exporter(port, &flags).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let metrics = format!("https://127.0.0.1:{port}/metrics");
    let cacert = cert.display().to_string();
    wait_for(&["--cacert", &cacert, &metrics]);
    assert_eq!(curl(&["--cacert", &cacert, &metrics]), "401");
    assert_eq!(curl(&["--cacert", &cacert, "-u", "alice:wrong", &metrics]), "401");
    assert_eq!(curl(&["--cacert", &cacert, "-u", "alice:s3cret", &metrics]), "200");
    // Plain HTTP on the TLS port does not get through.
    assert_ne!(curl(&["-u", "alice:s3cret", &format!("http://127.0.0.1:{port}/metrics")]), "200");
    println!("exporter web config: TLS and basic auth enforced");
}

#[test]
fn a_bad_web_config_is_a_startup_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yml").display().to_string();
    let unknown_field = write_web(dir.path(), "basic_auth_userz:\n  alice: x\n");
    for (subcommand, web) in
        [("node", &missing), ("node", &unknown_field), ("container", &unknown_field), ("log", &unknown_field)]
    {
        let out = Command::new(env!("CARGO_BIN_EXE_sextant"))
            .args(["exporter", subcommand, "--web.listen-address=127.0.0.1:0"])
            .arg(format!("--web.config.file={web}"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{subcommand} {web}: started");
        assert!(stderr.contains(web.as_str()), "{subcommand} {web}: {stderr}");
    }
}

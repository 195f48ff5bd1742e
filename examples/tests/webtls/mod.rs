//! Helpers shared by the tests of `--web.config.file` (server and exporters): tool probes,
//! `curl` status codes and a self-signed certificate for 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// True if `binary arg` runs and succeeds (e.g. `openssl version`).
pub fn present(binary: &str, arg: &str) -> bool {
    Command::new(binary).arg(arg).output().is_ok_and(|o| o.status.success())
}

/// `curl`'s HTTP status code for the request described by `args` ("000" when nothing answered).
pub fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Writes `cert.pem` and `key.pem` (self-signed, CN localhost, SAN 127.0.0.1) into `dir`.
pub fn self_signed_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success(), "openssl could not make a certificate");
    (cert, key)
}

//! `sextant server --web.config.file`: TLS and bcrypt basic auth on every endpoint, checked
//! with `openssl` (self-signed certificate) and `curl` on loopback; skips when either is absent.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod webtls;
use webtls::{curl, present};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tls_and_basic_auth() {
    if !present("openssl", "version") || !present("curl", "--version") {
        println!("server web config: skipped, openssl or curl missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, _key) = webtls::self_signed_cert(dir.path());
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  alice: '{hash}'\n"
        ),
    )
    .unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global: {}\n").unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = Proc(
        Command::new(env!("CARGO_BIN_EXE_sextant"))
            .arg("server")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--web.config.file={}", web.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("https://127.0.0.1:{port}/api/v1/status/buildinfo");
    let cacert = cert.display().to_string();
    // The server gives no readiness signal but its port: wait until TLS answers at all.
    let start = Instant::now();
    while curl(&["--cacert", &cacert, &url]) == "000" {
        assert!(start.elapsed() < Duration::from_secs(20), "server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(curl(&["--cacert", &cacert, &url]), "401");
    assert_eq!(curl(&["--cacert", &cacert, "-u", "alice:wrong", &url]), "401");
    assert_eq!(curl(&["--cacert", &cacert, "-u", "alice:s3cret", &url]), "200");
    let health = format!("https://127.0.0.1:{port}/-/healthy");
    assert_eq!(curl(&["--cacert", &cacert, &health]), "401");
    // Plain HTTP on the TLS port does not get through.
    assert_ne!(curl(&["-u", "alice:s3cret", &format!("http://127.0.0.1:{port}/-/healthy")]), "200");
    println!("server web config: TLS and basic auth enforced");
}

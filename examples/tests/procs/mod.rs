//! What the `sextant` binary's integration tests share: child processes that end with the
//! test, free loopback ports, whether a peer program is installed, and waiting with a limit.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A child process killed (and reaped) when the test ends, whether it passes or panics.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// SIGTERM, then wait for the process to exit, and insist that it exited cleanly.
    pub fn terminate(mut self) {
        let pid = self.0.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let exit = self.0.wait().unwrap();
        assert!(exit.success(), "exit status {exit:?}");
    }
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether `binary --version` runs and succeeds (a peer from Debian's packages is installed).
pub fn present(binary: &str) -> bool {
    Command::new(binary).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Polls `ready` until it says yes; fails the test, naming `what`, once `limit` has passed.
pub fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    wait_until(what, limit, || ready().then_some(()))
}

/// Polls `check` until it returns a value, and returns it; fails the test, naming `what`, once
/// `limit` has passed.
pub fn wait_until<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Serves `body` as `/metrics` (the text format) on a free port, one response per connection,
/// until the test binary ends; returns the port.
pub fn serve_target(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

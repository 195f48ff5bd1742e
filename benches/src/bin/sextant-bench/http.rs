//! A minimal HTTP/1.1 client over `std::net` for loopback use: keep-alive connections,
//! `Content-Length` and chunked responses, bodies from memory or streamed from a file.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context};

/// One keep-alive connection.
#[derive(Debug)]
pub struct Conn {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

/// A request body.
pub enum Body<'a> {
    None,
    Bytes(&'a [u8]),
    File(&'a std::path::Path),
}

impl Conn {
    pub fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(600)))?;
        Ok(Conn { addr, reader: BufReader::with_capacity(1 << 16, stream) })
    }

    /// Sends one request and reads the whole response: (status, body).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let len = match &body {
            Body::None => None,
            Body::Bytes(b) => Some(b.len() as u64),
            Body::File(p) => Some(std::fs::metadata(p)?.len()),
        };
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: sextant-bench\r\n", self.addr);
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(len) = len {
            head.push_str(&format!("Content-Length: {len}\r\n"));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        match body {
            Body::None => {}
            Body::Bytes(b) => stream.write_all(b)?,
            Body::File(p) => {
                let mut f = std::fs::File::open(p)?;
                std::io::copy(&mut f, stream)?;
            }
        }
        stream.flush()?;
        self.read_response()
    }

    fn read_line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("connection closed by {}", self.addr);
        }
        Ok(line.trim_end().to_string())
    }

    fn read_response(&mut self) -> anyhow::Result<(u16, Vec<u8>)> {
        let status_line = self.read_line()?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {status_line:?}"))?;
        let (mut length, mut chunked, mut close) = (None, false, false);
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                break;
            }
            let Some((k, v)) = line.split_once(':') else { continue };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "content-length" => length = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                "connection" => close = v.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let size_line = self.read_line()?;
                let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                    .with_context(|| format!("bad chunk size {size_line:?}"))?;
                if size == 0 {
                    while !self.read_line()?.is_empty() {}
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.reader.read_exact(&mut body[start..])?;
                self.read_line()?;
            }
        } else if let Some(len) = length {
            body.resize(len, 0);
            self.reader.read_exact(&mut body)?;
        } else if close || status != 204 {
            self.reader.read_to_end(&mut body)?;
        }
        Ok((status, body))
    }
}

/// One request on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    Conn::open(addr)?.request("GET", path, &[], Body::None)
}

/// Percent-encodes a query-string value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

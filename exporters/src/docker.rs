//! A small Docker Engine API client: HTTP/1.1 `GET` requests over the unix socket (or TCP for
//! `tcp://` hosts), one connection per request, JSON bodies as `serde_json::Value` and the
//! multiplexed log stream framing.
//!
//! Only what the `container` and `log` exporters need; every response is read whole with a size
//! cap, so a misbehaving daemon costs bounded memory.

#![cfg_attr(not(feature = "log"), allow(dead_code))]

use std::path::PathBuf;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::Error;

/// The default Docker socket.
pub(crate) const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// The largest response body we read (logs since the last pass can be large).
const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// Where the Docker daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DockerHost {
    Unix(PathBuf),
    Tcp(String),
}

impl DockerHost {
    /// Parses a `DOCKER_HOST` value: `unix:///path`, `tcp://host:port`, or a bare socket path.
    pub(crate) fn parse(value: &str) -> Result<DockerHost, Error> {
        if let Some(path) = value.strip_prefix("unix://") {
            Ok(DockerHost::Unix(PathBuf::from(path)))
        } else if let Some(address) = value.strip_prefix("tcp://").or_else(|| value.strip_prefix("http://")) {
            Ok(DockerHost::Tcp(address.trim_end_matches('/').to_string()))
        } else if value.starts_with('/') {
            Ok(DockerHost::Unix(PathBuf::from(value)))
        } else {
            Err(Error::Flag { flag: "docker.host".into(), message: format!("unsupported Docker host {value:?}") })
        }
    }

    fn display(&self) -> PathBuf {
        match self {
            DockerHost::Unix(path) => path.clone(),
            DockerHost::Tcp(address) => PathBuf::from(format!("tcp://{address}")),
        }
    }
}

/// A client for one Docker daemon.
#[derive(Debug, Clone)]
pub(crate) struct Docker {
    host: DockerHost,
}

impl Docker {
    pub(crate) fn new(host: DockerHost) -> Docker {
        Docker { host }
    }

    fn error(&self, path: &str, message: impl Into<String>) -> Error {
        Error::parse(format!("{}{path}", self.host.display().display()), 0, message)
    }

    /// `GET path` and the raw body; a status other than 2xx is an error.
    pub(crate) async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, Error> {
        let raw = match &self.host {
            DockerHost::Unix(socket) => {
                let stream =
                    tokio::net::UnixStream::connect(socket).await.map_err(|err| Error::io(socket.clone(), err))?;
                exchange(stream, &get_request(path)).await.map_err(|err| Error::io(socket.clone(), err))?
            }
            DockerHost::Tcp(address) => {
                let stream = tokio::net::TcpStream::connect(address.as_str())
                    .await
                    .map_err(|err| Error::io(self.host.display(), err))?;
                exchange(stream, &get_request(path)).await.map_err(|err| Error::io(self.host.display(), err))?
            }
        };
        let (status, body) = parse_response(&raw).map_err(|message| self.error(path, message))?;
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&body);
            return Err(self.error(path, format!("HTTP status {status}: {}", text.trim())));
        }
        Ok(body)
    }

    /// `GET path` as JSON.
    pub(crate) async fn get_json(&self, path: &str) -> Result<Value, Error> {
        let body = self.get_bytes(path).await?;
        serde_json::from_slice(&body).map_err(|err| self.error(path, format!("bad JSON: {err}")))
    }
}

fn get_request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: sextant\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Sends one request (head and body) and reads the whole response.
pub(crate) async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
) -> std::io::Result<Vec<u8>> {
    stream.write_all(request).await?;
    let mut raw = Vec::new();
    let mut limited = stream.take(MAX_RESPONSE_BYTES as u64 + 64 * 1024);
    limited.read_to_end(&mut raw).await?;
    Ok(raw)
}

/// Splits an HTTP/1.1 response into status and body, undoing chunked transfer encoding.
pub(crate) fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let header_end = find(raw, b"\r\n\r\n").ok_or("response without end of headers")?;
    let head = std::str::from_utf8(&raw[..header_end]).map_err(|_| "response headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut content_length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse::<usize>().ok();
        }
    }
    let body = &raw[header_end + 4..];
    if chunked {
        return dechunk(body).map(|body| (status, body));
    }
    let body = match content_length {
        Some(len) if len <= body.len() => &body[..len],
        Some(_) => return Err("response body shorter than Content-Length".into()),
        None => body,
    };
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(format!("response body larger than {MAX_RESPONSE_BYTES} bytes"));
    }
    Ok((status, body.to_vec()))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = find(body, b"\r\n").ok_or("chunk size line without CRLF")?;
        let size_text = std::str::from_utf8(&body[..line_end]).map_err(|_| "chunk size is not UTF-8")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {size_text:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if size > body.len() || out.len() + size > MAX_RESPONSE_BYTES {
            return Err("chunk longer than the response".into());
        }
        out.extend_from_slice(&body[..size]);
        body = body.get(size + 2..).unwrap_or(&[]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// The stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Splits a `/containers/{id}/logs` body into `(stream, payload)` frames.
///
/// Containers without a TTY send frames with an 8-byte header (stream type, three zero bytes,
/// big-endian length); TTY containers send raw bytes, all reported as stdout. A body that does
/// not start with a valid header is taken as raw; a truncated last frame keeps what is there.
pub(crate) fn demultiplex(body: &[u8]) -> Vec<(Stream, &[u8])> {
    let looks_framed = body.len() >= 8 && matches!(body[0], 0..=2) && body[1..4] == [0, 0, 0];
    if !looks_framed {
        return if body.is_empty() { Vec::new() } else { vec![(Stream::Stdout, body)] };
    }
    let mut frames = Vec::new();
    let mut rest = body;
    while rest.len() >= 8 {
        let stream = if rest[0] == 2 { Stream::Stderr } else { Stream::Stdout };
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let end = (8 + len).min(rest.len());
        frames.push((stream, &rest[8..end]));
        rest = &rest[end..];
    }
    frames
}

/// Splits `--name=value`, `--name value` and `--flag` arguments into `(name, value)` pairs;
/// `value_flags` names the flags that take a value. Unknown flags are errors.
pub(crate) fn split_flags<I, S>(
    args: I,
    value_flags: &[&str],
    bool_flags: &[&str],
) -> Result<Vec<(String, String)>, Error>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut out = Vec::new();
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(Error::Flag { flag: arg.clone(), message: "unexpected argument".into() });
        };
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (body.to_string(), None),
        };
        if value_flags.contains(&name.as_str()) {
            let value = match inline {
                Some(value) => value,
                None => {
                    args.next().ok_or_else(|| Error::Flag { flag: arg.clone(), message: "needs a value".into() })?
                }
            };
            out.push((name, value));
        } else if bool_flags.contains(&name.as_str()) {
            out.push((name, inline.unwrap_or_else(|| "true".into())));
        } else if let Some(base) = name.strip_prefix("no-").filter(|base| bool_flags.contains(base)) {
            out.push((base.to_string(), "false".into()));
        } else {
            return Err(Error::Flag { flag: arg.clone(), message: "unknown flag".into() });
        }
    }
    Ok(out)
}

/// Parses a boolean flag or environment value the way Go's `strconv.ParseBool` does.
pub(crate) fn parse_bool(flag: &str, value: &str) -> Result<bool, Error> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(Error::Flag { flag: flag.into(), message: format!("not a boolean: {value:?}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        fn check(raw: &str, expected: Result<(u16, &str), &str>) {
            let got = parse_response(raw.as_bytes());
            match (got, expected) {
                (Ok((status, body)), Ok((want_status, want_body))) => {
                    assert_eq!((status, std::str::from_utf8(&body).unwrap()), (want_status, want_body), "{raw:?}")
                }
                (Err(err), Err(want)) => assert_eq!(err, want, "{raw:?}"),
                (got, want) => panic!("{raw:?}: got {got:?}, want {want:?}"),
            }
        }
        check("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", Ok((200, "{}")));
        check("HTTP/1.1 200 OK\r\n\r\nabc", Ok((200, "abc")));
        check(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            Ok((200, "abcde")),
        );
        check("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!", Ok((404, "no!")));
        check("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab", Err("response body shorter than Content-Length"));
        check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", Err("bad chunk size \"zz\""));
        check("garbage", Err("response without end of headers"));
    }

    #[test]
    fn frames() {
        let mut body = vec![1, 0, 0, 0, 0, 0, 0, 3];
        body.extend_from_slice(b"a\nb");
        body.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 2]);
        body.extend_from_slice(b"e\n");
        body.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 9, b'x']);
        let frames = demultiplex(&body);
        assert_eq!(
            frames,
            vec![(Stream::Stdout, &b"a\nb"[..]), (Stream::Stderr, &b"e\n"[..]), (Stream::Stdout, &b"x"[..])]
        );
        assert_eq!(demultiplex(b"plain tty\n"), vec![(Stream::Stdout, &b"plain tty\n"[..])]);
        assert!(demultiplex(b"").is_empty());
    }

    #[test]
    fn hosts() {
        assert_eq!(DockerHost::parse("unix:///run/d.sock").unwrap(), DockerHost::Unix("/run/d.sock".into()));
        assert_eq!(DockerHost::parse("tcp://127.0.0.1:2375").unwrap(), DockerHost::Tcp("127.0.0.1:2375".into()));
        assert!(DockerHost::parse("ssh://x").is_err());
    }

    proptest::proptest! {
        #[test]
        fn no_panics(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse_response(&raw);
            let total: usize = demultiplex(&raw).iter().map(|(_, p)| p.len()).sum();
            proptest::prop_assert!(total <= raw.len());
        }
    }
}

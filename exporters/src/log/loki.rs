//! Shipping log lines to Loki's push API (`POST /loki/api/v1/push`, JSON), as Logporter v3
//! does: one stream per container and output stream, labelled like Logporter's.

use serde_json::{json, Value};

use crate::docker::{exchange, parse_response};
use crate::Error;

/// Where and how to push.
#[derive(Debug, Clone)]
pub(crate) struct Loki {
    /// `host:port`.
    address: String,
    /// The URL path before `/loki/api/v1/push` (usually empty).
    prefix: String,
    authorization: Option<String>,
    tenant: Option<String>,
}

/// One stream to push: labels and `(unix nanoseconds, line)` values.
pub(crate) type LokiStream = (Vec<(String, String)>, Vec<(i128, String)>);

impl Loki {
    /// From `LOKI_URL` (`http://host:port[/prefix]`), basic-auth user and password, tenant.
    pub(crate) fn new(
        url: &str,
        username: Option<&str>,
        password: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<Loki, Error> {
        let rest = url.strip_prefix("http://").ok_or_else(|| Error::Flag {
            flag: "loki.url".into(),
            message: format!("only http:// URLs are supported, got {url:?}"),
        })?;
        let (address, prefix) = match rest.find('/') {
            Some(slash) => (&rest[..slash], rest[slash..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let authorization = username
            .filter(|u| !u.is_empty())
            .map(|user| format!("Basic {}", base64(format!("{user}:{}", password.unwrap_or("")).as_bytes())));
        Ok(Loki {
            address: address.to_string(),
            prefix: prefix.to_string(),
            authorization,
            tenant: tenant.filter(|t| !t.is_empty()).map(str::to_string),
        })
    }

    /// The push body for `streams`.
    pub(crate) fn body(streams: &[LokiStream]) -> Value {
        let streams: Vec<Value> = streams
            .iter()
            .map(|(labels, values)| {
                let labels: serde_json::Map<String, Value> =
                    labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
                let values: Vec<Value> = values.iter().map(|(ns, line)| json!([ns.to_string(), line])).collect();
                json!({"stream": labels, "values": values})
            })
            .collect();
        json!({ "streams": streams })
    }

    /// Pushes `streams`; a status other than 2xx is an error.
    pub(crate) async fn push(&self, streams: &[LokiStream]) -> Result<(), Error> {
        if streams.iter().all(|(_, values)| values.is_empty()) {
            return Ok(());
        }
        let body = Loki::body(streams).to_string();
        let mut head = format!(
            "POST {}/loki/api/v1/push HTTP/1.1\r\nHost: {}\r\nUser-Agent: sextant\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.prefix,
            self.address,
            body.len()
        );
        if let Some(auth) = &self.authorization {
            head.push_str(&format!("Authorization: {auth}\r\n"));
        }
        if let Some(tenant) = &self.tenant {
            head.push_str(&format!("X-Scope-OrgID: {tenant}\r\n"));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body.as_bytes());
        let where_ = format!("http://{}{}/loki/api/v1/push", self.address, self.prefix);
        let stream =
            tokio::net::TcpStream::connect(self.address.as_str()).await.map_err(|err| Error::io(&where_, err))?;
        let raw = exchange(stream, &request).await.map_err(|err| Error::io(&where_, err))?;
        let (status, answer) = parse_response(&raw).map_err(|message| Error::parse(&where_, 0, message))?;
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&answer);
            return Err(Error::parse(&where_, 0, format!("HTTP status {status}: {}", text.trim())));
        }
        Ok(())
    }
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bytes = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for (idx, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if idx <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_encodes() {
        for (input, expected) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("user:pass", "dXNlcjpwYXNz")]
        {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn urls() {
        let loki = Loki::new("http://127.0.0.1:3100/", Some("u"), Some("p"), Some("t")).unwrap();
        assert_eq!((loki.address.as_str(), loki.prefix.as_str()), ("127.0.0.1:3100", ""));
        assert_eq!(loki.authorization.as_deref(), Some("Basic dTpw"));
        let loki = Loki::new("http://gw:80/loki-a", None, None, None).unwrap();
        assert_eq!(loki.prefix, "/loki-a");
        assert!(Loki::new("https://x", None, None, None).is_err());
    }
}

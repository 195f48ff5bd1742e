//! TLS for the PostgreSQL connection: lib/pq's `sslmode`, `sslrootcert`, `sslcert` and
//! `sslkey` read from the DSN (postgres_exporter's driver), and a rustls connector for
//! tokio-postgres.
//!
//! lib/pq's modes map to tokio-postgres' (`disable`, `prefer`, `require`) plus the
//! verification we do ourselves: `require` without `sslrootcert` encrypts without verifying,
//! `require` with it and `verify-ca` verify the chain, `verify-full` also the host name.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::tls::TlsSettings;

/// The DSN without the `ssl*` keys tokio-postgres does not know, and the TLS settings.
pub(super) fn split_dsn(dsn: &str) -> (String, TlsSettings) {
    let mut mode = None;
    let (mut root_cert, mut cert, mut key) = (None, None, None);
    let mut take = |key_name: &str, value: &str| -> bool {
        match key_name {
            "sslmode" => mode = Some(value.to_string()),
            "sslrootcert" => root_cert = Some(value.to_string()),
            "sslcert" => cert = Some(value.to_string()),
            "sslkey" => key = Some(value.to_string()),
            _ => return false,
        }
        true
    };
    let rest = if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
        match dsn.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        !take(k, &crate::flags::percent_decode(v))
                    })
                    .collect();
                (base.to_string(), Some(kept.join("&")))
            }
            None => (dsn.to_string(), None),
        }
    } else {
        let kept: Vec<&str> = dsn
            .split_whitespace()
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                !take(k.trim(), v.trim().trim_matches('\''))
            })
            .collect();
        (kept.join(" "), None)
    };
    let settings = TlsSettings {
        insecure_skip_verify: mode.as_deref() != Some("verify-full") && root_cert.is_none(),
        skip_name_check: mode.as_deref() != Some("verify-full"),
        ca_file: root_cert,
        server_name: None,
        client_cert: cert.zip(key),
    };
    let pg_mode = match mode.as_deref() {
        Some("disable") => Some("disable"),
        Some("allow" | "prefer") => Some("prefer"),
        Some("require" | "verify-ca" | "verify-full") => Some("require"),
        _ => None,
    };
    let dsn = match (rest, pg_mode) {
        ((base, Some(query)), mode) => {
            let mut pairs: Vec<String> = query.split('&').filter(|p| !p.is_empty()).map(str::to_string).collect();
            pairs.extend(mode.map(|m| format!("sslmode={m}")));
            if pairs.is_empty() {
                base
            } else {
                format!("{base}?{}", pairs.join("&"))
            }
        }
        ((base, None), Some(mode)) if base.contains("://") => format!("{base}?sslmode={mode}"),
        ((base, None), Some(mode)) => format!("{base} sslmode={mode}").trim_start().to_string(),
        ((base, None), None) => base,
    };
    (dsn, settings)
}

/// tokio-postgres' TLS hook over our rustls settings.
#[derive(Clone)]
pub(super) struct MakeRustls(pub(super) TlsSettings);

pub(super) struct RustlsConnect {
    settings: TlsSettings,
    domain: String,
}

/// A TLS stream as tokio-postgres wants it (no channel binding: SCRAM without `-PLUS`).
pub(super) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        Ok(RustlsConnect { settings: self.0.clone(), domain: domain.to_string() })
    }
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream<S>, io::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = self.settings.connect(stream, &self.domain).await.map_err(io::Error::other)?;
            Ok(RustlsStream(tls))
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::split_dsn;

    #[test]
    fn dsns() {
        // (dsn, rewritten, insecure, name checked, ca file)
        let cases: &[(&str, &str, bool, bool, Option<&str>)] = &[
            ("postgresql://u@h/db", "postgresql://u@h/db", true, false, None),
            ("postgresql://u@h/db?sslmode=disable", "postgresql://u@h/db?sslmode=disable", true, false, None),
            ("postgresql://u@h/db?sslmode=require&x=1", "postgresql://u@h/db?x=1&sslmode=require", true, false, None),
            (
                "postgresql://u@h/db?sslmode=verify-full&sslrootcert=%2Fca.pem",
                "postgresql://u@h/db?sslmode=require",
                false,
                true,
                Some("/ca.pem"),
            ),
            ("postgres://h?sslmode=verify-ca&sslrootcert=/c", "postgres://h?sslmode=require", false, false, Some("/c")),
            ("host=h sslmode=verify-full user=u", "host=h user=u sslmode=require", false, true, None),
            ("host=h user=u", "host=h user=u", true, false, None),
        ];
        for (dsn, rewritten, insecure, name_checked, ca) in cases {
            let (got, settings) = split_dsn(dsn);
            assert_eq!(got, *rewritten, "{dsn}");
            assert_eq!(settings.insecure_skip_verify, *insecure, "{dsn}");
            assert_eq!(!settings.skip_name_check, *name_checked, "{dsn}");
            assert_eq!(settings.ca_file.as_deref(), *ca, "{dsn}");
        }
    }
}

//! The `web.yml` format of Prometheus' exporter-toolkit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Error;

/// A parsed `--web.config.file`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebConfig {
    /// `tls_server_config`; `None` serves plain HTTP.
    pub tls: Option<TlsServerConfig>,
    /// `basic_auth_users`: user name → bcrypt hash. Empty: no authentication.
    pub basic_auth_users: BTreeMap<String, String>,
}

/// `tls_server_config`.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsServerConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_auth: ClientAuth,
    /// `client_ca_file`: CAs that sign client certificates.
    pub client_ca_file: Option<PathBuf>,
    pub min_version: TlsVersion,
    pub max_version: Option<TlsVersion>,
}

/// `client_auth_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// `NoClientCert` (default).
    None,
    /// `RequestClientCert` / `VerifyClientCertIfGiven`: verified when sent.
    VerifyIfGiven,
    /// `RequireAndVerifyClientCert` / `RequireAnyClientCert`.
    RequireAndVerify,
}

/// `min_version` / `max_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    #[serde(default)]
    http_server_config: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    cert_file: String,
    #[serde(default)]
    key_file: String,
    #[serde(default)]
    client_auth_type: String,
    #[serde(default)]
    client_ca_file: String,
    #[serde(default)]
    min_version: String,
    #[serde(default)]
    max_version: String,
    #[serde(default)]
    cipher_suites: Vec<String>,
    #[serde(default)]
    curve_preferences: Vec<String>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    client_allowed_sans: Vec<String>,
}

fn version(s: &str, file: &str) -> Result<Option<TlsVersion>, Error> {
    match s {
        "" => Ok(None),
        "TLS12" => Ok(Some(TlsVersion::Tls12)),
        "TLS13" => Ok(Some(TlsVersion::Tls13)),
        "TLS10" | "TLS11" => Err(Error::Config {
            file: file.into(),
            message: format!("TLS version {s} is not supported (TLS12 or TLS13)"),
        }),
        other => Err(Error::Config { file: file.into(), message: format!("unknown TLS version: {other}") }),
    }
}

impl WebConfig {
    /// Parses `web.yml` text.
    pub fn parse(text: &str) -> Result<WebConfig, Error> {
        WebConfig::parse_in(text, "", Path::new(""))
    }

    /// Reads and parses a `web.yml`; relative certificate paths are relative to its folder.
    pub fn load_file(path: impl AsRef<Path>) -> Result<WebConfig, Error> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Config { file: file.clone(), message: e.to_string() })?;
        WebConfig::parse_in(&text, &file, path.parent().unwrap_or(Path::new("")))
    }

    fn parse_in(text: &str, file: &str, base: &Path) -> Result<WebConfig, Error> {
        let err = |message: String| Error::Config { file: file.to_string(), message };
        if text.trim().is_empty() {
            return Ok(WebConfig::default());
        }
        let raw: RawConfig = serde_yaml_ng::from_str(text).map_err(|e| err(e.to_string()))?;
        let _ = raw.http_server_config;
        for (user, hash) in &raw.basic_auth_users {
            if user.is_empty() || hash.is_empty() {
                return Err(err(format!("basic_auth_users: user {user:?} needs a bcrypt hash")));
            }
        }
        let tls = match raw.tls_server_config {
            None => None,
            Some(t) => {
                let _ = (&t.cipher_suites, &t.curve_preferences, t.prefer_server_cipher_suites, &t.client_allowed_sans);
                if t.cert_file.is_empty() || t.key_file.is_empty() {
                    return Err(err("tls_server_config: cert_file and key_file are both required".to_string()));
                }
                let client_auth = match t.client_auth_type.as_str() {
                    "" | "NoClientCert" => ClientAuth::None,
                    "RequestClientCert" | "VerifyClientCertIfGiven" => ClientAuth::VerifyIfGiven,
                    "RequireAnyClientCert" | "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerify,
                    other => return Err(err(format!("invalid client_auth_type: {other}"))),
                };
                if client_auth != ClientAuth::None && t.client_ca_file.is_empty() {
                    return Err(err("client_ca_file is required when client_auth_type is set".to_string()));
                }
                let resolve = |p: &str| if Path::new(p).is_absolute() { PathBuf::from(p) } else { base.join(p) };
                Some(TlsServerConfig {
                    cert_file: resolve(&t.cert_file),
                    key_file: resolve(&t.key_file),
                    client_auth,
                    client_ca_file: (!t.client_ca_file.is_empty()).then(|| resolve(&t.client_ca_file)),
                    min_version: version(&t.min_version, file)?.unwrap_or(TlsVersion::Tls12),
                    max_version: version(&t.max_version, file)?,
                })
            }
        };
        Ok(WebConfig { tls, basic_auth_users: raw.basic_auth_users })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let ok = |text: &str| WebConfig::parse(text).unwrap();
        let bad = |text: &str| WebConfig::parse(text).unwrap_err().to_string();
        assert_eq!(ok(""), WebConfig::default());
        let c = ok("tls_server_config:\n  cert_file: /c.pem\n  key_file: /k.pem\n  min_version: TLS13\n");
        let tls = c.tls.unwrap();
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert_eq!(tls.client_auth, ClientAuth::None);
        assert!(bad("tls_server_config:\n  cert_file: /c.pem\n").contains("key_file"));
        assert!(bad("nonsense: 1\n").contains("unknown field"));
        assert!(bad(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n"
        )
        .contains("client_ca_file"));
        assert!(bad("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n").contains("TLS10"));
        assert!(bad("basic_auth_users:\n  alice: ''\n").contains("alice"));
    }
}

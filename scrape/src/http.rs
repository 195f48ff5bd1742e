//! The HTTP client block shared by scrape configs, remote write/read, Alertmanagers and HTTP
//! service discovery (`prometheus/common`'s `HTTPClientConfig`), and the secret type.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::units::ScalarString;

/// A secret from the configuration (password, credentials, bearer token, client key). Its
/// `Debug`, `Display` and serialised forms are `<secret>`; [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret's value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

const SECRET_TOKEN: &str = "<secret>";

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SECRET_TOKEN)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SECRET_TOKEN)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        Ok(Secret(ScalarString::deserialize(deserializer)?.0))
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(SECRET_TOKEN)
    }
}

/// `basic_auth`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username_file: String,
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub password: Secret,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password_file: String,
}

/// `authorization`: `type` (default `Bearer`) and credentials.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub credentials: Secret,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub credentials_file: String,
}

/// `oauth2` (client credentials grant).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuth2 {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub client_secret: Secret,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_secret_file: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token_url: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_params: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub no_proxy: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub proxy_from_environment: bool,
}

/// TLS versions Prometheus accepts for `min_version` / `max_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
pub enum TlsVersion {
    TLS10,
    TLS11,
    TLS12,
    TLS13,
}

/// `tls_config`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert: String,
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub key: Secret,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    pub insecure_skip_verify: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
}

impl TlsConfig {
    fn validate(&self) -> Result<(), String> {
        let count = |a: bool, b: bool| usize::from(a) + usize::from(b);
        if count(!self.ca.is_empty(), !self.ca_file.is_empty()) > 1 {
            return Err("at most one of ca, ca_file & ca_ref must be configured".into());
        }
        if count(!self.cert.is_empty(), !self.cert_file.is_empty()) > 1 {
            return Err("at most one of cert, cert_file & cert_ref must be configured".into());
        }
        if count(!self.key.is_empty(), !self.key_file.is_empty()) > 1 {
            return Err("at most one of key and key_file must be configured".into());
        }
        let using_cert = !self.cert.is_empty() || !self.cert_file.is_empty();
        let using_key = !self.key.is_empty() || !self.key_file.is_empty();
        if using_cert && !using_key {
            return Err(
                "exactly one of key or key_file must be configured when a client certificate is configured".into()
            );
        }
        if using_key && !using_cert {
            return Err("exactly one of cert or cert_file must be configured when a client key is configured".into());
        }
        Ok(())
    }

    fn set_directory(&mut self, dir: &str) {
        for f in [&mut self.ca_file, &mut self.cert_file, &mut self.key_file] {
            *f = join_dir(dir, f);
        }
    }
}

/// Proxy settings (`proxy_url`, `no_proxy`, `proxy_from_environment`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProxyConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub no_proxy: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub proxy_from_environment: bool,
}

impl ProxyConfig {
    fn validate(&self) -> Result<(), String> {
        if !self.no_proxy.is_empty() && self.proxy_url.is_empty() {
            return Err("if no_proxy is configured, proxy_url must also be configured".into());
        }
        if self.proxy_from_environment && !self.proxy_url.is_empty() {
            return Err("if proxy_from_environment is configured, proxy_url must not be configured".into());
        }
        if self.proxy_from_environment && !self.no_proxy.is_empty() {
            return Err("if proxy_from_environment is configured, no_proxy must not be configured".into());
        }
        Ok(())
    }
}

/// One `http_headers` entry: literal values, secret values and files to read values from.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpHeader {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// The HTTP client settings inlined into scrape configs, remote write/read, Alertmanager
/// and HTTP/Docker discovery blocks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpClientConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
    /// Deprecated; moved into `authorization` by validation, as Prometheus does.
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub bearer_token: Secret,
    /// Deprecated; moved into `authorization` by validation.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bearer_token_file: String,
    pub tls_config: TlsConfig,
    pub follow_redirects: bool,
    pub enable_http2: bool,
    #[serde(flatten)]
    pub proxy: ProxyConfig,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub http_headers: BTreeMap<String, HttpHeader>,
}

impl Default for HttpClientConfig {
    /// Prometheus' `DefaultHTTPClientConfig`: follow redirects, HTTP/2 on.
    fn default() -> HttpClientConfig {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            oauth2: None,
            bearer_token: Secret::default(),
            bearer_token_file: String::new(),
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
            proxy: ProxyConfig::default(),
            http_headers: BTreeMap::new(),
        }
    }
}

impl HttpClientConfig {
    /// Prometheus' `HTTPClientConfig.Validate`, including moving `bearer_token(_file)` into
    /// `authorization` and defaulting the authorization type to `Bearer`.
    pub(crate) fn validate(&mut self) -> Result<(), String> {
        let has_bearer = !self.bearer_token.is_empty() || !self.bearer_token_file.is_empty();
        if !self.bearer_token.is_empty() && !self.bearer_token_file.is_empty() {
            return Err("at most one of bearer_token & bearer_token_file must be configured".into());
        }
        if (self.basic_auth.is_some() || self.oauth2.is_some()) && has_bearer {
            return Err("at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured".into());
        }
        if let Some(b) = &self.basic_auth {
            if !b.username.is_empty() && !b.username_file.is_empty() {
                return Err(
                    "at most one of basic_auth username, username_file & username_ref must be configured".into()
                );
            }
            if !b.password.is_empty() && !b.password_file.is_empty() {
                return Err(
                    "at most one of basic_auth password, password_file & password_ref must be configured".into()
                );
            }
        }
        if let Some(a) = &mut self.authorization {
            if has_bearer {
                return Err("authorization is not compatible with bearer_token & bearer_token_file".into());
            }
            if !a.credentials.is_empty() && !a.credentials_file.is_empty() {
                return Err("at most one of authorization credentials & credentials_file must be configured".into());
            }
            a.kind = a.kind.trim().to_string();
            if a.kind.is_empty() {
                a.kind = "Bearer".into();
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                return Err(r#"authorization type cannot be set to "basic", use "basic_auth" instead"#.into());
            }
            if self.basic_auth.is_some() || self.oauth2.is_some() {
                return Err("at most one of basic_auth, oauth2 & authorization must be configured".into());
            }
        } else if !self.bearer_token.is_empty() {
            let credentials = std::mem::take(&mut self.bearer_token);
            self.authorization = Some(Authorization { kind: "Bearer".into(), credentials, ..Default::default() });
        } else if !self.bearer_token_file.is_empty() {
            let credentials_file = std::mem::take(&mut self.bearer_token_file);
            self.authorization = Some(Authorization { kind: "Bearer".into(), credentials_file, ..Default::default() });
        }
        if let Some(o) = &self.oauth2 {
            if self.basic_auth.is_some() {
                return Err("at most one of basic_auth, oauth2 & authorization must be configured".into());
            }
            if o.client_id.is_empty() {
                return Err("oauth2 client_id must be configured".into());
            }
            if o.token_url.is_empty() {
                return Err("oauth2 token_url must be configured".into());
            }
            if !o.client_secret.is_empty() && !o.client_secret_file.is_empty() {
                return Err("at most one of oauth2 client_secret, client_secret_file & client_secret_ref must be configured using grant-type=client_credentials".into());
            }
            if let Some(tls) = &o.tls_config {
                tls.validate()?;
            }
            let proxy = ProxyConfig {
                proxy_url: o.proxy_url.clone(),
                no_proxy: o.no_proxy.clone(),
                proxy_from_environment: o.proxy_from_environment,
            };
            proxy.validate()?;
        }
        self.proxy.validate()?;
        for (name, _) in self.http_headers.iter() {
            if RESERVED_HTTP_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
                return Err(format!("setting header {name:?} is not allowed"));
            }
        }
        self.tls_config.validate()
    }

    /// Joins relative file paths with `dir` (the configuration file's directory).
    pub(crate) fn set_directory(&mut self, dir: &str) {
        self.tls_config.set_directory(dir);
        if let Some(b) = &mut self.basic_auth {
            b.username_file = join_dir(dir, &b.username_file);
            b.password_file = join_dir(dir, &b.password_file);
        }
        if let Some(a) = &mut self.authorization {
            a.credentials_file = join_dir(dir, &a.credentials_file);
        }
        if let Some(o) = &mut self.oauth2 {
            o.client_secret_file = join_dir(dir, &o.client_secret_file);
            if let Some(t) = &mut o.tls_config {
                t.set_directory(dir);
            }
        }
        self.bearer_token_file = join_dir(dir, &self.bearer_token_file);
        for h in self.http_headers.values_mut() {
            for f in h.files.iter_mut() {
                *f = join_dir(dir, f);
            }
        }
    }
}

/// Headers `http_headers` may not set (prometheus/common's reserved list).
const RESERVED_HTTP_HEADERS: [&str; 11] = [
    "Authorization",
    "Host",
    "Content-Encoding",
    "Content-Length",
    "Content-Type",
    "User-Agent",
    "Connection",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Www-Authenticate",
];

/// `config.JoinDir`: a relative, non-empty path is joined with `dir`.
pub(crate) fn join_dir(dir: &str, path: &str) -> String {
    if path.is_empty() || dir.is_empty() || std::path::Path::new(path).is_absolute() {
        return path.to_string();
    }
    std::path::Path::new(dir).join(path).to_string_lossy().into_owned()
}

/// Defines a config struct that inlines the HTTP client fields (as Prometheus' `yaml:",inline"`)
/// while still rejecting unknown fields: YAML is read through a flat private twin (`$raw`)
/// holding the struct's own fields and the HTTP client's, then checked by
/// `fn check(&mut self) -> Result<(), String>` which the struct must implement. The struct
/// must implement `Default` (its defaults for unset fields, HTTP client included).
macro_rules! with_http_client {
    (
        $(#[$meta:meta])*
        pub struct $name:ident via $raw:ident, null = $null:literal {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
            /// The inlined HTTP client settings (`basic_auth`, `authorization`, `tls_config`, ...).
            #[serde(flatten)]
            pub http: $crate::http::HttpClientConfig,
        }

        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        struct $raw {
            $( $(#[$fmeta])* $field: $ty, )*
            basic_auth: Option<$crate::http::BasicAuth>,
            authorization: Option<$crate::http::Authorization>,
            oauth2: Option<$crate::http::OAuth2>,
            bearer_token: $crate::http::Secret,
            bearer_token_file: String,
            tls_config: $crate::http::TlsConfig,
            follow_redirects: bool,
            enable_http2: bool,
            proxy_url: String,
            no_proxy: String,
            proxy_from_environment: bool,
            http_headers: std::collections::BTreeMap<String, $crate::http::HttpHeader>,
        }

        impl Default for $raw {
            fn default() -> $raw {
                let d = <$name as Default>::default();
                $raw {
                    $( $field: d.$field, )*
                    basic_auth: d.http.basic_auth,
                    authorization: d.http.authorization,
                    oauth2: d.http.oauth2,
                    bearer_token: d.http.bearer_token,
                    bearer_token_file: d.http.bearer_token_file,
                    tls_config: d.http.tls_config,
                    follow_redirects: d.http.follow_redirects,
                    enable_http2: d.http.enable_http2,
                    proxy_url: d.http.proxy.proxy_url,
                    no_proxy: d.http.proxy.no_proxy,
                    proxy_from_environment: d.http.proxy.proxy_from_environment,
                    http_headers: d.http.http_headers,
                }
            }
        }

        impl $crate::units::Section for $name {
            const NULL_MESSAGE: &'static str = $null;
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                $crate::units::deserialize_checked::<D, $raw, $name>(deserializer)
            }
        }

        impl TryFrom<$raw> for $name {
            type Error = String;
            fn try_from(r: $raw) -> Result<$name, String> {
                let mut out = $name {
                    $( $field: r.$field, )*
                    http: $crate::http::HttpClientConfig {
                        basic_auth: r.basic_auth,
                        authorization: r.authorization,
                        oauth2: r.oauth2,
                        bearer_token: r.bearer_token,
                        bearer_token_file: r.bearer_token_file,
                        tls_config: r.tls_config,
                        follow_redirects: r.follow_redirects,
                        enable_http2: r.enable_http2,
                        proxy: $crate::http::ProxyConfig {
                            proxy_url: r.proxy_url,
                            no_proxy: r.no_proxy,
                            proxy_from_environment: r.proxy_from_environment,
                        },
                        http_headers: r.http_headers,
                    },
                };
                out.check()?;
                Ok(out)
            }
        }
    };
}
pub(crate) use with_http_client;

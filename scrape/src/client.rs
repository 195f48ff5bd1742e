//! An HTTP client built from an [`HttpClientConfig`]: TLS settings, redirects, and the
//! per-request authentication (basic, `authorization`, custom headers) read from values or
//! files at request time, as Prometheus does, so rotated secrets are picked up. With
//! `oauth2`, a token is fetched from `token_url` (client credentials grant), cached until
//! shortly before it expires, and sent as the `Authorization` header.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue};

use crate::http::{HttpClientConfig, OAuth2, Secret, TlsVersion};
use crate::Error;

/// A reqwest client plus the request decorations of one `HttpClientConfig`.
#[derive(Debug, Clone)]
pub struct HttpClient {
    pub(crate) client: reqwest::Client,
    config: HttpClientConfig,
    oauth2: Option<Arc<TokenSource>>,
}

/// Tokens are renewed this long before they expire (as Go's oauth2 package does).
const TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// Largest token response read.
const MAX_TOKEN_RESPONSE_BYTES: u64 = 1 << 20;

/// An access token and when it stops being usable.
#[derive(Debug, Clone)]
struct Token {
    /// The `Authorization` header value, e.g. `Bearer abc`.
    header: String,
    /// `None`: the server gave no `expires_in`; the token is kept (as Go's oauth2 package
    /// keeps it) until the client secret changes.
    expires: Option<Instant>,
    /// The client secret the token was fetched with: a rotated secret fetches a new token.
    secret: String,
}

/// Fetches and caches OAuth 2.0 client-credentials tokens for one `oauth2` block; shared by
/// the clones of an [`HttpClient`] (one token for all of a job's targets).
#[derive(Debug)]
struct TokenSource {
    config: OAuth2,
    client: reqwest::Client,
    token: tokio::sync::Mutex<Option<Token>>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    token_type: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Percent-encodes for `application/x-www-form-urlencoded` (RFC 6749 §2.3.1 encodes the
/// client id and secret this way before basic authentication).
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl TokenSource {
    fn new(config: &OAuth2) -> Result<TokenSource, Error> {
        let http = HttpClientConfig {
            tls_config: config.tls_config.clone().unwrap_or_default(),
            proxy: crate::http::ProxyConfig {
                proxy_url: config.proxy_url.clone(),
                no_proxy: config.no_proxy.clone(),
                proxy_from_environment: config.proxy_from_environment,
            },
            ..HttpClientConfig::default()
        };
        let client = HttpClient::build(&http, false, None)?;
        Ok(TokenSource { config: config.clone(), client, token: tokio::sync::Mutex::new(None) })
    }

    /// The `Authorization` header value: the cached token while valid, else a new one.
    async fn header(&self) -> Result<String, Error> {
        let secret = read_secret(&self.config.client_secret, &self.config.client_secret_file)?;
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref() {
            let fresh = token.expires.is_none_or(|e| Instant::now() + TOKEN_EXPIRY_MARGIN < e);
            if fresh && token.secret == secret {
                return Ok(token.header.clone());
            }
        }
        let token = self.fetch(secret).await?;
        let header = token.header.clone();
        *cached = Some(token);
        Ok(header)
    }

    async fn fetch(&self, secret: String) -> Result<Token, Error> {
        let c = &self.config;
        let mut form: Vec<(String, String)> = vec![("grant_type".into(), "client_credentials".into())];
        if !c.scopes.is_empty() {
            form.push(("scope".into(), c.scopes.join(" ")));
        }
        for (k, v) in &c.endpoint_params {
            if k != "grant_type" && k != "scope" {
                form.push((k.clone(), v.clone()));
            }
        }
        let fail = |text: String| Error::scrape(format!("oauth2: cannot fetch token from {}: {text}", c.token_url));
        let response = self
            .client
            .post(&c.token_url)
            .basic_auth(form_encode(&c.client_id), Some(form_encode(&secret)))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| fail(describe_reqwest(&e)))?;
        let status = response.status();
        let body = read_body_limited(response, MAX_TOKEN_RESPONSE_BYTES).await.map_err(|e| fail(e.to_string()))?;
        let parsed: Option<TokenResponse> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            let detail = match &parsed {
                Some(r) if !r.error.is_empty() => format!("{} {}", r.error, r.error_description).trim().to_string(),
                _ => String::from_utf8_lossy(&body).chars().take(200).collect(),
            };
            return Err(fail(format!("server returned HTTP status {status}: {detail}")));
        }
        let Some(parsed) = parsed else { return Err(fail("the response is not a JSON token".into())) };
        if parsed.access_token.is_empty() {
            return Err(fail("server response missing access_token".into()));
        }
        let kind = match parsed.token_type.as_str() {
            "" => "Bearer".to_string(),
            t if t.eq_ignore_ascii_case("bearer") => "Bearer".to_string(),
            t if t.eq_ignore_ascii_case("mac") => "MAC".to_string(),
            t if t.eq_ignore_ascii_case("basic") => "Basic".to_string(),
            t => t.to_string(),
        };
        let seconds = match &parsed.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_f64(),
            Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        let expires = seconds
            .filter(|s| *s > 0.0 && s.is_finite())
            .map(|s| Instant::now() + Duration::from_secs_f64(s.min(10.0 * 365.0 * 86_400.0)));
        Ok(Token { header: format!("{kind} {}", parsed.access_token), expires, secret })
    }
}

fn read_secret(value: &Secret, file: &str) -> Result<String, Error> {
    if !file.is_empty() {
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
        return Ok(text.trim().to_string());
    }
    Ok(value.expose().to_string())
}

impl HttpClient {
    /// A client; `gzip` turns on transparent decompression of gzip responses.
    pub fn new(config: &HttpClientConfig, gzip: bool) -> Result<HttpClient, Error> {
        HttpClient::with_socket(config, gzip, None)
    }

    /// The underlying reqwest client (TLS settings applied; authentication is added per
    /// request by [`HttpClient::decorate`]).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// A client whose connections all go to the unix socket at `socket`, when given.
    pub(crate) fn with_socket(
        config: &HttpClientConfig,
        gzip: bool,
        socket: Option<&str>,
    ) -> Result<HttpClient, Error> {
        let client = HttpClient::build(config, gzip, socket)?;
        let oauth2 = match &config.oauth2 {
            Some(o) => Some(Arc::new(TokenSource::new(o)?)),
            None => None,
        };
        Ok(HttpClient { client, config: config.clone(), oauth2 })
    }

    fn build(config: &HttpClientConfig, gzip: bool, socket: Option<&str>) -> Result<reqwest::Client, Error> {
        let mut builder = reqwest::Client::builder();
        if let Some(path) = socket {
            builder = builder.unix_socket(std::path::PathBuf::from(path));
        }
        builder = builder
            .gzip(gzip)
            .redirect(if config.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            .danger_accept_invalid_certs(config.tls_config.insecure_skip_verify);
        let proxy = &config.proxy;
        if !proxy.proxy_url.is_empty() {
            let mut p = reqwest::Proxy::all(&proxy.proxy_url)
                .map_err(|e| Error::scrape(format!("invalid proxy_url {:?}: {e}", proxy.proxy_url)))?;
            if !proxy.no_proxy.is_empty() {
                p = p.no_proxy(reqwest::NoProxy::from_string(&proxy.no_proxy));
            }
            builder = builder.proxy(p);
        } else if !proxy.proxy_from_environment {
            builder = builder.no_proxy();
        }
        let tls = &config.tls_config;
        let version = |v: TlsVersion| match v {
            TlsVersion::TLS10 => reqwest::tls::Version::TLS_1_0,
            TlsVersion::TLS11 => reqwest::tls::Version::TLS_1_1,
            TlsVersion::TLS12 => reqwest::tls::Version::TLS_1_2,
            TlsVersion::TLS13 => reqwest::tls::Version::TLS_1_3,
        };
        if let Some(v) = tls.min_version {
            builder = builder.min_tls_version(version(v));
        }
        if let Some(v) = tls.max_version {
            builder = builder.max_tls_version(version(v));
        }
        let ca_pem = if !tls.ca_file.is_empty() {
            Some(std::fs::read(&tls.ca_file).map_err(|e| Error::io(&tls.ca_file, e))?)
        } else if !tls.ca.is_empty() {
            Some(tls.ca.as_bytes().to_vec())
        } else {
            None
        };
        if let Some(pem) = ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::scrape(format!("unable to use specified CA cert: {e}")))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let cert_pem = if !tls.cert_file.is_empty() {
            Some(std::fs::read(&tls.cert_file).map_err(|e| Error::io(&tls.cert_file, e))?)
        } else if !tls.cert.is_empty() {
            Some(tls.cert.as_bytes().to_vec())
        } else {
            None
        };
        if let Some(mut pem) = cert_pem {
            let key = if !tls.key_file.is_empty() {
                std::fs::read(&tls.key_file).map_err(|e| Error::io(&tls.key_file, e))?
            } else {
                tls.key.expose().as_bytes().to_vec()
            };
            pem.push(b'\n');
            pem.extend_from_slice(&key);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| Error::scrape(format!("unable to use specified client cert: {e}")))?;
            builder = builder.identity(identity);
        }
        builder.build().map_err(|e| Error::scrape(format!("cannot build HTTP client: {e}")))
    }

    /// Adds authentication and configured headers to a request (fetching an OAuth 2.0 token
    /// when one is configured and none is cached).
    pub async fn decorate(&self, mut request: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, Error> {
        let config = &self.config;
        for (name, header) in &config.http_headers {
            let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else { continue };
            let mut values: Vec<String> = header.values.clone();
            values.extend(header.secrets.iter().map(|s| s.expose().to_string()));
            for file in &header.files {
                values.push(read_secret(&Secret::default(), file)?);
            }
            for v in values {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    request = request.header(name.clone(), v);
                }
            }
        }
        if let Some(basic) = &config.basic_auth {
            let user = read_secret(&Secret::new(basic.username.clone()), &basic.username_file)?;
            let password = read_secret(&basic.password, &basic.password_file)?;
            request = request.basic_auth(user, Some(password));
        } else if let Some(source) = &self.oauth2 {
            request = request.header(reqwest::header::AUTHORIZATION, source.header().await?);
        } else if let Some(auth) = &config.authorization {
            let credentials = read_secret(&auth.credentials, &auth.credentials_file)?;
            request = request.header(reqwest::header::AUTHORIZATION, format!("{} {credentials}", auth.kind));
        } else if !config.bearer_token.is_empty() || !config.bearer_token_file.is_empty() {
            let token = read_secret(&config.bearer_token, &config.bearer_token_file)?;
            request = request.header(reqwest::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        Ok(request)
    }
}

/// Reads a response body into memory, failing as soon as more than `limit` bytes (after
/// decompression) have arrived; `limit == 0` means no limit.
pub(crate) async fn read_body_limited(mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    read_body_into(&mut response, limit, &mut body).await?;
    Ok(body)
}

/// Reads the body into `body` (cleared first, its capacity reused) under `limit` bytes
/// (0 = none), reserving the announced length up front when it is within the limit.
pub(crate) async fn read_body_into(
    response: &mut reqwest::Response,
    limit: u64,
    body: &mut Vec<u8>,
) -> Result<(), Error> {
    body.clear();
    if let Some(n) = response.content_length().filter(|&n| limit == 0 || n <= limit) {
        body.reserve(usize::try_from(n).unwrap_or(0).min(64 << 20));
    }
    while let Some(chunk) = response.chunk().await.map_err(|e| Error::scrape(describe_reqwest(&e)))? {
        if limit > 0 && (body.len() + chunk.len()) as u64 > limit {
            return Err(Error::scrape(format!("body size limit exceeded: more than {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(())
}

/// A reqwest error with its causes, as one line.
pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

//! An HTTP client built from an [`HttpClientConfig`]: TLS settings, redirects, and the
//! per-request authentication (basic, `authorization`, custom headers) read from values or
//! files at request time, as Prometheus does, so rotated secrets are picked up.

use reqwest::header::{HeaderName, HeaderValue};

use crate::http::{HttpClientConfig, Secret, TlsVersion};
use crate::Error;

/// A reqwest client plus the request decorations of one `HttpClientConfig`.
#[derive(Debug, Clone)]
pub struct HttpClient {
    pub(crate) client: reqwest::Client,
    config: HttpClientConfig,
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
        let client = builder.build().map_err(|e| Error::scrape(format!("cannot build HTTP client: {e}")))?;
        Ok(HttpClient { client, config: config.clone() })
    }

    /// Adds authentication and configured headers to a request.
    pub fn decorate(&self, mut request: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, Error> {
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
    while let Some(chunk) = response.chunk().await.map_err(|e| Error::scrape(describe_reqwest(&e)))? {
        if limit > 0 && (body.len() + chunk.len()) as u64 > limit {
            return Err(Error::scrape(format!("body size limit exceeded: more than {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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

//! HTTP server plumbing shared by Sextant's servers (the API server, exporters, Alertmanager):
//! Prometheus' `--web.config.file` format and the serving loop.
//!
//! - [`WebConfig`] reads the exporter-toolkit `web.yml`: `tls_server_config` (certificate,
//!   key, client certificate authentication, minimum TLS version) and `basic_auth_users`
//!   (user → bcrypt hash). There are no default credentials: without a file, nothing is
//!   required.
//! - [`serve`] serves an axum `Router` on an address, over TLS when configured, with basic
//!   authentication on every path when users are configured, until `shutdown` resolves.
//!
//! ```
//! use sextant_web::WebConfig;
//!
//! let config = WebConfig::parse("basic_auth_users:\n  admin: $2y$10$abcdefghijklmnopqrstuv\n")?;
//! assert!(config.tls.is_none());
//! assert_eq!(config.basic_auth_users.len(), 1);
//! assert!(WebConfig::parse("tls_server_config:\n  cert_file: a.pem\n").is_err()); // key_file missing
//! # Ok::<(), sextant_web::Error>(())
//! ```

mod auth;
mod config;
mod serve;

pub use auth::require_basic_auth;
pub use config::{ClientAuth, TlsServerConfig, TlsVersion, WebConfig};
pub use serve::serve;

/// Errors of loading a web configuration or serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The web configuration file is not valid.
    #[error("web config {file}: {message}")]
    Config { file: String, message: String },
    /// A certificate or key file could not be read or used.
    #[error("TLS: {0}")]
    Tls(String),
    /// Binding or accepting failed.
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

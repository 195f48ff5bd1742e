//! The serving loop: plain HTTP through axum, or TLS through rustls, until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use crate::auth::require_basic_auth;
use crate::config::{ClientAuth, TlsServerConfig, TlsVersion};
use crate::{Error, WebConfig};

fn tls_config(tls: &TlsServerConfig) -> Result<rustls::ServerConfig, Error> {
    let terr = |what: &str, e: &dyn std::fmt::Display| Error::Tls(format!("{what}: {e}"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_file)
        .map_err(|e| terr(&tls.cert_file.display().to_string(), &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| terr(&tls.cert_file.display().to_string(), &e))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!("{}: no certificate found", tls.cert_file.display())));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|e| terr(&tls.key_file.display().to_string(), &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match (tls.min_version, tls.max_version) {
        (TlsVersion::Tls13, _) => vec![&rustls::version::TLS13],
        (_, Some(TlsVersion::Tls12)) => vec![&rustls::version::TLS12],
        _ => vec![&rustls::version::TLS12, &rustls::version::TLS13],
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| terr("protocol versions", &e))?;
    let builder = match (&tls.client_ca_file, tls.client_auth) {
        (Some(ca), auth) if auth != ClientAuth::None => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| terr(&ca.display().to_string(), &e))? {
                let cert = cert.map_err(|e| terr(&ca.display().to_string(), &e))?;
                roots.add(cert).map_err(|e| terr(&ca.display().to_string(), &e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::VerifyIfGiven { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| terr("client CA", &e))?)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| terr("certificate and key", &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves `router` on `listener` with `config` (TLS, basic auth) until `shutdown` resolves.
/// Plain HTTP finishes in-flight requests before returning; TLS connections are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &WebConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let router = require_basic_auth(router, &config.basic_auth_users);
    let Some(tls) = &config.tls else {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        return axum::serve(listener, service).with_graceful_shutdown(shutdown).await.map_err(Error::Io);
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(tls)?));
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _peer)) = accepted else { continue };
                let acceptor = acceptor.clone();
                let service = hyper_util::service::TowerToHyperService::new(router.clone());
                connections.spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else { return };
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    connections.shutdown().await;
    Ok(())
}

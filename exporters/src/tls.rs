//! TLS client configuration (rustls) shared by the exporters that dial out over TLS: the
//! blackbox http/tcp probers, Redis (`rediss://`) and PostgreSQL (`sslmode`).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};

/// Prometheus' `tls_config` (the part the exporters use), or the equivalent flags.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsSettings {
    /// Accept any server certificate (signatures are still checked).
    pub(crate) insecure_skip_verify: bool,
    /// PEM file of the CAs to trust instead of the Web PKI roots.
    pub(crate) ca_file: Option<String>,
    /// The name to verify (and send as SNI) instead of the target's host.
    pub(crate) server_name: Option<String>,
    /// PEM files of a client certificate and its key.
    pub(crate) client_cert: Option<(String, String)>,
    /// Verify the chain but not the name (lib/pq's `sslmode=verify-ca`).
    pub(crate) skip_name_check: bool,
}

/// The Web PKI verifier, with two relaxations Go's `crypto/tls` has: a server certificate
/// that is itself one of the trusted certificates is accepted (a self-signed certificate
/// given as `ca_file`, even when it is marked as a CA), and, for lib/pq's `verify-ca`, a name
/// mismatch is accepted.
#[derive(Debug)]
struct Verifier {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    trusted: Vec<CertificateDer<'static>>,
    skip_name_check: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. },
            )) if self.skip_name_check => Ok(ServerCertVerified::assertion()),
            Err(_) if self.trusted.iter().any(|cert| cert.as_ref() == end_entity.as_ref()) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Accepts any certificate (`insecure_skip_verify: true`), still checking signatures.
#[derive(Debug)]
struct SkipVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for SkipVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl TlsSettings {
    fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = if self.insecure_skip_verify {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(SkipVerification(provider)))
        } else {
            let mut roots = rustls::RootCertStore::empty();
            let mut trusted = Vec::new();
            match &self.ca_file {
                Some(path) => {
                    for cert in CertificateDer::pem_file_iter(path).map_err(|e| format!("{path}: {e}"))? {
                        let cert = cert.map_err(|e| format!("{path}: {e}"))?;
                        roots.add(cert.clone()).map_err(|e| format!("{path}: {e}"))?;
                        trusted.push(cert);
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| e.to_string())?;
            let verifier = Verifier { webpki, trusted, skip_name_check: self.skip_name_check };
            builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier))
        };
        match &self.client_cert {
            Some((cert_file, key_file)) => {
                let certs = CertificateDer::pem_file_iter(cert_file)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("{cert_file}: {e}"))?;
                let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| format!("{key_file}: {e}"))?;
                builder.with_client_auth_cert(certs, key).map_err(|e| format!("{cert_file}: {e}"))
            }
            None => Ok(builder.with_no_client_auth()),
        }
    }

    /// A TLS handshake over `stream` for `host` (or the configured `server_name`).
    pub(crate) async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        host: &str,
    ) -> Result<tokio_rustls::client::TlsStream<S>, String> {
        let config = self.client_config()?;
        let name = self.server_name.as_deref().unwrap_or(host).trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(name.to_string()).map_err(|e| format!("server name {name:?}: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        connector.connect(server_name, stream).await.map_err(|e| format!("TLS handshake with {name}: {e}"))
    }
}

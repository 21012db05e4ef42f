//! TLS on the listener (rustls): the certificate from the config's files,
//! or, for development, a certificate authority and a certificate it signs,
//! made with rcgen at first start and kept beside the state. The HTTPS
//! listener offers HTTP/2 and HTTP/1.1 by ALPN and serves the same router as
//! the HTTP one.

mod dev_ca;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ResolvesServerCert;
use rustls::sign::CertifiedKey;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file could not be read or parsed.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The certificate and key do not make a usable server identity.
    #[error("[server.tls]: {0}")]
    Identity(String),
    /// The self-signed certificate could not be made or kept.
    #[error("self-signed certificate in {dir}: {message}")]
    SelfSigned {
        /// Where it is kept.
        dir: PathBuf,
        /// What failed.
        message: String,
    },
}

/// `[server.tls]`: an HTTPS listener (HTTP/2 and HTTP/1.1 by ALPN) serving
/// the same routes as `listen`, with a certificate from files or, for
/// development, one gantry makes itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// HTTPS listen address.
    pub listen: String,
    /// PEM certificate chain (leaf first), with `key`.
    pub cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    pub key: Option<PathBuf>,
    /// Dev only: make a certificate authority and a certificate it signs
    /// at first start, kept in `dir` and reused after.
    #[serde(default)]
    pub self_signed: bool,
    /// The names a self-signed certificate is for (DNS names or IP addresses).
    #[serde(default = "default_tls_names")]
    pub names: Vec<String>,
    /// Where a self-signed certificate is kept (default: `gantry-tls/`
    /// beside the state file, or in the config's directory for `:memory:`).
    pub dir: Option<PathBuf>,
}

fn default_tls_names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
}

/// Longest a client may take to complete the TLS handshake.
const HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

/// Marks a request that came over the TLS listener (a request extension),
/// so frontends are told the scheme their clients used.
#[derive(Debug, Clone, Copy)]
pub struct Secure;

/// An HTTPS listener's identity, ready to accept.
pub struct Tls {
    /// Accepts TLS connections.
    pub acceptor: TlsAcceptor,
    /// The dev certificate authority clients trust, when self-signed.
    pub authority: Option<PathBuf>,
}

impl Tls {
    /// The identity `config` names; relative paths resolve against `base`,
    /// and a self-signed one is kept in `default_dir` unless the config says
    /// where, made for the config's names and, with container URLs under
    /// `ingress_domain`, for `*.<domain>`; deeper names under it get
    /// certificates the dev authority signs when first asked for.
    pub fn from_config(
        config: &TlsConfig,
        base: &Path,
        default_dir: &Path,
        ingress_domain: Option<&str>,
    ) -> Result<Tls, TlsError> {
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let (cert, key, dev) = match (&config.cert, &config.key) {
            (Some(cert), Some(key)) => (resolve(cert), resolve(key), None),
            _ => {
                let dir = config
                    .dir
                    .as_deref()
                    .map_or_else(|| default_dir.to_path_buf(), resolve);
                let mut names = config.names.clone();
                if let Some(domain) = ingress_domain {
                    let wildcard = format!("*.{domain}");
                    if !names.contains(&wildcard) {
                        names.push(wildcard);
                    }
                }
                let files = dev_ca::self_signed(&dir, &names)?;
                (files.cert.clone(), files.key.clone(), Some(files))
            }
        };
        let chain = CertificateDer::pem_file_iter(&cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| pem_error(&cert, e))?;
        if chain.is_empty() {
            return Err(TlsError::Pem {
                path: cert,
                message: "no certificate in the file".into(),
            });
        }
        let key_der = PrivateKeyDer::from_pem_file(&key).map_err(|e| pem_error(&key, e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let configured = Arc::new(
            CertifiedKey::from_der(chain, key_der, &provider).map_err(|e| {
                TlsError::Identity(format!("certificate and key do not match: {e}"))
            })?,
        );
        let resolver: Arc<dyn ResolvesServerCert> = match (&dev, ingress_domain) {
            (Some(files), Some(domain)) => Arc::new(
                dev_ca::SniResolver::new(configured, domain, files).map_err(|message| {
                    TlsError::SelfSigned {
                        dir: files
                            .ca_key
                            .parent()
                            .map(Path::to_path_buf)
                            .unwrap_or_default(),
                        message,
                    }
                })?,
            ),
            _ => Arc::new(SingleCert(configured)),
        };
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Identity(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            authority: dev.map(|f| f.ca),
        })
    }
}

fn pem_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// One certificate for every name.
#[derive(Debug)]
struct SingleCert(Arc<CertifiedKey>);

impl ResolvesServerCert for SingleCert {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Accept TLS connections on `listener` and serve `router` on each (HTTP/2
/// or HTTP/1.1, as ALPN chose, upgrades included) until `stop` fires; then
/// let the open connections finish what they are answering (up to
/// [`DRAIN`]) before returning.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Tls,
    router: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let router = router.layer(axum::Extension(Secure));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "HTTPS accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let acceptor = tls.acceptor.clone();
        // The peer's address, as the plain listener gives it (X-Forwarded-For).
        let with_peer = tower::ServiceExt::map_request(
            router.clone(),
            move |mut r: http::Request<hyper::body::Incoming>| {
                r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                r
            },
        );
        let service = TowerToHyperService::new(with_peer);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // A client that never says hello must not hold a descriptor forever.
            let stream = match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let served = watcher.watch(connection).await;
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "HTTPS connection ended");
            }
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTPS connections still open after {DRAIN:?}; closing them");
    }
}

/// Longest the HTTPS listener waits for open connections at shutdown.
pub const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_not_pem_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = dev_ca::self_signed(dir.path(), &["localhost".to_string()]).expect("made");
        std::fs::write(dir.path().join("bad.pem"), "not a key").expect("write");
        let config = TlsConfig {
            listen: "127.0.0.1:0".into(),
            cert: Some(files.cert),
            key: Some(dir.path().join("bad.pem")),
            self_signed: false,
            names: Vec::new(),
            dir: None,
        };
        match Tls::from_config(&config, dir.path(), dir.path(), None) {
            Err(TlsError::Pem { path, .. }) => assert!(path.ends_with("bad.pem")),
            Err(e) => panic!("expected a PEM error, got {e}"),
            Ok(_) => panic!("expected a PEM error"),
        }
    }
}

//! TLS on the listener (rustls): the certificate from the config's files,
//! or, for development, a certificate authority and a certificate it signs,
//! made with rcgen at first start and kept beside the state. The HTTPS
//! listener offers HTTP/2 and HTTP/1.1 by ALPN and serves the same router as
//! the HTTP one.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
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

/// The files of a self-signed identity under `dir`.
struct Files {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    names: PathBuf,
}

impl Files {
    fn in_dir(dir: &Path) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            names: dir.join("names"),
        }
    }
}

impl Tls {
    /// The identity `config` names; relative paths resolve against `base`,
    /// and a self-signed one is kept in `default_dir` unless the config says
    /// where, made for the config's names and `also` (the container URLs'
    /// wildcard).
    pub fn from_config(
        config: &TlsConfig,
        base: &Path,
        default_dir: &Path,
        also: &[String],
    ) -> Result<Tls, TlsError> {
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let (cert, key, authority) = match (&config.cert, &config.key) {
            (Some(cert), Some(key)) => (resolve(cert), resolve(key), None),
            _ => {
                let dir = config
                    .dir
                    .as_deref()
                    .map_or_else(|| default_dir.to_path_buf(), resolve);
                let mut names = config.names.clone();
                names.extend(also.iter().filter(|n| !config.names.contains(n)).cloned());
                let files = self_signed(&dir, &names)?;
                (files.cert, files.key, Some(files.ca))
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
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Identity(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(|e| TlsError::Identity(format!("certificate and key do not match: {e}")))?;
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            authority,
        })
    }
}

fn pem_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The self-signed identity in `dir` for `names`: made at first start (or
/// when the names changed), reused after. Keys are written owner-only.
fn self_signed(dir: &Path, names: &[String]) -> Result<Files, TlsError> {
    let files = Files::in_dir(dir);
    let wanted = names.join("\n");
    let fail = |message: String| TlsError::SelfSigned {
        dir: dir.to_path_buf(),
        message,
    };
    let current = std::fs::read_to_string(&files.names).ok();
    if current.as_deref() == Some(wanted.as_str())
        && [&files.ca, &files.cert, &files.key]
            .iter()
            .all(|p| p.exists())
    {
        return Ok(files);
    }
    let made = make_identity(names).map_err(|e| fail(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    write_private(&files.key, &made.key).map_err(|e| fail(e.to_string()))?;
    for (path, text) in [
        (&files.cert, &made.cert),
        (&files.ca, &made.ca),
        (&files.names, &wanted),
    ] {
        std::fs::write(path, text).map_err(|e| fail(e.to_string()))?;
    }
    // Said once, when made: clients must be told to trust it.
    tracing::warn!(
        authority = %files.ca.display(),
        names = %names.join(", "),
        "made a self-signed dev certificate; trust its authority (e.g. curl --cacert, REQUESTS_CA_BUNDLE) or configure [server.tls] cert and key"
    );
    Ok(files)
}

/// PEM texts of a fresh identity.
struct Made {
    ca: String,
    cert: String,
    key: String,
}

fn make_identity(names: &[String]) -> Result<Made, rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "gantry dev certificate authority");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let mut leaf = CertificateParams::new(names.to_vec())?;
    if let Some(first) = names.first() {
        leaf.distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key)?;
    Ok(Made {
        ca: ca_cert.pem(),
        cert: leaf_cert.pem(),
        key: leaf_key.serialize_pem(),
    })
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    // `mode` applies only to a file it creates: a key made again keeps
    // whatever mode the old file had unless set here.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
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
    fn a_self_signed_identity_is_made_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let first = self_signed(dir.path(), &names).expect("made");
        let ca = std::fs::read_to_string(&first.ca).expect("ca");
        let again = self_signed(dir.path(), &names).expect("reused");
        assert_eq!(std::fs::read_to_string(&again.ca).expect("ca"), ca);
        let mode = std::fs::metadata(&first.key).expect("key").permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o077, 0);
        let other = self_signed(dir.path(), &["example.test".to_string()]).expect("remade");
        assert_ne!(
            std::fs::read_to_string(&other.ca).expect("ca"),
            ca,
            "new names, new identity"
        );
    }

    #[test]
    fn a_key_that_is_not_pem_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = self_signed(dir.path(), &["localhost".to_string()]).expect("made");
        std::fs::write(dir.path().join("bad.pem"), "not a key").expect("write");
        let config = TlsConfig {
            listen: "127.0.0.1:0".into(),
            cert: Some(files.cert),
            key: Some(dir.path().join("bad.pem")),
            self_signed: false,
            names: Vec::new(),
            dir: None,
        };
        match Tls::from_config(&config, dir.path(), dir.path(), &[]) {
            Err(TlsError::Pem { path, .. }) => assert!(path.ends_with("bad.pem")),
            Err(e) => panic!("expected a PEM error, got {e}"),
            Ok(_) => panic!("expected a PEM error"),
        }
    }
}

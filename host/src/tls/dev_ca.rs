//! The development identity: a certificate authority made with rcgen at
//! first start, a certificate it signs for the configured names, both kept
//! beside the state; and, for container URLs deeper than the certificate's
//! `*.<domain>` wildcard (ARM's `<label>.<location>.<domain>`), wildcard
//! certificates the authority signs when a client first asks for such a
//! name (SNI).

use super::TlsError;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The files of a self-signed identity in one directory.
pub(super) struct Files {
    /// The authority's certificate: what clients trust.
    pub ca: PathBuf,
    /// The authority's key (owner-only), kept to sign certificates for
    /// names asked for later.
    pub ca_key: PathBuf,
    /// The server certificate.
    pub cert: PathBuf,
    /// Its key (owner-only).
    pub key: PathBuf,
    /// The names it was made for, one per line.
    names: PathBuf,
}

impl Files {
    fn in_dir(dir: &Path) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            names: dir.join("names"),
        }
    }
}

/// The self-signed identity in `dir` for `names`: made at first start (or
/// when the names changed, or a file is missing), reused after. Keys are
/// written owner-only.
pub(super) fn self_signed(dir: &Path, names: &[String]) -> Result<Files, TlsError> {
    let files = Files::in_dir(dir);
    let wanted = names.join("\n");
    let fail = |message: String| TlsError::SelfSigned {
        dir: dir.to_path_buf(),
        message,
    };
    let current = std::fs::read_to_string(&files.names).ok();
    if current.as_deref() == Some(wanted.as_str())
        && [&files.ca, &files.ca_key, &files.cert, &files.key]
            .iter()
            .all(|p| p.exists())
    {
        return Ok(files);
    }
    let made = make_identity(names).map_err(|e| fail(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    write_private(&files.ca_key, &made.ca_key).map_err(|e| fail(e.to_string()))?;
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
    ca_key: String,
    cert: String,
    key: String,
}

/// The authority's parameters. Always the same, so the authority can be
/// rebuilt from its kept key alone: what a signature names of its issuer
/// (subject, key identifier) depends only on these and the key.
fn authority_params() -> Result<CertificateParams, rcgen::Error> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "gantry dev certificate authority");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(ca)
}

/// A server certificate for `names`, signed by the authority.
fn server_certificate(
    names: &[String],
    authority: &Certificate,
    authority_key: &KeyPair,
) -> Result<(Certificate, KeyPair), rcgen::Error> {
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
    let key = KeyPair::generate()?;
    let cert = leaf.signed_by(&key, authority, authority_key)?;
    Ok((cert, key))
}

fn make_identity(names: &[String]) -> Result<Made, rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let ca_cert = authority_params()?.self_signed(&ca_key)?;
    let (cert, key) = server_certificate(names, &ca_cert, &ca_key)?;
    Ok(Made {
        ca: ca_cert.pem(),
        ca_key: ca_key.serialize_pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
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

/// Most minted certificates kept; past it the cache starts over (names are
/// few in practice: one wildcard per location).
const MINTED_KEPT: usize = 256;

/// Chooses the server certificate by SNI: the configured one, except for
/// names two or more labels under the ingress domain, which get a wildcard
/// for their parent (`*.<location>.<domain>`) minted by the dev authority
/// once and kept in memory.
pub(super) struct SniResolver {
    configured: Arc<CertifiedKey>,
    /// `.<domain>`, lower-case.
    suffix: String,
    authority: Certificate,
    authority_key: KeyPair,
    minted: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SniResolver")
            .field("suffix", &self.suffix)
            .finish_non_exhaustive()
    }
}

impl SniResolver {
    /// A resolver serving `configured`, minting under `domain` with the
    /// authority whose key is in `files`.
    pub(super) fn new(
        configured: Arc<CertifiedKey>,
        domain: &str,
        files: &Files,
    ) -> Result<Self, String> {
        let pem = std::fs::read_to_string(&files.ca_key)
            .map_err(|e| format!("{}: {e}", files.ca_key.display()))?;
        let authority_key =
            KeyPair::from_pem(&pem).map_err(|e| format!("{}: {e}", files.ca_key.display()))?;
        let authority = authority_params()
            .and_then(|p| p.self_signed(&authority_key))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            configured,
            suffix: format!(".{}", domain.trim_matches('.').to_ascii_lowercase()),
            authority,
            authority_key,
            minted: Mutex::new(HashMap::new()),
        })
    }

    /// The wildcard a name needs, when the configured certificate's
    /// `*.<domain>` does not cover it: `*.<parent>` for `<label>.<parent>`
    /// with `<parent>` itself under the domain.
    fn wildcard_for(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        let inner = name.strip_suffix(&self.suffix)?;
        let (_, parent_labels) = inner.split_once('.')?;
        Some(format!("*.{parent_labels}{}", self.suffix))
    }

    fn mint(&self, wildcard: &str) -> Result<Arc<CertifiedKey>, String> {
        let (cert, key) = server_certificate(
            &[wildcard.to_string()],
            &self.authority,
            &self.authority_key,
        )
        .map_err(|e| e.to_string())?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signer =
            rustls::crypto::ring::sign::any_supported_type(&key_der).map_err(|e| e.to_string())?;
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        Ok(Arc::new(CertifiedKey::new(chain, signer)))
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(wildcard) = hello.server_name().and_then(|n| self.wildcard_for(n)) else {
            return Some(self.configured.clone());
        };
        let cached = self
            .minted
            .lock()
            .ok()
            .and_then(|m| m.get(&wildcard).cloned());
        if let Some(found) = cached {
            return Some(found);
        }
        match self.mint(&wildcard) {
            Ok(minted) => {
                if let Ok(mut m) = self.minted.lock() {
                    if m.len() >= MINTED_KEPT {
                        m.clear();
                    }
                    m.insert(wildcard, minted.clone());
                }
                Some(minted)
            }
            Err(e) => {
                tracing::warn!(name = %wildcard, error = %e, "cannot mint a dev certificate; serving the configured one");
                Some(self.configured.clone())
            }
        }
    }
}

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
        for key in [&first.key, &first.ca_key] {
            let mode = std::fs::metadata(key).expect("key").permissions();
            assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o077, 0);
        }
        let other = self_signed(dir.path(), &["example.test".to_string()]).expect("remade");
        assert_ne!(
            std::fs::read_to_string(&other.ca).expect("ca"),
            ca,
            "new names, new identity"
        );
        std::fs::remove_file(&other.ca_key).expect("remove");
        let remade = self_signed(dir.path(), &["example.test".to_string()]).expect("remade");
        assert!(
            remade.ca_key.exists(),
            "an identity without its authority's key is made again"
        );
    }

    fn resolver(dir: &Path) -> SniResolver {
        let files = self_signed(dir, &["localhost".to_string()]).expect("made");
        let key = rustls::pki_types::pem::PemObject::from_pem_file(&files.key).expect("key");
        let signer = rustls::crypto::ring::sign::any_supported_type(&key).expect("signer");
        let cert = rustls::pki_types::pem::PemObject::from_pem_file(&files.cert).expect("cert");
        let configured = Arc::new(CertifiedKey::new(vec![cert], signer));
        SniResolver::new(configured, "Ingress.Test", &files).expect("resolver")
    }

    #[test]
    fn only_names_deeper_than_the_wildcard_get_their_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = resolver(dir.path());
        assert_eq!(
            r.wildcard_for("abc.ingress.test"),
            None,
            "*.<domain> covers it"
        );
        assert_eq!(r.wildcard_for("localhost"), None);
        assert_eq!(r.wildcard_for("x.ingress.test.example"), None);
        assert_eq!(
            r.wildcard_for("Web.WestEurope.ingress.test").as_deref(),
            Some("*.westeurope.ingress.test")
        );
        assert_eq!(
            r.wildcard_for("a.b.c.ingress.test").as_deref(),
            Some("*.b.c.ingress.test")
        );
    }

    #[test]
    fn a_minted_certificate_chains_to_the_kept_authority() {
        use rustls::client::danger::ServerCertVerifier;
        let dir = tempfile::tempdir().expect("tempdir");
        let r = resolver(dir.path());
        let minted = r.mint("*.westeurope.ingress.test").expect("minted");
        // Verified as a client would, against the authority on disk: the
        // resolver rebuilt its issuer from the kept key alone.
        let ca = rustls::pki_types::pem::PemObject::from_pem_file(dir.path().join("ca.pem"))
            .expect("ca");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("verifier");
        let name =
            rustls::pki_types::ServerName::try_from("web.westeurope.ingress.test").expect("name");
        verifier
            .verify_server_cert(
                &minted.cert[0],
                &[],
                &name,
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .expect("the minted certificate verifies for the FQDN");
        let other =
            rustls::pki_types::ServerName::try_from("web.northeurope.ingress.test").expect("name");
        assert!(
            verifier
                .verify_server_cert(
                    &minted.cert[0],
                    &[],
                    &other,
                    &[],
                    rustls::pki_types::UnixTime::now()
                )
                .is_err(),
            "a location's wildcard is only that location's"
        );
    }
}

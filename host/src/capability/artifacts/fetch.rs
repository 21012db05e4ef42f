//! One download: the GET (redirects followed only within the grant), and
//! the body handed out in chunks under the grant's size and time limits,
//! hashed as it goes and checked at its end.

use super::Artifacts;
use crate::bindings::ArtifactBody;
use crate::bindings::gantry::plugin::artifacts::{Checksums, FetchError};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use md5::Md5;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use tokio::time::Instant;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// Where the system's trusted certificate authorities are (Debian's bundle).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A TLS client trusting the system's authorities and those in `ca`.
pub(super) fn client_tls(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    if let Ok(certs) = CertificateDer::pem_file_iter(SYSTEM_ROOTS) {
        roots.add_parsable_certificates(certs.flatten());
    }
    if let Some(ca) = ca {
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|c| c.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{}: {e}", ca.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: no certificate in the file", ca.display()));
        }
        for c in certs {
            roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A digest the body must have.
struct Expected<D> {
    hasher: D,
    want: Vec<u8>,
}

impl<D: Digest> Expected<D> {
    fn new(name: &str, hex_text: Option<&str>) -> Result<Option<Self>, FetchError> {
        let Some(text) = hex_text.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let want = hex::decode(text.to_ascii_lowercase())
            .ok()
            .filter(|w| w.len() == <D as Digest>::output_size())
            .ok_or_else(|| FetchError::Failed(format!("`{text}` is not a {name} digest")))?;
        Ok(Some(Self {
            hasher: D::new(),
            want,
        }))
    }

    fn matches(self) -> bool {
        self.hasher.finalize()[..] == self.want[..]
    }
}

/// A download under way.
pub(super) struct Fetch {
    body: hyper::body::Incoming,
    pending: Bytes,
    size: Option<u64>,
    received: u64,
    max_bytes: u64,
    deadline: Instant,
    sha256: Option<Expected<Sha256>>,
    md5: Option<Expected<Md5>>,
    ended: bool,
    /// The connection's task, stopped with the download.
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Fetch {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Fetch {
    /// GET `url` under `grant`: the response to the last granted redirect,
    /// once its status is 200 and its announced length fits.
    pub(super) async fn start(
        grant: &Artifacts,
        url: &str,
        checksums: &Checksums,
    ) -> Result<Fetch, FetchError> {
        let sha256 = Expected::<Sha256>::new("sha256", checksums.sha256.as_deref())?;
        let md5 = Expected::<Md5>::new("md5", checksums.md5.as_deref())?;
        let deadline = Instant::now() + grant.timeout;
        let mut url = grant.granted(url)?;
        for _ in 0..=MAX_REDIRECTS {
            let (response, connection) = tokio::time::timeout_at(deadline, get(grant, &url))
                .await
                .map_err(|_| FetchError::TimedOut)??;
            let status = response.status();
            if status.is_redirection() {
                connection.abort();
                let location = response
                    .headers()
                    .get(http::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or(FetchError::Status(status.as_u16()))?;
                let next = url
                    .join(location)
                    .map_err(|e| FetchError::Failed(format!("redirect to `{location}`: {e}")))?;
                url = grant.granted(next.as_str()).map_err(|e| match e {
                    FetchError::Denied(why) => FetchError::Denied(format!("redirected: {why}")),
                    other => other,
                })?;
                continue;
            }
            if status != http::StatusCode::OK {
                connection.abort();
                return Err(FetchError::Status(status.as_u16()));
            }
            let size = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| l.parse::<u64>().ok());
            if size.is_some_and(|s| s > grant.max_bytes) {
                connection.abort();
                return Err(FetchError::TooLarge(grant.max_bytes));
            }
            return Ok(Fetch {
                body: response.into_body(),
                pending: Bytes::new(),
                size,
                received: 0,
                max_bytes: grant.max_bytes,
                deadline,
                sha256,
                md5,
                ended: false,
                connection,
            });
        }
        Err(FetchError::Failed(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// Check the digests of the whole body.
    fn verify(&mut self) -> Result<(), FetchError> {
        if let Some(e) = self.sha256.take()
            && !e.matches()
        {
            return Err(FetchError::ChecksumMismatch("sha256".into()));
        }
        if let Some(e) = self.md5.take()
            && !e.matches()
        {
            return Err(FetchError::ChecksumMismatch("md5".into()));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ArtifactBody for Fetch {
    fn size(&self) -> Option<u64> {
        self.size
    }

    async fn next(&mut self, max_bytes: u32) -> Result<Option<Vec<u8>>, FetchError> {
        let max = (max_bytes as usize).max(1);
        while self.pending.is_empty() {
            if self.ended {
                return Ok(None);
            }
            let frame = tokio::time::timeout_at(self.deadline, self.body.frame())
                .await
                .map_err(|_| FetchError::TimedOut)?;
            match frame {
                None => {
                    self.ended = true;
                    self.verify()?;
                    return Ok(None);
                }
                Some(Err(e)) => return Err(FetchError::Failed(format!("reading the body: {e}"))),
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers
                    };
                    self.received += data.len() as u64;
                    if self.received > self.max_bytes {
                        return Err(FetchError::TooLarge(self.max_bytes));
                    }
                    if let Some(e) = &mut self.sha256 {
                        e.hasher.update(&data);
                    }
                    if let Some(e) = &mut self.md5 {
                        e.hasher.update(&data);
                    }
                    self.pending = data;
                }
            }
        }
        let take = max.min(self.pending.len());
        Ok(Some(self.pending.split_to(take).to_vec()))
    }
}

/// One GET of `url` on a fresh connection: the response head, and the task
/// driving the connection.
async fn get(
    grant: &Artifacts,
    url: &url::Url,
) -> Result<
    (
        hyper::Response<hyper::body::Incoming>,
        tokio::task::JoinHandle<()>,
    ),
    FetchError,
> {
    let (_, host, port) = super::origin(url).map_err(FetchError::Failed)?;
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        FetchError::Failed(format!("{what} {host}:{port}: {e}"))
    };
    // An IPv6 literal comes bracketed in a URL, not in a socket address.
    let dial = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let tcp = tokio::net::TcpStream::connect((dial.as_str(), port))
        .await
        .map_err(|e| failed("connecting to", &e))?;
    // Origin form: the path and query, the host in `Host`.
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let request = hyper::Request::get(target)
        .header(
            http::header::HOST,
            match url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.clone(),
            },
        )
        .header(http::header::USER_AGENT, "gantry-artifacts")
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| failed("request to", &e))?;
    if url.scheme() == "https" {
        let tls = grant
            .tls
            .clone()
            .ok_or_else(|| FetchError::Failed("no TLS client for https".into()))?;
        let name = ServerName::try_from(dial.clone()).map_err(|e| failed("TLS name of", &e))?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| failed("TLS with", &e))?;
        send(TokioIo::new(stream), request)
            .await
            .map_err(|e| failed("GET from", &e))
    } else {
        send(TokioIo::new(tcp), request)
            .await
            .map_err(|e| failed("GET from", &e))
    }
}

async fn send<I>(
    io: I,
    request: hyper::Request<http_body_util::Empty<Bytes>>,
) -> Result<
    (
        hyper::Response<hyper::body::Incoming>,
        tokio::task::JoinHandle<()>,
    ),
    hyper::Error,
>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "artifact connection ended");
        }
    });
    match sender.send_request(request).await {
        Ok(response) => Ok((response, task)),
        Err(e) => {
            task.abort();
            Err(e)
        }
    }
}

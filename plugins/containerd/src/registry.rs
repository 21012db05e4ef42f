//! Pulling an image from a registry into the namespace's content store.
//!
//! containerd 1.6 has no pull call: its clients speak the registry's
//! distribution API themselves and write what they fetch through
//! `Content.Write`. So does this plugin, for the registries its config
//! grants (`registries = "host[:port]=endpoint,..."`: the registry of a
//! reference, and the granted endpoint that reaches it); a pull is attempted
//! only there, anonymously, and reported as progress. Blobs stream from the
//! registry into containerd without being held whole in the plugin.

use crate::api::containerd::services::content::v1::{
    InfoRequest, InfoResponse, WriteAction, WriteContentRequest, WriteContentResponse,
};
use crate::api::containerd::services::images::v1::{
    CreateImageRequest, CreateImageResponse, Image,
};
use crate::api::containerd::types::Descriptor;
use crate::grpc::{Call, Upload, last_answer, unary};
use crate::oci::{Manifest, is_index_type};
use gantry_sdk::backend::gantry::plugin::config;
use gantry_sdk::backend::gantry::plugin::progress;
use gantry_sdk::backend::gantry::plugin::types::Error;
use gantry_sdk::wasip2::http::outgoing_handler;
use gantry_sdk::wasip2::http::types::{
    Fields, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use gantry_sdk::wasip2::io::streams::{InputStream, StreamError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Largest manifest or config read whole.
const MAX_DOCUMENT: usize = 4 << 20;
/// Size of one `Content.Write` message.
const CHUNK: usize = 1 << 20;

const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.oci.image.manifest.v1+json";

/// A normalised reference's parts: `registry/repository` and a tag or digest.
#[derive(Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`.
    pub registry: String,
    /// The repository path.
    pub repository: String,
    /// The tag or `sha256:` digest.
    pub reference: String,
}

/// Split a normalised name (`docker.io/library/busybox:latest`, `host:5000/a/b@sha256:..`).
pub fn parse(name: &str) -> Option<Reference> {
    let (registry, rest) = name.split_once('/')?;
    let (repository, reference) = match rest.split_once('@') {
        Some((r, d)) => (r, d),
        None => rest.rsplit_once(':')?,
    };
    Some(Reference {
        registry: registry.to_string(),
        repository: repository.to_string(),
        reference: reference.to_string(),
    })
}

/// The granted endpoint that reaches `registry`, if the config names one.
pub fn endpoint_for(registry: &str) -> Option<String> {
    config::get("registries")?.split(',').find_map(|pair| {
        let (host, endpoint) = pair.trim().split_once('=')?;
        (host.trim() == registry).then(|| endpoint.trim().to_string())
    })
}

/// A registry answer, its body read as it comes.
struct Answer {
    // Field order matters: the stream before its body, the body before the response.
    stream: InputStream,
    _body: IncomingBody,
    _response: IncomingResponse,
    status: u16,
    headers: HashMap<String, String>,
}

fn unreachable(registry: &str, what: impl std::fmt::Debug) -> Error {
    Error::Unavailable(format!("registry {registry} unreachable: {what:?}"))
}

fn get(endpoint: &str, registry: &str, path: &str, accept: Option<&str>) -> Result<Answer, Error> {
    let headers = Fields::new();
    if let Some(a) = accept {
        let _ = headers.set("accept", &[a.as_bytes().to_vec()]);
    }
    let req = OutgoingRequest::new(headers);
    let bad = |what: &str| Error::Internal(format!("cannot build request: {what}"));
    req.set_method(&Method::Get).map_err(|()| bad("method"))?;
    req.set_scheme(Some(&Scheme::Http))
        .map_err(|()| bad("scheme"))?;
    req.set_authority(Some(endpoint))
        .map_err(|()| bad("authority"))?;
    req.set_path_with_query(Some(path))
        .map_err(|()| bad("path"))?;
    let out = req.body().map_err(|()| bad("body"))?;
    let fut = outgoing_handler::handle(req, None).map_err(|c| unreachable(registry, c))?;
    OutgoingBody::finish(out, None).map_err(|c| unreachable(registry, c))?;
    let resp = loop {
        match fut.get() {
            Some(Ok(Ok(r))) => break r,
            Some(Ok(Err(code))) => return Err(unreachable(registry, code)),
            Some(Err(())) => return Err(Error::Internal("response already taken".into())),
            None => fut.subscribe().block(),
        }
    };
    let status = resp.status();
    let headers = resp
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();
    let body = resp
        .consume()
        .map_err(|()| Error::Internal("response body already taken".into()))?;
    let stream = body
        .stream()
        .map_err(|()| Error::Internal("response stream already taken".into()))?;
    Ok(Answer {
        stream,
        _body: body,
        _response: resp,
        status,
        headers,
    })
}

impl Answer {
    /// The next bytes; `None` at the end.
    fn chunk(&self, registry: &str) -> Result<Option<Vec<u8>>, Error> {
        loop {
            match self.stream.blocking_read(CHUNK as u64) {
                Ok(b) if b.is_empty() => continue,
                Ok(b) => return Ok(Some(b)),
                Err(StreamError::Closed) => return Ok(None),
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(unreachable(registry, e.to_debug_string()));
                }
            }
        }
    }

    fn whole(&self, registry: &str) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        while let Some(b) = self.chunk(registry)? {
            out.extend(b);
            if out.len() > MAX_DOCUMENT {
                return Err(Error::Backend(format!(
                    "registry {registry} sent a document over {MAX_DOCUMENT} bytes"
                )));
            }
        }
        Ok(out)
    }
}

fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn refused(r: &Reference, what: &str, a: &Answer) -> Error {
    let m = format!(
        "{}/{}:{}: registry answered {} for {what}",
        r.registry, r.repository, r.reference, a.status
    );
    match a.status {
        404 => Error::NotFound(m),
        401 | 403 => Error::Forbidden(format!("{m} (this backend pulls anonymously only)")),
        _ => Error::Backend(m),
    }
}

fn exists(digest: &str) -> Result<bool, Error> {
    match unary::<_, InfoResponse>(
        "/containerd.services.content.v1.Content/Info",
        &InfoRequest {
            digest: digest.into(),
        },
    ) {
        Ok(_) => Ok(true),
        Err(s) if s.is_not_found() => Ok(false),
        Err(s) => Err(s.into()),
    }
}

/// Write `first` and what `more` yields as one blob, committed as `digest`.
fn write_blob(
    digest: &str,
    size: i64,
    labels: HashMap<String, String>,
    first: Vec<u8>,
    mut more: impl FnMut() -> Result<Option<Vec<u8>>, Error>,
) -> Result<(), Error> {
    let path = "/containerd.services.content.v1.Content/Write";
    let reference = format!("gantry-pull-{digest}");
    let mut up = Upload::open(path)?;
    let mut offset: i64 = 0;
    let mut pending = first;
    loop {
        let next = more()?;
        let last = next.is_none();
        let len = i64::try_from(pending.len()).unwrap_or(i64::MAX);
        let msg = WriteContentRequest {
            action: if last {
                WriteAction::Commit as i32
            } else {
                WriteAction::Write as i32
            },
            r#ref: reference.clone(),
            total: size,
            expected: digest.into(),
            offset,
            data: std::mem::take(&mut pending),
            labels: if last { labels.clone() } else { HashMap::new() },
        };
        up.send(&msg)?;
        offset += len;
        match next {
            Some(b) => pending = b,
            None => break,
        }
    }
    let pending = up.finish()?;
    let call = Call::wait(pending, None)?
        .ok_or_else(|| Error::Unavailable("containerd did not answer a write".into()))?;
    match last_answer::<WriteContentResponse>(call, path) {
        Ok(_) => Ok(()),
        // Written meanwhile by another pull: what we wanted is there.
        Err(s) if s.code == crate::grpc::Code::AlreadyExists => Ok(()),
        Err(s) => Err(s.into()),
    }
}

/// Fetch a blob into the content store unless it is there.
fn fetch_blob(
    endpoint: &str,
    r: &Reference,
    d: &Descriptor,
    labels: HashMap<String, String>,
) -> Result<(), Error> {
    if exists(&d.digest)? {
        return Ok(());
    }
    let a = get(
        endpoint,
        &r.registry,
        &format!("/v2/{}/blobs/{}", r.repository, d.digest),
        None,
    )?;
    if a.status != 200 {
        return Err(refused(r, &d.digest, &a));
    }
    let first = a.chunk(&r.registry)?.unwrap_or_default();
    write_blob(&d.digest, d.size, labels, first, || a.chunk(&r.registry))
}

/// Store a document already read (manifest, index) as a blob.
fn store_document(
    digest: &str,
    bytes: Vec<u8>,
    labels: HashMap<String, String>,
) -> Result<(), Error> {
    if exists(digest)? {
        return Ok(());
    }
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    write_blob(digest, size, labels, bytes, || Ok(None))
}

/// A manifest document: its bytes, digest and media type.
fn manifest(
    endpoint: &str,
    r: &Reference,
    reference: &str,
) -> Result<(Vec<u8>, String, String), Error> {
    let a = get(
        endpoint,
        &r.registry,
        &format!("/v2/{}/manifests/{reference}", r.repository),
        Some(MANIFEST_TYPES),
    )?;
    if a.status != 200 {
        return Err(refused(r, "its manifest", &a));
    }
    let bytes = a.whole(&r.registry)?;
    let digest = sha256(&bytes);
    if let Some(claimed) = a.headers.get("docker-content-digest")
        && claimed != &digest
    {
        return Err(Error::Backend(format!(
            "registry {}: manifest digest {digest} does not match the claimed {claimed}",
            r.registry
        )));
    }
    let media_type = a.headers.get("content-type").cloned().unwrap_or_default();
    Ok((bytes, digest, media_type))
}

/// Pull `name` (normalised) from its registry through `endpoint`, and record the image.
pub fn pull(
    name: &str,
    r: &Reference,
    endpoint: &str,
    workload: &str,
    platform: (&str, &str),
) -> Result<(), Error> {
    progress::report(workload, &format!("pulling {name}: resolving"), Some(0));
    let (bytes, digest, media_type) = manifest(endpoint, r, &r.reference)?;
    let top = Descriptor {
        media_type: media_type.clone(),
        digest: digest.clone(),
        size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        annotations: HashMap::new(),
    };
    let parsed: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Backend(format!("{name}: unreadable manifest: {e}")))?;
    let is_index = is_index_type(&media_type) || is_index_type(&parsed.media_type);
    let (index, manifest_doc) = if is_index {
        let (os, arch) = platform;
        let chosen = parsed
            .for_platform(os, arch)
            .ok_or_else(|| Error::NotFound(format!("{name} has no manifest for {os}/{arch}")))?
            .clone();
        let (mbytes, mdigest, _) = manifest(endpoint, r, &chosen.digest)?;
        if mdigest != chosen.digest {
            return Err(Error::Backend(format!(
                "{name}: manifest {mdigest} is not the {} its index names",
                chosen.digest
            )));
        }
        (Some((bytes, parsed)), (mbytes, mdigest))
    } else {
        (None, (bytes, digest))
    };
    let m: Manifest = serde_json::from_slice(&manifest_doc.0)
        .map_err(|e| Error::Backend(format!("{name}: unreadable manifest: {e}")))?;
    let config = m
        .config
        .clone()
        .ok_or_else(|| Error::Backend(format!("{name}: manifest without a config")))?;
    // Children first; parents carry the labels that keep them from the garbage collector.
    fetch_blob(endpoint, r, &config.descriptor(), HashMap::new())?;
    let total = m.layers.len();
    for (i, l) in m.layers.iter().enumerate() {
        progress::report(
            workload,
            &format!("pulling {name}: layer {}/{total}", i + 1),
            u8::try_from((i * 100) / total.max(1)).ok(),
        );
        fetch_blob(endpoint, r, &l.descriptor(), HashMap::new())?;
    }
    let mut labels = HashMap::from([(
        "containerd.io/gc.ref.content.config".to_string(),
        config.digest.clone(),
    )]);
    for (i, l) in m.layers.iter().enumerate() {
        labels.insert(
            format!("containerd.io/gc.ref.content.l.{i}"),
            l.digest.clone(),
        );
    }
    store_document(&manifest_doc.1, manifest_doc.0, labels)?;
    if let Some((bytes, parsed)) = index {
        let labels = parsed
            .manifests
            .iter()
            .enumerate()
            .filter(|(_, d)| d.digest == manifest_doc.1)
            .map(|(i, d)| {
                (
                    format!("containerd.io/gc.ref.content.m.{i}"),
                    d.digest.clone(),
                )
            })
            .collect();
        store_document(&top.digest, bytes, labels)?;
    }
    match unary::<_, CreateImageResponse>(
        "/containerd.services.images.v1.Images/Create",
        &CreateImageRequest {
            image: Some(Image {
                name: name.to_string(),
                target: Some(top),
                ..Default::default()
            }),
            source_date_epoch: None,
        },
    ) {
        Ok(_) => {}
        Err(s) if s.code == crate::grpc::Code::AlreadyExists => {}
        Err(s) => return Err(s.into()),
    }
    progress::report(workload, &format!("pulled {name}"), Some(100));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_registry_repository_and_tag_or_digest() {
        assert_eq!(
            parse("127.0.0.1:5000/gantry/pulled:1.0"),
            Some(Reference {
                registry: "127.0.0.1:5000".into(),
                repository: "gantry/pulled".into(),
                reference: "1.0".into(),
            })
        );
        let d = parse("docker.io/library/busybox@sha256:abc").expect("parses");
        assert_eq!(
            (d.repository.as_str(), d.reference.as_str()),
            ("library/busybox", "sha256:abc")
        );
    }
}

//! One artifact of a software module, downloaded through the host's
//! `artifacts` capability.

use super::{ArtifactAction, Stop};
use gantry_sdk::mqtt_frontend::gantry::plugin::artifacts::{self, Checksums, FetchError};

/// Chunk size of artifact reads.
const CHUNK: u32 = 64 * 1024;

/// The artifact's body, downloaded through the host (HTTP preferred, as Kanto does).
pub(super) fn download(a: &ArtifactAction) -> Result<Vec<u8>, Stop> {
    let link = a
        .download
        .get("HTTP")
        .or_else(|| a.download.get("HTTPS"))
        .ok_or_else(|| {
            Stop(
                "FINISHED_ERROR",
                format!(
                    "artifact `{}` has no HTTP or HTTPS download link",
                    a.filename
                ),
            )
        })?;
    let digest = |key: &str| {
        a.checksums
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let checksums = Checksums {
        sha256: digest("SHA256"),
        md5: digest("MD5"),
    };
    if checksums.sha256.is_none() && checksums.md5.is_none() && digest("SHA1").is_some() {
        return Err(Stop(
            "FINISHED_REJECTED",
            format!(
                "artifact `{}`: only a SHA1 checksum is given; gantry checks MD5 and SHA256",
                a.filename
            ),
        ));
    }
    // Checked here, so a malformed checksum is the sender's (REJECTED)
    // before anything is fetched; the host checks again for itself.
    for (name, given, bytes) in [
        ("md5", &checksums.md5, 16),
        ("sha256", &checksums.sha256, 32),
    ] {
        if let Some(hex) = given
            && !(hex.len() == bytes * 2 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(Stop(
                "FINISHED_REJECTED",
                format!("`{hex}` is not a {name} digest ({bytes} bytes in hex)"),
            ));
        }
    }
    let failed = |e: FetchError| match e {
        FetchError::ChecksumMismatch(alg) => Stop(
            "FINISHED_REJECTED",
            format!("{alg} checksum does not match"),
        ),
        FetchError::Denied(why) => Stop("FINISHED_ERROR", format!("download denied: {why}")),
        FetchError::Status(code) => Stop(
            "FINISHED_ERROR",
            format!("downloading {} answered HTTP {code}", link.url),
        ),
        FetchError::TooLarge(limit) => Stop(
            "FINISHED_ERROR",
            format!(
                "artifact `{}` is larger than the {limit} bytes allowed",
                a.filename
            ),
        ),
        FetchError::TimedOut => Stop(
            "FINISHED_ERROR",
            format!("downloading {} timed out", link.url),
        ),
        FetchError::Failed(why) => {
            Stop("FINISHED_ERROR", format!("downloading {}: {why}", link.url))
        }
    };
    let d = artifacts::fetch(&link.url, &checksums).map_err(failed)?;
    let mut body = Vec::new();
    while let Some(chunk) = d.next(CHUNK).map_err(failed)? {
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

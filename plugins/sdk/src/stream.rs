//! Writing a whole buffer to a `wasi:io` output stream.
//!
//! `blocking-write-and-flush` takes at most 4096 bytes a call and waits for
//! each piece to be taken; [`write_all`] writes as much as the stream accepts
//! at a time (`check-write`) and flushes once at the end.
//!
//! An outgoing request's body is only read once the request is on its way:
//! call `outgoing-handler.handle` first, then write the body, or a body larger
//! than the stream buffers waits for a reader that never comes.

use wasip2::io::streams::{OutputStream, StreamError};

/// Write all of `bytes`, waiting for the stream to accept them, then flush.
pub fn write_all(stream: &OutputStream, mut bytes: &[u8]) -> Result<(), StreamError> {
    while !bytes.is_empty() {
        let permitted = stream.check_write()?;
        if permitted == 0 {
            stream.subscribe().block();
            continue;
        }
        let n = usize::try_from(permitted)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        stream.write(&bytes[..n])?;
        bytes = &bytes[n..];
    }
    stream.blocking_flush()
}

//! gRPC status codes and how they map to gantry's typed errors.

use gantry_sdk::backend::gantry::plugin::types::{Error, InvalidInput};

/// The gRPC status codes this plugin tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 3
    InvalidArgument,
    /// 5
    NotFound,
    /// 6
    AlreadyExists,
    /// 9
    FailedPrecondition,
    /// 12
    Unimplemented,
    /// 14, and every transport failure.
    Unavailable,
    /// 4
    DeadlineExceeded,
    /// Anything else (the number is kept).
    Other(u32),
}

impl Code {
    pub(super) fn from_number(n: u32) -> Code {
        match n {
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            9 => Code::FailedPrecondition,
            12 => Code::Unimplemented,
            14 => Code::Unavailable,
            n => Code::Other(n),
        }
    }
}

/// A failed call: the status containerd answered, or a transport failure.
#[derive(Debug, Clone)]
pub struct Status {
    /// What kind of failure.
    pub code: Code,
    /// containerd's message (percent-decoded).
    pub message: String,
}

impl Status {
    pub(super) fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Whether this is a not-found answer.
    pub fn is_not_found(&self) -> bool {
        self.code == Code::NotFound
    }
}

impl From<Status> for Error {
    fn from(s: Status) -> Error {
        let m = s.message;
        match s.code {
            Code::NotFound => Error::NotFound(m),
            Code::AlreadyExists | Code::FailedPrecondition => Error::Conflict(m),
            Code::InvalidArgument => Error::Invalid(InvalidInput {
                message: m,
                fields: Vec::new(),
            }),
            Code::Unimplemented => Error::Unsupported(m),
            Code::Unavailable | Code::DeadlineExceeded => Error::Unavailable(m),
            Code::Other(n) => Error::Backend(format!("containerd answered status {n}: {m}")),
        }
    }
}

/// The result of a call.
pub type GrpcResult<T> = Result<T, Status>;

pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_percent_decoded() {
        assert_eq!(
            percent_decode("container%20%22x%22: not found"),
            "container \"x\": not found"
        );
        assert_eq!(percent_decode("100%"), "100%");
    }
}

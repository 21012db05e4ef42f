//! Helpers over the WIT-generated model types: time, errors, roles, and
//! the records' defaults (the SDK's, so host and plugins agree on them).

use crate::bindings::types::{Caller, ContainerStatus, Error, FieldError, InvalidInput, Timestamp};

pub use gantry_sdk::roles::ADMIN;

gantry_sdk::wit_record_defaults!(
    types: crate::bindings::types,
    control: crate::bindings::gantry::plugin::control
);

/// Who a plugin call acts as: the host binds it to the instance for the
/// call (a request's verified caller, an MQTT frontend's identity).
#[derive(Debug, Clone)]
pub enum Identity {
    /// No call in progress, or a call not made on anyone's behalf.
    None,
    /// The request carried no credentials, or bad ones (the reason).
    Unauthenticated(String),
    /// A verified caller.
    Caller(Caller),
}

/// Now, as a WIT timestamp.
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanoseconds: d.subsec_nanos(),
    }
}

impl Error {
    /// The same error, its message followed by `; {note}`.
    pub fn noted(self, note: &str) -> Error {
        let add = |m: String| format!("{m}; {note}");
        match self {
            Error::NotFound(m) => Error::NotFound(add(m)),
            Error::Invalid(mut i) => {
                i.message = add(i.message);
                Error::Invalid(i)
            }
            Error::Forbidden(m) => Error::Forbidden(add(m)),
            Error::Unauthenticated(m) => Error::Unauthenticated(add(m)),
            Error::Conflict(m) => Error::Conflict(add(m)),
            Error::Unsupported(m) => Error::Unsupported(add(m)),
            Error::Unavailable(m) => Error::Unavailable(add(m)),
            Error::Backend(m) => Error::Backend(add(m)),
            Error::Internal(m) => Error::Internal(add(m)),
        }
    }

    /// A one-line human description.
    pub fn describe(&self) -> String {
        match self {
            Error::NotFound(m) => format!("not found: {m}"),
            Error::Invalid(i) => {
                let mut s = format!("invalid: {}", i.message);
                for fe in &i.fields {
                    s.push_str(&format!("; {}: {}", fe.field, fe.message));
                }
                s
            }
            Error::Forbidden(m) => format!("forbidden: {m}"),
            Error::Unauthenticated(m) => format!("unauthenticated: {m}"),
            Error::Conflict(m) => format!("conflict: {m}"),
            Error::Unsupported(m) => format!("unsupported: {m}"),
            Error::Unavailable(m) => format!("unavailable: {m}"),
            Error::Backend(m) => format!("backend: {m}"),
            Error::Internal(m) => format!("internal: {m}"),
        }
    }
}

/// An `invalid` error about one field.
pub fn invalid_field(field: &str, message: impl Into<String>) -> Error {
    let message = message.into();
    Error::Invalid(InvalidInput {
        message: format!("{field}: {message}"),
        fields: vec![FieldError {
            field: field.to_string(),
            message,
        }],
    })
}

/// Whether a container status counts as running for start/stop checks.
pub fn is_running(s: ContainerStatus) -> bool {
    matches!(
        s,
        ContainerStatus::Running | ContainerStatus::Restarting | ContainerStatus::Paused
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_keeps_the_errors_kind_and_message() {
        let e = Error::NotFound("image x".into()).noted("revision 1 keeps running");
        assert_eq!(e.describe(), "not found: image x; revision 1 keeps running");
        let e = invalid_field("command", "cannot execute").noted("revision 2 keeps running");
        assert!(
            matches!(&e, Error::Invalid(i) if i.message.ends_with("; revision 2 keeps running") && i.fields.len() == 1),
            "{e:?}"
        );
    }
}
